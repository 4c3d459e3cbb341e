//! The 2-D convolution, `W` `[out, in, kh, kw]` (PyTorch's `nn.Conv2d`):
//!
//! `y[n, o, oy, ox] = f(b[o] + sum_{c, ky, kx} W[o, c, ky, kx] x[n, c, oy s - p + ky, ox s - p + kx])`
//!
//! with zero padding `p` and stride `s`. It is one product: every sample's
//! patches, one row per output position (im2col, `P` `[N Ho Wo, C kh kw]`),
//! times `W^T`, so the output comes channels last. The weight gradient is
//! `delta^T P`; the error at the input is `delta W` (or `delta B` with a
//! stand-in `B` of `W`'s shape: FA's fixed kernel, the sign rules'
//! `sign(W)`) scattered back over the patches (col2im). The patch buffers are
//! allocated once per batch size ([`Workspace`]).

use super::shape::{by_samples, Layout, Shape};
use crate::activation::Activation;
use crate::tensor::{gemm, Matrix, View};

/// The geometry of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// The input's shape.
    pub input: Shape,
    /// The input's layout.
    pub layout: Layout,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (every side).
    pub padding: usize,
}

/// The patch buffers of one convolution for batches of up to `rows`.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// `[rows Ho Wo, C kh kw]`: the forward pass's patches, which the
    /// weight gradient reads again.
    pub patches: Matrix,
    /// The error at the patches, before it is scattered to the input
    /// (only layers whose input error is ever needed have one).
    pub dpatches: Matrix,
    /// The operator that carries the error back, its columns in tap-major
    /// order (`[out, kh kw C]`), for channels-last inputs: their
    /// `dpatches` then hold each tap's channels side by side, and the
    /// scatter to the input copies contiguous runs (empty otherwise).
    pub path_tap_major: Matrix,
    /// `W^T` `[C kh kw, out]` (its rows tap-major, as the patches' columns,
    /// for channels-last inputs), copied from the weight before each forward
    /// product: the patches times a row-major `W^T` run faster than times
    /// `W` read transposed (12800x800x64: 7.1 against 9.4 ms a product on
    /// two threads of an AMD EPYC, `examples/conv_forward_layout.rs`).
    pub weight_t: Matrix,
    /// For a transposed convolution: which error (its buffer's address and
    /// rows) `patches` hold the patches of since the last forward pass.
    pub error_patches_of: Option<(usize, usize)>,
}

