//! Gated recurrent unit, PyTorch `nn.GRU` semantics ("reset after" / linear-before-reset).
//!
//! For input `x` and previous hidden state `h`, with `σ` the logistic sigmoid:
//!
//! ```text
//! r  = σ(W_ir x + b_ir + W_hr h + b_hr)             reset gate
//! z  = σ(W_iz x + b_iz + W_hz h + b_hz)             update gate
//! n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))    candidate
//! h' = (1 - z) ⊙ n + z ⊙ h
//! ```
//!
//! PyTorch stacks the rows in the order r, z, n. `tinyrnn` stores them **unit-major**
//! (`w_ih[j][gate][input]`, see [`lstm`](super::lstm) for why). The r and z biases are folded
//! (`b_i* + b_h*`); `b_in` and `b_hn` stay separate because `r` multiplies only `W_hn h + b_hn`.

use super::{gate_rows, in_blocks_of_eight, DoubleBuffer, EightUnitLanes};
use crate::activation::float::FloatActivation;
use crate::error::{check_len, ShapeError};
use crate::numeric::float::Float;
use crate::numeric::{Numeric, Schedule};
use crate::recurrent::Recurrent;

/// Gates per unit.
pub const GATES: usize = 3;

/// GRU weights as slices, for sizes known only at run time (and the kernel behind [`Gru`]).
///
/// Layout: `w_ih[H][3][I]`, `w_hh[H][3][H]`, `bias[H][3]` = (`b_ir + b_hr`, `b_iz + b_hz`,
/// `b_in`), `bias_hn[H]`, row scales `[H][3]` each; gate order r, z, n.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GruWeights<'a, N: Numeric> {
    input_size: usize,
    hidden_size: usize,
    w_ih: &'a [N::Weight],
    w_hh: &'a [N::Weight],
    bias: &'a [N::Bias],
    bias_hn: &'a [N::Bias],
    scale_ih: &'a [N::RowScale],
    scale_hh: &'a [N::RowScale],
    format: N::Format,
}

