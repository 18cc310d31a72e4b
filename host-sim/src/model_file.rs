//! The model file: a safetensors `state_dict` with PyTorch key names.
//!
//! A file written by `safetensors.torch.save_file(model.state_dict(), path)` for a module holding
//! one `nn.RNN`/`nn.LSTM`/`nn.GRU` (under any attribute name, or none) and optionally one
//! `nn.Linear` head loads without any metadata: the cell kind is inferred from the number of gates
//! (`weight_hh_l0` has 1, 3 or 4 times `hidden` rows), the layer count from the `_l{k}` suffixes;
//! only a plain RNN's nonlinearity, which the weights cannot tell, must come from the caller.
//! `__metadata__` may add what the weights cannot say (see [`ModelMeta`]).
//!
//! Weights are kept here in PyTorch's own layout (gate-major rows, gate order i,f,g,o for LSTM and
//! r,z,n for GRU); the reordering into `tinyrnn`'s unit-major layout happens when a runnable model
//! is built from this.
//!
//! # What a file must satisfy
//!
//! Both model files (this one and the quantised one, [`crate::quantize::file`]) are read through
//! [`read_container`], which reports a key that appears twice in the safetensors header (serde
//! would silently keep one), and written through [`write_container`], whose bytes depend only on
//! the model (metadata in key order). On top of the shapes:
//!
//! - every tensor of the file is used by the model (an unknown or stray key is an error), layer
//!   indices are written without leading zeros and stay below [`MAX_LAYERS`];
//! - a plain RNN (one gate block) needs its nonlinearity: PyTorch does not put `nonlinearity` in
//!   a `state_dict`, so a file without `tinyrnn.nonlinearity` loads only when the caller names
//!   one (`--nonlinearity`), and a caller's choice that contradicts the file is an error;
//! - weights and normalisation are finite; each normalisation `std` lies between [`STD_MIN`] and
//!   [`STD_MAX`] (so `1/std` is a normal `f32`: neither infinite nor a subnormal that has lost
//!   bits) and `|mean| ≤ MEAN_PER_STD · std` (see [`MEAN_PER_STD`]), and the
//!   weights folded with it ([`FloatModel::fold_normalization`]) are finite.
//!
//! [`FloatModel::to_bytes`] (and so [`FloatModel::save`]) checks the model against these rules,
//! parses the bytes it produced and compares them with the model before it returns them: a file
//! it writes always loads back as the same model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype, TensorInfo, TensorView};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::import::{TensorMap, TensorValues};
use crate::quote::{library_message, shorten};

/// The kind of recurrent cell, with the plain RNN's nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Elman RNN with the given nonlinearity.
    Rnn(Nonlinearity),
    /// LSTM (gates i, f, g, o).
    Lstm,
    /// GRU (gates r, z, n; "reset after").
    Gru,
}

/// Nonlinearity of a plain RNN (`nn.RNN(nonlinearity=...)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    #[default]
    Tanh,
    /// `relu`.
    Relu,
}

impl CellKind {
    /// Number of gate blocks in `weight_ih`/`weight_hh` (1, 4 or 3).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Short lowercase name (`rnn`, `lstm`, `gru`), as used on the command line and in metadata.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(_) => "rnn",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }
}

impl Nonlinearity {
    /// Parses `tanh` or `relu`.
    pub fn parse(name: &str) -> Option<Nonlinearity> {
        match name.to_ascii_lowercase().as_str() {
            "tanh" => Some(Nonlinearity::Tanh),
            "relu" => Some(Nonlinearity::Relu),
            _ => None,
        }
    }

    /// `tanh` or `relu`.
    pub fn name(self) -> &'static str {
        match self {
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Relu => "relu",
        }
    }
}

/// One recurrent layer in PyTorch layout.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// Input features of this layer.
    pub input_size: usize,
    /// Hidden units of this layer.
    pub hidden_size: usize,
    /// `weight_ih_l{k}`: `gates*hidden` rows × `input_size` columns, row-major.
    pub w_ih: Vec<f32>,
    /// `weight_hh_l{k}`: `gates*hidden` rows × `hidden_size` columns, row-major.
    pub w_hh: Vec<f32>,
    /// `bias_ih_l{k}` (`gates*hidden`), absent for `bias=False`.
    pub b_ih: Option<Vec<f32>>,
    /// `bias_hh_l{k}` (`gates*hidden`), absent for `bias=False`.
    pub b_hh: Option<Vec<f32>>,
}

/// The linear head (`nn.Linear(hidden, outputs)`), PyTorch layout.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadWeights {
    /// Input features (the last layer's hidden size).
    pub input_size: usize,
    /// Outputs (classes).
    pub output_size: usize,
    /// `weight`: `output_size` rows × `input_size` columns, row-major.
    pub weight: Vec<f32>,
    /// `bias` (`output_size`), absent for `bias=False`.
    pub bias: Option<Vec<f32>>,
}

/// Per-channel input normalisation `x' = (x - mean) / std`, computed on training data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation (never 0: constant channels store 1).
    pub std: Vec<f32>,
}

/// What the weights cannot say, stored as JSON strings in safetensors `__metadata__`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelMeta {
    /// Class names, index = output index of the head.
    pub class_names: Vec<String>,
    /// Input normalisation applied before the first layer.
    pub normalization: Option<Normalization>,
    /// Any other metadata entries, kept so that a load/save round trip loses nothing.
    pub extra: BTreeMap<String, String>,
}

