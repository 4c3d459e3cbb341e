//! Python settings as the TOML tables the command line builds, so both
//! reach the run through one definition (`RunConfig`).

use crate::errors::py_err;
use biprop::config::RunConfig;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::path::PathBuf;

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
pub(crate) fn resolve(
    layers: &Bound<'_, PyList>,
    explicit: &Bound<'_, PyDict>,
) -> PyResult<RunConfig> {
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

/// The input shape and class count of a new trainer: an MLP's from its
/// `sizes`, a described network's (`net`, `layers`) from `image` and
/// `classes` (a preset's data set by default, 10 classes).
pub(crate) fn network_io(
    cfg: &RunConfig,
    sizes: Option<&[usize]>,
    image: Option<(usize, usize, usize)>,
    classes: Option<usize>,
) -> PyResult<(biprop::layers::Shape, usize)> {
    use biprop::layers::Shape;
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
                (None, Some(p)) => p.image(),
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
