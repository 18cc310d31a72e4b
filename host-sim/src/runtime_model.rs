//! A model whose sizes are known only at run time, stepped by the same `tinyrnn` kernels the
//! firmware uses.
//!
//! [`RuntimeModel`] owns its weights in `tinyrnn`'s unit-major layout (converted from PyTorch's
//! gate-major layout here, once) and hands slice views ([`LayerWeights`]) to the core step
//! functions. There is no second implementation of the cell maths on the host.

use anyhow::{anyhow, bail, Result};
use tinyrnn::{
    DenseWeights, GruWeights, LayerWeights, LstmWeights, Numeric, RnnWeights, Schedule, F32,
};

use crate::model_file::{CellKind, FloatModel, Nonlinearity};

/// Conversions between real values and a numeric type's representation, for the host only.
pub trait HostNumeric: Schedule {
    /// Encodes one input value (with `frac` fractional bits for fixed point).
    fn encode_act(x: f32, frac: i8) -> Self::Act;
    /// Decodes an activation / hidden-state value.
    fn decode_act(a: Self::Act, frac: i8) -> f64;
    /// Decodes a head output.
    fn decode_pre(p: Self::Pre, frac: i8) -> f64;
    /// Raw integer bits of an activation (for bit-exact comparisons); `f32` bits for floats.
    fn act_bits(a: Self::Act) -> i64;
    /// Raw integer bits of a head output.
    fn pre_bits(p: Self::Pre) -> i64;
}

/// Implements [`HostNumeric`] for a numeric type whose values are plain `f32`.
#[macro_export]
macro_rules! float_host_numeric {
    ($t:ty $(, $param:ident : $bound:path)?) => {
        impl$(<$param: $bound>)? $crate::runtime_model::HostNumeric for $t {
            fn encode_act(x: f32, _: i8) -> f32 {
                x
            }
            fn decode_act(a: f32, _: i8) -> f64 {
                a as f64
            }
            fn decode_pre(p: f32, _: i8) -> f64 {
                p as f64
            }
            fn act_bits(a: f32) -> i64 {
                a.to_bits() as i64
            }
            fn pre_bits(p: f32) -> i64 {
                p.to_bits() as i64
            }
        }
    };
}

float_host_numeric!(tinyrnn::numeric::float::Float<A>, A: tinyrnn::activation::float::FloatActivation);

/// One recurrent layer's storage in unit-major layout.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStore<N: Numeric> {
    /// Cell kind.
    pub kind: CellKind,
    /// Input features.
    pub input_size: usize,
    /// Hidden units.
    pub hidden_size: usize,
    /// `[H][G][I]`.
    pub w_ih: Vec<N::Weight>,
    /// `[H][G][H]`.
    pub w_hh: Vec<N::Weight>,
    /// `[H][G]`, folded (`b_ih + b_hh`; GRU n gate: `b_in`).
    pub bias: Vec<N::Bias>,
    /// GRU only: `b_hn`, `[H]`.
    pub bias_hn: Vec<N::Bias>,
    /// Row scales of `w_ih`, `[H][G]`.
    pub scale_ih: Vec<N::RowScale>,
    /// Row scales of `w_hh`, `[H][G]`.
    pub scale_hh: Vec<N::RowScale>,
    /// The layer's formats.
    pub format: N::Format,
}

