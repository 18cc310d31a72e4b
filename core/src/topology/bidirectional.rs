//! Bidirectional layers over a fixed window of `W` samples, PyTorch's
//! `nn.LSTM/nn.GRU/nn.RNN(..., bidirectional=True, num_layers=L)` on each window taken as one
//! sequence from the zero state.
//!
//! # Semantics
//!
//! For a window `x_0 … x_{W-1}` (oldest first), layer `l` runs
//!
//! ```text
//! forward:  f_t = cell_fwd(in_t, f_{t-1}),   t = 0 … W-1,   f_{-1} = 0 (and c = 0)
//! backward: b_t = cell_bwd(in_t, b_{t+1}),   t = W-1 … 0,   b_W    = 0 (and c = 0)
//! out_t = [f_t ; b_t]                        2H values per step
//! ```
//!
//! with `in_t = x_t` for layer 0 and `in_t` = the previous layer's `out_t` above it. The last
//! layer's `out_t`, every `t`, is what `nn.LSTM` returns as `output` ([`Bidirectional::output`],
//! [`BidirectionalWeights::run`]); a head on every step consumes those.
//!
//! **The head of a decision** ([`Bidirectional::head_final`]) reads
//! `[f_{W-1} ; b_0]` ([`final_hidden`]): the forward direction after the whole window and the
//! backward direction after the whole window (which it read from the end), i.e. PyTorch's
//! `torch.cat([h_n[-2], h_n[-1]], dim=1)` = `cat(output[:, -1, :H], output[:, 0, H:])`, the
//! standard input of a bidirectional classifier. A model trained on `output[:, -1, :]` (whose
//! backward half has seen only the last sample) reads step `W - 1` instead:
//! [`Bidirectional::head_step`]`(…, W - 1, …)`.
//!
//! # Decisions over a stream
//!
//! [`Bidirectional::push`] stores each sample in a ring buffer of the last `W`
//! (`heapless::Deque`) and runs the window every `k` samples (`k` = the state's stride,
//! `1 ≤ k ≤ W`), the first time once `W` samples have arrived: after samples `W-1`, `W-1+k`,
//! `W-1+2k`, … (counted from the start or the last [reset](Bidirectional::reset)). `k = W`
//! gives non-overlapping windows. Each run starts every direction from the zero state, so a
//! decision depends on its window's samples alone.
//!
//! # Memory
//!
//! [`BidirectionalState`] is all the RAM (`BidirectionalState::RAM_BYTES`, a `const`):
//!
//! ```text
//! W · I          activations   the ring buffer of samples (+ two indices and a flag)
//! Σ_l (W + 1) · 2H_l activations   each layer's outputs over the window, and [f_{W-1} ; b_0]
//! Σ_l scratch_l  LSTM: H_l cell values; projected LSTM: H_l cell values + H_l activations
//! ```
//!
//! plus the stride and a counter. A run also uses stack for the cells' own steps (as a
//! unidirectional step) and the head's outputs. Each layer keeps its own output buffer, so a
//! layer's input is never overwritten while it runs.

use core::fmt;
use core::marker::PhantomData;

use heapless::Deque;

use super::{CellKernel, SizedCell, WindowRows};
use crate::error::ShapeError;
use crate::head::Head;
use crate::numeric::{Numeric, Schedule};
use crate::recurrent::StackState;

/// One bidirectional layer: a forward and a backward cell of the same sizes (PyTorch's
/// `*_l{k}` and `*_l{k}_reverse` weights).
#[derive(Clone, Debug, PartialEq)]
pub struct BiLayer<C> {
    forward: C,
    backward: C,
}

impl<C> BiLayer<C> {
    /// Joins the two directions. Their sizes are checked by [`BidirectionalWeights::new`]; for
    /// const-generic cells they are the same type, so equal by construction.
    pub const fn new(forward: C, backward: C) -> Self {
        BiLayer { forward, backward }
    }

    /// The forward cell.
    pub fn forward(&self) -> &C {
        &self.forward
    }

