//! Fixed-point arithmetic: [`Q15`] (16-bit weights) and [`W8A16`] (8-bit weights), both with
//! 16-bit activations and state, integer-only and bit-identical on every target.
//!
//! # Formats
//!
//! Every tensor has a power-of-two scale: a raw integer `q` with `frac` fractional bits stands
//! for `q / 2^frac` (the `fixed` crate's `FixedI16<U{frac}>`). A layer's [`QFormat`] names the
//! formats of its input (`x_frac`), hidden state (`h_frac`, 15 except for a `relu` RNN), gate
//! pre-activations and biases (`pre_frac`, an `i32`) and LSTM cell state (`c_frac`, an `i16`
//! with more integer bits than `h`). Each weight row has its own format ([`RowScale`], the
//! `frac` of that row): per-tensor scales simply repeat one value. Gate outputs (sigmoid, tanh)
//! are Q15 (`frac` = 15).
//!
//! # Arithmetic
//!
//! * Dot products accumulate exactly in `i64` ([`kernel::dot_i16`](crate::kernel::dot_i16)).
//! * Rescaling uses **round half up**: `(v + 2^(s-1)) >> s` (arithmetic shift). The same
//!   [`round_shift`] is used everywhere.
//! * Every narrowing **saturates** to the destination type's range; nothing wraps.
//! * A pre-activation is `sat_i32(round_shift(w_x·x, fx - pre) + round_shift(w_h·h, fh - pre) +
//!   bias)`: at most 1 LSB of `pre_frac` of rounding error beyond the weights' own.
//!
//! # Error bounds (each rounding contributes an error in `(-½, +½]` LSB)
//!
//! | operation | max error vs the exact value of its integer operands |
//! |---|---|
//! | `preact` | (−1, +1] LSB of `pre_frac` (exact when no shift is positive) |
//! | `sigmoid` / `tanh` (Q15) | 4.5e-5 / 6e-5 ([`activation::fixed`](crate::activation::fixed)) |
//! | `tanh` into `h_frac < 15` | 6e-5 + ½ LSB of `h_frac` |
//! | `relu` | ½ LSB of `h_frac` |
//! | `lstm_cell` | (−1, +1] LSB of `c_frac` |
//! | `lstm_hidden` | 6e-5 + 2⁻¹⁶ |
//! | `gru_candidate` | ½ LSB of `pre_frac` |
//! | `gru_hidden` | ½ LSB of Q15 |
//!
//! Out-of-range results saturate to the correct end of the range. The property tests in
//! `core/tests/fixed_point_props.rs` hold every row of this table.
//!
//! No floating-point operation occurs in these paths.

use core::marker::PhantomData;

use super::{Elementwise, Numeric, Schedule};
use crate::activation::fixed::{sigmoid_q15, tanh_q15};
use crate::kernel::{dot_i16, dot_i16_rows, dot_i8, dot_i8_rows};

/// Fractional bits of one weight row.
pub type RowScale = i8;

/// The fixed-point formats of one layer (or head), as fractional-bit counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QFormat {
    /// Input (`i16`) fractional bits: the model input's format for layer 0, the previous
    /// layer's `h_frac` above it.
    pub x_frac: i8,
    /// Hidden state (`i16`) fractional bits: 15 for LSTM, GRU and tanh RNN.
    pub h_frac: i8,
    /// Gate pre-activation and bias (`i32`) fractional bits; for a head, its outputs' format.
    pub pre_frac: i8,
    /// LSTM cell state (`i16`) fractional bits.
    pub c_frac: i8,
}

impl QFormat {
    /// Checks that every field is within what the kernels support: `x_frac`, `h_frac`, `c_frac`
    /// in `0..=15`, `pre_frac` in `0..=24`. Returns the first offending field.
    pub fn validate(&self) -> Result<(), crate::ShapeError> {
        for (field, value, max) in [
            ("x_frac", self.x_frac, 15),
            ("h_frac", self.h_frac, 15),
            ("c_frac", self.c_frac, 15),
            ("pre_frac", self.pre_frac, 24),
        ] {
            if !(0..=max).contains(&value) {
                return Err(crate::ShapeError::Format {
                    field,
                    value: value as i32,
                });
            }
        }
        Ok(())
    }
}