impl Conv2d {
    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.input.h + 2 * self.padding - self.kernel.0) / self.stride + 1
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.input.w + 2 * self.padding - self.kernel.1) / self.stride + 1
    }

    /// The output's shape (laid out channels last).
    pub fn output(&self) -> Shape {
        Shape::new(self.out_channels, self.out_h(), self.out_w())
    }

    /// Output positions per sample.
    pub fn positions(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// Values of one patch: `C kh kw`, the weight's fan-in.
    pub fn patch_len(&self) -> usize {
        self.input.c * self.kernel.0 * self.kernel.1
    }

    /// Why this geometry cannot be: a kernel larger than the padded input,
    /// a zero stride or size, or sizes whose products (the padded input,
    /// the patches, the weight, the output) do not fit a machine word, so
    /// that nothing computed from a checked geometry can overflow.
    pub fn check(&self) -> Result<(), String> {
        let (kh, kw) = self.kernel;
        if self.out_channels == 0 || kh == 0 || kw == 0 || self.stride == 0 {
            return Err("channels, kernel and stride must be at least 1".into());
        }
        let too_large = || {
            format!(
                "its sizes are too large: the products of its {} channels, {kh}x{kw} \
                 kernel and padding {} overflow a machine word",
                self.out_channels, self.padding
            )
        };
        let padded = |side: usize| {
            self.padding
                .checked_mul(2)
                .and_then(|p| side.checked_add(p))
        };
        let (Some(h), Some(w)) = (padded(self.input.h), padded(self.input.w)) else {
            return Err(too_large());
        };
        if kh > h || kw > w {
            return Err(format!(
                "a {kh}x{kw} kernel does not fit a {}x{} input padded by {} ({h}x{w})",
                self.input.h, self.input.w, self.padding
            ));
        }
        let (oh, ow) = ((h - kh) / self.stride + 1, (w - kw) / self.stride + 1);
        let taps = kh.checked_mul(kw);
        let patch = taps.and_then(|t| t.checked_mul(self.input.c));
        let positions = oh.checked_mul(ow);
        let sizes = [
            self.input.c.checked_mul(h).and_then(|x| x.checked_mul(w)),
            patch.and_then(|p| p.checked_mul(self.out_channels)),
            taps.and_then(|t| t.checked_mul(self.out_channels)),
            positions.and_then(|p| p.checked_mul(self.out_channels)),
            positions.zip(patch).and_then(|(a, b)| a.checked_mul(b)),
            positions
                .zip(patch)
                .and_then(|(a, b)| a.checked_mul(b))
                .and_then(|x| x.checked_mul(self.out_channels)),
        ];
        if sizes.iter().any(Option::is_none) {
            return Err(too_large());
        }
        Ok(())
    }

    /// Whether the patches are tap-major (`kh kw C` columns): for
    /// channels-last inputs, where a tap's channels lie side by side, so
    /// that the forward patches are copied and the error at the input is
    /// scattered in contiguous runs.
    pub fn tap_major(&self) -> bool {
        self.layout == Layout::Hwc
    }

    /// Buffers for batches of `rows`; `with_input_error` for every layer
    /// but the first, whose input error nothing reads.
    pub fn workspace(&self, rows: usize, with_input_error: bool) -> Workspace {
        let m = rows * self.positions();
        let k = self.patch_len();
        let tap_major = with_input_error && self.tap_major();
        Workspace {
            patches: Matrix::zeros(m, k),
            dpatches: Matrix::zeros(if with_input_error { m } else { 0 }, k),
            path_tap_major: Matrix::zeros(if tap_major { self.out_channels } else { 0 }, k),
            weight_t: Matrix::zeros(k, self.out_channels),
            error_patches_of: None,
        }
    }
}

/// Fills `patches` with every sample's patches: row `n Ho Wo + oy Wo + ox`,
/// column `(c kh + ky) kw + kx`, zero where the patch reaches the padding.
pub(super) fn im2col(g: &Conv2d, x: &[f32], patches: &mut [f32], rows: usize, tap_major: bool) {
    let (k, positions, in_len) = (g.patch_len(), g.positions(), g.input.len());
    by_samples(patches, positions * k, rows, &|n, out| {
        let x = &x[n * in_len..(n + 1) * in_len];
        for_each_run(g, tap_major, |pos, r| {
            let row = &mut out[pos * k..(pos + 1) * k];
            let src = &x[r.src..r.src + r.valid.len()];
            if r.step == 1 {
                let dst = &mut row[r.col..r.col + r.len];
                if r.valid.len() == r.len {
                    copy_run(dst, src);
                } else {
                    dst[..r.valid.start].fill(0.0);
                    copy_run(&mut dst[r.valid.clone()], src);
                    dst[r.valid.end..].fill(0.0);
                }
            } else if r.valid.len() == r.len {
                for (t, &v) in src.iter().enumerate() {
                    row[r.col + t * r.step] = v;
                }
            } else {
                for t in 0..r.len {
                    row[r.col + t * r.step] = if r.valid.contains(&t) {
                        src[t - r.valid.start]
                    } else {
                        0.0
                    };
                }
            }
        });
    });
}

/// `dst = src` for runs as short as a kernel row: at the usual widths a
/// copy of known length, which compiles to a few moves rather than a call
/// to `memcpy` (a patch of a 5x5 kernel is 5-float runs, millions a step).
/// Runs of a tap's channels (16 to 64 floats) gained nothing from fixed
/// lengths (docs/performance.md).
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    match src.len() {
        3 => dst[..3].copy_from_slice(&src[..3]),
        5 => dst[..5].copy_from_slice(&src[..5]),
        7 => dst[..7].copy_from_slice(&src[..7]),
        _ => dst.copy_from_slice(src),
    }
}

