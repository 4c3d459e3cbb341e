//! Optimizers: SGD (momentum, weight decay) and Adam.
//!
//! Gradients are means over the batch. Weight decay is the coupled L2 form
//! (`g += wd * w`) for both optimizers.

use crate::named::NamedTensorMut;
use crate::tensor::{gemm, Matrix, View};
use serde::{Deserialize, Serialize};

/// Which optimizer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent (the paper's).
    #[default]
    Sgd,
    /// Adam (Kingma and Ba 2015).
    Adam,
}

/// Optimizer settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate on the mean gradient.
    pub lr: f32,
    /// SGD momentum (0 = none).
    pub momentum: f32,
    /// Coupled L2 weight decay.
    pub weight_decay: f32,
    /// Adam's first-moment decay.
    pub beta1: f32,
    /// Adam's second-moment decay.
    pub beta2: f32,
    /// Adam's denominator guard.
    pub eps: f32,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Sgd,
            lr: 0.0128,
            momentum: 0.0,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Per-parameter optimizer state, allocated once.
#[derive(Clone, Debug, Default)]
pub struct ParamState {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl ParamState {
    /// The state vectors (momentum / first and second moments), named
    /// `m` and `v`, for checkpoints; empty ones are left out.
    pub fn buffers_mut(&mut self) -> Vec<(&'static str, &mut [f32])> {
        let mut out = Vec::new();
        if !self.m.is_empty() {
            out.push(("m", self.m.as_mut_slice()));
        }
        if !self.v.is_empty() {
            out.push(("v", self.v.as_mut_slice()));
        }
        out
    }
}

impl OptimConfig {
    /// True when the update is `w -= lr * g` exactly, so that the gradient
    /// product may accumulate straight into the weights.
    pub fn is_plain_sgd(&self) -> bool {
        self.kind == OptimizerKind::Sgd && self.momentum == 0.0 && self.weight_decay == 0.0
    }

    /// State for a parameter of `len` elements.
    pub fn state(&self, len: usize) -> ParamState {
        match self.kind {
            OptimizerKind::Sgd if self.momentum == 0.0 => ParamState::default(),
            OptimizerKind::Sgd => ParamState {
                m: vec![0.0; len],
                v: Vec::new(),
            },
            OptimizerKind::Adam => ParamState {
                m: vec![0.0; len],
                v: vec![0.0; len],
            },
        }
    }

    /// One update of `param` from `grad`; `t` counts steps from 1 (Adam's bias correction).
    pub fn step(&self, t: u64, param: &mut [f32], grad: &[f32], st: &mut ParamState) {
        self.step_slices(t, param, grad, &mut st.m, &mut st.v);
    }

    /// [`OptimConfig::step`] on its slices: the state `m` and `v` are empty
    /// where the optimizer keeps none, else as long as `param`. Every
    /// element is updated alone, so bands of the slices give bitwise the
    /// whole-slice result.
    fn step_slices(&self, t: u64, param: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
        debug_assert_eq!(param.len(), grad.len());
        let (lr, wd) = (self.lr, self.weight_decay);
        match self.kind {
            OptimizerKind::Sgd if self.momentum == 0.0 => {
                for (p, &g) in param.iter_mut().zip(grad) {
                    *p -= lr * (g + wd * *p);
                }
            }
            OptimizerKind::Sgd => {
                let mu = self.momentum;
                for ((p, &g), m) in param.iter_mut().zip(grad).zip(m.iter_mut()) {
                    *m = mu * *m + g + wd * *p;
                    *p -= lr * *m;
                }
            }
            OptimizerKind::Adam => {
                let (b1, b2) = (self.beta1, self.beta2);
                let c1 = 1.0 - b1.powi(t.min(i32::MAX as u64) as i32);
                let c2 = 1.0 - b2.powi(t.min(i32::MAX as u64) as i32);
                let step = lr / c1;
                let c2s = c2.sqrt();
                for (((p, &g), m), v) in param
                    .iter_mut()
                    .zip(grad)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                {
                    let g = g + wd * *p;
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *p -= step * *m / (v.sqrt() / c2s + self.eps);
                }
            }
        }
    }
}

/// One optimizer over a group of loose tensors (a network's weights and
/// biases, or a rule's feedback matrices): per-tensor state, gradient
/// buffers and the step count, so that every trained tensor in biprop is
/// stepped by the same code. Tensor `k` is the `k`-th shape given to
/// [`ParamGroup::new`].
///
/// With plain SGD the gradient accumulates straight into the tensor (one
/// GEMM, no buffer); other optimizers get one buffer per tensor, made once.
#[derive(Debug)]
pub struct ParamGroup {
    /// The optimizer settings (its `lr` the scheduled one).
    pub opt: OptimConfig,
    base_lr: f32,
    states: Vec<ParamState>,
    grads: Vec<Matrix>,
    steps: u64,
}

/// [`OptimConfig::step_slices`] cut into `parts` bands under `rayon::join`.
fn band(
    opt: &OptimConfig,
    t: u64,
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    parts: usize,
) {
    // Bands of whole 64-byte lines.
    let at = (param.len() / parts.max(1))
        .next_multiple_of(16)
        .min(param.len());
    if parts < 2 || at == param.len() {
        opt.step_slices(t, param, grad, m, v);
        return;
    }
    let (p0, p1) = param.split_at_mut(at);
    let (g0, g1) = grad.split_at(at);
    fn cut(x: &mut [f32], at: usize) -> (&mut [f32], &mut [f32]) {
        if x.is_empty() {
            (&mut [], &mut [])
        } else {
            x.split_at_mut(at)
        }
    }
    let (m0, m1) = cut(m, at);
    let (v0, v1) = cut(v, at);
    rayon::join(
        || opt.step_slices(t, p0, g0, m0, v0),
        || band(opt, t, p1, g1, m1, v1, parts - 1),
    );
}

impl ParamGroup {
    /// State (and, unless plain SGD, gradient buffers) for tensors of the
    /// given `(rows, cols)` shapes.
    pub fn new(opt: OptimConfig, shapes: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let shapes: Vec<(usize, usize)> = shapes.into_iter().collect();
        Self {
            states: shapes.iter().map(|&(r, c)| opt.state(r * c)).collect(),
            grads: if opt.is_plain_sgd() {
                Vec::new()
            } else {
                shapes.iter().map(|&(r, c)| Matrix::zeros(r, c)).collect()
            },
            base_lr: opt.lr,
            opt,
            steps: 0,
        }
    }

