//! Data sets: readers, the train/validation/test split, and batching.

pub mod augment;
pub mod cifar;
pub mod download;
pub mod idx;
pub mod mnist;
pub mod standardize;

mod dataset;

pub use augment::Augment;
pub use dataset::{Dataset, DatasetKind, Splits, DATA_ENV};
pub use standardize::{Normalize, Standardize};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

impl DatasetKind {
    /// The name of class `k`: CIFAR-10's class names, else the label number.
    pub fn class_name(self, k: usize) -> String {
        match self {
            DatasetKind::Cifar10 => cifar::NAMES[k % cifar::CLASSES].to_string(),
            _ => k.to_string(),
        }
    }
}

/// Where to look for data: the explicit folder, else `$BIPROP_DATA`.
pub fn local_data_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(DATA_ENV).map(PathBuf::from))
}

/// Loads the training and test sets of `kind`.
///
/// MNIST comes from `data_dir`, else `$BIPROP_DATA`, else the download cache
/// (fetched when missing); `idx` needs a folder. `classes` bounds the labels
/// of `idx` data sets.
pub fn load(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    classes: usize,
) -> Result<(Dataset, Dataset)> {
    match kind {
        DatasetKind::Mnist => {
            let dir = match local_data_dir(data_dir) {
                Some(d) => d,
                None => download::ensure_mnist(&download::cache_dir()?)?,
            };
            mnist::load_dir(&dir, 10, true)
        }
        DatasetKind::Idx => {
            let dir = local_data_dir(data_dir).ok_or_else(|| {
                Error::Config(format!(
                    "--dataset idx needs --data-dir DIR (or ${DATA_ENV}) holding \
                     train-images-idx3-ubyte, train-labels-idx1-ubyte, \
                     t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz)"
                ))
            })?;
            mnist::load_dir(&dir, classes, false)
        }
        DatasetKind::Cifar10 => {
            let dir = match local_data_dir(data_dir) {
                Some(d) => d,
                None => download::ensure_cifar10(&download::cache_dir()?)?,
            };
            cifar::load_dir(&dir)
        }
    }
}
