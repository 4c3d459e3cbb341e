//! A network: a sequence of parametric layers from an input shape to the
//! outputs, with the output nonlinearity and loss; its forward pass over a
//! batch, its initialization, and its weights as named tensors.
//!
//! Buffer convention shared by the trainer and the rules ([`Activations`]):
//! `acts[0]` is the input batch, `acts[i + 1]` the output of layer `i`
//! (after its activation), the last one the output pre-activations (then,
//! once scored, the outputs). Each layer's own buffers (a convolution's
//! patches, a pooling layer's output) are in its workspace.

use crate::activation::Activation;
use crate::layers::spec::Planned;
use crate::layers::{uniform, Dense, Kind, Layer, Plain, Shape, Workspace};
use crate::loss::Output;
use crate::named::{NamedTensor, NamedTensorMut};
use crate::tensor::Matrix;
use rand::Rng;

/// How a network's weights start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Init {
    /// Weights and biases from `U(+-1/sqrt(fan_in))` (PyTorch's default for
    /// `nn.Linear` and `nn.Conv2d`).
    #[default]
    FanIn,
    /// Weights from `U(+-sqrt(6 / (fan_in + fan_out)))` (Glorot and Bengio
    /// 2010), biases zero.
    Xavier,
}

/// A feed-forward network of parametric layers.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// The shape of one input sample.
    pub input: Shape,
    /// The layers, input side first; `forward.{i}` in checkpoints.
    pub layers: Vec<Layer>,
    /// The output layer's nonlinearity and loss.
    pub output: Output,
}

impl Network {
    /// Layers of the given kinds and activations (see
    /// [`crate::layers::spec::build`]), every weight and bias drawn from
    /// `U(+-1/sqrt(fan_in))` ([`Init::FanIn`]).
    ///
    /// # Panics
    /// When `layers` is empty or a layer's input is not the previous output.
    pub fn new(input: Shape, layers: Vec<Planned>, output: Output, rng: &mut impl Rng) -> Self {
        Self::with_init(input, layers, output, Init::FanIn, rng)
    }

    /// [`Network::new`] with the weights drawn as `init` says, layer by
    /// layer, weights before biases.
    pub fn with_init(
        input: Shape,
        layers: Vec<Planned>,
        output: Output,
        init: Init,
        rng: &mut impl Rng,
    ) -> Self {
        assert!(!layers.is_empty(), "a network needs an output layer");
        let mut at = input;
        let layers = layers
            .into_iter()
            .map(|(kind, act, pre)| {
                let mut l = Layer::zeros(kind, act, pre);
                assert_eq!(
                    l.in_shape().len(),
                    at.len(),
                    "a layer's input is the previous output"
                );
                at = l.out_shape();
                match init {
                    Init::FanIn => {
                        let bound = 1.0 / (l.fan_in() as f32).sqrt();
                        uniform(l.weight.as_mut_slice(), bound, rng);
                        uniform(&mut l.bias, bound, rng);
                    }
                    Init::Xavier => {
                        let bound = (6.0 / (l.fan_in() + l.fan_out()) as f32).sqrt();
                        uniform(l.weight.as_mut_slice(), bound, rng);
                    }
                }
                l
            })
            .collect();
        Self {
            input,
            layers,
            output,
        }
    }

    /// A multilayer perceptron: `sizes[0]` inputs, hidden layers
    /// `sizes[1..L+1]` with activation `hidden`, and `sizes[L+1]` outputs.
    ///
    /// # Panics
    /// When `sizes` has fewer than two entries.
    pub fn mlp(sizes: &[usize], hidden: Activation, output: Output, rng: &mut impl Rng) -> Self {
        Self::new(Shape::flat(sizes[0]), mlp_plan(sizes, hidden), output, rng)
    }

    /// The network that mirrors this one, from its outputs back to its
    /// input (BFA's feedback network): layer `k` mirrors layer `L - k` (a
    /// dense layer with its transpose's shape, a convolution with a
    /// transposed convolution), pooling and `flatten` are undone by
    /// upsampling and unflattening in mirrored order, and each hidden layer
    /// has the activation of the forward layer whose output it reproduces.
    /// Drawn as [`Network::new`] draws.
    ///
    /// # Panics
    /// When the first layer has pooling or `flatten` before it (the mirror
    /// would end with them; the configuration refuses such a BFA run).
    pub fn mirror(&self, output: Output, rng: &mut impl Rng) -> Self {
        assert!(
            self.layers[0].pre.is_empty(),
            "a mirrored network ends with a parametric layer"
        );
        let plan: Vec<Planned> = self
            .layers
            .iter()
            .map(|l| (l.kind.clone(), l.activation, l.pre.clone()))
            .collect();
        let input = self.layers[self.layers.len() - 1].out_shape();
        Self::new(input, mirror_plan(&plan), output, rng)
    }

    /// Number of hidden layers (every layer but the output layer).
    pub fn hidden_layers(&self) -> usize {
        self.layers.len() - 1
    }

    /// Values per input sample.
    pub fn inputs(&self) -> usize {
        self.input.len()
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.layers
            .last()
            .expect("an output layer")
            .out_shape()
            .len()
    }

