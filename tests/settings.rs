//! Every training setting reaches the run: set away from its default, each
//! changes the trained weights (or, for the settings promised not to, leaves
//! them bitwise alone), and a diverging sweep cell is recorded, not fatal.

mod common;

use biprop::config::{format_hidden, parse_hidden, RunConfig};
use biprop::data::Splits;
use biprop::rules::{FeedbackScale, RuleKind};
use biprop::run::{self, RunOptions};
use common::synthetic;

fn splits() -> Splits {
    Splits::new(synthetic(300, 16, 4, 1), synthetic(60, 16, 4, 2), 40).unwrap()
}

/// Every weight a run ends with, forward and feedback, by name.
fn trained(settings: &str) -> Vec<(String, Vec<f32>)> {
    let base = "epochs = 2\nbatch_size = 32\nlr = 0.3\nthreads = 1\nalignment = false\n";
    // An MLP unless the settings describe their own network.
    let mlp = if settings.contains("layers = ") {
        ""
    } else {
        "hidden = [12, 10]\n"
    };
    let base = format!("{mlp}{base}");
    let layers = [base.parse().unwrap(), settings.parse().unwrap()];
    let cfg = RunConfig::from_layers(&layers).unwrap_or_else(|e| panic!("{settings}: {e}"));
    let s = run::run(&cfg, &splits(), &RunOptions::default()).unwrap();
    let t = &s.trainer;
    t.net
        .named_tensors("forward")
        .into_iter()
        .chain(t.rule.feedback_tensors())
        .map(|t| (t.name, t.data.to_vec()))
        .collect()
}

/// (context, setting): the setting, added to its context, must change what is
/// trained. The context selects the rule (and optimizer) that uses it.
const CHANGES: &[(&str, &str)] = &[
    ("", "rule = \"fa\""),
    ("", "hidden = [12]"),
    ("", "activation = \"relu\""),
    ("", "output = \"softmax-ce\""),
    ("", "batch_size = 20"),
    ("", "lr = 0.1"),
    ("", "momentum = 0.5"),
    ("", "weight_decay = 0.01"),
    ("", "seed = 2"),
    ("", "shuffle = false"),
    ("optimizer = \"adam\"\nlr = 0.01\n", "beta1 = 0.5"),
    ("optimizer = \"adam\"\nlr = 0.01\n", "beta2 = 0.9"),
    ("optimizer = \"adam\"\nlr = 0.01\n", "eps = 0.01"),
    ("", "optimizer = \"adam\""),
    ("rule = \"fa\"\n", "init = \"reference\""),
    ("rule = \"fa\"\n", "feedback_scale = \"receiver\""),
    ("rule = \"dfa\"\n", "init = \"reference\""),
    ("rule = \"dfa\"\n", "feedback_scale = \"receiver\""),
    ("rule = \"bdfa\"\n", "feedback_scale = \"receiver\""),
    ("rule = \"bdfa\"\n", "init = \"reference\""),
    ("rule = \"bfa\"\n", "feedback_lr = 0.05"),
    ("rule = \"bfa\"\n", "feedback_optimizer = \"adam\""),
    (
        "rule = \"bfa\"\nmomentum = 0.5\n",
        "feedback_momentum = 0.0",
    ),
    ("rule = \"bfa\"\n", "bfa_output = \"identity\""),
    ("rule = \"bfa\"\n", "bfa_feedback_scale = \"receiver\""),
    ("rule = \"bdfa\"\n", "feedback_lr = 0.05"),
    ("rule = \"bdfa\"\n", "feedback_optimizer = \"adam\""),
    (
        "rule = \"bdfa\"\nmomentum = 0.5\n",
        "feedback_momentum = 0.0",
    ),
    ("rule = \"bdfa\"\n", "bdfa_update = \"reference\""),
    ("rule = \"bdfa\"\n", "bdfa_target = \"mixed\""),
    (
        "rule = \"bdfa\"\nbdfa_target = \"mixed\"\n",
        "bdfa_alpha = 0.5",
    ),
    (
        "rule = \"bdfa\"\nbdfa_target = \"reference\"\n",
        "bdfa_alpha = 0.5",
    ),
    ("rule = \"kp\"\n", "kp_decay = 0.05"),
    ("rule = \"dkp\"\n", "kp_decay = 0.05"),
    ("rule = \"dkp\"\n", "feedback_lr = 0.05"),
    ("rule = \"dkp\"\n", "feedback_optimizer = \"adam\""),
    (
        "rule = \"dkp\"\nmomentum = 0.5\n",
        "feedback_momentum = 0.0",
    ),
    ("rule = \"kp\"\n", "feedback_scale = \"receiver\""),
    ("rule = \"usf\"\n", "usf_scale = \"xavier\""),
    (
        "rule = \"dfa\"\nlayers = \"conv 2 1x3, relu, conv 3 1x3, relu, flatten, dense 4\"\n",
        "dfa_projection = \"kernel\"",
    ),
    ("rule = \"frsf\"\n", "feedback_scale = \"receiver\""),
    ("rule = \"brsf\"\n", "feedback_scale = \"receiver\""),
    ("rule = \"drtp\"\n", "feedback_scale = \"receiver\""),
    ("rule = \"dkp\"\n", "feedback_scale = \"receiver\""),
];

