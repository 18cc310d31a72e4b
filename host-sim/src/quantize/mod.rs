//! Quantisation: from an `f32` model and calibration data to a fixed-point model.
//!
//! 1. The input normalisation is folded into layer 0 ([`FloatModel::fold_normalization`]), so
//!    the quantised model takes raw sensor values, as the firmware receives them.
//! 2. [`calibration`] runs the `f32` model over the calibration data and records the range of
//!    the input, every layer's gate pre-activations, LSTM cell state, `relu` hidden state and
//!    the head's outputs.
//! 3. Formats are powers of two chosen to hold the observed maximum times a headroom factor
//!    (default 1.25): `i16` tensors get `frac = 15 - ceil(log2(max · headroom))`; `i32`
//!    pre-activations keep one spare bit below `i32`'s range and at most 24 fractional bits.
//!    Weights take the largest `frac` at which their largest magnitude still fits (per tensor,
//!    or per output row with [`Granularity::Row`]). Hidden states of tanh-bounded cells are Q15.
//! 4. Weights and biases are rounded to nearest (ties away from zero) and saturated.

pub mod calibration;
pub mod file;
pub mod report;

use anyhow::{bail, Result};
use tinyrnn::{QFormat, Q15, W8A16};

use crate::dataset::Dataset;
use crate::model_file::{CellKind, FloatModel, Nonlinearity};
use crate::runtime_model::{folded_biases, HeadStore, HostNumeric, LayerStore, RuntimeModel};
use calibration::{LayerStats, Recording, TensorStats};
pub use file::{QuantHead, QuantLayer, QuantModel};

/// The integer formats `tinyrnn` offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantKind {
    /// 16-bit weights and activations.
    Q15,
    /// 8-bit weights, 16-bit activations.
    W8a16,
}

impl QuantKind {
    /// `q15` or `w8a16`.
    pub fn name(self) -> &'static str {
        match self {
            QuantKind::Q15 => "q15",
            QuantKind::W8a16 => "w8a16",
        }
    }

    /// Parses `q15` / `w8a16`.
    pub fn parse(s: &str) -> Option<QuantKind> {
        match s {
            "q15" => Some(QuantKind::Q15),
            "w8a16" => Some(QuantKind::W8a16),
            _ => None,
        }
    }

    /// Largest weight magnitude of the integer type.
    pub fn weight_max(self) -> i32 {
        match self {
            QuantKind::Q15 => i16::MAX as i32,
            QuantKind::W8a16 => i8::MAX as i32,
        }
    }
}

/// Whether weight scales are per tensor or per output row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Granularity {
    /// One format per weight matrix.
    Tensor,
    /// One format per output row (gate of a unit).
    Row,
}

/// Options of the quantiser.
#[derive(Clone, Copy, Debug)]
pub struct QuantOptions {
    /// Target format.
    pub kind: QuantKind,
    /// Weight scale granularity.
    pub granularity: Granularity,
    /// Range multiplier on observed maxima (≥ 1).
    pub headroom: f64,
}

/// Integer bits a signed 16-bit tensor needs for magnitudes up to `max` (0 for `max ≤ 1`).
pub fn int_bits(max: f64) -> i32 {
    if max <= 1.0 {
        0
    } else {
        max.log2().ceil() as i32
    }
}

/// `frac` for an `i16` tensor holding magnitudes up to `max · headroom`, clamped to `0..=15`.
pub fn act_frac(max: f64, headroom: f64) -> i8 {
    (15 - int_bits(max * headroom)).clamp(0, 15) as i8
}

/// `frac` for an `i32` pre-activation holding magnitudes up to `max · headroom`.
pub fn pre_frac(max: f64, headroom: f64) -> i8 {
    (30 - int_bits(max * headroom)).clamp(0, 24) as i8
}

