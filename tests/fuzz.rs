//! Property-based fuzzing of every parser of outside input: IDX (raw and
//! gzip), CIFAR-10 batches, and run configurations. None may panic; what they
//! accept must be consistent; and whole runs of random settings
//! (`settings_never_panic`). Each target runs `FUZZ_CASES` inputs (2,000 by
//! default, 300 for the settings) and reports how many it tried:
//! `FUZZ_CASES=1000000 cargo test --release --test fuzz -- --nocapture` is
//! the long campaign.

mod common;

use biprop::config::RunConfig;
use biprop::data::cifar::{parse_batch, PIXELS, RECORD};
use biprop::data::idx::{encode_idx, gunzip_if_gzip, parse_idx};
use biprop::data::{Splits, Standardize};
use biprop::run::{self, RunOptions};
use common::synthetic as common_synthetic;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Near-valid IDX files: a plausible header with random fields and a data
/// part of random length.
fn idx_like() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..3,
        prop::sample::select(vec![0x08u8, 0x09, 0x0d, 0xff]),
        0u8..5,
        prop::collection::vec(0u32..6, 0..5),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(m, ty, nd, dims, data)| {
            let mut v = vec![0, m, ty, nd];
            for d in dims {
                v.extend_from_slice(&d.to_be_bytes());
            }
            v.extend(data);
            v
        })
}

/// Runs `test` on `FUZZ_CASES` inputs from `strategy`; a panic or a failed
/// property fails the test with the (shrunk) input.
fn campaign<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    campaign_of(name, cases, strategy, test)
}

/// [`campaign`] of `cases` inputs.
fn campaign_of<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let tried = AtomicUsize::new(0);
    let result = runner.run(&strategy, |v| {
        tried.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!(
        "fuzz {name}: {} inputs, none panicked",
        tried.load(Ordering::Relaxed)
    );
}

#[test]
fn idx_never_panics() {
    campaign(
        "idx bytes",
        prop::collection::vec(any::<u8>(), 0..96),
        |bytes| {
            let _ = parse_idx(&bytes, Path::new("fuzz"));
            Ok(())
        },
    );
}

#[test]
fn idx_accepts_exactly_consistent_files() {
    campaign("idx near-valid", idx_like(), |bytes| {
        if let Ok(a) = parse_idx(&bytes, Path::new("fuzz")) {
            prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            prop_assert_eq!(encode_idx(&a.dims, &a.data), bytes);
        }
        Ok(())
    });
}

#[test]
fn gzip_never_panics() {
    let strategy = (prop::collection::vec(any::<u8>(), 0..128), 0usize..200);
    campaign("gzip", strategy, |(bytes, cut)| {
        let mut g = gz(&bytes);
        let n = cut.min(g.len());
        let _ = gunzip_if_gzip(g[..n].to_vec(), Path::new("fuzz.gz"));
        if g.len() > 12 {
            g[12] ^= 0x55;
            let _ = gunzip_if_gzip(g, Path::new("fuzz.gz"));
        }
        let mut raw = vec![0x1f, 0x8b];
        raw.extend(&bytes);
        let _ = gunzip_if_gzip(raw, Path::new("fuzz.gz"));
        Ok(())
    });
}

#[test]
fn cifar_never_panics_and_keeps_records_whole() {
    let strategy = (0usize..3, 0usize..4, any::<u8>(), any::<u8>());
    campaign("cifar", strategy, |(records, extra, label, fill)| {
        let mut bytes = vec![fill; records * RECORD + extra];
        if !bytes.is_empty() {
            bytes[0] = label;
        }
        match parse_batch(&bytes, Path::new("fuzz.bin")) {
            Ok(b) => {
                prop_assert_eq!(extra, 0);
                prop_assert!(label < 10);
                prop_assert_eq!(b.pixels.len(), b.labels.len() * PIXELS);
                prop_assert!(b.labels.iter().all(|&l| l < 10));
            }
            Err(e) => prop_assert!(e.to_string().contains("fuzz.bin")),
        }
        Ok(())
    });
}

#[test]
fn config_never_panics() {
    campaign("config text", "\\PC{0,80}", |text: String| {
        let _ = RunConfig::from_toml_str(&text);
        Ok(())
    });
}

#[test]
fn config_names_the_bad_key() {
    let keys = prop::sample::select(vec![
        "epochs",
        "lr",
        "hidden",
        "rule",
        "batch_size",
        "seed",
        "optimizer",
        "output",
        "activation",
        "threads",
        "train_limit",
        "feedback_lr",
        "bdfa_update",
        "nonsense_key",
    ]);
    let values = prop::sample::select(vec![
        "3",
        "-1",
        "0.5",
        "\"2x800\"",
        "\"bp\"",
        "[800, 0]",
        "true",
        "\"\"",
        "1e400",
        "[]",
    ]);
    campaign("config key=value", (keys, values), |(key, value)| {
        let text = format!("{key} = {value}\n");
        match RunConfig::from_toml_str(&text) {
            Ok(c) => prop_assert!(c.validate().is_ok()),
            Err(e) => {
                let msg = e.to_string();
                // A parse error names the key; a validation error names the setting.
                let setting = key.replace('_', "-");
                prop_assert!(
                    msg.contains(key) || msg.contains(&setting) || msg.contains("hidden"),
                    "{} = {}: {}",
                    key,
                    value,
                    msg
                );
            }
        }
        Ok(())
    });
}

/// A size as a user might type it: mostly small, sometimes absurd.
fn size() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 1i64..24,
        1 => prop::sample::select(vec![0i64, 1 << 20, 1_000_000_000, 1 << 40, i64::MAX]),
    ]
}

