//! Making sure the tools the firmware steps need are installed: rustup targets and QEMU.

use anyhow::{bail, Result};

use tinyrnn_sim::target::qemu::MACHINES;

use crate::{cmd, repo_root};

/// Installs the missing rustup targets (one `rustup target add` for all missing ones) and
/// `qemu-system-arm` (with apt-get, when we are root and have it).
pub fn ensure_firmware_tools() -> Result<()> {
    ensure_rustup_targets()?;
    ensure_apt_program("qemu-system-arm", "qemu-system-arm")
}

fn ensure_rustup_targets() -> Result<()> {
    let wanted: Vec<&str> = MACHINES.iter().map(|machine| machine.target).collect();
    let installed = cmd::output(cmd::command(
        repo_root(),
        "rustup",
        &["target", "list", "--installed"],
    ))?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect();
    if missing.is_empty() {
        println!("rustup targets installed: {}", wanted.join(" "));
        return Ok(());
    }
    let mut args = vec!["target", "add"];
    args.extend(&missing);
    cmd::run(cmd::command(repo_root(), "rustup", &args))
}

/// Installs `package` with apt-get when `program` is not on PATH (one package per call; apt-get
/// update first, once per xtask run). Without root or apt-get, fails saying what to run.
fn ensure_apt_program(program: &str, package: &str) -> Result<()> {
    if cmd::on_path(program) {
        let version = cmd::output(cmd::command(repo_root(), program, &["--version"]))?;
        let version = String::from_utf8_lossy(&version.stdout);
        println!("{program}: {}", version.lines().next().unwrap_or("").trim());
        return Ok(());
    }
    let is_root = cmd::output(cmd::command(repo_root(), "id", &["-u"]))
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root || !cmd::on_path("apt-get") {
        bail!(
            "`{program}` is not on PATH; install it with \
             `sudo apt-get update && sudo apt-get install -y {package}` (Debian/Ubuntu), \
             then run this again"
        );
    }
    apt_update_once()?;
    let mut install = cmd::command(repo_root(), "apt-get", &["install", "-y", package]);
    install.env("DEBIAN_FRONTEND", "noninteractive");
    cmd::run(install)?;
    if !cmd::on_path(program) {
        bail!("installed `{package}` but `{program}` is still not on PATH");
    }
    Ok(())
}

fn apt_update_once() -> Result<()> {
    static UPDATED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    UPDATED.call_once(|| {
        let mut update = cmd::command(repo_root(), "apt-get", &["update"]);
        update.env("DEBIAN_FRONTEND", "noninteractive");
        result = cmd::run(update);
    });
    result
}
