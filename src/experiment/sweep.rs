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
//! A grid value may be a table, which sets several keys of its cell at once,
//! for settings that go together rather than in every combination (each
//! rule at its own tuned learning rate):
//!
//! ```toml
//! [grid]
//! tuned = [{ rule = "bp", lr = 0.03 }, { rule = "fa", lr = 0.1 }]
//! seed = [2, 3]
//! ```
//!
//! A sweep may take its `[base]` from another sweep file, so that a control
//! or a follow-up runs under exactly the protocol it is compared with:
//!
//! ```toml
//! extends = "conv-cifar-feedback.toml"  # relative to this file's folder
//! [grid]
//! tuned = [{ rule = "bfa", lr = 0.001, feedback_lr = 0.0 }]
//! ```
//!
//! Only `[base]` is inherited (resolved through the other file's own
//! `extends`); this file's `[base]` keys replace inherited ones, a key this
//! file's grid sets in every cell is the grid's, and one it sets in some
//! cells only is refused. `out`, `order` and `[grid]` are this file's own.
//! The plan a sweep leaves ([`PLAN_FILE`]) holds the merged `[base]`, so
//! it stands alone.
//!
//! Cells are ordered by the grid keys, the first key varying slowest: the
//! keys listed in `order = ["seed", ...]` first, in that order, then the
//! others alphabetically. Seed-major order (`order = ["seed"]`) finishes every
//! cell of seed 1 before any of seed 2, so a long sweep is complete at each
//! seed count. A cell's id (its directory under `runs/`) is made of its grid
//! values in alphabetical key order, e.g. `hidden-2x800_rule-bfa_seed-1`, so
//! ids stay the same however the file orders its cells.
//!
//! A cell whose training diverges is finished too: its `done` file records
//! `status = "diverged"` with the epoch and loss, the sweep goes on, and
//! reports show it as diverged. Any other failure stops the sweep.

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

/// The copy of the sweep file that `biprop sweep` leaves in its output
/// folder and in an `--export` folder.
pub const PLAN_FILE: &str = "sweep.toml";

/// The file a cell's process holds locked while it trains the cell, so that
/// two processes (two sweeps on one folder, Slurm tasks) never train one cell.
pub const LOCK_FILE: &str = "lock";

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extends: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out: Option<PathBuf>,
    #[serde(default)]
    order: Vec<String>,
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
    /// Grid keys and their values, in cell order (the first varies slowest).
    pub grid: Vec<(String, Vec<toml::Value>)>,
}

/// How a finished cell ended, as its `done` file records it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum CellStatus {
    /// Trained every epoch.
    Finished,
    /// Stopped at `epoch`, whose mean training loss was `loss` (not finite).
    Diverged {
        /// The 1-based epoch.
        epoch: usize,
        /// The loss, as text (`NaN`, `inf`): TOML has no portable NaN.
        loss: String,
    },
}

impl CellStatus {
    /// Reads a run directory's `done` file: `None` while the run is
    /// unfinished; an empty file (older sweeps) is `Finished`.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(DONE_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        if text.trim().is_empty() {
            return Ok(Some(CellStatus::Finished));
        }
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| Error::format(&path, e.to_string()))
    }

    fn write(&self, dir: &Path) -> Result<()> {
        let text = toml::to_string(self).expect("a status serializes");
        crate::fsutil::write_atomic(&dir.join(DONE_FILE), text.as_bytes())
    }
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

/// Reads a sweep file with its `extends` resolved: its `[base]` is the
/// other file's (itself resolved), with this file's `[base]` over it and
/// the keys this file's grid sets in every cell taken out. An inherited
/// key that the grid sets in some cells only is refused: the plan would
/// need two bases. `chain` holds the files that extend this one, to refuse
/// a loop.
fn read_sweep_file(path: &Path, chain: &mut Vec<PathBuf>) -> Result<SweepFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut f: SweepFile = toml::from_str(&text).map_err(|e| Error::format(path, e.to_string()))?;
    let Some(other) = f.extends.take() else {
        return Ok(f);
    };
    let me = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    chain.push(me);
    let other = path.parent().unwrap_or(Path::new("")).join(other);
    let other_id = std::fs::canonicalize(&other).map_err(|e| Error::io(&other, e))?;
    if let Some(at) = chain.iter().position(|p| *p == other_id) {
        let names: Vec<String> = chain[at..]
            .iter()
            .chain([&other_id])
            .map(|p| p.display().to_string())
            .collect();
        return Err(Error::format(
            path,
            format!("extends loops: {}", names.join(" extends ")),
        ));
    }
    let parent = read_sweep_file(&other, chain)?;
    chain.pop();
    let mut base = parent.base;
    for (key, everywhere) in grid_settings(&f.grid) {
        if !base.contains_key(&key) {
            continue;
        }
        if !everywhere {
            return Err(Error::format(
                path,
                format!(
                    "{key} is in the [base] of {} and in some of this file's \
                     [grid] tables but not all: set it in every table, or in none",
                    other.display()
                ),
            ));
        }
        base.remove(&key);
    }
    base.extend(f.base);
    f.base = base;
    Ok(f)
}

