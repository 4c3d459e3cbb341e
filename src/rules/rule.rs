//! The seam between rules and layers: the rule trait, the answer a rule
//! gives per layer ([`ErrorPath`]), and the feedback matrices several rules
//! share ([`StandIns`], projections).

use crate::layers::Layer;
use crate::named::{NamedTensor, NamedTensorMut};
use crate::network::{Activations, Network};
use crate::tensor::Matrix;
use serde::{Deserialize, Serialize};

/// The learning rules biprop implements.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Backpropagation.
    #[default]
    Bp,
    /// Feedback alignment (Lillicrap et al. 2016): fixed random B in place of W^T.
    Fa,
    /// Direct feedback alignment (Nøkland 2016): fixed random D from the output error to every hidden layer.
    Dfa,
    /// Bidirectional FA (the paper): the feedback weights form a label-to-input network that learns.
    Bfa,
    /// Bidirectional DFA (the paper): DFA whose feedback matrices learn.
    Bdfa,
    /// Kolen-Pollack (Akrout et al. 2019): FA whose B gets W^T's gradient and decay.
    Kp,
    /// Uniform sign-concordant feedback: B = sign(W)^T / sqrt(fan_in), every step.
    Usf,
    /// Fixed random-magnitude sign-concordant feedback: B = |M| .* sign(W)^T, M fixed.
    Frsf,
    /// Batchwise random-magnitude sign-concordant feedback: FRSF with M redrawn every batch.
    Brsf,
    /// Direct random target projection (Frenkel et al. 2021): fixed random D from the target.
    Drtp,
    /// Direct Kolen-Pollack (Webster et al. 2020): DFA whose D learns from h^T e.
    Dkp,
}

impl RuleKind {
    /// The rule's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Bp => "bp",
            RuleKind::Fa => "fa",
            RuleKind::Dfa => "dfa",
            RuleKind::Bfa => "bfa",
            RuleKind::Bdfa => "bdfa",
            RuleKind::Kp => "kp",
            RuleKind::Usf => "usf",
            RuleKind::Frsf => "frsf",
            RuleKind::Brsf => "brsf",
            RuleKind::Drtp => "drtp",
            RuleKind::Dkp => "dkp",
        }
    }

    /// Every rule: the paper's five in its column order, then the others
    /// (the order of reports and plots).
    pub const ALL: [RuleKind; 11] = [
        RuleKind::Bp,
        RuleKind::Fa,
        RuleKind::Dfa,
        RuleKind::Bfa,
        RuleKind::Bdfa,
        RuleKind::Kp,
        RuleKind::Usf,
        RuleKind::Frsf,
        RuleKind::Brsf,
        RuleKind::Drtp,
        RuleKind::Dkp,
    ];
}

