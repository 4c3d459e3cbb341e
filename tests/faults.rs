//! Damaged run folders: a checkpoint or a metrics file cut short at every
//! length, or with a byte flipped at every position, is refused with the
//! file named (or, for a flip that changes nothing the file means, loads as
//! it was), never resumed from; and a refused resume changes nothing.
//! docs/reliability.md quotes the counts these tests print (run with
//! `--nocapture`).

mod common;

use biprop::checkpoint::{self, Checkpoint};
use biprop::config::RunConfig;
use biprop::data::Splits;
use biprop::optim::OptimizerKind;
use biprop::rules::RuleKind;
use biprop::run::{self, RunOptions};
use common::synthetic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const CK: &str = "checkpoint.safetensors";

fn splits() -> Splits {
    Splits::new(synthetic(150, 12, 3, 1), synthetic(40, 12, 3, 2), 30).unwrap()
}

/// A small run with every kind of state a resume restores: BFA (feedback
/// tensors and a feedback loss column), Adam (moments and a step count),
/// alignment angles (NaN ones too).
fn cfg(epochs: usize) -> RunConfig {
    RunConfig {
        rule: RuleKind::Bfa,
        hidden: vec![4],
        epochs,
        batch_size: 32,
        optimizer: OptimizerKind::Adam,
        lr: 0.01,
        threads: 1,
        seed: 7,
        ..Default::default()
    }
}

fn run_to(dir: &Path, epochs: usize, resume: bool) -> biprop::Result<()> {
    let opts = RunOptions {
        out_dir: Some(dir.to_path_buf()),
        resume,
        ..Default::default()
    };
    run::run(&cfg(epochs), &splits(), &opts).map(|_| ())
}

/// The run folders every test starts from: `base`, 2 epochs, and `full`,
/// the same run trained 4 epochs without a stop.
struct Runs {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    full: PathBuf,
    root: PathBuf,
}

fn runs() -> Runs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let (base, full) = (root.join("base"), root.join("full"));
    run_to(&base, 2, false).unwrap();
    run_to(&full, 4, false).unwrap();
    Runs {
        _tmp: tmp,
        base,
        full,
        root,
    }
}

/// Every file of a folder, by name.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Writes `bytes` to `path` as a new file: rewriting a file in place
/// (truncating it) makes ext4 flush it to disk first, 100 times slower.
fn put(path: &Path, bytes: &[u8]) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for (name, bytes) in snapshot(from) {
        put(&to.join(name), &bytes);
    }
}

/// metrics.csv without the timing columns.
fn metrics_without_timings(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    let keep: Vec<usize> = (0..rows[0].len())
        .filter(|&i| !["train_seconds", "seconds"].contains(&rows[0][i]))
        .collect();
    rows.iter()
        .map(|r| keep.iter().map(|&i| r[i].to_string()).collect())
        .collect()
}

/// `dir` ends bitwise where the uninterrupted run does: every tensor and
/// every metric but the timings.
fn assert_same_run(want: &Path, dir: &Path) {
    let (a, b) = (
        Checkpoint::load(&want.join(CK)).unwrap(),
        Checkpoint::load(&dir.join(CK)).unwrap(),
    );
    assert_eq!(a.tensors, b.tensors, "{}: tensors", dir.display());
    assert_eq!(a.epoch(), b.epoch());
    assert_eq!(
        metrics_without_timings(want),
        metrics_without_timings(dir),
        "{}: metrics",
        dir.display()
    );
}

