//! The portable kernels: plain Rust, the definition every other implementation must match bit
//! for bit.

/// `a · b + c` as every `f32` path defines it: rounded once (a fused multiply-add) on x86-64
/// hosts built with FMA (cfg `tinyrnn_fused_f32`, e.g. `-C target-cpu=native`), rounded after
/// the multiply and after the add everywhere else (every Cortex-M target, the default host
/// build). So all paths of one build give the same bits, and an FMA build differs from the
/// others only by those roundings (`f32` results are compared with a tolerance across builds
/// and targets, never bit for bit).
#[inline(always)]
pub fn mul_add(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(tinyrnn_fused_f32)]
    return wide::f32x4::splat(a)
        .mul_add(wide::f32x4::splat(b), wide::f32x4::splat(c))
        .to_array()[0];
    #[cfg(not(tinyrnn_fused_f32))]
    return a * b + c;
}

/// `f32` arithmetic in one lane (`f32` itself) or in several (the host's vectors,
/// `kernel::host`), every lane rounding exactly as scalar `f32` does: code written once over
/// `F32Lanes` gives, lane by lane, the bits it gives for `f32`.
pub trait F32Lanes:
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
    /// [`mul_add`]`(self, a, b)` in every lane.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// `f` of every lane.
    fn map(self, f: impl Fn(f32) -> f32) -> Self;
}

impl F32Lanes for f32 {
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
        mul_add(self, a, b)
    }

    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> f32 {
        f(self)
    }
}

/// Independent partial sums in [`dot_f32`]: enough to hide the add latency and to fill two
/// 4-lane SIMD registers on the host.
pub(crate) const F32_LANES: usize = 8;

/// `Σ w[k] · x[k]` in `f32`, each term added by [`mul_add`].
///
/// Element `k` goes to partial sum `k mod 8`; the partial sums are added pairwise in a fixed
/// order at the end. The order is part of the definition (no reassociation by the compiler), so
/// host and targets produce identical bits, and the independent sums let the host vectorise.
#[inline(always)]
pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    let (w_blocks, x_blocks) = (w.chunks_exact(F32_LANES), x.chunks_exact(F32_LANES));
    let tail = sum_in_order(w_blocks.remainder(), x_blocks.remainder());
    let mut lanes = [0f32; F32_LANES];
    for (w, x) in w_blocks.zip(x_blocks) {
        for ((lane, w), x) in lanes.iter_mut().zip(w).zip(x) {
            *lane = mul_add(*w, *x, *lane);
        }
    }
    let [a, b, c, d, e, f, g, h] = lanes;
    ((a + e) + (b + f)) + ((c + g) + (d + h)) + tail
}

/// The elements of `dot_f32` past its last full block: `((0 + w₀x₀) + w₁x₁) + …`.
#[inline(always)]
pub(crate) fn sum_in_order(w: &[f32], x: &[f32]) -> f32 {
    w.iter()
        .zip(x)
        .fold(0.0, |acc, (&w, &x)| mul_add(w, x, acc))
}

/// `Σ w[k] · x[k]` of 16-bit weights and activations, exact in `i64`.
///
/// Each product fits in 31 bits; an `i64` sum of fewer than 2³² of them cannot overflow.
#[inline(always)]
pub fn dot_i16(w: &[i16], x: &[i16]) -> i64 {
    w.iter()
        .zip(x)
        .fold(0i64, |acc, (&w, &x)| acc + product_i16(w, x))
}

/// `w · x` as an `i64`, in the form each core multiplies fastest: cores with a long
/// multiply-accumulate (`SMLAL`) take the 64-bit product directly; on Cortex-M0 that would be a
/// library call, so there the exact `i32` product is widened.
#[inline(always)]
fn product_i16(w: i16, x: i16) -> i64 {
    #[cfg(not(tinyrnn_no_long_multiply))]
    return w as i64 * x as i64;
    #[cfg(tinyrnn_no_long_multiply)]
    return (w as i32 * x as i32) as i64;
}

/// Terms an `i32` can sum exactly: each `i8 · i16` product is at most 2²² in magnitude, and 511 · 2²² < 2³¹.
pub(crate) const I8_BLOCK: usize = (1 << 9) - 1;

/// `Σ w[k] · x[k]` of 8-bit weights and 16-bit activations, exact.
///
/// Each product fits in 23 bits, so blocks of 511 products are summed in `i32` (cheap on every
/// core: one `MLA`, or `MULS` + `ADDS` on Cortex-M0, per term) and only the block sums are
/// widened to `i64`: exact for any slice length.
#[inline(always)]
pub fn dot_i8(w: &[i8], x: &[i16]) -> i64 {
    w.chunks(I8_BLOCK)
        .zip(x.chunks(I8_BLOCK))
        .map(|(w, x)| {
            w.iter()
                .zip(x)
                .fold(0i32, |acc, (&w, &x)| acc + w as i32 * x as i32) as i64
        })
        .sum()
}

/// Terms per fixed-size block of [`dot_i8_in_blocks_of_32`].
const UNROLLED: usize = 32;

