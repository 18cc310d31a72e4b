//! Fixed-point sigmoid and tanh: a 513-entry Q15 table of `tanh` over `[0, 8]` in steps of
//! 1/64, linear interpolation, odd symmetry, and `sigmoid(x) = (1 + tanh(x/2)) / 2`.
//!
//! Inputs are raw `i32` values with `frac` fractional bits (any `frac` in `0..=24`); outputs are
//! Q15 `i16`. Integer-only and deterministic.
//!
//! | function | max abs error (vs `f64`, over the whole `i32` input range) |
//! |---|---|
//! | [`tanh_q15`] | ≤ 6e-5 (≈ 2 LSB of Q15) |
//! | [`sigmoid_q15`] | ≤ 4.5e-5 |
//!
//! Linear interpolation with step `h = 1/64` contributes at most `h²/8 · max|tanh''| ≈ 2.4e-5`;
//! the table's and the result's rounding at most 1.5e-5 each; the input's conversion to 16
//! fractional bits at most 7.6e-6. The tests in this file measure the bounds.

/// `round(tanh(k / 64) · 32768)` for `k = 0..=512`, saturated at 32767 (the table was generated
/// with `f64`; `table_matches_tanh` re-checks every entry).
pub const TANH_TABLE: [i16; 513] = [
    0, 512, 1024, 1535, 2045, 2555, 3063, 3570, 4075, 4578, 5079, 5577, 6073, 6566, 7056, 7542,
    8025, 8505, 8980, 9452, 9919, 10382, 10840, 11294, 11743, 12186, 12625, 13058, 13486, 13909,
    14326, 14737, 15143, 15542, 15936, 16324, 16706, 17082, 17452, 17816, 18173, 18525, 18870,
    19209, 19542, 19869, 20189, 20504, 20813, 21115, 21411, 21702, 21986, 22265, 22538, 22804,
    23066, 23321, 23571, 23815, 24054, 24287, 24516, 24738, 24956, 25168, 25376, 25578, 25776,
    25969, 26157, 26340, 26519, 26694, 26864, 27029, 27191, 27348, 27502, 27651, 27797, 27938,
    28076, 28211, 28341, 28469, 28592, 28713, 28830, 28944, 29055, 29163, 29268, 29370, 29470,
    29566, 29660, 29751, 29840, 29926, 30010, 30091, 30170, 30247, 30322, 30394, 30465, 30533,
    30600, 30664, 30727, 30788, 30847, 30904, 30960, 31014, 31067, 31118, 31167, 31215, 31262,
    31307, 31351, 31394, 31435, 31476, 31515, 31553, 31589, 31625, 31659, 31693, 31726, 31757,
    31788, 31817, 31846, 31874, 31901, 31928, 31953, 31978, 32002, 32025, 32048, 32070, 32091,
    32112, 32132, 32151, 32170, 32188, 32206, 32223, 32240, 32256, 32271, 32287, 32301, 32316,
    32329, 32343, 32356, 32368, 32381, 32392, 32404, 32415, 32426, 32436, 32447, 32456, 32466,
    32475, 32484, 32493, 32501, 32509, 32517, 32525, 32532, 32540, 32547, 32553, 32560, 32566,
    32573, 32579, 32584, 32590, 32596, 32601, 32606, 32611, 32616, 32620, 32625, 32629, 32634,
    32638, 32642, 32646, 32649, 32653, 32657, 32660, 32663, 32667, 32670, 32673, 32676, 32678,
    32681, 32684, 32686, 32689, 32691, 32694, 32696, 32698, 32700, 32702, 32704, 32706, 32708,
    32710, 32712, 32714, 32715, 32717, 32718, 32720, 32721, 32723, 32724, 32726, 32727, 32728,
    32729, 32731, 32732, 32733, 32734, 32735, 32736, 32737, 32738, 32739, 32740, 32741, 32741,
    32742, 32743, 32744, 32745, 32745, 32746, 32747, 32747, 32748, 32749, 32749, 32750, 32750,
    32751, 32751, 32752, 32752, 32753, 32753, 32754, 32754, 32755, 32755, 32755, 32756, 32756,
    32757, 32757, 32757, 32758, 32758, 32758, 32759, 32759, 32759, 32759, 32760, 32760, 32760,
    32760, 32761, 32761, 32761, 32761, 32762, 32762, 32762, 32762, 32762, 32762, 32763, 32763,
    32763, 32763, 32763, 32763, 32764, 32764, 32764, 32764, 32764, 32764, 32764, 32764, 32765,
    32765, 32765, 32765, 32765, 32765, 32765, 32765, 32765, 32765, 32765, 32766, 32766, 32766,
    32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766, 32766,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767,
];

/// Fractional bits of the table's input grid (1/64).
const STEP_BITS: i32 = 6;
/// Fractional bits used for interpolation.
const INTERP_BITS: i32 = 16;