/// A floating-point model in PyTorch layout: recurrent stack plus optional head.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatModel {
    /// Cell kind shared by every layer.
    pub kind: CellKind,
    /// The recurrent layers, input first.
    pub layers: Vec<LayerWeights>,
    /// Optional linear head applied to the last layer's hidden state.
    pub head: Option<HeadWeights>,
    /// Key prefix of the recurrent module (`rnn` for `rnn.weight_ih_l0`; empty for none).
    pub prefix: String,
    /// Key prefix of the head (`head` for `head.weight`).
    pub head_prefix: String,
    /// Metadata.
    pub meta: ModelMeta,
}

/// Metadata keys understood by the loader.
pub mod meta_keys {
    /// `rnn`, `lstm` or `gru`.
    pub const CELL: &str = "tinyrnn.cell";
    /// `tanh` or `relu`.
    pub const NONLINEARITY: &str = "tinyrnn.nonlinearity";
    /// JSON list of strings.
    pub const CLASS_NAMES: &str = "tinyrnn.class_names";
    /// JSON `{"mean": [...], "std": [...]}`.
    pub const NORMALIZATION: &str = "tinyrnn.normalization";
    /// `q15` or `w8a16`: marks a quantised file ([`crate::quantize::file`]).
    pub const NUMERIC: &str = "tinyrnn.numeric";
    /// The fixed-point formats of a quantised file (JSON).
    pub const FORMATS: &str = "tinyrnn.formats";

    /// Keys a writer sets from the model itself; [`super::ModelMeta::extra`] must not hold them.
    pub const RESERVED: [&str; 6] = [
        CELL,
        NONLINEARITY,
        CLASS_NAMES,
        NORMALIZATION,
        NUMERIC,
        FORMATS,
    ];
}

/// Most recurrent layers a model file may have. Layer indices are parsed from key names, so this
/// bounds `k + 1` and what a file can make the loader allocate; it is far above any network a
/// microcontroller runs.
pub const MAX_LAYERS: usize = 64;

/// Smallest normalisation `std` accepted: `2^-126`, the smallest normal `f32`, so that `1/std`
/// (at most `2^126`) is finite.
pub const STD_MIN: f32 = f32::MIN_POSITIVE;

/// Largest normalisation `std` accepted: `2^126`, so that `1/std` (at least `2^-126`) is a normal
/// `f32` rather than a subnormal that has lost precision or zero.
pub const STD_MAX: f32 = 8.507_059e37;

/// Largest `|mean| / std` accepted: `2^24`.
///
/// Folding `x' = (x - mean) / std` into layer 0 gives the bias `b - Σ w·mean/std`, and a raw
/// input near the mean then makes the pre-activation the difference of two terms of size
/// `|w|·|mean|/std`. Each is rounded to `f32` (24 significant bits), so the difference carries an
/// error of about `|w|·(|mean|/std)·2⁻²⁴`: at `|mean|/std = 2^24` that is a whole unit per unit of
/// weight, as large as the useful range of a sigmoid or tanh input — every bit of the input's
/// information would be lost in the folded model that `quantize` and `export` produce.
pub const MEAN_PER_STD: f32 = 16_777_216.0;

impl FloatModel {
    /// Number of input features of the model.
    pub fn input_size(&self) -> usize {
        self.layers.first().map_or(0, |l| l.input_size)
    }

    /// Number of values produced per step: head outputs, or the last layer's hidden size.
    pub fn output_size(&self) -> usize {
        match &self.head {
            Some(h) => h.output_size,
            None => self.layers.last().map_or(0, |l| l.hidden_size),
        }
    }

    /// The same function with the input normalisation folded into layer 0
    /// (`W (x - m) / s + b = (W / s) x + (b - W m / s)`), so the model takes raw inputs.
    pub fn fold_normalization(&self) -> FloatModel {
        let mut out = self.clone();
        let Some(norm) = out.meta.normalization.take() else {
            return out;
        };
        let Some(layer) = out.layers.first_mut() else {
            return out;
        };
        let (rows, cols) = (self.kind.gates() * layer.hidden_size, layer.input_size);
        let mut shift = vec![0f32; rows];
        for (row, s) in layer.w_ih.chunks_mut(cols.max(1)).zip(shift.iter_mut()) {
            for ((w, std), mean) in row.iter_mut().zip(&norm.std).zip(&norm.mean) {
                *w /= std;
                *s += *w * mean;
            }
        }
        // The shift belongs to the input-side bias (for a GRU's n gate it must not be scaled by r).
        let b_ih = layer.b_ih.get_or_insert_with(|| vec![0.0; rows]);
        for (b, s) in b_ih.iter_mut().zip(&shift) {
            *b -= s;
        }
        if layer.b_hh.is_none() {
            layer.b_hh = Some(vec![0.0; rows]);
        }
        out
    }

