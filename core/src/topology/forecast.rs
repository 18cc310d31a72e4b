//! One-to-many: a model that predicts its next input (`x_{t+1}` from `x_≤t`) generates a
//! sequence by feeding its predictions back, and scores real samples by how far they are from
//! what it predicted (the anomaly score used on vibration and IMU data).
//!
//! # Semantics
//!
//! A [`Forecaster`] is a recurrent body and a head with as many outputs as the body has
//! inputs. On each real sample `x_t` ([`Forecaster::observe`]) it
//!
//! 1. scores the pending prediction `p_t` against `x_t` ([`Feedback::prediction_error`], summed
//!    over the channels; none for the first sample),
//! 2. steps the body on `x_t` and sets `p_{t+1} = feed_back(head(h_t))`.
//!
//! [`Forecaster::generate`] then continues autoregressively: it emits `p`, steps the body on
//! `p` as if it were the next sample, predicts again, and so on — the loop PyTorch users write
//! (`x = head(rnn(x, h))`), the first generated value being the prediction made from the last
//! real sample. Memory is constant: the body's state, one prediction (`I` activations) and a
//! flag ([`ForecastState`]); a step uses the stack for the head's `I` outputs.
//!
//! # Fixed point: the feedback requantisation
//!
//! The head's outputs are `i32` at its `pre_frac`; the body's inputs are `i16` at the model
//! input's `x_frac`. [`Feedback::feed_back`] converts, integer-only:
//! `sat_i16(round_shift(pre, pre_frac − x_frac))` — rounded half up (`(v + 2^(s−1)) >> s`, as
//! every rescaling in the crate), a left shift when `x_frac > pre_frac`, saturated to the `i16`
//! range; error ≤ ½ LSB of the input format for values within range. For `f32` it is the
//! identity. The fed-back value is exactly what a device would have had to feed, so host and
//! device generate the same bits.
//!
//! # Anomaly score
//!
//! The error is computed between the fed-back (input-format) prediction and the sample:
//! squared error `Σ_c (p_c − x_c)²` or absolute error `Σ_c |p_c − x_c|` ([`ErrorMetric`]). In
//! fixed point the differences are exact integers in LSBs of `x_frac`, the sum an exact `u64`
//! (saturating, which it cannot reach below 2³¹ channels): a real-valued threshold `τ` becomes
//! `round(τ · 2^(2·x_frac))` for the squared error and `round(τ · 2^x_frac)` for the absolute
//! one. A score above the threshold is an anomaly ([`Feedback::exceeds`]; an `f32` NaN score
//! counts as above).

use core::fmt::Debug;
use core::marker::PhantomData;

use crate::activation::float::FloatActivation;
use crate::head::Head;
use crate::numeric::fixed_point::{round_shift, sat_i16, Fixed, FixedWeight, QFormat};
use crate::numeric::float::Float;
use crate::numeric::{Numeric, Schedule};
use crate::recurrent::Recurrent;

/// How a prediction's error over the channels is summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorMetric {
    /// `Σ (p − x)²`, the mean-squared-error a forecaster trains on (times the channels).
    #[default]
    Squared,
    /// `Σ |p − x|`.
    Absolute,
}

/// What generation and the anomaly score need of a numeric type: the head's output as the
/// next input, and the error of a prediction. See the [module](self) doc.
pub trait Feedback: Numeric {
    /// A prediction error: `f32`, or for fixed point an exact `u64` in LSBs (squared: LSB²)
    /// of the input format.
    type Score: Copy + Default + PartialOrd + Debug;

    /// A head output `pre` (in `head`'s output format, its `pre_frac`) as a model input (in
    /// `input`'s `x_frac`): rounded half up and saturated (fixed point), unchanged (`f32`).
    fn feed_back(pre: Self::Pre, head: &Self::Format, input: &Self::Format) -> Self::Act;

    /// The error of `predicted` against `actual`, summed over the channels both have.
    fn prediction_error(
        predicted: &[Self::Act],
        actual: &[Self::Act],
        metric: ErrorMetric,
    ) -> Self::Score;

