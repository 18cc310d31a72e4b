//! `tinyrnn eval`: a classifier's accuracy, per-class precision / recall / F1 and confusion
//! matrix on a labelled dataset, for `f32`, q15 and w8a16 model files alike.
//!
//! Each series runs from the zero state through [`AnyModel`] (the same kernels as the firmware;
//! `f32` models apply their normalisation metadata, quantised models have it folded in). The
//! prediction is the argmax of the head's outputs:
//!
//! - per-series labels ([`Labels::PerSeries`], e.g. `.ts` files): at the last step of the series
//!   (many-to-one); one sample per series;
//! - per-step labels ([`Labels::PerStep`], CSV datasets with a `label` column): at every step,
//!   against that step's label; one sample per step.
//!
//! Dataset classes are matched to the model's output indices **by name** when the model file
//! stores class names (`tinyrnn train` always does); a dataset class the model does not know is
//! an error. A model without class names (e.g. a bare PyTorch `state_dict`) is matched by index,
//! and the dataset must then declare as many classes as the head has outputs.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;

use crate::any_model::AnyModel;
use crate::cmd::run::parse_nonlinearity;
use crate::cmd::{load_options, FillMissing};
use crate::dataset::{self, Dataset, Labels};
use crate::evaluation::{argmax, metrics_table, Confusion};
use crate::model_file::{FloatModel, Nonlinearity};
use crate::output_file::{refuse_overlaps, OutputFile};
use crate::quote::{quote, shorten};

/// Arguments of `tinyrnn eval`.
#[derive(clap::Args, Debug)]
#[command(about = "Evaluate a classifier (f32, q15 or w8a16) on a labelled dataset")]
pub struct Args {
    /// Model file (safetensors: `f32`, q15 or w8a16).
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    /// Labelled data: a UEA/UCR `.ts` file, a `.csv` dataset or a directory of CSV sequences
    /// (raw values: the model's own normalisation is applied).
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also draw the confusion matrix as SVG (its directory must exist).
    #[arg(long, value_name = "PATH")]
    pub confusion: Option<PathBuf>,
    /// Fill missing values (`?`/`NaN`) of a `.ts` file instead of rejecting it.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub fill_missing: Option<FillMissing>,
    /// RNN nonlinearity (PyTorch does not store it in the weights).
    #[arg(long, value_parser = parse_nonlinearity)]
    pub nonlinearity: Option<Nonlinearity>,
    /// Use the fast (micromath) activations instead of the accurate ones (f32 models).
    #[arg(long)]
    pub fast: bool,
}

/// The class names stored in a model file (empty if it has none).
fn model_class_names(path: &Path, nonlinearity: Option<Nonlinearity>) -> Result<Vec<String>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    let ctx = || path.display().to_string();
    Ok(if crate::import::is_quantized(&bytes).with_context(ctx)? {
        crate::quantize::QuantModel::from_bytes(&bytes)
            .with_context(ctx)?
            .meta
            .class_names
    } else {
        FloatModel::from_bytes_in(&bytes, path.parent(), nonlinearity)
            .with_context(ctx)?
            .meta
            .class_names
    })
}

/// Numeric format of a loaded model, as its name on the command line.
fn format_name(model: &AnyModel) -> &'static str {
    match model {
        AnyModel::F32(_) => "f32",
        AnyModel::F32Fast(_) => "f32-fast",
        AnyModel::Q15(_) => "q15",
        AnyModel::W8a16(_) => "w8a16",
    }
}