/// `pre_frac` for pre-activations up to `max` (times the headroom) whose biases `bias` must fit
/// the `i32` too: a normalisation folded into layer 0 (`b - W·mean/std`) can make a bias far
/// larger than any pre-activation it takes part in, and a saturated bias shifts every output.
fn pre_frac_holding<'b>(max: f64, bias: impl Iterator<Item = &'b f32>, opts: &QuantOptions) -> i8 {
    let bias_max = bias.fold(0f64, |m, b| m.max(b.abs() as f64));
    pre_frac(max, opts.headroom).min(pre_frac(bias_max, opts.headroom))
}

/// The largest `frac` at which `max_abs · 2^frac` still fits `limit` (clamped to `-8..=24`).
pub fn weight_frac(max_abs: f64, limit: i32) -> i8 {
    if max_abs <= 0.0 {
        return 15;
    }
    let f = (limit as f64 / max_abs).log2().floor() as i32;
    f.clamp(-8, 24) as i8
}

/// Rounds `v · 2^frac` to nearest (ties away from zero) and saturates to `±limit`.
pub fn quantize_value(v: f32, frac: i8, limit: i64) -> i64 {
    let scaled = (v as f64) * 2f64.powi(frac as i32);
    (scaled.round() as i64).clamp(-limit - 1, limit)
}

/// Quantises a gate-major matrix (`rows × cols`); returns values and per-row fracs.
fn quantize_matrix(
    w: &[f32],
    rows: usize,
    cols: usize,
    opts: &QuantOptions,
) -> (Vec<i16>, Vec<i8>) {
    let limit = opts.kind.weight_max();
    let tensor_max = w.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    let mut values = Vec::with_capacity(w.len());
    let mut fracs = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * cols..(r + 1) * cols];
        let max = match opts.granularity {
            Granularity::Tensor => tensor_max,
            Granularity::Row => row.iter().fold(0f64, |m, v| m.max(v.abs() as f64)),
        };
        let frac = weight_frac(max, limit);
        fracs.push(frac);
        values.extend(
            row.iter()
                .map(|&v| quantize_value(v, frac, limit as i64) as i16),
        );
    }
    (values, fracs)
}

/// What calibration recorded, per layer and for the input.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// Raw input values.
    pub input: TensorStats,
    /// Per layer; the head is last when present.
    pub layers: Vec<LayerStats>,
    /// Timesteps seen.
    pub steps: usize,
}

/// Runs the (normalisation-folded) `f32` model over every series of `data`.
pub fn calibrate(model: &FloatModel, data: &Dataset) -> Result<Calibration> {
    if data.series.iter().all(|s| s.steps == 0) {
        bail!("the calibration set is empty");
    }
    if data.channels != model.input_size() {
        bail!(
            "the calibration data has {} channels but the model expects {} inputs",
            data.channels,
            model.input_size()
        );
    }
    let recording = RuntimeModel::<Recording>::from_float_with(model, |k| {
        (k as u16, model.kind == CellKind::Rnn(Nonlinearity::Tanh))
    })?;
    let mut input = TensorStats::default();
    let mut steps = 0;
    calibration::take_stats();
    for s in &data.series {
        for row in s.rows() {
            for &v in row {
                input.record(v as f64);
            }
        }
        steps += s.steps;
        recording.run_real(s.rows());
    }
    let mut layers = calibration::take_stats();
    layers.resize(
        model.layers.len() + usize::from(model.head.is_some()),
        LayerStats::default(),
    );
    Ok(Calibration {
        input,
        layers,
        steps,
    })
}

