//! Hidden-layer activations, applied in fused passes over a whole batch.
//!
//! `tanh` is a branch-free rational approximation (max abs error about 5e-7,
//! checked by a test) that the compiler vectorizes, because glibc's `tanhf`
//! is a scalar call per element: on the paper's shapes the activation would
//! otherwise cost a visible share of each step (docs/performance.md).

use serde::{Deserialize, Serialize};

/// The nonlinearity of the hidden layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Hyperbolic tangent (the paper's choice).
    #[default]
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Rectified linear unit.
    Relu,
}

/// An elementwise pass to compile for the CPU's widest vector unit.
///
/// `run` must be `#[inline(always)]`, so that its body is compiled inside
/// the target-feature function that [`vectorized`] dispatches to (a closure
/// would stay a separate baseline-SSE function).
pub trait Kernel {
    /// Does the work.
    fn run(self);
}

struct Dispatch<K>(K);

impl<K: Kernel> pulp::WithSimd for Dispatch<K> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.0.run()
    }
}

/// Runs `k` compiled for the widest vector unit this CPU has (AVX2 with
/// FMA, else baseline), chosen at run time, so that a portable build still
/// vectorizes its elementwise passes. Besides width, this avoids the penalty
/// of SSE code right after faer's AVX-512 kernels.
#[inline(always)]
pub fn vectorized(k: impl Kernel) {
    pulp::Arch::new().dispatch(Dispatch(k))
}

struct BiasAct<'a>(Activation, &'a mut [f32], &'a [f32]);
impl Kernel for BiasAct<'_> {
    #[inline(always)]
    fn run(self) {
        self.0.apply_with_bias_impl(self.1, self.2)
    }
}

struct Derivative<'a>(Activation, &'a mut [f32], &'a [f32]);
impl Kernel for Derivative<'_> {
    #[inline(always)]
    fn run(self) {
        self.0.mul_derivative_impl(self.1, self.2)
    }
}

/// [`BiasAct`] over separate rows (a block of a wider matrix).
struct BiasActRows<'b, I>(Activation, I, &'b [f32]);
impl<'a, I: Iterator<Item = &'a mut [f32]>> Kernel for BiasActRows<'_, I> {
    #[inline(always)]
    fn run(self) {
        for row in self.1 {
            self.0.apply_with_bias_impl(row, self.2)
        }
    }
}

/// [`Derivative`] over separate `(delta row, h row)` pairs.
struct DerivativeRows<I>(Activation, I);
impl<'a, I: Iterator<Item = (&'a mut [f32], &'a [f32])>> Kernel for DerivativeRows<I> {
    #[inline(always)]
    fn run(self) {
        for (delta, h) in self.1 {
            self.0.mul_derivative_impl(delta, h)
        }
    }
}

