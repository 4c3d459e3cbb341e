//! Direct Kolen-Pollack (Webster, Choe & Ahmad 2020): DFA whose `D_l`
//! (`[units_l, C]`) learn the Kolen-Pollack way. Forward learning is DFA's, with
//! `D_l` as it is before this batch's feedback update; then
//!
//! `D_l -= lr_b * (h_l^T e / B + lambda D_l)`
//!
//! with `h_l` and `e` of this batch's forward pass, through the feedback
//! optimizer (default: the forward one at the forward rate) with the
//! Kolen-Pollack decay. For the top hidden layer `h_L^T e / B` is exactly
//! `dW_{L+1}^T`, so `D_L` follows the output weights as KP's `B` does; lower
//! layers get the same outer product of their own activity with `e`.
//!
//! Checkpoint tensors: as DFA, `feedback.{i}.weight` `[units_i, C]`, i = 0..L-1;
//! optimizer state `optim.feedback.{i}.weight.{m|v}`.

use super::dfa::Dfa;
use super::{
    named_projections, named_projections_mut, ErrorPath, FeedbackStep, LearningRule, RuleKind,
};
use crate::named::{NamedTensor, NamedTensorMut};
use crate::optim::{OptimConfig, ParamGroup};
use crate::tensor::Matrix;

/// Direct Kolen-Pollack: DFA with feedback matrices trained on `h^T e`.
#[derive(Debug)]
pub struct Dkp {
    /// `d[l]` is `[units_l, C]` for hidden layer `l` (0-based), as DFA's.
    pub d: Vec<Matrix>,
    /// The order `d[l]`'s rows are stored in, as DFA's.
    pub stored_rows: Vec<Option<Vec<usize>>>,
    group: ParamGroup,
}

impl Dkp {
    /// DKP from DFA's matrices, stepped by the feedback optimizer `opt`.
    pub fn new(dfa: Dfa, opt: OptimConfig) -> Self {
        Self {
            group: ParamGroup::new(opt, dfa.d.iter().map(Matrix::shape)),
            d: dfa.d,
            stored_rows: dfa.stored_rows,
        }
    }
}

impl LearningRule for Dkp {
    fn kind(&self) -> RuleKind {
        RuleKind::Dkp
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        ErrorPath::OutputError(&self.d[p])
    }

    fn train_feedback(&mut self, step: &FeedbackStep<'_>) {
        let rows = step.rows;
        let e = step.deltas[self.d.len()].rows_view(rows);
        self.group.begin_step();
        for (l, d) in self.d.iter_mut().enumerate() {
            self.group.step_product(
                l,
                d,
                1.0 / rows as f32,
                step.acts[l + 1].rows_view(rows).t(),
                e,
            );
        }
    }

    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        named_projections(&self.d, &self.stored_rows)
    }

    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        named_projections_mut(&mut self.d, &self.stored_rows)
    }

    fn optimizer_state_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        self.group.state_tensors_mut_ordered(
            |l| format!("optim.feedback.{l}.weight"),
            |l| self.stored_rows[l].as_deref(),
        )
    }

    fn set_steps(&mut self, steps: u64) {
        self.group.set_steps(steps);
    }

    fn set_lr_factor(&mut self, factor: f32) {
        self.group.set_lr_factor(factor);
    }
}
