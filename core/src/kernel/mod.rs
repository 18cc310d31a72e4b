//! Slice kernels: the inner loops every cell and head spend their time in.
//!
//! Generic cell code forwards here, so code size does not grow with every `(I, H)` pair. All
//! functions zip their operands: extra elements of the longer slice are ignored, which keeps the
//! loops free of bounds checks and panics. This module is a leaf: it uses nothing else of the
//! crate.
//!
//! [`portable`] defines every kernel in plain Rust; every other implementation returns
//! **identical bits** (the integer dot products are exact either way, and the `f32` one performs
//! the same roundings in the same order, see [`dot_f32`]). The others, one file per instruction
//! set, each compiled only where its cfg (set by `core/build.rs`) says the target has it:
//!
//! | file | target | cfg | kernels |
//! |---|---|---|---|
//! | `arm_dsp.rs` | ARMv7E-M, ARMv8-M Mainline with `+dsp` (Cortex-M4/M7/M33), feature `asm` | `tinyrnn_asm_dsp` | q15 and w8a16 dot products, w8a16 gate rows 2–4 per pass |
//! | `arm_fpu.rs` | Arm `*eabihf` targets (single-precision FPU), feature `asm` | `tinyrnn_asm_fpu` | `f32` dot product; 2–4 `f32` gate rows per pass |
//! | `armv6m.rs` | ARMv6-M (Cortex-M0/M0+), feature `asm` | `tinyrnn_asm_armv6m` | q15 dot product; w8a16 gate rows 2–4 per pass |
//! | `armv7m.rs` | ARMv7-M without DSP (Cortex-M3), feature `asm` | `tinyrnn_asm_armv7m` | q15 and w8a16 gate rows 2–4 per pass |
//! | `host.rs` | x86-64 and AArch64 with a desktop or server OS | `tinyrnn_host_simd` | `f32` lanes (`wide` vectors): gate rows, eight units at a time |
//!
//! On Cortex-M0 (and ARMv8-M Baseline) without the `asm` feature the integer dot products run
//! as fixed-size blocks of 32 terms (`portable::*_in_blocks_of_32`), the same exact sums in a
//! shape LLVM unrolls completely at every hidden size. The fused `f32` gate rows of FPU cores
//! sum each row in order — the one place where a target's `f32` rounding differs from the
//! host's. The firmware's self-test checks every Arm kernel against its definition on every
//! such target; `host.rs` is tested against [`portable`] in its own tests.

#[cfg(tinyrnn_asm_dsp)]
pub mod arm_dsp;
#[cfg(tinyrnn_asm_fpu)]
pub mod arm_fpu;
#[cfg(tinyrnn_asm_armv6m)]
pub mod armv6m;
#[cfg(tinyrnn_asm_armv7m)]
pub mod armv7m;
#[cfg(tinyrnn_host_simd)]
pub mod host;
pub mod portable;

/// `Σ w[k] · x[k]` in `f32`, in the fixed order of [`portable::dot_f32`].
#[inline(always)]
pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    #[cfg(tinyrnn_asm_fpu)]
    return arm_fpu::dot_f32(w, x);
    #[cfg(not(tinyrnn_asm_fpu))]
    return portable::dot_f32(w, x);
}

/// A compiler barrier (no instruction) before each portable integer dot product on bare-metal
/// cores without the DSP kernels and with a long multiply (Cortex-M3: its q15 rows; any
/// Armv7-M build without `asm`).
///
/// Without it, LLVM hoists the loads of the hidden vector out of the unit loop once the
/// constant-size rows are unrolled, and keeps all `H` activations, widened to 32 bits, in stack
/// slots: stack that grows with `H`. Those cores load a 16-bit activation with an immediate
/// offset in one instruction anyway, so reading the vector where it lies costs nothing per
/// term. Cortex-M0 is different: its halfword loads take a register offset, so there the
/// hoisted vector is what keeps the unrolled rows short. Nothing elsewhere.
#[inline(always)]
fn keep_activations_in_memory() {
    #[cfg(all(
        target_os = "none",
        not(tinyrnn_asm_dsp),
        not(tinyrnn_no_long_multiply)
    ))]
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// `Σ w[k] · x[k]` of 16-bit weights and activations, exact in `i64`.
#[inline(always)]
pub fn dot_i16(w: &[i16], x: &[i16]) -> i64 {
    keep_activations_in_memory();
    #[cfg(tinyrnn_asm_dsp)]
    return arm_dsp::dot_i16(w, x);
    #[cfg(tinyrnn_asm_armv6m)]
    return armv6m::dot_i16(w, x);
    #[cfg(all(
        not(tinyrnn_asm_dsp),
        not(tinyrnn_asm_armv6m),
        tinyrnn_no_long_multiply
    ))]
    return portable::dot_i16_in_blocks_of_32(w, x);
    #[cfg(all(not(tinyrnn_asm_dsp), not(tinyrnn_no_long_multiply)))]
    return portable::dot_i16(w, x);
}