#[test]
fn every_training_setting_changes_the_trained_weights() {
    for (context, setting) in CHANGES {
        let before = trained(context);
        let after = trained(&format!("{context}{setting}\n"));
        assert_ne!(
            before, after,
            "{setting} (after {context:?}) changed nothing"
        );
    }
}

/// The schedule reaches every optimizer, forward and feedback: after a
/// milestone at epoch 1 with a factor of 1e-30, a second epoch moves no
/// weight by as much as a bit (every step scaled far below a float's
/// precision), for each rule with weights of its own to learn, so the
/// two-epoch run ends where the one-epoch run did. With a factor of 0.5 it
/// does not: the test can fail.
#[test]
fn the_lr_schedule_scales_every_rate_from_its_milestone() {
    for rule in ["bp", "bfa", "bdfa", "kp", "dkp"] {
        let rule = format!("rule = \"{rule}\"\nmomentum = 0.5\n");
        let one = trained(&format!("{rule}epochs = 1\n"));
        let frozen = trained(&format!("{rule}lr_milestones = [1]\nlr_gamma = 1e-30\n"));
        assert!(one == frozen, "{rule}: epoch 2 trained after the milestone");
        let halved = trained(&format!("{rule}lr_milestones = [1]\nlr_gamma = 0.5\n"));
        assert!(
            one != halved,
            "{rule}: epoch 2 did not train at half the rate"
        );
    }
}

/// The settings that must not change the weights: threads (bitwise the same
/// for every count) and the alignment probe (it measures, never trains).
#[test]
fn threads_and_alignment_leave_the_weights_alone() {
    for rule in ["bp", "bfa", "bdfa"] {
        let base = format!("rule = \"{rule}\"\n");
        let before = trained(&base);
        assert_eq!(before, trained(&format!("{base}threads = 2\n")), "{rule}");
        assert_eq!(
            before,
            trained(&format!("{base}alignment = true\n")),
            "{rule}"
        );
    }
}

/// The data settings reach the data the run trains on.
#[test]
fn data_settings_shape_the_splits() {
    let dir = tempfile::tempdir().unwrap();
    common::write_idx(dir.path(), 300, 50);
    let base: toml::Table = format!(
        "dataset = \"idx\"\nclasses = 4\ndata_dir = {:?}\n",
        dir.path().to_str().unwrap()
    )
    .parse()
    .unwrap();
    let load = |extra: &str| {
        let cfg = RunConfig::from_layers(&[base.clone(), extra.parse().unwrap()]).unwrap();
        run::load_data(&cfg)
    };
    let s = load("val_size = 100").unwrap();
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (200, 100, 50));
    let s = load("val_size = 100\ntrain_limit = 120").unwrap();
    assert_eq!((s.train.len(), s.val.len()), (120, 100));
    // classes bounds the labels: 4-class labels do not fit 3 classes.
    assert!(load("classes = 3").is_err());
    // data_dir is where the files are read.
    let empty = tempfile::tempdir().unwrap();
    let e = load(&format!("data_dir = {:?}", empty.path().to_str().unwrap()));
    assert!(e.is_err());
}

