//! What a run will take, known before it takes it: its memory, counted from
//! its settings alone ([`estimate`]) and compared with what the machine has
//! left ([`check`]), and its compute ([`flops_per_sample`]). A run that
//! cannot fit is refused with one line naming what drives its size, before
//! anything is allocated: `run::build_trainer_sized` (every trainer, the
//! Python package's too) and `run::run` call [`preflight`], the command
//! line calls it before loading the data, and `--dry-run` prints it all.

mod flops;
mod format;
mod machine;
mod memory;

pub use flops::{flops_per_layer, flops_per_sample, forward_flops, Compute, LayerFlops};
pub use format::{bytes, count};
pub use machine::{available_memory, Available};
pub use memory::{estimate_plan, layer_name, Category, Estimate, Extras, Part};

use crate::config::RunConfig;
use crate::error::{Error, Result};
use crate::layers::spec::Planned;
use crate::layers::Shape;

/// The sizes of a run's data set, known without loading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataShape {
    /// One sample's shape.
    pub image: Shape,
    /// Classes.
    pub classes: usize,
    /// Samples in the training file (validation included).
    pub train: usize,
    /// Samples in the test file.
    pub test: usize,
}

impl Compute {
    /// The compute of an epoch of `cfg` with the layers `plan` on `data`.
    pub fn of(cfg: &RunConfig, plan: &[Planned], data: &DataShape) -> Self {
        Compute {
            per_sample: flops_per_sample(cfg.rule, plan),
            forward: forward_flops(plan),
            train_samples: data.train_samples(cfg),
            eval_samples: data.eval_samples(cfg),
        }
    }
}

impl DataShape {
    /// The sizes of `cfg`'s data set: MNIST's and CIFAR-10's are known; an
    /// `idx` data set's are read from its image files' headers.
    pub fn of(cfg: &RunConfig) -> Result<Self> {
        let (train, test, (c, h, w)) = match cfg.dataset.known_sizes() {
            Some(sizes) => sizes,
            None => {
                let dir =
                    crate::data::local_data_dir(cfg.data_dir.as_deref()).ok_or_else(|| {
                        Error::Config("--dataset idx needs --data-dir DIR (or $BIPROP_DATA)".into())
                    })?;
                crate::data::mnist::peek_dir(&dir)?
            }
        };
        Ok(Self {
            image: Shape::new(c, h, w),
            classes: cfg.classes,
            train,
            test,
        })
    }

    /// Samples held in memory: the training file's and the test file's.
    pub fn samples(&self) -> usize {
        self.train.saturating_add(self.test)
    }

    /// Samples `cfg` trains on an epoch: the training file less the
    /// validation split, at most `train_limit`.
    pub fn train_samples(&self, cfg: &RunConfig) -> usize {
        let n = self.train.saturating_sub(cfg.val_size);
        cfg.train_limit.map_or(n, |l| l.min(n))
    }

    /// Samples `cfg` evaluates an epoch: validation and test.
    pub fn eval_samples(&self, cfg: &RunConfig) -> usize {
        cfg.val_size.min(self.train).saturating_add(self.test)
    }
}

/// What a run holds beside its trainer: the data set when `data` gives its
/// sizes, a checkpoint when it writes one, the alignment probe when `cfg`
/// asks for it.
pub fn run_extras(cfg: &RunConfig, data: Option<&DataShape>, checkpoint: bool) -> Extras {
    let kept = |d: &DataShape| {
        d.train_samples(cfg)
            .saturating_add(cfg.val_size.min(d.train))
            .saturating_add(d.test)
    };
    Extras {
        data_samples: data.map_or(0, kept),
        loaded_samples: data.map_or(0, DataShape::samples),
        checkpoint,
        alignment: cfg.alignment,
    }
}

/// The memory of a run of `cfg` on inputs of `image` with `classes` outputs.
pub fn estimate(
    cfg: &RunConfig,
    image: Shape,
    classes: usize,
    extras: &Extras,
) -> Result<Estimate> {
    let plan = cfg.network_plan(image, classes)?;
    Ok(estimate_plan(cfg, image, &plan, extras))
}

/// Refuses `est` when it does not fit in the memory available (on
/// Linux; elsewhere only an estimate beyond what any machine addresses),
/// with one line: the estimate, what is available, and its largest parts.
pub fn check(est: &Estimate) -> Result<()> {
    let need = est.total();
    let refuse = |have: String| {
        Err(Error::Memory(format!(
            "this run needs about {}, more than the {have}: {}",
            bytes(need),
            est.drivers(3)
        )))
    };
    match available_memory() {
        Some(a) if need > a.bytes as u128 => refuse(format!("{} available", bytes(a.bytes.into()))),
        None if need > isize::MAX as u128 => refuse(format!(
            "{} any machine addresses",
            bytes(isize::MAX as u128)
        )),
        _ => Ok(()),
    }
}