impl<N: Numeric> LayerStore<N> {
    /// The slice view for the core kernels (validates every length).
    pub fn weights(&self) -> Result<LayerWeights<'_, N>, tinyrnn::ShapeError> {
        let (i, h) = (self.input_size, self.hidden_size);
        Ok(match self.kind {
            CellKind::Rnn(n) => LayerWeights::Rnn(RnnWeights::new(
                i,
                h,
                match n {
                    Nonlinearity::Tanh => tinyrnn::Nonlinearity::Tanh,
                    Nonlinearity::Relu => tinyrnn::Nonlinearity::Relu,
                },
                &self.w_ih,
                &self.w_hh,
                &self.bias,
                &self.scale_ih,
                &self.scale_hh,
                self.format,
            )?),
            CellKind::Lstm => LayerWeights::Lstm(LstmWeights::new(
                i,
                h,
                &self.w_ih,
                &self.w_hh,
                &self.bias,
                &self.scale_ih,
                &self.scale_hh,
                self.format,
            )?),
            CellKind::Gru => LayerWeights::Gru(GruWeights::new(
                i,
                h,
                &self.w_ih,
                &self.w_hh,
                &self.bias,
                &self.bias_hn,
                &self.scale_ih,
                &self.scale_hh,
                self.format,
            )?),
        })
    }
}

/// The dense head's storage (PyTorch layout `[O][I]`).
#[derive(Clone, Debug, PartialEq)]
pub struct HeadStore<N: Numeric> {
    /// Inputs.
    pub input_size: usize,
    /// Outputs.
    pub output_size: usize,
    /// `[O][I]`.
    pub weight: Vec<N::Weight>,
    /// `[O]`.
    pub bias: Vec<N::Bias>,
    /// `[O]`.
    pub scale: Vec<N::RowScale>,
    /// Formats (`x_frac` = last hidden format, `pre_frac` = output format).
    pub format: N::Format,
}

impl<N: Numeric> HeadStore<N> {
    /// The slice view for the core kernel.
    pub fn weights(&self) -> Result<DenseWeights<'_, N>, tinyrnn::ShapeError> {
        DenseWeights::new(
            self.input_size,
            self.output_size,
            &self.weight,
            &self.bias,
            &self.scale,
            self.format,
        )
    }
}

/// A runnable model: recurrent layers, optional head, input normalisation.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeModel<N: Numeric> {
    /// Layers, input first.
    pub layers: Vec<LayerStore<N>>,
    /// Optional head.
    pub head: Option<HeadStore<N>>,
    /// Fractional bits of the model input (fixed point; 0 for floats).
    pub input_frac: i8,
    /// Fractional bits of the outputs: head outputs, or the last hidden state.
    pub output_frac: i8,
    /// Per-channel `(mean, std)` applied to raw inputs before encoding.
    pub normalization: Option<(Vec<f32>, Vec<f32>)>,
}

/// Per-layer state buffers of a [`RuntimeModel`].
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeState<N: Numeric> {
    /// Per layer: two hidden buffers of `H` each (current, next), flipped after every step.
    hidden: Vec<[Vec<N::Act>; 2]>,
    current: Vec<usize>,
    cell: Vec<Vec<N::Cell>>,
    input: Vec<N::Act>,
    output: Vec<N::Pre>,
}

/// Reorders PyTorch gate-major rows (`row = g*H + j`) into unit-major rows (`row = j*G + g`).
pub fn unit_major<T: Copy>(gate_major: &[T], gates: usize, hidden: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(gate_major.len());
    for j in 0..hidden {
        for g in 0..gates {
            let row = g * hidden + j;
            out.extend_from_slice(&gate_major[row * cols..(row + 1) * cols]);
        }
    }
    out
}

/// Folded biases in unit-major order `[H][G]` plus the GRU's separate `b_hn`, as `f32`.
pub fn folded_biases(
    kind: CellKind,
    hidden: usize,
    b_ih: Option<&[f32]>,
    b_hh: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let gates = kind.gates();
    let zeros = vec![0.0; gates * hidden];
    let (b_ih, b_hh) = (b_ih.unwrap_or(&zeros), b_hh.unwrap_or(&zeros));
    let mut bias = Vec::with_capacity(gates * hidden);
    let mut bias_hn = Vec::new();
    for j in 0..hidden {
        for g in 0..gates {
            let row = g * hidden + j;
            let is_gru_n = kind == CellKind::Gru && g == 2;
            bias.push(if is_gru_n {
                b_ih[row]
            } else {
                b_ih[row] + b_hh[row]
            });
        }
        if kind == CellKind::Gru {
            bias_hn.push(b_hh[2 * hidden + j]);
        }
    }
    (bias, bias_hn)
}

