//! Whole runs: bitwise reproducibility and checkpoints.

mod common;

use biprop::checkpoint::Checkpoint;
use biprop::config::RunConfig;
use biprop::data::Splits;
use biprop::rules::RuleKind;
use biprop::run::{self, InitFrom, RunOptions};
use biprop::state::{self, CheckpointExt};
use common::synthetic;

fn splits() -> Splits {
    Splits::new(synthetic(700, 30, 4, 1), synthetic(200, 30, 4, 2), 100).unwrap()
}

fn cfg(rule: RuleKind, threads: usize) -> RunConfig {
    RunConfig {
        rule,
        hidden: vec![64, 48],
        epochs: 3,
        batch_size: 32,
        lr: 0.2,
        threads,
        seed: 42,
        ..Default::default()
    }
}

/// Same seed, same thread count: bitwise the same metrics and weights.
#[test]
fn same_seed_same_results_bitwise() {
    let s = splits();
    for rule in RuleKind::ALL {
        for threads in [1, 2] {
            let a = run::run(&cfg(rule, threads), &s, &RunOptions::default()).unwrap();
            let b = run::run(&cfg(rule, threads), &s, &RunOptions::default()).unwrap();
            let strip = |r: &run::EpochRecord| {
                (
                    r.train_loss,
                    r.train_error,
                    r.val_loss,
                    r.test_loss,
                    r.test_error,
                )
            };
            let ma: Vec<_> = a.records.iter().map(strip).collect();
            let mb: Vec<_> = b.records.iter().map(strip).collect();
            assert_eq!(ma, mb, "{rule} on {threads} threads");
            assert_eq!(a.trainer.net, b.trainer.net, "{rule} on {threads} threads");
        }
        // A different seed gives a different network: the comparison above can fail.
        let mut other = cfg(rule, 1);
        other.seed = 43;
        let a = run::run(&cfg(rule, 1), &s, &RunOptions::default()).unwrap();
        let c = run::run(&other, &s, &RunOptions::default()).unwrap();
        assert_ne!(a.trainer.net, c.trainer.net);
    }
}

/// The thread count changes only the speed: products are split into whole
/// rows or columns, so 1, 2 and 3 threads give bitwise the same run. The
/// hidden layers are wide enough to be split: their 64x512x512 products are
/// four times the size below which products stay on one thread.
#[test]
fn thread_count_does_not_change_results() {
    let s = splits();
    for rule in RuleKind::ALL {
        let wide = |threads| RunConfig {
            hidden: vec![512, 512],
            batch_size: 64,
            epochs: 2,
            ..cfg(rule, threads)
        };
        let one = run::run(&wide(1), &s, &RunOptions::default()).unwrap();
        for threads in [2, 3] {
            let many = run::run(&wide(threads), &s, &RunOptions::default()).unwrap();
            assert_eq!(
                one.trainer.net, many.trainer.net,
                "{rule} on {threads} threads"
            );
            let feedback = |r: &run::RunSummary| -> Vec<Vec<f32>> {
                let tensors = r.trainer.rule.feedback_tensors();
                tensors.iter().map(|t| t.data.to_vec()).collect()
            };
            assert_eq!(
                feedback(&one),
                feedback(&many),
                "{rule} feedback on {threads} threads"
            );
        }
    }
}

/// Saving and loading a checkpoint gives back every forward and feedback tensor.
#[test]
fn checkpoint_round_trips() {
    let s = splits();
    let dir = tempfile::tempdir().unwrap();
    for rule in RuleKind::ALL {
        let c = cfg(rule, 1);
        let trained = run::run(&c, &s, &RunOptions::default()).unwrap().trainer;
        let path = dir.path().join(format!("{rule}.safetensors"));
        state::save(&path, &trained.net, trained.rule.as_ref(), &c, 3, (1, 5, 6)).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap().image(), Some((1, 5, 6)));
        let ck = Checkpoint::load(&path).unwrap();
        assert_eq!(ck.config().unwrap(), c);
        assert_eq!(ck.metadata["epoch"], "3");
        let mut fresh = run::build_trainer(
            &RunConfig {
                seed: 7,
                ..c.clone()
            },
            &s,
            None,
        )
        .unwrap();
        assert_ne!(fresh.net, trained.net);
        ck.restore(&mut fresh.net, fresh.rule.as_mut()).unwrap();
        assert_eq!(fresh.net, trained.net);
        let names = |t: &biprop::train::Trainer| -> Vec<(String, Vec<usize>, Vec<f32>)> {
            t.rule
                .feedback_tensors()
                .into_iter()
                .map(|f| (f.name, f.shape, f.data.to_vec()))
                .collect()
        };
        assert_eq!(names(&fresh), names(&trained));
        let expected_feedback = match rule {
            // USF's path is the forward weights' signs; BRSF's draws come from its seed.
            RuleKind::Bp | RuleKind::Usf | RuleKind::Brsf => 0,
            RuleKind::Bfa => 6, // weight and bias of 3 feedback layers
            _ => 2,
        };
        assert_eq!(names(&trained).len(), expected_feedback, "{rule}");
        // `save` keeps weights only: resuming from it is refused, not guessed.
        let e = ck.restore_trainer(&mut fresh).unwrap_err().to_string();
        assert!(e.contains("no step count"), "{e}");
    }
}