    /// Loads a model file of any format [`crate::import`] reads (safetensors, PyTorch `.pt`,
    /// ONNX), recognised by its content. `nonlinearity` is the plain RNN's nonlinearity when
    /// the file does not store it (a PyTorch `state_dict` never does); it must agree with the
    /// file when the file does, and is ignored for LSTM and GRU.
    pub fn load(path: &Path, nonlinearity: Option<Nonlinearity>) -> Result<FloatModel> {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
        Self::from_bytes_in(&bytes, path.parent(), nonlinearity)
            .map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// Parses a model file held in memory (see [`FloatModel::load`]); an ONNX model with
    /// external data needs [`FloatModel::from_bytes_in`].
    pub fn from_bytes(bytes: &[u8], nonlinearity: Option<Nonlinearity>) -> Result<FloatModel> {
        Self::from_bytes_in(bytes, None, nonlinearity)
    }

    /// Parses a model file held in memory that was read from directory `dir` (where an ONNX
    /// model's external data files are).
    pub fn from_bytes_in(
        bytes: &[u8],
        dir: Option<&Path>,
        nonlinearity: Option<Nonlinearity>,
    ) -> Result<FloatModel> {
        Self::from_tensors(&crate::import::read_bytes(bytes, dir)?, nonlinearity)
    }

    /// Builds the model from tensors in PyTorch `state_dict` naming and layout.
    pub fn from_tensors(
        tensors: &TensorMap,
        nonlinearity: Option<Nonlinearity>,
    ) -> Result<FloatModel> {
        if let Some(kind) = tensors.metadata.get(meta_keys::NUMERIC) {
            bail!(
                "this is a quantised model (`{}` is `{}`); an f32 model is expected here",
                meta_keys::NUMERIC,
                shorten(kind)
            );
        }
        parse_model(tensors, nonlinearity)
    }

    /// Serialises to safetensors bytes with PyTorch key names and `__metadata__`.
    ///
    /// The model is checked first ([`FloatModel::validate`]); then the bytes are parsed back
    /// and compared with `self`, so the result always loads as this very model. The bytes
    /// depend only on the model (tensors and metadata in a fixed order).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.validate()
            .map_err(|e| anyhow!("refusing to write an invalid model: {e:#}"))?;
        let bytes = write_container(self.tensors(), &self.metadata_map())?;
        let back = FloatModel::from_bytes(&bytes, None)
            .map_err(|e| anyhow!("the model file would not load back: {e:#}"))?;
        if let Some(what) = float_difference(self, &back) {
            bail!("the model file would load back with a different {what}");
        }
        Ok(bytes)
    }

    /// Writes the model file (atomically: see [`crate::output_file`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self
            .to_bytes()
            .with_context(|| format!("{}: not written", path.display()))?;
        crate::output_file::write_atomically("", path, &bytes)
    }

    /// The `__metadata__` entries this model writes.
    pub fn metadata_map(&self) -> BTreeMap<String, String> {
        let mut meta = self.meta.extra.clone();
        meta.insert(meta_keys::CELL.into(), self.kind.name().into());
        if let CellKind::Rnn(n) = self.kind {
            meta.insert(meta_keys::NONLINEARITY.into(), n.name().into());
        }
        if !self.meta.class_names.is_empty() {
            meta.insert(
                meta_keys::CLASS_NAMES.into(),
                serde_json::to_string(&self.meta.class_names).unwrap_or_default(),
            );
        }
        if let Some(n) = &self.meta.normalization {
            meta.insert(
                meta_keys::NORMALIZATION.into(),
                serde_json::to_string(n).unwrap_or_default(),
            );
        }
        meta
    }

    /// The tensors of the file, with their PyTorch key names.
    fn tensors(&self) -> Vec<OwnedTensor> {
        let mut out = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, data: &[f32]| {
            out.push(OwnedTensor {
                name,
                dtype: Dtype::F32,
                shape,
                data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            });
        };
        let g = self.kind.gates();
        for (k, l) in self.layers.iter().enumerate() {
            let rows = g * l.hidden_size;
            let p = &self.prefix;
            push(
                join_key(p, &format!("weight_ih_l{k}")),
                vec![rows, l.input_size],
                &l.w_ih,
            );
            push(
                join_key(p, &format!("weight_hh_l{k}")),
                vec![rows, l.hidden_size],
                &l.w_hh,
            );
            if let Some(b) = &l.b_ih {
                push(join_key(p, &format!("bias_ih_l{k}")), vec![rows], b);
            }
            if let Some(b) = &l.b_hh {
                push(join_key(p, &format!("bias_hh_l{k}")), vec![rows], b);
            }
        }
        if let Some(h) = &self.head {
            push(
                join_key(&self.head_prefix, "weight"),
                vec![h.output_size, h.input_size],
                &h.weight,
            );
            if let Some(b) = &h.bias {
                push(join_key(&self.head_prefix, "bias"), vec![h.output_size], b);
            }
        }
        out
    }

    /// Checks everything a model file must satisfy (module doc): sizes and lengths, layer
    /// chaining, finite weights, the normalisation's ranges, class names, metadata keys.
    pub fn validate(&self) -> Result<()> {
        let g = self.kind.gates();
        if self.layers.is_empty() {
            bail!("the model has no recurrent layer");
        }
        if self.layers.len() > MAX_LAYERS {
            bail!(
                "the model has {} layers; at most {MAX_LAYERS} are supported",
                self.layers.len()
            );
        }
        let key = |leaf: String| join_key(&self.prefix, &leaf);
        for (k, l) in self.layers.iter().enumerate() {
            if l.input_size == 0 || l.hidden_size == 0 {
                bail!(
                    "layer {k} has {} inputs and {} hidden units; both must be at least 1",
                    l.input_size,
                    l.hidden_size
                );
            }
            if k > 0 && l.input_size != self.layers[k - 1].hidden_size {
                bail!(
                    "layer {k} expects {} inputs but layer {} has {} hidden units",
                    l.input_size,
                    k - 1,
                    self.layers[k - 1].hidden_size
                );
            }
            let rows = g * l.hidden_size;
            check_values(
                &key(format!("weight_ih_l{k}")),
                &l.w_ih,
                rows * l.input_size,
            )?;
            check_values(
                &key(format!("weight_hh_l{k}")),
                &l.w_hh,
                rows * l.hidden_size,
            )?;
            match (&l.b_ih, &l.b_hh) {
                (Some(b_ih), Some(b_hh)) => {
                    check_values(&key(format!("bias_ih_l{k}")), b_ih, rows)?;
                    check_values(&key(format!("bias_hh_l{k}")), b_hh, rows)?;
                }
                (None, None) => {}
                _ => bail!("layer {k} has only one of `bias_ih_l{k}` / `bias_hh_l{k}`"),
            }
        }
        let hidden = self.layers[self.layers.len() - 1].hidden_size;
        if let Some(h) = &self.head {
            if h.input_size != hidden || h.output_size == 0 {
                bail!(
                    "the head maps {} inputs to {} outputs; it must take the last layer's {hidden} \
                     hidden units to at least one output",
                    h.input_size,
                    h.output_size
                );
            }
            if !self.prefix.is_empty() && self.head_prefix == self.prefix {
                bail!(
                    "the head's key prefix is the recurrent module's (`{}`)",
                    shorten(&self.prefix)
                );
            }
            let hk = |leaf: &str| join_key(&self.head_prefix, leaf);
            check_values(&hk("weight"), &h.weight, h.output_size * h.input_size)?;
            if let Some(b) = &h.bias {
                check_values(&hk("bias"), b, h.output_size)?;
            }
        }
        if let Some(n) = &self.meta.normalization {
            check_normalization(n, self.input_size())?;
            // The folded weights are what `quantize` and `export` use: they must be finite too.
            let folded = self.fold_normalization();
            let l = &folded.layers[0];
            let b_ih = l.b_ih.as_deref().unwrap_or_default();
            for (name, values) in [("weight_ih_l0", &l.w_ih[..]), ("bias_ih_l0", b_ih)] {
                if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                    bail!(
                        "metadata `{}`: folding it into `{}` gives a non-finite value at flat \
                         index {i} (a std too small for these weights)",
                        meta_keys::NORMALIZATION,
                        shorten(&key(name.to_string()))
                    );
                }
            }
        }
        check_class_names(
            &self.meta.class_names,
            self.head.as_ref().map(|h| h.output_size),
        )?;
        check_extra(&self.meta.extra)?;
        Ok(())
    }
}

