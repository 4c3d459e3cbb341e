//! `flatten`: a feature map as one vector in PyTorch's `C, H, W` order, so
//! that the dense layer after it has the weights PyTorch's would. From a
//! channels-last map that is a transpose of each sample; its error goes back
//! the other way.

use super::shape::{by_samples, Layout, Shape};
use crate::tensor::Matrix;

/// The geometry of a flatten layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flatten {
    /// The input's shape.
    pub input: Shape,
    /// The input's layout.
    pub layout: Layout,
}

impl Flatten {
    /// The output's shape: one vector.
    pub fn output(&self) -> Shape {
        Shape::flat(self.input.len())
    }
}

/// `y[n, (c h + y) w + x] = x[n, c, y, x]` over `rows` samples.
pub(super) fn forward(f: &Flatten, x: &Matrix, y: &mut Matrix, rows: usize) {
    let (s, layout, len) = (f.input, f.layout, f.input.len());
    let x = x.rows_slice(rows);
    by_samples(y.as_mut_slice(), len, rows, &|n, ys| {
        let xs = &x[n * len..(n + 1) * len];
        match layout {
            Layout::Chw => ys.copy_from_slice(xs),
            Layout::Hwc => {
                for c in 0..s.c {
                    for yy in 0..s.h {
                        for xx in 0..s.w {
                            ys[(c * s.h + yy) * s.w + xx] = xs[layout.index(s, c, yy, xx)];
                        }
                    }
                }
            }
        }
    });
}

/// The error at the input, in its layout, from the error `dy` at the output.
pub(super) fn backward(f: &Flatten, dy: &Matrix, dx: &mut Matrix, rows: usize) {
    let (s, layout, len) = (f.input, f.layout, f.input.len());
    let dy = dy.rows_slice(rows);
    by_samples(dx.as_mut_slice(), len, rows, &|n, dxs| {
        let dys = &dy[n * len..(n + 1) * len];
        match layout {
            Layout::Chw => dxs.copy_from_slice(dys),
            Layout::Hwc => {
                for c in 0..s.c {
                    for yy in 0..s.h {
                        for xx in 0..s.w {
                            dxs[layout.index(s, c, yy, xx)] = dys[(c * s.h + yy) * s.w + xx];
                        }
                    }
                }
            }
        }
    });
}
