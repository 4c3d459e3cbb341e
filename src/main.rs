//! The `biprop` command line: a thin layer over the library.

use anyhow::{bail, Context, Result};
use biprop::activation::Activation;
use biprop::config::{parse_hidden, RunConfig};
use biprop::data::DatasetKind;
use biprop::loss::Output;
use biprop::optim::OptimizerKind;
use biprop::rules::{BdfaTarget, BdfaUpdate, InitScheme, RuleKind};
use biprop::run::{self, RunOptions};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Prints to stdout; a closed pipe (`biprop report DIR | head`) ends the
/// program quietly instead of panicking.
fn say(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|_| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

macro_rules! say {
    ($($t:tt)*) => { say(format_args!($($t)*)) };
}

/// Train neural networks with backpropagation and its biologically
/// plausible alternatives (FA, DFA, BFA, BDFA), and measure them side by side.
#[derive(Parser)]
#[command(name = "biprop", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train one network (defaults: BP, 784-800-10 tanh, sigmoid-BCE, SGD lr 0.0128, batch 128, 20 epochs, MNIST).
    Train(Box<TrainArgs>),
    /// Render what a trained BFA feedback network generates from labels (the paper's Figure 6).
    Generate(GenerateArgs),
    /// Run every unfinished cell of a sweep file (resumes after any interruption).
    Sweep(SweepArgs),
    /// Print a sweep folder's results as the paper's tables (mean ± std over seeds).
    Report {
        /// A sweep's output folder, or any folder of run directories.
        dir: PathBuf,
        /// Also write one CSV row per data set, architecture and rule here.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
    },
    /// Plot learning curves and alignment angles of the runs in a folder (PNG and SVG).
    Plot {
        /// A sweep's output folder, or any folder of run directories.
        dir: PathBuf,
        /// Where the plots go (default: DIR/plots).
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
    },
    /// Measure training throughput per rule, architecture and thread count, against the machine's peaks.
    Bench(BenchArgs),
    /// Download MNIST into the cache (or check that it is there).
    Download {
        /// Cache folder (default: $BIPROP_CACHE, else ~/.cache/biprop).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Architectures (repeatable).
    #[arg(long, default_values = ["1x800", "2x800"])]
    hidden: Vec<String>,
    /// Rules (repeatable; default: all five).
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
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args)]
struct SweepArgs {
    /// The sweep file (TOML: [base] settings and a [grid] of lists).
    file: PathBuf,
    /// Runs at once (default: one per core, each on one thread).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Run only cell I (0-based), e.g. from a job-array index.
    #[arg(long, value_name = "I")]
    task: Option<usize>,
    /// Output folder (default: the file's `out`, else sweeps/<file stem>).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// List the cells (index, id, done or not) and exit.
    #[arg(long)]
    list: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args)]
struct GenerateArgs {
    /// A run directory or a checkpoint file of a BFA run.
    run: PathBuf,
    /// The PNG to write (default: RUN/generated.png, or RUN/reconstructions.png).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Label mixtures to render instead of the one-hot vectors, e.g. --mix 3:0.5,8:0.5 (repeatable).
    #[arg(long, value_name = "CLASS:WEIGHT,...")]
    mix: Vec<String>,
    /// Render the first N test images beside feedback(forward(x)) instead.
    #[arg(long, value_name = "N")]
    reconstruct: Option<usize>,
    /// Data folder for --reconstruct (default: the run's, or $BIPROP_DATA).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Screen pixels per image pixel.
    #[arg(long, default_value_t = 4)]
    scale: u32,
}

