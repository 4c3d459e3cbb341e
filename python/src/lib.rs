//! `biprop._native`: the Python extension over the biprop library. It stays
//! thin: settings become the TOML tables the CLI builds (one definition,
//! `RunConfig`), arrays are borrowed from NumPy, and the work runs with the
//! GIL released on the trainer's own threads. The Python package
//! (`python/biprop/__init__.py`) wraps it in the documented API.

use biprop::checkpoint::Checkpoint;
use biprop::config::RunConfig;
use biprop::metrics::AlignmentProbe;
use biprop::run::{self, InitFrom, RunOptions};
use biprop::state::{self, CheckpointExt};
use biprop::train::{Tally, Trainer as Core};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{
    PyKeyboardInterrupt, PyMemoryError, PyOSError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pyo3::create_exception!(
    _native,
    DivergedError,
    PyRuntimeError,
    "Training diverged: a batch's or an epoch's loss, or the network's outputs, were not finite numbers."
);

/// The Python exception for a library error, with the CLI's message.
fn py_err(e: biprop::Error) -> PyErr {
    let msg = e.to_string();
    match e.root() {
        biprop::Error::Io { .. } | biprop::Error::Missing(_) | biprop::Error::Checksum { .. } => {
            PyOSError::new_err(msg)
        }
        biprop::Error::Diverged { .. } | biprop::Error::NonFinite { .. } => {
            DivergedError::new_err(msg)
        }
        biprop::Error::Memory(_) => PyMemoryError::new_err(msg),
        biprop::Error::Interrupted { .. } => PyKeyboardInterrupt::new_err(msg),
        biprop::Error::Threads(_) => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// A Python setting as a TOML value: bool, int, float, str (or a path),
/// and lists of them; `None` leaves the setting at its default.
fn to_toml(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Option<toml::Value>> {
    if v.is_none() {
        return Ok(None);
    }
    // bool before int: Python's bool is an int.
    if v.is_instance_of::<PyBool>() {
        return Ok(Some(toml::Value::Boolean(v.extract()?)));
    }
    if v.is_instance_of::<PyInt>() {
        return Ok(Some(toml::Value::Integer(v.extract()?)));
    }
    if v.is_instance_of::<PyFloat>() {
        return Ok(Some(toml::Value::Float(v.extract()?)));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(Some(toml::Value::String(v.extract()?)));
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for item in v.try_iter()? {
            if let Some(x) = to_toml(key, &item?)? {
                out.push(x);
            }
        }
        return Ok(Some(toml::Value::Array(out)));
    }
    if let Ok(p) = v.extract::<PathBuf>() {
        return Ok(Some(toml::Value::String(p.to_string_lossy().into_owned())));
    }
    // numpy scalars and other numbers.
    if let Ok(i) = v.extract::<i64>() {
        return Ok(Some(toml::Value::Integer(i)));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Ok(Some(toml::Value::Float(f)));
    }
    Err(PyTypeError::new_err(format!(
        "setting {key}: expected a bool, number, string or list, got {}",
        v.get_type().name()?
    )))
}

/// A dict of settings as a TOML table.
fn to_table(d: &Bound<'_, PyDict>) -> PyResult<toml::Table> {
    let mut t = toml::Table::new();
    for (k, v) in d.iter() {
        let key: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err("setting names must be strings"))?;
        if let Some(v) = to_toml(&key, &v)? {
            t.insert(key, v);
        }
    }
    Ok(t)
}

/// The configuration from `layers` (dicts, or paths of TOML files), then the
/// explicit keyword settings; an explicit setting with no effect on the run
/// is refused, as the CLI refuses its flag.
fn resolve(layers: &Bound<'_, PyList>, explicit: &Bound<'_, PyDict>) -> PyResult<RunConfig> {
    let mut tables = Vec::new();
    for layer in layers.iter() {
        if let Ok(d) = layer.cast::<PyDict>() {
            tables.push(to_table(d)?);
        } else {
            let path: PathBuf = layer.extract().map_err(|_| {
                PyTypeError::new_err("config: expected a dict of settings or a TOML file's path")
            })?;
            tables.push(biprop::config::read_table(&path).map_err(py_err)?);
        }
    }
    let explicit = to_table(explicit)?;
    tables.push(explicit.clone());
    let cfg = RunConfig::from_layers(&tables).map_err(py_err)?;
    if let Some((key, why)) = cfg.first_unused_in(&explicit) {
        return Err(PyValueError::new_err(format!(
            "{key} has no effect on this run: {why}"
        )));
    }
    Ok(cfg)
}

/// What the worker thread of [`detached`] shares with the Python thread.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    epoch: AtomicUsize,
    samples: AtomicUsize,
    records: Mutex<Vec<run::EpochRecord>>,
}

/// Runs `work` on a thread of its own with the GIL released, while this
/// (Python's) thread waits, every 50 ms checking for signals (Ctrl-C stops
/// the work between two batches and raises KeyboardInterrupt) and calling
/// `tick` (progress bars).
fn detached<R: Send>(
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

fn record_dict<'py>(py: Python<'py>, r: &run::EpochRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epoch", r.epoch)?;
    for (k, v) in [
        ("train_loss", r.train_loss),
        ("train_error", r.train_error),
        ("val_loss", r.val_loss),
        ("val_error", r.val_error),
        ("test_loss", r.test_loss),
        ("test_error", r.test_error),
        ("train_seconds", r.train_seconds),
        ("seconds", r.seconds),
    ] {
        d.set_item(k, v)?;
    }
    for (k, v) in r.feedback.iter().chain(&r.alignment) {
        d.set_item(k, *v)?;
    }
    Ok(d)
}

/// Every weight of `t` (the checkpoint names) as NumPy arrays.
fn weights<'py>(py: Python<'py>, t: &Core) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for x in t
        .net
        .named_tensors("forward")
        .into_iter()
        .chain(t.rule.feedback_tensors())
    {
        let a = PyArray1::from_slice(py, x.data).reshape(x.shape.clone())?;
        d.set_item(x.name, a)?;
    }
    Ok(d)
}

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

