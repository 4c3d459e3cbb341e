//! Throughput benchmarks: training steps per rule and architecture, the
//! machine's FMA peak, and the GEMM crate's best on the same shapes, so that
//! a step's speed reads as a fraction of what the machine can do.
//!
//! FLOPs are counted analytically from the layer plan, 2 per multiply-add
//! of the matrix products, by [`flops_per_sample`] (`resources/flops.rs`
//! has the table per rule): the one count that `--dry-run`, the Slurm
//! time estimate and these benchmarks share.

use crate::config::RunConfig;
use crate::data::Dataset;
use crate::rules::RuleKind;
use crate::tensor::{record_products, with_gemm_backend, GemmBackend, Parallelism, ProductTime};
use std::collections::BTreeMap;
use std::time::Instant;

pub use crate::resources::{flops_per_layer, flops_per_sample, LayerFlops};

mod forecast;
mod peaks;
mod steps;

use crate::stats::median;
pub use forecast::{duration, flop, forecast, Forecast, Rates};
pub use peaks::{
    concurrent_gemm_gflops, fma_peak, fma_peaks, gemm_gflops, product_gflops, quick_gemm_gflops,
    step_products, Product,
};
use steps::step_loop;
pub use steps::{random_images, time_steps, RANDOM_SAMPLES};

/// One benchmark result.
#[derive(Clone, Debug)]
pub struct StepBench {
    /// The rule.
    pub rule: RuleKind,
    /// The network: an MLP's hidden widths (`2x800`) or a preset's name
    /// ([`RunConfig::architecture`]).
    pub network: String,
    /// Threads.
    pub threads: usize,
    /// Training samples per second (median of the timed rounds).
    pub samples_per_s: f64,
    /// Achieved GFLOP/s.
    pub gflops: f64,
    /// The GEMM backend the step's products ran on (`cfg.gemm` resolved).
    pub gemm: GemmBackend,
}

/// Times training steps of `cfg.rule` on `data` (batch `cfg.batch_size`)
/// with `par` for about `seconds`, after a warm-up. Reuse one pool per thread
/// count across calls: a new pool per call leaves the old one's threads
/// competing for the cores.
pub fn bench_steps(cfg: &RunConfig, data: &Dataset, par: &Parallelism, seconds: f64) -> StepBench {
    let threads = par.count();
    par.install(|| {
        let (mut step, gemm) = step_loop(cfg, data, par, 10);
        let b = cfg.batch_size;
        let mut rounds = Vec::new();
        let start = Instant::now();
        let mut i = 0;
        while start.elapsed().as_secs_f64() < seconds || rounds.len() < 3 {
            let t0 = Instant::now();
            for _ in 0..20 {
                step(i);
                i += 1;
            }
            rounds.push(t0.elapsed().as_secs_f64() / (20 * b) as f64);
        }
        rounds.sort_by(|a, b| a.total_cmp(b));
        let per_sample = rounds[rounds.len() / 2];
        let (c, h, w) = data.image;
        let plan = cfg
            .network_plan(crate::layers::Shape::new(c, h, w), data.classes)
            .expect("valid benchmark config");
        StepBench {
            rule: cfg.rule,
            network: cfg.architecture(),
            threads,
            samples_per_s: 1.0 / per_sample,
            gflops: flops_per_sample(cfg.rule, &plan) / per_sample / 1e9,
            gemm,
        }
    })
}

/// Where the time of a training step goes, product by product. Times are
/// means over the steps, not medians, so that they add up to the step's.
#[derive(Clone, Debug)]
pub struct Breakdown {
    /// The mean wall time of a step, in seconds.
    pub step_seconds: f64,
    /// The step's products in call order, each with the mean of its
    /// [`ProductTime::seconds`] over the steps.
    pub products: Vec<ProductTime>,
}

impl Breakdown {
    /// Step time less the products' times: the elementwise passes outside
    /// any product's epilogue, the optimizer's own passes, the batch copy.
    pub fn outside_products(&self) -> f64 {
        self.step_seconds - self.products.iter().map(|p| p.seconds).sum::<f64>()
    }
}

