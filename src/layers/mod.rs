//! Layers: what a network is made of, each kind in its own file.
//!
//! A parametric layer ([`Layer`]: dense or convolution) owns three maps,
//! side by side (llm.c's forward/backward pairs):
//! - its forward pass, `y = f(x W^T + b)` for a dense layer, with its hidden
//!   activation `f` fused into the product's epilogue;
//! - the operands of its weight gradient, from its input and the error at its
//!   output ([`Layer::grad_operands`]);
//! - the map that carries an error at its output back to its input *through
//!   a given operator* ([`Through`]): its own weights (backpropagation) or a
//!   stand-in for them (feedback alignment and its relatives). That operator
//!   is all a feedback rule changes, so rules never see a layer's kind.
//!
//! The layers without weights (pooling, `flatten`) run before the parametric
//! layer they feed ([`Layer::pre`]), and route errors the same way for every
//! rule. A stand-in is kept in the layer's own stand-in layout
//! ([`Layer::stand_in_zeros`]): for a dense layer `[in, out]`, the weight
//! transposed, which is how checkpoints have always stored FA's `B`; for a
//! convolution the weight's own `[out, in, kh, kw]`.
//!
//! Kind files (`dense.rs`, `conv2d.rs`, `pool.rs`, `flatten.rs`) are leaves:
//! they know their kernels and nothing above them; this file dispatches.

mod affine;
mod conv2d;
mod conv_transpose;
mod dense;
mod flatten;
mod pool;
mod shape;
pub mod spec;

pub use conv2d::Conv2d;
pub use dense::Dense;
pub use flatten::Flatten;
pub use pool::{Pool, PoolKind};
pub use shape::{Layout, Shape};

use crate::activation::Activation;
use crate::tensor::{gemm, gemm_then, Matrix, View};
use rand::Rng;

/// What a parametric layer computes; the geometry of its weight.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// An affine map of flat vectors.
    Dense(Dense),
    /// A 2-D convolution.
    Conv2d(Conv2d),
    /// The transpose of the convolution of this geometry, from its output's
    /// shape to its input's (BFA's feedback network mirrors a convolution
    /// with one).
    ConvTranspose(Conv2d),
}

/// A layer without weights, run before a parametric layer.
#[derive(Clone, Debug, PartialEq)]
pub enum Plain {
    /// Max- or average-pooling.
    Pool(Pool),
    /// A feature map as one vector, in `C, H, W` order.
    Flatten(Flatten),
    /// The mirror of a pooling layer: its output spread back over its
    /// input's shape.
    Upsample(Pool),
    /// The mirror of `flatten`: a vector back to its feature map.
    Unflatten(Flatten),
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

/// A parametric layer: its kind, its weights and bias, the hidden
/// activation fused into its forward pass (none for the output layer, whose
/// nonlinearity belongs to the loss), and the layers without weights that
/// run before it.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// What it computes.
    pub kind: Kind,
    /// `[out, fan_in]`: `[out, in]` for a dense layer (PyTorch's
    /// `nn.Linear`), `[out, in kh kw]` for a convolution (`nn.Conv2d`'s
    /// `[out, in, kh, kw]`, flattened).
    pub weight: Matrix,
    /// One per output channel.
    pub bias: Vec<f32>,
    /// The nonlinearity applied to its output, if any.
    pub activation: Option<Activation>,
    /// Pooling and `flatten`, in the order they run before this layer.
    pub pre: Vec<Plain>,
}

/// The buffers of one layer for a batch, allocated once: its convolution's
/// patches, and the output, error and arg-max of each layer before it.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    conv: Option<conv2d::Workspace>,
    pre: Vec<PreBuffers>,
}

#[derive(Clone, Debug)]
struct PreBuffers {
    out: Matrix,
    err: Matrix,
    argmax: Vec<u32>,
}

impl Plain {
    /// The shape of one output sample.
    pub fn output(&self) -> Shape {
        match self {
            Plain::Pool(p) => p.output(),
            Plain::Flatten(f) => f.output(),
            Plain::Upsample(p) => p.input,
            Plain::Unflatten(f) => f.input,
        }
    }