/// The first part in which two models differ, for the writers' round-trip check.
fn float_difference(a: &FloatModel, b: &FloatModel) -> Option<String> {
    if a.kind != b.kind {
        return Some(format!("cell ({:?} instead of {:?})", b.kind, a.kind));
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

/// `len` finite values (a model's tensor named `name`).
fn check_values(name: &str, values: &[f32], len: usize) -> Result<()> {
    let name = shorten(name);
    if values.len() != len {
        bail!("`{name}` has {} values; expected {len}", values.len());
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "tensor `{name}` has a non-finite value ({}) at flat index {i}",
            values[i]
        );
    }
    Ok(())
}

/// The normalisation's lengths and ranges (module doc).
pub fn check_normalization(n: &Normalization, inputs: usize) -> Result<()> {
    let what = meta_keys::NORMALIZATION;
    if n.mean.len() != inputs || n.std.len() != inputs {
        bail!(
            "metadata `{what}` has {} means and {} stds; the model has {inputs} inputs",
            n.mean.len(),
            n.std.len()
        );
    }
    for (c, (&mean, &std)) in n.mean.iter().zip(&n.std).enumerate() {
        let channel = c + 1;
        if !mean.is_finite() {
            bail!(
                "metadata `{what}`: the mean of channel {channel} is {mean}, not a finite number"
            );
        }
        if !(STD_MIN..=STD_MAX).contains(&std) {
            bail!(
                "metadata `{what}`: the std of channel {channel} is {std:e}; it must lie in \
                 [2^-126, 2^126] (about [1.2e-38, 8.5e37]) so that 1/std is a normal f32"
            );
        }
        if mean.abs() > MEAN_PER_STD * std {
            bail!(
                "metadata `{what}`: channel {channel} has mean {mean:e} and std {std:e}; \
                 |mean| / std must be at most 2^24, or the folded model loses every bit of the \
                 input's precision"
            );
        }
    }
    Ok(())
}

/// Class names: one per head output when given, each once.
pub fn check_class_names(names: &[String], head_outputs: Option<usize>) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    if let Some(outputs) = head_outputs.filter(|&o| o != names.len()) {
        bail!(
            "metadata has {} class names but the head has {outputs} outputs",
            names.len()
        );
    }
    let mut seen = BTreeSet::new();
    if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
        bail!(
            "metadata `{}` names class `{}` twice",
            meta_keys::CLASS_NAMES,
            shorten(dup)
        );
    }
    Ok(())
}