/// The error at the input: each patch's error added back where the patch
/// was read from, sample by sample, in one fixed order (position, then
/// tap), whatever the layout. The patches' columns are in the weight's
/// order (`C kh kw`), or tap-major (`kh kw C`, [`Conv2d::tap_major`]).
/// Within one patch no two taps read the same input value, so each input
/// value sums its errors in position order either way: the same bits.
pub(super) fn col2im(g: &Conv2d, dpatches: &[f32], dx: &mut [f32], rows: usize, tap_major: bool) {
    let (k, positions, in_len) = (g.patch_len(), g.positions(), g.input.len());
    by_samples(dx, in_len, rows, &|n, out| {
        out.fill(0.0);
        let dp = &dpatches[n * positions * k..(n + 1) * positions * k];
        for_each_run(g, tap_major, |pos, r| {
            let row = &dp[pos * k..(pos + 1) * k];
            let dst = &mut out[r.src..r.src + r.valid.len()];
            if r.step == 1 {
                let src = &row[r.col + r.valid.start..r.col + r.valid.end];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += s;
                }
            } else {
                for (d, t) in dst.iter_mut().zip(r.valid.clone()) {
                    *d += row[r.col + t * r.step];
                }
            }
        });
    });
}

/// A run of taps of one patch that lie next to each other in the input:
/// tap `t` is patch column `col + t step`, and for `t` in `valid` it reads
/// input offset `src + t - valid.start`; the others lie in the padding.
struct Run {
    col: usize,
    step: usize,
    len: usize,
    src: usize,
    valid: std::ops::Range<usize>,
}

/// Calls `f(position, run)` for the taps of every output position of one
/// sample, in runs along the input's contiguous axis: a kernel row's `kw`
/// taps of one channel (channel-planar input); over channels-last input,
/// one tap's `C` channels, whose patch columns are `c kh kw + tap`, or with
/// `tap_major` (columns `tap C + c`) a kernel row's `kw` taps of all `C`
/// channels at once.
#[inline(always)]
fn for_each_run(g: &Conv2d, tap_major: bool, mut f: impl FnMut(usize, Run)) {
    let (kh, kw) = g.kernel;
    let (h, w) = (g.input.h as isize, g.input.w as isize);
    let (s, p) = (g.stride as isize, g.padding as isize);
    let (channels, wo) = (g.input.c, g.out_w());
    for oy in 0..g.out_h() {
        for ox in 0..wo {
            let pos = oy * wo + ox;
            let (y0, x0) = (oy as isize * s - p, ox as isize * s - p);
            match g.layout {
                Layout::Chw => {
                    // Kernel columns inside the input: lo..hi.
                    let lo = (-x0).clamp(0, kw as isize);
                    let hi = (w - x0).clamp(lo, kw as isize);
                    for c in 0..channels {
                        for ky in 0..kh {
                            let iy = y0 + ky as isize;
                            let inside = (0..h).contains(&iy);
                            let valid = if inside {
                                lo as usize..hi as usize
                            } else {
                                0..0
                            };
                            let src = if inside && hi > lo {
                                g.layout.index(g.input, c, iy as usize, (x0 + lo) as usize)
                            } else {
                                0
                            };
                            let col = (c * kh + ky) * kw;
                            f(
                                pos,
                                Run {
                                    col,
                                    step: 1,
                                    len: kw,
                                    src,
                                    valid,
                                },
                            );
                        }
                    }
                }
                // Tap-major columns over channels-last input: a kernel
                // row's taps lie next to each other both in the input and
                // in the patch, so the row is one run of `kw C` values.
                Layout::Hwc if tap_major => {
                    let lo = (-x0).clamp(0, kw as isize);
                    let hi = (w - x0).clamp(lo, kw as isize);
                    for ky in 0..kh {
                        let iy = y0 + ky as isize;
                        let (src, valid) = if (0..h).contains(&iy) && hi > lo {
                            (
                                g.layout.index(g.input, 0, iy as usize, (x0 + lo) as usize),
                                lo as usize * channels..hi as usize * channels,
                            )
                        } else {
                            (0, 0..0)
                        };
                        f(
                            pos,
                            Run {
                                col: ky * kw * channels,
                                step: 1,
                                len: kw * channels,
                                src,
                                valid,
                            },
                        );
                    }
                }
                Layout::Hwc => {
                    for ky in 0..kh {
                        let iy = y0 + ky as isize;
                        for kx in 0..kw {
                            let ix = x0 + kx as isize;
                            let inside = (0..h).contains(&iy) && (0..w).contains(&ix);
                            let (src, valid) = if inside {
                                (
                                    g.layout.index(g.input, 0, iy as usize, ix as usize),
                                    0..channels,
                                )
                            } else {
                                (0, 0..0)
                            };
                            let tap = ky * kw + kx;
                            let (col, step) = if tap_major {
                                (tap * channels, 1)
                            } else {
                                (tap, kh * kw)
                            };
                            f(
                                pos,
                                Run {
                                    col,
                                    step,
                                    len: channels,
                                    src,
                                    valid,
                                },
                            );
                        }
                    }
                }
            }
        }
    }
}

