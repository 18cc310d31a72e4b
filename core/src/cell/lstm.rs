//! Long short-term memory cell, PyTorch `nn.LSTM` semantics.
//!
//! For input `x` and previous state `(h, c)`, with `σ` the logistic sigmoid:
//!
//! ```text
//! i  = σ(W_ii x + b_ii + W_hi h + b_hi)        input gate
//! f  = σ(W_if x + b_if + W_hf h + b_hf)        forget gate
//! g  = tanh(W_ig x + b_ig + W_hg h + b_hg)     candidate
//! o  = σ(W_io x + b_io + W_ho h + b_ho)        output gate
//! c' = f ⊙ c + i ⊙ g
//! h' = o ⊙ tanh(c')
//! ```
//!
//! PyTorch stacks the four gates' rows in the order i, f, g, o. `tinyrnn` stores them
//! **unit-major**: for hidden unit `j`, the rows of gates i, f, g, o are adjacent
//! (`w_ih[j][gate][input]`), so one pass over a unit's rows produces everything needed for
//! `c'_j` and `h'_j`. The two biases are folded into one (`b_i* + b_h*`), which is exact
//! in real arithmetic. The host tool reorders PyTorch tensors at import time.
//!
//! With a projection (`nn.LSTM(..., proj_size=P)`), the hidden state is `h' = W_hr (o ⊙
//! tanh(c'))`, `P` values, and the recurrent rows read those `P`: [`LstmProj`] and
//! [`LstmProjWeights`], a separate code path (the plain LSTM's is unchanged).

use super::{gate_rows, in_blocks_of_eight, DoubleBuffer, EightUnitLanes};
use crate::activation::float::FloatActivation;
use crate::error::{check_len, ShapeError};
use crate::numeric::fixed_point::{round_shift, sat_i16, Fixed, FixedWeight, QFormat};
use crate::numeric::float::Float;
use crate::numeric::{Numeric, Schedule};
use crate::recurrent::Recurrent;

/// Gates per unit.
pub const GATES: usize = 4;

/// LSTM weights as slices, for sizes known only at run time (and the kernel behind [`Lstm`]).
///
/// Layout (unit-major, see the module doc): `w_ih[H][4][I]`, `w_hh[H][4][H]`, `bias[H][4]`,
/// row scales `[H][4]` each, gate order i, f, g, o.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmWeights<'a, N: Numeric> {
    input_size: usize,
    hidden_size: usize,
    w_ih: &'a [N::Weight],
    w_hh: &'a [N::Weight],
    bias: &'a [N::Bias],
    scale_ih: &'a [N::RowScale],
    scale_hh: &'a [N::RowScale],
    format: N::Format,
}

impl<'a, N: Numeric> LstmWeights<'a, N> {
    /// Checks every length against `input_size` and `hidden_size`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        w_ih: &'a [N::Weight],
        w_hh: &'a [N::Weight],
        bias: &'a [N::Bias],
        scale_ih: &'a [N::RowScale],
        scale_hh: &'a [N::RowScale],
        format: N::Format,
    ) -> Result<Self, ShapeError> {
        if input_size == 0 || hidden_size == 0 {
            return Err(ShapeError::ZeroSize);
        }
        let rows = GATES * hidden_size;
        check_len("w_ih", w_ih, rows * input_size)?;
        check_len("w_hh", w_hh, rows * hidden_size)?;
        check_len("bias", bias, rows)?;
        check_len("scale_ih", scale_ih, rows)?;
        check_len("scale_hh", scale_hh, rows)?;
        Ok(LstmWeights {
            input_size,
            hidden_size,
            w_ih,
            w_hh,
            bias,
            scale_ih,
            scale_hh,
            format,
        })
    }

    /// Input features.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Hidden units.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// The layer's fixed-point formats (`()` for floats).
    pub fn format(&self) -> &N::Format {
        &self.format
    }
}

