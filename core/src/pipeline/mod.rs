//! The device pipeline: sensor → integer input scaling → model → decision, one sample at a time.
//!
//! ```text
//!  SampleSource ─[i16; I] raw counts─▶ InputScaling ─[Act; I]─▶ StreamModel::step_logits
//!      (source)                         (scale)                    (any Model, any Numeric)
//!                                                                          │ logits [Pre; C]
//!  Option<Decision> ◀─ Decider: softmax → smoothing → hysteresis ◀─ Window (every k samples)
//!                       (decision)                                   (window)
//! ```
//!
//! [`Pipeline`] holds everything that changes per sample — the model's state, the window
//! position, the decision layer's state and counters — in one struct of a size known at compile
//! time ([`Pipeline::RAM_BYTES`], [`Pipeline::memory`]); the model and the input scaling are
//! passed by reference to each call, so that they can stay in flash as `static`s. No heap, no
//! panic; the fixed-point path is integer-only, so a host and a device fed the same samples
//! emit the same events bit for bit.
//!
//! ```
//! use tinyrnn::pipeline::decision::{q15, DecisionConfig, Decider, Smoothing};
//! use tinyrnn::pipeline::scale::{ChannelMap, InputScaling};
//! use tinyrnn::pipeline::source::SliceSource;
//! use tinyrnn::pipeline::window::{StatePolicy, Window};
//! use tinyrnn::pipeline::Pipeline;
//! use tinyrnn::{Dense, Gru, Model, Recurrent, F32};
//!
//! // A 2-input GRU with a 2-class head (weights made up for the example).
//! let model = Model::new(
//!     Gru::<F32, 2, 3>::new([[[0.8, -0.4]; 3]; 3], [[[0.1; 3]; 3]; 3], [[0.0; 3]; 3], [0.0; 3]),
//!     Dense::new([[2.0; 3], [-2.0; 3]], [0.0; 2]),
//! );
//! // Counts of a ±2 g accelerometer, the model trained in g.
//! let scaling = InputScaling::float([ChannelMap::full_scale(2.0); 2]).unwrap();
//! // A decision every 4 samples, each window its own sequence; mean of the last 2 windows,
//! // unknown below 0.6, a change needs 2 windows in a row.
//! let window = Window::new(4, StatePolicy::Reset).unwrap();
//! let decisions = DecisionConfig::new()
//!     .with_smoothing(Smoothing::Mean { window: 2 })
//!     .with_min_confidence(q15(0.6))
//!     .with_hold(2);
//! let mut pipeline: Pipeline<F32, _, 2, 4> =
//!     Pipeline::new(model.body().new_state(), window, Decider::new(decisions));
//!
//! let recording = [[16384, -8192]; 16]; // 1 g, -0.5 g
//! let mut events = Vec::new();
//! pipeline
//!     .run(&model, &scaling, &mut SliceSource::new(&recording), |d| events.push(d))
//!     .unwrap();
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].class, Some(0));
//! assert_eq!(events[0].sample_index, 7); // the end of the second window
//! ```
//!
//! # Non-finite policy
//!
//! Fixed-point models cannot produce NaN or ∞. An `f32` state can: one NaN input (a sensor
//! glitch, a division by zero upstream) poisons the recurrent state for good, as in PyTorch.
//! After every step the pipeline checks the state and the logits ([`StreamModel::state_is_finite`],
//! one compare per value; nothing for fixed point). If any value is NaN or ±∞, the pipeline
//!
//! 1. resets the model's state to zero,
//! 2. drops the sample (no update of the decision layer, whose state stays as it was),
//! 3. restarts the current window (the next sample is the first of a new one), and
//! 4. counts it in [`PipelineStats::non_finite_resets`].
//!
//! Decisions resume with the next complete window; the sample counter keeps counting, so
//! `sample_index` stays the index in the stream.
//!
//! # Memory
//!
//! `Pipeline<N, S, C, K>` is the static RAM: the model state `S`, the window position, the
//! [`Decider`] (a ring buffer of `K` probability vectors of `C` classes plus
//! `C` averages) and the counters. `Pipeline::<…>::RAM_BYTES` is a `const`, so a firmware can
//! report or `assert!` it at compile time. A call of [`push`](Pipeline::push) also uses stack
//! for one input sample, `C` logits and a few `C`-element arrays, plus the model's own step.

pub mod decision;
mod finite;
pub mod scale;
pub mod source;
pub mod window;

pub use finite::{all_finite, FiniteCheck, FiniteState};

use core::fmt;
use core::marker::PhantomData;

use decision::{Decider, Decision, Logit};
use scale::{InputScaling, ScaleChannel};
use source::SampleSource;
use window::{StatePolicy, Window};

use crate::{Model, Numeric, QFormat, Recurrent, Schedule};

/// A model the pipeline can run: one step per sample, with per-class logits.
///
/// Implemented for every [`Model`] (a [`Recurrent`] body with a dense head) whose state is a
/// [`FiniteState`]; a host-side model whose sizes are known only at run time can implement it
/// too and run the very same pipeline.
pub trait StreamModel<N: Numeric> {
    /// The caller-owned recurrent state.
    type State;

