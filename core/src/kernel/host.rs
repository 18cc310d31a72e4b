//! Host kernels (x86-64 and AArch64 with a desktop or server OS, cfg `tinyrnn_host_simd`): `f32`
//! in SIMD vectors of the `wide` crate (SSE on x86-64, AVX with `-C target-cpu=native`, NEON on
//! AArch64).
//!
//! [`dot_f32_rows`] computes [`portable::dot_f32`](super::portable::dot_f32) of up to four
//! rows at once and returns its bits exactly: the eight partial sums of a row are one 8-lane
//! vector, the final pairwise additions run on the transposed sums (one lane per row), and the
//! tail is summed in order, one lane per row. Only the schedule changes: each load of the
//! shared vector serves every row, and the rows' reductions share their shuffles. Every term is
//! added by the definition's multiply-add ([`portable::mul_add`](super::portable::mul_add):
//! fused in x86-64 builds with FMA, as everywhere in that build).
//!
//! [`dot_f32_eight_units`] computes the gate rows of eight units at once, one lane per unit,
//! from weights in a lane layout; `f32x8` implements [`F32Lanes`], so the `f32` activations and
//! state updates, written once over lanes, run on eight units as one vector per gate.

use wide::{f32x4, f32x8};

use super::portable::{F32Lanes, F32_LANES};

/// Four lanes of `f32` arithmetic, each rounding like scalar `f32`.
impl F32Lanes for f32x4 {
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

    /// Fused only where [`portable::mul_add`](super::portable::mul_add) is: `wide` would fuse
    /// on AArch64 too.
    #[inline(always)]
    fn mul_add(self, a: f32x4, b: f32x4) -> f32x4 {
        #[cfg(tinyrnn_fused_f32)]
        return f32x4::mul_add(self, a, b);
        #[cfg(not(tinyrnn_fused_f32))]
        return self * a + b;
    }

    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> f32x4 {
        f32x4::from(self.to_array().map(f))
    }
}

/// Eight lanes, each rounding like scalar `f32`: one AVX vector, or two of four lanes.
impl F32Lanes for f32x8 {
    #[inline(always)]
    fn splat(v: f32) -> f32x8 {
        f32x8::splat(v)
    }

    #[inline(always)]
    fn clamp_magnitude(self, limit: f32) -> f32x8 {
        let (low, high) = (f32x8::splat(-limit), f32x8::splat(limit));
        // As for `f32x4`: VMAXPS/VMINPS (and each SSE/NEON half) keep a NaN `self`.
        #[cfg(any(target_feature = "sse", target_feature = "neon"))]
        return high.fast_min(low.fast_max(self));
        #[cfg(not(any(target_feature = "sse", target_feature = "neon")))]
        return self.is_nan().bitselect(self, self.max(low).min(high));
    }

    /// As for `f32x4`.
    #[inline(always)]
    fn mul_add(self, a: f32x8, b: f32x8) -> f32x8 {
        #[cfg(tinyrnn_fused_f32)]
        return f32x8::mul_add(self, a, b);
        #[cfg(not(tinyrnn_fused_f32))]
        return self * a + b;
    }

    #[inline(always)]
    fn map(self, f: impl Fn(f32) -> f32) -> f32x8 {
        f32x8::from(self.to_array().map(f))
    }
}

/// `dot_f32` of the `G` gate rows of eight units with `v`, lane = unit, bit for bit, from
/// weights in the lane layout (one 8-lane vector per input and gate; the cells keep it in
/// `cell::EightUnitLanes`).
/// Lane `u` of partial sum `l` adds unit `u`'s terms `l, l + 8, …` in order, the partial sums
/// combine as `((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7))` and the tail adds in order
/// from 0: the operations of `portable::dot_f32`, each row in its own lane, with no reduction
/// across lanes. `None` when `w` is not 32-byte aligned or not `G · 8` weights per input.
#[inline(always)]
pub fn dot_f32_eight_units<const G: usize>(w: &[f32], v: &[f32]) -> Option<[f32x8; G]> {
    let w: &[f32x8] = wide::bytemuck::try_cast_slice(w).ok()?;
    let (w, []) = w.as_chunks::<G>() else {
        return None;
    };
    let n = w.len().min(v.len());
    let (w_blocks, w_tail) = w[..n].as_chunks::<F32_LANES>();
    let (v_blocks, v_tail) = v[..n].as_chunks::<F32_LANES>();
    let mut partial = [[f32x8::ZERO; G]; F32_LANES];
    for (l, partial) in partial.iter_mut().enumerate() {
        // A local accumulator: LLVM keeps it in registers across the blocks (accumulating in
        // `partial` itself stored it back after every block).
        let mut sum = [f32x8::ZERO; G];
        for (w, v) in w_blocks.iter().zip(v_blocks) {
            let x = f32x8::splat(v[l]);
            for (sum, &w) in sum.iter_mut().zip(&w[l]) {
                *sum = F32Lanes::mul_add(w, x, *sum);
            }
        }
        *partial = sum;
    }
    let mut sums = [f32x8::ZERO; G];
    for (g, sum) in sums.iter_mut().enumerate() {
        let s = |l: usize| partial[l][g];
        *sum = ((s(0) + s(4)) + (s(1) + s(5))) + ((s(2) + s(6)) + (s(3) + s(7)));
    }
    let mut tail = [f32x8::ZERO; G];
    for (w, &v) in w_tail.iter().zip(v_tail) {
        let x = f32x8::splat(v);
        for (t, &w) in tail.iter_mut().zip(w) {
            *t = F32Lanes::mul_add(w, x, *t);
        }
    }
    for (sum, tail) in sums.iter_mut().zip(tail) {
        *sum += tail;
    }
    Some(sums)
}

