//! The quantised model file: safetensors with integer tensors and the formats in metadata.
//!
//! Keys (with the recurrent module's prefix `P` and the head's prefix `D` of the source model):
//!
//! | key | dtype | shape | meaning |
//! |---|---|---|---|
//! | `P.weight_ih_l{k}` | I16 (q15) / I8 (w8a16) | `[G·H, I]` | PyTorch layout, gate-major |
//! | `P.weight_hh_l{k}` | I16 / I8 | `[G·H, H]` | |
//! | `P.weight_ih_l{k}_frac`, `P.weight_hh_l{k}_frac` | I8 | `[G·H]` | per-row fractional bits |
//! | `P.bias_l{k}` | I32 | `[G·H]` | folded bias (`b_ih + b_hh`; GRU n row: `b_in`) at `pre_frac` |
//! | `P.bias_hn_l{k}` | I32 | `[H]` | GRU only: `b_hn` at `pre_frac` |
//! | `D.weight`, `D.weight_frac`, `D.bias` | I16/I8, I8, I32 | | head |
//!
//! `__metadata__`: `tinyrnn.numeric` (`q15`/`w8a16`), `tinyrnn.cell`, `tinyrnn.nonlinearity`,
//! `tinyrnn.formats` (JSON: `input_frac`, `output_frac`, per-layer `x_frac`/`h_frac`/`pre_frac`/
//! `c_frac`, head `x_frac`/`pre_frac`), and the source model's class names.
//!
//! # What a file must satisfy ([`QuantModel::validate`])
//!
//! The ranges follow from what `tinyrnn::numeric::fixed_point` does with each number:
//!
//! - `x_frac`, `h_frac`, `c_frac` (formats of `i16` values) in `0..=15` and `pre_frac` (an `i32`)
//!   in `0..=24`, as `tinyrnn::QFormat::validate` requires; the generated code turns them into
//!   `fixed::FixedI16<U{frac}>` / `FixedI32<U{frac}>` types, which exist for these values.
//! - An LSTM's or GRU's hidden state is Q15 whatever the format says (`lstm_hidden` and
//!   `gru_hidden` produce Q15), so their `h_frac` must be 15; a plain RNN may use any.
//! - The formats chain: `input_frac` is layer 0's `x_frac`, each layer's `x_frac` the previous
//!   layer's `h_frac`, the head's `x_frac` the last layer's `h_frac`, and `output_frac` is what
//!   the outputs are: the head's `pre_frac`, or the last layer's `h_frac` without a head.
//! - A weight row with `f` fractional bits is rescaled by the shift `f + act_frac - pre_frac`
//!   (`act_frac` = `x_frac` for `weight_ih` and the head, `h_frac` for `weight_hh`), which must
//!   lie in [`ROW_SHIFT_MIN`]`..=`[`ROW_SHIFT_MAX`]: a left shift by 32 or more saturates every
//!   non-zero product in the `i32` pre-activation, and a right shift by 63 or more rounds every
//!   exact dot product (below 2^61 in magnitude) to zero, so outside that window the row carries
//!   no information and its weights only pretend to.
//! - w8a16 weights fit `i8`.
//! - Every tensor is used, layer indices are canonical and below
//!   [`MAX_LAYERS`], the nonlinearity rules of
//!   [`crate::model_file`] apply, and class names match the head.
//!
//! [`QuantModel::to_bytes`] (and [`QuantModel::save`]) checks these, parses its own bytes back and
//! compares them with the model before returning them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};
use tinyrnn::QFormat;

use super::QuantKind;
use crate::model_file::{
    check_class_names, check_extra, join_key, layer_index, meta_keys, read_container, split_key,
    CellKind, Container, ModelMeta, Nonlinearity, OwnedTensor, StoredCell, MAX_LAYERS,
};
use crate::quote::{library_message, shorten};

/// Metadata key of the numeric format.
pub const NUMERIC_KEY: &str = meta_keys::NUMERIC;
/// Metadata key of the formats JSON.
pub const FORMATS_KEY: &str = meta_keys::FORMATS;

