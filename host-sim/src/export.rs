//! Code generation: a model as a Rust source file for the firmware.
//!
//! The generated file holds the weights as one `static` (in flash), the model's type, a
//! `step` function over plain arrays and, for fixed-point models, a `step_fixed` function whose
//! inputs and outputs are `fixed` types (`FixedI16<U{frac}>`), so a caller cannot feed values
//! in the wrong format. With golden data it also holds the encoded input samples and the exact
//! outputs the host computed for them. The firmware `include!`s the file.
//!
//! Layers and head are written in `tinyrnn`'s unit-major layout; an `f32` model's input
//! normalisation is folded into layer 0 first, so the device takes raw sensor values. An `f32`
//! model is exported with accurate activations (`tinyrnn::F32`, format `f32`) or with the fast
//! `micromath` ones (`tinyrnn::F32Fast`, format `f32-fast`; `tinyrnn export --fast`).

use std::fmt::Write;

use anyhow::Result;

use crate::model_file::{CellKind, FloatModel, Nonlinearity};
use crate::quantize::{QuantKind, QuantModel};
use crate::runtime_model::{folded_biases, unit_major};

/// A model ready for export: `f32` (PyTorch layout) or quantised.
pub enum ExportModel<'a> {
    /// `f32` (`f32-fast` with `fast`).
    Float {
        /// The weights.
        model: &'a FloatModel,
        /// Fast (`micromath`) activations instead of the accurate ones.
        fast: bool,
    },
    /// `q15` / `w8a16`.
    Quant(&'a QuantModel),
}

/// Golden data: encoded inputs and expected outputs, one row per step.
pub struct Golden {
    /// Encoded inputs (`f32` bit patterns for float models, raw `i16` for fixed point).
    pub inputs: Vec<Vec<i64>>,
    /// Expected outputs (`f32` bit patterns, or raw integers).
    pub outputs: Vec<Vec<i64>>,
}

/// The format name of an `f32` model with fast activations (`ExportInfo::numeric`,
/// `PreparedCase::format`).
pub const F32_FAST: &str = "f32-fast";

/// Is `format` (an [`ExportInfo::numeric`]) one of the `f32` formats? Their outputs are `f32`,
/// compared within a tolerance, and need an FPU to be fast.
pub fn is_float_format(format: &str) -> bool {
    format == "f32" || format == F32_FAST
}

/// Sizes and types of an exported model.
pub struct ExportInfo {
    /// `f32`, `f32-fast`, `q15` or `w8a16`.
    pub numeric: &'static str,
    /// Cell kind.
    pub cell: CellKind,
    /// Inputs per step.
    pub inputs: usize,
    /// Outputs per step.
    pub outputs: usize,
    /// Hidden sizes.
    pub hidden: Vec<usize>,
    /// Whether a head exists.
    pub has_head: bool,
}

fn cell_type(kind: CellKind) -> &'static str {
    match kind {
        CellKind::Rnn(_) => "Rnn",
        CellKind::Lstm => "Lstm",
        CellKind::Gru => "Gru",
    }
}

