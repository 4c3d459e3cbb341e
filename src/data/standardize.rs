//! Per-channel input standardization, as the convolutional benchmarks use it
//! (torchvision's `Normalize(mean, std)` in biotorch's MNIST and CIFAR-10
//! pipelines): every pixel of channel `c` becomes `(x - mean[c]) / std[c]`.
//!
//! The statistics are measured on the run's own training split (never on
//! validation or test images), and travel with the weights in the
//! checkpoint (`input.mean`, `input.std`), because a trained network is only
//! right for inputs standardized the same way: predictions, evaluation and
//! resumed runs apply the stored values, not new ones.

use super::Dataset;
use crate::error::{Error, Result};
use crate::named::{NamedTensor, NamedTensorMut};
use serde::{Deserialize, Serialize};

/// How a run's inputs are scaled before the network sees them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// As the data set holds them: pixels in [0, 1] (the paper's protocol).
    #[default]
    None,
    /// Each channel to mean 0 and standard deviation 1 over the training split.
    Channel,
}

/// The names of the statistics' tensors in a checkpoint.
pub const TENSOR_NAMES: [&str; 2] = ["input.mean", "input.std"];

/// One mean and one standard deviation per channel of channel-planar inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Standardize {
    mean: Vec<f32>,
    std: Vec<f32>,
    plane: usize,
}

impl Standardize {
    /// Statistics for `channels` channels of `plane` values each; every
    /// mean must be finite and every deviation finite and above 0.
    pub fn new(mean: Vec<f32>, std: Vec<f32>, plane: usize) -> Result<Self> {
        let s = Self { mean, std, plane };
        s.check()?;
        Ok(s)
    }

    /// Placeholder statistics (mean 0, deviation 1) for `channels` channels
    /// of `plane` values, to be overwritten from a checkpoint
    /// ([`Standardize::tensors_mut`]) and then [`Standardize::check`]ed.
    pub fn identity(channels: usize, plane: usize) -> Self {
        Self {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
            plane,
        }
    }

    /// The population mean and standard deviation of every channel over all
    /// of `ds` (two passes in f64, so the result does not depend on order
    /// of magnitude or on the thread count). A constant channel is refused.
    pub fn fit(ds: &Dataset) -> Result<Self> {
        let (c, h, w) = ds.image;
        let plane = h * w;
        if ds.is_empty() || c * plane != ds.features() {
            return Err(Error::Config(format!(
                "normalize = channel needs training images of {c}x{h}x{w} = {} values, \
                 and {} samples of {} values were given",
                c * plane,
                ds.len(),
                ds.features()
            )));
        }
        let count = (ds.len() * plane) as f64;
        let channel_values = |ch: usize| {
            ds.inputs
                .as_slice()
                .chunks_exact(c * plane)
                .flat_map(move |row| &row[ch * plane..(ch + 1) * plane])
                .map(|&v| v as f64)
        };
        let mut mean = Vec::with_capacity(c);
        let mut std = Vec::with_capacity(c);
        for ch in 0..c {
            let m = channel_values(ch).sum::<f64>() / count;
            let var = channel_values(ch).map(|v| (v - m) * (v - m)).sum::<f64>() / count;
            if var.sqrt() as f32 <= 0.0 {
                return Err(Error::Config(format!(
                    "normalize = channel: channel {ch} of the training images is constant \
                     (every value {m}), so it has no deviation to divide by; use normalize = none"
                )));
            }
            mean.push(m as f32);
            std.push(var.sqrt() as f32);
        }
        Self::new(mean, std, plane)
    }