/// One item of a `layers` description, well-formed or not.
fn layer_item() -> impl Strategy<Value = String> {
    let small = || prop_oneof![6 => 1i64..5, 1 => size()];
    prop_oneof![
        3 => (size(), small(), small(), prop::option::of(small()), prop::option::of(0i64..3))
            .prop_map(|(o, kh, kw, s, p)| {
                let mut t = format!("conv {o} {kh}x{kw}");
                if let Some(s) = s {
                    t.push_str(&format!(" stride {s}"));
                }
                if let Some(p) = p {
                    t.push_str(&format!(" pad {p}"));
                }
                t
            }),
        2 => (prop::bool::ANY, small(), prop::option::of(small())).prop_map(|(max, k, s)| {
            let kind = if max { "maxpool" } else { "avgpool" };
            match s {
                Some(s) => format!("{kind} {k} stride {s}"),
                None => format!("{kind} {k}"),
            }
        }),
        2 => prop::sample::select(vec!["relu", "tanh", "sigmoid"]).prop_map(String::from),
        1 => Just("flatten".to_string()),
        2 => size().prop_map(|o| format!("dense {o}")),
    ]
}

/// The network: an MLP's hidden widths, a preset, or a description (often
/// of the shape that builds: convolutions, then flatten and dense layers).
fn network() -> impl Strategy<Value = (String, toml::Value)> {
    let s = |v: &str| toml::Value::String(v.to_string());
    prop_oneof![
        3 => prop::collection::vec(size(), 0..4).prop_map(|h| {
            ("hidden".to_string(), toml::Value::Array(h.into_iter().map(toml::Value::Integer).collect()))
        }),
        1 => prop::sample::select(biprop::layers::spec::Preset::all().iter().map(|p| p.name()).collect::<Vec<_>>())
            .prop_map(move |n| ("net".to_string(), s(n))),
        2 => prop::collection::vec(layer_item(), 1..7)
            .prop_map(|items| ("layers".to_string(), toml::Value::String(items.join(", ")))),
        3 => (
            prop::collection::vec((layer_item(), prop::option::of(Just("relu"))), 0..3),
            prop::collection::vec(size(), 0..2),
            2i64..11,
        )
            .prop_map(|(convs, dense, classes)| {
                let mut items: Vec<String> = Vec::new();
                for (c, act) in convs {
                    items.push(c);
                    items.extend(act.map(String::from));
                }
                items.push("flatten".into());
                items.extend(dense.iter().map(|d| format!("dense {d}")));
                items.push(format!("dense {classes}"));
                ("layers".to_string(), toml::Value::String(items.join(", ")))
            }),
    ]
}

/// Mostly one of `good`, sometimes one of `bad`: each setting is usually
/// valid, so that whole runs are reached, and each is sometimes absurd.
fn mostly<T: Clone + std::fmt::Debug + 'static>(good: Vec<T>, bad: Vec<T>) -> BoxedStrategy<T> {
    prop_oneof![
        12 => prop::sample::select(good),
        1 => prop::sample::select(bad),
    ]
    .boxed()
}

fn rate() -> BoxedStrategy<f64> {
    mostly(
        vec![0.05, 0.5, 0.0, 1e-30, 1e30, 3e38],
        vec![-0.1, f64::NAN, f64::INFINITY],
    )
}

