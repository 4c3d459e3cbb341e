//! Library errors as Python exceptions, with the command line's messages.

use pyo3::exceptions::{
    PyKeyboardInterrupt, PyMemoryError, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    DivergedError,
    PyRuntimeError,
    "Training diverged: a batch's or an epoch's loss, or the network's outputs, were not finite numbers."
);

/// The Python exception for a library error, with the CLI's message.
pub(crate) fn py_err(e: biprop::Error) -> PyErr {
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
