//! Golden results: short runs of every rule (and a few variants) on the
//! committed MNIST subset, on each GEMM backend and on 1 and 2 threads,
//! whose final checkpoint tensors and metrics must hash to the values in
//! `tests/golden/results.toml`, recorded on a commit before the engine was
//! rebuilt around layers. A refactoring of the engine that changes one bit
//! of any run fails here.
//!
//! The bits of a product depend on the CPU's GEMM kernels (their vector
//! width and cache blocking), so the recorded hashes hold for the CPU that
//! recorded them. On another CPU the comparison is skipped, loudly, naming
//! both; the checks that hold everywhere still run (1 and 2 threads give the
//! same bits; every run finishes with finite, distinct results).
//!
//! Record (only on a commit whose results are the reference):
//! `BIPROP_GOLDEN_RECORD=1 cargo test --release --test golden`, which adds or
//! replaces this CPU's entries.

use biprop::config::RunConfig;
use biprop::data::Splits;
use biprop::run::{self, RunOptions};
use biprop::tensor::{CpuInfo, GemmBackend};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;

/// The runs: a name and the settings over the common base.
fn cases() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = biprop::rules::RuleKind::ALL
        .iter()
        .map(|r| (r.name().to_string(), format!("rule = \"{r}\"")))
        .collect();
    for (name, extra) in [
        (
            "bp-momentum-decay-relu-softmax",
            "rule = \"bp\"\nmomentum = 0.9\nweight_decay = 0.001\nactivation = \"relu\"\noutput = \"softmax-ce\"",
        ),
        ("fa-reference-init", "rule = \"fa\"\ninit = \"reference\""),
        (
            "dfa-sigmoid-receiver",
            "rule = \"dfa\"\nactivation = \"sigmoid\"\nfeedback_scale = \"receiver\"",
        ),
        (
            "bdfa-reference",
            "rule = \"bdfa\"\ninit = \"reference\"\nbdfa_update = \"reference\"\nbdfa_target = \"reference\"",
        ),
        (
            "bdfa-mixed-momentum",
            "rule = \"bdfa\"\nbdfa_target = \"mixed\"\nmomentum = 0.5",
        ),
        (
            "bfa-adam-identity-receiver",
            "rule = \"bfa\"\noptimizer = \"adam\"\nlr = 0.001\nbfa_output = \"identity\"\nbfa_feedback_scale = \"receiver\"",
        ),
        ("kp-adam", "rule = \"kp\"\noptimizer = \"adam\"\nlr = 0.001"),
        ("dkp-feedback-lr", "rule = \"dkp\"\nfeedback_lr = 0.02"),
    ] {
        v.push((name.to_string(), extra.to_string()));
    }
    v
}

/// 784-64-32-10 tanh, 2 epochs of 1,024 training images, batch 128,
/// validation on 512, alignment on.
const BASE: &str = "dataset = \"idx\"\nclasses = 10\nhidden = [64, 32]\nepochs = 2\n\
                    train_limit = 1024\nval_size = 512\nbatch_size = 128\nseed = 7\nlr = 0.05\n";

fn config(extra: &str, backend: GemmBackend, threads: usize) -> RunConfig {
    let run = format!(
        "gemm = \"{backend}\"\nthreads = {threads}\ndata_dir = {:?}\n",
        common::mnist_subset().display().to_string()
    );
    let tables: Vec<toml::Table> = [BASE, extra, &run]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    RunConfig::from_layers(&tables).unwrap_or_else(|e| panic!("{extra}: {e}"))
}

/// A fingerprint of what decides a product's bits: the CPU (vendor, model,
/// AVX-512) and its cache sizes (the GEMM blocking follows them).
fn fingerprint() -> String {
    let cpu = CpuInfo::read();
    let mut caches = Vec::new();
    for i in 0..4 {
        let dir = PathBuf::from(format!("/sys/devices/system/cpu/cpu0/cache/index{i}"));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).map(|s| s.trim().to_string());
        if let (Ok(level), Ok(kind), Ok(size)) = (read("level"), read("type"), read("size")) {
            caches.push(format!("L{level}{}={size}", &kind[..1].to_lowercase()));
        }
    }
    format!(
        "{} | {} | avx512f={} | {}",
        cpu.vendor,
        cpu.model,
        cpu.avx512f,
        caches.join(",")
    )
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 over every tensor of a checkpoint, in name order: name, shape,
/// little-endian bytes. (The metadata is left out: it holds the data path.)
fn checkpoint_hash(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(|n| n.to_string()).collect();
    names.sort();
    let mut h = Sha256::new();
    for n in names {
        let t = st.tensor(&n).unwrap();
        h.update(n.as_bytes());
        h.update(format!("{:?}", t.shape()).as_bytes());
        h.update(t.data());
    }
    hex(h.finalize())
}

