//! Decides which hand-written Arm kernels (`kernel/arm.rs`) this build may use.
//!
//! Stable Rust does not expose Arm target features to `cfg`, so the target name stands in for
//! them: `thumbv7em-*` always has the DSP extension (`SMLALD`); `thumbv8m.main-*` has it only
//! when the build enables `+dsp` (as the firmware's Cortex-M33 configuration does). `*eabihf`
//! targets have a single-precision FPU (`VLDM`, `VMLA.F32`). Nothing is enabled without the
//! `asm` feature.
//!
//! It also marks the cores without a 32 × 32 → 64-bit multiply (`thumbv6m-*`, `thumbv8m.base-*`:
//! Cortex-M0/M0+/M23), where an `i64` product is a library call: `tinyrnn_no_long_multiply`.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_asm_dsp)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_asm_fpu)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_asm_thumb1)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_asm_thumb2)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_no_long_multiply)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv6m-") || target.starts_with("thumbv8m.base-") {
        println!("cargo::rustc-cfg=tinyrnn_no_long_multiply");
    }
    if env::var_os("CARGO_FEATURE_ASM").is_none() {
        return;
    }
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let dsp = target.starts_with("thumbv7em-")
        || (target.starts_with("thumbv8m.main-") && rustflags.contains("+dsp"));
    if dsp {
        println!("cargo::rustc-cfg=tinyrnn_asm_dsp");
    }
    // ARMv8-M Baseline has the same instructions, but no machine here runs it: only ARMv6-M.
    if target.starts_with("thumbv6m-") {
        println!("cargo::rustc-cfg=tinyrnn_asm_thumb1");
    }
    // Cortex-M3: Thumb-2 without the DSP extension. (ARMv8-M Mainline without `+dsp` has the
    // same instructions; no machine here runs it.)
    if target.starts_with("thumbv7m-") {
        println!("cargo::rustc-cfg=tinyrnn_asm_thumb2");
    }
    if target.starts_with("thumbv") && target.ends_with("eabihf") {
        println!("cargo::rustc-cfg=tinyrnn_asm_fpu");
    }
}
