//! The transposed convolution: the map a convolution's input error takes,
//! run forward. BFA's feedback network mirrors each convolution of the
//! forward network with one, from its output's shape back to its input's,
//! with a kernel of the convolution's shape `[out, in, kh, kw]` (PyTorch's
//! `nn.ConvTranspose2d` layout): the two are each other's error paths, as
//! the paper's dense feedback weights are.
//!
//! With `g` the mirrored convolution's geometry, `K` `[out, C kh kw]`:
//! forward `y = f(col2im(x K) + b)` (`x` channels last, `[N Ho Wo, out]`;
//! `y` in the layout of the convolution's input); the error at the input
//! `im2col(delta) K^T` (a convolution with `K`); the weight gradient
//! `x^T im2col(delta)`.

use super::conv2d::{col2im, im2col, operator_for_patches, per_position, Conv2d, Workspace};
use super::shape::by_samples;
use crate::activation::Activation;
use crate::tensor::{gemm, Matrix, View};

/// `y = f(col2im(x K) + b)` over `rows` samples; `ws.dpatches` holds `x K`.
#[allow(clippy::too_many_arguments)]
pub(super) fn forward(
    g: &Conv2d,
    weight: &Matrix,
    bias: &[f32],
    activation: Option<Activation>,
    x: &Matrix,
    y: &mut Matrix,
    ws: &mut Workspace,
    rows: usize,
) {
    let m = rows * g.positions();
    // A new forward pass: the patches of an earlier error are stale.
    ws.error_patches_of = None;
    let op = operator_for_patches(g, weight, &mut ws.path_tap_major);
    gemm(&mut ws.dpatches, false, 1.0, per_position(g, x, rows), op);
    col2im(
        g,
        ws.dpatches.rows_slice(m),
        y.rows_slice_mut(rows),
        rows,
        g.tap_major(),
    );
    let (s, layout) = (g.input, g.layout);
    by_samples(y.as_mut_slice(), s.len(), rows, &|_, ys| {
        for c in 0..s.c {
            for yy in 0..s.h {
                for xx in 0..s.w {
                    let v = &mut ys[layout.index(s, c, yy, xx)];
                    *v += bias[c];
                }
            }
        }
        if let Some(act) = activation {
            act.apply_with_bias(ys, &[0.0]);
        }
    });
}

/// The error at the output `delta` (in the convolution input's layout)
/// carried to the input through `path` (`[out, C kh kw]`), into `dst`
/// (channels last), times `f'` of the layer below when it has one. The
/// patches of `delta` stay in `ws.patches` for the weight gradient.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_input(
    g: &Conv2d,
    path: View<'_>,
    delta: &Matrix,
    dst: &mut Matrix,
    ws: &mut Workspace,
    below: Option<Activation>,
    h: &Matrix,
    rows: usize,
) {
    error_patches(g, delta, ws, rows);
    let m = rows * g.positions();
    let (dr, dc) = dst.shape();
    dst.reshape(dr * g.positions(), g.out_channels);
    gemm(dst, false, 1.0, ws.patches.rows_view(m), path.t());
    dst.reshape(dr, dc);
    if let Some(act) = below {
        act.mul_derivative(dst.rows_slice_mut(rows), h.rows_slice(rows));
    }
}

/// The patches of the output error, which the input error and the weight
/// gradient read: made once for each error after a forward pass, so that
/// the weight gradient reuses those of the input error.
pub(super) fn error_patches(g: &Conv2d, delta: &Matrix, ws: &mut Workspace, rows: usize) {
    // The error is known by its buffer and rows: within one step, between
    // the forward pass and the update, an error buffer is written once.
    let of = (delta.as_slice().as_ptr() as usize, rows);
    if ws.error_patches_of == Some(of) {
        return;
    }
    let m = rows * g.positions();
    im2col(
        g,
        delta.rows_slice(rows),
        ws.patches.rows_slice_mut(m),
        rows,
        false,
    );
    ws.error_patches_of = Some(of);
}

/// The operands `(x^T, im2col(delta))` of the weight gradient `[out, C kh kw]`
/// (after [`error_patches`]).
pub(super) fn grad_operands<'a>(
    g: &Conv2d,
    ws: &'a Workspace,
    x: &'a Matrix,
    rows: usize,
) -> (View<'a>, View<'a>) {
    let m = rows * g.positions();
    (per_position(g, x, rows).t(), ws.patches.rows_view(m))
}