/// Maps each dataset class index to a model output index.
fn class_map(
    ds: &Dataset,
    data: &Path,
    model: &Path,
    model_classes: &[String],
) -> Result<Vec<usize>> {
    let used: Vec<bool> = {
        let mut used = vec![false; ds.class_names.len()];
        match &ds.labels {
            Some(Labels::PerSeries(y)) => y.iter().for_each(|&k| used[k] = true),
            Some(Labels::PerStep(y)) => y.iter().flatten().for_each(|&k| used[k] = true),
            None => {}
        }
        used
    };
    ds.class_names
        .iter()
        .zip(&used)
        .map(
            |(name, &used)| match model_classes.iter().position(|c| c == name) {
                Some(k) => Ok(k),
                // A declared class without samples cannot be confused: give it a placeholder.
                None if !used => Ok(usize::MAX),
                None => Err(anyhow!(
                    "{}: class {} is not one of the model's classes ({}: {})",
                    data.display(),
                    quote(name),
                    model.display(),
                    shorten(&model_classes.join(", "))
                )),
            },
        )
        .collect()
}

/// Runs `tinyrnn eval`.
pub fn main(args: Args) -> Result<()> {
    let confusion_out = match &args.confusion {
        Some(p) => {
            refuse_overlaps(
                &[("--confusion", p)],
                &[("--model", &args.model), ("--data", &args.data)],
            )?;
            Some(OutputFile::create("--confusion", p)?)
        }
        None => None,
    };
    let model = AnyModel::load(&args.model, args.nonlinearity, args.fast)?;
    let has_head = crate::with_model!(&model, m => m.head.is_some());
    if !has_head {
        bail!(
            "{}: the model has no classification head (no linear layer after the recurrent layers)",
            args.model.display()
        );
    }
    let outputs = model.output_size();
    let stored_classes = model_class_names(&args.model, args.nonlinearity)?;

    let ds = dataset::load_with(&args.data, &load_options(args.fill_missing))?;
    let data = &args.data;
    if ds.is_empty() {
        bail!("{}: the data has no series", data.display());
    }
    let Some(labels) = &ds.labels else {
        bail!(
            "{}: the data has no labels; evaluation needs class labels",
            data.display()
        );
    };
    if ds.channels != model.input_size() {
        bail!(
            "{}: {} channels per step, but the model {} expects {} inputs",
            data.display(),
            ds.channels,
            args.model.display(),
            model.input_size()
        );
    }
    if let Some(i) = ds.series.iter().position(|s| s.steps == 0) {
        bail!("{}: series {} has no steps", data.display(), i + 1);
    }

    // Classes of the matrix: the model's (by name) or the dataset's (by index).
    let (classes, map) = if stored_classes.is_empty() {
        if ds.class_names.len() != outputs {
            bail!(
                "{}: {} classes, but the model {} has {outputs} outputs and no class names to match them by",
                data.display(),
                ds.class_names.len(),
                args.model.display()
            );
        }
        (ds.class_names.clone(), (0..outputs).collect::<Vec<_>>())
    } else {
        let map = class_map(&ds, data, &args.model, &stored_classes)?;
        (stored_classes, map)
    };

    // Predictions, one series per task.
    let per_series: Vec<Vec<(usize, usize)>> = (0..ds.len())
        .into_par_iter()
        .map(|i| {
            let out = model.run_real(&ds.series[i]);
            match labels {
                Labels::PerSeries(y) => {
                    let last = out.last().map_or(0, |o| argmax(o));
                    vec![(map[y[i]], last)]
                }
                Labels::PerStep(y) => y[i]
                    .iter()
                    .zip(&out)
                    .map(|(&k, o)| (map[k], argmax(o)))
                    .collect(),
            }
        })
        .collect();
    let mut confusion = Confusion::new(classes);
    for (truth, predicted) in per_series.into_iter().flatten() {
        confusion.add(truth, predicted);
    }

    if let Some(out) = confusion_out {
        let title = format!(
            "{} on {} ({}): accuracy {:.1}%",
            file_label(&args.model),
            file_label(data),
            format_name(&model),
            100.0 * confusion.accuracy()
        );
        let svg = render_svg(&confusion, &title)
            .with_context(|| format!("{}: drawing the confusion matrix", out.path().display()))?;
        out.write_all(svg.as_bytes())?;
    }

    if args.json {
        println!("{}", serde_json::to_string(&confusion.report())?);
    } else {
        let unit = match labels {
            Labels::PerSeries(_) => "series",
            Labels::PerStep(_) => "steps",
        };
        println!(
            "{} ({}) on {}: accuracy {:.2}% ({}/{} {unit})\n",
            args.model.display(),
            format_name(&model),
            data.display(),
            100.0 * confusion.accuracy(),
            confusion.correct(),
            confusion.total()
        );
        println!("{}", metrics_table(&confusion));
        print!("{confusion}");
        if let Some(p) = &args.confusion {
            println!("\nwrote {}", p.display());
        }
    }
    Ok(())
}