/// [`dot_i8`] as fixed-size blocks of 32 terms when the row length is a multiple of 32 (up to
/// one i32 block): the same exact sum, shaped so that LLVM unrolls every block completely for
/// any such length (by itself it does so only for short rows). On Cortex-M0 that keeps long rows
/// as cheap per term as short ones (no loop overhead), at the price of stack slots for the
/// activations that LLVM hoists out of the unit loop. Other
/// lengths (a layer's few inputs) take [`dot_i8`].
#[inline(always)]
pub fn dot_i8_in_blocks_of_32(w: &[i8], x: &[i16]) -> i64 {
    let n = w.len();
    if n != x.len() || !n.is_multiple_of(UNROLLED) || n > I8_BLOCK {
        return dot_i8(w, x);
    }
    // n ≤ I8_BLOCK terms: the i32 sum is exact (see `I8_BLOCK`).
    let mut acc = 0i32;
    for (w, x) in w.chunks_exact(UNROLLED).zip(x.chunks_exact(UNROLLED)) {
        if let (Ok(w), Ok(x)) = (
            <&[i8; UNROLLED]>::try_from(w),
            <&[i16; UNROLLED]>::try_from(x),
        ) {
            for (&w, &x) in w.iter().zip(x) {
                acc += w as i32 * x as i32;
            }
        }
    }
    acc as i64
}

/// [`dot_i16`] as fixed-size blocks of 32 terms when the row length is a multiple of 32, as
/// [`dot_i8_in_blocks_of_32`] does for 8-bit weights.
#[inline(always)]
pub fn dot_i16_in_blocks_of_32(w: &[i16], x: &[i16]) -> i64 {
    let n = w.len();
    if n != x.len() || !n.is_multiple_of(UNROLLED) {
        return dot_i16(w, x);
    }
    let mut acc = 0i64;
    for (w, x) in w.chunks_exact(UNROLLED).zip(x.chunks_exact(UNROLLED)) {
        if let (Ok(w), Ok(x)) = (
            <&[i16; UNROLLED]>::try_from(w),
            <&[i16; UNROLLED]>::try_from(x),
        ) {
            for (&w, &x) in w.iter().zip(x) {
                acc += (w as i32 * x as i32) as i64;
            }
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_match_naive() {
        let w16: [i16; 5] = [i16::MAX, i16::MIN, 3, -7, 100];
        let x16: [i16; 5] = [i16::MAX, i16::MIN, -9, 11, -100];
        let naive: i64 = w16
            .iter()
            .zip(&x16)
            .map(|(a, b)| *a as i64 * *b as i64)
            .sum();
        assert_eq!(dot_i16(&w16, &x16), naive);
        let w8: [i8; 3] = [i8::MIN, i8::MAX, -1];
        assert_eq!(dot_i8(&w8, &x16[..3]), -128 * 32767 + 127 * -32768 + 9);
        assert_eq!(dot_f32(&[1.0, 2.0, 3.0], &[4.0, 5.0]), 14.0);
        // Longer than one i32 block, every product at its extreme: still exact.
        let w = [i8::MIN; 3 * I8_BLOCK + 7];
        let x = [i16::MIN; 3 * I8_BLOCK + 7];
        assert_eq!(dot_i8(&w, &x), (3 * I8_BLOCK + 7) as i64 * (1 << 22));
        // Past one i32 block it defers to `dot_i8`; at the block's limit the i32 sum is exact.
        assert_eq!(dot_i8_in_blocks_of_32(&w, &x), dot_i8(&w, &x));
        assert_eq!(
            dot_i8_in_blocks_of_32(&w[..480], &x[..480]),
            480 * (1 << 22)
        );
        let extreme = [i16::MIN; 64];
        assert_eq!(dot_i16_in_blocks_of_32(&extreme, &extreme), 64 << 30);
    }

    proptest::proptest! {
        #[test]
        fn dot_i8_in_blocks_of_32_equals_dot_i8(
            w in proptest::collection::vec(proptest::num::i8::ANY, 0..600),
            x in proptest::collection::vec(proptest::num::i16::ANY, 0..600),
        ) {
            proptest::prop_assert_eq!(dot_i8_in_blocks_of_32(&w, &x), dot_i8(&w, &x));
            // Lengths that are multiples of 32 take the blocks.
            let n = w.len().min(x.len()) / 32 * 32;
            proptest::prop_assert_eq!(
                dot_i8_in_blocks_of_32(&w[..n], &x[..n]),
                dot_i8(&w[..n], &x[..n])
            );
        }

        #[test]
        fn dot_i16_in_blocks_of_32_equals_dot_i16(
            w in proptest::collection::vec(proptest::num::i16::ANY, 0..200),
            x in proptest::collection::vec(proptest::num::i16::ANY, 0..200),
        ) {
            proptest::prop_assert_eq!(dot_i16_in_blocks_of_32(&w, &x), dot_i16(&w, &x));
            let n = w.len().min(x.len()) / 32 * 32;
            proptest::prop_assert_eq!(
                dot_i16_in_blocks_of_32(&w[..n], &x[..n]),
                dot_i16(&w[..n], &x[..n])
            );
        }
    }
}
