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

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use tinyrnn::QFormat;

use super::QuantKind;
use crate::model_file::{meta_keys, CellKind, ModelMeta, Nonlinearity};

/// Metadata key of the numeric format.
pub const NUMERIC_KEY: &str = "tinyrnn.numeric";
/// Metadata key of the formats JSON.
pub const FORMATS_KEY: &str = "tinyrnn.formats";

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
struct FormatsJson {
    input_frac: i8,
    output_frac: i8,
    layers: Vec<LayerFormatJson>,
    head: Option<LayerFormatJson>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
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

fn key(prefix: &str, leaf: &str) -> String {
    if prefix.is_empty() {
        leaf.to_string()
    } else {
        format!("{prefix}.{leaf}")
    }
}

/// Is this safetensors file a quantised `tinyrnn` model?
pub fn is_quantized(bytes: &[u8]) -> Result<bool> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("not a safetensors file ({e})"))?;
    Ok(header
        .metadata()
        .as_ref()
        .is_some_and(|m| m.contains_key(NUMERIC_KEY)))
}

impl QuantModel {
    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let wdtype = match self.kind {
            QuantKind::Q15 => Dtype::I16,
            QuantKind::W8a16 => Dtype::I8,
        };
        let weight_bytes = |v: &[i16]| -> Vec<u8> {
            match self.kind {
                QuantKind::Q15 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                QuantKind::W8a16 => v.iter().map(|&x| x as i8 as u8).collect(),
            }
        };
        let i8_bytes = |v: &[i8]| -> Vec<u8> { v.iter().map(|&x| x as u8).collect() };
        let i32_bytes = |v: &[i32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let g = self.cell.gates();
        let p = &self.prefix;
        for (k, l) in self.layers.iter().enumerate() {
            let rows = g * l.hidden_size;
            owned.push((
                key(p, &format!("weight_ih_l{k}")),
                wdtype,
                vec![rows, l.input_size],
                weight_bytes(&l.w_ih),
            ));
            owned.push((
                key(p, &format!("weight_hh_l{k}")),
                wdtype,
                vec![rows, l.hidden_size],
                weight_bytes(&l.w_hh),
            ));
            owned.push((
                key(p, &format!("weight_ih_l{k}_frac")),
                Dtype::I8,
                vec![rows],
                i8_bytes(&l.frac_ih),
            ));
            owned.push((
                key(p, &format!("weight_hh_l{k}_frac")),
                Dtype::I8,
                vec![rows],
                i8_bytes(&l.frac_hh),
            ));
            owned.push((
                key(p, &format!("bias_l{k}")),
                Dtype::I32,
                vec![rows],
                i32_bytes(&l.bias),
            ));
            if self.cell == CellKind::Gru {
                owned.push((
                    key(p, &format!("bias_hn_l{k}")),
                    Dtype::I32,
                    vec![l.hidden_size],
                    i32_bytes(&l.bias_hn),
                ));
            }
        }
        if let Some(h) = &self.head {
            let d = &self.head_prefix;
            owned.push((
                key(d, "weight"),
                wdtype,
                vec![h.output_size, h.input_size],
                weight_bytes(&h.weight),
            ));
            owned.push((
                key(d, "weight_frac"),
                Dtype::I8,
                vec![h.output_size],
                i8_bytes(&h.frac),
            ));
            owned.push((
                key(d, "bias"),
                Dtype::I32,
                vec![h.output_size],
                i32_bytes(&h.bias),
            ));
        }
        let views: Vec<(String, TensorView<'_>)> = owned
            .iter()
            .map(|(n, dt, shape, data)| {
                TensorView::new(*dt, shape.clone(), data)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| anyhow!("tensor {n}: {e}"))
            })
            .collect::<Result<_>>()?;
        let mut meta: HashMap<String, String> = self.meta.extra.clone().into_iter().collect();
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
        safetensors::serialize(views, Some(meta)).map_err(|e| anyhow!("serialising: {e}"))
    }

