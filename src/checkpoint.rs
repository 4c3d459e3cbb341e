//! Checkpoints in safetensors format, loadable from PyTorch and numpy: named
//! `f32` tensors and string metadata, written atomically, read back with
//! every tensor's shape checked and none left unused. This module knows
//! names, shapes and metadata only; what a run stores under which name is
//! [`crate::state`]'s.
//!
//! The tensors of a run: `forward.{i}.weight` (the layer's weight shape,
//! `[out, in]` for a dense layer) and `forward.{i}.bias` for every layer i
//! (0 = first), then the rule's own feedback tensors (each rule's module
//! documents their names and shapes), then, for resuming, the optimizer
//! state `optim.*`. Metadata: `format` (`biprop-checkpoint-3`), `config` (the
//! run's TOML), `rule`, `epoch`, `image` (the input layout, `CxHxW`),
//! `steps`, and `sha256`, the digest of every tensor and every other
//! metadata entry (see [`digest`]), so that a flipped byte anywhere is
//! refused rather than trained on. A tensor held in another row order is
//! stored in its own ([`NamedTensor::row_order`]: a direct rule's projection
//! to a feature map, in PyTorch's `C, H, W` order). Format 2 is format 3 with
//! every tensor stored as held (those projections channels last); format 1
//! is format 2 without the digest. Both still load, format 1 unchecked.

use crate::error::{Error, Result};
use crate::named::{NamedTensor, NamedTensorMut};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeSet;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The value of the `format` metadata key.
pub const FORMAT: &str = "biprop-checkpoint-3";

/// The format before row orders: every tensor stored as held. Read, but
/// not written.
pub const FORMAT_2: &str = "biprop-checkpoint-2";

/// The format before the digest: read, but not written.
pub const FORMAT_1: &str = "biprop-checkpoint-1";

fn known(format: &str) -> bool {
    [FORMAT, FORMAT_2, FORMAT_1].contains(&format)
}

/// The metadata key of the digest ([`digest`]).
pub const DIGEST_KEY: &str = "sha256";

