//! The references the topology tests share: each numeric type's test quantiser, and an `f64`
//! implementation of PyTorch's layers (layouts, gate-major rows, `_reverse` directions,
//! `proj_size`, `nn.Linear`, `nn.Sequential`), with their conversion into `tinyrnn`'s types.
// Each test binary uses a part of it.
#![allow(dead_code)]

use tinyrnn::activation::float::FloatActivation;
use tinyrnn::numeric::fixed_point::{Fixed, FixedWeight};
use tinyrnn::numeric::float::Float;
use tinyrnn::{
    CellKernel, Dense, Feedback, Gru, GruWeights, LayerWeights, Lstm, LstmProj, LstmProjWeights,
    LstmWeights, Nonlinearity, Projection, QFormat, Rnn, RnnWeights,
};
// ---------------------------------------------------------------------------------------------
// Test-only conversion of real values into each numeric type.
// ---------------------------------------------------------------------------------------------

pub const PRE_FRAC: i8 = 16;
pub const X_FRAC: i8 = 12;

/// How a test turns real weights and inputs into a numeric type's values and reads them back.
pub trait Quantise: Projection + Feedback {
    const NAME: &'static str;
    /// The formats of a layer (or head) whose input has `x_frac` and output `h_frac`.
    fn format(x_frac: i8, h_frac: i8) -> Self::Format;
    fn row_scale() -> Self::RowScale;
    fn weight(w: f64) -> Self::Weight;
    /// The real value `weight` stores for `w`.
    fn weight_value(w: f64) -> f64;
    fn bias(b: f64) -> Self::Bias;
    fn bias_value(b: f64) -> f64;
    fn act(x: f64, frac: i8) -> Self::Act;
    fn act_value(a: Self::Act, frac: i8) -> f64;
    /// A head output (at `PRE_FRAC`) as a real value.
    fn pre_value(p: Self::Pre) -> f64;
}

impl<A: FloatActivation> Quantise for Float<A> {
    const NAME: &'static str = "f32";
    fn format(_: i8, _: i8) {}
    fn row_scale() {}
    fn weight(w: f64) -> f32 {
        w as f32
    }
    fn weight_value(w: f64) -> f64 {
        w as f32 as f64
    }
    fn bias(b: f64) -> f32 {
        b as f32
    }
    fn bias_value(b: f64) -> f64 {
        b as f32 as f64
    }
    fn act(x: f64, _: i8) -> f32 {
        x as f32
    }
    fn act_value(a: f32, _: i8) -> f64 {
        a as f64
    }
    fn pre_value(p: f32) -> f64 {
        p as f64
    }
}

/// `round(v · 2^frac)`, saturated to `[lo, hi]`.
pub fn quantise(v: f64, frac: i8, lo: i64, hi: i64) -> i64 {
    ((v * 2f64.powi(frac as i32)).round() as i64).clamp(lo, hi)
}

/// Fractional bits of the fixed-point weights: 14 for `i16`, 6 for `i8`.
pub trait WeightFrac: FixedWeight + TryFrom<i64> {
    const FRAC: i8;
    const NAME: &'static str;
    fn lo() -> i64;
    fn hi() -> i64;
}
impl WeightFrac for i16 {
    const FRAC: i8 = 14;
    const NAME: &'static str = "q15";
    fn lo() -> i64 {
        i16::MIN as i64
    }
    fn hi() -> i64 {
        i16::MAX as i64
    }
}
impl WeightFrac for i8 {
    const FRAC: i8 = 6;
    const NAME: &'static str = "w8a16";
    fn lo() -> i64 {
        i8::MIN as i64
    }
    fn hi() -> i64 {
        i8::MAX as i64
    }
}

impl<W: WeightFrac> Quantise for Fixed<W> {
    const NAME: &'static str = W::NAME;
    fn format(x_frac: i8, h_frac: i8) -> QFormat {
        QFormat {
            x_frac,
            h_frac,
            pre_frac: PRE_FRAC,
            c_frac: 12,
        }
    }
    fn row_scale() -> i8 {
        W::FRAC
    }
    fn weight(w: f64) -> W {
        let q = quantise(w, W::FRAC, W::lo(), W::hi());
        W::try_from(q).unwrap_or_default()
    }
    fn weight_value(w: f64) -> f64 {
        quantise(w, W::FRAC, W::lo(), W::hi()) as f64 / 2f64.powi(W::FRAC as i32)
    }
    fn bias(b: f64) -> i32 {
        quantise(b, PRE_FRAC, i32::MIN as i64, i32::MAX as i64) as i32
    }
    fn bias_value(b: f64) -> f64 {
        Self::bias(b) as f64 / 2f64.powi(PRE_FRAC as i32)
    }
    fn act(x: f64, frac: i8) -> i16 {
        quantise(x, frac, i16::MIN as i64, i16::MAX as i64) as i16
    }
    fn act_value(a: i16, frac: i8) -> f64 {
        a as f64 / 2f64.powi(frac as i32)
    }
    fn pre_value(p: i32) -> f64 {
        p as f64 / 2f64.powi(PRE_FRAC as i32)
    }
}

