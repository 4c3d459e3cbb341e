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
    let len = rows * per;
    let per = per.max(1);
    band(
        &mut out[..len],
        rows,
        0,
        parts(rows, per),
        &|s, at| s.split_at_mut(at * per),
        &|first, s| {
            for (k, chunk) in s.chunks_exact_mut(per).enumerate() {
                f(first + k, chunk);
            }
        },
    );
}

/// [`by_samples`] over two outputs at once, `per.0` and `per.1` values a
/// sample: `f(n, a, b)` gets sample `n`'s chunk of each.
pub(crate) fn by_samples2<A: Send, B: Send>(
    out: (&mut [A], &mut [B]),
    per: (usize, usize),
    rows: usize,
    f: &(impl Fn(usize, &mut [A], &mut [B]) + Sync),
) {
    let lens = (rows * per.0, rows * per.1);
    let (pa, pb) = (per.0.max(1), per.1.max(1));
    band(
        (&mut out.0[..lens.0], &mut out.1[..lens.1]),
        rows,
        0,
        parts(rows, pa.max(pb)),
        &|(a, b), at| {
            let (a0, a1) = a.split_at_mut(at * pa);
            let (b0, b1) = b.split_at_mut(at * pb);
            ((a0, b0), (a1, b1))
        },
        &|first, (a, b)| {
            for (k, (ca, cb)) in a
                .chunks_exact_mut(pa)
                .zip(b.chunks_exact_mut(pb))
                .enumerate()
            {
                f(first + k, ca, cb);
            }
        },
    );
}

/// How many bands `rows` samples of `per` values are cut into: one for
/// small work, else one per GEMM thread.
fn parts(rows: usize, per: usize) -> usize {
    if rows * per < 1 << 14 {
        1
    } else {
        crate::tensor::gemm_threads().min(rows)
    }
}

/// Cuts `s` (`n` samples from sample `first`) into `parts` bands of
/// consecutive samples with `split`, run side by side; `leaf` computes one band.
fn band<S: Send>(
    s: S,
    n: usize,
    first: usize,
    parts: usize,
    split: &(impl Fn(S, usize) -> (S, S) + Sync),
    leaf: &(impl Fn(usize, S) + Sync),
) {
    if parts > 1 && n > 1 {
        let at = n / parts;
        let (a, b) = split(s, at);
        rayon::join(
            || band(a, at, first, 1, split, leaf),
            || band(b, n - at, first + at, parts - 1, split, leaf),
        );
        return;
    }
    leaf(first, s);
}
