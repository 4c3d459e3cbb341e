//! The shape and memory layout of one sample's activations.

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

    /// True when the values have a spatial extent (a feature map, not a vector).
    pub fn is_spatial(&self) -> bool {
        self.h * self.w > 1
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_spatial() {
            write!(f, "{}x{}x{}", self.c, self.h, self.w)
        } else {
            write!(f, "{}", self.c)
        }
    }
}

/// How a sample's feature map lies in memory.
///
/// Inputs are channel-planar (`Chw`, PyTorch's NCHW). A convolution writes
/// channels last (`Hwc`), since its product makes one row per output
/// position; pooling keeps the layout it is given, and `flatten` turns a
/// map into PyTorch's `C, H, W` order, so that a dense layer's weights mean
/// what they mean in PyTorch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Channel planes: `(c * h + y) * w + x`.
    #[default]
    Chw,
    /// Channels last: `(y * w + x) * c + c_i`.
    Hwc,
}

impl Layout {
    /// The offset of `(ch, y, x)` in a sample of `shape`.
    #[inline(always)]
    pub fn index(self, shape: Shape, ch: usize, y: usize, x: usize) -> usize {
        match self {
            Layout::Chw => (ch * shape.h + y) * shape.w + x,
            Layout::Hwc => (y * shape.w + x) * shape.c + ch,
        }
    }
}

/// Runs `f(n, chunk)` on each sample's `per`-long chunk of `out` (the first
/// `rows` samples), cut into bands of samples on the GEMM threads. Each
/// sample is computed alone, in one order, so the bands give bitwise the
/// one-thread result.
pub(crate) fn by_samples<T: Send>(
    out: &mut [T],
    per: usize,
    rows: usize,
    f: &(impl Fn(usize, &mut [T]) + Sync),
) {
    let parts = if rows * per < 1 << 14 {
        1
    } else {
        crate::tensor::gemm_threads().min(rows)
    };
    band(&mut out[..rows * per], per, 0, parts, f);
}

fn band<T: Send>(
    out: &mut [T],
    per: usize,
    first: usize,
    parts: usize,
    f: &(impl Fn(usize, &mut [T]) + Sync),
) {
    let n = out.len() / per.max(1);
    if parts > 1 && n > 1 {
        let at = n / parts;
        let (a, b) = out.split_at_mut(at * per);
        rayon::join(
            || band(a, per, first, 1, f),
            || band(b, per, first + at, parts - 1, f),
        );
        return;
    }
    for (k, chunk) in out.chunks_exact_mut(per.max(1)).enumerate() {
        f(first + k, chunk);
    }
}
