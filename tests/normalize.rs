//! Input standardization (`normalize = channel`) reaches the run exactly as
//! defined: a run with it is a run without it on images standardized by
//! hand with the training split's statistics (and augmented before that, as
//! torchvision does), the same across a resume; the statistics travel in the
//! checkpoint, are checked when read, and predictions apply them.

mod common;

use biprop::checkpoint::Checkpoint;
use biprop::config::RunConfig;
use biprop::data::{augment, Augment, Dataset, Normalize, Splits, Standardize};
use biprop::layers::Shape;
use biprop::rules::RuleKind;
use biprop::run::{self, RunOptions};
use biprop::state::CheckpointExt;
use common::{small_conv_config, splits_without_val, synthetic};

const IMAGE: (usize, usize, usize) = (3, 8, 8);
const LEN: usize = IMAGE.0 * IMAGE.1 * IMAGE.2;

/// Images whose channels have different means and spreads, as photographs
/// do (channel `c` is `0.2 c + (0.5 + 0.3 c) u`, u uniform in [0, 1]).
fn images(n: usize, seed: u64) -> Dataset {
    let mut ds = Dataset {
        image: IMAGE,
        ..synthetic(n, LEN, 10, seed)
    };
    let plane = IMAGE.1 * IMAGE.2;
    for (i, v) in ds.inputs.as_mut_slice().iter_mut().enumerate() {
        let c = ((i % LEN) / plane) as f32;
        *v = 0.2 * c + (0.5 + 0.3 * c) * *v;
    }
    ds
}

fn splits(train: Dataset) -> Splits {
    splits_without_val(train, images(32, 9))
}

fn config(normalize: Normalize, augment: Augment, epochs: usize) -> RunConfig {
    RunConfig {
        augment,
        normalize,
        ..small_conv_config(epochs, 1)
    }
}

/// Options of a run that writes its folder (and checkpoint) into `dir`.
fn saving_to(dir: &std::path::Path) -> RunOptions {
    RunOptions {
        out_dir: Some(dir.to_path_buf()),
        ..Default::default()
    }
}

fn forward_tensors(net: &biprop::network::Network) -> Vec<Vec<f32>> {
    net.named_tensors("forward")
        .iter()
        .map(|t| t.data.to_vec())
        .collect()
}

#[test]
fn standardizing_is_training_on_images_standardized_by_hand() {
    let train = images(96, 1);
    let sp = splits(train.clone());
    let run = run::run(
        &config(Normalize::Channel, Augment::FlipCrop, 2),
        &sp,
        &RunOptions::default(),
    )
    .unwrap();

    // The statistics are the training split's, per channel.
    let s = run.trainer.standardize().expect("a standardized trainer");
    let plane = IMAGE.1 * IMAGE.2;
    for c in 0..IMAGE.0 {
        let vals: Vec<f64> = train
            .inputs
            .as_slice()
            .chunks(LEN)
            .flat_map(|r| &r[c * plane..(c + 1) * plane])
            .map(|&v| v as f64)
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let sd = (vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64).sqrt();
        assert!((s.mean()[c] as f64 - m).abs() < 1e-6, "channel {c} mean");
        assert!((s.std()[c] as f64 - sd).abs() < 1e-6, "channel {c} std");
    }

    // By hand: flip and crop the raw images (zero padding), then
    // standardize, and train a run without either on them.
    let plain = config(Normalize::None, Augment::None, 2);
    let mut t = run::build_trainer(&plain, &sp, None).unwrap();
    let mut scratch = vec![0.0; LEN];
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 1..=2 {
        let mut by_hand = train.clone();
        for i in 0..by_hand.len() {
            let row = &mut by_hand.inputs.as_mut_slice()[i * LEN..(i + 1) * LEN];
            let d = Augment::FlipCrop.draw(3, epoch, i);
            augment::apply(d, IMAGE, row, &mut scratch, &[0.0; IMAGE.0]);
            s.apply(row);
        }
        run::epoch_order(3, epoch, &mut order);
        t.train_epoch(&by_hand, &order, 16, |_| {});
    }
    assert_eq!(forward_tensors(&run.trainer.net), forward_tensors(&t.net));

    // The test error is measured on standardized test images.
    let mut test = sp.test.clone();
    s.apply(test.inputs.as_mut_slice());
    let by_hand_error = t.evaluate(&test).unwrap().error_rate();
    assert_eq!(run.records.last().unwrap().test_error, by_hand_error);

    // And it is not the run without standardization.
    let raw = run::run(
        &config(Normalize::None, Augment::FlipCrop, 2),
        &sp,
        &RunOptions::default(),
    )
    .unwrap();
    assert_ne!(
        forward_tensors(&raw.trainer.net),
        forward_tensors(&run.trainer.net),
        "normalize changed nothing"
    );
}