/// Free-form metadata must not hold a key that a writer derives from the model.
pub fn check_extra(extra: &BTreeMap<String, String>) -> Result<()> {
    if let Some(k) = meta_keys::RESERVED.iter().find(|k| extra.contains_key(**k)) {
        bail!("metadata `{k}` is set from the model itself; it cannot be an extra entry");
    }
    Ok(())
}

/// `prefix.leaf`, or `leaf` for an empty prefix.
pub fn join_key(prefix: &str, leaf: &str) -> String {
    if prefix.is_empty() {
        leaf.to_string()
    } else {
        format!("{prefix}.{leaf}")
    }
}

// ---------------------------------------------------------------------------------------------
// The safetensors container.

/// A safetensors file's tensors and metadata, its header checked for duplicated keys.
pub struct Container<'a> {
    /// The tensors.
    pub tensors: SafeTensors<'a>,
    /// Tensor names, sorted (so that messages do not depend on hash order).
    pub names: Vec<String>,
    /// `__metadata__`.
    pub metadata: BTreeMap<String, String>,
}

/// Parses a safetensors file. A key that appears twice in the JSON header (a tensor, or a
/// `__metadata__` entry) is an error: serde would keep one of them without a word.
pub fn read_container(bytes: &[u8]) -> Result<Container<'_>> {
    check_duplicate_keys(bytes)?;
    let not_safetensors = |e| anyhow!("not a safetensors file ({})", library_message(&e));
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(not_safetensors)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(not_safetensors)?;
    let mut names: Vec<String> = tensors.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    Ok(Container {
        tensors,
        names,
        metadata: header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    })
}

/// Is this a quantised `tinyrnn` model (its metadata has `tinyrnn.numeric`)?
pub fn is_quantized(container: &Container<'_>) -> bool {
    container.metadata.contains_key(meta_keys::NUMERIC)
}

/// Reports the first key of the JSON header that appears twice. A header that is not what
/// safetensors expects is left for safetensors to report.
fn check_duplicate_keys(bytes: &[u8]) -> Result<()> {
    let Some(len) = bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return Ok(());
    };
    let header = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .and_then(|n| n.checked_add(8))
        .and_then(|end| bytes.get(8..end));
    let Some(header) = header else {
        return Ok(());
    };
    match serde_json::from_slice::<HeaderKeys>(header) {
        Ok(HeaderKeys {
            duplicate: Some(key),
        }) => bail!(
            "the safetensors header has the key `{}` twice",
            shorten(&key)
        ),
        Ok(HeaderKeys { duplicate: None }) | Err(_) => Ok(()),
    }
}

/// The first duplicated key of a safetensors header (`__metadata__.<key>` for a metadata entry).
struct HeaderKeys {
    duplicate: Option<String>,
}

impl<'de> Deserialize<'de> for HeaderKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> serde::de::Visitor<'de> for Top {
            type Value = HeaderKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<HeaderKeys, A::Error> {
                let mut seen = BTreeSet::new();
                let mut duplicate = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "__metadata__" {
                        let inner: MetadataKeys = map.next_value()?;
                        if duplicate.is_none() {
                            duplicate = inner.duplicate.map(|k| format!("__metadata__.{k}"));
                        }
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                    if !seen.insert(key.clone()) && duplicate.is_none() {
                        duplicate = Some(key);
                    }
                }
                Ok(HeaderKeys { duplicate })
            }
        }
        d.deserialize_map(Top)
    }
}

/// The first duplicated key of `__metadata__` (`null` is an empty map).
struct MetadataKeys {
    duplicate: Option<String>,
}

impl<'de> Deserialize<'de> for MetadataKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Inner;
        impl<'de> serde::de::Visitor<'de> for Inner {
            type Value = MetadataKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object or null")
            }
            fn visit_unit<E>(self) -> Result<MetadataKeys, E> {
                Ok(MetadataKeys { duplicate: None })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MetadataKeys, A::Error> {
                let mut seen = BTreeSet::new();
                let mut duplicate = None;
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    if !seen.insert(key.clone()) && duplicate.is_none() {
                        duplicate = Some(key);
                    }
                }
                Ok(MetadataKeys { duplicate })
            }
        }
        d.deserialize_any(Inner)
    }
}

/// One tensor to write: name, dtype, shape and little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedTensor {
    /// Key.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Raw little-endian bytes.
    pub data: Vec<u8>,
}

/// Serialises tensors and metadata to safetensors bytes that depend only on the input: tensors
/// in safetensors' own order (by alignment, then name), `__metadata__` first with its keys in
/// order. (`safetensors::serialize` takes the metadata as a `HashMap`, whose order changes from
/// one map to the next, so equal models gave different bytes.)
pub fn write_container(
    mut tensors: Vec<OwnedTensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    tensors.sort_by(|a, b| b.dtype.cmp(&a.dtype).then_with(|| a.name.cmp(&b.name)));
    if let Some(w) = tensors.windows(2).find(|w| w[0].name == w[1].name) {
        bail!("two tensors are named `{}`", shorten(&w[0].name));
    }
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0;
    for t in &tensors {
        TensorView::new(t.dtype, t.shape.clone(), &t.data)
            .map_err(|e| anyhow!("tensor `{}`: {}", shorten(&t.name), library_message(&e)))?;
        infos.push((
            t.name.as_str(),
            TensorInfo {
                dtype: t.dtype,
                shape: t.shape.clone(),
                data_offsets: (offset, offset + t.data.len()),
            },
        ));
        offset += t.data.len();
    }
    let mut header = serde_json::to_vec(&Header {
        metadata,
        tensors: &infos,
    })?;
    // safetensors pads the header with spaces to a multiple of 8 bytes.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header);
    for t in tensors {
        out.extend(t.data);
    }
    Ok(out)
}