impl<N: Schedule> LstmWeights<'_, N> {
    /// One timestep: reads `x` and `h_prev`, updates `c` in place and writes `h_next`.
    ///
    /// `h_prev` and `h_next` are distinct buffers of `hidden_size` elements (every unit reads
    /// all of `h_prev`); `c` has `hidden_size` elements. Shorter slices shorten the work instead
    /// of panicking.
    pub fn step(&self, x: &[N::Act], h_prev: &[N::Act], h_next: &mut [N::Act], c: &mut [N::Cell]) {
        if in_blocks_of_eight::<N>(|| {
            self.step_in_blocks(x, h_prev, h_next, c);
            true
        }) {
            return;
        }
        let (i, h, fmt) = (
            self.input_size.max(1),
            self.hidden_size.max(1),
            &self.format,
        );
        let units = self
            .w_ih
            .chunks_exact(GATES * i)
            .zip(self.w_hh.chunks_exact(GATES * h))
            .zip(self.bias.chunks_exact(GATES))
            .zip(
                self.scale_ih
                    .chunks_exact(GATES)
                    .zip(self.scale_hh.chunks_exact(GATES)),
            )
            .zip(h_next.iter_mut().zip(c.iter_mut()));
        for ((((w_x, w_h), bias), (s_x, s_h)), (h_out, c_j)) in units {
            // The unit's four adjacent rows give everything c'_j and h'_j need.
            let pre = if N::FUSES_ROWS {
                let (Ok(bias), Ok(s_x), Ok(s_h)) =
                    (bias.try_into(), s_x.try_into(), s_h.try_into())
                else {
                    return;
                };
                let (rows_x, rows_h) = (gate_rows(w_x, i), gate_rows(w_h, h));
                N::preact_rows::<GATES>(bias, rows_x, s_x, x, rows_h, s_h, h_prev, fmt)
            } else {
                let mut gates = w_x
                    .chunks_exact(i)
                    .zip(w_h.chunks_exact(h))
                    .zip(bias.iter().zip(s_x.iter().zip(s_h)))
                    .map(|((wx, wh), (&b, (&sx, &sh)))| {
                        N::preact(b, wx, sx, x, wh, sh, h_prev, fmt)
                    });
                let (Some(pi), Some(pf), Some(pg), Some(po)) =
                    (gates.next(), gates.next(), gates.next(), gates.next())
                else {
                    return;
                };
                [pi, pf, pg, po]
            };
            *h_out = N::lstm_update(pre, c_j, fmt);
        }
    }

    /// [`step`](Self::step) with eight units per [`Schedule::lstm_update_eight`] (the host's
    /// `f32`); a last block of `hidden_size mod 8` units leaves the spare lanes unused. Inlined
    /// into its caller: where the sizes are constants (an [`Lstm`]) LLVM specialises the loops
    /// for them.
    #[inline(always)]
    fn step_in_blocks(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        c: &mut [N::Cell],
    ) {
        const UNITS: usize = 8;
        let (i, h, fmt) = (
            self.input_size.max(1),
            self.hidden_size.max(1),
            &self.format,
        );
        let blocks = self
            .w_ih
            .chunks(UNITS * GATES * i)
            .zip(self.w_hh.chunks(UNITS * GATES * h))
            .zip(self.bias.chunks(UNITS * GATES))
            .zip(
                self.scale_ih
                    .chunks(UNITS * GATES)
                    .zip(self.scale_hh.chunks(UNITS * GATES)),
            )
            .zip(h_next.chunks_mut(UNITS).zip(c.chunks_mut(UNITS)));
        for ((((w_x, w_h), bias), (s_x, s_h)), (h_out, c_out)) in blocks {
            let units = w_x
                .chunks_exact(GATES * i)
                .zip(w_h.chunks_exact(GATES * h))
                .zip(bias.chunks_exact(GATES))
                .zip(s_x.chunks_exact(GATES).zip(s_h.chunks_exact(GATES)))
                .zip(c_out.iter());
            let mut pre = [[N::Pre::default(); GATES]; UNITS];
            let mut cells = [N::Cell::default(); UNITS];
            for ((pre, cell), ((((w_x, w_h), bias), (s_x, s_h)), &c_j)) in
                pre.iter_mut().zip(&mut cells).zip(units)
            {
                // The unit's four rows in one `preact_rows`, fused or not (the same sums).
                let (Ok(bias), Ok(s_x), Ok(s_h)) =
                    (bias.try_into(), s_x.try_into(), s_h.try_into())
                else {
                    return;
                };
                let (rows_x, rows_h) = (gate_rows(w_x, i), gate_rows(w_h, h));
                *pre = N::preact_rows::<GATES>(bias, rows_x, s_x, x, rows_h, s_h, h_prev, fmt);
                *cell = c_j;
            }
            let h_new = N::lstm_update_eight(pre, &mut cells, fmt);
            // Only the block's real units: `h_out` and `c_out` are shorter in a last block.
            for ((h_out, c_out), (h_new, c_new)) in h_out
                .iter_mut()
                .zip(c_out)
                .zip(h_new.into_iter().zip(cells))
            {
                (*h_out, *c_out) = (h_new, c_new);
            }
        }
    }

    /// The layer's units from `first` on, as a layer of their own (same inputs and `h`).
    fn units_from(&self, first: usize) -> Self {
        let (i, h) = (self.input_size.max(1), self.hidden_size.max(1));
        LstmWeights {
            w_ih: self.w_ih.get(first * GATES * i..).unwrap_or_default(),
            w_hh: self.w_hh.get(first * GATES * h..).unwrap_or_default(),
            bias: self.bias.get(first * GATES..).unwrap_or_default(),
            scale_ih: self.scale_ih.get(first * GATES..).unwrap_or_default(),
            scale_hh: self.scale_hh.get(first * GATES..).unwrap_or_default(),
            ..*self
        }
    }
}

