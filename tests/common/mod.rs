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

/// The folder of real data sets (`$BIPROP_DATA`); tests that train on real
/// data need it and say so.
pub fn data_dir() -> PathBuf {
    std::env::var_os("BIPROP_DATA")
        .map(PathBuf::from)
        .expect("set BIPROP_DATA to the folder holding mnist/ (CI: ../shared/data)")
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