/// `v / 2^shift` rounded half up (`shift > 0`), or `v · 2^-shift` saturated (`shift < 0`).
#[inline(always)]
pub fn round_shift(v: i64, shift: i32) -> i64 {
    // Common case first, in 32-bit arithmetic: Cortex-M0/M3 have no 64-bit shifts, and nearly
    // every rescaling the kernels do is of an `i32`-sized value by 1..=31 bits. Rounding half up
    // is `⌊v / 2^s⌋` plus bit `s - 1` of `v`, which cannot overflow (unlike adding 2^(s-1)
    // first). Same result as the general case below.
    let narrow = v as i32;
    if narrow as i64 == v {
        if (1..=31).contains(&shift) {
            return round_half_up_narrow(narrow, shift) as i64;
        }
        if (-31..=-1).contains(&shift) {
            // A left shift of an i32 by at most 31 bits stays below 2^62: no saturation. Built
            // from two 32-bit shifts, because a variable 64-bit shift is a library call on
            // Cortex-M0/M3 (w8a16 layers take this path for the input part of every row).
            let s = shift.unsigned_abs();
            let low = (narrow as u32) << s;
            let high = narrow >> (32 - s);
            return ((high as i64) << 32) | low as i64;
        }
    }
    if shift >= 64 {
        // |v / 2^shift| ≤ 1/2, and -1/2 rounds up to 0.
        0
    } else if shift > 0 {
        let s = shift as u32;
        match v.checked_add(1i64 << (s - 1)) {
            Some(t) => t >> s,
            // Only when v ≥ 2^63 - 2^(s-1): then the dropped bits are ≥ 2^(s-1), round up.
            None => (v >> s) + 1,
        }
    } else if shift == 0 || v == 0 {
        v
    } else {
        let s = shift.unsigned_abs().min(63);
        if s == 63 || v.unsigned_abs() > (i64::MAX >> s) as u64 {
            if v < 0 {
                i64::MIN
            } else {
                i64::MAX
            }
        } else {
            v << s
        }
    }
}

/// `v / 2^shift` rounded half up, for `shift` in `1..=31`: `⌊v / 2^s⌋` plus bit `s - 1` of `v`,
/// which cannot overflow (unlike adding 2^(s-1) first).
#[inline(always)]
fn round_half_up_narrow(v: i32, shift: i32) -> i32 {
    let above_half = v >> (shift - 1);
    (above_half >> 1) + (above_half & 1)
}

/// `round_shift(a · b, 15)` for an `i16` and an `i32`.
///
/// Cores with a long multiply (`SMULL`) form the `i64` product. On Cortex-M0, where that is a
/// library call, [`mul_round_q15_split`] gives the same value from two 32-bit products.
#[inline(always)]
pub fn mul_round_q15(a: i16, b: i32) -> i64 {
    #[cfg(tinyrnn_no_long_multiply)]
    return mul_round_q15_split(a, b);
    #[cfg(not(tinyrnn_no_long_multiply))]
    return round_shift(a as i64 * b as i64, 15);
}

/// [`mul_round_q15`] without a 64-bit multiply.
///
/// With `b = high·2¹⁶ + low` (`low` in `0..2¹⁶`), `a·high·2¹⁶` is a multiple of 2¹⁵, so only
/// `a·low` needs rounding: the result is `2·a·high + ⌊(a·low + 2¹⁴) / 2¹⁵⌋`. Both products are
/// exact in `i32`: `|a·high| ≤ 2³⁰`, and `a·low + 2¹⁴` lies within ±(2³¹ − 2¹⁵).
#[inline(always)]
pub fn mul_round_q15_split(a: i16, b: i32) -> i64 {
    let (from_high, rounded_low) = mul_round_q15_halves(a, b);
    2 * from_high as i64 + rounded_low as i64
}

/// The two exact `i32` parts of [`mul_round_q15_split`]: `(a·high, ⌊(a·low + 2¹⁴) / 2¹⁵⌋)`,
/// whose `2·first + second` is `round_shift(a · b, 15)`.
#[inline(always)]
fn mul_round_q15_halves(a: i16, b: i32) -> (i32, i32) {
    let a = a as i32;
    let (high, low) = (b >> 16, b & 0xFFFF);
    (a * high, (a * low + (1 << 14)) >> 15)
}

