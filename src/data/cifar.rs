//! CIFAR-10, binary version: `data_batch_1.bin` .. `data_batch_5.bin` and
//! `test_batch.bin`, each a sequence of 3,073-byte records (1 label byte, then
//! the 1,024 red, 1,024 green and 1,024 blue pixel bytes, row by row).
//!
//! Inputs keep that channel-planar layout (R plane, G plane, B plane), scaled
//! to [0, 1]. The files are read from the `cifar-10-batches-bin/` folder or
//! straight from the distribution archive `cifar-10-binary.tar.gz`.

use super::dataset::Dataset;
use crate::error::{Error, Result};
use crate::tensor::Matrix;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Bytes of one record.
pub const RECORD: usize = 1 + PIXELS;
/// Pixel bytes of one image (3 x 32 x 32).
pub const PIXELS: usize = 3 * 32 * 32;
/// Classes.
pub const CLASSES: usize = 10;
/// The class names of `batches.meta.txt`.
pub const NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// The training files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file.
pub const TEST_FILE: &str = "test_batch.bin";
/// The distribution archive's name.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// The folder inside the archive.
pub const FOLDER: &str = "cifar-10-batches-bin";

/// Labels and pixels of one batch file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// One label a record, each below 10.
    pub labels: Vec<u8>,
    /// `PIXELS` bytes a record.
    pub pixels: Vec<u8>,
}

/// Parses one batch file's bytes; `path` only names the source in errors.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<Batch> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::format(
            path,
            format!(
                "size {} bytes is not a whole number of {RECORD}-byte records \
                 (1 label + 3072 pixels; a standard batch is 10000 records, 30730000 bytes): \
                 truncated or not a CIFAR-10 binary batch",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    let mut batch = Batch {
        labels: Vec::with_capacity(n),
        pixels: Vec::with_capacity(n * PIXELS),
    };
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] as usize >= CLASSES {
            return Err(Error::format(
                path,
                format!("record {i} has label {}, expected 0..{CLASSES}", rec[0]),
            ));
        }
        batch.labels.push(rec[0]);
        batch.pixels.extend_from_slice(&rec[1..]);
    }
    Ok(batch)
}

/// Encodes records (for tests and tools): `pixels` holds `PIXELS` bytes a label.
pub fn encode_batch(labels: &[u8], pixels: &[u8]) -> Vec<u8> {
    assert_eq!(
        pixels.len(),
        labels.len() * PIXELS,
        "encode_batch: pixel count"
    );
    let mut out = Vec::with_capacity(labels.len() * RECORD);
    for (l, p) in labels.iter().zip(pixels.chunks_exact(PIXELS)) {
        out.push(*l);
        out.extend_from_slice(p);
    }
    out
}

fn to_dataset(batches: Vec<Batch>) -> Dataset {
    let labels: Vec<u8> = batches
        .iter()
        .flat_map(|b| b.labels.iter().copied())
        .collect();
    let inputs = batches
        .iter()
        .flat_map(|b| b.pixels.iter().map(|&p| p as f32 / 255.0))
        .collect();
    Dataset {
        inputs: Matrix::from_vec(labels.len(), PIXELS, inputs).expect("whole records"),
        labels,
        classes: CLASSES,
        image: (3, 32, 32),
    }
}

/// Reads the six batch files from a `cifar-10-batches-bin/` folder.
pub fn load_folder(dir: &Path) -> Result<(Dataset, Dataset)> {
    let read = |name: &str| -> Result<Batch> {
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        parse_batch(&bytes, &p)
    };
    let train = TRAIN_FILES
        .iter()
        .map(|f| read(f))
        .collect::<Result<Vec<_>>>()?;
    Ok((to_dataset(train), to_dataset(vec![read(TEST_FILE)?])))
}

/// Reads the six batch files straight out of `cifar-10-binary.tar.gz`.
pub fn load_archive(path: &Path) -> Result<(Dataset, Dataset)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let corrupt =
        |e: std::io::Error| Error::format(path, format!("corrupt gzip or tar archive: {e}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found: BTreeMap<String, Batch> = BTreeMap::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let name = entry
            .path()
            .map_err(corrupt)?
            .to_string_lossy()
            .into_owned();
        let base = name.rsplit('/').next().unwrap_or("").to_string();
        if TRAIN_FILES.contains(&base.as_str()) || base == TEST_FILE {
            // The header's size is only a hint: a corrupt one must not
            // reserve more than a real batch (10,000 records).
            let hint = (entry.size() as usize).min(10_000 * RECORD);
            let mut bytes = Vec::with_capacity(hint);
            entry.read_to_end(&mut bytes).map_err(corrupt)?;
            let member = path.join(&name);
            found.insert(base, parse_batch(&bytes, &member)?);
        }
    }
    let mut take = |name: &str| {
        found
            .remove(name)
            .ok_or_else(|| Error::format(path, format!("the archive has no {FOLDER}/{name}")))
    };
    let train = TRAIN_FILES
        .iter()
        .map(|f| take(f))
        .collect::<Result<Vec<_>>>()?;
    let test = take(TEST_FILE)?;
    Ok((to_dataset(train), to_dataset(vec![test])))
}

/// Where CIFAR-10 is under `dir`: the batch folder or the archive, in
/// `dir`, `dir/cifar-10-batches-bin`, `dir/cifar10/...`.
pub fn locate(dir: &Path) -> Option<PathBuf> {
    for base in [dir.to_path_buf(), dir.join("cifar10")] {
        if base.join(TRAIN_FILES[0]).is_file() {
            return Some(base);
        }
        if base.join(FOLDER).join(TRAIN_FILES[0]).is_file() {
            return Some(base.join(FOLDER));
        }
        if base.join(ARCHIVE).is_file() {
            return Some(base.join(ARCHIVE));
        }
    }
    None
}

/// Loads CIFAR-10 from a batch folder or an archive (see [`locate`]).
pub fn load_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    match locate(dir) {
        Some(p) if p.is_file() => load_archive(&p),
        Some(p) => load_folder(&p),
        None => Err(Error::Missing(format!(
            "CIFAR-10 not found in {}: expected {FOLDER}/ or {ARCHIVE} there or in its cifar10/ folder",
            dir.display()
        ))),
    }
}
