//! `biprop train`: one run, from defaults, a TOML file and flags.

use super::settings::{flag_of, protocol_line, SettingsArgs};
use crate::config::RunConfig;
use crate::optim::OptimizerKind;
use crate::resources::{self, DataShape};
use crate::run::InitFrom;
use crate::run::{self, RunOptions};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args, Default)]
pub(super) struct TrainArgs {
    /// TOML file with any run setting (flags override it).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    pub(super) settings: SettingsArgs,
    /// Run directory (default: runs/RULE-HIDDEN-seedS, made unique).
    #[arg(long, short = 'o', value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into --out even if it holds an earlier run.
    #[arg(long)]
    force: bool,
    /// Continue the run in --out from its last checkpoint (same settings; --epochs may grow).
    #[arg(long, requires = "out", conflicts_with = "force")]
    resume: bool,
    /// Start from this checkpoint's weights: forward and feedback, of a run of
    /// the same rule and shapes; every tensor must fit and be used.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    /// Start from this checkpoint's forward weights only (any rule, e.g. FA
    /// from a BP run); the feedback is drawn as usual.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with_all = ["init_from", "resume"])]
    init_forward_from: Option<PathBuf>,
    /// No progress bar and no per-epoch lines.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Train nothing and load no data: print the run's memory (its largest
    /// parts, against what this machine has), its FLOPs an epoch and the time
    /// they take here; exit 1 if the run would be refused.
    #[arg(long)]
    dry_run: bool,
}

impl TrainArgs {
    /// The configuration: defaults, then the TOML file, then the flags. A
    /// flag that would have no effect on this run is refused.
    pub(super) fn resolve(&self) -> Result<RunConfig> {
        let mut layers = Vec::new();
        if let Some(p) = &self.config {
            layers.push(crate::config::read_table(p)?);
        }
        let flags = self.settings.overrides()?;
        layers.push(flags.clone());
        let cfg = RunConfig::from_layers(&layers).map_err(|e| {
            // Name the flag when a flag's value is at fault.
            if let crate::Error::Config(msg) = &e {
                if let Some((key, rest)) = msg.split_once(": ") {
                    if flags.contains_key(key) {
                        return anyhow::anyhow!("{}: {rest}", flag_of(key));
                    }
                }
            }
            match &self.config {
                Some(p) => anyhow::anyhow!("{e} (settings from {} and the flags)", p.display()),
                None => anyhow::anyhow!("{e}"),
            }
        })?;
        if let Some((key, why)) = cfg.first_unused_in(&flags) {
            bail!("{} has no effect on this run: {why}", flag_of(key));
        }
        Ok(cfg)
    }
}

pub(super) fn train(args: TrainArgs) -> Result<()> {
    let cfg = args.resolve()?;
    if args.dry_run {
        return dry_run(&cfg);
    }
    let out = match &args.out {
        Some(dir) => {
            if run::holds_run(dir) && !args.force && !args.resume {
                bail!(
                    "{} already holds a run; pass --resume to continue it, --force to overwrite it, or another --out",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => run::fresh_run_dir(&cfg.run_name()),
    };
    // Refused before the data is loaded when it cannot fit (the run checks
    // again, with the data in memory, before it allocates its trainer).
    if let Ok(data) = DataShape::of(&cfg) {
        let extras = resources::run_extras(&cfg, Some(&data), true);
        resources::preflight(&cfg, data.image, data.classes, &extras)?;
    }
    let splits = run::load_data(&cfg).context("loading the data")?;
    let interactive = std::io::stderr().is_terminal();
    if !args.quiet {
        eprintln!(
            "{} on {}: {} train / {} val / {} test samples, network {}, {} threads -> {}",
            cfg.rule,
            format!("{:?}", cfg.dataset).to_lowercase(),
            splits.train.len(),
            splits.val.len(),
            splits.test.len(),
            cfg.architecture(),
            run::resolve_threads(cfg.threads),
            out.display()
        );
        eprintln!("protocol: {}, {} epochs", protocol_line(&cfg), cfg.epochs);
        let paper_like =
            cfg.optimizer == OptimizerKind::Sgd && cfg.momentum == 0.0 && cfg.lr <= 0.0128;
        if paper_like && cfg.epochs < 300 && cfg.layer_description().is_none() {
            eprintln!(
                "note: the paper trains this protocol for 300 epochs (biprop sweep experiments/table1.toml); \
                 at 15 BP still trails the other rules on most architectures (docs/results/table1-short.md). For every rule side by side in minutes: biprop compare"
            );
        }
    }
    let opts = RunOptions {
        out_dir: Some(out.clone()),
        init_from: match (&args.init_from, &args.init_forward_from) {
            (Some(p), _) => Some(InitFrom::Everything(p.clone())),
            (None, Some(p)) => Some(InitFrom::ForwardOnly(p.clone())),
            (None, None) => None,
        },
        progress: interactive && !args.quiet,
        echo: !args.quiet,
        resume: args.resume,
        on_epoch: None,
        on_batch: None,
    };
    let summary = run::run(&cfg, &splits, &opts)?;
    if summary.records.is_empty() {
        say!(
            "nothing to train: the run in {} is complete ({} epochs)",
            out.display(),
            cfg.epochs
        );
    }
    if let Some(last) = summary.records.last() {
        say!(
            "final test error {:.2}% (val {:.2}%) after {} epochs; run saved in {}",
            100.0 * last.test_error,
            100.0 * last.val_error,
            last.epoch,
            out.display()
        );
    }
    Ok(())
}

/// `--dry-run`: the forecast of the run, and its refusal as the error.
fn dry_run(cfg: &crate::config::RunConfig) -> Result<()> {
    let threads = run::resolve_threads(cfg.threads);
    let f = crate::bench::forecast(cfg, threads, true, &mut Default::default())?;
    for line in f.report(cfg) {
        say!("{line}");
    }
    say!("dry run: nothing trained");
    match f.refusal {
        Some(why) => bail!("{why}"),
        None => Ok(()),
    }
}