/// SHA-256 of metrics.csv without its two timing columns.
fn metrics_hash(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !matches!(header[i], "seconds" | "train_seconds"))
        .collect();
    let mut h = Sha256::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split(',').collect();
        let kept: Vec<&str> = keep.iter().map(|&i| cells[i]).collect();
        h.update(kept.join(",").as_bytes());
        h.update(b"\n");
    }
    hex(h.finalize())
}

fn golden_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/results.toml")
}

/// `fingerprint -> key -> [checkpoint hash, metrics hash]`.
type Goldens = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn read_goldens() -> (String, Goldens) {
    let text = std::fs::read_to_string(golden_file()).unwrap_or_default();
    let table: toml::Table = text.parse().expect("tests/golden/results.toml is TOML");
    let commit = table
        .get("recorded_at")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let runs = table
        .get("cpu")
        .cloned()
        .map(|v| v.try_into().expect("[cpu] tables of hash pairs"))
        .unwrap_or_default();
    (commit, runs)
}

#[test]
fn every_golden_run_is_bit_for_bit_the_recorded_one() {
    let splits: Splits = run::load_data(&config("", GemmBackend::Faer, 1)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, extra) in cases() {
        for backend in GemmBackend::CONCRETE {
            let mut per_thread = Vec::new();
            for threads in [1, 2] {
                let key = format!("{name}.{backend}.t{threads}");
                let dir = tmp.path().join(&key);
                let opts = RunOptions {
                    out_dir: Some(dir.clone()),
                    ..Default::default()
                };
                let summary = run::run(&config(&extra, backend, threads), &splits, &opts)
                    .unwrap_or_else(|e| panic!("{key}: {e}"));
                let last = summary.records.last().unwrap();
                assert!(last.test_loss.is_finite(), "{key}: test loss not finite");
                let hashes = vec![
                    checkpoint_hash(&dir.join("checkpoint.safetensors")),
                    metrics_hash(&dir.join("metrics.csv")),
                ];
                per_thread.push(hashes.clone());
                got.insert(key, hashes);
            }
            // The thread count never changes a bit, on any CPU.
            assert_eq!(
                per_thread[0], per_thread[1],
                "{name} on {backend}: 1 and 2 threads differ"
            );
        }
    }
    // Distinct settings give distinct runs: a hash that ignored the weights
    // would pass the comparison below for nothing.
    let mut by_hash: BTreeMap<&String, Vec<&str>> = BTreeMap::new();
    for (key, h) in &got {
        by_hash
            .entry(&h[0])
            .or_default()
            .push(key.rsplit_once('.').unwrap().0);
    }
    let same: Vec<&Vec<&str>> = by_hash.values().filter(|k| k.len() != 2).collect();
    assert!(same.is_empty(), "different runs hashed the same: {same:?}");
    let fp = fingerprint();
    let (commit, mut goldens) = read_goldens();
    if std::env::var_os("BIPROP_GOLDEN_RECORD").is_some() {
        goldens.insert(fp.clone(), got);
        let mut table = toml::Table::new();
        table.insert(
            "recorded_at".into(),
            toml::Value::String(std::env::var("BIPROP_GOLDEN_COMMIT").unwrap_or(commit)),
        );
        table.insert("cpu".into(), toml::Value::try_from(&goldens).unwrap());
        std::fs::create_dir_all(golden_file().parent().unwrap()).unwrap();
        std::fs::write(golden_file(), toml::to_string(&table).unwrap()).unwrap();
        eprintln!("recorded {} golden runs for {fp}", goldens[&fp].len());
        return;
    }
    let Some(want) = goldens.get(&fp) else {
        eprintln!(
            "SKIPPED the golden comparison: its hashes were recorded (at {commit}) on {:?}, \
             and this CPU is {fp:?}, whose GEMM kernels sum in another order. \
             The thread-count and distinctness checks above did run.",
            goldens.keys().collect::<Vec<_>>()
        );
        return;
    };
    let mut differ = Vec::new();
    for (key, hashes) in &got {
        match want.get(key) {
            Some(w) if w == hashes => {}
            Some(w) => differ.push(format!(
                "{key}: checkpoint {} metrics {}",
                if w[0] == hashes[0] { "same" } else { "DIFFERS" },
                if w[1] == hashes[1] { "same" } else { "DIFFERS" }
            )),
            None => differ.push(format!("{key}: no golden recorded")),
        }
    }
    assert!(
        differ.is_empty(),
        "runs differ from the goldens recorded at {commit}:\n{}",
        differ.join("\n")
    );
}
