//! Dense (linear) head, PyTorch `nn.Linear` semantics: `y = W x + b`.

use crate::activation::float::FloatActivation;
use crate::error::{check_len, ShapeError};
use crate::numeric::float::Float;
use crate::numeric::{Numeric, Schedule};

/// Head weights as slices: `weight[O][I]` (PyTorch layout), `bias[O]`, row scales `[O]`.
///
/// For fixed point, `format.x_frac` is the input's format and `format.pre_frac` the outputs'.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseWeights<'a, N: Numeric> {
    input_size: usize,
    output_size: usize,
    weight: &'a [N::Weight],
    bias: &'a [N::Bias],
    scale: &'a [N::RowScale],
    format: N::Format,
}

impl<'a, N: Numeric> DenseWeights<'a, N> {
    /// Checks every length against `input_size` and `output_size`.
    pub fn new(
        input_size: usize,
        output_size: usize,
        weight: &'a [N::Weight],
        bias: &'a [N::Bias],
        scale: &'a [N::RowScale],
        format: N::Format,
    ) -> Result<Self, ShapeError> {
        if input_size == 0 || output_size == 0 {
            return Err(ShapeError::ZeroSize);
        }
        check_len("weight", weight, output_size * input_size)?;
        check_len("bias", bias, output_size)?;
        check_len("scale", scale, output_size)?;
        Ok(DenseWeights {
            input_size,
            output_size,
            weight,
            bias,
            scale,
            format,
        })
    }

    /// Input features.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Outputs.
    pub fn output_size(&self) -> usize {
        self.output_size
    }

    /// The head's fixed-point formats (`()` for floats).
    pub fn format(&self) -> &N::Format {
        &self.format
    }
}

impl<N: Schedule> DenseWeights<'_, N> {
    /// `out = W x + b`.
    pub fn forward(&self, x: &[N::Act], out: &mut [N::Pre]) {
        // As the cells' blocks of units (`f32` on the host): four outputs at a time.
        if crate::cell::in_blocks_of_eight::<N>(|| self.forward_in_blocks_of_four(x, out)) {
            return;
        }
        let rows = self.weight.chunks_exact(self.input_size.max(1));
        let rows = rows.zip(self.bias.iter().zip(self.scale)).zip(out);
        for ((w, (&b, &s)), y) in rows {
            *y = N::preact(b, w, s, x, &[], s, &[], &self.format);
        }
    }

    /// [`forward`](Self::forward) where the cells update eight units at a time (`f32` on the
    /// host): the outputs four at a time through [`Schedule::preact_rows`] (the sums of
    /// `preact`, sharing the loads of `x`), the last `O mod 4` one at a time. Returns `true`.
    fn forward_in_blocks_of_four(&self, x: &[N::Act], out: &mut [N::Pre]) -> bool {
        const ROWS: usize = 4;
        let i = self.input_size.max(1);
        let blocks = self
            .weight
            .chunks_exact(ROWS * i)
            .zip(self.bias.chunks_exact(ROWS))
            .zip(self.scale.chunks_exact(ROWS))
            .zip(out.chunks_exact_mut(ROWS));
        let (no_rows, no_scales) = ([&[][..]; ROWS], [N::RowScale::default(); ROWS]);
        let mut done = 0;
        for (((w, b), s), y) in blocks {
            let (Ok(b), Ok(s), Ok(y)) = (
                <&[N::Bias; ROWS]>::try_from(b),
                <&[N::RowScale; ROWS]>::try_from(s),
                <&mut [N::Pre; ROWS]>::try_from(y),
            ) else {
                break;
            };
            let w = crate::cell::gate_rows(w, i);
            *y = N::preact_rows::<ROWS>(b, w, s, x, no_rows, &no_scales, &[], &self.format);
            done += ROWS;
        }
        let rows = self.weight.chunks_exact(i);
        let rows = rows.zip(self.bias.iter().zip(self.scale)).zip(out);
        for ((w, (&b, &s)), y) in rows.skip(done) {
            *y = N::preact(b, w, s, x, &[], s, &[], &self.format);
        }
        true
    }
}

/// A dense head with `I` inputs and `O` outputs, weights inline (can be `static`).
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<N: Numeric, const I: usize, const O: usize> {
    weight: [[N::Weight; I]; O],
    bias: [N::Bias; O],
    scale: [N::RowScale; O],
    format: N::Format,
}

impl<N: Numeric, const I: usize, const O: usize> Dense<N, I, O> {
    /// Builds a head from arrays and fixed-point scales.
    pub const fn from_parts(
        weight: [[N::Weight; I]; O],
        bias: [N::Bias; O],
        scale: [N::RowScale; O],
        format: N::Format,
    ) -> Self {
        const {
            assert!(
                I > 0 && O > 0,
                "a dense head needs at least one input and one output"
            )
        };
        Dense {
            weight,
            bias,
            scale,
            format,
        }
    }

    /// The slice view the kernel runs on.
    pub fn weights(&self) -> DenseWeights<'_, N> {
        DenseWeights {
            input_size: I,
            output_size: O,
            weight: self.weight.as_flattened(),
            bias: &self.bias,
            scale: &self.scale,
            format: self.format,
        }
    }

    /// `W x + b`.
    pub fn forward(&self, x: &[N::Act]) -> [N::Pre; O]
    where
        N: Schedule,
    {
        let mut out = [N::Pre::default(); O];
        self.weights().forward(x, &mut out);
        out
    }
}

impl<A: FloatActivation, const I: usize, const O: usize> Dense<Float<A>, I, O> {
    /// Builds an `f32` head (`weight[O][I]`, PyTorch layout).
    pub const fn new(weight: [[f32; I]; O], bias: [f32; O]) -> Self {
        Self::from_parts(weight, bias, [(); O], ())
    }
}