impl Activation {
    /// [`Activation::apply_with_bias`] on each of `rows` (one dispatch for all).
    pub fn apply_with_bias_rows<'a>(self, rows: impl Iterator<Item = &'a mut [f32]>, bias: &[f32]) {
        vectorized(BiasActRows(self, rows, bias))
    }

    /// [`Activation::mul_derivative`] on each `(delta, h)` pair of rows (one
    /// dispatch for all).
    pub fn mul_derivative_rows<'a>(self, rows: impl Iterator<Item = (&'a mut [f32], &'a [f32])>) {
        vectorized(DerivativeRows(self, rows))
    }

    /// `h = f(z + bias)` row by row, in place; `z` holds `rows x bias.len()` values.
    pub fn apply_with_bias(self, z: &mut [f32], bias: &[f32]) {
        vectorized(BiasAct(self, z, bias))
    }

    /// `delta *= f'(a)`, with the derivative computed from the output `h = f(a)`.
    pub fn mul_derivative(self, delta: &mut [f32], h: &[f32]) {
        vectorized(Derivative(self, delta, h))
    }

    #[inline(always)]
    fn apply_with_bias_impl(self, z: &mut [f32], bias: &[f32]) {
        let n = bias.len();
        for row in z.chunks_exact_mut(n) {
            match self {
                Activation::Tanh => {
                    for (v, &b) in row.iter_mut().zip(bias) {
                        *v = tanh(*v + b);
                    }
                }
                Activation::Sigmoid => {
                    for (v, &b) in row.iter_mut().zip(bias) {
                        *v = sigmoid(*v + b);
                    }
                }
                Activation::Relu => {
                    for (v, &b) in row.iter_mut().zip(bias) {
                        *v = (*v + b).max(0.0);
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn mul_derivative_impl(self, delta: &mut [f32], h: &[f32]) {
        debug_assert_eq!(delta.len(), h.len());
        match self {
            Activation::Tanh => {
                for (d, &h) in delta.iter_mut().zip(h) {
                    *d *= 1.0 - h * h;
                }
            }
            Activation::Sigmoid => {
                for (d, &h) in delta.iter_mut().zip(h) {
                    *d *= h * (1.0 - h);
                }
            }
            Activation::Relu => {
                for (d, &h) in delta.iter_mut().zip(h) {
                    if h <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
        }
    }
}

/// Branch-free `tanh` (Eigen's rational 13/6 approximation; max abs error
/// about 5e-7 on all of f32). NaN in gives NaN out.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the published coefficients, kept as written
pub fn tanh(x: f32) -> f32 {
    // Past this bound the approximation is exactly +-1 in f32.
    const CLAMP: f32 = 7.905_311;
    let x = x.clamp(-CLAMP, CLAMP);
    let x2 = x * x;
    // Plain multiply-add: `mul_add` without the FMA target feature is a libm call.
    let mut p = -2.760_768_5e-16_f32;
    p = p * x2 + 2.000_187_9e-13;
    p = p * x2 - 8.604_671_5e-11;
    p = p * x2 + 5.122_297e-8;
    p = p * x2 + 1.485_722_4e-5;
    p = p * x2 + 6.372_619_3e-4;
    p = p * x2 + 4.893_524_6e-3;
    p *= x;
    let mut q = 1.198_258_4e-6_f32;
    q = q * x2 + 1.185_347e-4;
    q = q * x2 + 2.268_434_6e-3;
    q = q * x2 + 4.893_525e-3;
    p / q
}

/// Logistic sigmoid through [`tanh`]: `1/(1+e^-x) = (1 + tanh(x/2)) / 2`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    0.5 * tanh(0.5 * x) + 0.5
}

/// `out[j] += scale * sum_r m[r][j]`, with `m` row-major, `out.len()`
/// columns wide.
///
/// Each column is summed in f64: on a column of n terms its error is
/// below `n * 1.1e-16` of the sum of the terms' magnitudes, far below
/// float32's rounding for any batch. Why: a convolution's bias sums its
/// error over every position of the batch (28,800 terms a channel on
/// `biotorch-lenet-cifar`'s first layer at batch 32), and a running f32
/// sum of that many terms lost up to 2e-5 of the largest bias in three
/// steps, against PyTorch's 1e-5.
pub fn column_sums_into(out: &mut [f32], m: &[f32], scale: f32) {
    vectorized(ColumnSums(out, m, scale))
}

/// Columns summed in one pass over the rows: a convolution's channels at
/// once (f64 accumulators on the stack: 2 KB a chain).
const SUM_BLOCK: usize = 256;

struct ColumnSums<'a>(&'a mut [f32], &'a [f32], f32);

impl Kernel for ColumnSums<'_> {
    #[inline(always)]
    fn run(self) {
        let ColumnSums(out, m, scale) = self;
        let cols = out.len();
        for (first, block) in out.chunks_mut(SUM_BLOCK).enumerate() {
            let start = first * SUM_BLOCK;
            let width = block.len();
            // Even and odd rows in separate accumulators: two independent
            // chains of additions a column, for narrow blocks.
            let (mut even, mut odd) = ([0.0f64; SUM_BLOCK], [0.0f64; SUM_BLOCK]);
            let mut pairs = m.chunks_exact(2 * cols);
            for pair in &mut pairs {
                add_row(&mut even[..width], &pair[start..start + width]);
                add_row(&mut odd[..width], &pair[cols + start..cols + start + width]);
            }
            if let Some(row) = pairs.remainder().get(start..start + width) {
                add_row(&mut even[..width], row);
            }
            for ((o, e), d) in block.iter_mut().zip(even).zip(odd) {
                *o += scale * (e + d) as f32;
            }
        }
    }
}

/// `acc[k] += row[k]` in f64.
#[inline(always)]
fn add_row(acc: &mut [f64], row: &[f32]) {
    for (a, &v) in acc.iter_mut().zip(row) {
        *a += v as f64;
    }
}

/// The reference for [`column_sums_into`]: each column's f64 sum.
#[cfg(test)]
fn column_sums_naive(cols: usize, m: &[f32]) -> Vec<f64> {
    (0..cols)
        .map(|j| m.iter().skip(j).step_by(cols).map(|&v| v as f64).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long columns of values near 0.1: a running f32 sum drifts by 65
    /// ulps on the first; these must stay within 2 ulps of the exact sums.
    #[test]
    fn column_sums_keep_f32_precision_over_long_columns() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (rows, cols) in [(100_000, 3), (30_001, 37), (1, 16), (7, 1), (301, 600)] {
            let m: Vec<f32> = (0..rows * cols)
                .map(|_| 0.1 + rng.random_range(-0.01f32..0.01))
                .collect();
            let mut out = vec![1.0f32; cols];
            column_sums_into(&mut out, &m, 0.5);
            for (j, (&got, want)) in out.iter().zip(column_sums_naive(cols, &m)).enumerate() {
                let want = 1.0 + 0.5 * want;
                let err = (got as f64 - want).abs();
                assert!(
                    err <= 2.0 * f32::EPSILON as f64 * want.abs(),
                    "{rows}x{cols}, column {j}: {got} against {want}"
                );
            }
        }
    }

    #[test]
    fn tanh_is_accurate_everywhere() {
        let mut worst = 0.0f64;
        let mut x = -20.0f32;
        while x < 20.0 {
            let err = (tanh(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err);
            x += 1e-3;
        }
        assert!(worst < 1e-6, "max error {worst}");
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(1e30), 1.0);
        assert_eq!(tanh(-1e30), -1.0);
    }

    #[test]
    fn sigmoid_is_accurate() {
        for i in -400..400 {
            let x = i as f32 * 0.05;
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((sigmoid(x) as f64 - want).abs() < 1e-6);
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for act in [Activation::Tanh, Activation::Sigmoid, Activation::Relu] {
            for &a in &[-1.3f32, -0.2, 0.4, 2.1] {
                let f = |x: f32| {
                    let mut v = [x];
                    act.apply_with_bias(&mut v, &[0.0]);
                    v[0] as f64
                };
                let eps = 1e-3;
                let fd = (f(a + eps) - f(a - eps)) / (2.0 * eps as f64);
                let mut d = [1.0f32];
                act.mul_derivative(&mut d, &[f(a) as f32]);
                assert!((d[0] as f64 - fd).abs() < 2e-3, "{act:?} at {a}");
            }
        }
    }
}