/// The SHA-256 (hex) of a checkpoint's content: every metadata entry but
/// the digest itself, by key, then every tensor (name, dtype, shape, bytes),
/// by name, each part prefixed by its length so that no two contents give
/// the same byte stream. Computed from the content, not the file, as the
/// file's own header holds the digest (and safetensors orders its metadata
/// as it likes).
pub fn digest<'a>(
    metadata: &HashMap<String, String>,
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    let mut meta: Vec<(&String, &String)> = metadata
        .iter()
        .filter(|(k, _)| k.as_str() != DIGEST_KEY)
        .collect();
    meta.sort();
    part(&(meta.len() as u64).to_le_bytes());
    for (k, v) in meta {
        part(k.as_bytes());
        part(v.as_bytes());
    }
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    part(&(tensors.len() as u64).to_le_bytes());
    for (name, dtype, shape, bytes) in tensors {
        part(name.as_bytes());
        part(dtype.to_string().as_bytes());
        let dims: Vec<u8> = shape
            .iter()
            .flat_map(|&d| (d as u64).to_le_bytes())
            .collect();
        part(&dims);
        part(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes `tensors` and `metadata` (with the `format` key added) to `path`
/// atomically (temp file, then rename).
pub fn save(
    path: &Path,
    tensors: &[NamedTensor<'_>],
    mut metadata: HashMap<String, String>,
) -> Result<()> {
    metadata.insert("format".to_string(), FORMAT.to_string());
    let named: Named = tensors
        .iter()
        .map(|t| (t.name.clone(), (t.shape.clone(), to_bytes(&t.stored()))))
        .collect();
    write(path, &named, metadata)
}

type Named = BTreeMap<String, (Vec<usize>, Vec<u8>)>;

/// An image layout in the `CxHxW` form of the `image` metadata (and of
/// `biprop bench --image`): `(channels, height, width)`.
pub fn parse_image(text: &str) -> Option<(usize, usize, usize)> {
    let dims: Vec<usize> = text
        .split('x')
        .map(|d| d.trim().parse().ok())
        .collect::<Option<_>>()?;
    match dims[..] {
        [c, h, w] => Some((c, h, w)),
        _ => None,
    }
}

fn write(path: &Path, named: &Named, mut meta: HashMap<String, String>) -> Result<()> {
    let sum = digest(
        &meta,
        named.iter().map(|(k, (shape, bytes))| {
            (k.as_str(), Dtype::F32, shape.as_slice(), bytes.as_slice())
        }),
    );
    meta.insert(DIGEST_KEY.to_string(), sum);
    let views = named
        .iter()
        .map(|(k, (shape, bytes))| {
            let v = TensorView::new(Dtype::F32, shape.clone(), bytes).expect("consistent tensor");
            (k.clone(), v)
        })
        .collect::<Vec<_>>();
    let bytes =
        safetensors::tensor::serialize(views, Some(meta)).map_err(|e| Error::Checkpoint {
            path: path.into(),
            msg: e.to_string(),
        })?;
    crate::fsutil::write_atomic(path, &bytes)
}

/// Why `bytes` are not a safetensors file, in words: a file cut short
/// (an interrupted copy, a full disk) is told from other damage.
fn unreadable(bytes: &[u8], e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    let len = bytes.len();
    let header = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    match (e, header) {
        (E::HeaderTooSmall, _) => format!(
            "is damaged or cut short: {len} bytes, less than a safetensors file's \
             8-byte header length; refusing to use it"
        ),
        (E::InvalidHeaderLength, Some(n)) if n > (len - 8) as u64 => format!(
            "is cut short or damaged: its header needs {n} bytes, the file holds {} after \
             the length; refusing to use it",
            len - 8
        ),
        (E::MetadataIncompleteBuffer, _) => format!(
            "is cut short or damaged: its {len} bytes are not the size its header gives; \
             refusing to use it"
        ),
        _ => format!("is damaged or not a safetensors file ({e}); refusing to use it"),
    }
}

/// A checkpoint read back from disk.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Every tensor: name to (shape, values).
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// The safetensors metadata.
    pub metadata: HashMap<String, String>,
    path: std::path::PathBuf,
}

impl Checkpoint {
    /// Reads a safetensors file of f32 tensors. A file cut short, or whose
    /// digest (format 2) does not match its content, is refused as damaged.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |msg: String| Error::Checkpoint {
            path: path.into(),
            msg,
        };
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (_, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| bad(unreadable(&bytes, &e)))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(unreadable(&bytes, &e)))?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let format = metadata.get("format");
        // The digest first: a flipped byte in `format` is damage, not
        // another version.
        match metadata.get(DIGEST_KEY) {
            Some(want) => {
                let views = st.tensors();
                let got = digest(
                    &metadata,
                    views
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.dtype(), v.shape(), v.data())),
                );
                if &got != want {
                    let newer = match format {
                        Some(f) if !known(f) => {
                            format!(" (or of a format this biprop does not know, {f:?})")
                        }
                        _ => String::new(),
                    };
                    return Err(bad(format!(
                        "is damaged: its content does not match the {DIGEST_KEY} in its \
                         metadata{newer}; refusing to use it"
                    )));
                }
            }
            None if format.is_some_and(|f| f == FORMAT || f == FORMAT_2) => {
                return Err(bad(format!(
                    "is damaged: a {} file without its {DIGEST_KEY}; refusing to use it",
                    format.map_or("", String::as_str)
                )))
            }
            None => {}
        }
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "tensor {name} is {:?}, expected F32",
                    view.dtype()
                )));
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            tensors.insert(name, (view.shape().to_vec(), data));
        }
        match format {
            Some(f) if known(f) => {}
            Some(f) => {
                return Err(bad(format!(
                    "format {f:?}, this biprop reads {FORMAT:?}, {FORMAT_2:?} and {FORMAT_1:?} \
                     checkpoints"
                )))
            }
            None => {
                return Err(bad(format!(
                    "no format in the metadata: not a biprop checkpoint (expected {FORMAT:?})"
                )))
            }
        }
        Ok(Self {
            tensors,
            metadata,
            path: path.into(),
        })
    }

    /// Writes the tensors and metadata as they are, with a fresh digest:
    /// for tools and tests that edit a checkpoint.
    pub fn save(&self, path: &Path) -> Result<()> {
        let named: Named = self
            .tensors
            .iter()
            .map(|(k, (shape, v))| (k.clone(), (shape.clone(), to_bytes(v))))
            .collect();
        let mut meta = self.metadata.clone();
        meta.remove(DIGEST_KEY);
        write(path, &named, meta)
    }

    /// A checkpoint held in memory (a state dict from Python), checked as
    /// one read from disk; `label` stands for the path in error messages.
    pub fn from_tensors(
        tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
        mut metadata: HashMap<String, String>,
        label: &str,
    ) -> Self {
        metadata.insert("format".to_string(), FORMAT.to_string());
        Self {
            tensors,
            metadata,
            path: label.into(),
        }
    }

    /// An error about this checkpoint.
    pub fn error(&self, msg: impl Into<String>) -> Error {
        Error::Checkpoint {
            path: self.path.clone(),
            msg: msg.into(),
        }
    }

    /// The metadata value of `key`, or an error saying what it is for.
    pub fn require(&self, key: &str, what: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| self.error(format!("no {key} in the metadata: {what}")))
    }

    /// The input image layout `(channels, height, width)` from the metadata.
    pub fn image(&self) -> Option<(usize, usize, usize)> {
        parse_image(self.metadata.get("image")?)
    }

    /// [`Checkpoint::image`], or for checkpoints without it a guess from the
    /// input width: a square grey image when `inputs` is a square, else one row.
    pub fn image_or_guess(&self, inputs: usize) -> (usize, usize, usize) {
        self.image().unwrap_or_else(|| {
            let side = (inputs as f64).sqrt() as usize;
            if side * side == inputs {
                (1, side, side)
            } else {
                (1, 1, inputs)
            }
        })
    }

    /// The input shape `(channels, height, width)` and the number of
    /// outputs of the stored forward network: the shape from the metadata
    /// (or, for checkpoints without it, guessed from a first dense layer's
    /// width), the outputs from the last layer's weight (its first dimension,
    /// for a dense layer and a convolution alike).
    pub fn io_shape(&self) -> Result<((usize, usize, usize), usize)> {
        let layers = self.count_weights("forward");
        let first = self.tensors.get("forward.0.weight");
        let last = self
            .tensors
            .get(&format!("forward.{}.weight", layers.saturating_sub(1)));
        let bad = || self.error("no forward.{i}.weight tensors: not a biprop checkpoint");
        let outputs = match last {
            Some((s, _)) if !s.is_empty() => s[0],
            _ => return Err(bad()),
        };
        let image = match (self.image(), first) {
            (Some(i), _) => i,
            (None, Some((s, _))) if s.len() == 2 => self.image_or_guess(s[1]),
            _ => return Err(bad()),
        };
        Ok((image, outputs))
    }

    /// Copies tensor `name` into `into`, after checking its shape.
    pub fn take(&self, name: &str, shape: &[usize], into: &mut [f32]) -> Result<()> {
        into.copy_from_slice(self.lookup(name, shape)?);
        Ok(())
    }

    /// Tensor `name`'s values, which must have `shape`.
    fn lookup(&self, name: &str, shape: &[usize]) -> Result<&[f32]> {
        let (s, data) = self.tensors.get(name).ok_or_else(|| Error::Checkpoint {
            path: self.path.clone(),
            msg: format!(
                "has no tensor {name} (shape {shape:?}); it holds {:?}",
                self.names()
            ),
        })?;
        if s != shape {
            return Err(Error::Checkpoint {
                path: self.path.clone(),
                msg: format!("tensor {name} has shape {s:?}, the network needs {shape:?}"),
            });
        }
        Ok(data)
    }

    fn names(&self) -> Vec<&str> {
        self.tensors.keys().map(String::as_str).collect()
    }

    /// The epoch the checkpoint was written after (metadata `epoch`).
    pub fn epoch(&self) -> Option<usize> {
        self.metadata.get("epoch")?.parse().ok()
    }

    /// The number of tensors named `{prefix}.{i}.weight`.
    pub fn count_weights(&self, prefix: &str) -> usize {
        let head = format!("{prefix}.");
        self.tensors
            .keys()
            .filter(|k| k.starts_with(&head) && k.ends_with(".weight"))
            .count()
    }

    /// Copies every tensor of `targets` from the checkpoint (each must be
    /// there, with its shape) and returns their names.
    /// A tensor with a row order is read in it, unless the checkpoint is
    /// of a format that stored every tensor as held.
    pub fn take_all(&self, targets: Vec<NamedTensorMut<'_>>) -> Result<BTreeSet<String>> {
        let as_held = self
            .metadata
            .get("format")
            .is_some_and(|f| f == FORMAT_2 || f == FORMAT_1);
        let mut used = BTreeSet::new();
        for mut t in targets {
            let data = self.lookup(&t.name, &t.shape)?;
            if as_held {
                t.row_order = None;
            }
            t.store_from(data);
            used.insert(t.name);
        }
        Ok(used)
    }

    /// An error naming every tensor outside `used` that `allowed` does not excuse.
    /// Fails when the checkpoint holds a tensor outside `used` that
    /// `allowed` does not excuse: loading is strict, so that a tensor meant
    /// for something else is never silently dropped.
    pub fn refuse_unused(
        &self,
        used: &BTreeSet<String>,
        allowed: impl Fn(&str) -> bool,
    ) -> Result<()> {
        let unused: Vec<&str> = self
            .tensors
            .keys()
            .map(String::as_str)
            .filter(|k| !used.contains(*k) && !allowed(k))
            .collect();
        if unused.is_empty() {
            return Ok(());
        }
        Err(Error::Checkpoint {
            path: self.path.clone(),
            msg: format!("holds tensors this run does not use: {}", unused.join(", ")),
        })
    }
}
