//! Building firmware binaries: `cargo build --release --target T` in the firmware workspace,
//! with the tools checked first (a missing rustup target is reported with its install hint).

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::isolation::FirmwareLock;

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
    /// The ELF file (a run's copy from [`super::isolation::build_cases`] is removed with its
    /// run directory).
    pub elf: PathBuf,
    /// Wall-clock build time.
    pub elapsed: Duration,
}

/// `cargo build --release --target <target> --bin <bin> [--features …]` in the locked firmware
/// workspace; cargo's output is shown only when the build fails (or `verbose`). The returned
/// ELF is cargo's own output file, which the next build overwrites: read or copy it before the
/// lock is released ([`super::isolation::build_cases`] copies it into a run directory).
pub fn build_bin(
    lock: &FirmwareLock,
    target: &str,
    bin: &str,
    features: &[&str],
    verbose: bool,
) -> Result<Built> {
    ensure_rustup_target(target)?;
    let firmware_dir = lock.firmware_dir();
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
        elf: lock.target_dir().join(target).join("release").join(bin),
        elapsed,
    })
}

/// Name prefix of the temporary files [`write_if_changed`] renames into place.
pub const TEMP_PREFIX: &str = ".tmp-tinyrnn-";

/// Writes `contents` to `path` unless it already holds exactly that (an unchanged file keeps
/// its timestamp, so cargo does not rebuild the firmware for nothing). The text goes to a
/// temporary file in the same directory, renamed into place when complete, so a run killed
/// half-way never leaves a truncated source behind.
pub fn write_if_changed(path: &Path, contents: &str) -> Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        return Ok(false);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // A source file like any other in the tree (tempfile's default is owner-only).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut temp = builder
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    temp.write_all(contents.as_bytes())
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("writing {}", temp.path().display()))?;
    temp.persist(path)
        .with_context(|| format!("renaming a temporary file to {}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_if_changed_replaces_whole_files_and_keeps_unchanged_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested").join("case_0.rs");
        assert!(write_if_changed(&path, "one").expect("write"));
        let first = std::fs::metadata(&path)
            .expect("meta")
            .modified()
            .expect("mtime");
        assert!(!write_if_changed(&path, "one").expect("write"));
        assert_eq!(
            std::fs::metadata(&path)
                .expect("meta")
                .modified()
                .expect("mtime"),
            first,
            "an unchanged file was rewritten"
        );
        assert!(write_if_changed(&path, "two, longer").expect("write"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two, longer");
        // Only the file itself: no temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("case_0.rs")]);
    }
}
