//! `biprop sweep`: the unfinished cells of a sweep file, locally or as a Slurm job array.

use anyhow::{Context, Result};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub(super) struct SweepArgs {
    /// The sweep file (TOML: [base] settings and a [grid] of lists).
    file: PathBuf,
    /// Runs at once (default: one per core, each on one thread).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Run only cell I (0-based), e.g. from a job-array index.
    #[arg(long, value_name = "I")]
    task: Option<usize>,
    /// Output folder (default: the file's `out`, else sweeps/<file stem>).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// List the cells (index, id, and done, diverged@EPOCH, the epochs a
    /// started cell has recorded, or pending) and a count of each, and exit.
    #[arg(long)]
    list: bool,
    /// Copy the finished cells' small files (config.toml, metrics.csv, done;
    /// never checkpoints) into DIR/<cell id>/ and exit: what a project commits.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["list", "task"])]
    export: Option<PathBuf>,
    /// Before running, mark finished every cell whose DIR/<cell id>/ holds a
    /// finished run of its settings (from --export), so it never runs twice.
    #[arg(long, value_name = "DIR")]
    import: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Run nothing and load no data: print each cell's memory, FLOPs an
    /// epoch and expected time on this machine (cells that share them on
    /// one line); exit 1 if a cell would be refused.
    #[arg(long, conflicts_with_all = ["list", "export", "import", "slurm"])]
    dry_run: bool,
    /// Write an sbatch script (OUT/slurm/array.sbatch) whose job array has one
    /// task per unfinished cell, each running `biprop sweep FILE --task ID`.
    #[arg(long, conflicts_with_all = ["list", "task", "export"])]
    slurm: bool,
    /// With --slurm: submit the script with sbatch and print the job id.
    #[arg(long, requires = "slurm")]
    submit: bool,
    /// With --slurm: the partition.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// With --slurm: each task's time limit (default: the largest unfinished
    /// cell's estimate from its FLOPs, generously).
    #[arg(long, requires = "slurm", value_name = "TIME")]
    time: Option<String>,
    /// With --slurm: CPUs per task.
    #[arg(long, requires = "slurm", value_name = "N")]
    cpus_per_task: Option<u32>,
    /// With --slurm: memory per task (default: the largest unfinished cell's
    /// memory estimate, as --dry-run prints it, a quarter more and 256 MB).
    #[arg(long, requires = "slurm", value_name = "MEM")]
    mem: Option<String>,
    /// With --slurm: at most N tasks at once (--array=...%N).
    #[arg(long, requires = "slurm", value_name = "N")]
    array_throttle: Option<u32>,
    /// With --slurm: the job name (default biprop-<file stem>).
    #[arg(long, requires = "slurm")]
    job_name: Option<String>,
    /// With --slurm: an extra #SBATCH option, verbatim (repeatable), e.g. --sbatch=--account=lab.
    #[arg(long, requires = "slurm", value_name = "OPTION")]
    sbatch: Vec<String>,
}

