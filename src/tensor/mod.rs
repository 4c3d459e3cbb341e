//! Row-major `f32` matrices and the only calls into the GEMM crates.
//!
//! Every product of the training step goes through [`gemm`], so the choice of
//! GEMM backend ([`GemmBackend`]: faer's kernels or the gemm crate's), its
//! threading and its transposes live in this module. Transposes are
//! expressed as strided views, never as copies.
//!
//! - `matrix`: the matrix type and its views;
//! - `cpu`: what the CPU is (the backend choice reads it);
//! - `backend`: the two backends behind one choice, each one sequential call;
//! - `parallel`: how many threads a product is cut over;
//! - `gemm`: the products, cut into blocks that give the same bits on any
//!   number of threads;
//! - `timing`: each product timed, for `biprop bench --breakdown`.

mod backend;
mod cpu;
mod gemm;
mod matrix;
mod parallel;
mod timing;

pub use backend::{gemm_backend, with_gemm_backend, GemmBackend};
pub use cpu::CpuInfo;
pub use gemm::{gemm, gemm_then, Block};
pub use matrix::{Matrix, ShapeError, View};
pub(crate) use parallel::set_gemm_threads;
pub use parallel::{
    check_threads, cores, gemm_threads, resolve_threads, thread_limit, Parallelism, MAX_THREADS,
};
pub use timing::{record_products, ProductTime};

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Matrix, b: &Matrix) -> Matrix {
        let mut c = Matrix::zeros(a.rows(), b.cols());
        for i in 0..a.rows() {
            for j in 0..b.cols() {
                let mut s = 0.0f64;
                for k in 0..a.cols() {
                    s += a.get(i, k) as f64 * b.get(k, j) as f64;
                }
                c.set(i, j, s as f32);
            }
        }
        c
    }

    fn seq(rows: usize, cols: usize, k: f32) -> Matrix {
        let data = (0..rows * cols)
            .map(|i| ((i as f32 * k).sin() * 3.0).round() / 4.0)
            .collect();
        Matrix::from_vec(rows, cols, data).unwrap()
    }

    #[test]
    fn gemm_matches_naive_in_every_transpose_combination() {
        let a = seq(5, 7, 0.37);
        let b = seq(7, 3, 0.91);
        let want = naive(&a, &b);
        let at = a.transposed();
        let bt = b.transposed();
        for backend in GemmBackend::CONCRETE {
            with_gemm_backend(backend, || {
                for (av, bv) in [
                    (a.view(), b.view()),
                    (at.view().t(), b.view()),
                    (a.view(), bt.view().t()),
                    (at.view().t(), bt.view().t()),
                ] {
                    let mut c = Matrix::zeros(6, 3);
                    gemm(&mut c, false, 1.0, av, bv);
                    // Values exact in f32: every backend gets them exactly.
                    assert_eq!(c.rows_slice(5), want.as_slice(), "{backend}");
                    gemm(&mut c, true, -1.0, av, bv);
                    assert!(c.as_slice().iter().all(|&x| x == 0.0), "{backend}");
                }
            });
        }
    }

    /// Every backend, in every layout (NN, TN, NT, TT), replacing and
    /// accumulating, on one thread and split over 2 and 3, against the naive
    /// product in f64 (to f32 rounding), on the paper's shapes and odd ones.
    #[test]
    fn every_backend_matches_naive_in_every_layout_and_split() {
        let inexact = |rows: usize, cols: usize, f: f32| {
            let data = (0..rows * cols).map(|i| (i as f32 * f).sin()).collect();
            Matrix::from_vec(rows, cols, data).unwrap()
        };
        for (m, k, n) in [
            (37, 19, 23),
            (128, 784, 800),
            (800, 128, 784),
            (128, 800, 10),
        ] {
            let a = inexact(m, k, 0.37);
            let b = inexact(k, n, 0.91);
            let c0 = inexact(m, n, 0.13);
            let ab = naive(&a, &b);
            let (at, bt) = (a.transposed(), b.transposed());
            let views = [
                ("NN", a.view(), b.view()),
                ("TN", at.view().t(), b.view()),
                ("NT", a.view(), bt.view().t()),
                ("TT", at.view().t(), bt.view().t()),
            ];
            for backend in GemmBackend::CONCRETE {
                for threads in [1, 2, 3] {
                    let par = Parallelism::threads(threads).unwrap();
                    par.install(|| {
                        with_gemm_backend(backend, || {
                            for (layout, av, bv) in views {
                                for accumulate in [false, true] {
                                    let mut c = c0.clone();
                                    gemm(&mut c, accumulate, 0.5, av, bv);
                                    for i in 0..m * n {
                                        let want = 0.5 * ab.as_slice()[i] as f64
                                            + if accumulate {
                                                c0.as_slice()[i] as f64
                                            } else {
                                                0.0
                                            };
                                        let got = c.as_slice()[i] as f64;
                                        // f32 sums of k terms of size <= 1.
                                        assert!(
                                            (got - want).abs() <= 1e-6 * k as f64,
                                            "{backend} {layout} acc={accumulate} {threads} threads \
                                             {m}x{k}x{n}: element {i} is {got}, naive {want}"
                                        );
                                    }
                                }
                            }
                        })
                    });
                }
            }
        }
    }

    /// The backend is chosen from CPU features alone: the same every time.
    #[test]
    fn the_backend_choice_is_deterministic() {
        let first = GemmBackend::for_this_cpu();
        assert_ne!(first, GemmBackend::Auto);
        for _ in 0..10 {
            assert_eq!(GemmBackend::for_this_cpu(), first);
        }
        assert_eq!(GemmBackend::Auto.resolve(), first);
        assert_eq!(GemmBackend::Faer.resolve(), GemmBackend::Faer);
        let cpu = CpuInfo::read();
        if cpu.vendor == "GenuineIntel" && cpu.avx512f {
            assert_eq!(first, GemmBackend::Gemm);
        } else {
            assert_eq!(first, GemmBackend::Faer);
        }
        // A scoped choice is put back.
        let outer = gemm_backend();
        with_gemm_backend(GemmBackend::Faer, || {
            assert_eq!(gemm_backend(), GemmBackend::Faer);
            with_gemm_backend(GemmBackend::Gemm, || {
                assert_eq!(gemm_backend(), GemmBackend::Gemm)
            });
            assert_eq!(gemm_backend(), GemmBackend::Faer);
        });
        assert_eq!(gemm_backend(), outer);
    }

    /// `biprop bench --breakdown`'s log: each product of the closure, in
    /// call order, with its shape and layout; a nested recording keeps its
    /// own; nothing is logged outside one.
    #[test]
    fn record_products_logs_each_product_of_its_closure_in_order() {
        let a = Matrix::zeros(4, 3);
        let b = Matrix::zeros(5, 3);
        let mut c = Matrix::zeros(4, 5);
        let mut w = Matrix::zeros(3, 5);
        let ((), outer) = record_products(0, || {
            gemm(&mut c, false, 1.0, a.view(), b.view().t());
            let ((), inner) = record_products(4, || {
                gemm(&mut w, true, 1.0, a.view().t(), c.view());
            });
            assert_eq!(inner.len(), 1);
            assert_eq!(inner[0].mkn, (3, 4, 5));
            assert_eq!(inner[0].layout(), "TN");
            assert!(inner[0].accumulate);
            gemm(&mut c, false, 1.0, a.view(), b.view().t());
        });
        // The inner recording's product is its own; the outer one goes on.
        assert_eq!(outer.len(), 2);
        for p in &outer {
            assert_eq!(
                (p.mkn, p.layout(), p.accumulate, p.parts),
                ((4, 3, 5), "NT", false, 1)
            );
            assert!(p.seconds > 0.0 && p.flops_per_s() > 0.0);
        }
        // Nothing is recorded outside.
        let ((), none) = record_products(0, || {});
        gemm(&mut c, false, 1.0, a.view(), b.view().t());
        assert!(none.is_empty());
        assert!(!timing::recording());
    }

    /// Split products equal the sequential one bit for bit, in every
    /// transpose combination and for several thread counts, and the epilogue
    /// sees every output element exactly once, at its true position.
    #[test]
    fn split_gemm_is_bitwise_the_sequential_one() {
        // Large enough to be split (at least SMALL_GEMM multiply-adds): sizes
        // that are not multiples of the split alignment, and the paper's
        // shapes, whose long inner dimension faer may cut into blocks.
        for (m, k, n) in [
            (100, 203, 211),
            (128, 784, 800),
            (128, 800, 784),
            (128, 800, 800),
            (800, 128, 784),
            // Lopsided outputs, cut along their long side: a convolution's
            // weight gradient and its forward product.
            (40, 1700, 800),
            (3000, 150, 40),
        ] {
            split_matches_sequential(m, k, n);
        }
    }

    fn split_matches_sequential(m: usize, k: usize, n: usize) {
        // Inexact values, so that a different order of summation would show.
        let inexact = |rows: usize, cols: usize, f: f32| {
            let data = (0..rows * cols).map(|i| (i as f32 * f).sin()).collect();
            Matrix::from_vec(rows, cols, data).unwrap()
        };
        let a = inexact(m, k, 0.37);
        let b = inexact(k, n, 0.91);
        let (at, bt) = (a.transposed(), b.transposed());
        let views = [
            (a.view(), b.view()),
            (at.view().t(), b.view()),
            (a.view(), bt.view().t()),
            (at.view().t(), bt.view().t()),
        ];
        let bias: Vec<f32> = (0..n).map(|j| j as f32).collect();
        for backend in GemmBackend::CONCRETE {
            split_matches_sequential_on(backend, m, n, views, &bias);
        }
    }

    fn split_matches_sequential_on(
        backend: GemmBackend,
        m: usize,
        n: usize,
        views: [(View<'_>, View<'_>); 4],
        bias: &[f32],
    ) {
        let mut want = Matrix::zeros(m, n);
        with_gemm_backend(backend, || {
            gemm(&mut want, false, 0.5, views[0].0, views[0].1)
        });
        for r in 0..m {
            for (v, b) in want.row_mut(r).iter_mut().zip(bias) {
                *v = *v * 2.0 + b + 1000.0 * r as f32;
            }
        }
        for threads in [2, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                with_gemm_backend(backend, || {
                    set_gemm_threads(threads);
                    for (av, bv) in views {
                        let mut c = Matrix::zeros(m + 3, n);
                        gemm_then(&mut c, false, 0.5, av, bv, &|block| {
                            let cols = block.cols.clone();
                            for (r, row) in block.rows_mut() {
                                for (v, j) in row.iter_mut().zip(cols.clone()) {
                                    *v = *v * 2.0 + bias[j] + 1000.0 * r as f32;
                                }
                            }
                        });
                        assert_eq!(
                            c.rows_slice(m),
                            want.as_slice(),
                            "{backend}, {threads} threads"
                        );
                        assert!(c.as_slice()[m * n..].iter().all(|&x| x == 0.0));
                    }
                    set_gemm_threads(1);
                })
            });
        }
    }

    #[test]
    fn from_vec_rejects_wrong_length() {
        assert!(Matrix::from_vec(2, 3, vec![0.0; 5]).is_err());
    }
}