/// A sweep whose grid holds one learning rate that diverges finishes: the
/// cell is recorded as diverged (epoch and loss), the others train, and the
/// report marks it.
#[test]
fn a_diverging_cell_does_not_stop_the_sweep() {
    use biprop::experiment::{report, sweep};
    let dir = tempfile::tempdir().unwrap();
    // An idx data set on disk, as a sweep loads its data from files.
    let data = dir.path().join("data");
    common::write_idx(&data, 200, 50);
    let text = format!(
        "[base]\ndataset = \"idx\"\nclasses = 4\ndata_dir = {:?}\nval_size = 40\nepochs = 3\n\
         hidden = [8]\nalignment = false\noutput = \"identity\"\n[grid]\nlr = [0.1, 1e30]\n",
        data.to_str().unwrap()
    );
    let text_of_sweep = text;
    let s = sweep::Sweep::from_toml_str(&text_of_sweep, dir.path().join("out")).unwrap();
    let opts = sweep::SweepOptions {
        jobs: 2,
        task: None,
        progress: false,
    };
    assert_eq!(sweep::run_sweep(&s, &opts).unwrap().ran, 2);
    let cells = s.cells().unwrap();
    assert_eq!(
        s.status(&cells[0]).unwrap(),
        Some(sweep::CellStatus::Finished)
    );
    match s.status(&cells[1]).unwrap() {
        Some(sweep::CellStatus::Diverged { epoch, loss }) => {
            assert!((1..=3).contains(&epoch), "{epoch}");
            assert!(loss.parse::<f64>().is_ok_and(|l| !l.is_finite()), "{loss}");
        }
        other => panic!("cell 1: {other:?}"),
    }
    assert!(
        s.pending(None).unwrap().is_empty(),
        "both cells are finished"
    );
    assert_eq!(
        sweep::run_sweep(&s, &opts).unwrap(),
        sweep::SweepCounts::default(),
        "nothing reruns"
    );
    let runs = report::collect(&s.out).unwrap();
    let groups = report::group(&runs);
    let text = report::markdown(&groups);
    // Each learning rate is its own table (a variant), never averaged with
    // the other; the diverged cell is marked, not missing.
    assert!(text.contains("### IDX (lr=0.1)"), "report:\n{text}");
    assert!(text.contains("(n=1) |"), "report:\n{text}");
    assert!(text.contains("### IDX (lr=1e30)"), "report:\n{text}");
    assert!(text.contains("diverged (all 1)"), "report:\n{text}");

    // Plots keep the variants apart too.
    let plots = biprop::experiment::plot::plot_dir(&s.out, &dir.path().join("plots")).unwrap();
    let names: Vec<String> = plots
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"test_error_idx_1x8_lr-0.1.png".to_string()),
        "{names:?}"
    );

    // Its results, exported without checkpoints, seed a fresh sweep folder:
    // nothing runs twice, and a saved run of other settings is refused.
    let saved = dir.path().join("saved");
    assert_eq!(s.export_finished(&saved).unwrap(), 2);
    let files: Vec<_> = std::fs::read_dir(saved.join(&cells[0].id))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!files.iter().any(|f| f.contains("checkpoint")), "{files:?}");
    let fresh = sweep::Sweep::from_toml_str(&text_of_sweep, dir.path().join("fresh")).unwrap();
    assert_eq!(fresh.pending(None).unwrap().len(), 2);
    assert_eq!(fresh.import_finished(&saved).unwrap(), 2);
    assert!(fresh.pending(None).unwrap().is_empty());
    assert_eq!(
        fresh.status(&cells[1]).unwrap(),
        s.status(&cells[1]).unwrap()
    );
    // A folder that is not there is an error, not a silent import of nothing.
    let e = fresh
        .import_finished(&dir.path().join("no-such-folder"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no-such-folder") && e.contains("no such folder"),
        "{e}"
    );
    let longer = text_of_sweep.replace("epochs = 3", "epochs = 4");
    let other = sweep::Sweep::from_toml_str(&longer, dir.path().join("other")).unwrap();
    let e = other.import_finished(&saved).unwrap_err().to_string();
    assert!(
        e.contains("settings differ") && e.contains("config.toml"),
        "{e}"
    );
}

