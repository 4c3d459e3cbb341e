//! The run configuration: every setting of a training run, in one struct that
//! is read from TOML, overridden by command-line flags, and written back into
//! the run directory and the checkpoint's metadata.

use crate::activation::Activation;
use crate::data::DatasetKind;
use crate::error::{Error, Result};
use crate::loss::Output;
use crate::optim::{OptimConfig, OptimizerKind};
use crate::rules::{
    BdfaTarget, BdfaUpdate, InitScheme, RuleKind, RuleOptions, REFERENCE_FEEDBACK_LR,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every setting of one training run. Defaults are the paper's protocol
/// (DESIGN.md section 5) with 20 epochs instead of 300.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Widths of the hidden layers: `[800, 800]` or `"2x800"`.
    #[serde(deserialize_with = "de_hidden")]
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Output layer and loss.
    pub output: Output,
    /// Weight initialization.
    pub init: InitScheme,
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step; the last partial batch is used too.
    pub batch_size: usize,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate on the mean gradient.
    pub lr: f32,
    /// SGD momentum.
    pub momentum: f32,
    /// Coupled L2 weight decay.
    pub weight_decay: f32,
    /// Adam's beta1.
    pub beta1: f32,
    /// Adam's beta2.
    pub beta2: f32,
    /// Adam's epsilon.
    pub eps: f32,
    /// Seed of every random draw (initialization and shuffling).
    pub seed: u64,
    /// Threads (0 = every core). The results are bitwise the same for every count.
    pub threads: usize,
    /// Reshuffle the training set every epoch.
    pub shuffle: bool,
    /// Learning rate of the feedback weights (BFA, BDFA); default: the
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
    /// BDFA's feedback update: `paper` or `reference` (the published code's).
    pub bdfa_update: BdfaUpdate,
    /// BDFA's target: `label`, `mixed` (y + alpha yhat) or `reference`.
    pub bdfa_target: BdfaTarget,
    /// `alpha` of BDFA's `mixed` and `reference` targets.
    pub bdfa_alpha: f32,
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
            output: Output::SigmoidBce,
            init: InitScheme::Default,
            epochs: 20,
            batch_size: 128,
            optimizer: o.kind,
            lr: o.lr,
            momentum: o.momentum,
            weight_decay: o.weight_decay,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            seed: 1,
            threads: 0,
            shuffle: true,
            feedback_lr: None,
            feedback_optimizer: None,
            feedback_momentum: None,
            alignment: true,
            bfa_output: Output::SigmoidBce,
            bdfa_update: BdfaUpdate::Paper,
            bdfa_target: BdfaTarget::Label,
            bdfa_alpha: 0.25,
        }
    }
}

/// Parses hidden-layer widths: `800`, `800,400`, `2x800`, or `""`/`none` for no hidden layer.
pub fn parse_hidden(s: &str) -> std::result::Result<Vec<usize>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let width = |w: &str| -> std::result::Result<usize, String> {
        match w.trim().parse::<usize>() {
            Ok(0) => Err(format!("layer width must be positive in {s:?}")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "invalid hidden layers {s:?}: expected widths like 800,800 or 2x800"
            )),
        }
    };
    if let Some((count, w)) = s.split_once(['x', 'X']) {
        let count: usize = count.trim().parse().map_err(|_| {
            format!("invalid hidden layers {s:?}: expected COUNTxWIDTH, e.g. 2x800")
        })?;
        return Ok(vec![width(w)?; count]);
    }
    s.split(',').map(width).collect()
}

fn de_hidden<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Hidden {
        List(Vec<usize>),
        Text(String),
    }
    match Hidden::deserialize(d)? {
        Hidden::List(v) if v.contains(&0) => {
            Err(serde::de::Error::custom("hidden widths must be positive"))
        }
        Hidden::List(v) => Ok(v),
        Hidden::Text(s) => parse_hidden(&s).map_err(serde::de::Error::custom),
    }
}