/// An LSTM layer with `I` inputs and `H` hidden units, weights stored inline (can be `static`).
///
/// On the host the layer also keeps its weights a second time, in blocks of eight units with one
/// lane per unit, and steps from that copy (the same bits; see `cell::EightUnitLanes`): twice
/// the memory there, none of it on a microcontroller (where that field is empty).
#[derive(Clone, Debug, PartialEq)]
pub struct Lstm<N: Numeric, const I: usize, const H: usize> {
    w_ih: [[[N::Weight; I]; GATES]; H],
    w_hh: [[[N::Weight; H]; GATES]; H],
    bias: [[N::Bias; GATES]; H],
    scale_ih: [[N::RowScale; GATES]; H],
    scale_hh: [[N::RowScale; GATES]; H],
    format: N::Format,
    /// The weights again, eight units per block, for the host's vector path.
    lanes: EightUnitLanes<N::Weight, GATES, I, H>,
}

impl<N: Numeric, const I: usize, const H: usize> Lstm<N, I, H> {
    /// Builds a layer from unit-major arrays (see [`LstmWeights`]) and fixed-point scales.
    pub const fn from_parts(
        w_ih: [[[N::Weight; I]; GATES]; H],
        w_hh: [[[N::Weight; H]; GATES]; H],
        bias: [[N::Bias; GATES]; H],
        scale_ih: [[N::RowScale; GATES]; H],
        scale_hh: [[N::RowScale; GATES]; H],
        format: N::Format,
    ) -> Self {
        const {
            assert!(
                I > 0 && H > 0,
                "an LSTM needs at least one input and one hidden unit"
            )
        };
        Lstm {
            lanes: EightUnitLanes::new(&w_ih, &w_hh),
            w_ih,
            w_hh,
            bias,
            scale_ih,
            scale_hh,
            format,
        }
    }

    /// The slice view the kernel runs on.
    pub fn weights(&self) -> LstmWeights<'_, N> {
        LstmWeights {
            input_size: I,
            hidden_size: H,
            w_ih: self.w_ih.as_flattened().as_flattened(),
            w_hh: self.w_hh.as_flattened().as_flattened(),
            bias: self.bias.as_flattened(),
            scale_ih: self.scale_ih.as_flattened(),
            scale_hh: self.scale_hh.as_flattened(),
            format: self.format,
        }
    }
}

