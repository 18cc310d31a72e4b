//! Sequence shapes over the cells' one-sample step: a bidirectional net over a fixed window
//! ([`bidirectional`]) and one-to-many generation with a prediction-error anomaly score
//! ([`forecast`]).
//!
//! Many-to-many (an output per sample) and windowed many-to-one are plain loops over
//! [`Recurrent::step`] (see [`pipeline::window`](crate::pipeline::window));
//! the shapes here need more than a loop:
//!
//! * **Bidirectional over a window of `W` samples** ([`Bidirectional`]): a ring buffer of the
//!   last `W` samples; every `k` samples, each layer runs its forward cell over the window in
//!   order and its backward cell in reverse, both from the zero state, as PyTorch's
//!   `nn.LSTM(..., bidirectional=True, num_layers=L)` does on that window taken as one
//!   sequence. Every layer's `W × 2H` outputs are buffered, so all memory is known at compile
//!   time ([`BidirectionalState::RAM_BYTES`]).
//! * **Generation** ([`Forecaster`]): after a warm-up on real samples, the head's output is fed
//!   back as the next input, in constant memory; on real samples, the error of the one-step
//!   prediction is an anomaly score.
//!
//! The bidirectional layers step their cells through [`CellKernel`], the slice-level step every
//! layer has (the one behind each cell's own [`Recurrent::step`]): the const-generic cells
//! ([`Lstm`], [`Gru`], [`Rnn`], [`LstmProj`]) and the run-time-sized slice views
//! ([`LayerWeights`], [`LstmProjWeights`]) alike, through the same window loop
//! ([`BiLayer::run`]), so a host that knows its sizes only at run time and a firmware with
//! everything fixed at compile time run the same code. The forecaster steps any
//! [`Recurrent`] body; a host runs its loop over the slice kernels with the same
//! [`Feedback`] requantisation.

pub mod bidirectional;
pub mod forecast;

pub use bidirectional::{
    final_hidden, BiLayer, BiLayers, BiStack, Bidirectional, BidirectionalState,
    BidirectionalWeights, BufferSizes, LayerBuffers, StrideError, WindowBuffers,
};
pub use forecast::{ErrorMetric, Feedback, ForecastState, Forecaster};

use crate::cell::gru::{Gru, GruWeights};
use crate::cell::lstm::{Lstm, LstmProj, LstmProjWeights, LstmWeights, Projection};
use crate::cell::rnn::{Rnn, RnnWeights};
use crate::cell::LayerWeights;
use crate::numeric::Schedule;
use crate::recurrent::Recurrent;

/// One recurrent layer stepped on caller-owned buffers: the slice-level step of every cell.
///
/// [`step_buffers`](Self::step_buffers) reads the input `x` (`input_size` values) and the previous output `h_prev`
/// (`output_size`), writes the new output into `h_next` (a distinct buffer of `output_size`),
/// updates the cell state `c` (`cell_size` values: an LSTM's `c`, empty for GRU and RNN) and
/// may use `scratch` (`scratch_size` values: a projected LSTM's `o ⊙ tanh(c)`). The zero state
/// is `h_prev` and `c` all zero. Shorter buffers shorten the work instead of panicking.
pub trait CellKernel<N: Schedule> {
    /// Input features per step.
    fn input_size(&self) -> usize;
    /// Output (hidden state) values per step.
    fn output_size(&self) -> usize;
    /// Cell-state values the layer keeps between steps.
    fn cell_size(&self) -> usize;
    /// Scratch activations one step needs.
    fn scratch_size(&self) -> usize;
    /// One timestep (see the trait doc). (Not named `step`: the const-generic cells also have
    /// [`Recurrent::step`], on their own state.)
    fn step_buffers(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        c: &mut [N::Cell],
        scratch: &mut [N::Act],
    );
}

/// A [`CellKernel`] whose sizes are constants ([`Recurrent::INPUT`], [`Recurrent::OUTPUT`]),
/// with its per-layer buffers as types: what the const-generic topologies ([`Bidirectional`])
/// hold for it.
pub trait SizedCell<N: Schedule>: CellKernel<N> + Recurrent<N> {
    /// One output, `[N::Act; OUTPUT]`.
    type Output: Copy + core::fmt::Debug + PartialEq;
    /// The cell state and scratch of one step (nothing for GRU and RNN).
    type Scratch: Clone + core::fmt::Debug + PartialEq;