    /// The backward cell.
    pub fn backward(&self) -> &C {
        &self.backward
    }

    /// Runs the layer over a window: the forward cell over `input`'s rows in order, the
    /// backward cell in reverse, both from the zero state (see the [module](self) doc).
    ///
    /// `output` receives one row of `2H` values per input row, `[f_t ; b_t]` (`H` the cells'
    /// output size). `zeros` (at least `H` values) is set to zero and read as the initial
    /// hidden state; `cell` and `scratch` hold the cells' state and scratch (at least their
    /// `cell_size` and `scratch_size`), zeroed before each direction. Rows beyond the shorter
    /// of `input` and `output` are not computed; nothing panics.
    pub fn run<N: Schedule>(
        &self,
        input: WindowRows<'_, N::Act>,
        output: &mut [N::Act],
        zeros: &mut [N::Act],
        cell: &mut [N::Cell],
        scratch: &mut [N::Act],
    ) where
        C: CellKernel<N>,
    {
        let h = self.forward.output_size();
        if h == 0 {
            return;
        }
        // `max(1)`: a width the optimiser can see is non-zero (no panic path in
        // `chunks_exact_mut`); `2 · h` cannot wrap for a buffer that fits in memory.
        let width = (2 * h).max(1);
        zeros.fill(N::Act::default());
        let zeros = zeros.get(..h).unwrap_or(zeros);
        let rows = input.len().min(output.len() / width);
        // Both directions through one call of the cell's step: inlined once, it is specialised
        // for the cell's sizes (constants for a const-generic cell), as a unidirectional step.
        for backward in [false, true] {
            let (cell_kernel, half) = if backward {
                (&self.backward, h)
            } else {
                (&self.forward, 0)
            };
            cell.fill(N::Cell::default());
            for k in 0..rows {
                // Forward: rows 0, 1, … reading the previous row; backward: rows W-1, W-2, …
                // reading the next one; the first step of each reads the zeros.
                let t = if backward { rows - 1 - k } else { k };
                let prev = match (k, backward) {
                    (0, _) => None,
                    (_, false) => Some(t - 1),
                    (_, true) => Some(t + 1),
                };
                let Some((h_prev, h_next)) = halves(output, zeros, width, half, h, prev, t) else {
                    return;
                };
                cell_kernel.step_buffers(input.row(t), h_prev, h_next, cell, scratch);
            }
        }
    }
}

/// In rows of `width` values of `output`, the `len` values from `offset` of row `prev` (or
/// `zeros` when `None`) to read, and those of row `next` to write; `None` out of range.
#[inline(always)]
fn halves<'o, A>(
    output: &'o mut [A],
    zeros: &'o [A],
    width: usize,
    offset: usize,
    len: usize,
    prev: Option<usize>,
    next: usize,
) -> Option<(&'o [A], &'o mut [A])> {
    let at = |row: usize| row * width + offset..row * width + offset + len;
    match prev {
        None => Some((zeros, output.get_mut(at(next))?)),
        Some(prev) if prev < next => {
            let (before, from_next) = output.split_at_mut_checked(next * width)?;
            Some((
                before.get(at(prev))?,
                from_next.get_mut(offset..offset + len)?,
            ))
        }
        Some(prev) => {
            let (upto_prev, from_prev) = output.split_at_mut_checked(prev * width)?;
            Some((
                from_prev.get(offset..offset + len)?,
                upto_prev.get_mut(at(next))?,
            ))
        }
    }
}

