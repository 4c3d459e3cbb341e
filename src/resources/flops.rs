//! The compute of a training step, counted from the layer plan: FLOPs are
//! 2 per multiply-add of the matrix products (elementwise work, im2col and
//! pooling are left out). With `M_i` the multiply-adds of layer `i`'s
//! forward product per sample ([`Kind::macs`](crate::layers::Kind::macs)),
//! `F = sum_i 2 M_i` (one forward pass), `C` the outputs and `n_l` the
//! units of hidden layer `l`, per sample:
//!
//! | rule | FLOPs |
//! |---|---|
//! | BP, FA, USF, FRSF, BRSF | forward F + weight gradients F + errors `F - 2 M_0` |
//! | KP | FA's + feedback update `F - 2 M_0` |
//! | DFA, DRTP | `2F + sum_l 2 C n_l` |
//! | DKP | DFA's + feedback update `sum_l 2 C n_l` |
//! | BDFA | DFA's + feedback update `sum_l 4 C n_l` |
//! | BFA | FA's + feedback network forward F + its errors `F - 2 M_L` + its gradients F |
//!
//! No error is carried into the input (`- 2 M_0`), nor into the feedback
//! network's input, the labels (`- 2 M_L`: its first layer mirrors the
//! forward network's last). The sign-concordant rules' making of B from W
//! is elementwise, left out.

use crate::layers::spec::Planned;
use crate::rules::RuleKind;

/// FLOPs of one training sample at one layer, by what they do.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LayerFlops {
    /// The forward product, `2 M_i`.
    pub forward: f64,
    /// The weight gradient, `2 M_i`.
    pub weight_gradient: f64,
    /// Carrying the error to the layer: the product back across it to its
    /// input (`2 M_i`, none at the first layer), or for the direct rules the
    /// projection of the output error to its output (`2 C n_i`).
    pub error: f64,
    /// The feedback weights' own work: KP's and DKP's updates, BDFA's loss
    /// and update, BFA's feedback network (its forward, errors, gradients).
    pub feedback: f64,
}

impl LayerFlops {
    /// All of it.
    pub fn total(&self) -> f64 {
        self.forward + self.weight_gradient + self.error + self.feedback
    }
}

/// FLOPs of one training sample of `rule` at each layer of `plan` (the
/// table of the module's documentation, layer by layer).
pub fn flops_per_layer(rule: RuleKind, plan: &[Planned]) -> Vec<LayerFlops> {
    let c = plan
        .last()
        .map_or(0.0, |(k, ..)| k.out_shape().len() as f64);
    let last = plan.len().saturating_sub(1);
    plan.iter()
        .enumerate()
        .map(|(i, (k, ..))| {
            let m = 2.0 * k.macs() as f64;
            // The product back across the layer: none into the input.
            let chain = if i == 0 { 0.0 } else { m };
            // The projection of the output error to a hidden layer's output.
            let direct = if i == last {
                0.0
            } else {
                2.0 * c * k.out_shape().len() as f64
            };
            let (error, feedback) = match rule {
                RuleKind::Bp | RuleKind::Fa | RuleKind::Usf | RuleKind::Frsf | RuleKind::Brsf => {
                    (chain, 0.0)
                }
                RuleKind::Kp => (chain, chain),
                RuleKind::Dfa | RuleKind::Drtp => (direct, 0.0),
                RuleKind::Dkp => (direct, direct),
                RuleKind::Bdfa => (direct, 2.0 * direct),
                // The mirror of the last layer takes the labels: no error
                // is carried into them.
                RuleKind::Bfa => (chain, if i == last { 2.0 * m } else { 3.0 * m }),
            };
            LayerFlops {
                forward: m,
                weight_gradient: m,
                error,
                feedback,
            }
        })
        .collect()
}

/// FLOPs of one training sample of `rule` through the layers of `plan`.
pub fn flops_per_sample(rule: RuleKind, plan: &[Planned]) -> f64 {
    flops_per_layer(rule, plan)
        .iter()
        .map(LayerFlops::total)
        .sum()
}

/// FLOPs of one sample's forward pass (what evaluation costs).
pub fn forward_flops(plan: &[Planned]) -> f64 {
    plan.iter().map(|(k, ..)| 2.0 * k.macs() as f64).sum()
}

/// The compute of one epoch of a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Compute {
    /// FLOPs of one training sample ([`flops_per_sample`]).
    pub per_sample: f64,
    /// FLOPs of one evaluated sample ([`forward_flops`]).
    pub forward: f64,
    /// Samples trained an epoch.
    pub train_samples: usize,
    /// Samples evaluated an epoch (validation and test).
    pub eval_samples: usize,
}

impl Compute {
    /// FLOPs of one epoch: its training and its evaluation.
    pub fn epoch(&self) -> f64 {
        self.per_sample * self.train_samples as f64 + self.forward * self.eval_samples as f64
    }
}
