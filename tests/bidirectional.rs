//! Exactness of the paper's own rules, BFA and BDFA.

mod common;

use biprop::activation::Activation;
use biprop::loss::Output;
use biprop::network::Network;
use biprop::optim::OptimConfig;
use biprop::rules::{
    Bdfa, BdfaTarget, BdfaUpdate, Bfa, Bp, Dfa, Fa, FeedbackScale, InitScheme, LearningRule,
};
use biprop::tensor::Matrix;
use biprop::train::Trainer;
use common::{max_abs, max_abs_diff, synthetic};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SIZES: [usize; 4] = [12, 9, 7, 4];
const ROWS: usize = 10;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn sgd(lr: f32) -> OptimConfig {
    OptimConfig {
        lr,
        ..Default::default()
    }
}

fn forward_net(seed: u64) -> Network {
    Network::mlp(&SIZES, Activation::Tanh, Output::SigmoidBce, &mut rng(seed))
}

fn feedback_net(seed: u64) -> Network {
    let mut s = SIZES;
    s.reverse();
    Network::mlp(&s, Activation::Tanh, Output::SigmoidBce, &mut rng(seed))
}

/// Runs `steps` training steps of `rule` on `net` with forward learning rate `lr`.
fn train(net: Network, rule: Box<dyn LearningRule>, lr: f32, steps: usize) -> Trainer {
    let ds = synthetic(ROWS * steps, SIZES[0], SIZES[3], 21);
    let mut t = Trainer::new(net, rule, sgd(lr), ROWS);
    for s in 0..steps {
        let idx: Vec<usize> = (s * ROWS..(s + 1) * ROWS).collect();
        t.load_batch(&ds, &idx);
        t.step(ROWS).unwrap();
    }
    t
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    let d = max_abs_diff(a, b);
    assert!(d <= tol * max_abs(a).max(1e-3), "{what}: differ by {d}");
}

fn assert_same_net(a: &Network, b: &Network, tol: f32) {
    for (i, (la, lb)) in a.layers.iter().zip(&b.layers).enumerate() {
        assert_close(
            la.weight.as_slice(),
            lb.weight.as_slice(),
            tol,
            &format!("layer {i} weight"),
        );
        assert_close(&la.bias, &lb.bias, tol, &format!("layer {i} bias"));
    }
}

/// BFA's feedback phase is backpropagation through the feedback network
/// when every forward weight it uses as an error path is the transpose of
/// the matching feedback weight.
#[test]
fn bfa_feedback_update_is_backprop_through_the_feedback_network() {
    let fb = feedback_net(2);
    let mut net = forward_net(1);
    let l = net.hidden_layers();
    for j in 0..l {
        net.layers[j].weight = fb.layers[l - j].weight.transposed();
    }
    // Forward lr 0: the error paths stay the transposes through the step.
    let bfa = Bfa::from_network(fb.clone(), sgd(0.7), ROWS);
    let t = train(net, Box::new(bfa), 0.0, 1);
    let learned = t.rule.feedback_network().unwrap();

    // Plain BP on the feedback network: input the labels, target the images.
    let mut bp = Trainer::new(fb.clone(), Box::new(Bp), sgd(0.7), ROWS);
    let ds = synthetic(ROWS, SIZES[0], SIZES[3], 21);
    let idx: Vec<usize> = (0..ROWS).collect();
    let mut x = Matrix::zeros(ROWS, SIZES[0]);
    let mut y = Matrix::zeros(ROWS, SIZES[3]);
    ds.gather(&idx, &mut x, &mut y);
    bp.load_rows(y.as_slice(), x.as_slice(), ROWS).unwrap();
    bp.step(ROWS).unwrap();
    assert_same_net(learned, &bp.net, 1e-6);
    assert_ne!(*learned, fb, "the feedback network must have moved");
}

/// The mirror statement: BFA's forward update is BP's when every feedback
/// weight used as an error path is the transpose of the matching forward weight.
#[test]
fn bfa_forward_update_is_backprop_with_transposed_feedback() {
    let net = forward_net(3);
    let mut fb = feedback_net(4);
    let l = net.hidden_layers();
    for j in 1..=l {
        fb.layers[l - j].weight = net.layers[j].weight.transposed();
    }
    let bfa = Bfa::from_network(fb, sgd(0.0), ROWS);
    let a = train(net.clone(), Box::new(bfa), 0.5, 1);
    let b = train(net, Box::new(Bp), 0.5, 1);
    assert_same_net(&a.net, &b.net, 1e-6);
}

