//! Calibration: run the `f32` model over data and record the range of every tensor.
//!
//! Recording happens inside the core kernels themselves: [`Recording`] is a [`Numeric`] type
//! that computes exactly like `F32` and, on the side, records each gate pre-activation, cell
//! state and `relu` hidden value into per-layer statistics. Its `Format` is the layer index, so
//! the same `tinyrnn` cell code that runs on the device produces the ranges — there is no
//! separate instrumented copy of the maths.

use std::cell::RefCell;

use tinyrnn::{Elementwise, Numeric, Schedule, F32};

/// Magnitude statistics of one tensor: maximum and a log2 histogram.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    /// Largest `|v|` seen.
    pub max_abs: f64,
    /// Values seen.
    pub count: u64,
    /// `histogram[e + 64]` counts values with `floor(log2 |v|) == e` (zeros are not binned).
    histogram: Vec<u64>,
}

impl Default for TensorStats {
    fn default() -> Self {
        TensorStats {
            max_abs: 0.0,
            count: 0,
            histogram: vec![0; 128],
        }
    }
}

impl TensorStats {
    /// Adds one value.
    pub fn record(&mut self, v: f64) {
        let a = v.abs();
        self.count += 1;
        if a > self.max_abs {
            self.max_abs = a;
        }
        if a > 0.0 {
            let e = (a.log2().floor() as i64).clamp(-64, 63);
            self.histogram[(e + 64) as usize] += 1;
        }
    }

    /// Fraction of values with `|v| >= 2^int_bits` — those a format with `int_bits` integer
    /// bits (a signed type's range `[-2^int_bits, 2^int_bits)`) cannot hold.
    pub fn fraction_at_or_above(&self, int_bits: i32) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let from = (int_bits as i64 + 64).clamp(0, 128) as usize;
        let n: u64 = self.histogram[from..].iter().sum();
        n as f64 / self.count as f64
    }
}

/// Statistics of one layer (index = layer; the head uses index `layers`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerStats {
    /// Gate pre-activations (for the head: its outputs).
    pub pre: TensorStats,
    /// LSTM cell state.
    pub cell: TensorStats,
    /// Hidden state.
    pub hidden: TensorStats,
}

thread_local! {
    static STATS: RefCell<Vec<LayerStats>> = const { RefCell::new(Vec::new()) };
}

fn with_layer(layer: u16, f: impl FnOnce(&mut LayerStats)) {
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        let k = layer as usize;
        if s.len() <= k {
            s.resize(k + 1, LayerStats::default());
        }
        f(&mut s[k]);
    });
}

/// Clears the statistics of this thread and returns what was recorded.
pub fn take_stats() -> Vec<LayerStats> {
    STATS.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// `f32` arithmetic that records tensor ranges per layer (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recording;

/// The arithmetic itself is `F32`'s: every operation delegates to it and records the result.
impl Elementwise for Recording {
    type Act = f32;
    type Pre = f32;
    type Cell = f32;
    /// (layer index, `tanh` produces the hidden state: a tanh RNN).
    type Format = (u16, bool);

    fn sigmoid(pre: f32, _: &(u16, bool)) -> f32 {
        F32::sigmoid(pre, &())
    }

    fn tanh(pre: f32, &(layer, is_hidden): &(u16, bool)) -> f32 {
        let t = F32::tanh(pre, &());
        if is_hidden {
            with_layer(layer, |s| s.hidden.record(t as f64));
        }
        t
    }

    fn relu(pre: f32, &(layer, _): &(u16, bool)) -> f32 {
        let h = F32::relu(pre, &());
        with_layer(layer, |s| s.hidden.record(h as f64));
        h
    }

    fn gru_candidate(x_part: f32, reset: f32, h_part: f32, &(layer, _): &(u16, bool)) -> f32 {
        let p = F32::gru_candidate(x_part, reset, h_part, &());
        with_layer(layer, |s| s.pre.record(p as f64));
        p
    }

    fn gru_hidden(update: f32, candidate: f32, h_prev: f32, &(layer, _): &(u16, bool)) -> f32 {
        let h = F32::gru_hidden(update, candidate, h_prev, &());
        with_layer(layer, |s| s.hidden.record(h as f64));
        h
    }

    fn lstm_cell(
        forget: f32,
        c: f32,
        input: f32,
        candidate: f32,
        &(layer, _): &(u16, bool),
    ) -> f32 {
        let c = F32::lstm_cell(forget, c, input, candidate, &());
        with_layer(layer, |s| s.cell.record(c as f64));
        c
    }

    fn lstm_hidden(output: f32, c: f32, &(layer, _): &(u16, bool)) -> f32 {
        let h = F32::lstm_hidden(output, c, &());
        with_layer(layer, |s| s.hidden.record(h as f64));
        h
    }
}

impl Numeric for Recording {
    type Weight = f32;
    type Bias = f32;
    type RowScale = ();

    fn preact(
        bias: f32,
        w_x: &[f32],
        _: (),
        x: &[f32],
        w_h: &[f32],
        _: (),
        h: &[f32],
        &(layer, _): &(u16, bool),
    ) -> f32 {
        let p = F32::preact(bias, w_x, (), x, w_h, (), h, &());
        with_layer(layer, |s| s.pre.record(p as f64));
        p
    }
}

/// One row and one unit at a time (the defaults), so that every pre-activation passes through
/// `preact` and is recorded.
impl Schedule for Recording {}

crate::float_host_numeric!(Recording);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_fractions() {
        let mut t = TensorStats::default();
        for v in [0.5, 1.0, 3.0, -5.0, 0.0] {
            t.record(v);
        }
        assert_eq!(t.max_abs, 5.0);
        assert_eq!(t.fraction_at_or_above(2), 1.0 / 5.0); // only |-5| >= 4
        assert_eq!(t.fraction_at_or_above(0), 3.0 / 5.0); // 1, 3, 5
        assert_eq!(t.fraction_at_or_above(10), 0.0);
    }
}
