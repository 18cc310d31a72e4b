//! `tinyrnn export`: write a model (and optional golden data) as Rust source for the firmware.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cmd::run::{check_width, parse_nonlinearity};
use crate::export::Exportable;
use crate::model_file::Nonlinearity;

/// Arguments of `tinyrnn export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file (f32, q15 or w8a16).
    #[arg(long)]
    pub model: PathBuf,
    /// Output Rust source file.
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
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create directory", dir.display()))?;
    }
    std::fs::write(&args.out, source)
        .with_context(|| format!("{}: cannot write", args.out.display()))?;
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