#[test]
fn predictions_standardize_raw_inputs_with_the_stored_statistics() {
    let sp = splits(images(64, 2));
    let dir = tempfile::tempdir().unwrap();
    let opts = saving_to(dir.path());
    let cfg = config(Normalize::Channel, Augment::None, 1);
    let done = run::run(&cfg, &sp, &opts).unwrap();
    let ck = Checkpoint::load(&dir.path().join("checkpoint.safetensors")).unwrap();
    let shape = Shape::new(IMAGE.0, IMAGE.1, IMAGE.2);
    let stored = ck
        .standardize(&cfg, shape)
        .unwrap()
        .expect("stored statistics");
    assert_eq!(Some(&stored), done.trainer.standardize());

    // A trainer rebuilt from the checkpoint predicts from raw images what
    // the trained network predicts from images standardized by hand.
    let mut loaded = run::build_trainer_sized(&cfg, shape, 10, None, Some(stored.clone())).unwrap();
    ck.restore_trainer(&mut loaded).unwrap();
    let raw = sp.test.inputs.as_slice();
    let mut got = vec![0.0; sp.test.len() * 10];
    loaded.predict_into(raw, &mut got).unwrap();
    let plain = RunConfig {
        normalize: Normalize::None,
        ..cfg.clone()
    };
    let mut reference = run::build_trainer_sized(&plain, shape, 10, None, None).unwrap();
    ck.restore(&mut reference.net, reference.rule.as_mut())
        .unwrap();
    let mut standardized = raw.to_vec();
    stored.apply(&mut standardized);
    let mut want = vec![0.0; got.len()];
    reference.predict_into(&standardized, &mut want).unwrap();
    assert_eq!(got, want);
    let mut unstandardized = vec![0.0; got.len()];
    reference.predict_into(raw, &mut unstandardized).unwrap();
    assert_ne!(got, unstandardized);
}