    /// Input values per sample.
    fn input_size(&self) -> usize;

    /// Classes (logits per step).
    fn classes(&self) -> usize;

    /// Fractional bits of fixed-point logits (the head's output format); ignored for `f32`.
    fn logit_frac(&self) -> u8;

    /// Steps `state` on one sample `x` and writes the logits into `logits` (as many as both
    /// have).
    fn step_logits(&self, state: &mut Self::State, x: &[N::Act], logits: &mut [N::Pre]);

    /// Returns `state` to the zero state.
    fn reset_state(&self, state: &mut Self::State);

    /// Whether every value of `state` is finite (always, for fixed point).
    fn state_is_finite(&self, state: &Self::State) -> bool;
}

/// A numeric format's head output format, as the decision layer needs it.
pub trait LogitFormat {
    /// Fractional bits of the head's outputs (0 for floats).
    fn logit_frac(&self) -> u8;
}

impl LogitFormat for () {
    fn logit_frac(&self) -> u8 {
        0
    }
}

impl LogitFormat for QFormat {
    /// A head's `pre_frac` (validated to `0..=24` by [`QFormat::validate`]; clamped to `0..=31`).
    fn logit_frac(&self) -> u8 {
        self.pre_frac.clamp(0, 31) as u8
    }
}

impl<N, R, const H: usize, const O: usize> StreamModel<N> for Model<N, R, H, O>
where
    N: Schedule,
    R: Recurrent<N>,
    R::State: FiniteState,
    N::Format: LogitFormat,
{
    type State = R::State;

    fn input_size(&self) -> usize {
        R::INPUT
    }

    fn classes(&self) -> usize {
        O
    }

    fn logit_frac(&self) -> u8 {
        self.head().weights().format().logit_frac()
    }

    #[inline]
    fn step_logits(&self, state: &mut R::State, x: &[N::Act], logits: &mut [N::Pre]) {
        let out = Model::step(self, state, x);
        for (logit, value) in logits.iter_mut().zip(out) {
            *logit = value;
        }
    }

    fn reset_state(&self, state: &mut R::State) {
        Model::reset(self, state);
    }

    #[inline]
    fn state_is_finite(&self, state: &R::State) -> bool {
        state.is_finite()
    }
}

/// A pipeline parameter that is out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// A window of 0 samples.
    WindowLength,
    /// `hold` is 0.
    Hold,
    /// A mean over 0 vectors, or over more than the decider stores.
    SmoothingWindow {
        /// The window asked for.
        window: u16,
        /// The decider's capacity `K`.
        capacity: usize,
    },
    /// An exponential smoothing shift outside `1..=15`.
    ExponentialShift {
        /// The shift asked for.
        shift: u8,
    },
    /// A probability above 1.0 (32768 in Q15).
    Probability {
        /// `min_confidence` or `margin`.
        field: &'static str,
        /// Its value.
        value: u16,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::WindowLength => f.write_str("a window must hold at least one sample"),
            ConfigError::Hold => f.write_str("hold must be at least 1 update"),
            ConfigError::SmoothingWindow { window, capacity } => write!(
                f,
                "mean smoothing over {window} vectors: must be 1..={capacity} (the decider's capacity)"
            ),
            ConfigError::ExponentialShift { shift } => {
                write!(f, "exponential smoothing shift {shift}: must be 1..=15")
            }
            ConfigError::Probability { field, value } => {
                write!(f, "{field} {value} is above 1.0 (32768 in Q15)")
            }
        }
    }
}

/// A model that does not fit a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FitError {
    /// The model has more classes than the pipeline holds.
    Classes {
        /// The model's classes.
        model: usize,
        /// The pipeline's capacity `C`.
        capacity: usize,
    },
    /// The model's input size is not the number of channels fed to it.
    Inputs {
        /// The model's input size.
        model: usize,
        /// The channels given.
        channels: usize,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FitError::Classes { model, capacity } => write!(
                f,
                "the model has {model} classes, the pipeline holds {capacity}"
            ),
            FitError::Inputs { model, channels } => write!(
                f,
                "the model takes {model} inputs per sample, the source gives {channels} channels"
            ),
        }
    }
}

/// What the pipeline has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PipelineStats {
    /// Samples pushed (the next sample's `sample_index`).
    pub samples: u64,
    /// Windows completed (updates of the decision layer).
    pub windows: u64,
    /// Samples after which the state was not finite and was reset (see the module doc).
    pub non_finite_resets: u32,
}

/// Where a pipeline's static RAM goes, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Memory {
    /// The model's recurrent state.
    pub model_state: usize,
    /// The decision layer (ring buffer, averages, hysteresis).
    pub decision: usize,
    /// The whole pipeline: the two above plus the window position, the counters and padding.
    pub total: usize,
}

/// The per-sample state of the whole pipeline for a model of numeric type `N` and state `S`,
/// at most `C` classes and a smoothing capacity of `K` probability vectors (see the
/// [module](self) doc).
#[derive(Clone, Debug)]
pub struct Pipeline<N: Numeric, S, const C: usize, const K: usize> {
    state: S,
    window: Window,
    decider: Decider<C, K>,
    stats: PipelineStats,
    numeric: PhantomData<N>,
}