/// With the feedback side's learning rate at zero, BFA is FA whose B are the
/// feedback network's weights, step after step.
#[test]
fn bfa_without_feedback_learning_is_fa() {
    let net = forward_net(5);
    let fb = feedback_net(6);
    let l = net.hidden_layers();
    let fa = Fa {
        b: biprop::rules::StandIns::from_matrices(
            (1..=l).map(|j| fb.layers[l - j].weight.clone()).collect(),
        ),
    };
    let bfa = Bfa::from_network(fb.clone(), sgd(0.0), ROWS);
    let a = train(net.clone(), Box::new(bfa), 0.5, 4);
    let b = train(net, Box::new(fa), 0.5, 4);
    assert_same_net(&a.net, &b.net, 0.0);
    assert_eq!(*a.rule.feedback_network().unwrap(), fb);
}

fn dfa(net: &mut Network, seed: u64) -> Dfa {
    Dfa::new(
        net,
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut rng(seed),
    )
}

fn feedback_mats(rule: &dyn LearningRule) -> Vec<Matrix> {
    rule.feedback_tensors()
        .iter()
        .map(|t| Matrix::from_vec(t.shape[0], t.shape[1], t.data.to_vec()).unwrap())
        .collect()
}

fn sigmoid(s: f64) -> f64 {
    1.0 / (1.0 + (-s).exp())
}

/// `s_r = (D y'_r) . h_r` in f64.
fn scores(d: &[f64], n: usize, c: usize, yp: &Matrix, h: &Matrix) -> Vec<f64> {
    (0..ROWS)
        .map(|r| {
            (0..n)
                .map(|j| {
                    let dy: f64 = (0..c).map(|k| d[j * c + k] * yp.get(r, k) as f64).sum();
                    dy * h.get(r, j) as f64
                })
                .sum()
        })
        .collect()
}

/// The `paper` update of BDFA moves D by minus the learning rate times a
/// finite-difference gradient of the mean loss `1 - sigmoid((D y) . h)`.
#[test]
fn bdfa_paper_update_is_the_gradient_of_its_loss() {
    let mut net = forward_net(7);
    let d0 = dfa(&mut net, 8);
    let before = d0.d.clone();
    let eta = 0.3f32;
    let bdfa = Bdfa::new(
        d0,
        BdfaUpdate::Paper,
        BdfaTarget::Label,
        0.25,
        sgd(eta),
        ROWS,
    );
    let t = train(net, Box::new(bdfa), 0.1, 1);
    let after = feedback_mats(t.rule.as_ref());
    let c = SIZES[3];
    let mut y = Matrix::zeros(ROWS, c);
    let ds = synthetic(ROWS, SIZES[0], c, 21);
    ds.gather(
        &(0..ROWS).collect::<Vec<_>>(),
        &mut Matrix::zeros(ROWS, SIZES[0]),
        &mut y,
    );
    for (l, (b, a)) in before.iter().zip(&after).enumerate() {
        let h = &t.activations()[l + 1];
        let n = b.rows();
        let d: Vec<f64> = b.as_slice().iter().map(|&v| v as f64).collect();
        let loss = |d: &[f64]| -> f64 {
            scores(d, n, c, &y, h)
                .iter()
                .map(|&s| 1.0 - sigmoid(s))
                .sum::<f64>()
                / ROWS as f64
        };
        for k in 0..d.len() {
            let eps = 1e-4;
            let (mut dp, mut dm) = (d.clone(), d.clone());
            dp[k] += eps;
            dm[k] -= eps;
            let fd = (loss(&dp) - loss(&dm)) / (2.0 * eps);
            let moved = (a.as_slice()[k] - b.as_slice()[k]) as f64 / -(eta as f64);
            assert!(
                (moved - fd).abs() < 1e-5 + 1e-3 * fd.abs(),
                "layer {l} entry {k}: {moved} vs {fd}"
            );
        }
        assert!(
            max_abs_diff(a.as_slice(), b.as_slice()) > 1e-6,
            "D must move"
        );
    }
}