/// SplitMix64: every run tests the same layers.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`, rounded to an `f32` so the float types see the exact values.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (lo + (hi - lo) * u) as f32 as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn samples(&mut self, n: usize, width: usize, scale: f64) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| (0..width).map(|_| self.uniform(-scale, scale)).collect())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The f64 reference: PyTorch's layouts and equations.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Lstm,
    Gru,
    Rnn,
}

impl Kind {
    pub fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru => 3,
            Kind::Rnn => 1,
        }
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

pub fn dot(w: &[f64], x: &[f64]) -> f64 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

/// One direction of a layer as PyTorch stores it: `weight_ih [G·H][I]`, `weight_hh [G·H][R]`,
/// `bias_ih`, `bias_hh [G·H]`, gate-major; with `proj_size = P > 0`, `weight_hr [P][H]` and
/// `R = P`, else `R = H`.
#[derive(Clone, Debug)]
pub struct Torch {
    pub kind: Kind,
    pub input: usize,
    pub hidden: usize,
    pub proj: usize,
    pub w_ih: Vec<f64>,
    pub w_hh: Vec<f64>,
    pub b_ih: Vec<f64>,
    pub b_hh: Vec<f64>,
    pub w_hr: Vec<f64>,
}

impl Torch {
    pub fn random(kind: Kind, input: usize, hidden: usize, proj: usize, rng: &mut Rng) -> Torch {
        // PyTorch's default init, U(-1/√H, 1/√H), for every tensor.
        let k = 1.0 / (hidden as f64).sqrt();
        let rows = kind.gates() * hidden;
        let mut draw = |n: usize| (0..n).map(|_| rng.uniform(-k, k)).collect::<Vec<_>>();
        let recurrent = if proj > 0 { proj } else { hidden };
        Torch {
            kind,
            input,
            hidden,
            proj,
            w_ih: draw(rows * input),
            w_hh: draw(rows * recurrent),
            b_ih: draw(rows),
            b_hh: draw(rows),
            w_hr: draw(proj * hidden),
        }
    }

    /// Values of `h` (the output and the recurrent input).
    pub fn out(&self) -> usize {
        if self.proj > 0 {
            self.proj
        } else {
            self.hidden
        }
    }

    /// One step from `h` (`out()` values) and `c` (`hidden`, LSTM only); returns `h'`.
    pub fn step(&self, x: &[f64], h: &[f64], c: &mut [f64]) -> Vec<f64> {
        let (i, r, n) = (self.input, self.out(), self.hidden);
        let parts = |g: usize, j: usize| {
            let row = g * n + j;
            (
                dot(&self.w_ih[row * i..(row + 1) * i], x) + self.b_ih[row],
                dot(&self.w_hh[row * r..(row + 1) * r], h) + self.b_hh[row],
            )
        };
        let pre = |g, j| {
            let (a, b) = parts(g, j);
            a + b
        };
        let units: Vec<f64> = (0..n)
            .map(|j| match self.kind {
                Kind::Lstm => {
                    let (ig, fg, gg, og) = (
                        sigmoid(pre(0, j)),
                        sigmoid(pre(1, j)),
                        pre(2, j).tanh(),
                        sigmoid(pre(3, j)),
                    );
                    c[j] = fg * c[j] + ig * gg;
                    og * c[j].tanh()
                }
                Kind::Gru => {
                    let (rg, zg) = (sigmoid(pre(0, j)), sigmoid(pre(1, j)));
                    let (nx, nh) = parts(2, j);
                    let cand = (nx + rg * nh).tanh();
                    (1.0 - zg) * cand + zg * h[j]
                }
                Kind::Rnn => pre(0, j).tanh(),
            })
            .collect();
        if self.proj == 0 {
            return units;
        }
        (0..self.proj)
            .map(|p| dot(&self.w_hr[p * n..(p + 1) * n], &units))
            .collect()
    }