impl<A: FloatActivation, const I: usize, const H: usize> Lstm<Float<A>, I, H> {
    /// Builds an `f32` layer from unit-major weights and folded biases (`b_ih + b_hh`).
    pub const fn new(
        w_ih: [[[f32; I]; GATES]; H],
        w_hh: [[[f32; H]; GATES]; H],
        bias: [[f32; GATES]; H],
    ) -> Self {
        Self::from_parts(w_ih, w_hh, bias, [[(); GATES]; H], [[(); GATES]; H], ())
    }
}

impl<N: Schedule, const I: usize, const H: usize> Lstm<N, I, H> {
    /// One step eight units at a time (the host's `f32`): blocks of eight units from the lane
    /// layout ([`Schedule::lstm_eight_units`]), the last `H mod 8` units (or all of them, for a
    /// type without that path) through the slice step.
    #[inline(always)]
    fn step_in_blocks(
        &self,
        x: &[N::Act; I],
        h_prev: &[N::Act; H],
        h_next: &mut [N::Act; H],
        c: &mut [N::Cell; H],
    ) {
        let mut done = 0;
        let (bias, h_out) = (self.bias.as_chunks::<8>().0, h_next.as_chunks_mut::<8>().0);
        let blocks = bias
            .iter()
            .zip(h_out.iter_mut().zip(c.as_chunks_mut::<8>().0));
        for (b, (bias, (h_out, c_out))) in blocks.enumerate() {
            let (w_x, w_h) = self.lanes.block(b);
            let Some(h_new) = N::lstm_eight_units(bias, w_x, x, w_h, h_prev, c_out) else {
                break;
            };
            *h_out = h_new;
            done += 8;
        }
        let rest = self.weights().units_from(done);
        let (h_next, c) = (h_next.get_mut(done..), c.get_mut(done..));
        rest.step_in_blocks(x, h_prev, h_next.unwrap_or_default(), c.unwrap_or_default());
    }
}

/// The state of an [`Lstm`]: hidden state (double-buffered) and cell state.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmState<N: Numeric, const H: usize> {
    h: DoubleBuffer<N::Act, H>,
    c: [N::Cell; H],
}

impl<N: Numeric, const H: usize> Default for LstmState<N, H> {
    fn default() -> Self {
        LstmState {
            h: DoubleBuffer::default(),
            c: [N::Cell::default(); H],
        }
    }
}

impl<N: Numeric, const H: usize> LstmState<N, H> {
    /// The current hidden state `h`.
    pub fn hidden(&self) -> &[N::Act; H] {
        self.h.current()
    }

    /// The current cell state `c`.
    pub fn cell(&self) -> &[N::Cell; H] {
        &self.c
    }
}

impl<N: Schedule, const I: usize, const H: usize> Recurrent<N> for Lstm<N, I, H> {
    type State = LstmState<N, H>;
    const INPUT: usize = I;
    const OUTPUT: usize = H;

    fn step<'s>(&self, state: &'s mut LstmState<N, H>, x: &[N::Act]) -> &'s [N::Act] {
        let c = &mut state.c;
        let weights = self.weights();
        state.h.advance(|prev, next| {
            // The host (`f32`): one copy of the step per (I, H), specialised for them (the
            // sizes stay constants, and the input is cut to exactly `I`; a shorter one takes
            // the general step).
            let blocks = || {
                let x = x.first_chunk::<I>();
                x.map(|x| self.step_in_blocks(x, prev, next, c)).is_some()
            };
            if !in_blocks_of_eight::<N>(blocks) {
                weights.step(x, prev, next, c);
            }
        })
    }

    fn reset(&self, state: &mut LstmState<N, H>) {
        *state = LstmState::default();
    }
}

/// What an LSTM with a projection (`nn.LSTM(..., proj_size=P)`) needs of a numeric type beyond
/// [`Schedule`]: the format its units update in, and the projection of their outputs.
///
/// With a projection, the hidden state a layer outputs and feeds back is `h = W_hr · m`, `P`
/// values, where `m = o ⊙ tanh(c)` are the `H` unit outputs of a plain LSTM. For fixed point,
/// `m` is Q15 (as every LSTM's `h` is), and `h` takes the layer's `h_frac`, which may be below
/// 15: `|h_p| ≤ Σ_j |W_hr[p][j]|` can exceed 1.
pub trait Projection: Schedule {
    /// The format the units update in, from the layer's: the layer's with `h_frac` = 15 (gate
    /// outputs and `m` are Q15, whatever the format of the projected `h`). `()` for floats.
    fn unit_format(layer: &Self::Format) -> Self::Format;