#[derive(Args, Default)]
struct TrainArgs {
    /// TOML file with any run setting (flags override it).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Learning rule.
    #[arg(long, short = 'r', value_enum)]
    rule: Option<RuleKind>,
    /// Hidden layers: 800 | 800,400 | 2x800 | none.
    #[arg(long, value_name = "WIDTHS")]
    hidden: Option<String>,
    /// Hidden nonlinearity.
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// Output layer and loss.
    #[arg(long, value_enum)]
    output: Option<Output>,
    /// Initialization scheme (reference = the published code's).
    #[arg(long, value_enum)]
    init: Option<InitScheme>,
    /// Passes over the training set.
    #[arg(long, short = 'e')]
    epochs: Option<usize>,
    /// Samples per step.
    #[arg(long, short = 'b')]
    batch_size: Option<usize>,
    /// Optimizer.
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Learning rate (on the mean gradient of a batch).
    #[arg(long)]
    lr: Option<f32>,
    /// SGD momentum.
    #[arg(long)]
    momentum: Option<f32>,
    /// L2 weight decay.
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Seed for initialization and shuffling.
    #[arg(long, short = 's')]
    seed: Option<u64>,
    /// Threads (0 = all cores); the results are bitwise the same for every count.
    #[arg(long, short = 'j')]
    threads: Option<usize>,
    /// Data set.
    #[arg(long, value_enum)]
    dataset: Option<DatasetKind>,
    /// Folder with the data files (default: $BIPROP_DATA, else download into the cache).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Number of classes of an idx data set.
    #[arg(long)]
    classes: Option<usize>,
    /// Training samples held out (from the end) for validation.
    #[arg(long)]
    val_size: Option<usize>,
    /// Train on only the first N training samples.
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Learning rate of learning feedback weights (BFA, BDFA; default: --lr,
    /// or 5e-5 on the summed update with --bdfa-update reference).
    #[arg(long)]
    feedback_lr: Option<f32>,
    /// Optimizer of learning feedback weights (default: --optimizer).
    #[arg(long, value_enum)]
    feedback_optimizer: Option<OptimizerKind>,
    /// SGD momentum of learning feedback weights (default: --momentum).
    #[arg(long)]
    feedback_momentum: Option<f32>,
    /// BFA's reconstruction output.
    #[arg(long, value_enum)]
    bfa_output: Option<Output>,
    /// BDFA's feedback update: the paper's gradient or the published code's.
    #[arg(long, value_enum)]
    bdfa_update: Option<BdfaUpdate>,
    /// BDFA's target y': label, mixed (y + alpha*yhat), reference (published code).
    #[arg(long, value_enum)]
    bdfa_target: Option<BdfaTarget>,
    /// alpha of BDFA's mixed and reference targets.
    #[arg(long)]
    bdfa_alpha: Option<f32>,
    /// Keep the training order fixed.
    #[arg(long)]
    no_shuffle: bool,
    /// Skip the once-an-epoch alignment angles with BP.
    #[arg(long)]
    no_alignment: bool,
    /// Run directory (default: runs/RULE-HIDDEN-seedS, made unique).
    #[arg(long, short = 'o', value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into --out even if it holds an earlier run.
    #[arg(long)]
    force: bool,
    /// Continue the run in --out from its last checkpoint (same settings; --epochs may grow).
    #[arg(long, requires = "out", conflicts_with = "force")]
    resume: bool,
    /// Start from this checkpoint's weights (feedback weights included).
    #[arg(long, value_name = "CHECKPOINT")]
    init_from: Option<PathBuf>,
    /// No progress bar and no per-epoch lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

impl TrainArgs {
    /// The configuration: defaults, then the TOML file, then the flags.
    fn resolve(&self) -> Result<RunConfig> {
        let mut c = match &self.config {
            Some(p) => RunConfig::from_toml_file(p)?,
            None => RunConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(v) = self.$f.clone() { c.$f = v; })* };
        }
        set!(
            rule,
            activation,
            output,
            init,
            epochs,
            batch_size,
            optimizer,
            lr,
            momentum,
            weight_decay,
            seed,
            threads,
            dataset,
            classes,
            val_size
        );
        if let Some(h) = &self.hidden {
            c.hidden = parse_hidden(h).map_err(|e| anyhow::anyhow!("--hidden: {e}"))?;
        }
        if self.data_dir.is_some() {
            c.data_dir = self.data_dir.clone();
        }
        if self.train_limit.is_some() {
            c.train_limit = self.train_limit;
        }
        if self.no_shuffle {
            c.shuffle = false;
        }
        if self.no_alignment {
            c.alignment = false;
        }
        c.validate()?;
        Ok(c)
    }
}

/// `runs/NAME`, or `runs/NAME-2`, `-3` ... if taken.
fn fresh_run_dir(name: &str) -> PathBuf {
    let base = Path::new("runs");
    let mut dir = base.join(name);
    let mut k = 2;
    while dir.exists() {
        dir = base.join(format!("{name}-{k}"));
        k += 1;
    }
    dir
}

