//! The run configuration: every setting of a training run, in one struct that
//! is read from TOML, overridden by command-line flags, and written back into
//! the run directory and the checkpoint's metadata.
//!
//! [`RunConfig`] is the one definition of the settings. Every other source
//! (a TOML file, a sweep cell, the command line's flags) is first a TOML
//! table of overrides, and [`RunConfig::from_layers`] merges those tables and
//! deserializes the result once, with unknown keys refused. A flag therefore
//! cannot be parsed and then dropped: it either lands in the struct under its
//! key or is an error naming it.
//!
//! `forms.rs` reads and writes the settings' textual forms (`2x800`, a
//! layer description); `unused.rs` says which settings would have no effect.

mod forms;
mod unused;

use crate::activation::Activation;
use crate::data::{Augment, DatasetKind, Normalize};
use crate::error::{Error, Result};
use crate::layers::spec::{self, Planned, Preset};
use crate::layers::Shape;
use crate::loss::Output;
use crate::optim::{OptimConfig, OptimizerKind};
use crate::rules::{
    BdfaTarget, BdfaUpdate, DfaProjection, FeedbackScale, InitScheme, RuleKind, RuleOptions,
    UsfScale, KP_DEFAULT_DECAY, REFERENCE_FEEDBACK_LR,
};
use crate::tensor::GemmBackend;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every setting of one training run. Defaults are the paper's protocol
/// (docs/rules.md) with 20 epochs instead of 300, and the feedback scale
/// `sender` (the paper presets in `experiments/` set `receiver`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// The data set.
    pub dataset: DatasetKind,
    /// Folder with the data files (else `$BIPROP_DATA`, else the download cache).
    pub data_dir: Option<PathBuf>,
    /// Number of classes (for `idx` data sets).
    pub classes: usize,
    /// Samples held out from the end of the training file for validation.
    pub val_size: usize,
    /// Train on only the first N training samples.
    pub train_limit: Option<usize>,
    /// The learning rule.
    pub rule: RuleKind,
    /// Widths of the hidden layers of an MLP: `[800, 800]` or `"2x800"`
    /// (refused beside `net` or `layers`, which name every layer).
    #[serde(deserialize_with = "de_hidden")]
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity of an MLP.
    pub activation: Activation,
    /// A network by name (`biotorch-lenet-cifar`, `lenet-mnist` ...: the
    /// presets), in place of `hidden`.
    pub net: Option<Preset>,
    /// The network's layers, in place of `hidden`: `"conv 6 5x5, relu,
    /// maxpool 2, flatten, dense 10"` (or a list of such items); see
    /// docs/networks.md. Written out in canonical form; layers that write
    /// out a preset become `net`, that preset.
    #[serde(deserialize_with = "de_layers")]
    pub layers: Option<String>,
    /// Output layer and loss.
    pub output: Output,
    /// Weight initialization.
    pub init: InitScheme,
    /// Scale of random feedback (FA's and KP's B, DFA's, DRTP's and the
    /// initial D of BDFA and DKP, FRSF's and BRSF's magnitudes);
    /// when unset, the one `init` implies (`sender`, or `receiver` for
    /// `init = "reference"`). Written out resolved.
    pub feedback_scale: Option<FeedbackScale>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step; the last partial batch is used too.
    pub batch_size: usize,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate on the mean gradient.
    pub lr: f32,
    /// Epochs after which every learning rate is multiplied by `lr_gamma`
    /// (a multistep schedule; `[100, 150, 200]` trains epochs 101 to 150 at
    /// `lr * lr_gamma`).
    pub lr_milestones: Vec<usize>,
    /// The factor of `lr_milestones`.
    pub lr_gamma: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// Coupled L2 weight decay (for `kp` and `dkp`, `kp_decay` takes its place).
    pub weight_decay: f32,
    /// Adam's beta1.
    pub beta1: f32,
    /// Adam's beta2.
    pub beta2: f32,
    /// Adam's epsilon.
    pub eps: f32,
    /// Seed of every random draw (initialization and shuffling).
    pub seed: u64,
    /// Threads (0 = every core; at most 4 x the cores and 1024). The results
    /// are bitwise the same for every count.
    pub threads: usize,
    /// Reshuffle the training set every epoch.
    pub shuffle: bool,
    /// Augmentation of the training batches (flips and shifted crops of
    /// images; validation and test images are not augmented).
    pub augment: Augment,
    /// Input scaling: `none` (pixels in [0, 1]) or `channel` (each channel
    /// standardized with the training split's mean and deviation, which
    /// the checkpoint keeps; biotorch's benchmarks do this).
    pub normalize: Normalize,
    /// Learning rate of the feedback weights (BFA, BDFA, DKP); default: the
    /// forward `lr`, or 5e-5 on the summed update for `bdfa_update = "reference"`.
    pub feedback_lr: Option<f32>,
    /// Optimizer of the feedback weights (default: the forward `optimizer`).
    pub feedback_optimizer: Option<OptimizerKind>,
    /// SGD momentum of the feedback weights (default: the forward `momentum`).
    pub feedback_momentum: Option<f32>,
    /// Measure alignment angles with BP once an epoch (see `metrics`).
    pub alignment: bool,
    /// BFA's reconstruction output: `sigmoid-bce` (default) or `identity`.
    pub bfa_output: Output,
    /// The scale of BFA's initial feedback weights that are forward
    /// learning's error paths: `sender` (default: drawn as any MLP layer,
    /// `U(+-1/sqrt(fan_in))`) or `receiver` (`U(+-1/sqrt(width of the forward
    /// layer they reach))`, the scale of the paper presets' FA and DFA).
    /// Separate from `feedback_scale`, which BFA runs recorded without
    /// effect before this setting existed.
    pub bfa_feedback_scale: FeedbackScale,
    /// uSF's magnitude: `fan-in` (default, `sign(W) / sqrt(fan_in)`) or
    /// `xavier` (`sign(W) sqrt(2 / (fan_in + fan_out))`, biotorch's).
    pub usf_scale: UsfScale,
    /// Where DFA's projection sends the output error: `unit` (default, a
    /// random row for every unit of each hidden layer's output, Nøkland's)
    /// or `kernel` (through a random kernel to the next layer's input,
    /// biotorch's; docs/rules.md).
    pub dfa_projection: DfaProjection,
    /// BDFA's feedback update: `paper` or `reference` (the published code's).
    pub bdfa_update: BdfaUpdate,
    /// BDFA's target: `label`, `mixed` (y + alpha yhat) or `reference`.
    pub bdfa_target: BdfaTarget,
    /// `alpha` of BDFA's `mixed` and `reference` targets.
    pub bdfa_alpha: f32,
    /// The decay `lambda` of the Kolen-Pollack rules (KP, DKP), on the
    /// forward and the feedback weights alike, in place of `weight_decay`.
    pub kp_decay: f32,
    /// The GEMM kernels (`auto`: this CPU's; a run records the one it used).
    pub gemm: GemmBackend,
}