    /// Sets the learning rate to the configured one times `factor` (a
    /// schedule's); 1 gives it back exactly.
    pub fn set_lr_factor(&mut self, factor: f32) {
        self.opt.lr = self.base_lr * factor;
    }

    /// Steps begun.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the step count (when resuming from a checkpoint).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Starts a step: call once before stepping the group's tensors, since
    /// Adam's bias correction counts steps, not tensor updates.
    pub fn begin_step(&mut self) {
        self.steps += 1;
    }

    /// Steps tensor `k` by the gradient `alpha * a b`.
    pub fn step_product(
        &mut self,
        k: usize,
        param: &mut Matrix,
        alpha: f32,
        a: View<'_>,
        b: View<'_>,
    ) {
        if self.opt.is_plain_sgd() {
            gemm(param, true, -self.opt.lr * alpha, a, b);
        } else {
            gemm(&mut self.grads[k], false, alpha, a, b);
            self.finish(k, param.as_mut_slice());
        }
    }

    /// Steps tensor `k` by a gradient that `grad(out, scale)` adds, times
    /// `scale`, into the zeroed `out` (for gradients that are not one
    /// product, such as a bias's column sums).
    pub fn step_with(&mut self, k: usize, param: &mut [f32], grad: impl FnOnce(&mut [f32], f32)) {
        if self.opt.is_plain_sgd() {
            grad(param, -self.opt.lr);
        } else {
            let g = self.grads[k].as_mut_slice();
            g.fill(0.0);
            grad(g, 1.0);
            self.finish(k, param);
        }
    }

    /// The optimizer's elementwise update of tensor `k`, in bands on the GEMM
    /// threads: a memory-bound pass over every weight (decay, momentum,
    /// Adam) that on one thread cost KP a fifth of BP's step on 1x800.
    fn finish(&mut self, k: usize, param: &mut [f32]) {
        let parts = if param.len() < 1 << 16 {
            1
        } else {
            crate::tensor::gemm_threads()
        };
        let st = &mut self.states[k];
        band(
            &self.opt,
            self.steps,
            param,
            self.grads[k].as_slice(),
            &mut st.m,
            &mut st.v,
            parts,
        );
    }

    /// The state tensors, `{name(k)}.{m|v}`, for checkpoints that resume exactly.
    pub fn state_tensors_mut(&mut self, name: impl Fn(usize) -> String) -> Vec<NamedTensorMut<'_>> {
        self.state_tensors_mut_ordered(name, |_| None)
    }