/// The mutable part of a [`Trainer`].
struct State {
    core: Core,
    cfg: RunConfig,
    /// Epochs trained by `fit_epoch` (each shuffles by (seed, epoch), as runs do).
    epochs: usize,
    /// One batch of inputs and one-hot targets, gathered for `fit_epoch`.
    x: Vec<f32>,
    t: Vec<f32>,
}

/// A network, its rule and its optimizer, for the caller's own data and loop.
#[pyclass(module = "biprop._native")]
struct Trainer {
    state: Mutex<State>,
}

/// A float32, C-contiguous 2-D array with `cols` columns.
fn inputs<'py>(
    x: &Bound<'py, PyAny>,
    name: &str,
    cols: usize,
) -> PyResult<numpy::PyReadonlyArray2<'py, f32>> {
    let arr = x.cast::<PyArray2<f32>>().map_err(|_| {
        let what = match x.getattr("dtype") {
            Ok(dt) => match x.getattr("ndim") {
                Ok(nd) => format!("a {nd}-D array of {dt}"),
                Err(_) => format!("{dt}"),
            },
            Err(_) => x
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default(),
        };
        PyTypeError::new_err(format!(
            "{name} must be a 2-D numpy array of float32, got {what} (convert with np.asarray({name}, dtype=np.float32))"
        ))
    })?;
    let ro = arr
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
    if !ro.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{name} must be C-contiguous (row-major); use np.ascontiguousarray({name})"
        )));
    }
    if ro.shape()[1] != cols {
        return Err(PyValueError::new_err(format!(
            "{name} has {} columns, the network takes {cols} inputs",
            ro.shape()[1]
        )));
    }
    Ok(ro)
}

