//! Exactness of the learning rules: gradient checks and identities between rules.

mod common;

use biprop::activation::Activation;
use biprop::loss::Output;
use biprop::network::Network;
use biprop::optim::OptimConfig;
use biprop::rules::{
    self, Bp, Dfa, Fa, FeedbackScale, InitScheme, LearningRule, RuleKind, RuleOptions, StandIns,
};
use biprop::tensor::Matrix;
use biprop::train::Trainer;
use common::{max_abs, max_abs_diff, synthetic};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn net(sizes: &[usize], act: Activation, out: Output, seed: u64) -> Network {
    Network::mlp(sizes, act, out, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn sgd(lr: f32) -> OptimConfig {
    OptimConfig {
        lr,
        ..Default::default()
    }
}

/// `dW_l = delta_l^T h_{l-1} / B` from the trainer's buffers, as f64.
fn weight_grads(t: &Trainer, rows: usize) -> Vec<Vec<f64>> {
    let acts = t.activations();
    t.deltas()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (n_out, n_in) = (d.cols(), acts[i].cols());
            let mut g = vec![0.0f64; n_out * n_in];
            for r in 0..rows {
                for o in 0..n_out {
                    for k in 0..n_in {
                        g[o * n_in + k] +=
                            d.get(r, o) as f64 * acts[i].get(r, k) as f64 / rows as f64;
                    }
                }
            }
            g
        })
        .collect()
}

/// Backpropagation's weight gradients equal central finite differences of
/// the mean loss, for every output layer and activation.
#[test]
fn bp_matches_finite_differences() {
    let ds = synthetic(6, 5, 3, 7);
    let idx: Vec<usize> = (0..6).collect();
    for (act, out) in [
        (Activation::Tanh, Output::SigmoidBce),
        (Activation::Sigmoid, Output::SoftmaxCe),
        (Activation::Tanh, Output::Identity),
    ] {
        let mut t = Trainer::new(net(&[5, 4, 4, 3], act, out, 3), Box::new(Bp), sgd(0.1), 6);
        t.load_batch(&ds, &idx);
        t.compute_errors(6);
        let grads = weight_grads(&t, 6);
        for (l, g) in grads.iter().enumerate() {
            for (k, &gk) in g.iter().enumerate() {
                let w0 = t.net.layers[l].weight.as_slice()[k];
                let mut loss_at = |w: f32| {
                    t.net.layers[l].weight.as_mut_slice()[k] = w;
                    t.compute_errors(6).mean_loss()
                };
                let h = 1e-2f32;
                let fd = (loss_at(w0 + h) - loss_at(w0 - h)) / (2.0 * h as f64);
                loss_at(w0);
                assert!(
                    (fd - gk).abs() < 2e-3 * (1.0 + gk.abs()),
                    "{act:?}/{out:?} layer {l} weight {k}: backprop {gk} vs finite difference {fd}"
                );
            }
        }
    }
}

/// One step of `rule` from the same start; returns the weights afterwards.
fn step_with(rule: Box<dyn LearningRule>, net0: &Network, rows: usize) -> Trainer {
    let ds = synthetic(rows, net0.inputs(), net0.outputs(), 11);
    let idx: Vec<usize> = (0..rows).collect();
    let mut t = Trainer::new(net0.clone(), rule, sgd(0.5), rows);
    t.load_batch(&ds, &idx);
    t.step(rows).unwrap();
    t
}

fn assert_same_weights(a: &Trainer, b: &Trainer, tol: f32) {
    for (la, lb) in a.net.layers.iter().zip(&b.net.layers) {
        let d = max_abs_diff(la.weight.as_slice(), lb.weight.as_slice());
        assert!(
            d <= tol * max_abs(la.weight.as_slice()).max(1.0),
            "weights differ by {d}"
        );
        assert!(max_abs_diff(&la.bias, &lb.bias) <= tol, "biases differ");
    }
    for (da, db) in a.deltas().iter().zip(b.deltas()) {
        let d = max_abs_diff(da.as_slice(), db.as_slice());
        assert!(
            d <= tol * max_abs(da.as_slice()).max(1e-3),
            "errors differ by {d}"
        );
    }
}

