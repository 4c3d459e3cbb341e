//! Training-set augmentation reaches the run exactly as defined: a run with
//! it is a run without it on images flipped and shifted by the documented
//! draw, the same on any thread count and across a resume; it is refused
//! where the inputs are not images.

mod common;

use biprop::config::RunConfig;
use biprop::data::{augment, Augment, Dataset, Splits};
use biprop::run::{self, RunOptions};
use common::{small_conv_config, splits_without_val, synthetic};

const IMAGE: (usize, usize, usize) = (3, 8, 8);

fn images(n: usize, seed: u64) -> Dataset {
    Dataset {
        image: IMAGE,
        ..synthetic(n, IMAGE.0 * IMAGE.1 * IMAGE.2, 10, seed)
    }
}

fn splits(train: Dataset) -> Splits {
    splits_without_val(train, images(32, 9))
}

fn config(augment: Augment, epochs: usize, threads: usize) -> RunConfig {
    RunConfig {
        augment,
        ..small_conv_config(epochs, threads)
    }
}

/// Every forward tensor after the run, and its last test error.
fn trained(cfg: &RunConfig, splits: &Splits, opts: &RunOptions) -> (Vec<Vec<f32>>, f64) {
    let s = run::run(cfg, splits, opts).unwrap();
    let w = s
        .trainer
        .net
        .named_tensors("forward")
        .iter()
        .map(|t| t.data.to_vec())
        .collect();
    (w, s.records.last().unwrap().test_error)
}

#[test]
fn augmenting_is_training_on_the_drawn_images() {
    let train = images(96, 1);
    let augmented = trained(
        &config(Augment::FlipCrop, 2, 1),
        &splits(train.clone()),
        &RunOptions::default(),
    );
    // The same two epochs on images flipped and shifted by hand, each
    // epoch with its own draws, in the run's order.
    let plain_cfg = config(Augment::None, 2, 1);
    let sp = splits(train.clone());
    let mut t = run::build_trainer(&plain_cfg, &sp, None).unwrap();
    let len = IMAGE.0 * IMAGE.1 * IMAGE.2;
    let mut scratch = vec![0.0; len];
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 1..=2 {
        let mut by_hand = train.clone();
        let mut moved = 0;
        for i in 0..by_hand.len() {
            let d = Augment::FlipCrop.draw(3, epoch, i);
            moved += usize::from(d.flip || d.dy != 0 || d.dx != 0);
            let row = &mut by_hand.inputs.as_mut_slice()[i * len..(i + 1) * len];
            augment::apply(d, IMAGE, row, &mut scratch, &[0.0; IMAGE.0]);
        }
        assert!(moved > 80, "only {moved} of 96 images changed");
        run::epoch_order(3, epoch, &mut order);
        t.train_epoch(&by_hand, &order, 16, |_| {});
    }
    let reference: Vec<Vec<f32>> = t
        .net
        .named_tensors("forward")
        .iter()
        .map(|x| x.data.to_vec())
        .collect();
    assert_eq!(augmented.0, reference);
    let plain = trained(&plain_cfg, &sp, &RunOptions::default());
    assert_ne!(augmented.0, plain.0, "augment changed nothing");
}

#[test]
fn augmented_runs_are_the_same_on_any_thread_count_and_across_a_resume() {
    let sp = splits(images(96, 2));
    let whole = trained(
        &config(Augment::FlipCrop, 3, 1),
        &sp,
        &RunOptions::default(),
    );
    let two = trained(
        &config(Augment::FlipCrop, 3, 2),
        &sp,
        &RunOptions::default(),
    );
    assert_eq!(whole, two);
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        out_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    trained(&config(Augment::FlipCrop, 1, 1), &sp, &opts);
    let resumed = trained(
        &config(Augment::FlipCrop, 3, 1),
        &sp,
        &RunOptions {
            resume: true,
            ..opts
        },
    );
    assert_eq!(whole, resumed);
}

#[test]
fn flat_inputs_are_refused() {
    let cfg = RunConfig {
        layers: None,
        hidden: vec![8],
        ..config(Augment::Flip, 1, 1)
    };
    let flat = synthetic(32, 20, 10, 1);
    let err = run::run(&cfg, &splits_flat(flat), &RunOptions::default())
        .err()
        .expect("flat inputs refused")
        .to_string();
    assert!(err.contains("flips and shifts images"), "{err}");
}

fn splits_flat(train: Dataset) -> Splits {
    let test = train.slice(0..8);
    splits_without_val(train, test)
}
