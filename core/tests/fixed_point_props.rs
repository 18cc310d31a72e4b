//! Property tests of the integer kernels and fixed-point activations against exact references
//! (`i128` arithmetic on the same raw integers, or `f64` where a transcendental is involved).
//!
//! Every property prints the largest error it saw (`cargo test --test fixed_point_props --
//! --nocapture`). The bounds asserted here:
//!
//! Errors are `result - exact`; round half up puts each rounding's error in (-½, +½] LSB.
//!
//! | function | bound (vs the exact value of the same raw integers) |
//! |---|---|
//! | `dot_i16`, `dot_i8` | exact |
//! | `round_shift` | exact round half up (`shift > 0`), exact or saturated (`shift ≤ 0`) |
//! | `sat_i16`, `sat_i32` | exact clamp |
//! | `preact` (`Q15`, `W8A16`) | in (-1, +1] LSB of `pre_frac` (0 when no shift is positive), else saturated |
//! | `sigmoid` | ≤ 4.5e-5, in `[0, 32767]`, monotone |
//! | `tanh` (`h_frac` = 15) | ≤ 6e-5, in `[-32767, 32767]`, monotone, odd |
//! | `tanh` (`h_frac` < 15) | ≤ 6e-5 + ½ LSB of `h_frac` |
//! | `relu` | in (-½, +½] LSB of `h_frac`, else saturated at `i16::MAX` |
//! | `lstm_cell` | in (-1, +1] LSB of `c_frac` (two roundings), else saturated |
//! | `lstm_hidden` | ≤ 6e-5 + 2^-16 (tanh error, then ½ LSB of Q15), clamped to Q15 |
//! | `gru_candidate` | in (-½, +½] LSB of `pre_frac`, else saturated |
//! | `gru_hidden` | in (-½, +½] LSB of Q15, else saturated |

use std::cell::Cell;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tinyrnn::kernel::{dot_i16, dot_i8};
use tinyrnn::numeric::fixed_point::{round_shift, sat_i16, sat_i32};
use tinyrnn::{Elementwise, Numeric, QFormat, Q15, W8A16};

const CASES: u32 = 256;

/// Runs `test` on `CASES` values of `strategy`; `test` returns the error it measured (in the
/// unit named by `unit`). Panics with the minimal failing input; prints the largest error.
fn check<S: Strategy>(
    name: &str,
    unit: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<f64, TestCaseError>,
) -> f64 {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let worst = Cell::new(0f64);
    let result = TestRunner::new(config).run(&strategy, |value| {
        let e = test(value)?;
        worst.set(worst.get().max(e));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    eprintln!("{name}: max error {:.4e} {unit}", worst.get());
    worst.get()
}

/// Raw `i16` values, with the extremes and values near zero over-represented.
fn i16s() -> impl Strategy<Value = i16> + Clone {
    prop_oneof![
        6 => any::<i16>(),
        1 => Just(i16::MIN),
        1 => Just(i16::MAX),
        1 => i16::MIN..i16::MIN + 4,
        1 => i16::MAX - 4..=i16::MAX,
        1 => -4i16..=4,
    ]
}

fn i8s() -> impl Strategy<Value = i8> + Clone {
    prop_oneof![
        6 => any::<i8>(),
        1 => Just(i8::MIN),
        1 => Just(i8::MAX),
        1 => -2i8..=2,
    ]
}

fn i32s() -> impl Strategy<Value = i32> {
    prop_oneof![
        6 => any::<i32>(),
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        2 => -(1i32 << 20)..(1 << 20),
        1 => -64i32..=64,
    ]
}

fn i64s() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => any::<i64>(),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => i64::MIN..i64::MIN + (1 << 42),
        1 => i64::MAX - (1 << 42)..=i64::MAX,
        2 => -(1i64 << 40)..(1 << 40),
        1 => -1024i64..=1024,
    ]
}

fn clamp_i128(v: i128, lo: i128, hi: i128) -> i128 {
    v.clamp(lo, hi)
}

// ---------------------------------------------------------------------------------------------
// 1. Dot products
// ---------------------------------------------------------------------------------------------

