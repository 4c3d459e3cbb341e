//! A data set in memory, the kinds biprop reads, and the train/validation/test split.

use crate::error::{Error, Result};
use crate::tensor::Matrix;
use serde::{Deserialize, Serialize};

/// The environment variable that points at a folder of local data sets.
pub const DATA_ENV: &str = "BIPROP_DATA";

/// A labelled data set in memory: inputs scaled to [0, 1], one row a sample.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `n x d` inputs.
    pub inputs: Matrix,
    /// `n` labels, each below `classes`.
    pub labels: Vec<u8>,
    /// Number of classes.
    pub classes: usize,
    /// Image layout of one input: (channels, height, width); channel-planar.
    pub image: (usize, usize, usize),
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Input width.
    pub fn features(&self) -> usize {
        self.inputs.cols()
    }

    /// Samples `range` as a new data set.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Dataset {
        let d = self.features();
        let data = self.inputs.as_slice()[range.start * d..range.end * d].to_vec();
        Dataset {
            inputs: Matrix::from_vec(range.len(), d, data).expect("slice shape"),
            labels: self.labels[range].to_vec(),
            classes: self.classes,
            image: self.image,
        }
    }

    /// Copies samples `idx` into the first rows of `x` and their one-hot labels into `y`.
    pub fn gather(&self, idx: &[usize], x: &mut Matrix, y: &mut Matrix) {
        let d = self.features();
        for (r, &i) in idx.iter().enumerate() {
            x.row_mut(r)
                .copy_from_slice(&self.inputs.as_slice()[i * d..(i + 1) * d]);
            let row = y.row_mut(r);
            row.fill(0.0);
            row[self.labels[i] as usize] = 1.0;
        }
    }
}

/// Which data set to train on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// MNIST, checksummed, downloaded into the cache when missing.
    #[default]
    Mnist,
    /// Any data set in MNIST's IDX files and names (Fashion-MNIST, KMNIST ...), from
    /// `--data-dir`: images `[n, height, width]`, `[n, channels, height, width]`
    /// (NCHW) or rows `[n, features]`, of unsigned bytes.
    Idx,
    /// CIFAR-10, binary version (folder or archive), md5-checked when downloaded.
    Cifar10,
}

impl DatasetKind {
    /// The name `--dataset` and config files use: `mnist`, `idx`, `cifar10`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Idx => "idx",
            DatasetKind::Cifar10 => "cifar10",
        }
    }

    /// Its training and test samples and the shape of its images
    /// (channels, height, width), where they are known: MNIST's and
    /// CIFAR-10's; an `idx` data set's files say.
    pub fn known_sizes(self) -> Option<(usize, usize, (usize, usize, usize))> {
        match self {
            DatasetKind::Mnist => Some((60_000, 10_000, (1, 28, 28))),
            DatasetKind::Cifar10 => Some((50_000, 10_000, (3, 32, 32))),
            DatasetKind::Idx => None,
        }
    }
}

/// Training, validation and test sets.
#[derive(Clone, Debug)]
pub struct Splits {
    /// The samples that train.
    pub train: Dataset,
    /// Held out from the training file, for model selection (may be empty).
    pub val: Dataset,
    /// The official test set.
    pub test: Dataset,
}

impl Splits {
    /// Splits `train` into its first `len - val_size` samples and the last
    /// `val_size` (the paper's MNIST split: 50k / 10k).
    pub fn new(train: Dataset, test: Dataset, val_size: usize) -> Result<Self> {
        if val_size >= train.len() {
            return Err(Error::Config(format!(
                "val-size {val_size} leaves no training samples out of {}",
                train.len()
            )));
        }
        let cut = train.len() - val_size;
        Ok(Self {
            val: train.slice(cut..train.len()),
            train: train.slice(0..cut),
            test,
        })
    }
}