/// The JSON header in a fixed order.
struct Header<'a> {
    metadata: &'a BTreeMap<String, String>,
    tensors: &'a [(&'a str, TensorInfo)],
}

impl Serialize for Header<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let entries = self.tensors.len() + usize::from(!self.metadata.is_empty());
        let mut map = s.serialize_map(Some(entries))?;
        if !self.metadata.is_empty() {
            map.serialize_entry("__metadata__", self.metadata)?;
        }
        for (name, info) in self.tensors {
            map.serialize_entry(name, info)?;
        }
        map.end()
    }
}

/// Reads a float tensor (as `f32`; the readers convert F64/F16/BF16) with its shape.
pub fn read_f32(tensors: &TensorMap, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let shown = shorten(name);
    let t = tensors
        .get(name)
        .ok_or_else(|| anyhow!("missing key `{shown}`"))?;
    let values = match &t.values {
        TensorValues::F32(v) => v.clone(),
        TensorValues::NotFloat(dtype) => {
            bail!("tensor `{shown}` has dtype {dtype}; expected a float type")
        }
    };
    if values.len() != t.shape.iter().product::<usize>() {
        bail!(
            "tensor `{shown}` has {} values for its shape {:?}",
            values.len(),
            t.shape
        );
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "tensor `{shown}` has a non-finite value ({}) at flat index {i}",
            values[i]
        );
    }
    Ok((t.shape.clone(), values))
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// Splits `a.b.weight_ih_l0` into (`a.b`, `weight_ih_l0`).
pub fn split_key(key: &str) -> (&str, &str) {
    match key.rfind('.') {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => ("", key),
    }
}

/// The layer index `k` of a key ending in `<stem>{k}`: `None` when `leaf` does not start with
/// `stem` followed by a digit; an error for a leading zero (`_l01` would alias `_l1`) or an index
/// of [`MAX_LAYERS`] or more.
pub fn layer_index(key: &str, leaf: &str, stem: &str) -> Option<Result<usize>> {
    let digits = leaf.strip_prefix(stem)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(if digits.len() > 1 && digits.starts_with('0') {
        Err(anyhow!(
            "key `{}`: the layer index `{}` has a leading zero",
            shorten(key),
            shorten(digits)
        ))
    } else {
        match digits.parse::<usize>() {
            Ok(k) if k < MAX_LAYERS => Ok(k),
            _ => Err(anyhow!(
                "key `{}`: layer index {} is too large (a model has at most {MAX_LAYERS} layers)",
                shorten(key),
                shorten(digits)
            )),
        }
    })
}

/// What a file's metadata says about the cell: the gate count of `tinyrnn.cell` and the plain
/// RNN's nonlinearity (`tinyrnn.nonlinearity`, or a cell named `rnn_tanh`/`rnn_relu`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredCell {
    /// Gate blocks of the named cell (1, 3 or 4), if the file names one.
    pub gates: Option<usize>,
    /// The stored nonlinearity, if any.
    pub nonlinearity: Option<Nonlinearity>,
}

impl StoredCell {
    /// Reads `tinyrnn.cell` and `tinyrnn.nonlinearity` (both optional; an unknown value or a
    /// contradiction between them is an error).
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Result<StoredCell> {
        let stored = match metadata.get(meta_keys::NONLINEARITY) {
            Some(s) => Some(Nonlinearity::parse(s).ok_or_else(|| {
                anyhow!(
                    "metadata `{}` is `{}`; expected `tanh` or `relu`",
                    meta_keys::NONLINEARITY,
                    shorten(s)
                )
            })?),
            None => None,
        };
        let Some(name) = metadata.get(meta_keys::CELL) else {
            return Ok(StoredCell {
                gates: None,
                nonlinearity: stored,
            });
        };
        let (gates, implied) = match name.to_ascii_lowercase().as_str() {
            "rnn" => (1, None),
            "rnn_tanh" => (1, Some(Nonlinearity::Tanh)),
            "rnn_relu" => (1, Some(Nonlinearity::Relu)),
            "lstm" => (4, None),
            "gru" => (3, None),
            _ => bail!(
                "metadata `{}` is `{}`; expected rnn, lstm or gru",
                meta_keys::CELL,
                shorten(name)
            ),
        };
        if let (Some(a), Some(b)) = (stored, implied) {
            if a != b {
                bail!(
                    "metadata `{}` is `{}` but `{}` is `{}`",
                    meta_keys::CELL,
                    shorten(name),
                    meta_keys::NONLINEARITY,
                    a.name()
                );
            }
        }
        Ok(StoredCell {
            gates: Some(gates),
            nonlinearity: stored.or(implied),
        })
    }

