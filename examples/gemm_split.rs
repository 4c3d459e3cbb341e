//! How to use two threads for the three products of a training step:
//! faer's own parallel GEMM, or biprop's split into whole rows or columns
//! (`biprop::tensor::gemm` with two GEMM threads), against one thread; and
//! both ways of cutting each product in halves, which is how biprop's split
//! picks its cut.
//!
//!     cargo run --release --example gemm_split [PASSES]
//!
//! Prints GFLOP/s per product and way, the median over PASSES interleaved
//! passes (default 5), each the best of 5 rounds of 50 products.

use biprop::tensor::{gemm, Matrix, Parallelism, View};
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use std::time::Instant;

const BATCH: usize = 128;
const FAN_IN: usize = 784;
const FAN_OUT: usize = 800;

fn filled(rows: usize, cols: usize, k: usize) -> Matrix {
    let data = (0..rows * cols)
        .map(|i| ((i * k % 1000) as f32) / 1000.0 - 0.5)
        .collect();
    Matrix::from_vec(rows, cols, data).expect("shape")
}

fn gflops(mut product: impl FnMut()) -> f64 {
    for _ in 0..10 {
        product();
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..50 {
            product();
        }
        best = best.min(t.elapsed().as_secs_f64() / 50.0);
    }
    2.0 * (BATCH * FAN_IN * FAN_OUT) as f64 / best / 1e9
}

/// GFLOP/s of one product, `dst (+)= a b`: on one thread, with faer's
/// two-thread GEMM, with biprop's split, and cut in halves of rows or of
/// columns by hand. `fa` and
/// `fb` are the faer views of `a` and `b` for the faer baseline.
fn ways(
    dst: &mut Matrix,
    acc: bool,
    (a, b): (View<'_>, View<'_>),
    (fa, fb): (MatRef<'_, f32>, MatRef<'_, f32>),
    par: &Parallelism,
) -> [f64; 5] {
    let Parallelism::Pool(pool) = par else {
        panic!("a two-thread pool")
    };
    let alpha = if acc { 1e-9 } else { 1.0 };
    let beta = if acc { Accum::Add } else { Accum::Replace };
    let one = gflops(|| gemm(dst, acc, alpha, a, b));
    let (m, n) = (dst.rows(), dst.cols());
    let faer2 = pool.install(|| {
        gflops(|| {
            let c = MatMut::from_row_major_slice_mut(dst.as_mut_slice(), m, n);
            matmul(c, beta, fa, fb, alpha, Par::rayon(2))
        })
    });
    let split2 = par.install(|| gflops(|| gemm(dst, acc, alpha, a, b)));
    let mut cut = |by_cols: bool| {
        pool.install(|| {
            gflops(|| {
                let c = MatMut::from_row_major_slice_mut(dst.as_mut_slice(), m, n);
                if by_cols {
                    let (c0, c1) = c.split_at_col_mut(n / 2);
                    let (b0, b1) = fb.split_at_col(n / 2);
                    rayon::join(
                        || matmul(c0, beta, fa, b0, alpha, Par::Seq),
                        || matmul(c1, beta, fa, b1, alpha, Par::Seq),
                    );
                } else {
                    let (c0, c1) = c.split_at_row_mut(m / 2);
                    let (a0, a1) = fa.split_at_row(m / 2);
                    rayon::join(
                        || matmul(c0, beta, a0, fb, alpha, Par::Seq),
                        || matmul(c1, beta, a1, fb, alpha, Par::Seq),
                    );
                }
            })
        })
    };
    let (rows, cols) = (cut(false), cut(true));
    [one, faer2, split2, rows, cols]
}

fn main() {
    let passes: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("PASSES: a number"))
        .unwrap_or(5);
    let x = filled(BATCH, FAN_IN, 7919); // layer input
    let w = filled(FAN_OUT, FAN_IN, 104_729); // weight [out, in]
    let d = filled(BATCH, FAN_OUT, 1299); // error at the layer's output
    let fx = MatRef::from_row_major_slice(x.as_slice(), BATCH, FAN_IN);
    let fw = MatRef::from_row_major_slice(w.as_slice(), FAN_OUT, FAN_IN);
    let fd = MatRef::from_row_major_slice(d.as_slice(), BATCH, FAN_OUT);
    let mut out = Matrix::zeros(BATCH, FAN_OUT);
    let mut igrad = Matrix::zeros(BATCH, FAN_IN);
    let mut wgrad = Matrix::zeros(FAN_OUT, FAN_IN);
    let pool = Parallelism::threads(2).expect("two threads");
    let names = [
        "forward X W^T",
        "input gradient D W",
        "weight gradient D^T X",
    ];
    let mut results = vec![vec![Vec::new(); 5]; 3];
    for _ in 0..passes {
        let r = [
            ways(
                &mut out,
                false,
                (x.view(), w.view().t()),
                (fx, fw.transpose()),
                &pool,
            ),
            ways(&mut igrad, false, (d.view(), w.view()), (fd, fw), &pool),
            ways(
                &mut wgrad,
                true,
                (d.view().t(), x.view()),
                (fd.transpose(), fx),
                &pool,
            ),
        ];
        for (p, g) in r.iter().enumerate() {
            for (k, v) in g.iter().enumerate() {
                results[p][k].push(*v);
            }
        }
    }
    println!("GFLOP/s, {BATCH}x{FAN_IN}x{FAN_OUT} products, median of {passes} passes");
    println!(
        "| product | 1 thread | faer Par::rayon(2) | biprop split, 2 threads | row halves | column halves |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, r) in names.iter().zip(results.iter_mut()) {
        let cells: Vec<String> = r
            .iter_mut()
            .map(|v| {
                v.sort_by(|a, b| a.total_cmp(b));
                format!("{:.1}", v[v.len() / 2])
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}
