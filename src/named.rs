//! Named tensors: every trained value (weights, feedback weights, optimizer
//! state) is exposed under a name derived from the structure that holds it
//! (`forward.0.weight`, `feedback.1.weight`, `optim.forward.0.bias.m`), with
//! its shape. Checkpoints, state dicts and diagnostics are written against
//! these names alone, so they never need to know what a model or a rule is.

/// A borrowed tensor with its checkpoint name.
#[derive(Debug)]
pub struct NamedTensor<'a> {
    /// Checkpoint name, e.g. `feedback.1.weight`.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// The values.
    pub data: &'a [f32],
}

/// A mutable named tensor, for loading checkpoints.
#[derive(Debug)]
pub struct NamedTensorMut<'a> {
    /// Checkpoint name.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// The values.
    pub data: &'a mut [f32],
}

impl<'a> NamedTensor<'a> {
    /// `name` holding `data` of `shape`.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: &'a [f32]) -> Self {
        debug_assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape of a tensor"
        );
        Self {
            name: name.into(),
            shape,
            data,
        }
    }
}

impl<'a> NamedTensorMut<'a> {
    /// `name` holding `data` of `shape`.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: &'a mut [f32]) -> Self {
        debug_assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape of a tensor"
        );
        Self {
            name: name.into(),
            shape,
            data,
        }
    }
}