/// `y = f(conv(x, W) + b)` over `rows` samples.
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
    let tap_major = g.tap_major();
    im2col(
        g,
        x.rows_slice(rows),
        ws.patches.rows_slice_mut(m),
        rows,
        tap_major,
    );
    if tap_major {
        // `W^T` with its rows in the patches' tap-major order.
        let (k, out) = (g.patch_len(), g.out_channels);
        let wt = ws.weight_t.as_mut_slice();
        for (o, from) in weight.as_slice().chunks_exact(k).enumerate() {
            for (column, tap_column) in tap_major_columns(g) {
                wt[tap_column * out + o] = from[column];
            }
        }
    } else {
        weight.transpose_into(&mut ws.weight_t);
    }
    // One row per output position for the product, one per sample outside.
    let (yr, yc) = y.shape();
    y.reshape(yr * g.positions(), g.out_channels);
    super::affine::affine(
        y,
        ws.patches.rows_view(m),
        ws.weight_t.view(),
        bias,
        activation,
    );
    y.reshape(yr, yc);
}

/// The error at the output `delta` (`rows` samples, channels last) carried
/// to the input through `path` (`[out, C kh kw]`: the weight or a stand-in
/// of its shape), into `dst`; then times `f'` of the layer below when it has
/// an activation (`below`, with its output `h`).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_input(
    g: &Conv2d,
    path: &Matrix,
    delta: &Matrix,
    dst: &mut Matrix,
    ws: &mut Workspace,
    below: Option<Activation>,
    h: &Matrix,
    rows: usize,
) {
    let m = rows * g.positions();
    let tap_major = g.tap_major();
    let op = operator_for_patches(g, path, &mut ws.path_tap_major);
    gemm(
        &mut ws.dpatches,
        false,
        1.0,
        per_position(g, delta, rows),
        op,
    );
    col2im(
        g,
        ws.dpatches.rows_slice(m),
        dst.rows_slice_mut(rows),
        rows,
        tap_major,
    );
    if let Some(act) = below {
        act.mul_derivative(dst.rows_slice_mut(rows), h.rows_slice(rows));
    }
}

/// The operator `[out, C kh kw]` whose product with an error makes patches
/// for [`col2im`]: `path` itself, or for channels-last inputs its columns in
/// tap-major order (copied into `tap_major`), so that the scatter copies
/// contiguous runs. Each column of that product is one dot product over the
/// output channels, in the same order wherever the column sits: moving
/// columns moves the values, bit for bit.
pub(super) fn operator_for_patches<'a>(
    g: &Conv2d,
    path: &'a Matrix,
    tap_major: &'a mut Matrix,
) -> View<'a> {
    if !g.tap_major() {
        return path.view();
    }
    let k = g.patch_len();
    let rows = path.as_slice().chunks_exact(k);
    for (from, to) in rows.zip(tap_major.as_mut_slice().chunks_exact_mut(k)) {
        for (column, tap_column) in tap_major_columns(g) {
            to[tap_column] = from[column];
        }
    }
    tap_major.view()
}

