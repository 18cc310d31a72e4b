//! `cargo xtask fuzz --seconds N [--target NAME]...`: runs the cargo-fuzz targets of `fuzz/`
//! for N seconds each and saves every crash under `fuzz/regressions/<target>/`, where
//! `cargo xtask test` replays it (`tests/tests/fuzz_replay.rs`).
//!
//! The targets build on the stable toolchain: no sanitizer (`-s none`; a Rust panic is what the
//! targets report) and `RUSTC_BOOTSTRAP=1` for cargo-fuzz's unstable flags. Debug assertions, and
//! with them overflow checks, are on (`-a`). libFuzzer reads the committed seeds
//! (`fuzz/seeds/<target>/`) and keeps what it finds in the scratch corpus `fuzz/corpus/<target>/`
//! (git-ignored), so a later run starts where the last one stopped; `fuzz/dicts/<target>.dict`,
//! where present, is its dictionary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use crate::{cmd, repo_path};

/// How `cargo xtask fuzz` is called, for its error messages.
const USAGE: &str = "usage: cargo xtask fuzz --seconds <N> [--target <name>]...";

/// Largest input libFuzzer generates, in bytes: room for the model seeds to grow.
const MAX_LEN: usize = 16384;

/// Seconds one input may take before libFuzzer reports it as a timeout.
const INPUT_TIMEOUT_S: u64 = 10;

/// What a libFuzzer artifact name starts with when it is a finding (not `slow-unit-`).
const FINDINGS: &[&str] = &["crash-", "oom-", "timeout-", "leak-"];

/// `cargo xtask fuzz` with its arguments.
pub fn command(args: &[String]) -> Result<()> {
    let mut seconds: Option<u64> = None;
    let mut chosen: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--seconds" => {
                let value = crate::flag_value(args, &mut i)?;
                seconds = match value.parse::<u64>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => bail!("`--seconds` must be a positive whole number, got `{value}`"),
                };
            }
            "--target" => chosen.push(crate::flag_value(args, &mut i)?),
            other => bail!("unknown option `{other}` for `cargo xtask fuzz`\n\n{USAGE}"),
        }
        i += 1;
    }
    let Some(seconds) = seconds else {
        bail!("`cargo xtask fuzz` needs `--seconds <N>` (time per target)\n\n{USAGE}");
    };
    let all = targets()?;
    for name in &chosen {
        if !all.contains(name) {
            bail!("no fuzz target `{name}`; targets: {}", all.join(", "));
        }
    }
    let targets = if chosen.is_empty() { all } else { chosen };

    ensure_cargo_fuzz()?;
    let mut build = cargo_fuzz(&["build", "-s", "none", "-a"]);
    if targets.len() == 1 {
        build.arg(&targets[0]);
    }
    cmd::run(build)?;

    let mut findings: Vec<(String, PathBuf, bool)> = Vec::new(); // (target, saved file, new)
    let mut rows = Vec::new();
    for target in &targets {
        let started = Instant::now();
        let found = fuzz_one(target, seconds)?;
        let result = if found.is_empty() {
            "no crash".to_string()
        } else {
            format!("{} finding(s)", found.len())
        };
        rows.push((target.clone(), started.elapsed().as_secs_f64(), result));
        findings.extend(found.into_iter().map(|(p, new)| (target.clone(), p, new)));
    }

    println!("\n{:<14} {:>8}  result", "target", "seconds");
    for (target, secs, result) in &rows {
        println!("{target:<14} {secs:>8.1}  {result}");
    }
    if findings.is_empty() {
        println!("no target crashed in {seconds} s each");
        return Ok(());
    }
    for (target, path, new) in &findings {
        let shown = path.strip_prefix(repo_path("")).unwrap_or(path);
        let how = if *new { "saved" } else { "already saved" };
        println!("{target}: {how} {}", shown.display());
    }
    bail!(
        "{} fuzz finding(s) in fuzz/regressions/ (commit them); \
         `cargo test -p tinyrnn-tests --test fuzz_replay` replays them",
        findings.len()
    )
}