    /// The shape of one input sample.
    pub fn input(&self) -> Shape {
        match self {
            Plain::Pool(p) => p.input,
            Plain::Flatten(f) => f.input,
            Plain::Upsample(p) => p.output(),
            Plain::Unflatten(f) => f.output(),
        }
    }

    /// The layout of the output.
    pub fn out_layout(&self) -> Layout {
        match self {
            Plain::Pool(p) | Plain::Upsample(p) => p.layout,
            Plain::Flatten(_) => Layout::Chw,
            Plain::Unflatten(f) => f.layout,
        }
    }

    /// The layer that undoes this one's shape (BFA's feedback network).
    pub fn mirror(&self) -> Plain {
        match *self {
            Plain::Pool(p) => Plain::Upsample(p),
            Plain::Upsample(p) => Plain::Pool(p),
            Plain::Flatten(f) => Plain::Unflatten(f),
            Plain::Unflatten(f) => Plain::Flatten(f),
        }
    }

    fn forward(&self, x: &Matrix, b: &mut PreBuffers, rows: usize) {
        match self {
            Plain::Pool(p) => pool::forward(p, x, &mut b.out, &mut b.argmax, rows),
            Plain::Flatten(f) => flatten::forward(f, x, &mut b.out, rows),
            Plain::Upsample(p) => pool::spread(p, x, &mut b.out, rows),
            Plain::Unflatten(f) => flatten::backward(f, x, &mut b.out, rows),
        }
    }

    /// `dx` from the error `dy` at this layer's output.
    fn backward(&self, dy: &Matrix, dx: &mut Matrix, argmax: &[u32], rows: usize) {
        match self {
            Plain::Pool(p) => pool::backward(p, dy, dx, argmax, rows),
            Plain::Flatten(f) => flatten::backward(f, dy, dx, rows),
            Plain::Upsample(p) => pool::gather(p, dy, dx, rows),
            Plain::Unflatten(f) => flatten::forward(f, dy, dx, rows),
        }
    }
}

impl Layer {
    /// A layer of `kind` with zero weights.
    pub fn zeros(kind: Kind, activation: Option<Activation>, pre: Vec<Plain>) -> Self {
        let (rows, cols) = kind.weight_matrix_shape();
        let bias = vec![0.0; kind.out_shape().c];
        Self {
            kind,
            weight: Matrix::zeros(rows, cols),
            bias,
            activation,
            pre,
        }
    }

    /// The shape of one input sample (before the layers in [`Layer::pre`]).
    pub fn in_shape(&self) -> Shape {
        self.pre
            .first()
            .map_or_else(|| self.kind.in_shape(), Plain::input)
    }

    /// The shape of one output sample.
    pub fn out_shape(&self) -> Shape {
        self.kind.out_shape()
    }

    /// For a matrix with a row per output unit, held in the output's own
    /// layout: which held row each row is in PyTorch's `C, H, W` order
    /// (`order[(c h + y) w + x]`); none when the two orders are the same.
    pub fn chw_row_order(&self) -> Option<Vec<usize>> {
        let (s, layout) = (self.out_shape(), self.kind.out_layout());
        if layout == Layout::Chw || s.c == 1 || s.h * s.w == 1 {
            return None;
        }
        let mut order = Vec::with_capacity(s.len());
        for c in 0..s.c {
            for y in 0..s.h {
                for x in 0..s.w {
                    order.push(layout.index(s, c, y, x));
                }
            }
        }
        Some(order)
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
        match &self.kind {
            Kind::Dense(d) => vec![d.inputs, d.outputs],
            Kind::Conv2d(_) | Kind::ConvTranspose(_) => self.weight_shape(),
        }
    }

    /// The weights themselves in the stand-in layout (for the published
    /// code's FA, whose `B` starts as `W`, and for alignment angles).
    pub fn weight_as_stand_in(&self) -> Matrix {
        match &self.kind {
            Kind::Dense(_) => self.weight.transposed(),
            Kind::Conv2d(_) | Kind::ConvTranspose(_) => self.weight.clone(),
        }
    }

