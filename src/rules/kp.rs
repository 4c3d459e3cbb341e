//! Kolen-Pollack (Kolen & Pollack 1994; Akrout et al. 2019): FA whose
//! feedback matrices learn as the forward weights do. The error path is FA's
//! (`B_j` `[n_{j-1}, n_j]` stands in for `W_j^T`, j = 2..L+1); after the
//! forward update each `B_j` takes the transpose of `W_j`'s gradient and the
//! same weight decay `lambda`:
//!
//! `W_j -= lr * (dW_j + lambda W_j)`,  `B_j -= lr * (dW_j^T + lambda B_j)`,
//!
//! so under plain SGD `W_j - B_j^T` shrinks by `(1 - lr lambda)` every step
//! and `B_j` comes to align with `W_j^T` whatever it started at. `B_j`
//! therefore steps with the forward optimizer (its kind, rate, momentum and
//! decay; the config gives KP's the `kp_decay`), with state of its own.
//!
//! Checkpoint tensors: as FA, `feedback.{i}.weight` `[in_i, out_i]`, i = 1..=L;
//! optimizer state `optim.feedback.{i}.weight.{m|v}`.

use super::fa::Fa;
use super::{
    chain_errors, named, named_mut, ErrorStep, FeedbackScale, FeedbackStep, FeedbackTensor,
    FeedbackTensorMut, InitScheme, LearningRule, RuleKind,
};
use crate::model::Mlp;
use crate::optim::{OptimConfig, ParamGroup};
use crate::tensor::Matrix;
use rand::Rng;

/// The decay `lambda` of the Kolen-Pollack rules (KP, DKP) when none is set.
///
/// At the paper's learning rate 0.0128 it shrinks `W - B^T` by `exp(-1)`
/// in 20 epochs of MNIST (7,800 steps) and by `exp(-15)` in the paper's
/// 300; 1e-3 would leave 90% of the random start after 20 epochs. The price
/// is small (docs/rules.md has the measurements).
pub const KP_DEFAULT_DECAY: f32 = 1e-2;

/// Kolen-Pollack: FA with feedback matrices that get `W^T`'s updates.
#[derive(Debug)]
pub struct Kp {
    /// `b[k]` stands in for `forward.{k+1}.weight`^T, shape `[in, out]`.
    pub b: Vec<Matrix>,
    group: ParamGroup,
}

impl Kp {
    /// `B` drawn as FA's (at `scale`), stepped by `opt`, which must be the
    /// forward optimizer for the identity above to hold.
    pub fn new(
        net: &mut Mlp,
        init: InitScheme,
        scale: FeedbackScale,
        opt: OptimConfig,
        rng: &mut impl Rng,
    ) -> Self {
        Self::from_matrices(Fa::new(net, init, scale, rng).b, opt)
    }

    /// KP around given matrices (`b[k]` shaped as `forward.{k+1}.weight`^T).
    pub fn from_matrices(b: Vec<Matrix>, opt: OptimConfig) -> Self {
        Self {
            group: ParamGroup::new(opt, b.iter().map(Matrix::shape)),
            b,
        }
    }
}

impl LearningRule for Kp {
    fn kind(&self) -> RuleKind {
        RuleKind::Kp
    }

    fn hidden_errors(&mut self, step: &ErrorStep<'_>, deltas: &mut [Matrix]) {
        chain_errors(step.net, step.acts, deltas, step.rows, |j| &self.b[j - 1]);
    }

    fn train_feedback(&mut self, step: &FeedbackStep<'_>) {
        let rows = step.rows;
        self.group.begin_step();
        for (k, b) in self.b.iter_mut().enumerate() {
            // dW_j^T = h_{j-1}^T delta_j / B, with the errors W_j was stepped by.
            let j = k + 1;
            self.group.step_product(
                k,
                b,
                1.0 / rows as f32,
                step.acts[j].rows_view(rows).t(),
                step.deltas[j].rows_view(rows),
            );
        }
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

    fn optimizer_state_mut(&mut self) -> Vec<FeedbackTensorMut<'_>> {
        self.group
            .state_tensors_mut(|k| format!("optim.feedback.{}.weight", k + 1))
    }

    fn set_steps(&mut self, steps: u64) {
        self.group.set_steps(steps);
    }
}
