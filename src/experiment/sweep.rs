//! Sweeps: a TOML file names a grid of runs; `biprop sweep FILE` runs every
//! cell it has not finished, several at once, each in its own directory, and
//! a sweep killed at any moment resumes where it stopped (losing at most the
//! epoch in flight of each run).
//!
//! ```toml
//! out = "sweeps/table1-short"   # optional; default: sweeps/<file stem>
//! [base]                        # any run setting, shared by every cell
//! epochs = 20
//! [grid]                        # every combination of these lists is a cell
//! rule = ["bp", "fa", "dfa", "bfa", "bdfa"]
//! hidden = ["1x400", "2x800"]
//! seed = [1, 2]
//! ```
//!
//! Cells are ordered by the grid keys in alphabetical order, the first key
//! varying slowest; a cell's id (its directory under `runs/`) is made of its
//! grid values, e.g. `hidden-2x800_rule-bfa_seed-1`, so ids and indices stay
//! the same however often the file is read.

use crate::config::RunConfig;
use crate::data::Splits;
use crate::error::{Error, Result};
use crate::run::{self, RunOptions};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The file a finished cell leaves in its directory.
pub const DONE_FILE: &str = "done";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    out: Option<PathBuf>,
    #[serde(default)]
    base: toml::Table,
    #[serde(default)]
    grid: BTreeMap<String, Vec<toml::Value>>,
}

/// A parsed sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// Where the runs go.
    pub out: PathBuf,
    /// Settings shared by every cell.
    pub base: toml::Table,
    /// Grid keys (sorted) and their values.
    pub grid: Vec<(String, Vec<toml::Value>)>,
}

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Position in the sweep's order (what `--task` takes).
    pub index: usize,
    /// Stable id: the cell's directory name.
    pub id: String,
    /// The run's configuration.
    pub config: RunConfig,
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Sweep {
    /// Reads a sweep file; its default output folder is `sweeps/<file stem>`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let stem = path
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        Self::from_toml_str(&text, Path::new("sweeps").join(stem))
            .map_err(|e| Error::format(path, e.to_string()))
    }

    /// Parses sweep TOML; `default_out` applies when the file names no `out`.
    pub fn from_toml_str(text: &str, default_out: PathBuf) -> Result<Self> {
        let f: SweepFile = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        if let Some((k, _)) = f.grid.iter().find(|(_, v)| v.is_empty()) {
            return Err(Error::Config(format!("grid key {k} has no values")));
        }
        if let Some(k) = f.grid.keys().find(|k| f.base.contains_key(*k)) {
            return Err(Error::Config(format!(
                "{k} is both in [base] and in [grid]"
            )));
        }
        let sweep = Self {
            out: f.out.unwrap_or(default_out),
            base: f.base,
            grid: f.grid.into_iter().collect(),
        };
        sweep.cells()?; // every cell must be a valid run
        Ok(sweep)
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.grid.iter().map(|(_, v)| v.len()).product()
    }

    /// True for a grid with an empty list (never: rejected when parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every cell, in order.
    pub fn cells(&self) -> Result<Vec<Cell>> {
        (0..self.len()).map(|i| self.cell(i)).collect()
    }

    /// Cell `index`.
    pub fn cell(&self, index: usize) -> Result<Cell> {
        if index >= self.len() {
            return Err(Error::Config(format!(
                "task {index} does not exist: the sweep has {} cells (0..{})",
                self.len(),
                self.len()
            )));
        }
        let mut table = self.base.clone();
        let mut rest = index;
        let mut id = Vec::new();
        // The last key varies fastest.
        let mut picks = vec![0; self.grid.len()];
        for (k, (_, values)) in self.grid.iter().enumerate().rev() {
            picks[k] = rest % values.len();
            rest /= values.len();
        }
        for ((key, values), &p) in self.grid.iter().zip(&picks) {
            table.insert(key.clone(), values[p].clone());
            id.push(format!(
                "{}-{}",
                sanitize(key),
                sanitize(&value_text(&values[p]))
            ));
        }
        let id = if id.is_empty() {
            "run".to_string()
        } else {
            id.join("_")
        };
        let in_cell = |err| Error::InRun {
            run: format!("cell {index} ({id})"),
            err: Box::new(err),
        };
        let config: RunConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| in_cell(Error::Config(e.to_string())))?;
        config.validate().map_err(in_cell)?;
        Ok(Cell { index, id, config })
    }

    /// The directory of a cell.
    pub fn run_dir(&self, cell: &Cell) -> PathBuf {
        self.out.join("runs").join(&cell.id)
    }

    /// True when the cell has finished (its `done` file exists).
    pub fn is_done(&self, cell: &Cell) -> bool {
        self.run_dir(cell).join(DONE_FILE).is_file()
    }

    /// The unfinished cells: all of them, or only cell `task`.
    pub fn pending(&self, task: Option<usize>) -> Result<Vec<Cell>> {
        let cells = match task {
            Some(i) => vec![self.cell(i)?],
            None => self.cells()?,
        };
        Ok(cells.into_iter().filter(|c| !self.is_done(c)).collect())
    }
}

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Runs at once.
    pub jobs: usize,
    /// Only this cell.
    pub task: Option<usize>,
    /// Progress bar and one line per finished run.
    pub progress: bool,
}