/// Vector `g` holds gate `g` of the four units (a 4 × 4 transpose).
#[inline(always)]
fn gates_of_four(pre: &[[f32; 4]; 4]) -> [f32x4; 4] {
    let [a, b, c, d] = *pre;
    f32x4::transpose([a.into(), b.into(), c.into(), d.into()])
}

/// Vector `g` holds gate `g` of the eight units (two 4 × 4 transposes).
#[inline(always)]
pub fn gates_of_eight(pre: &[[f32; 4]; 8]) -> [f32x8; 4] {
    let [a, b, c, d, e, f, g, h] = *pre;
    let low = gates_of_four(&[a, b, c, d]);
    let high = gates_of_four(&[e, f, g, h]);
    let join = |k: usize| wide::bytemuck::cast::<[f32x4; 2], f32x8>([low[k], high[k]]);
    [join(0), join(1), join(2), join(3)]
}

/// The block loop of [`dot_f32_rows`] for rows that all start at 16-byte boundaries, read as
/// `f32x4` pairs: SSE multiplies take a memory operand only when it is aligned, so every weight
/// load then folds into its multiply. Returns `false`, doing nothing, when a row is not aligned
/// (and with AVX, whose multiplies take unaligned operands anyway).
#[inline(always)]
fn accumulate_aligned<const G: usize>(
    lanes: &mut [f32x8; G],
    rows: [&[[f32; F32_LANES]]; G],
    v_blocks: &[[f32; F32_LANES]],
) -> bool {
    if cfg!(target_feature = "avx") {
        return false;
    }
    let mut aligned: [&[[f32x4; 2]]; G] = [&[]; G];
    for (aligned, row) in aligned.iter_mut().zip(rows) {
        match wide::bytemuck::try_cast_slice(row) {
            Ok(row) => *aligned = row,
            Err(_) => return false,
        }
    }
    for (b, x) in v_blocks.iter().enumerate() {
        let x = f32x8::from(*x);
        for (lanes, row) in lanes.iter_mut().zip(&aligned) {
            let w = wide::bytemuck::cast::<[f32x4; 2], f32x8>(row[b]);
            *lanes = F32Lanes::mul_add(w, x, *lanes);
        }
    }
    true
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
    if !accumulate_aligned(&mut lanes, rows.map(|(blocks, _)| blocks), v_blocks) {
        for (b, x) in v_blocks.iter().enumerate() {
            let x = f32x8::from(*x);
            for (lanes, (blocks, _)) in lanes.iter_mut().zip(&rows) {
                *lanes = F32Lanes::mul_add(f32x8::from(blocks[b]), x, *lanes);
            }
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
            tail = F32Lanes::mul_add(w, f32x4::splat(x), tail);
        }
    }
    for (k, &x) in v_rest.iter().enumerate() {
        let mut w = [0f32; 4];
        for (w, (_, row_rest)) in w.iter_mut().zip(&row_quads) {
            *w = row_rest[k];
        }
        tail = F32Lanes::mul_add(f32x4::from(w), f32x4::splat(x), tail);
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
        // Rows at 16-byte boundaries (the aligned block loop) and one `f32` past them (the
        // unaligned one), in storage whose alignment is known.
        for offset in [0, 1] {
            for len in 0..=41 {
                let v = values(1, len);
                let mut storage = vec![[f32x4::ZERO; 16]; 4];
                let r: Vec<&[f32]> = storage
                    .iter_mut()
                    .zip(2..)
                    .map(|(buffer, seed)| {
                        let buffer: &mut [f32] = wide::bytemuck::cast_slice_mut(&mut buffer[..]);
                        let row = &mut buffer[offset..offset + len];
                        row.copy_from_slice(&values(seed, len));
                        &*row
                    })
                    .collect();
                let expect = |g: usize| dot_f32(r[g], &v).to_bits();
                let four = dot_f32_rows([r[0], r[1], r[2], r[3]], &v);
                let three = dot_f32_rows([r[0], r[1], r[2]], &v);
                let one = dot_f32_rows([r[3]], &v);
                let at = format!("offset {offset}, len {len}");
                for (g, got) in four.iter().enumerate() {
                    assert_eq!(got.to_bits(), expect(g), "{at}, row {g} of 4");
                }
                for (g, got) in three.iter().enumerate() {
                    assert_eq!(got.to_bits(), expect(g), "{at}, row {g} of 3");
                }
                assert_eq!(one[0].to_bits(), expect(3), "{at}, one row");
            }
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
