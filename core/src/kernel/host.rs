//! Host kernels (every target with an operating system): the `f32` gate rows of a unit in
//! SIMD vectors of the `wide` crate (SSE on x86-64, AVX with `-C target-cpu=native`, NEON on
//! AArch64, plain lanes elsewhere).
//!
//! [`dot_f32_rows`] computes [`portable::dot_f32`](super::portable::dot_f32) of up to four
//! rows at once and returns its bits exactly: the eight partial sums of a row are one 8-lane
//! vector, the final pairwise additions run on the transposed sums (one lane per row), and the
//! tail is summed in order, one lane per row. Only the schedule changes: each load of the shared vector serves every
//! row, and the rows' reductions share their shuffles. No fused multiply-add is used on any
//! build, so the default and the native builds give the same bits.
//!
//! The cells use these kernels four units at a time (`Numeric::UPDATES_FOUR_UNITS`): the
//! units' activations then run as one 4-lane vector per gate (`FloatActivation::lstm_units`).

use wide::{f32x4, f32x8};

use super::portable::F32_LANES;
use crate::activation::float::TanhLanes;

/// Four lanes of `f32` arithmetic, each rounding like scalar `f32` (no fused multiply-add).
impl TanhLanes for f32x4 {
    #[inline(always)]
    fn splat(v: f32) -> f32x4 {
        f32x4::splat(v)
    }

    #[inline(always)]
    fn clamp_magnitude(self, limit: f32) -> f32x4 {
        let (low, high) = (f32x4::splat(-limit), f32x4::splat(limit));
        // SSE's MAXPS/MINPS return their second operand when either is NaN, and NEON's
        // FMAX/FMIN return NaN: with `self` second, a NaN lane stays NaN in one instruction each.
        #[cfg(any(target_feature = "sse", target_feature = "neon"))]
        return high.fast_min(low.fast_max(self));
        // Elsewhere `max`/`min` return the other operand for a NaN lane; put the NaN back.
        #[cfg(not(any(target_feature = "sse", target_feature = "neon")))]
        return self.is_nan().bitselect(self, self.max(low).min(high));
    }
}

/// `[dot_f32(rows[0], v), …, dot_f32(rows[G-1], v)]` for `G ≤ 4`, bit for bit (see the module
/// documentation). Rows longer or shorter than `v` are cut to the shortest length, as if every
/// slice had that length.
#[inline(always)]
pub fn dot_f32_rows<const G: usize>(rows: [&[f32]; G], v: &[f32]) -> [f32; G] {
    const { assert!(G <= 4, "one lane per row: at most four rows") };
    let n = rows.iter().fold(v.len(), |n, row| n.min(row.len()));
    let (v_blocks, v_tail) = v[..n].as_chunks::<F32_LANES>();
    let rows = rows.map(|row| row[..n].as_chunks::<F32_LANES>());
    // The eight partial sums of a row, lane k as in `portable::dot_f32`: one AVX vector, or
    // two SSE/NEON vectors (`wide` splits an `f32x8` where the target has no 8-lane unit).
    let mut lanes = [f32x8::ZERO; G];
    for (b, x) in v_blocks.iter().enumerate() {
        let x = f32x8::from(*x);
        for (lanes, (blocks, _)) in lanes.iter_mut().zip(&rows) {
            *lanes += f32x8::from(blocks[b]) * x;
        }
    }
    // Per row: s = [a+e, b+f, c+g, d+h]; transposed, lane g of `t[k]` is row g's s[k], and
    // (t0 + t1) + (t2 + t3) is `((a+e) + (b+f)) + ((c+g) + (d+h))` for every row at once.
    let mut s = [f32x4::ZERO; 4];
    for (s, lanes) in s.iter_mut().zip(lanes) {
        let [low, high]: [f32x4; 2] = wide::bytemuck::cast(lanes);
        *s = low + high;
    }
    let [t0, t1, t2, t3] = f32x4::transpose(s);
    // The tail, in order from 0.0: lane g accumulates row g's `w[k]·v[k]`, k ascending. Four
    // terms at a time, the rows' next four weights are loaded as vectors and transposed into
    // one vector per term; then one term at a time.
    let mut tail = f32x4::ZERO;
    let (v_quads, v_rest) = v_tail.as_chunks::<4>();
    let row_quads = rows.map(|(_, row_tail)| row_tail.as_chunks::<4>());
    for (q, x) in v_quads.iter().enumerate() {
        let mut w = [f32x4::ZERO; 4];
        for (w, (quads, _)) in w.iter_mut().zip(&row_quads) {
            *w = f32x4::from(quads[q]);
        }
        for (w, &x) in f32x4::transpose(w).into_iter().zip(x) {
            tail += w * f32x4::splat(x);
        }
    }
    for (k, &x) in v_rest.iter().enumerate() {
        let mut w = [0f32; 4];
        for (w, (_, row_rest)) in w.iter_mut().zip(&row_quads) {
            *w = row_rest[k];
        }
        tail += f32x4::from(w) * f32x4::splat(x);
    }
    let sums = (((t0 + t1) + (t2 + t3)) + tail).to_array();
    let mut out = [0f32; G];
    out.copy_from_slice(&sums[..G]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::portable::dot_f32;

    /// Values with every kind of rounding: mixed signs and magnitudes.
    fn values(seed: u32, len: usize) -> Vec<f32> {
        (0..len as u32)
            .map(|k| {
                let u = (seed.wrapping_mul(2654435761) ^ k.wrapping_mul(40503)).rotate_left(k % 31);
                (u as i32 as f32) * 2f32.powi((k % 17) as i32 - 40)
            })
            .collect()
    }

    #[test]
    fn rows_match_dot_f32_bit_for_bit() {
        for len in 0..=41 {
            let v = values(1, len);
            let r: Vec<Vec<f32>> = (2..6).map(|s| values(s, len)).collect();
            let expect = |g: usize| dot_f32(&r[g], &v).to_bits();
            let four = dot_f32_rows([&r[0][..], &r[1], &r[2], &r[3]], &v);
            let three = dot_f32_rows([&r[0][..], &r[1], &r[2]], &v);
            let one = dot_f32_rows([&r[3][..]], &v);
            for (g, got) in four.iter().enumerate() {
                assert_eq!(got.to_bits(), expect(g), "len {len}, row {g} of 4");
            }
            for (g, got) in three.iter().enumerate() {
                assert_eq!(got.to_bits(), expect(g), "len {len}, row {g} of 3");
            }
            assert_eq!(one[0].to_bits(), expect(3), "len {len}, one row");
        }
    }

    #[test]
    fn unequal_lengths_cut_to_the_shortest() {
        let (v, long) = (values(7, 20), values(8, 30));
        let out = dot_f32_rows([&long[..], &long[..13]], &v);
        assert_eq!(out[0].to_bits(), dot_f32(&long[..13], &v[..13]).to_bits());
        assert_eq!(out[1].to_bits(), out[0].to_bits());
    }
}
