//! Optimizers: SGD (momentum, weight decay) and Adam.
//!
//! Gradients are means over the batch. Weight decay is the coupled L2 form
//! (`g += wd * w`) for both optimizers.

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
                for ((p, &g), m) in param.iter_mut().zip(grad).zip(st.m.iter_mut()) {
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
                    .zip(st.m.iter_mut())
                    .zip(st.v.iter_mut())
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

#[cfg(test)]
mod tests {
    use super::*;

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
