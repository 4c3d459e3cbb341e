//! Layers: what a network is made of, each kind in its own file.
//!
//! A parametric layer ([`Layer`]) owns three maps, side by side (llm.c's
//! forward/backward pairs):
//! - its forward pass, `y = f(x W^T + b)` for a dense layer, with its hidden
//!   activation `f` fused into the product's epilogue;
//! - the operands of its weight gradient, from its input and the error at its
//!   output ([`Layer::grad_operands`]);
//! - the map that carries an error at its output back to its input *through
//!   a given operator* ([`Through`]): its own weights (backpropagation) or a
//!   stand-in for them (feedback alignment and its relatives). That operator
//!   is all a feedback rule changes, so rules never see a layer's kind.
//!
//! A stand-in is kept in the layer's own stand-in layout
//! ([`Layer::stand_in_zeros`]): for a dense layer `[in, out]`, the weight
//! transposed, which is how checkpoints have always stored FA's `B`.

mod dense;

pub use dense::Dense;

use crate::activation::Activation;
use crate::tensor::{gemm_then, Matrix, View};
use rand::Rng;

/// The shape of one sample's activations: channels, height, width. A dense
/// layer's output is `n x 1 x 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Shape {
    /// `n` values with no spatial layout.
    pub fn flat(n: usize) -> Self {
        Self { c: n, h: 1, w: 1 }
    }

    /// `(c, h, w)`.
    pub fn new(c: usize, h: usize, w: usize) -> Self {
        Self { c, h, w }
    }

    /// Values per sample.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// True when a sample holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.h == 1 && self.w == 1 {
            write!(f, "{}", self.c)
        } else {
            write!(f, "{}x{}x{}", self.c, self.h, self.w)
        }
    }
}

/// What a parametric layer computes; the geometry of its weight.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// An affine map of flat vectors.
    Dense(Dense),
}

/// What carries an error back across a layer, from its output to its input.
#[derive(Clone, Copy, Debug)]
pub enum Through<'a> {
    /// The layer's own weights: backpropagation.
    Weights,
    /// A matrix standing in for the weights, in the layer's stand-in layout
    /// ([`Layer::stand_in_zeros`]).
    StandIn(&'a Matrix),
}

/// A parametric layer: its kind, its weights and bias, and the hidden
/// activation fused into its forward pass (none for the output layer, whose
/// nonlinearity belongs to the loss).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// What it computes.
    pub kind: Kind,
    /// `[out, fan_in]`: `[out, in]` for a dense layer (PyTorch's `nn.Linear`).
    pub weight: Matrix,
    /// One per output channel.
    pub bias: Vec<f32>,
    /// The nonlinearity applied to its output, if any.
    pub activation: Option<Activation>,
}

impl Layer {
    /// A layer of `kind` with zero weights.
    pub fn zeros(kind: Kind, activation: Option<Activation>) -> Self {
        let (rows, cols) = kind.weight_matrix_shape();
        let bias = vec![0.0; rows];
        Self {
            kind,
            weight: Matrix::zeros(rows, cols),
            bias,
            activation,
        }
    }

    /// The shape of one input sample.
    pub fn in_shape(&self) -> Shape {
        self.kind.in_shape()
    }

    /// The shape of one output sample.
    pub fn out_shape(&self) -> Shape {
        self.kind.out_shape()
    }

    /// Inputs that reach one output unit (the fan-in of initializations).
    pub fn fan_in(&self) -> usize {
        self.kind.fan_in()
    }

    /// Outputs that one input unit reaches (the width of the error a
    /// stand-in carries back to one input unit).
    pub fn fan_out(&self) -> usize {
        self.kind.fan_out()
    }

    /// The weight's shape as checkpoints store it.
    pub fn weight_shape(&self) -> Vec<usize> {
        self.kind.weight_shape()
    }

    /// A zero stand-in for the weights, in the layer's stand-in layout.
    pub fn stand_in_zeros(&self) -> Matrix {
        let (r, c) = self.kind.stand_in_matrix_shape();
        Matrix::zeros(r, c)
    }

    /// The stand-in layout's shape as checkpoints store it.
    pub fn stand_in_shape(&self) -> Vec<usize> {
        self.kind.stand_in_shape()
    }

    /// The weights themselves in the stand-in layout (for the published
    /// code's FA, whose `B` starts as `W`, and for alignment angles).
    pub fn weight_as_stand_in(&self) -> Matrix {
        match &self.kind {
            Kind::Dense(_) => self.weight.transposed(),
        }
    }

    /// `dst = sign(W) .* magnitude` in the stand-in layout, `magnitude(k)`
    /// for the flat index `k` into `dst`, `sign(0) = 0`: the sign-concordant
    /// rules' stand-in.
    pub fn sign_stand_in(&self, dst: &mut Matrix, magnitude: impl Fn(usize) -> f32 + Sync) {
        match &self.kind {
            Kind::Dense(_) => dense::sign_transposed(dst, &self.weight, magnitude),
        }
    }

