//! The numeric abstraction: the maths every cell is written against ([`Elementwise`],
//! [`Numeric`]) and how the cells order that work on a target ([`Schedule`]).
//!
//! A cell's maths is a handful of operations — a gate pre-activation (bias plus two dot
//! products), sigmoid and tanh, the LSTM cell update, the GRU interpolation. [`Numeric`] names
//! exactly those, the same surface on every target, so `cell/lstm.rs` says *what* an LSTM
//! computes once, and each numeric type says *how*: [`F32`](float::F32) with plain floats,
//! [`Q15`](fixed_point::Q15) and [`W8A16`](fixed_point::W8A16) with saturating integer
//! arithmetic and per-tensor power-of-two formats. [`Schedule`] holds the scheduling hints
//! (gate rows fused into one pass, eight units per update on the host), every one defaulted,
//! so a numeric type defined outside this crate needs only an empty `impl Schedule`.

pub mod fixed_point;
pub mod float;
mod schedule;

pub use schedule::{gru_preacts_one_by_one, preact_rows_one_by_one, Schedule};

use core::fmt::Debug;

/// The element-wise half of [`Numeric`]: activations and the LSTM and GRU state updates, on one
/// value per call (every numeric type) or one value per lane (`f32` vectors on the host).
///
/// Values are of three kinds here: activations ([`Act`](Elementwise::Act): inputs, hidden
/// state, gate outputs), gate pre-activations ([`Pre`](Elementwise::Pre): accumulator results,
/// also the head's outputs) and the LSTM cell state ([`Cell`](Elementwise::Cell)). Fixed-point
/// types carry their scale in a per-layer [`Format`](Elementwise::Format); for `f32` it is `()`.
///
/// No method can fail or panic: fixed-point implementations saturate instead of wrapping.
pub trait Elementwise: Copy + Debug + 'static {
    /// Inputs, hidden states and gate outputs.
    type Act: Copy + Default + PartialEq + Debug;
    /// Gate pre-activation and head output.
    type Pre: Copy + Default + PartialEq + Debug;
    /// LSTM cell state element.
    type Cell: Copy + Default + PartialEq + Debug;
    /// Formats of one layer's tensors (`()` for floats).
    type Format: Copy + Default + PartialEq + Debug;

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

    /// The LSTM update of a unit from its pre-activations `[i, f, g, o]`: the cell `c` becomes
    /// `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)`, and the result is `h' = σ(o) ⊙ tanh(c')`. The one
    /// definition every path uses (one unit at a time, or one unit per lane); not meant to be
    /// overridden.
    #[inline(always)]
    fn lstm_update(
        [i, f, g, o]: [Self::Pre; 4],
        c: &mut Self::Cell,
        format: &Self::Format,
    ) -> Self::Act {
        let [i, f, g, o] = [
            Self::sigmoid(i, format),
            Self::sigmoid(f, format),
            Self::tanh(g, format),
            Self::sigmoid(o, format),
        ];
        let c_new = Self::lstm_cell(f, *c, i, g, format);
        *c = c_new;
        Self::lstm_hidden(o, c_new, format)
    }

    /// The GRU update of a unit from its sums `[r, z, n_x, n_h]` (see
    /// [`Schedule::gru_preacts`]) and previous hidden value: [`gru_output`] of `σ(r)` and `σ(z)`.
    /// The one definition every path uses (one unit at a time, or one unit per lane); not meant
    /// to be overridden.
    ///
    /// [`gru_output`]: Elementwise::gru_output
    #[inline(always)]
    fn gru_update(
        [r, z, n_x, n_h]: [Self::Pre; 4],
        h_prev: Self::Act,
        format: &Self::Format,
    ) -> Self::Act {
        let (r, z) = (Self::sigmoid(r, format), Self::sigmoid(z, format));
        Self::gru_output(r, z, [n_x, n_h], h_prev, format)
    }

    /// The end of [`gru_update`](Elementwise::gru_update), from the activated gates `r`, `z`:
    /// `h' = gru_hidden(z, tanh(gru_candidate(n_x, r, n_h)), h_prev)`. Not meant to be
    /// overridden.
    #[inline(always)]
    fn gru_output(
        reset: Self::Act,
        update: Self::Act,
        [n_x, n_h]: [Self::Pre; 2],
        h_prev: Self::Act,
        format: &Self::Format,
    ) -> Self::Act {
        let n = Self::tanh(Self::gru_candidate(n_x, reset, n_h, format), format);
        Self::gru_hidden(update, n, h_prev, format)
    }
}

/// The arithmetic a recurrent cell is built from: [`Elementwise`] plus weights and the gate
/// pre-activation.
///
/// Weights are the fourth kind of value; fixed-point types scale each weight row by a
/// [`RowScale`](Numeric::RowScale) (`()` for floats).
pub trait Numeric: Elementwise {
    /// Weight matrix element.
    type Weight: Copy + Default + PartialEq + Debug;
    /// Bias element, stored at pre-activation precision.
    type Bias: Copy + Default + PartialEq + Debug;
    /// Scale of one weight row (the fixed-point format of a row; `()` for floats).
    type RowScale: Copy + Default + PartialEq + Debug;

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
}
