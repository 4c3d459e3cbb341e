//! The runs of a folder read back, and grouped into the cells of a table:
//! a data set, an architecture, a rule and the settings that set a group of
//! runs apart.

use super::super::sweep::CellStatus;
use crate::config::RunConfig;
use crate::data::DatasetKind;
use crate::error::{Error, Result};
use crate::rules::RuleKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A run's mean update angle (degrees) over its hidden layers, at `epoch`
/// (1-based), over `layers` of its `of` hidden layers: a dead layer, whose
/// update was zero, has no angle and is left out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UpdateAngle {
    /// The mean angle, degrees.
    pub degrees: f64,
    /// The epoch it was measured after.
    pub epoch: usize,
    /// The hidden layers it is the mean over.
    pub layers: usize,
    /// The hidden layers there are.
    pub of: usize,
}

impl UpdateAngle {
    /// `(layers, of)` when the mean leaves some layers out.
    pub fn leaves_layers_out(&self) -> Option<(usize, usize)> {
        (self.layers < self.of).then_some((self.layers, self.of))
    }
}

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
        self.epochs
            .last()
            .map_or(f64::NAN, |row| self.mean_update_angle_at(row))
    }

    /// [`Self::mean_update_angle`] at the last epoch that has one: an epoch
    /// whose probe batch has no output error at all (every sample right,
    /// with saturated outputs) has no angle.
    pub fn latest_update_angle(&self) -> Option<UpdateAngle> {
        let of = self.config.hidden_layer_count();
        self.epochs.iter().enumerate().rev().find_map(|(e, row)| {
            let angles = self.update_angles_at(row);
            (!angles.is_empty()).then(|| UpdateAngle {
                degrees: angles.iter().sum::<f64>() / angles.len() as f64,
                epoch: e + 1,
                layers: angles.len(),
                of,
            })
        })
    }

    fn mean_update_angle_at(&self, row: &BTreeMap<String, f64>) -> f64 {
        let angles = self.update_angles_at(row);
        if angles.is_empty() {
            return f64::NAN;
        }
        angles.iter().sum::<f64>() / angles.len() as f64
    }

    /// The hidden layers' update angles that `row` has (a layer whose update
    /// was zero, a dead one, has none).
    fn update_angles_at(&self, row: &BTreeMap<String, f64>) -> Vec<f64> {
        (0..self.config.hidden_layer_count())
            .filter_map(|i| row.get(&format!("align_update_{i}")).copied())
            .filter(|a| a.is_finite())
            .collect()
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

/// The runs of one table cell: a data set, an architecture and a rule.
#[derive(Clone, Debug)]
pub struct Group {
    /// The data set.
    pub dataset: DatasetKind,
    /// The network: an MLP's hidden layers, short form (`2x800`), or a
    /// described network's name ([`RunConfig::architecture`]).
    pub hidden: String,
    /// The rule.
    pub rule: RuleKind,
    /// Epochs of the runs (the least, if they differ).
    pub epochs: usize,
    /// Test error (%) at the last epoch, one a run.
    pub last: Vec<f64>,
    /// Test error (%) at the epoch of best validation error, one a run.
    pub best_val: Vec<f64>,
    /// Mean angle (degrees) between update and BP's gradient, one a run: at
    /// the last epoch, or the latest that has one
    /// ([`RunResult::latest_update_angle`]; NaN without alignment).
    pub angle: Vec<f64>,
    /// The earliest epoch of those angles when one is not the last epoch's
    /// (a probe without error there), else `None`.
    pub angle_epoch: Option<usize>,
    /// The fewest hidden layers that a run's mean angle is over, and the
    /// hidden layers, when some run's mean leaves layers out (their update
    /// was zero), else `None`.
    pub angle_layers: Option<(usize, usize)>,
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
    /// folder (`feedback_scale=receiver`), empty when none do: its table's.
    pub variant: String,
    /// The settings that only this group's cell has, beside it in its table
    /// (`lr=0.01`; [`Variant::cell`]).
    pub cell_settings: String,
    /// Whether every run trains with the paper's optimizer and network (SGD
    /// without momentum or decay at lr 0.0128, batch 128, tanh,
    /// sigmoid-BCE): only then do its tables show the paper's numbers.
    pub paper_protocol: bool,
    /// Whether every run trains biotorch's LeNet benchmark
    /// ([`crate::experiment::biotorch::is_protocol`]): only then do its
    /// tables show biotorch's numbers.
    pub biotorch_protocol: bool,
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

/// The settings in which the runs of one cell may differ: the seed, which a
/// cell averages over, and those that change no result (the GEMM backend
/// changes only the last bits). Reports and `--select` both group by every
/// other setting.
pub(super) const PER_RUN: [&str; 4] = ["seed", "threads", "data_dir", "gemm"];

/// The settings that name a table's row and column (the network is its
/// architecture: `hidden`, `net` or `layers`).
const TABLE_AXES: [&str; 5] = ["dataset", "hidden", "net", "layers", "rule"];

/// Whether a setting never splits a group: a table's row or column, or a
/// [`PER_RUN`] setting.
fn is_not_variant(key: &str) -> bool {
    TABLE_AXES.contains(&key) || PER_RUN.contains(&key)
}

/// Keys that split tables even where each cell has one value of them: a
/// table's caption gives one epoch count.
const ALWAYS_SPLIT: [&str; 1] = ["epochs"];

/// How one run differs from the other runs of its folder, in the settings
/// beyond the table's axes and [`PER_RUN`] and those without effect on its rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// The settings that set its table (and plot) apart: `key=value, ...`.
    pub table: String,
    /// The settings with one value in each cell (data set, network, rule)
    /// but not in every cell, such as a rate tuned for each rule
    /// (`lr=0.01`): named beside the cell instead of splitting the table
    /// into one table a value.
    pub cell: String,
}

/// For each run, how it differs from the others ([`Variant`]).
pub fn variants(runs: &[RunResult]) -> Vec<Variant> {
    variants_ignoring(runs, &[])
}

/// A setting's value as tables and labels show it: strings bare, floats
/// short (Debug keeps 1e30 short where Display writes 31 digits).
pub(super) fn setting_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(v) => v.clone(),
        toml::Value::Float(v) => format!("{v:?}"),
        v => v.to_string(),
    }
}

