//! The quantiser's report: per-tensor formats, saturation on the calibration data, and the
//! output error of the integer model against the `f32` model.

use serde::Serialize;

use super::calibration::TensorStats;
use super::{Calibration, QuantModel, QuantRuntime};
use crate::dataset::Dataset;
use crate::model_file::{CellKind, FloatModel};
use crate::runtime_model::{HostNumeric, RuntimeModel};

/// One tensor's line in the report.
#[derive(Clone, Debug, Serialize)]
pub struct TensorRow {
    /// `layer0.w_ih`, `input`, `head.out`, ...
    pub tensor: String,
    /// Storage type (`i8`, `i16`, `i32`).
    pub storage: &'static str,
    /// Fractional bits (min..max for per-row scales).
    pub frac: String,
    /// Largest magnitude seen (weights: in the model; activations: on the calibration data).
    pub max_abs: f64,
    /// Share of values that saturate in this format.
    pub saturated: f64,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct QuantReport {
    /// `q15` or `w8a16`.
    pub format: &'static str,
    /// Timesteps of calibration data.
    pub steps: usize,
    /// Per tensor.
    pub tensors: Vec<TensorRow>,
    /// Largest absolute output difference integer vs `f32`, over every step.
    pub max_abs_error: f64,
    /// Mean absolute output difference.
    pub mean_abs_error: f64,
    /// Share of steps where the head's argmax agrees with `f32` (`None` without head).
    pub argmax_agreement: Option<f64>,
}

fn act_row(tensor: String, stats: &TensorStats, storage: &'static str, frac: i8) -> TensorRow {
    let int_bits = if storage == "i32" {
        31 - frac as i32
    } else {
        15 - frac as i32
    };
    TensorRow {
        tensor,
        storage,
        frac: frac.to_string(),
        max_abs: stats.max_abs,
        saturated: stats.fraction_at_or_above(int_bits),
    }
}

fn weight_row(
    tensor: String,
    w: &[f32],
    cols: usize,
    fracs: &[i8],
    storage: &'static str,
    limit: f64,
) -> TensorRow {
    let (lo, hi) = fracs
        .iter()
        .fold((i8::MAX, i8::MIN), |(a, b), &f| (a.min(f), b.max(f)));
    let mut saturated = 0usize;
    for (r, row) in w.chunks(cols.max(1)).enumerate() {
        let scale = 2f64.powi(fracs.get(r).copied().unwrap_or(0) as i32);
        saturated += row
            .iter()
            .filter(|&&v| {
                let q = (v as f64 * scale).round();
                q > limit || q < -limit - 1.0
            })
            .count();
    }
    TensorRow {
        tensor,
        storage,
        frac: if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}..{hi}")
        },
        max_abs: w.iter().fold(0f64, |m, v| m.max(v.abs() as f64)),
        saturated: saturated as f64 / w.len().max(1) as f64,
    }
}

/// Builds the report. `float` is the normalisation-folded `f32` model `q` was made from.
pub fn build(
    float: &FloatModel,
    q: &QuantModel,
    cal: &Calibration,
    data: &Dataset,
) -> anyhow::Result<QuantReport> {
    let wstore = match q.kind {
        super::QuantKind::Q15 => "i16",
        super::QuantKind::W8a16 => "i8",
    };
    let limit = q.kind.weight_max() as f64;
    let mut tensors = vec![act_row("input".into(), &cal.input, "i16", q.input_frac)];
    for (k, (fl, ql)) in float.layers.iter().zip(&q.layers).enumerate() {
        tensors.push(weight_row(
            format!("layer{k}.w_ih"),
            &fl.w_ih,
            fl.input_size,
            &ql.frac_ih,
            wstore,
            limit,
        ));
        tensors.push(weight_row(
            format!("layer{k}.w_hh"),
            &fl.w_hh,
            fl.hidden_size,
            &ql.frac_hh,
            wstore,
            limit,
        ));
        let st = &cal.layers[k];
        tensors.push(act_row(
            format!("layer{k}.pre"),
            &st.pre,
            "i32",
            ql.format.pre_frac,
        ));
        if q.cell == CellKind::Lstm {
            tensors.push(act_row(
                format!("layer{k}.c"),
                &st.cell,
                "i16",
                ql.format.c_frac,
            ));
        }
        tensors.push(act_row(
            format!("layer{k}.h"),
            &st.hidden,
            "i16",
            ql.format.h_frac,
        ));
    }
    if let (Some(fh), Some(qh)) = (&float.head, &q.head) {
        tensors.push(weight_row(
            "head.weight".into(),
            &fh.weight,
            fh.input_size,
            &qh.frac,
            wstore,
            limit,
        ));
        tensors.push(act_row(
            "head.out".into(),
            &cal.layers[float.layers.len()].pre,
            "i32",
            qh.format.pre_frac,
        ));
    }

    let reference = RuntimeModel::from_float(float)?;
    let (mut max_err, mut sum_err, mut n_vals, mut agree, mut n_steps) =
        (0f64, 0f64, 0usize, 0usize, 0usize);
    let mut compare = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        for (ra, rb) in a.iter().zip(b) {
            for (x, y) in ra.iter().zip(rb) {
                let e = (x - y).abs();
                max_err = max_err.max(e);
                sum_err += e;
                n_vals += 1;
            }
            n_steps += 1;
            if tinyrnn::argmax(ra) == tinyrnn::argmax(rb) {
                agree += 1;
            }
        }
    };
    let runtime = q.to_runtime()?;
    for s in &data.series {
        let want = reference.run_real(s.rows());
        let got = match &runtime {
            QuantRuntime::Q15(m) => run(m, s),
            QuantRuntime::W8a16(m) => run(m, s),
        };
        compare(&got, &want);
    }
    Ok(QuantReport {
        format: q.kind.name(),
        steps: cal.steps,
        tensors,
        max_abs_error: max_err,
        mean_abs_error: sum_err / n_vals.max(1) as f64,
        argmax_agreement: q
            .head
            .as_ref()
            .map(|_| agree as f64 / n_steps.max(1) as f64),
    })
}

fn run<N: HostNumeric>(m: &RuntimeModel<N>, s: &crate::dataset::Series) -> Vec<Vec<f64>> {
    m.run_real(s.rows())
}

impl std::fmt::Display for QuantReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "format {} — calibration: {} timesteps",
            self.format, self.steps
        )?;
        writeln!(
            f,
            "{:<16} {:>7} {:>7} {:>12} {:>10}",
            "tensor", "storage", "frac", "max |v|", "saturated"
        )?;
        for t in &self.tensors {
            writeln!(
                f,
                "{:<16} {:>7} {:>7} {:>12.5} {:>9.4}%",
                t.tensor,
                t.storage,
                t.frac,
                t.max_abs,
                t.saturated * 100.0
            )?;
        }
        writeln!(
            f,
            "output error vs f32: max {:.3e}, mean {:.3e}",
            self.max_abs_error, self.mean_abs_error
        )?;
        if let Some(a) = self.argmax_agreement {
            writeln!(f, "argmax agreement with f32: {:.2}% of steps", a * 100.0)?;
        }
        Ok(())
    }
}
