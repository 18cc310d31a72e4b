//! ONNX models holding `LSTM`, `GRU` or `RNN` operators, as written by `torch.onnx.export`
//! (both exporters) and by `tf2onnx` from Keras.
//!
//! The graph is walked node by node with an abstract interpreter that follows one value, the
//! signal: from the graph's single input, through the layout operators exporters put around the
//! recurrent nodes (`Transpose`, `Squeeze`, `Unsqueeze`, `Reshape`, `Identity`, a `Gather` or
//! `Slice` that keeps the last step), through a chain of recurrent nodes (one per layer), to an
//! optional linear head (`Gemm`, or `MatMul` + `Add`). Each signal axis has a role (time, batch,
//! features, direction), so a `Reshape` is accepted only when it regroups axes without mixing
//! time, batch and features — be its target shape a constant or computed from `Shape` nodes, as
//! the dynamo exporter writes for dynamic sizes. Values that are not the signal are constants
//! (initializers, `Constant` nodes), shape vectors, or all-zero tensors (the initial states an
//! exporter builds with `Expand`/`ConstantOfShape`); any operator applied to the signal that is
//! not one of the above is an error naming it and its node.
//!
//! The weights are converted to PyTorch's layout and names: ONNX gate order LSTM `i,o,f,c` and
//! GRU `z,r,h` become PyTorch's `i,f,g,o` and `r,z,n`; `W [dirs, G·H, I]`, `R [dirs, G·H, H]` and
//! `B [dirs, 2·G·H]` (input biases, then recurrent ones) become `rnn.weight_ih_l{k}`,
//! `weight_hh_l{k}`, `bias_ih_l{k}`, `bias_hh_l{k}` (a bidirectional layer's second direction
//! gets the `_reverse` keys PyTorch uses); the head becomes `head.weight [C, H]` and `head.bias`.
//! The cell kind and an `RNN`'s activation (tanh or relu, which a PyTorch state_dict does not
//! record) go into the metadata as `tinyrnn.cell` and `tinyrnn.nonlinearity`.
//!
//! Refused with an error: a GRU with `linear_before_reset=0` (the cells compute PyTorch's GRU,
//! which is `linear_before_reset=1`), `clip`, LSTM peepholes `P` and `input_forget`,
//! `sequence_lens`, a non-zero initial state, activations other than the defaults (tanh/relu for
//! `RNN`), and the `reverse` direction alone.
//!
//! Tensors may live in external files (`torch.onnx.export(..., external_data=True)` writes
//! `model.onnx.data`): `location` is relative to the model's directory, `offset` and `length` in
//! bytes.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use prost::Message;

use super::onnx_proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};
use super::{FloatType, Tensor, TensorMap};
use crate::model_file::meta_keys;

/// Does the file start like a serialised `ModelProto` (field 1, `ir_version`, a small varint)?
pub fn looks_like_onnx(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x08 && (1..=32).contains(&bytes[1])
}

/// Reads an ONNX model into a tensor map; `dir` is where external data files are looked up.
pub fn read(bytes: &[u8], dir: Option<&Path>) -> Result<TensorMap> {
    let model = ModelProto::decode(bytes).map_err(|e| {
        anyhow!(
            "not a valid ONNX model ({}; truncated file?)",
            crate::quote::library_message(&e)
        )
    })?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| anyhow!("the ONNX model has no graph"))?;
    let functions: Vec<String> = model
        .functions
        .iter()
        .map(|f| format!("{}.{}", f.domain, f.name))
        .collect();
    let mut external = External::new(dir);
    Interpreter::new(&mut external, functions).run(graph)
}

// ---------------------------------------------------------------------------------------------
// Abstract values.

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
struct Arr {
    shape: Vec<usize>,
    data: ArrData,
}

#[derive(Clone, Debug, PartialEq)]
enum ArrData {
    F(Vec<f32>),
    I(Vec<i64>),
}

impl Arr {
    fn len(&self) -> usize {
        match &self.data {
            ArrData::F(v) => v.len(),
            ArrData::I(v) => v.len(),
        }
    }

    fn floats(&self) -> Vec<f32> {
        match &self.data {
            ArrData::F(v) => v.clone(),
            ArrData::I(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    fn ints(&self) -> Option<Vec<i64>> {
        match &self.data {
            ArrData::I(v) => Some(v.clone()),
            ArrData::F(_) => None,
        }
    }

    fn is_zero(&self) -> bool {
        match &self.data {
            ArrData::F(v) => v.iter().all(|&x| x == 0.0),
            ArrData::I(v) => v.iter().all(|&x| x == 0),
        }
    }

    fn with_shape(&self, shape: Vec<usize>) -> Arr {
        Arr {
            shape,
            data: self.data.clone(),
        }
    }
}

/// One entry of a shape vector: `k` times the product of the sizes of signal axes `axes`.
#[derive(Clone, Debug, PartialEq)]
struct Dim {
    k: i64,
    axes: Vec<u32>,
}

/// The role of a signal axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// An axis of the graph input, before the first recurrent node says what it is.
    Input,
    Time,
    Batch,
    Feature,
    Direction,
    /// A size-1 axis added by `Unsqueeze`/`Reshape`, or what is left of the time axis after the
    /// last step was taken.
    Unit,
    /// Batch and time flattened into one axis (Keras' `Dense` on a sequence: `Reshape` to
    /// `[-1, H]`, `MatMul`, `Reshape` back), split again by a later `Reshape`.
    Merged,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Axis {
    id: u32,
    role: Role,
}

/// Where the signal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The graph input, before any recurrent node.
    Input,
    /// The output of recurrent layer `k`.
    Layer(usize),
    /// After the head's matrix product, before its bias.
    HeadProduct,
    /// The head's output.
    Head,
}

#[derive(Clone, Debug, PartialEq)]
struct Signal {
    axes: Vec<Axis>,
    stage: Stage,
    /// Only the last step is kept (`Y_h`, or a `Gather`/`Slice` of the last step): per step, in
    /// a streaming run, that is the same function.
    last_only: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Signal(Signal),
    Const(Arr),
    /// A 1-D integer vector (or a scalar) made from signal axis sizes and constants.
    Shape {
        dims: Vec<Dim>,
        scalar: bool,
    },
    /// An all-zero tensor of a shape not tracked.
    Zeros,
    /// A value the reader does not follow; the text says where it comes from.
    Opaque(String),
    /// An omitted optional input (`""`).
    Absent,
}

// ---------------------------------------------------------------------------------------------
// Layers.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Lstm,
    Gru,
    Rnn(&'static str),
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn(_) => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
            Cell::Rnn(_) => "rnn",
        }
    }

    /// For each PyTorch gate block, the ONNX block it comes from.
    fn onnx_blocks(self) -> &'static [usize] {
        match self {
            // ONNX i,o,f,c -> PyTorch i,f,g(c),o.
            Cell::Lstm => &[0, 2, 3, 1],
            // ONNX z,r,h -> PyTorch r,z,n.
            Cell::Gru => &[1, 0, 2],
            Cell::Rnn(_) => &[0],
        }
    }
}

/// One recurrent node's weights in ONNX layout.
struct Layer {
    cell: Cell,
    node: String,
    dirs: usize,
    hidden: usize,
    input: usize,
    /// `[dirs, G·H, I]`.
    w: Vec<f32>,
    /// `[dirs, G·H, H]`.
    r: Vec<f32>,
    /// `[dirs, 2·G·H]`.
    b: Option<Vec<f32>>,
}

/// The head in PyTorch layout.
struct Head {
    outputs: usize,
    inputs: usize,
    /// `[outputs, inputs]`.
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
}

// ---------------------------------------------------------------------------------------------
// External data.

struct External<'p> {
    dir: Option<&'p Path>,
    files: HashMap<PathBuf, Vec<u8>>,
}