impl<'a, N: Numeric> GruWeights<'a, N> {
    /// Checks every length against `input_size` and `hidden_size`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        w_ih: &'a [N::Weight],
        w_hh: &'a [N::Weight],
        bias: &'a [N::Bias],
        bias_hn: &'a [N::Bias],
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
        check_len("bias_hn", bias_hn, hidden_size)?;
        check_len("scale_ih", scale_ih, rows)?;
        check_len("scale_hh", scale_hh, rows)?;
        Ok(GruWeights {
            input_size,
            hidden_size,
            w_ih,
            w_hh,
            bias,
            bias_hn,
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

impl<N: Schedule> GruWeights<'_, N> {
    /// One timestep: reads `x` and `h_prev`, writes `h_next` (a distinct buffer).
    pub fn step(&self, x: &[N::Act], h_prev: &[N::Act], h_next: &mut [N::Act]) {
        if in_blocks_of_eight::<N>(|| {
            self.step_in_blocks(x, h_prev, h_next, h_prev);
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
            .zip(self.bias.chunks_exact(GATES).zip(self.bias_hn))
            .zip(
                self.scale_ih
                    .chunks_exact(GATES)
                    .zip(self.scale_hh.chunks_exact(GATES)),
            )
            .zip(h_next.iter_mut().zip(h_prev));
        for ((((w_x, w_h), (bias, &b_hn)), (s_x, s_h)), (h_out, &h_old)) in units {
            let (&[b_r, b_z, b_in], &[sx_r, sx_z, sx_n], &[sh_r, sh_z, sh_n]) = (bias, s_x, s_h)
            else {
                return;
            };
            let mut wx = w_x.chunks_exact(i);
            let mut wh = w_h.chunks_exact(h);
            let (Some(wx_r), Some(wx_z), Some(wx_n), Some(wh_r), Some(wh_z), Some(wh_n)) = (
                wx.next(),
                wx.next(),
                wx.next(),
                wh.next(),
                wh.next(),
                wh.next(),
            ) else {
                return;
            };
            *h_out = if N::FUSES_ROWS {
                let pre = N::gru_preacts(
                    &[b_r, b_z, b_in, b_hn],
                    [wx_r, wx_z, wx_n],
                    &[sx_r, sx_z, sx_n],
                    x,
                    [wh_r, wh_z, wh_n],
                    &[sh_r, sh_z, sh_n],
                    h_prev,
                    fmt,
                );
                N::gru_update(pre, h_old, fmt)
            } else {
                // Each gate activated as soon as its sum is there: fewer values live across
                // the next dot products than with all four sums first.
                let r = N::sigmoid(N::preact(b_r, wx_r, sx_r, x, wh_r, sh_r, h_prev, fmt), fmt);
                let z = N::sigmoid(N::preact(b_z, wx_z, sx_z, x, wh_z, sh_z, h_prev, fmt), fmt);
                let n = [
                    N::preact(b_in, wx_n, sx_n, x, &[], sh_n, &[], fmt),
                    N::preact(b_hn, &[], sx_n, &[], wh_n, sh_n, h_prev, fmt),
                ];
                N::gru_output(r, z, n, h_old, fmt)
            };
        }
    }

    /// The layer's units from `first` on, as a layer of their own (same inputs and `h`).
    fn units_from(&self, first: usize) -> Self {
        let (i, h) = (self.input_size.max(1), self.hidden_size.max(1));
        GruWeights {
            w_ih: self.w_ih.get(first * GATES * i..).unwrap_or_default(),
            w_hh: self.w_hh.get(first * GATES * h..).unwrap_or_default(),
            bias: self.bias.get(first * GATES..).unwrap_or_default(),
            bias_hn: self.bias_hn.get(first..).unwrap_or_default(),
            scale_ih: self.scale_ih.get(first * GATES..).unwrap_or_default(),
            scale_hh: self.scale_hh.get(first * GATES..).unwrap_or_default(),
            ..*self
        }
    }

    /// [`step`](Self::step) with eight units per [`Schedule::gru_update_eight`] (the host's
    /// `f32`); a last block of `hidden_size mod 8` units leaves the spare lanes unused. Unit `j`
    /// of these weights interpolates with `h_old[j]`. Inlined into its caller: where the sizes
    /// are constants (a [`Gru`]) LLVM specialises the loops for them.
    #[inline(always)]
    fn step_in_blocks(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        h_old: &[N::Act],
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
            .zip(
                self.bias
                    .chunks(UNITS * GATES)
                    .zip(self.bias_hn.chunks(UNITS)),
            )
            .zip(
                self.scale_ih
                    .chunks(UNITS * GATES)
                    .zip(self.scale_hh.chunks(UNITS * GATES)),
            )
            .zip(h_next.chunks_mut(UNITS).zip(h_old.chunks(UNITS)));
        for ((((w_x, w_h), (bias, bias_hn)), (s_x, s_h)), (h_out, h_old)) in blocks {
            let units = w_x
                .chunks_exact(GATES * i)
                .zip(w_h.chunks_exact(GATES * h))
                .zip(bias.chunks_exact(GATES).zip(bias_hn))
                .zip(s_x.chunks_exact(GATES).zip(s_h.chunks_exact(GATES)))
                .zip(h_old);
            let mut sums = [[N::Pre::default(); 4]; UNITS];
            let mut olds = [N::Act::default(); UNITS];
            for ((sums, old), ((((w_x, w_h), (bias, &b_hn)), (s_x, s_h)), &h_j)) in
                sums.iter_mut().zip(&mut olds).zip(units)
            {
                let (&[b_r, b_z, b_in], Ok(s_x), Ok(s_h)) = (bias, s_x.try_into(), s_h.try_into())
                else {
                    return;
                };
                let (rows_x, rows_h) = (gate_rows(w_x, i), gate_rows(w_h, h));
                let bias = [b_r, b_z, b_in, b_hn];
                *sums = N::gru_preacts(&bias, rows_x, s_x, x, rows_h, s_h, h_prev, fmt);
                *old = h_j;
            }
            // Only the block's real units: `h_out` is shorter in a last block.
            for (h_out, h_new) in h_out.iter_mut().zip(N::gru_update_eight(sums, &olds, fmt)) {
                *h_out = h_new;
            }
        }
    }
}

/// A GRU layer with `I` inputs and `H` hidden units, weights stored inline (can be `static`).
///
/// On the host the layer also keeps its weights a second time, in blocks of eight units with one
/// lane per unit, and steps from that copy (the same bits; see `cell::EightUnitLanes`): twice
/// the memory there, none of it on a microcontroller (where that field is empty).
#[derive(Clone, Debug, PartialEq)]
pub struct Gru<N: Numeric, const I: usize, const H: usize> {
    w_ih: [[[N::Weight; I]; GATES]; H],
    w_hh: [[[N::Weight; H]; GATES]; H],
    bias: [[N::Bias; GATES]; H],
    bias_hn: [N::Bias; H],
    scale_ih: [[N::RowScale; GATES]; H],
    scale_hh: [[N::RowScale; GATES]; H],
    format: N::Format,
    /// The weights again, eight units per block, for the host's vector path.
    lanes: EightUnitLanes<N::Weight, GATES, I, H>,
}

impl<N: Numeric, const I: usize, const H: usize> Gru<N, I, H> {
    /// Builds a layer from unit-major arrays (see [`GruWeights`]) and fixed-point scales.
    pub const fn from_parts(
        w_ih: [[[N::Weight; I]; GATES]; H],
        w_hh: [[[N::Weight; H]; GATES]; H],
        bias: [[N::Bias; GATES]; H],
        bias_hn: [N::Bias; H],
        scale_ih: [[N::RowScale; GATES]; H],
        scale_hh: [[N::RowScale; GATES]; H],
        format: N::Format,
    ) -> Self {
        const {
            assert!(
                I > 0 && H > 0,
                "a GRU needs at least one input and one hidden unit"
            )
        };
        Gru {
            lanes: EightUnitLanes::new(&w_ih, &w_hh),
            w_ih,
            w_hh,
            bias,
            bias_hn,
            scale_ih,
            scale_hh,
            format,
        }
    }

    /// The slice view the kernel runs on.
    pub fn weights(&self) -> GruWeights<'_, N> {
        GruWeights {
            input_size: I,
            hidden_size: H,
            w_ih: self.w_ih.as_flattened().as_flattened(),
            w_hh: self.w_hh.as_flattened().as_flattened(),
            bias: self.bias.as_flattened(),
            bias_hn: &self.bias_hn,
            scale_ih: self.scale_ih.as_flattened(),
            scale_hh: self.scale_hh.as_flattened(),
            format: self.format,
        }
    }
}

impl<A: FloatActivation, const I: usize, const H: usize> Gru<Float<A>, I, H> {
    /// Builds an `f32` layer from unit-major weights, folded r/z biases, `b_in` and `b_hn`.
    pub const fn new(
        w_ih: [[[f32; I]; GATES]; H],
        w_hh: [[[f32; H]; GATES]; H],
        bias: [[f32; GATES]; H],
        bias_hn: [f32; H],
    ) -> Self {
        Self::from_parts(
            w_ih,
            w_hh,
            bias,
            bias_hn,
            [[(); GATES]; H],
            [[(); GATES]; H],
            (),
        )
    }
}

impl<N: Schedule, const I: usize, const H: usize> Gru<N, I, H> {
    /// One step eight units at a time (the host's `f32`): blocks of eight units from the lane
    /// layout ([`Schedule::gru_eight_units`]), the last `H mod 8` units (or all of them, for a
    /// type without that path) through the slice step.
    #[inline(always)]
    fn step_in_blocks(&self, x: &[N::Act; I], h_prev: &[N::Act; H], h_next: &mut [N::Act; H]) {
        let mut done = 0;
        let (bias, bias_hn) = (
            self.bias.as_chunks::<8>().0,
            self.bias_hn.as_chunks::<8>().0,
        );
        let (h_out, h_old) = (h_next.as_chunks_mut::<8>().0, h_prev.as_chunks::<8>().0);
        let blocks = bias.iter().zip(bias_hn).zip(h_out.iter_mut().zip(h_old));
        for (b, ((bias, bias_hn), (h_out, h_old))) in blocks.enumerate() {
            let (w_x, w_h) = self.lanes.block(b);
            let Some(h_new) = N::gru_eight_units(bias, bias_hn, w_x, x, w_h, h_prev, h_old) else {
                break;
            };
            *h_out = h_new;
            done += 8;
        }
        let rest = self.weights().units_from(done);
        let h_next = h_next.get_mut(done..).unwrap_or_default();
        let h_old = h_prev.get(done..).unwrap_or_default();
        rest.step_in_blocks(x, h_prev, h_next, h_old);
    }
}

/// The state of a [`Gru`]: the hidden state, double-buffered.
#[derive(Clone, Debug, PartialEq)]
pub struct GruState<N: Numeric, const H: usize> {
    h: DoubleBuffer<N::Act, H>,
}

impl<N: Numeric, const H: usize> Default for GruState<N, H> {
    fn default() -> Self {
        GruState {
            h: DoubleBuffer::default(),
        }
    }
}

impl<N: Numeric, const H: usize> GruState<N, H> {
    /// The current hidden state `h`.
    pub fn hidden(&self) -> &[N::Act; H] {
        self.h.current()
    }
}

impl<N: Schedule, const I: usize, const H: usize> Recurrent<N> for Gru<N, I, H> {
    type State = GruState<N, H>;
    const INPUT: usize = I;
    const OUTPUT: usize = H;

    fn step<'s>(&self, state: &'s mut GruState<N, H>, x: &[N::Act]) -> &'s [N::Act] {
        let weights = self.weights();
        state.h.advance(|prev, next| {
            // The host (`f32`): one copy of the step per (I, H), specialised for them (the
            // sizes stay constants, and the input is cut to exactly `I`; a shorter one takes
            // the general step).
            let blocks = || {
                let x = x.first_chunk::<I>();
                x.map(|x| self.step_in_blocks(x, prev, next)).is_some()
            };
            if !in_blocks_of_eight::<N>(blocks) {
                weights.step(x, prev, next);
            }
        })
    }

    fn reset(&self, state: &mut GruState<N, H>) {
        *state = GruState::default();
    }
}
