//! Feedback alignment (Lillicrap et al. 2016): a fixed random `B_{l+1}`
//! stands in for `W_{l+1}^T`: `delta_l = (delta_{l+1} B_{l+1}^T) .* f'(a_l)`.
//!
//! Checkpoint tensors: `feedback.{i}.weight`, shape `[in_i, out_i]` (the shape
//! of `forward.{i}.weight` transposed), for i = 1..=L.

use super::{
    chain_errors, named, named_mut, ErrorStep, FeedbackScale, FeedbackTensor, FeedbackTensorMut,
    InitScheme, LearningRule, RuleKind,
};
use crate::model::{uniform, Mlp};
use crate::tensor::Matrix;
use rand::Rng;

/// Feedback alignment with fixed random feedback matrices.
#[derive(Clone, Debug)]
pub struct Fa {
    /// `b[k]` stands in for `forward.{k+1}.weight`^T, shape `[in, out]`.
    pub b: Vec<Matrix>,
}

impl Fa {
    /// Draws the feedback matrices at `scale` (B for `forward.{j}` carries
    /// its `fan_out`-wide error to its `fan_in`-wide input); with
    /// [`InitScheme::Reference`], copies the initial forward weights into B
    /// (which is the receiver's scale, so `scale` must be
    /// [`FeedbackScale::Receiver`]: the config refuses the other) and zeroes
    /// every forward layer after the first.
    pub fn new(net: &mut Mlp, init: InitScheme, scale: FeedbackScale, rng: &mut impl Rng) -> Self {
        let b = net.layers[1..]
            .iter_mut()
            .map(|layer| match init {
                InitScheme::Default => {
                    let mut m = Matrix::zeros(layer.fan_in(), layer.fan_out());
                    let bound = scale.bound(layer.fan_out(), layer.fan_in());
                    uniform(m.as_mut_slice(), bound, rng);
                    m
                }
                InitScheme::Reference => {
                    let m = layer.weight.transposed();
                    layer.weight.fill(0.0);
                    layer.bias.fill(0.0);
                    m
                }
            })
            .collect();
        Self { b }
    }
}

impl LearningRule for Fa {
    fn kind(&self) -> RuleKind {
        RuleKind::Fa
    }

    fn hidden_errors(&mut self, step: &ErrorStep<'_>, deltas: &mut [Matrix]) {
        let (net, acts, rows) = (step.net, step.acts, step.rows);
        chain_errors(net, acts, deltas, rows, |j| &self.b[j - 1]);
    }

    fn transpose_stand_in<'a>(&'a self, _net: &'a Mlp, j: usize) -> Option<&'a Matrix> {
        super::chain_stand_in(&self.b, j)
    }

    fn feedback_tensors(&self) -> Vec<FeedbackTensor<'_>> {
        named(&self.b, 1)
    }

    fn feedback_tensors_mut(&mut self) -> Vec<FeedbackTensorMut<'_>> {
        named_mut(&mut self.b, 1)
    }
}