/// FA whose feedback matrices are the forward weights transposed is BP.
#[test]
fn fa_with_transposed_weights_is_bp() {
    let net0 = net(&[12, 9, 7, 5, 4], Activation::Tanh, Output::SigmoidBce, 5);
    let mut scratch = net0.clone();
    let mut fa = Fa::new(
        &mut scratch,
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(1),
    );
    for (b, layer) in fa.b.mats.iter_mut().zip(&net0.layers[1..]) {
        *b = layer.weight.transposed();
    }
    let bp = step_with(Box::new(Bp), &net0, 10);
    let fa = step_with(Box::new(fa), &net0, 10);
    assert_same_weights(&bp, &fa, 1e-6);
    // And with random B it is not BP: the test can fail.
    let mut scratch = net0.clone();
    let random = Fa::new(
        &mut scratch,
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(1),
    );
    let fa_rand = step_with(Box::new(random), &net0, 10);
    let d = max_abs_diff(
        bp.net.layers[0].weight.as_slice(),
        fa_rand.net.layers[0].weight.as_slice(),
    );
    assert!(
        d > 1e-4,
        "random feedback should change the first layer's update"
    );
}

/// With one hidden layer, FA and DFA with the same feedback matrix are one rule.
#[test]
fn fa_equals_dfa_with_one_hidden_layer() {
    let net0 = net(&[20, 16, 6], Activation::Tanh, Output::SigmoidBce, 8);
    let mut scratch = net0.clone();
    let dfa = Dfa::new(
        &mut scratch,
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(2),
    );
    let fa = Fa {
        b: StandIns::from_matrices(dfa.d.clone()),
    };
    assert_eq!(fa.b.mats[0].shape(), (16, 6));
    let a = step_with(Box::new(fa), &net0, 9);
    let b = step_with(Box::new(dfa), &net0, 9);
    assert_same_weights(&a, &b, 0.0);
}

/// DFA's hidden errors are `(e D^T) .* f'` for every layer, computed directly.
#[test]
fn dfa_errors_match_their_definition() {
    let net0 = net(&[8, 6, 5, 3], Activation::Tanh, Output::SigmoidBce, 4);
    let mut scratch = net0.clone();
    let dfa = Dfa::new(
        &mut scratch,
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(3),
    );
    let d = dfa.d.clone();
    let t = step_with(Box::new(dfa), &net0, 4);
    let e = &t.deltas()[2];
    for (l, dl) in d.iter().enumerate() {
        let h = &t.activations()[l + 1];
        for r in 0..4 {
            for j in 0..dl.rows() {
                let s: f32 = (0..3).map(|c| e.get(r, c) * dl.get(j, c)).sum();
                let want = s * (1.0 - h.get(r, j) * h.get(r, j));
                assert!((t.deltas()[l].get(r, j) - want).abs() < 1e-5);
            }
        }
    }
}