/// A cell another process holds (its lock) is left alone: a sweep does not
/// train it and a Slurm array does not list it.
#[test]
fn a_locked_cell_is_left_to_its_holder() {
    use biprop::experiment::{slurm, sweep};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::write_idx(&data, 200, 50);
    let text = format!(
        "[base]\ndataset = \"idx\"\nclasses = 4\ndata_dir = {:?}\nval_size = 40\nepochs = 1\n\
         hidden = [8]\nalignment = false\n[grid]\nseed = [1, 2]\n",
        data.to_str().unwrap()
    );
    let s = sweep::Sweep::from_toml_str(&text, dir.path().join("out")).unwrap();
    let cells = s.cells().unwrap();
    let held = s.run_dir(&cells[1]);
    std::fs::create_dir_all(&held).unwrap();
    let lock = std::fs::File::create(held.join(sweep::LOCK_FILE)).unwrap();
    lock.lock().unwrap();
    assert!(s.is_running(&cells[1]) && !s.is_running(&cells[0]));
    let file = dir.path().join("s.toml");
    std::fs::write(&file, &text).unwrap();
    let array = slurm::job_array(
        &s,
        &file,
        std::path::Path::new("/bin/true"),
        &Default::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(array.tasks, vec![0]);
    let opts = sweep::SweepOptions {
        jobs: 1,
        task: None,
        progress: false,
    };
    // Counted apart: a process of a job array never reports another's
    // cell as one it finished.
    assert_eq!(
        sweep::run_sweep(&s, &opts).unwrap(),
        sweep::SweepCounts { ran: 1, skipped: 1 }
    );
    assert!(s.is_done(&cells[0]));
    assert!(!s.is_done(&cells[1]), "the held cell was trained");
    drop(lock);
    assert!(!s.is_running(&cells[1]));
    assert_eq!(
        sweep::run_sweep(&s, &opts).unwrap(),
        sweep::SweepCounts { ran: 1, skipped: 0 },
        "released, the cell is this process's to train"
    );
    assert!(s.is_done(&cells[1]));
}

/// Rewrites the checkpoint at `path` as an older biprop wrote it: its
/// settings `edit`ed, in format 1, without the digest.
fn as_saved_before(path: &std::path::Path, edit: impl Fn(&str) -> String) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = meta.metadata().clone().unwrap();
    let config = edit(&meta["config"]);
    meta.insert("config".into(), config);
    meta.remove(biprop::checkpoint::DIGEST_KEY);
    meta.insert("format".into(), biprop::checkpoint::FORMAT_1.into());
    std::fs::write(
        path,
        safetensors::serialize(st.tensors(), Some(meta)).unwrap(),
    )
    .unwrap();
}

