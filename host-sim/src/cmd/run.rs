//! `tinyrnn run`: a model over a CSV sequence, one output row per timestep.

use std::fmt::Write;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::any_model::AnyModel;
use crate::dataset::{open_sequence_csv, SequenceReader};
use crate::model_file::Nonlinearity;
use crate::output_file::{refuse_overlaps, OutputFile};
use crate::runtime_model::{HostNumeric, RuntimeModel, StepOutput};

/// Arguments of `tinyrnn run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file (safetensors; a PyTorch `state_dict` or a `tinyrnn` file).
    #[arg(long)]
    pub model: PathBuf,
    /// Input CSV: one row per timestep, one column per feature, no header.
    #[arg(long)]
    pub input: PathBuf,
    /// Output CSV: one row per timestep (head outputs, or the last layer's hidden state). Written
    /// to a temporary file beside it and renamed into place when complete; its directory must
    /// exist.
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
///
/// Streams: each input row is read, stepped through the model and its output row written to
/// the (temporary) output before the next row is read, so memory does not grow with the
/// length of the input. The output replaces `--output` only once every row succeeded.
pub fn main(args: Args) -> Result<()> {
    refuse_overlaps(
        &[("--output", &args.output)],
        &[("--input", &args.input), ("--model", &args.model)],
    )?;
    let mut out = OutputFile::create("--output", &args.output)?;
    let model = AnyModel::load(&args.model, args.nonlinearity, args.fast)?;
    let mut input = open_sequence_csv(&args.input)?;
    crate::with_model!(&model, m => stream(m, &mut input, &args.input, &mut out, args.raw))?;
    out.commit()
}

/// Steps `model` over every row of `input`, writing one output row per step: real values
/// (`f32`, shortest round-trip digits) or, with `raw`, the raw bits.
fn stream<N: HostNumeric, R: BufRead>(
    model: &RuntimeModel<N>,
    input: &mut SequenceReader<R>,
    path: &Path,
    out: &mut OutputFile,
    raw: bool,
) -> Result<()> {
    let mut state = model.new_state();
    let mut x = vec![N::Act::default(); model.input_size()];
    let mut line = String::new();
    let frac = model.output_frac;
    let mut first = true;
    while let Some(row) = input.next_row()? {
        if first {
            check_width(path, row.len(), model.input_size())?;
            first = false;
        }
        model.encode_input(row, &mut x);
        line.clear();
        // `fmt::Write` for `String` cannot fail.
        let _ = match (model.step_encoded(&mut state, &x), raw) {
            (StepOutput::Head(p), false) => {
                write_row(&mut line, p.iter().map(|&v| N::decode_pre(v, frac) as f32))
            }
            (StepOutput::Hidden(a), false) => {
                write_row(&mut line, a.iter().map(|&v| N::decode_act(v, frac) as f32))
            }
            (StepOutput::Head(p), true) => write_row(&mut line, p.iter().map(|&v| N::pre_bits(v))),
            (StepOutput::Hidden(a), true) => {
                write_row(&mut line, a.iter().map(|&v| N::act_bits(v)))
            }
        };
        out.write(line.as_bytes())?;
    }
    Ok(())
}

/// Appends `values` separated by commas and a line end; `f32` values print with the shortest
/// digits that round-trip.
fn write_row<T: std::fmt::Display>(
    line: &mut String,
    values: impl Iterator<Item = T>,
) -> std::fmt::Result {
    for (i, v) in values.enumerate() {
        if i > 0 {
            line.push(',');
        }
        write!(line, "{v}")?;
    }
    line.push('\n');
    Ok(())
}

/// Checks a sequence's width against the model.
pub fn check_width(path: &Path, got: usize, expected: usize) -> Result<()> {
    if got != expected {
        bail!(
            "{}: rows have {got} columns but the model expects {expected} inputs",
            path.display()
        );
    }
    Ok(())
}
