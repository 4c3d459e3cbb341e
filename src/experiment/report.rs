//! Reports: the runs of a sweep folder as a table laid out like the paper's
//! (rows architectures, columns rules), mean ± sample standard deviation
//! over seeds, with the paper's number beside each cell.

use super::paper;
use super::sweep::CellStatus;
use crate::config::{format_hidden, RunConfig};
use crate::data::DatasetKind;
use crate::error::{Error, Result};
use crate::rules::RuleKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One finished (or partly finished) run, read back from its directory.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The run directory.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: RunConfig,
    /// Per-epoch rows: column name to value.
    pub epochs: Vec<BTreeMap<String, f64>>,
    /// How it ended, from its `done` file (`None`: unfinished, or not a sweep's).
    pub status: Option<CellStatus>,
}

impl RunResult {
    /// Reads `dir/config.toml` and `dir/metrics.csv`.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = RunConfig::from_toml_file(&dir.join("config.toml"))?;
        let path = dir.join("metrics.csv");
        let mut rd =
            csv::Reader::from_path(&path).map_err(|e| Error::format(&path, e.to_string()))?;
        let header = rd
            .headers()
            .map_err(|e| Error::format(&path, e.to_string()))?
            .clone();
        let mut epochs = Vec::new();
        for row in rd.records() {
            let row = row.map_err(|e| Error::format(&path, e.to_string()))?;
            epochs.push(
                header
                    .iter()
                    .zip(row.iter())
                    .map(|(k, v)| (k.to_string(), v.parse::<f64>().unwrap_or(f64::NAN)))
                    .collect(),
            );
        }
        Ok(Self {
            dir: dir.into(),
            config,
            epochs,
            status: CellStatus::read(dir)?,
        })
    }

    /// True when the run's training diverged.
    pub fn diverged(&self) -> bool {
        matches!(self.status, Some(CellStatus::Diverged { .. }))
    }

    /// `column` at the last epoch.
    pub fn last(&self, column: &str) -> f64 {
        self.epochs
            .last()
            .and_then(|r| r.get(column).copied())
            .unwrap_or(f64::NAN)
    }

    /// Test error at the epoch of lowest validation error (the first such epoch).
    pub fn test_at_best_val(&self) -> f64 {
        let mut best: Option<&BTreeMap<String, f64>> = None;
        for r in &self.epochs {
            let v = r.get("val_error").copied().unwrap_or(f64::NAN);
            if v.is_nan() {
                continue;
            }
            if best.is_none_or(|b| v < b["val_error"]) {
                best = Some(r);
            }
        }
        best.map_or(f64::NAN, |r| {
            r.get("test_error").copied().unwrap_or(f64::NAN)
        })
    }
}

/// Every run under `dir` (any depth) that has a `config.toml` and a
/// `metrics.csv`; an error when there is none.
pub fn collect(dir: &Path) -> Result<Vec<RunResult>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("config.toml").is_file() && d.join("metrics.csv").is_file() {
            out.push(RunResult::load(&d)?);
            continue;
        }
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        for e in entries.flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Missing(format!(
            "no runs (config.toml + metrics.csv) under {}",
            dir.display()
        )));
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// The runs of one table cell: a data set, an architecture and a rule.
#[derive(Clone, Debug)]
pub struct Group {
    /// The data set.
    pub dataset: DatasetKind,
    /// Hidden layers, short form (`2x800`).
    pub hidden: String,
    /// The rule.
    pub rule: RuleKind,
    /// Epochs of the runs (the least, if they differ).
    pub epochs: usize,
    /// Test error (%) at the last epoch, one a run.
    pub last: Vec<f64>,
    /// Test error (%) at the epoch of best validation error, one a run.
    pub best_val: Vec<f64>,
    /// The seeds of the runs in `last` and `best_val`.
    pub seeds: Vec<u64>,
    /// The seeds whose runs diverged (not in the means).
    pub diverged: Vec<u64>,
    /// The seeds whose runs have not trained all their epochs yet (a sweep
    /// still running; not in the means).
    pub unfinished: Vec<u64>,
    /// The settings in which this group's runs differ from other runs of the
    /// folder (`feedback_scale=receiver`), empty when none do.
    pub variant: String,
}

