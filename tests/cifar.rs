//! CIFAR-10: the binary format from folders and archives, its errors, and
//! real learning on the local copy (`$BIPROP_CIFAR10`).

mod common;

use biprop::config::RunConfig;
use biprop::data::cifar::{self, encode_batch, ARCHIVE, FOLDER, PIXELS, TEST_FILE, TRAIN_FILES};
use biprop::data::download::{Checksum, CIFAR10_MD5};
use biprop::data::{self, DatasetKind};
use biprop::rules::RuleKind;
use biprop::run::{self, RunOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `n` records with label `i % 10` and pixel bytes depending on record,
/// channel and position, so that layout mistakes show.
fn records(n: usize, offset: usize) -> (Vec<u8>, Vec<u8>) {
    let labels = (0..n).map(|i| ((i + offset) % 10) as u8).collect();
    let pixels = (0..n * PIXELS)
        .map(|k| ((k * 7 + offset * 13) % 251) as u8)
        .collect();
    (labels, pixels)
}

/// Writes a small CIFAR-10 folder: 3 records a training file, 4 in the test file.
fn write_folder(dir: &Path) -> PathBuf {
    let d = dir.join(FOLDER);
    std::fs::create_dir_all(&d).unwrap();
    for (i, f) in TRAIN_FILES.iter().enumerate() {
        let (l, p) = records(3, i);
        std::fs::write(d.join(f), encode_batch(&l, &p)).unwrap();
    }
    let (l, p) = records(4, 9);
    std::fs::write(d.join(TEST_FILE), encode_batch(&l, &p)).unwrap();
    std::fs::write(d.join("batches.meta.txt"), cifar::NAMES.join("\n")).unwrap();
    d
}

fn write_archive(dir: &Path, folder: &Path, skip: Option<&str>) -> PathBuf {
    let path = dir.join(ARCHIVE);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    for f in TRAIN_FILES.iter().chain([&TEST_FILE]) {
        if Some(*f) != skip {
            tar.append_path_with_name(folder.join(f), format!("{FOLDER}/{f}"))
                .unwrap();
        }
    }
    tar.into_inner().unwrap().finish().unwrap();
    path
}

#[test]
fn a_folder_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path());
    let (train, test) = data::load(DatasetKind::Cifar10, Some(dir.path()), 10).unwrap();
    assert_eq!(
        (train.len(), test.len(), train.features(), train.image),
        (15, 4, 3072, (3, 32, 32))
    );
    // The sizes that plans and presets take without reading the files.
    let (_, _, image) = DatasetKind::Cifar10.known_sizes().unwrap();
    assert_eq!(image, train.image);
    // Record 1 of data_batch_2: label (1 + 1) % 10, planar pixels as stored, scaled.
    let (l, p) = records(3, 1);
    assert_eq!(train.labels[4], l[1]);
    for k in [0, 1023, 1024, 2048, 3071] {
        assert_eq!(train.inputs.get(4, k), p[PIXELS + k] as f32 / 255.0);
    }
}

#[test]
fn the_archive_reads_like_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_folder(dir.path());
    let from_folder = cifar::load_folder(&folder).unwrap();
    let adir = tempfile::tempdir().unwrap();
    write_archive(adir.path(), &folder, None);
    let (train, test) = data::load(DatasetKind::Cifar10, Some(adir.path()), 10).unwrap();
    assert_eq!(train.labels, from_folder.0.labels);
    assert_eq!(train.inputs, from_folder.0.inputs);
    assert_eq!(test.inputs, from_folder.1.inputs);
}

