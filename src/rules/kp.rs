//! Kolen-Pollack (Kolen & Pollack 1994; Akrout et al. 2019): FA whose
//! feedback matrices learn as the forward weights do. The error path is FA's
//! (`B_j` stands in for `W_j`, j = 1..L, in the layer's stand-in layout:
//! `[in, out]` for a dense layer); after the forward update each `B_j` takes
//! `W_j`'s gradient (in its layout) and the same weight decay `lambda`:
//!
//! `W_j -= lr * (dW_j + lambda W_j)`,  `B_j -= lr * (dW_j^T + lambda B_j)`,
//!
//! so under plain SGD `W_j - B_j^T` shrinks by `(1 - lr lambda)` every step
//! and `B_j` comes to align with `W_j^T` whatever it started at. `B_j`
//! therefore steps with the forward optimizer (its kind, rate, momentum and
//! decay; the config gives KP's the `kp_decay`), with state of its own.
//!
//! Checkpoint tensors: as FA, `feedback.{i}.weight`, i = 1..=L;
//! optimizer state `optim.feedback.{i}.weight.{m|v}`.

use super::fa::Fa;
use super::{ErrorPath, FeedbackScale, FeedbackStep, InitScheme, LearningRule, RuleKind, StandIns};
use crate::named::{NamedTensor, NamedTensorMut};
use crate::network::Network;
use crate::optim::{OptimConfig, ParamGroup};
use crate::tensor::Matrix;
use crate::update::{product_buffer, step_weight};
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
    /// `b.mats[k]` stands in for `forward.{k+1}.weight`.
    pub b: StandIns,
    group: ParamGroup,
    /// `products[k]`: the buffer `update::step_weight` needs for the
    /// gradient product of `forward.{k+1}`.
    products: Vec<Matrix>,
}

impl Kp {
    /// `B` drawn as FA's (at `scale`), stepped by `opt`, which must be the
    /// forward optimizer for the identity above to hold.
    pub fn new(
        net: &mut Network,
        init: InitScheme,
        scale: FeedbackScale,
        opt: OptimConfig,
        rng: &mut impl Rng,
    ) -> Self {
        let b = Fa::new(net, init, scale, rng).b;
        Self::from_stand_ins(net, b, opt)
    }

    /// KP around given stand-ins of `net`'s layers above the first.
    pub fn from_stand_ins(net: &Network, b: StandIns, opt: OptimConfig) -> Self {
        let products = net.layers[1..].iter().map(product_buffer).collect();
        Self {
            group: ParamGroup::new(opt, b.mats.iter().map(Matrix::shape)),
            b,
            products,
        }
    }
}

impl LearningRule for Kp {
    fn kind(&self) -> RuleKind {
        RuleKind::Kp
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        self.b.path(p)
    }

    fn train_feedback(&mut self, step: &FeedbackStep<'_>) {
        let rows = step.rows;
        self.group.begin_step();
        for (k, b) in self.b.mats.iter_mut().enumerate() {
            // The gradient W_j was stepped by, in B_j's layout.
            let j = k + 1;
            let layer = &step.net.layers[j];
            let operands = layer.stand_in_grad_operands(
                &step.acts[j],
                &step.acts.workspaces[j],
                &step.deltas[j],
                rows,
            );
            let (group, product) = (&mut self.group, &mut self.products[k]);
            let scale = 1.0 / rows as f32;
            step_weight(group, k, &layer.kind, b, product, scale, operands);
        }
    }

    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        self.b.named()
    }

    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        self.b.named_mut()
    }

    fn optimizer_state_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        self.group
            .state_tensors_mut(|k| format!("optim.feedback.{}.weight", k + 1))
    }

    fn set_steps(&mut self, steps: u64) {
        self.group.set_steps(steps);
    }

    fn set_lr_factor(&mut self, factor: f32) {
        self.group.set_lr_factor(factor);
    }
}
