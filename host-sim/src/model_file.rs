//! The model file: a safetensors `state_dict` with PyTorch key names.
//!
//! A file written by `safetensors.torch.save_file(model.state_dict(), path)` for a module holding
//! one `nn.RNN`/`nn.LSTM`/`nn.GRU` (under any attribute name, or none) and optionally one
//! `nn.Linear` head loads without any metadata: the cell kind is inferred from the number of gates
//! (`weight_hh_l0` has 1, 3 or 4 times `hidden` rows), the layer count from the `_l{k}` suffixes.
//! `__metadata__` may add what the weights cannot say (see [`ModelMeta`]).
//!
//! Weights are kept here in PyTorch's own layout (gate-major rows, gate order i,f,g,o for LSTM and
//! r,z,n for GRU); the reordering into `tinyrnn`'s unit-major layout happens when a runnable model
//! is built from this.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::import::{TensorMap, TensorValues};

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

    /// Parses `rnn`, `lstm` or `gru` (case-insensitive); an RNN gets `nonlinearity`.
    pub fn parse(name: &str, nonlinearity: Nonlinearity) -> Option<CellKind> {
        match name.to_ascii_lowercase().as_str() {
            "rnn" | "rnn_tanh" | "rnn_relu" => Some(CellKind::Rnn(nonlinearity)),
            "lstm" => Some(CellKind::Lstm),
            "gru" => Some(CellKind::Gru),
            _ => None,
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
}

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
    /// ONNX), recognised by its content; `nonlinearity` overrides the RNN nonlinearity from
    /// metadata.
    pub fn load(path: &Path, nonlinearity: Option<Nonlinearity>) -> Result<FloatModel> {
        let tensors = crate::import::read_path(path)?;
        Self::from_tensors(&tensors, nonlinearity).map_err(|e| anyhow!("{}: {e:#}", path.display()))
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
        parse_model(
            tensors,
            &tensors.names(),
            tensors.metadata.clone(),
            nonlinearity,
        )
    }

    /// Serialises to safetensors bytes with PyTorch key names and `__metadata__`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let join = |prefix: &str, key: &str| {
            if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            }
        };
        let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, data: &[f32]| {
            let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            owned.push((name, shape, bytes));
        };
        let g = self.kind.gates();
        for (k, l) in self.layers.iter().enumerate() {
            let rows = g * l.hidden_size;
            push(
                join(&self.prefix, &format!("weight_ih_l{k}")),
                vec![rows, l.input_size],
                &l.w_ih,
            );
            push(
                join(&self.prefix, &format!("weight_hh_l{k}")),
                vec![rows, l.hidden_size],
                &l.w_hh,
            );
            if let Some(b) = &l.b_ih {
                push(join(&self.prefix, &format!("bias_ih_l{k}")), vec![rows], b);
            }
            if let Some(b) = &l.b_hh {
                push(join(&self.prefix, &format!("bias_hh_l{k}")), vec![rows], b);
            }
        }
        if let Some(h) = &self.head {
            push(
                join(&self.head_prefix, "weight"),
                vec![h.output_size, h.input_size],
                &h.weight,
            );
            if let Some(b) = &h.bias {
                push(join(&self.head_prefix, "bias"), vec![h.output_size], b);
            }
        }
        let views: Vec<(String, TensorView<'_>)> = owned
            .iter()
            .map(|(name, shape, data)| {
                TensorView::new(Dtype::F32, shape.clone(), data)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| anyhow!("tensor {name}: {e}"))
            })
            .collect::<Result<_>>()?;
        let meta = self.metadata_map();
        safetensors::serialize(views, Some(meta)).map_err(|e| anyhow!("serialising: {e}"))
    }

    /// Writes the model file (atomically: see [`crate::output_file`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::output_file::write_atomically("", path, &bytes)
    }

    /// The `__metadata__` entries this model writes.
    pub fn metadata_map(&self) -> std::collections::HashMap<String, String> {
        let mut meta: std::collections::HashMap<String, String> =
            self.meta.extra.clone().into_iter().collect();
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
}