/// The settings a grid sets, each with whether it sets it in every cell:
/// a plain key does; a key of a grid key's tables does if every value of
/// that grid key is a table that has it.
fn grid_settings(grid: &BTreeMap<String, Vec<toml::Value>>) -> BTreeMap<String, bool> {
    let mut settings = BTreeMap::new();
    for (key, values) in grid {
        let mut named = std::collections::BTreeSet::new();
        for value in values {
            match value {
                toml::Value::Table(t) => named.extend(t.keys().cloned()),
                _ => {
                    named.insert(key.clone());
                }
            }
        }
        for name in named {
            let everywhere = values.iter().all(|v| match v {
                toml::Value::Table(t) => t.contains_key(&name),
                _ => name == *key,
            });
            let e = settings.entry(name).or_insert(true);
            *e = *e && everywhere;
        }
    }
    settings
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
    /// An `extends` in it is read relative to the file's folder.
    pub fn from_file(path: &Path) -> Result<Self> {
        let stem = path
            .file_stem()
            .map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        let f = read_sweep_file(path, &mut Vec::new())?;
        Self::from_parsed(f, Path::new("sweeps").join(stem))
            .map_err(|e| Error::format(path, e.to_string()))
    }

    /// Parses sweep TOML; `default_out` applies when the file names no `out`.
    /// Text has no folder to find another file in, so `extends` is refused:
    /// use [`Sweep::from_file`].
    pub fn from_toml_str(text: &str, default_out: PathBuf) -> Result<Self> {
        let f: SweepFile = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        if let Some(other) = &f.extends {
            return Err(Error::Config(format!(
                "extends = {:?} names a file relative to the sweep file's folder, \
                 and this sweep was given as text: read it from its file",
                other.display().to_string()
            )));
        }
        Self::from_parsed(f, default_out)
    }

    fn from_parsed(f: SweepFile, default_out: PathBuf) -> Result<Self> {
        if let Some((k, _)) = f.grid.iter().find(|(_, v)| v.is_empty()) {
            return Err(Error::Config(format!("grid key {k} has no values")));
        }
        if let Some(k) = f.grid.keys().find(|k| f.base.contains_key(*k)) {
            return Err(Error::Config(format!(
                "{k} is both in [base] and in [grid]"
            )));
        }
        let mut grid: Vec<(String, Vec<toml::Value>)> = f.grid.into_iter().collect();
        for (i, key) in f.order.iter().enumerate() {
            let Some(at) = grid.iter().position(|(k, _)| k == key) else {
                return Err(Error::Config(format!(
                    "order names {key}, which is not a [grid] key"
                )));
            };
            if at < i {
                return Err(Error::Config(format!("order names {key} twice")));
            }
            let entry = grid.remove(at);
            grid.insert(i, entry);
        }
        let sweep = Self {
            out: f.out.unwrap_or(default_out),
            base: f.base,
            grid,
        };
        sweep.cells()?; // every cell must be a valid run
        Ok(sweep)
    }

    /// The sweep as a sweep file (without `out`), its cells in the same
    /// order: what [`PLAN_FILE`] holds.
    pub fn to_toml(&self) -> String {
        let f = SweepFile {
            extends: None,
            out: None,
            order: self.grid.iter().map(|(k, _)| k.clone()).collect(),
            base: self.base.clone(),
            grid: self.grid.iter().cloned().collect(),
        };
        toml::to_string(&f).expect("a sweep serializes")
    }

    /// Writes [`PLAN_FILE`] into `dir`: the cells its runs come from, so
    /// that `biprop report --select` knows which are still to come.
    pub fn write_plan(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // Sweeps sharing a folder (lanes, Slurm tasks) write the plan one
        // at a time, each holding the folder's lock; a temp file of the
        // plan found then was left by a writer that was killed. Where the
        // folder cannot be locked, any such file is left alone.
        let lock = std::fs::File::open(dir).and_then(|f| f.lock().map(|()| f));
        if lock.is_ok() {
            crate::fsutil::remove_temps_of(dir, PLAN_FILE)?;
        }
        let text = format!(
            "# The sweep whose runs this folder holds, written by `biprop sweep`:\n\
             # `biprop report --select` waits for every one of its cells.\n{}",
            self.to_toml()
        );
        crate::fsutil::write_atomic(&dir.join(PLAN_FILE), text.as_bytes())
    }

    /// The cells' settings from `dir`'s [`PLAN_FILE`], if it has one.
    pub fn planned_in(dir: &Path) -> Result<Option<Vec<RunConfig>>> {
        let path = dir.join(PLAN_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let sweep = Self::from_file(&path)?;
        Ok(Some(sweep.cells()?.into_iter().map(|c| c.config).collect()))
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
        let mut cell = toml::Table::new();
        let mut rest = index;
        let mut id = Vec::new();
        // The last key varies fastest.
        let mut picks = vec![0; self.grid.len()];
        for (k, (_, values)) in self.grid.iter().enumerate().rev() {
            picks[k] = rest % values.len();
            rest /= values.len();
        }
        // A table value sets several keys at once (`case = [{rule = "bp",
        // lr = 0.03}, ...]`): its keys name the cell, not the grid key, so a
        // cell has the id a product grid of the same values would give it.
        let mut named: Vec<(&String, &toml::Value)> = Vec::new();
        for ((key, values), &p) in self.grid.iter().zip(&picks) {
            match &values[p] {
                toml::Value::Table(t) => named.extend(t.iter()),
                value => named.push((key, value)),
            }
        }
        named.sort_by(|a, b| a.0.cmp(b.0));
        if let Some(w) = named.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::Config(format!(
                "cell {index} sets {} twice (a grid key and a key of a grid table)",
                w[0].0
            )));
        }
        for (key, value) in named {
            if self.base.contains_key(key) {
                return Err(Error::Config(format!(
                    "{key} is both in [base] and in a [grid] table"
                )));
            }
            cell.insert(key.clone(), value.clone());
            id.push(format!(
                "{}-{}",
                sanitize(key),
                sanitize(&value_text(value))
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
        let config = RunConfig::from_layers(&[self.base.clone(), cell]).map_err(in_cell)?;
        Ok(Cell { index, id, config })
    }

    /// The directory of a cell.
    pub fn run_dir(&self, cell: &Cell) -> PathBuf {
        self.out.join("runs").join(&cell.id)
    }

    /// True when the cell has finished or diverged with exactly its
    /// settings: its `done` file exists and its `config.toml` is the cell's
    /// (the thread count aside; for a diverged cell, the epoch count too, as
    /// more epochs would diverge the same way). A cell whose file now asks
    /// for more epochs, or anything else, is pending again: run, it
    /// continues or is refused with the difference named, never reported as
    /// what it is not.
    pub fn is_done(&self, cell: &Cell) -> bool {
        matches!(finished_run_of(&self.run_dir(cell), cell), Ok(Some(true)))
    }

    /// True while another process trains the cell (it holds the cell's lock):
    /// a second sweep on the same folder, or another Slurm task.
    pub fn is_running(&self, cell: &Cell) -> bool {
        let path = self.run_dir(cell).join(LOCK_FILE);
        let Ok(file) = std::fs::File::open(&path) else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }

    /// How the cell ended, `None` while unfinished.
    pub fn status(&self, cell: &Cell) -> Result<Option<CellStatus>> {
        CellStatus::read(&self.run_dir(cell))
    }

    /// The seconds an epoch of each of `cells` takes, as far as this
    /// sweep's folder knows: a cell's own pace over its last 10 recorded
    /// epochs (the machine as it is now), else the median of the whole-run
    /// median paces of the cells that differ from it only in seed (the same
    /// network and rule on another draw cost the same), else `None`.
    /// `--list` turns them into the time a sweep has left.
    pub fn epoch_seconds(&self, cells: &[Cell]) -> Vec<Option<f64>> {
        let mut own = Vec::with_capacity(cells.len());
        let mut by_key: HashMap<String, Vec<f64>> = HashMap::new();
        for c in cells {
            let secs = run::epoch_seconds(&self.run_dir(c));
            own.push(secs.as_ref().map(|s| {
                let mut last = s[s.len().saturating_sub(10)..].to_vec();
                crate::stats::median(&mut last)
            }));
            if let Some(mut s) = secs {
                let whole = crate::stats::median(&mut s);
                by_key.entry(pace_key(&c.config)).or_default().push(whole);
            }
        }
        let medians: HashMap<String, f64> = by_key
            .into_iter()
            .map(|(k, mut v)| (k, crate::stats::median(&mut v)))
            .collect();
        cells
            .iter()
            .zip(own)
            .map(|(c, s)| s.or_else(|| medians.get(&pace_key(&c.config)).copied()))
            .collect()
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

/// The files of a finished cell that are kept with a project's results
/// (small: never the checkpoint, nor `metrics.jsonl`, which repeats the CSV).
pub const RESULT_FILES: [&str; 3] = ["config.toml", "metrics.csv", DONE_FILE];

/// Whether `dir` holds a finished run of `cell`: `None` without a `done`
/// file, else whether its `config.toml` has the cell's settings, the thread
/// count aside, and the GEMM backend when the cell leaves it to the CPU (and
/// for a diverged run the epoch count too, as more epochs would diverge the
/// same way). The one test of "finished" for running a
/// sweep and for importing saved runs.
pub(super) fn finished_run_of(dir: &Path, cell: &Cell) -> Result<Option<bool>> {
    let Some(status) = CellStatus::read(dir)? else {
        return Ok(None);
    };
    let saved = RunConfig::from_toml_file(&dir.join("config.toml"))?;
    let diverged = matches!(status, CellStatus::Diverged { .. });
    // A cell that leaves the GEMM backend to the CPU takes a run made with
    // any (the backends differ in the last bits only); one that names a
    // backend wants a run made with it.
    let any_backend = cell.config.gemm == crate::tensor::GemmBackend::Auto;
    let key = |c: &RunConfig| {
        RunConfig {
            threads: 0,
            epochs: if diverged { 0 } else { c.epochs },
            gemm: if any_backend {
                crate::tensor::GemmBackend::Auto
            } else {
                c.gemm
            },
            ..c.clone()
        }
        .to_toml()
    };
    Ok(Some(key(&saved) == key(&cell.config)))
}

/// A cell's settings less those that leave an epoch's cost as it is: the
/// seed and the number of epochs.
fn pace_key(c: &RunConfig) -> String {
    RunConfig {
        seed: 0,
        epochs: 0,
        ..c.clone()
    }
    .to_toml()
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
/// Returns how many cells it ran and how many it left to another process.
pub fn run_sweep(sweep: &Sweep, opts: &SweepOptions) -> Result<SweepCounts> {
    let pending = sweep.pending(opts.task)?;
    if pending.is_empty() {
        return Ok(SweepCounts::default());
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
    let skipped = AtomicUsize::new(0);
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
                    Ok((outcome, line)) => {
                        let counter = match outcome {
                            CellOutcome::Ran => &finished,
                            CellOutcome::Skipped => &skipped,
                        };
                        counter.fetch_add(1, Ordering::SeqCst);
                        let n = finished.load(Ordering::SeqCst) + skipped.load(Ordering::SeqCst);
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
        None => Ok(SweepCounts {
            ran: finished.into_inner(),
            skipped: skipped.into_inner(),
        }),
    }
}

/// What [`run_sweep`] did with the cells it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepCounts {
    /// Cells this process trained to their last epoch or to divergence.
    pub ran: usize,
    /// Cells it left alone: another process held the cell's lock, or
    /// finished the cell while this one waited. Counted apart so that a
    /// process of a job array never reports another's cell as its own.
    pub skipped: usize,
}

/// Whether [`run_cell`] trained its cell or left it to another process.
enum CellOutcome {
    Ran,
    Skipped,
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
) -> Result<(CellOutcome, String)> {
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
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = std::fs::File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Ok((
                CellOutcome::Skipped,
                format!(
                    "[{}] {}: skipped, another process is training it",
                    cell.index, cell.id
                ),
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
    }
    // Another process may have finished it while this one waited.
    if sweep.is_done(cell) {
        return Ok((
            CellOutcome::Skipped,
            format!("[{}] {}: finished elsewhere", cell.index, cell.id),
        ));
    }
    // A finished cell asked for more epochs continues: it is unfinished again.
    let done = dir.join(DONE_FILE);
    if done.is_file() {
        std::fs::remove_file(&done).map_err(|e| Error::io(&done, e))?;
    }
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
    let summary = match run::run(&cfg, &splits, &opts) {
        Ok(s) => s,
        Err(Error::Diverged { epoch, loss }) => {
            CellStatus::Diverged {
                epoch,
                loss: loss.to_string(),
            }
            .write(&dir)?;
            // The epochs it will never run still count as done for the bar.
            bar.inc((cfg.epochs - epoch + 1) as u64);
            return Ok((
                CellOutcome::Ran,
                format!(
                    "[{}] {}: diverged in epoch {epoch} (loss {loss})",
                    cell.index, cell.id
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    CellStatus::Finished.write(&dir)?;
    let last = summary.records.last();
    Ok((
        CellOutcome::Ran,
        format!(
            "[{}] {}: test error {}",
            cell.index,
            cell.id,
            last.map_or("(already complete)".into(), |r| format!(
                "{:.2}%",
                100.0 * r.test_error
            ))
        ),
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

    /// `order` puts its keys first (slowest); ids do not depend on it.
    #[test]
    fn order_makes_a_sweep_seed_major() {
        let plain = Sweep::from_toml_str(GRID, "out".into()).unwrap();
        let text = format!("order = [\"seed\", \"rule\"]\n{GRID}");
        let s = Sweep::from_toml_str(&text, "out".into()).unwrap();
        let cells = s.cells().unwrap();
        // Every cell of seed 1 before any of seed 2; rule, then hidden, within.
        assert!(cells[..6].iter().all(|c| c.config.seed == 1));
        assert!(cells[6..].iter().all(|c| c.config.seed == 2));
        assert_eq!(cells[0].id, "hidden-1x400_rule-bp_seed-1");
        assert_eq!(cells[1].id, "hidden-2x800_rule-bp_seed-1");
        assert_eq!(cells[2].id, "hidden-1x400_rule-fa_seed-1");
        let mut a: Vec<_> = cells.iter().map(|c| c.id.clone()).collect();
        let mut b: Vec<_> = plain
            .cells()
            .unwrap()
            .iter()
            .map(|c| c.id.clone())
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b, "the same cells, in another order");
        let err = |t: &str| Sweep::from_toml_str(t, "o".into()).unwrap_err().to_string();
        assert!(err(&format!("order = [\"lr\"]\n{GRID}")).contains("not a [grid] key"));
        assert!(err(&format!("order = [\"seed\", \"seed\"]\n{GRID}")).contains("twice"));
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

    /// A table value sets its keys together; the cell has the id and the
    /// config of the product-grid cell with the same values.
    #[test]
    fn grid_tables_set_keys_together() {
        let text = r#"
            [base]
            epochs = 2
            [grid]
            tuned = [{ rule = "bp", lr = 0.03 }, { rule = "fa", lr = 0.1 }]
            seed = [2, 3]
        "#;
        let s = Sweep::from_toml_str(text, "o".into()).unwrap();
        let cells = s.cells().unwrap();
        let ids: Vec<&str> = cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                // Grid keys in alphabetical order: seed varies slowest.
                "lr-0.03_rule-bp_seed-2",
                "lr-0.1_rule-fa_seed-2",
                "lr-0.03_rule-bp_seed-3",
                "lr-0.1_rule-fa_seed-3"
            ]
        );
        assert_eq!(cells[1].config.rule, crate::rules::RuleKind::Fa);
        assert_eq!(cells[1].config.lr, 0.1);
        assert_eq!(cells[1].config.epochs, 2);
        let product = "[base]\nepochs = 2\n[grid]\nlr = [0.1]\nrule = [\"fa\"]\nseed = [2]";
        let p = Sweep::from_toml_str(product, "o".into()).unwrap();
        assert_eq!(p.cells().unwrap()[0].id, cells[1].id);
        assert_eq!(p.cells().unwrap()[0].config, cells[1].config);
        let err = |t: &str| Sweep::from_toml_str(t, "o".into()).unwrap_err().to_string();
        let twice = "[grid]\nlr = [0.1]\ncase = [{ lr = 0.2 }]";
        assert!(err(twice).contains("lr twice"), "{}", err(twice));
        let in_base = "[base]\nlr = 0.1\n[grid]\ncase = [{ lr = 0.2 }]";
        assert!(err(in_base).contains("both in [base]"), "{}", err(in_base));
        assert!(err("[grid]\ncase = [{ lrr = 0.2 }]").contains("lrr"));
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `extends` takes the other file's `[base]` (through its own
    /// `extends`, from its own folder); this file's `[base]` and grid win
    /// over it, and its grid, order and out are not inherited. The result
    /// is the sweep written out in full, and so is its plan.
    #[test]
    fn extends_takes_the_base_of_another_sweep_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(
            d,
            "a.toml",
            "out = \"a-out\"\norder = [\"seed\"]\n[base]\nepochs = 3\nlr = 0.1\n\
             hidden = \"1x8\"\nbatch_size = 7\n[grid]\nrule = [\"bp\", \"fa\"]\nseed = [1, 2]",
        );
        write(
            d,
            "sub/b.toml",
            "extends = \"../a.toml\"\n[base]\nlr = 0.2\nmomentum = 0.5\n[grid]\nseed = [9]",
        );
        let c = write(
            d,
            "sub/c.toml",
            "extends = \"b.toml\"\n[base]\nepochs = 4\n[grid]\nhidden = [\"1x16\"]\n\
             tuned = [{ rule = \"fa\", lr = 0.25 }, { rule = \"bp\", lr = 0.3 }]",
        );
        let s = Sweep::from_file(&c).unwrap();
        assert_eq!(s.out, Path::new("sweeps").join("c"), "out is not inherited");
        let cells = s.cells().unwrap();
        assert_eq!(cells.len(), 2, "the grid is this file's alone");
        let full = "[base]\nepochs = 4\nbatch_size = 7\nhidden = \"1x16\"\nmomentum = 0.5\n\
             [grid]\ntuned = [{ rule = \"fa\", lr = 0.25 }, { rule = \"bp\", lr = 0.3 }]";
        let written = Sweep::from_toml_str(full, "o".into()).unwrap();
        let configs = |s: &Sweep| -> Vec<RunConfig> {
            s.cells().unwrap().into_iter().map(|c| c.config).collect()
        };
        assert_eq!(configs(&s), configs(&written));
        assert_eq!(cells[0].config.epochs, 4, "this file's base wins");
        assert_eq!(cells[0].config.batch_size, 7, "a's base, through b");
        assert_eq!(cells[0].config.hidden, vec![16], "a grid key wins");
        assert_eq!(cells[0].config.lr, 0.25, "grid tables win");
        assert_eq!(cells[1].config.lr, 0.3);
        assert_eq!(cells[1].config.momentum, 0.5, "b's base");
        let plan = s.to_toml();
        assert!(!plan.contains("extends"), "{plan}");
        let again = Sweep::from_toml_str(&plan, "o".into()).unwrap();
        assert_eq!(configs(&again), configs(&s), "the plan stands alone");
    }

    #[test]
    fn extends_that_cannot_be_followed_is_refused_with_the_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let err = |p: &Path| Sweep::from_file(p).unwrap_err().to_string();
        let a = write(d, "a.toml", "extends = \"b.toml\"\n[grid]\nseed = [1]");
        write(d, "b.toml", "extends = \"a.toml\"\n[base]\nepochs = 2");
        assert!(err(&a).contains("loops"), "{}", err(&a));
        let me = write(d, "me.toml", "extends = \"me.toml\"\n[grid]\nseed = [1]");
        assert!(err(&me).contains("loops"), "{}", err(&me));
        let gone = write(
            d,
            "gone.toml",
            "extends = \"nowhere.toml\"\n[grid]\nseed = [1]",
        );
        assert!(err(&gone).contains("nowhere.toml"), "{}", err(&gone));
        write(d, "bad.toml", "[base]\nepochz = 2");
        let on_bad = write(
            d,
            "on-bad.toml",
            "extends = \"bad.toml\"\n[grid]\nseed = [1]",
        );
        assert!(err(&on_bad).contains("epochz"), "{}", err(&on_bad));
        write(d, "ok.toml", "[base]\nepochs = 2");
        let both = write(
            d,
            "both.toml",
            "extends = \"ok.toml\"\n[base]\nseed = 1\n[grid]\nseed = [1]",
        );
        assert!(err(&both).contains("both"), "{}", err(&both));
        let some = write(
            d,
            "some.toml",
            "extends = \"ok.toml\"\n[grid]\ncase = [{ epochs = 3 }, { seed = 2 }]",
        );
        assert!(err(&some).contains("not all"), "{}", err(&some));
        let text = Sweep::from_toml_str("extends = \"ok.toml\"", "o".into()).unwrap_err();
        assert!(text.to_string().contains("from its file"), "{text}");
    }
}