/// Times `steps` training steps of `cfg` on `data` with `par`, each product
/// of each step timed ([`record_products`]), after a warm-up.
pub fn step_breakdown(
    cfg: &RunConfig,
    data: &Dataset,
    par: &Parallelism,
    steps: usize,
) -> Breakdown {
    let steps = steps.max(1);
    par.install(|| {
        let (mut step, _) = step_loop(cfg, data, par, 10);
        let t0 = Instant::now();
        let ((), log) = record_products(64 * steps, || {
            for i in 0..steps {
                step(i);
            }
        });
        let step_seconds = t0.elapsed().as_secs_f64() / steps as f64;
        // Every step of a rule makes the same products in the same order.
        let per_step = log.len() / steps;
        assert_eq!(per_step * steps, log.len(), "steps made different products");
        let products = (0..per_step)
            .map(|j| ProductTime {
                seconds: (0..steps)
                    .map(|i| log[i * per_step + j].seconds)
                    .sum::<f64>()
                    / steps as f64,
                ..log[j]
            })
            .collect();
        Breakdown {
            step_seconds,
            products,
        }
    })
}

/// Times `jobs` one-thread trainings of `cfg` running at once, each on its
/// own thread, as the runs of a sweep do (`biprop sweep --jobs`). The result
/// sums their throughput; its `threads` is the number of runs.
pub fn bench_jobs(cfg: &RunConfig, data: &Dataset, jobs: usize, seconds: f64) -> StepBench {
    let results: Vec<StepBench> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs)
            .map(|_| s.spawn(move || bench_steps(cfg, data, &Parallelism::Seq, seconds)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("benchmark thread"))
            .collect()
    });
    StepBench {
        threads: jobs,
        samples_per_s: results.iter().map(|r| r.samples_per_s).sum(),
        gflops: results.iter().map(|r| r.gflops).sum(),
        ..results[0].clone()
    }
}

/// How a benchmark cell uses the cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One run on this many threads.
    Threads(usize),
    /// This many one-thread runs at once, as a sweep runs them.
    Jobs(usize),
}

impl Mode {
    /// The table's label: `2`, or `2 jobs x 1`.
    pub fn label(&self) -> String {
        match self {
            Mode::Threads(t) => t.to_string(),
            Mode::Jobs(j) => format!("{j} jobs x 1"),
        }
    }

    /// Runs trained at once.
    pub fn runs(&self) -> usize {
        match self {
            Mode::Threads(_) => 1,
            Mode::Jobs(j) => *j,
        }
    }

    /// Cores in use.
    pub fn cores(&self) -> usize {
        match self {
            Mode::Threads(n) | Mode::Jobs(n) => *n,
        }
    }
}

/// The ceilings a cell is compared with, for the cores of one [`Mode`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Peaks {
    /// [`fma_peak`] of the mode's cores.
    pub fma: f64,
    /// Its two parts, [`fma_peaks`]: 256-bit and (where there is AVX-512) 512-bit.
    pub fma_parts: (f64, Option<f64>),
    /// The GEMM crate's best on the step's shapes, used as the mode uses the
    /// cores (one product split over the threads, or one product per job).
    pub gemm: f64,
}

/// One row of [`run_table`]: a cell's median over the passes.
#[derive(Clone, Debug)]
pub struct Row {
    /// The cell's result (medians of samples/s and GFLOP/s over the passes).
    pub bench: StepBench,
    /// How the cores were used.
    pub mode: Mode,
    /// The best ceilings seen over the passes.
    pub peaks: Peaks,
}

/// What [`run_table`] is measuring, for a progress display.
#[derive(Clone, Debug)]
pub enum Progress {
    /// The peaks of one way of using the cores, described.
    Peaks(String),
    /// One cell of one pass, described.
    Cell(String),
}

/// One cell of [`run_table`]: a run's settings, how it uses the cores and
/// the data it steps through (of the network's input shape).
#[derive(Clone, Debug)]
pub struct Cell<'a> {
    /// The run's settings (rule, network, batch, backend).
    pub cfg: RunConfig,
    /// How it uses the cores.
    pub mode: Mode,
    /// Its data.
    pub data: &'a Dataset,
}

