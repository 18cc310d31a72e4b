//! Elman RNN cell, PyTorch `nn.RNN` semantics.
//!
//! ```text
//! h' = act(W_ih x + b_ih + W_hh h + b_hh),   act = tanh (default) or relu
//! ```
//!
//! The two biases are folded into one (`b_ih + b_hh`). With `relu` the hidden state is
//! unbounded; fixed-point formats give it its own range (see [`QFormat`](crate::QFormat)).

use super::{gate_rows, DoubleBuffer};
use crate::activation::float::FloatActivation;
use crate::error::{check_len, ShapeError};
use crate::numeric::float::Float;
use crate::numeric::{Numeric, Schedule};
use crate::recurrent::Recurrent;

/// The nonlinearity of a plain RNN (`nn.RNN(nonlinearity=...)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Nonlinearity {
    /// `tanh`, PyTorch's default.
    #[default]
    Tanh,
    /// `relu`.
    Relu,
}

impl Nonlinearity {
    /// Parses `tanh` or `relu`, as model files and command lines name them (any case).
    pub fn parse(name: &str) -> Option<Nonlinearity> {
        [Nonlinearity::Tanh, Nonlinearity::Relu]
            .into_iter()
            .find(|n| name.eq_ignore_ascii_case(n.name()))
    }

    /// `tanh` or `relu`: the name [`parse`](Self::parse) reads.
    pub fn name(self) -> &'static str {
        match self {
            Nonlinearity::Tanh => "tanh",
            Nonlinearity::Relu => "relu",
        }
    }
}

/// RNN weights as slices, for sizes known only at run time (and the kernel behind [`Rnn`]).
///
/// Layout: `w_ih[H][I]`, `w_hh[H][H]`, `bias[H]`, row scales `[H]` each (PyTorch's own layout).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnWeights<'a, N: Numeric> {
    input_size: usize,
    hidden_size: usize,
    nonlinearity: Nonlinearity,
    w_ih: &'a [N::Weight],
    w_hh: &'a [N::Weight],
    bias: &'a [N::Bias],
    scale_ih: &'a [N::RowScale],
    scale_hh: &'a [N::RowScale],
    format: N::Format,
}

impl<'a, N: Numeric> RnnWeights<'a, N> {
    /// Checks every length against `input_size` and `hidden_size`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        nonlinearity: Nonlinearity,
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
        check_len("w_ih", w_ih, hidden_size * input_size)?;
        check_len("w_hh", w_hh, hidden_size * hidden_size)?;
        check_len("bias", bias, hidden_size)?;
        check_len("scale_ih", scale_ih, hidden_size)?;
        check_len("scale_hh", scale_hh, hidden_size)?;
        Ok(RnnWeights {
            input_size,
            hidden_size,
            nonlinearity,
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

    /// The nonlinearity.
    pub fn nonlinearity(&self) -> Nonlinearity {
        self.nonlinearity
    }

    /// The layer's fixed-point formats (`()` for floats).
    pub fn format(&self) -> &N::Format {
        &self.format
    }
}

impl<N: Schedule> RnnWeights<'_, N> {
    /// One timestep: reads `x` and `h_prev`, writes `h_next` (a distinct buffer).
    pub fn step(&self, x: &[N::Act], h_prev: &[N::Act], h_next: &mut [N::Act]) {
        if N::FUSES_ROWS {
            return self.step_in_unit_pairs(x, h_prev, h_next);
        }
        let (i, h, fmt) = (
            self.input_size.max(1),
            self.hidden_size.max(1),
            &self.format,
        );
        let units = self
            .w_ih
            .chunks_exact(i)
            .zip(self.w_hh.chunks_exact(h))
            .zip(
                self.bias
                    .iter()
                    .zip(self.scale_ih.iter().zip(self.scale_hh)),
            )
            .zip(h_next.iter_mut());
        for (((w_x, w_h), (&b, (&s_x, &s_h))), h_out) in units {
            let pre = N::preact(b, w_x, s_x, x, w_h, s_h, h_prev, fmt);
            *h_out = self.activate(pre);
        }
    }

    /// [`step`](Self::step) where the numeric type shares work between rows
    /// ([`Schedule::FUSES_ROWS`]): the rows of two adjacent units go through
    /// [`Schedule::preact_rows`] together, as an LSTM's gate rows do, so each activation is
    /// loaded once for both (a unit has only one row of its own). An odd last unit runs alone.
    fn step_in_unit_pairs(&self, x: &[N::Act], h_prev: &[N::Act], h_next: &mut [N::Act]) {
        let (i, h, fmt) = (
            self.input_size.max(1),
            self.hidden_size.max(1),
            &self.format,
        );
        let units = h_next.len().min(self.bias.len());
        // `max(2)`: a product the optimiser can see is non-zero (no panic path in
        // `chunks_exact`); it cannot wrap for slices that fit in memory.
        let (pair_x, pair_h) = ((2 * i).max(2), (2 * h).max(2));
        let pairs = self
            .w_ih
            .chunks_exact(pair_x)
            .zip(self.w_hh.chunks_exact(pair_h))
            .zip(
                self.bias.chunks_exact(2).zip(
                    self.scale_ih
                        .chunks_exact(2)
                        .zip(self.scale_hh.chunks_exact(2)),
                ),
            )
            .zip(h_next.chunks_exact_mut(2));
        for (((w_x, w_h), (bias, (s_x, s_h))), h_out) in pairs {
            let (Ok(bias), Ok(s_x), Ok(s_h)) = (bias.try_into(), s_x.try_into(), s_h.try_into())
            else {
                return;
            };
            let (rows_x, rows_h) = (gate_rows(w_x, i), gate_rows(w_h, h));
            let pre = N::preact_rows::<2>(bias, rows_x, s_x, x, rows_h, s_h, h_prev, fmt);
            for (h_out, pre) in h_out.iter_mut().zip(pre) {
                *h_out = self.activate(pre);
            }
        }
        if units % 2 == 1 {
            let last = units - 1;
            let unit = (
                self.w_ih.get(last * i..(last + 1) * i),
                self.w_hh.get(last * h..(last + 1) * h),
                self.bias.get(last),
                self.scale_ih.get(last),
                self.scale_hh.get(last),
            );
            if let ((Some(w_x), Some(w_h), Some(&b), Some(&s_x), Some(&s_h)), Some(h_out)) =
                (unit, h_next.get_mut(last))
            {
                *h_out = self.activate(N::preact(b, w_x, s_x, x, w_h, s_h, h_prev, fmt));
            }
        }
    }

    /// The layer's nonlinearity.
    #[inline(always)]
    fn activate(&self, pre: N::Pre) -> N::Act {
        match self.nonlinearity {
            Nonlinearity::Tanh => N::tanh(pre, &self.format),
            Nonlinearity::Relu => N::relu(pre, &self.format),
        }
    }
}

/// An RNN layer with `I` inputs and `H` hidden units, weights stored inline (can be `static`).
#[derive(Clone, Debug, PartialEq)]
pub struct Rnn<N: Numeric, const I: usize, const H: usize> {
    nonlinearity: Nonlinearity,
    w_ih: [[N::Weight; I]; H],
    w_hh: [[N::Weight; H]; H],
    bias: [N::Bias; H],
    scale_ih: [N::RowScale; H],
    scale_hh: [N::RowScale; H],
    format: N::Format,
}

impl<N: Numeric, const I: usize, const H: usize> Rnn<N, I, H> {
    /// Builds a layer from arrays (see [`RnnWeights`]) and fixed-point scales.
    pub const fn from_parts(
        nonlinearity: Nonlinearity,
        w_ih: [[N::Weight; I]; H],
        w_hh: [[N::Weight; H]; H],
        bias: [N::Bias; H],
        scale_ih: [N::RowScale; H],
        scale_hh: [N::RowScale; H],
        format: N::Format,
    ) -> Self {
        const {
            assert!(
                I > 0 && H > 0,
                "an RNN needs at least one input and one hidden unit"
            )
        };
        Rnn {
            nonlinearity,
            w_ih,
            w_hh,
            bias,
            scale_ih,
            scale_hh,
            format,
        }
    }