/// Chooses formats from `calibration` and quantises `model` (already normalisation-folded).
pub fn quantize(
    model: &FloatModel,
    calibration: &Calibration,
    opts: &QuantOptions,
) -> Result<QuantModel> {
    if model.meta.normalization.is_some() {
        bail!("internal: fold the normalisation before quantising");
    }
    let gates = model.kind.gates();
    let input_frac = act_frac(calibration.input.max_abs, opts.headroom);
    let mut x_frac = input_frac;
    let mut layers = Vec::new();
    for (k, l) in model.layers.iter().enumerate() {
        let st = &calibration.layers[k];
        let h_frac = match model.kind {
            CellKind::Rnn(Nonlinearity::Relu) => act_frac(st.hidden.max_abs, opts.headroom),
            _ => 15,
        };
        // Biases: folded, but kept gate-major here (the file's layout); b_hn separate for GRU.
        let (bias_um, bias_hn) = folded_biases(
            model.kind,
            l.hidden_size,
            l.b_ih.as_deref(),
            l.b_hh.as_deref(),
        );
        let format = QFormat {
            x_frac,
            h_frac,
            pre_frac: pre_frac_holding(st.pre.max_abs, bias_um.iter().chain(&bias_hn), opts),
            c_frac: if model.kind == CellKind::Lstm {
                act_frac(st.cell.max_abs, opts.headroom)
            } else {
                0
            },
        };
        let rows = gates * l.hidden_size;
        let (w_ih, frac_ih) = quantize_matrix(&l.w_ih, rows, l.input_size, opts);
        let (w_hh, frac_hh) = quantize_matrix(&l.w_hh, rows, l.hidden_size, opts);
        let mut bias = vec![0i32; rows];
        for j in 0..l.hidden_size {
            for g in 0..gates {
                bias[g * l.hidden_size + j] =
                    quantize_value(bias_um[j * gates + g], format.pre_frac, i32::MAX as i64) as i32;
            }
        }
        let bias_hn = bias_hn
            .iter()
            .map(|&b| quantize_value(b, format.pre_frac, i32::MAX as i64) as i32)
            .collect();
        layers.push(QuantLayer {
            input_size: l.input_size,
            hidden_size: l.hidden_size,
            w_ih,
            frac_ih,
            w_hh,
            frac_hh,
            bias,
            bias_hn,
            format,
        });
        x_frac = h_frac;
    }
    let head = model.head.as_ref().map(|h| {
        let st = &calibration.layers[model.layers.len()];
        let format = QFormat {
            x_frac,
            h_frac: 0,
            pre_frac: pre_frac_holding(st.pre.max_abs, h.bias.iter().flatten(), opts),
            c_frac: 0,
        };
        let (weight, frac) = quantize_matrix(&h.weight, h.output_size, h.input_size, opts);
        let bias = match &h.bias {
            Some(b) => b
                .iter()
                .map(|&v| quantize_value(v, format.pre_frac, i32::MAX as i64) as i32)
                .collect(),
            None => vec![0; h.output_size],
        };
        QuantHead {
            input_size: h.input_size,
            output_size: h.output_size,
            weight,
            frac,
            bias,
            format,
        }
    });
    let output_frac = match &head {
        Some(h) => h.format.pre_frac,
        None => x_frac,
    };
    Ok(QuantModel {
        kind: opts.kind,
        cell: model.kind,
        layers,
        head,
        input_frac,
        output_frac,
        prefix: model.prefix.clone(),
        head_prefix: model.head_prefix.clone(),
        meta: model.meta.clone(),
    })
}

/// Integer weight storage that a quantised file's `i16` values convert into.
pub trait QuantWeight: Copy {
    /// Narrows, failing if out of range.
    fn narrow(v: i16) -> Option<Self>;
}

impl QuantWeight for i16 {
    fn narrow(v: i16) -> Option<i16> {
        Some(v)
    }
}

impl QuantWeight for i8 {
    fn narrow(v: i16) -> Option<i8> {
        i8::try_from(v).ok()
    }
}

fn narrow_all<W: QuantWeight>(what: &str, v: &[i16]) -> Result<Vec<W>> {
    v.iter()
        .map(|&x| {
            W::narrow(x)
                .ok_or_else(|| anyhow::anyhow!("{what}: value {x} does not fit the weight type"))
        })
        .collect()
}

