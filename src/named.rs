//! Named tensors: every trained value (weights, feedback weights, optimizer
//! state) is exposed under a name derived from the structure that holds it
//! (`forward.0.weight`, `feedback.1.weight`, `optim.forward.0.bias.m`), with
//! its shape. Checkpoints, state dicts and diagnostics are written against
//! these names alone, so they never need to know what a model or a rule is.
//!
//! A tensor may be held in another row order than the one it is stored in
//! (a direct rule's projection to a feature map is held channels last, as
//! the map is, and stored in PyTorch's `C, H, W` order): its `row_order`
//! says which held row each stored row is, and [`NamedTensor::stored`] and
//! [`NamedTensorMut::store_from`] convert.

use std::borrow::Cow;

/// A borrowed tensor with its checkpoint name.
#[derive(Debug)]
pub struct NamedTensor<'a> {
    /// Checkpoint name, e.g. `feedback.1.weight`.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// The values, in the order they are held in.
    pub data: &'a [f32],
    /// Stored row `r` is held row `row_order[r]` (rows of
    /// `data.len() / row_order.len()` values); none: the same order.
    pub row_order: Option<&'a [usize]>,
}

/// A mutable named tensor, for loading checkpoints.
#[derive(Debug)]
pub struct NamedTensorMut<'a> {
    /// Checkpoint name.
    pub name: String,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// The values, in the order they are held in.
    pub data: &'a mut [f32],
    /// As [`NamedTensor::row_order`].
    pub row_order: Option<&'a [usize]>,
}

impl<'a> NamedTensor<'a> {
    /// `name` holding `data` of `shape`, stored as held.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: &'a [f32]) -> Self {
        debug_check_shape(&shape, data.len());
        Self {
            name: name.into(),
            shape,
            data,
            row_order: None,
        }
    }

    /// The same tensor, stored in `order` ([`NamedTensor::row_order`]).
    pub fn with_row_order(self, order: Option<&'a [usize]>) -> Self {
        debug_check_order(self.data.len(), order);
        Self {
            row_order: order,
            ..self
        }
    }

    /// The values in the order they are stored in.
    pub fn stored(&self) -> Cow<'a, [f32]> {
        match self.row_order {
            None => Cow::Borrowed(self.data),
            Some(order) => {
                let width = row_width(self.data.len(), order);
                let mut out = Vec::with_capacity(self.data.len());
                for &held in order {
                    out.extend_from_slice(&self.data[held * width..(held + 1) * width]);
                }
                Cow::Owned(out)
            }
        }
    }
}

impl<'a> NamedTensorMut<'a> {
    /// `name` holding `data` of `shape`, stored as held.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: &'a mut [f32]) -> Self {
        debug_check_shape(&shape, data.len());
        Self {
            name: name.into(),
            shape,
            data,
            row_order: None,
        }
    }

    /// The same tensor, stored in `order` ([`NamedTensor::row_order`]).
    pub fn with_row_order(self, order: Option<&'a [usize]>) -> Self {
        debug_check_order(self.data.len(), order);
        Self {
            row_order: order,
            ..self
        }
    }

    /// The tensor, read only.
    pub fn as_named(&self) -> NamedTensor<'_> {
        NamedTensor {
            name: self.name.clone(),
            shape: self.shape.clone(),
            data: self.data,
            row_order: self.row_order,
        }
    }

    /// Sets the values from `stored`, which is in the stored order and of
    /// the tensor's length.
    pub fn store_from(&mut self, stored: &[f32]) {
        assert_eq!(stored.len(), self.data.len(), "length of a stored tensor");
        match self.row_order {
            None => self.data.copy_from_slice(stored),
            Some(order) => {
                let width = row_width(self.data.len(), order);
                for (row, &held) in stored.chunks_exact(width).zip(order) {
                    self.data[held * width..(held + 1) * width].copy_from_slice(row);
                }
            }
        }
    }
}

/// Both kinds of tensor are built from a shape and values that must agree.
fn debug_check_shape(shape: &[usize], len: usize) {
    debug_assert_eq!(shape.iter().product::<usize>(), len, "shape of a tensor");
}

/// A row order must split the values into whole rows.
fn debug_check_order(len: usize, order: Option<&[usize]>) {
    debug_assert!(order.is_none_or(|o| o.is_empty() || len.is_multiple_of(o.len())));
}

fn row_width(len: usize, order: &[usize]) -> usize {
    if order.is_empty() {
        0
    } else {
        len / order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tensor stored in another row order comes back as it was held.
    #[test]
    fn a_row_order_round_trips() {
        let held: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let order = [2, 0, 1];
        let t = NamedTensor::new("t", vec![3, 2], &held).with_row_order(Some(&order));
        let stored = t.stored().into_owned();
        assert_eq!(stored, [4.0, 5.0, 0.0, 1.0, 2.0, 3.0]);
        let mut back = vec![0.0; 6];
        NamedTensorMut::new("t", vec![3, 2], &mut back)
            .with_row_order(Some(&order))
            .store_from(&stored);
        assert_eq!(back, held);
        assert_eq!(
            NamedTensor::new("t", vec![3, 2], &held).stored().as_ref(),
            held
        );
    }
}
