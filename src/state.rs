//! What a run stores in its checkpoints, and how it is put back: the
//! network's tensors (`forward.*`), the rule's (`feedback.*`), the
//! optimizers' (`optim.*`), under the names their structures give them
//! ([`crate::named`]), and a standardized run's input statistics
//! (`input.mean`, `input.std`). The checkpoint file itself ([`crate::checkpoint`])
//! knows nothing of models; this module is where the two meet, and restoring
//! is strict: every tensor the run needs must be there with its shape, and
//! nothing else may be.

use crate::checkpoint::{self, Checkpoint};
use crate::config::RunConfig;
use crate::data::{standardize, Normalize, Standardize};
use crate::error::Result;
use crate::layers::Shape;
use crate::named::NamedTensor;
use crate::network::Network;
use crate::rules::{LearningRule, RuleKind};
use crate::train::Trainer;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The metadata of a run's checkpoint after `epoch` epochs.
pub fn metadata(
    cfg: &RunConfig,
    epoch: usize,
    image: (usize, usize, usize),
) -> HashMap<String, String> {
    HashMap::from([
        ("config".to_string(), cfg.to_toml()),
        ("rule".to_string(), cfg.rule.to_string()),
        ("epoch".to_string(), epoch.to_string()),
        (
            "image".to_string(),
            format!("{}x{}x{}", image.0, image.1, image.2),
        ),
    ])
}

fn weight_tensors<'a>(net: &'a Network, rule: &'a dyn LearningRule) -> Vec<NamedTensor<'a>> {
    let mut v = net.named_tensors("forward");
    v.extend(rule.feedback_tensors());
    v
}

/// Writes `net` and the rule's feedback weights to `path` atomically.
pub fn save(
    path: &Path,
    net: &Network,
    rule: &dyn LearningRule,
    cfg: &RunConfig,
    epoch: usize,
    image: (usize, usize, usize),
) -> Result<()> {
    checkpoint::save(
        path,
        &weight_tensors(net, rule),
        metadata(cfg, epoch, image),
    )
}

/// [`save`] plus every optimizer state tensor (`optim.*`) and the step count
/// (metadata `steps`), so that [`CheckpointExt::restore_trainer`] resumes exactly.
pub fn save_trainer(
    path: &Path,
    trainer: &mut Trainer,
    cfg: &RunConfig,
    epoch: usize,
    image: (usize, usize, usize),
) -> Result<()> {
    let steps = trainer.steps();
    let mut meta = metadata(cfg, epoch, image);
    meta.insert("steps".into(), steps.to_string());
    // The optimizer state is borrowed mutably, the weights immutably: copy
    // the state out first, in its stored order (a checkpoint is written
    // once an epoch).
    let state: Vec<(String, Vec<usize>, Vec<f32>)> = trainer
        .optimizer_state_mut()
        .into_iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                t.as_named().stored().into_owned(),
            )
        })
        .collect();
    let mut tensors = weight_tensors(&trainer.net, trainer.rule.as_ref());
    if let Some(s) = trainer.standardize() {
        tensors.extend(s.tensors());
    }
    tensors.extend(
        state
            .iter()
            .map(|(n, s, d)| NamedTensor::new(n.clone(), s.clone(), d)),
    );
    checkpoint::save(path, &tensors, meta)
}

/// What a run's checkpoint means: its configuration and rule, and putting
/// its tensors back into a network, a rule or a whole trainer.
pub trait CheckpointExt {
    /// The run configuration stored in the metadata.
    fn config(&self) -> Result<RunConfig>;
    /// The rule the checkpoint was trained with (metadata `rule`).
    fn rule(&self) -> Result<RuleKind>;
    /// Copies the forward weights into `net` and the feedback weights into
    /// `rule`. The checkpoint must be of the same rule, hold every tensor
    /// they need with the same shape, and nothing else but optimizer state
    /// (`optim.*`, which only resuming restores) and input statistics
    /// (`input.*`, which [`CheckpointExt::standardize`] reads).
    fn restore(&self, net: &mut Network, rule: &mut dyn LearningRule) -> Result<()>;
    /// Copies only the forward weights into `net`, from a checkpoint of any
    /// rule (its feedback and optimizer state are left out on purpose).
    fn restore_forward(&self, net: &mut Network) -> Result<()>;
    /// Restores weights, optimizer state, input statistics and step count
    /// into `trainer` (a checkpoint of [`save_trainer`]); every tensor must
    /// be used, and the statistics are there exactly when the trainer
    /// standardizes.
    fn restore_trainer(&self, trainer: &mut Trainer) -> Result<()>;
    /// The input statistics stored for inputs of `image`: present, of that
    /// shape and valid when `cfg.normalize` is `channel`, absent otherwise.
    fn standardize(&self, cfg: &RunConfig, image: Shape) -> Result<Option<Standardize>>;
}

