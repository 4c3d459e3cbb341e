//! Batchwise random-magnitude sign-concordant feedback (Xiao et al. 2018):
//! FRSF whose magnitudes `M_j` are drawn anew for every batch, from FA's
//! distribution (at the feedback scale).
//!
//! The draw of step `t` (counting completed training steps from 0) comes
//! from a ChaCha8 generator seeded once, when the rule is built, and set to
//! stream `t`: the same seed gives the same draws, and a resumed run, whose
//! step count the checkpoint restores, draws what the uninterrupted one did
//! with no state stored. Measuring alignment between steps redraws the
//! coming step's `M`, the one training then uses.
//!
//! Checkpoint tensors: none.

use super::{ErrorPath, FeedbackScale, FeedbackStep, LearningRule, RuleKind, StandIns};
use crate::layers::uniform;
use crate::network::Network;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Batchwise random-magnitude sign-concordant feedback.
#[derive(Clone, Debug)]
pub struct Brsf {
    /// `m.mats[k]`: the magnitudes of the last draw for `forward.{k+1}`.
    pub m: StandIns,
    /// `b.mats[k]`, the path of the last step.
    pub b: StandIns,
    scale: FeedbackScale,
    seed: u64,
    steps: u64,
}

impl Brsf {
    /// Draws the rule's seed from `rng`; magnitudes at `scale`.
    pub fn new(net: &Network, scale: FeedbackScale, rng: &mut impl Rng) -> Self {
        Self::with_seed(net, scale, rng.random())
    }

    /// BRSF whose draws come from `seed`.
    pub fn with_seed(net: &Network, scale: FeedbackScale, seed: u64) -> Self {
        Self {
            m: StandIns::zeros(net),
            b: StandIns::zeros(net),
            scale,
            seed,
            steps: 0,
        }
    }
}

impl LearningRule for Brsf {
    fn kind(&self) -> RuleKind {
        RuleKind::Brsf
    }

    fn prepare(&mut self, net: &Network) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(self.steps);
        for ((b, m), layer) in self
            .b
            .mats
            .iter_mut()
            .zip(&mut self.m.mats)
            .zip(&net.layers[1..])
        {
            let bound = self.scale.bound(layer.fan_out(), layer.fan_in());
            uniform(m.as_mut_slice(), bound, &mut rng);
            let m = m.as_slice();
            layer.sign_stand_in(b, |k| m[k].abs());
        }
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        self.b.path(p)
    }

    fn train_feedback(&mut self, _step: &FeedbackStep<'_>) {
        self.steps += 1;
    }

    fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }
}