/// Measures every cell for about `seconds` in each of
/// `passes` passes. Every pass measures all cells in turn, so that on a
/// shared machine a slow spell hits every cell alike; each row is the median
/// over the passes. `progress` is told what is being measured. Every config must
/// be valid and its batch no larger than its data. The GEMM peaks are measured
/// on the first cell's backend (`gemm`), which the cells are expected to share.
pub fn run_table(
    cells: &[Cell<'_>],
    seconds: f64,
    passes: usize,
    mut progress: impl FnMut(Progress),
) -> Vec<Row> {
    // One pool per thread count, made once: pools made per cell would
    // leave idle threads competing.
    let mut pools: BTreeMap<usize, Parallelism> = BTreeMap::new();
    for Cell { mode, .. } in cells {
        if let Mode::Threads(t) = *mode {
            pools
                .entry(t)
                .or_insert_with(|| Parallelism::threads(t).expect("a thread pool"));
        }
    }
    let batch = cells.first().map_or(128, |c| c.cfg.batch_size);
    let backend = cells
        .first()
        .map_or(GemmBackend::Auto, |c| c.cfg.gemm)
        .resolve();
    let mut modes: Vec<Mode> = Vec::new();
    for Cell { mode: m, .. } in cells {
        if !modes.contains(m) {
            modes.push(*m);
        }
    }
    let mut peaks: Vec<(Mode, Peaks)> = Vec::new();
    let mut samples: Vec<Vec<StepBench>> = vec![Vec::new(); cells.len()];
    for pass in 0..passes {
        for &mode in &modes {
            progress(Progress::Peaks(format!(
                "pass {}/{passes}: peaks of {}",
                pass + 1,
                mode.label()
            )));
            let fma_parts = fma_peaks(mode.cores());
            let fma = fma_parts.0.max(fma_parts.1.unwrap_or(0.0));
            let gemm = match mode {
                Mode::Threads(t) => pools[&t].install(|| {
                    with_gemm_backend(backend, || {
                        gemm_gflops(batch, 784, 800).max(gemm_gflops(batch, 800, 800))
                    })
                }),
                Mode::Jobs(j) => concurrent_gemm_gflops(j, batch, backend),
            };
            match peaks.iter_mut().find(|(m, _)| *m == mode) {
                Some((_, p)) => {
                    p.fma = p.fma.max(fma);
                    p.fma_parts.0 = p.fma_parts.0.max(fma_parts.0);
                    p.fma_parts.1 = match (p.fma_parts.1, fma_parts.1) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    p.gemm = p.gemm.max(gemm);
                }
                None => peaks.push((
                    mode,
                    Peaks {
                        fma,
                        fma_parts,
                        gemm,
                    },
                )),
            }
        }
        for (k, Cell { cfg, mode, data }) in cells.iter().enumerate() {
            progress(Progress::Cell(format!(
                "pass {}/{passes}: {} {} on {}",
                pass + 1,
                cfg.rule,
                cfg.architecture(),
                mode.label()
            )));
            let r = match *mode {
                Mode::Threads(t) => bench_steps(cfg, data, &pools[&t], seconds),
                Mode::Jobs(j) => bench_jobs(cfg, data, j, seconds),
            };
            samples[k].push(r);
        }
    }
    cells
        .iter()
        .zip(samples)
        .map(|(Cell { mode, .. }, runs)| {
            let median_of = |f: fn(&StepBench) -> f64| {
                let mut v: Vec<f64> = runs.iter().map(f).collect();
                median(&mut v)
            };
            Row {
                bench: StepBench {
                    samples_per_s: median_of(|r| r.samples_per_s),
                    gflops: median_of(|r| r.gflops),
                    ..runs[0].clone()
                },
                mode: *mode,
                peaks: peaks
                    .iter()
                    .find(|(m, _)| m == mode)
                    .map(|(_, p)| *p)
                    .unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count on an MLP of widths `sizes`.
    fn mlp(rule: RuleKind, sizes: &[usize]) -> f64 {
        let plan = crate::network::mlp_plan(sizes, crate::activation::Activation::Tanh);
        flops_per_sample(rule, &plan)
    }

    /// The figure: one BP epoch of 784-800-800-10 on 50k samples is about 320 GFLOP.
    #[test]
    fn bp_flops_match_the_hand_count() {
        let per = mlp(RuleKind::Bp, &[784, 800, 800, 10]);
        assert_eq!(per, 6_396_800.0);
        assert!((per * 50_000.0 / 1e9 - 319.84).abs() < 0.01);
        // With one hidden layer FA and DFA do the same products.
        let s = [784, 800, 10];
        assert_eq!(mlp(RuleKind::Fa, &s), mlp(RuleKind::Dfa, &s));
    }

    /// The other rules on 784-800-800-10, counted by hand: a product of
    /// `m x k` by `k x n` per sample (m = 1) is `2 k n` FLOPs.
    #[test]
    fn every_rule_matches_its_hand_count() {
        let s = [784, 800, 800, 10];
        let fwd = 2.0 * (784.0 * 800.0 + 800.0 * 800.0 + 800.0 * 10.0);
        // DFA: forward, weight gradients, and the 10-wide error sent to
        // each of the two hidden layers.
        let direct = 2.0 * 10.0 * (800.0 + 800.0);
        assert_eq!(mlp(RuleKind::Fa, &s), 6_396_800.0);
        assert_eq!(mlp(RuleKind::Dfa, &s), 2.0 * fwd + direct);
        // BDFA: DFA, plus D^T h and the update h y'^T for each layer.
        assert_eq!(mlp(RuleKind::Bdfa, &s), 2.0 * fwd + 3.0 * direct);
        // BFA: FA, plus the feedback network's forward, its errors (all
        // but those into its 10-wide input) and its weight gradients.
        let fa = mlp(RuleKind::Fa, &s);
        let feedback_errors = fwd - 2.0 * 800.0 * 10.0;
        assert_eq!(mlp(RuleKind::Bfa, &s), fa + fwd + feedback_errors + fwd);
        assert_eq!(mlp(RuleKind::Bfa, &s), 14_032_000.0);
    }

    /// The rules beyond the paper's on 784-800-800-10, by hand.
    #[test]
    fn rules_beyond_the_paper_match_their_hand_count() {
        let s = [784, 800, 800, 10];
        let fwd = 2.0 * (784.0 * 800.0 + 800.0 * 800.0 + 800.0 * 10.0);
        // Errors through the 800x800 and 10x800 paths (none into the input).
        let chain = 2.0 * (800.0 * 800.0 + 800.0 * 10.0);
        let direct = 2.0 * 10.0 * (800.0 + 800.0);
        // Sign-concordant rules: FA's products (B from W is elementwise).
        for rule in [RuleKind::Usf, RuleKind::Frsf, RuleKind::Brsf] {
            assert_eq!(mlp(rule, &s), 2.0 * fwd + chain, "{rule}");
        }
        // KP: FA plus dB_j = h_{j-1}^T delta_j for the same two paths.
        assert_eq!(mlp(RuleKind::Kp, &s), 2.0 * fwd + 2.0 * chain);
        assert_eq!(mlp(RuleKind::Kp, &s), 7_692_800.0);
        // DRTP: y D^T costs what e D^T does.
        assert_eq!(mlp(RuleKind::Drtp, &s), 2.0 * fwd + direct);
        // DKP: DFA plus dD_l = h_l^T e for each hidden layer.
        assert_eq!(mlp(RuleKind::Dkp, &s), 2.0 * fwd + 2.0 * direct);
    }

    /// lenet-cifar's layers by hand: a convolution's forward product is
    /// 2 x out channels x output pixels x in channels x kernel pixels.
    #[test]
    fn convolution_layers_match_their_hand_count() {
        let cfg = RunConfig {
            net: Some(crate::layers::spec::Preset::LenetCifar),
            ..Default::default()
        };
        let plan = cfg
            .network_plan(crate::layers::Shape::new(3, 32, 32), 10)
            .unwrap();
        let conv1 = 2.0 * 32.0 * 28.0 * 28.0 * 3.0 * 25.0;
        let conv2 = 2.0 * 64.0 * 10.0 * 10.0 * 32.0 * 25.0;
        let bp = flops_per_layer(RuleKind::Bp, &plan);
        assert_eq!(bp.len(), 5);
        // No error is carried into the image.
        assert_eq!(
            bp[0],
            LayerFlops {
                forward: conv1,
                weight_gradient: conv1,
                error: 0.0,
                feedback: 0.0
            }
        );
        assert_eq!((bp[1].forward, bp[1].error), (conv2, conv2));
        // DFA projects the 10 output errors onto conv 1's 32x28x28 outputs.
        let dfa = flops_per_layer(RuleKind::Dfa, &plan);
        assert_eq!(dfa[0].error, 2.0 * 10.0 * 32.0 * 28.0 * 28.0);
        assert_eq!(dfa[4].error, 0.0);
        // BFA's mirror of conv 2: its forward, its errors and its gradients.
        let bfa = flops_per_layer(RuleKind::Bfa, &plan);
        assert_eq!(bfa[1].feedback, 3.0 * conv2);
        for rule in RuleKind::ALL {
            let layers = flops_per_layer(rule, &plan);
            let sum: f64 = layers.iter().map(LayerFlops::total).sum();
            assert_eq!(sum, flops_per_sample(rule, &plan), "{rule}");
        }
    }
}