    /// `dst = sign(W) .* magnitude` in the stand-in layout, `magnitude(k)`
    /// for the flat index `k` into `dst`, `sign(0) = 0`: the sign-concordant
    /// rules' stand-in.
    pub fn sign_stand_in(&self, dst: &mut Matrix, magnitude: impl Fn(usize) -> f32 + Sync) {
        match &self.kind {
            Kind::Dense(_) => dense::sign_transposed(dst, &self.weight, magnitude),
            Kind::Conv2d(_) | Kind::ConvTranspose(_) => {
                conv2d::sign_like(dst, &self.weight, magnitude)
            }
        }
    }

    /// Buffers for batches of `rows`; `first` for the network's first layer,
    /// whose input error nothing reads.
    pub fn workspace(&self, rows: usize, first: bool) -> Workspace {
        let mut at = self.in_shape();
        let pre = self
            .pre
            .iter()
            .map(|op| {
                let out = op.output();
                let argmax = match op {
                    Plain::Pool(p) if p.kind == PoolKind::Max => rows * out.len(),
                    _ => 0,
                };
                let b = PreBuffers {
                    out: Matrix::zeros(rows, out.len()),
                    err: Matrix::zeros(rows, out.len()),
                    argmax: vec![0; argmax],
                };
                at = out;
                b
            })
            .collect();
        // The same values; a dense layer reads a Chw map before it as flat.
        debug_assert_eq!(at.len(), self.kind.in_shape().len());
        Workspace {
            conv: match &self.kind {
                Kind::Conv2d(g) => Some(g.workspace(rows, !first)),
                // Its product's buffer, and the patches of its output's error.
                Kind::ConvTranspose(g) => Some(g.workspace(rows, true)),
                Kind::Dense(_) => None,
            },
            pre,
        }
    }

    /// Forward pass over the first `rows` rows of `x` into `y`: the layers
    /// in [`Layer::pre`], then the product, the bias and the activation (if
    /// any), fused.
    pub fn forward(&self, x: &Matrix, y: &mut Matrix, ws: &mut Workspace, rows: usize) {
        for j in 0..self.pre.len() {
            let (done, rest) = ws.pre.split_at_mut(j);
            let input = done.last().map_or(x, |b| &b.out);
            self.pre[j].forward(input, &mut rest[0], rows);
        }
        let input = ws.pre.last().map_or(x, |b| &b.out);
        match &self.kind {
            Kind::Dense(_) => {
                dense::forward(&self.weight, &self.bias, self.activation, input, y, rows)
            }
            Kind::Conv2d(g) => {
                let cw = ws.conv.as_mut().expect("a convolution's workspace");
                conv2d::forward(
                    g,
                    &self.weight,
                    &self.bias,
                    self.activation,
                    input,
                    y,
                    cw,
                    rows,
                )
            }
            Kind::ConvTranspose(g) => {
                let cw = ws.conv.as_mut().expect("a convolution's workspace");
                let (w, b, act) = (&self.weight, &self.bias, self.activation);
                conv_transpose::forward(g, w, b, act, input, y, cw, rows)
            }
        }
    }