impl QuantModel {
    /// Builds the runnable integer model (unit-major) for weight type `W`.
    pub fn runtime<W>(&self) -> Result<RuntimeModel<tinyrnn::numeric::fixed_point::Fixed<W>>>
    where
        W: QuantWeight + tinyrnn::numeric::fixed_point::FixedWeight,
    {
        use crate::runtime_model::unit_major;
        self.validate()?;
        let gates = self.cell.gates();
        let mut layers = Vec::new();
        for (k, l) in self.layers.iter().enumerate() {
            let h = l.hidden_size;
            l.format
                .validate()
                .map_err(|e| anyhow::anyhow!("layer {k}: {e}"))?;
            layers.push(LayerStore {
                kind: self.cell,
                input_size: l.input_size,
                hidden_size: h,
                w_ih: narrow_all(
                    &format!("layer {k} weight_ih"),
                    &unit_major(&l.w_ih, gates, h, l.input_size),
                )?,
                w_hh: narrow_all(
                    &format!("layer {k} weight_hh"),
                    &unit_major(&l.w_hh, gates, h, h),
                )?,
                bias: unit_major(&l.bias, gates, h, 1),
                bias_hn: l.bias_hn.clone(),
                scale_ih: unit_major(&l.frac_ih, gates, h, 1),
                scale_hh: unit_major(&l.frac_hh, gates, h, 1),
                format: l.format,
            });
        }
        let head = match &self.head {
            Some(hd) => Some(HeadStore {
                input_size: hd.input_size,
                output_size: hd.output_size,
                weight: narrow_all("head weight", &hd.weight)?,
                bias: hd.bias.clone(),
                scale: hd.frac.clone(),
                format: hd.format,
            }),
            None => None,
        };
        let m = RuntimeModel {
            layers,
            head,
            input_frac: self.input_frac,
            output_frac: self.output_frac,
            normalization: None,
        };
        m.validate()?;
        Ok(m)
    }
}

/// The integer runtime model of either kind.
pub enum QuantRuntime {
    /// 16-bit weights.
    Q15(RuntimeModel<Q15>),
    /// 8-bit weights.
    W8a16(RuntimeModel<W8A16>),
}

impl QuantModel {
    /// The runnable model for this file's kind.
    pub fn to_runtime(&self) -> Result<QuantRuntime> {
        Ok(match self.kind {
            QuantKind::Q15 => QuantRuntime::Q15(self.runtime::<i16>()?),
            QuantKind::W8a16 => QuantRuntime::W8a16(self.runtime::<i8>()?),
        })
    }
}

impl<W: tinyrnn::numeric::fixed_point::FixedWeight> HostNumeric
    for tinyrnn::numeric::fixed_point::Fixed<W>
{
    fn encode_act(x: f32, frac: i8) -> i16 {
        quantize_value(x, frac, i16::MAX as i64) as i16
    }
    fn decode_act(a: i16, frac: i8) -> f64 {
        a as f64 / 2f64.powi(frac as i32)
    }
    fn decode_pre(p: i32, frac: i8) -> f64 {
        p as f64 / 2f64.powi(frac as i32)
    }
    fn act_bits(a: i16) -> i64 {
        a as i64
    }
    fn pre_bits(p: i32) -> i64 {
        p as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_hold_their_maxima() {
        assert_eq!(act_frac(0.9, 1.0), 15);
        assert_eq!(act_frac(3.0, 1.25), 13); // 3.75 needs 2 integer bits
        assert_eq!(act_frac(1e9, 1.0), 0);
        assert_eq!(pre_frac(5.0, 1.25), 24); // 30 - 3 = 27, capped at 24
        assert_eq!(weight_frac(0.5, 127), 7); // 0.5 * 2^7 = 64 <= 127, 2^8 would be 128
        assert_eq!(weight_frac(0.49, 127), 8);
        assert_eq!(quantize_value(1.0, 15, 32767), 32767); // saturates, never wraps
        assert_eq!(quantize_value(-1.0, 15, 32767), -32768);
        assert_eq!(quantize_value(0.5, 2, 127), 2);
    }
}
