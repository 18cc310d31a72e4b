//! # tinyrnn — streaming recurrent networks for microcontrollers
//!
//! `no_std`, allocation-free inference of Elman RNN, LSTM and GRU layers with PyTorch semantics,
//! one sensor sample per [`step`](Recurrent::step), in constant memory. The same cell code runs
//! in `f32` ([`F32`], [`F32Fast`]) and in fixed point ([`Q15`], [`W8A16`]), selected by a
//! [`Numeric`] type parameter.
//!
//! * Weights are immutable (`&self`) and can live in flash as `static` data.
//! * State is small, owned by the caller and [`reset`](Recurrent::reset)-able.
//! * Sizes are const generics for firmware ([`Lstm<N, I, H>`](Lstm)); models whose sizes are
//!   only known at run time use the slice-level weights ([`LstmWeights`], [`LayerWeights`]) and
//!   the very same step functions.
//!
//! ```
//! use tinyrnn::{Dense, F32, Gru, GruState, Model, Recurrent};
//!
//! // A GRU with 2 inputs and 3 hidden units, followed by a 2-class head. Weights in the
//! // unit-major layout `tinyrnn` uses (see `Gru`); the host tool converts PyTorch files.
//! let gru = Gru::<F32, 2, 3>::new([[[0.1; 2]; 3]; 3], [[[0.05; 3]; 3]; 3], [[0.0; 3]; 3], [0.0; 3]);
//! let head = Dense::<F32, 3, 2>::new([[0.5; 3], [-0.5; 3]], [0.0; 2]);
//! let model = Model::new(gru, head);
//! let mut state = model.new_state();
//! let mut logits = [0.0; 2];
//! for sample in [[0.2, -1.0], [0.4, 0.3], [1.0, 0.0]] {
//!     logits = model.step(&mut state, &sample);
//! }
//! assert!(logits[0] > logits[1]);
//! ```
//!
//! # Features
//!
//! * `asm`: hand-scheduled kernels for Cortex-M cores (`kernel/arm_dsp.rs` with the DSP
//!   extension, `arm_fpu.rs` with an FPU, `armv6m.rs` for Cortex-M0/M0+, `armv7m.rs` for
//!   Cortex-M3), with the bits of the portable kernels, fewer instructions and less stack. No
//!   effect on other targets. **The DSP kernels (Cortex-M4/M7/M33) load words from
//!   halfword-aligned addresses, which needs `CCR.UNALIGN_TRP = 0`** (the reset value):
//!   firmware that traps unaligned accesses must not enable `asm`.
//! * `defmt`: `defmt::Format` for the public types.
#![cfg_attr(not(test), no_std)]
// `unsafe` is confined to the optional Arm kernels (`kernel/{arm_dsp,arm_fpu,armv6m,armv7m}.rs`,
// feature `asm`).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod activation;
pub mod cell;
pub mod dense;
mod error;
pub mod head;
pub mod kernel;
pub mod model;
pub mod numeric;
pub mod pipeline;
pub mod recurrent;
#[cfg(feature = "embedded-hal")]
pub mod sensor;
pub mod topology;

pub use cell::gru::{Gru, GruState, GruWeights};
pub use cell::lstm::{
    Lstm, LstmProj, LstmProjState, LstmProjWeights, LstmState, LstmWeights, Projection,
};
pub use cell::rnn::{Rnn, RnnState, RnnWeights};
pub use cell::{LayerWeights, Nonlinearity};
pub use dense::{Dense, DenseWeights};
pub use error::ShapeError;
pub use head::mlp::{Mlp, MlpWeights};
pub use head::{Head, Network};
pub use model::{argmax, Model, ModelState};
pub use numeric::fixed_point::{QFormat, Q15, W8A16};
pub use numeric::float::{F32Fast, F32};
pub use numeric::{Elementwise, Numeric, Schedule};
pub use pipeline::decision::{Decider, Decision, DecisionConfig, Smoothing};
pub use pipeline::scale::{ChannelMap, FixedScale, FloatScale, InputScaling};
pub use pipeline::source::SampleSource;
pub use pipeline::window::{StatePolicy, Window};
pub use pipeline::{Pipeline, StreamModel};
pub use recurrent::{Recurrent, Stack, StackState};
pub use topology::{
    BiLayer, BiStack, Bidirectional, BidirectionalState, BidirectionalWeights, CellKernel,
    ErrorMetric, Feedback, ForecastState, Forecaster, SizedCell, WindowRows,
};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