/// `tanh(v / 2^frac)` in Q15.
#[inline(always)]
pub fn tanh_q15(v: i32, frac: i32) -> i16 {
    let u = interpolation_input(v.unsigned_abs(), frac);
    let y: i32 = if u >= SATURATE {
        32767
    } else {
        let u = u as i32;
        let index = (u >> (INTERP_BITS - STEP_BITS)) as usize;
        let rem = u & ((1 << (INTERP_BITS - STEP_BITS)) - 1);
        let (Some(&lo), Some(&hi)) = (TANH_TABLE.get(index), TANH_TABLE.get(index + 1)) else {
            return if v < 0 { -32767 } else { 32767 };
        };
        let (lo, hi) = (lo as i32, hi as i32);
        let half = 1 << (INTERP_BITS - STEP_BITS - 1);
        lo + (((hi - lo) * rem + half) >> (INTERP_BITS - STEP_BITS))
    };
    (if v < 0 { -y } else { y }) as i16
}

/// `|x|` = 8.0 with 16 fractional bits: the table's end, where tanh saturates
/// (tanh(8) = 1 - 2.3e-7).
const SATURATE: u32 = 8 << INTERP_BITS;

/// `magnitude / 2^frac` with 16 fractional bits, rounded half up, or [`SATURATE`] if that is
/// 8.0 or more.
///
/// The same value as `round_shift(magnitude, frac - 16)` (capped), in 32-bit arithmetic only:
/// a `u64` shift is a library call on Cortex-M0, and this runs for every gate.
#[inline(always)]
fn interpolation_input(magnitude: u32, frac: i32) -> u32 {
    let shift = frac - INTERP_BITS;
    if shift <= 0 {
        // Exact left shift: 8.0 is 2^19 after the shift, so it is reached from 2^(19 - s).
        let s = shift.unsigned_abs();
        if magnitude == 0 {
            0
        } else if s >= 19 || magnitude >= SATURATE >> s {
            SATURATE
        } else {
            magnitude << s
        }
    } else {
        // Round half up: ⌊m / 2^s⌋ plus bit s - 1 of m; a shift past every bit leaves 0.
        match magnitude.checked_shr(shift as u32 - 1) {
            Some(above_half) => ((above_half >> 1) + (above_half & 1)).min(SATURATE),
            None => 0,
        }
    }
}

/// `sigmoid(v / 2^frac)` in Q15 (never negative, at most 32767).
#[inline(always)]
pub fn sigmoid_q15(v: i32, frac: i32) -> i16 {
    // sigmoid(x) = (1 + tanh(x / 2)) / 2; halving x is one more fractional bit.
    let t = tanh_q15(v, frac + 1) as i32;
    ((32768 + t + 1) >> 1).min(32767) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid64(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn interpolation_input_matches_round_shift() {
        use crate::numeric::fixed_point::round_shift;
        let mut v: u32 = 0;
        let mut values = vec![0, 1, 2, 3, (1 << 19) - 1, 1 << 19, u32::MAX >> 1, 1 << 31];
        for _ in 0..2000 {
            // A cheap deterministic spread over every magnitude.
            v = v.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            values.push(v >> (v % 32));
        }
        for frac in -4..=40 {
            for &m in values.iter().filter(|&&m| m <= 1 << 31) {
                let reference = round_shift(m as i64, frac - INTERP_BITS).min(SATURATE as i64);
                assert_eq!(
                    interpolation_input(m, frac) as i64,
                    reference,
                    "m = {m}, frac = {frac}"
                );
            }
        }
    }

    #[test]
    fn table_matches_tanh() {
        for (k, &t) in TANH_TABLE.iter().enumerate() {
            let exact = ((k as f64 / 64.0).tanh() * 32768.0).round().min(32767.0);
            assert_eq!(t as f64, exact, "entry {k}");
        }
    }

    /// Max error over every input of a dense raw grid, for several formats.
    fn max_error(f: impl Fn(i32, i32) -> i16, exact: impl Fn(f64) -> f64) -> f64 {
        let mut worst = 0f64;
        for frac in [0, 8, 11, 12, 15, 20, 24] {
            let scale = (1i64 << frac) as f64;
            let span = (12.0 * scale) as i64;
            let step = (span / 200_000).max(1);
            let mut v = -span;
            while v <= span {
                let got = f(v as i32, frac) as f64 / 32768.0;
                worst = worst.max((got - exact(v as f64 / scale)).abs());
                v += step;
            }
            for v in [i32::MIN, i32::MIN + 1, i32::MAX, -1, 0, 1] {
                let got = f(v, frac) as f64 / 32768.0;
                worst = worst.max((got - exact(v as f64 / scale)).abs());
            }
        }
        worst
    }

    #[test]
    fn tanh_error_bound() {
        let e = max_error(tanh_q15, f64::tanh);
        eprintln!("tanh_q15 max error {e:.3e}");
        assert!(e <= 6e-5, "tanh max error {e}");
    }

    #[test]
    fn sigmoid_error_bound() {
        let e = max_error(sigmoid_q15, sigmoid64);
        eprintln!("sigmoid_q15 max error {e:.3e}");
        assert!(e <= 4.5e-5, "sigmoid max error {e}");
    }

    #[test]
    fn odd_and_monotone() {
        let mut prev = i16::MIN;
        for v in (-(1 << 20)..(1 << 20)).step_by(97) {
            let t = tanh_q15(v, 16);
            assert_eq!(t, -tanh_q15(-v, 16));
            assert!(t >= prev);
            prev = t;
        }
    }
}