/// Well-typed settings, one table of overrides: every kind of value a user
/// can give, ordinary and absurd, and the data they run on.
#[derive(Clone, Debug)]
struct Case {
    settings: toml::Table,
    /// The synthetic samples' shape `(c, h, w)`, training and test counts.
    image: (usize, usize, usize),
    samples: (usize, usize),
    /// Put a NaN into the batch given to the trainer directly.
    nan: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let rules = prop::sample::select(vec![
        "bp", "fa", "dfa", "bfa", "bdfa", "kp", "usf", "frsf", "brsf", "drtp", "dkp",
    ]);
    let optim = (
        prop::sample::select(vec!["sgd", "adam"]),
        rate(),
        mostly(vec![0.0, 0.5, 0.9], vec![1.0, -0.1, f64::NAN]),
        prop::option::of(rate()),
        mostly(vec![0.0, 1e-4, 0.01], vec![-1.0, f64::NAN]),
        prop_oneof![
            6 => prop::collection::btree_set(1i64..5, 0..3).prop_map(|s| s.into_iter().collect::<Vec<_>>()),
            1 => prop::collection::vec(0i64..5, 0..3),
        ],
        mostly(vec![0.1, 0.5, 2.0], vec![0.0, f64::NAN]),
    );
    let run = (
        mostly(vec![0i64, 1, 2, 3], vec![9, 1024, 1025, 100_000, i64::MAX]),
        mostly(vec![1i64, 2, 7, 16], vec![0, 1 << 30, i64::MAX]),
        0i64..3,
        prop::option::of(mostly(vec![1i64, 5, 1000], vec![0, i64::MAX])),
        mostly(vec![0i64, 1, 8], vec![40, 100, i64::MAX]),
        prop::bool::ANY,
        prop::bool::ANY,
    );
    let shape = (
        1usize..4,
        1usize..11,
        1usize..11,
        8usize..48,
        1usize..10,
        prop::bool::ANY,
    );
    let extra = (
        mostly(vec!["default", "xavier"], vec!["reference"]),
        prop::sample::select(vec!["sigmoid-bce", "softmax-ce", "identity"]),
        prop::sample::select(vec!["tanh", "relu", "sigmoid"]),
        mostly(vec![0.01], vec![0.0, f64::NAN]),
        mostly((2i64..11).collect(), vec![0, 1, 257]),
        prop::sample::select(vec!["none", "flip", "crop", "flip-crop"]),
        prop::sample::select(vec!["none", "channel"]),
    );
    (rules, network(), optim, run, shape, extra).prop_map(|(rule, (net_key, net), o, r, s, e)| {
        let mut t = toml::Table::new();
        let mut set = |k: &str, v: toml::Value| {
            t.insert(k.to_string(), v);
        };
        let text = |v: &str| toml::Value::String(v.to_string());
        set("rule", text(rule));
        set(&net_key, net);
        set("optimizer", text(o.0));
        set("lr", toml::Value::Float(o.1));
        set("momentum", toml::Value::Float(o.2));
        if let Some(f) = o.3 {
            set("feedback_lr", toml::Value::Float(f));
        }
        set("weight_decay", toml::Value::Float(o.4));
        set(
            "lr_milestones",
            toml::Value::Array(o.5.into_iter().map(toml::Value::Integer).collect()),
        );
        set("lr_gamma", toml::Value::Float(o.6));
        set("threads", toml::Value::Integer(r.0));
        set("batch_size", toml::Value::Integer(r.1));
        set("epochs", toml::Value::Integer(r.2));
        if let Some(l) = r.3 {
            set("train_limit", toml::Value::Integer(l));
        }
        set("val_size", toml::Value::Integer(r.4));
        set("alignment", toml::Value::Boolean(r.5));
        set("shuffle", toml::Value::Boolean(r.6));
        set("init", text(e.0));
        set("output", text(e.1));
        set("activation", text(e.2));
        set("kp_decay", toml::Value::Float(e.3));
        set("augment", text(e.5));
        set("normalize", text(e.6));
        // An idx data set takes any number of classes; the synthetic
        // samples below are its.
        set("dataset", text("idx"));
        set("classes", toml::Value::Integer(e.4));
        Case {
            settings: t,
            image: (s.0, s.1, s.2),
            samples: (s.3, s.4),
            nan: s.5,
        }
    })
}

/// How far the cases got: valid settings, past the checks, a run that
/// trained an epoch, a trainer that took a finite step.
static STAGES: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

/// What a trainer of `case` may hold before the fuzzer builds it: more is
/// checked (the memory refusal) but not allocated, to keep cases quick.
const FUZZ_BUILD_BYTES: u128 = 32 << 20;