fn file_label(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Draws the matrix: one cell per (true, predicted) pair, shaded by the fraction of the true
/// class's samples it holds (row-normalised, so the diagonal shows recall), with the count
/// written in it; true classes down the left, predicted classes along the bottom. Returns the
/// SVG text.
fn render_svg(confusion: &Confusion, title: &str) -> Result<String> {
    let mut svg = String::new();
    draw_svg(&mut svg, confusion, title)?;
    Ok(svg)
}

fn draw_svg(svg: &mut String, confusion: &Confusion, title: &str) -> Result<()> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    let n = confusion.len().max(1) as i32;
    let label_chars = confusion
        .classes
        .iter()
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(1) as i32;
    let cell = (480 / n).clamp(24, 90);
    let left = 40 + 8 * label_chars.min(30);
    let top = 60;
    let bottom = 40 + 8 * label_chars.min(30);
    let width = (left + n * cell + 40).max(520);
    // Centre a small matrix under the title.
    let left = left.max((width - n * cell) / 2);
    let height = top + n * cell + bottom;
    let root = SVGBackend::with_string(svg, (width as u32, height as u32)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("{e}");
    root.fill(&WHITE).map_err(err)?;

    let font = ("sans-serif", 14).into_font();
    let centre = Pos::new(HPos::Center, VPos::Center);
    root.draw(&Text::new(
        title.to_string(),
        (width / 2, 20),
        ("sans-serif", 16).into_font().color(&BLACK).pos(centre),
    ))
    .map_err(err)?;

    for (t, row) in confusion.counts.iter().enumerate() {
        let support = confusion.support(t);
        for (p, &count) in row.iter().enumerate() {
            let frac = if support == 0 {
                0.0
            } else {
                count as f64 / support as f64
            };
            // White → dark blue.
            let shade = |hi: f64, lo: f64| (hi + (lo - hi) * frac).round() as u8;
            let colour = RGBColor(shade(255.0, 8.0), shade(255.0, 48.0), shade(255.0, 107.0));
            let (x0, y0) = (left + p as i32 * cell, top + t as i32 * cell);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                colour.filled(),
            ))
            .map_err(err)?;
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + cell, y0 + cell)],
                BLACK.mix(0.2),
            ))
            .map_err(err)?;
            let ink = if frac > 0.5 { WHITE } else { BLACK };
            root.draw(&Text::new(
                count.to_string(),
                (x0 + cell / 2, y0 + cell / 2),
                font.clone().color(&ink).pos(centre),
            ))
            .map_err(err)?;
        }
    }
    for (k, name) in confusion.classes.iter().enumerate() {
        let mid = k as i32 * cell + cell / 2;
        // True classes, right-aligned left of their row.
        root.draw(&Text::new(
            name.clone(),
            (left - 6, top + mid),
            font.clone()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(err)?;
        // Predicted classes, rotated, below their column.
        root.draw(&Text::new(
            name.clone(),
            (left + mid, top + n * cell + 6),
            font.clone()
                .transform(FontTransform::Rotate90)
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    }
    root.draw(&Text::new(
        "true class",
        (12, top + n * cell / 2),
        font.clone()
            .transform(FontTransform::Rotate270)
            .color(&BLACK)
            .pos(centre),
    ))
    .map_err(err)?;
    root.draw(&Text::new(
        "predicted class",
        (left + n * cell / 2, height - 12),
        font.color(&BLACK).pos(centre),
    ))
    .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
