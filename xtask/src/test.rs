//! `cargo xtask test`: every test, as a list of named steps (append new steps here).

use anyhow::Result;

use tinyrnn_sim::target::qemu::MACHINES;

use crate::{checks, cmd, firmware, repo_path, repo_root, steps::Step, tools};

/// Targets the core crate must build for: no FPU (M0) and FPU (M4F).
const CORE_TARGETS: &[&str] = &["thumbv6m-none-eabi", "thumbv7em-none-eabihf"];

/// The steps of `cargo xtask test`, in order.
pub fn steps() -> Vec<Step> {
    vec![
        Step {
            name: "tools",
            about: "rustup targets and QEMU installed",
            run: tools::ensure_firmware_tools,
        },
        Step {
            name: "fmt",
            about: "cargo fmt --check (host workspace and firmware)",
            run: fmt,
        },
        Step {
            name: "clippy",
            about: "cargo clippy -D warnings (host workspace and firmware)",
            run: clippy,
        },
        Step {
            name: "test",
            about: "cargo test --workspace",
            run: cargo_test,
        },
        Step {
            name: "test-fma",
            about: "cargo test -p tinyrnn built with FMA (the fused f32 multiply-adds of `-C target-cpu=native` on x86-64)",
            run: core_tests_with_fma,
        },
        Step {
            name: "core-targets",
            about: "core (tinyrnn) builds for Cortex-M0 and Cortex-M4F, with and without `defmt` and `asm`",
            run: core_targets,
        },
        Step {
            name: "firmware",
            about: "firmware self-tests under QEMU on every ARM target",
            run: firmware_self_tests,
        },
        Step {
            name: "verify",
            about: "tinyrnn verify: PyTorch fixtures × f32/f32-fast/q15/w8a16 on every ARM target",
            run: checks::verify_fixtures,
        },
        Step {
            name: "verify-corrupt",
            about: "a corrupted golden vector makes tinyrnn verify fail at that step",
            run: checks::verify_corrupt,
        },
        Step {
            name: "verify-concurrent",
            about: "two tinyrnn verify runs at once (different models, same target) each report their own result",
            run: checks::verify_concurrent,
        },
        Step {
            name: "panic-free",
            about: "inference firmware links without a panic handler (M0, M4F)",
            run: checks::panic_free,
        },
        Step {
            name: "integer-only",
            about: "fixed-point inference on Cortex-M0 links no soft-float routine",
            run: checks::integer_only,
        },
        Step {
            name: "overflow",
            about: "tinyrnn-sim and tinyrnn-tests again as a release build with overflow checks (target/overflow): the tool, its readers, the CLI tests, the fuzz replay",
            run: tests_with_overflow_checks,
        },
    ]
}

fn fmt() -> Result<()> {
    cmd::run(cmd::cargo(repo_root(), &["fmt", "--all", "--check"]))?;
    // Not `--all`: in the firmware workspace that would also reach the path dependency `core`
    // and, through it, the host workspace.
    cmd::run(cmd::cargo(&repo_path("firmware"), &["fmt", "--check"]))
}

fn clippy() -> Result<()> {
    cmd::run(cmd::cargo(
        repo_root(),
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    ))?;
    cmd::run(cmd::cargo(
        &repo_path("firmware"),
        &[
            "clippy",
            "--release",
            "--all-targets",
            "--target",
            firmware::CLIPPY_TARGET,
            "--",
            "-D",
            "warnings",
        ],
    ))
}

fn cargo_test() -> Result<()> {
    cmd::run(cmd::cargo(repo_root(), &["test", "--workspace"]))
}

/// Flags of an x86-64 build whose `f32` multiply-adds are fused (cfg `tinyrnn_fused_f32`).
const FMA_RUSTFLAGS: &str = "-C target-feature=+avx2,+fma";

/// The core tests again in an FMA build (its own target directory), where every `f32`
/// multiply-add of the definition rounds once: all host paths must still agree bit for bit and
/// the activations keep their error bounds. Needs an x86-64 CPU with FMA to run them.
fn core_tests_with_fma() -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        let mut command = cmd::cargo(repo_root(), &["test", "-p", "tinyrnn"]);
        command
            .env("RUSTFLAGS", FMA_RUSTFLAGS)
            .env("CARGO_TARGET_DIR", repo_path("target/fma"));
        return cmd::run(command);
    }
    println!("test-fma: not run, this machine's CPU has no AVX2/FMA (the build's tests need one)");
    Ok(())
}

fn core_targets() -> Result<()> {
    for target in CORE_TARGETS {
        cmd::run(cmd::cargo(
            repo_root(),
            &["build", "-p", "tinyrnn", "--release", "--target", target],
        ))?;
        // The optional features build too: `defmt` (defmt::Format on public types) and `asm`
        // (the hand-scheduled Arm kernels, which clippy also checks on the target).
        cmd::run(cmd::cargo(
            repo_root(),
            &[
                "build",
                "-p",
                "tinyrnn",
                "--release",
                "--features",
                "defmt,asm",
                "--target",
                target,
            ],
        ))?;
        cmd::run(cmd::cargo(
            repo_root(),
            &[
                "clippy",
                "-p",
                "tinyrnn",
                "--release",
                "--features",
                "asm",
                "--target",
                target,
                "--",
                "-D",
                "warnings",
            ],
        ))?;
    }
    Ok(())
}

fn firmware_self_tests() -> Result<()> {
    for machine in MACHINES {
        firmware::build_and_run(machine.target, firmware::SELF_TESTS)?;
    }
    Ok(())
}

/// The host tool's tests and the cross-crate tests (CLI, parity, fuzz replay) again as a release
/// build with overflow checks, in its own target directory (`target/overflow`, so that
/// `target/release` keeps its profile). The CLI tests run the `tinyrnn` binary of the profile
/// they were built with, so it is this build of the tool that they exercise, and the fuzz replay
/// runs every seed and saved crash through the optimised code with the checks on: an overflow
/// that would wrap silently in an ordinary release build panics here. The ordinary test build
/// (`test`) has overflow checks already, which is enough for `core`'s own tests, so they are not
/// built again. Debug info is off: nothing here needs it and it slows the build. Every test
/// binary runs even when one fails, so one run shows every overflow.
fn tests_with_overflow_checks() -> Result<()> {
    let mut command = cmd::cargo(
        repo_root(),
        &[
            "test",
            "--release",
            "--no-fail-fast",
            "-p",
            "tinyrnn-sim",
            "-p",
            "tinyrnn-tests",
        ],
    );
    command
        .env("CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS", "true")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_TARGET_DIR", repo_path("target/overflow"));
    cmd::run(command)
}
