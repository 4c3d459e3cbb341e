//! The feedback-alignment rules beyond the paper's (KP and the
//! sign-concordant USF, FRSF, BRSF): the identities that define each one.
//! The direct ones, and the MNIST runs of all, are in rules_direct.rs.

mod common;

use biprop::config::RunConfig;
use biprop::rules::{Bp, Brsf, FeedbackScale, Frsf, Kp, RuleKind, Usf, UsfScale};
use biprop::run::{self};
use biprop::tensor::Matrix;
use biprop::train::Trainer;
use common::{load, max_abs, max_abs_diff, net, sgd, ROWS};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `W_j - B_j^T` for j = 2..L+1, from KP's `feedback.{j-1}.weight`.
fn gaps(t: &Trainer) -> Vec<Vec<f32>> {
    t.rule
        .feedback_tensors()
        .iter()
        .zip(&t.net.layers[1..])
        .map(|(b, l)| {
            let bt = Matrix::from_vec(b.shape[0], b.shape[1], b.data.to_vec())
                .unwrap()
                .transposed();
            l.weight
                .as_slice()
                .iter()
                .zip(bt.as_slice())
                .map(|(w, b)| w - b)
                .collect()
        })
        .collect()
}

/// KP whose `B_j` starts at `W_j^T` is BP, step after step, weight decay
/// included: both sides get the same update, so `B` stays `W^T`.
#[test]
fn kp_started_at_the_transposed_weights_is_bp_at_every_step() {
    let net0 = net(&[12, 9, 7, 5, 4], 5);
    let opt = sgd(0.3, 0.05);
    let b = net0.layers[1..]
        .iter()
        .map(|l| l.weight.transposed())
        .collect();
    let mut kp = Trainer::new(
        net0.clone(),
        Box::new(Kp::from_stand_ins(
            &net0,
            biprop::rules::StandIns::from_matrices(b),
            opt,
        )),
        opt,
        ROWS,
    );
    let mut bp = Trainer::new(net0, Box::new(Bp), opt, ROWS);
    for k in 0..6 {
        load(&mut kp, k);
        load(&mut bp, k);
        kp.step(ROWS).unwrap();
        bp.step(ROWS).unwrap();
        for (a, b) in kp.deltas().iter().zip(bp.deltas()) {
            let d = max_abs_diff(a.as_slice(), b.as_slice());
            assert!(
                d <= 1e-5 * max_abs(b.as_slice()),
                "step {k}: errors differ by {d}"
            );
        }
        for (a, b) in kp.net.layers.iter().zip(&bp.net.layers) {
            let d = max_abs_diff(a.weight.as_slice(), b.weight.as_slice());
            assert!(d <= 1e-5, "step {k}: weights differ by {d}");
            assert!(max_abs_diff(&a.bias, &b.bias) <= 1e-5, "step {k}: biases");
        }
        for g in gaps(&kp) {
            assert!(
                max_abs(&g) <= 1e-5,
                "step {k}: B left W^T by {}",
                max_abs(&g)
            );
        }
    }
}

/// From a random start, `W_j - B_j^T` shrinks by exactly `(1 - lr lambda)`
/// a plain SGD step, with the run's own wiring: the forward optimizer and
/// KP's both decay by `kp_decay`, at the forward rate.
#[test]
fn kp_gap_shrinks_by_one_minus_lr_decay_each_step() {
    let cfg = RunConfig {
        rule: RuleKind::Kp,
        hidden: vec![9, 7],
        lr: 0.2,
        kp_decay: 0.1,
        batch_size: ROWS,
        ..Default::default()
    };
    let mut t =
        run::build_trainer_sized(&cfg, biprop::layers::Shape::flat(12), 4, None, None).unwrap();
    let factor = 1.0 - 0.2f32 * 0.1;
    let mut before = gaps(&t);
    assert!(max_abs(&before[0]) > 0.1, "B starts random, far from W^T");
    for k in 0..4 {
        load(&mut t, k);
        t.step(ROWS).unwrap();
        let after = gaps(&t);
        for (b, a) in before.iter().zip(&after) {
            let want: Vec<f32> = b.iter().map(|v| v * factor).collect();
            let d = max_abs_diff(a, &want);
            assert!(d <= 1e-6, "step {k}: gap off (1 - lr lambda) by {d}");
            assert!(max_abs_diff(a, b) > 1e-4, "step {k}: the gap did not move");
        }
        before = after;
    }
}

fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// USF's path is `sign(W_j)^T / sqrt(n_{j-1})`, made anew from the weights
/// of every step (a zero weight carries nothing), and it is the path the
/// hidden errors take.
#[test]
fn usf_path_has_the_signs_of_the_transposed_weights() {
    let mut n = net(&[10, 8, 6, 4], 2);
    n.layers[2].weight.set(1, 3, 0.0);
    let rule = Box::new(Usf::new(&n));
    let mut t = Trainer::new(n, rule, sgd(0.5, 0.0), ROWS);
    for k in 0..3 {
        load(&mut t, k);
        t.compute_errors(ROWS);
        for j in 1..=2 {
            let w = &t.net.layers[j].weight;
            let b = common::stand_in(&t, j).unwrap();
            let m = 1.0 / (w.cols() as f32).sqrt();
            for i in 0..w.cols() {
                for o in 0..w.rows() {
                    assert_eq!(b.get(i, o), sign(w.get(o, i)) * m, "layer {j} ({i}, {o})");
                }
            }
        }
        // The top hidden error, by hand: (e B^T) .* (1 - h^2).
        let (e, h) = (&t.deltas()[2], &t.activations()[2]);
        let b = common::stand_in(&t, 2).unwrap();
        for r in 0..ROWS {
            for i in 0..6 {
                let s: f32 = (0..4).map(|o| e.get(r, o) * b.get(i, o)).sum();
                let want = s * (1.0 - h.get(r, i) * h.get(r, i));
                let got = t.deltas()[1].get(r, i);
                assert!(
                    (got - want).abs() < 1e-5,
                    "delta ({r}, {i}): {got} vs {want}"
                );
            }
        }
        if k == 0 {
            let b = common::stand_in(&t, 2).unwrap();
            assert_eq!(b.get(3, 1), 0.0, "zero weight, zero path");
        }
        t.step(ROWS).unwrap();
    }
}

