//! Throughput benchmarks: training steps per rule and architecture, the
//! machine's FMA peak, and the GEMM crate's best on the same shapes, so that
//! a step's speed reads as a fraction of what the machine can do.
//!
//! FLOPs are counted analytically, 2 per multiply-add of the matrix
//! products (elementwise work is left out). For layer widths `n_0 .. n_{L+1}`
//! and `F = sum_i 2 n_i n_{i+1}` (one forward pass), per sample:
//!
//! | rule | FLOPs |
//! |---|---|
//! | BP, FA | forward F + weight gradients F + errors `F - 2 n_0 n_1` |
//! | DFA | `2F + sum_l 2 C n_l` |
//! | BDFA | DFA's + feedback update `sum_l 4 C n_l` |
//! | BFA | FA's + feedback network forward F + its errors `F - 2 n_L C` + its gradients F |

use crate::activation::{vectorized, Kernel};
use crate::config::{format_hidden, RunConfig};
use crate::data::Dataset;
use crate::rules::RuleKind;
use crate::tensor::{gemm, set_gemm_threads, Matrix};
use crate::train::Trainer;
use std::time::Instant;

/// FLOPs of one training sample of `rule` on layer widths `sizes`.
pub fn flops_per_sample(rule: RuleKind, sizes: &[usize]) -> f64 {
    let f: f64 = sizes.windows(2).map(|w| 2.0 * (w[0] * w[1]) as f64).sum();
    let c = *sizes.last().unwrap_or(&0) as f64;
    let hidden = &sizes[1..sizes.len().saturating_sub(1)];
    let direct: f64 = hidden.iter().map(|&n| 2.0 * c * n as f64).sum();
    let first = if sizes.len() > 2 {
        2.0 * (sizes[0] * sizes[1]) as f64
    } else {
        0.0
    };
    let chain = f - first;
    let last_hidden = hidden.last().map_or(0.0, |&n| n as f64);
    match rule {
        RuleKind::Bp | RuleKind::Fa => 2.0 * f + chain,
        RuleKind::Dfa => 2.0 * f + direct,
        RuleKind::Bdfa => 2.0 * f + 3.0 * direct,
        RuleKind::Bfa => 2.0 * f + chain + f + (f - 2.0 * last_hidden * c) + f,
    }
}

struct FmaLoop<'a>(&'a mut [f32; 96], usize);

impl Kernel for FmaLoop<'_> {
    #[inline(always)]
    fn run(self) {
        // 96 values = 12 AVX2 registers of independent chains: enough to hide
        // the FMA latency without spilling (16 registers in all).
        for _ in 0..self.1 {
            for a in self.0.iter_mut() {
                *a = a.mul_add(0.999_999, 1e-7);
            }
        }
    }
}

/// The measured FMA peak in GFLOP/s of `threads` cores (best of a few tries).
pub fn fma_peak(threads: usize) -> f64 {
    let iters = 2_000_000usize;
    let one = || {
        let mut acc = [1.0f32; 96];
        let t = Instant::now();
        vectorized(FmaLoop(&mut acc, iters));
        std::hint::black_box(&acc);
        t.elapsed().as_secs_f64()
    };
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let secs = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads).map(|_| s.spawn(one)).collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or(f64::INFINITY))
                .fold(0.0, f64::max)
        });
        best = best.min(secs);
    }
    (threads * iters * 96 * 2) as f64 / best / 1e9
}

/// GFLOP/s of the GEMM crate on `m x k` times `k x n` (the transposed-weight
/// forward layout), on the current thread's GEMM threads, best of 5.
pub fn gemm_gflops(m: usize, k: usize, n: usize) -> f64 {
    let a =
        Matrix::from_vec(m, k, (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect()).expect("shape");
    let w =
        Matrix::from_vec(n, k, (0..n * k).map(|i| (i % 5) as f32 * 0.1).collect()).expect("shape");
    let mut c = Matrix::zeros(m, n);
    let reps = ((2e9 / (2.0 * (m * n * k) as f64)) as usize).clamp(1, 2000);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps {
            gemm(&mut c, false, 1.0, a.view(), w.view().t());
        }
        best = best.min(t.elapsed().as_secs_f64() / reps as f64);
    }
    2.0 * (m * n * k) as f64 / best / 1e9
}

/// One benchmark result.
#[derive(Clone, Debug)]
pub struct StepBench {
    /// The rule.
    pub rule: RuleKind,
    /// Hidden layers, short form.
    pub hidden: String,
    /// Threads.
    pub threads: usize,
    /// Training samples per second (median of the timed rounds).
    pub samples_per_s: f64,
    /// Achieved GFLOP/s.
    pub gflops: f64,
}

/// Times training steps of `cfg.rule` on `data` (batch `cfg.batch_size`)
/// on `pool` for about `seconds`, after a warm-up. Reuse one pool per thread
/// count across calls: a new pool per call leaves the old one's threads
/// competing for the cores.
pub fn bench_steps(
    cfg: &RunConfig,
    data: &Dataset,
    pool: &rayon::ThreadPool,
    seconds: f64,
) -> StepBench {
    let threads = pool.current_num_threads();
    pool.install(|| {
        set_gemm_threads(threads);
        let splits = crate::data::Splits {
            train: data.clone(),
            val: data.slice(0..0),
            test: data.slice(0..0),
        };
        let mut t: Trainer =
            crate::run::build_trainer(cfg, &splits, None).expect("valid benchmark config");
        let b = cfg.batch_size;
        let batches = (data.len() / b).max(1);
        let order: Vec<usize> = (0..data.len()).collect();
        let mut step = |i: usize| {
            let chunk = &order[(i % batches) * b..((i % batches) * b + b).min(data.len())];
            t.load_batch(data, chunk);
            t.step(chunk.len());
        };
        for i in 0..10 {
            step(i);
        }
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
        let mut sizes = vec![data.features()];
        sizes.extend(&cfg.hidden);
        sizes.push(data.classes);
        StepBench {
            rule: cfg.rule,
            hidden: format_hidden(&cfg.hidden),
            threads,
            samples_per_s: 1.0 / per_sample,
            gflops: flops_per_sample(cfg.rule, &sizes) / per_sample / 1e9,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure: one BP epoch of 784-800-800-10 on 50k samples is about 320 GFLOP.
    #[test]
    fn bp_flops_match_the_hand_count() {
        let per = flops_per_sample(RuleKind::Bp, &[784, 800, 800, 10]);
        assert_eq!(per, 6_396_800.0);
        assert!((per * 50_000.0 / 1e9 - 319.84).abs() < 0.01);
        // With one hidden layer FA and DFA do the same products.
        let s = [784, 800, 10];
        assert_eq!(
            flops_per_sample(RuleKind::Fa, &s),
            flops_per_sample(RuleKind::Dfa, &s)
        );
    }
}
