//! Feedback alignment (Lillicrap et al. 2016): a fixed random `B_{l+1}`
//! stands in for `W_{l+1}^T`: `delta_l = (delta_{l+1} B_{l+1}^T) .* f'(a_l)`.
//!
//! Checkpoint tensors: `feedback.{i}.weight` in the stand-in layout of
//! `forward.{i}` (for a dense layer `[in_i, out_i]`, the weight transposed),
//! for i = 1..=L.

use super::{ErrorPath, FeedbackScale, InitScheme, LearningRule, RuleKind, StandIns};
use crate::layers::uniform;
use crate::named::{NamedTensor, NamedTensorMut};
use crate::network::Network;
use rand::Rng;

/// Feedback alignment with fixed random feedback matrices.
#[derive(Clone, Debug)]
pub struct Fa {
    /// `b.mats[k]` stands in for `forward.{k+1}.weight`.
    pub b: StandIns,
}

impl Fa {
    /// Draws the feedback matrices at `scale` (B for `forward.{j}` carries
    /// its `fan_out`-wide error to its `fan_in`-wide input); with
    /// [`InitScheme::Reference`], copies the initial forward weights into B
    /// (which is the receiver's scale, so `scale` must be
    /// [`FeedbackScale::Receiver`]: the config refuses the other) and zeroes
    /// every forward layer after the first.
    pub fn new(
        net: &mut Network,
        init: InitScheme,
        scale: FeedbackScale,
        rng: &mut impl Rng,
    ) -> Self {
        let b = StandIns::from_fn(net, |_, layer| match init {
            InitScheme::Default | InitScheme::Xavier => {
                let mut m = layer.stand_in_zeros();
                let bound = scale.bound(layer.fan_out(), layer.fan_in());
                uniform(m.as_mut_slice(), bound, rng);
                m
            }
            InitScheme::Reference => layer.weight_as_stand_in(),
        });
        if init == InitScheme::Reference {
            for layer in &mut net.layers[1..] {
                layer.weight.fill(0.0);
                layer.bias.fill(0.0);
            }
        }
        Self { b }
    }
}

impl LearningRule for Fa {
    fn kind(&self) -> RuleKind {
        RuleKind::Fa
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        self.b.path(p)
    }

    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        self.b.named()
    }

    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        self.b.named_mut()
    }
}
