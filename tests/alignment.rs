//! Alignment diagnostics: zero where a rule is BP, and equal to a direct computation otherwise.

mod common;

use biprop::activation::Activation;
use biprop::loss::Output;
use biprop::metrics::{angle_degrees, AlignmentProbe};
use biprop::network::Network;
use biprop::optim::OptimConfig;
use biprop::rules::{Bp, Dfa, Fa, FeedbackScale, InitScheme, LearningRule};
use biprop::train::Trainer;
use common::synthetic;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const ROWS: usize = 16;

fn setup(rule: impl FnOnce(&mut Network) -> Box<dyn LearningRule>) -> (Trainer, AlignmentProbe) {
    let mut net = Network::mlp(
        &[20, 15, 12, 5],
        Activation::Tanh,
        Output::SigmoidBce,
        &mut ChaCha8Rng::seed_from_u64(3),
    );
    let rule = rule(&mut net);
    let mut t = Trainer::new(net, rule, OptimConfig::default(), ROWS);
    let ds = synthetic(ROWS, 20, 5, 4);
    t.load_batch(&ds, &(0..ROWS).collect::<Vec<_>>());
    let p = AlignmentProbe::new(&t);
    (t, p)
}

#[test]
fn bp_is_aligned_with_itself() {
    let (mut t, mut p) = setup(|_| Box::new(Bp));
    let a = p.measure(&mut t, ROWS);
    assert_eq!(a.update.len(), 2);
    for v in a.update.iter().chain(&a.delta) {
        assert!(v.abs() < 0.05, "BP angle {v}");
    }
    assert!(a.feedback.iter().all(|v| v.is_nan()), "BP has no stand-in");
}

#[test]
fn fa_with_transposed_weights_is_aligned() {
    let (mut t, mut p) = setup(|net| {
        let mut fa = Fa::new(
            net,
            InitScheme::Default,
            FeedbackScale::Sender,
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        for (b, l) in fa.b.mats.iter_mut().zip(&net.layers[1..]) {
            *b = l.weight.transposed();
        }
        Box::new(fa)
    });
    let a = p.measure(&mut t, ROWS);
    for v in a.update.iter().chain(&a.delta).chain(&a.feedback) {
        assert!(v.abs() < 0.05, "angle {v}");
    }
}

/// With random feedback the angles are far from zero and equal to the
/// angles computed here from scratch.
#[test]
fn random_feedback_angles_match_a_direct_computation() {
    for use_dfa in [false, true] {
        let (mut t, mut p) = setup(|net| {
            let mut rng = ChaCha8Rng::seed_from_u64(2);
            if use_dfa {
                Box::new(Dfa::new(
                    net,
                    InitScheme::Default,
                    FeedbackScale::Sender,
                    &mut rng,
                ))
            } else {
                Box::new(Fa::new(
                    net,
                    InitScheme::Default,
                    FeedbackScale::Sender,
                    &mut rng,
                ))
            }
        });
        let a = p.measure(&mut t, ROWS);
        // Recompute: the rule's deltas are in the trainer; BP's from a BP trainer.
        let rule_deltas: Vec<Vec<f32>> = t.deltas().iter().map(|d| d.as_slice().to_vec()).collect();
        let acts: Vec<Vec<f32>> = t
            .activations()
            .outputs
            .iter()
            .map(|m| m.as_slice().to_vec())
            .collect();
        let mut bp = Trainer::new(t.net.clone(), Box::new(Bp), OptimConfig::default(), ROWS);
        let ds = synthetic(ROWS, 20, 5, 4);
        bp.load_batch(&ds, &(0..ROWS).collect::<Vec<_>>());
        bp.compute_errors(ROWS);
        for i in 0..2 {
            let grad = |delta: &[f32]| {
                let (n_out, n_in) = (t.net.layers[i].fan_out(), t.net.layers[i].fan_in());
                let mut g = vec![0.0f32; n_out * n_in];
                for r in 0..ROWS {
                    for o in 0..n_out {
                        for k in 0..n_in {
                            g[o * n_in + k] += delta[r * n_out + o] * acts[i][r * n_in + k];
                        }
                    }
                }
                g
            };
            let want_update =
                angle_degrees(&grad(&rule_deltas[i]), &grad(bp.deltas()[i].as_slice()));
            let want_delta = angle_degrees(&rule_deltas[i], bp.deltas()[i].as_slice());
            assert!(
                (a.update[i] - want_update).abs() < 1e-3,
                "update {} vs {want_update}",
                a.update[i]
            );
            assert!(
                (a.delta[i] - want_delta).abs() < 1e-3,
                "delta {} vs {want_delta}",
                a.delta[i]
            );
            assert!(
                a.update[i] > 5.0,
                "random feedback should not be aligned at init"
            );
        }
        if use_dfa {
            assert!(a.feedback.iter().all(|v| v.is_nan()));
        } else {
            let b = t.rule.feedback_tensors();
            let w = t.net.layers[2].weight.transposed();
            let want = angle_degrees(b[1].data, w.as_slice());
            assert!((a.feedback[1] - want).abs() < 1e-9);
            assert!(a.feedback[1] > 45.0, "random B is nearly orthogonal to W^T");
        }
    }
}

/// A softmax saturated to one-hot leaves the probe only the samples it
/// classifies wrong to measure on: `samples` counts them, and with none
/// left every angle is NaN (what DFA's large logits do on a LeNet).
#[test]
fn samples_counts_the_probe_rows_whose_output_error_is_not_zero() {
    let mut net = Network::mlp(
        &[20, 15, 12, 5],
        Activation::Tanh,
        Output::SoftmaxCe,
        &mut ChaCha8Rng::seed_from_u64(3),
    );
    // Logits within 0.1 of [1e4, 0, 0, 0, 0] for every input: exactly
    // one-hot on class 0, with weights that still carry an error back.
    let out = net.layers.last_mut().unwrap();
    out.weight
        .as_mut_slice()
        .iter_mut()
        .for_each(|w| *w *= 1e-2);
    out.bias.fill(0.0);
    out.bias[0] = 1e4;
    let mut t = Trainer::new(net, Box::new(Bp), OptimConfig::default(), ROWS);
    let ds = synthetic(ROWS, 20, 5, 4);
    let mut p = AlignmentProbe::new(&t);

    let all: Vec<usize> = (0..ROWS).collect();
    let wrong = ds.labels.iter().filter(|&&l| l != 0).count();
    assert!(0 < wrong && wrong < ROWS, "the batch mixes classes");
    t.load_batch(&ds, &all);
    let a = p.measure(&mut t, ROWS);
    assert_eq!(a.samples, wrong);
    assert!(a.update.iter().all(|v| v.is_finite()));
    assert_eq!(
        a.named().last(),
        Some(&("align_samples".to_string(), wrong as f64))
    );

    let right: Vec<usize> = all.into_iter().filter(|&i| ds.labels[i] == 0).collect();
    t.load_batch(&ds, &right);
    let a = p.measure(&mut t, right.len());
    assert_eq!(a.samples, 0);
    assert!(a.update.iter().chain(&a.delta).all(|v| v.is_nan()));
}
