//! The command line: bad input gets one clear line and exit code 1 or 2, no panic.

mod common;

use common::{assert_clean_failure, biprop, stderr, subset_flags};
use std::path::Path;

#[test]
fn unknown_rule() {
    let dir = tempfile::tempdir().unwrap();
    let o = biprop(&["train", "--rule", "magic"], dir.path());
    assert_clean_failure(&o, "invalid value 'magic'");
    assert!(stderr(&o).contains("bp"), "should list the rules");
}

#[test]
fn malformed_hidden() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["8a0", "2x", "0", "800,,800"] {
        let o = biprop(&["train", "--hidden", bad], dir.path());
        assert_clean_failure(&o, "--hidden");
    }
}

#[test]
fn bad_config_file_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, "epochs = 3\nlearning_rate = 0.1\n").unwrap();
    let o = biprop(&["train", "--config", cfg.to_str().unwrap()], dir.path());
    assert_clean_failure(&o, "learning_rate");
    assert!(stderr(&o).contains("run.toml"));
    let o = biprop(&["train", "--config", "nope.toml"], dir.path());
    assert_clean_failure(&o, "nope.toml");
}

#[test]
fn missing_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let o = biprop(
        &["train", "--dataset", "idx", "--data-dir", "no-such-dir"],
        dir.path(),
    );
    assert_clean_failure(&o, "not found in no-such-dir");
    let o = biprop(&["train", "--dataset", "idx"], dir.path());
    assert_clean_failure(&o, "--data-dir");
}

#[test]
fn zero_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let o = biprop(&["train", "--batch-size", "0"], dir.path());
    assert_clean_failure(&o, "batch-size");
}

/// Writes `data/`, a tiny IDX data set: 40 training and 9 test images of 4x4
/// pixels, 3 classes.
fn write_tiny_idx(root: &Path) {
    use biprop::data::idx::encode_idx;
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    let img = |n: usize| {
        let pixels: Vec<u8> = (0..n * 16).map(|i| (i * 37 % 256) as u8).collect();
        encode_idx(&[n, 4, 4], &pixels)
    };
    let lab = |n: usize| encode_idx(&[n], &(0..n).map(|i| (i % 3) as u8).collect::<Vec<_>>());
    std::fs::write(data.join("train-images-idx3-ubyte"), img(40)).unwrap();
    std::fs::write(data.join("train-labels-idx1-ubyte"), lab(40)).unwrap();
    std::fs::write(data.join("t10k-images-idx3-ubyte"), img(9)).unwrap();
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), lab(9)).unwrap();
}

/// `biprop train` arguments for the set of `write_tiny_idx` (3 classes).
fn tiny_train<'a>(hidden: &'a str, epochs: &'a str, rule: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--dataset",
        "idx",
        "--data-dir",
        "data",
        "--classes",
        "3",
        "--val-size",
        "8",
        "--hidden",
        hidden,
        "--epochs",
        epochs,
        "--rule",
        rule,
        "--out",
        out,
        "-q",
    ]
}