#[test]
fn a_resumed_standardized_run_is_the_whole_run() {
    let sp = splits(images(64, 4));
    let cfg = |epochs| config(Normalize::Channel, Augment::FlipCrop, epochs);
    let whole = run::run(&cfg(3), &sp, &RunOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = saving_to(dir.path());
    run::run(&cfg(1), &sp, &opts).unwrap();
    let resumed = run::run(
        &cfg(3),
        &sp,
        &RunOptions {
            resume: true,
            ..opts
        },
    )
    .unwrap();
    assert_eq!(
        forward_tensors(&whole.trainer.net),
        forward_tensors(&resumed.trainer.net)
    );
}

/// Writes `ck`'s tensors with `edit` applied, under the same metadata.
fn rewritten(
    ck: &Checkpoint,
    path: &std::path::Path,
    edit: impl FnOnce(&mut std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>),
    meta: impl FnOnce(&mut std::collections::HashMap<String, String>),
) -> Checkpoint {
    let mut tensors = ck.tensors.clone();
    edit(&mut tensors);
    let mut m = ck.metadata.clone();
    meta(&mut m);
    Checkpoint::from_tensors(tensors, m, "edited")
        .save(path)
        .unwrap();
    Checkpoint::load(path).unwrap()
}

#[test]
fn stored_statistics_are_checked_when_read() {
    let sp = splits(images(48, 5));
    let dir = tempfile::tempdir().unwrap();
    let opts = saving_to(dir.path());
    let cfg = config(Normalize::Channel, Augment::None, 1);
    run::run(&cfg, &sp, &opts).unwrap();
    let ck = Checkpoint::load(&dir.path().join("checkpoint.safetensors")).unwrap();
    let shape = Shape::new(IMAGE.0, IMAGE.1, IMAGE.2);
    let edited = dir.path().join("edited.safetensors");
    let no_meta = |_: &mut std::collections::HashMap<String, String>| {};

    // A deviation of zero would divide by zero.
    let zero = rewritten(
        &ck,
        &edited,
        |t| t.get_mut("input.std").unwrap().1[1] = 0.0,
        no_meta,
    );
    let err = zero.standardize(&cfg, shape).unwrap_err().to_string();
    assert!(err.contains("channel 1"), "{err}");
    let mut t = run::build_trainer(&cfg, &sp, None).unwrap();
    let err = zero.restore_trainer(&mut t).unwrap_err().to_string();
    assert!(err.contains("channel 1"), "{err}");

    // The wrong number of channels.
    let short = rewritten(
        &ck,
        &edited,
        |t| {
            t.insert("input.mean".into(), (vec![1], vec![0.5]));
            t.insert("input.std".into(), (vec![1], vec![0.2]));
        },
        no_meta,
    );
    assert!(short.standardize(&cfg, shape).is_err());

    // Missing statistics, where the configuration says they are there.
    let missing = rewritten(
        &ck,
        &edited,
        |t| {
            t.remove("input.mean");
        },
        no_meta,
    );
    let err = missing.standardize(&cfg, shape).unwrap_err().to_string();
    assert!(err.contains("input.mean"), "{err}");
    let mut t = run::build_trainer(&cfg, &sp, None).unwrap();
    assert!(missing.restore_trainer(&mut t).is_err());

    // Statistics where the configuration says there are none: refused, not dropped.
    let plain = RunConfig {
        normalize: Normalize::None,
        ..cfg.clone()
    };
    let err = ck.standardize(&plain, shape).unwrap_err().to_string();
    assert!(err.contains("normalize = none"), "{err}");
    let mut t = run::build_trainer(&plain, &sp, None).unwrap();
    let err = ck.restore_trainer(&mut t).unwrap_err().to_string();
    assert!(err.contains("input.mean"), "{err}");
}

#[test]
fn statistics_must_come_with_the_setting_and_only_with_it() {
    let shape = Shape::new(IMAGE.0, IMAGE.1, IMAGE.2);
    let cfg = config(Normalize::Channel, Augment::None, 1);
    let err = run::build_trainer_sized(&cfg, shape, 10, None, None)
        .err()
        .expect("no statistics refused")
        .to_string();
    assert!(err.contains("normalize = channel"), "{err}");
    let s = Standardize::fit(&images(8, 1)).unwrap();
    let plain = config(Normalize::None, Augment::None, 1);
    assert!(run::build_trainer_sized(&plain, shape, 10, None, Some(s.clone())).is_err());
    // Statistics of another input shape.
    let other = Standardize::fit(&Dataset {
        image: (1, 8, 24),
        ..images(8, 1)
    })
    .unwrap();
    assert!(run::build_trainer_sized(&cfg, shape, 10, None, Some(other)).is_err());
    assert!(run::build_trainer_sized(&cfg, shape, 10, None, Some(s)).is_ok());
}

#[test]
fn bfa_reconstructing_standardized_inputs_needs_the_identity_output() {
    let cfg = RunConfig {
        rule: RuleKind::Bfa,
        ..config(Normalize::Channel, Augment::None, 1)
    };
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("bfa-output = identity"), "{err}");
    let ok = RunConfig {
        bfa_output: biprop::loss::Output::Identity,
        ..cfg
    };
    ok.validate().unwrap();
    let sp = splits(images(48, 6));
    let done = run::run(&ok, &sp, &RunOptions::default()).unwrap();
    assert!(done.records[0].test_error.is_finite());
}
