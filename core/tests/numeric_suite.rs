//! One test suite for every numeric type: small random LSTM, GRU and RNN layers, built through
//! the slice APIs ([`LstmWeights`], [`GruWeights`], [`RnnWeights`]) from PyTorch-layout weights,
//! run for 50 steps and compared step by step with an `f64` implementation of the PyTorch
//! equations written here.
//!
//! The fixed-point types get their weights from a small test-only quantiser: weights at 14
//! fractional bits (`i16`) or 6 (`i8`), inputs at 12, pre-activations at 16, cell state at 12,
//! hidden state Q15. Their tolerance therefore includes the quantisation of weights and inputs,
//! not only the arithmetic. Run with `--nocapture` to see the measured maxima.

use tinyrnn::activation::float::FloatActivation;
use tinyrnn::numeric::float::Float;
use tinyrnn::{
    F32Fast, GruWeights, LstmWeights, Nonlinearity, QFormat, RnnWeights, Schedule, F32, Q15, W8A16,
};

const STEPS: usize = 50;
const LAYERS_PER_KIND: u64 = 16;

// ---------------------------------------------------------------------------------------------
// Test-only conversion of real values into each numeric type.
// ---------------------------------------------------------------------------------------------

/// How a test turns real weights and inputs into a numeric type's values, and reads hidden
/// states back.
trait Quantise: Schedule {
    fn format() -> Self::Format;
    fn row_scale() -> Self::RowScale;
    fn weights(w: &[f64]) -> Vec<Self::Weight>;
    fn bias(b: f64) -> Self::Bias;
    fn input(x: f64) -> Self::Act;
    fn hidden(h: Self::Act) -> f64;
    /// The real value `weights` stores for `w`.
    fn weight_value(w: f64) -> f64;
    /// The real value `bias` stores for `b`.
    fn bias_value(b: f64) -> f64;
    /// The real value `input` stores for `x`.
    fn input_value(x: f64) -> f64;
}

impl<A: FloatActivation> Quantise for Float<A> {
    fn format() {}
    fn row_scale() {}
    fn weights(w: &[f64]) -> Vec<f32> {
        w.iter().map(|&v| v as f32).collect()
    }
    fn bias(b: f64) -> f32 {
        b as f32
    }
    fn input(x: f64) -> f32 {
        x as f32
    }
    fn hidden(h: f32) -> f64 {
        h as f64
    }
    fn weight_value(w: f64) -> f64 {
        w as f32 as f64
    }
    fn bias_value(b: f64) -> f64 {
        b as f32 as f64
    }
    fn input_value(x: f64) -> f64 {
        x as f32 as f64
    }
}

const X_FRAC: i8 = 12;
const PRE_FRAC: i8 = 16;
const FIXED_FORMAT: QFormat = QFormat {
    x_frac: X_FRAC,
    h_frac: 15,
    pre_frac: PRE_FRAC,
    c_frac: 12,
};

/// `round(v · 2^frac)`, saturated to `[lo, hi]`.
fn quantise(v: f64, frac: i8, lo: i64, hi: i64) -> i64 {
    ((v * 2f64.powi(frac as i32)).round() as i64).clamp(lo, hi)
}

macro_rules! fixed_quantise {
    ($ty:ty, $w:ty, $frac:expr) => {
        impl Quantise for $ty {
            fn format() -> QFormat {
                FIXED_FORMAT
            }
            fn row_scale() -> i8 {
                $frac
            }
            fn weights(w: &[f64]) -> Vec<$w> {
                w.iter()
                    .map(|&v| quantise(v, $frac, <$w>::MIN as i64, <$w>::MAX as i64) as $w)
                    .collect()
            }
            fn bias(b: f64) -> i32 {
                quantise(b, PRE_FRAC, i32::MIN as i64, i32::MAX as i64) as i32
            }
            fn input(x: f64) -> i16 {
                quantise(x, X_FRAC, i16::MIN as i64, i16::MAX as i64) as i16
            }
            fn hidden(h: i16) -> f64 {
                h as f64 / 32768.0
            }
            fn weight_value(w: f64) -> f64 {
                Self::weights(&[w])[0] as f64 / 2f64.powi($frac)
            }
            fn bias_value(b: f64) -> f64 {
                Self::bias(b) as f64 / 2f64.powi(PRE_FRAC as i32)
            }
            fn input_value(x: f64) -> f64 {
                Self::input(x) as f64 / 2f64.powi(X_FRAC as i32)
            }
        }
    };
}