fn err_of(r: biprop::Result<(data::Dataset, data::Dataset)>) -> String {
    match r {
        Ok(_) => panic!("should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_record() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_folder(dir.path());
    let p = folder.join("data_batch_3.bin");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let e = err_of(cifar::load_folder(&folder));
    assert!(
        e.contains("data_batch_3.bin") && e.contains("3073-byte records"),
        "{e}"
    );
}

#[test]
fn label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_folder(dir.path());
    let p = folder.join(TEST_FILE);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[2 * cifar::RECORD] = 10;
    std::fs::write(&p, bytes).unwrap();
    let e = err_of(cifar::load_folder(&folder));
    assert!(
        e.contains("test_batch.bin") && e.contains("record 2 has label 10"),
        "{e}"
    );
}

#[test]
fn wrong_file_size_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_folder(dir.path());
    std::fs::write(folder.join("data_batch_1.bin"), b"").unwrap();
    let e = err_of(cifar::load_folder(&folder));
    assert!(e.contains("size 0 bytes"), "{e}");
    std::fs::remove_file(folder.join("data_batch_5.bin")).unwrap();
    std::fs::write(folder.join("data_batch_1.bin"), vec![0u8; cifar::RECORD]).unwrap();
    let e = err_of(cifar::load_folder(&folder));
    assert!(e.contains("data_batch_5.bin"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = err_of(data::load(DatasetKind::Cifar10, Some(empty.path()), 10));
    assert!(e.contains("CIFAR-10 not found"), "{e}");
}

#[test]
fn corrupted_gzip_or_tar() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_folder(dir.path());
    let adir = tempfile::tempdir().unwrap();
    let archive = write_archive(adir.path(), &folder, None);
    let good = std::fs::read(&archive).unwrap();
    // Cut in the middle: the gzip stream ends early.
    std::fs::write(&archive, &good[..good.len() / 2]).unwrap();
    let e = err_of(cifar::load_archive(&archive));
    assert!(e.contains(ARCHIVE) && e.contains("corrupt"), "{e}");
    // Valid gzip, garbage tar.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&[0x5a; 2048]).unwrap();
    std::fs::write(&archive, enc.finish().unwrap()).unwrap();
    let e = err_of(cifar::load_archive(&archive));
    assert!(e.contains("corrupt") || e.contains("has no"), "{e}");
    // Not gzip at all.
    std::fs::write(&archive, b"this is not an archive").unwrap();
    let e = err_of(cifar::load_archive(&archive));
    assert!(e.contains("corrupt"), "{e}");
    // A member missing.
    let archive = write_archive(adir.path(), &folder, Some("data_batch_4.bin"));
    let e = err_of(cifar::load_archive(&archive));
    assert!(
        e.contains("has no cifar-10-batches-bin/data_batch_4.bin"),
        "{e}"
    );
}

#[test]
fn archive_checksum_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_folder(dir.path());
    let archive = write_archive(dir.path(), &folder, None);
    let e = Checksum::Md5(CIFAR10_MD5)
        .verify(&archive)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("checksum mismatch") && e.contains(CIFAR10_MD5) && e.contains(ARCHIVE),
        "{e}"
    );
}

/// Real learning on the local CIFAR-10 copy (a JPEG-derived rebuild, see
/// docs/results.md): BP and DFA on 1x800 beat chance (90%) by a wide margin.
// CIFAR-10 comes as JPEGs on the development machines and must be built
// first, so the README's plain `cargo test --release` lists this test as
// ignored; `.ci/run` builds the copy and runs it with `-- --ignored`.
#[test]
#[ignore = "needs $BIPROP_CIFAR10 (a folder holding cifar-10-batches-bin/): cargo test --release -- --ignored"]
fn bp_and_dfa_learn_cifar10() {
    let dir = std::env::var_os("BIPROP_CIFAR10")
        .map(PathBuf::from)
        .expect(
            "set BIPROP_CIFAR10 to a folder holding cifar-10-batches-bin/ (.ci/run builds one)",
        );
    for (rule, bound) in [(RuleKind::Bp, BOUND), (RuleKind::Dfa, BOUND)] {
        let cfg = RunConfig {
            dataset: DatasetKind::Cifar10,
            data_dir: Some(dir.clone()),
            rule,
            hidden: vec![800],
            epochs: 3,
            train_limit: Some(40_000),
            lr: 0.005,
            momentum: 0.9,
            ..Default::default()
        };
        let splits = run::load_data(&cfg).unwrap();
        let out = run::run(&cfg, &splits, &RunOptions::default()).unwrap();
        let err = out.records.last().unwrap().test_error;
        eprintln!("{rule}: CIFAR-10 test error {:.2}%", 100.0 * err);
        assert!(
            err < bound,
            "{rule}: {:.2}% is above {:.0}%",
            100.0 * err,
            100.0 * bound
        );
    }
}

/// See `bp_and_dfa_learn_cifar10`: measured 60.5% (BP) and 60.4% (DFA) with
/// `biprop train --dataset cifar10 --hidden 800 --train-limit 40000 --epochs 3
/// --lr 0.005 --momentum 0.9`; chance is 90%.
const BOUND: f64 = 0.66;
