//! The three dense kernels BPTT needs, on row-major slices.
//!
//! Weights are `rows × cols`, row-major (PyTorch layout). Every loop runs over contiguous memory
//! in the innermost position so that the compiler can vectorise it; the order of additions is
//! fixed, which keeps training bit-for-bit deterministic.

use super::Real;

/// `y += W x` for `W` of `rows × cols`.
pub(crate) fn matvec_add<T: Real>(w: &[T], cols: usize, x: &[T], y: &mut [T]) {
    debug_assert_eq!(w.len(), y.len() * cols);
    debug_assert_eq!(x.len(), cols);
    for (yr, wr) in y.iter_mut().zip(w.chunks_exact(cols)) {
        let mut acc = T::zero();
        for (a, b) in wr.iter().zip(x) {
            acc += *a * *b;
        }
        *yr += acc;
    }
}

/// `dx += Wᵀ dy` for `W` of `rows × cols` (`dy` has `rows` entries, `dx` has `cols`).
pub(crate) fn matvec_t_add<T: Real>(w: &[T], cols: usize, dy: &[T], dx: &mut [T]) {
    debug_assert_eq!(w.len(), dy.len() * cols);
    debug_assert_eq!(dx.len(), cols);
    for (d, wr) in dy.iter().zip(w.chunks_exact(cols)) {
        if *d == T::zero() {
            continue;
        }
        for (o, a) in dx.iter_mut().zip(wr) {
            *o += *d * *a;
        }
    }
}

/// `G += dy xᵀ` for `G` of `dy.len() × x.len()`.
pub(crate) fn outer_add<T: Real>(g: &mut [T], dy: &[T], x: &[T]) {
    debug_assert_eq!(g.len(), dy.len() * x.len());
    for (d, gr) in dy.iter().zip(g.chunks_exact_mut(x.len())) {
        if *d == T::zero() {
            continue;
        }
        for (o, a) in gr.iter_mut().zip(x) {
            *o += *d * *a;
        }
    }
}

/// `y += x`, elementwise.
pub(crate) fn add_assign<T: Real>(y: &mut [T], x: &[T]) {
    for (a, b) in y.iter_mut().zip(x) {
        *a += *b;
    }
}

/// Logistic sigmoid, computed so that it neither overflows nor loses precision for large `|x|`.
pub(crate) fn sigmoid<T: Real>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}
