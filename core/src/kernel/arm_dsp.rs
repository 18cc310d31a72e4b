//! Hand-scheduled integer kernels for Cortex-M cores with the DSP extension (ARMv7E-M:
//! Cortex-M4/M7; ARMv8-M Mainline built with `+dsp`: Cortex-M33), feature `asm`.
//!
//! LLVM compiles the portable 16-bit dot product to one `SMLALBB` per term, each fed by two
//! halfword loads (three instructions per multiply-accumulate). The loops here use the SIMD
//! multiply-accumulates of the DSP extension instead:
//!
//! | kernel | instructions | per term |
//! |---|---|---|
//! | [`dot_i16`] | `LDRD`/`LDR` two terms per word, `SMLALD` two terms per instruction | 1.125 (aligned), 2 |
//! | [`dot_i8`] | `SXTB16` widens four weights, `PKHBT`/`PKHTB` pair activations, `SMLAD` | 2.75 |
//! | [`dot_i8_pair`], [`dot_i8_triple`], [`dot_i8_quad`] | 2, 3 or 4 rows per pass, the activations loaded and paired once for all rows | |
//!
//! All are exact re-implementations of [`portable`], bit for bit: `SMLALD` adds two exact
//! 16 × 16-bit products into a 64-bit accumulator, `SMLAD` two into 32 bits (exact for the
//! blocks of at most 511 `i8 · i16` products that [`portable::dot_i8`] also uses).
//!
//! Safety rests on two facts, stated at each `asm!` block: the loops read only `4·⌊n/4⌋`
//! elements of slices that hold at least `n` (eight terms per iteration, sixteen for aligned
//! q15, then one group of eight and one of four where the length asks for them); and a word
//! load (`LDR`) from a halfword-aligned address is architecturally allowed on ARMv7-M and
//! ARMv8-M Mainline **while `CCR.UNALIGN_TRP` is clear** (its reset value; `LDRD` is only used
//! on word-aligned addresses). Firmware that sets `UNALIGN_TRP` must not enable `asm`.
#![allow(unsafe_code)]

use super::portable;

/// Four q15 terms from word-aligned `{w}` and `{x}` (post-incremented): two `LDRD`, two `SMLALD`.
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
#[inline(always)]
pub fn dot_i8(w: &[i8], x: &[i16]) -> i64 {
    w.chunks(portable::I8_BLOCK)
        .zip(x.chunks(portable::I8_BLOCK))
        .map(|(w, x)| dot_i8_block(w, x) as i64)
        .sum()
}

/// One block of [`dot_i8`]: at most 511 products, so the `i32` sum is exact.
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