    /// Refuses statistics that would make inputs infinite or NaN (as read
    /// from a file: zero, negative or non-finite deviations, non-finite means).
    pub fn check(&self) -> Result<()> {
        if self.mean.len() != self.std.len() || self.mean.is_empty() || self.plane == 0 {
            return Err(Error::Mismatch(format!(
                "input statistics: {} means and {} deviations of {} values each",
                self.mean.len(),
                self.std.len(),
                self.plane
            )));
        }
        if let Some(ch) = (0..self.mean.len()).find(|&ch| {
            !(self.mean[ch].is_finite() && self.std[ch].is_finite() && self.std[ch] > 0.0)
        }) {
            return Err(Error::BadInput(format!(
                "input statistics of channel {ch}: mean {} and deviation {}; the deviation \
                 must be a finite number above 0 and the mean finite",
                self.mean[ch], self.std[ch]
            )));
        }
        Ok(())
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Values per channel of one sample (height x width).
    pub fn plane(&self) -> usize {
        self.plane
    }

    /// Each channel's mean.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// Each channel's standard deviation.
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Standardizes whole samples (rows of `channels x plane`), in place.
    pub fn apply(&self, rows: &mut [f32]) {
        self.each(rows, |v, m, s| (v - m) / s);
    }

    /// Undoes [`Standardize::apply`] (to show generated images as pixels).
    pub fn invert(&self, rows: &mut [f32]) {
        self.each(rows, |v, m, s| v * s + m);
    }

    /// `v = f(v, mean, std)` for every value of whole samples, with its
    /// channel's statistics.
    #[inline(always)]
    fn each(&self, rows: &mut [f32], f: impl Fn(f32, f32, f32) -> f32) {
        for sample in rows.chunks_exact_mut(self.mean.len() * self.plane) {
            for ((plane, &m), &s) in sample
                .chunks_exact_mut(self.plane)
                .zip(&self.mean)
                .zip(&self.std)
            {
                for v in plane {
                    *v = f(*v, m, s);
                }
            }
        }
    }

    /// What a pixel of value 0 becomes, per channel: the fill of a crop
    /// that pads the raw image with zeros, so that cropping standardized
    /// images is cropping raw ones and then standardizing.
    pub fn zero(&self) -> Vec<f32> {
        self.mean
            .iter()
            .zip(&self.std)
            .map(|(&m, &s)| (0.0 - m) / s)
            .collect()
    }

    /// The statistics under their checkpoint names ([`TENSOR_NAMES`]).
    pub fn tensors(&self) -> Vec<NamedTensor<'_>> {
        let c = self.channels();
        vec![
            NamedTensor::new(TENSOR_NAMES[0], vec![c], &self.mean),
            NamedTensor::new(TENSOR_NAMES[1], vec![c], &self.std),
        ]
    }

    /// [`Standardize::tensors`], to load into.
    pub fn tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        let c = self.channels();
        vec![
            NamedTensorMut::new(TENSOR_NAMES[0], vec![c], &mut self.mean),
            NamedTensorMut::new(TENSOR_NAMES[1], vec![c], &mut self.std),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Matrix;

    fn images(values: Vec<f32>, image: (usize, usize, usize)) -> Dataset {
        let d = image.0 * image.1 * image.2;
        let n = values.len() / d;
        Dataset {
            inputs: Matrix::from_vec(n, d, values).unwrap(),
            labels: vec![0; n],
            classes: 2,
            image,
        }
    }

    #[test]
    fn fit_measures_each_channel_over_every_sample_and_pixel() {
        // Two samples of 2 channels x 2 pixels: channel 0 holds 0, 1, 2, 3
        // (mean 1.5, variance 1.25); channel 1 holds 10, 10, 14, 14 (mean 12,
        // variance 4).
        let ds = images(vec![0., 1., 10., 10., 2., 3., 14., 14.], (2, 1, 2));
        let s = Standardize::fit(&ds).unwrap();
        assert_eq!(s.mean(), &[1.5, 12.0]);
        assert_eq!(s.std(), &[1.25f64.sqrt() as f32, 2.0]);
        let mut x = ds.inputs.as_slice().to_vec();
        s.apply(&mut x);
        assert_eq!(&x[2..4], &[-1.0, -1.0]);
        assert_eq!(&x[6..8], &[1.0, 1.0]);
        for ch in 0..2 {
            let vals: Vec<f64> = x
                .chunks(4)
                .flat_map(|r| &r[ch * 2..ch * 2 + 2])
                .map(|&v| v as f64)
                .collect();
            let m = vals.iter().sum::<f64>() / 4.0;
            let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 4.0;
            assert!(
                m.abs() < 1e-6 && (var - 1.0).abs() < 1e-6,
                "{ch}: {m} {var}"
            );
        }
        s.invert(&mut x);
        assert!(x
            .iter()
            .zip(ds.inputs.as_slice())
            .all(|(a, b)| (a - b).abs() < 1e-5));
        assert_eq!(s.zero(), vec![-1.5 / 1.25f64.sqrt() as f32, -6.0]);
    }

    #[test]
    fn constant_channels_and_bad_statistics_are_refused() {
        let ds = images(vec![0., 1., 5., 5., 2., 3., 5., 5.], (2, 1, 2));
        let err = Standardize::fit(&ds).unwrap_err().to_string();
        assert!(
            err.contains("channel 1") && err.contains("constant"),
            "{err}"
        );
        for (m, s) in [
            (0.0, 0.0),
            (0.0, -1.0),
            (f32::NAN, 1.0),
            (0.0, f32::INFINITY),
        ] {
            let err = Standardize::new(vec![m], vec![s], 4)
                .unwrap_err()
                .to_string();
            assert!(err.contains("channel 0"), "{err}");
        }
        assert!(Standardize::new(vec![0.0, 0.0], vec![1.0], 4).is_err());
    }
}
