//! The dense (affine) layer: `y = f(x W^T + b)`, `W` `[out, in]`.
//!
//! Its error map is `delta W` (backpropagation) or `delta B^T` with a
//! stand-in `B` `[in, out]`; its weight gradient is `delta^T x`.

use crate::activation::Activation;
use crate::tensor::Matrix;

/// The geometry of a dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dense {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
}

/// `y = f(x W^T + b)` over `rows` rows.
pub(super) fn forward(
    weight: &Matrix,
    bias: &[f32],
    activation: Option<Activation>,
    x: &Matrix,
    y: &mut Matrix,
    rows: usize,
) {
    super::affine::affine(y, x.rows_view(rows), weight.view().t(), bias, activation);
}

/// `dst = sign(w)^T .* magnitude`: `dst[i][o] = sign(w[o][i]) * magnitude(k)`
/// with `k = i * out + o` the flat index into `dst`, and `sign(0) = 0`
/// (`f32::signum` would give a zero weight a path). Written in tiles, as a
/// plain transpose reads `w` a column at a time, and in bands of `dst` rows
/// on the GEMM threads: rebuilt every step, an 800x800 path on one thread
/// cost USF a third of BP's step.
pub(super) fn sign_transposed(
    dst: &mut Matrix,
    w: &Matrix,
    magnitude: impl Fn(usize) -> f32 + Sync,
) {
    let (out, inp) = w.shape();
    assert_eq!(
        dst.shape(),
        (inp, out),
        "path shaped as the weight transposed"
    );
    let parts = if inp * out < 1 << 16 {
        1
    } else {
        crate::tensor::gemm_threads()
    };
    sign_band(dst.as_mut_slice(), 0, w, &magnitude, parts);
}

/// [`sign_transposed`] for the rows of `dst` from `i0` on (`dst` holds
/// whole rows), cut into `parts` bands under `rayon::join`. Each element is
/// computed alone, so the bands give bitwise the one-band result.
fn sign_band(
    d: &mut [f32],
    i0: usize,
    w: &Matrix,
    magnitude: &(impl Fn(usize) -> f32 + Sync),
    parts: usize,
) {
    const TILE: usize = 32;
    let (out, inp) = w.shape();
    let rows = d.len() / out;
    if parts > 1 && rows > TILE {
        let at = (rows / parts).next_multiple_of(TILE).min(rows);
        let (a, b) = d.split_at_mut(at * out);
        rayon::join(
            || sign_band(a, i0, w, magnitude, 1),
            || sign_band(b, i0 + at, w, magnitude, parts - 1),
        );
        return;
    }
    let ws = w.as_slice();
    for t0 in (0..rows).step_by(TILE) {
        for o0 in (0..out).step_by(TILE) {
            for r in t0..(t0 + TILE).min(rows) {
                let i = i0 + r;
                for o in o0..(o0 + TILE).min(out) {
                    let v = ws[o * inp + i];
                    // Branch-free: the signs of trained weights are random.
                    let sign = (v > 0.0) as i32 as f32 - (v < 0.0) as i32 as f32;
                    d[r * out + o] = sign * magnitude(i * out + o);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Parallelism;

    /// The sign-concordant path, built in bands on several threads, is the
    /// one-thread path bit for bit, and is sign(w)ᵀ times the magnitude.
    #[test]
    fn the_banded_sign_path_is_the_sequential_one() {
        let (out, inp) = (333, 517);
        let data = (0..out * inp)
            .map(|i| match i % 7 {
                0 => 0.0,
                k => (i as f32 * 0.37).sin() * k as f32,
            })
            .collect();
        let w = Matrix::from_vec(out, inp, data).unwrap();
        let magnitude = |k: usize| 1.0 + (k % 11) as f32;
        let mut one = Matrix::zeros(inp, out);
        sign_transposed(&mut one, &w, magnitude);
        for i in 0..inp {
            for o in 0..out {
                let v = w.get(o, i);
                let want = if v == 0.0 { 0.0 } else { v.signum() } * magnitude(i * out + o);
                assert_eq!(one.get(i, o), want);
            }
        }
        for threads in [2, 3] {
            let mut many = Matrix::zeros(inp, out);
            Parallelism::threads(threads)
                .unwrap()
                .install(|| sign_transposed(&mut many, &w, magnitude));
            assert_eq!(many, one, "{threads} threads");
        }
    }
}
