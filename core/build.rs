//! Sets the cfgs that pick this build's kernels (`src/kernel/mod.rs` lists them):
//!
//! * `tinyrnn_host_simd`: x86-64 and AArch64 under a desktop or server OS ([`HOST_OS`]). Only
//!   these get the `wide` vectors of `kernel/host.rs` and the lane-layout copy of a layer's
//!   weights; a microcontroller, with or without an RTOS, does not. `wide`'s target in
//!   `Cargo.toml` lists the same systems.
//! * `tinyrnn_fused_f32`: such x86-64 hosts built with FMA; their `f32` multiply-adds round once.
//! * `tinyrnn_no_long_multiply`: cores without a 32 × 32 → 64-bit multiply (Cortex-M0/M0+/M23).
//! * With the `asm` feature, the hand-written Arm kernels. Stable Rust does not expose Arm target
//!   features to `cfg`, so the target name stands in for them: `thumbv7em-*` always has the DSP
//!   extension (`tinyrnn_asm_dsp`), `thumbv8m.main-*` only when built with `+dsp` (as the
//!   firmware's Cortex-M33 configuration is); `*eabihf` targets have an FPU (`tinyrnn_asm_fpu`);
//!   `thumbv6m-*` is ARMv6-M (`tinyrnn_asm_armv6m`), `thumbv7m-*` ARMv7-M (`tinyrnn_asm_armv7m`).

use std::env;

/// The operating systems of hosts. Any other (`none`, an RTOS such as `espidf` or `nuttx`, …)
/// runs the portable `f32` paths.
const HOST_OS: &[&str] = &[
    "linux",
    "android",
    "macos",
    "ios",
    "windows",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "illumos",
    "solaris",
];

fn main() {
    for cfg in [
        "tinyrnn_host_simd",
        "tinyrnn_fused_f32",
        "tinyrnn_no_long_multiply",
        "tinyrnn_asm_dsp",
        "tinyrnn_asm_fpu",
        "tinyrnn_asm_armv6m",
        "tinyrnn_asm_armv7m",
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let (arch, os) = (var("CARGO_CFG_TARGET_ARCH"), var("CARGO_CFG_TARGET_OS"));
    let host_simd = matches!(arch.as_str(), "x86_64" | "aarch64") && HOST_OS.contains(&os.as_str());
    if host_simd {
        println!("cargo::rustc-cfg=tinyrnn_host_simd");
    }
    // `-C target-cpu=native` on any x86-64 CPU since 2013.
    let features = var("CARGO_CFG_TARGET_FEATURE");
    if host_simd && arch == "x86_64" && features.split(',').any(|f| f == "fma") {
        println!("cargo::rustc-cfg=tinyrnn_fused_f32");
    }
    let target = var("TARGET");
    if target.starts_with("thumbv6m-") || target.starts_with("thumbv8m.base-") {
        println!("cargo::rustc-cfg=tinyrnn_no_long_multiply");
    }
    if env::var_os("CARGO_FEATURE_ASM").is_none() {
        return;
    }
    let rustflags = var("CARGO_ENCODED_RUSTFLAGS");
    let dsp = target.starts_with("thumbv7em-")
        || (target.starts_with("thumbv8m.main-") && rustflags.contains("+dsp"));
    if dsp {
        println!("cargo::rustc-cfg=tinyrnn_asm_dsp");
    }
    // ARMv8-M Baseline has the same instructions, but no machine here runs it: only ARMv6-M.
    if target.starts_with("thumbv6m-") {
        println!("cargo::rustc-cfg=tinyrnn_asm_armv6m");
    }
    // Cortex-M3: Thumb-2 without the DSP extension. (ARMv8-M Mainline without `+dsp` has the
    // same instructions; no machine here runs it.)
    if target.starts_with("thumbv7m-") {
        println!("cargo::rustc-cfg=tinyrnn_asm_armv7m");
    }
    if target.starts_with("thumbv") && target.ends_with("eabihf") {
        println!("cargo::rustc-cfg=tinyrnn_asm_fpu");
    }
}
