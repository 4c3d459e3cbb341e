//! Uniform sign-concordant feedback (Liao, Leibo & Poggio 2016; the name is
//! Xiao et al. 2018's): FA whose `B_j` is made from the forward weight at
//! every step, before the update: `B_j = sign(W_j)^T / sqrt(fan_in_j)`
//! (for a dense layer `n_{j-1}`, the width of the layer the error reaches),
//! or `sign(W_j)^T sqrt(2 / (fan_in_j + fan_out_j))` with
//! [`UsfScale::Xavier`], biotorch's scale.
//! Only the signs of `W_j` travel back, never its magnitudes.
//! `sign(0) = 0`, so a zero weight carries no error.
//!
//! Checkpoint tensors: none (the path is a function of the forward weights).

use super::{ErrorPath, LearningRule, RuleKind, StandIns, UsfScale};
use crate::network::Network;

/// Uniform sign-concordant feedback.
#[derive(Clone, Debug)]
pub struct Usf {
    /// `b.mats[k]`, the path of the last step for `forward.{k+1}`.
    pub b: StandIns,
    scale: UsfScale,
}

impl Usf {
    /// Path buffers for `net`, at the default scale `1/sqrt(fan_in)`.
    pub fn new(net: &Network) -> Self {
        Self::with_scale(net, UsfScale::FanIn)
    }

    /// Path buffers for `net`, with magnitudes at `scale`.
    pub fn with_scale(net: &Network, scale: UsfScale) -> Self {
        Self {
            b: StandIns::zeros(net),
            scale,
        }
    }
}

impl LearningRule for Usf {
    fn kind(&self) -> RuleKind {
        RuleKind::Usf
    }

    fn prepare(&mut self, net: &Network) {
        for (b, layer) in self.b.mats.iter_mut().zip(&net.layers[1..]) {
            let m = self.scale.magnitude(layer.fan_in(), layer.fan_out());
            layer.sign_stand_in(b, |_| m);
        }
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        self.b.path(p)
    }
}
