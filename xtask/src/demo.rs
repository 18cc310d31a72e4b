//! `cargo xtask demo`: the quick-start demo, as a list of named steps (append new steps here).

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::{cmd, repo_path, repo_root, steps::Step};

/// The demo model: a GRU classifier trained on UEA BasicMotions.
const MODEL: &str = "data/demo/basicmotions_gru.safetensors";
/// PyTorch's logits for the demo recordings.
const EXPECTED_LOGITS: &str = "data/demo/expected_logits.json";
/// Output classes of the demo model, in logit order.
const CLASS_NAMES: &[&str] = &["Standing", "Running", "Walking", "Badminton"];

/// The steps of `cargo xtask demo`, in order.
pub fn steps() -> Vec<Step> {
    vec![
        Step {
            name: "build",
            about: "build the host CLI (tinyrnn-sim) in release",
            run: build_host_cli,
        },
        Step {
            name: "walking",
            about: "classify data/demo/walking.csv with the demo GRU",
            run: || classify("walking"),
        },
        Step {
            name: "running",
            about: "classify data/demo/running.csv with the demo GRU",
            run: || classify("running"),
        },
    ]
}

fn build_host_cli() -> Result<()> {
    cmd::run(cmd::cargo(
        repo_root(),
        &["build", "--release", "-p", "tinyrnn-sim"],
    ))
}

/// Runs the model over `data/demo/<name>.csv`, writes `out/demo/<name>_logits.csv` and
/// prints the class with the largest logit at the last step.
fn classify(name: &str) -> Result<()> {
    let input = format!("data/demo/{name}.csv");
    let output = format!("out/demo/{name}_logits.csv");
    std::fs::create_dir_all(repo_path("out/demo")).context("creating out/demo")?;
    let cli = repo_path("target/release/tinyrnn");
    if !cli.is_file() {
        bail!(
            "{} is missing: run `cargo xtask demo --only build` first",
            cli.display()
        );
    }
    cmd::run(cmd::command(
        repo_root(),
        &cli.to_string_lossy(),
        &[
            "run", "--model", MODEL, "--input", &input, "--output", &output,
        ],
    ))?;
    let (class, logits) = last_step_argmax(&repo_path(&output))?;
    let class_name = CLASS_NAMES.get(class).copied().unwrap_or("?");
    println!(
        "{input}: class {class} ({class_name}) has the largest logit at the last step; logits {logits:?}"
    );
    compare_with_pytorch(&format!("{name}.csv"), class_name, &logits)
}

/// Compares with the PyTorch logits in `data/demo/expected_logits.json` (when present): prints
/// the largest difference and fails if PyTorch predicted another class.
fn compare_with_pytorch(recording: &str, class_name: &str, logits: &[f64]) -> Result<()> {
    let path = repo_path(EXPECTED_LOGITS);
    if !path.is_file() {
        println!("({EXPECTED_LOGITS} not found: no comparison with PyTorch)");
        return Ok(());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {EXPECTED_LOGITS}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {EXPECTED_LOGITS}"))?;
    let expected = &json["recordings"][recording];
    let predicted = expected["predicted"]
        .as_str()
        .with_context(|| format!("{EXPECTED_LOGITS}: no recordings.{recording}.predicted"))?;
    let reference: Vec<f64> = expected["logits"]
        .as_array()
        .with_context(|| format!("{EXPECTED_LOGITS}: no recordings.{recording}.logits"))?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    if reference.len() != logits.len() {
        bail!(
            "{EXPECTED_LOGITS} has {} logits for {recording}, we have {}",
            reference.len(),
            logits.len()
        );
    }
    let max_diff = reference
        .iter()
        .zip(logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "PyTorch predicts {predicted}; largest |logit difference| vs PyTorch = {max_diff:.2e}"
    );
    if predicted != class_name {
        bail!("{recording}: we predict {class_name}, PyTorch predicts {predicted}");
    }
    Ok(())
}

/// Reads a logits CSV (one row per timestep) and returns the index of the largest of the last
/// row's class logits, with those logits. Non-numeric rows (a header) are skipped; when a row has
/// more columns than there are classes, the last `CLASS_NAMES.len()` are the logits.
fn last_step_argmax(path: &Path) -> Result<(usize, Vec<f64>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_last_step_argmax(&text).with_context(|| format!("in {}", path.display()))
}

fn parse_last_step_argmax(text: &str) -> Result<(usize, Vec<f64>)> {
    let row = text
        .lines()
        .rev()
        .find_map(|line| {
            let values: Result<Vec<f64>, _> =
                line.split(',').map(|v| v.trim().parse::<f64>()).collect();
            values.ok().filter(|values| !values.is_empty())
        })
        .context("no numeric row")?;
    if row.len() < CLASS_NAMES.len() {
        bail!(
            "last row has {} values, expected {} logits",
            row.len(),
            CLASS_NAMES.len()
        );
    }
    let logits = row[row.len() - CLASS_NAMES.len()..].to_vec();
    let class = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(index, _)| index)
        .context("no logits")?;
    Ok((class, logits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_of_last_row_skipping_header_and_index_column() {
        let csv = "step,a,b,c,d\n0,1,2,3,4\n1,0.5,3.5,-1,0\n\n";
        let (class, logits) = parse_last_step_argmax(csv).unwrap();
        assert_eq!(class, 1);
        assert_eq!(logits, vec![0.5, 3.5, -1.0, 0.0]);
        assert!(parse_last_step_argmax("a,b\n").is_err());
    }
}