/// `usf_scale = "xavier"` gives a dense layer's path the deviation of
/// Glorot's draw for its weight, `sqrt(2 / (n_{j-1} + n_j))`, biotorch's.
#[test]
fn usf_at_xavier_scale_has_glorot_s_deviation() {
    let n = net(&[10, 8, 6, 4], 2);
    let rule = Box::new(Usf::with_scale(&n, UsfScale::Xavier));
    let mut t = Trainer::new(n, rule, sgd(0.5, 0.0), ROWS);
    load(&mut t, 0);
    t.compute_errors(ROWS);
    for j in 1..=2 {
        let w = &t.net.layers[j].weight;
        let b = common::stand_in(&t, j).unwrap();
        let m = (2.0 / (w.cols() + w.rows()) as f32).sqrt();
        for i in 0..w.cols() {
            for o in 0..w.rows() {
                assert_eq!(b.get(i, o), sign(w.get(o, i)) * m, "layer {j} ({i}, {o})");
            }
        }
    }
}

/// FRSF whose every magnitude is `1/sqrt(n_{j-1})` is USF, bit for bit.
#[test]
fn frsf_with_uniform_magnitudes_is_usf() {
    let mut net0 = net(&[10, 8, 6, 4], 3);
    let mut frsf = Frsf::new(
        &mut net0,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(1),
    );
    for m in &mut frsf.m.mats {
        let v = 1.0 / (m.rows() as f32).sqrt();
        // Negative magnitudes too: only |M| counts.
        for (k, x) in m.as_mut_slice().iter_mut().enumerate() {
            *x = if k % 2 == 0 { v } else { -v };
        }
    }
    let usf = Usf::new(&net0);
    let mut a = Trainer::new(net0.clone(), Box::new(frsf), sgd(0.5, 0.0), ROWS);
    let mut b = Trainer::new(net0.clone(), Box::new(usf), sgd(0.5, 0.0), ROWS);
    for k in 0..3 {
        load(&mut a, k);
        load(&mut b, k);
        a.step(ROWS).unwrap();
        b.step(ROWS).unwrap();
    }
    assert_eq!(a.net, b.net);
    assert_ne!(a.net, net0, "it trained");
}

fn brsf_run(seed: u64, steps: u64) -> Trainer {
    let n = net(&[10, 8, 6, 4], 4);
    let rule = Box::new(Brsf::with_seed(&n, FeedbackScale::Sender, seed));
    let mut t = Trainer::new(n, rule, sgd(0.5, 0.0), ROWS);
    for k in 0..steps {
        load(&mut t, k);
        t.step(ROWS).unwrap();
    }
    t
}

/// BRSF's magnitudes, as the rule last drew them, for `forward.{j}`.
fn brsf_m(t: &Trainer, j: usize) -> Matrix {
    let b = common::stand_in(t, j).unwrap();
    // |b| is |M| wherever W is not zero (all of a random net).
    let abs: Vec<f32> = b.as_slice().iter().map(|v| v.abs()).collect();
    Matrix::from_vec(b.rows(), b.cols(), abs).unwrap()
}

/// BRSF: the same seed gives the same run bit for bit; the magnitudes are
/// new every batch, within FA's bound, with the signs of `W^T`; and a rule
/// told the step count (as resuming does) draws what the one that took the
/// steps draws.
#[test]
fn brsf_is_reproducible_and_redraws_every_batch() {
    let (a, b) = (brsf_run(7, 3), brsf_run(7, 3));
    assert_eq!(a.net, b.net);
    assert_ne!(a.net, brsf_run(8, 3).net, "the seed matters");
    let mut t = brsf_run(7, 0);
    let mut seen: Vec<Matrix> = Vec::new();
    for k in 0..3 {
        load(&mut t, k);
        t.compute_errors(ROWS);
        let m = brsf_m(&t, 2);
        assert!(
            max_abs(m.as_slice()) <= 1.0 / 4f32.sqrt(),
            "sender bound 1/sqrt(C)"
        );
        let (b, w) = (common::stand_in(&t, 2).unwrap(), &t.net.layers[2].weight);
        for i in 0..6 {
            for o in 0..4 {
                assert_eq!(sign(b.get(i, o)), sign(w.get(o, i)));
            }
        }
        for old in &seen {
            assert!(
                max_abs_diff(old.as_slice(), m.as_slice()) > 1e-3,
                "batch {k}: same M"
            );
        }
        // Measuring again before the step draws the same M (what alignment probes do).
        t.compute_errors(ROWS);
        assert_eq!(brsf_m(&t, 2), m);
        seen.push(m);
        t.step(ROWS).unwrap();
    }
    // Resuming: a fresh rule at step 2 draws the M of the third batch.
    let mut fresh = brsf_run(7, 0);
    fresh.set_steps(2);
    load(&mut fresh, 2);
    fresh.compute_errors(ROWS);
    assert_eq!(brsf_m(&fresh, 2), seen[2]);
}
