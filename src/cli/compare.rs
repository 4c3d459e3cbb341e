//! `biprop compare`: every rule side by side on a quick protocol.

use super::settings::{protocol_line, SettingsArgs};
use crate::rules::RuleKind;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct CompareArgs {
    /// Rules to compare, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    rules: Vec<RuleKind>,
    /// Runs at once (default: one per core, each on one thread).
    #[arg(long, short = 'J')]
    jobs: Option<usize>,
    /// Output folder (a sweep folder: `biprop report` and `plot` read it).
    #[arg(long, short = 'o', default_value = "runs/compare")]
    out: PathBuf,
    /// Delete an earlier comparison in --out first.
    #[arg(long)]
    force: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Any run setting, over the quick protocol (784-800-10 tanh,
    /// sigmoid-BCE, SGD momentum 0.9, lr 0.05, batch 128, 5 epochs; with
    /// --net or --layers: softmax-CE, Adam lr 0.001, Xavier init, batch
    /// 128, 3 epochs).
    #[command(flatten)]
    settings: SettingsArgs,
}

pub(super) fn compare(args: CompareArgs) -> Result<()> {
    use crate::experiment::compare;
    let settings = args.settings.overrides()?;
    if settings.contains_key("rule") {
        bail!("compare runs several rules: choose them with --rules bp,fa,...");
    }
    let rules = if args.rules.is_empty() {
        RuleKind::ALL.to_vec()
    } else {
        args.rules.clone()
    };
    if args.force && args.out.exists() {
        std::fs::remove_dir_all(&args.out)
            .with_context(|| format!("removing {}", args.out.display()))?;
    }
    let (_, shown) = compare::protocol(&settings)?;
    if !args.quiet {
        eprintln!(
            "comparing {} on {}: {}, {} epochs -> {}",
            rules
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", "),
            shown.dataset.name(),
            protocol_line(&shown),
            shown.epochs,
            args.out.display()
        );
    }
    let jobs = args
        .jobs
        .unwrap_or_else(crate::experiment::sweep::default_jobs);
    let rows = compare::run(
        &rules,
        &settings,
        &args.out,
        jobs,
        !args.quiet && std::io::stderr().is_terminal(),
    )
    .map_err(|e| match e.root() {
        crate::Error::Config(m) if m.contains("another configuration") => anyhow::anyhow!(
            "{e}\n(an earlier comparison with other settings is in {}: pass --force to replace it, or --out)",
            args.out.display()
        ),
        _ => anyhow::anyhow!(e),
    })?;
    say!("{}", compare::markdown(&rows).trim_end());
    compare::plot(&args.out)?;
    say!(
        "plots: {} (test error and alignment curves); runs: {}",
        compare::plots_dir(&args.out).display(),
        args.out.display()
    );
    if compare::describes_layers(&settings) {
        say!(
            "This is a quick protocol, not a benchmark's: biotorch's LeNet benchmark trains SGD \
             for 100 epochs on MNIST, 250 on CIFAR-10 (biprop sweep experiments/conv-mnist.toml; \
             docs/results/conv.md)."
        );
    } else {
        say!(
            "This is a quick protocol, not the paper's: the paper trains plain SGD for 300 epochs \
             (biprop sweep experiments/table1.toml; docs/experiments.md)."
        );
    }
    Ok(())
}
