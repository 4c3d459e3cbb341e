//! Downloads: the one module that touches the network.
//!
//! Files land in a cache folder (`$BIPROP_CACHE`, else `$XDG_CACHE_HOME/biprop`,
//! else `~/.cache/biprop`), are written to a temporary name, checked against
//! their published sha256 (of the decompressed bytes, so any gzip wrapper is
//! accepted), and only then renamed into place: an interrupted download never
//! leaves a file that looks complete.

use super::idx::read_maybe_gz;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The environment variable that overrides the cache folder.
pub const CACHE_ENV: &str = "BIPROP_CACHE";

/// A file to fetch, with the sha256 of its decompressed content.
#[derive(Clone, Copy, Debug)]
pub struct RemoteFile {
    /// Canonical name, without `.gz`.
    pub name: &'static str,
    /// sha256 of the decompressed bytes.
    pub sha256: &'static str,
}

/// MNIST's four files.
pub const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// Mirrors that serve `NAME.gz`, tried in order.
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// CIFAR-10's binary distribution.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// md5 of `cifar-10-binary.tar.gz`, as published.
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// The published digest a downloaded file must have.
#[derive(Clone, Copy, Debug)]
pub enum Checksum {
    /// sha256 of the decompressed bytes (any gzip wrapper is accepted).
    Sha256Decompressed(&'static str),
    /// md5 of the file as downloaded.
    Md5(&'static str),
}

impl Checksum {
    /// Checks `path` against this digest.
    pub fn verify(self, path: &Path) -> Result<()> {
        let (algo, expected, actual) = match self {
            Checksum::Sha256Decompressed(want) => (
                "sha256 (decompressed)",
                want,
                sha256_hex(&read_maybe_gz(path)?),
            ),
            Checksum::Md5(want) => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                ("md5", want, format!("{:x}", md5::Md5::digest(&bytes)))
            }
        };
        if actual == expected {
            Ok(())
        } else {
            Err(Error::Checksum {
                path: path.into(),
                algo,
                expected: expected.into(),
                actual,
            })
        }
    }
}

/// The download cache folder.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(CACHE_ENV) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(d).join("biprop"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        return Ok(PathBuf::from(h).join(".cache").join("biprop"));
    }
    Err(Error::Config(format!(
        "no cache folder: set ${CACHE_ENV}, or pass --data-dir"
    )))
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Checks that `path` (raw or gzip) decompresses to content with sha256 `expected`.
pub fn verify(path: &Path, expected: &'static str) -> Result<()> {
    Checksum::Sha256Decompressed(expected).verify(path)
}

/// Makes sure MNIST is in `cache/mnist`, downloading what is missing, and
/// returns that folder.
pub fn ensure_mnist(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("mnist");
    for f in &MNIST_FILES {
        let dest = dir.join(format!("{}.gz", f.name));
        if dest.is_file() {
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut last_err = String::new();
        let mut ok = false;
        for mirror in MNIST_MIRRORS {
            let url = format!("{mirror}{}.gz", f.name);
            match fetch_verified(&url, &dest, Checksum::Sha256Decompressed(f.sha256)) {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => last_err = format!("{url}: {e}"),
            }
        }
        if !ok {
            return Err(Error::Missing(format!(
                "could not download MNIST ({last_err}).\n\
                 Without network access, put {name}.gz (or {name}) and the other three MNIST \
                 files in {dir} yourself, or point --data-dir / ${env} at a folder that has them.",
                name = f.name,
                dir = dir.display(),
                env = super::dataset::DATA_ENV,
            )));
        }
    }
    Ok(dir)
}

/// Makes sure `cifar-10-binary.tar.gz` is in `cache/cifar10`, downloading it
/// when missing, and returns that folder.
pub fn ensure_cifar10(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("cifar10");
    let dest = dir.join(super::cifar::ARCHIVE);
    if !dest.is_file() {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        fetch_verified(CIFAR10_URL, &dest, Checksum::Md5(CIFAR10_MD5)).map_err(|e| {
            Error::Missing(format!(
                "could not download CIFAR-10 ({CIFAR10_URL}: {e}).\n\
                 Without network access, put {archive} (md5 {CIFAR10_MD5}) or the extracted \
                 {folder}/ folder in {dir} yourself, or point --data-dir / ${env} at a folder that has them.",
                archive = super::cifar::ARCHIVE,
                folder = super::cifar::FOLDER,
                dir = dir.display(),
                env = super::dataset::DATA_ENV,
            ))
        })?;
    }
    Ok(dir)
}

/// Downloads `url` to a temporary file beside `dest`, verifies it, renames it to `dest`.
pub fn fetch_verified(url: &str, dest: &Path, checksum: Checksum) -> Result<()> {
    let tmp = dest.with_extension("part");
    let result = (|| {
        let resp = ureq::get(url)
            .call()
            .map_err(|e| Error::Missing(e.to_string()))?;
        let total = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes} ({eta})")
                .expect("valid template"),
        );
        bar.set_message(format!("downloading {url}"));
        let mut reader = resp.into_body().into_reader();
        let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Error::Missing(format!("{url}: {e}")))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
            bar.inc(n as u64);
        }
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        bar.finish_and_clear();
        checksum.verify(&tmp)?;
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_detects_a_mismatch_and_accepts_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("a");
        std::fs::write(&raw, b"hello").unwrap();
        let digest: &'static str =
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert_eq!(sha256_hex(b"hello"), digest);
        verify(&raw, digest).unwrap();
        let gz = dir.path().join("a.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        verify(&gz, digest).unwrap();
        let zeros: &'static str =
            "0000000000000000000000000000000000000000000000000000000000000000";
        let err = verify(&raw, zeros).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
        // md5 of "hello"
        Checksum::Md5("5d41402abc4b2a76b9719d911017c592")
            .verify(&raw)
            .unwrap();
        let err = Checksum::Md5(CIFAR10_MD5)
            .verify(&raw)
            .unwrap_err()
            .to_string();
        assert!(err.contains("md5") && err.contains(CIFAR10_MD5), "{err}");
    }
}
