//! NumPy (and buffer) arrays in and out: batches checked against the
//! network, labels and targets, weights and records as Python objects.

use biprop::run;
use biprop::train::{Tally, Trainer as Core};
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// One epoch's record as a dict of its metrics (feedback losses,
/// alignment angles and weight norms by name).
pub(crate) fn record_dict<'py>(
    py: Python<'py>,
    r: &run::EpochRecord,
) -> PyResult<Bound<'py, PyDict>> {
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
    for (k, v) in r.feedback.iter().chain(&r.alignment).chain(&r.norms) {
        d.set_item(k, *v)?;
    }
    Ok(d)
}

/// Every weight of `t` (the checkpoint names) as NumPy arrays.
pub(crate) fn weights<'py>(py: Python<'py>, t: &Core) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for x in t
        .net
        .named_tensors("forward")
        .into_iter()
        .chain(t.rule.feedback_tensors())
    {
        let a = PyArray1::from_slice(py, &x.stored()).reshape(x.shape.clone())?;
        d.set_item(x.name, a)?;
    }
    Ok(d)
}

/// A float32, C-contiguous 2-D array with `cols` columns.
pub(crate) fn inputs<'py>(
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
pub(crate) fn targets_into(
    y: &Bound<'_, PyAny>,
    rows: usize,
    classes: usize,
    t: &mut [f32],
) -> PyResult<()> {
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
pub(crate) fn labels_u8(y: &Bound<'_, PyAny>, rows: usize, classes: usize) -> PyResult<Vec<u8>> {
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

/// A batch's or an epoch's tally: its mean `loss`, `error` rate and `samples`.
pub(crate) fn tally_dict<'py>(py: Python<'py>, t: &Tally) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("loss", t.mean_loss())?;
    d.set_item("error", t.error_rate())?;
    d.set_item("samples", t.samples)?;
    Ok(d)
}