fixed_quantise!(Q15, i16, 14);
fixed_quantise!(W8A16, i8, 6);

// ---------------------------------------------------------------------------------------------
// The f64 reference: PyTorch layout and equations.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Lstm,
    Gru,
    Rnn,
}

impl Kind {
    fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru => 3,
            Kind::Rnn => 1,
        }
    }
}

/// A layer as PyTorch stores it: `weight_ih [G·H][I]`, `weight_hh [G·H][H]`, `bias_ih [G·H]`,
/// `bias_hh [G·H]`, gate-major (all units of gate 0, then gate 1, ...).
struct Torch {
    kind: Kind,
    input: usize,
    hidden: usize,
    w_ih: Vec<f64>,
    w_hh: Vec<f64>,
    b_ih: Vec<f64>,
    b_hh: Vec<f64>,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn dot(w: &[f64], x: &[f64]) -> f64 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

impl Torch {
    fn random(kind: Kind, input: usize, hidden: usize, rng: &mut Rng) -> Torch {
        // PyTorch's default init, U(-1/√H, 1/√H), for weights and biases alike.
        let k = 1.0 / (hidden as f64).sqrt();
        let rows = kind.gates() * hidden;
        let mut draw = |n: usize| (0..n).map(|_| rng.uniform(-k, k)).collect::<Vec<_>>();
        Torch {
            kind,
            input,
            hidden,
            w_ih: draw(rows * input),
            w_hh: draw(rows * hidden),
            b_ih: draw(rows),
            b_hh: draw(rows),
        }
    }

    /// Gate `g`'s pre-activation parts for unit `j`: `(W_i x + b_i, W_h h + b_h)`.
    fn parts(&self, g: usize, j: usize, x: &[f64], h: &[f64]) -> (f64, f64) {
        let row = g * self.hidden + j;
        let (i, n) = (self.input, self.hidden);
        (
            dot(&self.w_ih[row * i..(row + 1) * i], x) + self.b_ih[row],
            dot(&self.w_hh[row * n..(row + 1) * n], h) + self.b_hh[row],
        )
    }

    /// One step; returns `h'` and updates `c` (LSTM only).
    fn step(&self, x: &[f64], h: &[f64], c: &mut [f64]) -> Vec<f64> {
        (0..self.hidden)
            .map(|j| {
                let pre = |g| {
                    let (a, b) = self.parts(g, j, x, h);
                    a + b
                };
                match self.kind {
                    Kind::Lstm => {
                        let (i, f, g, o) = (
                            sigmoid(pre(0)),
                            sigmoid(pre(1)),
                            pre(2).tanh(),
                            sigmoid(pre(3)),
                        );
                        c[j] = f * c[j] + i * g;
                        o * c[j].tanh()
                    }
                    Kind::Gru => {
                        let (r, z) = (sigmoid(pre(0)), sigmoid(pre(1)));
                        let (nx, nh) = self.parts(2, j, x, h);
                        let n = (nx + r * nh).tanh();
                        (1.0 - z) * n + z * h[j]
                    }
                    Kind::Rnn => pre(0).tanh(),
                }
            })
            .collect()
    }

