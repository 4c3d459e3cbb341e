//! Direct feedback alignment as biotorch defines it (`dfa_projection =
//! "kernel"`): the output error `e` enters every layer above the first at
//! its input, through a fixed random kernel `B_l` of that layer's shape with
//! `C` output channels, and goes on down through the layer's pooling and
//! the activation below as BP's error would.
//!
//! A dense layer's `B_l` is `[C, inputs]` and the error at its input is
//! `e B_l`. A convolution's `B_l` is `[C, c_in, kh, kw]` and the error at
//! its input is the transposed convolution (PyTorch's `conv2d_input`) of
//! `e` repeated at every output position: at an input unit, `e` times the
//! sum of the kernel taps that cover it, the same at every interior
//! position of a channel. Either is one fixed matrix `K_l` `[inputs, C]`,
//! made from `B_l` at the start and again before the first step after the
//! kernels are written (so that a loaded `B_l` is the one in use). Between dense layers this is [`super::Dfa`] with `D_{l-1} =
//! B_l^T`; across a convolution or a pooling it is another projection
//! (docs/rules.md, "biotorch's `dfa` is another projection on
//! convolutions").
//!
//! Checkpoint tensors: `feedback.{l}.weight` for l = 1..=L, the kernel in
//! `forward.{l}` (biotorch's `weight_backward`): `[C, inputs]` or `[C, c_in,
//! kh, kw]`.

use super::dfa::start_at_zero;
use super::rule::{named_above_first, named_above_first_mut};
use super::{ErrorPath, FeedbackScale, InitScheme, LearningRule, RuleKind};
use crate::layers::{uniform, Conv2d, Kind};
use crate::named::{NamedTensor, NamedTensorMut};
use crate::network::Network;
use crate::tensor::Matrix;
use rand::Rng;

/// biotorch's direct feedback alignment: fixed random kernels from the
/// output error to the input of every layer above the first.
#[derive(Clone, Debug)]
pub struct DfaKernel {
    /// `b[l - 1]` is `B_l`, flattened to `[C, fan_in]` in PyTorch's order.
    pub b: Vec<Matrix>,
    shapes: Vec<Vec<usize>>,
    /// The layers the kernels sit in, `kinds[l - 1]` for `forward.{l}`.
    kinds: Vec<Kind>,
    /// `k[l - 1]` is `K_l` `[inputs, C]`, its rows in the memory order of
    /// the layer's input.
    k: Vec<Matrix>,
    /// Whether `b` may have been written since `k` was made (a checkpoint
    /// loads through [`LearningRule::feedback_tensors_mut`]).
    stale: bool,
}

impl DfaKernel {
    /// Draws each `B_l` from `U(+-a)`, `a` the bound `scale` gives a matrix
    /// carrying a `C fan`-wide error to a `fan_in`-wide input (`fan` the
    /// kernel's taps, 1 for a dense layer): Xavier's bound for `B_l`'s own
    /// shape under [`FeedbackScale::Xavier`], biotorch's draw.
    /// [`InitScheme::Reference`] also sets every forward weight and bias to
    /// zero, as DFA's does.
    pub fn new(
        net: &mut Network,
        init: InitScheme,
        scale: FeedbackScale,
        rng: &mut impl Rng,
    ) -> Self {
        let classes = net.outputs();
        let kinds: Vec<Kind> = net.layers[1..].iter().map(|l| l.kind.clone()).collect();
        let mut shapes = Vec::new();
        let b = kinds
            .iter()
            .map(|kind| {
                let (fan_in, taps, shape) = match kind {
                    Kind::Dense(d) => (d.inputs, 1, vec![classes, d.inputs]),
                    Kind::Conv2d(g) => {
                        let (kh, kw) = g.kernel;
                        (g.patch_len(), kh * kw, vec![classes, g.input.c, kh, kw])
                    }
                    Kind::ConvTranspose(_) => {
                        unreachable!("forward networks have no transposed convolutions")
                    }
                };
                shapes.push(shape);
                let mut m = Matrix::zeros(classes, fan_in);
                uniform(m.as_mut_slice(), scale.bound(classes * taps, fan_in), rng);
                m
            })
            .collect();
        if init == InitScheme::Reference {
            start_at_zero(net);
        }
        let k = kinds
            .iter()
            .map(|kind| Matrix::zeros(kind.in_shape().len(), classes))
            .collect();
        let mut rule = Self {
            b,
            shapes,
            kinds,
            k,
            stale: false,
        };
        rule.make_projections();
        rule
    }

    /// `K_l` `[inputs, C]` for every layer, from `B_l`.
    fn make_projections(&mut self) {
        for ((k, b), kind) in self.k.iter_mut().zip(&self.b).zip(&self.kinds) {
            match kind {
                Kind::Dense(_) => {
                    let (classes, inputs) = (b.rows(), b.cols());
                    let (src, dst) = (b.as_slice(), k.as_mut_slice());
                    for i in 0..inputs {
                        for c in 0..classes {
                            dst[i * classes + c] = src[c * inputs + i];
                        }
                    }
                }
                Kind::Conv2d(g) => covered_taps(g, b, k),
                Kind::ConvTranspose(_) => {}
            }
        }
    }
}

/// `k[unit, c]`: the sum of `b[c]`'s taps over every output position of `g`
/// whose patch covers input `unit` (the transposed convolution of a
/// one-hot error for class `c` repeated at every position), `unit` in the
/// input's memory order.
fn covered_taps(g: &Conv2d, b: &Matrix, k: &mut Matrix) {
    let (classes, fan_in) = (b.rows(), b.cols());
    let (kh, kw) = g.kernel;
    let (src, dst) = (b.as_slice(), k.as_mut_slice());
    dst.fill(0.0);
    for oy in 0..g.out_h() {
        for ox in 0..g.out_w() {
            for ky in 0..kh {
                let Some(y) = (oy * g.stride + ky).checked_sub(g.padding) else {
                    continue;
                };
                for kx in 0..kw {
                    let Some(x) = (ox * g.stride + kx).checked_sub(g.padding) else {
                        continue;
                    };
                    if y >= g.input.h || x >= g.input.w {
                        continue;
                    }
                    for ch in 0..g.input.c {
                        let unit = g.layout.index(g.input, ch, y, x);
                        let column = (ch * kh + ky) * kw + kx;
                        for c in 0..classes {
                            dst[unit * classes + c] += src[c * fan_in + column];
                        }
                    }
                }
            }
        }
    }
}

impl LearningRule for DfaKernel {
    fn kind(&self) -> RuleKind {
        RuleKind::Dfa
    }

    fn prepare(&mut self, _net: &Network) {
        if self.stale {
            self.make_projections();
            self.stale = false;
        }
    }

    fn error_path(&self, p: usize) -> ErrorPath<'_> {
        ErrorPath::OutputErrorAtNextInput(&self.k[p])
    }

    fn feedback_tensors(&self) -> Vec<NamedTensor<'_>> {
        named_above_first(&self.b, &self.shapes)
    }

    fn feedback_tensors_mut(&mut self) -> Vec<NamedTensorMut<'_>> {
        self.stale = true;
        named_above_first_mut(&mut self.b, &self.shapes)
    }
}
