//! Direct feedback alignment (Nøkland 2016): a fixed random `D_l` carries the
//! output error straight to every hidden layer: `delta_l = (e D_l^T) .* f'(a_l)`.
//!
//! Checkpoint tensors: `feedback.{i}.weight`, shape `[out_i, C]`, carrying `e`
//! to the output of `forward.{i}`, for i = 0..L-1.

use super::{
    named, named_mut, propagate, ErrorStep, FeedbackScale, FeedbackTensor, FeedbackTensorMut,
    InitScheme, LearningRule, RuleKind,
};
use crate::model::{uniform, Mlp};
use crate::tensor::Matrix;
use rand::Rng;

/// Direct feedback alignment with fixed random feedback matrices.
#[derive(Clone, Debug)]
pub struct Dfa {
    /// `d[l]` is `[n_l, C]` for hidden layer `l` (0-based).
    pub d: Vec<Matrix>,
}

impl Dfa {
    /// Draws the feedback matrices at `scale`: `U(+-1/sqrt(C))` for
    /// [`FeedbackScale::Sender`] (D multiplies the C-wide error),
    /// `U(+-1/sqrt(n_l))` for [`FeedbackScale::Receiver`].
    /// [`InitScheme::Reference`] also sets every forward weight and bias to zero.
    pub fn new(net: &mut Mlp, init: InitScheme, scale: FeedbackScale, rng: &mut impl Rng) -> Self {
        let classes = net.outputs();
        let d = net.sizes[1..net.sizes.len() - 1]
            .iter()
            .map(|&n| {
                let mut m = Matrix::zeros(n, classes);
                uniform(m.as_mut_slice(), scale.bound(classes, n), rng);
                m
            })
            .collect();
        if init == InitScheme::Reference {
            for layer in &mut net.layers {
                layer.weight.fill(0.0);
                layer.bias.fill(0.0);
            }
        }
        Self { d }
    }

    /// `delta_l = (e D_l^T) .* f'(a_l)` for every hidden layer, with the given matrices.
    pub(crate) fn direct_errors(
        d: &[Matrix],
        net: &Mlp,
        acts: &[Matrix],
        deltas: &mut [Matrix],
        rows: usize,
    ) {
        let l = net.hidden_layers();
        let (hidden, out) = deltas.split_at_mut(l);
        for (i, dst) in hidden.iter_mut().enumerate() {
            let path = d[i].view().t();
            propagate(
                dst,
                out[0].rows_view(rows),
                path,
                net.hidden,
                &acts[i + 1],
                rows,
            );
        }
    }
}

impl LearningRule for Dfa {
    fn kind(&self) -> RuleKind {
        RuleKind::Dfa
    }

    fn hidden_errors(&mut self, step: &ErrorStep<'_>, deltas: &mut [Matrix]) {
        let (net, acts, rows) = (step.net, step.acts, step.rows);
        Self::direct_errors(&self.d, net, acts, deltas, rows);
    }

    fn feedback_tensors(&self) -> Vec<FeedbackTensor<'_>> {
        named(&self.d, 0)
    }

    fn feedback_tensors_mut(&mut self) -> Vec<FeedbackTensorMut<'_>> {
        named_mut(&mut self.d, 0)
    }
}
