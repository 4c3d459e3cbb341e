//! Sweeps, resumption and reports.

mod common;

use biprop::config::RunConfig;
use biprop::data::DatasetKind;
use biprop::experiment::report;
use biprop::rules::RuleKind;
use biprop::run::{self, RunOptions};
use std::path::Path;
use std::process::Command;

fn cfg(data: &Path, rule: RuleKind, epochs: usize) -> RunConfig {
    RunConfig {
        dataset: DatasetKind::Idx,
        data_dir: Some(data.into()),
        classes: 4,
        val_size: 100,
        rule,
        hidden: vec![32, 24],
        epochs,
        batch_size: 50,
        lr: 0.1,
        momentum: 0.9,
        threads: 1,
        ..Default::default()
    }
}

/// metrics.csv without the timing columns.
fn metrics_without_times(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut rows = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
    let header = rows.next().unwrap();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].contains("seconds"))
        .collect();
    std::iter::once(header.clone())
        .chain(rows)
        .map(|r| keep.iter().map(|&i| r[i].clone()).collect())
        .collect()
}

/// A run stopped after 2 epochs (with a half-written metrics line, as a kill
/// leaves it) and resumed to 5 ends bitwise where an uninterrupted run ends,
/// momentum and learning feedback weights included.
#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_idx(&data, 600, 100);
    for rule in [
        RuleKind::Fa,
        RuleKind::Bfa,
        RuleKind::Bdfa,
        RuleKind::Kp,
        RuleKind::Brsf,
        RuleKind::Dkp,
    ] {
        let c = cfg(&data, rule, 5);
        let splits = run::load_data(&c).unwrap();
        let a = tmp.path().join(format!("{rule}-a"));
        let b = tmp.path().join(format!("{rule}-b"));
        let opts = |dir: &Path| RunOptions {
            out_dir: Some(dir.into()),
            resume: true,
            ..Default::default()
        };
        let full = run::run(&c, &splits, &opts(&a)).unwrap();
        run::run(
            &RunConfig {
                epochs: 2,
                ..c.clone()
            },
            &splits,
            &opts(&b),
        )
        .unwrap();
        for f in ["metrics.csv", "metrics.jsonl"] {
            let mut text = std::fs::read_to_string(b.join(f)).unwrap();
            text.push_str("3,0.5,0.1");
            std::fs::write(b.join(f), text).unwrap();
        }
        let resumed = run::run(&c, &splits, &opts(&b)).unwrap();
        assert_eq!(
            resumed.records.len(),
            3,
            "{rule}: only epochs 3..5 run again"
        );
        assert_eq!(
            metrics_without_times(&a),
            metrics_without_times(&b),
            "{rule}"
        );
        assert_eq!(full.trainer.net, resumed.trainer.net, "{rule}");
        // A different configuration in the same folder is refused.
        let other = RunConfig {
            lr: 0.2,
            ..c.clone()
        };
        let refused = |cfg: &RunConfig, dir: &Path| match run::run(cfg, &splits, &opts(dir)) {
            Ok(_) => panic!("{rule}: a run in {} should be refused", dir.display()),
            Err(e) => e.to_string(),
        };
        let e = refused(&other, &b);
        assert!(e.contains("another configuration"), "{e}");
        // Fewer epochs than the checkpoint holds cannot continue it.
        let shorter = RunConfig {
            epochs: 2,
            ..c.clone()
        };
        let e = refused(&shorter, &a);
        assert!(e.contains("holds a run of 5 epochs"), "{e}");
    }
}

