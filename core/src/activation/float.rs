//! `f32` sigmoid and tanh.
//!
//! | variant | sigmoid max abs error | tanh max abs error | how |
//! |---|---|---|---|
//! | [`Accurate`] | ≤ 1e-6 (measured 2.9e-7) | ≤ 1e-6 (measured 5.6e-7) | rational minimax fit of `tanh` (degree 9/8), `σ(x) = (1 + tanh(x/2)) / 2` |
//! | [`Fast`] | ≤ 1e-3 (measured 5.3e-4) | ≤ 2e-3 (measured 1.06e-3) | `micromath`'s `exp` (bit-trick, ~2.4e-3 relative) |
//!
//! Errors are against `f64` over the whole `f32` range; the tests `accurate_error_table` and
//! `fast_error_table` in this file measure them on a dense grid plus the extremes. x86-64 builds
//! with FMA round each multiply-add once ([`portable::mul_add`](crate::kernel::portable::mul_add)):
//! there the accurate pair measures 2.7e-7 / 5.2e-7, within the same bounds (`cargo xtask test`
//! runs these tests in such a build too, step `test-fma`).

use micromath::F32Ext;

use crate::kernel::portable::mul_add;

/// A pair of `f32` activation functions.
pub trait FloatActivation: Copy + core::fmt::Debug + Default + PartialEq + 'static {
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    fn sigmoid(x: f32) -> f32;
    /// Hyperbolic tangent.
    fn tanh(x: f32) -> f32;

    /// The four LSTM gates of a unit from their pre-activations `[i, f, g, o]`:
    /// `[σ(i), σ(f), tanh(g), σ(o)]`, each exactly as [`sigmoid`](Self::sigmoid) and
    /// [`tanh`](Self::tanh) compute it (an implementation may evaluate them as one vector).
    #[inline(always)]
    fn lstm_gates([i, f, g, o]: [f32; 4]) -> [f32; 4] {
        [
            Self::sigmoid(i),
            Self::sigmoid(f),
            Self::tanh(g),
            Self::sigmoid(o),
        ]
    }

    /// `U` LSTM units at once from `pre[u] = [i, f, g, o]` and the cells `c`: `c[u]` becomes
    /// `σ(f)·c[u] + σ(i)·tanh(g)` and the result is `σ(o)·tanh(c[u])`, each exactly as the
    /// one-unit functions compute it (an implementation may evaluate each gate as one vector).
    #[inline(always)]
    fn lstm_units<const U: usize>(pre: [[f32; 4]; U], c: &mut [f32; U]) -> [f32; U] {
        lstm_units_one_by_one::<Self, U>(pre, c)
    }

    /// `U` GRU units at once from `pre[u] = [r, z, n_x, n_h]` and `h_prev`:
    /// `n = tanh(n_x + σ(r)·n_h)`, `h' = (1 - σ(z))·n + σ(z)·h_prev`, each exactly as for one
    /// unit (an implementation may evaluate each gate as one vector).
    #[inline(always)]
    fn gru_units<const U: usize>(pre: [[f32; 4]; U], h_prev: [f32; U]) -> [f32; U] {
        gru_units_one_by_one::<Self, U>(pre, h_prev)
    }
}

/// [`FloatActivation::lstm_units`] one unit at a time: the definition.
#[inline(always)]
pub fn lstm_units_one_by_one<A: FloatActivation, const U: usize>(
    pre: [[f32; 4]; U],
    c: &mut [f32; U],
) -> [f32; U] {
    let mut h = [0.0; U];
    for ((h, c), pre) in h.iter_mut().zip(c).zip(pre) {
        let [i, f, g, o] = A::lstm_gates(pre);
        *c = mul_add(f, *c, i * g);
        *h = o * A::tanh(*c);
    }
    h
}

/// [`FloatActivation::gru_units`] one unit at a time: the definition.
#[inline(always)]
pub fn gru_units_one_by_one<A: FloatActivation, const U: usize>(
    pre: [[f32; 4]; U],
    h_prev: [f32; U],
) -> [f32; U] {
    let mut h = [0.0; U];
    for ((h, h_prev), [r, z, n_x, n_h]) in h.iter_mut().zip(h_prev).zip(pre) {
        let (r, z) = (A::sigmoid(r), A::sigmoid(z));
        let n = A::tanh(mul_add(r, n_h, n_x));
        *h = mul_add(1.0 - z, n, z * h_prev);
    }
    h
}

/// The arithmetic the rational `tanh` needs: `f32`, or on the host four `f32` lanes that each
/// round exactly like `f32` (so a vector of results equals the scalar results bit for bit).
pub(crate) trait TanhLanes:
    Copy
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
    + core::ops::Div<Output = Self>
{
    /// Every lane `v`.
    fn splat(v: f32) -> Self;
    /// `f32::clamp(x, -limit, limit)` in every lane (NaN stays NaN).
    fn clamp_magnitude(self, limit: f32) -> Self;
    /// [`portable::mul_add`](crate::kernel::portable::mul_add) in every lane.
    fn mul_add(self, a: Self, b: Self) -> Self;
}

