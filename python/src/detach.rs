//! Long work on a thread of its own, with the GIL released, while Python's
//! thread keeps answering signals and drawing progress.

use biprop::run;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What the worker thread of [`detached`] shares with the Python thread.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) stop: AtomicBool,
    pub(crate) epoch: AtomicUsize,
    pub(crate) samples: AtomicUsize,
    pub(crate) records: Mutex<Vec<run::EpochRecord>>,
}

/// Runs `work` on a thread of its own with the GIL released, while this
/// (Python's) thread waits, every 50 ms checking for signals (Ctrl-C stops
/// the work between two batches and raises KeyboardInterrupt) and calling
/// `tick` (progress bars).
pub(crate) fn detached<R: Send>(
    py: Python<'_>,
    shared: &Shared,
    work: impl FnOnce(&Shared) -> R + Send,
    mut tick: impl FnMut(Python<'_>, &Shared) -> PyResult<()>,
) -> PyResult<R> {
    let finished = (Mutex::new(false), std::sync::Condvar::new());
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            // Marks the work finished even if it panics.
            struct Done<'a>(&'a (Mutex<bool>, std::sync::Condvar));
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = true;
                    self.0 .1.notify_all();
                }
            }
            let _done = Done(&finished);
            work(shared)
        });
        let mut failure: Option<PyErr> = None;
        loop {
            let over = py.detach(|| {
                let (lock, cv) = &finished;
                let g = lock.lock().unwrap_or_else(|e| e.into_inner());
                let (g, _) = cv
                    .wait_timeout_while(g, Duration::from_millis(50), |done| !*done)
                    .unwrap_or_else(|e| e.into_inner());
                *g
            });
            if over {
                break;
            }
            if failure.is_none() {
                if let Err(e) = py.check_signals().and_then(|_| tick(py, shared)) {
                    shared.stop.store(true, Ordering::SeqCst);
                    failure = Some(e);
                }
            }
        }
        let r = py.detach(|| handle.join());
        if let Some(e) = failure {
            return Err(e);
        }
        tick(py, shared)?;
        r.map_err(|_| PyRuntimeError::new_err("biprop: the training thread panicked"))
    })
}