/// Class labels (1-D int64, each below `classes`) as one-hot rows in `t`,
/// or one-hot / soft targets given as a 2-D float32 array.
fn targets_into(y: &Bound<'_, PyAny>, rows: usize, classes: usize, t: &mut [f32]) -> PyResult<()> {
    if let Ok(labels) = y.cast::<PyArray1<i64>>() {
        let ro = labels
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("y: {e}")))?;
        let l = ro
            .as_slice()
            .map_err(|_| PyValueError::new_err("y must be contiguous"))?;
        if l.len() != rows {
            return Err(PyValueError::new_err(format!(
                "y has {} labels for {rows} rows of x",
                l.len()
            )));
        }
        t[..rows * classes].fill(0.0);
        for (r, &k) in l.iter().enumerate() {
            if k < 0 || k as usize >= classes {
                return Err(PyValueError::new_err(format!(
                    "y[{r}] = {k}: labels must be in 0..{classes}"
                )));
            }
            t[r * classes + k as usize] = 1.0;
        }
        return Ok(());
    }
    if let Ok(onehot) = y.cast::<PyArray2<f32>>() {
        let ro = onehot
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("y: {e}")))?;
        if ro.shape() != [rows, classes] {
            return Err(PyValueError::new_err(format!(
                "y has shape {:?}; one-hot targets must be [{rows}, {classes}]",
                ro.shape()
            )));
        }
        let v = ro
            .as_slice()
            .map_err(|_| PyValueError::new_err("y must be C-contiguous"))?;
        t[..rows * classes].copy_from_slice(v);
        return Ok(());
    }
    Err(PyTypeError::new_err(
        "y must be a 1-D array of integer labels (int64) or a 2-D float32 array of one-hot targets",
    ))
}

/// Labels as bytes for evaluation.
fn labels_u8(y: &Bound<'_, PyAny>, rows: usize, classes: usize) -> PyResult<Vec<u8>> {
    let mut t = vec![0.0f32; rows * classes];
    targets_into(y, rows, classes, &mut t)?;
    Ok(t.chunks_exact(classes)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| if v > b.1 { (i, v) } else { b },
                )
                .0 as u8
        })
        .collect())
}

fn tally_dict<'py>(py: Python<'py>, t: &Tally) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("loss", t.mean_loss())?;
    d.set_item("error", t.error_rate())?;
    d.set_item("samples", t.samples)?;
    Ok(d)
}

impl State {
    /// Checks a batch `x`, `y` against the network and the batch buffers
    /// (`what` names the batch in the error) and writes its targets into
    /// `t`; returns `x` and its rows.
    fn batch<'py>(
        &mut self,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        what: &str,
    ) -> PyResult<(numpy::PyReadonlyArray2<'py, f32>, usize)> {
        let (n, c) = (self.core.net.inputs(), self.core.net.outputs());
        let xs = inputs(x, "x", n)?;
        let rows = xs.shape()[0];
        if rows == 0 || rows > self.core.max_rows() {
            return Err(PyValueError::new_err(format!(
                "x has {rows} rows; {what} holds 1 to {} (batch_size)",
                self.core.max_rows()
            )));
        }
        targets_into(y, rows, c, &mut self.t)?;
        Ok((xs, rows))
    }
}

impl Trainer {
    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| PyRuntimeError::new_err("a previous call panicked"))
    }

    /// Checks the batch `x`, `y` (`what` names it in errors), loads it into
    /// the trainer and runs `f` on it with the GIL released.
    fn on_batch<'py, R: Send>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        what: &str,
        f: impl FnOnce(&mut Core, usize) -> biprop::Result<R> + Send,
    ) -> PyResult<R> {
        let mut guard = self.lock()?;
        let st = &mut *guard;
        let c = st.core.net.outputs();
        let (xs, rows) = st.batch(x, y, what)?;
        let xv = xs.as_slice().expect("checked contiguous");
        let (core, t) = (&mut st.core, &st.t[..rows * c]);
        py.detach(|| {
            core.load_rows(xv, t, rows)?;
            f(core, rows)
        })
        .map_err(py_err)
    }

    fn from_core(core: Core, cfg: RunConfig, epochs: usize) -> Self {
        let rows = core.max_rows();
        let (n, c) = (core.net.inputs(), core.net.outputs());
        Self {
            state: Mutex::new(State {
                core,
                cfg,
                epochs,
                x: vec![0.0; rows * n],
                t: vec![0.0; rows * c],
            }),
        }
    }
}

