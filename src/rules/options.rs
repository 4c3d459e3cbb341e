//! The settings of the rules: how feedback starts, at what scale, and each
//! rule's own options (never the whole run configuration, which sits above).

use crate::loss::Output;
use crate::optim::OptimConfig;
use serde::{Deserialize, Serialize};

/// How the forward and feedback weights start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InitScheme {
    /// Every forward weight and bias from `U(+-1/sqrt(fan_in))`; fixed random
    /// feedback at the feedback scale (`--feedback-scale`).
    #[default]
    Default,
    /// The published code's scheme (docs/rules.md): FA's B copies the
    /// initial forward weights and every later forward layer starts at zero;
    /// DFA and BDFA start every forward weight at zero, D from
    /// `U(+-1/sqrt(n_l))`. BP's published init is the default one; BFA and
    /// the rules beyond the paper's have no published scheme and the config
    /// refuses it for them.
    Reference,
    /// Glorot and Bengio's (2010), as biotorch's benchmarks start: every
    /// forward weight from `U(+-sqrt(6 / (fan_in + fan_out)))`, biases at
    /// zero; fixed random feedback at the same scale for its own shape
    /// (feedback scale `xavier`).
    Xavier,
}

/// The scale of fixed random feedback matrices (FA's B, DFA's and BDFA's
/// initial D): the bound `a` of `U(-a, a)`.
///
/// The two differ by up to 9x on the paper's shapes (`1/sqrt(10)` against
/// `1/sqrt(800)` for D), enough to change FA's and DFA's test error by more
/// than a point, so the setting is recorded with every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackScale {
    /// `a = 1/sqrt(n)`, n the width of the vector the matrix multiplies (the
    /// error it carries): `1/sqrt(C)` for D and for the top B.
    Sender,
    /// `a = 1/sqrt(n)`, n the width of the layer that receives the error: the
    /// scale of the forward weight that B replaces, and the published code's
    /// D. The paper's numbers were made at this scale.
    Receiver,
    /// `a = sqrt(6 / (sender + receiver))`: Glorot's bound for the matrix's
    /// own shape (`--init xavier`'s).
    Xavier,
}

impl FeedbackScale {
    /// The scale `init` implies when none is asked for: the published
    /// code's scheme draws at the receiver's scale.
    pub fn implied_by(init: InitScheme) -> Self {
        match init {
            InitScheme::Default => FeedbackScale::Sender,
            InitScheme::Reference => FeedbackScale::Receiver,
            InitScheme::Xavier => FeedbackScale::Xavier,
        }
    }

    /// The bound for a matrix carrying a `sender`-wide error to a
    /// `receiver`-wide layer.
    pub fn bound(self, sender: usize, receiver: usize) -> f32 {
        match self {
            FeedbackScale::Sender => 1.0 / (sender as f32).sqrt(),
            FeedbackScale::Receiver => 1.0 / (receiver as f32).sqrt(),
            FeedbackScale::Xavier => (6.0 / (sender + receiver) as f32).sqrt(),
        }
    }

    /// The setting's name in configs.
    pub fn name(self) -> &'static str {
        match self {
            FeedbackScale::Sender => "sender",
            FeedbackScale::Receiver => "receiver",
            FeedbackScale::Xavier => "xavier",
        }
    }
}

/// Rule settings beyond the forward optimizer.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleOptions {
    /// How weights start.
    pub init: InitScheme,
    /// The scale of fixed random feedback matrices.
    pub feedback_scale: FeedbackScale,
    /// The largest batch (feedback phases allocate their buffers once).
    pub max_rows: usize,
    /// The optimizer of learning feedback weights (BFA, BDFA, DKP; for KP
    /// it must be the forward optimizer itself, since KP's identity needs the
    /// same steps on both sides).
    pub feedback_opt: OptimConfig,
    /// BFA's reconstruction output: `SigmoidBce` or `Identity`.
    pub bfa_output: Output,
    /// The scale of BFA's feedback weights that are error paths ([`super::Bfa::new`]).
    pub bfa_feedback_scale: FeedbackScale,
    /// The magnitude uSF gives the signs of the forward weights.
    pub usf_scale: UsfScale,
    /// Where DFA's random projection sends the output error.
    pub dfa_projection: DfaProjection,
    /// BDFA's feedback update.
    pub bdfa_update: BdfaUpdate,
    /// BDFA's target.
    pub bdfa_target: BdfaTarget,
    /// `alpha` of BDFA's mixed and reference targets.
    pub bdfa_alpha: f32,
}

impl Default for RuleOptions {
    fn default() -> Self {
        Self {
            init: InitScheme::Default,
            feedback_scale: FeedbackScale::Sender,
            max_rows: 128,
            feedback_opt: OptimConfig::default(),
            bfa_output: Output::SigmoidBce,
            bfa_feedback_scale: FeedbackScale::Sender,
            usf_scale: UsfScale::FanIn,
            dfa_projection: DfaProjection::Unit,
            bdfa_update: BdfaUpdate::Paper,
            bdfa_target: BdfaTarget::Label,
            bdfa_alpha: 0.25,
        }
    }
}

/// The magnitude of uSF's path `B = sign(W) * m`, per layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum UsfScale {
    /// `m = 1/sqrt(fan_in)`: the scale of the forward weight it stands in
    /// for under the default init.
    #[default]
    FanIn,
    /// `m = sqrt(2 / (fan_in + fan_out))`, the deviation of Glorot's
    /// (Xavier's) uniform draw for W's shape: biotorch's uSF under the Xavier
    /// init of its benchmarks.
    Xavier,
}

impl UsfScale {
    /// `m` for a weight with these fans (for a convolution `fan_in = c_in kh
    /// kw`, `fan_out = c_out kh kw`).
    pub fn magnitude(self, fan_in: usize, fan_out: usize) -> f32 {
        match self {
            UsfScale::FanIn => 1.0 / (fan_in as f32).sqrt(),
            UsfScale::Xavier => (2.0 / (fan_in + fan_out) as f32).sqrt(),
        }
    }
}

/// Where DFA's fixed random projection sends the output error `e`.
///
/// The two are one rule between dense layers and differ across
/// convolutions and pooling (docs/rules.md, "biotorch's `dfa` is another
/// projection on convolutions").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DfaProjection {
    /// To every unit of each hidden layer's output map, a random row per
    /// unit (`D_l` `[units_l, C]`): Nøkland's (2016) DFA.
    #[default]
    Unit,
    /// biotorch's: to the input of each layer above the first, through a
    /// random kernel of that layer's shape with `C` output channels (`e`
    /// repeated at every output position of a convolution), then back
    /// through its pooling and the activation below as BP's error goes.
    Kernel,
}

/// Which BDFA feedback update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BdfaUpdate {
    /// The true gradient of `1 - sigmoid(s)`, through the feedback optimizer.
    #[default]
    Paper,
    /// The published code's `(1 - sigmoid(s))`-weighted sum, plain SGD.
    Reference,
}

/// Which target `y'` trains `D_l`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BdfaTarget {
    /// `y' = y`, the one-hot label (the paper on MNIST).
    #[default]
    Label,
    /// `y' = y + alpha * yhat` (the paper on CIFAR-10, eq. 51).
    Mixed,
    /// The published code's: 1 at the true class, `alpha^k * logits` elsewhere,
    /// compounding down the layers.
    Reference,
}

/// The published code's fixed feedback learning rate (on the summed update).
pub const REFERENCE_FEEDBACK_LR: f32 = 5e-5;
