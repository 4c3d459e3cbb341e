//! The flags reach the run: each is defined once and lands under its config key.

use super::settings::{flag_of, SettingsArgs};
use super::train::TrainArgs;
use super::*;
use crate::config::parse_hidden;
use crate::rules::{BdfaTarget, BdfaUpdate};
use clap::Args;
use clap::CommandFactory;

/// A non-default value for every settings flag (by its field name), and
/// the flags that make it matter to the run.
const SAMPLES: &[(&str, Option<&str>, &[&str])] = &[
    ("rule", Some("dfa"), &[]),
    ("hidden", Some("2x400"), &[]),
    ("activation", Some("relu"), &[]),
    ("net", Some("lenet-mnist"), &[]),
    ("layers", Some("dense 64, relu, dense 10"), &[]),
    ("output", Some("softmax-ce"), &[]),
    ("init", Some("reference"), &["--rule", "dfa"]),
    ("feedback_scale", Some("receiver"), &["--rule", "fa"]),
    ("epochs", Some("7"), &[]),
    ("batch_size", Some("64"), &[]),
    ("optimizer", Some("adam"), &[]),
    ("lr", Some("0.5"), &[]),
    ("lr_milestones", Some("5,8"), &[]),
    ("lr_gamma", Some("0.5"), &["--lr-milestones", "3"]),
    ("momentum", Some("0.9"), &[]),
    ("weight_decay", Some("0.001"), &[]),
    ("beta1", Some("0.8"), &["--optimizer", "adam"]),
    ("beta2", Some("0.99"), &["--optimizer", "adam"]),
    ("eps", Some("1e-6"), &["--optimizer", "adam"]),
    ("seed", Some("9"), &[]),
    ("threads", Some("3"), &[]),
    ("dataset", Some("cifar10"), &[]),
    ("data_dir", Some("/some/where"), &[]),
    ("classes", Some("5"), &["--dataset", "idx"]),
    ("val_size", Some("5000"), &[]),
    ("train_limit", Some("1000"), &[]),
    ("feedback_lr", Some("0.3"), &["--rule", "bfa"]),
    ("feedback_optimizer", Some("adam"), &["--rule", "bfa"]),
    ("feedback_momentum", Some("0.5"), &["--rule", "bdfa"]),
    ("bfa_output", Some("identity"), &["--rule", "bfa"]),
    ("bfa_feedback_scale", Some("receiver"), &["--rule", "bfa"]),
    ("usf_scale", Some("xavier"), &["--rule", "usf"]),
    (
        "dfa_projection",
        Some("kernel"),
        &["--rule", "dfa", "--net", "lenet-mnist"],
    ),
    ("bdfa_update", Some("reference"), &["--rule", "bdfa"]),
    ("bdfa_target", Some("mixed"), &["--rule", "bdfa"]),
    (
        "bdfa_alpha",
        Some("0.5"),
        &["--rule", "bdfa", "--bdfa-target", "mixed"],
    ),
    ("kp_decay", Some("0.05"), &["--rule", "kp"]),
    ("gemm", Some("gemm"), &[]),
    ("augment", Some("flip-crop"), &[]),
    ("normalize", Some("channel"), &[]),
    ("no_shuffle", None, &[]),
    ("no_alignment", None, &[]),
];

fn train_args(words: &[&str]) -> std::result::Result<TrainArgs, clap::Error> {
    let argv = ["biprop", "train"].iter().chain(words);
    match Cli::try_parse_from(argv)?.command {
        Command::Train(a) => Ok(*a),
        _ => unreachable!(),
    }
}

fn resolved(words: &[&str]) -> toml::Table {
    let cfg = train_args(words).unwrap().resolve().unwrap();
    cfg.to_toml().parse().unwrap()
}

