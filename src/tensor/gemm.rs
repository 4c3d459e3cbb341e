//! The products: every one of the training step goes through [`gemm`] or
//! [`gemm_then`], cut into blocks of whole rows or whole columns on the
//! current GEMM threads, each block computed by one sequential call, so the
//! result is the same, bit for bit, for every thread count.

use super::backend::{gemm_backend, sequential, GemmBackend};
use super::matrix::{Matrix, View};
use super::parallel::gemm_threads;
use super::timing::{log, recording, ProductTime};
use faer::{Accum, MatMut, MatRef};

/// Products with fewer multiply-adds than this run on one thread.
const SMALL_GEMM: usize = 4 << 20;

/// Parts are cut at multiples of this many rows or columns (one AVX-512
/// register of `f32`), so that no part starts in the middle of a vector.
const SPLIT_ALIGN: usize = 16;

/// `dst[..m, ..] = alpha * a * b` (or `+=` when `accumulate`), where `m` is
/// `a.nrows()`, so that `dst` may be a buffer sized for a larger batch.
///
/// With [`gemm_threads`] above one, `dst` is cut into that many blocks of
/// whole rows or whole columns, each computed by one sequential GEMM call on
/// its own rayon task. No element is split across threads, so the result is
/// the same, bit for bit, for every thread count.
pub fn gemm(dst: &mut Matrix, accumulate: bool, alpha: f32, a: View<'_>, b: View<'_>) {
    gemm_then(dst, accumulate, alpha, a, b, &|_| {});
}

/// [`gemm`], then `epilogue` on every block of the output, on the thread
/// that computed the block while it is still in cache.
///
/// This is how elementwise passes that follow a product (bias and
/// activation, the activation's derivative) run on every thread instead of
/// leaving all but one idle.
pub fn gemm_then(
    dst: &mut Matrix,
    accumulate: bool,
    alpha: f32,
    a: View<'_>,
    b: View<'_>,
    epilogue: &(dyn Fn(Block<'_>) + Sync),
) {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    assert_eq!(k, b.nrows(), "gemm: inner dimensions differ");
    assert_eq!(n, dst.cols(), "gemm: output columns differ");
    assert!(m <= dst.rows(), "gemm: output has too few rows");
    let out = MatMut::from_row_major_slice_mut(dst.rows_slice_mut(m), m, n);
    let beta = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    // Splitting a small product (the 10-wide output layer) costs more in
    // synchronization than it saves (the first version of this function
    // measured 128x800x10 slower on two threads than on one; that timing
    // program was not kept).
    let parts = if m * n * k < SMALL_GEMM {
        1
    } else {
        gemm_threads()
    };
    let backend = gemm_backend();
    let task = Task {
        backend,
        beta,
        alpha,
        by_cols: cut_by_columns(backend, (m, n), a.transposed, b.transposed),
        epilogue,
    };
    let start = recording().then(std::time::Instant::now);
    task.run(out, a.faer(), b.faer(), (0, 0), parts);
    if let Some(start) = start {
        let t = ProductTime {
            mkn: (m, k, n),
            transposed: (a.transposed, b.transposed),
            accumulate,
            parts,
            seconds: start.elapsed().as_secs_f64(),
        };
        log(t);
    }
}

/// Whether a split product is cut into blocks of whole columns of its output
/// (else whole rows), from the layout of its operands.
///
/// The forward product `X W^T` (`b` transposed) is cut by columns with both
/// backends: each thread then reads, and packs, only its half of `W`. With
/// faer the input gradient `D W` (plain) and the weight gradient `D^T X`
/// (`a` transposed) are cut by rows: on AMD Zen 4, on the 128x784x800
/// products, `cargo run --release --example gemm_split` measured, in
/// GFLOP/s, row halves vs column halves: forward 200.6 vs 210.3, input
/// gradient 205.2 vs 201.5, weight gradient 218.1 vs 194.8 (and this split
/// against faer's own two-thread GEMM: 204.9 vs 186.9, 203.4 vs 191.1, 218.0
/// vs 188.6). The gemm crate packs the whole right operand `W` for each row
/// block of `D W`, so with it the input gradient is cut by columns too: on
/// the Intel Xeon of docs/performance.md, 2 threads, the 128x800x800 input
/// gradient took 0.976 of the same step's forward product with row halves
/// and 0.914 with column halves (medians of 8 alternated `biprop bench
/// --breakdown` runs of BP 2x800 with a switch that was not kept); cutting
/// the weight gradient by columns made it slower (0.94 against 0.83).
///
/// Where one side of the output is at least [`LOPSIDED`] times the other,
/// the cut halves the long side: each thread then reads half of the large
/// operand and all of the small one, where the other cut would have both
/// threads read all of the large one. A convolution's weight gradient
/// `delta^T P` (64x12800x800 on lenet-cifar's second layer) is cut by
/// columns so (with faer, on two threads of a 2-vCPU AMD EPYC: 9.4 ms
/// with row halves, 8.0 with column halves, medians of 3 alternated
/// `biprop bench --net lenet-cifar --rule bp --breakdown` runs), and its
/// forward product (12800x800x64) by rows.
fn cut_by_columns(
    backend: GemmBackend,
    (m, n): (usize, usize),
    a_transposed: bool,
    b_transposed: bool,
) -> bool {
    if n >= LOPSIDED * m {
        return true;
    }
    if m >= LOPSIDED * n {
        return false;
    }
    match backend {
        GemmBackend::Gemm => b_transposed || !a_transposed,
        GemmBackend::Faer | GemmBackend::Auto => b_transposed,
    }
}

/// A block of a product's output, handed to the epilogue of [`gemm_then`].
pub struct Block<'a> {
    /// First row of the block in the whole output.
    pub row0: usize,
    /// Columns of the block in the whole output.
    pub cols: std::ops::Range<usize>,
    mat: MatMut<'a, f32>,
}

impl<'a> Block<'a> {
    /// The block's rows as slices, each with its row index in the whole output.
    pub fn rows_mut(self) -> impl Iterator<Item = (usize, &'a mut [f32])> {
        let row0 = self.row0;
        self.mat.row_iter_mut().enumerate().map(move |(i, r)| {
            let row = r
                .try_as_row_major_mut()
                .expect("gemm outputs are row-major");
            (row0 + i, row.as_slice_mut())
        })
    }
}

/// How many times longer one side of a product's output must be than the
/// other for [`cut_by_columns`] to halve the long side whatever the layout.
/// The products of the paper's MLPs (batch 128, widths 400 to 3072) are
/// below it and keep the cuts measured for them.
const LOPSIDED: usize = 8;

/// The fixed part of one [`gemm_then`] call.
struct Task<'e> {
    backend: GemmBackend,
    beta: Accum,
    alpha: f32,
    by_cols: bool,
    epilogue: &'e (dyn Fn(Block<'_>) + Sync),
}

