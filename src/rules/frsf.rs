//! Fixed random-magnitude sign-concordant feedback (Xiao et al. 2018): FA
//! whose `B_j = |M_j| .* sign(W_j)^T` is made from the forward weight at
//! every step, before the update; `M_j` (in the stand-in layout) is drawn
//! once, as FA's `B_j` (at the feedback scale). The signs follow `W_j`, the
//! magnitudes stay random.
//!
//! Checkpoint tensors: the magnitudes `M_j`, as FA's, `feedback.{i}.weight`,
//! i = 1..=L.

use super::fa::Fa;
use super::{ErrorPath, FeedbackScale, InitScheme, LearningRule, RuleKind, StandIns};
use crate::named::{NamedTensor, NamedTensorMut};
use crate::network::Network;
use rand::Rng;

/// Fixed random-magnitude sign-concordant feedback.
#[derive(Clone, Debug)]
pub struct Frsf {
    /// `m.mats[k]`: the magnitudes of the path for `forward.{k+1}`.
    pub m: StandIns,
    /// `b.mats[k]`, the path of the last step.
    pub b: StandIns,
}

impl Frsf {
    /// `M` drawn as FA's `B` at `scale`.
    pub fn new(net: &mut Network, scale: FeedbackScale, rng: &mut impl Rng) -> Self {
        Self {
            m: Fa::new(net, InitScheme::Default, scale, rng).b,
            b: StandIns::zeros(net),
        }
    }
}

impl LearningRule for Frsf {
    fn kind(&self) -> RuleKind {
        RuleKind::Frsf
    }

    fn prepare(&mut self, net: &Network) {
        for ((b, m), layer) in self
            .b
            .mats
            .iter_mut()
            .zip(&self.m.mats)
            .zip(&net.layers[1..])
        {
            let m = m.as_slice();
            layer.sign_stand_in(b, |k| m[k].abs());
        }
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        self.b.path(p)
    }

    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        self.m.named()
    }

    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        self.m.named_mut()
    }
}