fn naive_dot<A: Copy + Into<i128>>(w: &[A], x: &[i16]) -> i128 {
    w.iter().zip(x).map(|(&a, &b)| a.into() * b as i128).sum()
}

#[test]
fn dot_i16_is_exact() {
    check(
        "dot_i16",
        "(abs)",
        (vec(i16s(), 0..=64), vec(i16s(), 0..=64)),
        |(w, x)| {
            prop_assert_eq!(dot_i16(&w, &x) as i128, naive_dot(&w, &x));
            prop_assert_eq!(dot_i16(&x, &w), dot_i16(&w, &x));
            Ok(0.0)
        },
    );
}

#[test]
fn dot_i8_is_exact() {
    check(
        "dot_i8",
        "(abs)",
        (vec(i8s(), 0..=64), vec(i16s(), 0..=64)),
        |(w, x)| {
            prop_assert_eq!(dot_i8(&w, &x) as i128, naive_dot(&w, &x));
            Ok(0.0)
        },
    );
}

#[test]
fn dots_at_the_extremes_do_not_overflow() {
    // The largest products (MIN·MIN = 2^30) over a long row: exact in i64, no i32 overflow.
    let n = 100_000;
    let mins = vec![i16::MIN; n];
    assert_eq!(dot_i16(&mins, &mins), n as i64 * (1 << 30));
    let maxs = vec![i16::MAX; n];
    assert_eq!(dot_i16(&mins, &maxs), -(n as i64) * 32768 * 32767);
    let w8 = vec![i8::MIN; n];
    assert_eq!(dot_i8(&w8, &mins), n as i64 * 128 * 32768);
}

// ---------------------------------------------------------------------------------------------
// 2. round_shift, sat_i16, sat_i32
// ---------------------------------------------------------------------------------------------

/// `v / 2^shift` rounded half up (`shift > 0`) or `v · 2^-shift` (`shift ≤ 0`), computed in
/// `i128` and saturated to `i64`.
fn round_shift_ref(v: i64, shift: i32) -> i64 {
    let v = v as i128;
    let r = if shift > 0 {
        // |v| < 2^63 and shift ≤ 126 keep this in range; `>>` on i128 is a floor.
        (v + (1i128 << (shift - 1))) >> shift
    } else if v == 0 {
        0
    } else if -shift >= 64 {
        v.signum() * i128::MAX
    } else {
        v << -shift
    };
    clamp_i128(r, i64::MIN as i128, i64::MAX as i128) as i64
}

#[test]
fn round_shift_is_round_half_up_and_saturates() {
    check(
        "round_shift",
        "(abs)",
        (i64s(), -40i32..=40),
        |(v, shift)| {
            let got = round_shift(v, shift);
            prop_assert_eq!(
                got,
                round_shift_ref(v, shift),
                "v = {}, shift = {}",
                v,
                shift
            );
            // The same against f64 where f64 is exact (|v| < 2^52).
            if v.unsigned_abs() < 1 << 52 {
                let scaled = v as f64 * 2f64.powi(-shift);
                let expected = if shift > 0 {
                    (scaled + 0.5).floor()
                } else {
                    scaled.clamp(i64::MIN as f64, i64::MAX as f64)
                };
                prop_assert_eq!(got as f64, expected, "v = {}, shift = {}", v, shift);
            }
            Ok(0.0)
        },
    );
}

#[test]
fn round_shift_of_i32_values_matches_the_reference() {
    // The 32-bit fast paths (right shifts 1..=31, left shifts 1..=31) and their edges.
    let i32s = prop_oneof![
        4 => any::<i32>(),
        1 => Just(i32::MIN),
        1 => Just(i32::MAX),
        1 => -1024i32..=1024,
    ];
    check(
        "round_shift (i32 values)",
        "(abs)",
        (i32s, -40i32..=40),
        |(v, shift)| {
            prop_assert_eq!(
                round_shift(v as i64, shift),
                round_shift_ref(v as i64, shift),
                "v = {}, shift = {}",
                v,
                shift
            );
            Ok(0.0)
        },
    );
}