/// Smallest rescaling shift of a weight row (module doc): a left shift by 31 bits still lets a
/// dot product of 1 land inside the `i32` pre-activation.
pub const ROW_SHIFT_MIN: i32 = -31;
/// Largest rescaling shift of a weight row (module doc): a right shift by 62 bits still keeps the
/// largest exact dot products (up to 2^61) from rounding to zero.
pub const ROW_SHIFT_MAX: i32 = 62;

/// One quantised recurrent layer, PyTorch (gate-major) layout.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantLayer {
    /// Input features.
    pub input_size: usize,
    /// Hidden units.
    pub hidden_size: usize,
    /// `[G·H][I]` integer weights (i8 range for w8a16).
    pub w_ih: Vec<i16>,
    /// Per-row fractional bits of `w_ih`.
    pub frac_ih: Vec<i8>,
    /// `[G·H][H]`.
    pub w_hh: Vec<i16>,
    /// Per-row fractional bits of `w_hh`.
    pub frac_hh: Vec<i8>,
    /// Folded bias `[G·H]` at `pre_frac`.
    pub bias: Vec<i32>,
    /// GRU `b_hn` `[H]` at `pre_frac` (empty otherwise).
    pub bias_hn: Vec<i32>,
    /// The layer's formats.
    pub format: QFormat,
}

/// The quantised head.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantHead {
    /// Inputs.
    pub input_size: usize,
    /// Outputs.
    pub output_size: usize,
    /// `[O][I]`.
    pub weight: Vec<i16>,
    /// Per-row fractional bits.
    pub frac: Vec<i8>,
    /// `[O]` at the output format.
    pub bias: Vec<i32>,
    /// `x_frac` (last hidden format) and `pre_frac` (output format).
    pub format: QFormat,
}