/// Resuming `dir` towards 4 epochs is refused, the message naming `file`,
/// and nothing in the folder changes.
fn assert_refused(dir: &Path, file: &str, what: &str) -> String {
    let before = snapshot(dir);
    let e = match run_to(dir, 4, true) {
        Ok(()) => panic!("{what}: resumed"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains(file), "{what}: the message names {file}: {e}");
    assert!(!e.contains('\n'), "{what}: one line: {e}");
    assert_eq!(before, snapshot(dir), "{what}: the folder changed");
    e
}

#[test]
fn a_checkpoint_cut_at_any_length_is_refused() {
    let r = runs();
    let dir = r.root.join("cut");
    copy_dir(&r.base, &dir);
    let whole = std::fs::read(r.base.join(CK)).unwrap();
    for len in 0..whole.len() {
        put(&dir.join(CK), &whole[..len]);
        let what = format!("checkpoint cut to {len} of {} bytes", whole.len());
        let e = assert_refused(&dir, CK, &what);
        assert!(
            e.contains("cut short") || e.contains("damaged"),
            "{what}: {e}"
        );
    }
    put(&dir.join(CK), &whole);
    run_to(&dir, 4, true).unwrap();
    assert_same_run(&r.full, &dir);
    eprintln!(
        "checkpoint of {} bytes cut at every shorter length: {} resumes, all refused",
        whole.len(),
        whole.len()
    );
}

/// Every byte flipped (four ways): refused, or, for the few flips that
/// change nothing the file means (JSON whitespace), loaded as it was.
#[test]
fn a_checkpoint_with_any_byte_flipped_is_refused_or_unchanged() {
    let r = runs();
    let dir = r.root.join("flip");
    copy_dir(&r.base, &dir);
    let whole = std::fs::read(r.base.join(CK)).unwrap();
    let original = Checkpoint::load(&r.base.join(CK)).unwrap();
    let (mut refused, mut by_digest, mut same, mut tried) = (0, 0, 0, 0);
    for pos in 0..whole.len() {
        for mask in [0x01u8, 0x02, 0x80, 0xff] {
            let mut bytes = whole.clone();
            bytes[pos] ^= mask;
            put(&dir.join(CK), &bytes);
            tried += 1;
            let what = format!("byte {pos} of {} xor {mask:#04x}", whole.len());
            match Checkpoint::load(&dir.join(CK)) {
                Err(e) => {
                    refused += 1;
                    // The digest is checked before the format's own checks.
                    by_digest += e.to_string().contains("does not match the sha256") as usize;
                    assert!(e.to_string().contains(CK), "{what}: {e}");
                    // The resume path refuses it too (a sample: it is slower).
                    if tried % 8 == 0 {
                        assert_refused(&dir, CK, &what);
                    }
                }
                Ok(ck) => {
                    same += 1;
                    assert_eq!(ck.tensors, original.tensors, "{what}: loaded changed");
                    assert_eq!(ck.metadata, original.metadata, "{what}: loaded changed");
                    let run = r.root.join("flip-run");
                    copy_dir(&dir, &run);
                    run_to(&run, 4, true).unwrap();
                    assert_same_run(&r.full, &run);
                }
            }
        }
    }
    assert!(refused > tried * 9 / 10, "{refused} of {tried} refused");
    // What the digest is for: the same flips in a format-1 file (no
    // digest), counted where they load with other weights or settings.
    let mut meta = original.metadata.clone();
    meta.remove(checkpoint::DIGEST_KEY);
    meta.insert("format".into(), checkpoint::FORMAT_1.into());
    let old = raw(&original, &meta);
    let (mut old_tried, mut silent) = (0, 0);
    for pos in 0..old.len() {
        for mask in [0x01u8, 0x02, 0x80, 0xff] {
            let mut bytes = old.clone();
            bytes[pos] ^= mask;
            put(&dir.join(CK), &bytes);
            old_tried += 1;
            if let Ok(ck) = Checkpoint::load(&dir.join(CK)) {
                silent += (ck.tensors != original.tensors || ck.metadata != meta) as usize;
            }
        }
    }
    eprintln!(
        "checkpoint of {} bytes, every byte flipped 4 ways: {tried} tried, {refused} refused \
         ({by_digest} by the digest, checked first), {same} loaded unchanged (a flip the format \
         ignores) and resumed bitwise; without the digest (format 1, {} bytes) {silent} of \
         {old_tried} would load changed",
        whole.len(),
        old.len()
    );
}

/// `bytes` of a safetensors file of `ck`'s tensors and `meta`, written as
/// they are (no digest added).
fn raw(ck: &Checkpoint, meta: &std::collections::HashMap<String, String>) -> Vec<u8> {
    use safetensors::tensor::{Dtype, TensorView};
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = ck
        .tensors
        .iter()
        .map(|(k, (s, v))| {
            let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (k.clone(), s.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(k, s, b)| {
            (
                k.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta.clone())).unwrap()
}

#[test]
fn format_1_checkpoints_load_and_format_2_needs_its_digest() {
    let r = runs();
    let ck = Checkpoint::load(&r.base.join(CK)).unwrap();
    assert_eq!(ck.metadata["format"], checkpoint::FORMAT);
    assert_eq!(ck.metadata[checkpoint::DIGEST_KEY].len(), 64);
    // A checkpoint of before the digest resumes as it always did.
    let mut old = ck.metadata.clone();
    old.remove(checkpoint::DIGEST_KEY);
    old.insert("format".into(), checkpoint::FORMAT_1.into());
    let dir = r.root.join("old");
    copy_dir(&r.base, &dir);
    put(&dir.join(CK), &raw(&ck, &old));
    run_to(&dir, 4, true).unwrap();
    assert_same_run(&r.full, &dir);
    // Format 2 without its digest: the digest's key was damaged.
    let mut bare = ck.metadata.clone();
    bare.remove(checkpoint::DIGEST_KEY);
    copy_dir(&r.base, &dir);
    put(&dir.join(CK), &raw(&ck, &bare));
    let e = assert_refused(&dir, CK, "format 2 without a digest");
    assert!(e.contains("without its sha256"), "{e}");
    // Format 1 with a digest is checked all the same.
    let mut one = ck.metadata.clone();
    one.insert("format".into(), checkpoint::FORMAT_1.into());
    let mut changed = ck.clone();
    changed.tensors.get_mut("forward.0.weight").unwrap().1[0] += 1.0;
    put(&dir.join(CK), &raw(&changed, &one));
    let e = assert_refused(&dir, CK, "format 1 with a wrong digest");
    assert!(e.contains("does not match the sha256"), "{e}");
    // An epoch that does not read is no epoch 0.
    let mut no_epoch = ck.clone();
    no_epoch.metadata.insert("epoch".into(), "two".into());
    no_epoch.save(&dir.join(CK)).unwrap();
    let e = assert_refused(&dir, CK, "an unreadable epoch");
    assert!(e.contains("no epoch"), "{e}");
}

#[test]
fn metrics_cut_at_any_length_are_refused() {
    let r = runs();
    let dir = r.root.join("cut");
    let (mut lengths, mut resumes) = (Vec::new(), 0);
    for file in ["metrics.csv", "metrics.jsonl"] {
        copy_dir(&r.base, &dir);
        let whole = std::fs::read(r.base.join(file)).unwrap();
        for len in 0..whole.len() {
            put(&dir.join(file), &whole[..len]);
            let what = format!("{file} cut to {len} of {} bytes", whole.len());
            let e = assert_refused(&dir, "metrics.", &what);
            assert!(e.contains("refusing to resume"), "{what}: {e}");
        }
        lengths.push(format!("{file} of {} bytes", whole.len()));
        resumes += whole.len();
    }
    eprintln!(
        "{} cut at every shorter length: {resumes} resumes, all refused",
        lengths.join(" and ")
    );
}

#[test]
fn metrics_with_any_byte_flipped_are_refused() {
    let r = runs();
    let dir = r.root.join("flip");
    let mut counts = Vec::new();
    for file in ["metrics.csv", "metrics.jsonl"] {
        copy_dir(&r.base, &dir);
        let whole = std::fs::read(r.base.join(file)).unwrap();
        let mut tried = 0;
        for pos in 0..whole.len() {
            for mask in [0x01u8, 0x20, 0xff] {
                let mut bytes = whole.clone();
                bytes[pos] ^= mask;
                put(&dir.join(file), &bytes);
                let what = format!("{file}: byte {pos} xor {mask:#04x}");
                assert_refused(&dir, "metrics.", &what);
                tried += 1;
            }
        }
        counts.push(format!("{file} of {} bytes: {tried} flips", whole.len()));
    }
    eprintln!(
        "metrics, every byte flipped 3 ways: {}; all refused",
        counts.join(", ")
    );
}

/// What a kill or a full disk leaves: metric rows of an epoch whose
/// checkpoint was never written, whole, cut anywhere, or followed by
/// garbage. They are dropped, and the resume ends bitwise where the
/// uninterrupted run does.
#[test]
fn metric_rows_ahead_of_the_checkpoint_are_dropped() {
    let r = runs();
    let dir = r.root.join("ahead");
    let mut resumes = 0;
    for (file, n) in [("metrics.csv", 3), ("metrics.jsonl", 2)] {
        let base = std::fs::read(r.base.join(file)).unwrap();
        // The full run's next row (epoch 3), then some garbage.
        let text = std::fs::read_to_string(r.full.join(file)).unwrap();
        let row: String = text.split_inclusive('\n').nth(n).unwrap().to_string();
        let mut extra = row.into_bytes();
        extra.extend_from_slice(b"\x00\xff,garbage\n\x89PNG");
        for len in 0..=extra.len() {
            copy_dir(&r.base, &dir);
            let mut bytes = base.clone();
            bytes.extend_from_slice(&extra[..len]);
            put(&dir.join(file), &bytes);
            run_to(&dir, 4, true).unwrap();
            assert_same_run(&r.full, &dir);
            resumes += 1;
        }
    }
    eprintln!("metric rows ahead of the checkpoint, cut at every length: {resumes} resumes, all bitwise the uninterrupted run");
}

/// A run started by an earlier version of biprop, whose metrics files have
/// fewer columns (no weight norms), resumes with the columns it has: its
/// rows stay as long as its header, match the uninterrupted run's in those
/// columns, and the files resume again.
#[test]
fn a_run_with_fewer_metric_columns_resumes_with_its_own() {
    let r = runs();
    let dir = r.root.join("older");
    copy_dir(&r.base, &dir);
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let keep: Vec<usize> = (0..rows[0].len())
        .filter(|&i| !rows[0][i].starts_with("norm_"))
        .collect();
    assert!(keep.len() < rows[0].len(), "the run records norms");
    let older: String = rows
        .iter()
        .map(|r| keep.iter().map(|&i| r[i]).collect::<Vec<_>>().join(",") + "\n")
        .collect();
    put(&dir.join("metrics.csv"), older.as_bytes());
    let jsonl = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let older_jsonl: String = jsonl
        .lines()
        .map(|l| {
            // Each `,"name":number` pair; numbers hold no commas.
            let body = l.strip_suffix('}').unwrap();
            let kept: Vec<&str> = body
                .split(',')
                .filter(|pair| !pair.starts_with("\"norm_"))
                .collect();
            kept.join(",") + "}\n"
        })
        .collect();
    put(&dir.join("metrics.jsonl"), older_jsonl.as_bytes());
    run_to(&dir, 4, true).unwrap();
    let resumed = metrics_without_timings(&dir);
    let full = metrics_without_timings(&r.full);
    let header = &resumed[0];
    assert!(header.iter().all(|c| !c.starts_with("norm_")), "{header:?}");
    for (got, want) in resumed.iter().zip(&full).skip(1) {
        let want: Vec<&String> = header
            .iter()
            .map(|c| &want[full[0].iter().position(|f| f == c).unwrap()])
            .collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want);
    }
    assert_eq!(resumed.len(), 5);
    run_to(&dir, 5, true).unwrap();
    assert_eq!(metrics_without_timings(&dir).len(), 6);
}

/// Metrics files with a column this run does not record (a renamed one, in
/// both files alike) stop the resume at the first row it would write, with
/// the column named, and leave the folder as it was.
#[test]
fn a_metric_column_the_run_does_not_record_is_refused() {
    let r = runs();
    let dir = r.root.join("renamed");
    copy_dir(&r.base, &dir);
    for file in ["metrics.csv", "metrics.jsonl"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        assert!(text.contains("bfa_mse"), "{file}: {text}");
        put(
            &dir.join(file),
            text.replace("bfa_mse", "bfa_mse_old").as_bytes(),
        );
    }
    let e = assert_refused(&dir, "metrics.csv", "a renamed column");
    assert!(e.contains("\"bfa_mse_old\""), "{e}");
}