/// A pre-activation from its exact dot products: `sat_i32(round_shift(dot_x, shift_x) +
/// round_shift(dot_h, shift_h) + bias)`, the shifts from the rows' scales and `f`; the rare
/// 64-bit case inline (`WIDE_INLINE`) or as a call.
#[inline(always)]
fn preact_from_dots<const WIDE_INLINE: bool>(
    bias: i32,
    dot_x: i64,
    scale_x: i8,
    dot_h: i64,
    scale_h: i8,
    f: &QFormat,
) -> i32 {
    let pre = f.pre_frac as i32;
    let (shift_x, shift_h) = (
        scale_x as i32 + f.x_frac as i32 - pre,
        scale_h as i32 + f.h_frac as i32 - pre,
    );
    if let Some(pre) = preact_narrow(dot_x, shift_x, dot_h, shift_h, bias) {
        return pre;
    }
    if WIDE_INLINE {
        preact_wide(bias, dot_x, shift_x, dot_h, shift_h)
    } else {
        preact_wide_out_of_line(bias, dot_x, shift_x, dot_h, shift_h)
    }
}

/// The pre-activation of a row with one dot product (the GRU's `n_x` and `n_h` rows, whose other
/// part is empty): [`preact_from_dots`] with the other dot product 0, which rescales to 0 at
/// every shift, so only `sat_i32(round_shift(dot, shift) + bias)` is left to compute.
#[inline(always)]
fn preact_from_one_dot(bias: i32, dot: i64, scale: i8, act_frac: i8, f: &QFormat) -> i32 {
    let shift = scale as i32 + act_frac as i32 - f.pre_frac as i32;
    match round_shift_narrow(dot, shift).and_then(|v| v.checked_add(bias)) {
        Some(pre) => pre,
        None => one_dot_wide(bias, dot, shift),
    }
}

/// The 64-bit definition of [`preact_from_one_dot`], for the rare rows its 32-bit path declines.
#[cold]
#[inline(never)]
fn one_dot_wide(bias: i32, dot: i64, shift: i32) -> i32 {
    sat_i32(round_shift(dot, shift).saturating_add(bias as i64))
}

/// [`preact_wide`] as a cold call: after fused dot products the rescaling of a unit's rows is a
/// loop, which LLVM unrolls only while its body stays small. (One row at a time, the inline
/// version is cheaper.)
#[cold]
#[inline(never)]
fn preact_wide_out_of_line(bias: i32, dot_x: i64, shift_x: i32, dot_h: i64, shift_h: i32) -> i32 {
    preact_wide(bias, dot_x, shift_x, dot_h, shift_h)
}

/// The 64-bit definition of a pre-activation, for the rare rows `preact_narrow` declines.
#[inline(always)]
fn preact_wide(bias: i32, dot_x: i64, shift_x: i32, dot_h: i64, shift_h: i32) -> i32 {
    let from_x = round_shift(dot_x, shift_x);
    let from_h = round_shift(dot_h, shift_h);
    if shift_x >= 0 && shift_h >= 0 {
        // Right shifts only never grow a dot product, and a dot product of slices shorter
        // than 2^31 is below 2^61 in magnitude: the plain i64 sum is exact.
        sat_i32(from_x + from_h + bias as i64)
    } else if from_x as i32 as i64 == from_x && from_h as i32 as i64 == from_h {
        // A left-shifted term that fits in i32 did not saturate, and three i32 values add
        // exactly in i64 (w8a16 input parts land here: cheap compares instead of two
        // 64-bit saturating additions).
        sat_i32(from_x + from_h + bias as i64)
    } else {
        // A left shift may have saturated a term to the i64 range.
        sat_i32(from_x.saturating_add(from_h).saturating_add(bias as i64))
    }
}

