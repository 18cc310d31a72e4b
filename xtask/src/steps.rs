//! Named steps, run in order, each under a `==> name` header; selection with `--only`/`--skip`.

use std::time::Instant;

use anyhow::{bail, Context, Result};

/// One step of a command (`cargo xtask test`, `cargo xtask demo`).
pub struct Step {
    /// Name used in the header and by `--only`/`--skip`.
    pub name: &'static str,
    /// One line saying what the step does (shown by `--list`).
    pub about: &'static str,
    /// The work; an error stops the command.
    pub run: fn() -> Result<()>,
}

/// Parses `--only`, `--skip` and `--list` from `args`, then runs the chosen `steps` in order,
/// stopping at the first failure.
pub fn run_selected(command: &str, steps: &[Step], args: &[String]) -> Result<()> {
    let mut only: Option<Vec<String>> = None;
    let mut skip: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--list" => {
                for step in steps {
                    println!("{:<14} {}", step.name, step.about);
                }
                return Ok(());
            }
            "--only" => only = Some(split_names(&crate::flag_value(args, &mut i)?)),
            "--skip" => skip.extend(split_names(&crate::flag_value(args, &mut i)?)),
            other => bail!("unknown option `{other}` for `cargo xtask {command}`"),
        }
        i += 1;
    }
    for name in only.iter().flatten().chain(&skip) {
        if !steps.iter().any(|step| step.name == name) {
            let known: Vec<&str> = steps.iter().map(|step| step.name).collect();
            bail!(
                "no step `{name}` in `cargo xtask {command}`; steps: {}",
                known.join(", ")
            );
        }
    }

    let chosen: Vec<&Step> = steps
        .iter()
        .filter(|step| {
            only.as_ref()
                .is_none_or(|only| only.iter().any(|n| n == step.name))
        })
        .filter(|step| !skip.iter().any(|n| n == step.name))
        .collect();
    let started = Instant::now();
    for step in &chosen {
        println!("\n==> {}: {}", step.name, step.about);
        let step_started = Instant::now();
        (step.run)().with_context(|| format!("step `{}` failed", step.name))?;
        println!(
            "<== {} ok ({:.1} s)",
            step.name,
            step_started.elapsed().as_secs_f64()
        );
    }
    let names: Vec<&str> = chosen.iter().map(|step| step.name).collect();
    println!(
        "\nxtask {command}: {} step(s) passed in {:.1} s: {}",
        chosen.len(),
        started.elapsed().as_secs_f64(),
        names.join(", ")
    );
    Ok(())
}

fn split_names(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(String::from)
        .collect()
}
