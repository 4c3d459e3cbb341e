//! Backpropagation: `delta_l = (delta_{l+1} W_{l+1}) .* f'(a_l)`.

use super::{propagate, ErrorStep, LearningRule, RuleKind};
use crate::tensor::Matrix;

/// Backpropagation: the forward weights carry the errors back.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bp;

impl LearningRule for Bp {
    fn kind(&self) -> RuleKind {
        RuleKind::Bp
    }

    fn hidden_errors(&mut self, step: &ErrorStep<'_>, deltas: &mut [Matrix]) {
        let (net, acts, rows) = (step.net, step.acts, step.rows);
        for i in (0..net.hidden_layers()).rev() {
            let (lo, hi) = deltas.split_at_mut(i + 1);
            let path = net.layers[i + 1].weight.view();
            propagate(
                &mut lo[i],
                hi[0].rows_view(rows),
                path,
                net.hidden,
                &acts[i + 1],
                rows,
            );
        }
    }
}
