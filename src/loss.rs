//! Output layers and their errors.
//!
//! Every output layer here has the same error form `e = yhat - target` at its
//! pre-activation, which is what makes the learning rules output-agnostic:
//! sigmoid with binary cross-entropy (the paper's), softmax with
//! cross-entropy, and identity with squared error.

use serde::{Deserialize, Serialize};

/// The output nonlinearity and the loss that goes with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// Independent sigmoids with binary cross-entropy summed over outputs (paper eq. 4).
    #[default]
    SigmoidBce,
    /// Softmax with cross-entropy.
    SoftmaxCe,
    /// Identity with squared error `0.5 * ||yhat - y||^2`.
    Identity,
}

/// `ln(1 + e^z)` without overflow.
fn softplus(z: f32) -> f64 {
    let z = z as f64;
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

impl Output {
    /// Turns pre-activations `z` (`rows x n`, bias included) into outputs in
    /// place, writes `e = yhat - target` into `err` and returns the summed loss.
    ///
    /// The loss is computed from the pre-activations, so it stays finite even
    /// where a sigmoid saturates to exactly 0 or 1 in f32.
    pub fn forward_error(self, z: &mut [f32], target: &[f32], err: &mut [f32], n: usize) -> f64 {
        self.forward_error_with(z, target, err, n, true)
    }

    /// [`Output::forward_error`], skipping the loss (returned as 0) when
    /// `with_loss` is false: for wide outputs (BFA's reconstruction of every
    /// pixel) the f64 logarithms would cost more than the step's GEMMs.
    pub fn forward_error_with(
        self,
        z: &mut [f32],
        target: &[f32],
        err: &mut [f32],
        n: usize,
        with_loss: bool,
    ) -> f64 {
        debug_assert!(z.len() == target.len() && z.len() == err.len());
        let mut loss = 0.0f64;
        match self {
            Output::SigmoidBce => {
                if with_loss {
                    for (z, &t) in z.iter().zip(target) {
                        // BCE = softplus(z) - t z, exact for soft targets too.
                        loss += softplus(*z) - t as f64 * *z as f64;
                    }
                }
                crate::activation::vectorized(SigmoidError(z, target, err));
            }
            Output::SoftmaxCe => {
                for ((z, t), e) in z
                    .chunks_exact_mut(n)
                    .zip(target.chunks_exact(n))
                    .zip(err.chunks_exact_mut(n))
                {
                    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0f64;
                    for v in z.iter() {
                        sum += ((*v - max) as f64).exp();
                    }
                    let lse = max as f64 + sum.ln();
                    for ((v, &t), e) in z.iter_mut().zip(t).zip(e.iter_mut()) {
                        loss -= t as f64 * (*v as f64 - lse);
                        let y = (*v as f64 - lse).exp() as f32;
                        *v = y;
                        *e = y - t;
                    }
                }
            }
            Output::Identity => {
                for ((z, &t), e) in z.iter().zip(target).zip(err.iter_mut()) {
                    let d = *z - t;
                    loss += 0.5 * (d as f64) * (d as f64);
                    *e = d;
                }
            }
        }
        loss
    }

    /// Turns pre-activations into outputs in place (inference only).
    pub fn activate(self, z: &mut [f32], n: usize) {
        match self {
            Output::SigmoidBce => z
                .iter_mut()
                .for_each(|v| *v = crate::activation::sigmoid(*v)),
            Output::SoftmaxCe => {
                for row in z.chunks_exact_mut(n) {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0f32;
                    for v in row.iter_mut() {
                        *v = (*v - max).exp();
                        sum += *v;
                    }
                    row.iter_mut().for_each(|v| *v /= sum);
                }
            }
            Output::Identity => {}
        }
    }
}

/// `z = sigmoid(z)`, `e = z - t`, vectorized.
struct SigmoidError<'a>(&'a mut [f32], &'a [f32], &'a mut [f32]);

impl crate::activation::Kernel for SigmoidError<'_> {
    #[inline(always)]
    fn run(self) {
        for ((z, &t), e) in self.0.iter_mut().zip(self.1).zip(self.2.iter_mut()) {
            let y = crate::activation::sigmoid(*z);
            *z = y;
            *e = y - t;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error `yhat - t` must be the gradient of the loss at the pre-activation.
    #[test]
    fn error_is_the_loss_gradient() {
        let z0 = [0.3f32, -1.2, 2.0, 0.1];
        let t = [0.0f32, 1.0, 0.0, 0.0];
        for out in [Output::SigmoidBce, Output::SoftmaxCe, Output::Identity] {
            let loss = |z: &[f32]| {
                let mut z = z.to_vec();
                let mut e = vec![0.0; 4];
                out.forward_error(&mut z, &t, &mut e, 4)
            };
            let mut z = z0;
            let mut e = [0.0f32; 4];
            out.forward_error(&mut z, &t, &mut e, 4);
            for i in 0..4 {
                let h = 1e-3f32;
                let (mut zp, mut zm) = (z0, z0);
                zp[i] += h;
                zm[i] -= h;
                let fd = (loss(&zp) - loss(&zm)) / (2.0 * h as f64);
                assert!(
                    (fd - e[i] as f64).abs() < 1e-3,
                    "{out:?} {i}: {fd} vs {}",
                    e[i]
                );
            }
        }
    }

    #[test]
    fn saturated_sigmoid_loss_stays_finite() {
        let mut z = [200.0f32, -200.0];
        let mut e = [0.0; 2];
        let l = Output::SigmoidBce.forward_error(&mut z, &[0.0, 1.0], &mut e, 2);
        assert!((l - 400.0).abs() < 1e-6);
        assert_eq!(e, [1.0, -1.0]);
    }
}