    /// The layer `N` runs: every weight and (folded) bias replaced by its stored real value.
    pub fn as_stored<N: Quantise>(&self) -> Torch {
        let mut t = self.clone();
        for (row, (bi, bh)) in t.b_ih.iter_mut().zip(&mut t.b_hh).enumerate() {
            if self.kind == Kind::Gru && row / self.hidden == 2 {
                (*bi, *bh) = (N::bias_value(*bi), N::bias_value(*bh));
            } else {
                (*bi, *bh) = (N::bias_value(*bi + *bh), 0.0);
            }
        }
        for w in t.w_ih.iter_mut().chain(&mut t.w_hh).chain(&mut t.w_hr) {
            *w = N::weight_value(*w);
        }
        t
    }

    /// `[G·H][cols]` gate-major rows → `[H][G][cols]` unit-major.
    pub fn unit_major(&self, w: &[f64], cols: usize) -> Vec<f64> {
        let (gates, hidden) = (self.kind.gates(), self.hidden);
        let mut out = Vec::with_capacity(w.len());
        for j in 0..hidden {
            for g in 0..gates {
                let row = g * hidden + j;
                out.extend_from_slice(&w[row * cols..(row + 1) * cols]);
            }
        }
        out
    }

    /// The layer in `tinyrnn`'s layout for `N`, its input at `x_frac` and `h` at `h_frac`.
    pub fn store<N: Quantise>(&self, x_frac: i8, h_frac: i8) -> Stored<N> {
        let (gates, hidden) = (self.kind.gates(), self.hidden);
        let mut bias = Vec::new();
        let mut bias_hn = Vec::new();
        for j in 0..hidden {
            for g in 0..gates {
                let row = g * hidden + j;
                if self.kind == Kind::Gru && g == 2 {
                    bias.push(N::bias(self.b_ih[row]));
                    bias_hn.push(N::bias(self.b_hh[row]));
                } else {
                    bias.push(N::bias(self.b_ih[row] + self.b_hh[row]));
                }
            }
        }
        let weights = |w: &[f64]| w.iter().map(|&v| N::weight(v)).collect::<Vec<_>>();
        Stored {
            kind: self.kind,
            input: self.input,
            hidden,
            proj: self.proj,
            w_ih: weights(&self.unit_major(&self.w_ih, self.input)),
            w_hh: weights(&self.unit_major(&self.w_hh, self.out())),
            bias,
            bias_hn,
            scales: vec![N::row_scale(); gates * hidden],
            w_hr: weights(&self.w_hr),
            scale_hr: vec![N::row_scale(); self.proj],
            format: N::format(x_frac, h_frac),
        }
    }
}

/// PyTorch's bidirectional stack on one window, from the zero state: per layer the forward
/// direction in order, the `_reverse` one from the last step back, outputs `[f_t ; b_t]`.
pub fn bidirectional_f64(layers: &[[Torch; 2]], window: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut input = window.to_vec();
    for [f, b] in layers {
        let w = input.len();
        let mut out = vec![Vec::new(); w];
        let (mut h, mut c) = (vec![0.0; f.out()], vec![0.0; f.hidden]);
        for t in 0..w {
            h = f.step(&input[t], &h, &mut c);
            out[t] = h.clone();
        }
        let (mut h, mut c) = (vec![0.0; b.out()], vec![0.0; b.hidden]);
        for t in (0..w).rev() {
            h = b.step(&input[t], &h, &mut c);
            out[t].extend_from_slice(&h);
        }
        input = out;
    }
    input
}

/// `[f_{W-1} ; b_0]` of PyTorch's outputs: `cat(h_n[-2], h_n[-1])`.
pub fn final_f64(outputs: &[Vec<f64>]) -> Vec<f64> {
    let h = outputs[0].len() / 2;
    let mut v = outputs[outputs.len() - 1][..h].to_vec();
    v.extend_from_slice(&outputs[0][h..]);
    v
}

// ---------------------------------------------------------------------------------------------
// Layers in tinyrnn's layout: slice views and const-generic types.
// ---------------------------------------------------------------------------------------------

pub struct Stored<N: Quantise> {
    pub kind: Kind,
    pub input: usize,
    pub hidden: usize,
    pub proj: usize,
    pub w_ih: Vec<N::Weight>,
    pub w_hh: Vec<N::Weight>,
    pub bias: Vec<N::Bias>,
    pub bias_hn: Vec<N::Bias>,
    pub scales: Vec<N::RowScale>,
    pub w_hr: Vec<N::Weight>,
    pub scale_hr: Vec<N::RowScale>,
    pub format: N::Format,
}