/// Writes `[f_{W-1} ; b_0]` of a layer's outputs (rows of `2 · hidden` values) into `into`
/// (`2 · hidden` values): the forward half of the last row, then the backward half of the
/// first, what a bidirectional classifier's head reads (see the [module](self) doc). Leaves
/// `into` as it is when `outputs` holds no row.
pub fn final_hidden<A: Copy>(outputs: &[A], hidden: usize, into: &mut [A]) {
    let width = (2 * hidden).max(1);
    let (Some(first), Some(last)) = (
        outputs.chunks_exact(width).next(),
        outputs.chunks_exact(width).last(),
    ) else {
        return;
    };
    let (fwd, bwd) = into.split_at_mut(hidden.min(into.len()));
    for (to, &from) in fwd.iter_mut().zip(last) {
        *to = from;
    }
    for (to, &from) in bwd.iter_mut().zip(first.get(hidden..).unwrap_or_default()) {
        *to = from;
    }
}

/// Sizes of the buffers [`BidirectionalWeights::run`] needs for a window, in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferSizes {
    /// Each of the output buffers: `W · 2 · max H`.
    pub outputs: usize,
    /// Output buffers used: 1 for one layer, 2 (alternately written) for more.
    pub output_buffers: usize,
    /// The zero initial state: `max H`.
    pub zeros: usize,
    /// Cell state: the largest `cell_size`.
    pub cell: usize,
    /// Scratch activations: the largest `scratch_size`.
    pub scratch: usize,
}

/// The caller-owned buffers of [`BidirectionalWeights::run`] (sizes from
/// [`BidirectionalWeights::buffer_sizes`]).
#[derive(Debug)]
pub struct WindowBuffers<'b, N: Numeric> {
    /// Layer outputs, written alternately by successive layers (the second one is not used by
    /// a single layer and may be empty then).
    pub outputs: [&'b mut [N::Act]; 2],
    /// The zero initial state.
    pub zeros: &'b mut [N::Act],
    /// Cell state.
    pub cell: &'b mut [N::Cell],
    /// Scratch activations.
    pub scratch: &'b mut [N::Act],
}

/// Stacked bidirectional layers as slice views, for sizes known only at run time (the host
/// tool's models): layer `l > 0` takes the `2 · H_{l-1}` outputs of layer `l - 1` as input.
///
/// `C` is any [`CellKernel`]: [`LayerWeights`](crate::LayerWeights), a
/// [`LstmProjWeights`](crate::LstmProjWeights), or the caller's own enum of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BidirectionalWeights<'a, N, C> {
    layers: &'a [BiLayer<C>],
    numeric: PhantomData<N>,
}

impl<'a, N: Schedule, C: CellKernel<N>> BidirectionalWeights<'a, N, C> {
    /// Checks the stack: at least one layer, equal sizes in both directions of each layer
    /// ([`ShapeError::Length`] naming `backward` and its input or output size), and each
    /// layer's input twice the previous layer's output ([`ShapeError::Chain`]).
    pub fn new(layers: &'a [BiLayer<C>]) -> Result<Self, ShapeError> {
        if layers.is_empty() {
            return Err(ShapeError::ZeroSize);
        }
        let mut previous: Option<usize> = None;
        for (l, layer) in layers.iter().enumerate() {
            let (f, b) = (&layer.forward, &layer.backward);
            if f.input_size() == 0 || f.output_size() == 0 {
                return Err(ShapeError::ZeroSize);
            }
            for (tensor, expected, actual) in [
                ("backward input", f.input_size(), b.input_size()),
                ("backward output", f.output_size(), b.output_size()),
            ] {
                if expected != actual {
                    return Err(ShapeError::Length {
                        tensor,
                        expected,
                        actual,
                    });
                }
            }
            if let Some(h) = previous {
                if f.input_size() != 2 * h {
                    return Err(ShapeError::Chain {
                        layer: l,
                        expected: f.input_size(),
                        actual: 2 * h,
                    });
                }
            }
            previous = Some(f.output_size());
        }
        Ok(BidirectionalWeights {
            layers,
            numeric: PhantomData,
        })
    }

