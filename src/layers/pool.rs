//! Max- and average-pooling over square windows, in either layout (the
//! output keeps the input's). Max-pooling sends each output's error to the
//! input that won its window (the first of equal ones), average-pooling
//! spreads it evenly; every rule routes errors through them the same way.

use super::shape::{by_samples, by_samples2, Layout, Shape};
use crate::activation::{vectorized, Kernel};
use crate::tensor::Matrix;

/// Channels-last max-pooling of one sample (`Pool::argmax_windows`),
/// compiled for the CPU's vector unit: the running maxima and their
/// positions are updated with selects, not branches, so a tap's channels
/// go through in vectors; the comparisons are the scalar loop's, so are
/// the winners.
struct MaxWindowsHwc<'a>(&'a Pool, &'a [f32], &'a mut [u32], &'a mut [f32]);

impl Kernel for MaxWindowsHwc<'_> {
    #[inline(always)]
    fn run(self) {
        let MaxWindowsHwc(p, xs, am, ys) = self;
        let out = p.output();
        let (inp, k, s) = (p.input, p.size, p.stride);
        for oy in 0..out.h {
            for ox in 0..out.w {
                let o = Layout::Hwc.index(out, 0, oy, ox);
                let am = &mut am[o..o + out.c];
                let best = &mut ys[o..o + out.c];
                let first = Layout::Hwc.index(inp, 0, oy * s, ox * s);
                best.copy_from_slice(&xs[first..first + inp.c]);
                for (c, a) in am.iter_mut().enumerate() {
                    *a = (first + c) as u32;
                }
                // The first tap is the start; a tap never beats itself.
                for (dy, dx) in (0..k).flat_map(|dy| (0..k).map(move |dx| (dy, dx))).skip(1) {
                    let at = Layout::Hwc.index(inp, 0, oy * s + dy, ox * s + dx);
                    let taps = &xs[at..at + inp.c];
                    let at = at as u32;
                    for (c, ((a, b), &v)) in
                        am.iter_mut().zip(best.iter_mut()).zip(taps).enumerate()
                    {
                        let wins = v > *b;
                        *b = if wins { v } else { *b };
                        *a = if wins { at + c as u32 } else { *a };
                    }
                }
            }
        }
    }
}

/// Which way [`WindowsHwc`] moves values between a window's taps and its
/// output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Each output is the sum of its window's taps, times the scale.
    Gather,
    /// Each output, times the scale, is added to each tap of its window.
    Scatter,
}

/// A channels-last pass over one sample's windows (average-pooling and its
/// error, upsampling and its error), in runs of a tap's channels, compiled
/// for the CPU's vector unit. Each value sums its terms in the order of the
/// channel-planar path ([`Pool::for_each_window`]: taps in row-major order,
/// windows in row-major order), so the bits are the same.
struct WindowsHwc<'a> {
    pool: &'a Pool,
    pass: Pass,
    scale: f32,
    src: &'a [f32],
    dst: &'a mut [f32],
}

impl Kernel for WindowsHwc<'_> {
    #[inline(always)]
    fn run(self) {
        let WindowsHwc {
            pool,
            pass,
            scale,
            src,
            dst,
        } = self;
        let (inp, out, k, s) = (pool.input, pool.output(), pool.size, pool.stride);
        let c = inp.c;
        // What an empty `Iterator::sum` gives, as the other path starts from.
        let zero: f32 = std::iter::empty::<f32>().sum();
        for oy in 0..out.h {
            for ox in 0..out.w {
                let o = Layout::Hwc.index(out, 0, oy, ox);
                if pass == Pass::Gather {
                    dst[o..o + c].fill(zero);
                }
                for dy in 0..k {
                    for dx in 0..k {
                        let t = Layout::Hwc.index(inp, 0, oy * s + dy, ox * s + dx);
                        match pass {
                            Pass::Gather => {
                                for (d, &v) in dst[o..o + c].iter_mut().zip(&src[t..t + c]) {
                                    *d += v;
                                }
                            }
                            Pass::Scatter => {
                                for (d, &v) in dst[t..t + c].iter_mut().zip(&src[o..o + c]) {
                                    *d += v * scale;
                                }
                            }
                        }
                    }
                }
                if pass == Pass::Gather && scale != 1.0 {
                    for d in &mut dst[o..o + c] {
                        *d *= scale;
                    }
                }
            }
        }
    }
}

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// The window's largest value.
    Max,
    /// The window's mean.
    Avg,
}

/// The geometry of a pooling layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Max or average.
    pub kind: PoolKind,
    /// The input's shape.
    pub input: Shape,
    /// The input's (and output's) layout.
    pub layout: Layout,
    /// Window side.
    pub size: usize,
    /// Stride (both directions).
    pub stride: usize,
}