/// A quantised model.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantModel {
    /// q15 or w8a16.
    pub kind: QuantKind,
    /// Cell kind.
    pub cell: CellKind,
    /// Layers.
    pub layers: Vec<QuantLayer>,
    /// Head.
    pub head: Option<QuantHead>,
    /// Fractional bits of the raw model input.
    pub input_frac: i8,
    /// Fractional bits of the outputs.
    pub output_frac: i8,
    /// Key prefix of the recurrent module.
    pub prefix: String,
    /// Key prefix of the head.
    pub head_prefix: String,
    /// Class names etc. (normalisation is folded into the weights, never present).
    pub meta: ModelMeta,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatsJson {
    input_frac: i8,
    output_frac: i8,
    layers: Vec<LayerFormatJson>,
    head: Option<LayerFormatJson>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct LayerFormatJson {
    x_frac: i8,
    #[serde(default)]
    h_frac: i8,
    pre_frac: i8,
    #[serde(default)]
    c_frac: i8,
}

impl From<QFormat> for LayerFormatJson {
    fn from(f: QFormat) -> Self {
        LayerFormatJson {
            x_frac: f.x_frac,
            h_frac: f.h_frac,
            pre_frac: f.pre_frac,
            c_frac: f.c_frac,
        }
    }
}

impl From<LayerFormatJson> for QFormat {
    fn from(f: LayerFormatJson) -> Self {
        QFormat {
            x_frac: f.x_frac,
            h_frac: f.h_frac,
            pre_frac: f.pre_frac,
            c_frac: f.c_frac,
        }
    }
}

/// Is this safetensors file a quantised `tinyrnn` model?
pub fn is_quantized(bytes: &[u8]) -> Result<bool> {
    Ok(crate::model_file::is_quantized(&read_container(bytes)?))
}

impl QuantModel {
    /// Serialises to safetensors bytes.
    ///
    /// The model is checked first ([`QuantModel::validate`]); then the bytes are parsed back and
    /// compared with `self`, so the result always loads as this very model. The bytes depend
    /// only on the model (tensors and metadata in a fixed order).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.validate()
            .map_err(|e| anyhow!("refusing to write an invalid model: {e:#}"))?;
        let bytes = crate::model_file::write_container(self.tensors(), &self.metadata_map()?)?;
        let back = QuantModel::from_bytes(&bytes)
            .map_err(|e| anyhow!("the model file would not load back: {e:#}"))?;
        if let Some(what) = quant_difference(self, &back) {
            bail!("the model file would load back with a different {what}");
        }
        Ok(bytes)
    }

    /// The tensors of the file.
    fn tensors(&self) -> Vec<OwnedTensor> {
        let wdtype = match self.kind {
            QuantKind::Q15 => Dtype::I16,
            QuantKind::W8a16 => Dtype::I8,
        };
        // `validate` has checked that w8a16 weights fit `i8`.
        let weight_bytes = |v: &[i16]| -> Vec<u8> {
            match self.kind {
                QuantKind::Q15 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                QuantKind::W8a16 => v.iter().map(|&x| x as i8 as u8).collect(),
            }
        };
        let i8_bytes = |v: &[i8]| -> Vec<u8> { v.iter().map(|&x| x as u8).collect() };
        let i32_bytes = |v: &[i32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let mut out = Vec::new();
        let mut push = |name: String, dtype: Dtype, shape: Vec<usize>, data: Vec<u8>| {
            out.push(OwnedTensor {
                name,
                dtype,
                shape,
                data,
            })
        };
        let g = self.cell.gates();
        let p = &self.prefix;
        for (k, l) in self.layers.iter().enumerate() {
            let rows = g * l.hidden_size;
            push(
                join_key(p, &format!("weight_ih_l{k}")),
                wdtype,
                vec![rows, l.input_size],
                weight_bytes(&l.w_ih),
            );
            push(
                join_key(p, &format!("weight_hh_l{k}")),
                wdtype,
                vec![rows, l.hidden_size],
                weight_bytes(&l.w_hh),
            );
            push(
                join_key(p, &format!("weight_ih_l{k}_frac")),
                Dtype::I8,
                vec![rows],
                i8_bytes(&l.frac_ih),
            );
            push(
                join_key(p, &format!("weight_hh_l{k}_frac")),
                Dtype::I8,
                vec![rows],
                i8_bytes(&l.frac_hh),
            );
            push(
                join_key(p, &format!("bias_l{k}")),
                Dtype::I32,
                vec![rows],
                i32_bytes(&l.bias),
            );
            if self.cell == CellKind::Gru {
                push(
                    join_key(p, &format!("bias_hn_l{k}")),
                    Dtype::I32,
                    vec![l.hidden_size],
                    i32_bytes(&l.bias_hn),
                );
            }
        }
        if let Some(h) = &self.head {
            let d = &self.head_prefix;
            push(
                join_key(d, "weight"),
                wdtype,
                vec![h.output_size, h.input_size],
                weight_bytes(&h.weight),
            );
            push(
                join_key(d, "weight_frac"),
                Dtype::I8,
                vec![h.output_size],
                i8_bytes(&h.frac),
            );
            push(
                join_key(d, "bias"),
                Dtype::I32,
                vec![h.output_size],
                i32_bytes(&h.bias),
            );
        }
        out
    }

    /// The `__metadata__` entries of the file.
    fn metadata_map(&self) -> Result<BTreeMap<String, String>> {
        let mut meta = self.meta.extra.clone();
        meta.insert(NUMERIC_KEY.into(), self.kind.name().into());
        meta.insert(meta_keys::CELL.into(), self.cell.name().into());
        if let CellKind::Rnn(n) = self.cell {
            meta.insert(meta_keys::NONLINEARITY.into(), n.name().into());
        }
        if !self.meta.class_names.is_empty() {
            meta.insert(
                meta_keys::CLASS_NAMES.into(),
                serde_json::to_string(&self.meta.class_names)?,
            );
        }
        let formats = FormatsJson {
            input_frac: self.input_frac,
            output_frac: self.output_frac,
            layers: self.layers.iter().map(|l| l.format.into()).collect(),
            head: self.head.as_ref().map(|h| h.format.into()),
        };
        meta.insert(FORMATS_KEY.into(), serde_json::to_string(&formats)?);
        Ok(meta)
    }

    /// Writes the file (atomically: see [`crate::output_file`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self
            .to_bytes()
            .with_context(|| format!("{}: not written", path.display()))?;
        crate::output_file::write_atomically("", path, &bytes)
    }

    /// Reads a quantised file.
    pub fn load(path: &Path) -> Result<QuantModel> {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
        Self::from_bytes(&bytes).map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// Parses a quantised file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<QuantModel> {
        Self::from_bytes_with(bytes, None)
    }

    /// Parses a quantised file's bytes; `nonlinearity` is a plain RNN's nonlinearity when the
    /// file does not store it (and must agree with the file when it does), as for
    /// [`FloatModel::load`](crate::model_file::FloatModel::load).
    pub fn from_bytes_with(bytes: &[u8], nonlinearity: Option<Nonlinearity>) -> Result<QuantModel> {
        parse(&read_container(bytes)?, nonlinearity)
    }

    /// Checks everything a quantised file must satisfy (module doc).
    pub fn validate(&self) -> Result<()> {
        let g = self.cell.gates();
        if self.layers.is_empty() {
            bail!("metadata `{FORMATS_KEY}` lists no layers");
        }
        if self.layers.len() > MAX_LAYERS {
            bail!(
                "the model has {} layers; at most {MAX_LAYERS} are supported",
                self.layers.len()
            );
        }
        let key = |leaf: String| join_key(&self.prefix, &leaf);
        for (k, l) in self.layers.iter().enumerate() {
            let f = &l.format;
            let what = format!("metadata `{FORMATS_KEY}` layer {k}");
            check_format_ranges(&what, f)?;
            if matches!(self.cell, CellKind::Lstm | CellKind::Gru) && f.h_frac != 15 {
                bail!(
                    "{what}: h_frac is {}, but an {} hidden state is always Q15 (h_frac 15)",
                    f.h_frac,
                    self.cell.name().to_ascii_uppercase()
                );
            }
            if l.input_size == 0 || l.hidden_size == 0 {
                bail!(
                    "layer {k} has {} inputs and {} hidden units; both must be at least 1",
                    l.input_size,
                    l.hidden_size
                );
            }
            match k.checked_sub(1).map(|p| &self.layers[p]) {
                None if f.x_frac != self.input_frac => bail!(
                    "metadata `{FORMATS_KEY}`: input_frac ({}) differs from layer 0's x_frac ({})",
                    self.input_frac,
                    f.x_frac
                ),
                Some(prev)
                    if f.x_frac != prev.format.h_frac || l.input_size != prev.hidden_size =>
                {
                    bail!(
                        "metadata `{FORMATS_KEY}`: layer {k}'s x_frac/input must equal layer {}'s \
                         h_frac/hidden",
                        k - 1
                    )
                }
                _ => {}
            }
            let rows = g * l.hidden_size;
            let bias_hn = if self.cell == CellKind::Gru {
                l.hidden_size
            } else {
                0
            };
            for (name, len, expected) in [
                (format!("weight_ih_l{k}"), l.w_ih.len(), rows * l.input_size),
                (
                    format!("weight_hh_l{k}"),
                    l.w_hh.len(),
                    rows * l.hidden_size,
                ),
                (format!("weight_ih_l{k}_frac"), l.frac_ih.len(), rows),
                (format!("weight_hh_l{k}_frac"), l.frac_hh.len(), rows),
                (format!("bias_l{k}"), l.bias.len(), rows),
                (format!("bias_hn_l{k}"), l.bias_hn.len(), bias_hn),
            ] {
                if len != expected {
                    bail!(
                        "`{}` has {len} values; expected {expected}",
                        shorten(&key(name))
                    );
                }
            }
            self.check_weights(&key(format!("weight_ih_l{k}")), &l.w_ih)?;
            self.check_weights(&key(format!("weight_hh_l{k}")), &l.w_hh)?;
            check_row_shifts(
                &key(format!("weight_ih_l{k}_frac")),
                &l.frac_ih,
                f.x_frac,
                f,
            )?;
            check_row_shifts(
                &key(format!("weight_hh_l{k}_frac")),
                &l.frac_hh,
                f.h_frac,
                f,
            )?;
        }
        let last = &self.layers[self.layers.len() - 1];
        match &self.head {
            Some(h) => {
                let f = &h.format;
                let what = format!("metadata `{FORMATS_KEY}` head");
                check_format_ranges(&what, f)?;
                if h.input_size != last.hidden_size || h.output_size == 0 {
                    bail!(
                        "the head maps {} inputs to {} outputs; it must take the last layer's {} \
                         hidden units to at least one output",
                        h.input_size,
                        h.output_size,
                        last.hidden_size
                    );
                }
                if f.x_frac != last.format.h_frac {
                    bail!(
                        "{what}: x_frac ({}) differs from the last layer's h_frac ({})",
                        f.x_frac,
                        last.format.h_frac
                    );
                }
                if self.output_frac != f.pre_frac {
                    bail!(
                        "metadata `{FORMATS_KEY}`: output_frac ({}) differs from the head's \
                         pre_frac ({}), the format of its outputs",
                        self.output_frac,
                        f.pre_frac
                    );
                }
                if !self.prefix.is_empty() && self.head_prefix == self.prefix {
                    bail!(
                        "the head's key prefix is the recurrent module's (`{}`)",
                        shorten(&self.prefix)
                    );
                }
                let hk = |leaf: &str| join_key(&self.head_prefix, leaf);
                for (name, len, expected) in [
                    ("weight", h.weight.len(), h.output_size * h.input_size),
                    ("weight_frac", h.frac.len(), h.output_size),
                    ("bias", h.bias.len(), h.output_size),
                ] {
                    if len != expected {
                        bail!(
                            "`{}` has {len} values; expected {expected}",
                            shorten(&hk(name))
                        );
                    }
                }
                self.check_weights(&hk("weight"), &h.weight)?;
                check_row_shifts(&hk("weight_frac"), &h.frac, f.x_frac, f)?;
            }
            None if self.output_frac != last.format.h_frac => bail!(
                "metadata `{FORMATS_KEY}`: output_frac ({}) differs from the last layer's h_frac \
                 ({}), the format of the outputs of a model without a head",
                self.output_frac,
                last.format.h_frac
            ),
            None => {}
        }
        check_class_names(
            &self.meta.class_names,
            self.head.as_ref().map(|h| h.output_size),
        )?;
        if self.meta.normalization.is_some() {
            bail!(
                "a quantised model must not carry `{}` (it is folded into the weights)",
                meta_keys::NORMALIZATION
            );
        }
        check_extra(&self.meta.extra)
    }

    /// Weights fit the file's integer type (`i16` always; `i8` for w8a16).
    fn check_weights(&self, name: &str, values: &[i16]) -> Result<()> {
        let name = shorten(name);
        if self.kind != QuantKind::W8a16 {
            return Ok(());
        }
        match values.iter().position(|&w| i8::try_from(w).is_err()) {
            Some(i) => bail!(
                "`{name}` has the value {} at flat index {i}, outside the i8 range of w8a16 weights",
                values[i]
            ),
            None => Ok(()),
        }
    }
}

