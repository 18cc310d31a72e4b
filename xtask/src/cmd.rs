//! Running external commands: echo them, fail with a message that names them.

use std::{
    ffi::OsStr,
    path::Path,
    process::{Command, Output},
};

use anyhow::{bail, Context, Result};

/// A `Command` for `program args…`, run in `dir`.
pub fn command<S: AsRef<OsStr>>(dir: &Path, program: &str, args: &[S]) -> Command {
    let mut command = Command::new(program);
    command.args(args).current_dir(dir);
    command
}

/// `cargo args…` run in `dir`.
pub fn cargo<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Command {
    command(dir, "cargo", args)
}

/// The command as a shell-like line, for messages.
pub fn describe(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Runs `command` with inherited stdio; fails unless it exits 0.
pub fn run(mut command: Command) -> Result<()> {
    let line = describe(&command);
    println!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{line}` (is it installed and on PATH?)"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `command` quietly and returns its output; fails unless it exits 0.
pub fn output(mut command: Command) -> Result<Output> {
    let line = describe(&command);
    let output = command
        .output()
        .with_context(|| format!("could not start `{line}` (is it installed and on PATH?)"))?;
    if !output.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

pub use tinyrnn_sim::target::build::on_path;