/// Writes `v` as a nested array literal: rows of `cols`, grouped by `group` rows.
fn nested<T: Copy>(v: &[T], cols: usize, group: usize, fmt: &impl Fn(T) -> String) -> String {
    let rows: Vec<String> = v
        .chunks(cols.max(1))
        .map(|r| {
            format!(
                "[{}]",
                r.iter().map(|&x| fmt(x)).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    if group <= 1 {
        return format!("[{}]", rows.join(", "));
    }
    let groups: Vec<String> = rows
        .chunks(group)
        .map(|g| format!("[{}]", g.join(", ")))
        .collect();
    format!("[\n{}\n]", groups.join(",\n"))
}

fn flat<T: Copy>(v: &[T], fmt: &impl Fn(T) -> String) -> String {
    format!(
        "[{}]",
        v.iter().map(|&x| fmt(x)).collect::<Vec<_>>().join(", ")
    )
}

fn f32_lit(x: f32) -> String {
    // `{:?}` prints the shortest round-tripping form (`0.1`, `1e-5`), always a valid literal.
    format!("{x:?}")
}

fn qformat_lit(f: &tinyrnn::QFormat) -> String {
    format!(
        "tinyrnn::QFormat {{ x_frac: {}, h_frac: {}, pre_frac: {}, c_frac: {} }}",
        f.x_frac, f.h_frac, f.pre_frac, f.c_frac
    )
}

fn nonlinearity_lit(kind: CellKind) -> &'static str {
    match kind {
        CellKind::Rnn(Nonlinearity::Relu) => "tinyrnn::Nonlinearity::Relu, ",
        CellKind::Rnn(Nonlinearity::Tanh) => "tinyrnn::Nonlinearity::Tanh, ",
        _ => "",
    }
}

/// Per-layer constructor expression.
struct LayerCode {
    ty: String,
    expr: String,
}

/// One layer's constructor from unit-major data.
#[allow(clippy::too_many_arguments)]
fn layer_code(
    kind: CellKind,
    numeric: &str,
    input: usize,
    hidden: usize,
    w_ih: String,
    w_hh: String,
    bias: String,
    bias_hn: String,
    scale_ih: String,
    scale_hh: String,
    format: String,
) -> LayerCode {
    let ty = format!("tinyrnn::{}<{numeric}, {input}, {hidden}>", cell_type(kind));
    let args = match kind {
        CellKind::Gru => {
            format!("{w_ih},\n{w_hh},\n{bias},\n{bias_hn},\n{scale_ih},\n{scale_hh},\n{format}")
        }
        _ => format!(
            "{}{w_ih},\n{w_hh},\n{bias},\n{scale_ih},\n{scale_hh},\n{format}",
            nonlinearity_lit(kind)
        ),
    };
    // Expression position needs the turbofish: `Gru::<…>::from_parts`, not `Gru<…>::from_parts`.
    let path = format!(
        "tinyrnn::{}::<{numeric}, {input}, {hidden}>",
        cell_type(kind)
    );
    LayerCode {
        expr: format!("{path}::from_parts(\n{args})"),
        ty,
    }
}

/// Generates the Rust source of a model (and golden data).
pub fn generate(model: ExportModel<'_>, golden: Option<&Golden>) -> Result<(String, ExportInfo)> {
    let mut layers: Vec<LayerCode> = Vec::new();
    let (numeric, act_ty, kind, hidden, inputs, head_code, out_ty, input_frac, output_frac);
    match model {
        ExportModel::Float { model: m, fast } => {
            let m = m.fold_normalization();
            numeric = if fast {
                "tinyrnn::F32Fast"
            } else {
                "tinyrnn::F32"
            };
            act_ty = "f32";
            kind = m.kind;
            let g = kind.gates();
            for l in &m.layers {
                let (h, i) = (l.hidden_size, l.input_size);
                let (bias, bias_hn) = folded_biases(kind, h, l.b_ih.as_deref(), l.b_hh.as_deref());
                let grouped = g > 1;
                let (w_ih, w_hh, b, scale) = if grouped {
                    (
                        nested(&unit_major(&l.w_ih, g, h, i), i, g, &f32_lit),
                        nested(&unit_major(&l.w_hh, g, h, h), h, g, &f32_lit),
                        nested(&bias, g, 1, &f32_lit),
                        format!("[[(); {g}]; {h}]"),
                    )
                } else {
                    (
                        nested(&l.w_ih, i, 1, &f32_lit),
                        nested(&l.w_hh, h, 1, &f32_lit),
                        flat(&bias, &f32_lit),
                        format!("[(); {h}]"),
                    )
                };
                layers.push(layer_code(
                    kind,
                    numeric,
                    i,
                    h,
                    w_ih,
                    w_hh,
                    b,
                    flat(&bias_hn, &f32_lit),
                    scale.clone(),
                    scale,
                    "()".into(),
                ));
            }
            hidden = m.layers.iter().map(|l| l.hidden_size).collect::<Vec<_>>();
            inputs = m.input_size();
            head_code = m.head.as_ref().map(|hd| {
                let bias = hd.bias.clone().unwrap_or_else(|| vec![0.0; hd.output_size]);
                (
                    hd.input_size,
                    hd.output_size,
                    format!(
                        "tinyrnn::Dense::<{numeric}, {}, {}>::from_parts(\n{},\n{},\n[(); {}],\n())",
                        hd.input_size,
                        hd.output_size,
                        nested(&hd.weight, hd.input_size, 1, &f32_lit),
                        flat(&bias, &f32_lit),
                        hd.output_size
                    ),
                )
            });
            out_ty = "f32";
            input_frac = 0;
            output_frac = 0;
        }
        ExportModel::Quant(q) => {
            numeric = match q.kind {
                QuantKind::Q15 => "tinyrnn::Q15",
                QuantKind::W8a16 => "tinyrnn::W8A16",
            };
            act_ty = "i16";
            kind = q.cell;
            let g = kind.gates();
            let int = |x: i16| x.to_string();
            let i8s = |x: i8| x.to_string();
            let i32s = |x: i32| x.to_string();
            for l in &q.layers {
                let (h, i) = (l.hidden_size, l.input_size);
                let bias_um = unit_major(&l.bias, g, h, 1);
                let (w_ih, w_hh, b, s_ih, s_hh) = if g > 1 {
                    (
                        nested(&unit_major(&l.w_ih, g, h, i), i, g, &int),
                        nested(&unit_major(&l.w_hh, g, h, h), h, g, &int),
                        nested(&bias_um, g, 1, &i32s),
                        nested(&unit_major(&l.frac_ih, g, h, 1), g, 1, &i8s),
                        nested(&unit_major(&l.frac_hh, g, h, 1), g, 1, &i8s),
                    )
                } else {
                    (
                        nested(&l.w_ih, i, 1, &int),
                        nested(&l.w_hh, h, 1, &int),
                        flat(&l.bias, &i32s),
                        flat(&l.frac_ih, &i8s),
                        flat(&l.frac_hh, &i8s),
                    )
                };
                layers.push(layer_code(
                    kind,
                    numeric,
                    i,
                    h,
                    w_ih,
                    w_hh,
                    b,
                    flat(&l.bias_hn, &i32s),
                    s_ih,
                    s_hh,
                    qformat_lit(&l.format),
                ));
            }
            hidden = q.layers.iter().map(|l| l.hidden_size).collect::<Vec<_>>();
            inputs = q.layers.first().map_or(0, |l| l.input_size);
            head_code = q.head.as_ref().map(|hd| {
                (
                    hd.input_size,
                    hd.output_size,
                    format!(
                        "tinyrnn::Dense::<{numeric}, {}, {}>::from_parts(\n{},\n{},\n{},\n{})",
                        hd.input_size,
                        hd.output_size,
                        nested(&hd.weight, hd.input_size, 1, &int),
                        flat(&hd.bias, &i32s),
                        flat(&hd.frac, &i8s),
                        qformat_lit(&hd.format)
                    ),
                )
            });
            out_ty = if q.head.is_some() { "i32" } else { "i16" };
            input_frac = q.input_frac;
            output_frac = q.output_frac;
        }
    }

    // Body: nest stacks to the right: Stack<L0, Stack<L1, L2>>.
    let (mut body_ty, mut body_expr) = match layers.pop() {
        Some(l) => (l.ty, l.expr),
        None => anyhow::bail!("the model has no layers"),
    };
    while let Some(l) = layers.pop() {
        body_expr = format!(
            "tinyrnn::Stack::new::<{numeric}>(\n{},\n{body_expr})",
            l.expr
        );
        body_ty = format!("tinyrnn::Stack<{}, {body_ty}>", l.ty);
    }
    let last_hidden = *hidden.last().unwrap_or(&0);
    let outputs = head_code.as_ref().map_or(last_hidden, |h| h.1);
    let mut s = String::new();
    writeln!(s, "// @generated by `tinyrnn export` — do not edit.")?;
    writeln!(
        s,
        "// Cell: {}, layers: {}, hidden: {:?}, numeric: {numeric}.",
        kind.name(),
        hidden.len(),
        hidden
    )?;
    writeln!(s, "#[allow(unused_imports)]\nuse tinyrnn::Recurrent as _;")?;
    writeln!(
        s,
        "/// Numeric type of the model.\npub type Num = {numeric};"
    )?;
    writeln!(
        s,
        "/// Input values per step.\npub const INPUTS: usize = {inputs};"
    )?;
    writeln!(
        s,
        "/// Output values per step.\npub const OUTPUTS: usize = {outputs};"
    )?;
    writeln!(s, "/// Fractional bits of the input (fixed point; 0 for f32).\npub const INPUT_FRAC: i8 = {input_frac};")?;
    writeln!(s, "/// Fractional bits of the outputs (fixed point; 0 for f32).\npub const OUTPUT_FRAC: i8 = {output_frac};")?;
    writeln!(s, "/// Input element.\npub type Act = {act_ty};")?;
    writeln!(s, "/// Output element.\npub type Out = {out_ty};")?;
    writeln!(s, "/// The recurrent body.\npub type Body = {body_ty};")?;
    writeln!(
        s,
        "/// The caller-owned state.\npub type State = <Body as tinyrnn::Recurrent<Num>>::State;"
    )?;
    match &head_code {
        Some((hin, hout, expr)) => {
            writeln!(s, "/// The model: body and head.\npub type Model = tinyrnn::Model<Num, Body, {hin}, {hout}>;")?;
            writeln!(s, "/// The weights, in flash.\npub static MODEL: Model = tinyrnn::Model::new(\n{body_expr},\n{expr});")?;
            writeln!(s, "/// One step: consumes `x`, returns the head's outputs.\n#[inline]\npub fn step(state: &mut State, x: &[Act; INPUTS]) -> [Out; OUTPUTS] {{\n    MODEL.step(state, x)\n}}")?;
            writeln!(s, "/// One step without copies: the core's own `step`, which for a model with a head is\n/// [`step`].\n#[inline]\npub fn step_ref(state: &mut State, x: &[Act; INPUTS]) -> [Out; OUTPUTS] {{\n    step(state, x)\n}}")?;
        }
        None => {
            writeln!(s, "/// The model (no head).\npub type Model = Body;")?;
            writeln!(
                s,
                "/// The weights, in flash.\npub static MODEL: Model = {body_expr};"
            )?;
            writeln!(s, "/// One step: consumes `x`, returns the last layer's hidden state.\n#[inline]\npub fn step(state: &mut State, x: &[Act; INPUTS]) -> [Out; OUTPUTS] {{\n    let h = tinyrnn::Recurrent::<Num>::step(&MODEL, state, x);\n    let mut out = [Out::default(); OUTPUTS];\n    for (o, v) in out.iter_mut().zip(h) {{\n        *o = *v;\n    }}\n    out\n}}")?;
            writeln!(s, "/// One step without copies: the core's own `step`, returning the last layer's hidden\n/// state borrowed from `state`.\n#[inline]\npub fn step_ref<'s>(state: &'s mut State, x: &[Act; INPUTS]) -> &'s [Out] {{\n    tinyrnn::Recurrent::<Num>::step(&MODEL, state, x)\n}}")?;
        }
    }
    if act_ty == "i16" {
        let out_fixed = if out_ty == "i32" {
            "FixedI32"
        } else {
            "FixedI16"
        };
        writeln!(s, "/// Input sample element in its fixed-point format.\npub type Input = fixed::FixedI16<fixed::types::extra::U{input_frac}>;")?;
        writeln!(s, "/// Output element in its fixed-point format.\npub type Output = fixed::{out_fixed}<fixed::types::extra::U{output_frac}>;")?;
        writeln!(s, "/// One step with typed fixed-point values (no conversion cost: same bits).\npub fn step_fixed(state: &mut State, x: &[Input; INPUTS]) -> [Output; OUTPUTS] {{\n    let raw = x.map(|v| v.to_bits());\n    step(state, &raw).map(Output::from_bits)\n}}")?;
    }
    if let Some(g) = golden {
        let steps = g.inputs.len();
        let enc_in = |v: i64| {
            if act_ty == "f32" {
                format!("f32::from_bits({:#010x})", v as u32)
            } else {
                v.to_string()
            }
        };
        let enc_out = |v: i64| {
            if out_ty == "f32" {
                format!("f32::from_bits({:#010x})", v as u32)
            } else {
                v.to_string()
            }
        };
        let flat_in: Vec<i64> = g.inputs.iter().flatten().copied().collect();
        let flat_out: Vec<i64> = g.outputs.iter().flatten().copied().collect();
        writeln!(
            s,
            "/// Golden steps.\npub const GOLDEN_STEPS: usize = {steps};"
        )?;
        writeln!(s, "/// Golden input samples (encoded).\npub static GOLDEN_INPUT: [[Act; INPUTS]; GOLDEN_STEPS] = {};", nested(&flat_in, inputs, 1, &enc_in))?;
        writeln!(s, "/// Outputs the host computed for the golden inputs.\npub static GOLDEN_OUTPUT: [[Out; OUTPUTS]; GOLDEN_STEPS] = {};", nested(&flat_out, outputs, 1, &enc_out))?;
    }
    let info = ExportInfo {
        numeric: match numeric {
            "tinyrnn::F32" => "f32",
            "tinyrnn::F32Fast" => F32_FAST,
            "tinyrnn::Q15" => "q15",
            _ => "w8a16",
        },
        cell: kind,
        inputs,
        outputs,
        hidden,
        has_head: head_code.is_some(),
    };
    Ok((s, info))
}

/// Runs `model` over raw `rows` and records the encoded inputs and output bits.
pub fn golden_of<'r, N: crate::runtime_model::HostNumeric>(
    model: &crate::runtime_model::RuntimeModel<N>,
    rows: impl Iterator<Item = &'r [f32]>,
) -> Golden {
    let mut state = model.new_state();
    let mut x = vec![N::Act::default(); model.input_size()];
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    for row in rows {
        model.encode_input(row, &mut x);
        inputs.push(x.iter().map(|&a| N::act_bits(a)).collect());
        outputs.push(model.step_encoded(&mut state, &x).to_bits());
    }
    Golden { inputs, outputs }
}

/// A model file loaded for export: the source and the runtime model golden data comes from.
pub enum Exportable {
    /// `f32` (normalisation already folded).
    Float {
        /// The weights.
        model: FloatModel,
        /// Fast (`micromath`) activations, format `f32-fast`, instead of the accurate ones.
        fast: bool,
    },
    /// Fixed point.
    Quant(QuantModel),
}

impl Exportable {
    /// Loads any model file; `fast` selects the fast activations of an `f32` model and is an
    /// error for a quantised one (its activations are fixed-point tables).
    pub fn load(
        path: &std::path::Path,
        nonlinearity: Option<Nonlinearity>,
        fast: bool,
    ) -> Result<Exportable> {
        use anyhow::Context;
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
        let ctx = || path.display().to_string();
        if !crate::import::is_quantized(&bytes).with_context(ctx)? {
            let model = FloatModel::from_bytes_in(&bytes, path.parent(), nonlinearity)
                .with_context(ctx)?
                .fold_normalization();
            return Ok(Exportable::Float { model, fast });
        }
        let quant = QuantModel::from_bytes(&bytes).with_context(ctx)?;
        if fast {
            anyhow::bail!(
                "{}: --fast selects the fast activations of an f32 model, but this model is {} \
                 (fixed point)",
                path.display(),
                quant.kind.name()
            );
        }
        Ok(Exportable::Quant(quant))
    }

    /// Input features.
    pub fn input_size(&self) -> usize {
        match self {
            Exportable::Float { model, .. } => model.input_size(),
            Exportable::Quant(q) => q.layers.first().map_or(0, |l| l.input_size),
        }
    }

    /// Golden data for raw `rows`, computed exactly as the device will.
    pub fn golden<'r>(&self, rows: impl Iterator<Item = &'r [f32]>) -> Result<Golden> {
        use crate::runtime_model::RuntimeModel;
        Ok(match self {
            Exportable::Float { model, fast: false } => {
                golden_of(&RuntimeModel::<tinyrnn::F32>::from_float(model)?, rows)
            }
            Exportable::Float { model, fast: true } => golden_of(
                &RuntimeModel::<tinyrnn::F32Fast>::from_float_with(model, |_| ())?,
                rows,
            ),
            Exportable::Quant(q) => match q.to_runtime()? {
                crate::quantize::QuantRuntime::Q15(m) => golden_of(&m, rows),
                crate::quantize::QuantRuntime::W8a16(m) => golden_of(&m, rows),
            },
        })
    }

    /// Generates the Rust source.
    pub fn generate(&self, golden: Option<&Golden>) -> Result<(String, ExportInfo)> {
        match self {
            Exportable::Float { model, fast } => {
                generate(ExportModel::Float { model, fast: *fast }, golden)
            }
            Exportable::Quant(q) => generate(ExportModel::Quant(q), golden),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::any_model::AnyModel;

    /// A committed fixture file (`tests/fixtures/<path>`).
    fn fixture(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(path)
    }

    /// The LSTM fixture (with a head) and its input sequence.
    fn lstm_with_input() -> (PathBuf, crate::dataset::Series) {
        let dir = fixture("pytorch/lstm_1l_head");
        let input = crate::dataset::read_sequence_csv(&dir.join("input.csv")).expect("input");
        (dir.join("model.safetensors"), input)
    }

    #[test]
    fn fast_export_uses_the_fast_numeric_type() {
        let (model, _) = lstm_with_input();
        let fast = Exportable::load(&model, None, true).expect("f32 model");
        let (source, info) = fast.generate(None).expect("source");
        assert_eq!(info.numeric, F32_FAST);
        assert!(is_float_format(info.numeric));
        assert!(
            source.contains("pub type Num = tinyrnn::F32Fast;"),
            "{source}"
        );
        assert!(source.contains("pub type Out = f32;"), "{source}");
        assert!(
            source.contains("tinyrnn::Dense::<tinyrnn::F32Fast, "),
            "{source}"
        );
        // No layer or head left in the accurate type.
        assert!(!source.contains("tinyrnn::F32,"), "{source}");
        assert!(!source.contains("tinyrnn::F32>"), "{source}");
    }

    #[test]
    fn fast_golden_is_the_f32_fast_runtime_models_output() {
        let (model, input) = lstm_with_input();
        let golden = |fast: bool| {
            Exportable::load(&model, None, fast)
                .and_then(|m| m.golden(input.rows()))
                .expect("golden")
        };
        let (fast, accurate) = (golden(true), golden(false));
        let host_fast = AnyModel::load(&model, None, true).expect("model");
        assert!(matches!(host_fast, AnyModel::F32Fast(_)));
        assert_eq!(fast.outputs, host_fast.run_bits(&input));
        // Same (encoded) inputs; the activations change the outputs.
        assert_eq!(fast.inputs, accurate.inputs);
        assert_ne!(fast.outputs, accurate.outputs);
    }

    #[test]
    fn fast_on_a_quantised_file_is_a_one_line_error() {
        let path = fixture("golden/lstm_1l_head/q15.safetensors");
        assert!(Exportable::load(&path, None, false).is_ok());
        let Err(err) = Exportable::load(&path, None, true) else {
            panic!("--fast accepted on a q15 file");
        };
        let message = format!("{err:#}");
        assert!(!message.contains('\n'), "{message}");
        for needle in ["q15.safetensors", "--fast", "q15"] {
            assert!(message.contains(needle), "missing `{needle}` in: {message}");
        }
    }
}