    /// Forward pass over the first `rows` rows of `x` into `y`: the product,
    /// the bias and the activation (if any), fused.
    pub fn forward(&self, x: &Matrix, y: &mut Matrix, rows: usize) {
        match &self.kind {
            Kind::Dense(_) => dense::forward(&self.weight, &self.bias, self.activation, x, y, rows),
        }
    }

    /// Carries `delta` (the error at this layer's output, pre-activation,
    /// first `rows` rows) back to its input through `through`, into `dst`;
    /// then, when the layer below has an activation (`below`, with its
    /// output `h`), multiplies by its derivative, so that `dst` is the error
    /// at the layer below's pre-activation.
    pub fn backward_input(
        &self,
        through: Through<'_>,
        delta: View<'_>,
        dst: &mut Matrix,
        below: Option<Activation>,
        h: &Matrix,
        rows: usize,
    ) {
        match &self.kind {
            Kind::Dense(_) => {
                let path = match through {
                    Through::Weights => self.weight.view(),
                    Through::StandIn(b) => b.view().t(),
                };
                propagate(dst, delta, path, below, h, rows);
            }
        }
    }
}

impl Kind {
    /// The shape of one input sample.
    pub fn in_shape(&self) -> Shape {
        match self {
            Kind::Dense(d) => Shape::flat(d.inputs),
        }
    }

    /// The shape of one output sample.
    pub fn out_shape(&self) -> Shape {
        match self {
            Kind::Dense(d) => Shape::flat(d.outputs),
        }
    }

    /// See [`Layer::fan_in`].
    pub fn fan_in(&self) -> usize {
        match self {
            Kind::Dense(d) => d.inputs,
        }
    }

    /// See [`Layer::fan_out`].
    pub fn fan_out(&self) -> usize {
        match self {
            Kind::Dense(d) => d.outputs,
        }
    }

    /// `(rows, cols)` of the weight matrix.
    pub fn weight_matrix_shape(&self) -> (usize, usize) {
        match self {
            Kind::Dense(d) => (d.outputs, d.inputs),
        }
    }

    /// See [`Layer::weight_shape`].
    pub fn weight_shape(&self) -> Vec<usize> {
        match self {
            Kind::Dense(d) => vec![d.outputs, d.inputs],
        }
    }

    /// `(rows, cols)` of a stand-in matrix.
    pub fn stand_in_matrix_shape(&self) -> (usize, usize) {
        match self {
            Kind::Dense(d) => (d.inputs, d.outputs),
        }
    }

    /// See [`Layer::stand_in_shape`].
    pub fn stand_in_shape(&self) -> Vec<usize> {
        let (r, c) = self.stand_in_matrix_shape();
        vec![r, c]
    }

    /// The operands `(a, b)` whose product `a b` is the summed weight
    /// gradient (divide by the rows for the mean), from the layer's `input`
    /// and the error `delta` at its output, over the first `rows` rows.
    pub fn grad_operands<'a>(
        &self,
        input: &'a Matrix,
        delta: &'a Matrix,
        rows: usize,
    ) -> (View<'a>, View<'a>) {
        match self {
            Kind::Dense(_) => (delta.rows_view(rows).t(), input.rows_view(rows)),
        }
    }

    /// [`Kind::grad_operands`] for a matrix in the stand-in layout (the
    /// Kolen-Pollack rules' feedback gradient).
    pub fn stand_in_grad_operands<'a>(
        &self,
        input: &'a Matrix,
        delta: &'a Matrix,
        rows: usize,
    ) -> (View<'a>, View<'a>) {
        match self {
            Kind::Dense(_) => (input.rows_view(rows).t(), delta.rows_view(rows)),
        }
    }
}

/// Fills `m` with draws from `U(-bound, bound)`.
pub fn uniform(m: &mut [f32], bound: f32, rng: &mut impl Rng) {
    for v in m {
        *v = (rng.random::<f32>() * 2.0 - 1.0) * bound;
    }
}

/// `dst = (src * path) .* f'(h)` over `rows` rows (without the derivative
/// when `act` is `None`): the one product of every error that travels
/// through a matrix to a layer's output, whether back across the layer above
/// or projected from the output (the direct rules).
pub fn propagate(
    dst: &mut Matrix,
    src: View<'_>,
    path: View<'_>,
    act: Option<Activation>,
    h: &Matrix,
    rows: usize,
) {
    debug_assert_eq!(src.nrows(), rows);
    match act {
        Some(act) => gemm_then(dst, false, 1.0, src, path, &|block| {
            let cols = block.cols.clone();
            act.mul_derivative_rows(
                block
                    .rows_mut()
                    .map(|(r, row)| (row, &h.row(r)[cols.clone()])),
            );
        }),
        None => crate::tensor::gemm(dst, false, 1.0, src, path),
    }
}