/// What a host model holds per direction: a plain layer or a projected LSTM. The host defines
/// its own such enum; `CellKernel` is all the topologies ask of it.
#[derive(Clone, Copy, Debug)]
pub enum Layer<'a, N: Quantise> {
    Plain(LayerWeights<'a, N>),
    Proj(LstmProjWeights<'a, N>),
}

impl<N: Quantise> CellKernel<N> for Layer<'_, N> {
    fn input_size(&self) -> usize {
        match self {
            Layer::Plain(l) => CellKernel::<N>::input_size(l),
            Layer::Proj(l) => CellKernel::<N>::input_size(l),
        }
    }
    fn output_size(&self) -> usize {
        match self {
            Layer::Plain(l) => CellKernel::<N>::output_size(l),
            Layer::Proj(l) => CellKernel::<N>::output_size(l),
        }
    }
    fn cell_size(&self) -> usize {
        match self {
            Layer::Plain(l) => CellKernel::<N>::cell_size(l),
            Layer::Proj(l) => CellKernel::<N>::cell_size(l),
        }
    }
    fn scratch_size(&self) -> usize {
        match self {
            Layer::Plain(l) => CellKernel::<N>::scratch_size(l),
            Layer::Proj(l) => CellKernel::<N>::scratch_size(l),
        }
    }
    fn step_buffers(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        c: &mut [N::Cell],
        scratch: &mut [N::Act],
    ) {
        match self {
            Layer::Plain(l) => CellKernel::<N>::step_buffers(l, x, h_prev, h_next, c, scratch),
            Layer::Proj(l) => CellKernel::<N>::step_buffers(l, x, h_prev, h_next, c, scratch),
        }
    }
}

impl<N: Quantise> Stored<N> {
    pub fn layer(&self) -> Layer<'_, N> {
        let (i, h, s, f) = (self.input, self.hidden, &self.scales[..], self.format);
        if self.proj > 0 {
            return Layer::Proj(
                LstmProjWeights::new(
                    i,
                    h,
                    self.proj,
                    &self.w_ih,
                    &self.w_hh,
                    &self.bias,
                    s,
                    s,
                    &self.w_hr,
                    &self.scale_hr,
                    f,
                )
                .expect("projected lstm shapes"),
            );
        }
        Layer::Plain(match self.kind {
            Kind::Lstm => LayerWeights::Lstm(
                LstmWeights::new(i, h, &self.w_ih, &self.w_hh, &self.bias, s, s, f)
                    .expect("lstm shapes"),
            ),
            Kind::Gru => LayerWeights::Gru(
                GruWeights::new(
                    i,
                    h,
                    &self.w_ih,
                    &self.w_hh,
                    &self.bias,
                    &self.bias_hn,
                    s,
                    s,
                    f,
                )
                .expect("gru shapes"),
            ),
            Kind::Rnn => LayerWeights::Rnn(
                RnnWeights::new(
                    i,
                    h,
                    Nonlinearity::Tanh,
                    &self.w_ih,
                    &self.w_hh,
                    &self.bias,
                    s,
                    s,
                    f,
                )
                .expect("rnn shapes"),
            ),
        })
    }

    pub fn lstm<const I: usize, const H: usize>(&self) -> Lstm<N, I, H> {
        assert_eq!(
            (self.kind, self.input, self.hidden, self.proj),
            (Kind::Lstm, I, H, 0)
        );
        Lstm::from_parts(
            std::array::from_fn(|j| {
                std::array::from_fn(|g| std::array::from_fn(|k| self.w_ih[(4 * j + g) * I + k]))
            }),
            std::array::from_fn(|j| {
                std::array::from_fn(|g| std::array::from_fn(|k| self.w_hh[(4 * j + g) * H + k]))
            }),
            std::array::from_fn(|j| std::array::from_fn(|g| self.bias[4 * j + g])),
            std::array::from_fn(|j| std::array::from_fn(|g| self.scales[4 * j + g])),
            std::array::from_fn(|j| std::array::from_fn(|g| self.scales[4 * j + g])),
            self.format,
        )
    }

    pub fn gru<const I: usize, const H: usize>(&self) -> Gru<N, I, H> {
        assert_eq!((self.kind, self.input, self.hidden), (Kind::Gru, I, H));
        Gru::from_parts(
            std::array::from_fn(|j| {
                std::array::from_fn(|g| std::array::from_fn(|k| self.w_ih[(3 * j + g) * I + k]))
            }),
            std::array::from_fn(|j| {
                std::array::from_fn(|g| std::array::from_fn(|k| self.w_hh[(3 * j + g) * H + k]))
            }),
            std::array::from_fn(|j| std::array::from_fn(|g| self.bias[3 * j + g])),
            std::array::from_fn(|j| self.bias_hn[j]),
            std::array::from_fn(|j| std::array::from_fn(|g| self.scales[3 * j + g])),
            std::array::from_fn(|j| std::array::from_fn(|g| self.scales[3 * j + g])),
            self.format,
        )
    }

    pub fn rnn<const I: usize, const H: usize>(&self) -> Rnn<N, I, H> {
        assert_eq!((self.kind, self.input, self.hidden), (Kind::Rnn, I, H));
        Rnn::from_parts(
            Nonlinearity::Tanh,
            std::array::from_fn(|j| std::array::from_fn(|k| self.w_ih[j * I + k])),
            std::array::from_fn(|j| std::array::from_fn(|k| self.w_hh[j * H + k])),
            std::array::from_fn(|j| self.bias[j]),
            std::array::from_fn(|j| self.scales[j]),
            std::array::from_fn(|j| self.scales[j]),
            self.format,
        )
    }

    pub fn lstm_proj<const I: usize, const H: usize, const P: usize>(
        &self,
    ) -> LstmProj<N, I, H, P> {
        assert_eq!(
            (self.kind, self.input, self.hidden, self.proj),
            (Kind::Lstm, I, H, P)
        );
        LstmProj::from_parts(
            std::array::from_fn(|j| {
                std::array::from_fn(|g| std::array::from_fn(|k| self.w_ih[(4 * j + g) * I + k]))
            }),
            std::array::from_fn(|j| {
                std::array::from_fn(|g| std::array::from_fn(|k| self.w_hh[(4 * j + g) * P + k]))
            }),
            std::array::from_fn(|j| std::array::from_fn(|g| self.bias[4 * j + g])),
            std::array::from_fn(|j| std::array::from_fn(|g| self.scales[4 * j + g])),
            std::array::from_fn(|j| std::array::from_fn(|g| self.scales[4 * j + g])),
            std::array::from_fn(|p| std::array::from_fn(|j| self.w_hr[p * H + j])),
            std::array::from_fn(|p| self.scale_hr[p]),
            self.format,
        )
    }
}