/// A small IDX set, trained end to end through the binary: the run directory
/// has its files, and a second run refuses to overwrite it.
#[test]
fn train_writes_a_run_directory_and_protects_it() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_idx(dir.path());
    let args = tiny_train("2x6", "2", "fa", "run");
    let o = biprop(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "config.toml",
        "metrics.csv",
        "metrics.jsonl",
        "checkpoint.safetensors",
    ] {
        assert!(dir.path().join("run").join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(dir.path().join("run/metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let o = biprop(&args, dir.path());
    assert_clean_failure(&o, "already holds a run");
    let mut forced = args.to_vec();
    forced.extend(["--force", "--init-from", "run/checkpoint.safetensors"]);
    let o = biprop(&forced, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // A checkpoint of another architecture does not fit.
    let mut other = tiny_train("2x5", "2", "fa", "run2");
    other.extend(["--init-from", "run/checkpoint.safetensors"]);
    let o = biprop(&other, dir.path());
    assert_clean_failure(
        &o,
        "forward.0.weight has shape [6, 16], the network needs [5, 16]",
    );
}

/// A convolutional BFA run (its feedback network of transposed
/// convolutions) generates images of the input's shape from the labels.
#[test]
fn generate_renders_a_convolutional_bfa_feedback_network() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_idx(dir.path());
    let mut args = tiny_train("6", "1", "bfa", "cbfa");
    let at = args.iter().position(|a| *a == "--hidden").unwrap();
    args.splice(
        at..at + 2,
        [
            "--layers",
            "conv 2 3x3 pad 1, relu, maxpool 2, flatten, dense 3",
        ],
    );
    let o = biprop(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = biprop(&["generate", "cbfa", "--scale", "2"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let b = std::fs::read(dir.path().join("cbfa/generated.png")).unwrap();
    let be = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    // 3 tiles of 4x4 pixels, as generate_renders_bfa_feedback_images lays them out.
    assert_eq!((be(16), be(20)), (3 * (8 + 8) + 8, 8 + 18 + 8 + 8));

    // A standardized run: generate reads its input statistics from the
    // checkpoint (to turn its images back into pixels), and reconstructs
    // standardized test images.
    let mut std_args = args.clone();
    let at = std_args.iter().position(|a| *a == "cbfa").unwrap();
    std_args[at] = "nbfa";
    std_args.retain(|a| *a != "-q");
    std_args.extend(["--normalize", "channel", "--bfa-output", "identity"]);
    let o = biprop(&std_args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("inputs standardized per channel"));
    for extra in [&[][..], &["--reconstruct", "2", "--data-dir", "data"][..]] {
        let mut g = vec!["generate", "nbfa"];
        g.extend(extra);
        let o = biprop(&g, dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(dir.path().join("nbfa/reconstructions.png").exists());
}

/// `biprop generate` renders a BFA run's feedback network as a labelled PNG
/// grid (Figure 6), mixtures and reconstructions too, and refuses other rules.
#[test]
fn generate_renders_bfa_feedback_images() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_idx(dir.path());
    for rule in ["bfa", "fa"] {
        let args = tiny_train("6", "1", rule, rule);
        assert!(biprop(&args, dir.path()).status.success());
    }
    let png_size = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        assert_eq!(
            &b[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is not a PNG",
            p.display()
        );
        let be = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        (be(16), be(20))
    };
    let o = biprop(&["generate", "bfa", "--scale", "2"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // 3 tiles of 4x4 pixels at scale 2 with 8-pixel padding and an 18-pixel caption row.
    assert_eq!(
        png_size(&dir.path().join("bfa/generated.png")),
        (3 * (8 + 8) + 8, 8 + 18 + 8 + 8)
    );
    let o = biprop(
        &[
            "generate",
            "bfa",
            "--mix",
            "0:0.5,2:0.5",
            "--mix",
            "1",
            "-o",
            "mix.png",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png_size(&dir.path().join("mix.png")).0, 2 * (16 + 8) + 8); // default scale 4
    let o = biprop(
        &[
            "generate",
            "bfa",
            "--reconstruct",
            "2",
            "--data-dir",
            "data",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        png_size(&dir.path().join("bfa/reconstructions.png")).0,
        4 * (16 + 8) + 8
    );
    assert_clean_failure(&biprop(&["generate", "fa"], dir.path()), "only BFA");
    assert_clean_failure(
        &biprop(&["generate", "bfa", "--mix", "7:1"], dir.path()),
        "label mixture",
    );
    assert_clean_failure(&biprop(&["generate", "nowhere"], dir.path()), "nowhere");
}

#[test]
fn report_and_plot_say_when_there_is_no_run() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["report", "plot"] {
        let o = biprop(&[cmd, "."], dir.path());
        assert_clean_failure(&o, "no runs (config.toml + metrics.csv) under");
    }
}

/// A diverging run exits non-zero and names the epoch and the loss; a run's
/// config.toml records the flags given.
#[test]
fn divergence_is_an_error_and_flags_reach_config_toml() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_idx(&data, 200, 50);
    let data = data.to_str().unwrap();
    let base = [
        "train",
        "--dataset",
        "idx",
        "--classes",
        "4",
        "--data-dir",
        data,
        "--val-size",
        "40",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--output",
        "identity",
        "-q",
    ];
    let mut diverge = base.to_vec();
    diverge.extend(["--lr", "1e30", "--out", "div"]);
    let o = biprop(&diverge, dir.path());
    assert_clean_failure(&o, "training diverged in epoch");
    assert!(stderr(&o).contains("train loss"), "{}", stderr(&o));
    let mut ok = base.to_vec();
    ok.extend([
        "--rule",
        "bdfa",
        "--bdfa-update",
        "reference",
        "--bdfa-target",
        "mixed",
        "--bdfa-alpha",
        "0.5",
        "--feedback-lr",
        "0.02",
        "--feedback-scale",
        "receiver",
        "--out",
        "ok",
    ]);
    let o = biprop(&ok, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = std::fs::read_to_string(dir.path().join("ok/config.toml")).unwrap();
    for line in [
        "bdfa_update = \"reference\"",
        "bdfa_target = \"mixed\"",
        "bdfa_alpha = 0.5",
        "feedback_lr = 0.02",
        "feedback_scale = \"receiver\"",
    ] {
        assert!(cfg.contains(line), "{line} not in config.toml:\n{cfg}");
    }
}

/// `compare` trains every rule, prints one row each, writes its plots, reuses
/// a finished comparison, and refuses to mix settings without --force.
#[test]
fn compare_prints_every_rule_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::mnist_subset();
    let mut args = vec!["compare"];
    args.extend(subset_flags(data.to_str().unwrap(), "1000", "1000"));
    args.extend(["--hidden", "32", "--epochs", "1", "-q"]);
    let o = biprop(&args, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for rule in ["BP", "FA", "DFA", "BFA", "BDFA"] {
        assert!(
            out.contains(&format!("| {rule} |")),
            "{rule} missing:\n{out}"
        );
    }
    assert!(dir
        .path()
        .join("runs/compare/plots/test_error_idx_1x32.png")
        .is_file());
    let again = biprop(&args, dir.path());
    assert!(again.status.success(), "{}", stderr(&again));
    // More epochs continue the finished runs; they are not reported as done.
    let mut longer = args.to_vec();
    let at = longer.len() - 2;
    longer[at] = "2";
    assert!(biprop(&longer, dir.path()).status.success());
    let csv =
        std::fs::read_to_string(dir.path().join("runs/compare/runs/rule-bfa/metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // Other settings are refused until --force.
    let mut other = longer.clone();
    other.extend(["--lr", "0.2"]);
    assert_clean_failure(&biprop(&other, dir.path()), "--force");
    other.push("--force");
    assert!(biprop(&other, dir.path()).status.success());
    assert_clean_failure(&biprop(&["compare", "--rule", "fa"], dir.path()), "--rules");
}

/// `compare --net lenet-mnist` runs the layers protocol (softmax-CE, Adam,
/// Xavier), not the MLP's, and an MLP comparison keeps its own: the
/// protocol reaches each run's saved settings, and the closing hint names
/// the benchmark each stands in for.
#[test]
fn compare_a_described_network_on_its_own_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::mnist_subset();
    let mut common_args = vec!["compare"];
    common_args.extend(subset_flags(data.to_str().unwrap(), "200", "300"));
    common_args.extend(["--epochs", "1", "--rules", "bp,bfa", "-q"]);
    let mut conv = common_args.to_vec();
    conv.extend(["--net", "lenet-mnist", "-o", "conv"]);
    let o = biprop(&conv, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("| BP |") && out.contains("| BFA |"), "{out}");
    assert!(out.contains("biotorch's LeNet benchmark"), "{out}");
    let saved = std::fs::read_to_string(dir.path().join("conv/runs/rule-bfa/config.toml")).unwrap();
    for line in [
        "net = \"lenet-mnist\"",
        "output = \"softmax-ce\"",
        "optimizer = \"adam\"",
        "init = \"xavier\"",
    ] {
        assert!(saved.contains(line), "{line} not in config.toml:\n{saved}");
    }
    assert!(!saved.contains("hidden ="), "{saved}");
    let mut mlp = common_args.to_vec();
    mlp.extend(["--hidden", "16", "-o", "mlp"]);
    let o = biprop(&mlp, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("not the paper's"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let saved = std::fs::read_to_string(dir.path().join("mlp/runs/rule-bp/config.toml")).unwrap();
    assert!(saved.contains("output = \"sigmoid-bce\""), "{saved}");
    assert!(saved.contains("optimizer = \"sgd\""), "{saved}");
}

/// Every --slurm option lands in the script, which lists the unfinished cells.
#[test]
fn sweep_slurm_options_reach_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[base]\nepochs = 2\n[grid]\nrule = [\"bp\", \"fa\"]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = biprop(
        &[
            "sweep",
            f,
            "--slurm",
            "--partition",
            "p1",
            "--time",
            "1:30:00",
            "--cpus-per-task",
            "2",
            "--mem",
            "3G",
            "--array-throttle",
            "4",
            "--job-name",
            "jn",
            "--sbatch=--account=lab",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let script = std::fs::read_to_string(dir.path().join("sweeps/s/slurm/array.sbatch")).unwrap();
    for want in [
        "--partition=p1",
        "--time=1:30:00",
        "--cpus-per-task=2",
        "--mem=3G",
        "--array=0-1%4",
        "--job-name=jn",
        "#SBATCH --account=lab",
    ] {
        assert!(script.contains(want), "{want} not in\n{script}");
    }
    assert_clean_failure(
        &biprop(&["sweep", f, "--partition", "p"], dir.path()),
        "--slurm",
    );
}

/// The commands: each refused with one line and exit code 1, no
/// backtrace, before anything is allocated or downloaded.
#[test]
fn runs_beyond_the_machine_get_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let huge_conv = "conv 1000000000 1000x1000 pad 100000, flatten, dense 10";
    let cases: [(&[&str], &str); 6] = [
        (
            &["train", "--hidden", "1000000000"],
            "layer 1 (dense 1000000000)",
        ),
        (
            &["train", "--hidden", "200000,200000"],
            "this run needs about",
        ),
        (&["train", "--threads", "100000"], "threads = 100000"),
        (&["train", "--threads", "1025"], "at most 1024"),
        (&["train", "--layers", huge_conv], "its sizes are too large"),
        (
            &[
                "train",
                "--rule",
                "bfa",
                "--layers",
                "conv 64 3x3, relu, flatten, dense 200000000, relu, dense 10",
            ],
            "this run needs about",
        ),
    ];
    for (args, want) in cases {
        let o = biprop(args, dir.path());
        assert_clean_failure(&o, want);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {e}");
        assert_eq!(e.lines().count(), 1, "{args:?}: one line, got {e}");
        assert!(e.starts_with("error: "), "{e}");
        assert!(!e.contains("backtrace"), "{e}");
        assert!(
            !dir.path().join("cache").exists(),
            "{args:?}: nothing downloaded"
        );
        assert!(!dir.path().join("runs").exists(), "{args:?}: no run folder");
    }
    // More threads than 4 x the cores: refused with the machine's bound.
    let over = (4 * std::thread::available_parallelism().map_or(1, |n| n.get()) + 1).to_string();
    let o = biprop(&["train", "--threads", &over], dir.path());
    assert_clean_failure(&o, "more than this machine can use");
    let o = biprop(&["bench", "--threads", "100000"], dir.path());
    assert_clean_failure(&o, "threads = 100000");
    let o = biprop(
        &["bench", "--hidden", "1000000000", "--threads", "1"],
        dir.path(),
    );
    assert_clean_failure(&o, "this run needs about");
}

/// `--dry-run` tells memory, FLOPs and time, and loads and trains nothing.
#[test]
fn dry_run_tells_memory_flops_and_time_and_trains_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = biprop(
        &["train", "--dry-run", "--net", "lenet-mnist", "-o", "out"],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    for want in [
        "memory: about",
        "data set",
        "im2col patches",
        "largest:",
        "MFLOP a training sample",
        "an epoch (50,000 trained, 20,000 evaluated)",
        "time: about",
        "GFLOP/s",
        // A convolutional network's rate is its own steps', not the GEMM's.
        "9 training steps of this network timed on random images",
        "nothing trained",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    assert!(!dir.path().join("out").exists(), "no run folder");
    let o = biprop(
        &["train", "--dry-run", "--hidden", "64", "-o", "out"],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    assert!(
        out.contains("this machine's GEMM on 128 x 784 x 64"),
        "{out}"
    );
    assert!(!dir.path().join("cache").exists(), "no data loaded");
    let o = biprop(
        &["train", "--dry-run", "--hidden", "1000000000"],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_clean_failure(&o, "this run needs about");
    assert!(out.contains("does NOT fit"), "{out}");
    assert!(out.contains("TB"), "{out}");

    let sweep = dir.path().join("s.toml");
    std::fs::write(
        &sweep,
        "[base]\nepochs = 3\n[grid]\nrule = [\"bp\", \"bfa\"]\nseed = [1, 2]\n",
    )
    .unwrap();
    let o = biprop(&["sweep", "s.toml", "--dry-run", "--jobs", "1"], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    // The seeds share a line; the rules do not.
    assert_eq!(out.matches("cells ").count(), 2, "{out}");
    assert!(out.contains("bp 1x800 on mnist"), "{out}");
    assert!(out.contains("bfa 1x800 on mnist"), "{out}");
    assert!(out.contains("for 3 epochs"), "{out}");
    assert!(out.contains("all 4 cell(s)"), "{out}");
    assert!(!dir.path().join("sweeps").exists(), "nothing run");
}

/// A tiny-data sweep in a fresh folder, `grid` its grid table's lines, with
/// the cells of `tasks` run to the end.
fn tiny_sweep(grid: &str, tasks: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_idx(dir.path());
    std::fs::write(
        dir.path().join("s.toml"),
        format!(
            "[base]\ndataset = \"idx\"\ndata_dir = \"data\"\nclasses = 3\nval_size = 8\n\
             hidden = \"4\"\nepochs = 3\n[grid]\n{grid}\n"
        ),
    )
    .unwrap();
    for t in tasks {
        let o = biprop(&["sweep", "s.toml", "--task", t, "-q"], dir.path());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    dir
}

/// What `sweep s.toml --list` prints in `dir`, and a finder of the line of
/// a cell id in it.
fn sweep_list(dir: &Path) -> (String, impl Fn(&str) -> String) {
    let o = biprop(&["sweep", "s.toml", "--list"], dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let all = out.clone();
    let line = move |id: &str| {
        all.lines()
            .find(|l| l.ends_with(id))
            .unwrap_or_else(|| panic!("no line for {id} in\n{all}"))
            .to_string()
    };
    (out, line)
}

/// `sweep --list` says of each cell whether it is done, diverged, started
/// (with the epochs it has recorded, where it resumes) or not started, and
/// counts them.
#[test]
fn sweep_list_tells_how_far_each_cell_got() {
    let dir = tiny_sweep("rule = [\"bp\", \"fa\", \"dfa\"]", &["0", "1"]);
    // Cell 1 as a run stopped after its first epoch leaves it.
    let run = dir.path().join("sweeps/s/runs/rule-fa");
    std::fs::remove_file(run.join("done")).unwrap();
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let kept: String = csv.split_inclusive('\n').take(2).collect();
    std::fs::write(run.join("metrics.csv"), kept).unwrap();

    let (out, line) = sweep_list(dir.path());
    assert!(line("rule-bp").contains(" done "), "{out}");
    // A started cell also says how long it has left at its recorded pace.
    assert!(line("rule-fa").contains(" 1/3 epochs, about "), "{out}");
    assert!(line("rule-fa").contains(" s left "), "{out}");
    assert!(line("rule-dfa").contains(" pending "), "{out}");
    assert!(
        out.contains("3 cells: 1 done, 0 diverged, 1 started, 1 not started"),
        "{out}"
    );
}

/// A pending cell that another seed of has run gets that run's pace; the
/// others are counted apart.
#[test]
fn sweep_list_estimates_a_pending_cell_from_another_seed_of_it() {
    let dir = tiny_sweep("rule = [\"bp\", \"fa\"]\nseed = [1, 2]", &["0"]);
    let (out, line) = sweep_list(dir.path());
    assert!(line("rule-bp_seed-1").contains(" done "), "{out}");
    // Seed 2 of BP goes at seed 1's pace; no seed of FA has run.
    assert!(line("rule-bp_seed-2").contains(" pending, about "), "{out}");
    assert!(line("rule-bp_seed-2").contains(" s left "), "{out}");
    for id in ["rule-fa_seed-1", "rule-fa_seed-2"] {
        assert!(line(id).contains(" pending "), "{out}");
        assert!(!line(id).contains("about"), "{out}");
    }
    assert!(out.contains("left: about "), "{out}");
    assert!(
        out.contains(" for 1 cell(s), at the pace recorded so far"),
        "{out}"
    );
    assert!(out.contains("no estimate for 2 cell(s)"), "{out}");
}

/// A sweep killed while writing its plan leaves the plan's temp file in its
/// folder; the next sweep on that folder removes it (the kill soak of
/// docs/reliability.md lands there only now and then).
#[test]
fn a_sweep_removes_the_temp_file_of_a_plan_whose_writer_was_killed() {
    let dir = tiny_sweep("rule = [\"bp\"]", &[]);
    let out = dir.path().join("sweeps/s");
    std::fs::create_dir_all(&out).unwrap();
    let left = out.join(".sweep.toml.tmp1");
    std::fs::write(&left, "# cut short").unwrap();
    let o = biprop(&["sweep", "s.toml", "-q"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !left.exists(),
        "the killed writer's temp file is still there"
    );
    assert!(out.join("sweep.toml").is_file());
}
