//! `f32` sigmoid and tanh.
//!
//! | variant | sigmoid max abs error | tanh max abs error | how |
//! |---|---|---|---|
//! | [`Accurate`] | ≤ 1e-6 | ≤ 1e-6 | rational minimax fit of `tanh` (degree 9/8), `σ(x) = (1 + tanh(x/2)) / 2` |
//! | [`Fast`] | ≤ 1e-3 | ≤ 2e-3 | `micromath`'s `exp` (bit-trick, ~2.4e-3 relative) |
//!
//! Errors are against `f64` over the whole `f32` range; the tests `accurate_error_table` and
//! `fast_error_table` in this file hold them on a dense grid plus the extremes (run them with
//! `--nocapture` for the measured maxima). x86-64 builds with FMA round each multiply-add once
//! ([`portable::mul_add`](crate::kernel::portable::mul_add)); the same bounds hold there
//! (`cargo xtask test` runs these tests in such a build too, step `test-fma`).
//!
//! Both functions are generic over [`F32Lanes`]: the host evaluates them on vectors of eight
//! units, each lane with the bits of the `f32` function.

use micromath::F32Ext;

use crate::kernel::portable::F32Lanes;

/// A pair of `f32` activation functions, on one value or on every lane of a vector (each lane
/// with exactly the bits of the one-value function).
pub trait FloatActivation: Copy + core::fmt::Debug + Default + PartialEq + 'static {
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    fn sigmoid<T: F32Lanes>(x: T) -> T;
    /// Hyperbolic tangent.
    fn tanh<T: F32Lanes>(x: T) -> T;
}

/// [`Accurate::tanh`] in every lane: `x·P(x²)/Q(x²)` of `x` clamped to ±[`TANH_CLAMP`].
///
/// `P` and `Q` are evaluated by Estrin's scheme, `(p4·t² + (p3·t + p2))·t² + (p1·t + p0)`:
/// chains of four dependent operations instead of Horner's eight, which the host's
/// latency-bound vector activations need; on Cortex-M4F/M33 it also takes fewer instructions
/// than Horner's (LLVM keeps fewer constants live).
#[inline(always)]
fn rational_tanh<T: F32Lanes>(x: T) -> T {
    let c = |k: f32| T::splat(k);
    let x = x.clamp_magnitude(TANH_CLAMP);
    let t = x * x;
    let t2 = t * t;
    let estrin = |k: &[f32; 5]| {
        let high = c(k[4]).mul_add(t2, c(k[3]).mul_add(t, c(k[2])));
        high.mul_add(t2, c(k[1]).mul_add(t, c(k[0])))
    };
    let (p, q) = (estrin(&TANH_P), estrin(&TANH_Q));
    // Within [-1, 1] by construction of TANH_P, without a clamp: on an FPU without
    // VMINNM/VMAXNM a clamp costs eight instructions, and this runs for every gate.
    x * p / q
}

/// Accurate activations (≤ 1e-6 absolute error), the default.
///
/// `tanh(x) ≈ x·P(x²)/Q(x²)` with `P` of degree 4 and `Q` of degree 4 in `x²`, fitted by
/// iteratively reweighted least squares on `[0, 9]` (`core/scripts/fit_tanh.py`, option `5 4`);
/// `|x| ≥ 9` returns `±1` (`1 - tanh(9) = 3.0e-8`). Nine multiply-adds and one division, no
/// branches in the common path and no table: fast on an FPU and vectorisable on the host. Host
/// and targets evaluate the polynomials the same way (Estrin's scheme), so `tanh` has the same
/// bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accurate;

/// Fast activations from `micromath` (≤ 1e-3 / 2e-3 absolute error for sigmoid / tanh).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fast;

/// Numerator coefficients of `tanh(x) ≈ x·P(x²)/Q(x²)` (lowest power first): the fitted ones
/// (0.99999988, 0.13373126, 0.0034865013, 2.0470683e-5, 1.3182980e-8) scaled by `1 - 2⁻²²`, so
/// that the `f32` result never exceeds 1 and needs no clamp (checked for every `f32` input by
/// `accurate_tanh_stays_within_one`; the fit alone reached 1.0000002 near 8.26). The scaling
/// costs at most 2.4e-7 of accuracy.
const TANH_P: [f32; 5] = [
    0.99999964,
    0.13373123,
    0.0034865004,
    2.0470678e-5,
    1.31829765e-8,
];
/// Denominator coefficients (lowest power first).
#[allow(clippy::excessive_precision)]
const TANH_Q: [f32; 5] = [1.0, 0.46706423, 0.025841661, 3.2712612e-4, 7.7020809e-7];
/// Beyond this magnitude `tanh` is `±1` to within 3.0e-8.
const TANH_CLAMP: f32 = 9.0;