    /// Writes the file (atomically: see [`crate::output_file`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::output_file::write_atomically("", path, &self.to_bytes()?)
    }

    /// Reads a quantised file.
    pub fn load(path: &Path) -> Result<QuantModel> {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
        Self::from_bytes(&bytes).map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// Parses a quantised file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<QuantModel> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow!("not a safetensors file ({e})"))?;
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a safetensors file ({e})"))?;
        let mut meta: std::collections::BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let numeric = meta
            .remove(NUMERIC_KEY)
            .ok_or_else(|| anyhow!("metadata `{NUMERIC_KEY}` is missing"))?;
        let kind = QuantKind::parse(&numeric).ok_or_else(|| {
            anyhow!("metadata `{NUMERIC_KEY}` is `{numeric}`; expected q15 or w8a16")
        })?;
        let nonlin = match meta.remove(meta_keys::NONLINEARITY) {
            Some(s) => Nonlinearity::parse(&s)
                .ok_or_else(|| anyhow!("metadata `{}` is `{s}`", meta_keys::NONLINEARITY))?,
            None => Nonlinearity::Tanh,
        };
        let cell_name = meta
            .remove(meta_keys::CELL)
            .ok_or_else(|| anyhow!("metadata `{}` is missing", meta_keys::CELL))?;
        let cell = CellKind::parse(&cell_name, nonlin)
            .ok_or_else(|| anyhow!("metadata `{}` is `{cell_name}`", meta_keys::CELL))?;
        let formats_text = meta
            .remove(FORMATS_KEY)
            .ok_or_else(|| anyhow!("metadata `{FORMATS_KEY}` is missing"))?;
        let formats: FormatsJson = serde_json::from_str(&formats_text)
            .map_err(|e| anyhow!("metadata `{FORMATS_KEY}`: {e}"))?;
        let class_names = match meta.remove(meta_keys::CLASS_NAMES) {
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| anyhow!("metadata `{}`: {e}", meta_keys::CLASS_NAMES))?,
            None => Vec::new(),
        };
        if meta.contains_key(meta_keys::NORMALIZATION) {
            bail!(
                "a quantised model must not carry `{}` (it is folded into the weights)",
                meta_keys::NORMALIZATION
            );
        }

        // Find the prefix from `*.weight_ih_l0`.
        // `names()` iterates a hash map: sorted, so that messages naming keys are the same on
        // every run.
        let mut names: Vec<String> = tensors.names().into_iter().map(|s| s.to_string()).collect();
        names.sort();
        let l0 = names
            .iter()
            .find(|n| n.ends_with("weight_ih_l0"))
            .ok_or_else(|| anyhow!("no `weight_ih_l0` tensor"))?;
        let prefix = l0
            .strip_suffix("weight_ih_l0")
            .unwrap_or("")
            .trim_end_matches('.')
            .to_string();
        let wdtype = match kind {
            QuantKind::Q15 => Dtype::I16,
            QuantKind::W8a16 => Dtype::I8,
        };
        let read = |name: &str, dtype: Dtype, shape: &[usize]| -> Result<Vec<i64>> {
            let t = tensors
                .tensor(name)
                .map_err(|_| anyhow!("missing tensor `{name}`"))?;
            if t.dtype() != dtype {
                bail!(
                    "tensor `{name}` has dtype {:?}; expected {dtype:?}",
                    t.dtype()
                );
            }
            if t.shape() != shape {
                bail!(
                    "tensor `{name}` has shape {:?}; expected {shape:?}",
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
        };
        let as_i16 = |v: Vec<i64>| v.into_iter().map(|x| x as i16).collect::<Vec<_>>();
        let as_i8 = |v: Vec<i64>| v.into_iter().map(|x| x as i8).collect::<Vec<_>>();
        let as_i32 = |v: Vec<i64>| v.into_iter().map(|x| x as i32).collect::<Vec<_>>();
        let g = cell.gates();
        let mut layers = Vec::new();
        for (k, lf) in formats.layers.iter().enumerate() {
            let wih = key(&prefix, &format!("weight_ih_l{k}"));
            let t = tensors.tensor(&wih).map_err(|_| {
                anyhow!(
                    "missing tensor `{wih}` (formats list {} layers)",
                    formats.layers.len()
                )
            })?;
            let shape = t.shape().to_vec();
            if shape.len() != 2 || shape[0] % g != 0 || shape[0] == 0 {
                bail!("tensor `{wih}` has shape {shape:?}; expected [{g}·hidden, inputs]");
            }
            let (hidden, input) = (shape[0] / g, shape[1]);
            let rows = g * hidden;
            let format: QFormat = (*lf).into();
            format
                .validate()
                .map_err(|e| anyhow!("metadata `{FORMATS_KEY}` layer {k}: {e}"))?;
            layers.push(QuantLayer {
                input_size: input,
                hidden_size: hidden,
                w_ih: as_i16(read(&wih, wdtype, &[rows, input])?),
                w_hh: as_i16(read(
                    &key(&prefix, &format!("weight_hh_l{k}")),
                    wdtype,
                    &[rows, hidden],
                )?),
                frac_ih: as_i8(read(
                    &key(&prefix, &format!("weight_ih_l{k}_frac")),
                    Dtype::I8,
                    &[rows],
                )?),
                frac_hh: as_i8(read(
                    &key(&prefix, &format!("weight_hh_l{k}_frac")),
                    Dtype::I8,
                    &[rows],
                )?),
                bias: as_i32(read(
                    &key(&prefix, &format!("bias_l{k}")),
                    Dtype::I32,
                    &[rows],
                )?),
                bias_hn: if cell == CellKind::Gru {
                    as_i32(read(
                        &key(&prefix, &format!("bias_hn_l{k}")),
                        Dtype::I32,
                        &[hidden],
                    )?)
                } else {
                    Vec::new()
                },
                format,
            });
        }
        if layers.is_empty() {
            bail!("metadata `{FORMATS_KEY}` lists no layers");
        }
        if names
            .iter()
            .any(|n| n.ends_with(&format!("weight_ih_l{}", layers.len())))
        {
            bail!(
                "the file has more layers than metadata `{FORMATS_KEY}` lists ({})",
                layers.len()
            );
        }
        let head_weight = names
            .iter()
            .find(|n| n.as_str() == "weight" || n.ends_with(".weight"))
            .cloned();
        let (head, head_prefix) = match (head_weight, formats.head) {
            (Some(w), Some(hf)) => {
                let hp = w
                    .strip_suffix("weight")
                    .unwrap_or("")
                    .trim_end_matches('.')
                    .to_string();
                let t = tensors
                    .tensor(&w)
                    .map_err(|e| anyhow!("tensor `{w}`: {e}"))?;
                let shape = t.shape().to_vec();
                let last_h = layers.last().map_or(0, |l: &QuantLayer| l.hidden_size);
                if shape.len() != 2 || shape[1] != last_h {
                    bail!("head `{w}` has shape {shape:?}; expected [outputs, {last_h}]");
                }
                let o = shape[0];
                let format: QFormat = hf.into();
                (
                    Some(QuantHead {
                        input_size: last_h,
                        output_size: o,
                        weight: as_i16(read(&w, wdtype, &[o, last_h])?),
                        frac: as_i8(read(&key(&hp, "weight_frac"), Dtype::I8, &[o])?),
                        bias: as_i32(read(&key(&hp, "bias"), Dtype::I32, &[o])?),
                        format,
                    }),
                    hp,
                )
            }
            (None, None) => (None, String::new()),
            (Some(w), None) => {
                bail!("tensor `{w}` present but metadata `{FORMATS_KEY}` has no head format")
            }
            (None, Some(_)) => {
                bail!("metadata `{FORMATS_KEY}` has a head format but the file has no head weight")
            }
        };
        for (i, l) in layers.iter().enumerate().skip(1) {
            if l.format.x_frac != layers[i - 1].format.h_frac
                || l.input_size != layers[i - 1].hidden_size
            {
                bail!("metadata `{FORMATS_KEY}`: layer {i}'s x_frac/input must equal layer {}'s h_frac/hidden", i - 1);
            }
        }
        if layers[0].format.x_frac != formats.input_frac {
            bail!(
                "metadata `{FORMATS_KEY}`: input_frac ({}) differs from layer 0's x_frac ({})",
                formats.input_frac,
                layers[0].format.x_frac
            );
        }
        Ok(QuantModel {
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
        })
    }
}
