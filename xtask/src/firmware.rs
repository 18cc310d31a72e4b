//! Building the firmware (`firmware/`, its own workspace) and running its binaries under QEMU.

use std::{path::PathBuf, time::Instant};

use std::path::Path;

use anyhow::{bail, Context, Result};
use tinyrnn_sim::target::{
    defmt_log::LogLine,
    qemu::{self, Machine, MACHINES},
};

use crate::{cmd, repo_path};

/// Firmware binaries run by `cargo xtask test`, with the exit status each must give.
pub const SELF_TESTS: &[(&str, i32)] = &[
    ("selftest", 0),
    // The failure paths must fail loudly: a panic and a HardFault each exit non-zero.
    ("expect_panic", 101),
    ("expect_hardfault", 102),
];

/// The target whose build is linted with clippy (one is enough: the code is target-independent).
pub const CLIPPY_TARGET: &str = "thumbv7em-none-eabihf";

/// `cargo build --release --bins --target <target>` in `firmware/`; returns the directory
/// holding the ELF files.
pub fn build(target: &str) -> Result<PathBuf> {
    let dir = repo_path("firmware");
    let started = Instant::now();
    cmd::run(cmd::cargo(
        &dir,
        &["build", "--release", "--bins", "--target", target],
    ))?;
    println!(
        "built firmware for {target} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(dir.join("target").join(target).join("release"))
}

/// Builds the firmware for `target` and runs each of `bins` under QEMU, checking exit statuses
/// and printing instruction counts.
pub fn build_and_run(target: &str, bins: &[(&str, i32)]) -> Result<()> {
    let machine = Machine::for_target(target)?;
    let elf_dir = build(target)?;
    for (bin, expected) in bins {
        println!(
            "-- {bin} on {target} (QEMU {}), expecting exit status {expected}",
            machine.machine
        );
        let run = qemu::run_expecting(&elf_dir.join(bin), target, *expected, "   | ")?;
        if run.lines.is_empty() {
            bail!(
                "{bin} on {target} exited {expected} but logged nothing (defmt transport broken?)"
            );
        }
        println!(
            "   exit status {expected} as expected ({} ms)",
            run.elapsed.as_millis()
        );
        report_instruction_counts(machine, &run.lines);
    }
    Ok(())
}

/// Converts `icount <name> n=<iterations> ticks=<ticks>` log lines to instruction counts.
fn report_instruction_counts(machine: &Machine, lines: &[LogLine]) {
    for line in lines {
        let Some((name, iterations, ticks)) = parse_icount(&line.message) else {
            continue;
        };
        let instructions = machine.instructions_u64(ticks);
        println!(
            "   icount {name} on {}: {iterations} iterations = {ticks} ticks / {} = {instructions:.1} \
             instructions ({:.2} per iteration)",
            machine.target,
            machine.ticks_per_instruction,
            instructions / f64::from(iterations.max(1)),
        );
    }
}

/// Parses `icount <name> n=<iterations> ticks=<ticks>`.
fn parse_icount(message: &str) -> Option<(&str, u32, u64)> {
    let mut words = message.strip_prefix("icount ")?.split_whitespace();
    let name = words.next()?;
    let iterations = words.next()?.strip_prefix("n=")?.parse().ok()?;
    let ticks = words.next()?.strip_prefix("ticks=")?.parse().ok()?;
    Some((name, iterations, ticks))
}

/// `cargo xtask firmware [--target T]... [--bin B]...`.
pub fn command(args: &[String]) -> Result<()> {
    let mut targets = Vec::new();
    let mut bins = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--target" => targets.push(crate::flag_value(args, &mut i)?),
            "--bin" => bins.push(crate::flag_value(args, &mut i)?),
            other => bail!("unexpected argument `{other}` for `cargo xtask firmware`"),
        }
        i += 1;
    }
    if targets.is_empty() {
        targets = MACHINES
            .iter()
            .map(|machine| machine.target.to_owned())
            .collect();
    }
    let chosen: Vec<(&str, i32)> = if bins.is_empty() {
        SELF_TESTS.to_vec()
    } else {
        bins.iter()
            .map(|bin| {
                let expected = SELF_TESTS
                    .iter()
                    .find(|(name, _)| name == bin)
                    .map_or(0, |(_, code)| *code);
                (bin.as_str(), expected)
            })
            .collect()
    };
    crate::tools::ensure_firmware_tools()?;
    for target in &targets {
        build_and_run(target, &chosen)?;
    }
    Ok(())
}

/// `cargo xtask qemu --target <triple> <elf>`: run one ELF, exit with the firmware's status.
pub fn qemu_command(args: &[String]) -> Result<()> {
    let mut target = None;
    let mut elf = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--target" => target = Some(crate::flag_value(args, &mut i)?),
            arg if !arg.starts_with('-') && elf.is_none() => elf = Some(arg.to_owned()),
            other => bail!(
                "unexpected argument `{other}` (usage: cargo xtask qemu --target <triple> <elf>)"
            ),
        }
        i += 1;
    }
    let target = target.context("`cargo xtask qemu` needs --target <triple>")?;
    let elf = elf.context("`cargo xtask qemu` needs the path of an ELF file")?;
    let timeout = qemu::timeout()?;
    let run = qemu::run_in_qemu(Path::new(&elf), &target, timeout, "")?;
    if run.timed_out {
        bail!("timed out after {} s (QEMU killed)", timeout.as_secs());
    }
    match run.exit_code {
        Some(0) => Ok(()),
        Some(code) => std::process::exit(code),
        None => bail!("QEMU was killed by a signal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_icount_lines() {
        assert_eq!(
            parse_icount("icount dummy_loop n=1000 ticks=128000"),
            Some(("dummy_loop", 1000, 128000))
        );
        assert_eq!(parse_icount("selftest: pass"), None);
        assert_eq!(parse_icount("icount x n=1 ticks=oops"), None);
    }
}