#[pymethods]
impl Trainer {
    #[new]
    #[pyo3(signature = (sizes, layers, explicit, image=None, classes=None))]
    fn new(
        sizes: Option<Vec<usize>>,
        layers: &Bound<'_, PyList>,
        explicit: &Bound<'_, PyDict>,
        image: Option<(usize, usize, usize)>,
        classes: Option<usize>,
    ) -> PyResult<Self> {
        if let Some(sizes) = &sizes {
            if sizes.len() < 2 || sizes.contains(&0) {
                return Err(PyValueError::new_err(format!(
                    "sizes must list at least the input and output widths, all positive, e.g. [784, 800, 10]; got {sizes:?}"
                )));
            }
            let all = PyDict::new(layers.py());
            let hidden: Vec<usize> = sizes[1..sizes.len() - 1].to_vec();
            all.set_item("hidden", hidden)?;
            layers.insert(0, all)?;
        }
        let cfg = resolve(layers, explicit)?;
        cfg.validate().map_err(py_err)?;
        let (shape, classes) = network_io(&cfg, sizes.as_deref(), image, classes)?;
        let core = run::build_trainer_sized(&cfg, shape, classes, None).map_err(py_err)?;
        Ok(Self::from_core(core, cfg, 0))
    }

    /// The resolved settings, as TOML.
    fn config(&self) -> PyResult<String> {
        Ok(self.lock()?.cfg.to_toml())
    }

    /// Widths of every layer, input to output.
    fn sizes(&self) -> PyResult<Vec<usize>> {
        Ok(self.lock()?.core.net.sizes())
    }

    /// Optimizer steps taken.
    fn steps(&self) -> PyResult<u64> {
        Ok(self.lock()?.core.steps())
    }

    /// Epochs trained by `fit_epoch` (or stored in the loaded checkpoint).
    fn epochs(&self) -> PyResult<usize> {
        Ok(self.lock()?.epochs)
    }

