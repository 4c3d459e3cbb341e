//! `biprop.Trainer`: a network, its rule and its optimizer, driven by the
//! caller's own data and loop.

use crate::arrays::{inputs, labels_u8, tally_dict, targets_into, weights};
use crate::detach::{detached, Shared};
use crate::errors::py_err;
use crate::settings::{network_io, resolve};
use biprop::checkpoint::Checkpoint;
use biprop::config::RunConfig;
use biprop::metrics::AlignmentProbe;
use biprop::run;
use biprop::state::{self, CheckpointExt};
use biprop::train::{Tally, Trainer as Core};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// The mutable part of a [`Trainer`].
pub(crate) struct State {
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
pub(crate) struct Trainer {
    state: Mutex<State>,
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

    pub(crate) fn from_core(core: Core, cfg: RunConfig, epochs: usize) -> Self {
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
        let core = run::build_trainer_sized(&cfg, shape, classes, None, None).map_err(py_err)?;
        Ok(Self::from_core(core, cfg, 0))
    }

    /// The resolved settings, as TOML.
    fn config(&self) -> PyResult<String> {
        Ok(self.lock()?.cfg.to_toml())
    }

    /// One sample's input as `(channels, height, width)`; an MLP's is
    /// `(inputs, 1, 1)`.
    fn input_shape(&self) -> PyResult<(usize, usize, usize)> {
        let s = self.lock()?.core.net.input;
        Ok((s.c, s.h, s.w))
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

    /// `(mean, std)` per input channel, with which every input is
    /// standardized (`normalize = "channel"`), else None.
    #[allow(clippy::type_complexity)]
    fn input_statistics<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Option<(Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<f32>>)>> {
        let st = self.lock()?;
        Ok(st.core.standardize().map(|s| {
            (
                PyArray1::from_slice(py, s.mean()),
                PyArray1::from_slice(py, s.std()),
            )
        }))
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
        core.set_epoch(epoch);
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
                        core.augment_loaded(chunk);
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
        let mut pixels: Vec<f32> = tiles.into_iter().flat_map(|t| t.pixels).collect();
        // A standardized trainer generates standardized inputs: back to pixels.
        if let Some(s) = st.core.standardize() {
            s.invert(&mut pixels);
        }
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
        let s = st.core.net.input;
        let n = s.len();
        let side = (n as f64).sqrt() as usize;
        // Images keep their shape; flat inputs of a square size are drawn
        // as square images (784 as 28x28), as before networks of layers.
        let image = if s.h > 1 || s.c > 1 || side * side != n {
            (s.c, s.h, s.w)
        } else {
            (1, side, side)
        };
        state::save_trainer(&path, &mut st.core, &st.cfg, st.epochs, image).map_err(py_err)
    }
}