    /// The layers.
    pub fn layers(&self) -> &'a [BiLayer<C>] {
        self.layers
    }

    /// Input features per sample.
    pub fn input_size(&self) -> usize {
        self.layers.first().map_or(0, |l| l.forward.input_size())
    }

    /// Outputs per step: `2 · H` of the last layer.
    pub fn output_size(&self) -> usize {
        self.layers
            .last()
            .map_or(0, |l| 2 * l.forward.output_size())
    }

    /// The buffers a window of `window` samples needs.
    pub fn buffer_sizes(&self, window: usize) -> BufferSizes {
        let max = |f: fn(&C) -> usize| {
            self.layers
                .iter()
                .flat_map(|l| [f(&l.forward), f(&l.backward)])
                .max()
                .unwrap_or(0)
        };
        let hidden = max(|c| c.output_size());
        BufferSizes {
            outputs: window * 2 * hidden,
            output_buffers: if self.layers.len() > 1 { 2 } else { 1 },
            zeros: hidden,
            cell: max(|c| c.cell_size()),
            scratch: max(|c| c.scratch_size()),
        }
    }

    /// Runs every layer over the window `input` (rows of [`input_size`](Self::input_size)) and
    /// returns the last layer's outputs: one row of [`output_size`](Self::output_size) values
    /// per sample, `[f_t ; b_t]` (PyTorch's `output`), inside one of `buffers.outputs`.
    /// Buffers shorter than [`buffer_sizes`](Self::buffer_sizes) shorten the work instead of
    /// panicking.
    pub fn run<'b>(
        &self,
        input: WindowRows<'_, N::Act>,
        buffers: WindowBuffers<'b, N>,
    ) -> &'b [N::Act] {
        let WindowBuffers {
            outputs: [mut written, mut spare],
            zeros,
            cell,
            scratch,
        } = buffers;
        let window = input.len();
        let mut layers = self.layers.iter();
        let Some(first) = layers.next() else {
            return &[];
        };
        let len = (window * 2 * first.forward.output_size()).min(written.len());
        first.run(input, &mut written[..len], zeros, cell, scratch);
        let mut width = 2 * first.forward.output_size();
        for layer in layers {
            let rows = WindowRows::new(written.get(..window * width).unwrap_or_default(), width);
            width = 2 * layer.forward.output_size();
            let len = (window * width).min(spare.len());
            layer.run(rows, &mut spare[..len], zeros, cell, scratch);
            core::mem::swap(&mut written, &mut spare);
        }
        let out: &'b [N::Act] = written;
        out.get(..window * width).unwrap_or(out)
    }
}

/// A list of bidirectional layers with sizes fixed at compile time, run over windows of `W`
/// samples: one [`BiLayer`] of a [`SizedCell`], or a [`BiStack`] of them.
pub trait BiLayers<N: Schedule, const W: usize> {
    /// Input features per sample (the first layer's).
    const INPUT: usize;
    /// Hidden size per direction of the last layer (outputs per step: `2 · HIDDEN`).
    const HIDDEN: usize;
    /// Whether each layer's input size is twice the previous layer's hidden size.
    const CHAINED: bool;
    /// The layers' buffers: the RAM of a run.
    type State: Clone + fmt::Debug + PartialEq;

    /// Buffers for a run.
    fn new_state() -> Self::State;
    /// Runs every layer over the window `input`.
    fn run(&self, input: WindowRows<'_, N::Act>, state: &mut Self::State);
    /// The last layer's outputs of the last run: `W` rows of `2 · HIDDEN`, `[f_t ; b_t]`.
    fn outputs(state: &Self::State) -> &[N::Act];
    /// The last layer's `[f_{W-1} ; b_0]` of the last run (`2 · HIDDEN` values).
    fn final_hidden(state: &Self::State) -> &[N::Act];
}

/// The buffers of one [`BiLayer`] of the const-generic cell `C` over a window of `W`.
pub struct LayerBuffers<N: Schedule, C: SizedCell<N>, const W: usize> {
    /// `[f_t ; b_t]` for every step of the window.
    outputs: [[C::Output; 2]; W],
    /// The zero initial state during a run (its first half); `[f_{W-1} ; b_0]` after it.
    edge: [C::Output; 2],
    /// The cells' state and scratch.
    scratch: C::Scratch,
}

// By hand: derives would ask `N: Clone` and `C: Clone`, which the buffers do not hold.
impl<N: Schedule, C: SizedCell<N>, const W: usize> Clone for LayerBuffers<N, C, W> {
    fn clone(&self) -> Self {
        LayerBuffers {
            outputs: self.outputs,
            edge: self.edge,
            scratch: self.scratch.clone(),
        }
    }
}

impl<N: Schedule, C: SizedCell<N>, const W: usize> PartialEq for LayerBuffers<N, C, W> {
    fn eq(&self, other: &Self) -> bool {
        self.outputs == other.outputs && self.edge == other.edge && self.scratch == other.scratch
    }
}

impl<N: Schedule, C: SizedCell<N>, const W: usize> fmt::Debug for LayerBuffers<N, C, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerBuffers")
            .field("outputs", &self.outputs)
            .field("edge", &self.edge)
            .field("scratch", &self.scratch)
            .finish()
    }
}

