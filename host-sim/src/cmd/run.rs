//! `tinyrnn run`: a model over a CSV sequence, one output row per timestep.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::any_model::AnyModel;
use crate::dataset::read_sequence_csv;
use crate::model_file::Nonlinearity;

/// Arguments of `tinyrnn run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file (safetensors; a PyTorch `state_dict` or a `tinyrnn` file).
    #[arg(long)]
    pub model: PathBuf,
    /// Input CSV: one row per timestep, one column per feature, no header.
    #[arg(long)]
    pub input: PathBuf,
    /// Output CSV: one row per timestep (head outputs, or the last layer's hidden state).
    #[arg(long)]
    pub output: PathBuf,
    /// RNN nonlinearity (PyTorch does not store it in the weights).
    #[arg(long, value_parser = parse_nonlinearity)]
    pub nonlinearity: Option<Nonlinearity>,
    /// Use the fast (micromath) activations instead of the accurate ones (f32 models).
    #[arg(long)]
    pub fast: bool,
    /// Write raw output bits (integers for q15/w8a16, `f32` bit patterns for float models)
    /// instead of real values: what the firmware is held to, bit for bit.
    #[arg(long)]
    pub raw: bool,
}

/// `clap` parser for `tanh|relu`.
pub fn parse_nonlinearity(s: &str) -> Result<Nonlinearity, String> {
    Nonlinearity::parse(s)
        .ok_or_else(|| format!("`{s}` is not a nonlinearity; expected tanh or relu"))
}

/// Entry point.
pub fn main(args: Args) -> Result<()> {
    let model = AnyModel::load(&args.model, args.nonlinearity, args.fast)?;
    let series = read_sequence_csv(&args.input)?;
    check_width(&args.input, series.channels, model.input_size())?;
    if args.raw {
        let bits = model.run_bits(&series);
        let rows: Vec<String> = bits
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        return write_text(&args.output, &(rows.join("\n") + "\n"));
    }
    let outputs = model.run_real(&series);
    write_csv(&args.output, &outputs)
}

/// Writes rows of real values; `f32` values print with the shortest digits that round-trip.
pub fn write_csv(path: &std::path::Path, rows: &[Vec<f64>]) -> Result<()> {
    let mut text = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().map(|&v| format!("{}", v as f32)).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    write_text(path, &text)
}

/// Writes `text` to `path`, creating the parent directory.
pub fn write_text(path: &std::path::Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create directory", dir.display()))?;
    }
    let mut f = std::fs::File::create(path)
        .with_context(|| format!("{}: cannot create file", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

/// Checks a sequence's width against the model.
pub fn check_width(path: &std::path::Path, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        bail!(
            "{}: rows have {got} columns but the model expects {expected} inputs",
            path.display()
        );
    }
    Ok(())
}
