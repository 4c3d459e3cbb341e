//! Row-major `f32` matrices and the only calls into the GEMM crates.
//!
//! Every product of the training step goes through [`gemm`], so the choice of
//! GEMM backend ([`GemmBackend`]: faer's kernels or the gemm crate's), its
//! threading and its transposes live in this one file. Transposes are
//! expressed as strided views, never as copies.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// A dense row-major `f32` matrix.
///
/// Buffers of the training step are allocated once with the largest batch
/// size and used with fewer rows for the last, partial batch: see
/// [`Matrix::rows_view`].
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// A `rows x cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Wraps row-major `data`; fails when its length is not `rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, ShapeError> {
        if data.len() != rows * cols {
            return Err(ShapeError {
                expected: (rows, cols),
                len: data.len(),
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// All elements, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// All elements, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The first `rows` rows as a contiguous slice.
    pub fn rows_slice(&self, rows: usize) -> &[f32] {
        &self.data[..rows * self.cols]
    }

    /// The first `rows` rows as a contiguous mutable slice.
    pub fn rows_slice_mut(&mut self, rows: usize) -> &mut [f32] {
        &mut self.data[..rows * self.cols]
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r`, mutable.
    pub fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Element `(r, c)`.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    /// Sets element `(r, c)`.
    pub fn set(&mut self, r: usize, c: usize, v: f32) {
        self.data[r * self.cols + c] = v;
    }

    /// A view of the first `rows` rows.
    pub fn rows_view(&self, rows: usize) -> View<'_> {
        View {
            rows,
            cols: self.cols,
            data: self.rows_slice(rows),
            transposed: false,
        }
    }

    /// A view of the whole matrix.
    pub fn view(&self) -> View<'_> {
        self.rows_view(self.rows)
    }

    /// The transpose, as a new matrix (for setup and tests, not the hot path).
    pub fn transposed(&self) -> Matrix {
        let mut t = Matrix::zeros(self.cols, self.rows);
        for r in 0..self.rows {
            for c in 0..self.cols {
                t.data[c * self.rows + r] = self.data[r * self.cols + c];
            }
        }
        t
    }

    /// Copies `other` into `self`; shapes must match.
    pub fn copy_from(&mut self, other: &Matrix) {
        assert_eq!(self.shape(), other.shape(), "copy_from: shape mismatch");
        self.data.copy_from_slice(&other.data);
    }

    /// Sets every element to `v`.
    pub fn fill(&mut self, v: f32) {
        self.data.fill(v);
    }

    /// Gives the same elements another shape, in place: a convolution's
    /// output is one row a sample to the layers around it, and one row an
    /// output position to its own product.
    ///
    /// # Panics
    /// When `rows * cols` is not the number of elements.
    pub fn reshape(&mut self, rows: usize, cols: usize) {
        assert_eq!(rows * cols, self.data.len(), "reshape keeps the elements");
        self.rows = rows;
        self.cols = cols;
    }
}

/// A matrix whose element count does not match its shape.
#[derive(Debug, thiserror::Error)]
#[error("expected {}x{} = {} elements, got {len}", expected.0, expected.1, expected.0 * expected.1)]
pub struct ShapeError {
    /// The shape asked for.
    pub expected: (usize, usize),
    /// The number of elements given.
    pub len: usize,
}

/// A borrowed, possibly transposed, row-major matrix: an operand of [`gemm`].
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    rows: usize,
    cols: usize,
    data: &'a [f32],
    transposed: bool,
}

impl<'a> View<'a> {
    /// A view of a row-major slice of `rows * cols` elements.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "View::new: length mismatch");
        Self {
            rows,
            cols,
            data,
            transposed: false,
        }
    }

    /// The transpose of this view (no copy).
    pub fn t(self) -> Self {
        Self {
            transposed: !self.transposed,
            ..self
        }
    }

    /// Rows of the (possibly transposed) view.
    pub fn nrows(&self) -> usize {
        if self.transposed {
            self.cols
        } else {
            self.rows
        }
    }

    /// Columns of the (possibly transposed) view.
    pub fn ncols(&self) -> usize {
        if self.transposed {
            self.rows
        } else {
            self.cols
        }
    }

    fn faer(&self) -> MatRef<'a, f32> {
        let m = MatRef::from_row_major_slice(self.data, self.rows, self.cols);
        if self.transposed {
            m.transpose()
        } else {
            m
        }
    }
}

thread_local! {
    static GEMM_THREADS: std::cell::Cell<usize> = const { std::cell::Cell::new(1) };
    static GEMM_BACKEND: std::cell::Cell<Option<GemmBackend>> = const { std::cell::Cell::new(None) };
    static PRODUCT_LOG: std::cell::RefCell<Option<Vec<ProductTime>>> =
        const { std::cell::RefCell::new(None) };
}

/// One product timed by [`record_products`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProductTime {
    /// `m x k` times `k x n`.
    pub mkn: (usize, usize, usize),
    /// Whether the left and the right operands were transposed views.
    pub transposed: (bool, bool),
    /// Whether it accumulated into its output.
    pub accumulate: bool,
    /// The parts it was cut into (one per thread, or 1 for a small product).
    pub parts: usize,
    /// Wall time of the call, its epilogue included.
    pub seconds: f64,
}

impl ProductTime {
    /// `NN`, `NT`, `TN` or `TT`: which operands were transposed views.
    pub fn layout(&self) -> &'static str {
        match self.transposed {
            (false, false) => "NN",
            (false, true) => "NT",
            (true, false) => "TN",
            (true, true) => "TT",
        }
    }

    /// Floating-point operations per second of the call.
    pub fn flops_per_s(&self) -> f64 {
        let (m, k, n) = self.mkn;
        2.0 * (m * k * n) as f64 / self.seconds
    }
}

/// Runs `f` with every product this thread starts through [`gemm_then`]
/// timed, and returns `f`'s result with the products in call order. A
/// diagnostic (`biprop bench --breakdown`): outside it a product costs one
/// thread-local check. `capacity` products are reserved up front, so that
/// recording allocates nothing while `f` runs unless it makes more.
pub fn record_products<R>(capacity: usize, f: impl FnOnce() -> R) -> (R, Vec<ProductTime>) {
    // Puts the caller's log (none, or an outer recording's) back, also when
    // `f` panics.
    struct Restore(Option<Option<Vec<ProductTime>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                PRODUCT_LOG.with(|l| *l.borrow_mut() = outer);
            }
        }
    }
    let outer = PRODUCT_LOG.with(|l| l.replace(Some(Vec::with_capacity(capacity))));
    let mut restore = Restore(Some(outer));
    let r = f();
    let outer = restore.0.take().expect("set above");
    let log = PRODUCT_LOG.with(|l| l.replace(outer));
    (r, log.unwrap_or_default())
}

/// The kernels behind every product.
///
/// Both compute each output block with one sequential call, so results are
/// bitwise the same for every thread count with either; the two differ from
/// each other in the last bits (another order of summation), so a run's
/// backend is recorded with it (`gemm` in config.toml and the checkpoint).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum GemmBackend {
    /// The one this CPU gets: gemm on Intel with AVX-512, faer elsewhere
    /// (see `GemmBackend::for_this_cpu`); a run records the one it resolved to.
    #[default]
    Auto,
    /// faer's kernels: the faster on AMD Zen 4 (docs/performance.md).
    Faer,
    /// The gemm crate's kernels, with its AVX-512 (`x86-v4`) ones selected
    /// at run time where the CPU has AVX-512: the faster on Intel Xeons with
    /// two 512-bit FMA units (docs/performance.md).
    Gemm,
}

impl GemmBackend {
    /// The concrete backends.
    pub const CONCRETE: [GemmBackend; 2] = [GemmBackend::Faer, GemmBackend::Gemm];

    /// Its name in settings.
    pub fn name(self) -> &'static str {
        match self {
            GemmBackend::Auto => "auto",
            GemmBackend::Faer => "faer",
            GemmBackend::Gemm => "gemm",
        }
    }

    /// The backend for this CPU, from its features (never from timings, so
    /// the same machine always makes the same choice): the gemm crate on
    /// Intel CPUs with AVX-512, faer everywhere else (measured fastest on
    /// AMD Zen 4; on other CPUs faer is the default that was always used).
    pub fn for_this_cpu() -> GemmBackend {
        let cpu = CpuInfo::read();
        if cpu.vendor == "GenuineIntel" && cpu.avx512f {
            GemmBackend::Gemm
        } else {
            GemmBackend::Faer
        }
    }

    /// `self`, with `Auto` resolved for this CPU.
    pub fn resolve(self) -> GemmBackend {
        match self {
            GemmBackend::Auto => GemmBackend::for_this_cpu(),
            b => b,
        }
    }
}

impl std::fmt::Display for GemmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the backend choice and `biprop bench` read off the CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuInfo {
    /// The CPUID vendor string (`GenuineIntel`, `AuthenticAMD`), empty off x86-64.
    pub vendor: String,
    /// The model name (CPUID brand string), empty when there is none.
    pub model: String,
    /// AVX-512 Foundation.
    pub avx512f: bool,
}

impl CpuInfo {
    /// Reads the running CPU.
    pub fn read() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::__cpuid;
            let bytes =
                |regs: [u32; 4]| -> Vec<u8> { regs.iter().flat_map(|w| w.to_le_bytes()).collect() };
            // SAFETY: CPUID exists on every x86-64 CPU.
            #[allow(unused_unsafe)]
            let (vendor, model) = unsafe {
                let v = __cpuid(0);
                let vendor = bytes([v.ebx, v.edx, v.ecx, 0]);
                let mut brand = Vec::new();
                if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
                    for leaf in 0x8000_0002..=0x8000_0004u32 {
                        let r = __cpuid(leaf);
                        brand.extend(bytes([r.eax, r.ebx, r.ecx, r.edx]));
                    }
                }
                (vendor, brand)
            };
            let text = |b: &[u8]| {
                String::from_utf8_lossy(b)
                    .trim_matches(char::from(0))
                    .trim()
                    .to_string()
            };
            CpuInfo {
                vendor: text(&vendor[..12]),
                model: text(&model),
                avx512f: std::arch::is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            CpuInfo {
                vendor: String::new(),
                model: String::new(),
                avx512f: false,
            }
        }
    }
}

/// The backend this thread's GEMM calls use.
pub fn gemm_backend() -> GemmBackend {
    GEMM_BACKEND.with(|b| match b.get() {
        Some(b) => b,
        None => {
            let r = GemmBackend::for_this_cpu();
            b.set(Some(r));
            r
        }
    })
}

/// Runs `f` with this thread's products on `backend` (resolved if `Auto`),
/// then puts the thread's setting back.
pub fn with_gemm_backend<R>(backend: GemmBackend, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<GemmBackend>);
    impl Drop for Restore {
        fn drop(&mut self) {
            GEMM_BACKEND.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(GEMM_BACKEND.with(|b| b.get()));
    GEMM_BACKEND.with(|b| b.set(Some(backend.resolve())));
    f()
}

/// Sets how many threads this thread's GEMM calls use (1 = sequential).
///
/// With more than one, the products are split into that many parts that run
/// on the current rayon pool: call this inside `ThreadPool::install` of a
/// pool of that size. The setting is thread-local so that runs of a sweep in
/// different threads do not fight over one global setting. Library callers
/// do not touch it: a [`Parallelism`] (owned by each `Trainer`) sets it for
/// the work it runs and restores it after.
pub(crate) fn set_gemm_threads(n: usize) {
    GEMM_THREADS.with(|t| t.set(n.max(1)));
}

/// Where the products of some work run: on the caller's thread, or cut
/// into as many parts as a rayon pool has threads. Results are bitwise the
/// same either way (see [`gemm`]).
#[derive(Clone, Debug, Default)]
pub enum Parallelism {
    /// Every product on the calling thread.
    #[default]
    Seq,
    /// Products cut into `pool.current_num_threads()` parts, run on `pool`.
    Pool(std::sync::Arc<rayon::ThreadPool>),
}

impl Parallelism {
    /// `threads` threads (0 = every core): [`Parallelism::Seq`] for one, else
    /// a new pool of that many.
    pub fn threads(threads: usize) -> crate::Result<Self> {
        let n = crate::run::resolve_threads(threads);
        if n == 1 {
            return Ok(Self::Seq);
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map(|p| Self::Pool(std::sync::Arc::new(p)))
            .map_err(|e| crate::Error::Threads(format!("cannot start {n} threads: {e}")))
    }

    /// The number of threads.
    pub fn count(&self) -> usize {
        match self {
            Self::Seq => 1,
            Self::Pool(p) => p.current_num_threads(),
        }
    }

    /// Runs `f` with its products parallel as `self` says, then puts the
    /// calling thread's setting back. Inside the pool already (a trainer's
    /// step called from a run on the same pool) this costs nothing.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        struct Restore(usize);
        impl Drop for Restore {
            fn drop(&mut self) {
                set_gemm_threads(self.0);
            }
        }
        let scoped = |n: usize| {
            let _restore = Restore(gemm_threads());
            set_gemm_threads(n);
            f()
        };
        match self {
            Self::Seq => scoped(1),
            Self::Pool(p) => p.install(|| scoped(p.current_num_threads())),
        }
    }
}

/// The number of threads this thread's GEMM calls use.
pub fn gemm_threads() -> usize {
    GEMM_THREADS.with(|t| t.get())
}

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
    assert_eq!(n, dst.cols, "gemm: output columns differ");
    assert!(m <= dst.rows, "gemm: output has too few rows");
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
        by_cols: cut_by_columns(backend, a.transposed, b.transposed),
        epilogue,
    };
    let start = PRODUCT_LOG
        .with(|l| l.borrow().is_some())
        .then(std::time::Instant::now);
    task.run(out, a.faer(), b.faer(), (0, 0), parts);
    if let Some(start) = start {
        let t = ProductTime {
            mkn: (m, k, n),
            transposed: (a.transposed, b.transposed),
            accumulate,
            parts,
            seconds: start.elapsed().as_secs_f64(),
        };
        PRODUCT_LOG.with(|l| l.borrow_mut().as_mut().map(|v| v.push(t)));
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
fn cut_by_columns(backend: GemmBackend, a_transposed: bool, b_transposed: bool) -> bool {
    match backend {
        GemmBackend::Gemm => b_transposed || !a_transposed,
        GemmBackend::Faer | GemmBackend::Auto => b_transposed,
    }
}

/// `dst (+)= alpha a b` on one thread with `backend`'s kernels.
fn sequential(
    backend: GemmBackend,
    dst: MatMut<'_, f32>,
    beta: Accum,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    alpha: f32,
) {
    match backend {
        GemmBackend::Gemm => {
            let (m, n, k) = (dst.nrows(), dst.ncols(), a.ncols());
            // SAFETY: the pointers and strides are those of live faer views of
            // the right shapes (faer checked them), `dst` is borrowed mutably
            // and does not overlap `a` or `b` (they are shared borrows).
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    dst.as_ptr_mut(),
                    dst.col_stride(),
                    dst.row_stride(),
                    beta == Accum::Add,
                    a.as_ptr(),
                    a.col_stride(),
                    a.row_stride(),
                    b.as_ptr(),
                    b.col_stride(),
                    b.row_stride(),
                    1.0,
                    alpha,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        }
        GemmBackend::Faer | GemmBackend::Auto => matmul(dst, beta, a, b, alpha, Par::Seq),
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
        assert!(PRODUCT_LOG.with(|l| l.borrow().is_none()));
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
                set_gemm_threads(threads);
                let _backend = GEMM_BACKEND.with(|b| b.replace(Some(backend)));
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
            });
        }
    }

    #[test]
    fn from_vec_rejects_wrong_length() {
        assert!(Matrix::from_vec(2, 3, vec![0.0; 5]).is_err());
    }
}