    /// Carries `delta` (the error at this layer's output, pre-activation,
    /// first `rows` rows) back through `through` and the layers in
    /// [`Layer::pre`] to its input, into `dst`; then, when the layer below
    /// has an activation (`below`, with its output `h`, this layer's input),
    /// multiplies by its derivative, so that `dst` is the error at the layer
    /// below's pre-activation.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_input(
        &self,
        through: Through<'_>,
        delta: &Matrix,
        dst: &mut Matrix,
        ws: &mut Workspace,
        below: Option<Activation>,
        h: &Matrix,
        rows: usize,
    ) {
        let Workspace { conv, pre } = ws;
        // Where this layer's own map writes: straight into `dst` (with the
        // derivative fused where the kind can), or into the last pre layer's
        // error buffer, to be routed back from there.
        let (own_dst, own_below) = match pre.last_mut() {
            Some(b) => (&mut b.err, None),
            None => (&mut *dst, below),
        };
        // The operator in the weight's own layout, `[out, fan_in]`.
        let own: &Matrix = match through {
            Through::Weights => &self.weight,
            Through::StandIn(b) => b,
        };
        let path = match (through, &self.kind) {
            (Through::Weights, _) => self.weight.view(),
            (Through::StandIn(b), Kind::Dense(_)) => b.view().t(),
            (Through::StandIn(b), _) => b.view(),
        };
        match &self.kind {
            Kind::Dense(_) => propagate(own_dst, delta.rows_view(rows), path, own_below, h, rows),
            Kind::Conv2d(g) => {
                let cw = conv.as_mut().expect("a convolution's workspace");
                conv2d::backward_input(g, own, delta, own_dst, cw, own_below, h, rows);
            }
            Kind::ConvTranspose(g) => {
                let cw = conv.as_mut().expect("a convolution's workspace");
                conv_transpose::backward_input(g, path, delta, own_dst, cw, own_below, h, rows);
            }
        }
        self.back_through_pre(pre, dst, below, h, rows);
    }

    /// Writes `src path` (`src` `[rows, k]`, `path` `[k, inputs]`) as the
    /// error at this layer's input after [`Layer::pre`] (`inputs` values in
    /// their memory order), then carries it back through those layers into
    /// `dst` and multiplies by the derivative of `below`, as
    /// [`Layer::backward_input`] does with the error it makes: an error that
    /// enters at this layer's input rather than at its output (biotorch's
    /// DFA: `dfa_projection = "kernel"`).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_from_input(
        &self,
        src: View<'_>,
        path: View<'_>,
        dst: &mut Matrix,
        ws: &mut Workspace,
        below: Option<Activation>,
        h: &Matrix,
        rows: usize,
    ) {
        let pre = &mut ws.pre;
        match pre.last_mut() {
            Some(b) => propagate(&mut b.err, src, path, None, h, rows),
            None => propagate(dst, src, path, below, h, rows),
        }
        self.back_through_pre(pre, dst, below, h, rows);
    }

    /// Carries the error in the last pre layer's buffer back through the
    /// layers in [`Layer::pre`] into `dst`, then multiplies by the
    /// derivative of `below`; nothing when there are none (the error is
    /// then in `dst` already, its derivative fused).
    fn back_through_pre(
        &self,
        pre: &mut [PreBuffers],
        dst: &mut Matrix,
        below: Option<Activation>,
        h: &Matrix,
        rows: usize,
    ) {
        if pre.is_empty() {
            return;
        }
        for j in (0..self.pre.len()).rev() {
            let (lower, upper) = pre.split_at_mut(j);
            let b = &upper[0];
            let target = match lower.last_mut() {
                Some(l) => &mut l.err,
                None => &mut *dst,
            };
            self.pre[j].backward(&b.err, target, &b.argmax, rows);
        }
        if let Some(act) = below {
            act.mul_derivative(dst.rows_slice_mut(rows), h.rows_slice(rows));
        }
    }

    /// Makes what [`Layer::grad_operands`] reads that the forward pass did
    /// not: a transposed convolution's patches of its output error (its
    /// input error may never have been asked for).
    pub fn prepare_grad(&self, delta: &Matrix, ws: &mut Workspace, rows: usize) {
        if let Kind::ConvTranspose(g) = &self.kind {
            let cw = ws.conv.as_mut().expect("a convolution's workspace");
            conv_transpose::error_patches(g, delta, cw, rows);
        }
    }

    /// The operands `(a, b)` whose product `a b` is the summed weight
    /// gradient (divide by the rows for the mean), in the weight's layout
    /// unless [`Kind::grad_product_reordered`] (then through
    /// [`Kind::add_grad_product`]), from the layer's outer input `x`, its
    /// workspace, and the error `delta` at its output, over the first `rows`
    /// rows.
    pub fn grad_operands<'a>(
        &self,
        x: &'a Matrix,
        ws: &'a Workspace,
        delta: &'a Matrix,
        rows: usize,
    ) -> (View<'a>, View<'a>) {
        grad_operands(&self.kind, x, ws, delta, rows, false)
    }

    /// The summed weight gradient in the weight's layout, into `out`:
    /// [`Layer::grad_operands`]' product, put back in the weight's column
    /// order through `product` (a buffer of the weight's shape) where
    /// [`Kind::grad_product_reordered`]. For diagnostics and tests; the
    /// update steps from the operands.
    pub fn weight_grad_into(
        &self,
        x: &Matrix,
        ws: &Workspace,
        delta: &Matrix,
        rows: usize,
        out: &mut Matrix,
        product: &mut Matrix,
    ) {
        let (a, b) = self.grad_operands(x, ws, delta, rows);
        if !self.kind.grad_product_reordered() {
            gemm(out, false, 1.0, a, b);
            return;
        }
        gemm(product, false, 1.0, a, b);
        out.fill(0.0);
        self.kind
            .add_grad_product(product.as_slice(), out.as_mut_slice(), 1.0);
    }

    /// [`Layer::grad_operands`] in the stand-in layout (the Kolen-Pollack
    /// rules' feedback gradient).
    pub fn stand_in_grad_operands<'a>(
        &self,
        x: &'a Matrix,
        ws: &'a Workspace,
        delta: &'a Matrix,
        rows: usize,
    ) -> (View<'a>, View<'a>) {
        grad_operands(&self.kind, x, ws, delta, rows, true)
    }
}

