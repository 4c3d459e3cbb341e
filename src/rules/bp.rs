//! Backpropagation: `delta_l = (delta_{l+1} W_{l+1}) .* f'(a_l)`, the error
//! carried back across each layer by its own weights.

use super::{ErrorPath, LearningRule, RuleKind};

/// Backpropagation: the forward weights carry the errors back.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bp;

impl LearningRule for Bp {
    fn kind(&self) -> RuleKind {
        RuleKind::Bp
    }

    fn error_path(&self, _p: usize) -> ErrorPath<'_> {
        ErrorPath::Weights
    }
}
