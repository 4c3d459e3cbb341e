//! The run settings as flags, each defined once: `train` and `compare` share them.

use crate::activation::Activation;
use crate::config::RunConfig;
use crate::data::DatasetKind;
use crate::loss::Output;
use crate::optim::OptimizerKind;
use crate::rules::{
    BdfaTarget, BdfaUpdate, DfaProjection, FeedbackScale, InitScheme, RuleKind, UsfScale,
};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Every run setting as a flag: each one is named as its config key (with
/// dashes), serializes under that key into a table of overrides, and reaches
/// the run only through [`RunConfig::from_layers`]: a flag whose key the
/// config does not know is an error there, and the tests check that every
/// key has a flag and every flag lands.
#[derive(Args, Default, serde::Serialize)]
pub(super) struct SettingsArgs {
    /// Learning rule.
    #[arg(long, short = 'r', value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<RuleKind>,
    /// Hidden layers: 800 | 800,400 | 2x800 | none.
    #[arg(long, value_name = "WIDTHS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden: Option<String>,
    /// Hidden nonlinearity.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    activation: Option<Activation>,
    /// A network by name, in place of --hidden.
    #[arg(long, value_enum, conflicts_with_all = ["hidden", "layers"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    net: Option<crate::layers::spec::Preset>,
    /// The network's layers, in place of --hidden: "conv 6 5x5, relu, maxpool 2, flatten, dense 10" (docs/networks.md).
    #[arg(long, value_name = "LAYERS", conflicts_with = "hidden")]
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<String>,
    /// Output layer and loss.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Output>,
    /// Initialization scheme (reference = the published code's: zero forward
    /// weights for FA's upper layers and for DFA/BDFA, FA's B copied from W).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    init: Option<InitScheme>,
    /// Scale of random feedback (every rule with random B, D or M): sender = 1/sqrt(width
    /// of the error carried), receiver = 1/sqrt(width of the layer reached),
    /// the published code's [default: sender, receiver with --init reference].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_scale: Option<FeedbackScale>,
    /// Passes over the training set.
    #[arg(long, short = 'e')]
    #[serde(skip_serializing_if = "Option::is_none")]
    epochs: Option<usize>,
    /// Samples per step.
    #[arg(long, short = 'b')]
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_size: Option<usize>,
    /// Optimizer.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    optimizer: Option<OptimizerKind>,
    /// Learning rate (on the mean gradient of a batch).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lr: Option<f32>,
    /// Epochs after which every learning rate is multiplied by --lr-gamma, e.g. 100,150,200.
    #[arg(long, value_name = "EPOCHS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lr_milestones: Vec<usize>,
    /// The factor of --lr-milestones [default: 0.1].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    lr_gamma: Option<f32>,
    /// SGD momentum.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    momentum: Option<f32>,
    /// L2 weight decay.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    weight_decay: Option<f32>,
    /// Adam's beta1.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta1: Option<f32>,
    /// Adam's beta2.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    beta2: Option<f32>,
    /// Adam's epsilon.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    eps: Option<f32>,
    /// Seed for initialization and shuffling.
    #[arg(long, short = 's')]
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    /// Threads (0 = all cores; at most 4 x the cores, and 1024: more only wait for each other); the results are bitwise the same for every count.
    #[arg(long, short = 'j')]
    #[serde(skip_serializing_if = "Option::is_none")]
    threads: Option<usize>,
    /// Data set.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<DatasetKind>,
    /// Folder with the data files (default: $BIPROP_DATA, else download into the cache).
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Number of classes of an idx data set.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<usize>,
    /// Training samples held out (from the end) for validation.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    val_size: Option<usize>,
    /// Train on only the first N training samples.
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    train_limit: Option<usize>,
    /// Learning rate of learning feedback weights (BFA, BDFA, DKP; default: --lr,
    /// or 5e-5 on the summed update with --bdfa-update reference).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_lr: Option<f32>,
    /// Optimizer of learning feedback weights (default: --optimizer).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_optimizer: Option<OptimizerKind>,
    /// SGD momentum of learning feedback weights (default: --momentum).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    feedback_momentum: Option<f32>,
    /// BFA's reconstruction output.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bfa_output: Option<Output>,
    /// Scale of BFA's initial feedback weights that are error paths: sender (drawn as any layer) or receiver (1/sqrt(width of the layer they reach)).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bfa_feedback_scale: Option<FeedbackScale>,
    /// uSF's magnitude: fan-in (sign(W)/sqrt(fan_in)) or xavier (sign(W)*sqrt(2/(fan_in+fan_out)), biotorch's).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    usf_scale: Option<UsfScale>,
    /// Where DFA sends the output error: unit (a random row per unit of each hidden layer's output, Nøkland's) or kernel (through a random kernel to the next layer's input, biotorch's).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    dfa_projection: Option<DfaProjection>,
    /// BDFA's feedback update: the paper's gradient or the published code's.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bdfa_update: Option<BdfaUpdate>,
    /// BDFA's target y': label, mixed (y + alpha*yhat), reference (published code).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bdfa_target: Option<BdfaTarget>,
    /// alpha of BDFA's mixed and reference targets.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    bdfa_alpha: Option<f32>,
    /// Decay of forward and feedback weights for --rule kp and dkp (in place of --weight-decay).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    kp_decay: Option<f32>,
    /// GEMM kernels: auto = this CPU's (gemm on Intel with AVX-512, faer elsewhere); the run records the one used.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    gemm: Option<crate::tensor::GemmBackend>,
    /// Augment the training images: flip (left-right, half of them), crop (shifted by up to 4 pixels, zero-filled), flip-crop (both: biotorch's CIFAR-10 benchmark).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    augment: Option<crate::data::Augment>,
    /// Input scaling: none (pixels in [0, 1]) or channel (each channel to mean 0 and deviation 1 over the training split; biotorch's benchmarks).
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    normalize: Option<crate::data::Normalize>,
    /// Keep the training order fixed (shuffle = false).
    #[arg(long)]
    #[serde(
        rename = "shuffle",
        serialize_with = "negated",
        skip_serializing_if = "is_false"
    )]
    no_shuffle: bool,
    /// Skip the once-an-epoch alignment angles with BP (alignment = false).
    #[arg(long)]
    #[serde(
        rename = "alignment",
        serialize_with = "negated",
        skip_serializing_if = "is_false"
    )]
    no_alignment: bool,
}