impl Default for RunConfig {
    fn default() -> Self {
        let o = OptimConfig::default();
        Self {
            dataset: DatasetKind::Mnist,
            data_dir: None,
            classes: 10,
            val_size: 10_000,
            train_limit: None,
            rule: RuleKind::Bp,
            hidden: vec![800],
            activation: Activation::Tanh,
            net: None,
            layers: None,
            output: Output::SigmoidBce,
            init: InitScheme::Default,
            feedback_scale: None,
            epochs: 20,
            batch_size: 128,
            optimizer: o.kind,
            lr: o.lr,
            lr_milestones: Vec::new(),
            lr_gamma: 0.1,
            momentum: o.momentum,
            weight_decay: o.weight_decay,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            seed: 1,
            threads: 0,
            shuffle: true,
            augment: Augment::None,
            normalize: Normalize::None,
            feedback_lr: None,
            feedback_optimizer: None,
            feedback_momentum: None,
            alignment: true,
            bfa_output: Output::SigmoidBce,
            bfa_feedback_scale: FeedbackScale::Sender,
            usf_scale: UsfScale::FanIn,
            dfa_projection: DfaProjection::Unit,
            bdfa_update: BdfaUpdate::Paper,
            bdfa_target: BdfaTarget::Label,
            bdfa_alpha: 0.25,
            kp_decay: KP_DEFAULT_DECAY,
            gemm: GemmBackend::Auto,
        }
    }
}

/// Two configs are equal when they describe the same run: an unset feedback
/// scale equals the one its init implies.
impl PartialEq for RunConfig {
    fn eq(&self, other: &Self) -> bool {
        self.to_toml() == other.to_toml()
    }
}

use forms::{de_hidden, de_layers};
pub use forms::{deserialize_named, format_hidden, merge_into, parse_hidden, read_table};

