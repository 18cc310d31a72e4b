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

    /// Whether [`preact_rows`](Numeric::preact_rows) is faster than one
    /// [`preact`](Numeric::preact) per row on this target. Cells that can take either path ask
    /// first: for the fixed-point types LLVM specialises the row-by-row loop better.
    const FUSES_ROWS: bool = false;

    /// The pre-activations of `G` rows — the gates of one unit — at once:
    /// `out[g] = preact(bias[g], w_x[g], scale_x[g], x, w_h[g], scale_h[g], h)`.
    ///
    /// The default computes the rows one by one ([`preact_rows_one_by_one`]). A numeric type may
    /// fuse them to share every load of `x` and `h` between the rows: `f32` does on Cortex-M
    /// cores with an FPU (see [`kernel::arm`](crate::kernel)).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn preact_rows<const G: usize>(
        bias: &[Self::Bias; G],
        w_x: [&[Self::Weight]; G],
        scale_x: &[Self::RowScale; G],
        x: &[Self::Act],
        w_h: [&[Self::Weight]; G],
        scale_h: &[Self::RowScale; G],
        h: &[Self::Act],
        format: &Self::Format,
    ) -> [Self::Pre; G] {
        preact_rows_one_by_one::<Self, G>(bias, w_x, scale_x, x, w_h, scale_h, h, format)
    }

    /// The four sums of one GRU unit, `[r, z, n_x, n_h]`, from the rows r, z, n (in that order)
    /// of `w_x` and of `w_h`: `r` and `z` are full pre-activations (biases
    /// `bias[0]`, `bias[1]`), `n_x` the input part of the candidate (bias `bias[2]`, no `h`) and
    /// `n_h` its recurrent part (bias `bias[3]`, no `x`).
    ///
    /// The default uses [`preact`](Numeric::preact) four times; `f32` on Cortex-M cores with an
    /// FPU runs the three rows of each matrix in one pass.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn gru_preacts(
        bias: &[Self::Bias; 4],
        w_x: [&[Self::Weight]; 3],
        scale_x: &[Self::RowScale; 3],
        x: &[Self::Act],
        w_h: [&[Self::Weight]; 3],
        scale_h: &[Self::RowScale; 3],
        h: &[Self::Act],
        format: &Self::Format,
    ) -> [Self::Pre; 4] {
        gru_preacts_one_by_one::<Self>(bias, w_x, scale_x, x, w_h, scale_h, h, format)
    }

    /// The four LSTM gates `[σ(i), σ(f), tanh(g), σ(o)]` of a unit from its pre-activations
    /// `[i, f, g, o]`, each exactly as [`sigmoid`](Numeric::sigmoid) and
    /// [`tanh`](Numeric::tanh) give it. `f32` evaluates them as one vector on the host.
    #[inline(always)]
    fn lstm_gates([i, f, g, o]: [Self::Pre; 4], format: &Self::Format) -> [Self::Act; 4] {
        [
            Self::sigmoid(i, format),
            Self::sigmoid(f, format),
            Self::tanh(g, format),
            Self::sigmoid(o, format),
        ]
    }

    /// Units the cells update together, through [`lstm_units`](Numeric::lstm_units) and
    /// [`gru_units`](Numeric::gru_units): 1 (one at a time) or 8 (any value above 1 counts as 8).
    /// `f32` on the host takes 8
    /// and evaluates each activation of those units as one vector, so that their dependency
    /// chains (activation, cell update, activation) run side by side. Read on the host only:
    /// firmware builds update one unit at a time.
    const UNITS_PER_UPDATE: usize = 1;

    /// The LSTM update of `U` units from their pre-activations `pre[u] = [i, f, g, o]`:
    /// `c[u]` becomes `f ⊙ c + i ⊙ g` and the result is `h'[u] = o ⊙ tanh(c[u])`, each exactly
    /// as [`lstm_gates`](Numeric::lstm_gates), [`lstm_cell`](Numeric::lstm_cell) and
    /// [`lstm_hidden`](Numeric::lstm_hidden) give it for one unit.
    #[inline(always)]
    fn lstm_units<const U: usize>(
        pre: [[Self::Pre; 4]; U],
        c: &mut [Self::Cell; U],
        format: &Self::Format,
    ) -> [Self::Act; U] {
        let mut h = [Self::Act::default(); U];
        for ((h, c), pre) in h.iter_mut().zip(c).zip(pre) {
            let [i, f, g, o] = Self::lstm_gates(pre, format);
            *c = Self::lstm_cell(f, *c, i, g, format);
            *h = Self::lstm_hidden(o, *c, format);
        }
        h
    }

    /// The GRU update of `U` units from their sums `pre[u] = [r, z, n_x, n_h]` (as
    /// [`gru_preacts`](Numeric::gru_preacts) gives them) and previous hidden values: `h'[u] =
    /// gru_hidden(σ(z), tanh(gru_candidate(n_x, σ(r), n_h)), h_prev[u])`, exactly as for one
    /// unit.
    #[inline(always)]
    fn gru_units<const U: usize>(
        pre: [[Self::Pre; 4]; U],
        h_prev: [Self::Act; U],
        format: &Self::Format,
    ) -> [Self::Act; U] {
        let mut h = [Self::Act::default(); U];
        for ((h, h_prev), [r, z, n_x, n_h]) in h.iter_mut().zip(h_prev).zip(pre) {
            let (r, z) = (Self::sigmoid(r, format), Self::sigmoid(z, format));
            let n = Self::tanh(Self::gru_candidate(n_x, r, n_h, format), format);
            *h = Self::gru_hidden(z, n, h_prev, format);
        }
        h
    }

    /// On the host: the LSTM update of eight units (as [`lstm_units`](Numeric::lstm_units))
    /// straight from their weights in the lane layout of the const-generic layers (one 8-lane
    /// vector per input and gate; biases unit-major), with the sums of
    /// [`preact`](Numeric::preact). `None` where the type has no such path or the weights are
    /// not aligned for it; the caller then takes the general one.
    #[cfg(not(target_os = "none"))]
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn lstm_eight_units(
        bias: &[[Self::Bias; 4]; 8],
        w_x: &[Self::Weight],
        x: &[Self::Act],
        w_h: &[Self::Weight],
        h: &[Self::Act],
        c: &mut [Self::Cell; 8],
    ) -> Option<[Self::Act; 8]> {
        let _ = (bias, w_x, x, w_h, h, c);
        None
    }

    /// On the host: the GRU update of eight units (as [`gru_units`](Numeric::gru_units))
    /// straight from their weights in the lane layout (see
    /// [`lstm_eight_units`](Numeric::lstm_eight_units)); `bias[u]` = `[b_r, b_z, b_in]`, with
    /// the sums of [`gru_preacts`](Numeric::gru_preacts). `None` where the type has no such
    /// path or the weights are not aligned for it.
    #[cfg(not(target_os = "none"))]
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn gru_eight_units(
        bias: &[[Self::Bias; 3]; 8],
        bias_hn: &[Self::Bias; 8],
        w_x: &[Self::Weight],
        x: &[Self::Act],
        w_h: &[Self::Weight],
        h: &[Self::Act],
        h_old: &[Self::Act; 8],
    ) -> Option<[Self::Act; 8]> {
        let _ = (bias, bias_hn, w_x, x, w_h, h, h_old);
        None
    }

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

