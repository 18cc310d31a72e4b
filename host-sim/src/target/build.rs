//! Building firmware binaries: `cargo build --release --target T` in the firmware workspace,
//! with the tools checked first (a missing rustup target is reported with its install hint).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

/// Whether `program` is found on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Fails with the install hint when `target`'s standard library is not installed.
pub fn ensure_rustup_target(target: &str) -> Result<()> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output();
    let Ok(sysroot) = sysroot else {
        bail!("`rustc` not found on PATH (install Rust with rustup: https://rustup.rs)");
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
    {
        return Ok(());
    }
    bail!(
        "the Rust standard library for `{target}` is not installed; install it with \
         `rustup target add {target}` (or `cargo xtask qemu-setup` for every target)"
    )
}

/// What one firmware build produced.
#[derive(Clone, Debug)]
pub struct Built {
    /// The ELF file.
    pub elf: PathBuf,
    /// Wall-clock build time.
    pub elapsed: Duration,
}

/// `cargo build --release --target <target> --bin <bin> [--features …]` in `firmware_dir`;
/// cargo's output is shown only when the build fails (or `verbose`).
pub fn build_bin(
    firmware_dir: &Path,
    target: &str,
    bin: &str,
    features: &[&str],
    verbose: bool,
) -> Result<Built> {
    ensure_rustup_target(target)?;
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(firmware_dir).args([
        "build",
        "--release",
        "--target",
        target,
        "--bin",
        bin,
    ]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    // Variables cargo sets for build scripts and `cargo run` would leak into the nested build.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    let line = format!(
        "cargo build --release --target {target} --bin {bin}{}",
        if features.is_empty() {
            String::new()
        } else {
            format!(" --features {}", features.join(","))
        }
    );
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("could not start `{line}` in {}", firmware_dir.display()))?;
    let elapsed = started.elapsed();
    if verbose || !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    if !output.status.success() {
        bail!(
            "firmware build failed: `{line}` in {} ({})",
            firmware_dir.display(),
            output.status
        );
    }
    Ok(Built {
        elf: firmware_dir
            .join("target")
            .join(target)
            .join("release")
            .join(bin),
        elapsed,
    })
}

/// Writes `contents` to `path` unless it already holds exactly that (an unchanged file keeps
/// its timestamp, so cargo does not rebuild the firmware for nothing).
pub fn write_if_changed(path: &Path, contents: &str) -> Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}