impl<'p> External<'p> {
    fn new(dir: Option<&'p Path>) -> External<'p> {
        External {
            dir,
            files: HashMap::new(),
        }
    }

    /// The bytes of a tensor stored outside the model file.
    fn read(&mut self, t: &TensorProto) -> Result<Vec<u8>> {
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.clone())
        };
        let location = entry("location").ok_or_else(|| {
            anyhow!(
                "tensor `{}` is stored externally but names no `location`",
                t.name
            )
        })?;
        let number = |key: &str| -> Result<Option<usize>> {
            entry(key)
                .map(|v| {
                    v.parse::<usize>().map_err(|_| {
                        anyhow!(
                            "tensor `{}`: external data {key} `{v}` is not a number",
                            t.name
                        )
                    })
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let length = number("length")?;
        let rel = Path::new(&location);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            bail!(
                "tensor `{}` refers to external data `{location}` outside the model's directory",
                t.name
            );
        }
        let dir = self.dir.ok_or_else(|| {
            anyhow!(
                "tensor `{}` is stored in the external file `{location}`, which can only be \
                 found next to a model read from a path",
                t.name
            )
        })?;
        let path = dir.join(rel);
        if !self.files.contains_key(&path) {
            let bytes = std::fs::read(&path).map_err(|e| {
                anyhow!(
                    "tensor `{}` is stored in `{}`, which cannot be read ({e})",
                    t.name,
                    path.display()
                )
            })?;
            self.files.insert(path.clone(), bytes);
        }
        let file = &self.files[&path];
        let end = match length {
            Some(n) => offset.checked_add(n),
            None => Some(file.len()),
        };
        match end {
            Some(end) if offset <= end && end <= file.len() => Ok(file[offset..end].to_vec()),
            _ => bail!(
                "tensor `{}`: bytes {offset}..{} of `{}` are past its end ({} bytes; truncated \
                 file?)",
                t.name,
                end.map_or("?".to_string(), |e| e.to_string()),
                path.display(),
                file.len()
            ),
        }
    }
}

/// Decodes an initializer or a `Constant`'s tensor.
fn decode_tensor(t: &TensorProto, external: &mut External<'_>) -> Result<Val> {
    if t.segment.is_some() {
        bail!("tensor `{}` is split into segments (not supported)", t.name);
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| anyhow!("tensor `{}` has dimension {d}", t.name)))
        .collect::<Result<Vec<usize>>>()?;
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| anyhow!("tensor `{}` has shape {shape:?}, too large", t.name))?;
    let raw = if t.data_location == 1 {
        Some(external.read(t)?)
    } else if !t.raw_data.is_empty() || numel == 0 {
        Some(t.raw_data.clone())
    } else {
        None
    };
    let kind = match t.data_type {
        1 => Some(FloatType::F32),
        11 => Some(FloatType::F64),
        10 => Some(FloatType::F16),
        16 => Some(FloatType::BF16),
        _ => None,
    };
    let check = |n: usize| -> Result<()> {
        if n != numel {
            bail!(
                "tensor `{}` has {n} values for its shape {shape:?} ({numel}; truncated file?)",
                t.name
            );
        }
        Ok(())
    };
    if let Some(ty) = kind {
        let values = match &raw {
            Some(raw) => {
                check(raw.len() / ty.size())?;
                if raw.len() % ty.size() != 0 {
                    bail!("tensor `{}`: {} raw bytes", t.name, raw.len());
                }
                super::decode_floats(raw, ty, false)
            }
            None => match ty {
                FloatType::F32 => t.float_data.clone(),
                FloatType::F64 => t.double_data.iter().map(|&v| v as f32).collect(),
                // 16-bit floats are stored one per int32 (their bit pattern).
                FloatType::F16 | FloatType::BF16 => t
                    .int32_data
                    .iter()
                    .map(|&v| ty.decode(&(v as u16).to_le_bytes(), false))
                    .collect(),
            },
        };
        check(values.len())?;
        return Ok(Val::Const(Arr {
            shape,
            data: ArrData::F(values),
        }));
    }
    let ints: Vec<i64> = match (t.data_type, &raw) {
        (7, Some(raw)) => raw
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .collect(),
        (7, None) => t.int64_data.clone(),
        (6, Some(raw)) => raw
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
            .collect(),
        (6, None) => t.int32_data.iter().map(|&v| v as i64).collect(),
        (ty, _) => {
            return Ok(Val::Opaque(format!(
                "tensor `{}` of ONNX data type {ty}",
                t.name
            )))
        }
    };
    check(ints.len())?;
    Ok(Val::Const(Arr {
        shape,
        data: ArrData::I(ints),
    }))
}