fn negated<S: serde::Serializer>(v: &bool, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bool(!v)
}

fn is_false(v: &bool) -> bool {
    !v
}

impl SettingsArgs {
    /// The flags given, as config keys and values.
    pub(super) fn overrides(&self) -> Result<toml::Table> {
        toml::Table::try_from(self).context("command-line settings")
    }
}

/// `--feedback-lr` for the key `feedback_lr`.
pub(super) fn flag_of(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// A setting's name as the command line writes it.
fn value_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

/// The settings that define a protocol, in one line.
pub(super) fn protocol_line(c: &RunConfig) -> String {
    let mut optim = format!("{} lr {}", value_name(&c.optimizer), c.lr);
    if c.optimizer == OptimizerKind::Sgd && c.momentum > 0.0 {
        optim.push_str(&format!(" momentum {}", c.momentum));
    }
    if !c.lr_milestones.is_empty() {
        optim.push_str(&format!(
            " x{} after epochs {:?}",
            c.lr_gamma, c.lr_milestones
        ));
    }
    let net = match c.layer_description() {
        Some(_) => c.architecture(),
        None => format!(
            "hidden {} {}",
            crate::config::format_hidden(&c.hidden),
            value_name(&c.activation)
        ),
    };
    format!(
        "{net}, {} outputs, {optim}, batch {}",
        value_name(&c.output),
        c.batch_size
    )
}
