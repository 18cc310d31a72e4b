//! `tinyrnn verify`: export models, build the firmware for each target, run it under QEMU and
//! compare every output of every step with the host.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::cmd::run::parse_nonlinearity;
use crate::model_file::Nonlinearity;
use crate::target::verify::{
    prepare, run_cases, CaseResult, ModelSpec, PrepareOptions, RunCasesOptions,
};

/// Arguments of `tinyrnn verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file (f32, q15 or w8a16). Repeat to verify several models in one firmware build.
    #[arg(long, required = true)]
    pub model: Vec<PathBuf>,
    /// CSV input, one row per step: once for every model, or once per `--model`.
    #[arg(long, required = true)]
    pub input: Vec<PathBuf>,
    /// Target triple, comma-separated triples, or `all` (thumbv6m-none-eabi, thumbv7m-none-eabi,
    /// thumbv7em-none-eabihf, thumbv8m.main-none-eabihf).
    #[arg(long, default_value = "all")]
    pub target: Vec<String>,
    /// RNN nonlinearity of f32 files that do not store it: once for every model, or once per
    /// `--model`.
    #[arg(long, value_parser = parse_nonlinearity)]
    pub nonlinearity: Vec<Nonlinearity>,
    /// Run every f32 model with the fast (micromath) activations, format `f32-fast` (an error
    /// for q15/w8a16 files).
    #[arg(long)]
    pub fast: bool,
    /// Stream the input from a host file through semihosting, one sample at a time (any
    /// length), instead of embedding it in flash.
    #[arg(long)]
    pub stream: bool,
    /// Print a JSON list of result objects instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Show cargo's output and the firmware's log.
    #[arg(long, short)]
    pub verbose: bool,
    /// Test aid: corrupt the expected output of this step, so verification must fail there.
    #[arg(long, hide = true)]
    pub corrupt_golden: Option<usize>,
}

fn per_model<T: Clone>(what: &str, values: &[T], models: usize) -> Result<Vec<Option<T>>> {
    match values.len() {
        0 => Ok(vec![None; models]),
        1 => Ok(vec![Some(values[0].clone()); models]),
        n if n == models => Ok(values.iter().cloned().map(Some).collect()),
        n => bail!("{n} {what} values for {models} models: give one, or one per --model"),
    }
}

/// Builds the model specs from repeated `--model`/`--input`/`--nonlinearity`.
pub fn specs(args: &Args) -> Result<Vec<ModelSpec>> {
    let inputs = per_model("--input", &args.input, args.model.len())?;
    let nonlinearities = per_model("--nonlinearity", &args.nonlinearity, args.model.len())?;
    Ok(args
        .model
        .iter()
        .zip(inputs)
        .zip(nonlinearities)
        .map(|((model, input), nonlinearity)| ModelSpec {
            model: model.clone(),
            input: input.expect("--input is required"),
            nonlinearity,
            fast: args.fast,
        })
        .collect())
}

/// Prints results as a table.
pub fn print_table(results: &[CaseResult]) {
    println!(
        "{:<26} {:<28} {:<6} {:>12} {:>12} {:>10} {:>9} {:>8} {:>7}",
        "target", "model", "match", "instr/step", "flash", "weights", "code", "RAM", "stack"
    );
    for r in results {
        let verdict = match r.first_mismatch {
            None => "yes".to_owned(),
            Some(step) => format!("NO@{step}"),
        };
        println!(
            "{:<26} {:<28} {:<6} {:>12.1} {:>12} {:>10} {:>9} {:>8} {:>7}",
            r.target,
            r.name,
            verdict,
            r.instructions_per_step,
            r.flash_bytes,
            r.flash_weights_bytes,
            r.flash_code_bytes,
            r.ram_bytes,
            r.stack_bytes
        );
    }
}

/// Entry point.
pub fn main(args: Args) -> Result<()> {
    let specs = specs(&args)?;
    let targets = crate::target::parse_targets(&args.target)?;
    let cases = prepare(
        &specs,
        PrepareOptions {
            stream: args.stream,
            corrupt_golden: args.corrupt_golden,
        },
    )?;
    let timeout = crate::target::qemu::timeout()?;
    let mut results = Vec::new();
    for target in targets {
        let (rows, built) = run_cases(
            &cases,
            target,
            RunCasesOptions {
                bin: "verify",
                compare: true,
                verbose: args.verbose,
                timeout,
            },
        )?;
        if !args.json {
            eprintln!(
                "{target}: firmware built in {:.1} s, {} case(s) run",
                built.elapsed.as_secs_f64(),
                rows.len()
            );
        }
        results.extend(rows);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_table(&results);
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.matched)
        .map(|r| {
            format!(
                "{} on {} (first mismatch at step {})",
                r.name,
                r.target,
                r.first_mismatch.unwrap_or(0)
            )
        })
        .collect();
    if !failed.is_empty() {
        bail!("outputs differ from the host: {}", failed.join("; "));
    }
    Ok(())
}