    /// The cell kind of a model with `gates` gate blocks (as its weights have), given the
    /// caller's `nonlinearity` (see [`resolve_nonlinearity`]).
    pub fn kind(&self, gates: usize, given: Option<Nonlinearity>) -> Result<CellKind> {
        if let Some(named) = self.gates.filter(|&g| g != gates) {
            bail!(
                "metadata `{}` names a cell with {named} gate block(s) but the weights have {gates}",
                meta_keys::CELL
            );
        }
        Ok(match gates {
            1 => CellKind::Rnn(resolve_nonlinearity(self.nonlinearity, given)?),
            3 => CellKind::Gru,
            4 => CellKind::Lstm,
            _ => bail!("{gates} gate blocks: expected 1 (RNN), 3 (GRU) or 4 (LSTM)"),
        })
    }
}

/// A plain RNN's nonlinearity from what its file stores and what the caller gives: either one
/// when only one is there, an error when they differ or when neither is (PyTorch's
/// `state_dict` does not record `nonlinearity`, and guessing `tanh` would run a `relu` network
/// with wrong outputs and no word).
pub fn resolve_nonlinearity(
    stored: Option<Nonlinearity>,
    given: Option<Nonlinearity>,
) -> Result<Nonlinearity> {
    match (stored, given) {
        (Some(s), Some(g)) if s != g => bail!(
            "--nonlinearity {} contradicts the file, whose metadata `{}` is `{}`",
            g.name(),
            meta_keys::NONLINEARITY,
            s.name()
        ),
        (Some(n), _) | (None, Some(n)) => Ok(n),
        (None, None) => bail!(
            "a plain RNN whose file does not store its nonlinearity (PyTorch keeps \
             `nonlinearity` out of the state_dict): pass --nonlinearity tanh or --nonlinearity \
             relu, as the nn.RNN was built"
        ),
    }
}

/// The leaves of a recurrent layer's tensors, `<leaf>{k}`.
const LAYER_STEMS: [&str; 4] = ["weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"];