/// `x_frac`, `h_frac`, `c_frac` in `0..=15`, `pre_frac` in `0..=24` (module doc).
fn check_format_ranges(what: &str, f: &QFormat) -> Result<()> {
    for (field, value, max) in [
        ("x_frac", f.x_frac, 15),
        ("h_frac", f.h_frac, 15),
        ("c_frac", f.c_frac, 15),
        ("pre_frac", f.pre_frac, 24),
    ] {
        if !(0..=max).contains(&value) {
            bail!("{what}: {field} is {value}; it must lie in 0..={max}");
        }
    }
    // The kernels' own check, so that the two cannot drift apart.
    f.validate().map_err(|e| anyhow!("{what}: {e}"))
}

/// Every row's rescaling shift `frac + act_frac - pre_frac` lies in
/// [`ROW_SHIFT_MIN`]`..=`[`ROW_SHIFT_MAX`] (module doc).
fn check_row_shifts(name: &str, fracs: &[i8], act_frac: i8, f: &QFormat) -> Result<()> {
    let name = shorten(name);
    for (row, &frac) in fracs.iter().enumerate() {
        let shift = frac as i32 + act_frac as i32 - f.pre_frac as i32;
        if !(ROW_SHIFT_MIN..=ROW_SHIFT_MAX).contains(&shift) {
            bail!(
                "`{name}` row {row} has {frac} fractional bits: with its input's {act_frac} and \
                 pre_frac {} that rescales by {shift} bits, outside {ROW_SHIFT_MIN}..={ROW_SHIFT_MAX} \
                 where a row's products neither all saturate nor all round to zero",
                f.pre_frac
            );
        }
    }
    Ok(())
}