/// [`Layer::grad_operands`] from the kind alone, so that the caller may
/// hold the layer's weight mutably (the optimizer steps it with them).
pub fn grad_operands<'a>(
    kind: &Kind,
    x: &'a Matrix,
    ws: &'a Workspace,
    delta: &'a Matrix,
    rows: usize,
    stand_in_layout: bool,
) -> (View<'a>, View<'a>) {
    let input = ws.pre.last().map_or(x, |b| &b.out);
    match kind {
        Kind::Dense(_) if stand_in_layout => (input.rows_view(rows).t(), delta.rows_view(rows)),
        Kind::Dense(_) => (delta.rows_view(rows).t(), input.rows_view(rows)),
        Kind::Conv2d(g) => {
            let cw = ws.conv.as_ref().expect("a convolution's workspace");
            conv2d::grad_operands(g, cw, delta, rows)
        }
        Kind::ConvTranspose(g) => {
            let cw = ws.conv.as_ref().expect("a convolution's workspace");
            conv_transpose::grad_operands(g, cw, input, rows)
        }
    }
}

/// `out[c] += scale * (the error at channel c, summed over the first `rows`
/// samples and every position)`: a bias's gradient, in the layout of the
/// layer's output.
pub fn bias_grad(kind: &Kind, out: &mut [f32], delta: &Matrix, rows: usize, scale: f32) {
    let d = delta.rows_slice(rows);
    match kind.out_layout() {
        Layout::Hwc => crate::activation::column_sums_into(out, d, scale),
        Layout::Chw => {
            let plane = kind.out_shape().h * kind.out_shape().w;
            if plane == 1 {
                crate::activation::column_sums_into(out, d, scale);
                return;
            }
            // Only the transposed convolutions of BFA's feedback network
            // come here (dense layers have planes of 1, convolutions are
            // channels-last). They still sum in f32, in two levels: each map
            // of H x W terms, then one term a sample; not yet in f64 as
            // `column_sums_into` does, which would change these runs' bits.
            for sample in d.chunks_exact(out.len() * plane) {
                for (o, ch) in out.iter_mut().zip(sample.chunks_exact(plane)) {
                    *o += scale * ch.iter().sum::<f32>();
                }
            }
        }
    }
}

impl Kind {
    /// Whether the product of [`grad_operands`] comes out with its columns
    /// in another order than the weight's: a convolution over channels-last
    /// input, whose patches are tap-major so that they are copied in
    /// contiguous runs. Such a product goes into the gradient through
    /// [`Kind::add_grad_product`].
    pub fn grad_product_reordered(&self) -> bool {
        matches!(self, Kind::Conv2d(g) if g.tap_major())
    }

    /// `out += scale * product`, with `product` the product of
    /// [`grad_operands`] and `out` in the weight's layout.
    pub fn add_grad_product(&self, product: &[f32], out: &mut [f32], scale: f32) {
        match self {
            Kind::Conv2d(g) if g.tap_major() => conv2d::add_untapped(g, product, out, scale),
            _ => {
                for (o, &p) in out.iter_mut().zip(product) {
                    *o += scale * p;
                }
            }
        }
    }

