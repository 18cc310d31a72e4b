//! The numeric abstraction: one trait, [`Numeric`], that every cell is written against.
//!
//! A cell's maths is a handful of operations — a gate pre-activation (bias plus two dot
//! products), sigmoid and tanh, the LSTM cell update, the GRU interpolation. [`Numeric`] names
//! exactly those, so `cell/lstm.rs` says *what* an LSTM computes once, and each numeric type says
//! *how*: [`F32`](float::F32) with plain floats, [`Q15`](fixed_point::Q15) and
//! [`W8A16`](fixed_point::W8A16) with saturating integer arithmetic and per-tensor power-of-two
//! formats.

pub mod fixed_point;
pub mod float;

use core::fmt::Debug;

/// The arithmetic a recurrent cell is built from.
///
/// Values are of four kinds: activations ([`Act`](Numeric::Act): inputs, hidden state, gate
/// outputs), weights, gate pre-activations ([`Pre`](Numeric::Pre): accumulator results, also the
/// head's outputs) and the LSTM cell state ([`Cell`](Numeric::Cell)). Fixed-point types carry
/// their scale in a per-layer [`Format`](Numeric::Format) and a per-output-row
/// [`RowScale`](Numeric::RowScale); for `f32` both are `()`.
///
/// No method can fail or panic: fixed-point implementations saturate instead of wrapping.
pub trait Numeric: Copy + Debug + 'static {
    /// Inputs, hidden states and gate outputs.
    type Act: Copy + Default + PartialEq + Debug;
    /// Weight matrix element.
    type Weight: Copy + Default + PartialEq + Debug;
    /// Bias element, stored at pre-activation precision.
    type Bias: Copy + Default + PartialEq + Debug;
    /// Gate pre-activation and head output.
    type Pre: Copy + Default + PartialEq + Debug;
    /// LSTM cell state element.
    type Cell: Copy + Default + PartialEq + Debug;
    /// Scale of one weight row (the fixed-point format of a row; `()` for floats).
    type RowScale: Copy + Default + PartialEq + Debug;
    /// Formats of one layer's tensors (`()` for floats).
    type Format: Copy + Default + PartialEq + Debug;

    /// `bias + w_x · x + w_h · h`, the pre-activation of one gate of one unit.
    ///
    /// `w_x`/`x` and `w_h`/`h` are zipped: extra elements of the longer side are ignored (the
    /// weight constructors guarantee equal lengths). Either pair may be empty.
    #[allow(clippy::too_many_arguments)]
    fn preact(
        bias: Self::Bias,
        w_x: &[Self::Weight],
        scale_x: Self::RowScale,
        x: &[Self::Act],
        w_h: &[Self::Weight],
        scale_h: Self::RowScale,
        h: &[Self::Act],
        format: &Self::Format,
    ) -> Self::Pre;

    /// Logistic sigmoid of a pre-activation.
    fn sigmoid(pre: Self::Pre, format: &Self::Format) -> Self::Act;
    /// Hyperbolic tangent of a pre-activation.
    fn tanh(pre: Self::Pre, format: &Self::Format) -> Self::Act;
    /// `max(pre, 0)`, in the hidden-state format.
    fn relu(pre: Self::Pre, format: &Self::Format) -> Self::Act;
    /// GRU candidate pre-activation `x_part + r ⊙ h_part`.
    fn gru_candidate(
        x_part: Self::Pre,
        reset: Self::Act,
        h_part: Self::Pre,
        format: &Self::Format,
    ) -> Self::Pre;
    /// GRU output `(1 - z) ⊙ n + z ⊙ h`.
    fn gru_hidden(
        update: Self::Act,
        candidate: Self::Act,
        h_prev: Self::Act,
        format: &Self::Format,
    ) -> Self::Act;
    /// LSTM cell update `f ⊙ c + i ⊙ g`.
    fn lstm_cell(
        forget: Self::Act,
        c: Self::Cell,
        input: Self::Act,
        candidate: Self::Act,
        format: &Self::Format,
    ) -> Self::Cell;
    /// LSTM output `o ⊙ tanh(c)`.
    fn lstm_hidden(output: Self::Act, c: Self::Cell, format: &Self::Format) -> Self::Act;
}