impl TanhLanes for f32 {
    #[inline(always)]
    fn splat(v: f32) -> f32 {
        v
    }

    #[inline(always)]
    fn clamp_magnitude(self, limit: f32) -> f32 {
        self.clamp(-limit, limit)
    }

    #[inline(always)]
    fn mul_add(self, a: f32, b: f32) -> f32 {
        crate::kernel::portable::mul_add(self, a, b)
    }
}

/// [`Accurate::tanh`] in every lane: `x·P(x²)/Q(x²)` of `x` clamped to ±[`TANH_CLAMP`].
///
/// `P` and `Q` are evaluated by Estrin's scheme, `(p4·t² + (p3·t + p2))·t² + (p1·t + p0)`:
/// chains of four dependent operations instead of Horner's eight. The host's vector
/// activations are latency-bound (a step took 0.71–0.93× the time of Horner's), and on
/// Cortex-M4F/M33 it measured 1.7–4.3 % fewer instructions per step than Horner's as well
/// (LLVM keeps fewer constants live), at up to 24 B more stack.
#[inline(always)]
pub(crate) fn rational_tanh<T: TanhLanes>(x: T) -> T {
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
    fn sigmoid(x: f32) -> f32 {
        mul_add(Self::tanh(0.5 * x), 0.5, 0.5)
    }

    #[inline(always)]
    fn tanh(x: f32) -> f32 {
        rational_tanh(x)
    }

    /// On the host: one 4-lane `tanh` of `[i/2, f/2, g, o/2]`, then `0.5 + 0.5·t` in the sigmoid
    /// lanes: the scalar definitions, lane by lane.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn lstm_gates([i, f, g, o]: [f32; 4]) -> [f32; 4] {
        let t = rational_tanh(wide::f32x4::from([0.5 * i, 0.5 * f, g, 0.5 * o])).to_array();
        let sigmoid = |t: f32| mul_add(t, 0.5, 0.5);
        [sigmoid(t[0]), sigmoid(t[1]), t[2], sigmoid(t[3])]
    }

    /// On the host, 8 units: lane `u` is unit `u`; every gate and `tanh(c)` is one vector
    /// `tanh`, and the four gates' chains are independent. Same operations, lane by lane, as
    /// the scalar definitions.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn lstm_units<const U: usize>(pre: [[f32; 4]; U], c: &mut [f32; U]) -> [f32; U] {
        crate::kernel::host::lstm_units(pre, c, lstm_units_one_by_one::<Self, U>)
    }

    /// On the host, 8 units: lane `u` is unit `u`, as in
    /// [`lstm_units`](Self::lstm_units).
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn gru_units<const U: usize>(pre: [[f32; 4]; U], h_prev: [f32; U]) -> [f32; U] {
        crate::kernel::host::gru_units(pre, h_prev, gru_units_one_by_one::<Self, U>)
    }
}

impl FloatActivation for Fast {
    #[inline(always)]
    fn sigmoid(x: f32) -> f32 {
        // micromath's exp is only defined over a limited range; beyond ±20 the sigmoid is
        // within 2.1e-9 of 0 or 1, which clamping keeps.
        let x = x.clamp(-20.0, 20.0);
        // Call micromath explicitly: with `std` linked (tests), `x.exp()` would pick std's.
        1.0 / (1.0 + F32Ext::exp(-x))
    }

    #[inline(always)]
    fn tanh(x: f32) -> f32 {
        // tanh(x) = 2 sigmoid(2x) - 1.
        2.0 * Self::sigmoid(2.0 * x) - 1.0
    }
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
    fn vector_lstm_gates_equal_the_scalar_functions() {
        // Every clamp boundary, NaN and infinities, and a dense grid: the host evaluates the
        // four gates as one vector; each lane must be the scalar function's bits.
        let special = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            18.0,
            -18.0,
            9.0,
            -9.0,
        ];
        let inputs: Vec<f32> = grid().step_by(7).chain(special).collect();
        for (k, &a) in inputs.iter().enumerate() {
            let b = inputs[(k * 31 + 5) % inputs.len()];
            let pre = [a, b, a * 0.5, -b];
            let got = Accurate::lstm_gates(pre);
            let want = [
                Accurate::sigmoid(pre[0]),
                Accurate::sigmoid(pre[1]),
                Accurate::tanh(pre[2]),
                Accurate::sigmoid(pre[3]),
            ];
            for (g, (got, want)) in got.iter().zip(want).enumerate() {
                let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
                assert!(same, "gate {g} of {pre:?}: {got} != {want}");
            }
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