/// Writes hidden widths the paper's way: `1x800`, `2x800`, `800,400`, `none`.
pub fn format_hidden(h: &[usize]) -> String {
    match h {
        [] => "none".into(),
        [w, rest @ ..] if rest.iter().all(|x| x == w) => format!("{}x{w}", h.len()),
        _ => h
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

impl RunConfig {
    /// Reads a TOML file; unknown keys and wrong types are errors naming the key.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text).map_err(|e| match e {
            Error::Config(msg) => Error::format(path, msg),
            e => e,
        })
    }

    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let cfg: Self = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a RunConfig always serializes")
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
        if self.bfa_output == Output::SoftmaxCe {
            return bad(
                "bfa-output must be sigmoid-bce or identity: pixels are not a distribution".into(),
            );
        }
        if !self.bdfa_alpha.is_finite() {
            return bad("bdfa-alpha must be finite".into());
        }
        if self.train_limit == Some(0) {
            return bad("train-limit must be at least 1".into());
        }
        Ok(())
    }

    /// The forward optimizer's settings.
    pub fn optim(&self) -> OptimConfig {
        OptimConfig {
            kind: self.optimizer,
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
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
        RuleOptions {
            init: self.init,
            max_rows: self.batch_size,
            feedback_opt: OptimConfig {
                kind: self.feedback_optimizer.unwrap_or(self.optimizer),
                lr: self.feedback_lr.unwrap_or(default_lr),
                momentum: self.feedback_momentum.unwrap_or(self.momentum),
                ..self.optim()
            },
            bfa_output: self.bfa_output,
            bdfa_update: self.bdfa_update,
            bdfa_target: self.bdfa_target,
            bdfa_alpha: self.bdfa_alpha,
        }
    }

    /// A short name for the run: `bp-2x800-seed1`.
    pub fn run_name(&self) -> String {
        format!(
            "{}-{}-seed{}",
            self.rule,
            format_hidden(&self.hidden),
            self.seed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_forms() {
        assert_eq!(parse_hidden("800").unwrap(), vec![800]);
        assert_eq!(parse_hidden("800, 400").unwrap(), vec![800, 400]);
        assert_eq!(parse_hidden("3x400").unwrap(), vec![400; 3]);
        assert_eq!(parse_hidden("none").unwrap(), Vec::<usize>::new());
        for bad in ["8a0", "x800", "2x", "800,,3", "0", "2x0", "-5"] {
            assert!(parse_hidden(bad).is_err(), "{bad}");
        }
        assert_eq!(format_hidden(&[800, 800]), "2x800");
        assert_eq!(format_hidden(&[800]), "1x800");
        assert_eq!(format_hidden(&[800, 400]), "800,400");
    }

    #[test]
    fn toml_round_trips_and_names_bad_keys() {
        let cfg = RunConfig {
            hidden: vec![400, 400],
            rule: RuleKind::Dfa,
            ..Default::default()
        };
        assert_eq!(RunConfig::from_toml_str(&cfg.to_toml()).unwrap(), cfg);
        let err = RunConfig::from_toml_str("epochz = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epochz"), "{err}");
        let err = RunConfig::from_toml_str("epochs = \"three\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epochs"), "{err}");
        let err = RunConfig::from_toml_str("rule = \"magic\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("magic"), "{err}");
        assert!(RunConfig::from_toml_str("batch_size = 0").is_err());
    }

    #[test]
    fn rates_out_of_range_are_named() {
        for (text, want) in [
            ("lr = -0.1", "lr must be"),
            ("feedback_lr = nan", "feedback-lr must be"),
            ("weight_decay = -1.0", "weight-decay must be"),
            ("momentum = 1.0", "momentum must be in [0, 1)"),
            (
                "feedback_momentum = -0.5",
                "feedback-momentum must be in [0, 1)",
            ),
        ] {
            let err = RunConfig::from_toml_str(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let ok = "lr = 0.1\nmomentum = 0.9\nfeedback_momentum = 0.0\nweight_decay = 0.0";
        assert!(RunConfig::from_toml_str(ok).is_ok());
    }
}
