//! Hand-scheduled Cortex-M0/M0+ (ARMv6-M, Thumb-1) integer kernels (feature `asm`).
//!
//! Thumb-1 loads a signed byte or halfword only with a register offset (`LDRSB`/`LDRSH
//! Rt, [Rn, Rm]`), has eight low registers for almost everything and no long multiply. Left to
//! itself, LLVM unrolls a constant-size row completely and keeps the hidden vector, widened to
//! 32 bits, and the unrolled offsets in stack slots across the unit loop: stack that grows with
//! the hidden size, and more instructions per term than the loops here. These loops walk every
//! operand with **one offset register counting up to zero** (so the loop test is the flags of
//! its increment) and put nothing on the stack but one saved register:
//!
//! | kernel | instructions per term | how |
//! |---|---|---|
//! | [`dot_i16`] (q15, one row) | 6.75 | two products summed in 32 bits, one 64-bit add per pair |
//! | `i8_block` (w8a16, 2–4 rows) | 4.75 (2 rows), 4.17 (3), 3.88 (4), per row | one activation load for all rows; the sums in high registers |
//!
//! Both are exact, so they return the bits of [`portable`] (the firmware self-test compares them
//! on every length 0–70 at every alignment and on rows of 601 terms, extremes included):
//! - q15: each product `w·x` of two `i16` lies in `(−2³⁰, 2³⁰]`, so two of them sum within
//!   `(−2³¹, 2³¹]`; only `2³¹` itself (both products `(−2¹⁵)²`) overflows an `i32`, which the
//!   `V` flag reports and a two-instruction detour corrects before the 64-bit add;
//! - w8a16: a row's sum stays in `i32` for up to 511 terms (as in `portable::dot_i8`); longer
//!   rows go through in blocks of 510.
//!
//! Registers: `r7` (the frame pointer on Thumb) is not allocatable to `asm!` operands and
//! `r8`–`r12` cannot be operands on Thumb-1 at all. The loops save and restore `r7` themselves
//! and keep the activation in it (one register more for LLVM around the loop); the multi-row
//! sums live in high registers declared as clobbers (`ADD`/`MOV` reach them, which is all a sum
//! needs).
#![allow(unsafe_code)]

use super::portable;

/// Two q15 terms at offsets `{k}` and `{k}`+2 from the operands' ends, into `{lo}:{hi}`;
/// `{k}` advances by 4 (its flags: zero at the end of the row). `$wrapped` is the label of the
/// detour for a pair sum of exactly 2³¹, `$back` the label it returns to. `r7` holds the
/// activations (there are eight values and seven allocatable low registers).
macro_rules! q15_pair {
    ($wrapped:literal, $back:literal) => {
        concat!(
            "ldrsh r7, [{x}, {k}]\n",
            "ldrsh {p}, [{w}, {k}]\n",
            "muls {p}, r7, {p}\n",
            "adds {k}, #2\n",
            "ldrsh r7, [{x}, {k}]\n",
            "ldrsh {q}, [{w}, {k}]\n",
            "muls {q}, r7, {q}\n",
            "adds {p}, {p}, {q}\n",
            "bvs ",
            $wrapped,
            "f\n",
            "asrs r7, {p}, #31\n",
            $back,
            ":\n",
            "adds {lo}, {lo}, {p}\n",
            "adcs {hi}, {hi}, r7\n",
            "adds {k}, #2\n",
        )
    };
}

/// Rows shorter than this (a layer's few inputs) are left to LLVM, which unrolls them: the
/// loop's setup would cost more than it saves.
const SHORT_ROW: usize = 16;

/// `Σ w[k] · x[k]`, exact in `i64`: 6.75 instructions per term (`portable::dot_i16` as LLVM
/// unrolls it: 7, plus stack slots).
#[inline(always)]
pub fn dot_i16(w: &[i16], x: &[i16]) -> i64 {
    let n = w.len().min(x.len());
    if n < SHORT_ROW {
        return portable::dot_i16(w, x);
    }
    let body = n & !3;
    let (mut lo, mut hi) = (0u32, 0u32);
    if body > 0 {
        // Offsets run from −2·body bytes up to 0, relative to the end of each operand's body.
        let (w_end, x_end) = (w.as_ptr().wrapping_add(body), x.as_ptr().wrapping_add(body));
        let k = (body * 2).wrapping_neg();
        // SAFETY: reads elements `0..body` of `w` and `x` (body ≤ n ≤ both lengths) with
        // halfword loads at halfword-aligned addresses; saves and restores r7 on the stack;
        // writes no other memory.
        unsafe {
            core::arch::asm!(
                "push {{r7}}",
                "2:",
                q15_pair!("3", "4"),
                q15_pair!("5", "6"),
                "bne 2b",
                "b 7f",
                // Both products were 2³⁰: the true sum 2³¹ has a zero sign word.
                "3:",
                "movs r7, #0",
                "b 4b",
                "5:",
                "movs r7, #0",
                "b 6b",
                "7:",
                "pop {{r7}}",
                w = in(reg) w_end,
                x = in(reg) x_end,
                k = inout(reg) k => _,
                p = out(reg) _,
                q = out(reg) _,
                lo = inout(reg) lo,
                hi = inout(reg) hi,
                options(readonly),
            );
        }
    }
    let head = (((hi as u64) << 32) | lo as u64) as i64;
    head + portable::dot_i16(
        w.get(body..n).unwrap_or_default(),
        x.get(body..n).unwrap_or_default(),
    )
}

