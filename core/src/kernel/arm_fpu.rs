//! Hand-scheduled `f32` kernels for Cortex-M cores with a single-precision FPU (`*eabihf`),
//! feature `asm`: where LLVM emits separate loads, multiplies and adds, these loops load
//! several values per `VLDM` and multiply-accumulate with `VMLA.F32`.
//!
//! | kernel | instructions | per term |
//! |---|---|---|
//! | [`dot_f32`] | `VLDM` eight values per instruction, `VMLA.F32` | 1.5 (+13 per call) |
//! | [`accumulate_rows`] | 2–4 gate rows per pass, one `VLDM` of four inputs for all rows | 1.31 (4 rows) |
//!
//! [`dot_f32`] is [`portable::dot_f32`] bit for bit: `VMLA.F32` (unlike `VFMA`) rounds the
//! product before adding it, like `lane += w * x` in Rust. [`accumulate_rows`] sums each row in
//! order instead, its own definition (checked by the firmware self-test). Safety: the loops read
//! only the `n` elements of slices that hold at least `n`, `VLDM` only word-aligned data.
#![allow(unsafe_code)]

use super::portable;

/// `Σ w[k] · x[k]` in `f32` with `VLDM` and `VMLA.F32`: the same lanes, roundings and final
/// additions as [`portable::dot_f32`].
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
static LANES_ZERO: [f32; 8] = [0.0; 8];

/// One row's share of a block of four elements in [`accumulate_rows`]: load the row's next four
/// weights and multiply-accumulate them with the four activations in s4–s7.
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
/// of `k`, with every element of `v` loaded once for all rows: the fused gate rows of `f32`'s
/// `Schedule::preact_rows` and `Schedule::gru_preacts`.
///
/// Per block of four elements: one `VLDM` of `v`, and per row one `VLDM` of weights and four
/// `VMLA.F32` — 1.31 instructions per multiply-accumulate for `G` = 4, 1.33 for 3.
/// Returns `false`, having done nothing, for a `G` other than 2, 3 or 4 or when a row's length
/// is not `v.len()`.
///
/// The rows sum in order (`((acc + w₀v₀) + w₁v₁) + …`), not in the eight lanes of
/// [`portable::dot_f32`]: an `f32` model on these cores differs from the host in rounding only
/// (what `tinyrnn verify` allows for `f32`, 1e-5).
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
