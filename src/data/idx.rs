//! The IDX format (MNIST, Fashion-MNIST, KMNIST ...): a big-endian header
//! `0 0 TYPE NDIMS`, NDIMS 32-bit sizes, then the data. Only unsigned bytes
//! (type 0x08) are read, which is what every image data set in this format uses.
//! Files may be gzip-compressed; compression is detected by content, not name.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes of every dimension, outermost first.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Reads `path`, gunzipping it when it starts with the gzip magic bytes.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    gunzip_if_gzip(raw, path)
}

/// Decompresses `raw` when it starts with the gzip magic bytes; `path` only
/// names the source in errors.
pub fn gunzip_if_gzip(raw: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads an IDX file (raw or gzip).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(&read_maybe_gz(path)?, path)
}

/// Parses IDX bytes; `path` only names the source in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    let bad = |msg: String| Error::format(path, msg);
    if bytes.len() < 4 {
        return Err(bad(format!(
            "not an IDX file: {} bytes, shorter than the 4-byte header",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "not an IDX file: magic number starts with {:02x} {:02x}, expected 00 00",
            bytes[0], bytes[1]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "IDX data type 0x{:02x} is not supported (expected 0x08, unsigned byte)",
            bytes[2]
        )));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err(bad("IDX header declares 0 dimensions".into()));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(bad(format!(
            "truncated IDX header: {ndims} dimensions need {header} bytes, file has {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("IDX dimensions {dims:?} overflow")))?;
    let have = bytes.len() - header;
    if have != count {
        let what = if have < count {
            "truncated"
        } else {
            "trailing bytes in"
        };
        return Err(bad(format!(
            "{what} IDX file: dimensions {dims:?} need {count} data bytes, found {have}"
        )));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Encodes an IDX array of unsigned bytes (for tests and tools).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let bytes = encode_idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&bytes, Path::new("x")).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_malformed_input_with_a_reason() {
        let p = Path::new("f.idx");
        let good = encode_idx(&[2, 3], &[0; 6]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0, 0], "shorter than"),
            (vec![1, 0, 8, 1, 0, 0, 0, 0], "magic number"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 0], "not supported"),
            (vec![0, 0, 8, 0], "0 dimensions"),
            (vec![0, 0, 8, 2, 0, 0, 0, 1], "truncated IDX header"),
            (good[..good.len() - 1].to_vec(), "truncated IDX file"),
            ([good.clone(), vec![9]].concat(), "trailing"),
            (encode_idx(&[u32::MAX as usize; 3], &[]), "overflow"),
        ];
        for (bytes, want) in cases {
            let err = parse_idx(&bytes, p).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("f.idx"), "{err}");
        }
    }
}