impl RuntimeModel<F32> {
    /// Builds the `f32` runtime model from a PyTorch-layout model.
    pub fn from_float(model: &FloatModel) -> Result<Self> {
        Self::from_float_with(model, |_| ())
    }
}

impl<N: HostNumeric<Weight = f32, Bias = f32, RowScale = ()>> RuntimeModel<N> {
    /// Builds a float-weighted runtime model (any `f32`-like numeric type) from a PyTorch-layout
    /// model; `format(k)` gives layer `k`'s format (`k == layers` for the head).
    pub fn from_float_with(
        model: &FloatModel,
        format: impl Fn(usize) -> N::Format,
    ) -> Result<Self> {
        let gates = model.kind.gates();
        let layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let (bias, bias_hn) = folded_biases(
                    model.kind,
                    l.hidden_size,
                    l.b_ih.as_deref(),
                    l.b_hh.as_deref(),
                );
                let rows = gates * l.hidden_size;
                LayerStore {
                    kind: model.kind,
                    input_size: l.input_size,
                    hidden_size: l.hidden_size,
                    w_ih: unit_major(&l.w_ih, gates, l.hidden_size, l.input_size),
                    w_hh: unit_major(&l.w_hh, gates, l.hidden_size, l.hidden_size),
                    bias,
                    bias_hn,
                    scale_ih: vec![(); rows],
                    scale_hh: vec![(); rows],
                    format: format(k),
                }
            })
            .collect();
        let head = model.head.as_ref().map(|h| HeadStore {
            input_size: h.input_size,
            output_size: h.output_size,
            weight: h.weight.clone(),
            bias: h.bias.clone().unwrap_or_else(|| vec![0.0; h.output_size]),
            scale: vec![(); h.output_size],
            format: format(model.layers.len()),
        });
        if let Some(n) = &model.meta.normalization {
            // A file loader has checked it; a model built in memory gets the same ranges.
            crate::model_file::check_normalization(n, model.input_size())?;
        }
        let normalization = model
            .meta
            .normalization
            .as_ref()
            .map(|n| (n.mean.clone(), n.std.clone()));
        let m = RuntimeModel {
            layers,
            head,
            input_frac: 0,
            output_frac: 0,
            normalization,
        };
        m.validate()?;
        Ok(m)
    }
}

