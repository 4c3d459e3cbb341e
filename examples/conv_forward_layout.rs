//! Which operand layouts make lenet-cifar's convolution products fastest:
//! the forward product of the patches with `W` read transposed (`NT`)
//! against a row-major copy of `W^T` (`NN`), and the weight gradient as
//! `delta^T P` (`[out, C kh kw]`) against `P^T delta` (its transpose), at
//! the shapes of lenet-cifar's first two convolutions with batch 128.
//!
//!     cargo run --release --example conv_forward_layout [THREADS]
//!
//! Prints the median of 15 products (after 3 untimed) in ms, on THREADS
//! GEMM threads (default 2).

use biprop::tensor::{gemm, Matrix, Parallelism, View};
use std::time::Instant;

fn filled(rows: usize, cols: usize, k: usize) -> Matrix {
    let data = (0..rows * cols)
        .map(|i| ((i * k % 1000) as f32) / 1000.0 - 0.5)
        .collect();
    Matrix::from_vec(rows, cols, data).expect("shape")
}

fn median_ms(dst: &mut Matrix, a: View<'_>, b: View<'_>) -> f64 {
    for _ in 0..3 {
        gemm(dst, false, 1.0, a, b);
    }
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            gemm(dst, false, 1.0, a, b);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let threads = std::env::args()
        .nth(1)
        .map_or(2, |t| t.parse().expect("THREADS is a number"));
    let par = Parallelism::threads(threads).expect("a valid thread count");
    par.install(|| {
        // (positions of a batch, patch length, output channels)
        for (name, m, k, n) in [("conv 1", 100352, 75, 32), ("conv 2", 12800, 800, 64)] {
            let patches = filled(m, k, 7);
            let w = filled(n, k, 11);
            let wt = filled(k, n, 11);
            let delta = filled(m, n, 5);
            let mut y = Matrix::zeros(m, n);
            let nt = median_ms(&mut y, patches.view(), w.view().t());
            let nn = median_ms(&mut y, patches.view(), wt.view());
            let mut g = Matrix::zeros(n, k);
            let mut gt = Matrix::zeros(k, n);
            let dp = median_ms(&mut g, delta.view().t(), patches.view());
            let pd = median_ms(&mut gt, patches.view().t(), delta.view());
            println!(
                "{name} ({m}x{k}x{n}), {threads} threads: forward NT {nt:.2} ms, NN {nn:.2} ms; \
                 weight gradient delta^T P {dp:.2} ms, P^T delta {pd:.2} ms"
            );
        }
    });
}