fn parse_model(c: &TensorMap, given: Option<Nonlinearity>) -> Result<FloatModel> {
    let (tensors, names) = (c, &c.names());
    // Group the recurrent keys by prefix.
    let mut rec_prefixes: Vec<&str> = Vec::new();
    for n in names {
        let (p, leaf) = split_key(n);
        if leaf.starts_with("weight_ih_l") && !rec_prefixes.contains(&p) {
            rec_prefixes.push(p);
        }
    }
    let prefix = match rec_prefixes.as_slice() {
        [] => bail!("no recurrent layer found: expected a key like `rnn.weight_ih_l0`"),
        [p] => p.to_string(),
        many => bail!(
            "more than one recurrent module ({}); expected exactly one",
            many.iter()
                .map(|p| if p.is_empty() {
                    "<no prefix>".to_string()
                } else {
                    shorten(p)
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let key = |leaf: &str| join_key(&prefix, leaf);
    // Without a prefix, the head's `weight`/`bias` share the recurrent module's (empty) prefix.
    let is_head_leaf = |p: &str, leaf: &str| p != prefix || (leaf == "weight" || leaf == "bias");

    // Every key under the prefix must be a recurrent tensor `<leaf>_l{k}`; the layer count is
    // one more than the largest k, so a missing tensor of any layer is reported as missing.
    let mut layer_count = 0;
    for n in names {
        let (p, leaf) = split_key(n);
        if is_head_leaf(p, leaf) {
            continue;
        }
        match LAYER_STEMS.iter().find_map(|s| layer_index(n, leaf, s)) {
            Some(k) => layer_count = layer_count.max(k? + 1),
            None => bail!(
                "unknown key `{}` (bidirectional, projected or peephole layers are not supported)",
                shorten(n)
            ),
        }
    }

    let stored = StoredCell::from_metadata(&c.metadata)?;
    let mut layers: Vec<LayerWeights> = Vec::new();
    let mut model_gates = None;
    for k in 0..layer_count {
        let (s_hh, w_hh) = read_f32(tensors, &key(&format!("weight_hh_l{k}")))?;
        let (s_ih, w_ih) = read_f32(tensors, &key(&format!("weight_ih_l{k}")))?;
        if s_hh.len() != 2 || s_ih.len() != 2 {
            bail!(
                "`{}` and `{}` must be 2-D",
                shorten(&key(&format!("weight_ih_l{k}"))),
                key(&format!("weight_hh_l{k}"))
            );
        }
        let hidden = s_hh[1];
        if hidden == 0 || s_hh[0] % hidden != 0 {
            bail!(
                "`{}` has shape {:?}: rows must be 1, 3 or 4 times the columns",
                shorten(&key(&format!("weight_hh_l{k}"))),
                s_hh
            );
        }
        let gates = s_hh[0] / hidden;
        if ![1, 3, 4].contains(&gates) {
            bail!(
                "`{}` has shape {:?}: {gates} gate blocks, expected 1 (RNN), 3 (GRU) or 4 (LSTM)",
                shorten(&key(&format!("weight_hh_l{k}"))),
                s_hh
            );
        }
        let model = *model_gates.get_or_insert(stored.gates.unwrap_or(gates));
        if model != gates {
            bail!("layer {k} has {gates} gate blocks but the model's cell has {model}");
        }
        if s_ih[0] != s_hh[0] {
            bail!(
                "`{}` has {} rows but `{}` has {}",
                shorten(&key(&format!("weight_ih_l{k}"))),
                s_ih[0],
                shorten(&key(&format!("weight_hh_l{k}"))),
                s_hh[0]
            );
        }
        let input = s_ih[1];
        if input == 0 {
            bail!(
                "`{}` has zero input columns",
                key(&format!("weight_ih_l{k}"))
            );
        }
        if let Some(prev) = layers.last() {
            if input != prev.hidden_size {
                bail!(
                    "`{}` expects {input} inputs but layer {} has {} hidden units",
                    shorten(&key(&format!("weight_ih_l{k}"))),
                    k - 1,
                    prev.hidden_size
                );
            }
        }
        let bias = |name: String| -> Result<Option<Vec<f32>>> {
            if names.binary_search(&name).is_err() {
                return Ok(None);
            }
            let (s, b) = read_f32(tensors, &name)?;
            if s != [gates * hidden] {
                bail!(
                    "`{}` has shape {s:?}; expected [{}]",
                    shorten(&name),
                    gates * hidden
                );
            }
            Ok(Some(b))
        };
        let b_ih = bias(key(&format!("bias_ih_l{k}")))?;
        let b_hh = bias(key(&format!("bias_hh_l{k}")))?;
        if b_ih.is_some() != b_hh.is_some() {
            bail!("layer {k} has only one of `bias_ih_l{k}` / `bias_hh_l{k}`");
        }
        layers.push(LayerWeights {
            input_size: input,
            hidden_size: hidden,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        });
    }
    let gates = model_gates.ok_or_else(|| anyhow!("no recurrent layer found"))?;
    let kind = stored.kind(gates, given)?;
    let hidden = layers.last().map_or(0, |l| l.hidden_size);

    // Head: one `<p>.weight` (+ optional `<p>.bias`) outside the recurrent prefix; any other key
    // there is unknown, and a `bias` beside another prefix's weight belongs to nothing.
    let (mut head_prefixes, mut biases): (Vec<&str>, Vec<&String>) = (Vec::new(), Vec::new());
    for n in names {
        let (p, leaf) = split_key(n);
        if !is_head_leaf(p, leaf) {
            continue;
        }
        match leaf {
            "weight" => head_prefixes.push(p),
            "bias" => biases.push(n),
            _ => bail!(
                "unknown key `{}`: expected a recurrent layer and at most one linear head",
                shorten(n)
            ),
        }
    }
    let head_prefix = match head_prefixes.as_slice() {
        [] => None,
        [p] => Some(*p),
        many => bail!(
            "more than one linear head ({}); expected at most one",
            many.iter()
                .map(|p| shorten(p))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if let Some(n) = biases.iter().find(|n| Some(split_key(n).0) != head_prefix) {
        bail!(
            "`{}` has no matching weight `{}`",
            shorten(n),
            shorten(&join_key(split_key(n).0, "weight"))
        );
    }
    let head = match head_prefix {
        None => None,
        Some(p) => {
            let (s, weight) = read_f32(tensors, &join_key(p, "weight"))?;
            if s.len() != 2 || s[1] != hidden || s[0] == 0 {
                bail!(
                    "head `{}` has shape {s:?}; expected [outputs, {hidden}]",
                    shorten(&join_key(p, "weight"))
                );
            }
            let bias_key = join_key(p, "bias");
            let bias = if names.binary_search(&bias_key).is_ok() {
                let (sb, b) = read_f32(tensors, &bias_key)?;
                if sb != [s[0]] {
                    bail!(
                        "head `{}` has shape {sb:?}; expected [{}]",
                        shorten(&bias_key),
                        s[0]
                    );
                }
                Some(b)
            } else {
                None
            };
            Some(HeadWeights {
                input_size: hidden,
                output_size: s[0],
                weight,
                bias,
            })
        }
    };

    let mut extra = c.metadata.clone();
    let class_names = match extra.remove(meta_keys::CLASS_NAMES) {
        Some(s) => serde_json::from_str::<Vec<String>>(&s).map_err(|e| {
            anyhow!(
                "metadata `{}`: {}",
                meta_keys::CLASS_NAMES,
                library_message(&e)
            )
        })?,
        None => Vec::new(),
    };
    let normalization = match extra.remove(meta_keys::NORMALIZATION) {
        Some(s) => Some(serde_json::from_str::<Normalization>(&s).map_err(|e| {
            anyhow!(
                "metadata `{}`: {}",
                meta_keys::NORMALIZATION,
                library_message(&e)
            )
        })?),
        None => None,
    };
    extra.remove(meta_keys::CELL);
    extra.remove(meta_keys::NONLINEARITY);
    let model = FloatModel {
        kind,
        layers,
        head,
        prefix: prefix.clone(),
        head_prefix: head_prefix.unwrap_or_default().to_string(),
        meta: ModelMeta {
            class_names,
            normalization,
            extra,
        },
    };
    // What the parse above did not read is unused: an error, never dropped.
    let used: BTreeSet<String> = model.tensors().into_iter().map(|t| t.name).collect();
    if let Some(n) = names.iter().find(|n| !used.contains(*n)) {
        bail!("tensor `{}` is not used by the model", shorten(n));
    }
    model.validate()?;
    Ok(model)
}