impl RunConfig {
    /// Reads a saved configuration (a run's `config.toml`); unknown keys and
    /// wrong types are errors naming the key.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text).map_err(|e| match e {
            Error::Config(msg) => Error::format(path, msg),
            e => e,
        })
    }

    /// Parses a saved configuration's TOML text. Runs saved before
    /// [`RunConfig::to_toml`] left them out hold `hidden` and `activation`
    /// beside `net` or `layers`, at their defaults and without effect: they
    /// are dropped here, where [`RunConfig::from_layers`] refuses them in
    /// settings a user writes.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let mut table: toml::Table = text.parse().map_err(|e| Error::Config(format!("{e}")))?;
        if table.contains_key("net") || table.contains_key("layers") {
            table.remove("hidden");
            table.remove("activation");
        }
        Self::from_layers(&[table])
    }

    /// The defaults overridden by each table in turn, then checked: every
    /// source of settings ends here.
    pub fn from_layers(layers: &[toml::Table]) -> Result<Self> {
        // An MLP's widths and activation beside a network that `net` or
        // `layers` names would be ignored, whichever table holds them.
        let described = ["net", "layers"]
            .into_iter()
            .find(|k| layers.iter().any(|t| t.contains_key(*k)));
        if let Some(by) = described {
            for key in ["hidden", "activation"] {
                if layers.iter().any(|t| t.contains_key(key)) {
                    return Err(Error::Config(format!(
                        "{key}: has no effect beside {by}, which names every layer and its \
                         activation; remove one of the two (a run's config.toml saved by an \
                         earlier biprop holds both: delete its `hidden` and `activation` lines)"
                    )));
                }
            }
        }
        let mut table = toml::Table::new();
        for layer in layers {
            merge_into(&mut table, layer);
        }
        let mut cfg: Self = deserialize_named(table)?;
        cfg.validate()?;
        // Layers that write a preset out are that preset: saved, resumed and
        // compared with other runs by its name, however they were spelled.
        if let Some(p) = cfg.layers.as_deref().and_then(Preset::described_by) {
            cfg.net = Some(p);
            cfg.layers = None;
        }
        cfg.feedback_scale = Some(cfg.feedback_scale());
        Ok(cfg)
    }

    /// The configuration as TOML, with every setting resolved.
    pub fn to_toml(&self) -> String {
        let resolved = Self {
            feedback_scale: Some(self.feedback_scale()),
            ..self.clone()
        };
        let text = toml::to_string(&resolved).expect("a RunConfig always serializes");
        if self.net.is_none() && self.layers.is_none() {
            return text;
        }
        // An MLP's `hidden` and `activation` say nothing of a network that
        // `net` or `layers` describes: the saved settings name what ran.
        // Both are top-level keys of one line each.
        text.lines()
            .filter(|l| !l.starts_with("hidden = ") && !l.starts_with("activation = "))
            .flat_map(|l| [l, "\n"])
            .collect()
    }

    /// The feedback scale in force: the one set, else the one `init` implies.
    pub fn feedback_scale(&self) -> FeedbackScale {
        self.feedback_scale
            .unwrap_or(FeedbackScale::implied_by(self.init))
    }

    /// Checks values that types alone do not rule out.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.batch_size == 0 {
            return bad("batch-size must be at least 1".into());
        }
        if self.hidden.contains(&0) {
            return bad("hidden layer widths must be positive".into());
        }
        let rates = [
            ("lr", Some(self.lr)),
            ("feedback-lr", self.feedback_lr),
            ("weight-decay", Some(self.weight_decay)),
            ("kp-decay", Some(self.kp_decay)),
        ];
        for (name, v) in rates {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                return bad(format!("{name} must be a finite number >= 0, got {v}"));
            }
        }
        for (name, v) in [
            ("momentum", Some(self.momentum)),
            ("feedback-momentum", self.feedback_momentum),
        ] {
            if let Some(v) = v.filter(|v| !(0.0..1.0).contains(v)) {
                return bad(format!("{name} must be in [0, 1), got {v}"));
            }
        }
        if self.classes < 2 || self.classes > 256 {
            return bad(format!("classes must be in 2..=256, got {}", self.classes));
        }
        if self.dataset != DatasetKind::Idx && self.classes != 10 {
            return bad(format!(
                "classes = {} with dataset {}: it has 10 classes (classes sets an idx data set's)",
                self.classes,
                self.dataset.name()
            ));
        }
        if matches!(self.rule, RuleKind::Kp | RuleKind::Dkp) && self.kp_decay == 0.0 {
            return bad(format!(
                "kp-decay = 0 with rule {}: without decay the feedback weights never lose \
                 their random start and do not come to align (use fa or dfa for fixed feedback)",
                self.rule
            ));
        }
        if self.init == InitScheme::Reference {
            use RuleKind::*;
            if matches!(self.rule, Kp | Usf | Frsf | Brsf | Drtp | Dkp) {
                return bad(format!(
                    "init = reference: the published code has no {} initialization; use the default",
                    self.rule
                ));
            }
            if self.rule == RuleKind::Bfa {
                return bad(
                    "init = reference: the published code has no BFA initialization; use the default"
                        .into(),
                );
            }
            if self.rule == RuleKind::Fa && self.feedback_scale == Some(FeedbackScale::Sender) {
                return bad(
                    "init = reference copies FA's initial forward weights into B, \
                     which is the receiver scale; drop feedback-scale = sender or the init"
                        .into(),
                );
            }
        }
        let beta_ok = |b: f32| b.is_finite() && (0.0..1.0).contains(&b);
        if !(beta_ok(self.beta1) && beta_ok(self.beta2)) {
            return bad(format!(
                "beta1 and beta2 must be in [0, 1), got {} and {}",
                self.beta1, self.beta2
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad(format!("eps must be a finite number > 0, got {}", self.eps));
        }
        if self.bfa_output == Output::SoftmaxCe {
            return bad(
                "bfa-output must be sigmoid-bce or identity: pixels are not a distribution".into(),
            );
        }
        if self.rule == RuleKind::Bfa
            && self.normalize == Normalize::Channel
            && self.bfa_output == Output::SigmoidBce
        {
            return bad(
                "rule bfa with normalize = channel: BFA reconstructs the standardized inputs, \
                 which are not in [0, 1] as bfa-output = sigmoid-bce needs; set \
                 bfa-output = identity"
                    .into(),
            );
        }
        if !self.bdfa_alpha.is_finite() {
            return bad("bdfa-alpha must be finite".into());
        }
        if self.threads > crate::tensor::MAX_THREADS {
            return bad(format!(
                "threads = {} is more than any machine can use: at most {} (and 4 x the \
                 cores of the machine that runs it; 0 = every core)",
                self.threads,
                crate::tensor::MAX_THREADS
            ));
        }
        if self.train_limit == Some(0) {
            return bad("train-limit must be at least 1".into());
        }
        if self.net.is_some() && self.layers.is_some() {
            return bad("net and layers both name the network: give one".into());
        }
        if !(self.lr_gamma.is_finite() && self.lr_gamma > 0.0) {
            return bad(format!(
                "lr-gamma must be a finite number > 0, got {}",
                self.lr_gamma
            ));
        }
        if self.lr_milestones.windows(2).any(|w| w[0] >= w[1]) || self.lr_milestones.contains(&0) {
            return bad(format!(
                "lr-milestones must be increasing epochs from 1, got {:?}",
                self.lr_milestones
            ));
        }
        if self.rule == RuleKind::Dfa && self.dfa_projection == DfaProjection::Kernel {
            // Only a convolution or a pooling above the first parametric
            // layer makes the kernel projection differ from DFA's own.
            let items = match self.layer_description() {
                Some(text) => spec::parse(&text).map_err(Error::Config)?,
                None => Vec::new(),
            };
            let parametric =
                |i: &spec::Item| matches!(i, spec::Item::Conv { .. } | spec::Item::Dense { .. });
            let above_first = items.iter().skip_while(|i| !parametric(i)).skip(1);
            let crosses =
                |i: &spec::Item| matches!(i, spec::Item::Conv { .. } | spec::Item::Pool { .. });
            if !above_first.clone().any(crosses) {
                return bad(
                    "dfa-projection kernel differs from DFA's own projection only where the \
                     error crosses a convolution or a pooling above the first layer, and this \
                     network has none: leave it at unit"
                        .into(),
                );
            }
        }
        if let (RuleKind::Bfa, Some(text)) = (self.rule, self.layer_description()) {
            let items = spec::parse(&text).map_err(Error::Config)?;
            let plain = |i: &spec::Item| matches!(i, spec::Item::Pool { .. } | spec::Item::Flatten);
            if items.first().is_some_and(plain) {
                return bad(
                    "rule bfa: the network must start with a conv or dense layer, which its \
                     feedback network mirrors last (to generate the input)"
                        .into(),
                );
            }
        }
        Ok(())
    }

    /// The description of the network's layers, when `net` or `layers`
    /// gives one (else the network is the MLP of `hidden`).
    pub fn layer_description(&self) -> Option<String> {
        match (&self.net, &self.layers) {
            (Some(p), _) => Some(p.description().to_string()),
            (None, Some(l)) => Some(l.clone()),
            (None, None) => None,
        }
    }

    /// The preset that names the network: `net`, or the one whose layers
    /// `layers` writes out.
    pub fn preset(&self) -> Option<Preset> {
        match (&self.net, &self.layers) {
            (Some(p), _) => Some(*p),
            (None, Some(l)) => Preset::described_by(l),
            (None, None) => None,
        }
    }

    /// The network's name in reports: the preset's (also for `layers` that
    /// write a preset out), else the layers as written, else the MLP's
    /// hidden widths (`2x800`).
    pub fn architecture(&self) -> String {
        match (self.preset(), &self.layers) {
            (Some(p), _) => p.name().to_string(),
            (None, Some(l)) => l.clone(),
            (None, None) => format_hidden(&self.hidden),
        }
    }

    /// Hidden parametric layers: every convolution and dense layer but the
    /// last (an MLP's hidden widths), which the per-layer metrics
    /// (`align_update_{i}` ...) count; 0 for a description that does not parse.
    pub fn hidden_layer_count(&self) -> usize {
        let Some(text) = self.layer_description() else {
            return self.hidden.len();
        };
        spec::parse(&text).map_or(0, |items| {
            items
                .iter()
                .filter(|i| matches!(i, spec::Item::Conv { .. } | spec::Item::Dense { .. }))
                .count()
                .saturating_sub(1)
        })
    }

    /// The network's layers for inputs of `image` and `classes` outputs; an
    /// error names the layer that does not fit.
    pub fn network_plan(&self, image: Shape, classes: usize) -> Result<Vec<Planned>> {
        let Some(text) = self.layer_description() else {
            let mut sizes = vec![image.len()];
            sizes.extend(&self.hidden);
            sizes.push(classes);
            return Ok(crate::network::mlp_plan(&sizes, self.activation));
        };
        let items = spec::parse(&text).map_err(Error::Config)?;
        let plan = spec::build(image, &items)
            .map_err(|e| Error::Config(format!("{e} (inputs {image})")))?;
        let out = plan
            .last()
            .expect("a built network has layers")
            .0
            .out_shape();
        if out.len() != classes {
            return Err(Error::Config(format!(
                "the last layer has {} outputs, the data has {classes} classes: end the layers with `dense {classes}`",
                out.len()
            )));
        }
        Ok(plan)
    }

    /// The factor of every learning rate in `epoch` (1-based): `lr_gamma`
    /// to the number of milestones before it.
    pub fn lr_factor(&self, epoch: usize) -> f32 {
        let passed = self.lr_milestones.iter().filter(|&&m| m < epoch).count();
        self.lr_gamma.powi(passed as i32)
    }

    /// The forward optimizer's settings.
    pub fn optim(&self) -> OptimConfig {
        OptimConfig {
            kind: self.optimizer,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: match self.rule {
                RuleKind::Kp | RuleKind::Dkp => self.kp_decay,
                _ => self.weight_decay,
            },
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
        }
    }

    /// The learning rule's options.
    pub fn rule_options(&self) -> RuleOptions {
        let default_lr = match (self.rule, self.bdfa_update) {
            (RuleKind::Bdfa, BdfaUpdate::Reference) => REFERENCE_FEEDBACK_LR,
            _ => self.lr,
        };
        let feedback_opt = match self.rule {
            // KP's B moves exactly as W^T does: the forward optimizer itself.
            RuleKind::Kp => self.optim(),
            _ => OptimConfig {
                kind: self.feedback_optimizer.unwrap_or(self.optimizer),
                lr: self.feedback_lr.unwrap_or(default_lr),
                momentum: self.feedback_momentum.unwrap_or(self.momentum),
                ..self.optim()
            },
        };
        RuleOptions {
            init: self.init,
            feedback_scale: self.feedback_scale(),
            max_rows: self.batch_size,
            feedback_opt,
            bfa_output: self.bfa_output,
            bfa_feedback_scale: self.bfa_feedback_scale,
            usf_scale: self.usf_scale,
            dfa_projection: self.dfa_projection,
            bdfa_update: self.bdfa_update,
            bdfa_target: self.bdfa_target,
            bdfa_alpha: self.bdfa_alpha,
        }
    }

    /// A short name for the run: `bp-2x800-seed1`.
    pub fn run_name(&self) -> String {
        let arch = match (self.preset(), &self.layers) {
            (None, Some(_)) => "conv".to_string(),
            _ => self.architecture(),
        };
        format!("{}-{arch}-seed{}", self.rule, self.seed)
    }
}
