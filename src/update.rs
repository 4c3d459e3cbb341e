//! The end every rule shares: from the errors at each layer, the weight
//! gradients `dW = delta^T h / B`, `db = mean(delta)`, and the optimizer step.
//!
//! With plain SGD the gradient product accumulates straight into the weights
//! (`W -= lr/B * delta^T h` in one GEMM call), so no gradient buffer is
//! written; other optimizers get buffers allocated once.

use crate::model::Mlp;
use crate::optim::{OptimConfig, ParamState};
use crate::tensor::{gemm, Matrix};

/// Optimizer state and gradient buffers for every layer of one network.
#[derive(Debug)]
pub struct NetUpdater {
    /// The optimizer settings.
    pub opt: OptimConfig,
    states: Vec<(ParamState, ParamState)>,
    grads: Vec<(Matrix, Vec<f32>)>,
    steps: u64,
}

impl NetUpdater {
    /// State and buffers for `net` under `opt`.
    pub fn new(net: &Mlp, opt: OptimConfig) -> Self {
        let states = net
            .layers
            .iter()
            .map(|l| {
                (
                    opt.state(l.weight.as_slice().len()),
                    opt.state(l.bias.len()),
                )
            })
            .collect();
        let grads = if opt.is_plain_sgd() {
            Vec::new()
        } else {
            net.layers
                .iter()
                .map(|l| {
                    (
                        Matrix::zeros(l.fan_out(), l.fan_in()),
                        vec![0.0; l.fan_out()],
                    )
                })
                .collect()
        };
        Self {
            opt,
            states,
            grads,
            steps: 0,
        }
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the step count (when resuming from a checkpoint).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// The optimizer state as named tensors `{prefix}.{i}.{weight|bias}.{m|v}`.
    pub fn state_tensors_mut(&mut self, prefix: &str) -> Vec<crate::rules::FeedbackTensorMut<'_>> {
        let mut out = Vec::new();
        for (i, (w, b)) in self.states.iter_mut().enumerate() {
            for (part, st) in [("weight", w), ("bias", b)] {
                for (k, data) in st.buffers_mut() {
                    out.push(crate::rules::FeedbackTensorMut {
                        name: format!("{prefix}.{i}.{part}.{k}"),
                        shape: vec![data.len()],
                        data,
                    });
                }
            }
        }
        out
    }

    /// Updates every layer `i` of `net` from `deltas[i]` (its pre-activation
    /// errors) and `acts[i]` (its inputs), over the first `rows` rows.
    pub fn apply(&mut self, net: &mut Mlp, acts: &[Matrix], deltas: &[Matrix], rows: usize) {
        self.steps += 1;
        let scale = 1.0 / rows as f32;
        for (i, layer) in net.layers.iter_mut().enumerate() {
            let delta = deltas[i].rows_view(rows).t();
            let input = acts[i].rows_view(rows);
            if self.opt.is_plain_sgd() {
                let step = -self.opt.lr * scale;
                gemm(&mut layer.weight, true, step, delta, input);
                column_sums_into(&mut layer.bias, deltas[i].rows_slice(rows), step);
            } else {
                let (gw, gb) = &mut self.grads[i];
                gemm(gw, false, scale, delta, input);
                gb.fill(0.0);
                column_sums_into(gb, deltas[i].rows_slice(rows), scale);
                let (sw, sb) = &mut self.states[i];
                self.opt
                    .step(self.steps, layer.weight.as_mut_slice(), gw.as_slice(), sw);
                self.opt.step(self.steps, &mut layer.bias, gb, sb);
            }
        }
    }
}

/// `out[j] += scale * sum_r m[r][j]`.
pub fn column_sums_into(out: &mut [f32], m: &[f32], scale: f32) {
    crate::activation::vectorized(ColumnSums(out, m, scale))
}

struct ColumnSums<'a>(&'a mut [f32], &'a [f32], f32);

impl crate::activation::Kernel for ColumnSums<'_> {
    #[inline(always)]
    fn run(self) {
        let ColumnSums(out, m, scale) = self;
        for row in m.chunks_exact(out.len()) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o += scale * v;
            }
        }
    }
}
