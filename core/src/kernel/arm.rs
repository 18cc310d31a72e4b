//! Hand-scheduled Cortex-M kernels (feature `asm`).
//!
//! LLVM compiles the portable 16-bit dot product to one `SMLALBB` per term, each fed by two
//! halfword loads (three instructions per multiply-accumulate), and the `f32` one to separate
//! loads, multiplies and adds. The loops here use the instructions those cores have for the job.
//!
//! | kernel | instructions | per term |
//! |---|---|---|
//! | [`dot_i16`] (DSP) | `LDRD`/`LDR` two terms per word, `SMLALD` two terms per instruction | 1.125 (aligned), 2 |
//! | [`dot_i8`] (DSP) | `SXTB16` widens four weights, `PKHBT`/`PKHTB` pair activations, `SMLAD` | 2.75 |
//! | [`dot_f32`] (FPU) | `VLDM` eight values per instruction, `VMLA.F32` | 1.5 (+13 per call) |
//! | [`accumulate_rows`] (FPU) | 2–4 gate rows per pass, one `VLDM` of four inputs for all rows | 1.31 (4 rows) |
//!
//! The three dot products are exact re-implementations of [`portable`], bit for bit: `SMLALD`
//! adds two exact 16 × 16-bit products into a 64-bit accumulator, `SMLAD` two into 32 bits
//! (exact for the blocks of at most 511 `i8 · i16` products that [`portable::dot_i8`] also
//! uses), and `VMLA.F32` (unlike `VFMA`) rounds the product before adding it, exactly like
//! `lane += w * x` in Rust, with the lanes and final additions of [`portable::dot_f32`].
//! [`accumulate_rows`] sums each row in order instead, its own definition (which the self-test
//! checks bit for bit).
//!
//! Safety rests on two facts, stated at each `asm!` block: the loops read only `4·⌊n/4⌋` (or
//! `8·⌊n/8⌋`) elements of slices that hold at least `n` (the integer loops take eight terms per
//! iteration, sixteen for aligned q15, then one group of eight and one of four where the length
//! asks for them); and a word load (`LDR`) from a
//! halfword-aligned address is architecturally allowed on ARMv7-M and ARMv8-M Mainline while
//! `CCR.UNALIGN_TRP` is clear (its reset value; `LDRD`/`VLDM` are only used on word-aligned
//! addresses).
#![allow(unsafe_code)]

use super::portable;

/// Four q15 terms from word-aligned `{w}` and `{x}` (post-incremented): two `LDRD`, two `SMLALD`.
#[cfg(tinyrnn_asm_dsp)]
macro_rules! q15_four_aligned {
    () => {
        concat!(
            "ldrd {w0}, {w1}, [{w}], #8\n",
            "ldrd {x0}, {x1}, [{x}], #8\n",
            "smlald {lo}, {hi}, {w0}, {x0}\n",
            "smlald {lo}, {hi}, {w1}, {x1}\n",
        )
    };
}

/// Two q15 terms from halfword-aligned `{w}` and `{x}` (post-incremented): `LDR`, `SMLALD`.
#[cfg(tinyrnn_asm_dsp)]
macro_rules! q15_two {
    () => {
        concat!(
            "ldr {a}, [{w}], #4\n",
            "ldr {b}, [{x}], #4\n",
            "smlald {lo}, {hi}, {a}, {b}\n",
        )
    };
}

/// Four activations of a multi-row w8a16 pass (post-incrementing `{x}`), paired as `SMLAD`
/// needs them: `{xe}` = (x₀, x₂), `{xb}` = (x₁, x₃).
#[cfg(tinyrnn_asm_dsp)]
macro_rules! w8a16_pair_activations {
    () => {
        concat!(
            "ldr {xa}, [{x}], #4\n",
            "ldr {xb}, [{x}], #4\n",
            "pkhbt {xe}, {xa}, {xb}, lsl #16\n",
            "pkhtb {xb}, {xb}, {xa}, asr #16\n",
        )
    };
}