/// One w8a16 term of every row: the activation at `{hq}` + `{k}` (see `i8_block`) into `r7`,
/// each row's weight at `row end + {k}` into `{t}`, their product added to the row's
/// high-register sum.
macro_rules! w8a16_term {
    ($($row:expr => $sum:tt),+) => {
        concat!(
            "ldrsh r7, [{hq}, {k}]\n",
            $(
                "ldrsb {t}, [{", $row, "}, {k}]\n",
                "muls {t}, r7, {t}\n",
                "add ", $sum, ", {t}\n",
            )+
            "adds {hq}, #1\n",
            "adds {k}, #1\n",
        )
    };
}

/// One pass of `i8_block` over the rows `$row` (each variable holds its row's end address
/// and receives its sum), the sums kept in the high registers `$sum`, two terms per iteration.
/// Saves and restores `r7`, which holds the activation.
macro_rules! w8a16_rows_pass {
    ($hq:ident, $k:ident; $($row:ident => $sum:tt),+) => {
        core::arch::asm!(
            "push {{r7}}",
            "movs {t}, #0",
            $(concat!("mov ", $sum, ", {t}"),)+
            "2:",
            w8a16_term!($(stringify!($row) => $sum),+),
            w8a16_term!($(stringify!($row) => $sum),+),
            "bne 2b",
            $(concat!("mov {", stringify!($row), "}, ", $sum),)+
            "pop {{r7}}",
            hq = inout(reg) $hq => _,
            k = inout(reg) $k => _,
            t = out(reg) _,
            $($row = inout(reg) $row,)+
            $(out($sum) _,)+
            options(readonly),
        )
    };
}

/// The `G` rows' sums `Σ w[g][k] · x[k]` over `k < n` (2 ≤ `G` ≤ 4), for `n` even, 2 ≤ `n` ≤ 511
/// and rows of at least `n` weights (so each `i32` sum is exact); see
/// `kernel::dot_i8_rows_in_blocks`.
///
/// Offsets: `{k}` runs from `−n` up to 0 bytes relative to each row's end. Activation `i` lies
/// at `x + 2i`, which is `{hq} + {k}` when `{hq}` starts at `x + n` bytes and advances with
/// `{k}`: one register offset serves bytes and halfwords.
#[inline(always)]
pub(super) fn i8_block<const G: usize>(w: [&[i8]; G], x: &[i16], n: usize) -> [i32; G] {
    let k = n.wrapping_neg();
    let hq = x.as_ptr().cast::<u8>().wrapping_add(n);
    // Row ends as addresses (the sums come back in the same registers).
    let end = |g: usize| {
        w.get(g)
            .map_or(0, |row| row.as_ptr().wrapping_add(n) as usize)
    };
    // SAFETY (every pass below): reads weights `0..n` of each row and activations `0..n` of `x`
    // (callers guarantee the lengths), with byte and halfword loads; saves and restores r7 on
    // the stack; the high registers it uses are declared clobbered; writes no other memory.
    let sums = match G {
        4 => unsafe {
            let (mut a, mut b, mut c, mut d) = (end(0), end(1), end(2), end(3));
            w8a16_rows_pass!(hq, k; a => "r8", b => "r9", c => "r10", d => "r11");
            [a, b, c, d]
        },
        3 => unsafe {
            let (mut a, mut b, mut c) = (end(0), end(1), end(2));
            w8a16_rows_pass!(hq, k; a => "r8", b => "r9", c => "r10");
            [a, b, c, 0]
        },
        _ => unsafe {
            let (mut a, mut b) = (end(0), end(1));
            w8a16_rows_pass!(hq, k; a => "r8", b => "r9");
            [a, b, 0, 0]
        },
    };
    // The sums come back in the registers that brought the row ends.
    core::array::from_fn(|g| sums.get(g).map_or(0, |&v| v as u32 as i32))
}
