//! `tinyrnn export`: write a model (and optional golden data) as Rust source for the firmware.

use std::path::PathBuf;

use anyhow::Result;

use crate::cmd::run::{check_width, parse_nonlinearity};
use crate::export::Exportable;
use crate::model_file::Nonlinearity;
use crate::output_file::{refuse_overlaps, OutputFile};

/// Arguments of `tinyrnn export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file (f32, q15 or w8a16).
    #[arg(long)]
    pub model: PathBuf,
    /// Output Rust source file (written to a temporary file beside it and renamed into place
    /// when complete; its directory must exist).
    #[arg(long)]
    pub out: PathBuf,
    /// CSV sequence whose samples and host outputs are embedded as golden data.
    #[arg(long)]
    pub golden: Option<PathBuf>,
    /// RNN nonlinearity (PyTorch does not store it in the weights).
    #[arg(long, value_parser = parse_nonlinearity)]
    pub nonlinearity: Option<Nonlinearity>,
    /// Export an f32 model with the fast (micromath) activations: `tinyrnn::F32Fast`, format
    /// `f32-fast` (an error for q15/w8a16 files).
    #[arg(long)]
    pub fast: bool,
}

/// Entry point.
pub fn main(args: Args) -> Result<()> {
    let mut inputs = vec![("--model", args.model.as_path())];
    if let Some(g) = &args.golden {
        inputs.push(("--golden", g.as_path()));
    }
    refuse_overlaps(&[("--out", &args.out)], &inputs)?;
    let out = OutputFile::create("--out", &args.out)?;
    let model = Exportable::load(&args.model, args.nonlinearity, args.fast)?;
    let golden = match &args.golden {
        Some(path) => {
            let series = crate::dataset::read_sequence_csv(path)?;
            check_width(path, series.channels, model.input_size())?;
            Some(model.golden(series.rows())?)
        }
        None => None,
    };
    let (source, info) = model.generate(golden.as_ref())?;
    out.write_all(source.as_bytes())?;
    println!(
        "wrote {} ({} {}, {} layer(s), {} inputs → {} outputs{})",
        args.out.display(),
        info.numeric,
        info.cell.name(),
        info.hidden.len(),
        info.inputs,
        info.outputs,
        golden.map_or(String::new(), |g| format!(
            ", {} golden steps",
            g.inputs.len()
        ))
    );
    Ok(())
}