/// `round_shift(v, shift)` when `v`, the shift and the result all fit 32-bit arithmetic
/// (`|shift| ≤ 31`, no overflow of a left shift); `None` otherwise.
#[inline(always)]
pub fn round_shift_narrow(v: i64, shift: i32) -> Option<i32> {
    let narrow = v as i32;
    if narrow as i64 != v {
        return None;
    }
    if (1..=31).contains(&shift) {
        Some(round_half_up_narrow(narrow, shift))
    } else if (-31..=0).contains(&shift) {
        let s = shift.unsigned_abs();
        let shifted = narrow << s;
        // Exact when shifting back restores v (no significant bit left the word).
        (shifted >> s == narrow).then_some(shifted)
    } else {
        None
    }
}

/// A pre-activation `sat_i32(round_shift(dot_x, shift_x) + round_shift(dot_h, shift_h) + bias)`
/// in 32-bit arithmetic, when that is exact: both rescaled terms fit an `i32` and the sum does
/// not overflow one (then saturation is the identity). `None` sends the caller to the 64-bit
/// definition. Nearly every row takes this path; on Cortex-M0 it avoids about seventy
/// instructions of 64-bit adds, compares and saturation per row.
#[inline(always)]
pub fn preact_narrow(dot_x: i64, shift_x: i32, dot_h: i64, shift_h: i32, bias: i32) -> Option<i32> {
    let from_h = round_shift_narrow(dot_h, shift_h)?;
    let from_x = round_shift_narrow(dot_x, shift_x)?;
    from_h.checked_add(bias)?.checked_add(from_x)
}

/// `sat_i32(x_part + round_shift(reset · h_part, 15))` in 32-bit arithmetic, when that is
/// exact: with `h_part = high·2¹⁶ + low`, the rounded product is `2·reset·high +
/// ⌊(reset·low + 2¹⁴) / 2¹⁵⌋` ([`mul_round_q15_split`]), whose parts are exact `i32`s, and the
/// checked sums are the exact value whenever none overflows (then saturation is the identity).
/// `None` sends the caller to the 64-bit definition; the product of a GRU's reset gate and
/// `h_part` is nearly always above 2³¹, where the 64-bit product took the long way on every core.
#[inline(always)]
pub fn gru_candidate_narrow(x_part: i32, reset: i16, h_part: i32) -> Option<i32> {
    let (from_high, rounded_low) = mul_round_q15_halves(reset, h_part);
    from_high
        .checked_add(from_high)?
        .checked_add(rounded_low)?
        .checked_add(x_part)
}

/// The 64-bit definition of the GRU candidate's pre-activation, for the inputs
/// [`gru_candidate_narrow`] declines.
#[inline(always)]
fn gru_candidate_wide(x_part: i32, reset: i16, h_part: i32) -> i32 {
    sat_i32(x_part as i64 + mul_round_q15(reset, h_part))
}

/// Saturates to `i32`.
#[inline(always)]
pub fn sat_i32(v: i64) -> i32 {
    // Test "fits" first: one compare of the high word on 32-bit cores.
    let narrow = v as i32;
    if narrow as i64 == v {
        narrow
    } else if v < 0 {
        i32::MIN
    } else {
        i32::MAX
    }
}

/// Saturates to `i16`.
#[inline(always)]
pub fn sat_i16(v: i64) -> i16 {
    v.clamp(i16::MIN as i64, i16::MAX as i64) as i16
}

/// A fixed-point weight element (`i16` or `i8`) and its exact dot product with `i16`
/// activations.
pub trait FixedWeight: Copy + Default + PartialEq + core::fmt::Debug + 'static {
    /// Whether [`dot_rows`](FixedWeight::dot_rows) shares work between rows on this target, so
    /// that cells should hand it a unit's gate rows together.
    const FUSES_ROWS: bool = false;

    /// `Σ w[k]·x[k]`, exact.
    fn dot(w: &[Self], x: &[i16]) -> i64;

    /// [`dot`](FixedWeight::dot) of `G` rows with the same `x`. Exact, so any evaluation order
    /// gives the same values.
    #[inline(always)]
    fn dot_rows<const G: usize>(w: [&[Self]; G], x: &[i16]) -> [i64; G] {
        let mut out = [0; G];
        for (out, w) in out.iter_mut().zip(w) {
            *out = Self::dot(w, x);
        }
        out
    }
}

impl FixedWeight for i16 {
    /// On Cortex-M3, two or three rows share each activation load
    /// ([`kernel::dot_i16_rows`](crate::kernel::dot_i16_rows)).
    const FUSES_ROWS: bool = cfg!(tinyrnn_asm_armv7m);