/// Builds the run of `case` and trains it on synthetic data (when the
/// memory check allows and it is small), then steps, evaluates and
/// predicts through the trainer directly, with a NaN in the batch when
/// `case.nan`. Refusals are fine; a panic is the failure.
fn run_case(case: &Case) {
    use biprop::resources::{self, Category, Extras};
    let Ok(cfg) = RunConfig::from_layers(std::slice::from_ref(&case.settings)) else {
        return;
    };
    STAGES[0].fetch_add(1, Ordering::Relaxed);
    let (c, h, w) = case.image;
    let image = biprop::layers::Shape::new(c, h, w);
    let classes = cfg.classes;
    let extras = Extras {
        alignment: cfg.alignment,
        ..Default::default()
    };
    // The checks allocate nothing, whatever the sizes.
    let preflight = resources::preflight(&cfg, image, classes, &extras);
    let Ok(est) = resources::estimate(&cfg, image, classes, &extras) else {
        assert!(
            preflight.is_err(),
            "a plan that fails must fail the preflight"
        );
        return;
    };
    let trainer_bytes: u128 = est
        .parts
        .iter()
        .filter(|p| p.category != Category::Program)
        .fold(0u128, |t, p| t.saturating_add(p.bytes));
    if preflight.is_err() || trainer_bytes > FUZZ_BUILD_BYTES {
        return;
    }
    STAGES[1].fetch_add(1, Ordering::Relaxed);
    let d = image.len();
    let (n, m) = case.samples;
    let data = |n: usize, seed: u64| {
        let mut ds = common_synthetic(n, d, classes, seed);
        ds.image = (c, h, w);
        ds
    };
    if let Ok(mut splits) = Splits::new(data(n, 1), data(m, 2), cfg.val_size) {
        if let Some(l) = cfg.train_limit {
            if l < splits.train.len() {
                splits.train = splits.train.slice(0..l);
            }
        }
        if run::run(&cfg, &splits, &RunOptions::default()).is_ok_and(|s| !s.records.is_empty()) {
            STAGES[2].fetch_add(1, Ordering::Relaxed);
        }
    }
    // A standardized trainer takes its statistics from a data set (which
    // may have constant channels, and be refused).
    let standardize = match cfg.normalize {
        biprop::data::Normalize::None => None,
        biprop::data::Normalize::Channel => match Standardize::fit(&data(n, 1)) {
            Ok(s) => Some(s),
            Err(_) => return,
        },
    };
    let Ok(mut t) = run::build_trainer_sized(&cfg, image, classes, None, standardize) else {
        return;
    };
    let rows = t.max_rows().min(n);
    let mut x: Vec<f32> = (0..rows * d).map(|i| (i % 17) as f32 / 17.0).collect();
    if case.nan && !x.is_empty() {
        let at = x.len() / 2;
        x[at] = f32::NAN;
    }
    let mut y = vec![0.0f32; rows * classes];
    (0..rows).for_each(|r| y[r * classes + r % classes] = 1.0);
    let loaded = t.load_rows(&x, &y, rows);
    assert_eq!(
        loaded.is_err(),
        case.nan,
        "a NaN input is refused, nothing else"
    );
    if loaded.is_ok() && t.step(rows).is_ok() {
        STAGES[3].fetch_add(1, Ordering::Relaxed);
    }
    let labels: Vec<u8> = (0..rows).map(|r| (r % classes) as u8).collect();
    let _ = t.evaluate_slices(&x, &labels);
    let mut out = vec![0.0f32; rows * classes];
    let _ = t.predict_into(&x, &mut out);
}

/// Random, well-typed settings (rules, MLPs with huge widths, layer
/// descriptions of random convolutions, pools and dense layers, thread
/// counts, batch sizes, rates NaN and negative, schedules, data limits):
/// building the run and training a step never panics. 300 cases unless
/// `FUZZ_CASES` says (docs/reliability.md records a campaign of 100,000).
#[test]
fn settings_never_panic() {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    campaign_of("settings", cases, case(), |case| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(&case)));
        match outcome {
            Ok(()) => Ok(()),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(TestCaseError::fail(format!(
                    "panicked: {msg}\non {case:#?}"
                )))
            }
        }
    });
    let [valid, checked, trained, stepped] = STAGES.each_ref().map(|s| s.load(Ordering::Relaxed));
    eprintln!(
        "fuzz settings: {valid} valid settings, {checked} past the memory and thread checks \
         and built, {trained} runs trained an epoch or more, {stepped} trainers took a finite step"
    );
}
