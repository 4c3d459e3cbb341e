//! A whole training run: data, network, rule, epochs, metrics, checkpoint.
//!
//! The run directory holds `config.toml` (the resolved configuration),
//! `metrics.csv` and `metrics.jsonl` (one row an epoch) and
//! `checkpoint.safetensors` (rewritten atomically after every epoch).

mod metrics_files;

use metrics_files::{check_columns, kept_metrics, Kept, MetricsFiles};
pub use metrics_files::{epoch_seconds, epochs_recorded, EpochRecord};

use crate::checkpoint::Checkpoint;
use crate::config::RunConfig;
use crate::data::{self, Normalize, Splits, Standardize};
use crate::error::{Error, Result};
use crate::layers::Shape;
use crate::metrics::AlignmentProbe;
use crate::network::{Init, Network};
use crate::rules::{self, InitScheme};
use crate::state::{self, CheckpointExt};
use crate::tensor::{with_gemm_backend, GemmBackend, Parallelism};
use crate::train::{Tally, Trainer};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Loads the data a configuration names, applying `train_limit` and the validation split.
pub fn load_data(cfg: &RunConfig) -> Result<Splits> {
    let (train, test) = data::load(cfg.dataset, cfg.data_dir.as_deref(), cfg.classes)?;
    let mut splits = Splits::new(train, test, cfg.val_size)?;
    if let Some(n) = cfg.train_limit {
        if n < splits.train.len() {
            splits.train = splits.train.slice(0..n);
        }
    }
    Ok(splits)
}

/// True when `dir` already holds a run (its checkpoint or metrics), which a
/// new run would overwrite.
pub fn holds_run(dir: &Path) -> bool {
    ["checkpoint.safetensors", "metrics.csv"]
        .iter()
        .any(|f| dir.join(f).exists())
}

/// `runs/NAME`, or `runs/NAME-2`, `-3` ... if taken: where a run goes when
/// its caller names no folder.
pub fn fresh_run_dir(name: &str) -> PathBuf {
    let base = Path::new("runs");
    let mut dir = base.join(name);
    let mut k = 2;
    while dir.exists() {
        dir = base.join(format!("{name}-{k}"));
        k += 1;
    }
    dir
}

pub use crate::tensor::resolve_threads;

/// Where a run's starting weights come from, when not from the seed alone.
#[derive(Clone, Debug, PartialEq)]
pub enum InitFrom {
    /// Every weight of a checkpoint of the same rule and shapes (forward and
    /// feedback); a tensor the run does not use is an error.
    Everything(PathBuf),
    /// Only the forward weights of a checkpoint of any rule; the feedback is
    /// drawn from the seed as usual.
    ForwardOnly(PathBuf),
}

/// Builds the network and the rule from the seed, and optionally restores a
/// checkpoint; with `normalize = channel`, the input statistics are the
/// training split's.
pub fn build_trainer(
    cfg: &RunConfig,
    splits: &Splits,
    init_from: Option<&InitFrom>,
) -> Result<Trainer> {
    let (c, h, w) = splits.train.image;
    let standardize = match cfg.normalize {
        Normalize::None => None,
        Normalize::Channel => Some(Standardize::fit(&splits.train)?),
    };
    build_trainer_sized(
        cfg,
        Shape::new(c, h, w),
        splits.train.classes,
        init_from,
        standardize,
    )
}