pub(super) fn sweep(args: SweepArgs) -> Result<()> {
    use crate::experiment::sweep::{self, Sweep, SweepOptions};
    let mut s = Sweep::from_file(&args.file)?;
    if let Some(out) = args.out {
        s.out = out;
    }
    let cells = s.cells()?;
    if let Some(dir) = &args.export {
        let n = s.export_finished(dir)?;
        s.write_plan(dir)?;
        say!("copied {n} finished cell(s) into {}", dir.display());
        return Ok(());
    }
    if let Some(dir) = &args.import {
        let n = s.import_finished(dir)?;
        eprintln!("marked {n} cell(s) finished from {}", dir.display());
    }
    if args.slurm {
        use crate::experiment::slurm;
        let opts = slurm::SlurmOptions {
            partition: args.partition.clone(),
            time: args.time.clone(),
            cpus: args.cpus_per_task,
            mem: args.mem.clone(),
            throttle: args.array_throttle,
            job_name: args.job_name.clone(),
            extra: args.sbatch.clone(),
        };
        // The Python package's `biprop` runs inside the Python interpreter,
        // which is what current_exe names there; it says which command to
        // put in the job script instead.
        let exe = match std::env::var_os("BIPROP_EXE") {
            Some(exe) => PathBuf::from(exe),
            None => std::env::current_exe().context("locating the biprop binary")?,
        };
        let Some(array) = slurm::job_array(&s, &args.file, &exe, &opts)? else {
            say!(
                "nothing to submit: every cell of {} is finished or running",
                args.file.display()
            );
            return Ok(());
        };
        let path = slurm::write(&s, &array)?;
        say!(
            "wrote {} ({} task(s): cells {})",
            path.display(),
            array.tasks.len(),
            slurm::index_ranges(&array.tasks)
        );
        if args.submit {
            let id = slurm::submit(&path)?;
            say!(
                "submitted job {id}; biprop report {} shows the cells as they finish",
                s.out.display()
            );
        }
        return Ok(());
    }
    let jobs = args.jobs.unwrap_or_else(sweep::default_jobs);
    // Each job is a thread (and more threads of its own): refused as a
    // thread count is, before any is started.
    if jobs > crate::tensor::thread_limit() {
        anyhow::bail!(
            "--jobs {jobs} is more than this machine can run at once: at most {} \
             (4 x its {} cores)",
            crate::tensor::thread_limit(),
            crate::tensor::cores()
        );
    }
    if args.dry_run {
        let cells = match args.task {
            Some(i) => cells.into_iter().filter(|c| c.index == i).collect(),
            None => cells,
        };
        return dry_run(&cells, jobs);
    }
    if args.list {
        let (mut done, mut diverged, mut started) = (0, 0, 0);
        // Compute left at the recorded pace, and the unfinished cells it
        // leaves out because neither they nor another seed of them ran yet.
        let (mut left_secs, mut unknown) = (0.0, 0);
        let paces = s.epoch_seconds(&cells);
        for (c, pace) in cells.iter().zip(paces) {
            let epochs = c.config.epochs;
            let state = match s.status(c)? {
                // A started cell says how far it got (its checkpoint follows each
                // recorded epoch, so a resumption starts there or one before).
                None => {
                    let e = match crate::run::epochs_recorded(&s.run_dir(c)) {
                        Some(e) if e > 0 => {
                            started += 1;
                            e
                        }
                        _ => 0,
                    };
                    let left = epochs.saturating_sub(e);
                    let so_far = if e > 0 {
                        format!("{e}/{epochs} epochs")
                    } else {
                        "pending".to_string()
                    };
                    match pace {
                        Some(secs) if left > 0 => {
                            left_secs += secs * left as f64;
                            let t = crate::bench::duration(secs * left as f64);
                            format!("{so_far}, about {t} left")
                        }
                        Some(_) => so_far,
                        None => {
                            unknown += 1;
                            so_far
                        }
                    }
                }
                Some(sweep::CellStatus::Finished) => {
                    done += 1;
                    "done".to_string()
                }
                Some(sweep::CellStatus::Diverged { epoch, .. }) => {
                    diverged += 1;
                    format!("diverged@{epoch}")
                }
            };
            say!("{:>4}  {state:<36}  {}", c.index, c.id);
        }
        say!(
            "{} cells: {done} done, {diverged} diverged, {started} started, {} not started",
            cells.len(),
            cells.len() - done - diverged - started
        );
        let estimated = cells.len() - done - diverged - unknown;
        if estimated > 0 {
            say!(
                "left: about {} of run time for {estimated} cell(s), at the pace \
                 recorded so far (the cells one after another)",
                crate::bench::duration(left_secs)
            );
        }
        if unknown > 0 {
            say!(
                "no estimate for {unknown} cell(s) that no seed of has run yet \
                 (`--dry-run` forecasts them)"
            );
        }
        return Ok(());
    }
    if !args.quiet {
        eprintln!(
            "sweep {}: {} cells, {} to run -> {}",
            args.file.display(),
            cells.len(),
            s.pending(args.task)?.len(),
            s.out.display()
        );
    }
    let opts = SweepOptions {
        jobs,
        task: args.task,
        progress: !args.quiet && std::io::stderr().is_terminal(),
    };
    s.write_plan(&s.out)?;
    let counts = sweep::run_sweep(&s, &opts)?;
    if counts.skipped > 0 {
        say!(
            "{} run(s) finished here, {} left to another process (it holds \
             their lock or finished them); results in {}",
            counts.ran,
            counts.skipped,
            s.out.display()
        );
    } else {
        say!(
            "{} run(s) finished; results in {}",
            counts.ran,
            s.out.display()
        );
    }
    Ok(())
}

/// `--dry-run`: each cell's forecast, cells with the same one on one line,
/// then what the cells need together with `jobs` of them at once.
fn dry_run(cells: &[crate::experiment::sweep::Cell], jobs: usize) -> Result<()> {
    use crate::resources::bytes;
    // A sweep gives each job the cores it shares (`run_sweep`).
    let threads = (crate::tensor::cores() / jobs.max(1)).max(1);
    let mut rates = crate::bench::Rates::default();
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let (mut largest, mut data, mut flops, mut seconds) = (0u128, 0u128, 0.0, 0.0);
    let mut refused = Vec::new();
    for cell in cells {
        let c = &cell.config;
        let cell_threads = if c.threads == 0 { threads } else { c.threads };
        let line = match crate::bench::forecast(c, cell_threads, true, &mut rates) {
            Ok(f) => {
                let parts = f.estimate.by_category();
                let d = parts
                    .iter()
                    .filter(|(k, _)| *k == crate::resources::Category::Data);
                data = data.max(d.map(|(_, b)| *b).sum());
                largest = largest.max(f.estimate.total());
                flops += f.compute.epoch() * c.epochs as f64;
                seconds += f.epoch_seconds() * c.epochs as f64;
                if let Some(why) = &f.refusal {
                    refused.push(format!("cell {}: {why}", cell.index));
                }
                format!(
                    "{} {} on {}, batch {}: memory {}; {}",
                    c.rule,
                    c.architecture(),
                    c.dataset.name(),
                    c.batch_size,
                    f.memory_line(),
                    f.time_line()
                )
            }
            Err(e) => {
                refused.push(format!("cell {}: {e}", cell.index));
                format!("cannot be estimated: {e}")
            }
        };
        match groups.iter_mut().find(|(l, _)| *l == line) {
            Some((_, ix)) => ix.push(cell.index),
            None => groups.push((line, vec![cell.index])),
        }
    }
    for (line, ix) in &groups {
        say!(
            "cells {}: {line}",
            crate::experiment::slurm::index_ranges(ix)
        );
    }
    let at_once = jobs.min(cells.len()).max(1);
    // The data is loaded once per data set and shared by the jobs.
    let together =
        data.saturating_add((at_once as u128).saturating_mul(largest.saturating_sub(data)));
    say!(
        "all {} cell(s): {} in all, about {} of compute on this machine; {at_once} job(s) at once \
         need about {} (the largest cell's trainer {at_once} times, its data once)",
        cells.len(),
        crate::bench::flop(flops),
        crate::bench::duration(seconds / at_once as f64),
        bytes(together)
    );
    say!("dry run: nothing run");
    if refused.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} cell(s) would be refused: {}",
            refused.len(),
            refused.join("; ")
        )
    }
}