/// The number of runs to run at once by default: one per core, each on one
/// thread (measured faster than one run on every core; see docs/experiments.md).
pub fn default_jobs() -> usize {
    run::resolve_threads(0)
}

/// Runs every unfinished cell (or only `opts.task`), `opts.jobs` at a time.
/// Returns the number of runs it finished.
pub fn run_sweep(sweep: &Sweep, opts: &SweepOptions) -> Result<usize> {
    let pending = sweep.pending(opts.task)?;
    if pending.is_empty() {
        return Ok(0);
    }
    std::fs::create_dir_all(&sweep.out).map_err(|e| Error::io(&sweep.out, e))?;
    let jobs = opts.jobs.clamp(1, pending.len());
    let cores = run::resolve_threads(0);
    let threads_each = (cores / jobs).max(1);
    let total_epochs: u64 = pending.iter().map(|c| c.config.epochs as u64).sum();
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(total_epochs);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "sweep [{bar:30}] {pos}/{len} epochs, {msg} ({elapsed} elapsed, {eta} left)",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let data: Mutex<HashMap<String, Arc<Splits>>> = Mutex::new(HashMap::new());
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    bar.set_message(format!("0/{} runs", pending.len()));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                if first_error.lock().expect("lock").is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(cell) = pending.get(i) else { return };
                let result = run_cell(sweep, cell, threads_each, &data, &bar);
                match result {
                    Ok(line) => {
                        let n = finished.fetch_add(1, Ordering::SeqCst) + 1;
                        bar.set_message(format!("{n}/{} runs", pending.len()));
                        if opts.progress {
                            bar.println(line);
                        }
                    }
                    Err(e) => {
                        let mut slot = first_error.lock().expect("lock");
                        slot.get_or_insert(Error::InRun {
                            run: format!("run {} ({})", cell.index, cell.id),
                            err: Box::new(e),
                        });
                        return;
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    match first_error.into_inner().expect("lock") {
        Some(e) => Err(e),
        None => Ok(finished.into_inner()),
    }
}

fn data_key(c: &RunConfig) -> String {
    format!(
        "{:?}|{:?}|{}|{}|{:?}",
        c.dataset, c.data_dir, c.classes, c.val_size, c.train_limit
    )
}

fn run_cell(
    sweep: &Sweep,
    cell: &Cell,
    threads: usize,
    data: &Mutex<HashMap<String, Arc<Splits>>>,
    bar: &indicatif::ProgressBar,
) -> Result<String> {
    let mut cfg = cell.config.clone();
    if cfg.threads == 0 {
        cfg.threads = threads;
    }
    let key = data_key(&cfg);
    let splits = {
        let mut cache = data.lock().expect("lock");
        match cache.get(&key) {
            Some(s) => Arc::clone(s),
            None => {
                let s = Arc::new(run::load_data(&cfg)?);
                cache.insert(key, Arc::clone(&s));
                s
            }
        }
    };
    let dir = sweep.run_dir(cell);
    let bar2 = bar.clone();
    let opts = RunOptions {
        out_dir: Some(dir.clone()),
        resume: true,
        on_epoch: Some(Arc::new(move |_| bar2.inc(1))),
        ..Default::default()
    };
    // Epochs a resumed run skips still count as done for the bar.
    if let Ok(ck) = crate::checkpoint::Checkpoint::load(&dir.join("checkpoint.safetensors")) {
        bar.inc(ck.epoch().unwrap_or(0).min(cfg.epochs) as u64);
    }
    let summary = run::run(&cfg, &splits, &opts)?;
    crate::fsutil::write_atomic(&dir.join(DONE_FILE), b"")?;
    let last = summary.records.last();
    Ok(format!(
        "[{}] {}: test error {}",
        cell.index,
        cell.id,
        last.map_or("(already complete)".into(), |r| format!(
            "{:.2}%",
            100.0 * r.test_error
        ))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRID: &str = r#"
        [base]
        epochs = 3
        [grid]
        seed = [1, 2]
        rule = ["bp", "fa", "bfa"]
        hidden = ["1x400", "2x800"]
    "#;

    #[test]
    fn grid_expansion_and_ids_are_stable() {
        let s = Sweep::from_toml_str(GRID, "out".into()).unwrap();
        assert_eq!(s.len(), 12);
        let cells = s.cells().unwrap();
        // Keys sorted: hidden, rule, seed; the last varies fastest.
        assert_eq!(cells[0].id, "hidden-1x400_rule-bp_seed-1");
        assert_eq!(cells[1].id, "hidden-1x400_rule-bp_seed-2");
        assert_eq!(cells[2].id, "hidden-1x400_rule-fa_seed-1");
        assert_eq!(cells[11].id, "hidden-2x800_rule-bfa_seed-2");
        assert_eq!(cells[11].config.hidden, vec![800, 800]);
        assert_eq!(cells[5].config.rule, crate::rules::RuleKind::Bfa);
        assert_eq!(cells[5].config.epochs, 3);
        // The same file in another key order gives the same cells.
        let reordered = GRID.replace(
            "seed = [1, 2]\n        rule = [\"bp\", \"fa\", \"bfa\"]",
            "rule = [\"bp\", \"fa\", \"bfa\"]\n        seed = [1, 2]",
        );
        assert_ne!(reordered, GRID);
        let again = Sweep::from_toml_str(&reordered, "out".into()).unwrap();
        assert_eq!(again.cells().unwrap(), cells);
        let ids: std::collections::HashSet<_> = cells.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), 12);
    }

    #[test]
    fn bad_sweeps_are_rejected_with_the_reason() {
        let err = |t: &str| Sweep::from_toml_str(t, "o".into()).unwrap_err().to_string();
        assert!(err("[grid]\nrule = []").contains("no values"));
        assert!(err("[grid]\nrule = [\"magic\"]").contains("cell 0"));
        assert!(err("[base]\nepochz = 1").contains("epochz"));
        assert!(err("[base]\nseed = 1\n[grid]\nseed = [1]").contains("both"));
        assert!(err("jobs = 3").contains("jobs"));
        let s = Sweep::from_toml_str("[grid]\nseed = [1, 2]", "o".into()).unwrap();
        assert!(s.cell(2).unwrap_err().to_string().contains("2 cells"));
    }
}
