//! The direct rules beyond the paper's (DKP, DRTP): their updates and hidden
//! errors against their definitions, and every rule beyond the paper's learning
//! MNIST in a short run.

mod common;

use biprop::config::RunConfig;
use biprop::data::Splits;
use biprop::rules::{Dfa, Dkp, Drtp, FeedbackScale, InitScheme, LearningRule, RuleKind};
use biprop::run::{self, RunOptions};
use biprop::tensor::Matrix;
use biprop::train::Trainer;
use common::{load, max_abs, max_abs_diff, net, sgd, ROWS};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

/// DKP's update of the top hidden layer's `D` is the output weights'
/// gradient transposed: with the same rate and decay on both, `D` moves as
/// `W_out^T` does, decay aside. Lower layers get `h_l^T e / B`.
#[test]
fn dkp_top_update_is_the_transposed_output_gradient() {
    for sizes in [&[10, 8, 4][..], &[10, 8, 6, 4][..]] {
        let (lr, decay) = (0.4f32, 0.05f32);
        let mut n = net(sizes, 6);
        let dfa = Dfa::new(
            &mut n,
            InitScheme::Default,
            FeedbackScale::Sender,
            &mut ChaCha8Rng::seed_from_u64(2),
        );
        let d0: Vec<Matrix> = dfa.d.clone();
        let opt = sgd(lr, decay);
        let mut t = Trainer::new(n, Box::new(Dkp::new(dfa, opt)), opt, ROWS);
        let l = t.net.hidden_layers();
        let w0 = t.net.layers[l].weight.clone();
        load(&mut t, 0);
        t.step(ROWS).unwrap();
        let d1: Vec<Matrix> = t
            .rule
            .feedback_tensors()
            .iter()
            .map(|f| Matrix::from_vec(f.shape[0], f.shape[1], f.data.to_vec()).unwrap())
            .collect();
        // (D0 - D1)/lr - decay D0 = dD;  (W0 - W1)/lr - decay W0 = dW.
        let grad = |before: &[f32], after: &[f32]| -> Vec<f32> {
            before
                .iter()
                .zip(after)
                .map(|(b, a)| (b - a) / lr - decay * b)
                .collect()
        };
        let dd_top = grad(d0[l - 1].as_slice(), d1[l - 1].as_slice());
        let dw = grad(w0.as_slice(), t.net.layers[l].weight.as_slice());
        let dw_t = Matrix::from_vec(w0.rows(), w0.cols(), dw)
            .unwrap()
            .transposed();
        let diff = max_abs_diff(&dd_top, dw_t.as_slice());
        assert!(diff < 1e-4 * max_abs(dw_t.as_slice()), "{sizes:?}: {diff}");
        assert!(max_abs(&dd_top) > 1e-3, "D moved");
        // Every layer: dD_l = h_l^T e / B, by hand.
        let (acts, e) = (t.activations(), &t.deltas()[l]);
        for (k, (a, b)) in d0.iter().zip(&d1).enumerate() {
            let dd = grad(a.as_slice(), b.as_slice());
            let c = e.cols();
            for i in 0..a.rows() {
                for o in 0..c {
                    let want: f32 = (0..ROWS)
                        .map(|r| acts[k + 1].get(r, i) * e.get(r, o))
                        .sum::<f32>()
                        / ROWS as f32;
                    let got = dd[i * c + o];
                    assert!(
                        (got - want).abs() < 1e-4,
                        "layer {k} ({i}, {o}): {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// DRTP's hidden errors come from the targets: moving the output weights
/// (and so the output error) leaves them bitwise alone, where DFA's move.
#[test]
fn drtp_hidden_errors_ignore_the_output_weights() {
    for drtp in [true, false] {
        let mut n = net(&[10, 8, 6, 4], 7);
        let dfa = Dfa::new(
            &mut n,
            InitScheme::Default,
            FeedbackScale::Sender,
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        let rule: Box<dyn LearningRule> = if drtp {
            Box::new(Drtp::new(dfa))
        } else {
            Box::new(dfa)
        };
        let mut t = Trainer::new(n, rule, sgd(0.5, 0.0), ROWS);
        load(&mut t, 0);
        t.compute_errors(ROWS);
        let before: Vec<Matrix> = t.deltas().to_vec();
        let top = t.net.layers.len() - 1;
        for (k, w) in t.net.layers[top]
            .weight
            .as_mut_slice()
            .iter_mut()
            .enumerate()
        {
            *w = -*w + 0.1 * (k % 5) as f32;
        }
        t.compute_errors(ROWS);
        assert!(
            max_abs_diff(before[2].as_slice(), t.deltas()[2].as_slice()) > 1e-3,
            "the output error moved"
        );
        for (i, (old, new)) in before.iter().zip(&t.deltas()[..2]).enumerate() {
            let same = old == new;
            assert_eq!(
                same, drtp,
                "drtp={drtp}: hidden error {i} unchanged = {same}"
            );
        }
    }
}

/// A rule's hidden errors through `ErrorStep` need nothing but the step:
/// DRTP's equal `(y D^T) .* f'(a)` computed here.
#[test]
fn drtp_hidden_error_is_the_projected_target() {
    let mut n = net(&[10, 8, 4], 8);
    let dfa = Dfa::new(
        &mut n,
        InitScheme::Default,
        FeedbackScale::Sender,
        &mut ChaCha8Rng::seed_from_u64(4),
    );
    let d = dfa.d[0].clone();
    let mut t = Trainer::new(n, Box::new(Drtp::new(dfa)), sgd(0.5, 0.0), ROWS);
    load(&mut t, 1);
    t.compute_errors(ROWS);
    let (y, h) = (t.targets(), &t.activations()[1]);
    for r in 0..ROWS {
        for i in 0..8 {
            let s: f32 = (0..4).map(|c| y.get(r, c) * d.get(i, c)).sum();
            let want = s * (1.0 - h.get(r, i) * h.get(r, i));
            assert!((t.deltas()[0].get(r, i) - want).abs() < 1e-6);
        }
    }
}

const NEW_RULES: [RuleKind; 6] = [
    RuleKind::Kp,
    RuleKind::Usf,
    RuleKind::Frsf,
    RuleKind::Brsf,
    RuleKind::Drtp,
    RuleKind::Dkp,
];

/// The protocol and error bound of the short MNIST runs: 784-256-256-10,
/// SGD with momentum in batches of 32, about a second a rule on 2 cores.
///
/// With `$BIPROP_DATA` (all of MNIST): the first 10,000 training images, 2
/// epochs. Measured test errors at the last epoch: KP 10.95%, USF 8.50%,
/// FRSF 8.95%, BRSF 9.02%, DRTP 9.83%, DKP 9.59% (BP 7.91%, FA 12.09%)
/// with `biprop train --hidden 2x256 --train-limit 10000 --epochs 2
/// --batch-size 32 --lr 0.02 --momentum 0.9 --rule R`; frozen hidden layers
/// end at 20.55% (`the_bound_catches_frozen_hidden_layers`).
///
/// Without it, on the committed subset (tests/data/mnist-subset: 5,000
/// training, 1,000 validation and 1,000 test images), 5 epochs. Measured
/// KP 11.9%, USF 9.8%, FRSF 10.2%, BRSF 11.0%, DRTP 11.2%, DKP 11.3% (BP
/// 9.0%) with `biprop train --dataset idx --classes 10 --data-dir
/// tests/data/mnist-subset --val-size 1000` and the settings above; frozen
/// hidden layers end at 22.7%.
/// The bound on the subset (see [`quick`]).
const SUBSET_BOUND: f64 = 0.14;

struct Quick {
    cfg: RunConfig,
    bound: f64,
}

fn quick(rule: RuleKind) -> Quick {
    let base = RunConfig {
        rule,
        hidden: vec![256, 256],
        batch_size: 32,
        lr: 0.02,
        momentum: 0.9,
        threads: 1,
        ..Default::default()
    };
    match std::env::var_os("BIPROP_DATA") {
        Some(dir) => Quick {
            cfg: RunConfig {
                train_limit: Some(10_000),
                epochs: 2,
                data_dir: Some(dir.into()),
                ..base
            },
            bound: 0.13,
        },
        None => Quick {
            cfg: RunConfig {
                dataset: biprop::data::DatasetKind::Idx,
                classes: 10,
                data_dir: Some(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/data/mnist-subset"),
                ),
                val_size: 1_000,
                epochs: 5,
                ..base
            },
            bound: SUBSET_BOUND,
        },
    }
}

fn mnist() -> &'static Splits {
    static SPLITS: OnceLock<Splits> = OnceLock::new();
    SPLITS.get_or_init(|| {
        run::load_data(&quick(RuleKind::Bp).cfg)
            .expect("MNIST in $BIPROP_DATA, else the subset in tests/data/mnist-subset")
    })
}

/// Trains `rule` briefly; its test error must be under the bound, and its
/// hidden errors at the end must be aligned with BP's (under 90 degrees)
/// without being BP's (above 1 degree).
fn learns_mnist(rule: RuleKind) {
    let Quick { cfg, bound } = quick(rule);
    let out = run::run(&cfg, mnist(), &RunOptions::default()).unwrap();
    let last = out.records.last().unwrap();
    eprintln!(
        "{rule}: test error {:.2}%, alignment {:?}",
        100.0 * last.test_error,
        last.alignment
    );
    assert!(
        last.test_error < bound,
        "{rule}: test error {:.2}% is above {:.0}%",
        100.0 * last.test_error,
        100.0 * bound
    );
    for i in 0..2 {
        let a = last.alignment[&format!("align_delta_{i}")];
        assert!(a > 1.0 && a < 90.0, "{rule}: hidden error angle {i} is {a}");
    }
    // The run records what the angles were measured on: some of the probe's
    // rows, never more than the probe has.
    let samples = last.alignment["align_samples"];
    assert!(
        samples >= 1.0 && samples <= cfg.batch_size as f64,
        "{rule}: the angles were measured on {samples} samples"
    );
}

#[test]
fn kp_learns_mnist() {
    learns_mnist(RuleKind::Kp);
}

#[test]
fn usf_learns_mnist() {
    learns_mnist(RuleKind::Usf);
}

#[test]
fn frsf_learns_mnist() {
    learns_mnist(RuleKind::Frsf);
}

#[test]
fn brsf_learns_mnist() {
    learns_mnist(RuleKind::Brsf);
}

#[test]
fn drtp_learns_mnist() {
    learns_mnist(RuleKind::Drtp);
}

#[test]
fn dkp_learns_mnist() {
    learns_mnist(RuleKind::Dkp);
}

/// The bound is only worth something if frozen hidden layers miss it.
#[test]
fn the_bound_catches_frozen_hidden_layers() {
    let Quick { cfg, bound } = quick(RuleKind::Bp);
    let base = run::build_trainer(&cfg, mnist(), None).unwrap();
    let frozen = Box::new(common::OutputOnly::new(&base.net));
    let mut t = Trainer::new(base.net, frozen, cfg.optim(), cfg.batch_size);
    let order: Vec<usize> = (0..mnist().train.len()).collect();
    for _ in 0..cfg.epochs {
        t.train_epoch(&mnist().train, &order, cfg.batch_size, |_| {});
    }
    let err = t.evaluate(&mnist().test).unwrap().error_rate();
    eprintln!("output layer only: test error {:.2}%", 100.0 * err);
    assert!(
        err > bound + 0.005,
        "frozen hidden layers reached {:.2}%",
        100.0 * err
    );
}

/// Every new rule is reachable from a config, by its lowercase name.
#[test]
fn every_new_rule_has_its_name_in_configs() {
    for rule in NEW_RULES {
        let cfg = RunConfig::from_toml_str(&format!("rule = \"{rule}\"")).unwrap();
        assert_eq!(cfg.rule, rule);
        assert!(RuleKind::ALL.contains(&rule));
        let t =
            run::build_trainer_sized(&cfg, biprop::layers::Shape::flat(12), 4, None, None).unwrap();
        assert_eq!(t.rule.kind(), rule);
    }
    // In a sweep grid.
    let names: Vec<String> = NEW_RULES.iter().map(|r| format!("\"{r}\"")).collect();
    let grid = format!("[grid]\nrule = [{}]\n", names.join(", "));
    let sweep = biprop::experiment::sweep::Sweep::from_toml_str(&grid, "out".into()).unwrap();
    let rules: Vec<RuleKind> = sweep
        .cells()
        .unwrap()
        .iter()
        .map(|c| c.config.rule)
        .collect();
    assert_eq!(rules, NEW_RULES);
}

/// A report of runs of every rule has a column for each, with the paper's
/// number only beside the paper's rules.
#[test]
fn reports_have_a_column_for_every_rule() {
    use biprop::experiment::report::{self, RunResult};
    let runs: Vec<RunResult> = RuleKind::ALL
        .iter()
        .map(|&rule| RunResult {
            dir: format!("runs/{rule}").into(),
            config: RunConfig {
                rule,
                // One epoch, as the metrics below hold: a finished run.
                epochs: 1,
                ..Default::default()
            },
            epochs: vec![[
                ("test_error".to_string(), 0.05),
                ("val_error".to_string(), 0.04),
            ]
            .into_iter()
            .collect()],
            status: None,
        })
        .collect();
    let md = report::markdown(&report::group(&runs));
    let header = md.lines().find(|l| l.starts_with("| model |")).unwrap();
    for rule in RuleKind::ALL {
        assert!(
            header.contains(&format!(" {} |", rule.name().to_uppercase())),
            "{header}"
        );
    }
    let row = md.lines().find(|l| l.starts_with("| 1x800 |")).unwrap();
    // BP's cell carries the paper's 1.92; the rules beyond the paper's none.
    assert!(row.contains("(1.92)"), "{row}");
    let cells: Vec<&str> = row
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells.len(), 1 + RuleKind::ALL.len(), "{row}");
    for cell in &cells[6..] {
        assert_eq!(*cell, "5.00 (n=1)", "{row}");
    }
}

/// The settings of the new rules: each applies where it has an effect, and
/// nonsense is refused with the reason.
#[test]
fn new_rule_settings_apply_where_they_mean_something() {
    let unused = |toml: &str| -> Vec<&'static str> {
        let cfg = RunConfig::from_toml_str(toml).unwrap();
        cfg.unused_settings().into_iter().map(|(k, _)| k).collect()
    };
    for (rule, used, not_used) in [
        (
            "kp",
            &["kp_decay", "feedback_scale"][..],
            &[
                "weight_decay",
                "feedback_lr",
                "feedback_optimizer",
                "feedback_momentum",
            ][..],
        ),
        (
            "dkp",
            &[
                "kp_decay",
                "feedback_scale",
                "feedback_lr",
                "feedback_optimizer",
                "feedback_momentum",
            ][..],
            &["weight_decay"][..],
        ),
        (
            "usf",
            &["weight_decay"][..],
            &["feedback_scale", "kp_decay", "feedback_lr"][..],
        ),
        (
            "frsf",
            &["feedback_scale"][..],
            &["kp_decay", "feedback_lr"][..],
        ),
        (
            "brsf",
            &["feedback_scale"][..],
            &["kp_decay", "feedback_lr"][..],
        ),
        (
            "drtp",
            &["feedback_scale"][..],
            &["kp_decay", "feedback_lr"][..],
        ),
        ("bp", &["weight_decay"][..], &["kp_decay"][..]),
    ] {
        let u = unused(&format!("rule = \"{rule}\""));
        for k in used {
            assert!(!u.contains(k), "{rule}: {k} should apply");
        }
        for k in not_used {
            assert!(u.contains(k), "{rule}: {k} should not apply");
        }
    }
    // KP's decay reaches both sides: the forward optimizer and B's.
    let cfg =
        RunConfig::from_toml_str("rule = \"kp\"\nkp_decay = 0.2\nweight_decay = 0.5").unwrap();
    assert_eq!(cfg.optim().weight_decay, 0.2);
    assert_eq!(cfg.rule_options().feedback_opt, cfg.optim());
    let cfg =
        RunConfig::from_toml_str("rule = \"dkp\"\nkp_decay = 0.2\nfeedback_lr = 0.3").unwrap();
    assert_eq!(cfg.rule_options().feedback_opt.weight_decay, 0.2);
    assert_eq!(cfg.rule_options().feedback_opt.lr, 0.3);
    assert_eq!(
        RunConfig::default().kp_decay,
        biprop::rules::KP_DEFAULT_DECAY
    );
    for (toml, want) in [
        ("rule = \"kp\"\nkp_decay = 0.0", "without decay"),
        ("rule = \"dkp\"\nkp_decay = 0.0", "without decay"),
        ("kp_decay = -1.0", "kp-decay must be"),
        (
            "rule = \"kp\"\ninit = \"reference\"",
            "no kp initialization",
        ),
        (
            "rule = \"drtp\"\ninit = \"reference\"",
            "no drtp initialization",
        ),
        (
            "rule = \"usf\"\ninit = \"reference\"",
            "no usf initialization",
        ),
    ] {
        let err = RunConfig::from_toml_str(toml).unwrap_err().to_string();
        assert!(err.contains(want), "{toml}: {err}");
    }
    // A zero decay means nothing to the other rules.
    assert!(RunConfig::from_toml_str("rule = \"fa\"\nkp_decay = 0.0").is_ok());
}
