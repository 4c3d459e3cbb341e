//! Sweeps on a Slurm cluster: `biprop sweep FILE --slurm` writes an sbatch
//! script whose job array has one task per unfinished cell, each running
//! `biprop sweep FILE --task $SLURM_ARRAY_TASK_ID`. Task ids are cell
//! indices, so a resubmission after any failure (a task cancelled, a node
//! lost) lists only what is still unfinished, and a cell that a running task
//! holds (its lock) is left out.

use super::sweep::{Cell, Sweep};
use crate::data::DatasetKind;
use crate::error::{Error, Result};
use crate::resources::{self, DataShape};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What each array task asks Slurm for; `None` takes a default from the
/// largest unfinished cell.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` of each task (`HH:MM:SS`, `D-HH:MM:SS` or minutes).
    pub time: Option<String>,
    /// `--cpus-per-task` (default 1: a cell's threads give it little, see docs/experiments.md).
    pub cpus: Option<u32>,
    /// `--mem` of each task (e.g. `2G`).
    pub mem: Option<String>,
    /// At most this many tasks at once (`--array=...%N`).
    pub throttle: Option<u32>,
    /// `--job-name`.
    pub job_name: Option<String>,
    /// Extra `#SBATCH` lines, verbatim (`--account=lab`, `--qos=long`).
    pub extra: Vec<String>,
}

/// A sweep file's job array: the script and the cells it runs.
#[derive(Clone, Debug)]
pub struct JobArray {
    /// The sbatch script.
    pub script: String,
    /// The cell indices of its tasks.
    pub tasks: Vec<usize>,
}

/// The sizes of a cell's data set: known for MNIST and CIFAR-10, read from
/// the files' headers for `idx` (MNIST's where they cannot be read here:
/// the cluster may hold the files elsewhere).
fn data_shape(c: &crate::config::RunConfig) -> DataShape {
    DataShape::of(c).unwrap_or_else(|_| {
        let (train, test, (ch, h, w)) = crate::data::DatasetKind::Mnist
            .known_sizes()
            .expect("MNIST's sizes are known");
        DataShape {
            image: crate::layers::Shape::new(ch, h, w),
            classes: c.classes,
            train,
            test,
        }
    })
}

/// The FLOP rate [`cell_seconds`] assumes of one core for an MLP: a sixth
/// of what a current core sustains in biprop (docs/performance.md).
pub const MLP_CORE_FLOPS: f64 = 20e9;

/// The rate it assumes for a network with convolutions, whose patch copies,
/// pooling and short products make a core far slower per FLOP: on one core
/// of the 2-core Intel Xeon, lenet-mnist BP ran at 17.5 GFLOP/s and BFA at
/// 12.1, lenet-cifar BP at 57.6 and BFA at 49.0 (`biprop bench --net NET
/// --rule R --threads 1 --batch-size 64`).
pub const CONV_CORE_FLOPS: f64 = 5e9;

/// Seconds one cell needs on one core, generously: its FLOPs (training and
/// evaluation, counted from its layers) at [`MLP_CORE_FLOPS`] or
/// [`CONV_CORE_FLOPS`], plus a minute for loading and evaluation, doubled
/// for slow nodes.
pub fn cell_seconds(cell: &Cell) -> f64 {
    let c = &cell.config;
    let data = data_shape(c);
    let (epoch, rate) =
        c.network_plan(data.image, data.classes)
            .map_or((0.0, MLP_CORE_FLOPS), |plan| {
                let convolutional = plan.iter().any(|(k, ..)| k.is_convolution());
                let epoch = resources::Compute::of(c, &plan, &data).epoch();
                (
                    epoch,
                    if convolutional {
                        CONV_CORE_FLOPS
                    } else {
                        MLP_CORE_FLOPS
                    },
                )
            });
    2.0 * (epoch * c.epochs as f64 / rate + 60.0)
}

