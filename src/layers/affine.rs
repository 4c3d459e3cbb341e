//! The product every parametric layer ends its forward pass with:
//! `y = f(x W^T + b)`, with the bias and the activation applied to each
//! block of the product on the thread that computed it, while it is in cache.

use crate::activation::Activation;
use crate::tensor::{gemm_then, Matrix, View};

/// `y[..m] = f(x w + b)`, `m = x.nrows()`, one bias per column of `y`;
/// `w` is `W^T`, as a transposed view of `W` or as a copy laid out so.
pub(super) fn affine(
    y: &mut Matrix,
    x: View<'_>,
    w: View<'_>,
    bias: &[f32],
    activation: Option<Activation>,
) {
    match activation {
        None => gemm_then(y, false, 1.0, x, w, &|block| {
            let cols = block.cols.clone();
            for (_, row) in block.rows_mut() {
                row.iter_mut()
                    .zip(&bias[cols.clone()])
                    .for_each(|(v, b)| *v += b);
            }
        }),
        Some(act) => gemm_then(y, false, 1.0, x, w, &|block| {
            let b = &bias[block.cols.clone()];
            act.apply_with_bias_rows(block.rows_mut().map(|(_, row)| row), b);
        }),
    }
}
