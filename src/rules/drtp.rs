//! Direct random target projection (Frenkel, Lefebvre & Bol 2021): the
//! hidden errors come from the one-hot target, not from the output error:
//! `delta_l = (y D_l^T) .* f'(a_l)`, `D_l` `[units_l, C]` fixed and drawn as
//! DFA's. The output layer learns from `e` as in every rule. Since `y` is
//! known before the output is, no error has to travel back at all, and the
//! hidden errors do not depend on any weight above the layer.
//!
//! Checkpoint tensors: as DFA, `feedback.{i}.weight` `[units_i, C]`, i = 0..L-1.

use super::dfa::Dfa;
use super::{named_projections, named_projections_mut, ErrorPath, LearningRule, RuleKind};
use crate::named::{NamedTensor, NamedTensorMut};
use crate::tensor::Matrix;

/// DRTP: fixed random projections of the target.
#[derive(Clone, Debug)]
pub struct Drtp {
    /// `d[l]` is `[units_l, C]` for hidden layer `l` (0-based), as DFA's.
    pub d: Vec<Matrix>,
    /// The order `d[l]`'s rows are stored in, as DFA's.
    pub stored_rows: Vec<Option<Vec<usize>>>,
}

impl Drtp {
    /// DRTP with DFA's matrices.
    pub fn new(dfa: Dfa) -> Self {
        Self {
            d: dfa.d,
            stored_rows: dfa.stored_rows,
        }
    }
}

impl LearningRule for Drtp {
    fn kind(&self) -> RuleKind {
        RuleKind::Drtp
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        ErrorPath::Target(&self.d[p])
    }

    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        named_projections(&self.d, &self.stored_rows)
    }

    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        named_projections_mut(&mut self.d, &self.stored_rows)
    }
}