/// Bytes one cell's task needs: the estimate of its data set, trainer and
/// checkpoint writing ([`resources::estimate`]); `None` when its network
/// does not fit its data.
pub fn cell_memory(cell: &Cell) -> Option<u128> {
    let c = &cell.config;
    let data = data_shape(c);
    let extras = resources::run_extras(c, Some(&data), true);
    resources::estimate(c, data.image, data.classes, &extras)
        .ok()
        .map(|e| e.total())
}

/// Slurm's `--mem` for an estimate of `bytes`: a quarter more and 256 MB
/// for what the estimate leaves out (the allocator, the loader's transient
/// copies), in whole gigabytes (GiB), at least 1G.
pub fn slurm_mem(bytes: u128) -> String {
    const GIB: u128 = 1 << 30;
    let with_headroom = bytes.saturating_add(bytes / 4).saturating_add(256 << 20);
    format!("{}G", with_headroom.div_ceil(GIB).max(1))
}

/// Slurm's `D-HH:MM:SS`.
fn slurm_time(seconds: f64) -> String {
    let s = seconds.ceil() as u64;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{sec:02}")
    } else {
        format!("{h:02}:{m:02}:{sec:02}")
    }
}

/// `0-3,5,7-9`: Slurm's compact array index list.
pub fn index_ranges(tasks: &[usize]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tasks.len() {
        let mut j = i;
        while j + 1 < tasks.len() && tasks[j + 1] == tasks[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            tasks[i].to_string()
        } else {
            format!("{}-{}", tasks[i], tasks[j])
        });
        i = j + 1;
    }
    out.join(",")
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io(p, e))
}

/// The job array for the unfinished cells of `sweep` (read from
/// `sweep_file`), run by the biprop at `biprop`. `None` when every cell is
/// finished or held by a running task.
pub fn job_array(
    sweep: &Sweep,
    sweep_file: &Path,
    biprop: &Path,
    opts: &SlurmOptions,
) -> Result<Option<JobArray>> {
    let pending: Vec<Cell> = sweep
        .pending(None)?
        .into_iter()
        .filter(|c| !sweep.is_running(c))
        .collect();
    if pending.is_empty() {
        return Ok(None);
    }
    let tasks: Vec<usize> = pending.iter().map(|c| c.index).collect();
    let out = absolute(&sweep.out)?;
    let logs = out.join("slurm");
    let largest = pending.iter().map(cell_seconds).fold(600.0, f64::max);
    // The memory of the largest cell; the old fixed sizes only where no
    // cell's network fits its data (its task then fails with the reason).
    let mem = pending
        .iter()
        .filter_map(cell_memory)
        .max()
        .map(slurm_mem)
        .unwrap_or_else(|| {
            let cifar = pending
                .iter()
                .any(|c| c.config.dataset == DatasetKind::Cifar10);
            if cifar { "4G" } else { "2G" }.into()
        });
    let mut s = String::from("#!/bin/bash\n");
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(s, "#SBATCH --{k}={v}");
    };
    let name = opts.job_name.clone().unwrap_or_else(|| {
        sweep_file.file_stem().map_or("biprop".into(), |s| {
            format!("biprop-{}", s.to_string_lossy())
        })
    });
    line("job-name", &name);
    let mut array = index_ranges(&tasks);
    if let Some(t) = opts.throttle {
        array.push_str(&format!("%{t}"));
    }
    line("array", &array);
    line(
        "time",
        &opts.time.clone().unwrap_or_else(|| slurm_time(largest)),
    );
    line("cpus-per-task", &opts.cpus.unwrap_or(1).to_string());
    line("mem", &opts.mem.clone().unwrap_or(mem));
    if let Some(p) = &opts.partition {
        line("partition", p);
    }
    line("output", &format!("{}/%A_%a.out", logs.display()));
    line("error", &format!("{}/%A_%a.err", logs.display()));
    for e in &opts.extra {
        let _ = writeln!(s, "#SBATCH {e}");
    }
    let _ = writeln!(
        s,
        "# {} task(s): the unfinished cells of {} (task id = cell index).\n\
         # Resubmit (biprop sweep FILE --slurm --submit) after any failure:\n\
         # finished cells are never run again.\n\
         set -euo pipefail\n\
         exec {} sweep {} --out {} --task \"$SLURM_ARRAY_TASK_ID\" --quiet",
        tasks.len(),
        sweep_file.display(),
        shell_quote(&absolute(biprop)?),
        shell_quote(&absolute(sweep_file)?),
        shell_quote(&out),
    );
    Ok(Some(JobArray { script: s, tasks }))
}

