//! `cargo xtask <command>`: set-up and orchestration for tinyrnn.
//!
//! Commands:
//! - `test [--only a,b] [--skip a,b] [--list]`: every test, as a list of named steps.
//! - `demo [--only a,b] [--skip a,b] [--list]`: the quick-start demo (train → quantise →
//!   firmware under QEMU → accuracy on the host and on each device).
//! - `qemu-setup`: installs what the firmware steps need (rustup targets, QEMU).
//! - `firmware [--target T]... [--bin B]...`: builds firmware and runs it under QEMU.
//! - `qemu --target T <elf>`: runs one firmware ELF under QEMU, decoding its defmt log.
//! - `fuzz --seconds N [--target NAME]...`: the cargo-fuzz targets of `fuzz/`, N seconds each.

mod checks;
mod cmd;
mod demo;
mod firmware;
mod fuzz;
mod steps;
mod test;
mod tools;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test        run every test (steps: see `cargo xtask test --list`)
  demo        train a GRU on BasicMotions, quantise it to q15, classify every test
              recording on Cortex-M4F and Cortex-M0 under QEMU; one table of results
  qemu-setup  install the rustup targets and QEMU the firmware steps need
  firmware    build firmware binaries and run them under QEMU
                --target <triple>  (repeatable; default: every ARM target)
                --bin <name>       (repeatable; default: every self-test binary)
  qemu        run one firmware ELF under QEMU and decode its defmt log
                --target <triple> <path/to/elf>
  fuzz        run the cargo-fuzz targets of fuzz/ (installs cargo-fuzz if missing), saving
              crashes under fuzz/regressions/<target>/; fails if any target crashed
                --seconds <N>      time per target (required)
                --target <name>    (repeatable; default: every target)

options for test and demo:
  --only <step,...>  run only these steps
  --skip <step,...>  run every step but these
  --list             list the steps and exit
";

fn main() {
    if let Err(error) = run() {
        eprintln!("xtask: error: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || matches!(args[0].as_str(), "-h" | "--help" | "help") {
        print!("{USAGE}");
        return Ok(());
    }
    let command = args.remove(0);
    match command.as_str() {
        "test" => steps::run_selected("test", &test::steps(), &args),
        "demo" => steps::run_selected("demo", &demo::steps(), &args),
        "qemu-setup" => {
            no_extra_args(&args)?;
            tools::ensure_firmware_tools()
        }
        "firmware" => firmware::command(&args),
        "qemu" => firmware::qemu_command(&args),
        "fuzz" => fuzz::command(&args),
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

fn no_extra_args(args: &[String]) -> Result<()> {
    if let Some(arg) = args.first() {
        bail!("unexpected argument `{arg}`\n\n{USAGE}");
    }
    Ok(())
}

/// The root of the repository (the workspace that contains `xtask/`).
pub fn repo_root() -> &'static Path {
    tinyrnn_sim::target::repo_root()
}

/// `repo_root()/relative`.
pub fn repo_path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

/// Takes the value of `--flag <value>` at `args[*i]`, advancing `i`.
pub fn flag_value(args: &[String], i: &mut usize) -> Result<String> {
    let flag = &args[*i];
    *i += 1;
    args.get(*i)
        .cloned()
        .with_context(|| format!("`{flag}` needs a value"))
}