/// The reference init: FA copies the initial weights into B and zeroes the
/// later layers; DFA zeroes every forward weight.
#[test]
fn reference_init_follows_the_published_code() {
    let net0 = net(&[10, 8, 6, 3], Activation::Tanh, Output::SigmoidBce, 9);
    let mut n = net0.clone();
    let opts = RuleOptions {
        init: InitScheme::Reference,
        // What the config resolves `init = "reference"` to.
        feedback_scale: FeedbackScale::Receiver,
        ..Default::default()
    };
    let fa = rules::build(
        RuleKind::Fa,
        &mut n,
        &opts,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    let fb = fa.feedback_tensors();
    assert_eq!(fb.len(), 2);
    assert_eq!(fb[0].data, net0.layers[1].weight.transposed().as_slice());
    assert_eq!(n.layers[0], net0.layers[0]);
    assert!(n.layers[1..]
        .iter()
        .all(|l| max_abs(l.weight.as_slice()) == 0.0 && max_abs(&l.bias) == 0.0));
    let mut n = net0.clone();
    let dfa = rules::build(
        RuleKind::Dfa,
        &mut n,
        &opts,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    assert!(n.layers.iter().all(|l| max_abs(l.weight.as_slice()) == 0.0));
    let bound = 1.0 / (8f32).sqrt();
    let d0 = &dfa.feedback_tensors()[0];
    assert_eq!(d0.shape, vec![8, 3]);
    assert!(max_abs(d0.data) <= bound && max_abs(d0.data) > 0.5 * bound);
}

/// The two feedback scales draw FA's B and DFA's D at the bounds docs/rules.md
/// gives: the sender's 1/sqrt(width of the error), the receiver's
/// 1/sqrt(width of the layer reached).
/// Whether `data`, drawn from `U(+-bound)`, reaches into the top tenth of
/// the bound without passing it: a draw at that scale, not a smaller one.
fn drawn_within(data: &[f32], bound: f32) -> bool {
    let m = max_abs(data);
    m <= bound && m > 0.9 * bound
}

#[test]
fn feedback_scales_draw_at_their_bounds() {
    // Widths far apart, so that the two scales cannot be confused.
    let net0 = net(&[10, 400, 100, 4], Activation::Tanh, Output::SigmoidBce, 9);
    for (scale, fa_bounds, dfa_bounds) in [
        (
            FeedbackScale::Sender,
            [1.0 / 10.0, 1.0 / 2.0],
            [1.0 / 2.0, 1.0 / 2.0],
        ),
        (
            FeedbackScale::Receiver,
            [1.0 / 20.0, 1.0 / 10.0],
            [1.0 / 20.0, 1.0 / 10.0],
        ),
    ] {
        let opts = RuleOptions {
            feedback_scale: scale,
            ..Default::default()
        };
        for (kind, bounds) in [(RuleKind::Fa, fa_bounds), (RuleKind::Dfa, dfa_bounds)] {
            let mut n = net0.clone();
            let rule = rules::build(kind, &mut n, &opts, &mut ChaCha8Rng::seed_from_u64(0));
            assert_eq!(n, net0, "{kind:?} {scale:?} moved the forward weights");
            for (t, bound) in rule.feedback_tensors().iter().zip(bounds) {
                assert!(
                    drawn_within(t.data, bound),
                    "{kind:?} {scale:?} {}: max {} for bound {bound}",
                    t.name,
                    max_abs(t.data)
                );
            }
        }
    }
}

/// BFA's feedback network, sizes 4-100-400-10 for the forward 10-400-100-4:
/// its error paths (layers 0 and 1) at the sender scale are drawn as any
/// layer, at the receiver scale they are the same draws scaled to the width
/// they reach; the reconstruction layer and every bias keep their draw.
/// `feedback_scale` does not touch BFA: `bfa_feedback_scale` does.
#[test]
fn bfa_feedback_scales_scale_its_error_paths_only() {
    let net0 = net(&[10, 400, 100, 4], Activation::Tanh, Output::SigmoidBce, 9);
    let feedback = |bfa_feedback_scale, feedback_scale| {
        let opts = RuleOptions {
            bfa_feedback_scale,
            feedback_scale,
            ..Default::default()
        };
        let mut n = net0.clone();
        let rule = rules::build(
            RuleKind::Bfa,
            &mut n,
            &opts,
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        assert_eq!(n, net0, "BFA moved the forward weights");
        rule.feedback_network().expect("BFA has one").clone()
    };
    let sender = feedback(FeedbackScale::Sender, FeedbackScale::Sender);
    let receiver = feedback(FeedbackScale::Receiver, FeedbackScale::Sender);
    assert_eq!(
        feedback(FeedbackScale::Sender, FeedbackScale::Receiver),
        sender
    );
    for (k, (s, r)) in sender.layers.iter().zip(&receiver.layers).enumerate() {
        let (sb, rb) = [(0.5, 0.1), (0.1, 0.05), (0.05, 0.05)][k];
        assert!(drawn_within(s.weight.as_slice(), sb), "layer {k} sender");
        assert!(drawn_within(r.weight.as_slice(), rb), "layer {k} receiver");
        assert_eq!(s.bias, r.bias, "layer {k} bias");
        let ratio = rb / sb;
        for (a, b) in s.weight.as_slice().iter().zip(r.weight.as_slice()) {
            assert!(
                (a * ratio - b).abs() <= 1e-6 * a.abs().max(1e-30),
                "layer {k}: {a} {b}"
            );
        }
    }
}

/// Momentum, weight decay and Adam go through gradient buffers; with
/// momentum and decay at zero the buffered SGD path must equal the fused one.
#[test]
fn fused_and_buffered_sgd_agree() {
    let net0 = net(&[12, 9, 4], Activation::Tanh, Output::SigmoidBce, 2);
    let ds = synthetic(10, 12, 4, 1);
    let idx: Vec<usize> = (0..10).collect();
    let mut fused = Trainer::new(net0.clone(), Box::new(Bp), sgd(0.3), 10);
    let adam_like = OptimConfig {
        kind: biprop::optim::OptimizerKind::Sgd,
        lr: 0.3,
        momentum: 1e-30, // forces the buffered path; momentum this small changes nothing
        ..Default::default()
    };
    let mut buffered = Trainer::new(net0, Box::new(Bp), adam_like, 10);
    for t in [&mut fused, &mut buffered] {
        t.load_batch(&ds, &idx);
        t.step(10).unwrap();
    }
    assert_same_weights(&fused, &buffered, 1e-6);
}

#[test]
fn matrix_helpers_are_consistent() {
    let m = Matrix::from_vec(2, 3, vec![1., 2., 3., 4., 5., 6.]).unwrap();
    assert_eq!(m.transposed().transposed(), m);
    assert_eq!(m.transposed().get(2, 1), 6.0);
}