    #[inline(always)]
    fn dot(w: &[i16], x: &[i16]) -> i64 {
        dot_i16(w, x)
    }

    #[inline(always)]
    fn dot_rows<const G: usize>(w: [&[i16]; G], x: &[i16]) -> [i64; G] {
        dot_i16_rows(w, x)
    }
}

impl FixedWeight for i8 {
    /// With the DSP extension, and with `asm` on Cortex-M0 and M3, a unit's rows share each
    /// activation's load (and pairing) ([`kernel::dot_i8_rows`](crate::kernel::dot_i8_rows)).
    const FUSES_ROWS: bool = cfg!(any(tinyrnn_asm_dsp, tinyrnn_asm_armv6m, tinyrnn_asm_armv7m));

    #[inline(always)]
    fn dot(w: &[i8], x: &[i16]) -> i64 {
        dot_i8(w, x)
    }

    #[inline(always)]
    fn dot_rows<const G: usize>(w: [&[i8]; G], x: &[i16]) -> [i64; G] {
        dot_i8_rows(w, x)
    }
}

/// Fixed-point arithmetic with weights of type `W`; see the module doc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fixed<W>(PhantomData<W>);

/// 16-bit weights, 16-bit activations and state, `i32` pre-activations.
pub type Q15 = Fixed<i16>;

/// 8-bit weights (half the flash of [`Q15`]), 16-bit activations and state.
pub type W8A16 = Fixed<i8>;

impl<W: FixedWeight> Elementwise for Fixed<W> {
    type Act = i16;
    type Pre = i32;
    type Cell = i16;
    type Format = QFormat;

    #[inline(always)]
    fn sigmoid(pre: i32, f: &QFormat) -> i16 {
        sigmoid_q15(pre, f.pre_frac as i32)
    }

    #[inline(always)]
    fn tanh(pre: i32, f: &QFormat) -> i16 {
        // Gate outputs are Q15; an RNN hidden state with h_frac < 15 is rescaled.
        sat_i16(round_shift(
            tanh_q15(pre, f.pre_frac as i32) as i64,
            15 - f.h_frac.clamp(0, 15) as i32,
        ))
    }

    #[inline(always)]
    fn relu(pre: i32, f: &QFormat) -> i16 {
        sat_i16(round_shift(
            pre.max(0) as i64,
            f.pre_frac as i32 - f.h_frac as i32,
        ))
    }

    #[inline(always)]
    fn gru_candidate(x_part: i32, reset: i16, h_part: i32, _: &QFormat) -> i32 {
        gru_candidate_narrow(x_part, reset, h_part)
            .unwrap_or_else(|| gru_candidate_wide(x_part, reset, h_part))
    }

    #[inline(always)]
    fn gru_hidden(update: i16, candidate: i16, h_prev: i16, _: &QFormat) -> i16 {
        // (1 - z) n + z h = n + z (h - n): one multiply. |z · (h - n)| ≤ 2^15 · (2^16 - 1) < 2^31,
        // so the product is exact in i32 (no 64-bit multiply on Cortex-M0).
        let d = h_prev as i32 - candidate as i32;
        sat_i16(candidate as i64 + round_shift((update as i32 * d) as i64, 15))
    }

    #[inline(always)]
    fn lstm_cell(forget: i16, c: i16, input: i16, candidate: i16, f: &QFormat) -> i16 {
        // i16 · i16 products are exact in i32.
        let kept = round_shift((forget as i32 * c as i32) as i64, 15);
        let added = round_shift(
            (input as i32 * candidate as i32) as i64,
            30 - f.c_frac as i32,
        );
        sat_i16(kept + added)
    }

    #[inline(always)]
    fn lstm_hidden(output: i16, c: i16, f: &QFormat) -> i16 {
        let t = tanh_q15(c as i32, f.c_frac as i32);
        sat_i16(round_shift((output as i32 * t as i32) as i64, 15))
    }
}

impl<W: FixedWeight> Numeric for Fixed<W> {
    type Weight = W;
    type Bias = i32;
    type RowScale = RowScale;

