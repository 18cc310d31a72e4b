//! `tinyrnn quantize`: calibrate an `f32` model on data and write a fixed-point model.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cmd::run::parse_nonlinearity;
use crate::model_file::{FloatModel, Nonlinearity};
use crate::quantize::{self, Granularity, QuantKind, QuantOptions};

/// Arguments of `tinyrnn quantize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `f32` model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Calibration data: a CSV sequence file or a UEA `.ts` file (raw, unnormalised values).
    #[arg(long)]
    pub calib: PathBuf,
    /// Integer format.
    #[arg(long, value_enum)]
    pub format: QuantKind,
    /// Output model file.
    #[arg(long)]
    pub out: PathBuf,
    /// Weight scales per tensor or per output row (default: tensor for q15, row for w8a16).
    #[arg(long, value_enum)]
    pub granularity: Option<Granularity>,
    /// Range multiplier applied to observed maxima when choosing formats.
    #[arg(long, default_value_t = 1.25)]
    pub headroom: f64,
    /// RNN nonlinearity (PyTorch does not store it in the weights).
    #[arg(long, value_parser = parse_nonlinearity)]
    pub nonlinearity: Option<Nonlinearity>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Entry point.
pub fn main(args: Args) -> Result<()> {
    if !(args.headroom.is_finite() && args.headroom >= 1.0) {
        bail!("--headroom must be a number ≥ 1 (got {})", args.headroom);
    }
    let model = FloatModel::load(&args.model, args.nonlinearity)?;
    let data = crate::dataset::load(&args.calib)?;
    let folded = model.fold_normalization();
    let cal =
        quantize::calibrate(&folded, &data).with_context(|| args.calib.display().to_string())?;
    let opts = QuantOptions {
        kind: args.format,
        granularity: args.granularity.unwrap_or(match args.format {
            QuantKind::Q15 => Granularity::Tensor,
            QuantKind::W8a16 => Granularity::Row,
        }),
        headroom: args.headroom,
    };
    let q = quantize::quantize(&folded, &cal, &opts)?;
    q.save(&args.out)?;
    let report = quantize::report::build(&folded, &q, &cal, &data)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
        println!("wrote {}", args.out.display());
    }
    Ok(())
}
