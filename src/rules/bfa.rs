//! Bidirectional feedback alignment (BFA, the paper's section 4.1).
//!
//! A second MLP, the feedback network, maps the one-hot label back to the
//! input: sizes `C, n_L, .., n_1, n_0`, the forward network's hidden
//! activation, a sigmoid (or identity) output. Feedback layer `k` mirrors
//! forward layer `L - k`, and each network's weights are the other's error
//! path, used as they are (no transpose):
//!
//! - forward learning is FA whose `B_j` is feedback layer `L - j`'s weight
//!   (`[in_j, out_j]` of forward layer `j`, exactly the shape FA needs);
//! - feedback learning sends the reconstruction error `e_x = xhat - x` down
//!   the feedback network through the forward weights (feedback layer `k`'s
//!   error path is forward layer `L - k`'s weight), after this batch's forward
//!   update, and steps the feedback network with its own optimizer.
//!
//! Checkpoint tensors: `feedback.{k}.weight` `[out, in]` and
//! `feedback.{k}.bias` of the feedback network, k = 0 (label side) ..= L
//! (input side).

use super::backward::hidden_deltas;
use super::{ErrorPath, FeedbackScale, FeedbackStep, LearningRule, RuleKind};
use crate::loss::Output;
use crate::named::{NamedTensor, NamedTensorMut};
use crate::network::{Activations, Network};
use crate::optim::OptimConfig;
use crate::tensor::Matrix;
use crate::update::NetUpdater;
use rand::Rng;

/// BFA: FA whose feedback weights form a generative network that learns.
#[derive(Debug)]
pub struct Bfa {
    /// The feedback network, label to input.
    pub feedback: Network,
    updater: NetUpdater,
    acts: Activations,
    deltas: Vec<Matrix>,
    sq_err_sum: f64,
    samples: usize,
}

impl Bfa {
    /// A feedback network mirroring `net`, drawn as any MLP from
    /// `U(+-1/sqrt(fan_in))`, trained by `opt`, with buffers for batches of
    /// `max_rows`.
    ///
    /// `scale` is that of the weights that are also forward learning's error
    /// paths, layers `0..L`: [`FeedbackScale::Sender`] leaves them as drawn
    /// (their fan-in is the width of the error they carry), and
    /// [`FeedbackScale::Receiver`] multiplies them by
    /// `sqrt(fan_in / fan_out)`, which makes them `U(+-1/sqrt(fan_out))`,
    /// `fan_out` the width of the forward layer they reach, from the same
    /// draws. The last layer, which only reconstructs the input, keeps its
    /// draw.
    pub fn new(
        net: &Network,
        output: Output,
        scale: FeedbackScale,
        opt: OptimConfig,
        max_rows: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let mut feedback = net.mirror(output, rng);
        if scale == FeedbackScale::Receiver {
            let paths = feedback.layers.len() - 1;
            for layer in &mut feedback.layers[..paths] {
                let k = (layer.fan_in() as f32 / layer.fan_out() as f32).sqrt();
                for w in layer.weight.as_mut_slice() {
                    *w *= k;
                }
            }
        }
        Self::from_network(feedback, opt, max_rows)
    }

    /// BFA around a given feedback network.
    pub fn from_network(feedback: Network, opt: OptimConfig, max_rows: usize) -> Self {
        let deltas = feedback.sizes()[1..]
            .iter()
            .map(|&n| Matrix::zeros(max_rows, n))
            .collect();
        Self {
            updater: NetUpdater::new(&feedback, opt),
            acts: feedback.buffers(max_rows),
            deltas,
            feedback,
            sq_err_sum: 0.0,
            samples: 0,
        }
    }

    /// The last feedback step's activations: `[0]` the labels, last the reconstructions.
    pub fn activations(&self) -> &Activations {
        &self.acts
    }
}

impl LearningRule for Bfa {
    fn kind(&self) -> RuleKind {
        RuleKind::Bfa
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        let top = self.feedback.layers.len() - 2;
        ErrorPath::StandIn(&self.feedback.layers[top - p].weight)
    }

    fn train_feedback(&mut self, step: &FeedbackStep<'_>) {
        let rows = step.rows;
        let l = self.feedback.hidden_layers();
        let (x, n0) = (step.acts[0].rows_slice(rows), step.net.inputs());
        self.acts[0]
            .rows_slice_mut(rows)
            .copy_from_slice(step.targets.rows_slice(rows));
        self.feedback.forward(&mut self.acts, rows);
        let xhat = self.acts[l + 1].rows_slice_mut(rows);
        self.feedback.output.forward_error_with(
            xhat,
            x,
            self.deltas[l].rows_slice_mut(rows),
            n0,
            false,
        );
        self.sq_err_sum += sum_of_squares(self.deltas[l].rows_slice(rows));
        self.samples += rows;
        // Feedback layer q + 1 mirrors forward layer L - q - 1, whose weight
        // is (in the feedback layer's stand-in layout) its error path.
        let fwd = step.net;
        hidden_deltas(
            &self.feedback,
            &mut self.acts,
            &mut self.deltas,
            &step.acts[0],
            rows,
            |q| ErrorPath::StandIn(&fwd.layers[l - 1 - q].weight),
        );
        self.updater
            .apply(&mut self.feedback, &mut self.acts, &self.deltas, rows);
    }

    fn take_feedback_losses(&mut self) -> Vec<(String, f64)> {
        let n = self.samples.max(1) as f64;
        let pixels = self.feedback.outputs() as f64;
        let out = vec![("bfa_mse".to_string(), self.sq_err_sum / (n * pixels))];
        (self.sq_err_sum, self.samples) = (0.0, 0);
        out
    }

    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        self.feedback.named_tensors("feedback")
    }

    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        self.feedback.named_tensors_mut("feedback")
    }

    fn optimizer_state_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        self.updater.state_tensors_mut("optim.feedback")
    }

    fn set_steps(&mut self, steps: u64) {
        self.updater.set_steps(steps);
    }

    fn set_lr_factor(&mut self, factor: f32) {
        self.updater.set_lr_factor(factor);
    }

    fn feedback_network(&self) -> Option<&Network> {
        Some(&self.feedback)
    }
}

/// `sum e^2`, in 16 f32 lanes merged in f64: an in-order f64 sum is one long
/// chain of dependent adds that cannot vectorize. BFA 1x800 on two threads
/// went from 1.99 to 1.89 s an epoch with this change (`bench/ab.sh OLD NEW 6
/// -- --rule bfa --hidden 1x800 --threads 2 --seconds 1.5`).
fn sum_of_squares(e: &[f32]) -> f64 {
    let mut total = 0.0f64;
    // Blocks short enough that the f32 lanes stay exact to ~1e-6 relative.
    for block in e.chunks(4096) {
        let mut lanes = [0.0f32; 16];
        let mut it = block.chunks_exact(16);
        for c in &mut it {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += v * v;
            }
        }
        let tail: f32 = it.remainder().iter().map(|&v| v * v).sum();
        total += lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64;
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn sum_of_squares_matches_f64() {
        let e: Vec<f32> = (0..100_003).map(|i| ((i as f32) * 0.37).sin()).collect();
        let want: f64 = e.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let got = super::sum_of_squares(&e);
        assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
    }
}