    #[inline(always)]
    fn preact(
        bias: i32,
        w_x: &[W],
        scale_x: i8,
        x: &[i16],
        w_h: &[W],
        scale_h: i8,
        h: &[i16],
        f: &QFormat,
    ) -> i32 {
        let dot_h = W::dot(w_h, h);
        let dot_x = W::dot(w_x, x);
        preact_from_dots::<true>(bias, dot_x, scale_x, dot_h, scale_h, f)
    }
}

/// Rows fused where the weight type's dot products share work between rows
/// ([`FixedWeight::FUSES_ROWS`]); one unit at a time.
impl<W: FixedWeight> Schedule for Fixed<W> {
    const FUSES_ROWS: bool = W::FUSES_ROWS;

    #[inline(always)]
    fn preact_rows<const G: usize>(
        bias: &[i32; G],
        w_x: [&[W]; G],
        scale_x: &[i8; G],
        x: &[i16],
        w_h: [&[W]; G],
        scale_h: &[i8; G],
        h: &[i16],
        f: &QFormat,
    ) -> [i32; G] {
        let dots_h = W::dot_rows(w_h, h);
        let dots_x = W::dot_rows(w_x, x);
        core::array::from_fn(|g| {
            preact_from_dots::<false>(bias[g], dots_x[g], scale_x[g], dots_h[g], scale_h[g], f)
        })
    }

