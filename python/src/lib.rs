//! `biprop._native`: the Python extension over the biprop library. It stays
//! thin: settings become the TOML tables the CLI builds (one definition,
//! `RunConfig`), arrays are borrowed from NumPy, and the work runs with the
//! GIL released on the trainer's own threads. The Python package
//! (`python/biprop/__init__.py`) wraps it in the documented API.

mod arrays;
mod detach;
mod errors;
mod settings;
mod trainer;

use arrays::{record_dict, weights};
use biprop::checkpoint::Checkpoint;
use biprop::config::RunConfig;
use biprop::run::{self, InitFrom, RunOptions};
use biprop::state::CheckpointExt;
use detach::{detached, Shared};
use errors::{py_err, DivergedError};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use settings::resolve;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use trainer::Trainer;

/// `biprop.train`: one whole run, as `biprop train` makes it (files and all).
#[pyfunction]
#[pyo3(signature = (layers, explicit, out=None, resume=false, force=false, init_from=None, init_forward_from=None, on_progress=None, on_epoch=None))]
#[allow(clippy::too_many_arguments)]
fn train<'py>(
    py: Python<'py>,
    layers: &Bound<'py, PyList>,
    explicit: &Bound<'py, PyDict>,
    out: Option<PathBuf>,
    resume: bool,
    force: bool,
    init_from: Option<PathBuf>,
    init_forward_from: Option<PathBuf>,
    on_progress: Option<Bound<'py, PyAny>>,
    on_epoch: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cfg = resolve(layers, explicit)?;
    let dir = match out {
        Some(dir) => {
            if run::holds_run(&dir) && !force && !resume {
                return Err(PyValueError::new_err(format!(
                    "{} already holds a run; pass resume=True to continue it, force=True to overwrite it, or another out",
                    dir.display()
                )));
            }
            dir
        }
        None => run::fresh_run_dir(&cfg.run_name()),
    };
    let init = match (init_from, init_forward_from) {
        (Some(_), Some(_)) => {
            return Err(PyValueError::new_err(
                "init_from and init_forward_from exclude each other",
            ))
        }
        (Some(p), None) => Some(InitFrom::Everything(p)),
        (None, Some(p)) => Some(InitFrom::ForwardOnly(p)),
        (None, None) => None,
    };
    if init.is_some() && resume {
        return Err(PyValueError::new_err("resume excludes init_from"));
    }
    let splits = py.detach(|| run::load_data(&cfg)).map_err(py_err)?;
    let total = splits.train.len();
    let shared = Arc::new(Shared::default());
    let (s1, s2, s3) = (shared.clone(), shared.clone(), shared.clone());
    let opts = RunOptions {
        out_dir: Some(dir.clone()),
        init_from: init,
        resume,
        on_batch: Some(Arc::new(move |done| {
            s1.samples.store(done, Ordering::Relaxed);
            !s1.stop.load(Ordering::Relaxed)
        })),
        on_epoch: Some(Arc::new(move |r| {
            // The next epoch starts from no samples, and a reader that sees
            // its number must not see the last epoch's count with it.
            s2.samples.store(0, Ordering::Relaxed);
            s2.epoch.store(r.epoch, Ordering::Release);
            s2.records.lock().expect("records").push(r.clone());
        })),
        ..Default::default()
    };
    let mut reported = 0;
    let summary = detached(
        py,
        &s3,
        |_| run::run(&cfg, &splits, &opts),
        |py, sh| {
            if let Some(f) = &on_progress {
                let epoch = sh.epoch.load(Ordering::Acquire) + 1;
                f.call1((
                    epoch.min(cfg.epochs),
                    sh.samples.load(Ordering::Relaxed),
                    total,
                    cfg.epochs,
                ))?;
            }
            let recs = sh.records.lock().expect("records").clone();
            if let Some(f) = &on_epoch {
                for r in &recs[reported..] {
                    f.call1((record_dict(py, r)?,))?;
                }
            }
            reported = recs.len();
            Ok(())
        },
    )?
    .map_err(py_err)?;
    let d = PyDict::new(py);
    let records = PyList::empty(py);
    for r in &summary.records {
        records.append(record_dict(py, r)?)?;
    }
    d.set_item("records", records)?;
    d.set_item("weights", weights(py, &summary.trainer)?)?;
    d.set_item("dir", dir)?;
    d.set_item("config", cfg.to_toml())?;
    Ok(d)
}

/// `biprop.load`: a trainer from a checkpoint (of `Trainer.save` or of a run).
#[pyfunction]
fn load(path: PathBuf) -> PyResult<Trainer> {
    let ck = Checkpoint::load(&path).map_err(py_err)?;
    let cfg = ck.config().map_err(py_err)?;
    let ((c, h, w), classes) = ck.io_shape().map_err(py_err)?;
    let image = biprop::layers::Shape::new(c, h, w);
    let standardize = ck.standardize(&cfg, image).map_err(py_err)?;
    let mut core =
        run::build_trainer_sized(&cfg, image, classes, None, standardize).map_err(py_err)?;
    if ck.metadata.contains_key("steps") {
        ck.restore_trainer(&mut core).map_err(py_err)?;
    } else {
        ck.restore(&mut core.net, core.rule.as_mut())
            .map_err(py_err)?;
    }
    Ok(Trainer::from_core(core, cfg, ck.epoch().unwrap_or(0)))
}

/// The names of every rule, in the order the docs list them.
#[pyfunction]
fn rules() -> Vec<&'static str> {
    biprop::rules::RuleKind::ALL
        .iter()
        .map(|r| r.name())
        .collect()
}

/// Every setting and its default, as TOML.
#[pyfunction]
fn default_config() -> String {
    RunConfig::default().to_toml()
}

/// The `biprop` command line (`argv` with the program name first), run in
/// this process: the Rust binary's code, so the two cannot drift apart.
/// Returns the exit code. The GIL is released meanwhile; Ctrl-C is the
/// caller's to arrange (`biprop.__main__` restores the default action, as
/// the binary has), since the command has no way to be stopped early.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> i32 {
    py.detach(|| {
        let code = biprop::cli::main_with_args(argv);
        // A binary's stdout is flushed when its `main` returns; a library's
        // is not, and Python exits without knowing of Rust's buffer.
        let _ = std::io::Write::flush(&mut std::io::stdout());
        code
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(rules, m)?)?;
    m.add_function(wrap_pyfunction!(default_config, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_class::<Trainer>()?;
    m.add("DivergedError", m.py().get_type::<DivergedError>())?;
    Ok(())
}
