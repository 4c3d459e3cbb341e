//! Timing each product of some work, for `biprop bench --breakdown`.

use std::cell::RefCell;

thread_local! {
    static PRODUCT_LOG: RefCell<Option<Vec<ProductTime>>> = const { RefCell::new(None) };
}

/// One product timed by [`record_products`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProductTime {
    /// `m x k` times `k x n`.
    pub mkn: (usize, usize, usize),
    /// Whether the left and the right operands were transposed views.
    pub transposed: (bool, bool),
    /// Whether it accumulated into its output.
    pub accumulate: bool,
    /// The parts it was cut into (one per thread, or 1 for a small product).
    pub parts: usize,
    /// Wall time of the call, its epilogue included.
    pub seconds: f64,
}

impl ProductTime {
    /// `NN`, `NT`, `TN` or `TT`: which operands were transposed views.
    pub fn layout(&self) -> &'static str {
        match self.transposed {
            (false, false) => "NN",
            (false, true) => "NT",
            (true, false) => "TN",
            (true, true) => "TT",
        }
    }

    /// Floating-point operations per second of the call.
    pub fn flops_per_s(&self) -> f64 {
        let (m, k, n) = self.mkn;
        2.0 * (m * k * n) as f64 / self.seconds
    }
}

/// Runs `f` with every product this thread starts through [`gemm_then`]
/// timed, and returns `f`'s result with the products in call order. A
/// diagnostic (`biprop bench --breakdown`): outside it a product costs one
/// thread-local check. `capacity` products are reserved up front, so that
/// recording allocates nothing while `f` runs unless it makes more.
pub fn record_products<R>(capacity: usize, f: impl FnOnce() -> R) -> (R, Vec<ProductTime>) {
    // Puts the caller's log (none, or an outer recording's) back, also when
    // `f` panics.
    struct Restore(Option<Option<Vec<ProductTime>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                PRODUCT_LOG.with(|l| *l.borrow_mut() = outer);
            }
        }
    }
    let outer = PRODUCT_LOG.with(|l| l.replace(Some(Vec::with_capacity(capacity))));
    let mut restore = Restore(Some(outer));
    let r = f();
    let outer = restore.0.take().expect("set above");
    let log = PRODUCT_LOG.with(|l| l.replace(outer));
    (r, log.unwrap_or_default())
}

/// Whether this thread is recording products.
pub(super) fn recording() -> bool {
    PRODUCT_LOG.with(|l| l.borrow().is_some())
}

/// Adds `t` to this thread's recording.
pub(super) fn log(t: ProductTime) {
    PRODUCT_LOG.with(|l| l.borrow_mut().as_mut().map(|v| v.push(t)));
}