/// `on_epoch` is told every epoch, in order, with the record the run returns.
#[test]
fn on_epoch_sees_every_epoch() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let opts = RunOptions {
        on_epoch: Some(Arc::new(move |r: &run::EpochRecord| {
            sink.lock().unwrap().push((r.epoch, r.test_error))
        })),
        ..Default::default()
    };
    let summary = run::run(&cfg(RuleKind::Dfa, 1), &splits(), &opts).unwrap();
    let want: Vec<_> = summary
        .records
        .iter()
        .map(|r| (r.epoch, r.test_error))
        .collect();
    assert_eq!(want.len(), 3);
    assert_eq!(*seen.lock().unwrap(), want);
}

fn error_of(r: biprop::Result<biprop::train::Trainer>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted"),
    }
}

/// A finished 3-epoch run of `c` in `dir/name`; returns its checkpoint.
fn saved_run(c: &RunConfig, s: &Splits, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let out = dir.join(name);
    run::run(
        c,
        s,
        &RunOptions {
            out_dir: Some(out.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    out.join("checkpoint.safetensors")
}

/// `init_from` starts a run from saved weights: one more epoch from a
/// 2-epoch checkpoint continues where it stopped, not from scratch.
#[test]
fn init_from_restores_weights() {
    let s = splits();
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(RuleKind::Fa, 1);
    let ck = saved_run(&c, &s, dir.path(), "run");
    let first = Checkpoint::load(&ck).unwrap();
    let resumed = run::build_trainer(&c, &s, Some(&InitFrom::Everything(ck.clone()))).unwrap();
    let mut want = resumed.net.clone();
    first.restore_forward(&mut want).unwrap();
    assert_eq!(resumed.net, want);
    let fresh = run::build_trainer(&c, &s, None).unwrap();
    assert_ne!(resumed.net, fresh.net, "the weights were not loaded");
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a checkpoint").unwrap();
    let e = error_of(run::build_trainer(
        &c,
        &s,
        Some(&InitFrom::Everything(garbage)),
    ));
    assert!(
        e.contains("garbage.safetensors") && e.contains("not a safetensors file"),
        "{e}"
    );
}

/// Checkpoints are checked, never trusted: the rule, the format, the shapes
/// and unused tensors are refused with the file and the tensor named, and
/// forward-only loading crosses rules on purpose.
#[test]
fn checkpoints_are_loaded_strictly() {
    let s = splits();
    let dir = tempfile::tempdir().unwrap();
    // One hidden layer: BFA's label-to-hidden weights and DFA's D are both
    // [64, 4], the case that used to load silently.
    let one = |rule| RunConfig {
        hidden: vec![64],
        ..cfg(rule, 1)
    };
    let bfa = saved_run(&one(RuleKind::Bfa), &s, dir.path(), "bfa");
    let e = error_of(run::build_trainer(
        &one(RuleKind::Dfa),
        &s,
        Some(&InitFrom::Everything(bfa.clone())),
    ));
    assert!(
        e.contains("bfa.") || e.contains("bfa/"),
        "names the file: {e}"
    );
    assert!(e.contains("holds a bfa run, this run is dfa"), "{e}");
    // Its forward weights alone may start a DFA run.
    let t = run::build_trainer(
        &one(RuleKind::Dfa),
        &s,
        Some(&InitFrom::ForwardOnly(bfa.clone())),
    )
    .unwrap();
    let ck = Checkpoint::load(&bfa).unwrap();
    assert_eq!(
        ck.tensors["forward.0.weight"].1,
        t.net.layers[0].weight.as_slice()
    );
    // Shapes: another width is refused, naming the tensor.
    let wide = RunConfig {
        hidden: vec![65],
        ..one(RuleKind::Bfa)
    };
    let e = error_of(run::build_trainer(
        &wide,
        &s,
        Some(&InitFrom::Everything(bfa.clone())),
    ));
    assert!(
        e.contains("forward.0.weight") && e.contains("[64, 30]"),
        "{e}"
    );
    // Another depth is refused, forward-only too.
    let deep = cfg(RuleKind::Bfa, 1);
    let e = error_of(run::build_trainer(
        &deep,
        &s,
        Some(&InitFrom::ForwardOnly(bfa.clone())),
    ));
    assert!(e.contains("network of 2 layers, the run has 3"), "{e}");
    // A tensor the run does not use is named.
    let mut extra = Checkpoint::load(&bfa).unwrap();
    extra
        .tensors
        .insert("feedback.9.weight".into(), (vec![1], vec![0.0]));
    let extra_path = dir.path().join("extra.safetensors");
    write_checkpoint(&extra, &extra_path);
    let e = error_of(run::build_trainer(
        &one(RuleKind::Bfa),
        &s,
        Some(&InitFrom::Everything(extra_path)),
    ));
    assert!(e.contains("does not use: feedback.9.weight"), "{e}");
    // Another format is refused.
    let mut old = Checkpoint::load(&bfa).unwrap();
    old.metadata
        .insert("format".into(), "biprop-checkpoint-0".into());
    let old_path = dir.path().join("old.safetensors");
    write_checkpoint(&old, &old_path);
    let e = error_of(run::build_trainer(
        &one(RuleKind::Bfa),
        &s,
        Some(&InitFrom::ForwardOnly(old_path)),
    ));
    assert!(
        e.contains("old.safetensors") && e.contains("biprop-checkpoint-0"),
        "{e}"
    );
}

/// Writes a checkpoint's tensors and metadata back to `path` as they are
/// (with a fresh digest, so that the edit is what the test is about).
fn write_checkpoint(ck: &Checkpoint, path: &std::path::Path) {
    ck.save(path).unwrap();
}

/// A trainer owns its threads: one built for 3 threads runs its products on
/// a pool of 3 whoever calls `step` (not rayon's global pool, one thread a
/// core), and gives bitwise the weights of one built for 1 (products large
/// enough to be cut in parts).
#[test]
fn a_trainer_owns_its_threads() {
    let s = Splits::new(synthetic(512, 256, 4, 1), synthetic(64, 256, 4, 2), 0).unwrap();
    let mut c = cfg(RuleKind::Bfa, 3);
    c.hidden = vec![256];
    c.batch_size = 128;
    let mut two = run::build_trainer(&c, &s, None).unwrap();
    c.threads = 1;
    let mut one = run::build_trainer(&c, &s, None).unwrap();
    assert_eq!(two.parallelism().count(), 3);
    assert_eq!(one.parallelism().count(), 1);
    assert_eq!(two.install(rayon::current_num_threads), 3);
    let order: Vec<usize> = (0..s.train.len()).collect();
    // Called from a thread of its own, as a library user would.
    std::thread::scope(|sc| {
        sc.spawn(|| two.train_epoch(&s.train, &order, 128, |_| {}));
    });
    one.train_epoch(&s.train, &order, 128, |_| {});
    assert_eq!(one.net.layers[0].weight, two.net.layers[0].weight);
    assert_ne!(
        one.net.layers[0].weight,
        run::build_trainer(&c, &s, None).unwrap().net.layers[0].weight,
        "the epoch trained"
    );
}

/// `on_batch` returning false stops a run between batches.
#[test]
fn on_batch_interrupts_a_run() {
    let s = splits();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    let opts = RunOptions {
        on_batch: Some(std::sync::Arc::new(move |_| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2
        })),
        ..Default::default()
    };
    match run::run(&cfg(RuleKind::Fa, 1), &s, &opts) {
        Err(biprop::Error::Interrupted { epoch: 1 }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("not interrupted"),
    }
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// `metrics.csv`'s rows as maps from column to value.
fn metric_rows(dir: &std::path::Path) -> Vec<std::collections::BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                .collect()
        })
        .collect()
}

/// Every epoch records the norm of every weight tensor, forward and
/// feedback, under its checkpoint name: the last row holds the norms of the
/// tensors the checkpoint saved, and the norms move as the rule trains.
#[test]
fn metrics_record_the_norm_of_every_weight_tensor() {
    let s = splits();
    let dir = tempfile::tempdir().unwrap();
    for rule in RuleKind::ALL {
        let out = dir.path().join(rule.to_string());
        let opts = RunOptions {
            out_dir: Some(out.clone()),
            ..Default::default()
        };
        run::run(&cfg(rule, 1), &s, &opts).unwrap();
        let rows = metric_rows(&out);
        let ck = Checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
        let want: std::collections::BTreeMap<String, f64> = ck
            .tensors
            .iter()
            .filter(|(name, _)| {
                (name.starts_with("forward.") || name.starts_with("feedback."))
                    && name.ends_with(".weight")
            })
            .map(|(name, (_, v))| {
                let norm = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
                (format!("norm_{name}"), norm)
            })
            .collect();
        let last = rows.last().unwrap();
        let got: std::collections::BTreeMap<String, f64> = last
            .iter()
            .filter(|(k, _)| k.starts_with("norm_"))
            .map(|(k, &v)| (k.clone(), v))
            .collect();
        assert_eq!(got, want, "{rule}");
        let feedback = want.keys().filter(|k| k.contains("feedback")).count();
        // USF's path is the forward weights' signs; BRSF's draws come from its seed.
        let stored = !matches!(rule, RuleKind::Bp | RuleKind::Usf | RuleKind::Brsf);
        assert_eq!(feedback > 0, stored, "{rule}: {feedback} feedback norms");
        assert_ne!(
            rows[0]["norm_forward.0.weight"], last["norm_forward.0.weight"],
            "{rule}: the first layer's norm never moved"
        );
    }
}
