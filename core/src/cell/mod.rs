//! Recurrent cells, one file each: [`rnn`], [`lstm`], [`gru`].
//!
//! Each cell has two faces over one kernel: `*Weights<'a, N>` (slices, sizes known at run time,
//! used by the host tool) and a const-generic type (`Lstm<N, I, H>`, arrays inline, used by
//! firmware) whose `step` forwards to the slice kernel. [`LayerWeights`] picks one of the three
//! at run time.

pub mod gru;
pub mod lstm;
pub mod rnn;

pub use rnn::Nonlinearity;

use crate::numeric::Numeric;

/// The hidden state of a layer, double-buffered: every unit reads all of the previous `h`, so the
/// new `h` is written to the other buffer and the two swap roles after each step. This keeps
/// `step` free of stack scratch proportional to `H`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DoubleBuffer<A, const H: usize> {
    buffers: [[A; H]; 2],
    current: usize,
}

impl<A: Copy + Default, const H: usize> Default for DoubleBuffer<A, H> {
    fn default() -> Self {
        DoubleBuffer {
            buffers: [[A::default(); H]; 2],
            current: 0,
        }
    }
}

impl<A, const H: usize> DoubleBuffer<A, H> {
    /// The current hidden state.
    pub(crate) fn current(&self) -> &[A; H] {
        let [a, b] = &self.buffers;
        if self.current == 0 {
            a
        } else {
            b
        }
    }

    /// Runs `update(h_prev, h_next)`, then makes `h_next` current and returns it.
    pub(crate) fn advance(&mut self, update: impl FnOnce(&[A; H], &mut [A; H])) -> &[A; H] {
        let [a, b] = &mut self.buffers;
        let (prev, next) = if self.current == 0 {
            (&*a, b)
        } else {
            (&*b, a)
        };
        update(opaque(prev), opaque(next));
        self.current ^= 1;
        next
    }
}

/// `r`, hidden from the optimiser where the dot products are plain Rust.
///
/// Given two candidate buffers, LLVM may fold the choice between them into every unrolled load
/// of `h_prev` (four extra instructions per multiply-accumulate on Cortex-M3 for w8a16 at
/// H = 64, a third more on Cortex-M0 for an RNN); `black_box` costs a register move instead.
/// Where the dot products are `asm!` blocks (DSP cores) they take the pointer once, and the
/// fold is cheaper than the move.
#[inline(always)]
fn opaque<T>(r: T) -> T {
    #[cfg(tinyrnn_asm_dsp)]
    return r;
    #[cfg(not(tinyrnn_asm_dsp))]
    return core::hint::black_box(r);
}

/// The `G` gate rows of `len` weights each that start `unit_weights` (a unit's rows, adjacent in
/// the unit-major layout); rows past the end are empty.
#[inline(always)]
pub(crate) fn gate_rows<W, const G: usize>(unit_weights: &[W], len: usize) -> [&[W]; G] {
    let mut rows: [&[W]; G] = [&[]; G];
    for (row, weights) in rows.iter_mut().zip(unit_weights.chunks_exact(len.max(1))) {
        *row = weights;
    }
    rows
}

/// One recurrent layer of any kind, as slices: what a model loaded at run time is made of.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerWeights<'a, N: Numeric> {
    /// Elman RNN.
    Rnn(rnn::RnnWeights<'a, N>),
    /// LSTM.
    Lstm(lstm::LstmWeights<'a, N>),
    /// GRU.
    Gru(gru::GruWeights<'a, N>),
}

impl<N: Numeric> LayerWeights<'_, N> {
    /// Input features.
    pub fn input_size(&self) -> usize {
        match self {
            LayerWeights::Rnn(w) => w.input_size(),
            LayerWeights::Lstm(w) => w.input_size(),
            LayerWeights::Gru(w) => w.input_size(),
        }
    }

    /// Hidden units (the layer's output size).
    pub fn hidden_size(&self) -> usize {
        match self {
            LayerWeights::Rnn(w) => w.hidden_size(),
            LayerWeights::Lstm(w) => w.hidden_size(),
            LayerWeights::Gru(w) => w.hidden_size(),
        }
    }

    /// Elements of cell state the layer needs (`hidden_size` for LSTM, 0 otherwise).
    pub fn cell_size(&self) -> usize {
        match self {
            LayerWeights::Lstm(w) => w.hidden_size(),
            _ => 0,
        }
    }

    /// One timestep; `c` is ignored except by LSTM layers.
    pub fn step(&self, x: &[N::Act], h_prev: &[N::Act], h_next: &mut [N::Act], c: &mut [N::Cell]) {
        match self {
            LayerWeights::Rnn(w) => w.step(x, h_prev, h_next),
            LayerWeights::Lstm(w) => w.step(x, h_prev, h_next, c),
            LayerWeights::Gru(w) => w.step(x, h_prev, h_next),
        }
    }
}
