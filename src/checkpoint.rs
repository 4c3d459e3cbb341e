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
//! state `optim.*`. Metadata: `format` (`biprop-checkpoint-1`), `config` (the
//! run's TOML), `rule`, `epoch`, `image` (the input layout, `CxHxW`), `steps`.

use crate::error::{Error, Result};
use crate::named::{NamedTensor, NamedTensorMut};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeSet;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The value of the `format` metadata key.
pub const FORMAT: &str = "biprop-checkpoint-1";

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
        .map(|t| (t.name.clone(), (t.shape.clone(), to_bytes(t.data))))
        .collect();
    write(path, &named, metadata)
}

type Named = BTreeMap<String, (Vec<usize>, Vec<u8>)>;

fn write(path: &Path, named: &Named, meta: HashMap<String, String>) -> Result<()> {
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
    /// Reads a safetensors file of f32 tensors.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |msg: String| Error::Checkpoint {
            path: path.into(),
            msg,
        };
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
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
        let metadata = meta.metadata().clone().unwrap_or_default();
        match metadata.get("format") {
            Some(f) if f == FORMAT => {}
            Some(f) => {
                return Err(bad(format!(
                    "format {f:?}, this biprop reads {FORMAT:?} checkpoints"
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
        let dims: Vec<usize> = self
            .metadata
            .get("image")?
            .split('x')
            .map(|d| d.parse().ok())
            .collect::<Option<_>>()?;
        match dims[..] {
            [c, h, w] => Some((c, h, w)),
            _ => None,
        }
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

    /// The number of inputs and outputs of the stored forward network.
    pub fn io_sizes(&self) -> Result<(usize, usize)> {
        let layers = self
            .tensors
            .keys()
            .filter(|k| k.starts_with("forward.") && k.ends_with(".weight"))
            .count();
        let first = self.tensors.get("forward.0.weight");
        let last = self
            .tensors
            .get(&format!("forward.{}.weight", layers.saturating_sub(1)));
        match (first, last) {
            (Some((s0, _)), Some((s1, _))) if s0.len() == 2 && s1.len() == 2 => Ok((s0[1], s1[0])),
            _ => Err(Error::Checkpoint {
                path: self.path.clone(),
                msg: "no forward.{i}.weight tensors: not a biprop checkpoint".into(),
            }),
        }
    }

    /// Copies tensor `name` into `into`, after checking its shape.
    pub fn take(&self, name: &str, shape: &[usize], into: &mut [f32]) -> Result<()> {
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
        into.copy_from_slice(data);
        Ok(())
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
    pub fn take_all(&self, targets: Vec<NamedTensorMut<'_>>) -> Result<BTreeSet<String>> {
        let mut used = BTreeSet::new();
        for t in targets {
            self.take(&t.name, &t.shape, t.data)?;
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