fn train(args: TrainArgs) -> Result<()> {
    let cfg = args.resolve()?;
    let out = match &args.out {
        Some(dir) => {
            let used = ["checkpoint.safetensors", "metrics.csv"]
                .iter()
                .any(|f| dir.join(f).exists());
            if used && !args.force && !args.resume {
                bail!(
                    "{} already holds a run; pass --resume to continue it, --force to overwrite it, or another --out",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => fresh_run_dir(&cfg.run_name()),
    };
    let splits = run::load_data(&cfg).context("loading the data")?;
    let interactive = std::io::stderr().is_terminal();
    if !args.quiet {
        eprintln!(
            "{} on {}: {} train / {} val / {} test samples, hidden {}, {} threads -> {}",
            cfg.rule,
            format!("{:?}", cfg.dataset).to_lowercase(),
            splits.train.len(),
            splits.val.len(),
            splits.test.len(),
            biprop::config::format_hidden(&cfg.hidden),
            run::resolve_threads(cfg.threads),
            out.display()
        );
    }
    let opts = RunOptions {
        out_dir: Some(out.clone()),
        init_from: args.init_from.clone(),
        progress: interactive && !args.quiet,
        echo: !args.quiet,
        resume: args.resume,
        on_epoch: None,
    };
    let summary = run::run(&cfg, &splits, &opts)?;
    if summary.records.is_empty() {
        say!(
            "nothing to train: the run in {} is complete ({} epochs)",
            out.display(),
            cfg.epochs
        );
    }
    if let Some(last) = summary.records.last() {
        say!(
            "final test error {:.2}% (val {:.2}%) after {} epochs; run saved in {}",
            100.0 * last.test_error,
            100.0 * last.val_error,
            last.epoch,
            out.display()
        );
    }
    Ok(())
}

fn generate(args: GenerateArgs) -> Result<()> {
    use biprop::checkpoint::Checkpoint;
    use biprop::generate::{self as g, LabelMix};
    let (dir, ckpt) = if args.run.is_dir() {
        (args.run.clone(), args.run.join("checkpoint.safetensors"))
    } else {
        let dir = args
            .run
            .parent()
            .map_or(PathBuf::from("."), Path::to_path_buf);
        (dir, args.run.clone())
    };
    let ck = Checkpoint::load(&ckpt)?;
    let mut cfg = ck.config()?;
    let (inputs, classes) = ck.io_sizes()?;
    let trainer = run::build_trainer_sized(&cfg, inputs, classes, Some(&ckpt))?;
    let Some(feedback) = trainer.rule.feedback_network() else {
        bail!(
            "{} was trained with --rule {}: only BFA has a feedback network that generates images",
            ckpt.display(),
            cfg.rule
        );
    };
    let image = ck.image_or_guess(inputs);
    let (tiles, default_name, cols) = match args.reconstruct {
        Some(n) => {
            if args.data_dir.is_some() {
                cfg.data_dir = args.data_dir.clone();
            }
            let (_, test) = biprop::data::load(cfg.dataset, cfg.data_dir.as_deref(), cfg.classes)
                .context("loading the test images to reconstruct")?;
            if test.is_empty() {
                bail!("--reconstruct: the data set has no test images");
            }
            let n = n.clamp(1, test.len());
            let sub = test.slice(0..n);
            (
                g::reconstruct(&trainer.net, feedback, &sub.inputs, &sub.labels)
                    .context("--reconstruct")?,
                "reconstructions.png",
                10,
            )
        }
        None => {
            let mixes = if args.mix.is_empty() {
                (0..classes)
                    .map(|k| LabelMix::one_hot(k, classes, &cfg.dataset.class_name(k)))
                    .collect()
            } else {
                args.mix
                    .iter()
                    .map(|m| LabelMix::parse(m, classes))
                    .collect::<biprop::Result<Vec<_>>>()?
            };
            (g::generate(feedback, &mixes)?, "generated.png", 10)
        }
    };
    let out = args.out.unwrap_or_else(|| dir.join(default_name));
    biprop::images::write_grid(&out, &tiles, image, cols, args.scale.clamp(1, 32))?;
    say!("wrote {}", out.display());
    Ok(())
}

fn sweep(args: SweepArgs) -> Result<()> {
    use biprop::experiment::sweep::{self, Sweep, SweepOptions};
    let mut s = Sweep::from_file(&args.file)?;
    if let Some(out) = args.out {
        s.out = out;
    }
    let cells = s.cells()?;
    if args.list {
        for c in &cells {
            let state = if s.is_done(c) { "done" } else { "pending" };
            say!("{:>4}  {state:<7}  {}", c.index, c.id);
        }
        return Ok(());
    }
    if !args.quiet {
        eprintln!(
            "sweep {}: {} cells, {} to run -> {}",
            args.file.display(),
            cells.len(),
            s.pending(args.task)?.len(),
            s.out.display()
        );
    }
    let opts = SweepOptions {
        jobs: args.jobs.unwrap_or_else(sweep::default_jobs),
        task: args.task,
        progress: !args.quiet && std::io::stderr().is_terminal(),
    };
    let n = sweep::run_sweep(&s, &opts)?;
    say!("{n} run(s) finished; results in {}", s.out.display());
    Ok(())
}

fn bench(args: BenchArgs) -> Result<()> {
    use biprop::bench;
    let rules = if args.rule.is_empty() {
        RuleKind::ALL.to_vec()
    } else {
        args.rule.clone()
    };
    let data = bench::random_mnist();
    if args.batch_size == 0 || args.batch_size > data.len() {
        bail!(
            "--batch-size must be in 1..={}, got {}",
            data.len(),
            args.batch_size
        );
    }
    let mut modes: Vec<bench::Mode> = args
        .threads
        .iter()
        .map(|&t| bench::Mode::Threads(run::resolve_threads(t)))
        .collect();
    modes.extend(args.jobs.map(|j| bench::Mode::Jobs(usize::from(j))));
    let mut cells = Vec::new();
    for h in &args.hidden {
        let hidden = parse_hidden(h).map_err(|e| anyhow::anyhow!("--hidden: {e}"))?;
        for &rule in &rules {
            for &mode in &modes {
                let cfg = RunConfig {
                    rule,
                    hidden: hidden.clone(),
                    batch_size: args.batch_size,
                    ..Default::default()
                };
                cfg.validate()?;
                cells.push((cfg, mode));
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
    let rows = bench::run_table(&cells, &data, args.seconds, args.passes.into(), |p| {
        if let bench::Progress::Cell(msg) = &p {
            bar.inc(1);
            bar.set_message(msg.clone());
        } else if let bench::Progress::Peaks(msg) = p {
            bar.set_message(msg);
        }
    });
    bar.finish_and_clear();
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
    say!("| rule | hidden | threads | samples/s | s/epoch (50k) | GFLOP/s | % FMA peak | % GEMM best |");
    say!("|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let r = &row.bench;
        say!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.1} | {:.0}% | {:.0}% |",
            r.rule,
            r.hidden,
            row.mode.label(),
            r.samples_per_s,
            // For concurrent jobs: the epoch time of each, as they share the cores.
            50_000.0 * row.mode.runs() as f64 / r.samples_per_s,
            r.gflops,
            100.0 * r.gflops / row.peaks.fma,
            100.0 * r.gflops / row.peaks.gemm
        );
    }
    Ok(())
}

fn report(dir: PathBuf, csv: Option<PathBuf>) -> Result<()> {
    use biprop::experiment::report;
    let runs = report::collect(&dir)?;
    let groups = report::group(&runs);
    say!("{}", report::markdown(&groups).trim_end());
    if let Some(path) = csv {
        biprop::fsutil::write_atomic(&path, report::csv_text(&groups).as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train(*args),
        Command::Generate(args) => generate(args),
        Command::Sweep(args) => sweep(args),
        Command::Bench(args) => bench(args),
        Command::Report { dir, csv } => report(dir, csv),
        Command::Plot { dir, out } => (|| {
            let out = out.unwrap_or_else(|| dir.join("plots"));
            for f in biprop::experiment::plot::plot_dir(&dir, &out)? {
                say!("wrote {}", f.display());
            }
            Ok(())
        })(),
        Command::Download { cache } => (|| {
            let cache = match cache {
                Some(c) => c,
                None => biprop::data::download::cache_dir()?,
            };
            let dir = biprop::data::download::ensure_mnist(&cache)?;
            say!("MNIST is in {}", dir.display());
            Ok(())
        })(),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