    /// [`Self::state_tensors_mut`], parameter `k`'s state stored in the row
    /// order `order(k)` of the parameter ([`NamedTensor::row_order`](crate::named::NamedTensor::row_order)).
    pub fn state_tensors_mut_ordered<'a>(
        &'a mut self,
        name: impl Fn(usize) -> String,
        order: impl Fn(usize) -> Option<&'a [usize]>,
    ) -> Vec<NamedTensorMut<'a>> {
        let mut out = Vec::new();
        for (k, st) in self.states.iter_mut().enumerate() {
            for (part, data) in st.buffers_mut() {
                out.push(
                    NamedTensorMut::new(format!("{}.{part}", name(k)), vec![data.len()], data)
                        .with_row_order(order(k)),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The optimizer's pass, cut in bands on several threads, gives bitwise
    /// the one-thread result (weights and state), for every optimizer.
    #[test]
    fn banded_updates_are_the_sequential_ones() {
        let n = 100_003;
        let init = |f: f32| -> Vec<f32> { (0..n).map(|i| (i as f32 * f).sin()).collect() };
        for (kind, momentum, wd) in [
            (OptimizerKind::Sgd, 0.0, 0.01),
            (OptimizerKind::Sgd, 0.9, 0.01),
            (OptimizerKind::Adam, 0.0, 0.001),
        ] {
            let opt = OptimConfig {
                kind,
                momentum,
                weight_decay: wd,
                lr: 0.1,
                ..Default::default()
            };
            let run = |threads: usize| {
                let mut group = ParamGroup::new(opt, [(1, n)]);
                let mut p = init(0.37);
                let g = Matrix::from_vec(1, n, init(0.91)).unwrap();
                let x = Matrix::from_vec(1, 1, vec![1.0]).unwrap();
                let par = crate::tensor::Parallelism::threads(threads).unwrap();
                for _ in 0..3 {
                    group.begin_step();
                    let mut w = Matrix::from_vec(1, n, p.clone()).unwrap();
                    par.install(|| group.step_product(0, &mut w, 1.0, x.view(), g.view()));
                    p = w.as_slice().to_vec();
                }
                let state: Vec<Vec<f32>> = group
                    .state_tensors_mut(|_| "s".into())
                    .into_iter()
                    .map(|t| t.data.to_vec())
                    .collect();
                (p, state)
            };
            let one = run(1);
            assert_ne!(one.0, init(0.37), "{kind:?} moved nothing");
            for threads in [2, 3] {
                assert_eq!(run(threads), one, "{kind:?}, {threads} threads");
            }
        }
    }

    /// Each optimizer must find the minimum of a convex quadratic.
    #[test]
    fn optimizers_minimize_a_quadratic() {
        for (kind, lr, momentum) in [
            (OptimizerKind::Sgd, 0.1, 0.0),
            (OptimizerKind::Sgd, 0.05, 0.9),
            (OptimizerKind::Adam, 0.05, 0.0),
        ] {
            let cfg = OptimConfig {
                kind,
                lr,
                momentum,
                ..Default::default()
            };
            let target = [3.0f32, -2.0, 0.5];
            let mut p = [0.0f32; 3];
            let mut st = cfg.state(3);
            for t in 1..=2000 {
                let g: Vec<f32> = p.iter().zip(&target).map(|(p, t)| p - t).collect();
                cfg.step(t, &mut p, &g, &mut st);
            }
            for (p, t) in p.iter().zip(&target) {
                assert!((p - t).abs() < 1e-3, "{kind:?}: {p} vs {t}");
            }
        }
    }

    /// The fused plain-SGD path and the buffered one take the same step,
    /// and the state is named per tensor.
    #[test]
    fn param_group_fused_and_buffered_agree() {
        let a = Matrix::from_vec(3, 2, vec![0.5, -1.0, 2.0, 0.25, -0.75, 1.5]).unwrap();
        let b = Matrix::from_vec(3, 2, vec![1.0, 2.0, -0.5, 0.5, 0.0, -1.0]).unwrap();
        let start = Matrix::from_vec(2, 2, vec![0.1, 0.2, 0.3, 0.4]).unwrap();
        let step = |opt: OptimConfig| {
            let mut g = ParamGroup::new(opt, [(2, 2), (1, 2)]);
            let (mut w, mut bias) = (start.clone(), vec![1.0f32, -1.0]);
            g.begin_step();
            g.step_product(0, &mut w, 0.5, a.view().t(), b.view());
            g.step_with(1, &mut bias, |out, s| {
                out.iter_mut().for_each(|v| *v += s * 2.0)
            });
            let names: Vec<String> = g
                .state_tensors_mut(|k| format!("t{k}"))
                .into_iter()
                .map(|t| t.name)
                .collect();
            (w, bias, names)
        };
        let plain = OptimConfig {
            lr: 0.1,
            ..Default::default()
        };
        // Momentum's first step is plain SGD's, through the buffers.
        let (w0, b0, n0) = step(plain);
        let (w1, b1, n1) = step(OptimConfig {
            momentum: 0.9,
            ..plain
        });
        for (x, y) in w0.as_slice().iter().zip(w1.as_slice()) {
            assert!((x - y).abs() < 1e-7, "{x} vs {y}");
        }
        assert_eq!(b0, b1);
        assert_eq!(b0, vec![0.8, -1.2]);
        assert!(n0.is_empty());
        assert_eq!(n1, ["t0.m", "t1.m"]);
        // w -= 0.1 * 0.5 * a^T b.
        let want = 0.1 - 0.05 * (0.5 * 1.0 + 2.0 * -0.5 + -0.75 * 0.0);
        assert!((w0.get(0, 0) - want).abs() < 1e-7);
    }

    #[test]
    fn weight_decay_shrinks_toward_zero() {
        let cfg = OptimConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..Default::default()
        };
        let mut p = [1.0f32];
        cfg.step(1, &mut p, &[0.0], &mut cfg.state(1));
        assert!((p[0] - 0.95).abs() < 1e-7);
    }
}
