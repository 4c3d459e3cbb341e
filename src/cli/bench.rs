//! `biprop bench`: training throughput against the machine's peaks.

use crate::config::{parse_hidden, RunConfig};
use crate::data::DatasetKind;
use crate::rules::RuleKind;
use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub(super) struct BenchArgs {
    /// MLP architectures (repeatable; default: 1x800 and 2x800 when no
    /// --net is given).
    #[arg(long)]
    hidden: Vec<String>,
    /// Networks of layers by preset name (repeatable), stepped on random
    /// images of their data set's shape; their FLOPs are shown layer by layer.
    #[arg(long, value_enum)]
    net: Vec<crate::layers::spec::Preset>,
    /// Networks described layer by layer (repeatable), in the form of the
    /// `layers` setting (`"conv 6 5x5, relu, maxpool 2, flatten, dense
    /// 10"`), stepped on random images of --image; their FLOPs are shown
    /// layer by layer.
    #[arg(long)]
    layers: Vec<String>,
    /// The input of the --layers networks, CxHxW (default: 1x28x28, MNIST's).
    #[arg(long, value_parser = parse_image)]
    image: Option<(usize, usize, usize)>,
    /// Rules (repeatable; default: every rule).
    #[arg(long, value_enum)]
    rule: Vec<RuleKind>,
    /// Thread counts (repeatable; 0 = every core).
    #[arg(long, default_values_t = [1usize, 2])]
    threads: Vec<usize>,
    /// Seconds of timed steps per cell.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Also time this many one-thread runs at once, as a sweep runs them, and
    /// report their summed throughput against the peak of as many cores.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Measure every cell this many times, in interleaved passes, and report
    /// the median (peaks: the best), so that a slow spell of a shared machine
    /// does not land on one cell only.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    passes: u16,
    /// GEMM kernels of the step rows (auto: this CPU's). The per-product table
    /// measures every backend whatever this says.
    #[arg(long, value_enum, default_value_t = crate::tensor::GemmBackend::Auto)]
    gemm: crate::tensor::GemmBackend,
    /// Also time every product inside 50 steps of each thread-count cell and
    /// print where a step's time goes.
    #[arg(long)]
    breakdown: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

pub(super) fn bench(args: BenchArgs) -> Result<()> {
    use crate::bench;
    if args.batch_size == 0 || args.batch_size > bench::RANDOM_SAMPLES {
        bail!(
            "--batch-size must be in 1..={}, got {}",
            bench::RANDOM_SAMPLES,
            args.batch_size
        );
    }
    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        bail!(
            "--seconds must be a finite number >= 0, got {}",
            args.seconds
        );
    }
    let rules = if args.rule.is_empty() {
        RuleKind::ALL.to_vec()
    } else {
        args.rule.clone()
    };
    let mut networks: Vec<(RunConfig, (usize, usize, usize))> = Vec::new();
    // MLPs, and `--layers` without `--image`, run on MNIST's digits.
    let (_, _, mnist) = DatasetKind::Mnist
        .known_sizes()
        .expect("MNIST's sizes are known");
    if args.image.is_some() && args.layers.is_empty() {
        bail!("--image sets the input of --layers networks, and none is given");
    }
    let hidden = if args.hidden.is_empty() && args.net.is_empty() && args.layers.is_empty() {
        vec!["1x800".to_string(), "2x800".to_string()]
    } else {
        args.hidden.clone()
    };
    for h in &hidden {
        let hidden = parse_hidden(h).map_err(|e| anyhow::anyhow!("--hidden: {e}"))?;
        let cfg = RunConfig {
            hidden,
            ..Default::default()
        };
        networks.push((cfg, mnist));
    }
    for &net in &args.net {
        let cfg = RunConfig {
            net: Some(net),
            ..Default::default()
        };
        networks.push((cfg, net.image()));
    }
    for layers in &args.layers {
        let cfg = RunConfig {
            layers: Some(layers.clone()),
            ..Default::default()
        };
        networks.push((cfg, args.image.unwrap_or(mnist)));
    }
    // One random data set per input shape, shared by its cells.
    let mut images: Vec<(usize, usize, usize)> = networks.iter().map(|n| n.1).collect();
    images.sort_unstable();
    images.dedup();
    let datasets: Vec<crate::data::Dataset> = images
        .iter()
        .map(|&i| bench::random_images(i, bench::RANDOM_SAMPLES))
        .collect();
    let data_of = |image| &datasets[images.binary_search(&image).expect("a data set per shape")];
    // Thread counts and jobs are refused as a run's are, before any starts.
    let mut modes: Vec<bench::Mode> = args
        .threads
        .iter()
        .map(|&t| Ok(bench::Mode::Threads(crate::tensor::check_threads(t)?)))
        .collect::<crate::Result<_>>()?;
    if let Some(j) = args.jobs {
        crate::tensor::check_threads(j.into()).map_err(|_| {
            anyhow::anyhow!(
                "--jobs {j} is more than this machine can run at once: at most {}",
                crate::tensor::thread_limit()
            )
        })?;
    }
    modes.extend(args.jobs.map(|j| bench::Mode::Jobs(usize::from(j))));
    let mut cells = Vec::new();
    for (network, image) in &networks {
        for &rule in &rules {
            for &mode in &modes {
                let cfg = RunConfig {
                    rule,
                    batch_size: args.batch_size,
                    gemm: args.gemm,
                    ..network.clone()
                };
                cfg.validate()?;
                // A network too large for the memory is refused here, not
                // in the middle of the table.
                let extras = crate::resources::Extras::default();
                let (c, h, w) = *image;
                crate::resources::preflight(&cfg, crate::layers::Shape::new(c, h, w), 10, &extras)?;
                cells.push(bench::Cell {
                    cfg,
                    mode,
                    data: data_of(*image),
                });
            }
        }
    }
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(cells.len() as u64 * u64::from(args.passes))
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let rows = bench::run_table(&cells, args.seconds, args.passes.into(), |p| {
        if let bench::Progress::Cell(msg) = &p {
            bar.inc(1);
            bar.set_message(msg.clone());
        } else if let bench::Progress::Peaks(msg) = p {
            bar.set_message(msg);
        }
    });
    bar.finish_and_clear();
    let cpu = crate::tensor::CpuInfo::read();
    say!(
        "CPU: {} ({}, AVX-512 {}); GEMM backend of the step rows: {} (this CPU's choice: {})",
        if cpu.model.is_empty() {
            "unknown model"
        } else {
            &cpu.model
        },
        if cpu.vendor.is_empty() {
            "unknown vendor"
        } else {
            &cpu.vendor
        },
        if cpu.avx512f { "yes" } else { "no" },
        args.gemm.resolve(),
        crate::tensor::GemmBackend::for_this_cpu()
    );
    let mut thread_counts: Vec<usize> = modes
        .iter()
        .filter_map(|m| match m {
            bench::Mode::Threads(t) => Some(*t),
            bench::Mode::Jobs(_) => None,
        })
        .collect();
    thread_counts.dedup();
    let pars = thread_counts
        .iter()
        .map(|&t| crate::tensor::Parallelism::threads(t))
        .collect::<crate::Result<Vec<_>>>()?;
    say!("");
    say!(
        "| product (batch {}) | layout | backend |{}",
        args.batch_size,
        thread_counts
            .iter()
            .map(|t| format!(" GFLOP/s, {t} thread(s) |"))
            .collect::<String>()
    );
    say!("|---|---|---|{}", "---|".repeat(thread_counts.len()));
    for p in bench::step_products(args.batch_size) {
        for backend in crate::tensor::GemmBackend::CONCRETE {
            let cells: String = pars
                .iter()
                .map(|par| format!(" {:.1} |", bench::product_gflops(p, backend, par)))
                .collect();
            let (m, k, n) = p.mkn;
            say!(
                "| {} {m}x{k}x{n} | {} | {backend} |{cells}",
                p.name,
                p.layout
            );
        }
    }
    say!("");
    let mut shown = Vec::new();
    for row in &rows {
        if !shown.contains(&row.mode) {
            shown.push(row.mode);
            let what = match row.mode {
                bench::Mode::Threads(t) => format!("threads {t}"),
                bench::Mode::Jobs(j) => format!("{j} one-thread jobs at once (summed)"),
            };
            let parts = match row.peaks.fma_parts {
                (avx2, Some(avx512)) => format!(" (256-bit {avx2:.1}, 512-bit {avx512:.1})"),
                _ => String::new(),
            };
            say!(
                "{what}: FMA peak {:.1} GFLOP/s{parts}, GEMM best {:.1} GFLOP/s ({b}x784x800 / {b}x800x800)",
                row.peaks.fma,
                row.peaks.gemm,
                b = args.batch_size
            );
        }
    }
    say!("");
    say!("| rule | network | threads | samples/s | s/epoch (50k) | GFLOP/s | % FMA peak | % GEMM best | gemm |");
    say!("|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let r = &row.bench;
        say!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.1} | {:.0}% | {:.0}% | {} |",
            r.rule,
            r.network,
            row.mode.label(),
            r.samples_per_s,
            // For concurrent jobs: the epoch time of each, as they share the cores.
            50_000.0 * row.mode.runs() as f64 / r.samples_per_s,
            r.gflops,
            100.0 * r.gflops / row.peaks.fma,
            100.0 * r.gflops / row.peaks.gemm,
            r.gemm
        );
    }
    for (network, image) in networks
        .iter()
        .filter(|n| n.0.net.is_some() || n.0.layers.is_some())
    {
        print_layer_flops(network, *image, &rules)?;
    }
    if args.breakdown {
        print_breakdown(&cells, &thread_counts, &pars);
    }
    Ok(())
}