/// Each column of a patch in the weight's order (`c kh kw + tap`) and where
/// it sits in tap-major order (`tap C + c`), column by column: the one map
/// between the two layouts.
fn tap_major_columns(g: &Conv2d) -> impl Iterator<Item = (usize, usize)> {
    let (taps, c) = (g.kernel.0 * g.kernel.1, g.input.c);
    (0..c).flat_map(move |ch| (0..taps).map(move |t| (ch * taps + t, t * c + ch)))
}

/// `out += scale * tap`, with `tap` `[out, kh kw C]` (tap-major columns)
/// and `out` in the weight's layout `[out, C kh kw]`.
pub fn add_untapped(g: &Conv2d, tap: &[f32], out: &mut [f32], scale: f32) {
    let k = g.patch_len();
    for (to, from) in out.chunks_exact_mut(k).zip(tap.chunks_exact(k)) {
        for (column, tap_column) in tap_major_columns(g) {
            to[column] += scale * from[tap_column];
        }
    }
}

/// A map of `rows` samples, channels last (a convolution's output, or its
/// error), as `[rows Ho Wo, out]`: one row per output position.
pub(super) fn per_position<'a>(g: &Conv2d, delta: &'a Matrix, rows: usize) -> View<'a> {
    let m = rows * g.positions();
    View::new(&delta.as_slice()[..m * g.out_channels], m, g.out_channels)
}

/// The operands `(delta^T, P)` of the weight gradient `[out, C kh kw]`;
/// for channels-last inputs its columns come out tap-major (`[out, kh kw
/// C]`, the patches' order), which [`add_untapped`] puts back in the
/// weight's.
pub(super) fn grad_operands<'a>(
    g: &Conv2d,
    ws: &'a Workspace,
    delta: &'a Matrix,
    rows: usize,
) -> (View<'a>, View<'a>) {
    let m = rows * g.positions();
    (per_position(g, delta, rows).t(), ws.patches.rows_view(m))
}

/// `dst = sign(w) .* magnitude`, element by element (a convolution's
/// stand-ins have its weight's own layout), `sign(0) = 0`.
pub(super) fn sign_like(dst: &mut Matrix, w: &Matrix, magnitude: impl Fn(usize) -> f32) {
    for (k, (d, &v)) in dst.as_mut_slice().iter_mut().zip(w.as_slice()).enumerate() {
        let sign = (v > 0.0) as i32 as f32 - (v < 0.0) as i32 as f32;
        *d = sign * magnitude(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scattering tap-major patches is scattering the same patches in the
    /// weight's column order, bit for bit (odd sizes, stride, padding).
    #[test]
    fn tap_major_scatter_is_the_weight_order_scatter() {
        for (input, kernel, stride, padding) in [
            (Shape::new(5, 7, 6), (3, 2), 2, 1),
            (Shape::new(3, 4, 4), (3, 3), 1, 2),
            (Shape::new(32, 14, 14), (5, 5), 1, 0),
        ] {
            let g = Conv2d {
                input,
                layout: Layout::Hwc,
                out_channels: 4,
                kernel,
                stride,
                padding,
            };
            let (rows, k, taps) = (3, g.patch_len(), kernel.0 * kernel.1);
            let m = rows * g.positions();
            let weight_order: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1013) as f32 / 97.0 - 5.0)
                .collect();
            let mut tap_major = vec![0.0; m * k];
            for (from, to) in weight_order
                .chunks_exact(k)
                .zip(tap_major.chunks_exact_mut(k))
            {
                for c in 0..input.c {
                    for t in 0..taps {
                        to[t * input.c + c] = from[c * taps + t];
                    }
                }
            }
            let mut a = vec![0.0; rows * input.len()];
            let mut b = vec![1.0; rows * input.len()];
            col2im(&g, &weight_order, &mut a, rows, false);
            col2im(&g, &tap_major, &mut b, rows, true);
            assert_eq!(a, b, "{g:?}");
        }
    }
}