/// Four terms of one row of a multi-row w8a16 pass: the row's weights from `{$w}`
/// (post-incremented), widened by `SXTB16`, into `{$acc}` against the paired activations.
#[cfg(tinyrnn_asm_dsp)]
macro_rules! w8a16_row_four {
    ($w:ident, $acc:ident) => {
        concat!(
            "ldr {xa}, [{",
            stringify!($w),
            "}], #4\n",
            "sxtb16 {wo}, {xa}, ror #8\n",
            "sxtb16 {xa}, {xa}\n",
            "smlad {",
            stringify!($acc),
            "}, {xa}, {xe}, {",
            stringify!($acc),
            "}\n",
            "smlad {",
            stringify!($acc),
            "}, {wo}, {xb}, {",
            stringify!($acc),
            "}\n",
        )
    };
}

/// Four w8a16 terms (post-incrementing `{w}` and `{x}`; the single last group of a row uses the
/// same instructions with fixed offsets, which keeps its pointers read-only for LLVM):
/// `SXTB16` widens bytes 0 and 2 (or, rotated, 1 and 3) of four weights into two 16-bit halves;
/// `PKHBT`/`PKHTB` pair the activations the same way, so each `SMLAD` adds two exact products.
#[cfg(tinyrnn_asm_dsp)]
macro_rules! w8a16_four {
    () => {
        concat!(
            "ldr {wv}, [{w}], #4\n",
            "ldr {xa}, [{x}], #4\n",
            "ldr {xb}, [{x}], #4\n",
            "sxtb16 {wo}, {wv}, ror #8\n",
            "sxtb16 {wv}, {wv}\n",
            "pkhbt {xe}, {xa}, {xb}, lsl #16\n",
            "pkhtb {xb}, {xb}, {xa}, asr #16\n",
            "smlad {acc}, {wv}, {xe}, {acc}\n",
            "smlad {acc}, {wo}, {xb}, {acc}\n",
        )
    };
}

