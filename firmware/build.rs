//! Picks the `memory.x` for the QEMU machine that runs each target and puts it on the
//! linker's search path (`link.x` from cortex-m-rt includes `memory.x`).

use std::{env, fs, path::PathBuf};

/// Target triple → memory map file in `memory/` (the machines are the runners of
/// `.cargo/config.toml`).
const MEMORY_MAPS: &[(&str, &str)] = &[
    ("thumbv6m-none-eabi", "microbit-m0.x"),
    ("thumbv7m-none-eabi", "lm3s6965evb-m3.x"),
    ("thumbv7em-none-eabihf", "mps2-an386-m4f.x"),
    ("thumbv8m.main-none-eabihf", "mps2-an505-m33.x"),
];

fn main() {
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let Some((_, file)) = MEMORY_MAPS.iter().find(|(t, _)| *t == target) else {
        let known: Vec<&str> = MEMORY_MAPS.iter().map(|(t, _)| *t).collect();
        panic!(
            "tinyrnn-firmware has no memory map for target `{target}`; pass --target one of: {}",
            known.join(", ")
        );
    };
    let src = PathBuf::from("memory").join(file);
    fs::copy(&src, out.join("memory.x")).expect("copy memory map to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed=build.rs");
}
