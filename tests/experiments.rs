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

    // Plots: a learning curve, an alignment curve per hidden layer and a
    // weight-norm curve per parametric layer, PNG and SVG.
    let out = tmp.path().join("plots");
    let files = biprop::experiment::plot::plot_dir(&tmp.path().join("a"), &out).unwrap();
    for name in [
        "test_error_idx_2x128.png",
        "test_error_idx_2x128.svg",
        "alignment_idx_2x128_layer0.png",
        "alignment_idx_2x128_layer1.svg",
        "weight_norm_idx_2x128_layer0.png",
        "weight_norm_idx_2x128_layer2.svg",
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

/// The runs of a sweep of a small BP network on 200 random images for
/// `epochs` epochs, seed 1, over the grid lines `grid`.
fn small_sweep(epochs: usize, grid: &str) -> Vec<report::RunResult> {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_idx(&data, 200, 50);
    let sweep = format!(
        "out = \"s\"\n[base]\ndataset = \"idx\"\ndata_dir = \"{}\"\nclasses = 4\nval_size = 50\n\
         epochs = {epochs}\nbatch_size = 20\nhidden = \"1x8\"\nthreads = 1\noutput = \"identity\"\n\
         [grid]\n{grid}\nseed = [1]\n",
        data.display()
    );
    std::fs::write(tmp.path().join("d.toml"), sweep).unwrap();
    let status = biprop(&["sweep", "d.toml"], tmp.path()).wait().unwrap();
    assert!(status.success());
    report::collect(&tmp.path().join("s")).unwrap()
}

/// Where every value of a group diverged, `--select` chooses none and says
/// so (it once chose the first).
#[test]
fn select_chooses_nothing_where_every_value_diverged() {
    let runs = small_sweep(2, "rule = [\"bp\"]\nlr = [1e30, 1e31]");
    let (kept, choices) = report::select(&runs, "lr", &[]).unwrap();
    assert_eq!(choices.len(), 1);
    assert!(choices[0]
        .scores
        .iter()
        .all(|(_, s)| s.is_some_and(f64::is_infinite)));
    assert_eq!(choices[0].chosen, None);
    assert!(kept.is_empty());
    let md = report::choices_markdown("lr", &choices);
    assert!(md.contains("none: every value diverged"), "{md}");
}

/// Where another setting is swept beside the selected one (a forward rate
/// beside a feedback rate), each group is chosen on its own and its row
/// names that setting: two rows of one rule must not read the same.
#[test]
fn select_names_each_group_by_the_other_swept_settings() {
    let runs = small_sweep(
        1,
        "rule = [\"bp\"]\nmomentum = [0.0, 0.5]\nlr = [0.003, 0.03]",
    );
    let (kept, choices) = report::select(&runs, "lr", &[]).unwrap();
    let groups: Vec<&str> = choices.iter().map(|c| c.group.as_str()).collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(
        groups.iter().any(|g| g.ends_with("momentum=0.0")),
        "{groups:?}"
    );
    assert!(
        groups.iter().any(|g| g.ends_with("momentum=0.5")),
        "{groups:?}"
    );
    assert_eq!(kept.len(), 2, "one rate for each momentum");
}

/// `report --select lr` keeps, for each rule, the learning rate of lowest
/// mean best validation error on the seeds every rate ran with (here seed 1:
/// seed 2 exists only at the chosen rate, added by a second sweep of grid
/// tables into the same folder); a diverging rate is never chosen.
#[test]
fn select_chooses_each_rules_rate_on_the_validation_split() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_idx(&data, 1000, 200);
    let base = format!(
        "out = \"s\"\n[base]\ndataset = \"idx\"\ndata_dir = \"{}\"\nclasses = 4\nval_size = 200\n\
         epochs = 3\nbatch_size = 20\nmomentum = 0.5\nhidden = \"1x32\"\nthreads = 1\noutput = \"identity\"\n",
        data.display()
    );
    let stage1 =
        format!("{base}[grid]\nrule = [\"bp\", \"fa\"]\nlr = [0.003, 0.03, 1e30]\nseed = [1]\n");
    std::fs::write(tmp.path().join("one.toml"), stage1).unwrap();
    let status = biprop(&["sweep", "one.toml"], tmp.path()).wait().unwrap();
    assert!(status.success());
    let runs = report::collect(&tmp.path().join("s")).unwrap();
    let (kept, choices) = report::select(&runs, "lr", &[]).unwrap();
    assert_eq!(choices.len(), 2);
    let mut chosen = Vec::new();
    for c in &choices {
        // The test's own argmin over the runs' metrics.
        let rule = c.group.split(' ').nth(2).unwrap();
        let best_of = |lr: &str| -> f64 {
            let dir = tmp
                .path()
                .join(format!("s/runs/lr-{lr}_rule-{rule}_seed-1"));
            if dir.join("done").is_file()
                && std::fs::read_to_string(dir.join("done"))
                    .unwrap()
                    .contains("diverged")
            {
                return f64::INFINITY;
            }
            let rows = metrics_without_times(&dir);
            let col = rows[0].iter().position(|h| h == "val_error").unwrap();
            rows[1..]
                .iter()
                .map(|r| r[col].parse::<f64>().unwrap())
                .fold(f64::INFINITY, f64::min)
        };
        let (a, b) = (best_of("0.003"), best_of("0.03"));
        assert!(
            best_of("1000000000000000000000000000000.0").is_infinite(),
            "1e30 should diverge"
        );
        assert_ne!(a, b, "the rates should differ in validation error");
        let want = if a < b { "0.003" } else { "0.03" };
        assert_eq!(c.chosen.as_deref(), Some(want), "{c:?}");
        assert_eq!(c.seeds, [1]);
        chosen.push((rule.to_string(), want));
    }
    assert_eq!(kept.len(), 2);
    // A rule still missing a rate that the other has is not decided yet.
    let partial: Vec<_> = runs
        .iter()
        .filter(|r| !r.dir.ends_with("lr-0.003_rule-fa_seed-1"))
        .cloned()
        .collect();
    let (_, waiting) = report::select(&partial, "lr", &[]).unwrap();
    let fa = waiting.iter().find(|c| c.group.ends_with(" fa")).unwrap();
    assert_eq!(fa.chosen, None, "{fa:?}");
    assert!(report::choices_markdown("lr", &waiting).contains("not run"));
    // Stage 2: seed 2 at the chosen rates only, as grid tables.
    let cases: Vec<String> = chosen
        .iter()
        .map(|(r, lr)| format!("{{ rule = \"{r}\", lr = {lr} }}"))
        .collect();
    let stage2 = format!("{base}[grid]\ntuned = [{}]\nseed = [2]\n", cases.join(", "));
    std::fs::write(tmp.path().join("two.toml"), stage2).unwrap();
    let status = biprop(&["sweep", "two.toml"], tmp.path()).wait().unwrap();
    assert!(status.success());
    let runs = report::collect(&tmp.path().join("s")).unwrap();
    assert_eq!(runs.len(), 8);
    let (kept, again) = report::select(&runs, "lr", &[]).unwrap();
    assert_eq!(kept.len(), 4, "both seeds of each chosen rate");
    for (c, (_, lr)) in again.iter().zip(&chosen) {
        assert_eq!(
            c.chosen.as_deref(),
            Some(*lr),
            "seed 2 does not move the choice"
        );
    }
    // One table per data set: lr does not split the kept runs into variants.
    let groups = report::group_ignoring(&kept, &["lr"]);
    assert_eq!(groups.len(), 2);
    assert!(groups
        .iter()
        .all(|g| g.seeds.len() == 2 && g.variant.is_empty()));
    let out = Command::new(env!("CARGO_BIN_EXE_biprop"))
        .args(["report", "s", "--select", "lr"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("lr chosen on the validation split"), "{text}");
    assert!(text.contains("diverged"), "{text}");
    assert!(text.contains("(n=2)"), "{text}");
    assert!(text.contains("alignment and time"), "{text}");
    let bad = Command::new(env!("CARGO_BIN_EXE_biprop"))
        .args(["report", "s", "--select", "lrr"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lrr"));
}

/// Every preset in experiments/ is a sweep whose every cell is a valid run,
/// so that a one-command reproduction cannot rot unnoticed.
/// The folder of the sweep presets.
fn experiments_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")
}

/// Every sweep preset in `experiments/`, parsed (a file that does not
/// parse fails the test that asks, naming it).
fn experiment_sweeps() -> Vec<(std::path::PathBuf, biprop::experiment::sweep::Sweep)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(experiments_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let sweep = biprop::experiment::sweep::Sweep::from_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push((path, sweep));
    }
    out
}

#[test]
fn every_preset_is_a_valid_sweep() {
    let dir = experiments_dir();
    let mut presets = 0;
    for (path, sweep) in experiment_sweeps() {
        let shown = path.display();
        let cells = sweep.cells().unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert!(!cells.is_empty(), "{shown} has no cell");
        for c in &cells {
            c.config
                .validate()
                .unwrap_or_else(|e| panic!("{shown}, cell {}: {e}", c.id));
        }
        presets += 1;
    }
    assert!(
        presets >= 10,
        "only {presets} presets found in {}",
        dir.display()
    );
}

/// A folder's runs do not say which rates are still to come: the sweep's
/// copy of its file (`sweep.toml`, left by a run and by `--export`) does,
/// and `report --select` waits for every cell of it. Without that file the
/// same runs choose among the rates run so far.
#[test]
fn select_waits_for_every_cell_of_the_sweep_the_runs_come_from() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_idx(&data, 200, 50);
    let sweep = |lrs: &str| {
        format!(
            "out = \"s\"\n[base]\ndataset = \"idx\"\ndata_dir = \"{}\"\nclasses = 4\nval_size = 50\n\
             epochs = 1\nbatch_size = 20\nhidden = \"1x8\"\nthreads = 1\noutput = \"identity\"\n\
             [grid]\nrule = [\"bp\"]\nlr = [{lrs}]\nseed = [1]\n",
            data.display()
        )
    };
    std::fs::write(tmp.path().join("a.toml"), sweep("0.003, 0.03")).unwrap();
    let status = biprop(&["sweep", "a.toml"], tmp.path()).wait().unwrap();
    assert!(status.success());
    assert!(
        tmp.path().join("s/sweep.toml").is_file(),
        "a run leaves its plan"
    );
    // A third rate added to the file, not run yet; its finished runs exported.
    std::fs::write(tmp.path().join("a.toml"), sweep("0.003, 0.03, 0.01")).unwrap();
    let status = biprop(&["sweep", "a.toml", "--export", "saved"], tmp.path())
        .wait()
        .unwrap();
    assert!(status.success());
    let report = |dir: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_biprop"))
            .args(["report", dir, "--select", "lr"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let waiting = report("saved");
    assert!(waiting.contains("lr=0.01"), "{waiting}");
    assert!(waiting.contains("waiting for runs"), "{waiting}");
    std::fs::remove_file(tmp.path().join("saved/sweep.toml")).unwrap();
    let unplanned = report("saved");
    assert!(!unplanned.contains("waiting for runs"), "{unplanned}");
    assert!(!unplanned.contains("lr=0.01"), "{unplanned}");
    // A second seed planned for both rates, not run: still waiting.
    let two_seeds = sweep("0.003, 0.03").replace("seed = [1]", "seed = [1, 2]");
    std::fs::write(tmp.path().join("a.toml"), two_seeds).unwrap();
    let status = biprop(&["sweep", "a.toml", "--export", "saved2"], tmp.path())
        .wait()
        .unwrap();
    assert!(status.success());
    assert!(report("saved2").contains("waiting for runs"));

    // Rates per rule (grid tables): each rule waits only for its own cells,
    // where without the plan a rate one rule ran stands in for the other's.
    let tuned = sweep("0.003")
        .replace("out = \"s\"", "out = \"t\"")
        .replace(
            "rule = [\"bp\"]\nlr = [0.003]",
            "tuned = [{ rule = \"bp\", lr = 0.003 }, { rule = \"bp\", lr = 0.03 }, \
             { rule = \"fa\", lr = 0.03 }]",
        );
    std::fs::write(tmp.path().join("t.toml"), tuned).unwrap();
    let status = biprop(&["sweep", "t.toml"], tmp.path()).wait().unwrap();
    assert!(status.success());
    let planned = report("t");
    assert!(!planned.contains("waiting for runs"), "{planned}");
    std::fs::remove_file(tmp.path().join("t/sweep.toml")).unwrap();
    assert!(report("t").contains("waiting for runs"));
}

/// The frozen-feedback control is BFA's cell of conv-cifar-feedback with
/// `feedback_lr = 0` and nothing else changed, seed for seed: what BFA
/// gains over it is its feedback learning's, and no other setting's.
#[test]
fn the_frozen_bfa_control_differs_from_bfa_in_feedback_lr_alone() {
    use biprop::experiment::sweep::Sweep;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let control = Sweep::from_file(&dir.join("conv-cifar-bfa-frozen.toml")).unwrap();
    let learned = Sweep::from_file(&dir.join("conv-cifar-feedback.toml")).unwrap();
    let bfa: Vec<_> = learned
        .cells()
        .unwrap()
        .into_iter()
        .filter(|c| c.config.rule == biprop::rules::RuleKind::Bfa)
        .collect();
    let cells = control.cells().unwrap();
    assert_eq!(cells.len(), bfa.len(), "a control for every BFA seed");
    for (c, b) in cells.iter().zip(&bfa) {
        assert_eq!(c.config.feedback_lr, Some(0.0));
        assert!(b.config.feedback_lr.unwrap() > 0.0);
        let thawed = biprop::config::RunConfig {
            feedback_lr: b.config.feedback_lr,
            ..c.config.clone()
        };
        assert_eq!(thawed, b.config, "{} against {}", c.id, b.id);
    }
}

/// Every preset's network fits its data set's images (a sweep parses
/// without data, so this is the check that a written-out `layers` is
/// buildable), and the network of biotorch's CIFAR-10 tables comes out as
/// its PyTorch model has it: 128 averaged features into dense 256.
#[test]
fn every_preset_network_fits_its_images() {
    use biprop::resources::DataShape;
    let dir = experiments_dir();
    for (path, sweep) in experiment_sweeps() {
        for c in sweep.cells().unwrap() {
            let Ok(data) = DataShape::of(&c.config) else {
                continue; // an idx data set's shape needs its files
            };
            c.config
                .network_plan(data.image, data.classes)
                .unwrap_or_else(|e| panic!("{}, cell {}: {e}", path.display(), c.id));
        }
    }
    let net =
        biprop::experiment::sweep::Sweep::from_file(&dir.join("conv-cifar-biotorch-net.toml"))
            .unwrap()
            .cell(0)
            .unwrap()
            .config;
    let data = DataShape::of(&net).unwrap();
    let plan = net.network_plan(data.image, data.classes).unwrap();
    let widths: Vec<(usize, usize)> = plan
        .iter()
        .map(|(kind, _, _)| (kind.in_shape().len(), kind.out_shape().len()))
        .collect();
    // conv 3x32x32 -> 32x30x30, (pool) conv 32x15x15 -> 64x13x13, (pool,
    // floored) conv 64x6x6 -> 128x4x4, (average) dense 128 -> 256 -> 10.
    assert_eq!(
        widths,
        [
            (3 * 32 * 32, 32 * 30 * 30),
            (32 * 15 * 15, 64 * 13 * 13),
            (64 * 6 * 6, 128 * 4 * 4),
            (128, 256),
            (256, 10)
        ]
    );
}
