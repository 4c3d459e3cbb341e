//! What the machine can do: the FMA peak of its vector units, and the GEMM
//! kernels' best on the step's shapes, single and concurrent, so that a
//! step's speed reads as a fraction of them.

use crate::activation::{vectorized, Kernel};
use crate::tensor::{gemm, set_gemm_threads, with_gemm_backend, GemmBackend, Matrix, Parallelism};
use std::time::Instant;

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

/// The measured FMA peaks in GFLOP/s of `threads` cores (best of a few
/// tries each): of 256-bit FMAs, and of 512-bit ones where the CPU has
/// AVX-512. CPUs with two 512-bit FMA units double their peak with AVX-512;
/// Zen 4 runs both at the same FLOPs per cycle (`biprop bench` prints both).
pub fn fma_peaks(threads: usize) -> (f64, Option<f64>) {
    let avx2 = peak_of(threads, || vectorized(FmaLoop(&mut [1.0; 96], FMA_ITERS)));
    (avx2, avx512_peak(threads))
}

/// The machine's FMA peak in GFLOP/s of `threads` cores: the better of
/// [`fma_peaks`].
pub fn fma_peak(threads: usize) -> f64 {
    let (avx2, avx512) = fma_peaks(threads);
    avx2.max(avx512.unwrap_or(0.0))
}

/// Iterations of the FMA loops: each does 96 FMAs (192 FLOPs) per iteration.
const FMA_ITERS: usize = 2_000_000;

/// GFLOP/s of `threads` copies of `fma_loop` (96 FMAs per iteration, run
/// [`FMA_ITERS`] times) at once, the best of 3 tries.
fn peak_of(threads: usize, fma_loop: impl Fn() + Sync) -> f64 {
    let one = || {
        let t = Instant::now();
        fma_loop();
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
    (threads * FMA_ITERS * 96 * 2) as f64 / best / 1e9
}

/// The 512-bit FMA peak, or `None` without AVX-512.
#[cfg(target_arch = "x86_64")]
fn avx512_peak(threads: usize) -> Option<f64> {
    use std::arch::x86_64::*;

    /// 192 FMAs per iteration: 12 independent 16-lane chains, enough to
    /// hide the latency of two 512-bit FMA units (32 registers in all).
    #[target_feature(enable = "avx512f")]
    fn fma_loop_512(iters: usize) -> f32 {
        let mut acc = [_mm512_set1_ps(1.0); 12];
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }

    if !std::arch::is_x86_feature_detected!("avx512f") {
        return None;
    }
    Some(peak_of(threads, || {
        // SAFETY: AVX-512F was detected on this CPU just above. Half the
        // iterations of twice the FMAs: the FLOPs of the 256-bit loop.
        std::hint::black_box(unsafe { fma_loop_512(FMA_ITERS / 2) });
    }))
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512_peak(_threads: usize) -> Option<f64> {
    None
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

/// GFLOP/s of `m x k` times `k x n` (the transposed-weight forward layout)
/// on the current thread's GEMM threads, timed for about `seconds`: the
/// best of its repetitions, after one to warm up. Quick, for a forecast.
pub fn quick_gemm_gflops(m: usize, k: usize, n: usize, seconds: f64) -> f64 {
    let a =
        Matrix::from_vec(m, k, (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect()).expect("shape");
    let w =
        Matrix::from_vec(n, k, (0..n * k).map(|i| (i % 5) as f32 * 0.1).collect()).expect("shape");
    let mut c = Matrix::zeros(m, n);
    gemm(&mut c, false, 1.0, a.view(), w.view().t());
    let start = Instant::now();
    let mut best = f64::INFINITY;
    loop {
        let t = Instant::now();
        gemm(&mut c, false, 1.0, a.view(), w.view().t());
        best = best.min(t.elapsed().as_secs_f64());
        if start.elapsed().as_secs_f64() >= seconds {
            break;
        }
    }
    2.0 * (m * n * k) as f64 / best.max(1e-9) / 1e9
}

/// One product of the BP step on 784-800-...: its name and layout.
#[derive(Clone, Copy, Debug)]
pub struct Product {
    /// What it computes, e.g. `forward X Wᵀ`.
    pub name: &'static str,
    /// `m x k x n`.
    pub mkn: (usize, usize, usize),
    /// The layout: `NT` (b transposed), `NN`, `TN` (a transposed).
    pub layout: &'static str,
}

/// The products of a step on the first layer (784 inputs, 800 outputs) at
/// batch `b`: forward, input gradient, weight gradient.
pub fn step_products(b: usize) -> [Product; 3] {
    [
        Product {
            name: "forward X Wᵀ",
            mkn: (b, 784, 800),
            layout: "NT",
        },
        Product {
            name: "input gradient D W",
            mkn: (b, 800, 784),
            layout: "NN",
        },
        Product {
            name: "weight gradient Dᵀ X",
            mkn: (800, b, 784),
            layout: "TN",
        },
    ]
}

/// GFLOP/s of `p` with `backend` on `par`, best of 5 timed rounds.
pub fn product_gflops(p: Product, backend: GemmBackend, par: &Parallelism) -> f64 {
    let (m, k, n) = p.mkn;
    let fill = |rows: usize, cols: usize, q: usize| {
        Matrix::from_vec(
            rows,
            cols,
            (0..rows * cols).map(|i| (i % q) as f32 * 0.1).collect(),
        )
        .expect("shape")
    };
    // Stored as the step stores them: a transposed operand is a view.
    let a = if p.layout == "TN" {
        fill(k, m, 7)
    } else {
        fill(m, k, 7)
    };
    let b = if p.layout == "NT" {
        fill(n, k, 5)
    } else {
        fill(k, n, 5)
    };
    let av = if p.layout == "TN" {
        a.view().t()
    } else {
        a.view()
    };
    let bv = if p.layout == "NT" {
        b.view().t()
    } else {
        b.view()
    };
    let mut c = Matrix::zeros(m, n);
    let reps = ((1e9 / (2.0 * (m * n * k) as f64)) as usize).clamp(1, 2000);
    par.install(|| {
        with_gemm_backend(backend, || {
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..reps {
                    gemm(&mut c, false, 1.0, av, bv);
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64);
            }
            2.0 * (m * n * k) as f64 / best / 1e9
        })
    })
}

/// Summed GFLOP/s of `jobs` one-thread GEMMs on `backend` running at once
/// (the better of the two products of [`gemm_gflops`]): the GEMM ceiling of
/// a sweep.
pub fn concurrent_gemm_gflops(jobs: usize, batch: usize, backend: GemmBackend) -> f64 {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(move || {
                    set_gemm_threads(1);
                    with_gemm_backend(backend, || {
                        gemm_gflops(batch, 784, 800).max(gemm_gflops(batch, 800, 800))
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("GEMM benchmark thread"))
            .sum()
    })
}
