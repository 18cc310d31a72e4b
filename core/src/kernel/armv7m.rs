//! Cortex-M3 (ARMv7-M without the DSP extension) multi-row kernels (feature `asm`): w8a16
//! (`i8_block`) and q15 (`i16_rows`).
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
//!
//! q15 rows need 64-bit sums (`SMLAL`, two registers per row), so `i16_rows` runs two or three
//! rows per pass (no registers are left for a fourth), four terms per iteration: 2.75 (2 rows)
//! or 2.5 (3 rows) instructions per row and term with the loop, against 3 for one row
//! (`LDRSH`, `LDRSH`, `SMLAL`). An LSTM unit's four rows take two passes of two, which costs
//! fewer instructions and less stack than three rows plus one.
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

/// Rows shorter than this stay with the portable kernel (LLVM unrolls them; the pass's setup
/// costs more there).
pub(super) const I16_ROWS_MIN: usize = 16;

/// One q15 term of every row: the activation at `{x}` into `{h}`, each row's weight into `{t}`,
/// their product added to the row's 64-bit sum `{lo}`/`{hi}` (`SMLAL`); every pointer
/// post-incremented.
macro_rules! smlal_term {
    ($($row:expr => $lo:expr, $hi:expr),+) => {
        concat!(
            "ldrsh {h}, [{x}], #2\n",
            $(
                "ldrsh {t}, [{", $row, "}], #2\n",
                "smlal {", $lo, "}, {", $hi, "}, {t}, {h}\n",
            )+
        )
    };
}

/// One pass of `i16_rows` over the rows `$row` into the 64-bit sums `$lo`/`$hi`, four terms
/// per iteration.
macro_rules! smlal_rows_pass {
    ($x:expr, $n:expr; $($row:ident => $lo:ident, $hi:ident),+) => {
        core::arch::asm!(
            "2:",
            smlal_term!($(stringify!($row) => stringify!($lo), stringify!($hi)),+),
            smlal_term!($(stringify!($row) => stringify!($lo), stringify!($hi)),+),
            smlal_term!($(stringify!($row) => stringify!($lo), stringify!($hi)),+),
            smlal_term!($(stringify!($row) => stringify!($lo), stringify!($hi)),+),
            "subs {n}, {n}, #4",
            "bne 2b",
            x = inout(reg) $x => _,
            n = inout(reg) $n => _,
            h = out(reg) _,
            t = out(reg) _,
            $($row = inout(reg) $row => _,)+
            $($lo = inout(reg) $lo,)+
            $($hi = inout(reg) $hi,)+
            options(nostack, readonly),
        )
    };
}

/// The `G` rows' exact sums `Σ w[g][k] · x[k]` over `k < n` (2 ≤ `G` ≤ 4), for `n` a
/// multiple of 4, `n ≥ 4`, and rows of at least `n` weights; see `kernel::dot_i16_rows`.
#[inline(always)]
pub(super) fn i16_rows<const G: usize>(w: [&[i16]; G], x: &[i16], n: usize) -> [i64; G] {
    let start = |g: usize| w.get(g).map_or(core::ptr::null(), |row| row.as_ptr());
    let sum = |lo: u32, hi: u32| ((hi as u64) << 32 | lo as u64) as i64;
    // SAFETY (every pass below): reads weights `0..n` of each row and activations `0..n` of `x`
    // (callers guarantee the lengths) with halfword loads; no stack, no other memory.
    let sums = match G {
        3 => unsafe {
            let (a, b, c) = (start(0), start(1), start(2));
            let (mut la, mut lb, mut lc, mut ha, mut hb, mut hc) = (0u32, 0u32, 0u32, 0, 0, 0);
            smlal_rows_pass!(x.as_ptr(), n; a => la, ha, b => lb, hb, c => lc, hc);
            [sum(la, ha), sum(lb, hb), sum(lc, hc), 0]
        },
        _ => unsafe {
            let mut sums = [0i64; 4];
            // Rows 0 and 1, then (for four rows) rows 2 and 3.
            for first in (0..G.min(4)).step_by(2) {
                let (a, b) = (start(first), start(first + 1));
                let (mut la, mut lb, mut ha, mut hb) = (0u32, 0u32, 0u32, 0u32);
                smlal_rows_pass!(x.as_ptr(), n; a => la, ha, b => lb, hb);
                if let Some(pair) = sums.get_mut(first..first + 2) {
                    pair.copy_from_slice(&[sum(la, ha), sum(lb, hb)]);
                }
            }
            sums
        },
    };
    core::array::from_fn(|g| sums.get(g).copied().unwrap_or(0))
}