#[test]
fn round_shift_is_exact_for_any_shift() {
    // Shifts beyond ±62 (never produced by valid formats) must still round or saturate.
    check(
        "round_shift (|shift| up to 80)",
        "(abs)",
        (i64s(), -80i32..=80),
        |(v, shift)| {
            prop_assert_eq!(
                round_shift(v, shift),
                round_shift_ref(v, shift),
                "v = {}, shift = {}",
                v,
                shift
            );
            Ok(0.0)
        },
    );
}

#[test]
fn round_shift_edge_cases() {
    assert_eq!(round_shift(5, 1), 3);
    assert_eq!(round_shift(-5, 1), -2);
    assert_eq!(round_shift(i64::MAX, 1), 1 << 62); // MAX / 2 = 2^62 - 0.5 rounds up
    assert_eq!(round_shift(i64::MIN, 1), -(1 << 62));
    assert_eq!(round_shift(i64::MAX, 63), 1);
    assert_eq!(round_shift(1 << 61, 63), 0); // 0.25
    assert_eq!(round_shift(1 << 62, 63), 1); // 0.5 rounds up
    assert_eq!(round_shift(i64::MIN, 64), 0); // -0.5 rounds up to 0
    assert_eq!(round_shift(i64::MIN, 63), -1);
    assert_eq!(round_shift(1, -63), i64::MAX);
    assert_eq!(round_shift(-1, -63), i64::MIN);
    assert_eq!(round_shift(-1, -100), i64::MIN);
    assert_eq!(round_shift(0, -100), 0);
    assert_eq!(round_shift(0, 100), 0);
    assert_eq!(round_shift(5, i32::MAX), 0);
    assert_eq!(round_shift(5, i32::MIN), i64::MAX);
    assert_eq!(round_shift(-5, i32::MIN), i64::MIN);
}

#[test]
fn saturation_clamps_never_wraps() {
    check("sat_i16 / sat_i32", "(abs)", i64s(), |v| {
        let r16 = clamp_i128(v as i128, i16::MIN as i128, i16::MAX as i128);
        let r32 = clamp_i128(v as i128, i32::MIN as i128, i32::MAX as i128);
        prop_assert_eq!(sat_i16(v) as i128, r16);
        prop_assert_eq!(sat_i32(v) as i128, r32);
        Ok(0.0)
    });
}

// ---------------------------------------------------------------------------------------------
// 3. Pre-activations
// ---------------------------------------------------------------------------------------------

type Fmt = (i8, i8, i8, i8, i8); // x_frac, h_frac, pre_frac, row frac x, row frac h

/// `preact` of any fixed-point type vs the exact value of its raw integers. Returns the error in
/// LSBs of `pre_frac` (0 when saturated correctly).
#[allow(clippy::type_complexity)]
fn check_preact<N, W>(
    (bias, wx, x, wh, h, (x_frac, h_frac, pre_frac, sx, sh)): (
        i32,
        Vec<W>,
        Vec<i16>,
        Vec<W>,
        Vec<i16>,
        Fmt,
    ),
) -> Result<f64, TestCaseError>
where
    N: Numeric<Weight = W, Act = i16, Bias = i32, Pre = i32, RowScale = i8, Format = QFormat>,
    W: Copy + Into<i128>,
{
    let f = QFormat {
        x_frac,
        h_frac,
        pre_frac,
        c_frac: 12,
    };
    let got = <N as Numeric>::preact(bias, &wx, sx, &x, &wh, sh, &h, &f);

    // Exact value on a common grid of 2^-k.
    let (ex, eh, ep) = ((sx + x_frac) as u32, (sh + h_frac) as u32, pre_frac as u32);
    let k = ex.max(eh).max(ep);
    let exact = (naive_dot(&wx, &x) << (k - ex))
        + (naive_dot(&wh, &h) << (k - eh))
        + ((bias as i128) << (k - ep));
    let lsb = 1i128 << (k - ep);
    let (max, min) = ((i32::MAX as i128) * lsb, (i32::MIN as i128) * lsb);
    if exact > max {
        prop_assert_eq!(got, i32::MAX, "exact {} above i32 range", exact);
        return Ok(0.0);
    }
    if exact < min {
        prop_assert_eq!(got, i32::MIN, "exact {} below i32 range", exact);
        return Ok(0.0);
    }
    let err = got as i128 * lsb - exact;
    prop_assert!(
        -lsb < err && err <= lsb,
        "error {} LSB (got {}, exact {}/2^{})",
        err as f64 / lsb as f64,
        got,
        exact,
        k
    );
    // Both terms shifted left (or not at all): no rounding, exact.
    if ex <= ep && eh <= ep {
        prop_assert_eq!(err, 0);
    }
    // And the same in f64 terms, decoded.
    let decoded = got as f64 / 2f64.powi(pre_frac as i32);
    let exact_f64 = exact as f64 / 2f64.powi(k as i32);
    prop_assert!((decoded - exact_f64).abs() <= 2f64.powi(-(pre_frac as i32)) * (1.0 + 1e-9));
    Ok(err.abs() as f64 / lsb as f64)
}