    /// An all-zero output.
    fn zero_output() -> Self::Output;
    /// Zeroed cell state and scratch.
    fn new_scratch() -> Self::Scratch;
    /// The cell state and the scratch activations, as the kernel takes them.
    fn scratch_parts(scratch: &mut Self::Scratch) -> (&mut [N::Cell], &mut [N::Act]);
    /// `W` rows of `[forward; backward]` outputs as one slice of `W · 2 · OUTPUT` values.
    fn rows<const W: usize>(rows: &[[Self::Output; 2]; W]) -> &[N::Act];
    /// [`rows`](Self::rows), mutable.
    fn rows_mut<const W: usize>(rows: &mut [[Self::Output; 2]; W]) -> &mut [N::Act];
}

/// The rows of a window: `len` rows of `width` values, in order, stored as two contiguous parts
/// (a ring buffer's older and newer halves, as [`heapless::Deque::as_slices`] gives them; the
/// second part is empty for one contiguous buffer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowRows<'a, A> {
    older: &'a [A],
    newer: &'a [A],
    width: usize,
    /// Rows in `older`, and in all: counted once, not at every row (no divider on Cortex-M0).
    older_rows: usize,
    rows: usize,
}

impl<'a, A> WindowRows<'a, A> {
    /// Rows of `width` values, one after the other in `values` (a trailing partial row is
    /// ignored).
    pub const fn new(values: &'a [A], width: usize) -> Self {
        Self::from_parts(values, &[], width)
    }

    /// The rows of `older` followed by those of `newer` (each a whole number of rows).
    pub const fn from_parts(older: &'a [A], newer: &'a [A], width: usize) -> Self {
        let (older_rows, newer_rows) = match width {
            0 => (0, 0),
            w => (older.len() / w, newer.len() / w),
        };
        WindowRows {
            older,
            newer,
            width,
            older_rows,
            rows: older_rows + newer_rows,
        }
    }

    /// Values per row.
    pub const fn width(&self) -> usize {
        self.width
    }

    /// Rows.
    pub const fn len(&self) -> usize {
        self.rows
    }

    /// Whether there is no row.
    pub const fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Row `t` (empty past the end).
    #[inline]
    pub fn row(&self, t: usize) -> &'a [A] {
        let (part, t) = if t < self.older_rows {
            (self.older, t)
        } else {
            (self.newer, t - self.older_rows)
        };
        let start = t.saturating_mul(self.width);
        part.get(start..start.saturating_add(self.width))
            .unwrap_or_default()
    }
}

impl<N: Schedule> CellKernel<N> for LayerWeights<'_, N> {
    fn input_size(&self) -> usize {
        LayerWeights::input_size(self)
    }
    fn output_size(&self) -> usize {
        self.hidden_size()
    }
    fn cell_size(&self) -> usize {
        LayerWeights::cell_size(self)
    }
    fn scratch_size(&self) -> usize {
        0
    }
    #[inline]
    fn step_buffers(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        c: &mut [N::Cell],
        _: &mut [N::Act],
    ) {
        LayerWeights::step(self, x, h_prev, h_next, c);
    }
}

impl<N: Schedule> CellKernel<N> for RnnWeights<'_, N> {
    fn input_size(&self) -> usize {
        RnnWeights::input_size(self)
    }
    fn output_size(&self) -> usize {
        self.hidden_size()
    }
    fn cell_size(&self) -> usize {
        0
    }
    fn scratch_size(&self) -> usize {
        0
    }
    #[inline]
    fn step_buffers(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        _: &mut [N::Cell],
        _: &mut [N::Act],
    ) {
        RnnWeights::step(self, x, h_prev, h_next);
    }
}

impl<N: Schedule> CellKernel<N> for GruWeights<'_, N> {
    fn input_size(&self) -> usize {
        GruWeights::input_size(self)
    }
    fn output_size(&self) -> usize {
        self.hidden_size()
    }
    fn cell_size(&self) -> usize {
        0
    }
    fn scratch_size(&self) -> usize {
        0
    }
    #[inline]
    fn step_buffers(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        _: &mut [N::Cell],
        _: &mut [N::Act],
    ) {
        GruWeights::step(self, x, h_prev, h_next);
    }
}

impl<N: Schedule> CellKernel<N> for LstmWeights<'_, N> {
    fn input_size(&self) -> usize {
        LstmWeights::input_size(self)
    }
    fn output_size(&self) -> usize {
        self.hidden_size()
    }
    fn cell_size(&self) -> usize {
        self.hidden_size()
    }
    fn scratch_size(&self) -> usize {
        0
    }
    #[inline]
    fn step_buffers(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        c: &mut [N::Cell],
        _: &mut [N::Act],
    ) {
        LstmWeights::step(self, x, h_prev, h_next, c);
    }
}