/// [`build_trainer`] for inputs of `image` and `classes` outputs, with the
/// input statistics `standardize`, which `cfg.normalize = channel` needs
/// (from a data set or a checkpoint) and `none` refuses.
pub fn build_trainer_sized(
    cfg: &RunConfig,
    image: Shape,
    classes: usize,
    init_from: Option<&InitFrom>,
    standardize: Option<Standardize>,
) -> Result<Trainer> {
    match (cfg.normalize, &standardize) {
        (Normalize::Channel, None) => {
            return Err(Error::Config(
                "normalize = channel standardizes inputs with a training set's statistics, and \
                 none were given: train with biprop train (it measures them), load a checkpoint \
                 trained with them, or standardize the inputs yourself and use normalize = none"
                    .into(),
            ))
        }
        (Normalize::None, Some(_)) => {
            return Err(Error::Config(
                "input statistics were given, but normalize = none".into(),
            ))
        }
        _ => {}
    }
    let plan = cfg.network_plan(image, classes)?;
    // Refused here, before anything is allocated, if it cannot fit.
    crate::resources::check_plan(cfg, image, &plan, &Default::default())?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let init = match cfg.init {
        InitScheme::Xavier => Init::Xavier,
        InitScheme::Default | InitScheme::Reference => Init::FanIn,
    };
    let mut net = Network::with_init(image, plan, cfg.output, init, &mut rng);
    let mut rule = rules::build(cfg.rule, &mut net, &cfg.rule_options(), &mut rng);
    match init_from {
        Some(InitFrom::Everything(path)) => {
            Checkpoint::load(path)?.restore(&mut net, rule.as_mut())?
        }
        Some(InitFrom::ForwardOnly(path)) => Checkpoint::load(path)?.restore_forward(&mut net)?,
        None => {}
    }
    let mut trainer = Trainer::new(net, rule, cfg.optim(), cfg.batch_size);
    trainer.set_parallelism(Parallelism::threads(cfg.threads)?);
    trainer.set_backend(cfg.gemm);
    trainer.set_augment(cfg.augment, cfg.seed)?;
    trainer.set_standardize(standardize)?;
    Ok(trainer)
}

/// Called after every epoch with its record.
pub type EpochCallback = std::sync::Arc<dyn Fn(&EpochRecord) + Send + Sync>;

/// How to run, beyond the configuration.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// The run directory (created; `None` writes nothing).
    pub out_dir: Option<PathBuf>,
    /// Start from a checkpoint's weights.
    pub init_from: Option<InitFrom>,
    /// Show a progress bar per epoch.
    pub progress: bool,
    /// Print one line per epoch on stderr.
    pub echo: bool,
    /// Continue the run already in `out_dir` from its last checkpoint (its
    /// configuration must match, but for `epochs` and `threads`).
    pub resume: bool,
    /// Called after every epoch.
    pub on_epoch: Option<EpochCallback>,
    /// Called after every batch with the samples done in the epoch; the run
    /// stops with [`Error::Interrupted`] when it returns false (Ctrl-C in
    /// the Python package). The checkpoint keeps the last whole epoch.
    pub on_batch: Option<BatchCallback>,
}

/// Called after every batch; false stops the run.
pub type BatchCallback = std::sync::Arc<dyn Fn(usize) -> bool + Send + Sync>;

/// The outcome of a run.
pub struct RunSummary {
    /// One record an epoch.
    pub records: Vec<EpochRecord>,
    /// The trained network and rule.
    pub trainer: Trainer,
}