/// Reads a float tensor (as `f32`; the readers convert F64/F16/BF16) with its shape.
pub fn read_f32(tensors: &TensorMap, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let t = tensors
        .get(name)
        .ok_or_else(|| anyhow!("missing key `{name}`"))?;
    let values = match &t.values {
        TensorValues::F32(v) => v.clone(),
        TensorValues::NotFloat(dtype) => {
            bail!("tensor `{name}` has dtype {dtype}; expected a float type")
        }
    };
    if values.len() != t.shape.iter().product::<usize>() {
        bail!(
            "tensor `{name}` has {} values for its shape {:?}",
            values.len(),
            t.shape
        );
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "tensor `{name}` has a non-finite value ({}) at flat index {i}",
            values[i]
        );
    }
    Ok((t.shape.clone(), values))
}

/// Splits `a.b.weight_ih_l0` into (`a.b`, `weight_ih_l0`).
fn split_key(key: &str) -> (&str, &str) {
    match key.rfind('.') {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => ("", key),
    }
}

fn parse_model(
    tensors: &TensorMap,
    names: &[String],
    metadata: BTreeMap<String, String>,
    nonlinearity_override: Option<Nonlinearity>,
) -> Result<FloatModel> {
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
                .map(|p| if p.is_empty() { "<no prefix>" } else { p })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let key = |leaf: &str| {
        if prefix.is_empty() {
            leaf.to_string()
        } else {
            format!("{prefix}.{leaf}")
        }
    };

    // Which keys we understand under the recurrent prefix.
    // Every key under the prefix must be a recurrent tensor `<leaf>_l{k}`; the layer count is
    // one more than the largest k, so a missing tensor of any layer is reported as missing.
    let mut layer_count = 0;
    for n in names {
        let (p, leaf) = split_key(n);
        if p == prefix {
            let k = ["weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"]
                .iter()
                .find_map(|s| leaf.strip_prefix(s).and_then(|k| k.parse::<usize>().ok()));
            match k {
                Some(k) => layer_count = layer_count.max(k + 1),
                None => bail!("unknown key `{n}` (bidirectional, projected or peephole layers are not supported)"),
            }
        }
    }

    // Metadata.
    let meta_nonlin = match metadata.get(meta_keys::NONLINEARITY) {
        Some(s) => Some(Nonlinearity::parse(s).ok_or_else(|| {
            anyhow!(
                "metadata `{}` is `{s}`; expected `tanh` or `relu`",
                meta_keys::NONLINEARITY
            )
        })?),
        None => None,
    };
    let nonlinearity = nonlinearity_override.or(meta_nonlin).unwrap_or_default();
    let meta_cell = match metadata.get(meta_keys::CELL) {
        Some(s) => Some(CellKind::parse(s, nonlinearity).ok_or_else(|| {
            anyhow!(
                "metadata `{}` is `{s}`; expected rnn, lstm or gru",
                meta_keys::CELL
            )
        })?),
        None => None,
    };

    let mut layers = Vec::new();
    let mut kind: Option<CellKind> = meta_cell;
    for k in 0..layer_count {
        let (s_hh, w_hh) = read_f32(tensors, &key(&format!("weight_hh_l{k}")))?;
        let (s_ih, w_ih) = read_f32(tensors, &key(&format!("weight_ih_l{k}")))?;
        if s_hh.len() != 2 || s_ih.len() != 2 {
            bail!(
                "`{}` and `{}` must be 2-D",
                key(&format!("weight_ih_l{k}")),
                key(&format!("weight_hh_l{k}"))
            );
        }
        let hidden = s_hh[1];
        if hidden == 0 || s_hh[0] % hidden != 0 {
            bail!(
                "`{}` has shape {:?}: rows must be 1, 3 or 4 times the columns",
                key(&format!("weight_hh_l{k}")),
                s_hh
            );
        }
        let gates = s_hh[0] / hidden;
        let inferred = match gates {
            1 => CellKind::Rnn(nonlinearity),
            3 => CellKind::Gru,
            4 => CellKind::Lstm,
            _ => bail!(
                "`{}` has shape {:?}: {gates} gate blocks, expected 1 (RNN), 3 (GRU) or 4 (LSTM)",
                key(&format!("weight_hh_l{k}")),
                s_hh
            ),
        };
        match kind {
            Some(c) if c.gates() != gates => bail!(
                "layer {k} has {gates} gate blocks but the model is {} ({} gates)",
                c.name(),
                c.gates()
            ),
            _ => kind = Some(kind.unwrap_or(inferred)),
        }
        if s_ih[0] != s_hh[0] {
            bail!(
                "`{}` has {} rows but `{}` has {}",
                key(&format!("weight_ih_l{k}")),
                s_ih[0],
                key(&format!("weight_hh_l{k}")),
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
            let prev: &LayerWeights = prev;
            if input != prev.hidden_size {
                bail!(
                    "`{}` expects {input} inputs but layer {} has {} hidden units",
                    key(&format!("weight_ih_l{k}")),
                    k - 1,
                    prev.hidden_size
                );
            }
        }
        let bias = |name: String| -> Result<Option<Vec<f32>>> {
            if !names.contains(&name) {
                return Ok(None);
            }
            let (s, b) = read_f32(tensors, &name)?;
            if s != [gates * hidden] {
                bail!("`{name}` has shape {s:?}; expected [{}]", gates * hidden);
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
    let kind = kind.ok_or_else(|| anyhow!("no recurrent layer found"))?;
    let hidden = layers.last().map_or(0, |l| l.hidden_size);

    // Head: any `<p>.weight` (+ optional `<p>.bias`) outside the recurrent prefix.
    let mut head_prefixes: Vec<&str> = Vec::new();
    for n in names {
        let (p, leaf) = split_key(n);
        if p != prefix || (prefix.is_empty() && (leaf == "weight" || leaf == "bias")) {
            if leaf == "weight" {
                head_prefixes.push(p);
            } else if leaf != "bias" {
                bail!("unknown key `{n}`: expected a recurrent layer and at most one linear head");
            }
        }
    }
    let (head, head_prefix) = match head_prefixes.as_slice() {
        [] => {
            if let Some(n) = names
                .iter()
                .find(|n| split_key(n).1 == "bias" && split_key(n).0 != prefix)
            {
                bail!("`{n}` has no matching weight");
            }
            (None, String::new())
        }
        [p] => {
            let hk = |leaf: &str| {
                if p.is_empty() {
                    leaf.to_string()
                } else {
                    format!("{p}.{leaf}")
                }
            };
            let (s, weight) = read_f32(tensors, &hk("weight"))?;
            if s.len() != 2 || s[1] != hidden || s[0] == 0 {
                bail!(
                    "head `{}` has shape {s:?}; expected [outputs, {hidden}]",
                    hk("weight")
                );
            }
            let bias = if names.contains(&hk("bias")) {
                let (sb, b) = read_f32(tensors, &hk("bias"))?;
                if sb != [s[0]] {
                    bail!(
                        "head `{}` has shape {sb:?}; expected [{}]",
                        hk("bias"),
                        s[0]
                    );
                }
                Some(b)
            } else {
                None
            };
            (
                Some(HeadWeights {
                    input_size: hidden,
                    output_size: s[0],
                    weight,
                    bias,
                }),
                p.to_string(),
            )
        }
        many => bail!(
            "more than one linear head ({}); expected at most one",
            many.join(", ")
        ),
    };

    let mut extra = metadata;
    let class_names = match extra.remove(meta_keys::CLASS_NAMES) {
        Some(s) => serde_json::from_str::<Vec<String>>(&s)
            .map_err(|e| anyhow!("metadata `{}`: {e}", meta_keys::CLASS_NAMES))?,
        None => Vec::new(),
    };
    let normalization = match extra.remove(meta_keys::NORMALIZATION) {
        Some(s) => {
            let n: Normalization = serde_json::from_str(&s)
                .map_err(|e| anyhow!("metadata `{}`: {e}", meta_keys::NORMALIZATION))?;
            let inputs = layers[0].input_size;
            if n.mean.len() != inputs || n.std.len() != inputs {
                bail!(
                    "metadata `{}` has {} means and {} stds; the model has {inputs} inputs",
                    meta_keys::NORMALIZATION,
                    n.mean.len(),
                    n.std.len()
                );
            }
            if n.std.iter().chain(&n.mean).any(|v| !v.is_finite()) || n.std.contains(&0.0) {
                bail!(
                    "metadata `{}` has a non-finite mean/std or a zero std",
                    meta_keys::NORMALIZATION
                );
            }
            Some(n)
        }
        None => None,
    };
    extra.remove(meta_keys::CELL);
    extra.remove(meta_keys::NONLINEARITY);
    if let (Some(h), false) = (&head, class_names.is_empty()) {
        if h.output_size != class_names.len() {
            bail!(
                "metadata has {} class names but the head has {} outputs",
                class_names.len(),
                h.output_size
            );
        }
    }
    Ok(FloatModel {
        kind,
        layers,
        head,
        prefix,
        head_prefix,
        meta: ModelMeta {
            class_names,
            normalization,
            extra,
        },
    })
}