    /// One projected value `W_hr[p] · m`, in the layer's hidden-state format.
    ///
    /// Fixed point: the exact dot product of the row (`scale` fractional bits) with the Q15
    /// `m`, rounded half up once to `layer.h_frac` and saturated to `i16`; error ≤ ½ LSB of
    /// `h_frac` beyond the weights' own. `f32`: [`kernel::dot_f32`](crate::kernel::dot_f32).
    fn project(
        w_hr: &[Self::Weight],
        scale: Self::RowScale,
        m: &[Self::Act],
        layer: &Self::Format,
    ) -> Self::Act;
}

impl<A: FloatActivation> Projection for Float<A> {
    #[inline(always)]
    fn unit_format(_: &()) {}

    #[inline(always)]
    fn project(w_hr: &[f32], _: (), m: &[f32], _: &()) -> f32 {
        crate::kernel::dot_f32(w_hr, m)
    }
}

impl<W: FixedWeight> Projection for Fixed<W> {
    #[inline(always)]
    fn unit_format(layer: &QFormat) -> QFormat {
        QFormat {
            h_frac: 15,
            ..*layer
        }
    }

    #[inline(always)]
    fn project(w_hr: &[W], scale: i8, m: &[i16], layer: &QFormat) -> i16 {
        // Row format `scale`, m Q15: the product has `scale + 15` fractional bits.
        let shift = scale as i32 + 15 - layer.h_frac as i32;
        sat_i16(round_shift(W::dot(w_hr, m), shift))
    }
}

/// Projected LSTM weights as slices, for sizes known only at run time (and the kernel behind
/// [`LstmProj`]): PyTorch's `nn.LSTM(input, hidden, proj_size=proj)`.
///
/// ```text
/// i, f, g, o, c'   as in a plain LSTM (module doc), with h of P values
/// m  = o ⊙ tanh(c')                    H unit outputs
/// h' = W_hr m                          P values: the output and the next step's h
/// ```
///
/// Layout (unit-major, as [`LstmWeights`]): `w_ih[H][4][I]`, `w_hh[H][4][P]`, `bias[H][4]`,
/// row scales `[H][4]` each; `w_hr[P][H]` (PyTorch's `weight_hr_l{k}`, no bias) with one row
/// scale per row `[P]`. The format's `h_frac` is that of the projected `h` (and of the next
/// layer's input); see [`Projection`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmProjWeights<'a, N: Numeric> {
    input_size: usize,
    hidden_size: usize,
    proj_size: usize,
    w_ih: &'a [N::Weight],
    w_hh: &'a [N::Weight],
    bias: &'a [N::Bias],
    scale_ih: &'a [N::RowScale],
    scale_hh: &'a [N::RowScale],
    w_hr: &'a [N::Weight],
    scale_hr: &'a [N::RowScale],
    format: N::Format,
}

impl<'a, N: Numeric> LstmProjWeights<'a, N> {
    /// Checks every length against `input_size`, `hidden_size` and `proj_size`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        proj_size: usize,
        w_ih: &'a [N::Weight],
        w_hh: &'a [N::Weight],
        bias: &'a [N::Bias],
        scale_ih: &'a [N::RowScale],
        scale_hh: &'a [N::RowScale],
        w_hr: &'a [N::Weight],
        scale_hr: &'a [N::RowScale],
        format: N::Format,
    ) -> Result<Self, ShapeError> {
        if input_size == 0 || hidden_size == 0 || proj_size == 0 {
            return Err(ShapeError::ZeroSize);
        }
        let rows = GATES * hidden_size;
        check_len("w_ih", w_ih, rows * input_size)?;
        check_len("w_hh", w_hh, rows * proj_size)?;
        check_len("bias", bias, rows)?;
        check_len("scale_ih", scale_ih, rows)?;
        check_len("scale_hh", scale_hh, rows)?;
        check_len("w_hr", w_hr, proj_size * hidden_size)?;
        check_len("scale_hr", scale_hr, proj_size)?;
        Ok(LstmProjWeights {
            input_size,
            hidden_size,
            proj_size,
            w_ih,
            w_hh,
            bias,
            scale_ih,
            scale_hh,
            w_hr,
            scale_hr,
            format,
        })
    }

    /// Input features.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Units (cell-state values).
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Projected hidden-state values (the layer's output size).
    pub fn proj_size(&self) -> usize {
        self.proj_size
    }

    /// The layer's fixed-point formats (`()` for floats).
    pub fn format(&self) -> &N::Format {
        &self.format
    }
}

