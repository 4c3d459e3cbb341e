//! The two GEMM backends behind one choice: faer's kernels and the gemm
//! crate's, the thread's choice of them, and the one sequential call into
//! each (every product is cut into blocks that each take one such call).

use super::cpu::CpuInfo;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use std::cell::Cell;

thread_local! {
    static GEMM_BACKEND: Cell<Option<GemmBackend>> = const { Cell::new(None) };
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

/// `dst (+)= alpha a b` on one thread with `backend`'s kernels.
pub(super) fn sequential(
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
