//! Where the products of some work run: on the calling thread, or cut into
//! as many parts as a rayon pool has threads. The count is thread-local so
//! that the runs of a sweep, each on its own threads, do not fight over one
//! global setting; a [`Parallelism`] sets it for the work it runs and puts it
//! back after.

use std::cell::Cell;

thread_local! {
    static GEMM_THREADS: Cell<usize> = const { Cell::new(1) };
}

/// The number of threads a configuration asks for (0 = every core).
pub fn resolve_threads(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        cores()
    }
}

/// The cores this process may run on (its CPU affinity and quota, as the
/// standard library reads them); 1 when unknown.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most threads any run may ask for, whatever the machine: beyond it a
/// pool's stacks alone take gigabytes, and no machine biprop runs on has
/// the cores to use them.
pub const MAX_THREADS: usize = 1024;

/// How many threads may work on one thing here: 4 x the cores (a little
/// oversubscription does no harm, and a run made on a larger machine may
/// continue here), never more than [`MAX_THREADS`].
pub fn thread_limit() -> usize {
    cores().saturating_mul(4).min(MAX_THREADS)
}

/// `requested` threads (0 = every core) resolved, or an error saying why
/// the count is refused. Starting threads far beyond the cores gains
/// nothing and fails badly: with 100,000 the system runs out of stack
/// guard pages and the process aborts, so the count is checked before any
/// thread is started.
pub fn check_threads(requested: usize) -> crate::Result<usize> {
    let n = resolve_threads(requested);
    let limit = thread_limit();
    if n > limit {
        return Err(crate::Error::Config(format!(
            "threads = {requested} is more than this machine can use: at most {limit} \
             (4 x its {} cores, and never more than {MAX_THREADS}); more threads \
             than cores only wait for each other (0 = every core)",
            cores()
        )));
    }
    Ok(n)
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
    /// a new pool of that many. More than [`thread_limit`] is an error
    /// ([`check_threads`]), never an attempt.
    pub fn threads(threads: usize) -> crate::Result<Self> {
        let n = check_threads(threads)?;
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