/// Trains `cfg` on `splits`: the whole run, on `cfg.threads` threads.
pub fn run(cfg: &RunConfig, splits: &Splits, opts: &RunOptions) -> Result<RunSummary> {
    cfg.validate()?;
    let threads = resolve_threads(cfg.threads);
    let mut cfg = cfg.clone();
    cfg.threads = threads;
    cfg.gemm = resolve_backend(&cfg, opts)?;
    // The whole run's memory (its checkpoint's writing too; the data is loaded).
    let extras = crate::resources::run_extras(&cfg, None, opts.out_dir.is_some());
    let (c, h, w) = splits.train.image;
    crate::resources::preflight(&cfg, Shape::new(c, h, w), splits.train.classes, &extras)?;
    let mut trainer = build_trainer(&cfg, splits, opts.init_from.as_ref())?;
    if let (Some(s), true) = (trainer.standardize(), opts.echo) {
        let list = |v: &[f32]| {
            v.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        eprintln!(
            "inputs standardized per channel with the {} training images' mean [{}] and \
             deviation [{}]",
            splits.train.len(),
            list(s.mean()),
            list(s.std())
        );
    }
    let (par, backend) = (trainer.parallelism().clone(), trainer.backend());
    // The whole run (evaluation and alignment probes too) on the trainer's
    // threads and kernels.
    let records = par
        .install(|| with_gemm_backend(backend, || run_epochs(&cfg, splits, opts, &mut trainer)))?;
    Ok(RunSummary { records, trainer })
}

/// The GEMM backend a run uses and records: the one asked for; for `auto`,
/// the one of the checkpoint it resumes (a run continues on the kernels it
/// started on, to stay bitwise what an uninterrupted run gives; checkpoints
/// written before the setting existed were all made with faer), else this
/// CPU's.
fn resolve_backend(cfg: &RunConfig, opts: &RunOptions) -> Result<GemmBackend> {
    if cfg.gemm != GemmBackend::Auto {
        return Ok(cfg.gemm);
    }
    if let (true, Some(dir)) = (opts.resume, &opts.out_dir) {
        let path = dir.join("checkpoint.safetensors");
        if path.is_file() {
            return Ok(stored_config(&Checkpoint::load(&path)?)?.gemm);
        }
    }
    Ok(GemmBackend::for_this_cpu())
}

/// The configuration a checkpoint was trained with, its GEMM backend
/// resolved: one written before the setting existed (`auto` on reading)
/// ran on faer, then the only backend.
fn stored_config(ck: &Checkpoint) -> Result<RunConfig> {
    let mut stored = ck.config()?;
    if stored.gemm == GemmBackend::Auto {
        stored.gemm = GemmBackend::Faer;
    }
    Ok(stored)
}

/// Sets `order` to epoch `epoch`'s visiting order of its indices: a
/// shuffle that depends on (seed, epoch) alone, so that a resumed run, or a
/// Python loop of `fit_epoch`, shuffles exactly as an uninterrupted run.
pub fn epoch_order(seed: u64, epoch: usize, order: &mut [usize]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    order.iter_mut().enumerate().for_each(|(i, v)| *v = i);
    order.shuffle(&mut rng);
}

/// `cfg` with the settings that may change between a run and its resumption
/// (`epochs`, `threads`) normalized.
fn resumable_key(cfg: &RunConfig) -> String {
    RunConfig {
        epochs: 0,
        threads: 0,
        ..cfg.clone()
    }
    .to_toml()
}

/// Restores the checkpoint in `dir` into `trainer` when `cfg` may continue
/// it; returns the epoch it holds and the metric lines to keep.
fn try_resume(dir: &Path, cfg: &RunConfig, trainer: &mut Trainer) -> Result<(usize, Kept)> {
    let path = dir.join("checkpoint.safetensors");
    if !path.is_file() {
        return Ok((0, Kept::default()));
    }
    let ck = Checkpoint::load(&path)?;
    if resumable_key(&stored_config(&ck)?) != resumable_key(cfg) {
        return Err(Error::Config(format!(
            "{} holds a run of another configuration; use another output folder",
            dir.display()
        )));
    }
    // An epoch that does not read would restart the count on trained weights.
    let epoch = ck.epoch().ok_or_else(|| Error::Checkpoint {
        path: path.clone(),
        msg: "no epoch in its metadata: cannot resume from it".into(),
    })?;
    if epoch > cfg.epochs {
        return Err(Error::Config(format!(
            "{} holds a run of {epoch} epochs, more than the {} asked for; \
             ask for at least {epoch} to continue it, or use another output folder",
            dir.display(),
            cfg.epochs
        )));
    }
    ck.restore_trainer(trainer)?;
    let kept = if epoch == 0 {
        Kept::default()
    } else {
        kept_metrics(dir, epoch).map_err(|(file, msg)| {
            Error::format(
                dir.join(file),
                format!(
                    "{msg}: the metrics of the checkpoint's {epoch} epochs are damaged; \
                     refusing to resume (nothing was changed)"
                ),
            )
        })?
    };
    check_columns(&kept, &recorded_columns(cfg, trainer)).map_err(|(file, msg)| {
        Error::format(
            dir.join(file),
            format!("{msg}; refusing to resume (nothing was changed)"),
        )
    })?;
    Ok((epoch, kept))
}

/// The names of the values a run of `cfg` on `trainer` records each epoch
/// (every metrics column but `epoch`, in no particular order). Taking the
/// rule's feedback losses here is harmless: nothing has been summed yet.
fn recorded_columns(cfg: &RunConfig, trainer: &mut Trainer) -> Vec<String> {
    let mut names: Vec<String> = metrics_files::FIXED_COLUMNS[1..]
        .iter()
        .map(|c| c.to_string())
        .collect();
    names.extend(
        trainer
            .rule
            .take_feedback_losses()
            .into_iter()
            .map(|(k, _)| k),
    );
    if cfg.alignment {
        names.extend(crate::metrics::Alignment::names(
            trainer.net.hidden_layers(),
        ));
    }
    names.extend(
        crate::metrics::weight_norms(trainer)
            .into_iter()
            .map(|(k, _)| k),
    );
    names
}

fn run_epochs(
    cfg: &RunConfig,
    splits: &Splits,
    opts: &RunOptions,
    trainer: &mut Trainer,
) -> Result<Vec<EpochRecord>> {
    let mut done = 0;
    let mut files = match &opts.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            // A run killed mid-write leaves a temp file as large as its
            // checkpoint; one per kill would pile up.
            crate::fsutil::remove_stale_temps(dir)?;
            let (epoch, kept) = if opts.resume {
                try_resume(dir, cfg, trainer)?
            } else {
                (0, Kept::default())
            };
            done = epoch;
            crate::fsutil::write_atomic(&dir.join("config.toml"), cfg.to_toml().as_bytes())?;
            Some(MetricsFiles::open(dir, &kept)?)
        }
        None => None,
    };
    let mut order: Vec<usize> = (0..splits.train.len()).collect();
    let mut records = Vec::with_capacity(cfg.epochs);
    // The alignment probe: the first batch of the validation set (else of the
    // training set), the same every epoch.
    let probe_set = if splits.val.is_empty() {
        &splits.train
    } else {
        &splits.val
    };
    let probe_idx: Vec<usize> = (0..cfg.batch_size.min(probe_set.len())).collect();
    let mut probe = cfg.alignment.then(|| AlignmentProbe::new(trainer));
    for epoch in done + 1..=cfg.epochs {
        trainer.set_lr_factor(cfg.lr_factor(epoch));
        trainer.set_epoch(epoch);
        if cfg.shuffle {
            epoch_order(cfg.seed, epoch, &mut order);
        }
        let bar = if opts.progress {
            let b = indicatif::ProgressBar::new(order.len() as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "epoch {msg} [{bar:30}] {pos}/{len} samples ({per_sec}, {eta} left)",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_message(format!("{epoch}/{}", cfg.epochs));
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        let t0 = Instant::now();
        let mut interrupted = false;
        let train = trainer.train_epoch_until(&splits.train, &order, cfg.batch_size, |done| {
            bar.set_position(done as u64);
            interrupted = opts.on_batch.as_ref().is_some_and(|f| !f(done));
            !interrupted
        });
        let train_seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if interrupted {
            return Err(Error::Interrupted { epoch });
        }
        if !train.loss.is_finite() {
            return Err(Error::Diverged {
                epoch,
                loss: train.loss,
            });
        }
        let val = if splits.val.is_empty() {
            Tally {
                loss: f64::NAN,
                errors: 0,
                samples: 0,
            }
        } else {
            trainer
                .evaluate(&splits.val)
                .map_err(|e| e.diverged_in(epoch))?
        };
        let test = trainer
            .evaluate(&splits.test)
            .map_err(|e| e.diverged_in(epoch))?;
        let feedback = trainer.rule.take_feedback_losses().into_iter().collect();
        let alignment = match probe.as_mut() {
            Some(p) => {
                trainer.load_batch(probe_set, &probe_idx);
                p.measure(trainer, probe_idx.len())
                    .named()
                    .into_iter()
                    .collect()
            }
            None => Default::default(),
        };
        let record = EpochRecord {
            epoch,
            train_loss: train.mean_loss(),
            train_error: train.error_rate(),
            val_loss: val.mean_loss(),
            val_error: if val.samples == 0 {
                f64::NAN
            } else {
                val.error_rate()
            },
            test_loss: test.mean_loss(),
            test_error: test.error_rate(),
            train_seconds,
            seconds: t0.elapsed().as_secs_f64(),
            feedback,
            alignment,
            norms: crate::metrics::weight_norms(trainer).into_iter().collect(),
        };
        if opts.echo {
            eprintln!("{}", record.summary(cfg.epochs));
        }
        if let (Some(f), Some(dir)) = (files.as_mut(), &opts.out_dir) {
            f.append(&record)
                .and_then(|()| {
                    state::save_trainer(
                        &dir.join("checkpoint.safetensors"),
                        trainer,
                        cfg,
                        epoch,
                        splits.train.image,
                    )
                })
                .map_err(|err| Error::NotSaved {
                    epoch,
                    err: Box::new(err),
                })?;
        }
        if let Some(f) = &opts.on_epoch {
            f(&record);
        }
        records.push(record);
    }
    Ok(records)
}
