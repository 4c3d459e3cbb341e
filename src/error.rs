//! The library's error type: every failure names the file or option at fault
//! and what was expected, so the command line can print it as it is.

use std::path::PathBuf;

/// Everything that can go wrong in biprop, short of a bug.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    // Not a `#[source]`: the message already includes it, and a source
    // would print twice in an error chain (`error: x: not found: not found`).
    #[error("{}: {err}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        err: std::io::Error,
    },
    /// A data file whose content is not what its format requires.
    #[error("{}: {msg}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What was wrong, and what was expected.
        msg: String,
    },
    /// A file whose checksum differs from the published one.
    #[error("{}: checksum mismatch: expected {algo} {expected}, got {actual}", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The hash algorithm.
        algo: &'static str,
        /// The published digest.
        expected: String,
        /// The digest of the file on disk.
        actual: String,
    },
    /// A data set that is not on disk and could not be downloaded.
    #[error("{0}")]
    Missing(String),
    /// A configuration value that makes no sense.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Training whose loss stopped being a finite number.
    #[error("training diverged in epoch {epoch}: train loss {loss}; lower the learning rate")]
    Diverged {
        /// The 1-based epoch whose mean training loss was not finite.
        epoch: usize,
        /// That loss.
        loss: f64,
    },
    /// Training or evaluation whose outputs are not finite numbers (a
    /// step's or an evaluation chunk's loss is NaN or infinite): the
    /// weights have diverged, and no metric is computed from such outputs.
    #[error("{what}")]
    NonFinite {
        /// What was not finite, and what to do about it.
        what: String,
        /// The loss that was not finite.
        loss: f64,
    },
    /// Values given to the library that it cannot compute with (NaN or
    /// infinity in inputs or targets), named by their first bad row.
    #[error("{0}")]
    BadInput(String),
    /// A run that needs more memory than the machine has, refused before
    /// anything was allocated: the estimate and its largest parts.
    #[error("{0}")]
    Memory(String),
    /// A run stopped on request between two batches (Ctrl-C in Python).
    #[error("interrupted in epoch {epoch}; the checkpoint holds the epochs before it")]
    Interrupted {
        /// The 1-based epoch that was stopped.
        epoch: usize,
    },
    /// Inputs whose sizes do not fit together (images and a network, tiles and a grid).
    #[error("size mismatch: {0}")]
    Mismatch(String),
    /// The worker threads could not be started.
    #[error("threads: {0}")]
    Threads(String),
    /// A failure inside one run of a sweep, named by the run.
    #[error("{run}: {err}")]
    InRun {
        /// The run: its index and id in the sweep.
        run: String,
        /// What went wrong.
        err: Box<Error>,
    },
    /// A write of a finished epoch's metrics or checkpoint that failed (a
    /// full disk): the run stopped, its folder still holds the epoch before.
    #[error("{err}; epoch {epoch} was not saved: {}", kept_line(*.epoch))]
    NotSaved {
        /// The 1-based epoch whose results were lost.
        epoch: usize,
        /// The failed write.
        err: Box<Error>,
    },
    /// A checkpoint that does not fit the network or the rule.
    #[error("{}: {msg}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What did not fit.
        msg: String,
    },
}

impl Error {
    /// The error at the bottom of [`Error::InRun`] wrappers.
    pub fn root(&self) -> &Error {
        match self {
            Error::InRun { err, .. } | Error::NotSaved { err, .. } => err.root(),
            e => e,
        }
    }

    /// [`Error::NonFinite`] in a run's epoch `epoch` as [`Error::Diverged`]
    /// (what a sweep records as a diverged cell); other errors as they are.
    pub fn diverged_in(self, epoch: usize) -> Self {
        match self {
            Error::NonFinite { loss, .. } => Error::Diverged { epoch, loss },
            e => e,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err,
        }
    }

    /// A format error in `path`.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// What [`Error::NotSaved`] says is left of a run stopped in `epoch`.
fn kept_line(epoch: usize) -> String {
    match epoch {
        0 | 1 => "the folder holds no checkpoint yet; a rerun starts over".into(),
        e => format!(
            "the checkpoint still holds epoch {}, and resuming continues from it",
            e - 1
        ),
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