/// [`dot_i16`] of `G` rows with the same `x`: `out[g] = dot_i16(w[g], x)`, exact. On
/// Cortex-M3 two to four rows share each activation load (`armv7m::i16_rows`); elsewhere one
/// row at a time.
#[inline(always)]
pub fn dot_i16_rows<const G: usize>(w: [&[i16]; G], x: &[i16]) -> [i64; G] {
    let mut out = [0i64; G];
    #[cfg(tinyrnn_asm_armv7m)]
    if (2..=4).contains(&G) {
        // The rows' common length in multiples of 4 in the loop, any rest (up to three last
        // terms, a longer row) by the portable kernel: every row gets exactly its own sum.
        // Short rows (a layer's few inputs) are cheaper unrolled by LLVM, one at a time.
        let n = w.iter().fold(x.len(), |n, row| n.min(row.len()));
        let looped = if n >= armv7m::I16_ROWS_MIN { n & !3 } else { 0 };
        if looped > 0 {
            out = armv7m::i16_rows(w, x, looped);
        }
        for (out, row) in out.iter_mut().zip(w) {
            *out += portable::dot_i16(
                row.get(looped..).unwrap_or_default(),
                x.get(looped..).unwrap_or_default(),
            );
        }
        return out;
    }
    for (out, w) in out.iter_mut().zip(w) {
        *out = dot_i16(w, x);
    }
    out
}

/// `Σ w[k] · x[k]` of 8-bit weights and 16-bit activations, exact.
#[inline(always)]
pub fn dot_i8(w: &[i8], x: &[i16]) -> i64 {
    keep_activations_in_memory();
    #[cfg(tinyrnn_asm_dsp)]
    return arm_dsp::dot_i8(w, x);
    #[cfg(all(not(tinyrnn_asm_dsp), tinyrnn_no_long_multiply))]
    return portable::dot_i8_in_blocks_of_32(w, x);
    #[cfg(all(not(tinyrnn_asm_dsp), not(tinyrnn_no_long_multiply)))]
    return portable::dot_i8(w, x);
}

/// [`dot_i8`] of `G` rows with the same `x`: `out[g] = dot_i8(w[g], x)`, exact. Cores with the
/// DSP extension take four, three or two rows per pass (`arm_dsp::dot_i8_quad`, `_triple`,
/// `_pair`), sharing the activations' loads and pairing; Cortex-M0 and M3 with `asm` two to
/// four rows per pass (`armv6m::i8_block`, `armv7m::i8_block`); elsewhere one row at a time.
#[inline(always)]
pub fn dot_i8_rows<const G: usize>(w: [&[i8]; G], x: &[i16]) -> [i64; G] {
    let mut out = [0i64; G];
    #[cfg(tinyrnn_asm_dsp)]
    {
        let mut g = 0;
        if G == 4 {
            if let (Some(&a), Some(&b), Some(&c), Some(&d)) =
                (w.first(), w.get(1), w.get(2), w.get(3))
            {
                [out[0], out[1], out[2], out[3]] = arm_dsp::dot_i8_quad([a, b, c, d], x);
                g = 4;
            }
        }
        if G == 3 {
            if let (Some(&a), Some(&b), Some(&c)) = (w.first(), w.get(1), w.get(2)) {
                [out[0], out[1], out[2]] = arm_dsp::dot_i8_triple([a, b, c], x);
                g = 3;
            }
        }
        while g + 1 < G {
            [out[g], out[g + 1]] = arm_dsp::dot_i8_pair([w[g], w[g + 1]], x);
            g += 2;
        }
        if g < G {
            out[g] = arm_dsp::dot_i8(w[g], x);
        }
    }
    // The multi-row loops take two to four rows (a pair of RNN units, a GRU's or an LSTM's
    // gate rows).
    #[cfg(tinyrnn_asm_armv6m)]
    if (2..=4).contains(&G) {
        return dot_i8_rows_in_blocks(w, x, armv6m::i8_block);
    }
    #[cfg(tinyrnn_asm_armv7m)]
    if (2..=4).contains(&G) {
        return dot_i8_rows_in_blocks(w, x, armv7m::i8_block);
    }
    #[cfg(not(tinyrnn_asm_dsp))]
    for (out, w) in out.iter_mut().zip(w) {
        *out = dot_i8(w, x);
    }
    out
}

/// Even-length blocks of the multi-row loops: the longest even length within
/// `portable::I8_BLOCK` (510 terms), so every row's `i32` sum is exact.
#[cfg(any(tinyrnn_asm_armv6m, tinyrnn_asm_armv7m))]
const I8_ROWS_BLOCK: usize = portable::I8_BLOCK & !1;

/// [`portable::dot_i8`] of `G` rows (2 ≤ `G` ≤ 4) with the same `x`, through `block`, a loop
/// that sums an even number (≤ 510) of terms of every row in `i32`, one activation load for all
/// rows. Exact; a row longer than the others (or an odd last term) is finished by the portable
/// kernel, so every row gets exactly its own definition.
#[cfg(any(tinyrnn_asm_armv6m, tinyrnn_asm_armv7m))]
#[inline(always)]
fn dot_i8_rows_in_blocks<const G: usize>(
    w: [&[i8]; G],
    x: &[i16],
    block: impl Fn([&[i8]; G], &[i16], usize) -> [i32; G],
) -> [i64; G] {
    let n = w.iter().fold(x.len(), |n, row| n.min(row.len()));
    let mut sums = [0i64; G];
    let mut done = 0;
    while n - done >= 2 {
        let len = (n - done).min(I8_ROWS_BLOCK) & !1;
        let rows: [&[i8]; G] = core::array::from_fn(|g| {
            w.get(g)
                .map_or(&[][..], |row| row.get(done..).unwrap_or_default())
        });
        let sums_of_block = block(rows, x.get(done..).unwrap_or_default(), len);
        for (sum, block) in sums.iter_mut().zip(sums_of_block) {
            *sum += block as i64;
        }
        done += len;
    }
    for (sum, row) in sums.iter_mut().zip(w) {
        *sum += portable::dot_i8(
            row.get(done..).unwrap_or_default(),
            x.get(done..).unwrap_or_default(),
        );
    }
    sums
}
