//! Direct random target projection (Frenkel, Lefebvre & Bol 2021): the
//! hidden errors come from the one-hot target, not from the output error:
//! `delta_l = (y D_l^T) .* f'(a_l)`, `D_l` `[n_l, C]` fixed and drawn as
//! DFA's. The output layer learns from `e` as in every rule. Since `y` is
//! known before the output is, no error has to travel back at all, and the
//! hidden errors do not depend on any weight above the layer.
//!
//! Checkpoint tensors: as DFA, `feedback.{i}.weight` `[out_i, C]`, i = 0..L-1.

use super::dfa::Dfa;
use super::{
    named, named_mut, propagate, ErrorStep, FeedbackTensor, FeedbackTensorMut, LearningRule,
    RuleKind,
};
use crate::tensor::Matrix;

/// DRTP: fixed random projections of the target.
#[derive(Clone, Debug)]
pub struct Drtp {
    /// `d[l]` is `[n_l, C]` for hidden layer `l` (0-based).
    pub d: Vec<Matrix>,
}

impl Drtp {
    /// DRTP with DFA's matrices.
    pub fn new(dfa: Dfa) -> Self {
        Self { d: dfa.d }
    }
}

impl LearningRule for Drtp {
    fn kind(&self) -> RuleKind {
        RuleKind::Drtp
    }

    fn hidden_errors(&mut self, step: &ErrorStep<'_>, deltas: &mut [Matrix]) {
        let (net, rows) = (step.net, step.rows);
        for (i, dst) in deltas[..net.hidden_layers()].iter_mut().enumerate() {
            propagate(
                dst,
                step.targets.rows_view(rows),
                self.d[i].view().t(),
                net.hidden,
                &step.acts[i + 1],
                rows,
            );
        }
    }

    fn feedback_tensors(&self) -> Vec<FeedbackTensor<'_>> {
        named(&self.d, 0)
    }

    fn feedback_tensors_mut(&mut self) -> Vec<FeedbackTensorMut<'_>> {
        named_mut(&mut self.d, 0)
    }
}