fn preact_inputs<W: std::fmt::Debug + Clone>(
    weight: impl Strategy<Value = W> + Clone,
    row_fracs: std::ops::RangeInclusive<i8>,
) -> impl Strategy<Value = (i32, Vec<W>, Vec<i16>, Vec<W>, Vec<i16>, Fmt)> {
    (1usize..=64, 0usize..=64).prop_flat_map(move |(nx, nh)| {
        (
            i32s(),
            vec(weight.clone(), nx),
            vec(i16s(), nx),
            vec(weight.clone(), nh),
            vec(i16s(), nh),
            (
                8i8..=15,
                8i8..=15,
                8i8..=24,
                row_fracs.clone(),
                row_fracs.clone(),
            ),
        )
    })
}

#[test]
fn preact_q15_within_one_lsb() {
    let worst = check(
        "Q15 preact",
        "LSB of pre_frac",
        preact_inputs(i16s(), 8..=15),
        check_preact::<Q15, i16>,
    );
    assert!(worst <= 1.0);
}

#[test]
fn preact_w8a16_within_one_lsb() {
    let worst = check(
        "W8A16 preact",
        "LSB of pre_frac",
        preact_inputs(i8s(), 4..=10),
        check_preact::<W8A16, i8>,
    );
    assert!(worst <= 1.0);
}

// ---------------------------------------------------------------------------------------------
// 4. Activations
// ---------------------------------------------------------------------------------------------

const TANH_BOUND: f64 = 6e-5;
const SIGMOID_BOUND: f64 = 4.5e-5;

fn fmt_pre(pre_frac: i8, h_frac: i8) -> QFormat {
    QFormat {
        x_frac: 12,
        h_frac,
        pre_frac,
        c_frac: 12,
    }
}

