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

impl RunResult {
    /// Lowest validation error (fraction) over the epochs, NaN without a
    /// validation set.
    pub fn best_val_error(&self) -> f64 {
        self.epochs
            .iter()
            .filter_map(|r| r.get("val_error").copied())
            .filter(|v| !v.is_nan())
            .fold(f64::NAN, f64::min)
    }

    /// Mean over hidden layers of the angle (degrees) between the rule's
    /// update and BP's gradient at the last epoch; NaN without alignment.
    pub fn mean_update_angle(&self) -> f64 {
        let angles: Vec<f64> = (0..self.config.hidden.len())
            .map(|i| self.last(&format!("align_update_{i}")))
            .filter(|a| a.is_finite())
            .collect();
        if angles.is_empty() {
            return f64::NAN;
        }
        angles.iter().sum::<f64>() / angles.len() as f64
    }

    /// Wall seconds of training and evaluation, every epoch.
    pub fn seconds(&self) -> f64 {
        self.epochs
            .iter()
            .filter_map(|e| e.get("seconds").copied())
            .sum()
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
    /// Mean angle (degrees) between update and BP's gradient, last epoch,
    /// one a run (see [`RunResult::mean_update_angle`]).
    pub angle: Vec<f64>,
    /// Wall seconds, one a run.
    pub seconds: Vec<f64>,
    /// The seeds of the runs in `last`, `best_val`, `angle` and `seconds`.
    pub seeds: Vec<u64>,
    /// The seeds whose runs diverged (not in the means).
    pub diverged: Vec<u64>,
    /// The seeds whose runs have not trained all their epochs yet (a sweep
    /// still running; not in the means).
    pub unfinished: Vec<u64>,
    /// The settings in which this group's runs differ from other runs of the
    /// folder (`feedback_scale=receiver`), empty when none do.
    pub variant: String,
    /// Whether every run trains with the paper's optimizer and network (SGD
    /// without momentum or decay at lr 0.0128, batch 128, tanh,
    /// sigmoid-BCE): only then do its tables show the paper's numbers.
    pub paper_protocol: bool,
}

/// The paper's training protocol, but for the epoch count (short runs of it
/// are compared with the paper's 300-epoch numbers, and say so).
pub fn is_paper_protocol(c: &RunConfig) -> bool {
    c.optimizer == crate::optim::OptimizerKind::Sgd
        && c.momentum == 0.0
        && c.weight_decay == 0.0
        && (c.lr - 0.0128).abs() < 1e-7
        && c.batch_size == 128
        && c.activation == crate::activation::Activation::Tanh
        && c.output == crate::loss::Output::SigmoidBce
}

/// Keys that never split a group: what a table's rows and columns already
/// say, what seeds average over, and what does not change results (beyond
/// the last bits, for the GEMM backend).
const NOT_VARIANTS: [&str; 7] = [
    "dataset", "hidden", "rule", "seed", "threads", "data_dir", "gemm",
];

/// For each run, the settings (beyond [`NOT_VARIANTS`] and those without
/// effect on its rule) in which the runs differ: `key=value, ...`.
pub(crate) fn variants(runs: &[RunResult]) -> Vec<String> {
    variants_ignoring(runs, &[])
}

/// [`variants`], with the keys in `ignore` never splitting a group either
/// (a key chosen per group by [`select`]).
fn variants_ignoring(runs: &[RunResult], ignore: &[&str]) -> Vec<String> {
    let tables: Vec<toml::Table> = runs
        .iter()
        .map(|r| r.config.to_toml().parse().expect("a config's TOML parses"))
        .collect();
    let mut differing: Vec<&String> = Vec::new();
    for t in &tables {
        for (k, v) in t {
            if !NOT_VARIANTS.contains(&k.as_str())
                && !ignore.contains(&k.as_str())
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
    group_ignoring(runs, &[])
}

/// [`group`], with the keys in `ignore` never making variants: the runs
/// that [`select`] kept, whose chosen value differs from group to group.
pub fn group_ignoring(runs: &[RunResult], ignore: &[&str]) -> Vec<Group> {
    let mut groups: BTreeMap<(String, String, usize, String, usize), Group> = BTreeMap::new();
    for (r, variant) in runs.iter().zip(variants_ignoring(runs, ignore)) {
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
            angle: Vec::new(),
            seconds: Vec::new(),
            seeds: Vec::new(),
            diverged: Vec::new(),
            unfinished: Vec::new(),
            variant,
            paper_protocol: true,
        });
        g.paper_protocol &= is_paper_protocol(c);
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
        g.angle.push(r.mean_update_angle());
        g.seconds.push(r.seconds());
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
    if v.len() == 1 {
        // One run has no spread; a printed "± 0.00" would read as a measured one.
        return format!("{m:.2} (n=1{div})");
    }
    format!("{m:.2} ± {s:.2} (n={}{div})", v.len())
}

/// `12.3° · 4.5 min`: a group's mean update angle and wall time per run.
fn angle_and_time(g: &Group) -> String {
    if g.seeds.is_empty() {
        return "—".into();
    }
    let (angle, _) = mean_std(&g.angle);
    let (secs, _) = mean_std(&g.seconds);
    let angle = if g.rule == RuleKind::Bp {
        "0°".to_string()
    } else if angle.is_finite() {
        format!("{angle:.1}°")
    } else {
        "n/a".into()
    };
    format!("{angle} · {:.1} min", secs / 60.0)
}

/// The Markdown report: for each data set, one table of last-epoch test
/// error and one at the best validation epoch, with the paper's numbers,
/// and one of alignment angles and wall time.
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
            ("alignment and time", 2),
        ] {
            let paper_runs = gs.iter().any(|g| g.paper_protocol);
            let paper = match (pick, super::paper::table(ds)) {
                (2, _) => "angle (°) between each rule's update and BP's gradient at the last epoch, mean over hidden layers · wall minutes per run".into(),
                (_, Some(t)) if paper_runs => {
                    format!("(paper: its Table {t} value, 300 epochs, 5 runs)")
                }
                (_, Some(_)) => "(not the paper's protocol: no paper values beside)".into(),
                (_, None) => "(no paper value for this data set)".into(),
            };
            out.push_str(&format!(
                "### {}{variant} — {title}\n\nmean ± std over {seeds} seed(s) (n per cell), {epochs} epochs; {paper}\n\n",
                ds.name().to_uppercase(),
            ));
            out.push_str(&rules_header(&rules));
            for a in &archs {
                out.push_str(&format!("| {a} |"));
                for r in &rules {
                    let text = match gs.iter().find(|g| g.hidden == *a && g.rule == *r) {
                        Some(g) if pick == 2 => angle_and_time(g),
                        Some(g) => {
                            let v = if pick == 0 { &g.last } else { &g.best_val };
                            let ours = cell(v, g.diverged.len(), g.unfinished.len());
                            match paper::published(ds, a, *r) {
                                Some(p) if g.paper_protocol => format!("{ours} ({p:.2})"),
                                _ => ours,
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
        if gs.iter().any(|g| g.paper_protocol) {
            out.push_str(&ranking_table(ds, &variant, &gs, &archs));
            out.push_str(&distance_table(ds, &variant, &gs, &rules, &archs));
        }
    }
    out
}

/// The ranking section of one table: per architecture, the rules of the
/// paper's protocol ordered by mean last-epoch error beside the paper's values
/// of the same rules (rows with fewer than two such rules are left out), and
/// each pair the other way round with how far apart the pair is against its
/// spread over seeds. Empty for a data set the paper has no table for, and
/// when no row has two rules to rank (a sweep of one rule).
fn ranking_table(ds: DatasetKind, variant: &str, gs: &[&Group], archs: &[&str]) -> String {
    let Some(t) = paper::table(ds) else {
        return String::new();
    };
    let mut out = format!(
        "### {}{variant} — ranking of the rules\n\ntest error (%) at the last epoch, mean over the seeds present, lowest first; the paper's Table {t} values of the same rules beside; same order: no two rules the other way round, else each such pair, how far apart, and that distance in standard errors of the difference (from 2 seeds of each on; within 2: not separated by these seeds)\n\n| model | ours | paper | same order |\n|---|---|---|---|\n",
        ds.name().to_uppercase()
    );
    let mut rows = 0;
    for a in archs {
        // Only rules with a paper value, so both sides rank the same rules.
        let ranked: Vec<(&Group, f64)> = gs
            .iter()
            .filter(|g| g.hidden == *a && g.paper_protocol && !g.last.is_empty())
            .filter_map(|g| Some((*g, paper::published(ds, a, g.rule)?)))
            .collect();
        if ranked.len() < 2 {
            continue;
        }
        rows += 1;
        let ours: Vec<_> = ranked
            .iter()
            .map(|(g, _)| (g.rule, mean_std(&g.last).0))
            .collect();
        let theirs: Vec<_> = ranked.iter().map(|(g, p)| (g.rule, *p)).collect();
        let order = match reversals(&ranked) {
            r if r.is_empty() => "yes".to_string(),
            r => format!("no: {}", r.join("; ")),
        };
        out.push_str(&format!(
            "| {a} | {} | {} | {order} |\n",
            ranking(&ours),
            ranking(&theirs),
        ));
    }
    if rows == 0 {
        return String::new();
    }
    out.push('\n');
    out
}

/// A value as the tables print it, so that ranks tie where the printed
/// numbers do (FA and DFA with one hidden layer are the same rule).
fn printed(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

/// `BP 1.88 < DFA 3.71 = FA 3.71`: the rules from the lowest value up.
fn ranking(values: &[(RuleKind, f64)]) -> String {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut out = String::new();
    for (i, (r, x)) in v.iter().enumerate() {
        if i > 0 {
            out.push_str(if printed(*x) == printed(v[i - 1].1) {
                " = "
            } else {
                " < "
            });
        }
        out.push_str(&format!("{} {x:.2}", r.name().to_uppercase()));
    }
    out
}

/// Each pair of rules strictly the other way round from the paper's values
/// (a tie on either side contradicts nothing), ours first:
/// `BFA before BP by 0.10 (1 seed)`, `BFA before BP by 0.10 = 0.7 se`, or
/// with `**3.1 se**` where the seeds separate the pair.
fn reversals(ranked: &[(&Group, f64)]) -> Vec<String> {
    let mut out = Vec::new();
    for (a, pa) in ranked {
        let (ma, sa) = mean_std(&a.last);
        for (b, pb) in ranked {
            let (mb, sb) = mean_std(&b.last);
            if !(printed(ma) < printed(mb) && printed(*pa) > printed(*pb)) {
                continue;
            }
            let (na, nb) = (a.last.len(), b.last.len());
            let gap = mb - ma;
            let (ra, rb) = (a.rule.name().to_uppercase(), b.rule.name().to_uppercase());
            let se = (sa * sa / na as f64 + sb * sb / nb as f64).sqrt();
            out.push(if na < 2 || nb < 2 {
                format!("{ra} before {rb} by {gap:.2} ({} seed)", na.min(nb))
            } else if se == 0.0 {
                format!("{ra} before {rb} by {gap:.2}, no spread")
            } else if gap / se > 2.0 {
                format!("{ra} before {rb} by {gap:.2} = **{:.1} se**", gap / se)
            } else {
                format!("{ra} before {rb} by {gap:.2} = {:.1} se", gap / se)
            });
        }
    }
    out
}

/// `| model | BP | FA |` and its separator row: the head of every table
/// whose columns are rules.
fn rules_header(rules: &[RuleKind]) -> String {
    let mut out = String::from("| model |");
    for r in rules {
        out.push_str(&format!(" {} |", r.name().to_uppercase()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(rules.len()));
    out.push('\n');
    out
}

/// The distance of each cell to the paper's number, at the last epoch: in
/// points, and in the cell's own standard deviations over seeds once it has
/// two seeds, with those beyond two marked (the test of a reproduction).
/// Empty when the data set has no paper table.
fn distance_table(
    ds: DatasetKind,
    variant: &str,
    gs: &[&Group],
    rules: &[RuleKind],
    archs: &[&str],
) -> String {
    let Some(t) = paper::table(ds) else {
        return String::new();
    };
    let mut out = format!(
        "### {}{variant} — distance to the paper\n\ntest error at the last epoch, ours minus the paper's Table {t} value, in points and in standard deviations of the cell over its seeds (from 2 seeds on); **beyond 2 sd** marked\n\n",
        ds.name().to_uppercase()
    );
    out.push_str(&rules_header(rules));
    for a in archs {
        out.push_str(&format!("| {a} |"));
        for r in rules {
            let g = gs
                .iter()
                .find(|g| g.hidden == *a && g.rule == *r && g.paper_protocol);
            let text = match (g, paper::published(ds, a, *r)) {
                (Some(g), Some(p)) if !g.last.is_empty() => distance(&g.last, p),
                _ => "—".into(),
            };
            out.push_str(&format!(" {text} |"));
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `+0.09 (n=1)`, `-0.21 = -1.3 sd (n=3)`, `+1.05 = **+5.2 sd** (n=2)`.
fn distance(v: &[f64], paper: f64) -> String {
    let (m, s) = mean_std(v);
    let d = m - paper;
    let n = v.len();
    if n < 2 {
        return format!("{d:+.2} (n={n})");
    }
    if s == 0.0 {
        return format!("{d:+.2}, sd 0 (n={n})");
    }
    let z = d / s;
    if z.abs() > 2.0 {
        format!("{d:+.2} = **{z:+.1} sd** (n={n})")
    } else {
        format!("{d:+.2} = {z:+.1} sd (n={n})")
    }
}

/// The groups as CSV: one row per data set, architecture and rule.
pub fn csv_text(groups: &[Group]) -> String {
    let mut out = String::from(
        "dataset,variant,hidden,rule,runs,diverged,unfinished,epochs,test_error_last_mean,test_error_last_std,test_error_best_val_mean,test_error_best_val_std,paper\n",
    );
    for g in groups {
        let (lm, ls) = mean_std(&g.last);
        let (bm, bs) = mean_std(&g.best_val);
        let p = match paper::published(g.dataset, &g.hidden, g.rule) {
            Some(p) if g.paper_protocol => p.to_string(),
            _ => String::new(),
        };
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

/// How [`select`] chose one setting's value for one group of runs.
#[derive(Clone, Debug)]
pub struct Choice {
    /// What the runs share: data set, architecture, rule and any variant.
    pub group: String,
    /// The seeds every value was run with: the ones the choice compares on.
    pub seeds: Vec<u64>,
    /// Each value, and its mean best validation error (%) over `seeds`
    /// (infinite where a run diverged, `None` while one is unfinished).
    pub scores: Vec<(String, Option<f64>)>,
    /// The value kept; `None` while some run on `seeds` is unfinished.
    pub chosen: Option<String>,
}

/// For every group of runs that differ only in `key` and the seed, keeps the
/// runs of the value of `key` with the lowest mean best validation error,
/// compared on the seeds that every value was run with (so that a value run
/// with more seeds is not favoured or penalised); a value with a diverged
/// run there loses. A group whose comparison is still missing a run (an
/// unfinished one, or a value that other groups have) keeps no runs.
/// Tuning on the validation split: test errors play no part.
pub fn select(runs: &[RunResult], key: &str) -> Result<(Vec<RunResult>, Vec<Choice>)> {
    let mut groups: BTreeMap<String, Vec<(String, &RunResult)>> = BTreeMap::new();
    for r in runs {
        let mut t: toml::Table = r.config.to_toml().parse().expect("a config's TOML parses");
        let Some(value) = t.remove(key) else {
            return Err(Error::Config(format!(
                "--select {key}: not a setting of {}",
                r.dir.display()
            )));
        };
        for k in ["seed", "threads", "data_dir", "gemm"] {
            t.remove(k);
        }
        let value = match value {
            toml::Value::String(v) => v,
            toml::Value::Float(v) => format!("{v:?}"),
            v => v.to_string(),
        };
        groups
            .entry(toml::to_string(&t).expect("a table serializes"))
            .or_default()
            .push((value, r));
    }
    let label_of = |r: &RunResult| {
        format!(
            "{} {} {}",
            r.config.dataset.name(),
            format_hidden(&r.config.hidden),
            r.config.rule.name()
        )
    };
    // Every value any group was run with: a group still missing one (a
    // sweep in progress) is not decided yet.
    let mut all_values: Vec<String> = Vec::new();
    for (v, _) in groups.values().flatten() {
        if !all_values.contains(v) {
            all_values.push(v.clone());
        }
    }
    let mut kept = Vec::new();
    let mut choices = Vec::new();
    for members in groups.values() {
        let mut values: Vec<&String> = Vec::new();
        for (v, _) in members {
            if !values.contains(&v) {
                values.push(v);
            }
        }
        values.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        });
        let seeds_of = |v: &String| -> Vec<u64> {
            members
                .iter()
                .filter(|(w, _)| w == v)
                .map(|(_, r)| r.config.seed)
                .collect()
        };
        let mut common = seeds_of(values[0]);
        for v in &values[1..] {
            let s = seeds_of(v);
            common.retain(|x| s.contains(x));
        }
        common.sort_unstable();
        let scores: Vec<(String, Option<f64>)> = values
            .iter()
            .map(|v| {
                let on_common = members
                    .iter()
                    .filter(|(w, r)| w == *v && common.contains(&r.config.seed));
                let mut errs = Vec::new();
                for (_, r) in on_common {
                    if r.diverged() {
                        return ((*v).clone(), Some(f64::INFINITY));
                    }
                    if r.epochs.len() < r.config.epochs {
                        return ((*v).clone(), None);
                    }
                    errs.push(100.0 * r.best_val_error());
                }
                let (m, _) = mean_std(&errs);
                ((*v).clone(), if errs.is_empty() { None } else { Some(m) })
            })
            .collect();
        let complete = all_values.iter().all(|v| values.contains(&v));
        let chosen = if !complete || scores.iter().any(|(_, s)| s.is_none()) {
            None
        } else {
            scores
                .iter()
                .filter(|(_, s)| !s.is_some_and(f64::is_nan))
                .min_by(|a, b| a.1.unwrap().total_cmp(&b.1.unwrap()))
                .map(|(v, _)| v.clone())
        };
        if let Some(c) = &chosen {
            kept.extend(
                members
                    .iter()
                    .filter(|(v, _)| v == c)
                    .map(|(_, r)| (*r).clone()),
            );
        }
        choices.push(Choice {
            group: label_of(members[0].1),
            seeds: common,
            scores,
            chosen,
        });
    }
    if choices.iter().all(|c| c.scores.len() < 2) {
        return Err(Error::Config(format!(
            "--select {key}: no group of runs differs in {key}"
        )));
    }
    kept.sort_by(|a, b| a.dir.cmp(&b.dir));
    choices.sort_by(|a, b| a.group.cmp(&b.group));
    Ok((kept, choices))
}

/// The choices of [`select`] as a Markdown table.
pub fn choices_markdown(key: &str, choices: &[Choice]) -> String {
    let mut out = format!(
        "### {key} chosen on the validation split\n\nmean best validation error (%) over the seeds that every value was run with\n\n| runs | seeds | "
    );
    let values: Vec<&String> = {
        let mut v: Vec<&String> = choices
            .iter()
            .flat_map(|c| c.scores.iter().map(|s| &s.0))
            .collect();
        v.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        });
        v.dedup();
        v
    };
    for v in &values {
        out.push_str(&format!("{key}={v} | "));
    }
    out.push_str("chosen |\n|---|---|");
    out.push_str(&"---|".repeat(values.len() + 1));
    out.push('\n');
    for c in choices {
        let seeds: Vec<String> = c.seeds.iter().map(u64::to_string).collect();
        out.push_str(&format!("| {} | {} |", c.group, seeds.join(", ")));
        for v in &values {
            let text = match c.scores.iter().find(|s| &s.0 == *v) {
                None => "not run".into(),
                Some((_, None)) => "unfinished".into(),
                Some((_, Some(x))) if x.is_infinite() => "diverged".into(),
                Some((_, Some(x))) => format!("{x:.2}"),
            };
            out.push_str(&format!(" {text} |"));
        }
        out.push_str(&format!(
            " {} |\n",
            c.chosen.as_deref().unwrap_or("(waiting for runs)")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: RunConfig) -> RunResult {
        let row: BTreeMap<String, f64> = [("test_error", 0.02), ("val_error", 0.03)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        RunResult {
            dir: PathBuf::from("r"),
            epochs: vec![row; cfg.epochs],
            config: cfg,
            status: Some(CellStatus::Finished),
        }
    }

    /// A cell of several seeds prints the sample standard deviation, and its
    /// distance to the paper in those deviations; a cell of one seed prints
    /// neither, since one run has no measured spread.
    #[test]
    fn a_cell_prints_a_spread_only_when_it_has_one() {
        let seeded = |seed: u64, test_error: f64| {
            let mut r = run(RunConfig {
                hidden: vec![400],
                epochs: 3,
                seed,
                ..Default::default()
            });
            for row in &mut r.epochs {
                row.insert("test_error".into(), test_error);
            }
            r
        };
        let md = markdown(&group(&[seeded(1, 0.02), seeded(2, 0.04)]));
        // mean 3.00, sample std sqrt(((2-3)^2 + (4-3)^2) / 1) = 1.41
        assert!(md.contains("3.00 ± 1.41 (n=2) (1.95)"), "{md}");
        // (3.00 - 1.95) / 1.41 = 0.74 standard deviations from the paper
        assert!(md.contains("| 1x400 | +1.05 = +0.7 sd (n=2) |"), "{md}");
        let md = markdown(&group(&[seeded(1, 0.05), seeded(2, 0.06)]));
        // (5.50 - 1.95) / 0.71 = 5.0
        assert!(md.contains("| 1x400 | +3.55 = **+5.0 sd** (n=2) |"), "{md}");
        let md = markdown(&group(&[seeded(1, 0.02)]));
        assert!(md.contains("2.00 (n=1) (1.95)"), "{md}");
        assert!(!md.contains("± 0.00"), "{md}");
        assert!(md.contains("| 1x400 | +0.05 (n=1) |"), "{md}");
    }

    /// The paper's numbers stand beside runs of its protocol only.
    #[test]
    fn paper_numbers_only_beside_the_papers_protocol() {
        let paper = RunConfig {
            hidden: vec![400],
            epochs: 3,
            ..Default::default()
        };
        let md = markdown(&group(&[run(paper.clone())]));
        assert!(md.contains("2.00 (n=1) (1.95)"), "{md}");
        let tuned = RunConfig {
            momentum: 0.9,
            lr: 0.03,
            ..paper
        };
        let md = markdown(&group(&[run(tuned)]));
        assert!(md.contains("2.00 (n=1) |"), "{md}");
        assert!(!md.contains("(1.95)"), "{md}");
        assert!(md.contains("not the paper's protocol"), "{md}");
        assert!(!md.contains("ranking of the rules"), "{md}");
        assert!(!md.contains("distance to the paper"), "{md}");
    }

    /// The ranking row orders the rules by their mean last-epoch error, ties
    /// where the printed values tie, and says whether the paper's values of
    /// the same rules are in the same order.
    #[test]
    fn the_ranking_orders_the_rules_against_the_papers() {
        let with_error = |rule: RuleKind, hidden: usize, err: f64| {
            let mut r = run(RunConfig {
                rule,
                hidden: vec![hidden],
                epochs: 2,
                ..Default::default()
            });
            for row in &mut r.epochs {
                row.insert("test_error".into(), err);
            }
            r
        };
        let runs = [
            with_error(RuleKind::Fa, 400, 0.0414),
            with_error(RuleKind::Dfa, 400, 0.0414),
            with_error(RuleKind::Bp, 400, 0.0204),
            with_error(RuleKind::Bfa, 400, 0.0220),
            // 1x800: BFA ahead of BP, unlike the paper (1.92 < 3.14).
            with_error(RuleKind::Bp, 800, 0.0209),
            with_error(RuleKind::Bfa, 800, 0.0199),
            // A rule alone on its row has no ranking.
            with_error(RuleKind::Bp, 100, 0.03),
        ];
        let md = markdown(&group(&runs));
        assert!(
            md.contains("| 1x400 | BP 2.04 < BFA 2.20 < FA 4.14 = DFA 4.14 | BP 1.95 < BFA 2.90 < FA 3.75 = DFA 3.75 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| 1x800 | BFA 1.99 < BP 2.09 | BP 1.92 < BFA 3.14 | no: BFA before BP by 0.10 (1 seed) |"),
            "{md}"
        );
        assert!(!md.contains("| 1x100 | BP"), "{md}");

        // Two seeds a rule: a reversal is measured against the spread.
        let seeded = |rule: RuleKind, seed: u64, err: f64| {
            let mut r = with_error(rule, 400, err);
            r.config.seed = seed;
            r
        };
        // BP at 2.04 and 2.06 against BFA at the two errors given.
        let bp_and_bfa = |bfa1: f64, bfa2: f64| {
            markdown(&group(&[
                seeded(RuleKind::Bp, 1, 0.0204),
                seeded(RuleKind::Bp, 2, 0.0206),
                seeded(RuleKind::Bfa, 1, bfa1),
                seeded(RuleKind::Bfa, 2, bfa2),
            ]))
        };
        let md = bp_and_bfa(0.0190, 0.0194);
        // gap 0.13; se sqrt(0.0141^2/2 + 0.0283^2/2) = 0.0224: 5.8 se
        assert!(
            md.contains("| no: BFA before BP by 0.13 = **5.8 se** |"),
            "{md}"
        );
        let md = bp_and_bfa(0.0195, 0.0211);
        // gap 0.02; se sqrt(0.0141^2/2 + 0.1131^2/2) = 0.0806: 0.2 se
        assert!(
            md.contains("| no: BFA before BP by 0.02 = 0.2 se |"),
            "{md}"
        );

        // A sweep of one rule ranks nothing: no section with an empty table.
        let alone = markdown(&group(&runs[3..4]));
        assert!(alone.contains("| 1x400 |"), "{alone}");
        assert!(!alone.contains("ranking of the rules"), "{alone}");
    }
}