/// [`variants`], with the keys in `ignore` never splitting a group either
/// (a key chosen per group by `select`).
fn variants_ignoring(runs: &[RunResult], ignore: &[&str]) -> Vec<Variant> {
    let tables: Vec<toml::Table> = runs
        .iter()
        .map(|r| r.config.to_toml().parse().expect("a config's TOML parses"))
        .collect();
    let unused: Vec<Vec<&str>> = runs
        .iter()
        .map(|r| r.config.unused_settings().iter().map(|(k, _)| *k).collect())
        .collect();
    let mut differing: Vec<&String> = Vec::new();
    for t in &tables {
        for (k, v) in t {
            if !is_not_variant(k)
                && !ignore.contains(&k.as_str())
                && !differing.contains(&k)
                && tables.iter().any(|o| o.get(k) != Some(v))
            {
                differing.push(k);
            }
        }
    }
    differing.sort();
    // A key is the cell's where no cell has two values of it among the runs
    // it has an effect on.
    let cell_of = |i: usize| {
        let c = &runs[i].config;
        (c.dataset, c.architecture(), c.rule)
    };
    let per_cell = |k: &str| {
        !ALWAYS_SPLIT.contains(&k)
            && (0..runs.len()).all(|i| {
                (0..runs.len()).all(|j| {
                    cell_of(i) != cell_of(j)
                        || unused[i].contains(&k)
                        || unused[j].contains(&k)
                        || tables[i].get(k) == tables[j].get(k)
                })
            })
    };
    let (cell_keys, table_keys): (Vec<&String>, Vec<&String>) =
        differing.into_iter().partition(|k| per_cell(k));
    let text = |i: usize, keys: &[&String]| {
        keys.iter()
            .filter(|k| !unused[i].contains(&k.as_str()))
            .map(|k| match tables[i].get(*k) {
                Some(v) => format!("{k}={}", setting_text(v)),
                None => format!("{k}=unset"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    (0..runs.len())
        .map(|i| Variant {
            table: text(i, &table_keys),
            cell: text(i, &cell_keys),
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
        let hidden = c.architecture();
        let rule_pos = RuleKind::ALL
            .iter()
            .position(|&k| k == c.rule)
            .unwrap_or(99);
        let key = (
            format!("{:?}", c.dataset),
            variant.table.clone(),
            // MLPs by depth and width, then networks of layers.
            if c.layer_description().is_some() {
                usize::MAX
            } else {
                c.hidden.len() * 100_000 + c.hidden.iter().sum::<usize>()
            },
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
            angle_epoch: None,
            angle_layers: None,
            seconds: Vec::new(),
            seeds: Vec::new(),
            diverged: Vec::new(),
            unfinished: Vec::new(),
            variant: variant.table,
            cell_settings: variant.cell,
            paper_protocol: true,
            biotorch_protocol: true,
        });
        g.paper_protocol &= is_paper_protocol(c);
        g.biotorch_protocol &= crate::experiment::biotorch::is_protocol(c);
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
        match r.latest_update_angle() {
            Some(a) => {
                g.angle.push(a.degrees);
                if a.epoch < r.epochs.len() {
                    g.angle_epoch = Some(g.angle_epoch.map_or(a.epoch, |f| f.min(a.epoch)));
                }
                if let Some((n, of)) = a.leaves_layers_out() {
                    let fewest = g.angle_layers.map_or(n, |(f, _)| f.min(n));
                    g.angle_layers = Some((fewest, of));
                }
            }
            None => g.angle.push(f64::NAN),
        }
        g.seconds.push(r.seconds());
        g.seeds.push(c.seed);
    }
    groups.into_values().collect()
}