/// The products of [`bench::step_breakdown`] for each thread-count cell, in
/// call order, then the time outside them and the whole step.
fn print_breakdown(
    cells: &[crate::bench::Cell<'_>],
    thread_counts: &[usize],
    pars: &[crate::tensor::Parallelism],
) {
    const STEPS: usize = 50;
    say!("");
    say!("Inside the step: each product's mean wall time (its epilogue included) over {STEPS} steps, in call order");
    say!("");
    say!("| rule | network | threads | product m x k x n | layout | parts | µs/step | GFLOP/s | % of step |");
    say!("|---|---|---|---|---|---|---|---|---|");
    for crate::bench::Cell { cfg, mode, data } in cells {
        let crate::bench::Mode::Threads(t) = *mode else {
            continue;
        };
        let par = &pars[thread_counts
            .iter()
            .position(|&c| c == t)
            .expect("a pool per count")];
        let b = crate::bench::step_breakdown(cfg, data, par, STEPS);
        let cell = format!("| {} | {} | {t} |", cfg.rule, cfg.architecture());
        let share = |s: f64| 100.0 * s / b.step_seconds;
        for p in &b.products {
            let (m, k, n) = p.mkn;
            say!(
                "{cell} {m}x{k}x{n}{} | {} | {} | {:.0} | {:.1} | {:.1}% |",
                if p.accumulate { " (+=)" } else { "" },
                p.layout(),
                p.parts,
                1e6 * p.seconds,
                p.flops_per_s() / 1e9,
                share(p.seconds)
            );
        }
        say!(
            "{cell} outside the products | | | {:.0} | | {:.1}% |",
            1e6 * b.outside_products(),
            share(b.outside_products())
        );
        say!(
            "{cell} whole step | | | {:.0} | | 100% |",
            1e6 * b.step_seconds
        );
    }
}

/// One table per network of layers: each rule's FLOPs of a training sample,
/// layer by layer (forward, weight gradient, error and feedback work
/// together; `resources/flops.rs` counts them), then the forward pass alone.
fn print_layer_flops(
    network: &RunConfig,
    (c, h, w): (usize, usize, usize),
    rules: &[RuleKind],
) -> Result<()> {
    let plan = network.network_plan(crate::layers::Shape::new(c, h, w), 10)?;
    say!("");
    say!(
        "{} on {c}x{h}x{w}: MFLOP of one training sample, layer by layer",
        network.architecture()
    );
    say!("");
    let names: Vec<String> = plan
        .iter()
        .enumerate()
        .map(|(i, (kind, ..))| {
            format!(
                "{} -> {}",
                crate::resources::layer_name(i, kind),
                kind.out_shape()
            )
        })
        .collect();
    say!(
        "| rule |{} total |",
        names.iter().map(|n| format!(" {n} |")).collect::<String>()
    );
    say!("|---|{}---|", "---|".repeat(names.len()));
    let row = |label: &str, per_layer: Vec<f64>| {
        let total: f64 = per_layer.iter().sum();
        say!(
            "| {label} |{} {:.2} |",
            per_layer
                .iter()
                .map(|f| format!(" {:.2} |", f / 1e6))
                .collect::<String>(),
            total / 1e6
        );
    };
    for &rule in rules {
        let layers = crate::bench::flops_per_layer(rule, &plan);
        row(rule.name(), layers.iter().map(|l| l.total()).collect());
    }
    let forward = crate::bench::flops_per_layer(RuleKind::Bp, &plan);
    row("forward only", forward.iter().map(|l| l.forward).collect());
    Ok(())
}

/// `CxHxW`, each at least 1.
fn parse_image(text: &str) -> Result<(usize, usize, usize), String> {
    crate::checkpoint::parse_image(text)
        .filter(|&(c, h, w)| c > 0 && h > 0 && w > 0)
        .ok_or_else(|| format!("{text:?} is not CxHxW with positive sizes, e.g. 3x32x32"))
}