/// The `reference` update: `D += lr * sum_r (1 - sigmoid(s_r)) h_r y'_r^T`,
/// here with the published code's target (1 at the label, alpha^k logits elsewhere).
#[test]
fn bdfa_reference_update_matches_its_closed_form() {
    let mut net = forward_net(9);
    let d0 = dfa(&mut net, 10);
    let before = d0.d.clone();
    let (lr, alpha) = (0.05f32, 0.25f32);
    let bdfa = Bdfa::new(
        d0,
        BdfaUpdate::Reference,
        BdfaTarget::Reference,
        alpha,
        sgd(lr),
        ROWS,
    );
    let t = train(net, Box::new(bdfa), 0.1, 1);
    let after = feedback_mats(t.rule.as_ref());
    let c = SIZES[3];
    let layers = before.len();
    let ds = synthetic(ROWS, SIZES[0], c, 21);
    for (l, (b, a)) in before.iter().zip(&after).enumerate() {
        let factor = (alpha as f64).powi((layers - l) as i32);
        let mut yp = Matrix::zeros(ROWS, c);
        for r in 0..ROWS {
            for k in 0..c {
                let v = if ds.labels[r] as usize == k {
                    1.0
                } else {
                    factor * t.logits().get(r, k) as f64
                };
                yp.set(r, k, v as f32);
            }
        }
        let h = &t.activations()[l + 1];
        let n = b.rows();
        let d: Vec<f64> = b.as_slice().iter().map(|&v| v as f64).collect();
        let s = scores(&d, n, c, &yp, h);
        for j in 0..n {
            for k in 0..c {
                let upd: f64 = (0..ROWS)
                    .map(|r| (1.0 - sigmoid(s[r])) * h.get(r, j) as f64 * yp.get(r, k) as f64)
                    .sum();
                let want = d[j * c + k] + lr as f64 * upd;
                let got = a.get(j, k) as f64;
                assert!(
                    (got - want).abs() < 1e-5,
                    "layer {l} ({j},{k}): {got} vs {want}"
                );
            }
        }
    }
}

/// The mixed target `y + alpha * yhat` enters the update as the closed form says.
#[test]
fn bdfa_mixed_target_uses_the_outputs() {
    let mut net = forward_net(11);
    let d0 = dfa(&mut net, 12);
    let before = d0.d.clone();
    let bdfa = Bdfa::new(
        d0,
        BdfaUpdate::Reference,
        BdfaTarget::Mixed,
        0.25,
        sgd(0.05),
        ROWS,
    );
    let t = train(net, Box::new(bdfa), 0.0, 1);
    let after = feedback_mats(t.rule.as_ref());
    let c = SIZES[3];
    let ds = synthetic(ROWS, SIZES[0], c, 21);
    let yhat = t.activations().output();
    let mut yp = Matrix::zeros(ROWS, c);
    for r in 0..ROWS {
        for k in 0..c {
            let y = (ds.labels[r] as usize == k) as u8 as f32;
            yp.set(r, k, y + 0.25 * yhat.get(r, k));
        }
    }
    let (b, a) = (&before[1], &after[1]);
    let h = &t.activations()[2];
    let d: Vec<f64> = b.as_slice().iter().map(|&v| v as f64).collect();
    let s = scores(&d, b.rows(), c, &yp, h);
    let upd: f64 = (0..ROWS)
        .map(|r| (1.0 - sigmoid(s[r])) * h.get(r, 0) as f64 * yp.get(r, 3) as f64)
        .sum();
    assert!((a.get(0, 3) as f64 - (d[3] + 0.05 * upd)).abs() < 1e-5);
}

/// With the feedback learning rate at zero, BDFA is DFA.
#[test]
fn bdfa_without_feedback_learning_is_dfa() {
    for update in [BdfaUpdate::Paper, BdfaUpdate::Reference] {
        let mut net = forward_net(13);
        let plain = dfa(&mut net, 14);
        let bdfa = Bdfa::new(
            plain.clone(),
            update,
            BdfaTarget::Label,
            0.25,
            sgd(0.0),
            ROWS,
        );
        let a = train(net.clone(), Box::new(bdfa), 0.5, 4);
        let b = train(net, Box::new(plain.clone()), 0.5, 4);
        assert_same_net(&a.net, &b.net, 0.0);
        assert_eq!(feedback_mats(a.rule.as_ref()), plain.d);
    }
}
