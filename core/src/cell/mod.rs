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

use crate::numeric::{Numeric, Schedule};

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

/// `blocks()` (whether it did the step) where the cells update eight units at a time for `N`
/// ([`Schedule::BLOCKS_OF_EIGHT`]: `f32` on the host), else `false`.
///
/// Without `tinyrnn_host_simd`, `blocks` is never called and so never compiled: firmware's
/// steps hold their one-unit paths alone (host code in a branch merely never taken still
/// changes how LLVM inlines them).
#[inline(always)]
#[cfg_attr(not(tinyrnn_host_simd), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn in_blocks_of_eight<N: Schedule>(blocks: impl FnOnce() -> bool) -> bool {
    #[cfg(tinyrnn_host_simd)]
    if N::BLOCKS_OF_EIGHT {
        return blocks();
    }
    let _ = blocks;
    false
}

/// `r`, hidden from the optimiser where the dot products are plain Rust.
///
/// Given two candidate buffers, LLVM may fold the choice between them into every unrolled load
/// of `h_prev` (extra instructions in every multiply-accumulate on Cortex-M0 and M3);
/// `black_box` costs a register move instead.
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

/// A second copy of a const-generic layer's weights, kept on the host only (cfg
/// `tinyrnn_host_simd`; elsewhere this type is empty): the rows of eight units side by side,
/// one lane per unit, so that a block of eight units streams through 8-lane vectors with no
/// per-row reduction (`kernel::host::dot_f32_eight_units`).
///
/// For block `b` (units `8b..8b + 8`), the block's storage holds element `(k, gate, lane)` at
/// `(k · G + gate) · 8 + lane`: unit `8b + lane`'s weight for input `k` of that gate. The last
/// `H mod 8` units keep their unit-major rows (and take the general path). 32-byte aligned, so
/// every block of a layer with `H` a multiple of 8 is too.
#[cfg(tinyrnn_host_simd)]
#[derive(Clone, PartialEq)]
#[repr(C, align(32))]
pub(crate) struct EightUnitLanes<W, const G: usize, const I: usize, const H: usize> {
    w_ih: [[[W; I]; G]; H],
    w_hh: [[[W; H]; G]; H],
}

#[cfg(tinyrnn_host_simd)]
impl<W: Copy, const G: usize, const I: usize, const H: usize> EightUnitLanes<W, G, I, H> {
    /// The lane layout of unit-major `w_ih[H][G][I]` and `w_hh[H][G][H]`.
    pub(crate) const fn new(w_ih: &[[[W; I]; G]; H], w_hh: &[[[W; H]; G]; H]) -> Self {
        let mut lanes = EightUnitLanes {
            w_ih: *w_ih,
            w_hh: *w_hh,
        };
        let mut unit = 0;
        while unit + 8 <= H {
            let mut gate = 0;
            while gate < G {
                let mut k = 0;
                while k < I {
                    // Flat index within the whole array; the block starts at `unit · G · I`.
                    let at = unit * G * I + (k * G + gate) * 8;
                    let mut lane = 0;
                    while lane < 8 {
                        let f = at + lane;
                        lanes.w_ih[f / (G * I)][f / I % G][f % I] = w_ih[unit + lane][gate][k];
                        lane += 1;
                    }
                    k += 1;
                }
                let mut k = 0;
                while k < H {
                    let at = unit * G * H + (k * G + gate) * 8;
                    let mut lane = 0;
                    while lane < 8 {
                        let f = at + lane;
                        lanes.w_hh[f / (G * H)][f / H % G][f % H] = w_hh[unit + lane][gate][k];
                        lane += 1;
                    }
                    k += 1;
                }
                gate += 1;
            }
            unit += 8;
        }
        lanes
    }

    /// The input and recurrent weights of units `8b..8b + 8` in the lane layout (`I · G · 8`
    /// and `H · G · 8` weights).
    pub(crate) fn block(&self, b: usize) -> (&[W], &[W]) {
        let (w_ih, w_hh) = (self.w_ih.as_flattened(), self.w_hh.as_flattened());
        let (n_x, n_h) = (8 * G * I, 8 * G * H);
        let (w_ih, w_hh) = (w_ih.as_flattened(), w_hh.as_flattened());
        (
            w_ih.get(b * n_x..b * n_x + n_x).unwrap_or_default(),
            w_hh.get(b * n_h..b * n_h + n_h).unwrap_or_default(),
        )
    }
}

/// Not printed: it repeats the layer's weights.
#[cfg(tinyrnn_host_simd)]
impl<W, const G: usize, const I: usize, const H: usize> core::fmt::Debug
    for EightUnitLanes<W, G, I, H>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EightUnitLanes { .. }")
    }
}

/// No second copy where the cells never step eight units at a time.
#[cfg(not(tinyrnn_host_simd))]
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EightUnitLanes<W, const G: usize, const I: usize, const H: usize>(
    core::marker::PhantomData<W>,
);

#[cfg(not(tinyrnn_host_simd))]
impl<W: Copy, const G: usize, const I: usize, const H: usize> EightUnitLanes<W, G, I, H> {
    /// Nothing to copy.
    pub(crate) const fn new(_: &[[[W; I]; G]; H], _: &[[[W; H]; G]; H]) -> Self {
        EightUnitLanes(core::marker::PhantomData)
    }

    /// No weights.
    pub(crate) fn block(&self, _: usize) -> (&[W], &[W]) {
        (&[], &[])
    }
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
    pub fn step(&self, x: &[N::Act], h_prev: &[N::Act], h_next: &mut [N::Act], c: &mut [N::Cell])
    where
        N: Schedule,
    {
        match self {
            LayerWeights::Rnn(w) => w.step(x, h_prev, h_next),
            LayerWeights::Lstm(w) => w.step(x, h_prev, h_next, c),
            LayerWeights::Gru(w) => w.step(x, h_prev, h_next),
        }
    }
}