impl std::fmt::Display for RuleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the error reaches the output of a hidden layer.
#[derive(Clone, Copy, Debug)]
pub enum ErrorPath<'a> {
    /// Back across the next layer through its own weights (BP).
    Weights,
    /// Back across the next layer through a stand-in for its weights, in
    /// that layer's stand-in layout.
    StandIn(&'a Matrix),
    /// `e D^T`: the output error projected by `D` `[units, classes]`.
    OutputError(&'a Matrix),
    /// `y D^T`: the one-hot target projected by `D` `[units, classes]`.
    Target(&'a Matrix),
    /// `e K^T` at the input of the next layer (after its pooling and
    /// `flatten`), `K` `[inputs of the next layer, classes]`, carried back
    /// from there to this layer's output as BP's error would be (biotorch's
    /// DFA).
    OutputErrorAtNextInput(&'a Matrix),
}

/// What a rule may use to train its own feedback weights after the forward update.
pub struct FeedbackStep<'a> {
    /// The network, after this batch's forward update.
    pub net: &'a Network,
    /// This batch's forward activations, before the update (see
    /// [`crate::network`]: `acts[p + 1]` is the output of layer `p`).
    pub acts: &'a Activations,
    /// This batch's errors, as the forward update used them: one per layer,
    /// at its pre-activation; the last is the output error `e`.
    pub deltas: &'a [Matrix],
    /// One-hot targets of this batch.
    pub targets: &'a Matrix,
    /// The output pre-activations of this batch's forward pass.
    pub logits: &'a Matrix,
    /// Rows of the batch in use.
    pub rows: usize,
}

/// A learning rule.
pub trait LearningRule: Send {
    /// Which rule this is.
    fn kind(&self) -> RuleKind;

    /// Called once a step before the errors are made, with the weights as
    /// they are before the update: the sign-concordant rules make their
    /// stand-ins from them here.
    fn prepare(&mut self, _net: &Network) {}

    /// How the error reaches the output of hidden layer `p` (0-based, below
    /// the output layer).
    fn error_path(&self, p: usize) -> ErrorPath<'_>;

    /// Trains the rule's own feedback weights, once per batch, after the
    /// forward update. Rules with fixed feedback do nothing.
    fn train_feedback(&mut self, _step: &FeedbackStep<'_>) {}

    /// Feedback losses accumulated since the last call (name, mean), then reset.
    fn take_feedback_losses(&mut self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// The rule's feedback tensors, for checkpoints and diagnostics (none by default).
    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        Vec::new()
    }

    /// The rule's feedback tensors, mutable, for loading checkpoints.
    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        Vec::new()
    }

    /// The state of the feedback optimizer (momentum, Adam moments), for
    /// checkpoints that resume exactly. Names start with `optim.feedback.`.
    fn optimizer_state_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        Vec::new()
    }

    /// Sets the feedback optimizer's step count (when resuming).
    fn set_steps(&mut self, _steps: u64) {}

    /// Scales the feedback optimizer's learning rate by a schedule's
    /// `factor`, as the forward one is.
    fn set_lr_factor(&mut self, _factor: f32) {}

    /// The generative feedback network, for rules that have one (BFA).
    fn feedback_network(&self) -> Option<&Network> {
        None
    }
}

/// Stand-ins for the weights of layers `1..=L` (every layer whose input is a
/// hidden layer), each in its layer's stand-in layout: the matrices of FA,
/// KP and the sign-concordant rules, named `feedback.{p}.weight` after the
/// layer `p` they stand in for.
#[derive(Clone, Debug)]
pub struct StandIns {
    /// `mats[k]` stands in for `forward.{k+1}`.
    pub mats: Vec<Matrix>,
    shapes: Vec<Vec<usize>>,
}

impl StandIns {
    /// Zero stand-ins for `net`'s layers above the first.
    pub fn zeros(net: &Network) -> Self {
        Self::from_fn(net, |_, layer| layer.stand_in_zeros())
    }

    /// `make(p, layer)` for each layer `p` above the first.
    pub fn from_fn(net: &Network, mut make: impl FnMut(usize, &Layer) -> Matrix) -> Self {
        let (mats, shapes) = net.layers[1..]
            .iter()
            .enumerate()
            .map(|(k, l)| (make(k + 1, l), l.stand_in_shape()))
            .unzip();
        Self { mats, shapes }
    }

    /// Given matrices (`mats[k]` for `forward.{k+1}`), checkpoint shapes
    /// from their matrix shapes.
    pub fn from_matrices(mats: Vec<Matrix>) -> Self {
        let shapes = mats.iter().map(|m| vec![m.rows(), m.cols()]).collect();
        Self { mats, shapes }
    }

    /// The stand-in carrying the error to the output of hidden layer `p`
    /// (the one for `forward.{p+1}`).
    pub fn path(&self, p: usize) -> ErrorPath<'_> {
        ErrorPath::StandIn(&self.mats[p])
    }

    /// As named tensors.
    pub fn named(&self) -> Vec<NamedTensor<'_>> {
        named_above_first(&self.mats, &self.shapes)
    }

    /// As mutable named tensors.
    pub fn named_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        named_above_first_mut(&mut self.mats, &self.shapes)
    }
}

/// A rule's matrices for the layers above the first, `mats[k]` named
/// `feedback.{k+1}.weight` after the layer `forward.{k+1}` it belongs to,
/// with the checkpoint shape `shapes[k]`.
pub fn named_above_first<'a>(mats: &'a [Matrix], shapes: &[Vec<usize>]) -> Vec<NamedTensor<'a>> {
    mats.iter()
        .zip(shapes)
        .enumerate()
        .map(|(k, (m, s))| {
            NamedTensor::new(
                format!("feedback.{}.weight", k + 1),
                s.clone(),
                m.as_slice(),
            )
        })
        .collect()
}

/// Mutable counterpart of [`named_above_first`].
pub fn named_above_first_mut<'a>(
    mats: &'a mut [Matrix],
    shapes: &[Vec<usize>],
) -> Vec<NamedTensorMut<'a>> {
    mats.iter_mut()
        .zip(shapes)
        .enumerate()
        .map(|(k, (m, s))| {
            NamedTensorMut::new(
                format!("feedback.{}.weight", k + 1),
                s.clone(),
                m.as_mut_slice(),
            )
        })
        .collect()
}

/// Projections `[units_p, classes]` (the direct rules' `D`) named
/// `feedback.{p}.weight`, one per hidden layer `p`, each stored in its
/// `rows[p]` (a feature map's units in PyTorch's `C, H, W` order, from
/// [`crate::network::Network::hidden_chw_row_orders`]).
pub fn named_projections<'a>(
    d: &'a [Matrix],
    rows: &'a [Option<Vec<usize>>],
) -> Vec<NamedTensor<'a>> {
    d.iter()
        .zip(rows)
        .enumerate()
        .map(|(p, (m, order))| {
            NamedTensor::new(
                format!("feedback.{p}.weight"),
                vec![m.rows(), m.cols()],
                m.as_slice(),
            )
            .with_row_order(order.as_deref())
        })
        .collect()
}

/// Mutable counterpart of [`named_projections`].
pub fn named_projections_mut<'a>(
    d: &'a mut [Matrix],
    rows: &'a [Option<Vec<usize>>],
) -> Vec<NamedTensorMut<'a>> {
    d.iter_mut()
        .zip(rows)
        .enumerate()
        .map(|(p, (m, order))| {
            let shape = vec![m.rows(), m.cols()];
            NamedTensorMut::new(format!("feedback.{p}.weight"), shape, m.as_mut_slice())
                .with_row_order(order.as_deref())
        })
        .collect()
}