/// The first part in which two quantised models differ, for the writer's round-trip check.
fn quant_difference(a: &QuantModel, b: &QuantModel) -> Option<String> {
    if a.kind != b.kind || a.cell != b.cell {
        return Some("numeric format or cell".into());
    }
    if a.layers.len() != b.layers.len() {
        return Some("number of layers".into());
    }
    if let Some(k) = (0..a.layers.len()).find(|&k| a.layers[k] != b.layers[k]) {
        return Some(format!("layer {k}"));
    }
    if a.head != b.head {
        return Some("head".into());
    }
    if (a.input_frac, a.output_frac) != (b.input_frac, b.output_frac) {
        return Some("input or output format".into());
    }
    if a.prefix != b.prefix {
        return Some(format!(
            "key prefix (`{}` instead of `{}`)",
            shorten(&b.prefix),
            shorten(&a.prefix)
        ));
    }
    if a.head.is_some() && a.head_prefix != b.head_prefix {
        return Some(format!(
            "head key prefix (`{}` instead of `{}`)",
            shorten(&b.head_prefix),
            shorten(&a.head_prefix)
        ));
    }
    (a.meta != b.meta).then(|| "metadata".into())
}

/// Integer tensor contents, widened.
fn read_ints(c: &Container<'_>, name: &str, dtype: Dtype, shape: &[usize]) -> Result<Vec<i64>> {
    let t = c
        .tensors
        .tensor(name)
        .map_err(|_| anyhow!("missing tensor `{}`", shorten(name)))?;
    if t.dtype() != dtype {
        bail!(
            "tensor `{}` has dtype {:?}; expected {dtype:?}",
            shorten(name),
            t.dtype()
        );
    }
    if t.shape() != shape {
        bail!(
            "tensor `{}` has shape {:?}; expected {shape:?}",
            shorten(name),
            t.shape()
        );
    }
    let d = t.data();
    Ok(match dtype {
        Dtype::I8 => d.iter().map(|&b| b as i8 as i64).collect(),
        Dtype::I16 => d
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as i64)
            .collect(),
        _ => d
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
            .collect(),
    })
}