    #[inline(always)]
    fn gru_preacts(
        bias: &[i32; 4],
        w_x: [&[W]; 3],
        scale_x: &[i8; 3],
        x: &[i16],
        w_h: [&[W]; 3],
        scale_h: &[i8; 3],
        h: &[i16],
        f: &QFormat,
    ) -> [i32; 4] {
        // As `gru_preacts_one_by_one`: the n_x row has no h part and n_h no x part (an empty
        // dot product, 0).
        let [b_r, b_z, b_in, b_hn] = *bias;
        let dots_h = W::dot_rows(w_h, h);
        let dots_x = W::dot_rows(w_x, x);
        [
            preact_from_dots::<false>(b_r, dots_x[0], scale_x[0], dots_h[0], scale_h[0], f),
            preact_from_dots::<false>(b_z, dots_x[1], scale_x[1], dots_h[1], scale_h[1], f),
            preact_from_one_dot(b_in, dots_x[2], scale_x[2], f.x_frac, f),
            preact_from_one_dot(b_hn, dots_h[2], scale_h[2], f.h_frac, f),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_shift_rounds_half_up_and_saturates() {
        assert_eq!(round_shift(5, 1), 3); // 2.5 -> 3
        assert_eq!(round_shift(-5, 1), -2); // -2.5 -> -2 (half up)
        assert_eq!(round_shift(-6, 1), -3);
        assert_eq!(round_shift(7, 0), 7);
        assert_eq!(round_shift(3, -2), 12);
        assert_eq!(round_shift(i64::MAX / 2, -4), i64::MAX);
        assert_eq!(round_shift(i64::MIN / 2, -4), i64::MIN);
        assert_eq!(round_shift(i64::MAX, 1), 1 << 62); // 2^62 - 0.5 rounds up, no wrap
        assert_eq!(round_shift(1 << 61, 63), 0); // 0.25
        assert_eq!(round_shift(1, -63), i64::MAX);
        assert_eq!(sat_i16(40_000), i16::MAX);
        assert_eq!(sat_i32(-(1 << 40)), i32::MIN);
    }

    /// The 64-bit definition, written plainly, that `preact_narrow` must reproduce whenever it
    /// answers.
    fn preact_reference(dot_x: i64, shift_x: i32, dot_h: i64, shift_h: i32, bias: i32) -> i32 {
        let (from_x, from_h) = (round_shift(dot_x, shift_x), round_shift(dot_h, shift_h));
        sat_i32(from_x.saturating_add(from_h).saturating_add(bias as i64))
    }

    #[test]
    fn preact_narrow_edges() {
        // Rounding half up on the narrow path.
        assert_eq!(preact_narrow(5, 1, -5, 1, 0), Some(3 - 2));
        // A left shift that leaves the word, a sum that overflows, a wide dot, a huge shift:
        // all go to the 64-bit path.
        assert_eq!(preact_narrow(1 << 30, -2, 0, 0, 0), None);
        assert_eq!(preact_narrow(i32::MAX as i64, 0, 1, 0, 0), None);
        assert_eq!(preact_narrow(1 << 40, 8, 0, 0, 0), None);
        assert_eq!(preact_narrow(1, 40, 0, 0, 0), None);
        assert_eq!(preact_narrow(-1, -31, 0, 0, 0), Some(i32::MIN));
    }

    proptest::proptest! {
        #[test]
        fn preact_narrow_matches_the_64_bit_definition(
            dot_x in proptest::prop_oneof![
                -(1i64 << 31)..(1i64 << 31), -(1i64 << 12)..(1i64 << 12), proptest::num::i64::ANY
            ],
            dot_h in proptest::prop_oneof![
                -(1i64 << 31)..(1i64 << 31), -(1i64 << 12)..(1i64 << 12), proptest::num::i64::ANY
            ],
            shift_x in -40i32..40,
            shift_h in -40i32..40,
            bias in proptest::num::i32::ANY,
        ) {
            if let Some(pre) = preact_narrow(dot_x, shift_x, dot_h, shift_h, bias) {
                proptest::prop_assert_eq!(
                    pre,
                    preact_reference(dot_x, shift_x, dot_h, shift_h, bias)
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn one_dot_preact_matches_the_64_bit_definition(
            dot in proptest::prop_oneof![
                -(1i64 << 31)..(1i64 << 31), -(1i64 << 12)..(1i64 << 12), proptest::num::i64::ANY
            ],
            scale in proptest::num::i8::ANY,
            act_frac in 0i8..16,
            pre_frac in 0i8..32,
            bias in proptest::num::i32::ANY,
        ) {
            let f = QFormat { x_frac: act_frac, h_frac: act_frac, pre_frac, c_frac: 11 };
            let shift = scale as i32 + act_frac as i32 - pre_frac as i32;
            proptest::prop_assert_eq!(
                preact_from_one_dot(bias, dot, scale, act_frac, &f),
                preact_reference(dot, shift, 0, 0, bias)
            );
        }
    }

    proptest::proptest! {
        /// The fused paths (rows' dot products together, then each row rescaled) give every row
        /// the value of its own `preact`, for both weight types.
        #[test]
        fn fused_rows_equal_one_preact_per_row(
            w8 in proptest::collection::vec(proptest::num::i8::ANY, 4 * 40),
            w16 in proptest::collection::vec(proptest::num::i16::ANY, 4 * 40),
            x in proptest::collection::vec(proptest::num::i16::ANY, 40),
            bias in proptest::array::uniform4(proptest::num::i32::ANY),
            scales in proptest::array::uniform4(-4i8..12),
            (split, x_frac, pre_frac) in (0usize..40, 8i8..15, 8i8..24),
        ) {
            let f = QFormat { x_frac, h_frac: 15, pre_frac, c_frac: 11 };
            let (xs, hs) = x.split_at(split);
            check_fused::<i8>(&w8, xs, hs, &bias, &scales, &f)?;
            check_fused::<i16>(&w16, xs, hs, &bias, &scales, &f)?;
        }
    }

    fn check_fused<W: FixedWeight>(
        w: &[W],
        x: &[i16],
        h: &[i16],
        bias: &[i32; 4],
        scales: &[i8; 4],
        f: &QFormat,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let (n_x, n_h) = (x.len(), h.len());
        let rows_x: [&[W]; 4] = core::array::from_fn(|g| &w[g * 40..g * 40 + n_x]);
        let rows_h: [&[W]; 4] = core::array::from_fn(|g| &w[g * 40 + n_x..g * 40 + n_x + n_h]);
        let scales_h = scales.map(|s| s - 1);
        let fused = Fixed::<W>::preact_rows::<4>(bias, rows_x, scales, x, rows_h, &scales_h, h, f);
        let by_row = crate::numeric::preact_rows_one_by_one::<Fixed<W>, 4>(
            bias, rows_x, scales, x, rows_h, &scales_h, h, f,
        );
        proptest::prop_assert_eq!(fused, by_row);
        let [sx, sh] = [scales, &scales_h].map(|s| [s[0], s[1], s[2]]);
        let (gx, gh) = (
            [rows_x[0], rows_x[1], rows_x[2]],
            [rows_h[0], rows_h[1], rows_h[2]],
        );
        proptest::prop_assert_eq!(
            Fixed::<W>::gru_preacts(bias, gx, &sx, x, gh, &sh, h, f),
            crate::numeric::gru_preacts_one_by_one::<Fixed<W>>(bias, gx, &sx, x, gh, &sh, h, f)
        );
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn gru_candidate_narrow_matches_the_64_bit_definition(
            x_part in proptest::prop_oneof![
                proptest::num::i32::ANY, -(1i32 << 24)..(1i32 << 24), proptest::strategy::Just(i32::MIN)
            ],
            reset in proptest::prop_oneof![
                proptest::num::i16::ANY, proptest::strategy::Just(i16::MIN), 0i16..=i16::MAX
            ],
            h_part in proptest::prop_oneof![
                proptest::num::i32::ANY, -(1i32 << 26)..(1i32 << 26), proptest::strategy::Just(i32::MIN)
            ],
        ) {
            let definition = sat_i32(x_part as i64 + round_shift(reset as i64 * h_part as i64, 15));
            if let Some(narrow) = gru_candidate_narrow(x_part, reset, h_part) {
                proptest::prop_assert_eq!(narrow, definition);
            }
            let f = QFormat { x_frac: 12, h_frac: 15, pre_frac: 12, c_frac: 11 };
            proptest::prop_assert_eq!(Q15::gru_candidate(x_part, reset, h_part, &f), definition);
        }
    }

    #[test]
    fn gru_candidate_extremes() {
        // The one product whose rounded value is 2^31 (reset = h_part high half = -2^15), the
        // saturating ends and ordinary values: the narrow path declines or agrees, and the
        // result is always the definition's.
        let f = QFormat {
            x_frac: 12,
            h_frac: 15,
            pre_frac: 12,
            c_frac: 11,
        };
        for x_part in [i32::MIN, -1, 0, 1, i32::MAX] {
            for reset in [i16::MIN, -1, 0, 1, i16::MAX] {
                for h_part in [
                    i32::MIN,
                    i32::MIN + 1,
                    -65536,
                    -1,
                    0,
                    1,
                    65535,
                    65536,
                    i32::MAX,
                ] {
                    let definition =
                        sat_i32(x_part as i64 + round_shift(reset as i64 * h_part as i64, 15));
                    assert_eq!(
                        Q15::gru_candidate(x_part, reset, h_part, &f),
                        definition,
                        "x_part = {x_part}, reset = {reset}, h_part = {h_part}"
                    );
                }
            }
        }
        assert_eq!(gru_candidate_narrow(0, i16::MIN, i32::MIN), None);
    }

    #[test]
    fn mul_round_q15_split_equals_the_64_bit_product() {
        let extremes_a = [i16::MIN, i16::MIN + 1, -1, 0, 1, i16::MAX];
        let extremes_b = [
            i32::MIN,
            i32::MIN + 1,
            -65536,
            -65535,
            -1,
            0,
            1,
            65535,
            65536,
            i32::MAX,
        ];
        let mut pairs: Vec<(i16, i32)> = extremes_a
            .iter()
            .flat_map(|&a| extremes_b.iter().map(move |&b| (a, b)))
            .collect();
        let mut v: u64 = 1;
        for _ in 0..200_000 {
            v = v
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            pairs.push(((v >> 48) as i16, (v >> 8) as i32 >> (v % 32)));
        }
        for (a, b) in pairs {
            assert_eq!(
                mul_round_q15_split(a, b),
                round_shift(a as i64 * b as i64, 15),
                "a = {a}, b = {b}"
            );
        }
    }

    #[test]
    fn format_validation_names_the_field() {
        let ok = QFormat {
            x_frac: 12,
            h_frac: 15,
            pre_frac: 12,
            c_frac: 11,
        };
        assert!(ok.validate().is_ok());
        let bad = QFormat { pre_frac: 30, ..ok };
        assert_eq!(
            bad.validate(),
            Err(crate::ShapeError::Format {
                field: "pre_frac",
                value: 30
            })
        );
    }
}