    /// Whether `score` is above `threshold` (an anomaly); a NaN score is.
    fn exceeds(score: Self::Score, threshold: Self::Score) -> bool;
}

impl<A: FloatActivation> Feedback for Float<A> {
    type Score = f32;

    #[inline]
    fn feed_back(pre: f32, _: &(), _: &()) -> f32 {
        pre
    }

    fn prediction_error(predicted: &[f32], actual: &[f32], metric: ErrorMetric) -> f32 {
        let errors = predicted.iter().zip(actual).map(|(&p, &x)| p - x);
        match metric {
            ErrorMetric::Squared => errors.fold(0.0, |sum, d| sum + d * d),
            ErrorMetric::Absolute => errors.fold(0.0, |sum, d| sum + d.abs()),
        }
    }

    #[inline]
    fn exceeds(score: f32, threshold: f32) -> bool {
        score > threshold || score.is_nan()
    }
}

impl<W: FixedWeight> Feedback for Fixed<W> {
    type Score = u64;

    #[inline]
    fn feed_back(pre: i32, head: &QFormat, input: &QFormat) -> i16 {
        sat_i16(round_shift(
            pre as i64,
            head.pre_frac as i32 - input.x_frac as i32,
        ))
    }

    fn prediction_error(predicted: &[i16], actual: &[i16], metric: ErrorMetric) -> u64 {
        let errors = predicted
            .iter()
            .zip(actual)
            .map(|(&p, &x)| (p as i32 - x as i32).unsigned_abs());
        match metric {
            // |d| ≤ 65535, so d² < 2³² is exact in u32 (no 64-bit multiply on Cortex-M0).
            ErrorMetric::Squared => errors.fold(0u64, |sum, d| sum.saturating_add((d * d) as u64)),
            ErrorMetric::Absolute => errors.fold(0u64, |sum, d| sum.saturating_add(d as u64)),
        }
    }

    #[inline]
    fn exceeds(score: u64, threshold: u64) -> bool {
        score > threshold
    }
}

/// A recurrent body `R` with `I` inputs and a head `Hd` with `I` outputs that predicts the
/// next input: generation and prediction-error scores (see the [module](self) doc). Weights
/// only (can be `static`); the state is the caller's [`ForecastState`].
///
/// ```
/// use tinyrnn::{Dense, ErrorMetric, Forecaster, Rnn, Nonlinearity, F32};
///
/// // x_{t+1} = 0.5 · tanh(x_t) with one unit: h = tanh(x), prediction 0.5 · h.
/// let body = Rnn::<F32, 1, 1>::new(Nonlinearity::Tanh, [[1.0]], [[0.0]], [0.0]);
/// let model = Forecaster::<F32, _, _, 1>::new(body, Dense::new([[0.5]], [0.0]), ());
/// let mut state = model.new_state();
/// assert_eq!(model.observe(&mut state, &[0.4], ErrorMetric::Squared), None);
/// let error = model.observe(&mut state, &[0.9], ErrorMetric::Absolute).unwrap();
/// assert!((error - (0.9 - 0.5 * 0.4f32.tanh())).abs() < 1e-6);
/// let mut generated = Vec::new();
/// assert_eq!(model.generate(&mut state, 3, |x| generated.push(x[0])), 3);
/// assert!((generated[0] - 0.5 * 0.9f32.tanh()).abs() < 1e-6);
/// assert!((generated[1] - 0.5 * generated[0].tanh()).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Forecaster<N: Numeric, R, Hd, const I: usize> {
    body: R,
    head: Hd,
    input_format: N::Format,
    numeric: PhantomData<N>,
}

/// The state of a [`Forecaster`]: the body's state and the pending prediction of the next
/// sample.
#[derive(Clone, Debug, PartialEq)]
pub struct ForecastState<N: Numeric, S, const I: usize> {
    body: S,
    prediction: [N::Act; I],
    primed: bool,
}