/// The GEMM backend reaches the products: faer's and the gemm crate's
/// kernels sum in other orders, so a run's weights differ between them in
/// the last bits (and only there); every run records the backend it used,
/// `auto` as this CPU's; a resumed `auto` run keeps its checkpoint's
/// backend, and one from before the setting existed continues on faer.
#[test]
fn the_gemm_backend_reaches_the_run_and_is_recorded() {
    use biprop::checkpoint::Checkpoint;
    use biprop::state::CheckpointExt;
    use biprop::tensor::GemmBackend;
    let faer = trained("gemm = \"faer\"\n");
    let gemm = trained("gemm = \"gemm\"\n");
    assert_ne!(faer, gemm, "the backends gave bitwise the same weights");
    for ((name, a), (_, b)) in faer.iter().zip(&gemm) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-3, "{name}: {x} vs {y}");
        }
    }
    assert_eq!(
        trained("gemm = \"auto\"\n"),
        trained(&format!("gemm = \"{}\"\n", GemmBackend::for_this_cpu())),
    );
    let dir = tempfile::tempdir().unwrap();
    let run_to = |gemm: &str, epochs: usize, resume: bool| {
        let cfg = RunConfig::from_toml_str(&format!(
            "hidden = [12]\nepochs = {epochs}\nbatch_size = 32\nthreads = 1\ngemm = \"{gemm}\"\n"
        ))
        .unwrap();
        let opts = RunOptions {
            out_dir: Some(dir.path().to_path_buf()),
            resume,
            ..Default::default()
        };
        run::run(&cfg, &splits(), &opts).map(|_| ())
    };
    let recorded = || {
        let cfg = RunConfig::from_toml_file(&dir.path().join("config.toml")).unwrap();
        let ck = Checkpoint::load(&dir.path().join("checkpoint.safetensors")).unwrap();
        assert_eq!(
            ck.config().unwrap().gemm,
            cfg.gemm,
            "checkpoint and config.toml agree"
        );
        cfg.gemm
    };
    run_to("auto", 1, false).unwrap();
    assert_eq!(recorded(), GemmBackend::for_this_cpu());
    // The other backend, asked for explicitly, may not continue the run.
    let other = GemmBackend::CONCRETE
        .into_iter()
        .find(|b| *b != GemmBackend::for_this_cpu())
        .unwrap();
    let e = run_to(other.name(), 2, true).unwrap_err().to_string();
    assert!(e.contains("another configuration"), "{e}");
    // A checkpoint whose config has no `gemm` (written before the setting):
    // `auto` resumes it on faer.
    let path = dir.path().join("checkpoint.safetensors");
    as_saved_before(&path, |config| {
        config
            .lines()
            .filter(|l| !l.starts_with("gemm"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    assert_eq!(
        Checkpoint::load(&path).unwrap().config().unwrap().gemm,
        GemmBackend::Auto
    );
    run_to("auto", 2, true).unwrap();
    assert_eq!(recorded(), GemmBackend::Faer);
}

// The parsing and checking of settings (formerly config.rs's unit tests).

#[test]
fn hidden_forms() {
    assert_eq!(parse_hidden("800").unwrap(), vec![800]);
    assert_eq!(parse_hidden("800, 400").unwrap(), vec![800, 400]);
    assert_eq!(parse_hidden("3x400").unwrap(), vec![400; 3]);
    assert_eq!(parse_hidden("none").unwrap(), Vec::<usize>::new());
    for bad in ["8a0", "x800", "2x", "800,,3", "0", "2x0", "-5"] {
        assert!(parse_hidden(bad).is_err(), "{bad}");
    }
    assert_eq!(format_hidden(&[800, 800]), "2x800");
    assert_eq!(format_hidden(&[800]), "1x800");
    assert_eq!(format_hidden(&[800, 400]), "800,400");
}

/// An MLP's `hidden` or `activation` beside `net` or `layers` would be
/// ignored: refused, in one table or across a file and its overrides (a
/// sweep's base and cell). A described network's saved settings leave both
/// out and read back the same; a run saved before that, which holds both at
/// their defaults, still loads.
#[test]
fn mlp_settings_beside_a_described_network_are_refused() {
    let table = |t: &str| -> toml::Table { t.parse().unwrap() };
    for (layers, key) in [
        (
            vec![table("net = \"lenet-mnist\"\nactivation = \"tanh\"")],
            "activation",
        ),
        (
            vec![table("layers = \"dense 10\"\nhidden = [800]")],
            "hidden",
        ),
        (
            vec![table("hidden = [500]"), table("net = \"lenet-mnist\"")],
            "hidden",
        ),
        (
            vec![
                table("net = \"lenet-cifar\""),
                table("activation = \"relu\""),
            ],
            "activation",
        ),
    ] {
        let err = RunConfig::from_layers(&layers).unwrap_err().to_string();
        assert!(err.contains(&format!("{key}: has no effect")), "{err}");
    }
    let cfg = RunConfig::from_layers(&[table("net = \"lenet-mnist\"")]).unwrap();
    let saved = cfg.to_toml();
    assert!(
        !saved.contains("hidden") && !saved.contains("activation"),
        "{saved}"
    );
    assert_eq!(RunConfig::from_toml_str(&saved).unwrap(), cfg);
    let earlier = format!("hidden = [800]\nactivation = \"tanh\"\n{saved}");
    assert_eq!(RunConfig::from_toml_str(&earlier).unwrap(), cfg);
    let mlp = RunConfig::default().to_toml();
    assert!(mlp.contains("hidden = [800]") && mlp.contains("activation = \"tanh\""));
}

#[test]
fn toml_round_trips_and_names_bad_keys() {
    let cfg = RunConfig {
        hidden: vec![400, 400],
        rule: RuleKind::Dfa,
        ..Default::default()
    };
    let back = RunConfig::from_toml_str(&cfg.to_toml()).unwrap();
    assert_eq!(back.to_toml(), cfg.to_toml());
    assert_eq!(back.feedback_scale, Some(FeedbackScale::Sender));
    let err = RunConfig::from_toml_str("epochz = 3")
        .unwrap_err()
        .to_string();
    assert!(err.contains("epochz"), "{err}");
    let err = RunConfig::from_toml_str("epochs = \"three\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("epochs"), "{err}");
    let err = RunConfig::from_toml_str("rule = \"magic\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("magic"), "{err}");
    assert!(RunConfig::from_toml_str("batch_size = 0").is_err());
}

#[test]
fn rates_out_of_range_are_named() {
    for (text, want) in [
        ("lr = -0.1", "lr must be"),
        ("feedback_lr = nan", "feedback-lr must be"),
        ("weight_decay = -1.0", "weight-decay must be"),
        ("momentum = 1.0", "momentum must be in [0, 1)"),
        (
            "feedback_momentum = -0.5",
            "feedback-momentum must be in [0, 1)",
        ),
    ] {
        let err = RunConfig::from_toml_str(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    let ok = "lr = 0.1\nmomentum = 0.9\nfeedback_momentum = 0.0\nweight_decay = 0.0";
    assert!(RunConfig::from_toml_str(ok).is_ok());
}

/// Layers that write out a preset are that preset (`net`), however they are
/// spelled: saved under its name, and a run saved with them written out
/// (as biprop saved them before) is finished for a sweep cell that names
/// the preset, and resumes under it; one layer more is another network.
#[test]
fn a_presets_layers_written_out_are_saved_resumed_and_found_finished_as_it() {
    use biprop::checkpoint::Checkpoint;
    use biprop::experiment::sweep;
    use biprop::layers::spec::Preset;
    use biprop::state::CheckpointExt;
    for &p in Preset::all() {
        let named = RunConfig::from_toml_str(&format!("net = \"{}\"\n", p.name())).unwrap();
        let loose = p.description().replace(", ", " ,  ").replace("5x5", "5");
        let written = RunConfig::from_toml_str(&format!("layers = \"{loose}\"\n")).unwrap();
        assert_eq!((written.net, written.layers.as_deref()), (Some(p), None));
        assert_eq!(written.to_toml(), named.to_toml(), "{p:?}");
        let longer = format!("layers = \"{}, relu\"\n", p.description());
        let other = RunConfig::from_toml_str(&longer).unwrap();
        assert_eq!(other.net, None, "{longer}");
    }
    let net = Preset::LenetMnist;
    // Saved settings with `layers` in place of the preset's name, as biprop
    // saved them before.
    let written_out = |toml: &str, layers: &str| {
        let old = toml.replace(
            &format!("net = \"{}\"", net.name()),
            &format!("layers = \"{layers}\""),
        );
        assert!(old.contains("layers = "), "{old}");
        old
    };
    // A finished cell, saved with the layers written out.
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[base]\nnet = \"{}\"\nepochs = 2\n[grid]\nlr = [0.1, 0.2]\n",
        net.name()
    );
    let s = sweep::Sweep::from_toml_str(&text, dir.path().join("out")).unwrap();
    let cells = s.cells().unwrap();
    for (cell, layers) in cells.iter().zip([
        net.description().to_string(),
        format!("{}, relu", net.description()),
    ]) {
        let run = s.run_dir(cell);
        std::fs::create_dir_all(&run).unwrap();
        let saved = written_out(&cell.config.to_toml(), &layers);
        std::fs::write(run.join("config.toml"), saved).unwrap();
        std::fs::write(run.join(sweep::DONE_FILE), "status = \"finished\"\n").unwrap();
    }
    assert!(s.is_done(&cells[0]), "the preset written out is the preset");
    assert!(!s.is_done(&cells[1]), "one layer more is another network");
    // A checkpoint saved with the layers written out resumes under `net`.
    let image = |n: usize, seed: u64| {
        let mut d = synthetic(n, 784, 10, seed);
        d.image = (1, 28, 28);
        d
    };
    let data = Splits::new(image(48, 1), image(16, 2), 16).unwrap();
    let out = tempfile::tempdir().unwrap();
    let run_to = |epochs: usize| {
        let cfg = RunConfig::from_toml_str(&format!(
            "net = \"{}\"\nepochs = {epochs}\nbatch_size = 16\nthreads = 1\nalignment = false\n",
            net.name()
        ))
        .unwrap();
        let opts = RunOptions {
            out_dir: Some(out.path().to_path_buf()),
            resume: true,
            ..Default::default()
        };
        run::run(&cfg, &data, &opts).map(|s| s.records.len())
    };
    run_to(1).unwrap();
    let path = out.path().join("checkpoint.safetensors");
    as_saved_before(&path, |config| written_out(config, net.description()));
    assert_eq!(
        Checkpoint::load(&path).unwrap().config().unwrap().net,
        Some(net)
    );
    assert_eq!(run_to(2).unwrap(), 1, "only epoch 2 runs again");
}
