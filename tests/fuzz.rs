//! Property-based fuzzing of every parser of outside input: IDX (raw and
//! gzip), CIFAR-10 batches, and run configurations. None may panic; what they
//! accept must be consistent. Each target runs `FUZZ_CASES` inputs (2,000 by
//! default) and reports how many it tried: `FUZZ_CASES=1000000 cargo test
//! --release --test fuzz -- --nocapture` is the long campaign.

use biprop::config::RunConfig;
use biprop::data::cifar::{parse_batch, PIXELS, RECORD};
use biprop::data::idx::{encode_idx, gunzip_if_gzip, parse_idx};
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
