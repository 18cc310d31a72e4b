//! Cortex-M3 (ARMv7-M without the DSP extension) w8a16 kernel (feature `asm`).
//!
//! Without `SMLAD`, a w8a16 term costs a byte load, a halfword load and an `MLA`: three
//! instructions, which is what LLVM's unrolled portable rows give. A unit's gate rows share
//! their activations, so `i8_block` runs two to four rows in one pass with post-indexed loads:
//! one activation load for all rows, then a byte load and an `MLA` per row, two terms per
//! iteration:
//!
//! | rows | instructions per row and term |
//! |---|---|
//! | 4 (LSTM) | 2.5 |
//! | 3 (GRU) | 2.67 |
//! | 2 (an RNN's pair of units) | 3.0 |
//!
//! Exact like [`portable::dot_i8`](super::portable::dot_i8): a row's sum stays in `i32` for the
//! at most 510 terms of a block (see `kernel::dot_i8_rows_in_blocks`),
//! so the bits are the portable kernel's (the firmware self-test compares them on every length
//! 0–70 at every alignment and on rows of 601 terms, extremes included).
#![allow(unsafe_code)]

/// One w8a16 term of every row: the activation at `{x}` into `{h}`, each row's weight into
/// `{t}`, their product added to the row's sum; every pointer post-incremented.
macro_rules! mla_term {
    ($($row:expr => $sum:expr),+) => {
        concat!(
            "ldrsh {h}, [{x}], #2\n",
            $(
                "ldrsb {t}, [{", $row, "}], #1\n",
                "mla {", $sum, "}, {t}, {h}, {", $sum, "}\n",
            )+
        )
    };
}

/// One pass of `i8_block` over the rows `$row` (each variable holds its row's address) into
/// the sums `$sum`, two terms per iteration.
macro_rules! mla_rows_pass {
    ($x:ident, $n:ident; $($row:ident => $sum:ident),+) => {
        core::arch::asm!(
            "2:",
            mla_term!($(stringify!($row) => stringify!($sum)),+),
            mla_term!($(stringify!($row) => stringify!($sum)),+),
            "subs {n}, {n}, #2",
            "bne 2b",
            x = inout(reg) $x => _,
            n = inout(reg) $n => _,
            h = out(reg) _,
            t = out(reg) _,
            $($row = inout(reg) $row => _,)+
            $($sum = inout(reg) $sum,)+
            options(nostack, readonly),
        )
    };
}

/// The `G` rows' sums `Σ w[g][k] · x[k]` over `k < n` (2 ≤ `G` ≤ 4), for `n` even, 2 ≤ `n` ≤ 511
/// and rows of at least `n` weights (so each `i32` sum is exact); see
/// `kernel::dot_i8_rows_in_blocks`.
#[inline(always)]
pub(super) fn i8_block<const G: usize>(w: [&[i8]; G], x: &[i16], n: usize) -> [i32; G] {
    let start = |g: usize| w.get(g).map_or(core::ptr::null(), |row| row.as_ptr());
    let x = x.as_ptr();
    // SAFETY (every pass below): reads weights `0..n` of each row and activations `0..n` of `x`
    // (callers guarantee the lengths) with byte and halfword loads; no stack, no other memory.
    let sums = match G {
        4 => unsafe {
            let (a, b, c, d) = (start(0), start(1), start(2), start(3));
            let (mut sa, mut sb, mut sc, mut sd) = (0i32, 0i32, 0i32, 0i32);
            mla_rows_pass!(x, n; a => sa, b => sb, c => sc, d => sd);
            [sa, sb, sc, sd]
        },
        3 => unsafe {
            let (a, b, c) = (start(0), start(1), start(2));
            let (mut sa, mut sb, mut sc) = (0i32, 0i32, 0i32);
            mla_rows_pass!(x, n; a => sa, b => sb, c => sc);
            [sa, sb, sc, 0]
        },
        _ => unsafe {
            let (a, b) = (start(0), start(1));
            let (mut sa, mut sb) = (0i32, 0i32);
            mla_rows_pass!(x, n; a => sa, b => sb);
            [sa, sb, 0, 0]
        },
    };
    core::array::from_fn(|g| sums.get(g).copied().unwrap_or(0))
}