impl<N: Numeric, S, const C: usize, const K: usize> Pipeline<N, S, C, K> {
    /// Static RAM of the pipeline in bytes, at compile time.
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// A pipeline starting from the model state `state` (its zero state, e.g. a generated
    /// model's `const` one, so that the pipeline can be built in a `static`).
    pub const fn new(state: S, window: Window, decider: Decider<C, K>) -> Self {
        Pipeline {
            state,
            window,
            decider,
            stats: PipelineStats {
                samples: 0,
                windows: 0,
                non_finite_resets: 0,
            },
            numeric: PhantomData,
        }
    }

    /// The breakdown of [`RAM_BYTES`](Self::RAM_BYTES), at compile time.
    pub const fn memory() -> Memory {
        Memory {
            model_state: core::mem::size_of::<S>(),
            decision: core::mem::size_of::<Decider<C, K>>(),
            total: Self::RAM_BYTES,
        }
    }

    /// Checks that `model` fits: at most `C` classes, and `channels` inputs per sample. The
    /// pipeline runs a model that does not fit without panicking, but then decides over the
    /// first `C` classes only (and the model sees missing inputs as its kernels do).
    pub fn fit<M: StreamModel<N, State = S>>(
        &self,
        model: &M,
        channels: usize,
    ) -> Result<(), FitError> {
        if model.classes() > C {
            return Err(FitError::Classes {
                model: model.classes(),
                capacity: C,
            });
        }
        if model.input_size() != channels {
            return Err(FitError::Inputs {
                model: model.input_size(),
                channels,
            });
        }
        Ok(())
    }

    /// The model's current state.
    pub const fn state(&self) -> &S {
        &self.state
    }

    /// The window and its position.
    pub const fn window(&self) -> &Window {
        &self.window
    }

    /// The decision layer (its smoothed probabilities, the decision in force).
    pub const fn decider(&self) -> &Decider<C, K> {
        &self.decider
    }

    /// Counters.
    pub const fn stats(&self) -> PipelineStats {
        self.stats
    }
}

impl<N: Numeric, S, const C: usize, const K: usize> Pipeline<N, S, C, K>
where
    N::Pre: Logit,
{
    /// One sample, already in the model's input format: steps the model and, when the sample
    /// closes a window, updates the decision layer. Returns the event if the decision changed.
    pub fn push<M: StreamModel<N, State = S>>(
        &mut self,
        model: &M,
        x: &[N::Act],
    ) -> Option<Decision> {
        let index = self.stats.samples;
        self.stats.samples = index.saturating_add(1);

        let mut logits = [N::Pre::default(); C];
        model.step_logits(&mut self.state, x, &mut logits);
        let logits = logits.get(..model.classes().min(C)).unwrap_or_default();

        if !(model.state_is_finite(&self.state) && all_finite(logits)) {
            model.reset_state(&mut self.state);
            self.window.restart();
            self.stats.non_finite_resets = self.stats.non_finite_resets.saturating_add(1);
            return None;
        }
        if !self.window.advance() {
            return None;
        }
        self.stats.windows = self.stats.windows.saturating_add(1);
        if self.window.policy() == StatePolicy::Reset {
            model.reset_state(&mut self.state);
        }
        let mut probabilities = [0u16; C];
        let probabilities = probabilities.get_mut(..logits.len()).unwrap_or_default();
        N::Pre::softmax_q15(logits, model.logit_frac(), probabilities);
        self.decider.update(probabilities, index)
    }

    /// One sample of raw sensor counts: [`InputScaling::apply`], then [`push`](Self::push).
    pub fn push_raw<M, Sc, const I: usize>(
        &mut self,
        model: &M,
        scaling: &InputScaling<Sc, I>,
        raw: &[i16; I],
    ) -> Option<Decision>
    where
        M: StreamModel<N, State = S>,
        Sc: ScaleChannel<N::Act>,
    {
        let x: [N::Act; I] = scaling.apply(raw);
        self.push(model, &x)
    }

    /// Pulls every sample of `source` through the pipeline, handing each event to
    /// `on_decision`; returns at the end of the stream or at the source's first error.
    pub fn run<M, Sc, Src, const I: usize>(
        &mut self,
        model: &M,
        scaling: &InputScaling<Sc, I>,
        source: &mut Src,
        mut on_decision: impl FnMut(Decision),
    ) -> Result<(), Src::Error>
    where
        M: StreamModel<N, State = S>,
        Sc: ScaleChannel<N::Act>,
        Src: SampleSource<I> + ?Sized,
    {
        while let Some(raw) = source.read()? {
            if let Some(decision) = self.push_raw(model, scaling, &raw) {
                on_decision(decision);
            }
        }
        Ok(())
    }

    /// Starts over: zero model state, a new window, the decision layer before its first
    /// update. The counters keep counting (sample indices stay stream indices).
    pub fn reset<M: StreamModel<N, State = S>>(&mut self, model: &M) {
        model.reset_state(&mut self.state);
        self.window.restart();
        self.decider.reset();
    }
}