impl Pool {
    /// The output's shape.
    pub fn output(&self) -> Shape {
        Shape::new(
            self.input.c,
            (self.input.h - self.size) / self.stride + 1,
            (self.input.w - self.size) / self.stride + 1,
        )
    }

    /// Why this geometry cannot be.
    pub fn check(&self) -> Result<(), String> {
        if self.size == 0 || self.stride == 0 {
            return Err("size and stride must be at least 1".into());
        }
        if self.size > self.input.h || self.size > self.input.w {
            return Err(format!(
                "a {0}x{0} window does not fit a {1}x{2} input",
                self.size, self.input.h, self.input.w
            ));
        }
        Ok(())
    }

    /// Writes into `am` the offset of each window's largest value in `xs`
    /// (one sample), the first of equal ones in the window's row-major
    /// order, and that value into `ys`; a NaN never wins, so it cannot hide
    /// the others. Loops run along the layout's contiguous axis: a window's
    /// taps (channel-planar) or the channels at one tap (channels last,
    /// against a row of running maxima, which vectorizes).
    fn argmax_windows(&self, xs: &[f32], am: &mut [u32], ys: &mut [f32]) {
        let out = self.output();
        let (inp, k, s) = (self.input, self.size, self.stride);
        match self.layout {
            Layout::Chw => {
                for c in 0..out.c {
                    for oy in 0..out.h {
                        for ox in 0..out.w {
                            let mut best = Layout::Chw.index(inp, c, oy * s, ox * s);
                            for dy in 0..k {
                                let row = Layout::Chw.index(inp, c, oy * s + dy, ox * s);
                                for t in row..row + k {
                                    if xs[t] > xs[best] {
                                        best = t;
                                    }
                                }
                            }
                            let o = Layout::Chw.index(out, c, oy, ox);
                            am[o] = best as u32;
                            ys[o] = xs[best];
                        }
                    }
                }
            }
            Layout::Hwc => vectorized(MaxWindowsHwc(self, xs, am, ys)),
        }
    }

    /// [`WindowsHwc`] over one sample, `src` read and `dst` written.
    fn windows_hwc(&self, pass: Pass, scale: f32, src: &[f32], dst: &mut [f32]) {
        vectorized(WindowsHwc {
            pool: self,
            pass,
            scale,
            src,
            dst,
        })
    }

    /// Calls `f(output offset, window offsets)` for every output of one sample.
    #[inline(always)]
    pub(super) fn for_each_window(
        &self,
        mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>),
    ) {
        let out = self.output();
        let (inp, layout, k, s) = (self.input, self.layout, self.size, self.stride);
        for c in 0..out.c {
            for oy in 0..out.h {
                for ox in 0..out.w {
                    let mut taps = (0..k).flat_map(move |dy| {
                        (0..k).map(move |dx| layout.index(inp, c, oy * s + dy, ox * s + dx))
                    });
                    f(layout.index(out, c, oy, ox), &mut taps);
                }
            }
        }
    }
}

/// Pools `rows` samples of `x` into `y`; max-pooling records each output's
/// winning input in `argmax` (an offset within its sample).
pub(super) fn forward(p: &Pool, x: &Matrix, y: &mut Matrix, argmax: &mut [u32], rows: usize) {
    let (in_len, out_len) = (p.input.len(), p.output().len());
    let x = x.rows_slice(rows);
    match p.kind {
        PoolKind::Max => by_samples2(
            (&mut argmax[..], y.as_mut_slice()),
            (out_len, out_len),
            rows,
            &|n, am, ys| p.argmax_windows(&x[n * in_len..(n + 1) * in_len], am, ys),
        ),
        PoolKind::Avg => {
            let scale = 1.0 / (p.size * p.size) as f32;
            by_samples(y.as_mut_slice(), out_len, rows, &|n, ys| {
                let xs = &x[n * in_len..(n + 1) * in_len];
                match p.layout {
                    Layout::Hwc => p.windows_hwc(Pass::Gather, scale, xs, ys),
                    Layout::Chw => p.for_each_window(|o, taps| {
                        ys[o] = taps.map(|t| xs[t]).sum::<f32>() * scale
                    }),
                }
            });
        }
    }
}

/// The error at the input from the error `dy` at the output, over `rows` samples.
pub(super) fn backward(p: &Pool, dy: &Matrix, dx: &mut Matrix, argmax: &[u32], rows: usize) {
    let (in_len, out_len) = (p.input.len(), p.output().len());
    let dy = dy.rows_slice(rows);
    match p.kind {
        PoolKind::Max => by_samples(dx.as_mut_slice(), in_len, rows, &|n, dxs| {
            dxs.fill(0.0);
            let am = &argmax[n * out_len..(n + 1) * out_len];
            for (o, &i) in am.iter().enumerate() {
                dxs[i as usize] += dy[n * out_len + o];
            }
        }),
        PoolKind::Avg => {
            let scale = 1.0 / (p.size * p.size) as f32;
            by_samples(dx.as_mut_slice(), in_len, rows, &|n, dxs| {
                dxs.fill(0.0);
                let dys = &dy[n * out_len..(n + 1) * out_len];
                match p.layout {
                    Layout::Hwc => p.windows_hwc(Pass::Scatter, scale, dys, dxs),
                    Layout::Chw => p.for_each_window(|o, taps| {
                        let g = dys[o] * scale;
                        taps.for_each(|t| dxs[t] += g);
                    }),
                }
            });
        }
    }
}