impl CheckpointExt for Checkpoint {
    fn config(&self) -> Result<RunConfig> {
        let text = self.require("config", "no run configuration (not written by biprop?)")?;
        RunConfig::from_toml_str(text).map_err(|e| self.error(format!("stored configuration: {e}")))
    }

    fn rule(&self) -> Result<RuleKind> {
        let name = self.require("rule", "which rule trained it")?;
        RuleKind::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| self.error(format!("unknown rule {name:?} in the metadata")))
    }

    fn restore(&self, net: &mut Network, rule: &mut dyn LearningRule) -> Result<()> {
        let used = restore_weights(self, net, rule)?;
        self.refuse_unused(&used, |name| {
            name.starts_with("optim.") || standardize::TENSOR_NAMES.contains(&name)
        })
    }

    fn restore_forward(&self, net: &mut Network) -> Result<()> {
        restore_net(self, net)?;
        Ok(())
    }

    fn restore_trainer(&self, trainer: &mut Trainer) -> Result<()> {
        let mut used = restore_weights(self, &mut trainer.net, trainer.rule.as_mut())?;
        used.extend(self.take_all(trainer.optimizer_state_mut())?);
        if let Some(mut s) = trainer.take_standardize() {
            used.extend(self.take_all(s.tensors_mut())?);
            trainer
                .set_standardize(Some(s))
                .map_err(|e| self.error(e.to_string()))?;
        }
        self.refuse_unused(&used, |_| false)?;
        let steps = self
            .metadata
            .get("steps")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.error("no step count in the metadata: cannot resume from it"))?;
        trainer.set_steps(steps);
        Ok(())
    }

    fn standardize(&self, cfg: &RunConfig, image: Shape) -> Result<Option<Standardize>> {
        let stored = standardize::TENSOR_NAMES
            .iter()
            .any(|n| self.tensors.contains_key(*n));
        match (cfg.normalize, stored) {
            (Normalize::None, false) => Ok(None),
            (Normalize::None, true) => Err(self.error(
                "holds input statistics (input.mean, input.std), but its configuration says \
                 normalize = none",
            )),
            (Normalize::Channel, _) => {
                let mut s = Standardize::identity(image.c, image.h * image.w);
                self.take_all(s.tensors_mut())?;
                s.check().map_err(|e| self.error(e.to_string()))?;
                Ok(Some(s))
            }
        }
    }
}

/// Copies `forward.*` into `net`, after checking the layer count (a deeper
/// or shallower network would otherwise fail on one tensor name).
fn restore_net(ck: &Checkpoint, net: &mut Network) -> Result<BTreeSet<String>> {
    let layers = net.layers.len();
    let stored = ck.count_weights("forward");
    if stored != layers {
        return Err(ck.error(format!(
            "holds a network of {stored} layers, the run has {layers} (hidden {:?})",
            net.hidden_sizes()
        )));
    }
    ck.take_all(net.named_tensors_mut("forward"))
}

fn restore_weights(
    ck: &Checkpoint,
    net: &mut Network,
    rule: &mut dyn LearningRule,
) -> Result<BTreeSet<String>> {
    let stored = ck.rule()?;
    if stored != rule.kind() {
        return Err(ck.error(format!(
            "holds a {stored} run, this run is {}; its feedback tensors mean something \
             else here (use --init-forward-from to start from its forward weights only)",
            rule.kind()
        )));
    }
    let mut used = restore_net(ck, net)?;
    used.extend(ck.take_all(rule.feedback_tensors_mut())?);
    Ok(used)
}