impl<N: HostNumeric> RuntimeModel<N> {
    /// Checks every layer's shapes and that the layers chain.
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() {
            bail!("the model has no recurrent layer");
        }
        for (k, l) in self.layers.iter().enumerate() {
            l.weights().map_err(|e| anyhow!("layer {k}: {e}"))?;
            if k > 0 && l.input_size != self.layers[k - 1].hidden_size {
                bail!(
                    "layer {k} expects {} inputs but layer {} has {} hidden units",
                    l.input_size,
                    k - 1,
                    self.layers[k - 1].hidden_size
                );
            }
        }
        if let Some(h) = &self.head {
            h.weights().map_err(|e| anyhow!("head: {e}"))?;
            if h.input_size != self.hidden_size() {
                bail!(
                    "the head expects {} inputs but the last layer has {} hidden units",
                    h.input_size,
                    self.hidden_size()
                );
            }
        }
        Ok(())
    }

    /// Input features per step.
    pub fn input_size(&self) -> usize {
        self.layers.first().map_or(0, |l| l.input_size)
    }

    /// Hidden units of the last layer.
    pub fn hidden_size(&self) -> usize {
        self.layers.last().map_or(0, |l| l.hidden_size)
    }

    /// Values per step: head outputs or the last hidden state.
    pub fn output_size(&self) -> usize {
        self.head
            .as_ref()
            .map_or(self.hidden_size(), |h| h.output_size)
    }

    /// A zero state.
    pub fn new_state(&self) -> RuntimeState<N> {
        RuntimeState {
            hidden: self
                .layers
                .iter()
                .map(|l| {
                    [
                        vec![N::Act::default(); l.hidden_size],
                        vec![N::Act::default(); l.hidden_size],
                    ]
                })
                .collect(),
            current: vec![0; self.layers.len()],
            cell: self
                .layers
                .iter()
                .map(|l| {
                    vec![
                        N::Cell::default();
                        if l.kind == CellKind::Lstm {
                            l.hidden_size
                        } else {
                            0
                        }
                    ]
                })
                .collect(),
            input: vec![N::Act::default(); self.input_size()],
            output: vec![N::Pre::default(); self.head.as_ref().map_or(0, |h| h.output_size)],
        }
    }

    /// Encodes a raw sample (normalisation, then the input format).
    pub fn encode_input(&self, raw: &[f32], out: &mut [N::Act]) {
        for (c, (o, &x)) in out.iter_mut().zip(raw).enumerate() {
            let x = match &self.normalization {
                Some((mean, std)) => (x - mean[c]) / std[c],
                None => x,
            };
            *o = N::encode_act(x, self.input_frac);
        }
    }

    /// Steps an already-encoded sample through every layer and the head.
    pub fn step_encoded<'s>(
        &self,
        state: &'s mut RuntimeState<N>,
        x: &[N::Act],
    ) -> StepOutput<'s, N> {
        let RuntimeState {
            hidden,
            current,
            cell,
            output,
            ..
        } = state;
        for (k, layer) in self.layers.iter().enumerate() {
            let Ok(weights) = layer.weights() else {
                continue;
            };
            let (below, here) = hidden.split_at_mut(k);
            let input: &[N::Act] = match below.last() {
                Some(prev) => &prev[current[k - 1]],
                None => x,
            };
            let [a, b] = &mut here[0];
            let (prev, next) = if current[k] == 0 { (&*a, b) } else { (&*b, a) };
            weights.step(input, prev, next, &mut cell[k]);
            current[k] ^= 1;
        }
        let last = hidden.len() - 1;
        let h = &hidden[last][current[last]];
        match &self.head {
            Some(head) => {
                if let Ok(w) = head.weights() {
                    w.forward(h, output);
                }
                StepOutput::Head(output)
            }
            None => StepOutput::Hidden(h),
        }
    }

    /// Runs a whole sequence of raw samples (rows of `channels` values) from the zero state and
    /// returns every step's outputs as real values.
    pub fn run_real(&self, rows: impl Iterator<Item = impl AsRef<[f32]>>) -> Vec<Vec<f64>> {
        let mut state = self.new_state();
        let mut x = vec![N::Act::default(); self.input_size()];
        let mut out = Vec::new();
        for row in rows {
            self.encode_input(row.as_ref(), &mut x);
            let y = self.step_encoded(&mut state, &x);
            out.push(y.to_real(self.output_frac));
        }
        out
    }
}

/// What one step produces.
pub enum StepOutput<'s, N: Numeric> {
    /// Head outputs.
    Head(&'s [N::Pre]),
    /// Last layer's hidden state (no head).
    Hidden(&'s [N::Act]),
}

impl<N: HostNumeric> StepOutput<'_, N> {
    /// As real values.
    pub fn to_real(&self, frac: i8) -> Vec<f64> {
        match self {
            StepOutput::Head(p) => p.iter().map(|&v| N::decode_pre(v, frac)).collect(),
            StepOutput::Hidden(a) => a.iter().map(|&v| N::decode_act(v, frac)).collect(),
        }
    }

    /// As raw integer bits (fixed point) or `f32` bit patterns.
    pub fn to_bits(&self) -> Vec<i64> {
        match self {
            StepOutput::Head(p) => p.iter().map(|&v| N::pre_bits(v)).collect(),
            StepOutput::Hidden(a) => a.iter().map(|&v| N::act_bits(v)).collect(),
        }
    }
}