/// The checks of a run before anything is allocated: its thread count
/// (at most [`crate::tensor::thread_limit`]) and its memory against the
/// machine's ([`check`]), for the layers of `plan`.
pub fn check_plan(cfg: &RunConfig, image: Shape, plan: &[Planned], extras: &Extras) -> Result<()> {
    crate::tensor::check_threads(cfg.threads)?;
    check(&estimate_plan(cfg, image, plan, extras))
}

/// [`check_plan`] for the network `cfg` describes on inputs of `image`
/// with `classes` outputs: a plan that does not fit is the error.
pub fn preflight(cfg: &RunConfig, image: Shape, classes: usize, extras: &Extras) -> Result<()> {
    crate::tensor::check_threads(cfg.threads)?;
    check(&estimate(cfg, image, classes, extras)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleKind;

    fn cfg(text: &str) -> RunConfig {
        RunConfig::from_toml_str(text).unwrap()
    }

    /// LeNet on MNIST by hand: conv 28x28 positions x 25 taps x 6, conv
    /// 10x10 x 150 x 16, conv 1x1 x 400 x 120, dense 120 x 84, dense 84 x 10.
    #[test]
    fn flops_of_a_convolutional_plan_match_the_hand_count() {
        let c = cfg("net = \"lenet-mnist\"");
        let plan = c.network_plan(Shape::new(1, 28, 28), 10).unwrap();
        let macs = [
            28 * 28 * 25 * 6,
            100 * 150 * 16,
            400 * 120,
            120 * 84,
            84 * 10,
        ];
        let f: f64 = macs.iter().map(|&m| 2.0 * m as f64).sum();
        assert_eq!(forward_flops(&plan), f);
        let first = 2.0 * macs[0] as f64;
        assert_eq!(flops_per_sample(RuleKind::Bp, &plan), 3.0 * f - first);
        let last = 2.0 * macs[4] as f64;
        assert_eq!(
            flops_per_sample(RuleKind::Bfa, &plan),
            3.0 * f - first + 3.0 * f - last
        );
        let units: f64 = [6 * 28 * 28, 16 * 10 * 10, 120, 84].iter().sum::<usize>() as f64;
        assert_eq!(
            flops_per_sample(RuleKind::Dfa, &plan),
            2.0 * f + 2.0 * 10.0 * units
        );
    }

    /// The runs: refused with the layer that drives them, before
    /// anything is allocated, whatever the sizes.
    #[test]
    fn absurd_networks_are_refused_naming_their_largest_parts() {
        let image = Shape::new(1, 28, 28);
        let e = estimate(&cfg("hidden = [1000000000]"), image, 10, &Extras::default()).unwrap();
        let weights = 1_000_000_000u128 * 784 * 4;
        assert!(e.total() > weights, "{}", e.total());
        assert!(
            e.drivers(3).contains("layer 1 (dense 1000000000)"),
            "{}",
            e.drivers(3)
        );
        let err = preflight(&cfg("hidden = [1000000000]"), image, 10, &Extras::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("this run needs about "), "{err}");
        assert!(!err.contains('\n'));
        for text in [
            "hidden = [9223372036854775807, 9223372036854775807]",
            "layers = \"conv 1000000000 1000x1000 pad 100000, flatten, dense 10\"",
            "layers = \"flatten, dense 9223372036854775807, dense 10\"",
            "rule = \"bfa\"\nhidden = [4611686018427387904]",
            "rule = \"bdfa\"\nbatch_size = 9223372036854775807",
        ] {
            let c = cfg(text);
            match preflight(&c, image, 10, &Extras::default()) {
                Err(Error::Memory(m)) => assert!(m.contains("needs about"), "{text}: {m}"),
                Err(Error::Config(m)) => assert!(m.contains("layer"), "{text}: {m}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_data_set_sizes_are_known_without_loading() {
        let m = DataShape::of(&RunConfig::default()).unwrap();
        assert_eq!((m.samples(), m.image), (70_000, Shape::new(1, 28, 28)));
        let c = cfg("val_size = 5000\ntrain_limit = 1000");
        assert_eq!(m.train_samples(&c), 1000);
        assert_eq!(m.eval_samples(&c), 15_000);
        let c = cfg("dataset = \"cifar10\"");
        assert_eq!(DataShape::of(&c).unwrap().image, Shape::new(3, 32, 32));
    }
}