    /// The shape of one input sample.
    pub fn in_shape(&self) -> Shape {
        match self {
            Kind::Dense(d) => Shape::flat(d.inputs),
            Kind::Conv2d(g) => g.input,
            Kind::ConvTranspose(g) => g.output(),
        }
    }

    /// The shape of one output sample.
    pub fn out_shape(&self) -> Shape {
        match self {
            Kind::Dense(d) => Shape::flat(d.outputs),
            Kind::Conv2d(g) => g.output(),
            Kind::ConvTranspose(g) => g.input,
        }
    }

    /// The layout of the output.
    pub fn out_layout(&self) -> Layout {
        match self {
            Kind::Dense(_) => Layout::Chw,
            Kind::Conv2d(_) => Layout::Hwc,
            Kind::ConvTranspose(g) => g.layout,
        }
    }

    /// See [`Layer::fan_in`].
    pub fn fan_in(&self) -> usize {
        match self {
            Kind::Dense(d) => d.inputs,
            Kind::Conv2d(g) => g.patch_len(),
            Kind::ConvTranspose(g) => g.out_channels * g.kernel.0 * g.kernel.1,
        }
    }

    /// See [`Layer::fan_out`].
    pub fn fan_out(&self) -> usize {
        match self {
            Kind::Dense(d) => d.outputs,
            Kind::Conv2d(g) => g.out_channels * g.kernel.0 * g.kernel.1,
            Kind::ConvTranspose(g) => g.patch_len(),
        }
    }

    /// `(rows, cols)` of the weight matrix.
    pub fn weight_matrix_shape(&self) -> (usize, usize) {
        match self {
            Kind::Dense(d) => (d.outputs, d.inputs),
            Kind::Conv2d(g) | Kind::ConvTranspose(g) => (g.out_channels, g.patch_len()),
        }
    }

    /// See [`Layer::weight_shape`]: a transposed convolution's is the
    /// mirrored convolution's (PyTorch's `nn.ConvTranspose2d` layout).
    pub fn weight_shape(&self) -> Vec<usize> {
        match self {
            Kind::Dense(d) => vec![d.outputs, d.inputs],
            Kind::Conv2d(g) | Kind::ConvTranspose(g) => {
                vec![g.out_channels, g.input.c, g.kernel.0, g.kernel.1]
            }
        }
    }

    /// `(rows, cols)` of a stand-in matrix.
    pub fn stand_in_matrix_shape(&self) -> (usize, usize) {
        match self {
            Kind::Dense(d) => (d.inputs, d.outputs),
            Kind::Conv2d(_) | Kind::ConvTranspose(_) => self.weight_matrix_shape(),
        }
    }

    /// True for a convolution or its transpose: a layer whose step is far
    /// from its FLOPs at the GEMM's rate (patch copies, short products).
    pub fn is_convolution(&self) -> bool {
        matches!(self, Kind::Conv2d(_) | Kind::ConvTranspose(_))
    }

    /// Multiply-adds of one sample's forward product (saturating: a layer
    /// too large to build still has a count, for the estimates that refuse it).
    pub fn macs(&self) -> usize {
        match self {
            Kind::Dense(d) => d.inputs.saturating_mul(d.outputs),
            Kind::Conv2d(g) | Kind::ConvTranspose(g) => g
                .positions()
                .saturating_mul(g.patch_len())
                .saturating_mul(g.out_channels),
        }
    }

    /// The kind that mirrors this one (BFA's feedback network).
    pub fn mirror(&self) -> Kind {
        match *self {
            Kind::Dense(d) => Kind::Dense(Dense {
                inputs: d.outputs,
                outputs: d.inputs,
            }),
            Kind::Conv2d(g) => Kind::ConvTranspose(g),
            Kind::ConvTranspose(g) => Kind::Conv2d(g),
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
/// through a matrix to a layer's output, whether back across a dense layer
/// above or projected from the output (the direct rules).
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