impl<N: Schedule, C: SizedCell<N>, const W: usize> BiLayers<N, W> for BiLayer<C> {
    const INPUT: usize = C::INPUT;
    const HIDDEN: usize = C::OUTPUT;
    const CHAINED: bool = true;
    type State = LayerBuffers<N, C, W>;

    fn new_state() -> Self::State {
        LayerBuffers {
            outputs: [[C::zero_output(); 2]; W],
            edge: [C::zero_output(); 2],
            scratch: C::new_scratch(),
        }
    }

    fn run(&self, input: WindowRows<'_, N::Act>, state: &mut Self::State) {
        let (cell, scratch) = C::scratch_parts(&mut state.scratch);
        let edge = C::rows_mut::<1>(core::array::from_mut(&mut state.edge));
        let outputs = C::rows_mut::<W>(&mut state.outputs);
        BiLayer::run(self, input, outputs, edge, cell, scratch);
        final_hidden(outputs, C::OUTPUT, edge);
    }

    fn outputs(state: &Self::State) -> &[N::Act] {
        C::rows::<W>(&state.outputs)
    }

    fn final_hidden(state: &Self::State) -> &[N::Act] {
        C::rows::<1>(core::array::from_ref(&state.edge))
    }
}

/// Two stages of bidirectional layers: the outputs of `first` (`2 · H` per step) are the input
/// of `rest`. Nest it for deeper stacks: `BiStack::new(a, BiStack::new(b, c))`;
/// [`Bidirectional::new`] refuses at compile time to join mismatched sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct BiStack<A, B> {
    first: A,
    rest: B,
}

impl<A, B> BiStack<A, B> {
    /// Joins two stages.
    pub const fn new(first: A, rest: B) -> Self {
        BiStack { first, rest }
    }
}

impl<N: Schedule, A: BiLayers<N, W>, B: BiLayers<N, W>, const W: usize> BiLayers<N, W>
    for BiStack<A, B>
{
    const INPUT: usize = A::INPUT;
    const HIDDEN: usize = B::HIDDEN;
    const CHAINED: bool = A::CHAINED && B::CHAINED && B::INPUT == 2 * A::HIDDEN;
    type State = StackState<A::State, B::State>;

    fn new_state() -> Self::State {
        StackState {
            first: A::new_state(),
            rest: B::new_state(),
        }
    }

    fn run(&self, input: WindowRows<'_, N::Act>, state: &mut Self::State) {
        self.first.run(input, &mut state.first);
        let rows = WindowRows::new(A::outputs(&state.first), 2 * A::HIDDEN);
        self.rest.run(rows, &mut state.rest);
    }

    fn outputs(state: &Self::State) -> &[N::Act] {
        B::outputs(&state.rest)
    }

    fn final_hidden(state: &Self::State) -> &[N::Act] {
        B::final_hidden(&state.rest)
    }
}

/// A stride that is not in `1..=W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StrideError {
    /// The stride asked for.
    pub stride: u32,
    /// The window `W`.
    pub window: usize,
}