/// Writes `array`'s script into the sweep folder (`OUT/slurm/array.sbatch`)
/// and makes the log folder; returns the script's path.
pub fn write(sweep: &Sweep, array: &JobArray) -> Result<PathBuf> {
    let dir = sweep.out.join("slurm");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join("array.sbatch");
    crate::fsutil::write_atomic(&path, array.script.as_bytes())?;
    Ok(path)
}

/// Submits a script with `sbatch --parsable`; returns the job id.
pub fn submit(script: &Path) -> Result<String> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| Error::io("sbatch", e))?;
    if !out.status.success() {
        return Err(Error::Missing(format!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let id = String::from_utf8_lossy(&out.stdout);
    Ok(id.trim().split(';').next().unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_times() {
        assert_eq!(index_ranges(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(index_ranges(&[4]), "4");
        assert_eq!(slurm_time(59.2), "00:01:00");
        assert_eq!(slurm_time(90_061.0), "1-01:01:01");
    }

    #[test]
    fn the_script_runs_each_unfinished_cell_once() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[base]\nepochs = 300\n[grid]\nrule = [\"bp\", \"bfa\"]\nhidden = [\"1x400\", \"3x800\"]\n";
        let file = dir.path().join("s.toml");
        std::fs::write(&file, text).unwrap();
        let s = Sweep::from_toml_str(text, dir.path().join("out")).unwrap();
        let opts = SlurmOptions {
            partition: Some("gpu".into()),
            throttle: Some(2),
            extra: vec!["--account=lab".into()],
            ..Default::default()
        };
        let a = job_array(&s, &file, Path::new("/opt/biprop"), &opts)
            .unwrap()
            .unwrap();
        assert_eq!(a.tasks, vec![0, 1, 2, 3]);
        for want in [
            "#SBATCH --array=0-3%2",
            "#SBATCH --partition=gpu",
            "#SBATCH --cpus-per-task=1",
            "#SBATCH --mem=1G",
            "#SBATCH --account=lab",
            "--task \"$SLURM_ARRAY_TASK_ID\"",
            "'/opt/biprop' sweep",
        ] {
            assert!(a.script.contains(want), "{want} not in\n{}", a.script);
        }
        // The time covers the largest cell: BFA 3x800 for 300 epochs.
        let largest = s
            .cells()
            .unwrap()
            .iter()
            .map(cell_seconds)
            .fold(0.0, f64::max);
        assert!(largest > 3600.0, "{largest}");
        assert!(a
            .script
            .contains(&format!("--time={}", slurm_time(largest))));
    }

    /// A convolutional network's cell gets a core's time at the lower
    /// convolutional rate: at the MLP rate, lenet-mnist's BFA (12 GFLOP/s
    /// on a core) would outlast its limit.
    #[test]
    fn convolutional_cells_get_time_at_the_convolutional_rate() {
        let text = "[base]\nepochs = 100\nnet = \"lenet-mnist\"\n[grid]\nrule = [\"bp\"]\n";
        let s = Sweep::from_toml_str(text, "out".into()).unwrap();
        let cell = &s.cells().unwrap()[0];
        let c = &cell.config;
        let data = data_shape(c);
        let plan = c.network_plan(data.image, data.classes).unwrap();
        let flops = resources::Compute::of(c, &plan, &data).epoch() * 100.0;
        assert_eq!(cell_seconds(cell), 2.0 * (flops / CONV_CORE_FLOPS + 60.0));
        assert!(cell_seconds(cell) > 2.0 * flops / 12e9);
    }
}