fn settings_flags() -> Vec<String> {
    SettingsArgs::augment_args(clap::Command::new("x"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

/// Every settings flag, set to a non-default value, changes its key in
/// the resolved config (what config.toml records), and every config key
/// has a flag: a flag dropped between the parser and the run fails here.
#[test]
fn every_flag_lands_in_the_config_and_every_key_has_a_flag() {
    let flags = settings_flags();
    for f in &flags {
        assert!(
            SAMPLES.iter().any(|(name, ..)| name == f),
            "flag {f} has no sample in this test"
        );
    }
    let mut keys_set = std::collections::BTreeSet::new();
    let mut keys_seen = std::collections::BTreeSet::new();
    for (name, value, context) in SAMPLES {
        assert!(flags.iter().any(|f| f == name), "no flag {name}");
        let flag = flag_of(name);
        let mut words: Vec<&str> = context.to_vec();
        words.push(&flag);
        words.extend(value.iter());
        let base = resolved(context);
        let set = resolved(&words);
        let over = train_args(&words).unwrap().settings.overrides().unwrap();
        let key = over
            .keys()
            .find(|k| {
                !train_args(context)
                    .unwrap()
                    .settings
                    .overrides()
                    .unwrap()
                    .contains_key(*k)
            })
            .unwrap_or_else(|| panic!("{flag} sets no key"))
            .clone();
        assert_ne!(
            base.get(&key),
            set.get(&key),
            "{flag} did not change {key} in the config"
        );
        // As the run sees it: hidden widths as a list, floats as f32.
        let as_run = |v: &toml::Value| match v {
            toml::Value::Float(f) => toml::Value::Float(f64::from(*f as f32)),
            toml::Value::String(h) if key == "hidden" => toml::Value::Array(
                parse_hidden(h)
                    .unwrap()
                    .into_iter()
                    .map(|w| (w as i64).into())
                    .collect(),
            ),
            v => v.clone(),
        };
        assert_eq!(
            set.get(&key).map(as_run),
            over.get(&key).map(as_run),
            "{flag}"
        );
        keys_set.insert(key);
        keys_seen.extend(set.keys().cloned());
    }
    let missing: Vec<_> = keys_seen.difference(&keys_set).collect();
    assert!(
        missing.is_empty(),
        "config keys without a flag: {missing:?}"
    );
}

/// A flag that would change nothing is refused, with the reason.
#[test]
fn flags_without_effect_are_refused() {
    for (words, want) in [
        (&["--bdfa-alpha", "0.5"][..], "--bdfa-alpha has no effect"),
        (
            &["--rule", "bdfa", "--bdfa-alpha", "0.5"][..],
            "--bdfa-target mixed or reference",
        ),
        (&["--feedback-lr", "0.1"][..], "no learning feedback"),
        (
            &["--rule", "fa", "--bfa-output", "identity"][..],
            "bfa only",
        ),
        (
            &["--feedback-scale", "receiver"][..],
            "no fixed random feedback",
        ),
        (&["--beta1", "0.5"][..], "adam only"),
        (
            &["--optimizer", "adam", "--momentum", "0.9"][..],
            "sgd only",
        ),
        (
            &[
                "--rule",
                "bfa",
                "--optimizer",
                "adam",
                "--feedback-optimizer",
                "adam",
                "--momentum",
                "0.9",
            ][..],
            "sgd only",
        ),
        (
            &[
                "--rule",
                "fa",
                "--net",
                "lenet-mnist",
                "--dfa-projection",
                "kernel",
            ][..],
            "dfa only",
        ),
        (
            &["--rule", "dfa", "--dfa-projection", "kernel"][..],
            "this network has none",
        ),
        (
            &[
                "--rule",
                "dfa",
                "--layers",
                "conv 4 3x3, relu, flatten, dense 32, relu, dense 10",
                "--dfa-projection",
                "kernel",
            ][..],
            "this network has none",
        ),
        (&["--classes", "5"][..], "10 classes"),
        (
            &["--init", "reference"][..],
            "initializes BP as the default",
        ),
        (
            &["--rule", "bfa", "--init", "reference"][..],
            "no BFA initialization",
        ),
        (
            &[
                "--rule",
                "fa",
                "--init",
                "reference",
                "--feedback-scale",
                "sender",
            ][..],
            "receiver scale",
        ),
    ] {
        let err = train_args(words)
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{words:?}: {err}");
    }
    // Momentum still reaches BFA's feedback under sgd when the forward optimizer is adam.
    let cfg = train_args(&[
        "--rule",
        "bfa",
        "--optimizer",
        "adam",
        "--feedback-optimizer",
        "sgd",
        "--momentum",
        "0.9",
    ])
    .unwrap()
    .resolve()
    .unwrap();
    assert_eq!(cfg.rule_options().feedback_opt.momentum, 0.9);
    // The same keys in a TOML file (a sweep's base serves every rule) are fine.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "bdfa_alpha = 0.5\nfeedback_scale = \"receiver\"\n").unwrap();
    let cfg = train_args(&["--config", file.to_str().unwrap()])
        .unwrap()
        .resolve()
        .unwrap();
    assert_eq!(cfg.bdfa_alpha, 0.5);
}

/// Flags override the file; the file overrides the defaults.
#[test]
fn flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "epochs = 3\nlr = 0.2\nrule = \"bdfa\"\nbdfa_update = \"reference\"\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let cfg = train_args(&[
        "--config",
        path,
        "--epochs",
        "5",
        "--bdfa-target",
        "reference",
    ])
    .unwrap()
    .resolve()
    .unwrap();
    assert_eq!((cfg.epochs, cfg.lr), (5, 0.2));
    assert_eq!(cfg.bdfa_update, BdfaUpdate::Reference);
    assert_eq!(cfg.bdfa_target, BdfaTarget::Reference);
    std::fs::write(&file, "epochz = 3\n").unwrap();
    let err = train_args(&["--config", path])
        .unwrap()
        .resolve()
        .unwrap_err();
    assert!(format!("{err:#}").contains("epochz"), "{err:#}");
}

/// generate's options are checked instead of clamped or ignored.
#[test]
fn generate_refuses_what_it_would_ignore() {
    for words in [
        &["generate", "r", "--reconstruct", "4", "--mix", "3:1"][..],
        &["generate", "r", "--reconstruct", "0"][..],
        &["generate", "r", "--scale", "0"][..],
        &["generate", "r", "--scale", "33"][..],
        &["generate", "r", "--data-dir", "d"][..],
    ] {
        let argv = std::iter::once(&"biprop").chain(words);
        assert!(Cli::try_parse_from(argv).is_err(), "{words:?} accepted");
    }
    Cli::command().debug_assert();
}