impl<N: Numeric, S, const I: usize> ForecastState<N, S, I> {
    /// Static RAM in bytes, at compile time.
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// The body's state.
    pub fn body(&self) -> &S {
        &self.body
    }

    /// The prediction of the next sample (in the input's format), once a sample was seen.
    pub fn prediction(&self) -> Option<&[N::Act; I]> {
        self.primed.then_some(&self.prediction)
    }
}

impl<N, R, Hd, const I: usize> Forecaster<N, R, Hd, I>
where
    N: Schedule + Feedback,
    R: Recurrent<N>,
    Hd: Head<N>,
{
    /// Joins a body and a head; `input_format` is the model input's format (for fixed point,
    /// its `x_frac` is what predictions are requantised to; `()` for floats). Fails to compile
    /// unless the body takes `I` inputs, the head takes the body's outputs and has `I` outputs.
    pub const fn new(body: R, head: Hd, input_format: N::Format) -> Self {
        const {
            assert!(R::INPUT == I, "the body must take I inputs");
            assert!(
                Hd::INPUT == R::OUTPUT,
                "the head's input size must equal the body's output size"
            );
            assert!(
                Hd::OUTPUT == I,
                "a forecaster's head predicts the next input: I outputs"
            );
        };
        Forecaster {
            body,
            head,
            input_format,
            numeric: PhantomData,
        }
    }

    /// The recurrent body.
    pub fn body(&self) -> &R {
        &self.body
    }

    /// The head.
    pub fn head(&self) -> &Hd {
        &self.head
    }

    /// A fresh state: zero body state, no prediction.
    pub fn new_state(&self) -> ForecastState<N, R::State, I> {
        ForecastState {
            body: R::State::default(),
            prediction: [N::Act::default(); I],
            primed: false,
        }
    }

    /// Back to the fresh state.
    pub fn reset(&self, state: &mut ForecastState<N, R::State, I>) {
        self.body.reset(&mut state.body);
        state.primed = false;
    }

    /// One real sample: returns the `metric` error of the prediction made for it (`None` when
    /// there was none: the first sample after a reset), then steps on it and predicts the
    /// next. A warm-up is a run of `observe` whose scores are ignored.
    pub fn observe(
        &self,
        state: &mut ForecastState<N, R::State, I>,
        x: &[N::Act; I],
        metric: ErrorMetric,
    ) -> Option<N::Score> {
        let score = state
            .primed
            .then(|| N::prediction_error(&state.prediction, x, metric));
        self.predict(state, x);
        score
    }

    /// Whether `score` (from [`observe`](Self::observe)) is above `threshold`: an anomaly.
    pub fn is_anomaly(&self, score: N::Score, threshold: N::Score) -> bool {
        N::exceeds(score, threshold)
    }

    /// Generates `steps` samples: hands the pending prediction to `each`, feeds it back as the
    /// next input, predicts again. Returns the samples generated: `steps`, or 0 when no real
    /// sample has been observed (there is no prediction to start from). The state then holds
    /// the generated samples as if observed, and the next prediction.
    pub fn generate(
        &self,
        state: &mut ForecastState<N, R::State, I>,
        steps: usize,
        mut each: impl FnMut(&[N::Act; I]),
    ) -> usize {
        if !state.primed {
            return 0;
        }
        for _ in 0..steps {
            let x = state.prediction;
            each(&x);
            self.predict(state, &x);
        }
        steps
    }

    /// Steps the body on `x` and stores the head's requantised prediction of the next sample.
    fn predict(&self, state: &mut ForecastState<N, R::State, I>, x: &[N::Act; I]) {
        let h = self.body.step(&mut state.body, x);
        let mut pre = [N::Pre::default(); I];
        self.head.forward(h, &mut pre);
        let head_format = self.head.output_format();
        for (p, &v) in state.prediction.iter_mut().zip(&pre) {
            *p = N::feed_back(v, &head_format, &self.input_format);
        }
        state.primed = true;
    }
}
