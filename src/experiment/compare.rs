//! `biprop compare`: every rule side by side on a protocol that converges in
//! a few epochs, as one table and one plot: what biprop is for, in minutes.
//!
//! The paper's own protocol (plain SGD at a small learning rate) needs about
//! 150 epochs before BP pulls ahead of the other rules, so a short run of it
//! would rank them misleadingly; this one adds momentum and a larger rate.

use super::report::RunResult;
use super::sweep::{self, Sweep, SweepOptions};
use crate::config::RunConfig;
use crate::error::Result;
use crate::rules::RuleKind;
use std::path::{Path, PathBuf};

/// The quick protocol: the paper's network (784-800-10, tanh, sigmoid-BCE,
/// batch 128) with SGD momentum 0.9 at learning rate 0.05, 5 epochs.
pub fn quick_protocol() -> toml::Table {
    toml::toml! {
        hidden = [800]
        epochs = 5
        lr = 0.05
        momentum = 0.9
        batch_size = 128
    }
}

/// The quick protocol of a network that `net` or `layers` describes (a
/// convolutional one, as a rule): softmax cross-entropy and Adam at 1e-3,
/// as the test that every rule learns lenet-mnist uses, on which every rule
/// but DRTP reaches 1.9 to 13% test error in 3 epochs (the README's table);
/// Xavier initialization, and so random feedback at the scale of the
/// weights it stands in for; batch 128.
pub fn layers_protocol() -> toml::Table {
    toml::toml! {
        epochs = 3
        output = "softmax-ce"
        optimizer = "adam"
        lr = 0.001
        init = "xavier"
        batch_size = 128
    }
}

/// Whether `settings` describe their network by `net` or `layers`, and so
/// are compared on [`layers_protocol`].
pub fn describes_layers(settings: &toml::Table) -> bool {
    settings.contains_key("net") || settings.contains_key("layers")
}

/// The quick protocol for `settings` ([`layers_protocol`] when they
/// [`describes_layers`], else [`quick_protocol`]) with `settings` merged
/// over it, as a sweep base and as the run configuration it gives (checked).
pub fn protocol(settings: &toml::Table) -> Result<(toml::Table, RunConfig)> {
    let mut base = if describes_layers(settings) {
        layers_protocol()
    } else {
        quick_protocol()
    };
    crate::config::merge_into(&mut base, settings);
    let cfg = RunConfig::from_layers(std::slice::from_ref(&base))?;
    Ok((base, cfg))
}

/// One line of the comparison.
#[derive(Clone, Debug)]
pub struct Row {
    /// The rule.
    pub rule: RuleKind,
    /// Test error (%) at the last epoch.
    pub test_error: f64,
    /// Test error (%) at the epoch of best validation error.
    pub test_at_best_val: f64,
    /// Mean over hidden layers of the angle (degrees) between the rule's
    /// update and BP's gradient, at the last epoch that has one.
    pub angle: f64,
    /// Of the hidden layers, how many `angle` is over and how many there
    /// are, when it leaves some out (their update was zero: dead layers).
    pub angle_layers: Option<(usize, usize)>,
    /// Seconds of training and evaluation, all epochs.
    pub seconds: f64,
    /// The epoch in which training diverged (its numbers are then none).
    pub diverged: Option<usize>,
}

/// Runs `rules` on `base` (the quick protocol, with the caller's settings
/// merged over it) as a sweep in `out`, `jobs` at a time; a finished
/// comparison of the same settings is reported without rerunning.
pub fn run(
    rules: &[RuleKind],
    settings: &toml::Table,
    out: &Path,
    jobs: usize,
    progress: bool,
) -> Result<Vec<Row>> {
    let (base, _) = protocol(settings)?;
    let s = Sweep {
        out: out.to_path_buf(),
        base,
        grid: vec![(
            "rule".into(),
            rules
                .iter()
                .map(|r| toml::Value::String(r.name().into()))
                .collect(),
        )],
    };
    sweep::run_sweep(
        &s,
        &SweepOptions {
            jobs,
            task: None,
            progress,
        },
    )?;
    let mut rows = Vec::new();
    for cell in s.cells()? {
        let r = RunResult::load(&s.run_dir(&cell))?;
        rows.push(row(&r));
    }
    Ok(rows)
}

fn row(r: &RunResult) -> Row {
    let angle = r.latest_update_angle();
    Row {
        rule: r.config.rule,
        test_error: 100.0 * r.last("test_error"),
        test_at_best_val: 100.0 * r.test_at_best_val(),
        angle: angle.map_or(f64::NAN, |a| a.degrees),
        angle_layers: angle.and_then(|a| a.leaves_layers_out()),
        seconds: r.seconds(),
        diverged: match r.status {
            Some(crate::experiment::sweep::CellStatus::Diverged { epoch, .. }) => Some(epoch),
            _ => None,
        },
    }
}

/// The comparison as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| rule | test error (%) | at best val (%) | angle to BP's update (°) | seconds |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        if let Some(epoch) = r.diverged {
            s.push_str(&format!(
                "| {} | diverged in epoch {epoch} (lower --lr) | | | |\n",
                r.rule.name().to_uppercase()
            ));
            continue;
        }
        let angle = if r.rule == RuleKind::Bp {
            "0 (is BP)".to_string()
        } else if r.angle.is_finite() {
            match r.angle_layers {
                Some((n, of)) => format!(
                    "{:.1} (over {n} of {of} layers; the others' updates were zero)",
                    r.angle
                ),
                None => format!("{:.1}", r.angle),
            }
        } else {
            "n/a".into()
        };
        s.push_str(&format!(
            "| {} | {:.2} | {:.2} | {angle} | {:.1} |\n",
            r.rule.name().to_uppercase(),
            r.test_error,
            r.test_at_best_val,
            r.seconds
        ));
    }
    s
}

/// Where the plots of a comparison in `out` go.
pub fn plots_dir(out: &Path) -> PathBuf {
    out.join("plots")
}

/// Writes the learning-curve and alignment plots of the comparison.
pub fn plot(out: &Path) -> Result<Vec<PathBuf>> {
    super::plot::plot_dir(out, &plots_dir(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A diverged rule's row says so instead of printing NaN, and a mean angle
    /// that leaves dead layers out says how many it is over.
    #[test]
    fn a_diverged_rule_is_named_not_printed_as_nan() {
        let ok = Row {
            rule: RuleKind::Bp,
            test_error: 2.5,
            test_at_best_val: 2.4,
            angle: 0.0,
            angle_layers: None,
            seconds: 3.0,
            diverged: None,
        };
        let dead = Row {
            rule: RuleKind::Dfa,
            angle: 47.7,
            angle_layers: Some((2, 4)),
            ..ok.clone()
        };
        let bad = Row {
            rule: RuleKind::Bfa,
            test_error: f64::NAN,
            test_at_best_val: f64::NAN,
            angle: f64::NAN,
            angle_layers: None,
            seconds: 0.0,
            diverged: Some(2),
        };
        let md = markdown(&[ok, dead, bad]);
        assert!(
            md.contains("| BP | 2.50 | 2.40 | 0 (is BP) | 3.0 |"),
            "{md}"
        );
        assert!(md.contains("| BFA | diverged in epoch 2"), "{md}");
        assert!(
            md.contains(
                "| DFA | 2.50 | 2.40 | 47.7 (over 2 of 4 layers; the others' updates were zero) |"
            ),
            "{md}"
        );
        assert!(!md.contains("NaN"), "{md}");
    }
}
