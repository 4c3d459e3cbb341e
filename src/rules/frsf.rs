//! Fixed random-magnitude sign-concordant feedback (Xiao et al. 2018): FA
//! whose `B_j = |M_j| .* sign(W_j)^T` is made from the forward weight at
//! every step, before the update; `M_j` `[n_{j-1}, n_j]` is drawn once, as
//! FA's `B_j` (at the feedback scale). The signs follow `W_j`, the
//! magnitudes stay random.
//!
//! Checkpoint tensors: the magnitudes `M_j`, as FA's, `feedback.{i}.weight`
//! `[in_i, out_i]`, i = 1..=L.

use super::fa::Fa;
use super::{
    chain_errors, named, named_mut, sign_concordant, ErrorStep, FeedbackScale, FeedbackTensor,
    FeedbackTensorMut, InitScheme, LearningRule, RuleKind,
};
use crate::model::Mlp;
use crate::tensor::Matrix;
use rand::Rng;

/// Fixed random-magnitude sign-concordant feedback.
#[derive(Clone, Debug)]
pub struct Frsf {
    /// `m[k]`, `[in, out]`: the magnitudes of the path for `forward.{k+1}`.
    pub m: Vec<Matrix>,
    /// `b[k]`, the path of the last [`LearningRule::hidden_errors`].
    pub b: Vec<Matrix>,
}

impl Frsf {
    /// `M` drawn as FA's `B` at `scale`.
    pub fn new(net: &mut Mlp, scale: FeedbackScale, rng: &mut impl Rng) -> Self {
        Self {
            m: Fa::new(net, InitScheme::Default, scale, rng).b,
            b: super::transposed_buffers(net),
        }
    }
}

impl LearningRule for Frsf {
    fn kind(&self) -> RuleKind {
        RuleKind::Frsf
    }

    fn hidden_errors(&mut self, step: &ErrorStep<'_>, deltas: &mut [Matrix]) {
        for ((b, m), layer) in self.b.iter_mut().zip(&self.m).zip(&step.net.layers[1..]) {
            let m = m.as_slice();
            sign_concordant(b, &layer.weight, |k| m[k].abs());
        }
        chain_errors(step.net, step.acts, deltas, step.rows, |j| &self.b[j - 1]);
    }

    fn transpose_stand_in<'a>(&'a self, _net: &'a Mlp, j: usize) -> Option<&'a Matrix> {
        super::chain_stand_in(&self.b, j)
    }

    fn feedback_tensors(&self) -> Vec<FeedbackTensor<'_>> {
        named(&self.m, 1)
    }

    fn feedback_tensors_mut(&mut self) -> Vec<FeedbackTensorMut<'_>> {
        named_mut(&mut self.m, 1)
    }
}