    fn step<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let tally = self.on_batch(py, x, y, "a batch", |core, rows| core.step(rows))?;
        tally_dict(py, &tally)
    }

    #[pyo3(signature = (x, y, batch_size=None, shuffle=true, on_progress=None))]
    fn fit_epoch<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        batch_size: Option<usize>,
        shuffle: bool,
        on_progress: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut guard = self.lock()?;
        let st = &mut *guard;
        let (n, c) = (st.core.net.inputs(), st.core.net.outputs());
        let xs = inputs(x, "x", n)?;
        let rows = xs.shape()[0];
        let batch = batch_size.unwrap_or(st.cfg.batch_size);
        if batch == 0 || batch > st.core.max_rows() {
            return Err(PyValueError::new_err(format!(
                "batch_size {batch}: must be 1 to {} (the batch_size the trainer was made with)",
                st.core.max_rows()
            )));
        }
        let mut targets = vec![0.0f32; rows * c];
        targets_into(y, rows, c, &mut targets)?;
        let xv = xs.as_slice().expect("checked contiguous");
        // Checked whole, so that an error names the caller's row, not a batch's.
        biprop::train::check_finite("x", xv, n).map_err(py_err)?;
        biprop::train::check_finite("y", &targets, c).map_err(py_err)?;
        let epoch = st.epochs + 1;
        let mut order: Vec<usize> = (0..rows).collect();
        if shuffle {
            run::epoch_order(st.cfg.seed, epoch, &mut order);
        }
        let shared = Shared::default();
        let State {
            core, x: xb, t: tb, ..
        } = st;
        let tally = detached(
            py,
            &shared,
            |sh| {
                // The whole epoch on the trainer's pool, as a run's epoch: the
                // steps' products then split without waking idle threads.
                let par = core.parallelism().clone();
                par.install(|| {
                    let mut total = Tally::default();
                    for chunk in order.chunks(batch) {
                        if sh.stop.load(Ordering::Relaxed) {
                            return Ok(None);
                        }
                        for (r, &i) in chunk.iter().enumerate() {
                            xb[r * n..(r + 1) * n].copy_from_slice(&xv[i * n..(i + 1) * n]);
                            tb[r * c..(r + 1) * c].copy_from_slice(&targets[i * c..(i + 1) * c]);
                        }
                        let k = chunk.len();
                        core.load_rows(&xb[..k * n], &tb[..k * c], k)?;
                        let t = core.step(k)?;
                        total.loss += t.loss;
                        total.errors += t.errors;
                        total.samples += t.samples;
                        sh.samples.store(total.samples, Ordering::Relaxed);
                    }
                    Ok(Some(total))
                })
            },
            |_, sh| match &on_progress {
                Some(f) => f
                    .call1((sh.samples.load(Ordering::Relaxed), rows))
                    .map(|_| ()),
                None => Ok(()),
            },
        )?
        .map_err(py_err)?;
        let Some(tally) = tally else {
            return Err(PyKeyboardInterrupt::new_err("interrupted"));
        };
        st.epochs = epoch;
        tally_dict(py, &tally)
    }

    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let mut st = self.lock()?;
        let (n, c) = (st.core.net.inputs(), st.core.net.outputs());
        let xs = inputs(x, "x", n)?;
        let rows = xs.shape()[0];
        let xv = xs.as_slice().expect("checked contiguous");
        let mut out = vec![0.0f32; rows * c];
        let core = &mut st.core;
        py.detach(|| core.predict_into(xv, &mut out))
            .map_err(py_err)?;
        PyArray1::from_vec(py, out).reshape([rows, c])
    }

    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut st = self.lock()?;
        let (n, c) = (st.core.net.inputs(), st.core.net.outputs());
        if c > 256 {
            return Err(PyValueError::new_err("evaluate: at most 256 classes"));
        }
        let xs = inputs(x, "x", n)?;
        let rows = xs.shape()[0];
        let labels = labels_u8(y, rows, c)?;
        let xv = xs.as_slice().expect("checked contiguous");
        let core = &mut st.core;
        let tally = py
            .detach(|| core.evaluate_slices(xv, &labels))
            .map_err(py_err)?;
        tally_dict(py, &tally)
    }

    fn alignment<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let named = self.on_batch(py, x, y, "the alignment batch", |core, rows| {
            let mut probe = AlignmentProbe::new(core);
            let par = core.parallelism().clone();
            Ok(par.install(|| probe.measure(core, rows)).named())
        })?;
        let d = PyDict::new(py);
        for (k, v) in named {
            d.set_item(k.trim_start_matches("align_"), v)?;
        }
        Ok(d)
    }

    /// What the rule's feedback network (BFA's) generates from each row of
    /// label vectors `[rows, classes]`: `[rows, inputs]`, the paper's Figure 6.
    fn generate<'py>(
        &self,
        py: Python<'py>,
        labels: numpy::PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        use biprop::generate::LabelMix;
        let st = self.lock()?;
        let Some(feedback) = st.core.rule.feedback_network() else {
            return Err(PyValueError::new_err(format!(
                "generate: the rule {} has no feedback network; only BFA's generates images",
                st.core.rule.kind().name()
            )));
        };
        let mixes: Vec<LabelMix> = labels
            .as_array()
            .rows()
            .into_iter()
            .map(|r| LabelMix {
                caption: String::new(),
                weights: r.to_vec(),
            })
            .collect();
        let n = feedback.outputs();
        let tiles = py
            .detach(|| biprop::generate::generate(feedback, &mixes))
            .map_err(py_err)?;
        let rows = tiles.len();
        let pixels: Vec<f32> = tiles.into_iter().flat_map(|t| t.pixels).collect();
        PyArray1::from_vec(py, pixels).reshape([rows, n])
    }

    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        weights(py, &self.lock()?.core)
    }

    fn load_state_dict(&self, state: &Bound<'_, PyDict>) -> PyResult<()> {
        let mut tensors = BTreeMap::new();
        for (k, v) in state.iter() {
            let name: String = k
                .extract()
                .map_err(|_| PyTypeError::new_err("state dict keys must be strings"))?;
            let arr = v.cast::<numpy::PyArrayDyn<f32>>().map_err(|_| {
                PyTypeError::new_err(format!("state dict {name}: expected a float32 numpy array"))
            })?;
            let ro = arr.readonly();
            let shape = ro.shape().to_vec();
            let data: Vec<f32> = ro.as_array().iter().copied().collect();
            tensors.insert(name, (shape, data));
        }
        let mut st = self.lock()?;
        let core = &mut st.core;
        let meta =
            std::collections::HashMap::from([("rule".to_string(), core.rule.kind().to_string())]);
        let ck = Checkpoint::from_tensors(tensors, meta, "state dict");
        ck.restore(&mut core.net, core.rule.as_mut())
            .map_err(py_err)
    }

    /// Writes a checkpoint (weights, optimizer state, settings), as runs do.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let mut guard = self.lock()?;
        let st = &mut *guard;
        let n = st.core.net.inputs();
        let side = (n as f64).sqrt() as usize;
        let image = if side * side == n {
            (1, side, side)
        } else {
            (1, 1, n)
        };
        state::save_trainer(&path, &mut st.core, &st.cfg, st.epochs, image).map_err(py_err)
    }
}