/// The targets: the file stems of `fuzz/fuzz_targets/*.rs`, sorted.
pub fn targets() -> Result<Vec<String>> {
    let dir = repo_path("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{}: no fuzz targets", dir.display());
    }
    Ok(names)
}

/// `cargo fuzz <args>` in `fuzz/`, with what a stable toolchain needs.
fn cargo_fuzz(args: &[&str]) -> Command {
    let mut command = cmd::cargo(&repo_path("fuzz"), &["fuzz"]);
    command.args(args).env("RUSTC_BOOTSTRAP", "1");
    command
}

/// Installs cargo-fuzz with `cargo install --locked` when `cargo fuzz` is not available.
fn ensure_cargo_fuzz() -> Result<()> {
    let probe = cmd::cargo(&repo_path("fuzz"), &["fuzz", "--version"]).output();
    if let Ok(out) = probe {
        if out.status.success() {
            println!("{}", String::from_utf8_lossy(&out.stdout).trim());
            return Ok(());
        }
    }
    println!("cargo-fuzz is not installed: installing it with `cargo install cargo-fuzz --locked`");
    cmd::run(cmd::cargo(
        &repo_path(""),
        &["install", "cargo-fuzz", "--locked"],
    ))
}

/// Findings (`crash-*`, …) in `dir` written at or after `since`.
fn findings_in(dir: &Path, since: SystemTime) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| FINDINGS.iter().any(|f| n.starts_with(f)))
        .collect();
    names.sort();
    names
}

/// Runs one target for `seconds`; returns the findings of this run as files under
/// `fuzz/regressions/<target>/`, each with whether it is new there.
fn fuzz_one(target: &str, seconds: u64) -> Result<Vec<(PathBuf, bool)>> {
    let corpus = repo_path("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus)
        .with_context(|| format!("{}: cannot create", corpus.display()))?;
    let seeds = repo_path("fuzz/seeds").join(target);
    if !seeds.is_dir() {
        bail!(
            "{}: no seed directory for target `{target}`",
            seeds.display()
        );
    }
    let artifacts = repo_path("fuzz/artifacts").join(target);
    // libFuzzer names an artifact by its content, so a crash found again overwrites its old
    // file: what this run found is what it wrote since it started (whole seconds, as some file
    // systems store them).
    let since = SystemTime::now() - Duration::from_secs(1);

    let corpus_arg = format!("corpus/{target}");
    let seeds_arg = format!("seeds/{target}");
    let time = format!("-max_total_time={seconds}");
    let max_len = format!("-max_len={MAX_LEN}");
    let timeout = format!("-timeout={INPUT_TIMEOUT_S}");
    let mut command = cargo_fuzz(&[
        "run",
        "-s",
        "none",
        "-a",
        target,
        &corpus_arg,
        &seeds_arg,
        "--",
        &time,
        &max_len,
        &timeout,
        "-print_final_stats=1",
    ]);
    // Tokens of the format (tag and key names, edge numbers) that random mutation rarely spells.
    let dict = format!("dicts/{target}.dict");
    if repo_path("fuzz").join(&dict).is_file() {
        command.arg(format!("-dict={dict}"));
    }
    println!("\n==> fuzz {target} for {seconds} s");
    let line = cmd::describe(&command);
    println!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("could not start `{line}`"))?;

    let new = findings_in(&artifacts, since);
    if !status.success() && new.is_empty() {
        bail!("`{line}` failed ({status}) without saving a crashing input");
    }
    let regressions = repo_path("fuzz/regressions").join(target);
    let mut saved = Vec::new();
    for name in new {
        std::fs::create_dir_all(&regressions)
            .with_context(|| format!("{}: cannot create", regressions.display()))?;
        let to = regressions.join(&name);
        let is_new = !to.exists();
        // Copied next to the artifact, then renamed, so a regression file is never partial.
        let partial = artifacts.join(format!(".{name}.copy"));
        std::fs::copy(artifacts.join(&name), &partial)
            .with_context(|| format!("{}: cannot write", partial.display()))?;
        std::fs::rename(&partial, &to)
            .with_context(|| format!("{}: cannot write", to.display()))?;
        saved.push((to, is_new));
    }
    Ok(saved)
}
