//! Helpers shared by the integration tests.
#![allow(dead_code)]

use biprop::data::Dataset;
use biprop::tensor::Matrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;

/// A random data set of `n` samples with `d` features in [0, 1] and `c` classes,
/// whose labels depend on the inputs (so that it can be learned).
pub fn synthetic(n: usize, d: usize, c: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let inputs: Vec<f32> = (0..n * d).map(|_| rng.random::<f32>()).collect();
    let labels = inputs
        .chunks(d)
        .map(|x| {
            let s: f32 = x.iter().enumerate().map(|(i, v)| v * (i % 3) as f32).sum();
            (s * 7.0) as usize % c
        })
        .map(|l| l as u8)
        .collect();
    Dataset {
        inputs: Matrix::from_vec(n, d, inputs).unwrap(),
        labels,
        classes: c,
        image: (1, 1, d),
    }
}

/// The folder of all of MNIST (`$BIPROP_DATA`, as CI sets it), if given;
/// tests that fall back to the subset say so on stderr.
pub fn full_mnist() -> Option<PathBuf> {
    let dir = std::env::var_os("BIPROP_DATA").map(PathBuf::from);
    if dir.is_none() {
        eprintln!("BIPROP_DATA is not set: using the MNIST subset in tests/data/mnist-subset");
    }
    dir
}

/// The committed MNIST subset (tests/data/README.md).
pub fn mnist_subset() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mnist-subset")
}

/// The flags that train on the MNIST subset in `data`, holding `val`
/// images out for validation and training on `train`.
pub fn subset_flags<'a>(data: &'a str, val: &'a str, train: &'a str) -> Vec<&'a str> {
    vec![
        "--dataset",
        "idx",
        "--classes",
        "10",
        "--data-dir",
        data,
        "--val-size",
        val,
        "--train-limit",
        train,
    ]
}

/// Largest absolute difference between two slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest absolute value.
pub fn max_abs(a: &[f32]) -> f32 {
    a.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// A learnable IDX data set of `n` 8x8 images with 4 classes.
pub fn write_idx(dir: &std::path::Path, n: usize, n_test: usize) {
    let ds = synthetic(n + n_test, 64, 4, 9);
    let bytes: Vec<u8> = ds
        .inputs
        .as_slice()
        .iter()
        .map(|v| (v * 255.0) as u8)
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("train-images-idx3-ubyte"),
        biprop::data::idx::encode_idx(&[n, 8, 8], &bytes[..n * 64]),
    )
    .unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte"),
        biprop::data::idx::encode_idx(&[n], &ds.labels[..n]),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        biprop::data::idx::encode_idx(&[n_test, 8, 8], &bytes[n * 64..]),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        biprop::data::idx::encode_idx(&[n_test], &ds.labels[n..]),
    )
    .unwrap();
}

/// A rule that sends no error to the hidden layers: only the output layer
/// learns. Error bounds of real-data tests are worth something only if this
/// misses them. (Its path is a zero projection of the output error.)
pub struct OutputOnly {
    zeros: Vec<Matrix>,
}

impl OutputOnly {
    /// Zero paths for the hidden layers of `net`.
    pub fn new(net: &biprop::network::Network) -> Self {
        let c = net.outputs();
        Self {
            zeros: net
                .hidden_sizes()
                .into_iter()
                .map(|n| Matrix::zeros(n, c))
                .collect(),
        }
    }
}

impl biprop::rules::LearningRule for OutputOnly {
    fn kind(&self) -> biprop::rules::RuleKind {
        biprop::rules::RuleKind::Bp
    }
    fn error_path(&self, p: usize) -> biprop::rules::ErrorPath<'_> {
        biprop::rules::ErrorPath::OutputError(&self.zeros[p])
    }
}

/// The matrix standing in for `forward.{j}.weight` in `t`'s last step (in
/// the layer's stand-in layout), for rules whose error path is one.
pub fn stand_in(t: &biprop::train::Trainer, j: usize) -> Option<&Matrix> {
    match t.rule.error_path(j.checked_sub(1)?) {
        biprop::rules::ErrorPath::StandIn(b) => Some(b),
        _ => None,
    }
}

/// Runs the `biprop` binary in `cwd`, with no data folder and a cache of
/// its own, so that nothing is downloaded from or written to the user's.
pub fn biprop(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_biprop"))
        .args(args)
        .current_dir(cwd)
        .env_remove("BIPROP_DATA")
        .env("BIPROP_CACHE", cwd.join("cache"))
        .output()
        .unwrap()
}

/// A command's standard error, as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command failed with `want` in one clear message, without a panic.
pub fn assert_clean_failure(o: &std::process::Output, want: &str) {
    let e = stderr(o);
    assert!(!o.status.success(), "should fail: {e}");
    assert!(!e.contains("panicked"), "panicked: {e}");
    assert!(e.contains(want), "expected {want:?} in: {e}");
}

/// Rows of the rule tests' batches.
pub const ROWS: usize = 16;

/// A tanh MLP of `sizes` with sigmoid-BCE outputs, drawn from `seed`.
pub fn net(sizes: &[usize], seed: u64) -> biprop::network::Network {
    biprop::network::Network::mlp(
        sizes,
        biprop::activation::Activation::Tanh,
        biprop::loss::Output::SigmoidBce,
        &mut ChaCha8Rng::seed_from_u64(seed),
    )
}

/// Plain SGD at `lr` with `weight_decay`.
pub fn sgd(lr: f32, weight_decay: f32) -> biprop::optim::OptimConfig {
    biprop::optim::OptimConfig {
        lr,
        weight_decay,
        ..Default::default()
    }
}

/// Loads batch `k` (its own samples) of a data set shaped for `t`.
pub fn load(t: &mut biprop::train::Trainer, k: u64) {
    let ds = synthetic(ROWS, t.net.inputs(), t.net.outputs(), 100 + k);
    t.load_batch(&ds, &(0..ROWS).collect::<Vec<_>>());
}

/// The small convolutional run of the augmentation and standardization
/// tests: conv, max-pooling and a dense output on 8x8 images, no
/// validation, seed 3, faer's kernels (the same bits on every CPU family).
pub fn small_conv_config(epochs: usize, threads: usize) -> biprop::config::RunConfig {
    biprop::config::RunConfig {
        layers: Some("conv 4 3x3 pad 1, relu, maxpool 2, flatten, dense 10".into()),
        output: biprop::loss::Output::SoftmaxCe,
        val_size: 0,
        epochs,
        batch_size: 16,
        lr: 0.05,
        seed: 3,
        threads,
        alignment: false,
        gemm: biprop::tensor::GemmBackend::Faer,
        ..Default::default()
    }
}

/// `train` and `test` without a validation set.
pub fn splits_without_val(train: Dataset, test: Dataset) -> biprop::data::Splits {
    biprop::data::Splits {
        val: train.slice(0..0),
        test,
        train,
    }
}