impl FloatActivation for Accurate {
    #[inline(always)]
    fn sigmoid<T: F32Lanes>(x: T) -> T {
        let half = T::splat(0.5);
        Self::tanh(half * x).mul_add(half, half)
    }

    #[inline(always)]
    fn tanh<T: F32Lanes>(x: T) -> T {
        rational_tanh(x)
    }
}

impl FloatActivation for Fast {
    #[inline(always)]
    fn sigmoid<T: F32Lanes>(x: T) -> T {
        x.map(fast_sigmoid)
    }

    #[inline(always)]
    fn tanh<T: F32Lanes>(x: T) -> T {
        // tanh(x) = 2 sigmoid(2x) - 1.
        x.map(|x| 2.0 * fast_sigmoid(2.0 * x) - 1.0)
    }
}

/// [`Fast::sigmoid`] of one value.
#[inline(always)]
fn fast_sigmoid(x: f32) -> f32 {
    // micromath's exp is only defined over a limited range; beyond ±20 the sigmoid is within
    // 2.1e-9 of 0 or 1, which clamping keeps.
    let x = x.clamp(-20.0, 20.0);
    // Call micromath explicitly: with `std` linked (tests), `x.exp()` would pick std's.
    1.0 / (1.0 + F32Ext::exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid64(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// A dense grid over [-30, 30] plus the whole f32 range sampled logarithmically.
    fn grid() -> impl Iterator<Item = f32> {
        let dense = (-300_000..=300_000).map(|i| i as f32 * 1e-4);
        let wide = (0..=2000).flat_map(|k| {
            let v = 10f32.powf(-38.0 + k as f32 * 0.0385);
            [v, -v]
        });
        dense
            .chain(wide)
            .chain([f32::MAX, f32::MIN, f32::MIN_POSITIVE, 0.0, -0.0])
    }

    fn max_errors<A: FloatActivation>() -> (f64, f64) {
        let (mut es, mut et) = (0f64, 0f64);
        for x in grid() {
            es = es.max((A::sigmoid(x) as f64 - sigmoid64(x as f64)).abs());
            et = et.max((A::tanh(x) as f64 - (x as f64).tanh()).abs());
        }
        (es, et)
    }

    #[test]
    fn accurate_error_table() {
        let (es, et) = max_errors::<Accurate>();
        eprintln!("accurate: sigmoid {es:.3e}, tanh {et:.3e}");
        assert!(es <= 1e-6, "sigmoid max error {es}");
        assert!(et <= 1e-6, "tanh max error {et}");
    }

    #[test]
    fn fast_error_table() {
        let (es, et) = max_errors::<Fast>();
        eprintln!("fast: sigmoid {es:.3e}, tanh {et:.3e}");
        assert!(es <= 1e-3, "fast sigmoid max error {es}");
        assert!(et <= 2e-3, "fast tanh max error {et}");
    }

    /// Every `f32` in [4, 9]: the only inputs where `tanh` is within the fit's error of 1
    /// (tanh(4) = 0.99933), so the only ones where the unclamped result could pass 1. Odd
    /// symmetry (`x · P(x²) / Q(x²)`) covers the negative side, the input clamp |x| > 9.
    #[test]
    fn accurate_tanh_stays_within_one() {
        let (start, end) = (4f32.to_bits(), 9f32.to_bits());
        for bits in start..=end {
            let x = f32::from_bits(bits);
            let t = rational_tanh(x);
            assert!(t <= 1.0, "tanh({x}) = {t}");
            assert_eq!(rational_tanh(-x), -t);
        }
    }

    #[test]
    fn outputs_stay_in_range() {
        for x in grid() {
            for s in [Accurate::sigmoid(x), Fast::sigmoid(x)] {
                assert!((0.0..=1.0).contains(&s), "sigmoid({x}) = {s}");
            }
            for t in [Accurate::tanh(x), Fast::tanh(x)] {
                assert!((-1.0..=1.0).contains(&t), "tanh({x}) = {t}");
            }
        }
    }
}
