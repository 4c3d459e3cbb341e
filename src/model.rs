//! The forward MLP: layers, the forward pass over a batch, and initialization.

use crate::activation::Activation;
use crate::loss::Output;
use crate::rules::{FeedbackTensor, FeedbackTensorMut};
use crate::tensor::{gemm_then, Matrix};
use rand::Rng;

/// One affine layer: `weight` is `[out, in]` (PyTorch's `nn.Linear` layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// `[out, in]`.
    pub weight: Matrix,
    /// `[out]`.
    pub bias: Vec<f32>,
}

impl Layer {
    /// A zero layer mapping `fan_in` to `fan_out` units.
    pub fn zeros(fan_in: usize, fan_out: usize) -> Self {
        Self {
            weight: Matrix::zeros(fan_out, fan_in),
            bias: vec![0.0; fan_out],
        }
    }

    /// Input width.
    pub fn fan_in(&self) -> usize {
        self.weight.cols()
    }

    /// Output width.
    pub fn fan_out(&self) -> usize {
        self.weight.rows()
    }
}

/// Fills `m` with draws from `U(-bound, bound)`.
pub fn uniform(m: &mut [f32], bound: f32, rng: &mut impl Rng) {
    for v in m {
        *v = (rng.random::<f32>() * 2.0 - 1.0) * bound;
    }
}

/// A multilayer perceptron: `sizes[0]` inputs, hidden layers `sizes[1..L+1]`
/// with activation `hidden`, and `sizes[L+1]` outputs through `output`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Widths of every layer, input first, output last.
    pub sizes: Vec<usize>,
    /// `sizes.len() - 1` affine layers.
    pub layers: Vec<Layer>,
    /// The hidden nonlinearity.
    pub hidden: Activation,
    /// The output layer and its loss.
    pub output: Output,
}

impl Mlp {
    /// A network with every weight and bias drawn from `U(+-1/sqrt(fan_in))`.
    pub fn new(sizes: &[usize], hidden: Activation, output: Output, rng: &mut impl Rng) -> Self {
        assert!(sizes.len() >= 2, "an MLP needs an input and an output size");
        let layers = sizes
            .windows(2)
            .map(|w| {
                let mut l = Layer::zeros(w[0], w[1]);
                let bound = 1.0 / (w[0] as f32).sqrt();
                uniform(l.weight.as_mut_slice(), bound, rng);
                uniform(&mut l.bias, bound, rng);
                l
            })
            .collect();
        Self {
            sizes: sizes.to_vec(),
            layers,
            hidden,
            output,
        }
    }

    /// Number of hidden layers `L`.
    pub fn hidden_layers(&self) -> usize {
        self.layers.len() - 1
    }

    /// Number of inputs.
    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        *self.sizes.last().unwrap()
    }

    /// Buffers for the activations of up to `rows` samples: `acts[0]` is the
    /// input, `acts[l]` hidden layer `l`, the last one the output.
    pub fn activation_buffers(&self, rows: usize) -> Vec<Matrix> {
        self.sizes.iter().map(|&n| Matrix::zeros(rows, n)).collect()
    }

    /// Forward pass over the first `rows` rows of `acts[0]`: fills every hidden
    /// layer and leaves the output *pre-activations* (bias added) in the last
    /// buffer, for [`Output::forward_error`] or [`Output::activate`].
    pub fn forward(&self, acts: &mut [Matrix], rows: usize) {
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let (lo, hi) = acts.split_at_mut(i + 1);
            let input = lo[i].rows_view(rows);
            let w = layer.weight.view().t();
            let bias = &layer.bias;
            if i == last {
                gemm_then(&mut hi[0], false, 1.0, input, w, &|block| {
                    let cols = block.cols.clone();
                    for (_, row) in block.rows_mut() {
                        row.iter_mut()
                            .zip(&bias[cols.clone()])
                            .for_each(|(v, b)| *v += b);
                    }
                });
            } else {
                let act = self.hidden;
                gemm_then(&mut hi[0], false, 1.0, input, w, &|block| {
                    let b = &bias[block.cols.clone()];
                    act.apply_with_bias_rows(block.rows_mut().map(|(_, row)| row), b);
                });
            }
        }
    }

    /// Every weight and bias as named tensors, as checkpoints store them:
    /// `{prefix}.{i}.weight` `[out, in]` and `{prefix}.{i}.bias` `[out]`.
    pub fn named_tensors(&self, prefix: &str) -> Vec<FeedbackTensor<'_>> {
        let mut v = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            v.push(FeedbackTensor {
                name: format!("{prefix}.{i}.weight"),
                shape: vec![l.fan_out(), l.fan_in()],
                data: l.weight.as_slice(),
            });
            v.push(FeedbackTensor {
                name: format!("{prefix}.{i}.bias"),
                shape: vec![l.bias.len()],
                data: &l.bias,
            });
        }
        v
    }

    /// [`Mlp::named_tensors`], mutable (for loading checkpoints).
    pub fn named_tensors_mut(&mut self, prefix: &str) -> Vec<FeedbackTensorMut<'_>> {
        let mut v = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let shape = vec![l.fan_out(), l.fan_in()];
            v.push(FeedbackTensorMut {
                name: format!("{prefix}.{i}.weight"),
                shape,
                data: l.weight.as_mut_slice(),
            });
            v.push(FeedbackTensorMut {
                name: format!("{prefix}.{i}.bias"),
                shape: vec![l.bias.len()],
                data: &mut l.bias,
            });
        }
        v
    }

    /// Number of trainable forward parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.as_slice().len() + l.bias.len())
            .sum()
    }
}

/// Index of the largest value of each row (the predicted class).
pub fn argmax_rows(m: &[f32], n: usize) -> impl Iterator<Item = usize> + '_ {
    m.chunks_exact(n).map(|row| {
        let mut best = 0;
        for (j, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = j;
            }
        }
        best
    })
}