impl<N: Projection> LstmProjWeights<'_, N> {
    /// One timestep: reads `x` and `h_prev` (`proj_size`), updates `c` (`hidden_size`) in
    /// place, leaves the unit outputs `m` in `m` (`hidden_size`, scratch) and writes the
    /// projection `h_next` (`proj_size`, a distinct buffer). Shorter slices shorten the work
    /// instead of panicking.
    pub fn step(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        c: &mut [N::Cell],
        m: &mut [N::Act],
    ) {
        let (i, p, fmt) = (self.input_size.max(1), self.proj_size.max(1), &self.format);
        let unit_fmt = N::unit_format(fmt);
        let units = self
            .w_ih
            .chunks_exact(GATES * i)
            .zip(self.w_hh.chunks_exact(GATES * p))
            .zip(self.bias.chunks_exact(GATES))
            .zip(
                self.scale_ih
                    .chunks_exact(GATES)
                    .zip(self.scale_hh.chunks_exact(GATES)),
            )
            .zip(m.iter_mut().zip(c.iter_mut()));
        for ((((w_x, w_h), bias), (s_x, s_h)), (m_j, c_j)) in units {
            // As `LstmWeights::step`, with recurrent rows of P weights; the sums take the
            // layer's format (h_prev is the projected h), the update the units' (Q15 gates).
            let (Ok(bias), Ok(s_x), Ok(s_h)) = (bias.try_into(), s_x.try_into(), s_h.try_into())
            else {
                return;
            };
            let (rows_x, rows_h) = (gate_rows(w_x, i), gate_rows(w_h, p));
            let pre = N::preact_rows::<GATES>(bias, rows_x, s_x, x, rows_h, s_h, h_prev, fmt);
            *m_j = N::lstm_update(pre, c_j, &unit_fmt);
        }
        let rows = self.w_hr.chunks_exact(self.hidden_size.max(1));
        for ((w, &s), h_out) in rows.zip(self.scale_hr).zip(h_next) {
            *h_out = N::project(w, s, m, fmt);
        }
    }
}

/// An LSTM layer with a projection (`proj_size = P`): `I` inputs, `H` units, `P` outputs;
/// weights inline (can be `static`). See [`LstmProjWeights`] for the equations and layout.
#[derive(Clone, Debug, PartialEq)]
pub struct LstmProj<N: Numeric, const I: usize, const H: usize, const P: usize> {
    w_ih: [[[N::Weight; I]; GATES]; H],
    w_hh: [[[N::Weight; P]; GATES]; H],
    bias: [[N::Bias; GATES]; H],
    scale_ih: [[N::RowScale; GATES]; H],
    scale_hh: [[N::RowScale; GATES]; H],
    w_hr: [[N::Weight; H]; P],
    scale_hr: [N::RowScale; P],
    format: N::Format,
}

impl<N: Numeric, const I: usize, const H: usize, const P: usize> LstmProj<N, I, H, P> {
    /// Builds a layer from unit-major arrays (see [`LstmProjWeights`]) and fixed-point scales.
    #[allow(clippy::too_many_arguments)]
    pub const fn from_parts(
        w_ih: [[[N::Weight; I]; GATES]; H],
        w_hh: [[[N::Weight; P]; GATES]; H],
        bias: [[N::Bias; GATES]; H],
        scale_ih: [[N::RowScale; GATES]; H],
        scale_hh: [[N::RowScale; GATES]; H],
        w_hr: [[N::Weight; H]; P],
        scale_hr: [N::RowScale; P],
        format: N::Format,
    ) -> Self {
        const {
            assert!(
                I > 0 && H > 0 && P > 0,
                "a projected LSTM needs at least one input, unit and output"
            )
        };
        LstmProj {
            w_ih,
            w_hh,
            bias,
            scale_ih,
            scale_hh,
            w_hr,
            scale_hr,
            format,
        }
    }