/// The input shape and class count of a new trainer: an MLP's from its
/// `sizes`, a described network's (`net`, `layers`) from `image` and
/// `classes` (a preset's data set by default, 10 classes).
fn network_io(
    cfg: &RunConfig,
    sizes: Option<&[usize]>,
    image: Option<(usize, usize, usize)>,
    classes: Option<usize>,
) -> PyResult<(biprop::layers::Shape, usize)> {
    use biprop::layers::{spec::Preset, Shape};
    let described = cfg.layer_description().is_some();
    match (sizes, described) {
        (Some(_), true) => Err(PyValueError::new_err(
            "sizes gives an MLP's widths, net or layers names every layer: give one",
        )),
        (Some(s), false) => {
            let shape = match image {
                Some((c, h, w)) if c * h * w != s[0] => {
                    return Err(PyValueError::new_err(format!(
                        "image {c}x{h}x{w} holds {} values, sizes[0] is {}",
                        c * h * w,
                        s[0]
                    )))
                }
                Some((c, h, w)) => Shape::new(c, h, w),
                None => Shape::flat(s[0]),
            };
            Ok((shape, classes.unwrap_or(s[s.len() - 1])))
        }
        (None, false) => Err(PyValueError::new_err(
            "give sizes (an MLP's widths, e.g. [784, 800, 10]) or net=/layers= (every layer)",
        )),
        (None, true) => {
            let (c, h, w) = match (image, cfg.net) {
                (Some(i), _) => i,
                (None, Some(Preset::LenetMnist)) => (1, 28, 28),
                (None, Some(Preset::LenetCifar)) => (3, 32, 32),
                (None, None) => {
                    return Err(PyValueError::new_err(
                        "layers= needs the input's shape: image=(channels, height, width)",
                    ))
                }
            };
            if c * h * w == 0 {
                return Err(PyValueError::new_err("image sizes must be positive"));
            }
            Ok((Shape::new(c, h, w), classes.unwrap_or(10)))
        }
    }
}

/// `biprop.load`: a trainer from a checkpoint (of `Trainer.save` or of a run).
#[pyfunction]
fn load(path: PathBuf) -> PyResult<Trainer> {
    let ck = Checkpoint::load(&path).map_err(py_err)?;
    let cfg = ck.config().map_err(py_err)?;
    let ((c, h, w), classes) = ck.io_shape().map_err(py_err)?;
    let image = biprop::layers::Shape::new(c, h, w);
    let mut core = run::build_trainer_sized(&cfg, image, classes, None).map_err(py_err)?;
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