/// Upsampling, the mirror of pooling `p` (BFA's feedback network): each
/// value of the pooled map spread over its window of `p`'s input shape
/// (for windows that tile the map, nearest-neighbour upsampling).
pub(super) fn spread(p: &Pool, x: &Matrix, y: &mut Matrix, rows: usize) {
    let (in_len, out_len) = (p.input.len(), p.output().len());
    let x = x.rows_slice(rows);
    by_samples(y.as_mut_slice(), in_len, rows, &|n, ys| {
        ys.fill(0.0);
        let xs = &x[n * out_len..(n + 1) * out_len];
        match p.layout {
            Layout::Hwc => p.windows_hwc(Pass::Scatter, 1.0, xs, ys),
            Layout::Chw => p.for_each_window(|o, taps| taps.for_each(|t| ys[t] += xs[o])),
        }
    });
}

/// The error at [`spread`]'s input: each window's errors summed.
pub(super) fn gather(p: &Pool, dy: &Matrix, dx: &mut Matrix, rows: usize) {
    let (in_len, out_len) = (p.input.len(), p.output().len());
    let dy = dy.rows_slice(rows);
    by_samples(dx.as_mut_slice(), out_len, rows, &|n, dxs| {
        let dys = &dy[n * in_len..(n + 1) * in_len];
        match p.layout {
            Layout::Hwc => p.windows_hwc(Pass::Gather, 1.0, dys, dxs),
            Layout::Chw => p.for_each_window(|o, taps| dxs[o] = taps.map(|t| dys[t]).sum()),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `m` (rows of `shape` in layout `from`) in layout `to`.
    fn relayout(m: &Matrix, shape: Shape, from: Layout, to: Layout) -> Matrix {
        let mut out = Matrix::zeros(m.rows(), m.cols());
        for n in 0..m.rows() {
            for c in 0..shape.c {
                for y in 0..shape.h {
                    for x in 0..shape.w {
                        let v = m.get(n, from.index(shape, c, y, x));
                        out.set(n, to.index(shape, c, y, x), v);
                    }
                }
            }
        }
        out
    }

    /// The channels-last passes (average-pooling and its error, upsampling
    /// and its error) give bit for bit what the channel-planar path gives,
    /// for tiling and overlapping windows.
    #[test]
    fn channels_last_window_passes_are_the_planar_ones_bit_for_bit() {
        let rows = 3;
        for (input, size, stride) in [
            (Shape::new(5, 8, 6), 2, 2),
            (Shape::new(3, 7, 9), 3, 1),
            (Shape::new(4, 9, 7), 3, 2),
        ] {
            let pool = |layout, kind| Pool {
                kind,
                input,
                layout,
                size,
                stride,
            };
            let out = pool(Layout::Chw, PoolKind::Avg).output();
            let random = |cols: usize, seed: u32| {
                let v = (0..rows * cols)
                    .map(|i| {
                        ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 - 0.5
                    })
                    .collect();
                Matrix::from_vec(rows, cols, v).unwrap()
            };
            let (big, small) = (random(input.len(), 7), random(out.len(), 11));
            // Each pass: its input's shape, its output's, and how it runs.
            type Pass = fn(&Pool, &Matrix, &mut Matrix, usize);
            let passes: [(&str, Shape, Shape, Pass); 4] = [
                ("avg-pool", input, out, |p, x, y, r| {
                    forward(p, x, y, &mut [], r)
                }),
                ("avg-pool error", out, input, |p, x, y, r| {
                    backward(p, x, y, &[], r)
                }),
                ("upsample", out, input, spread),
                ("upsample error", input, out, gather),
            ];
            for (what, from, to, pass) in passes {
                let x = if from == input { &big } else { &small };
                let mut planar = Matrix::zeros(rows, to.len());
                pass(&pool(Layout::Chw, PoolKind::Avg), x, &mut planar, rows);
                let x_last = relayout(x, from, Layout::Chw, Layout::Hwc);
                let mut last = Matrix::zeros(rows, to.len());
                pass(&pool(Layout::Hwc, PoolKind::Avg), &x_last, &mut last, rows);
                let last = relayout(&last, to, Layout::Hwc, Layout::Chw);
                let bits =
                    |m: &Matrix| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&planar),
                    bits(&last),
                    "{what} {input:?} {size} {stride}"
                );
            }
        }
    }
}