/// `(pre_frac, v)`: `v` anywhere in `i32`, or within ±12 of zero in real terms where the
/// functions are not yet saturated.
fn activation_inputs() -> impl Strategy<Value = (i8, i32)> {
    (0i8..=24).prop_flat_map(|frac| {
        let span = (12i64 << frac).min(i32::MAX as i64) as i32;
        (Just(frac), prop_oneof![1 => i32s(), 3 => -span..=span])
    })
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn real(v: i32, frac: i8) -> f64 {
    v as f64 / 2f64.powi(frac as i32)
}

#[test]
fn sigmoid_q15_within_bound_and_range() {
    check("Q15 sigmoid", "(abs)", activation_inputs(), |(frac, v)| {
        let s = <Q15 as Elementwise>::sigmoid(v, &fmt_pre(frac, 15));
        prop_assert!((0..=32767).contains(&s));
        let err = (s as f64 / 32768.0 - sigmoid64(real(v, frac))).abs();
        prop_assert!(
            err <= SIGMOID_BOUND,
            "error {:e} at v = {}, frac = {}",
            err,
            v,
            frac
        );
        Ok(err)
    });
}

#[test]
fn tanh_q15_within_bound_range_and_odd() {
    check("Q15 tanh", "(abs)", activation_inputs(), |(frac, v)| {
        let f = fmt_pre(frac, 15);
        let t = <Q15 as Elementwise>::tanh(v, &f);
        prop_assert!((-32767..=32767).contains(&t));
        if v != i32::MIN {
            prop_assert_eq!(<Q15 as Elementwise>::tanh(-v, &f), -t);
        }
        let err = (t as f64 / 32768.0 - real(v, frac).tanh()).abs();
        prop_assert!(
            err <= TANH_BOUND,
            "error {:e} at v = {}, frac = {}",
            err,
            v,
            frac
        );
        Ok(err)
    });
}

#[test]
fn tanh_into_narrower_hidden_format() {
    // An RNN's hidden state may have h_frac < 15: tanh error plus half an LSB of h_frac.
    check(
        "Q15 tanh (h_frac < 15)",
        "(abs, minus ½ LSB of h_frac)",
        (activation_inputs(), 0i8..15),
        |((frac, v), h_frac)| {
            let t = <Q15 as Elementwise>::tanh(v, &fmt_pre(frac, h_frac));
            let half_lsb = 2f64.powi(-(h_frac as i32) - 1);
            let err = (real(t as i32, h_frac) - real(v, frac).tanh()).abs();
            prop_assert!(err <= TANH_BOUND + half_lsb, "error {:e}", err);
            Ok((err - half_lsb).max(0.0))
        },
    );
}

#[test]
fn activations_are_monotone() {
    let pairs = (0i8..=24).prop_flat_map(|frac| {
        let span = (12i64 << frac).min(i32::MAX as i64) as i32;
        let v = prop_oneof![i32s(), -span..=span];
        (
            Just(frac),
            v,
            prop_oneof![0i32..=4, 0i32..=1 << (frac as u32 / 2 + 4), any::<i32>()],
        )
    });
    check(
        "Q15 sigmoid/tanh monotone",
        "(abs)",
        pairs,
        |(frac, a, delta)| {
            let b = a.saturating_add(delta.unsigned_abs().min(i32::MAX as u32) as i32);
            let f = fmt_pre(frac, 15);
            prop_assert!(
                <Q15 as Elementwise>::sigmoid(a, &f) <= <Q15 as Elementwise>::sigmoid(b, &f)
            );
            prop_assert!(<Q15 as Elementwise>::tanh(a, &f) <= <Q15 as Elementwise>::tanh(b, &f));
            Ok(0.0)
        },
    );
}

#[test]
fn relu_within_half_lsb() {
    check(
        "Q15 relu",
        "LSB of h_frac",
        (i32s(), 0i8..=24, 0i8..=15),
        |(v, pre_frac, h_frac)| {
            let r = <Q15 as Elementwise>::relu(v, &fmt_pre(pre_frac, h_frac));
            prop_assert!(r >= 0);
            // Exact on the grid 2^-(24 + 15).
            let k = 39;
            let exact = (v.max(0) as i128) << (k - pre_frac as i32);
            let lsb = 1i128 << (k - h_frac as i32);
            if exact > i16::MAX as i128 * lsb {
                prop_assert_eq!(r, i16::MAX);
                return Ok(0.0);
            }
            let err = r as i128 * lsb - exact;
            prop_assert!(
                -lsb < 2 * err && 2 * err <= lsb,
                "relu error {} LSB",
                err as f64 / lsb as f64
            );
            Ok(err.abs() as f64 / lsb as f64)
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Cell arithmetic
// ---------------------------------------------------------------------------------------------

#[test]
fn lstm_cell_within_one_lsb_or_saturated() {
    check(
        "Q15 lstm_cell",
        "LSB of c_frac",
        (i16s(), i16s(), i16s(), i16s(), 0i8..=15),
        |(forget, c, input, cand, c_frac)| {
            let f = QFormat {
                c_frac,
                ..fmt_pre(16, 15)
            };
            let got = <Q15 as Elementwise>::lstm_cell(forget, c, input, cand, &f);
            // Exact on the grid 2^-30: f·c has 15 + c_frac fractional bits, i·g has 30.
            let exact =
                ((forget as i128 * c as i128) << (15 - c_frac)) + input as i128 * cand as i128;
            let lsb = 1i128 << (30 - c_frac);
            if exact > i16::MAX as i128 * lsb {
                prop_assert_eq!(got, i16::MAX);
                return Ok(0.0);
            }
            if exact < i16::MIN as i128 * lsb {
                prop_assert_eq!(got, i16::MIN);
                return Ok(0.0);
            }
            let err = got as i128 * lsb - exact;
            prop_assert!(
                -lsb < err && err <= lsb,
                "error {} LSB",
                err as f64 / lsb as f64
            );
            Ok(err.abs() as f64 / lsb as f64)
        },
    );
}

#[test]
fn lstm_hidden_within_tanh_bound_plus_half_lsb() {
    let bound = TANH_BOUND + 2f64.powi(-16);
    check(
        "Q15 lstm_hidden",
        "(abs)",
        (i16s(), i16s(), 0i8..=15),
        |(output, c, c_frac)| {
            let f = QFormat {
                c_frac,
                ..fmt_pre(16, 15)
            };
            let got = <Q15 as Elementwise>::lstm_hidden(output, c, &f);
            let exact = (output as f64 / 32768.0) * real(c as i32, c_frac).tanh();
            // o = -1 and tanh = -1 give exactly 1, which Q15 can't hold: clamp.
            let exact = exact.clamp(-1.0, 32767.0 / 32768.0);
            let err = (got as f64 / 32768.0 - exact).abs();
            prop_assert!(err <= bound, "error {:e}", err);
            Ok(err)
        },
    );
}

#[test]
fn gru_candidate_within_half_lsb_or_saturated() {
    check(
        "Q15 gru_candidate",
        "LSB of pre_frac",
        (i32s(), i16s(), i32s()),
        |(x_part, reset, h_part)| {
            let got = <Q15 as Elementwise>::gru_candidate(x_part, reset, h_part, &fmt_pre(16, 15));
            // Exact on the grid 2^-(pre + 15).
            let exact = ((x_part as i128) << 15) + reset as i128 * h_part as i128;
            let lsb = 1i128 << 15;
            if exact > i32::MAX as i128 * lsb {
                prop_assert_eq!(got, i32::MAX);
                return Ok(0.0);
            }
            if exact < i32::MIN as i128 * lsb {
                prop_assert_eq!(got, i32::MIN);
                return Ok(0.0);
            }
            let err = got as i128 * lsb - exact;
            prop_assert!(
                -lsb < 2 * err && 2 * err <= lsb,
                "error {} LSB",
                err as f64 / lsb as f64
            );
            Ok(err.abs() as f64 / lsb as f64)
        },
    );
}

#[test]
fn gru_hidden_within_half_lsb_or_saturated() {
    check(
        "Q15 gru_hidden",
        "LSB of Q15",
        (i16s(), i16s(), i16s()),
        |(update, cand, h_prev)| {
            let got = <Q15 as Elementwise>::gru_hidden(update, cand, h_prev, &fmt_pre(16, 15));
            // (1 - z)·n + z·h on the grid 2^-30.
            let z = update as i128;
            let exact = ((1i128 << 15) - z) * cand as i128 + z * h_prev as i128;
            let lsb = 1i128 << 15;
            if exact > i16::MAX as i128 * lsb {
                prop_assert_eq!(got, i16::MAX);
                return Ok(0.0);
            }
            if exact < i16::MIN as i128 * lsb {
                prop_assert_eq!(got, i16::MIN);
                return Ok(0.0);
            }
            let err = got as i128 * lsb - exact;
            prop_assert!(
                -lsb < 2 * err && 2 * err <= lsb,
                "error {} LSB",
                err as f64 / lsb as f64
            );
            // A gate in [0, 1] interpolates: the result stays between n and h.
            if update >= 0 {
                prop_assert!(got >= cand.min(h_prev) && got <= cand.max(h_prev));
            }
            Ok(err.abs() as f64 / lsb as f64)
        },
    );
}
