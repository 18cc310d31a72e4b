//! Running models on microcontroller targets: building the firmware (`firmware/`, its own cargo
//! workspace), running it under QEMU with its defmt log decoded, reading ELF sizes and symbols,
//! and the on-target verification and benchmark flows behind `tinyrnn verify` and
//! `tinyrnn bench`.
//!
//! The firmware is found at `$TINYRNN_FIRMWARE_DIR`, or else at `firmware/` beside this crate
//! (the source checkout the binary was built from). Runs started at the same time from one
//! checkout do not see each other's firmware: see [`isolation`].

pub mod bench;
pub mod build;
pub mod cases;
pub mod classify;
pub mod defmt_log;
pub mod elf;
pub mod isolation;
pub mod qemu;
pub mod verify;

use std::path::{Path, PathBuf};

/// The repository root (the directory holding `firmware/`, `host-sim/`, …).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-sim lives one level below the repository root")
}

/// The firmware workspace: `$TINYRNN_FIRMWARE_DIR` or `<repo>/firmware`.
pub fn firmware_dir() -> PathBuf {
    std::env::var_os("TINYRNN_FIRMWARE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("firmware"))
}

/// Every ARM target triple, in the order of [`qemu::MACHINES`].
pub fn all_targets() -> Vec<&'static str> {
    qemu::MACHINES.iter().map(|m| m.target).collect()
}

/// Expands `all` to every target and checks the others are known.
pub fn parse_targets(list: &[String]) -> anyhow::Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for item in list.iter().flat_map(|s| s.split(',')) {
        let item = item.trim();
        if item == "all" {
            out.extend(all_targets());
        } else if !item.is_empty() {
            out.push(qemu::Machine::for_target(item)?.target);
        }
    }
    out.dedup();
    if out.is_empty() {
        anyhow::bail!("no target given (use --target <triple> or --target all)");
    }
    Ok(out)
}

/// Whether `target` has a hardware FPU (f32 is benchmarked only there).
pub fn has_fpu(target: &str) -> bool {
    target.ends_with("eabihf")
}