impl<N: Projection> CellKernel<N> for LstmProjWeights<'_, N> {
    fn input_size(&self) -> usize {
        LstmProjWeights::input_size(self)
    }
    fn output_size(&self) -> usize {
        self.proj_size()
    }
    fn cell_size(&self) -> usize {
        self.hidden_size()
    }
    fn scratch_size(&self) -> usize {
        self.hidden_size()
    }
    #[inline]
    fn step_buffers(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        c: &mut [N::Cell],
        scratch: &mut [N::Act],
    ) {
        LstmProjWeights::step(self, x, h_prev, h_next, c, scratch);
    }
}

/// The [`CellKernel`] and [`SizedCell`] of a const-generic cell, through its slice view.
macro_rules! sized_cell {
    ($cell:ident, [$($size:ident),*], $out:ident, $scratch:ty, |$s:ident| $parts:expr, $new:expr) => {
        impl<N: Schedule, $(const $size: usize),*> CellKernel<N> for $cell<N, $($size),*> {
            fn input_size(&self) -> usize {
                I
            }
            fn output_size(&self) -> usize {
                $out
            }
            fn cell_size(&self) -> usize {
                CellKernel::<N>::cell_size(&self.weights())
            }
            fn scratch_size(&self) -> usize {
                CellKernel::<N>::scratch_size(&self.weights())
            }
            #[inline]
            fn step_buffers(
                &self,
                x: &[N::Act],
                h_prev: &[N::Act],
                h_next: &mut [N::Act],
                c: &mut [N::Cell],
                scratch: &mut [N::Act],
            ) {
                CellKernel::<N>::step_buffers(&self.weights(), x, h_prev, h_next, c, scratch);
            }
        }

        impl<N: Schedule, $(const $size: usize),*> SizedCell<N> for $cell<N, $($size),*> {
            type Output = [N::Act; $out];
            type Scratch = $scratch;

            fn zero_output() -> Self::Output {
                [N::Act::default(); $out]
            }
            fn new_scratch() -> Self::Scratch {
                $new
            }
            fn scratch_parts($s: &mut Self::Scratch) -> (&mut [N::Cell], &mut [N::Act]) {
                $parts
            }
            fn rows<const W: usize>(rows: &[[Self::Output; 2]; W]) -> &[N::Act] {
                rows.as_flattened().as_flattened()
            }
            fn rows_mut<const W: usize>(rows: &mut [[Self::Output; 2]; W]) -> &mut [N::Act] {
                rows.as_flattened_mut().as_flattened_mut()
            }
        }
    };
}

sized_cell!(Rnn, [I, H], H, (), |_s| (&mut [], &mut []), ());
sized_cell!(Gru, [I, H], H, (), |_s| (&mut [], &mut []), ());
sized_cell!(
    Lstm,
    [I, H],
    H,
    [N::Cell; H],
    |s| (&mut s[..], &mut []),
    [N::Cell::default(); H]
);

impl<N: Projection, const I: usize, const H: usize, const P: usize> CellKernel<N>
    for LstmProj<N, I, H, P>
{
    fn input_size(&self) -> usize {
        I
    }
    fn output_size(&self) -> usize {
        P
    }
    fn cell_size(&self) -> usize {
        H
    }
    fn scratch_size(&self) -> usize {
        H
    }
    #[inline]
    fn step_buffers(
        &self,
        x: &[N::Act],
        h_prev: &[N::Act],
        h_next: &mut [N::Act],
        c: &mut [N::Cell],
        scratch: &mut [N::Act],
    ) {
        self.weights().step(x, h_prev, h_next, c, scratch);
    }
}

impl<N: Projection, const I: usize, const H: usize, const P: usize> SizedCell<N>
    for LstmProj<N, I, H, P>
{
    type Output = [N::Act; P];
    type Scratch = ([N::Cell; H], [N::Act; H]);

    fn zero_output() -> Self::Output {
        [N::Act::default(); P]
    }
    fn new_scratch() -> Self::Scratch {
        ([N::Cell::default(); H], [N::Act::default(); H])
    }
    fn scratch_parts(scratch: &mut Self::Scratch) -> (&mut [N::Cell], &mut [N::Act]) {
        (&mut scratch.0[..], &mut scratch.1[..])
    }
    fn rows<const W: usize>(rows: &[[Self::Output; 2]; W]) -> &[N::Act] {
        rows.as_flattened().as_flattened()
    }
    fn rows_mut<const W: usize>(rows: &mut [[Self::Output; 2]; W]) -> &mut [N::Act] {
        rows.as_flattened_mut().as_flattened_mut()
    }
}