/// The leaves of a quantised layer's tensors, `<stem>{k}` (weights also `<stem>{k}_frac`).
const QUANT_LAYER_STEMS: [&str; 4] = ["weight_ih_l", "weight_hh_l", "bias_l", "bias_hn_l"];

fn parse(c: &Container<'_>, given: Option<Nonlinearity>) -> Result<QuantModel> {
    let mut meta = c.metadata.clone();
    let numeric = meta
        .remove(NUMERIC_KEY)
        .ok_or_else(|| anyhow!("metadata `{NUMERIC_KEY}` is missing"))?;
    let kind = QuantKind::parse(&numeric).ok_or_else(|| {
        anyhow!(
            "metadata `{NUMERIC_KEY}` is `{}`; expected q15 or w8a16",
            shorten(&numeric)
        )
    })?;
    let stored = StoredCell::from_metadata(&meta)?;
    let gates = stored
        .gates
        .ok_or_else(|| anyhow!("metadata `{}` is missing", meta_keys::CELL))?;
    let cell = stored.kind(gates, given)?;
    meta.remove(meta_keys::CELL);
    meta.remove(meta_keys::NONLINEARITY);
    let formats_text = meta
        .remove(FORMATS_KEY)
        .ok_or_else(|| anyhow!("metadata `{FORMATS_KEY}` is missing"))?;
    let formats: FormatsJson = serde_json::from_str(&formats_text)
        .map_err(|e| anyhow!("metadata `{FORMATS_KEY}`: {}", library_message(&e)))?;
    let class_names = match meta.remove(meta_keys::CLASS_NAMES) {
        Some(s) => serde_json::from_str(&s).map_err(|e| {
            anyhow!(
                "metadata `{}`: {}",
                meta_keys::CLASS_NAMES,
                library_message(&e)
            )
        })?,
        None => Vec::new(),
    };
    if meta.contains_key(meta_keys::NORMALIZATION) {
        bail!(
            "a quantised model must not carry `{}` (it is folded into the weights)",
            meta_keys::NORMALIZATION
        );
    }
    if formats.layers.is_empty() {
        bail!("metadata `{FORMATS_KEY}` lists no layers");
    }
    if formats.layers.len() > MAX_LAYERS {
        bail!(
            "metadata `{FORMATS_KEY}` lists {} layers; at most {MAX_LAYERS} are supported",
            formats.layers.len()
        );
    }

    // The recurrent module's prefix: that of the one `weight_ih_l0`.
    let names = &c.names;
    let firsts: Vec<&String> = names
        .iter()
        .filter(|n| split_key(n).1 == "weight_ih_l0")
        .collect();
    let prefix = match firsts.as_slice() {
        [] => bail!("no `weight_ih_l0` tensor"),
        [one] => split_key(one).0.to_string(),
        many => bail!(
            "more than one recurrent module ({}); expected exactly one",
            many.iter()
                .map(|n| shorten(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // Layer indices of every key under the prefix: canonical, bounded, and listed in formats.
    for n in names {
        let (p, leaf) = split_key(n);
        if p != prefix {
            continue;
        }
        let leaf = leaf.strip_suffix("_frac").unwrap_or(leaf);
        if let Some(k) = QUANT_LAYER_STEMS
            .iter()
            .find_map(|s| layer_index(n, leaf, s))
        {
            if k? >= formats.layers.len() {
                bail!(
                    "the file has more layers than metadata `{FORMATS_KEY}` lists ({}): `{}`",
                    formats.layers.len(),
                    shorten(n)
                );
            }
        }
    }
    let wdtype = match kind {
        QuantKind::Q15 => Dtype::I16,
        QuantKind::W8a16 => Dtype::I8,
    };
    let as_i16 = |v: Vec<i64>| v.into_iter().map(|x| x as i16).collect::<Vec<_>>();
    let as_i8 = |v: Vec<i64>| v.into_iter().map(|x| x as i8).collect::<Vec<_>>();
    let as_i32 = |v: Vec<i64>| v.into_iter().map(|x| x as i32).collect::<Vec<_>>();
    let key = |leaf: String| join_key(&prefix, &leaf);
    let mut layers = Vec::new();
    for (k, lf) in formats.layers.iter().enumerate() {
        let wih = key(format!("weight_ih_l{k}"));
        let t = c.tensors.tensor(&wih).map_err(|_| {
            anyhow!(
                "missing tensor `{}` (formats list {} layers)",
                shorten(&wih),
                formats.layers.len()
            )
        })?;
        let shape = t.shape().to_vec();
        if shape.len() != 2 || shape[0] % gates != 0 || shape[0] == 0 {
            bail!(
                "tensor `{}` has shape {shape:?}; expected [{gates}·hidden, inputs]",
                shorten(&wih)
            );
        }
        let (hidden, input) = (shape[0] / gates, shape[1]);
        let rows = gates * hidden;
        layers.push(QuantLayer {
            input_size: input,
            hidden_size: hidden,
            w_ih: as_i16(read_ints(c, &wih, wdtype, &[rows, input])?),
            w_hh: as_i16(read_ints(
                c,
                &key(format!("weight_hh_l{k}")),
                wdtype,
                &[rows, hidden],
            )?),
            frac_ih: as_i8(read_ints(
                c,
                &key(format!("weight_ih_l{k}_frac")),
                Dtype::I8,
                &[rows],
            )?),
            frac_hh: as_i8(read_ints(
                c,
                &key(format!("weight_hh_l{k}_frac")),
                Dtype::I8,
                &[rows],
            )?),
            bias: as_i32(read_ints(
                c,
                &key(format!("bias_l{k}")),
                Dtype::I32,
                &[rows],
            )?),
            bias_hn: if cell == CellKind::Gru {
                as_i32(read_ints(
                    c,
                    &key(format!("bias_hn_l{k}")),
                    Dtype::I32,
                    &[hidden],
                )?)
            } else {
                Vec::new()
            },
            format: (*lf).into(),
        });
    }
    // The head: the one tensor whose leaf is `weight`.
    let heads: Vec<&String> = names
        .iter()
        .filter(|n| split_key(n).1 == "weight")
        .collect();
    let last_h = layers.last().map_or(0, |l: &QuantLayer| l.hidden_size);
    let (head, head_prefix) = match (heads.as_slice(), formats.head) {
        ([w], Some(hf)) => {
            let hp = split_key(w).0.to_string();
            let t = c
                .tensors
                .tensor(w)
                .map_err(|e| anyhow!("tensor `{}`: {}", shorten(w), library_message(&e)))?;
            let shape = t.shape().to_vec();
            if shape.len() != 2 || shape[1] != last_h {
                bail!(
                    "head `{}` has shape {shape:?}; expected [outputs, {last_h}]",
                    shorten(w)
                );
            }
            let o = shape[0];
            (
                Some(QuantHead {
                    input_size: last_h,
                    output_size: o,
                    weight: as_i16(read_ints(c, w, wdtype, &[o, last_h])?),
                    frac: as_i8(read_ints(
                        c,
                        &join_key(&hp, "weight_frac"),
                        Dtype::I8,
                        &[o],
                    )?),
                    bias: as_i32(read_ints(c, &join_key(&hp, "bias"), Dtype::I32, &[o])?),
                    format: hf.into(),
                }),
                hp,
            )
        }
        ([], None) => (None, String::new()),
        ([w], None) => bail!(
            "tensor `{}` present but metadata `{FORMATS_KEY}` has no head format",
            shorten(w)
        ),
        ([], Some(_)) => {
            bail!("metadata `{FORMATS_KEY}` has a head format but the file has no head weight")
        }
        (many, _) => bail!(
            "more than one linear head ({}); expected at most one",
            many.iter()
                .map(|n| shorten(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let model = QuantModel {
        kind,
        cell,
        layers,
        head,
        input_frac: formats.input_frac,
        output_frac: formats.output_frac,
        prefix,
        head_prefix,
        meta: ModelMeta {
            class_names,
            normalization: None,
            extra: meta,
        },
    };
    // What the parse above did not read is unused: an error, never ignored.
    let used: BTreeSet<String> = model.tensors().into_iter().map(|t| t.name).collect();
    if let Some(n) = names.iter().find(|n| !used.contains(*n)) {
        bail!("tensor `{}` is not used by the model", shorten(n));
    }
    model.validate()?;
    Ok(model)
}