// ---------------------------------------------------------------------------------------------
// Attributes.

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_i(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

fn attr_f(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

fn attr_s(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_strings(node: &NodeProto, name: &str) -> Option<Vec<String>> {
    attr(node, name).map(|a| {
        a.strings
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    })
}

/// `` `LSTM` node `name` `` (or its index when it has no name), for messages.
fn describe(node: &NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("`{}` node #{index}", node.op_type)
    } else {
        format!("`{}` node `{}`", node.op_type, node.name)
    }
}

/// Normalises a possibly negative axis for a rank.
fn axis_index(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|&a| a < rank)
}

// ---------------------------------------------------------------------------------------------
// The interpreter.

struct Interpreter<'e, 'p> {
    external: &'e mut External<'p>,
    functions: Vec<String>,
    values: HashMap<String, Val>,
    /// Size of each signal axis, where known.
    sizes: HashMap<u32, Option<usize>>,
    /// The axes a [`Role::Merged`] axis was made of.
    parts: HashMap<u32, Vec<Axis>>,
    next_axis: u32,
    layers: Vec<Layer>,
    head: Option<Head>,
}

impl<'e, 'p> Interpreter<'e, 'p> {
    fn new(external: &'e mut External<'p>, functions: Vec<String>) -> Self {
        Interpreter {
            external,
            functions,
            values: HashMap::new(),
            sizes: HashMap::new(),
            parts: HashMap::new(),
            next_axis: 0,
            layers: Vec::new(),
            head: None,
        }
    }

    fn axis(&mut self, role: Role, size: Option<usize>) -> Axis {
        let id = self.next_axis;
        self.next_axis += 1;
        self.sizes.insert(id, size);
        Axis { id, role }
    }

    fn size(&self, a: Axis) -> Option<usize> {
        self.sizes.get(&a.id).copied().flatten()
    }

    fn value(&self, name: &str) -> Val {
        if name.is_empty() {
            return Val::Absent;
        }
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| Val::Opaque(format!("the undefined value `{name}`")))
    }

    fn input(&self, node: &NodeProto, i: usize) -> Val {
        node.input
            .get(i)
            .map_or(Val::Absent, |name| self.value(name))
    }

    fn run(mut self, graph: &GraphProto) -> Result<TensorMap> {
        let recurrent = graph
            .node
            .iter()
            .filter(|n| matches!(n.op_type.as_str(), "LSTM" | "GRU" | "RNN"))
            .count();
        if recurrent == 0 {
            let mut ops: Vec<(String, usize)> = Vec::new();
            for n in &graph.node {
                match ops.iter_mut().find(|(o, _)| *o == n.op_type) {
                    Some((_, c)) => *c += 1,
                    None => ops.push((n.op_type.clone(), 1)),
                }
            }
            let ops: Vec<String> = ops
                .iter()
                .take(12)
                .map(|(o, c)| format!("{o} ×{c}"))
                .collect();
            let hint = if graph
                .node
                .iter()
                .any(|n| matches!(n.op_type.as_str(), "Loop" | "Scan"))
            {
                "the recurrence is a Loop, which tf2onnx writes for a Keras layer it could not \
                 turn into an ONNX LSTM/GRU operator (SimpleRNN, or a Keras 3 GRU: convert \
                 from tf_keras)"
            } else {
                "an nn.RNN exported by torch.onnx.export(..., dynamo=True) is unrolled into \
                 single steps: export it with dynamo=False"
            };
            bail!(
                "no LSTM, GRU or RNN operator in the graph (it has {}); {hint}",
                if ops.is_empty() {
                    "no nodes".to_string()
                } else {
                    ops.join(", ")
                }
            );
        }
        for init in &graph.initializer {
            let v = decode_tensor(init, self.external)?;
            self.values.insert(init.name.clone(), v);
        }
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !self.values.contains_key(&i.name))
            .collect();
        let input = match inputs.as_slice() {
            [one] => *one,
            [] => bail!("the graph has no input"),
            many => bail!(
                "the graph has {} inputs (`{}`); expected one, the input sequence (initial \
                 states are zero)",
                many.len(),
                many.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join("`, `")
            ),
        };
        let tensor_type = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        if let Some(t) = tensor_type {
            if !matches!(t.elem_type, 0 | 1 | 10 | 11 | 16) {
                bail!(
                    "graph input `{}` has ONNX element type {}; expected a float tensor",
                    input.name,
                    t.elem_type
                );
            }
        }
        let dims: Vec<Option<usize>> = tensor_type
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| {
                        d.dim_value
                            .and_then(|v| usize::try_from(v).ok())
                            .filter(|&v| v > 0)
                    })
                    .collect()
            })
            .unwrap_or_else(|| vec![None; 3]);
        let axes = dims.iter().map(|&d| self.axis(Role::Input, d)).collect();
        self.values.insert(
            input.name.clone(),
            Val::Signal(Signal {
                axes,
                stage: Stage::Input,
                last_only: false,
            }),
        );

        for (index, node) in graph.node.iter().enumerate() {
            let outputs = self
                .node(node, index)
                .map_err(|e| anyhow!("{}: {e:#}", describe(node, index)))?;
            for (name, v) in node.output.iter().zip(outputs) {
                if !name.is_empty() {
                    self.values.insert(name.clone(), v);
                }
            }
        }

        let output = graph
            .output
            .iter()
            .find_map(|o| match self.value(&o.name) {
                Val::Signal(s) => Some((o.name.clone(), s)),
                _ => None,
            })
            .ok_or_else(|| anyhow!("no graph output is computed from the input sequence"))?;
        let last = self.layers.len() - 1;
        match output.1.stage {
            Stage::Layer(k) if k == last => self.head = None,
            Stage::Layer(k) => bail!(
                "graph output `{}` is layer {k}'s output, but layer {last} follows it",
                output.0
            ),
            Stage::HeadProduct | Stage::Head => {}
            Stage::Input => bail!(
                "graph output `{}` does not go through the recurrent layers",
                output.0
            ),
        }
        self.tensor_map()
    }

    /// Evaluates one node.
    fn node(&mut self, node: &NodeProto, index: usize) -> Result<Vec<Val>> {
        let n_out = node.output.len();
        let domain = node.domain.as_str();
        if !(domain.is_empty() || domain == "ai.onnx") {
            let what = if self
                .functions
                .iter()
                .any(|f| *f == format!("{domain}.{}", node.op_type))
            {
                "a function defined in the model"
            } else {
                "an operator outside the standard ONNX domain"
            };
            bail!("`{domain}.{}` is {what}; not supported", node.op_type);
        }
        let inputs: Vec<Val> = (0..node.input.len()).map(|i| self.input(node, i)).collect();
        let has_signal = inputs.iter().any(|v| matches!(v, Val::Signal(_)));
        let out = match node.op_type.as_str() {
            "Constant" => vec![self.constant(node)?],
            "Identity" => vec![inputs[0].clone()],
            "Cast" => vec![self.cast(node, &inputs[0])?],
            "LSTM" | "GRU" | "RNN" => self.recurrent(node, index, &inputs)?,
            "Transpose" => vec![self.transpose(node, &inputs[0])?],
            "Squeeze" => vec![self.squeeze(node, &inputs)?],
            "Unsqueeze" => vec![self.unsqueeze(node, &inputs)?],
            "Reshape" => vec![self.reshape(node, &inputs)?],
            "Shape" => vec![self.shape(node, &inputs[0])],
            "Gather" => vec![self.gather(node, &inputs)?],
            "Slice" => vec![self.slice(node, &inputs)?],
            "Concat" => vec![self.concat(node, &inputs)?],
            "Mul" | "Add" | "Sub" | "Div" if has_signal => vec![self.signal_arith(node, &inputs)?],
            "Mul" | "Add" | "Sub" | "Div" => vec![shape_arith(&node.op_type, &inputs)],
            "MatMul" => vec![self.matmul(&inputs)?],
            "Gemm" => vec![self.gemm(node, &inputs)?],
            "ConstantOfShape" => {
                let zero = match attr(node, "value").and_then(|a| a.t.as_ref()) {
                    None => true,
                    Some(t) => match decode_tensor(t, self.external)? {
                        Val::Const(a) => a.is_zero(),
                        _ => false,
                    },
                };
                vec![if zero {
                    Val::Zeros
                } else {
                    Val::Opaque(format!("a non-zero {}", describe(node, index)))
                }]
            }
            "Expand" => vec![match &inputs[0] {
                Val::Zeros => Val::Zeros,
                Val::Const(a) if a.is_zero() => Val::Zeros,
                Val::Signal(_) => bail!("expanding the signal is not supported"),
                _ => Val::Opaque(format!("the output of {}", describe(node, index))),
            }],
            op if has_signal => {
                let hint = match op {
                    "Softmax" | "LogSoftmax" | "Sigmoid" | "Relu" | "Tanh" => {
                        " (the head is linear: export the logits, without a final activation)"
                    }
                    _ => "",
                };
                bail!(
                    "operator `{op}` applied to the signal is not supported{hint}; supported are \
                     LSTM, GRU, RNN, a Gemm or MatMul+Add head, and Transpose, Squeeze, \
                     Unsqueeze, Reshape, Gather, Slice, Identity between them"
                )
            }
            // Not on the signal's path: followed no further; an error arises only if its value is
            // needed (a weight, an initial state, a shape).
            _ => vec![Val::Opaque(format!(
                "the output of {}",
                describe(node, index)
            ))],
        };
        let mut out = out;
        out.resize(
            n_out,
            Val::Opaque(format!("an output of {}", describe(node, index))),
        );
        Ok(out)
    }

    fn constant(&mut self, node: &NodeProto) -> Result<Val> {
        if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
            return decode_tensor(t, self.external);
        }
        if let Some(a) = attr(node, "value_float") {
            return Ok(Val::Const(Arr {
                shape: vec![],
                data: ArrData::F(vec![a.f]),
            }));
        }
        if let Some(a) = attr(node, "value_floats") {
            return Ok(Val::Const(Arr {
                shape: vec![a.floats.len()],
                data: ArrData::F(a.floats.clone()),
            }));
        }
        if let Some(a) = attr(node, "value_int") {
            return Ok(Val::Const(Arr {
                shape: vec![],
                data: ArrData::I(vec![a.i]),
            }));
        }
        if let Some(a) = attr(node, "value_ints") {
            return Ok(Val::Const(Arr {
                shape: vec![a.ints.len()],
                data: ArrData::I(a.ints.clone()),
            }));
        }
        Ok(Val::Opaque("a Constant of an unsupported kind".into()))
    }

    fn cast(&self, node: &NodeProto, v: &Val) -> Result<Val> {
        let to = attr_i(node, "to", 1);
        Ok(match (v, to) {
            (Val::Signal(_), 1 | 10 | 11 | 16) => v.clone(),
            (Val::Signal(_), _) => bail!("casting the signal to ONNX type {to}"),
            (Val::Const(a), 1 | 10 | 11 | 16) => Val::Const(Arr {
                shape: a.shape.clone(),
                data: ArrData::F(a.floats()),
            }),
            (Val::Const(a), 6 | 7) => match &a.data {
                ArrData::I(_) => v.clone(),
                ArrData::F(f) => Val::Const(Arr {
                    shape: a.shape.clone(),
                    data: ArrData::I(f.iter().map(|&x| x as i64).collect()),
                }),
            },
            (Val::Shape { .. }, 6 | 7) | (Val::Zeros, _) => v.clone(),
            _ => Val::Opaque("a Cast".into()),
        })
    }

    // -- layout operators ------------------------------------------------------------------

    fn transpose(&self, node: &NodeProto, v: &Val) -> Result<Val> {
        let rank = match v {
            Val::Signal(s) => s.axes.len(),
            Val::Const(a) => a.shape.len(),
            Val::Zeros => return Ok(Val::Zeros),
            _ => return Ok(Val::Opaque("a Transpose".into())),
        };
        let perm: Vec<usize> = match attr_ints(node, "perm") {
            Some(p) => p
                .iter()
                .map(|&i| axis_index(i, rank))
                .collect::<Option<_>>()
                .ok_or_else(|| anyhow!("perm {p:?} for rank {rank}"))?,
            None => (0..rank).rev().collect(),
        };
        let mut seen = vec![false; rank];
        if perm.len() != rank || perm.iter().any(|&p| std::mem::replace(&mut seen[p], true)) {
            bail!("perm {perm:?} is not a permutation of {rank} axes");
        }
        Ok(match v {
            Val::Signal(s) => Val::Signal(Signal {
                axes: perm.iter().map(|&p| s.axes[p]).collect(),
                ..s.clone()
            }),
            Val::Const(a) => Val::Const(transpose_arr(a, &perm)),
            _ => unreachable!(),
        })
    }

    /// Axes given as attribute (opset < 13) or as the second input.
    fn axes_arg(&self, node: &NodeProto, inputs: &[Val], at: usize) -> Result<Option<Vec<i64>>> {
        if let Some(a) = attr_ints(node, "axes") {
            return Ok(Some(a));
        }
        match inputs.get(at) {
            None | Some(Val::Absent) => Ok(None),
            Some(v) => Ok(Some(
                const_ints(v).ok_or_else(|| anyhow!("its axes are not a constant"))?,
            )),
        }
    }

    fn squeeze(&self, node: &NodeProto, inputs: &[Val]) -> Result<Val> {
        let axes = self.axes_arg(node, inputs, 1)?;
        match &inputs[0] {
            Val::Signal(s) => {
                let rank = s.axes.len();
                let drop: Vec<usize> = match axes {
                    Some(a) => a
                        .iter()
                        .map(|&i| axis_index(i, rank))
                        .collect::<Option<_>>()
                        .ok_or_else(|| anyhow!("axes {a:?} for rank {rank}"))?,
                    None => (0..rank)
                        .filter(|&i| self.size(s.axes[i]) == Some(1))
                        .collect(),
                };
                for &d in &drop {
                    if self.size(s.axes[d]) != Some(1) && s.axes[d].role != Role::Batch {
                        bail!(
                            "squeezes the {:?} axis, which is not of size 1",
                            s.axes[d].role
                        );
                    }
                }
                Ok(Val::Signal(Signal {
                    axes: (0..rank)
                        .filter(|i| !drop.contains(i))
                        .map(|i| s.axes[i])
                        .collect(),
                    ..s.clone()
                }))
            }
            Val::Shape {
                dims,
                scalar: false,
            } if dims.len() == 1 => Ok(Val::Shape {
                dims: dims.clone(),
                scalar: true,
            }),
            Val::Const(a) => {
                let rank = a.shape.len();
                let drop: Vec<usize> = match axes {
                    Some(ax) => ax.iter().filter_map(|&i| axis_index(i, rank)).collect(),
                    None => (0..rank).filter(|&i| a.shape[i] == 1).collect(),
                };
                Ok(Val::Const(
                    a.with_shape(
                        (0..rank)
                            .filter(|i| !drop.contains(i))
                            .map(|i| a.shape[i])
                            .collect(),
                    ),
                ))
            }
            Val::Zeros => Ok(Val::Zeros),
            _ => Ok(Val::Opaque("a Squeeze".into())),
        }
    }

    fn unsqueeze(&mut self, node: &NodeProto, inputs: &[Val]) -> Result<Val> {
        let axes = self
            .axes_arg(node, inputs, 1)?
            .ok_or_else(|| anyhow!("no axes"))?;
        match &inputs[0] {
            Val::Signal(s) => {
                let rank = s.axes.len() + axes.len();
                let mut at: Vec<usize> = axes
                    .iter()
                    .map(|&i| axis_index(i, rank))
                    .collect::<Option<_>>()
                    .ok_or_else(|| anyhow!("axes {axes:?} for rank {rank}"))?;
                at.sort_unstable();
                let mut out = s.axes.clone();
                for i in at {
                    let unit = self.axis(Role::Unit, Some(1));
                    out.insert(i.min(out.len()), unit);
                }
                Ok(Val::Signal(Signal {
                    axes: out,
                    ..s.clone()
                }))
            }
            Val::Shape { dims, scalar: true } => Ok(Val::Shape {
                dims: dims.clone(),
                scalar: false,
            }),
            Val::Const(a) => {
                let rank = a.shape.len() + axes.len();
                let mut at: Vec<usize> = axes.iter().filter_map(|&i| axis_index(i, rank)).collect();
                at.sort_unstable();
                let mut shape = a.shape.clone();
                for i in at {
                    shape.insert(i.min(shape.len()), 1);
                }
                Ok(Val::Const(a.with_shape(shape)))
            }
            Val::Zeros => Ok(Val::Zeros),
            _ => Ok(Val::Opaque("an Unsqueeze".into())),
        }
    }

    fn shape(&self, node: &NodeProto, v: &Val) -> Val {
        let (dims, rank): (Vec<Dim>, usize) = match v {
            Val::Signal(s) => (
                s.axes
                    .iter()
                    .map(|a| Dim {
                        k: 1,
                        axes: vec![a.id],
                    })
                    .collect(),
                s.axes.len(),
            ),
            Val::Const(a) => (
                a.shape
                    .iter()
                    .map(|&d| Dim {
                        k: d as i64,
                        axes: vec![],
                    })
                    .collect(),
                a.shape.len(),
            ),
            _ => return Val::Opaque("a Shape".into()),
        };
        let clamp = |i: i64| -> usize {
            let i = if i < 0 { i + rank as i64 } else { i };
            i.clamp(0, rank as i64) as usize
        };
        let start = clamp(attr_i(node, "start", 0));
        let end = clamp(attr_i(node, "end", rank as i64));
        Val::Shape {
            dims: dims[start..end.max(start)].to_vec(),
            scalar: false,
        }
    }

    fn reshape(&mut self, node: &NodeProto, inputs: &[Val]) -> Result<Val> {
        let target = inputs.get(1).cloned().unwrap_or(Val::Absent);
        match &inputs[0] {
            Val::Signal(s) => {
                let dims = shape_dims(&target).ok_or_else(|| {
                    anyhow!(
                        "its target shape is {}, not a constant or a shape computed from the \
                         signal",
                        describe_val(&target)
                    )
                })?;
                if attr_i(node, "allowzero", 0) != 0
                    && dims.iter().any(|d| d.axes.is_empty() && d.k == 0)
                {
                    bail!("a zero-size target shape");
                }
                let axes = self.regroup(&s.axes, &dims)?;
                Ok(Val::Signal(Signal { axes, ..s.clone() }))
            }
            Val::Shape { dims, .. } => {
                // Reshape of a shape vector to [-1] / [n]: still the same 1-D vector.
                Ok(Val::Shape {
                    dims: dims.clone(),
                    scalar: false,
                })
            }
            Val::Const(a) => {
                let t = const_ints(&target).ok_or_else(|| anyhow!("a computed target shape"))?;
                let mut shape = Vec::new();
                let mut infer = None;
                for (i, &d) in t.iter().enumerate() {
                    match d {
                        -1 => {
                            infer = Some(i);
                            shape.push(1);
                        }
                        0 => shape.push(a.shape.get(i).copied().unwrap_or(1)),
                        d => shape.push(
                            usize::try_from(d).map_err(|_| anyhow!("a target dimension {d}"))?,
                        ),
                    }
                }
                let product = |s: &[usize]| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if let Some(i) = infer {
                    let known = product(&shape).unwrap_or(usize::MAX);
                    shape[i] = a.len() / known.max(1);
                }
                if product(&shape) != Some(a.len()) {
                    bail!("cannot reshape {:?} to {t:?}", a.shape);
                }
                Ok(Val::Const(a.with_shape(shape)))
            }
            Val::Zeros => Ok(Val::Zeros),
            _ => Ok(Val::Opaque("a Reshape".into())),
        }
    }

    /// Maps the signal's axes onto a `Reshape` target: every target entry takes a run of
    /// consecutive input axes, which may only combine size-1 axes with one real axis, or a
    /// bidirectional layer's direction axis with its features (PyTorch's concatenation of both
    /// directions).
    fn regroup(&mut self, axes: &[Axis], target: &[Dim]) -> Result<Vec<Axis>> {
        // A merged axis whose parts the target names (a shape taken before the merge) is split.
        let named: Vec<u32> = target.iter().flat_map(|d| d.axes.iter().copied()).collect();
        let axes: Vec<Axis> = axes
            .iter()
            .flat_map(|a| match self.parts.get(&a.id) {
                Some(parts) if parts.iter().any(|p| named.contains(&p.id)) => parts.clone(),
                _ => vec![*a],
            })
            .collect();
        let axes = axes.as_slice();
        let minus = target.iter().position(|d| d.axes.is_empty() && d.k == -1);
        if target
            .iter()
            .filter(|d| d.axes.is_empty() && d.k == -1)
            .count()
            > 1
        {
            bail!("a target shape with more than one -1");
        }
        let left_end = minus.unwrap_or(target.len());
        let mut groups: Vec<Vec<Axis>> = Vec::new();
        let mut p = 0;
        for (i, d) in target[..left_end].iter().enumerate() {
            let g = self.take_group(axes, &mut p, d, Some(i), false)?;
            groups.push(g);
        }
        let mut tail: Vec<Vec<Axis>> = Vec::new();
        let mut q = axes.len();
        if let Some(m) = minus {
            for d in target[m + 1..].iter().rev() {
                let mut rev: Vec<Axis> = axes[p..q].iter().rev().copied().collect();
                let mut r = 0;
                let mut g = self.take_group(&rev, &mut r, d, None, true)?;
                rev.truncate(0);
                q -= r;
                g.reverse();
                tail.push(g);
            }
            groups.push(axes[p..q].to_vec());
            p = axes.len();
            tail.reverse();
            groups.extend(tail);
        }
        if let Some(a) = axes[p..].iter().find(|&&a| self.size(a) != Some(1)) {
            bail!(
                "the target shape leaves the {:?} axis unaccounted for",
                a.role
            );
        }
        groups.into_iter().map(|g| self.merge(&g)).collect()
    }

    /// The run of axes from `p` that one target entry covers.
    fn take_group(
        &self,
        axes: &[Axis],
        p: &mut usize,
        d: &Dim,
        index: Option<usize>,
        from_right: bool,
    ) -> Result<Vec<Axis>> {
        let mut g = Vec::new();
        if d.axes.is_empty() && d.k == 0 {
            // 0 copies the input's dimension at the same index.
            match index {
                Some(i) if i == *p && i < axes.len() => {
                    g.push(axes[i]);
                    *p += 1;
                    return Ok(g);
                }
                _ => bail!("a 0 in the target shape that does not copy an input axis in place"),
            }
        }
        if !d.axes.is_empty() {
            // Symbolic: exactly these axes (in any order, as Mul is commutative), next in line;
            // size-1 axes on the way are absorbed.
            let mut want = d.axes.clone();
            while !want.is_empty() {
                let a = *axes.get(*p).ok_or_else(|| {
                    anyhow!("the target shape names axes the input does not have in this order")
                })?;
                if let Some(i) = want.iter().position(|&w| w == a.id) {
                    want.remove(i);
                } else if self.size(a) != Some(1) {
                    bail!(
                        "the target shape does not keep the input's axes in order (at its {:?} \
                         axis)",
                        a.role
                    );
                }
                g.push(a);
                *p += 1;
            }
            if d.k != 1 {
                bail!("a target dimension of {} times an input axis", d.k);
            }
            return Ok(g);
        }
        let n = usize::try_from(d.k).map_err(|_| anyhow!("a target dimension of {}", d.k))?;
        if n == 1 {
            if axes.get(*p).is_some_and(|&a| self.size(a) == Some(1)) {
                g.push(axes[*p]);
                *p += 1;
            }
            return Ok(g);
        }
        let mut prod = 1usize;
        while prod < n {
            let a = *axes
                .get(*p)
                .ok_or_else(|| anyhow!("the target shape has more elements than the input"))?;
            let s = self.size(a).ok_or_else(|| {
                anyhow!(
                    "a fixed target dimension {n} {} the input's {:?} axis of dynamic size",
                    if from_right { "after" } else { "over" },
                    a.role
                )
            })?;
            prod = prod.saturating_mul(s.max(1));
            g.push(a);
            *p += 1;
        }
        if prod != n {
            bail!("a target dimension {n} that splits an input axis");
        }
        Ok(g)
    }

    /// One axis from a group of consecutive input axes.
    fn merge(&mut self, g: &[Axis]) -> Result<Axis> {
        let big: Vec<Axis> = g
            .iter()
            .copied()
            .filter(|&a| self.size(a) != Some(1))
            .collect();
        match big.as_slice() {
            [] => {
                // Only size-1 axes: keep the most meaningful one.
                let rank = |r: Role| match r {
                    Role::Time => 0,
                    Role::Feature => 1,
                    Role::Batch => 2,
                    Role::Input => 3,
                    Role::Direction => 4,
                    Role::Merged => 5,
                    Role::Unit => 6,
                };
                match g.iter().min_by_key(|a| rank(a.role)) {
                    Some(&a) => Ok(a),
                    None => Ok(self.axis(Role::Unit, Some(1))),
                }
            }
            [one] => Ok(*one),
            [dir, feat] if dir.role == Role::Direction && feat.role == Role::Feature => {
                let size = self.size(*dir).zip(self.size(*feat)).map(|(a, b)| a * b);
                Ok(self.axis(Role::Feature, size))
            }
            many if many
                .iter()
                .all(|a| matches!(a.role, Role::Batch | Role::Time | Role::Merged)) =>
            {
                let size = many
                    .iter()
                    .try_fold(1usize, |acc, &a| self.size(a).map(|s| acc * s));
                let merged = self.axis(Role::Merged, size);
                let parts: Vec<Axis> = g
                    .iter()
                    .flat_map(|a| self.parts.get(&a.id).cloned().unwrap_or_else(|| vec![*a]))
                    .collect();
                self.parts.insert(merged.id, parts);
                Ok(merged)
            }
            many => bail!(
                "it merges the {} axes into one",
                many.iter()
                    .map(|a| format!("{:?}", a.role).to_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    fn gather(&mut self, node: &NodeProto, inputs: &[Val]) -> Result<Val> {
        let index = inputs.get(1).cloned().unwrap_or(Val::Absent);
        match &inputs[0] {
            Val::Signal(s) => {
                let rank = s.axes.len();
                let ax = axis_index(attr_i(node, "axis", 0), rank)
                    .ok_or_else(|| anyhow!("axis out of range"))?;
                let idx = match &index {
                    Val::Const(a) if a.shape.is_empty() => {
                        a.ints().and_then(|v| v.first().copied())
                    }
                    _ => None,
                }
                .ok_or_else(|| {
                    anyhow!("gathering the signal with a non-scalar or computed index")
                })?;
                let a = s.axes[ax];
                let size = self.size(a);
                let last = idx == -1 || size.is_some_and(|n| idx == n as i64 - 1);
                let first_of_one = idx == 0 && size == Some(1);
                let mut out = s.clone();
                out.axes.remove(ax);
                match a.role {
                    Role::Time if last => out.last_only = true,
                    Role::Time => bail!(
                        "it takes step {idx} of the sequence; only the last step can be taken"
                    ),
                    _ if first_of_one || (a.role == Role::Batch && idx == 0) => {}
                    r => bail!("it picks index {idx} of the {r:?} axis"),
                }
                Ok(Val::Signal(out))
            }
            Val::Shape { dims, .. } => {
                let idx = const_ints(&index).ok_or_else(|| anyhow!("a computed index"))?;
                let scalar = matches!(&index, Val::Const(a) if a.shape.is_empty());
                let picked = idx
                    .iter()
                    .map(|&i| axis_index(i, dims.len()).map(|i| dims[i].clone()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow!("index {idx:?} out of range"))?;
                Ok(Val::Shape {
                    dims: picked,
                    scalar,
                })
            }
            Val::Const(a) if a.shape.len() <= 1 => {
                let Some(dims) = shape_dims(&inputs[0]) else {
                    return Ok(Val::Opaque("a Gather".into()));
                };
                let sub = self.gather(
                    node,
                    &[
                        Val::Shape {
                            dims,
                            scalar: false,
                        },
                        index,
                    ],
                )?;
                Ok(sub)
            }
            Val::Zeros => Ok(Val::Zeros),
            _ => Ok(Val::Opaque("a Gather".into())),
        }
    }

    fn slice(&mut self, node: &NodeProto, inputs: &[Val]) -> Result<Val> {
        // Opset ≥ 10 takes starts/ends/axes/steps as inputs; opset 1 as attributes.
        let arg = |i: usize, name: &str| -> Option<Vec<i64>> {
            attr_ints(node, name).or_else(|| inputs.get(i).and_then(const_ints))
        };
        match &inputs[0] {
            Val::Zeros => return Ok(Val::Zeros),
            Val::Signal(_) | Val::Shape { .. } | Val::Const(_) => {}
            _ => return Ok(Val::Opaque("a Slice".into())),
        }
        let (starts, ends) = match (arg(1, "starts"), arg(2, "ends")) {
            (Some(s), Some(e)) if s.len() == e.len() => (s, e),
            _ if matches!(inputs[0], Val::Signal(_)) => {
                bail!("slicing the signal with computed bounds")
            }
            _ => return Ok(Val::Opaque("a Slice".into())),
        };
        let axes = arg(3, "axes").unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = arg(4, "steps").unwrap_or_else(|| vec![1; starts.len()]);
        match &inputs[0] {
            Val::Signal(s) => {
                let mut out = s.clone();
                for (((&st, &en), &ax), &step) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
                    let ax = axis_index(ax, s.axes.len())
                        .ok_or_else(|| anyhow!("axis {ax} out of range"))?;
                    let a = s.axes[ax];
                    let size = self.size(a);
                    let to_end = en >= i32::MAX as i64 || size.is_some_and(|n| en >= n as i64);
                    let whole = step == 1 && st == 0 && to_end;
                    let last = step == 1
                        && to_end
                        && (st == -1 || size.is_some_and(|n| st == n as i64 - 1));
                    if whole {
                        continue;
                    }
                    if last && a.role == Role::Time {
                        out.axes[ax] = self.axis(Role::Unit, Some(1));
                        out.last_only = true;
                        continue;
                    }
                    bail!(
                        "it slices {st}..{en} (step {step}) of the {:?} axis; only the whole \
                         axis, or the last time step, can be taken",
                        a.role
                    );
                }
                Ok(Val::Signal(out))
            }
            v => {
                let dims = shape_dims(v).ok_or_else(|| anyhow!("slicing a non-vector"))?;
                let n = dims.len() as i64;
                if axes.iter().any(|&a| a != 0)
                    || steps.iter().any(|&s| s != 1)
                    || starts.len() != 1
                {
                    return Ok(Val::Opaque("a Slice".into()));
                }
                let clamp = |i: i64| (if i < 0 { i + n } else { i }).clamp(0, n) as usize;
                let (a, b) = (clamp(starts[0]), clamp(ends[0]));
                Ok(Val::Shape {
                    dims: dims[a..b.max(a)].to_vec(),
                    scalar: false,
                })
            }
        }
    }

    fn concat(&self, node: &NodeProto, inputs: &[Val]) -> Result<Val> {
        if inputs.iter().any(|v| matches!(v, Val::Signal(_))) {
            bail!("concatenating the signal is not supported");
        }
        if !inputs.is_empty() && inputs.iter().all(|v| matches!(v, Val::Zeros)) {
            return Ok(Val::Zeros);
        }
        if attr_i(node, "axis", 0) == 0 || attr_i(node, "axis", 0) == -1 {
            let mut dims = Vec::new();
            for v in inputs {
                match shape_dims(v) {
                    Some(d) => dims.extend(d),
                    None => return Ok(Val::Opaque("a Concat".into())),
                }
            }
            return Ok(Val::Shape {
                dims,
                scalar: false,
            });
        }
        Ok(Val::Opaque("a Concat".into()))
    }

    // -- the head --------------------------------------------------------------------------

    /// The signal of the last recurrent layer, ready for the head's product.
    fn head_input<'v>(&self, v: &'v Val) -> Result<&'v Signal> {
        let Val::Signal(s) = v else {
            unreachable!("called with a signal")
        };
        match s.stage {
            Stage::Layer(k) if k + 1 == self.layers.len() => {}
            Stage::Input => bail!(
                "a matrix product before the first recurrent layer (an input projection) is not \
                 supported"
            ),
            _ => bail!("a second linear layer after the head is not supported"),
        }
        match s.axes.last() {
            Some(a) if a.role == Role::Feature => Ok(s),
            Some(a) => bail!(
                "the head's product runs over the {:?} axis, not the hidden features",
                a.role
            ),
            None => bail!("the head's input has no axes"),
        }
    }

    fn matmul(&mut self, inputs: &[Val]) -> Result<Val> {
        match (&inputs[0], inputs.get(1)) {
            (Val::Signal(_), Some(Val::Const(w))) if w.shape.len() == 2 => {
                let s = self.head_input(&inputs[0])?.clone();
                let (h, c) = (w.shape[0], w.shape[1]);
                self.check_hidden(h)?;
                let wv = w.floats();
                let mut weight = vec![0f32; c * h];
                for i in 0..h {
                    for j in 0..c {
                        weight[j * h + i] = wv[i * c + j];
                    }
                }
                self.set_head(Head {
                    outputs: c,
                    inputs: h,
                    weight,
                    bias: None,
                })?;
                Ok(self.head_signal(&s, c, Stage::HeadProduct))
            }
            (Val::Signal(_), Some(other)) => bail!(
                "the signal is multiplied by {}, not a constant 2-D weight",
                describe_val(other)
            ),
            (_, Some(Val::Signal(_))) => {
                bail!("the signal is the right-hand side of a matrix product (not supported)")
            }
            _ => Ok(Val::Opaque("a MatMul".into())),
        }
    }

    fn gemm(&mut self, node: &NodeProto, inputs: &[Val]) -> Result<Val> {
        if !matches!(inputs[0], Val::Signal(_)) {
            if inputs.iter().any(|v| matches!(v, Val::Signal(_))) {
                bail!("the signal is not Gemm's first operand (not supported)");
            }
            return Ok(Val::Opaque("a Gemm".into()));
        }
        let s = self.head_input(&inputs[0])?.clone();
        if s.axes.len() != 2 {
            bail!("Gemm on a {}-D signal", s.axes.len());
        }
        if attr_i(node, "transA", 0) != 0 {
            bail!("transA=1 (the signal transposed) is not supported");
        }
        let Some(Val::Const(b)) = inputs.get(1) else {
            bail!(
                "its weight is {}, not a constant",
                describe_val(&inputs.get(1).cloned().unwrap_or(Val::Absent))
            );
        };
        if b.shape.len() != 2 {
            bail!("its weight has shape {:?}", b.shape);
        }
        let alpha = attr_f(node, "alpha", 1.0);
        let beta = attr_f(node, "beta", 1.0);
        let bv = b.floats();
        let (weight, c, h) = if attr_i(node, "transB", 0) != 0 {
            let (c, h) = (b.shape[0], b.shape[1]);
            (bv.iter().map(|w| w * alpha).collect::<Vec<f32>>(), c, h)
        } else {
            let (h, c) = (b.shape[0], b.shape[1]);
            let mut w = vec![0f32; c * h];
            for i in 0..h {
                for j in 0..c {
                    w[j * h + i] = bv[i * c + j] * alpha;
                }
            }
            (w, c, h)
        };
        self.check_hidden(h)?;
        let bias = match inputs.get(2) {
            None | Some(Val::Absent) => None,
            Some(Val::Const(a)) => Some(broadcast_bias(a, c)?.iter().map(|v| v * beta).collect()),
            Some(other) => bail!("its bias is {}, not a constant", describe_val(other)),
        };
        self.set_head(Head {
            outputs: c,
            inputs: h,
            weight,
            bias,
        })?;
        Ok(self.head_signal(&s, c, Stage::Head))
    }

    /// `Add` of the head's product and a constant bias; any other arithmetic on the signal is
    /// refused.
    fn signal_arith(&mut self, node: &NodeProto, inputs: &[Val]) -> Result<Val> {
        let (s, other) = match (&inputs[0], inputs.get(1)) {
            (Val::Signal(s), Some(o)) | (o, Some(Val::Signal(s))) => (s.clone(), o.clone()),
            _ => bail!("arithmetic on the signal"),
        };
        if let Val::Signal(_) = other {
            bail!("`{}` of two signal tensors is not supported", node.op_type);
        }
        if node.op_type != "Add" || s.stage != Stage::HeadProduct {
            bail!(
                "`{}` on the signal (at {}) is not supported: only the head's bias may be added",
                node.op_type,
                match s.stage {
                    Stage::Input => "the input".to_string(),
                    Stage::Layer(k) => format!("layer {k}'s output"),
                    Stage::HeadProduct | Stage::Head => "the head".to_string(),
                }
            );
        }
        let Val::Const(b) = other else {
            bail!(
                "the head's bias is {}, not a constant",
                describe_val(&other)
            );
        };
        let head = self.head.as_mut().ok_or_else(|| anyhow!("no head"))?;
        head.bias = Some(broadcast_bias(&b, head.outputs)?);
        Ok(Val::Signal(Signal {
            stage: Stage::Head,
            ..s
        }))
    }

    fn check_hidden(&self, h: usize) -> Result<()> {
        let last = self.layers.last().map_or(0, |l| l.hidden * l.dirs);
        if h != last {
            bail!("the head takes {h} inputs but the last recurrent layer gives {last}");
        }
        Ok(())
    }

    fn set_head(&mut self, head: Head) -> Result<()> {
        if self.head.is_some() {
            bail!("a second head on the last layer's output");
        }
        self.head = Some(head);
        Ok(())
    }

    fn head_signal(&mut self, s: &Signal, c: usize, stage: Stage) -> Val {
        let mut axes = s.axes.clone();
        let out = self.axis(Role::Feature, Some(c));
        if let Some(last) = axes.last_mut() {
            *last = out;
        }
        Val::Signal(Signal {
            axes,
            stage,
            last_only: s.last_only,
        })
    }

    // -- recurrent nodes -------------------------------------------------------------------

    fn recurrent(&mut self, node: &NodeProto, index: usize, inputs: &[Val]) -> Result<Vec<Val>> {
        let k = self.layers.len();
        let Some(Val::Signal(x)) = inputs.first() else {
            bail!(
                "its input X is {}, not the sequence",
                describe_val(inputs.first().unwrap_or(&Val::Absent))
            );
        };
        match x.stage {
            Stage::Input if k == 0 => {}
            Stage::Layer(j) if j + 1 == k => {}
            Stage::Input => bail!("it reads the graph input, but a recurrent layer came before"),
            _ => bail!("its input X does not come from the previous recurrent layer"),
        }
        if x.last_only {
            bail!("its input X is only the last step of the previous layer");
        }
        if x.axes.len() != 3 {
            bail!("its input X has {} axes; expected 3", x.axes.len());
        }
        let layout = attr_i(node, "layout", 0);
        let (ti, bi) = match layout {
            0 => (0, 1),
            1 => (1, 0),
            l => bail!("layout {l}"),
        };
        let (t_ax, b_ax, f_ax) = (x.axes[ti], x.axes[bi], x.axes[2]);
        if x.stage != Stage::Input
            && (t_ax.role != Role::Time || b_ax.role != Role::Batch || f_ax.role != Role::Feature)
        {
            bail!(
                "its input X has axes ({:?}, {:?}, {:?}); expected the previous layer's (time, \
                 batch, features) in layout {layout}",
                x.axes[0].role,
                x.axes[1].role,
                x.axes[2].role
            );
        }
        let op = node.op_type.as_str();
        let direction = attr_s(node, "direction").unwrap_or_else(|| "forward".into());
        let dirs = match direction.as_str() {
            "forward" => 1,
            "bidirectional" => 2,
            "reverse" => {
                bail!("direction `reverse` alone (a backward-only layer) has no PyTorch equivalent")
            }
            d => bail!("direction `{d}`"),
        };
        if attr(node, "clip").is_some() {
            bail!("cell clipping (`clip`) is not supported");
        }
        if op == "LSTM" && attr_i(node, "input_forget", 0) != 0 {
            bail!("input_forget=1 (coupled input and forget gates) is not supported");
        }
        let default: &[&str] = match op {
            "LSTM" => &["sigmoid", "tanh", "tanh"],
            "GRU" => &["sigmoid", "tanh"],
            _ => &["tanh"],
        };
        let acts: Vec<String> = attr_strings(node, "activations")
            .unwrap_or_default()
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let cell = match op {
            "LSTM" | "GRU" => {
                let expected: Vec<&str> = default
                    .iter()
                    .copied()
                    .cycle()
                    .take(default.len() * dirs)
                    .collect();
                if !acts.is_empty() && acts != expected {
                    bail!(
                        "activations {acts:?}; only the defaults ({}) are supported",
                        default.join(", ")
                    );
                }
                if op == "LSTM" {
                    Cell::Lstm
                } else {
                    if attr_i(node, "linear_before_reset", 0) == 0 {
                        bail!(
                            "linear_before_reset=0: the reset gate is applied before the \
                             recurrent product, which PyTorch's GRU (and tinyrnn) does not do; \
                             re-export with linear_before_reset=1 (PyTorch's GRU, Keras' \
                             reset_after=True)"
                        );
                    }
                    Cell::Gru
                }
            }
            _ => {
                let act = if acts.is_empty() || acts.iter().all(|a| a == "tanh") {
                    "tanh"
                } else if acts.iter().all(|a| a == "relu") {
                    "relu"
                } else {
                    bail!("activations {acts:?}; an RNN must use tanh or relu");
                };
                Cell::Rnn(act)
            }
        };
        if let Some(first) = self.layers.first() {
            if first.cell != cell {
                bail!(
                    "layer {k} is {} but layer 0 (`{}`) is {}; every layer must be the same cell",
                    describe_cell(cell),
                    first.node,
                    describe_cell(first.cell)
                );
            }
        }
        let weight = |i: usize, what: &str| -> Result<Arr> {
            match inputs.get(i) {
                Some(Val::Const(a)) => Ok(a.clone()),
                Some(v) => bail!("its {what} is {}, not a constant", describe_val(v)),
                None => bail!("it has no {what}"),
            }
        };
        let w = weight(1, "W")?;
        let r = weight(2, "R")?;
        let g = cell.gates();
        if r.shape.len() != 3
            || r.shape[0] != dirs
            || r.shape[2] == 0
            || r.shape[1] != g * r.shape[2]
        {
            bail!("R has shape {:?}; expected [{dirs}, {g}·H, H]", r.shape);
        }
        let hidden = r.shape[2];
        if attr(node, "hidden_size").is_some_and(|a| a.i as usize != hidden) {
            bail!(
                "hidden_size {} but R has shape {:?}",
                attr_i(node, "hidden_size", 0),
                r.shape
            );
        }
        if w.shape.len() != 3 || w.shape[0] != dirs || w.shape[1] != g * hidden || w.shape[2] == 0 {
            bail!(
                "W has shape {:?}; expected [{dirs}, {}, I]",
                w.shape,
                g * hidden
            );
        }
        let input_size = w.shape[2];
        if let Some(n) = self.size(f_ax) {
            if n != input_size {
                bail!("W takes {input_size} inputs but X has {n} features");
            }
        }
        let b = match inputs.get(3) {
            None | Some(Val::Absent) => None,
            Some(Val::Const(a)) => {
                if a.shape != [dirs, 2 * g * hidden] {
                    bail!(
                        "B has shape {:?}; expected [{dirs}, {}]",
                        a.shape,
                        2 * g * hidden
                    );
                }
                Some(a.floats())
            }
            Some(v) => bail!("its B is {}, not a constant", describe_val(v)),
        };
        if !matches!(inputs.get(4), None | Some(Val::Absent)) {
            bail!("sequence_lens (per-sequence lengths) is not supported");
        }
        for (i, name) in [(5, "initial_h"), (6, "initial_c")] {
            match inputs.get(i) {
                None | Some(Val::Absent) | Some(Val::Zeros) => {}
                Some(Val::Const(a)) if a.is_zero() => {}
                Some(v) => bail!(
                    "its {name} is {}; only a zero initial state is supported",
                    describe_val(v)
                ),
            }
        }
        if !matches!(inputs.get(7), None | Some(Val::Absent)) {
            bail!("peephole weights P are not supported");
        }
        self.layers.push(Layer {
            cell,
            node: if node.name.is_empty() {
                format!("#{index}")
            } else {
                node.name.clone()
            },
            dirs,
            hidden,
            input: input_size,
            w: w.floats(),
            r: r.floats(),
            b,
        });

        self.sizes.insert(f_ax.id, Some(input_size));
        let t = Axis {
            id: t_ax.id,
            role: Role::Time,
        };
        let b = Axis {
            id: b_ax.id,
            role: Role::Batch,
        };
        let dir = self.axis(Role::Direction, Some(dirs));
        let feat = self.axis(Role::Feature, Some(hidden));
        let y_axes = if layout == 0 {
            vec![t, dir, b, feat]
        } else {
            vec![b, t, dir, feat]
        };
        let yh_axes = if layout == 0 {
            vec![dir, b, feat]
        } else {
            vec![b, dir, feat]
        };
        let mut out = vec![
            Val::Signal(Signal {
                axes: y_axes,
                stage: Stage::Layer(k),
                last_only: false,
            }),
            Val::Signal(Signal {
                axes: yh_axes,
                stage: Stage::Layer(k),
                last_only: true,
            }),
        ];
        if op == "LSTM" {
            out.push(Val::Opaque(format!(
                "the cell state Y_c of {}",
                describe(node, index)
            )));
        }
        Ok(out)
    }

    // -- the result ------------------------------------------------------------------------

    fn tensor_map(self) -> Result<TensorMap> {
        let mut map = TensorMap::default();
        let cell = self.layers[0].cell;
        map.metadata
            .insert(meta_keys::CELL.to_string(), cell.name().to_string());
        if let Cell::Rnn(act) = cell {
            map.metadata
                .insert(meta_keys::NONLINEARITY.to_string(), act.to_string());
        }
        for (k, l) in self.layers.iter().enumerate() {
            let g = cell.gates();
            let gh = g * l.hidden;
            for d in 0..l.dirs {
                let suffix = if d == 0 { "" } else { "_reverse" };
                let w = &l.w[d * gh * l.input..(d + 1) * gh * l.input];
                let r = &l.r[d * gh * l.hidden..(d + 1) * gh * l.hidden];
                map.insert(
                    format!("rnn.weight_ih_l{k}{suffix}"),
                    Tensor::f32(vec![gh, l.input], reorder(cell, w, l.hidden, l.input)),
                );
                map.insert(
                    format!("rnn.weight_hh_l{k}{suffix}"),
                    Tensor::f32(vec![gh, l.hidden], reorder(cell, r, l.hidden, l.hidden)),
                );
                if let Some(b) = &l.b {
                    let b = &b[d * 2 * gh..(d + 1) * 2 * gh];
                    map.insert(
                        format!("rnn.bias_ih_l{k}{suffix}"),
                        Tensor::f32(vec![gh], reorder(cell, &b[..gh], l.hidden, 1)),
                    );
                    map.insert(
                        format!("rnn.bias_hh_l{k}{suffix}"),
                        Tensor::f32(vec![gh], reorder(cell, &b[gh..], l.hidden, 1)),
                    );
                }
            }
        }
        if let Some(h) = self.head {
            map.insert(
                "head.weight",
                Tensor::f32(vec![h.outputs, h.inputs], h.weight),
            );
            if let Some(b) = h.bias {
                map.insert("head.bias", Tensor::f32(vec![h.outputs], b));
            }
        }
        Ok(map)
    }
}

fn describe_cell(c: Cell) -> String {
    match c {
        Cell::Rnn(a) => format!("RNN ({a})"),
        c => c.name().to_uppercase(),
    }
}

/// Reorders the gate blocks (`hidden` rows of `cols` each) from ONNX to PyTorch order.
fn reorder(cell: Cell, m: &[f32], hidden: usize, cols: usize) -> Vec<f32> {
    let block = hidden * cols;
    cell.onnx_blocks()
        .iter()
        .flat_map(|&b| m[b * block..(b + 1) * block].iter().copied())
        .collect()
}

/// A bias for `c` outputs: `[c]`, any shape with `c` elements, or a scalar broadcast.
fn broadcast_bias(a: &Arr, c: usize) -> Result<Vec<f32>> {
    let v = a.floats();
    match v.len() {
        n if n == c => Ok(v),
        1 => Ok(vec![v[0]; c]),
        _ => bail!("the head's bias has shape {:?}; expected [{c}]", a.shape),
    }
}

/// Integer values of a constant or a shape vector whose entries are all constants.
fn const_ints(v: &Val) -> Option<Vec<i64>> {
    match v {
        Val::Const(a) => a.ints(),
        Val::Shape { dims, .. } => dims
            .iter()
            .map(|d| d.axes.is_empty().then_some(d.k))
            .collect(),
        _ => None,
    }
}

/// A 1-D integer vector as shape entries.
fn shape_dims(v: &Val) -> Option<Vec<Dim>> {
    match v {
        Val::Shape { dims, .. } => Some(dims.clone()),
        Val::Const(a) if a.shape.len() <= 1 => a
            .ints()
            .map(|v| v.into_iter().map(|k| Dim { k, axes: vec![] }).collect()),
        _ => None,
    }
}

/// Elementwise arithmetic on shape vectors (what exporters compute target shapes with).
fn shape_arith(op: &str, inputs: &[Val]) -> Val {
    let (Some(a), Some(b)) = (
        inputs.first().and_then(shape_dims),
        inputs.get(1).and_then(shape_dims),
    ) else {
        return Val::Opaque(format!("a {op} of non-shape values"));
    };
    let is_scalar = |v: &Val| match v {
        Val::Shape { scalar, .. } => *scalar,
        Val::Const(c) => c.shape.is_empty(),
        _ => false,
    };
    let scalar = inputs.iter().take(2).all(is_scalar);
    let n = a.len().max(b.len());
    let pick = |v: &Vec<Dim>, i: usize| v.get(if v.len() == 1 { 0 } else { i }).cloned();
    let mut dims = Vec::with_capacity(n);
    for i in 0..n {
        let (Some(x), Some(y)) = (pick(&a, i), pick(&b, i)) else {
            return Val::Opaque(format!("a {op} of mismatched shapes"));
        };
        let d = match op {
            "Mul" => Dim {
                k: x.k.saturating_mul(y.k),
                axes: [x.axes, y.axes].concat(),
            },
            _ if !x.axes.is_empty() || !y.axes.is_empty() => {
                return Val::Opaque(format!("a {op} of dynamic sizes"))
            }
            "Add" => Dim {
                k: x.k.saturating_add(y.k),
                axes: vec![],
            },
            "Sub" => Dim {
                k: x.k.saturating_sub(y.k),
                axes: vec![],
            },
            _ if y.k != 0 => Dim {
                k: x.k.div_euclid(y.k),
                axes: vec![],
            },
            _ => return Val::Opaque(format!("a {op} by zero")),
        };
        dims.push(d);
    }
    Val::Shape { dims, scalar }
}

/// A short description of a non-signal value, for messages.
fn describe_val(v: &Val) -> String {
    match v {
        Val::Signal(_) => "the signal".into(),
        Val::Const(a) => format!("a constant of shape {:?}", a.shape),
        Val::Shape { .. } => "a computed shape".into(),
        Val::Zeros => "zeros".into(),
        Val::Opaque(what) => what.clone(),
        Val::Absent => "absent".into(),
    }
}

/// Transposes a constant tensor.
fn transpose_arr(a: &Arr, perm: &[usize]) -> Arr {
    let rank = a.shape.len();
    let shape: Vec<usize> = perm.iter().map(|&p| a.shape[p]).collect();
    let mut strides = vec![1usize; rank];
    for i in (0..rank.saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * a.shape[i + 1];
    }
    let n = a.len();
    let mut src = Vec::with_capacity(n);
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        src.push(
            idx.iter()
                .zip(perm)
                .map(|(&i, &p)| i * strides[p])
                .sum::<usize>(),
        );
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    let data = match &a.data {
        ArrData::F(v) => ArrData::F(src.iter().map(|&i| v[i]).collect()),
        ArrData::I(v) => ArrData::I(src.iter().map(|&i| v[i]).collect()),
    };
    Arr { shape, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lstm_and_gru_gates_are_reordered_to_pytorch() {
        // Blocks of one row each, valued by their ONNX block index.
        let m = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(reorder(Cell::Lstm, &m, 1, 1), vec![0.0, 2.0, 3.0, 1.0]);
        assert_eq!(reorder(Cell::Gru, &m[..3], 1, 1), vec![1.0, 0.0, 2.0]);
    }

    #[test]
    fn constant_transpose_moves_values() {
        let a = Arr {
            shape: vec![2, 3],
            data: ArrData::I(vec![0, 1, 2, 3, 4, 5]),
        };
        let t = transpose_arr(&a, &[1, 0]);
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.data, ArrData::I(vec![0, 3, 1, 4, 2, 5]));
    }

    #[test]
    fn sniffing_wants_a_small_ir_version_first() {
        assert!(looks_like_onnx(b"\x08\x09\x12"));
        assert!(!looks_like_onnx(b"\x08\x00"));
        assert!(!looks_like_onnx(b"\x12\x07pytorch"));
    }

    // -- small graphs built here ---------------------------------------------------------

    use crate::import::onnx_proto::{
        TensorShapeDimension, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
    };

    fn tensor(name: &str, dims: &[usize], values: Vec<f32>) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: 1,
            float_data: values,
            ..Default::default()
        }
    }

    /// Deterministic, distinct values.
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7 + seed * 13) % 23) as f32 - 11.0) / 20.0)
            .collect()
    }

    fn int_attr(name: &str, i: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            i,
            r#type: 2,
            ..Default::default()
        }
    }

    fn strings_attr(name: &str, v: &[&str]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
            r#type: 8,
            ..Default::default()
        }
    }

    fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type: 1,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|d| TensorShapeDimension {
                                dim_value: *d,
                                dim_param: d.is_none().then(|| "n".to_string()),
                            })
                            .collect(),
                    }),
                }),
            }),
        }
    }

    /// A one-layer LSTM (H = 2, I = 3) reading `[T, B, I]`, or `[B, T, I]` with `layout=1`,
    /// followed by a Gemm head on its `Y_h`; `edit` changes the graph before it is encoded.
    fn lstm_model(layout: i64, edit: impl FnOnce(&mut GraphProto)) -> Vec<u8> {
        let (h, i) = (2, 3);
        let mut lstm = node("LSTM", "lstm0", &["x", "W", "R", "B"], &["y", "y_h", "y_c"]);
        lstm.attribute.push(int_attr("hidden_size", h as i64));
        lstm.attribute.push(int_attr("layout", layout));
        let squeeze = node("Squeeze", "sq", &["y_h", "axis"], &["last"]);
        // layout 1: Y_h is [B, dirs, H].
        let axis = if layout == 0 { 0 } else { 1 };
        let mut gemm = node("Gemm", "head", &["last", "Wh", "Bh"], &["out"]);
        gemm.attribute.push(int_attr("transB", 1));
        let mut graph = GraphProto {
            name: "g".into(),
            node: vec![lstm, squeeze, gemm],
            initializer: vec![
                tensor("W", &[1, 4 * h, i], values(4 * h * i, 1)),
                tensor("R", &[1, 4 * h, h], values(4 * h * h, 2)),
                tensor("B", &[1, 8 * h], values(8 * h, 3)),
                tensor("Wh", &[2, h], values(2 * h, 4)),
                tensor("Bh", &[2], values(2, 5)),
                TensorProto {
                    name: "axis".into(),
                    dims: vec![1],
                    data_type: 7,
                    int64_data: vec![axis],
                    ..Default::default()
                },
            ],
            input: vec![value_info("x", &[None, Some(1), Some(i as i64)])],
            output: vec![value_info("out", &[Some(1), Some(2)])],
        };
        edit(&mut graph);
        ModelProto {
            ir_version: 8,
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn error_of(bytes: &[u8]) -> String {
        format!("{:#}", read(bytes, None).unwrap_err())
    }

    #[test]
    fn batch_first_layout_gives_the_same_weights() {
        let a = read(&lstm_model(0, |_| {}), None).unwrap();
        let b = read(&lstm_model(1, |_| {}), None).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("rnn.weight_ih_l0").unwrap().shape, vec![8, 3]);
        assert_eq!(a.get("head.weight").unwrap().shape, vec![2, 2]);
        assert_eq!(a.metadata[meta_keys::CELL], "lstm");
    }

    #[test]
    fn lstm_options_the_cells_do_not_have_are_refused() {
        let with_attr = |a: AttributeProto| lstm_model(0, move |g| g.node[0].attribute.push(a));
        let clip = AttributeProto {
            name: "clip".into(),
            f: 3.0,
            r#type: 1,
            ..Default::default()
        };
        for (bytes, needle) in [
            (with_attr(clip), "`clip`"),
            (with_attr(int_attr("input_forget", 1)), "input_forget=1"),
            (
                with_attr(AttributeProto {
                    name: "direction".into(),
                    s: b"reverse".to_vec(),
                    r#type: 3,
                    ..Default::default()
                }),
                "direction `reverse`",
            ),
            (
                with_attr(strings_attr("activations", &["Sigmoid", "Relu", "Tanh"])),
                "only the defaults",
            ),
            (
                lstm_model(0, |g| {
                    g.node[0].input = ["x", "W", "R", "B", "", "", "", "P"]
                        .map(String::from)
                        .to_vec();
                    g.initializer.push(tensor("P", &[1, 6], vec![0.5; 6]));
                }),
                "peephole",
            ),
            (
                lstm_model(0, |g| {
                    g.node[0].input = ["x", "W", "R", "B", "lens"].map(String::from).to_vec();
                    g.initializer.push(TensorProto {
                        name: "lens".into(),
                        dims: vec![1],
                        data_type: 6,
                        int32_data: vec![4],
                        ..Default::default()
                    });
                }),
                "sequence_lens",
            ),
            (
                lstm_model(0, |g| {
                    g.node[0].input = ["x", "W", "R", "B", "", "h0"].map(String::from).to_vec();
                    g.initializer.push(tensor("h0", &[1, 1, 2], vec![0.1, 0.0]));
                }),
                "only a zero initial state",
            ),
        ] {
            let e = error_of(&bytes);
            assert!(e.contains("`LSTM` node `lstm0`"), "{e}");
            assert!(e.contains(needle), "{needle}: {e}");
        }
        // A zero initial state is fine.
        let zero = lstm_model(0, |g| {
            g.node[0].input = ["x", "W", "R", "B", "", "h0", "h0"]
                .map(String::from)
                .to_vec();
            g.initializer.push(tensor("h0", &[1, 1, 2], vec![0.0, 0.0]));
        });
        assert!(read(&zero, None).is_ok());
    }

    #[test]
    fn weights_and_operators_that_cannot_be_followed_are_named() {
        // W computed by an operator the reader does not know.
        let e = error_of(&lstm_model(0, |g| {
            g.initializer.retain(|t| t.name != "W");
            g.node.insert(0, node("RandomNormal", "rand", &[], &["W"]));
        }));
        assert!(
            e.contains("its W is the output of `RandomNormal` node `rand`"),
            "{e}"
        );
        // An operator outside the standard domain on the signal's path.
        let e = error_of(&lstm_model(0, |g| {
            let mut custom = node("Scale", "scale", &["out"], &["scaled"]);
            custom.domain = "com.example".into();
            g.node.push(custom);
            g.output[0].name = "scaled".into();
        }));
        assert!(e.contains("`com.example.Scale`"), "{e}");
        // Arithmetic on the signal that is not the head's bias.
        let e = error_of(&lstm_model(0, |g| {
            g.node
                .insert(0, node("Mul", "scale_in", &["x0", "Bh"], &["x"]));
            g.input[0].name = "x0".into();
        }));
        assert!(e.contains("`Mul` node `scale_in`"), "{e}");
        assert!(e.contains("the input"), "{e}");
        // Two graph inputs (an initial state fed from outside).
        let e = error_of(&lstm_model(0, |g| {
            g.input.push(value_info("h0", &[Some(1), Some(1), Some(2)]));
        }));
        assert!(e.contains("2 inputs (`x`, `h0`)"), "{e}");
    }

    #[test]
    fn external_data_needs_a_directory_and_stays_inside_it() {
        let external = |location: &str| {
            let location = location.to_string();
            lstm_model(0, move |g| {
                let w = g.initializer.iter_mut().find(|t| t.name == "W").unwrap();
                w.float_data.clear();
                w.data_location = 1;
                w.external_data = vec![crate::import::onnx_proto::StringStringEntryProto {
                    key: "location".into(),
                    value: location,
                }];
            })
        };
        let e = error_of(&external("w.bin"));
        assert!(e.contains("external file `w.bin`"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../w.bin", "/etc/passwd"] {
            let e = format!("{:#}", read(&external(bad), Some(dir.path())).unwrap_err());
            assert!(e.contains("outside the model's directory"), "{e}");
        }
        let w: Vec<u8> = values(24, 1).iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.path().join("w.bin"), &w).unwrap();
        let from_file = read(&external("w.bin"), Some(dir.path())).unwrap();
        assert_eq!(from_file, read(&lstm_model(0, |_| {}), None).unwrap());
    }
}
