//! `tinyrnn quantize`: calibrate an `f32` model on data and write a fixed-point model.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::cmd::run::parse_nonlinearity;
use crate::cmd::{load_options, FillMissing};
use crate::model_file::{FloatModel, Nonlinearity};
use crate::output_file::{refuse_overlaps, OutputFile};
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
    /// Output model file (written to a temporary file beside it and renamed into place when
    /// complete; its directory must exist).
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
    /// Fill missing values (`?`/`NaN`) of a `.ts` calibration file instead of rejecting it.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub fill_missing: Option<FillMissing>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Entry point.
pub fn main(args: Args) -> Result<()> {
    if !(args.headroom.is_finite() && args.headroom >= 1.0) {
        bail!("--headroom must be a number ≥ 1 (got {})", args.headroom);
    }
    refuse_overlaps(
        &[("--out", &args.out)],
        &[("--model", &args.model), ("--calib", &args.calib)],
    )?;
    let out = OutputFile::create("--out", &args.out)?;
    let model = FloatModel::load(&args.model, args.nonlinearity)?;
    let data = crate::dataset::load_with(&args.calib, &load_options(args.fill_missing))?;
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
    out.write_all(&q.to_bytes()?)?;
    let report = quantize::report::build(&folded, &q, &cal, &data)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
        println!("wrote {}", args.out.display());
    }
    Ok(())
}
