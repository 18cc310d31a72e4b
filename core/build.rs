//! Decides which hand-written Arm kernels (`kernel/arm.rs`) this build may use.
//!
//! Stable Rust does not expose Arm target features to `cfg`, so the target name stands in for
//! them: `thumbv7em-*` always has the DSP extension (`SMLALD`); `thumbv8m.main-*` has it only
//! when the build enables `+dsp` (as the firmware's Cortex-M33 configuration does). `*eabihf`
//! targets have a single-precision FPU (`VLDM`, `VMLA.F32`). Nothing is enabled without the
//! `asm` feature.
//!
//! It also marks the cores without a 32 × 32 → 64-bit multiply (`thumbv6m-*`, `thumbv8m.base-*`:
//! Cortex-M0/M0+/M23), where an `i64` product is a library call: `tinyrnn_no_long_multiply`,
//! and x86-64 host builds with FMA, whose `f32` multiply-adds round once: `tinyrnn_fused_f32`.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_asm_dsp)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_asm_fpu)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_asm_thumb1)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_asm_thumb2)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_no_long_multiply)");
    println!("cargo::rustc-check-cfg=cfg(tinyrnn_fused_f32)");
    // x86-64 hosts built with FMA (`-C target-cpu=native` on any x86-64 CPU since 2013): every
    // `f32` multiply-add of the definition rounds once (`kernel::portable::mul_add`).
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && features.split(',').any(|f| f == "fma")
    {
        println!("cargo::rustc-cfg=tinyrnn_fused_f32");
    }
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