impl fmt::Display for StrideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a decision every {} samples: must be 1..={} (the window)",
            self.stride, self.window
        )
    }
}

impl core::error::Error for StrideError {}

/// Stacked bidirectional layers `L` over windows of `W` samples of `I` inputs, with a head
/// `Hd` on `2 · H` values (a [`Dense`](crate::Dense) or an [`Mlp`](crate::Mlp)). Weights only
/// (can be `static`); the ring buffer and the layers' buffers are the caller's
/// [`BidirectionalState`]. See the [module](self) doc.
///
/// ```
/// use tinyrnn::{BiLayer, Bidirectional, Dense, Gru, F32};
///
/// // One bidirectional GRU layer (2 inputs, 3 units per direction), a 2-class head on
/// // [h_fwd ; h_bwd], windows of 4 samples, a decision every 2 samples.
/// let gru = || Gru::<F32, 2, 3>::new([[[0.3, -0.2]; 3]; 3], [[[0.1; 3]; 3]; 3], [[0.0; 3]; 3], [0.0; 3]);
/// let head = Dense::<F32, 6, 2>::new([[0.5; 6], [-0.5; 6]], [0.0; 2]);
/// let model: Bidirectional<F32, _, _, 2, 4> = Bidirectional::new(BiLayer::new(gru(), gru()), head);
/// let mut state = model.new_state(2).unwrap();
/// let mut decisions = 0;
/// for t in 0..8 {
///     if model.push(&mut state, &[1.0, t as f32 / 8.0]) {
///         let mut logits = [0.0; 2];
///         model.head_final(&state, &mut logits);
///         assert!(logits[0] > logits[1]);
///         decisions += 1;
///     }
/// }
/// assert_eq!(decisions, 3); // after samples 3, 5 and 7
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Bidirectional<N, L, Hd, const I: usize, const W: usize> {
    layers: L,
    head: Hd,
    numeric: PhantomData<N>,
}

/// The RAM of a [`Bidirectional`]: the ring buffer of the last `W` samples, the layers'
/// buffers `S`, the stride and the count to the next run.
#[derive(Clone, Debug)]
pub struct BidirectionalState<N: Numeric, S, const I: usize, const W: usize> {
    samples: Deque<[N::Act; I], W>,
    layers: S,
    stride: u32,
    countdown: u32,
}

impl<N: Numeric, S, const I: usize, const W: usize> BidirectionalState<N, S, I, W> {
    /// Static RAM in bytes, at compile time (see the [module](self) doc for its parts).
    pub const RAM_BYTES: usize = core::mem::size_of::<Self>();

    /// Samples between runs.
    pub const fn stride(&self) -> u32 {
        self.stride
    }

    /// The buffered samples, oldest first (fewer than `W` before the first run).
    pub fn samples(&self) -> WindowRows<'_, N::Act> {
        let (older, newer) = self.samples.as_slices();
        WindowRows::from_parts(older.as_flattened(), newer.as_flattened(), I)
    }
}

