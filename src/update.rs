//! The end every rule shares: from the errors at each layer, the weight
//! gradients `dW = delta^T h / B`, `db = mean(delta)`, and the optimizer step.
//!
//! With plain SGD the gradient product accumulates straight into the weights
//! (`W -= lr/B * delta^T h` in one GEMM call), so no gradient buffer is
//! written; other optimizers get buffers allocated once. A convolution over
//! channels-last input makes its product with tap-major columns, which
//! passes through a buffer of its own on its way back to the weight's
//! layout ([`step_weight`]).

use crate::layers::{bias_grad, grad_operands, Kind, Layer};
use crate::named::NamedTensorMut;
use crate::network::{Activations, Network};
use crate::optim::{OptimConfig, ParamGroup};
use crate::tensor::{gemm, Matrix, View};

/// Optimizer state and gradient buffers for every layer of one network: a
/// [`ParamGroup`] whose tensor `2i` is layer `i`'s weight and `2i + 1` its bias.
#[derive(Debug)]
pub struct NetUpdater {
    group: ParamGroup,
    /// For each layer whose gradient product comes out in another column
    /// order ([`Kind::grad_product_reordered`]), the product; empty for the
    /// others.
    products: Vec<Matrix>,
}

impl NetUpdater {
    /// State and buffers for `net` under `opt`.
    pub fn new(net: &Network, opt: OptimConfig) -> Self {
        let shapes = net
            .layers
            .iter()
            .flat_map(|l| [l.weight.shape(), (1, l.bias.len())]);
        Self {
            group: ParamGroup::new(opt, shapes),
            products: net.layers.iter().map(product_buffer).collect(),
        }
    }

    /// The optimizer settings.
    pub fn opt(&self) -> &OptimConfig {
        &self.group.opt
    }

    /// Scales the learning rate by a schedule's `factor`.
    pub fn set_lr_factor(&mut self, factor: f32) {
        self.group.set_lr_factor(factor);
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.group.steps()
    }

    /// Sets the step count (when resuming from a checkpoint).
    pub fn set_steps(&mut self, steps: u64) {
        self.group.set_steps(steps);
    }

    /// The optimizer state as named tensors `{prefix}.{i}.{weight|bias}.{m|v}`.
    pub fn state_tensors_mut(&mut self, prefix: &str) -> Vec<NamedTensorMut<'_>> {
        self.group.state_tensors_mut(|k| {
            let part = if k % 2 == 0 { "weight" } else { "bias" };
            format!("{prefix}.{}.{part}", k / 2)
        })
    }

    /// Updates every layer `i` of `net` from `deltas[i]` (its pre-activation
    /// errors) and `acts[i]` (its inputs), over the first `rows` rows.
    pub fn apply(
        &mut self,
        net: &mut Network,
        acts: &mut Activations,
        deltas: &[Matrix],
        rows: usize,
    ) {
        self.group.begin_step();
        let scale = 1.0 / rows as f32;
        for (i, layer) in net.layers.iter_mut().enumerate() {
            layer.prepare_grad(&deltas[i], &mut acts.workspaces[i], rows);
            let Layer {
                kind, weight, bias, ..
            } = layer;
            let ws = &acts.workspaces[i];
            let (a, b) = grad_operands(kind, &acts[i], ws, &deltas[i], rows, false);
            step_weight(
                &mut self.group,
                2 * i,
                kind,
                weight,
                &mut self.products[i],
                scale,
                (a, b),
            );
            // A bias is one per output channel: its gradient sums the error
            // over every sample and position.
            let d = &deltas[i];
            self.group.step_with(2 * i + 1, bias, |out, s| {
                bias_grad(kind, out, d, rows, s * scale)
            });
        }
    }
}

/// The buffer [`step_weight`] needs for `layer`'s weight-gradient product:
/// the weight's shape where [`Kind::grad_product_reordered`], else empty.
pub fn product_buffer(layer: &Layer) -> Matrix {
    match layer.kind.grad_product_reordered() {
        true => Matrix::zeros(layer.weight.rows(), layer.weight.cols()),
        false => Matrix::zeros(0, 0),
    }
}

/// Steps tensor `k` of `group` (`param`, a weight of layer kind `kind` or a
/// stand-in of its layout) by `scale` times the gradient product `a b`:
/// in one call where the product is in the weight's layout, else through
/// `product` (a buffer of the weight's shape) and
/// [`Kind::add_grad_product`].
pub fn step_weight(
    group: &mut ParamGroup,
    k: usize,
    kind: &Kind,
    param: &mut Matrix,
    product: &mut Matrix,
    scale: f32,
    (a, b): (View<'_>, View<'_>),
) {
    if !kind.grad_product_reordered() {
        group.step_product(k, param, scale, a, b);
        return;
    }
    gemm(product, false, 1.0, a, b);
    group.step_with(k, param.as_mut_slice(), |out, s| {
        kind.add_grad_product(product.as_slice(), out, s * scale)
    });
}