/// A linear's weights, biases and row scales in `N`.
pub type StoredLinear<N> = (
    Vec<<N as tinyrnn::Numeric>::Weight>,
    Vec<<N as tinyrnn::Numeric>::Bias>,
    Vec<<N as tinyrnn::Numeric>::RowScale>,
);

/// A PyTorch linear (`weight [O][I]`, `bias [O]`) in f64.
#[derive(Clone, Debug)]
pub struct Linear {
    pub input: usize,
    pub output: usize,
    pub w: Vec<f64>,
    pub b: Vec<f64>,
}

impl Linear {
    pub fn random(input: usize, output: usize, rng: &mut Rng) -> Linear {
        let k = 1.0 / (input as f64).sqrt();
        Linear {
            input,
            output,
            w: (0..input * output).map(|_| rng.uniform(-k, k)).collect(),
            b: (0..output).map(|_| rng.uniform(-k, k)).collect(),
        }
    }

    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        (0..self.output)
            .map(|o| dot(&self.w[o * self.input..(o + 1) * self.input], x) + self.b[o])
            .collect()
    }

    pub fn as_stored<N: Quantise>(&self) -> Linear {
        Linear {
            w: self.w.iter().map(|&w| N::weight_value(w)).collect(),
            b: self.b.iter().map(|&b| N::bias_value(b)).collect(),
            ..self.clone()
        }
    }

    pub fn store<N: Quantise>(&self) -> StoredLinear<N> {
        (
            self.w.iter().map(|&w| N::weight(w)).collect(),
            self.b.iter().map(|&b| N::bias(b)).collect(),
            vec![N::row_scale(); self.output],
        )
    }

    pub fn dense<N: Quantise, const I: usize, const O: usize>(
        &self,
        format: N::Format,
    ) -> Dense<N, I, O> {
        let (w, b, s) = self.store::<N>();
        Dense::from_parts(
            std::array::from_fn(|o| std::array::from_fn(|i| w[o * I + i])),
            std::array::from_fn(|o| b[o]),
            std::array::from_fn(|o| s[o]),
            format,
        )
    }
}

/// `nn.Sequential(Linear, act, Linear, …)` in f64.
pub fn sequential_f64(linears: &[Linear], acts: &[Nonlinearity], x: &[f64]) -> Vec<f64> {
    let mut a = x.to_vec();
    for (k, l) in linears.iter().enumerate() {
        a = l.forward(&a);
        if let Some(act) = acts.get(k) {
            for v in &mut a {
                *v = match act {
                    Nonlinearity::Relu => v.max(0.0),
                    Nonlinearity::Tanh => v.tanh(),
                };
            }
        }
    }
    a
}