    /// Values per sample at each buffer: the input, then each layer's output.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.inputs())
            .chain(self.layers.iter().map(|l| l.out_shape().len()))
            .collect()
    }

    /// Buffers for the activations of up to `rows` samples (see the module docs).
    pub fn buffers(&self, rows: usize) -> Activations {
        Activations {
            outputs: self
                .sizes()
                .into_iter()
                .map(|n| Matrix::zeros(rows, n))
                .collect(),
            workspaces: self
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| l.workspace(rows, i == 0))
                .collect(),
        }
    }

    /// Forward pass over the first `rows` rows of `acts[0]`: fills every
    /// hidden layer's output and leaves the output *pre-activations* (bias
    /// added) in the last buffer, for [`Output::forward_error`] or
    /// [`Output::activate`].
    pub fn forward(&self, acts: &mut Activations, rows: usize) {
        let Activations {
            outputs,
            workspaces,
        } = acts;
        for (i, layer) in self.layers.iter().enumerate() {
            let (lo, hi) = outputs.split_at_mut(i + 1);
            layer.forward(&lo[i], &mut hi[0], &mut workspaces[i], rows);
        }
    }

    /// Every weight and bias as named tensors, as checkpoints store them:
    /// `{prefix}.{i}.weight` (the layer's weight shape) and `{prefix}.{i}.bias`.
    pub fn named_tensors(&self, prefix: &str) -> Vec<NamedTensor<'_>> {
        let mut v = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            v.push(NamedTensor::new(
                format!("{prefix}.{i}.weight"),
                l.weight_shape(),
                l.weight.as_slice(),
            ));
            v.push(NamedTensor::new(
                format!("{prefix}.{i}.bias"),
                vec![l.bias.len()],
                &l.bias,
            ));
        }
        v
    }

    /// [`Network::named_tensors`], mutable (for loading checkpoints).
    pub fn named_tensors_mut(&mut self, prefix: &str) -> Vec<NamedTensorMut<'_>> {
        let mut v = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let shape = l.weight_shape();
            v.push(NamedTensorMut::new(
                format!("{prefix}.{i}.weight"),
                shape,
                l.weight.as_mut_slice(),
            ));
            v.push(NamedTensorMut::new(
                format!("{prefix}.{i}.bias"),
                vec![l.bias.len()],
                &mut l.bias,
            ));
        }
        v
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.weight.as_slice().len() + l.bias.len())
            .sum()
    }

    /// The widths of the hidden layers' outputs (`[800, 800]` for 2x800).
    pub fn hidden_sizes(&self) -> Vec<usize> {
        self.layers[..self.hidden_layers()]
            .iter()
            .map(|l| l.out_shape().len())
            .collect()
    }

    /// Per hidden layer, [`Layer::chw_row_order`] of its output.
    pub fn hidden_chw_row_orders(&self) -> Vec<Option<Vec<usize>>> {
        self.layers[..self.hidden_layers()]
            .iter()
            .map(Layer::chw_row_order)
            .collect()
    }

    /// The outputs for `inputs` (one sample a row), after the output
    /// function: a convenience for small batches outside training.
    pub fn infer(&self, inputs: &Matrix) -> Matrix {
        let rows = inputs.rows();
        let mut acts = self.buffers(rows);
        acts[0].copy_from(inputs);
        self.forward(&mut acts, rows);
        let mut out = acts.outputs.pop().expect("output layer");
        self.output.activate(out.as_mut_slice(), self.outputs());
        out
    }
}

/// The layers of the network that mirrors the network of `plan` (see
/// [`Network::mirror`]), from its outputs back to its input: one definition
/// for building BFA's feedback network and for estimating its size.
pub fn mirror_plan(plan: &[Planned]) -> Vec<Planned> {
    let n = plan.len();
    (0..n)
        .map(|k| {
            let kind = plan[n - 1 - k].0.mirror();
            let act = (k + 1 < n).then(|| plan[n - 2 - k].1);
            // What ran between forward layers L - k and L - k + 1, undone.
            let pre = match k {
                0 => Vec::new(),
                _ => plan[n - k].2.iter().rev().map(Plain::mirror).collect(),
            };
            (kind, act.flatten(), pre)
        })
        .collect()
}

/// The layers of a multilayer perceptron of widths `sizes` (input first),
/// its hidden layers with activation `hidden`.
///
/// # Panics
/// When `sizes` has fewer than two entries.
pub fn mlp_plan(sizes: &[usize], hidden: Activation) -> Vec<Planned> {
    assert!(sizes.len() >= 2, "an MLP needs an input and an output size");
    let last = sizes.len() - 2;
    sizes
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let kind = Kind::Dense(Dense {
                inputs: w[0],
                outputs: w[1],
            });
            (kind, (i < last).then_some(hidden), Vec::new())
        })
        .collect()
}

/// A batch's forward buffers: each layer's output, and each layer's
/// workspace. Indexing gives the outputs: `acts[0]` is the input,
/// `acts[i + 1]` the output of layer `i`.
#[derive(Clone, Debug)]
pub struct Activations {
    /// The input, then each layer's output.
    pub outputs: Vec<Matrix>,
    /// Each layer's own buffers.
    pub workspaces: Vec<Workspace>,
}

impl Activations {
    /// The last buffer: the output pre-activations, or the outputs once scored.
    pub fn output(&self) -> &Matrix {
        self.outputs.last().expect("an output buffer")
    }

    /// [`Activations::output`], mutable.
    pub fn output_mut(&mut self) -> &mut Matrix {
        self.outputs.last_mut().expect("an output buffer")
    }

    /// The number of buffers: the input and each layer's output.
    pub fn len(&self) -> usize {
        self.outputs.len()
    }

    /// True when there are no buffers.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }
}

impl std::ops::Index<usize> for Activations {
    type Output = Matrix;
    fn index(&self, i: usize) -> &Matrix {
        &self.outputs[i]
    }
}

impl std::ops::IndexMut<usize> for Activations {
    fn index_mut(&mut self, i: usize) -> &mut Matrix {
        &mut self.outputs[i]
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
