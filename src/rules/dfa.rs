//! Direct feedback alignment (Nøkland 2016): a fixed random `D_l` carries the
//! output error straight to every hidden layer: `delta_l = (e D_l^T) .* f'(a_l)`.
//!
//! Checkpoint tensors: `feedback.{i}.weight`, shape `[units_i, C]`, carrying
//! `e` to the output of `forward.{i}`, for i = 0..L-1; a feature map's units
//! in PyTorch's `C, H, W` order (held channels last, as the map is).

use super::{
    named_projections, named_projections_mut, ErrorPath, FeedbackScale, InitScheme, LearningRule,
    RuleKind,
};
use crate::layers::uniform;
use crate::named::{NamedTensor, NamedTensorMut};
use crate::network::Network;
use crate::tensor::Matrix;
use rand::Rng;

/// Direct feedback alignment with fixed random feedback matrices.
#[derive(Clone, Debug)]
pub struct Dfa {
    /// `d[l]` is `[units_l, C]` for hidden layer `l` (0-based), its rows in
    /// the order of the layer's output units (channels last for a
    /// convolution's).
    pub d: Vec<Matrix>,
    /// The order `d[l]`'s rows are stored in
    /// ([`Network::hidden_chw_row_orders`]).
    pub stored_rows: Vec<Option<Vec<usize>>>,
}

impl Dfa {
    /// Draws the feedback matrices at `scale`: `U(+-1/sqrt(C))` for
    /// [`FeedbackScale::Sender`] (D multiplies the C-wide error),
    /// `U(+-1/sqrt(units_l))` for [`FeedbackScale::Receiver`].
    /// [`InitScheme::Reference`] also sets every forward weight and bias to zero.
    pub fn new(
        net: &mut Network,
        init: InitScheme,
        scale: FeedbackScale,
        rng: &mut impl Rng,
    ) -> Self {
        let classes = net.outputs();
        let d = net
            .hidden_sizes()
            .into_iter()
            .map(|n| {
                let mut m = Matrix::zeros(n, classes);
                uniform(m.as_mut_slice(), scale.bound(classes, n), rng);
                m
            })
            .collect();
        if init == InitScheme::Reference {
            start_at_zero(net);
        }
        Self {
            d,
            stored_rows: net.hidden_chw_row_orders(),
        }
    }
}

/// The published code's start for its direct rules
/// ([`InitScheme::Reference`]): every forward weight and bias at zero.
pub(super) fn start_at_zero(net: &mut Network) {
    for layer in &mut net.layers {
        layer.weight.fill(0.0);
        layer.bias.fill(0.0);
    }
}

impl LearningRule for Dfa {
    fn kind(&self) -> RuleKind {
        RuleKind::Dfa
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        ErrorPath::OutputError(&self.d[p])
    }

    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        named_projections(&self.d, &self.stored_rows)
    }

    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        named_projections_mut(&mut self.d, &self.stored_rows)
    }
}