/// Keys that never split a group: what a table's rows and columns already
/// say, what seeds average over, and what does not change results.
const NOT_VARIANTS: [&str; 6] = ["dataset", "hidden", "rule", "seed", "threads", "data_dir"];

/// For each run, the settings (beyond [`NOT_VARIANTS`] and those without
/// effect on its rule) in which the runs differ: `key=value, ...`.
pub(crate) fn variants(runs: &[RunResult]) -> Vec<String> {
    let tables: Vec<toml::Table> = runs
        .iter()
        .map(|r| r.config.to_toml().parse().expect("a config's TOML parses"))
        .collect();
    let mut differing: Vec<&String> = Vec::new();
    for t in &tables {
        for (k, v) in t {
            if !NOT_VARIANTS.contains(&k.as_str())
                && !differing.contains(&k)
                && tables.iter().any(|o| o.get(k) != Some(v))
            {
                differing.push(k);
            }
        }
    }
    differing.sort();
    runs.iter()
        .zip(&tables)
        .map(|(r, t)| {
            let unused: Vec<&str> = r.config.unused_settings().iter().map(|(k, _)| *k).collect();
            differing
                .iter()
                .filter(|k| !unused.contains(&k.as_str()))
                .map(|k| match t.get(*k) {
                    Some(toml::Value::String(v)) => format!("{k}={v}"),
                    // Debug keeps 1e30 short where Display writes 31 digits.
                    Some(toml::Value::Float(v)) => format!("{k}={v:?}"),
                    Some(v) => format!("{k}={v}"),
                    None => format!("{k}=unset"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}

/// Groups runs by data set, architecture, rule and variant (over seeds): runs
/// that differ in any other setting (learning rate, feedback scale, epochs)
/// are never averaged together, but reported as variants side by side.
pub fn group(runs: &[RunResult]) -> Vec<Group> {
    let mut groups: BTreeMap<(String, String, usize, String, usize), Group> = BTreeMap::new();
    for (r, variant) in runs.iter().zip(variants(runs)) {
        let c = &r.config;
        let hidden = format_hidden(&c.hidden);
        let rule_pos = RuleKind::ALL
            .iter()
            .position(|&k| k == c.rule)
            .unwrap_or(99);
        let key = (
            format!("{:?}", c.dataset),
            variant.clone(),
            c.hidden.len() * 100_000 + c.hidden.iter().sum::<usize>(),
            hidden.clone(),
            rule_pos,
        );
        let g = groups.entry(key).or_insert_with(|| Group {
            dataset: c.dataset,
            hidden,
            rule: c.rule,
            epochs: usize::MAX,
            last: Vec::new(),
            best_val: Vec::new(),
            seeds: Vec::new(),
            diverged: Vec::new(),
            unfinished: Vec::new(),
            variant,
        });
        if r.diverged() {
            g.diverged.push(c.seed);
            continue;
        }
        if r.epochs.len() < c.epochs {
            g.unfinished.push(c.seed);
            continue;
        }
        g.epochs = g.epochs.min(r.epochs.len());
        g.last.push(100.0 * r.last("test_error"));
        g.best_val.push(100.0 * r.test_at_best_val());
        g.seeds.push(c.seed);
    }
    groups.into_values().collect()
}

/// `mean ± std (n=N)`, and how many runs diverged or are unfinished.
fn cell(v: &[f64], diverged: usize, unfinished: usize) -> String {
    let mut div = String::new();
    if diverged > 0 {
        div.push_str(&format!(", {diverged} diverged"));
    }
    if unfinished > 0 {
        div.push_str(&format!(", {unfinished} unfinished"));
    }
    if v.is_empty() {
        return match (diverged, unfinished) {
            (d, 0) => format!("diverged (all {d})"),
            (0, u) => format!("unfinished ({u})"),
            (d, u) => format!("none finished ({d} diverged, {u} unfinished)"),
        };
    }
    let (m, s) = mean_std(v);
    if m.is_nan() {
        // No validation set (val_size = 0): there is no best-validation epoch.
        return format!("n/a (n={}{div})", v.len());
    }
    format!("{m:.2} ± {s:.2} (n={}{div})", v.len())
}

/// The Markdown report: for each data set, one table of last-epoch test
/// error and one at the best validation epoch, with the paper's numbers.
pub fn markdown(groups: &[Group]) -> String {
    let mut out = String::new();
    let tables: Vec<(DatasetKind, &str)> = {
        let mut d: Vec<_> = groups
            .iter()
            .map(|g| (g.dataset, g.variant.as_str()))
            .collect();
        d.dedup();
        d
    };
    for (ds, variant) in tables {
        let gs: Vec<&Group> = groups
            .iter()
            .filter(|g| g.dataset == ds && g.variant == variant)
            .collect();
        let variant = if variant.is_empty() {
            String::new()
        } else {
            format!(" ({variant})")
        };
        let rules: Vec<RuleKind> = RuleKind::ALL
            .into_iter()
            .filter(|r| gs.iter().any(|g| g.rule == *r))
            .collect();
        let mut archs: Vec<&str> = Vec::new();
        for g in &gs {
            if !archs.contains(&g.hidden.as_str()) {
                archs.push(&g.hidden);
            }
        }
        let seeds = gs.iter().map(|g| g.seeds.len()).max().unwrap_or(0);
        let fewest = gs.iter().map(|g| g.seeds.len()).min().unwrap_or(0);
        let seeds = if fewest == seeds {
            format!("{seeds}")
        } else {
            format!("{fewest} to {seeds}")
        };
        let epochs = gs
            .iter()
            .map(|g| g.epochs)
            .filter(|&e| e != usize::MAX)
            .min()
            .unwrap_or(0);
        for (title, pick) in [
            ("test error (%) at the last epoch", 0),
            ("test error (%) at the epoch of best validation error", 1),
        ] {
            let paper = match super::paper::table(ds) {
                Some(t) => format!("(paper: its Table {t} value, 300 epochs, 5 runs)"),
                None => "(no paper value for this data set)".into(),
            };
            out.push_str(&format!(
                "### {}{variant} — {title}\n\nmean ± std over {seeds} seed(s) (n per cell), {epochs} epochs; {paper}\n\n",
                ds.name().to_uppercase(),
            ));
            out.push_str("| model |");
            for r in &rules {
                out.push_str(&format!(" {} |", r.name().to_uppercase()));
            }
            out.push_str("\n|---|");
            out.push_str(&"---|".repeat(rules.len()));
            out.push('\n');
            for a in &archs {
                out.push_str(&format!("| {a} |"));
                for r in &rules {
                    let text = match gs.iter().find(|g| g.hidden == *a && g.rule == *r) {
                        Some(g) => {
                            let v = if pick == 0 { &g.last } else { &g.best_val };
                            let ours = cell(v, g.diverged.len(), g.unfinished.len());
                            match paper::published(ds, a, *r) {
                                Some(p) => format!("{ours} ({p:.2})"),
                                None => ours,
                            }
                        }
                        None => "—".into(),
                    };
                    out.push_str(&format!(" {text} |"));
                }
                out.push('\n');
            }
            out.push('\n');
        }
    }
    out
}

/// The groups as CSV: one row per data set, architecture and rule.
pub fn csv_text(groups: &[Group]) -> String {
    let mut out = String::from(
        "dataset,variant,hidden,rule,runs,diverged,unfinished,epochs,test_error_last_mean,test_error_last_std,test_error_best_val_mean,test_error_best_val_std,paper\n",
    );
    for g in groups {
        let (lm, ls) = mean_std(&g.last);
        let (bm, bs) = mean_std(&g.best_val);
        let p =
            paper::published(g.dataset, &g.hidden, g.rule).map_or(String::new(), |p| p.to_string());
        out.push_str(&format!(
            "{:?},\"{}\",{},{},{},{},{},{},{lm},{ls},{bm},{bs},{p}\n",
            g.dataset,
            g.variant,
            g.hidden,
            g.rule,
            g.last.len(),
            g.diverged.len(),
            g.unfinished.len(),
            if g.epochs == usize::MAX { 0 } else { g.epochs }
        ));
    }
    out
}