    /// The layer `N` actually runs: every weight and (folded) bias replaced by the real value
    /// of its quantised form. Comparing with it isolates `N`'s arithmetic error from the
    /// quantisation of the weights.
    fn as_stored<N: Quantise>(&self) -> Torch {
        let mut b_ih = self.b_ih.clone();
        let mut b_hh = self.b_hh.clone();
        for (row, (bi, bh)) in b_ih.iter_mut().zip(&mut b_hh).enumerate() {
            if self.kind == Kind::Gru && row / self.hidden == 2 {
                (*bi, *bh) = (N::bias_value(*bi), N::bias_value(*bh));
            } else {
                (*bi, *bh) = (N::bias_value(*bi + *bh), 0.0);
            }
        }
        let snap = |w: &[f64]| w.iter().map(|&v| N::weight_value(v)).collect();
        Torch {
            kind: self.kind,
            input: self.input,
            hidden: self.hidden,
            w_ih: snap(&self.w_ih),
            w_hh: snap(&self.w_hh),
            b_ih,
            b_hh,
        }
    }

    /// `[G·H][cols]` gate-major rows → `[H][G][cols]` unit-major.
    fn unit_major(&self, w: &[f64], cols: usize) -> Vec<f64> {
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

    /// Folded biases in `tinyrnn`'s unit-major layout, and (GRU) the separate `b_hn`.
    fn tinyrnn_biases(&self) -> (Vec<f64>, Vec<f64>) {
        let (gates, hidden) = (self.kind.gates(), self.hidden);
        let mut bias = Vec::new();
        let mut bias_hn = Vec::new();
        for j in 0..hidden {
            for g in 0..gates {
                let row = g * hidden + j;
                if self.kind == Kind::Gru && g == 2 {
                    bias.push(self.b_ih[row]);
                    bias_hn.push(self.b_hh[row]);
                } else {
                    bias.push(self.b_ih[row] + self.b_hh[row]);
                }
            }
        }
        (bias, bias_hn)
    }
}

// ---------------------------------------------------------------------------------------------
// The suite.
// ---------------------------------------------------------------------------------------------

/// SplitMix64: a deterministic generator, so every run tests the same layers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`, rounded to an `f32` so the float types see the exact values.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (lo + (hi - lo) * u) as f32 as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs one layer for `STEPS` random inputs; returns the largest `|h - h_ref|` against the
/// real-valued layer and against the layer as stored (quantised weights and inputs).
fn run_layer<N: Quantise>(torch: &Torch, rng: &mut Rng) -> (f64, f64) {
    let (i, h) = (torch.input, torch.hidden);
    let w_ih = N::weights(&torch.unit_major(&torch.w_ih, i));
    let w_hh = N::weights(&torch.unit_major(&torch.w_hh, h));
    let (bias, bias_hn) = torch.tinyrnn_biases();
    let bias: Vec<N::Bias> = bias.iter().map(|&b| N::bias(b)).collect();
    let bias_hn: Vec<N::Bias> = bias_hn.iter().map(|&b| N::bias(b)).collect();
    let scales = vec![N::row_scale(); torch.kind.gates() * h];
    let fmt = N::format();

    let (mut h_prev, mut h_next) = (vec![N::Act::default(); h], vec![N::Act::default(); h]);
    let mut c = vec![N::Cell::default(); h];
    let (mut h_ref, mut c_ref) = (vec![0f64; h], vec![0f64; h]);
    let stored = torch.as_stored::<N>();
    let (mut h_st, mut c_st) = (vec![0f64; h], vec![0f64; h]);
    let (mut worst, mut worst_st) = (0f64, 0f64);
    for _ in 0..STEPS {
        let x_real: Vec<f64> = (0..i).map(|_| rng.uniform(-2.0, 2.0)).collect();
        let x: Vec<N::Act> = x_real.iter().map(|&v| N::input(v)).collect();
        match torch.kind {
            Kind::Lstm => LstmWeights::<N>::new(i, h, &w_ih, &w_hh, &bias, &scales, &scales, fmt)
                .expect("lstm shapes")
                .step(&x, &h_prev, &mut h_next, &mut c),
            Kind::Gru => {
                GruWeights::<N>::new(i, h, &w_ih, &w_hh, &bias, &bias_hn, &scales, &scales, fmt)
                    .expect("gru shapes")
                    .step(&x, &h_prev, &mut h_next)
            }
            Kind::Rnn => RnnWeights::<N>::new(
                i,
                h,
                Nonlinearity::Tanh,
                &w_ih,
                &w_hh,
                &bias,
                &scales,
                &scales,
                fmt,
            )
            .expect("rnn shapes")
            .step(&x, &h_prev, &mut h_next),
        }
        h_ref = torch.step(&x_real, &h_ref, &mut c_ref);
        let x_stored: Vec<f64> = x_real.iter().map(|&v| N::input_value(v)).collect();
        h_st = stored.step(&x_stored, &h_st, &mut c_st);
        for ((&got, &want), &want_st) in h_next.iter().zip(&h_ref).zip(&h_st) {
            worst = worst.max((N::hidden(got) - want).abs());
            worst_st = worst_st.max((N::hidden(got) - want_st).abs());
        }
        std::mem::swap(&mut h_prev, &mut h_next);
    }
    (worst, worst_st)
}

/// Tolerances of one numeric type, on `|h - h_ref|`.
struct Tolerance {
    /// Against the real-valued layer (includes the quantisation of weights and inputs).
    model: f64,
    /// Against the layer as stored (quantised weights and inputs): the arithmetic alone.
    arithmetic: f64,
}

/// The shared suite: `LAYERS_PER_KIND` random layers of each kind (1–6 inputs, 1–10 hidden
/// units), every hidden state of every step within tolerance of the `f64` references.
fn cell_suite<N: Quantise>(name: &str, tol: Tolerance) {
    let mut report = Vec::new();
    for (k, kind) in [Kind::Lstm, Kind::Gru, Kind::Rnn].into_iter().enumerate() {
        let (mut worst, mut worst_st) = (0f64, 0f64);
        for layer in 0..LAYERS_PER_KIND {
            // The same layers and inputs for every numeric type.
            let mut rng = Rng(0x5eed_0000 + 1000 * k as u64 + layer);
            let (i, h) = (1 + rng.below(6) as usize, 1 + rng.below(10) as usize);
            let torch = Torch::random(kind, i, h, &mut rng);
            let (e, e_st) = run_layer::<N>(&torch, &mut rng);
            let what = format!("{name} {kind:?} layer {layer} (I = {i}, H = {h})");
            assert!(
                e <= tol.model,
                "{what}: max |h - h_ref| = {e:.3e} > {:.1e}",
                tol.model
            );
            assert!(
                e_st <= tol.arithmetic,
                "{what}: max |h - h_stored| = {e_st:.3e} > {:.1e}",
                tol.arithmetic
            );
            worst = worst.max(e);
            worst_st = worst_st.max(e_st);
        }
        report.push(format!("{kind:?} {worst:.2e} / {worst_st:.2e}"));
    }
    eprintln!(
        "{name}: max |h - h_ref| / |h - h_stored| over {STEPS} steps: {} (tolerance {:.1e} / {:.1e})",
        report.join(", "),
        tol.model,
        tol.arithmetic
    );
}

#[test]
fn suite_f32() {
    cell_suite::<F32>(
        "F32",
        Tolerance {
            model: 1e-5,
            arithmetic: 1e-5,
        },
    );
}

#[test]
fn suite_f32_fast() {
    cell_suite::<F32Fast>(
        "F32Fast",
        Tolerance {
            model: 3e-3,
            arithmetic: 3e-3,
        },
    );
}

#[test]
fn suite_q15() {
    cell_suite::<Q15>(
        "Q15",
        Tolerance {
            model: 1e-3,
            arithmetic: 1e-3,
        },
    );
}

#[test]
fn suite_w8a16() {
    cell_suite::<W8A16>(
        "W8A16",
        Tolerance {
            // Weights at 6 fractional bits (steps of 1/64) dominate: ~5e-2 measured.
            model: 1.5e-1,
            arithmetic: 1e-3,
        },
    );
}