impl<N, L, Hd, const I: usize, const W: usize> Bidirectional<N, L, Hd, I, W>
where
    N: Schedule,
    L: BiLayers<N, W>,
    Hd: Head<N>,
{
    /// Joins the layers and the head. Fails to compile unless the layers chain (each input
    /// twice the previous hidden size), the first takes `I` inputs, the head takes `2 · H` and
    /// `W > 0`.
    pub const fn new(layers: L, head: Hd) -> Self {
        const {
            assert!(W > 0, "a bidirectional window needs at least one sample");
            assert!(
                L::CHAINED,
                "stacked bidirectional layers: each input size must be twice the previous hidden size"
            );
            assert!(L::INPUT == I, "the first layer's input size must be I");
            assert!(
                Hd::INPUT == 2 * L::HIDDEN,
                "the head's input size must be twice the last layer's hidden size"
            );
        };
        Bidirectional {
            layers,
            head,
            numeric: PhantomData,
        }
    }

    /// The layers.
    pub fn layers(&self) -> &L {
        &self.layers
    }

    /// The head.
    pub fn head(&self) -> &Hd {
        &self.head
    }

    /// A fresh state that runs the window every `stride` samples (`1..=W`).
    pub fn new_state(
        &self,
        stride: u32,
    ) -> Result<BidirectionalState<N, L::State, I, W>, StrideError> {
        if stride == 0 || stride as usize > W {
            return Err(StrideError { stride, window: W });
        }
        Ok(BidirectionalState {
            samples: Deque::new(),
            layers: L::new_state(),
            stride,
            countdown: W as u32,
        })
    }

    /// Empties the ring buffer: the next run comes `W` samples later. The outputs of the last
    /// run stay readable until then (clearing them would cost a stack temporary the size of
    /// all the layers' buffers).
    pub fn reset(&self, state: &mut BidirectionalState<N, L::State, I, W>) {
        state.samples.clear();
        state.countdown = W as u32;
    }

    /// Takes one sample into the ring buffer; when a run is due (see the [module](self) doc)
    /// runs the window and returns `true`: then [`head_final`](Self::head_final),
    /// [`head_step`](Self::head_step) and [`output`](Self::output) read its results.
    pub fn push(&self, state: &mut BidirectionalState<N, L::State, I, W>, x: &[N::Act; I]) -> bool {
        if state.samples.is_full() {
            state.samples.pop_front();
        }
        // Cannot fail: there is room after the pop.
        let _ = state.samples.push_back(*x);
        state.countdown = state.countdown.saturating_sub(1);
        state.countdown == 0 && self.run(state)
    }

    /// Runs the window now, if `W` samples are buffered (`false` otherwise); the next run by
    /// [`push`](Self::push) then comes `stride` samples later.
    pub fn run(&self, state: &mut BidirectionalState<N, L::State, I, W>) -> bool {
        if !state.samples.is_full() {
            return false;
        }
        let (older, newer) = state.samples.as_slices();
        let rows = WindowRows::from_parts(older.as_flattened(), newer.as_flattened(), I);
        self.layers.run(rows, &mut state.layers);
        state.countdown = state.stride;
        true
    }

    /// The last layer's outputs of the last run: `W` rows of `2H`, `[f_t ; b_t]` (PyTorch's
    /// `output`; zeros before the first run).
    pub fn outputs<'s>(
        &self,
        state: &'s BidirectionalState<N, L::State, I, W>,
    ) -> WindowRows<'s, N::Act> {
        WindowRows::new(L::outputs(&state.layers), 2 * L::HIDDEN)
    }

    /// Step `t`'s output `[f_t ; b_t]` of the last run (empty for `t ≥ W`).
    pub fn output<'s>(
        &self,
        state: &'s BidirectionalState<N, L::State, I, W>,
        t: usize,
    ) -> &'s [N::Act] {
        self.outputs(state).row(t)
    }

    /// `[f_{W-1} ; b_0]` of the last run, what [`head_final`](Self::head_final) reads.
    pub fn final_hidden<'s>(
        &self,
        state: &'s BidirectionalState<N, L::State, I, W>,
    ) -> &'s [N::Act] {
        L::final_hidden(&state.layers)
    }

    /// The head on `[f_{W-1} ; b_0]` of the last run (a decision over the window): writes its
    /// outputs into `out`.
    pub fn head_final(&self, state: &BidirectionalState<N, L::State, I, W>, out: &mut [N::Pre]) {
        self.head.forward(L::final_hidden(&state.layers), out);
    }

    /// The head on step `t`'s output `[f_t ; b_t]` of the last run (a head on every step, or
    /// on `output[:, -1, :]` with `t = W - 1`).
    pub fn head_step(
        &self,
        state: &BidirectionalState<N, L::State, I, W>,
        t: usize,
        out: &mut [N::Pre],
    ) {
        self.head.forward(self.output(state, t), out);
    }
}
