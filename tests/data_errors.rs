//! Bad data gets a clear error naming the file, never a panic.

use biprop::data::idx::encode_idx;
use biprop::data::{self, DatasetKind};
use biprop::Error;
use std::io::Write;
use std::path::Path;

/// Writes a small, well-formed IDX data set (4x4 images) into `dir`.
fn write_set(dir: &Path, n_train: usize, n_test: usize) {
    let img = |n: usize| encode_idx(&[n, 4, 4], &vec![128u8; n * 16]);
    let lab = |n: usize| encode_idx(&[n], &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>());
    std::fs::write(dir.join("train-images-idx3-ubyte"), img(n_train)).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), lab(n_train)).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), img(n_test)).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), lab(n_test)).unwrap();
}

fn load_err(dir: &Path, kind: DatasetKind) -> String {
    match data::load(kind, Some(dir), 10) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_well_formed_idx_set_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 30, 10);
    let (train, test) = data::load(DatasetKind::Idx, Some(dir.path()), 10).unwrap();
    assert_eq!((train.len(), test.len(), train.features()), (30, 10, 16));
    assert_eq!(train.labels[13], 3);
    assert!((train.inputs.get(0, 0) - 128.0 / 255.0).abs() < 1e-7);
}

#[test]
fn gzip_files_load_like_raw_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    let raw = dir.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&raw).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&bytes).unwrap();
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte.gz"),
        enc.finish().unwrap(),
    )
    .unwrap();
    std::fs::remove_file(&raw).unwrap();
    let (train, _) = data::load(DatasetKind::Idx, Some(dir.path()), 10).unwrap();
    assert_eq!(train.len(), 12);
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn wrong_magic_number() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    let p = dir.path().join("t10k-images-idx3-ubyte");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[0] = 0x50; // e.g. a PNG or text file under the IDX name
    std::fs::write(&p, bytes).unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(
        e.contains("t10k-images-idx3-ubyte") && e.contains("magic number"),
        "{e}"
    );
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    let p = dir.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 7]).unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(e.contains("truncated") && e.contains("train-images"), "{e}");
}

#[test]
fn corrupt_gzip() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    std::fs::remove_file(dir.path().join("train-labels-idx1-ubyte")).unwrap();
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte.gz"),
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef],
    )
    .unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(e.contains("gzip") && e.contains("train-labels"), "{e}");
}

#[test]
fn label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte"),
        encode_idx(&[5], &[1, 2, 10, 3, 4]),
    )
    .unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(
        e.contains("label 10 of sample 2") && e.contains("0..10"),
        "{e}"
    );
}

#[test]
fn image_label_count_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        encode_idx(&[11], &[0; 11]),
    )
    .unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(e.contains("11 labels for 12 images"), "{e}");
}

#[test]
fn wrong_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        encode_idx(&[12, 1], &[0; 12]),
    )
    .unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(e.contains("expected labels of dimensions [n]"), "{e}");
}

/// Images of `[n, channels, height, width]` load channel-planar (NCHW, as
/// PyTorch holds them), the shape known from the headers alone too.
#[test]
fn idx_images_with_channels_load_channel_planar() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    // Sample i, channel c, pixel p holds 10 i + 4 c + p (2x2 pixels).
    let img = |n: usize| {
        let px: Vec<u8> = (0..n * 3 * 4)
            .map(|k| (10 * (k / 12) + 4 * (k % 12 / 4) + k % 4) as u8)
            .collect();
        encode_idx(&[n, 3, 2, 2], &px)
    };
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), img(12)).unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), img(5)).unwrap();
    let (train, test) = data::load(DatasetKind::Idx, Some(dir.path()), 10).unwrap();
    assert_eq!((train.image, test.image), ((3, 2, 2), (3, 2, 2)));
    assert_eq!(train.features(), 12);
    // Sample 2, channel 1, pixel 3: column 4 + 3.
    assert!((train.inputs.get(2, 7) - 27.0 / 255.0).abs() < 1e-7);
    let (n_train, n_test, shape) = biprop::data::mnist::peek_dir(dir.path()).unwrap();
    assert_eq!((n_train, n_test, shape), (12, 5, (3, 2, 2)));

    // Training and test images of different shapes are refused, by name.
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        encode_idx(&[5, 12], &[0; 60]),
    )
    .unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(
        e.contains("training images are 3x2x2") && e.contains("test images 1x1x12"),
        "{e}"
    );

    // Five dimensions are no image.
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        encode_idx(&[5, 1, 3, 2, 2], &[0; 60]),
    )
    .unwrap();
    let e = load_err(dir.path(), DatasetKind::Idx);
    assert!(
        e.contains("t10k-images-idx3-ubyte") && e.contains("[n, channels, height, width]"),
        "{e}"
    );
}

/// MNIST is checksummed: well-formed files with other content are refused.
#[test]
fn checksum_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    let err = data::load(DatasetKind::Mnist, Some(dir.path()), 10).unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    let e = err.to_string();
    assert!(
        e.contains("checksum mismatch") && e.contains("train-images-idx3-ubyte"),
        "{e}"
    );
}

#[test]
fn validation_split_cannot_eat_the_training_set() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path(), 12, 5);
    let (train, test) = data::load(DatasetKind::Idx, Some(dir.path()), 10).unwrap();
    let e = data::Splits::new(train.clone(), test.clone(), 12)
        .unwrap_err()
        .to_string();
    assert!(e.contains("val-size 12"), "{e}");
    let s = data::Splits::new(train, test, 4).unwrap();
    assert_eq!((s.train.len(), s.val.len()), (8, 4));
    assert_eq!(s.val.labels, vec![8, 9, 0, 1]);
}
