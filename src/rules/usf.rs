//! Uniform sign-concordant feedback (Liao, Leibo & Poggio 2016; the name is
//! Xiao et al. 2018's): FA whose `B_j` is made from the forward weight at
//! every step, before the update: `B_j = sign(W_j)^T / sqrt(n_{j-1})`,
//! `n_{j-1}` the fan-in of `W_j` (the width of the layer the error reaches).
//! Only the signs of `W_j` travel back, never its magnitudes.
//! `sign(0) = 0`, so a zero weight carries no error.
//!
//! Checkpoint tensors: none (the path is a function of the forward weights).

use super::{chain_errors, sign_concordant, ErrorStep, LearningRule, RuleKind};
use crate::model::Mlp;
use crate::tensor::Matrix;

/// Uniform sign-concordant feedback.
#[derive(Clone, Debug)]
pub struct Usf {
    /// `b[k]`, `[in, out]`, the path of the last [`LearningRule::hidden_errors`]
    /// for `forward.{k+1}`.
    pub b: Vec<Matrix>,
}

impl Usf {
    /// Path buffers for `net`.
    pub fn new(net: &Mlp) -> Self {
        Self {
            b: super::transposed_buffers(net),
        }
    }
}

impl LearningRule for Usf {
    fn kind(&self) -> RuleKind {
        RuleKind::Usf
    }

    fn hidden_errors(&mut self, step: &ErrorStep<'_>, deltas: &mut [Matrix]) {
        for (b, layer) in self.b.iter_mut().zip(&step.net.layers[1..]) {
            let m = 1.0 / (layer.fan_in() as f32).sqrt();
            sign_concordant(b, &layer.weight, |_| m);
        }
        chain_errors(step.net, step.acts, deltas, step.rows, |j| &self.b[j - 1]);
    }

    fn transpose_stand_in<'a>(&'a self, _net: &'a Mlp, j: usize) -> Option<&'a Matrix> {
        super::chain_stand_in(&self.b, j)
    }
}