    /// The slice view the kernel runs on.
    pub fn weights(&self) -> LstmProjWeights<'_, N> {
        LstmProjWeights {
            input_size: I,
            hidden_size: H,
            proj_size: P,
            w_ih: self.w_ih.as_flattened().as_flattened(),
            w_hh: self.w_hh.as_flattened().as_flattened(),
            bias: self.bias.as_flattened(),
            scale_ih: self.scale_ih.as_flattened(),
            scale_hh: self.scale_hh.as_flattened(),
            w_hr: self.w_hr.as_flattened(),
            scale_hr: &self.scale_hr,
            format: self.format,
        }
    }
}

impl<A: FloatActivation, const I: usize, const H: usize, const P: usize>
    LstmProj<Float<A>, I, H, P>
{
    /// Builds an `f32` layer from unit-major weights, folded biases (`b_ih + b_hh`) and
    /// PyTorch's `weight_hr` (`[P][H]`).
    pub const fn new(
        w_ih: [[[f32; I]; GATES]; H],
        w_hh: [[[f32; P]; GATES]; H],
        bias: [[f32; GATES]; H],
        w_hr: [[f32; H]; P],
    ) -> Self {
        let no_scales = [[(); GATES]; H];
        Self::from_parts(w_ih, w_hh, bias, no_scales, no_scales, w_hr, [(); P], ())
    }
}

/// The state of an [`LstmProj`]: the projected hidden state (double-buffered), the cell state,
/// and the unit outputs of the last step (`m`, the step's scratch).
#[derive(Clone, Debug, PartialEq)]
pub struct LstmProjState<N: Numeric, const H: usize, const P: usize> {
    h: DoubleBuffer<N::Act, P>,
    c: [N::Cell; H],
    m: [N::Act; H],
}

impl<N: Numeric, const H: usize, const P: usize> Default for LstmProjState<N, H, P> {
    fn default() -> Self {
        LstmProjState {
            h: DoubleBuffer::default(),
            c: [N::Cell::default(); H],
            m: [N::Act::default(); H],
        }
    }
}

impl<N: Numeric, const H: usize, const P: usize> LstmProjState<N, H, P> {
    /// The current (projected) hidden state `h`.
    pub fn hidden(&self) -> &[N::Act; P] {
        self.h.current()
    }

    /// The current cell state `c`.
    pub fn cell(&self) -> &[N::Cell; H] {
        &self.c
    }
}

impl<N: Projection, const I: usize, const H: usize, const P: usize> Recurrent<N>
    for LstmProj<N, I, H, P>
{
    type State = LstmProjState<N, H, P>;
    const INPUT: usize = I;
    const OUTPUT: usize = P;

    fn step<'s>(&self, state: &'s mut LstmProjState<N, H, P>, x: &[N::Act]) -> &'s [N::Act] {
        let (c, m) = (&mut state.c, &mut state.m);
        let weights = self.weights();
        state
            .h
            .advance(|prev, next| weights.step(x, prev, next, c, m))
    }

    fn reset(&self, state: &mut LstmProjState<N, H, P>) {
        *state = LstmProjState::default();
    }
}

impl<N: Numeric, const H: usize, const P: usize> crate::pipeline::FiniteState
    for LstmProjState<N, H, P>
where
    N::Act: crate::pipeline::FiniteCheck,
    N::Cell: crate::pipeline::FiniteCheck,
{
    /// `h` and `c`: `m` is recomputed by every step before it is read.
    #[inline]
    fn is_finite(&self) -> bool {
        crate::pipeline::all_finite(self.hidden()) && crate::pipeline::all_finite(self.cell())
    }
}