    /// The slice view the kernel runs on.
    pub fn weights(&self) -> RnnWeights<'_, N> {
        RnnWeights {
            input_size: I,
            hidden_size: H,
            nonlinearity: self.nonlinearity,
            w_ih: self.w_ih.as_flattened(),
            w_hh: self.w_hh.as_flattened(),
            bias: &self.bias,
            scale_ih: &self.scale_ih,
            scale_hh: &self.scale_hh,
            format: self.format,
        }
    }
}

impl<A: FloatActivation, const I: usize, const H: usize> Rnn<Float<A>, I, H> {
    /// Builds an `f32` layer from weights and the folded bias (`b_ih + b_hh`).
    pub const fn new(
        nonlinearity: Nonlinearity,
        w_ih: [[f32; I]; H],
        w_hh: [[f32; H]; H],
        bias: [f32; H],
    ) -> Self {
        Self::from_parts(nonlinearity, w_ih, w_hh, bias, [(); H], [(); H], ())
    }
}

/// The state of an [`Rnn`]: the hidden state, double-buffered.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnState<N: Numeric, const H: usize> {
    h: DoubleBuffer<N::Act, H>,
}

impl<N: Numeric, const H: usize> Default for RnnState<N, H> {
    fn default() -> Self {
        RnnState {
            h: DoubleBuffer::default(),
        }
    }
}

impl<N: Numeric, const H: usize> RnnState<N, H> {
    /// The current hidden state `h`.
    pub fn hidden(&self) -> &[N::Act; H] {
        self.h.current()
    }
}

impl<N: Schedule, const I: usize, const H: usize> Recurrent<N> for Rnn<N, I, H> {
    type State = RnnState<N, H>;
    const INPUT: usize = I;
    const OUTPUT: usize = H;

    fn step<'s>(&self, state: &'s mut RnnState<N, H>, x: &[N::Act]) -> &'s [N::Act] {
        let weights = self.weights();
        state.h.advance(|prev, next| weights.step(x, prev, next))
    }

    fn reset(&self, state: &mut RnnState<N, H>) {
        *state = RnnState::default();
    }
}

#[cfg(test)]
mod tests {
    use super::Nonlinearity;

    #[test]
    fn nonlinearity_names_round_trip() {
        for n in [Nonlinearity::Tanh, Nonlinearity::Relu] {
            assert_eq!(Nonlinearity::parse(n.name()), Some(n));
        }
        assert_eq!(Nonlinearity::parse("ReLU"), Some(Nonlinearity::Relu));
        assert_eq!(Nonlinearity::parse("TANH"), Some(Nonlinearity::Tanh));
        assert_eq!(Nonlinearity::parse("sigmoid"), None);
        assert_eq!(Nonlinearity::parse(""), None);
    }
}