/// `Σ w[k] · x[k]`, exact in `i64`, with `SMLALD`.
#[cfg(tinyrnn_asm_dsp)]
#[inline(always)]
pub fn dot_i16(w: &[i16], x: &[i16]) -> i64 {
    let n = w.len().min(x.len());
    let (octets, quad) = (n / 8, n / 4 % 2 == 1);
    let (mut lo, mut hi) = (0u32, 0u32);
    let (mut w_at, mut x_at) = (w.as_ptr(), x.as_ptr());
    // Aligned: sixteen terms per iteration (the loop's two instructions once per sixteen: rows
    // of 32 and 64 hidden units are most of a step), then one group of eight if n / 8 is odd
    // and one of four if n / 4 is odd. Unaligned: eight per iteration, then four.
    if (w_at as usize | x_at as usize).is_multiple_of(4) {
        let (sixteens, octet) = (n / 16, octets % 2 == 1);
        if sixteens > 0 {
            // SAFETY: reads 16·sixteens ≤ n elements of `w` and of `x`, from word-aligned
            // starts (checked above), as `LDRD` requires; touches no other memory and no stack.
            unsafe {
                core::arch::asm!(
                    "2:",
                    q15_four_aligned!(),
                    q15_four_aligned!(),
                    q15_four_aligned!(),
                    q15_four_aligned!(),
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    w = inout(reg) w_at,
                    x = inout(reg) x_at,
                    n = inout(reg) sixteens => _,
                    w0 = out(reg) _,
                    w1 = out(reg) _,
                    x0 = out(reg) _,
                    x1 = out(reg) _,
                    lo = inout(reg) lo,
                    hi = inout(reg) hi,
                    options(nostack, readonly),
                );
            }
        }
        if octet {
            // SAFETY: the eight elements after the 16·sixteens above (still word-aligned),
            // within n of `w` and of `x`.
            unsafe {
                core::arch::asm!(
                    q15_four_aligned!(),
                    q15_four_aligned!(),
                    w = inout(reg) w_at,
                    x = inout(reg) x_at,
                    w0 = out(reg) _,
                    w1 = out(reg) _,
                    x0 = out(reg) _,
                    x1 = out(reg) _,
                    lo = inout(reg) lo,
                    hi = inout(reg) hi,
                    options(nostack, readonly),
                );
            }
        }
        if quad {
            // SAFETY: the four elements after the 8·octets above (still word-aligned), within
            // n of `w` and of `x`.
            unsafe {
                core::arch::asm!(
                    "ldrd {w0}, {w1}, [{w}]",
                    "ldrd {x0}, {x1}, [{x}]",
                    "smlald {lo}, {hi}, {w0}, {x0}",
                    "smlald {lo}, {hi}, {w1}, {x1}",
                    w = in(reg) w_at,
                    x = in(reg) x_at,
                    w0 = out(reg) _,
                    w1 = out(reg) _,
                    x0 = out(reg) _,
                    x1 = out(reg) _,
                    lo = inout(reg) lo,
                    hi = inout(reg) hi,
                    options(nostack, readonly, pure),
                );
            }
        }
    } else {
        if octets > 0 {
            // SAFETY: reads 8·octets ≤ n elements of `w` and of `x` with `LDR`, which accepts
            // halfword-aligned addresses (module doc); touches no other memory and no stack.
            unsafe {
                core::arch::asm!(
                    "2:",
                    q15_two!(),
                    q15_two!(),
                    q15_two!(),
                    q15_two!(),
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    w = inout(reg) w_at,
                    x = inout(reg) x_at,
                    n = inout(reg) octets => _,
                    a = out(reg) _,
                    b = out(reg) _,
                    lo = inout(reg) lo,
                    hi = inout(reg) hi,
                    options(nostack, readonly),
                );
            }
        }
        if quad {
            // SAFETY: the four elements after the 8·octets above, within n of `w` and of `x`,
            // with `LDR` as above.
            unsafe {
                core::arch::asm!(
                    "ldr {a}, [{w}]",
                    "ldr {b}, [{x}]",
                    "smlald {lo}, {hi}, {a}, {b}",
                    "ldr {a}, [{w}, #4]",
                    "ldr {b}, [{x}, #4]",
                    "smlald {lo}, {hi}, {a}, {b}",
                    w = in(reg) w_at,
                    x = in(reg) x_at,
                    a = out(reg) _,
                    b = out(reg) _,
                    lo = inout(reg) lo,
                    hi = inout(reg) hi,
                    options(nostack, readonly, pure),
                );
            }
        }
    }
    let mut done = n & !3;
    if let (Some(&[w0, w1]), Some(&[x0, x1])) = (w.get(done..done + 2), x.get(done..done + 2)) {
        // A last pair (short rows, such as a layer's few inputs, are often 4k + 2 long).
        let (w_pair, x_pair) = (
            (w0 as u16 as u32) | ((w1 as u16 as u32) << 16),
            (x0 as u16 as u32) | ((x1 as u16 as u32) << 16),
        );
        // SAFETY: register operands only.
        unsafe {
            core::arch::asm!(
                "smlald {lo}, {hi}, {w}, {x}",
                w = in(reg) w_pair,
                x = in(reg) x_pair,
                lo = inout(reg) lo,
                hi = inout(reg) hi,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        done += 2;
    }
    let head = (((hi as u64) << 32) | lo as u64) as i64;
    head + portable::dot_i16(
        w.get(done..n).unwrap_or_default(),
        x.get(done..n).unwrap_or_default(),
    )
}

/// `Σ w[k] · x[k]` of 8-bit weights and 16-bit activations, exact, with `SMLAD`: as in
/// [`portable::dot_i8`], blocks of at most 511 products are summed in `i32`.
#[cfg(tinyrnn_asm_dsp)]
#[inline(always)]
pub fn dot_i8(w: &[i8], x: &[i16]) -> i64 {
    w.chunks(portable::I8_BLOCK)
        .zip(x.chunks(portable::I8_BLOCK))
        .map(|(w, x)| dot_i8_block(w, x) as i64)
        .sum()
}

/// One block of [`dot_i8`]: at most 511 products, so the `i32` sum is exact.
#[cfg(tinyrnn_asm_dsp)]
#[inline(always)]
fn dot_i8_block(w: &[i8], x: &[i16]) -> i32 {
    let n = w.len().min(x.len());
    let (octets, quad) = (n / 8, n / 4 % 2 == 1);
    let mut acc = 0i32;
    let (mut w_at, mut x_at) = (w.as_ptr(), x.as_ptr());
    // Eight products per iteration (`w8a16_four` twice): the loop's own two instructions are
    // paid once per eight products instead of four (2.5 instructions per product, not 2.75).
    if octets > 0 {
        // SAFETY: reads 8·octets ≤ n elements of `w` and of `x` with `LDR`, which accepts
        // unaligned addresses (module doc); touches no other memory and no stack.
        unsafe {
            core::arch::asm!(
                "2:",
                w8a16_four!(),
                w8a16_four!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                w = inout(reg) w_at,
                x = inout(reg) x_at,
                n = inout(reg) octets => _,
                wv = out(reg) _,
                wo = out(reg) _,
                xa = out(reg) _,
                xb = out(reg) _,
                xe = out(reg) _,
                acc = inout(reg) acc,
                options(nostack, readonly),
            );
        }
    }
    if quad {
        // SAFETY: the four elements after the 8·octets above, within n of `w` and of `x`.
        unsafe {
            core::arch::asm!(
                "ldr {wv}, [{w}]",
                "ldr {xa}, [{x}]",
                "ldr {xb}, [{x}, #4]",
                "sxtb16 {wo}, {wv}, ror #8",
                "sxtb16 {wv}, {wv}",
                "pkhbt {xe}, {xa}, {xb}, lsl #16",
                "pkhtb {xb}, {xb}, {xa}, asr #16",
                "smlad {acc}, {wv}, {xe}, {acc}",
                "smlad {acc}, {wo}, {xb}, {acc}",
                w = in(reg) w_at,
                x = in(reg) x_at,
                wv = out(reg) _,
                wo = out(reg) _,
                xa = out(reg) _,
                xb = out(reg) _,
                xe = out(reg) _,
                acc = inout(reg) acc,
                options(nostack, readonly, pure),
            );
        }
    }
    acc + dot_i8_between(w, x, n & !3, n)
}

/// `Σ w[k] · x[k]` for `k` in `start..end` (the few terms after the asm loops), in `i32`.
#[cfg(tinyrnn_asm_dsp)]
#[inline(always)]
fn dot_i8_between(w: &[i8], x: &[i16], start: usize, end: usize) -> i32 {
    w.get(start..end)
        .unwrap_or_default()
        .iter()
        .zip(x.get(start..end).unwrap_or_default())
        .fold(0i32, |acc, (&w, &x)| acc + w as i32 * x as i32)
}

/// [`dot_i8`] of two weight rows with the same activations, in one pass: each group of four
/// activations is loaded and paired (`PKHBT`/`PKHTB`) once for both rows, so a term costs
/// 1.875 instructions (eight terms per iteration) instead of 2.5. Exact, like `dot_i8`; rows
/// are cut to the common length.
#[cfg(tinyrnn_asm_dsp)]
#[inline(always)]
pub fn dot_i8_pair(w: [&[i8]; 2], x: &[i16]) -> [i64; 2] {
    let n = w[0].len().min(w[1].len()).min(x.len());
    if n > portable::I8_BLOCK {
        // Longer than one exact i32 block (never for a recurrent layer's rows in practice).
        return [dot_i8(w[0], x), dot_i8(w[1], x)];
    }
    let quads = n / 4;
    let mut acc = [0i32; 2];
    if quads > 0 {
        // SAFETY: reads 4·quads ≤ n elements of `w[0]`, `w[1]` and `x` with `LDR`, which
        // accepts unaligned addresses (module doc); touches no other memory and no stack.
        unsafe {
            core::arch::asm!(
                // An odd group of four first, then two groups per iteration (the flags of the
                // halving survive the group: none of its instructions sets them).
                "lsrs {n}, {n}, #1",
                "bcc 3f",
                w8a16_pair_activations!(),
                w8a16_row_four!(w0, acc0),
                w8a16_row_four!(w1, acc1),
                "3:",
                "beq 4f",
                "2:",
                w8a16_pair_activations!(),
                w8a16_row_four!(w0, acc0),
                w8a16_row_four!(w1, acc1),
                w8a16_pair_activations!(),
                w8a16_row_four!(w0, acc0),
                w8a16_row_four!(w1, acc1),
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                x = inout(reg) x.as_ptr() => _,
                n = inout(reg) quads => _,
                xa = out(reg) _,
                xb = out(reg) _,
                xe = out(reg) _,
                wo = out(reg) _,
                acc0 = inout(reg) acc[0],
                acc1 = inout(reg) acc[1],
                options(nostack, readonly),
            );
        }
    }
    let done = n & !3;
    [
        (acc[0] + dot_i8_between(w[0], x, done, n)) as i64,
        (acc[1] + dot_i8_between(w[1], x, done, n)) as i64,
    ]
}

/// Four terms of [`dot_i8_triple`]'s three rows: the activations loaded and paired once.
#[cfg(tinyrnn_asm_dsp)]
macro_rules! w8a16_triple_group {
    () => {
        concat!(
            w8a16_pair_activations!(),
            w8a16_row_four!(w0, acc0),
            w8a16_row_four!(w1, acc1),
            w8a16_row_four!(w2, acc2),
        )
    };
}

/// [`dot_i8`] of three weight rows with the same activations, in one pass, like
/// [`dot_i8_pair`] (1.67 instructions per term): a GRU unit's gate rows.
#[cfg(tinyrnn_asm_dsp)]
#[inline(always)]
pub fn dot_i8_triple(w: [&[i8]; 3], x: &[i16]) -> [i64; 3] {
    let n = w[0].len().min(w[1].len()).min(w[2].len()).min(x.len());
    if n > portable::I8_BLOCK {
        return [dot_i8(w[0], x), dot_i8(w[1], x), dot_i8(w[2], x)];
    }
    let quads = n / 4;
    let mut acc = [0i32; 3];
    if quads > 0 {
        // SAFETY: reads 4·quads ≤ n elements of each row and of `x` with `LDR`, which accepts
        // unaligned addresses (module doc); touches no other memory and no stack.
        unsafe {
            core::arch::asm!(
                // As in `dot_i8_pair`: an odd group first, then two per iteration.
                "lsrs {n}, {n}, #1",
                "bcc 3f",
                w8a16_triple_group!(),
                "3:",
                "beq 4f",
                "2:",
                w8a16_triple_group!(),
                w8a16_triple_group!(),
                "subs {n}, {n}, #1",
                "bne 2b",
                "4:",
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                w2 = inout(reg) w[2].as_ptr() => _,
                x = inout(reg) x.as_ptr() => _,
                n = inout(reg) quads => _,
                xa = out(reg) _,
                xb = out(reg) _,
                xe = out(reg) _,
                wo = out(reg) _,
                acc0 = inout(reg) acc[0],
                acc1 = inout(reg) acc[1],
                acc2 = inout(reg) acc[2],
                options(nostack, readonly),
            );
        }
    }
    let done = n & !3;
    [
        (acc[0] + dot_i8_between(w[0], x, done, n)) as i64,
        (acc[1] + dot_i8_between(w[1], x, done, n)) as i64,
        (acc[2] + dot_i8_between(w[2], x, done, n)) as i64,
    ]
}

/// [`w8a16_row_four`] with the row's sum in `r7`, which LLVM does not allocate (the Thumb frame
/// pointer): [`dot_i8_quad`] saves it around its loop.
#[cfg(tinyrnn_asm_dsp)]
macro_rules! w8a16_row_four_in {
    ($w:ident, $acc:literal) => {
        concat!(
            "ldr {xa}, [{",
            stringify!($w),
            "}], #4\n",
            "sxtb16 {wo}, {xa}, ror #8\n",
            "sxtb16 {xa}, {xa}\n",
            "smlad ",
            $acc,
            ", {xa}, {xe}, ",
            $acc,
            "\n",
            "smlad ",
            $acc,
            ", {wo}, {xb}, ",
            $acc,
            "\n",
        )
    };
}

/// [`dot_i8`] of four weight rows with the same activations (an LSTM unit's gate rows) in one
/// pass, like [`dot_i8_pair`]: each group of four activations is loaded and paired once for
/// all four rows, 1.5 instructions per row and term. Fourteen registers are live in the loop,
/// one more than LLVM hands out to `asm!`, so the last row's sum lives in `r7`, pushed before
/// the loop and popped after it; it leaves through the register of that row's pointer.
#[cfg(tinyrnn_asm_dsp)]
#[inline(always)]
pub fn dot_i8_quad(w: [&[i8]; 4], x: &[i16]) -> [i64; 4] {
    let n = w.iter().fold(x.len(), |n, row| n.min(row.len()));
    if n > portable::I8_BLOCK {
        return [
            dot_i8(w[0], x),
            dot_i8(w[1], x),
            dot_i8(w[2], x),
            dot_i8(w[3], x),
        ];
    }
    let quads = n / 4;
    let mut acc = [0i32; 4];
    if quads > 0 {
        let mut row3 = w[3].as_ptr() as usize;
        // SAFETY: reads 4·quads ≤ n elements of each row and of `x` with `LDR`, which accepts
        // unaligned addresses (module doc); its only other memory accesses are the push and
        // pop of r7, which restore r7 and the stack pointer before the block ends.
        unsafe {
            core::arch::asm!(
                "push {{r7}}",
                "movs r7, #0",
                "2:",
                w8a16_pair_activations!(),
                w8a16_row_four!(w0, acc0),
                w8a16_row_four!(w1, acc1),
                w8a16_row_four!(w2, acc2),
                w8a16_row_four_in!(w3, "r7"),
                "subs {n}, {n}, #1",
                "bne 2b",
                "mov {w3}, r7",
                "pop {{r7}}",
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                w2 = inout(reg) w[2].as_ptr() => _,
                w3 = inout(reg) row3,
                x = inout(reg) x.as_ptr() => _,
                n = inout(reg) quads => _,
                xa = out(reg) _,
                xb = out(reg) _,
                xe = out(reg) _,
                wo = out(reg) _,
                acc0 = inout(reg) acc[0],
                acc1 = inout(reg) acc[1],
                acc2 = inout(reg) acc[2],
                options(readonly),
            );
        }
        acc[3] = row3 as i32;
    }
    let done = n & !3;
    core::array::from_fn(|g| (acc[g] + dot_i8_between(w[g], x, done, n)) as i64)
}

/// `Σ w[k] · x[k]` in `f32` with `VLDM` and `VMLA.F32`: the same lanes, roundings and final
/// additions as [`portable::dot_f32`].
#[cfg(tinyrnn_asm_fpu)]
#[inline(always)]
pub fn dot_f32(w: &[f32], x: &[f32]) -> f32 {
    const _: () = assert!(portable::F32_LANES == 8, "the asm loop has 8 lanes");
    let n = w.len().min(x.len());
    let blocks = n / 8;
    let mut blocks_total = 0f32;
    if blocks > 0 {
        // SAFETY: reads 8·blocks ≤ n elements of `w` and of `x` (f32 slices are word-aligned,
        // as `VLDM` requires) and the 8 zeros of `LANES_ZERO`. Rust cannot take the FPU's
        // registers as operands on single-precision-only FPUs, so the loop saves the s0–s23 it
        // uses on the stack (96 bytes) and restores them before returning.
        unsafe {
            core::arch::asm!(
                "vpush {{s0-s23}}",
                "vldmia {zero}, {{s0-s7}}",
                "2:",
                "vldmia {w}!, {{s8-s15}}",
                "vldmia {x}!, {{s16-s23}}",
                "vmla.f32 s0, s8, s16",
                "vmla.f32 s1, s9, s17",
                "vmla.f32 s2, s10, s18",
                "vmla.f32 s3, s11, s19",
                "vmla.f32 s4, s12, s20",
                "vmla.f32 s5, s13, s21",
                "vmla.f32 s6, s14, s22",
                "vmla.f32 s7, s15, s23",
                "subs {n}, {n}, #1",
                "bne 2b",
                // ((a + e) + (b + f)) + ((c + g) + (d + h)), as in `portable::dot_f32`.
                "vadd.f32 s0, s0, s4",
                "vadd.f32 s1, s1, s5",
                "vadd.f32 s2, s2, s6",
                "vadd.f32 s3, s3, s7",
                "vadd.f32 s0, s0, s1",
                "vadd.f32 s2, s2, s3",
                "vadd.f32 s0, s0, s2",
                "vmov {sum}, s0",
                "vpop {{s0-s23}}",
                w = inout(reg) w.as_ptr() => _,
                x = inout(reg) x.as_ptr() => _,
                n = inout(reg) blocks => _,
                zero = in(reg) LANES_ZERO.as_ptr(),
                sum = out(reg) blocks_total,
                options(readonly),
            );
        }
    }
    let done = 8 * blocks;
    let tail = portable::sum_in_order(
        w.get(done..n).unwrap_or_default(),
        x.get(done..n).unwrap_or_default(),
    );
    blocks_total + tail
}

/// The initial value of `dot_f32`'s eight partial sums.
#[cfg(tinyrnn_asm_fpu)]
static LANES_ZERO: [f32; 8] = [0.0; 8];

/// One row's share of a block of four elements in [`accumulate_rows`]: load the row's next four
/// weights and multiply-accumulate them with the four activations in s4–s7.
#[cfg(tinyrnn_asm_fpu)]
macro_rules! row_of_four {
    ($w:tt, $acc:literal) => {
        concat!(
            "vldmia {",
            stringify!($w),
            "}!, {{s8-s11}}\n",
            "vmla.f32 ",
            $acc,
            ", s8, s4\n",
            "vmla.f32 ",
            $acc,
            ", s9, s5\n",
            "vmla.f32 ",
            $acc,
            ", s10, s6\n",
            "vmla.f32 ",
            $acc,
            ", s11, s7\n",
        )
    };
}

/// One row's share of a single element in [`accumulate_rows`] (the activation is in s4).
#[cfg(tinyrnn_asm_fpu)]
macro_rules! row_of_one {
    ($w:tt, $acc:literal) => {
        concat!(
            "vldmia {",
            stringify!($w),
            "}!, {{s8}}\n",
            "vmla.f32 ",
            $acc,
            ", s8, s4\n"
        )
    };
}

/// The loop of [`accumulate_rows`] for the rows listed as `pointer => accumulator register`
/// (`acc_regs` is the register range holding `acc`).
#[cfg(tinyrnn_asm_fpu)]
macro_rules! accumulate_rows_asm {
    ($acc:expr, $v:expr, $blocks:expr, $singles:expr, $acc_regs:literal,
     $($w:ident => $s:literal = $row:expr),+) => {
        core::arch::asm!(
            "vpush {{s0-s11}}",
            concat!("vldmia {acc}, {{", $acc_regs, "}}"),
            "cmp {blocks}, #0",
            "beq 3f",
            "2:",
            "vldmia {v}!, {{s4-s7}}",
            $(row_of_four!($w, $s),)+
            "subs {blocks}, {blocks}, #1",
            "bne 2b",
            "3:",
            "cmp {singles}, #0",
            "beq 5f",
            "4:",
            "vldmia {v}!, {{s4}}",
            $(row_of_one!($w, $s),)+
            "subs {singles}, {singles}, #1",
            "bne 4b",
            "5:",
            concat!("vstmia {acc}, {{", $acc_regs, "}}"),
            "vpop {{s0-s11}}",
            acc = in(reg) $acc,
            v = inout(reg) $v => _,
            blocks = inout(reg) $blocks => _,
            singles = inout(reg) $singles => _,
            $($w = inout(reg) $row => _,)+
        )
    };
}

/// `acc[g] += Σ_k rows[g][k] · v[k]` for `G` rows of `v.len()` weights each, summed in order
/// of `k`, with every element of `v` loaded once for all rows: the fused gate rows of
/// [`Numeric::preact_rows`](crate::Numeric::preact_rows) and
/// [`Numeric::gru_preacts`](crate::Numeric::gru_preacts) for `f32`.
///
/// Per block of four elements: one `VLDM` of `v`, and per row one `VLDM` of weights and four
/// `VMLA.F32` — 1.31 instructions per multiply-accumulate for `G` = 4, 1.33 for 3.
/// Returns `false`, having done nothing, for a `G` other than 2, 3 or 4 or when a row's length
/// is not `v.len()`.
///
/// The rows sum in order (`((acc + w₀v₀) + w₁v₁) + …`), not in the eight lanes of
/// [`portable::dot_f32`]: an `f32` model on these cores differs from the host in rounding only
/// (what `tinyrnn verify` allows for `f32`, 1e-5).
#[cfg(tinyrnn_asm_fpu)]
#[inline(always)]
pub fn accumulate_rows<const G: usize>(acc: &mut [f32; G], rows: [&[f32]; G], v: &[f32]) -> bool {
    let n = v.len();
    if rows.iter().any(|row| row.len() != n) || !(2..=4).contains(&G) {
        return false;
    }
    if n == 0 {
        return true;
    }
    let (blocks, singles) = (n / 4, n % 4);
    let row = |g: usize| rows.get(g).map_or(core::ptr::null(), |row| row.as_ptr());
    let (acc, v) = (acc.as_mut_ptr(), v.as_ptr());
    // SAFETY: reads exactly `n` elements of `v` and of each of the `G` rows (whose lengths were
    // checked above; `G` is 2, 3 or 4, so every pointer used is a row's) and reads and writes
    // the `G` elements of `acc`; f32 data is word-aligned, as `VLDM` requires. s0–s11 are saved
    // and restored on the stack (48 bytes), as Rust cannot name them on single-precision FPUs.
    unsafe {
        match G {
            2 => accumulate_rows_asm!(acc, v, blocks, singles, "s0-s1",
                w0 => "s0" = row(0), w1 => "s1" = row(1)),
            3 => accumulate_rows_asm!(acc, v, blocks, singles, "s0-s2",
                w0 => "s0" = row(0), w1 => "s1" = row(1), w2 => "s2" = row(2)),
            _ => accumulate_rows_asm!(acc, v, blocks, singles, "s0-s3",
                w0 => "s0" = row(0), w1 => "s1" = row(1), w2 => "s2" = row(2),
                w3 => "s3" = row(3)),
        }
    }
    true
}
