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

/// FLOPs of one training sample of `rule` through the layers of `plan`.
pub fn flops_per_sample(rule: RuleKind, plan: &[Planned]) -> f64 {
    let macs: Vec<f64> = plan.iter().map(|(k, ..)| k.macs() as f64).collect();
    let f: f64 = macs.iter().map(|m| 2.0 * m).sum();
    let c = plan
        .last()
        .map_or(0.0, |(k, ..)| k.out_shape().len() as f64);
    let hidden = plan.len().saturating_sub(1);
    let direct: f64 = plan[..hidden]
        .iter()
        .map(|(k, ..)| 2.0 * c * k.out_shape().len() as f64)
        .sum();
    let first = macs.first().map_or(0.0, |m| 2.0 * m);
    let last = macs.last().map_or(0.0, |m| 2.0 * m);
    let chain = f - first;
    match rule {
        RuleKind::Bp | RuleKind::Fa | RuleKind::Usf | RuleKind::Frsf | RuleKind::Brsf => {
            2.0 * f + chain
        }
        RuleKind::Kp => 2.0 * f + 2.0 * chain,
        RuleKind::Dfa | RuleKind::Drtp => 2.0 * f + direct,
        RuleKind::Dkp => 2.0 * f + 2.0 * direct,
        RuleKind::Bdfa => 2.0 * f + 3.0 * direct,
        RuleKind::Bfa => 2.0 * f + chain + f + (f - last) + f,
    }
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