/// [`Numeric::preact_rows`] as `G` calls of [`Numeric::preact`], one per row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn preact_rows_one_by_one<N: Numeric, const G: usize>(
    bias: &[N::Bias; G],
    w_x: [&[N::Weight]; G],
    scale_x: &[N::RowScale; G],
    x: &[N::Act],
    w_h: [&[N::Weight]; G],
    scale_h: &[N::RowScale; G],
    h: &[N::Act],
    format: &N::Format,
) -> [N::Pre; G] {
    // A plain loop over a const count (unrolled), not `array::from_fn`: that closure can stay
    // out of line, which costs the per-size specialisation of every dot product.
    let mut out = [N::Pre::default(); G];
    for (g, out) in out.iter_mut().enumerate() {
        *out = N::preact(
            bias[g], w_x[g], scale_x[g], x, w_h[g], scale_h[g], h, format,
        );
    }
    out
}

/// [`Numeric::gru_preacts`] as four calls of [`Numeric::preact`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn gru_preacts_one_by_one<N: Numeric>(
    bias: &[N::Bias; 4],
    w_x: [&[N::Weight]; 3],
    scale_x: &[N::RowScale; 3],
    x: &[N::Act],
    w_h: [&[N::Weight]; 3],
    scale_h: &[N::RowScale; 3],
    h: &[N::Act],
    format: &N::Format,
) -> [N::Pre; 4] {
    let [b_r, b_z, b_in, b_hn] = *bias;
    [
        N::preact(b_r, w_x[0], scale_x[0], x, w_h[0], scale_h[0], h, format),
        N::preact(b_z, w_x[1], scale_x[1], x, w_h[1], scale_h[1], h, format),
        N::preact(b_in, w_x[2], scale_x[2], x, &[], scale_h[2], &[], format),
        N::preact(b_hn, &[], scale_x[2], &[], w_h[2], scale_h[2], h, format),
    ]
}