fn biprop(args: &[&str], cwd: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_biprop"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// `biprop sweep` killed with SIGKILL mid-way and started again ends with the
/// same results as a sweep that ran through; the report's numbers are the
/// mean and std of the runs' own metrics.
#[test]
fn a_killed_sweep_resumes_to_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_idx(&data, 2000, 200);
    let sweep = |out: &str| {
        format!(
            "out = \"{out}\"\n[base]\ndataset = \"idx\"\ndata_dir = \"{}\"\nclasses = 4\nval_size = 200\n\
             epochs = 20\nbatch_size = 20\nlr = 0.05\nmomentum = 0.5\nhidden = \"2x128\"\n\
             [grid]\nrule = [\"fa\", \"bdfa\"]\nseed = [1, 2]\n",
            data.display()
        )
    };
    std::fs::write(tmp.path().join("a.toml"), sweep("a")).unwrap();
    std::fs::write(tmp.path().join("b.toml"), sweep("b")).unwrap();
    let t0 = std::time::Instant::now();
    let status = biprop(&["sweep", "a.toml", "--jobs", "2"], tmp.path())
        .wait()
        .unwrap();
    assert!(status.success());
    let full = t0.elapsed();
    // Kill b twice, early on, then let it finish.
    for fraction in [0.15, 0.25] {
        let mut child = biprop(&["sweep", "b.toml", "--jobs", "2"], tmp.path());
        std::thread::sleep(full.mul_f64(fraction));
        let _ = child.kill();
        let _ = child.wait();
    }
    let done = |out: &str| {
        std::fs::read_dir(tmp.path().join(out).join("runs"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("done").is_file())
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(
        done("b") < 4,
        "the kills came too late to interrupt anything"
    );
    let status = biprop(&["sweep", "b.toml", "--jobs", "2"], tmp.path())
        .wait()
        .unwrap();
    assert!(status.success());
    let ids = [
        "rule-fa_seed-1",
        "rule-fa_seed-2",
        "rule-bdfa_seed-1",
        "rule-bdfa_seed-2",
    ];
    for id in ids {
        let (ra, rb) = (
            tmp.path().join("a/runs").join(id),
            tmp.path().join("b/runs").join(id),
        );
        assert!(rb.join("done").is_file(), "{id} not finished");
        assert_eq!(
            metrics_without_times(&ra),
            metrics_without_times(&rb),
            "{id}"
        );
    }

    // The report over sweep a.
    let runs = report::collect(&tmp.path().join("a")).unwrap();
    assert_eq!(runs.len(), 4);
    let groups = report::group(&runs);
    assert_eq!(groups.len(), 2);
    for g in &groups {
        let mine: Vec<(f64, f64)> = [1, 2]
            .iter()
            .map(|seed| {
                let dir = tmp
                    .path()
                    .join("a/runs")
                    .join(format!("rule-{}_seed-{seed}", g.rule));
                let rows = metrics_without_times(&dir);
                let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
                let last: f64 = rows.last().unwrap()[col("test_error")].parse().unwrap();
                // Best validation epoch: lowest val_error, first one on ties.
                let best = rows[1..]
                    .iter()
                    .min_by(|x, y| {
                        let v = |r: &Vec<String>| r[col("val_error")].parse::<f64>().unwrap();
                        v(x).partial_cmp(&v(y)).unwrap()
                    })
                    .unwrap();
                (
                    100.0 * last,
                    100.0 * best[col("test_error")].parse::<f64>().unwrap(),
                )
            })
            .collect();
        let mean = (mine[0].0 + mine[1].0) / 2.0;
        let std = ((mine[0].0 - mean).powi(2) + (mine[1].0 - mean).powi(2)).sqrt(); // n - 1 = 1
        let (m, s) = report::mean_std(&g.last);
        assert!(
            (m - mean).abs() < 1e-9 && (s - std).abs() < 1e-9,
            "{}: {m} ± {s} vs {mean} ± {std}",
            g.rule
        );
        let best_mean = (mine[0].1 + mine[1].1) / 2.0;
        assert!((report::mean_std(&g.best_val).0 - best_mean).abs() < 1e-9);
        let md = report::markdown(&groups);
        assert!(md.contains(&format!("{mean:.2} ± {std:.2}")), "{md}");
    }

    // The CSV has one row per group with the same numbers.
    let csv = report::csv_text(&groups);
    assert_eq!(csv.lines().count(), 1 + groups.len(), "{csv}");
    for g in &groups {
        let (m, _) = report::mean_std(&g.last);
        let row = csv
            .lines()
            .find(|l| l.contains(&format!(",{},", g.rule)))
            .unwrap_or_else(|| panic!("no row for {} in {csv}", g.rule));
        assert!(row.contains(&m.to_string()), "{row}");
    }

    // Plots: a learning curve and an alignment curve per hidden layer, PNG and SVG.
    let out = tmp.path().join("plots");
    let files = biprop::experiment::plot::plot_dir(&tmp.path().join("a"), &out).unwrap();
    for name in [
        "test_error_idx_2x128.png",
        "test_error_idx_2x128.svg",
        "alignment_idx_2x128_layer0.png",
        "alignment_idx_2x128_layer1.svg",
    ] {
        let p = out.join(name);
        assert!(files.contains(&p), "{name} not written: {files:?}");
        assert!(
            std::fs::metadata(&p).unwrap().len() > 1000,
            "{name} is empty"
        );
    }
    let png = std::fs::read(out.join("test_error_idx_2x128.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let e = biprop::experiment::plot::plot_dir(&data, &out)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no runs"), "{e}");
}