impl Task<'_> {
    /// Computes the block `dst` (at `origin` in the whole output) in `parts`
    /// pieces, halving it recursively under `rayon::join`.
    fn run(
        &self,
        mut dst: MatMut<'_, f32>,
        a: MatRef<'_, f32>,
        b: MatRef<'_, f32>,
        origin: (usize, usize),
        parts: usize,
    ) {
        let len = if self.by_cols {
            dst.ncols()
        } else {
            dst.nrows()
        };
        let left = parts / 2;
        let at = if parts > 1 {
            (len * left / parts).next_multiple_of(SPLIT_ALIGN)
        } else {
            0
        };
        if at == 0 || at >= len {
            sequential(self.backend, dst.as_mut(), self.beta, a, b, self.alpha);
            (self.epilogue)(Block {
                row0: origin.0,
                cols: origin.1..origin.1 + dst.ncols(),
                mat: dst,
            });
            return;
        }
        let (r, c) = origin;
        if self.by_cols {
            let (d0, d1) = dst.split_at_col_mut(at);
            let (b0, b1) = b.split_at_col(at);
            rayon::join(
                || self.run(d0, a, b0, (r, c), left),
                || self.run(d1, a, b1, (r, c + at), parts - left),
            );
        } else {
            let (d0, d1) = dst.split_at_row_mut(at);
            let (a0, a1) = a.split_at_row(at);
            rayon::join(
                || self.run(d0, a0, b, (r, c), left),
                || self.run(d1, a1, b, (r + at, c), parts - left),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lopsided output is cut along its long side with either backend and
    /// in any layout; the paper's MLP products keep the cuts measured for
    /// each backend.
    #[test]
    fn lopsided_products_are_cut_along_their_long_side() {
        for backend in GemmBackend::CONCRETE {
            for (at, bt) in [(false, false), (true, false), (false, true), (true, true)] {
                assert!(cut_by_columns(backend, (64, 800), at, bt), "{backend:?}");
                assert!(!cut_by_columns(backend, (12800, 64), at, bt), "{backend:?}");
            }
        }
        // 128x784x800 forward (W read transposed), input and weight gradients.
        assert!(cut_by_columns(GemmBackend::Faer, (128, 800), false, true));
        assert!(!cut_by_columns(GemmBackend::Faer, (128, 784), false, false));
        assert!(!cut_by_columns(GemmBackend::Faer, (800, 784), true, false));
        assert!(cut_by_columns(GemmBackend::Gemm, (128, 784), false, false));
        assert!(!cut_by_columns(GemmBackend::Gemm, (800, 784), true, false));
    }
}
