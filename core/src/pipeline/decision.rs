//! The decision layer: from logits to events, as a classifier on a device needs them.
//!
//! Each update takes one vector of logits (one per class: the head's outputs at the end of a
//! [window](super::window)) through four stages, all integer after the softmax:
//!
//! 1. **Softmax** ([`Logit::softmax_q15`]): probabilities in Q15, `p = round(2^15 · e^(z_i −
//!    z_max) / Σ_j e^(z_j − z_max))` (so `32768` is 1.0, stored in a `u16`). Fixed-point logits
//!    (`i32` at `frac` fractional bits, a head's `pre_frac`) are converted with integers only:
//!    the exponent in base 2, `y = (z_max − z_i) · log2(e) / 2^frac`, is rounded to 16
//!    fractional bits; `2^(−y)` is a table of 129 entries `2^(−j/128)` (Q31, 516 bytes of
//!    flash) with linear interpolation, shifted right by `⌊y⌋`; each probability is one
//!    rounded `u64` division. `f32` logits compute `y` in `f32` and take the same integer path.
//!    **Error** against the `f64` softmax: at most ½ LSB of Q15 (the final rounding) plus
//!    `2.6e-5 · p` for fixed point (twice the relative error of one exponential, 7.4e-6 of
//!    interpolation plus 5.3e-6 of rounding `y`: once in the numerator, once in the sum), so
//!    below 1.4 LSB; plus `3e-5 · p` for `f32` (its `y` carries three more `f32` roundings).
//!    Held by the property tests and the error table of this file.
//! 2. **Smoothing** ([`Smoothing`]): none, the mean of the last `m` probability vectors (a
//!    `heapless::Deque` used as a ring buffer; rounded half up; over fewer vectors while it
//!    fills), or an exponential average `s += (p − s) / 2^k` kept with 15 extra fractional
//!    bits (each step rounded half up), started at the first vector.
//! 3. **Candidate**: the class with the largest smoothed probability (the first on ties). If
//!    its probability is below `min_confidence`, the candidate is *unknown*; if it leads the
//!    runner-up by less than `margin`, there is no candidate this update.
//! 4. **Hysteresis and suppression**: the decision changes to a candidate only after that same
//!    candidate has been seen on `hold` consecutive updates (an update without a candidate, or
//!    with the current decision as candidate, starts the count again), and not within
//!    `refractory` updates after the previous change — the suppression window of keyword
//!    spotters. Each change is an event, a [`Decision`]; the first decision after a start or a
//!    reset is one too.
//!
//! Counts are in updates: with windows of `k` samples, `hold` and `refractory` count windows.
//! With fixed-point logits every stage is integer arithmetic, so the events are bit-identical
//! on the host and on every target; there is no allocation and no panic on any input (NaN
//! logits included: see [`Logit::softmax_q15`]).

use heapless::Deque;

use super::finite::FiniteCheck;
use super::ConfigError;

/// Probability 1.0 in the Q15 probabilities the decision layer works with (`u16`).
pub const PROB_ONE: u16 = 1 << 15;

/// `p` in Q15, rounded half up and clamped to `0..=1` (NaN → 0): for thresholds in a `const`.
pub const fn q15(p: f32) -> u16 {
    if p.is_nan() || p <= 0.0 {
        0
    } else if p >= 1.0 {
        PROB_ONE
    } else {
        (p * 32768.0 + 0.5) as u16
    }
}

/// `round(log2(e) · 2^30)`.
const LOG2E_Q30: u64 = 1_549_082_005;

/// `round(2^31 · 2^(−j/128))` for `j = 0..=128`; the test `exp2_table_is_correctly_rounded`
/// recomputes every entry in `f64`.
const EXP2_Q31: [u32; 129] = [
    0x80000000, 0x7F4F08AE, 0x7E9F0606, 0x7DEFF6B6, 0x7D41D96E, 0x7C94ACDE, 0x7BE86FBA, 0x7B3D20B6,
    0x7A92BE8B, 0x79E947EF, 0x7940BB9E, 0x78991854, 0x77F25CCE, 0x774C87CC, 0x76A7980F, 0x76038C5B,
    0x75606374, 0x74BE1C20, 0x741CB528, 0x737C2D55, 0x72DC8374, 0x723DB650, 0x719FC4B9, 0x7102AD80,
    0x70666F76, 0x6FCB096F, 0x6F307A41, 0x6E96C0C3, 0x6DFDDBCC, 0x6D65CA38, 0x6CCE8AE1, 0x6C381CA6,
    0x6BA27E65, 0x6B0DAEFF, 0x6A79AD56, 0x69E6784D, 0x69540EC9, 0x68C26FB1, 0x683199ED, 0x67A18C68,
    0x6712460B, 0x6683C5C3, 0x65F60A7F, 0x6569132F, 0x64DCDEC3, 0x64516C2E, 0x63C6BA64, 0x633CC85B,
    0x62B39509, 0x622B1F66, 0x61A3666D, 0x611C6919, 0x60962665, 0x60109D51, 0x5F8BCCDB, 0x5F07B405,
    0x5E8451D0, 0x5E01A53F, 0x5D7FAD59, 0x5CFE6923, 0x5C7DD7A4, 0x5BFDF7E5, 0x5B7EC8F2, 0x5B0049D4,
    0x5A82799A, 0x5A055751, 0x5988E209, 0x590D18D3, 0x5891FAC1, 0x581786E6, 0x579DBC57, 0x57249A29,
    0x56AC1F75, 0x56344B52, 0x55BD1CDB, 0x55469329, 0x54D0AD5A, 0x545B6A8B, 0x53E6C9DA, 0x5372CA68,
    0x52FF6B55, 0x528CABC3, 0x521A8AD7, 0x51A907B4, 0x51382182, 0x50C7D765, 0x50582888, 0x4FE91413,
    0x4F7A9930, 0x4F0CB70C, 0x4E9F6CD4, 0x4E32B9B4, 0x4DC69CDD, 0x4D5B157E, 0x4CF022CA, 0x4C85C3F1,
    0x4C1BF829, 0x4BB2BEA5, 0x4B4A169C, 0x4AE1FF43, 0x4A7A77D4, 0x4A137F88, 0x49AD1598, 0x4947393F,
    0x48E1E9BA, 0x487D2646, 0x4818EE22, 0x47B5408C, 0x47521CC6, 0x46EF8210, 0x468D6FAE, 0x462BE4E2,
    0x45CAE0F2, 0x456A6323, 0x450A6ABB, 0x44AAF702, 0x444C0740, 0x43ED9AC0, 0x438FB0CB, 0x433248AE,
    0x42D561B4, 0x4278FB2B, 0x421D1462, 0x41C1ACA7, 0x4166C34C, 0x410C57A2, 0x40B268FA, 0x4058F6A8,
    0x40000000,
];

/// `2^(−y) · 2^31`, rounded, for `y ≥ 0` given in units of 2⁻¹⁶ (`y_q16`); 0 for `y ≥ 32`.
///
/// Linear interpolation in the 128 intervals of [`EXP2_Q31`] (relative error below 7.4e-6:
/// `h²/8 · max|f''| / min f` with `h = 1/128`), then a rounded right shift by `⌊y⌋`.
#[inline]
fn exp2_neg_q31(y_q16: u64) -> u32 {
    let whole = y_q16 >> 16;
    if whole >= 32 {
        return 0;
    }
    let fraction = (y_q16 & 0xFFFF) as u32;
    // The mask keeps j ≤ 127: both indices are within the table, no bounds check remains.
    let j = (fraction >> 9) as usize & 127;
    let (a, b) = (EXP2_Q31[j], EXP2_Q31[j + 1]);
    let within = (fraction & 0x1FF) as u64;
    let drop = (((a - b) as u64 * within + 256) >> 9) as u32;
    let v = a - drop;
    match whole as u32 {
        0 => v,
        s => (v >> s) + ((v >> (s - 1)) & 1),
    }
}

/// A head's output type: `f32`, or `i32` fixed point. The decision layer's entry point.
pub trait Logit: Copy + Default + FiniteCheck {
    /// `(larger − z) · log2(e)` in units of 2⁻¹⁶, rounded, saturating, for `larger ≥ z`;
    /// fixed-point logits have `frac` fractional bits (`f32` ignores it).
    fn exponent_q16(larger: Self, z: Self, frac: u8) -> u64;

    /// The larger of two finite logits.
    fn larger(a: Self, b: Self) -> Self;

    /// Softmax of `logits` into Q15 probabilities (`32768` = 1.0), as many as `out` holds
    /// (further logits are ignored, further outputs left alone).
    ///
    /// Returns `false`, with every output 0, when a logit is NaN or infinite (the pipeline
    /// never passes those: it resets the state first) or there are none.
    fn softmax_q15(logits: &[Self], frac: u8, out: &mut [u16]) -> bool {
        let n = logits.len().min(out.len());
        let (logits, out) = (
            logits.get(..n).unwrap_or_default(),
            out.get_mut(..n).unwrap_or_default(),
        );
        let finite = logits.iter().all(|z| z.is_finite());
        let largest = logits.iter().copied().reduce(Self::larger);
        let (true, Some(largest)) = (finite, largest) else {
            out.fill(0);
            return false;
        };
        let e = |z: Self| exp2_neg_q31(Self::exponent_q16(largest, z, frac)) as u64;
        // The largest logit contributes exactly 2^31, so the sum is at least that.
        let sum: u64 = logits.iter().map(|&z| e(z)).sum();
        for (p, &z) in out.iter_mut().zip(logits) {
            *p = (((e(z) << 15) + sum / 2) / sum.max(1)) as u16;
        }
        true
    }
}

impl Logit for i32 {
    #[inline]
    fn exponent_q16(larger: i32, z: i32, frac: u8) -> u64 {
        // A difference of i32 values is below 2^32; times log2(e) · 2^30 it stays below 2^63.
        let d = (larger as i64 - z as i64).max(0) as u64;
        let shift = frac.min(31) as u32 + 14;
        (d * LOG2E_Q30 + (1 << (shift - 1))) >> shift
    }

    #[inline]
    fn larger(a: i32, b: i32) -> i32 {
        a.max(b)
    }
}

impl Logit for f32 {
    #[inline]
    fn exponent_q16(larger: f32, z: f32, _frac: u8) -> u64 {
        // Three roundings of 2^-24 (the difference, the constant, the product); adding ½ is
        // exact below y = 128, past which e = 0 anyway. An overflow of the difference to +∞
        // saturates the conversion: e = 0 too, as it should.
        ((larger - z) * (core::f32::consts::LOG2_E * 65536.0) + 0.5) as u64
    }

    #[inline]
    fn larger(a: f32, b: f32) -> f32 {
        if b > a {
            b
        } else {
            a
        }
    }
}

/// How probabilities are smoothed over updates before a class is picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Smoothing {
    /// The latest probabilities as they are.
    None,
    /// The mean of the last `window` probability vectors (`1..=K`, the decider's capacity).
    Mean {
        /// Vectors averaged.
        window: u16,
    },
    /// `s += (p − s) / 2^shift` per update (`shift` in `1..=15`; weight of the newest vector
    /// `2^−shift`), started at the first vector.
    Exponential {
        /// Smoothing shift.
        shift: u8,
    },
}

/// The decision layer's parameters (probabilities in Q15: see [`q15`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecisionConfig {
    /// Smoothing of the probabilities.
    pub smoothing: Smoothing,
    /// Below this smoothed top probability the candidate is *unknown* (0: never).
    pub min_confidence: u16,
    /// The top class must lead the runner-up by at least this much to be a candidate.
    pub margin: u16,
    /// Consecutive updates a candidate must be seen before the decision changes (at least 1).
    pub hold: u16,
    /// Updates after an event during which the decision does not change again.
    pub refractory: u32,
}

impl DecisionConfig {
    /// The plain argmax of every update: no smoothing, no threshold, no margin, `hold` 1, no
    /// refractory period. Refine it with the `with_*` methods.
    pub const fn new() -> Self {
        DecisionConfig {
            smoothing: Smoothing::None,
            min_confidence: 0,
            margin: 0,
            hold: 1,
            refractory: 0,
        }
    }

    /// With `smoothing`.
    pub const fn with_smoothing(self, smoothing: Smoothing) -> Self {
        DecisionConfig { smoothing, ..self }
    }

    /// With a minimum confidence (Q15) below which the decision is unknown.
    pub const fn with_min_confidence(self, min_confidence: u16) -> Self {
        DecisionConfig {
            min_confidence,
            ..self
        }
    }

    /// With a margin (Q15) by which the top class must lead.
    pub const fn with_margin(self, margin: u16) -> Self {
        DecisionConfig { margin, ..self }
    }

    /// With a hysteresis of `hold` consecutive updates.
    pub const fn with_hold(self, hold: u16) -> Self {
        DecisionConfig { hold, ..self }
    }

    /// With a refractory period of `refractory` updates after each event.
    pub const fn with_refractory(self, refractory: u32) -> Self {
        DecisionConfig { refractory, ..self }
    }

    /// Checks the parameters against a smoothing capacity of `capacity` vectors.
    pub const fn check(&self, capacity: usize) -> Result<(), ConfigError> {
        if self.hold == 0 {
            return Err(ConfigError::Hold);
        }
        if self.min_confidence > PROB_ONE {
            return Err(ConfigError::Probability {
                field: "min_confidence",
                value: self.min_confidence,
            });
        }
        if self.margin > PROB_ONE {
            return Err(ConfigError::Probability {
                field: "margin",
                value: self.margin,
            });
        }
        match self.smoothing {
            Smoothing::Mean { window } if window == 0 || window as usize > capacity => {
                Err(ConfigError::SmoothingWindow { window, capacity })
            }
            Smoothing::Exponential { shift } if shift == 0 || shift > 15 => {
                Err(ConfigError::ExponentialShift { shift })
            }
            _ => Ok(()),
        }
    }
}

impl Default for DecisionConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// An event: the decision changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Decision {
    /// The class decided (an index into the model's classes); `None`: unknown.
    pub class: Option<u16>,
    /// The class's smoothed probability in Q15 (for unknown: the top probability, below
    /// `min_confidence`).
    pub confidence: u16,
    /// The stream index (0-based) of the sample whose update made the decision.
    pub sample_index: u64,
}

impl Decision {
    /// `confidence` as a fraction of 1 (for printing on the host).
    pub fn confidence_f32(&self) -> f32 {
        self.confidence as f32 / PROB_ONE as f32
    }
}

/// The decision layer's state for `C` classes (at most) and a smoothing capacity of `K`
/// vectors. Memory: `K · C · 2` bytes of ring buffer, `C · 6` of averages and smoothed
/// probabilities, and a few counters (`size_of::<Decider<C, K>>()`).
#[derive(Clone, Debug)]
pub struct Decider<const C: usize, const K: usize> {
    config: DecisionConfig,
    /// The last `window` probability vectors of the mean, oldest first.
    history: Deque<[u16; C], K>,
    average: [u32; C],
    averaging: bool,
    smoothed: [u16; C],
    classes: usize,
    last: Option<Decision>,
    /// The candidate being held (`Some(None)`: unknown) and for how many updates.
    pending: Option<Option<u16>>,
    pending_count: u16,
    since_event: u32,
}

impl<const C: usize, const K: usize> Decider<C, K> {
    /// A decider with `config`, before its first update, for a `const` or `static`.
    ///
    /// # Panics
    ///
    /// If `config` does not pass [`DecisionConfig::check`] with capacity `K`: in a `const`
    /// that is a compile-time error naming the parameter. For a configuration known only at
    /// run time, use [`try_new`](Self::try_new).
    pub const fn new(config: DecisionConfig) -> Self {
        match config.check(K) {
            Ok(()) => {}
            Err(ConfigError::Hold) => panic!("decision config: hold must be at least 1"),
            Err(ConfigError::SmoothingWindow { .. }) => {
                panic!("decision config: the mean's window must be 1..=K (the decider's capacity)")
            }
            Err(ConfigError::ExponentialShift { .. }) => {
                panic!("decision config: the exponential shift must be 1..=15")
            }
            Err(_) => panic!("decision config: min_confidence and margin must be at most 32768"),
        }
        Self::unchecked(config)
    }

    /// A decider with `config`, or the first parameter out of range.
    pub const fn try_new(config: DecisionConfig) -> Result<Self, ConfigError> {
        match config.check(K) {
            Ok(()) => Ok(Self::unchecked(config)),
            Err(error) => Err(error),
        }
    }

    /// The decider for a checked `config`.
    const fn unchecked(config: DecisionConfig) -> Self {
        const {
            assert!(
                C > 0 && C <= 1 << 16,
                "a decider needs 1..=65536 classes (class indices are u16)"
            );
            assert!(
                K > 0 && K <= u16::MAX as usize,
                "the smoothing capacity must be 1..=65535 vectors"
            );
        }
        Decider {
            config,
            history: Deque::new(),
            average: [0; C],
            averaging: false,
            smoothed: [0; C],
            classes: 0,
            last: None,
            pending: None,
            pending_count: 0,
            since_event: u32::MAX,
        }
    }

    /// The parameters.
    pub const fn config(&self) -> &DecisionConfig {
        &self.config
    }

    /// The smoothed probabilities of the last update (Q15), one per class.
    pub fn probabilities(&self) -> &[u16] {
        self.smoothed.get(..self.classes).unwrap_or_default()
    }

    /// The last event: the decision in force (`None` before the first).
    pub const fn current(&self) -> Option<Decision> {
        self.last
    }

    /// Back to the state before the first update (the configuration is kept).
    pub fn reset(&mut self) {
        self.history.clear();
        self.average = [0; C];
        self.averaging = false;
        self.smoothed = [0; C];
        self.classes = 0;
        self.last = None;
        self.pending = None;
        self.pending_count = 0;
        self.since_event = u32::MAX;
    }

    /// One update from Q15 probabilities (`probabilities.len()` classes, at most `C`; values
    /// above 1.0 count as 1.0); the event if the decision changes. `sample_index` is recorded
    /// in the event.
    pub fn update(&mut self, probabilities: &[u16], sample_index: u64) -> Option<Decision> {
        let classes = probabilities.len().min(C);
        if classes == 0 {
            return None;
        }
        let mut p = [0u16; C];
        for (p, &given) in p.iter_mut().zip(probabilities) {
            *p = given.min(PROB_ONE);
        }
        self.classes = classes;
        self.smooth(&p);

        let (top, top_p, runner_up) = top_two(self.probabilities());
        let candidate = if top_p < self.config.min_confidence {
            Some(None)
        } else if top_p.saturating_sub(runner_up) >= self.config.margin {
            Some(Some(top))
        } else {
            None
        };
        self.since_event = self.since_event.saturating_add(1);
        let Some(candidate) = candidate.filter(|&c| self.last.map(|d| d.class) != Some(c)) else {
            self.pending = None;
            self.pending_count = 0;
            return None;
        };
        if self.pending == Some(candidate) {
            self.pending_count = self.pending_count.saturating_add(1);
        } else {
            self.pending = Some(candidate);
            self.pending_count = 1;
        }
        if self.pending_count < self.config.hold || self.since_event <= self.config.refractory {
            return None;
        }
        let confidence = match candidate {
            Some(class) => self.smoothed.get(class as usize).copied().unwrap_or(top_p),
            None => top_p,
        };
        let decision = Decision {
            class: candidate,
            confidence,
            sample_index,
        };
        self.last = Some(decision);
        self.pending = None;
        self.pending_count = 0;
        self.since_event = 0;
        Some(decision)
    }

    /// Updates `smoothed` from the new vector `p`.
    fn smooth(&mut self, p: &[u16; C]) {
        match self.config.smoothing {
            Smoothing::None => self.smoothed = *p,
            Smoothing::Mean { window } => {
                // `window ≤ K` (checked by `new`), so after dropping the oldest vector there is
                // always room for the new one.
                while self.history.len() >= (window as usize).max(1) {
                    self.history.pop_front();
                }
                let _ = self.history.push_back(*p);
                let (older, newer) = self.history.as_slices();
                let mut sums = [0u32; C];
                for vector in older.iter().chain(newer) {
                    for (sum, &v) in sums.iter_mut().zip(vector) {
                        *sum += v as u32;
                    }
                }
                let used = self.history.len().max(1) as u32;
                for (s, sum) in self.smoothed.iter_mut().zip(sums) {
                    *s = ((sum + used / 2) / used) as u16;
                }
            }
            Smoothing::Exponential { shift } => {
                let shift = shift.clamp(1, 15) as u32;
                for ((average, s), &v) in self.average.iter_mut().zip(&mut self.smoothed).zip(p) {
                    let target = (v as u32) << 15;
                    if self.averaging {
                        // |target − average| ≤ 2^30: exact in i32, and the step moves the
                        // average towards the target without passing it.
                        let diff = target as i32 - *average as i32;
                        let step = (diff + (1 << (shift - 1))) >> shift;
                        *average = (*average as i32 + step) as u32;
                    } else {
                        *average = target;
                    }
                    *s = ((*average + (1 << 14)) >> 15) as u16;
                }
                self.averaging = true;
            }
        }
    }
}

/// The index and value of the largest entry (the first on ties) and the largest value among the
/// others (0 if there are none).
fn top_two(values: &[u16]) -> (u16, u16, u16) {
    let (mut top, mut top_p, mut runner_up) = (0u16, 0u16, 0u16);
    for (i, &v) in values.iter().enumerate() {
        if i == 0 || v > top_p {
            if i > 0 {
                runner_up = top_p;
            }
            (top, top_p) = (i as u16, v);
        } else if v > runner_up {
            runner_up = v;
        }
    }
    (top, top_p, runner_up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The exact softmax in f64, in units of Q15.
    fn softmax_q15_f64(z: &[f64]) -> Vec<f64> {
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|&v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter().map(|&v| v / sum * 32768.0).collect()
    }

    /// The documented bound, in Q15 units, for an exact probability `p` (in Q15 units): ½ LSB
    /// of rounding plus 2.6e-5 relative for fixed point.
    fn bound(p: f64) -> f64 {
        0.5 + 2.6e-5 * p
    }

    /// The documented bound for `f32` logits: ½ LSB plus 3e-5 relative.
    fn bound_f32(p: f64) -> f64 {
        0.5 + 3e-5 * p
    }

    #[test]
    fn exp2_table_is_correctly_rounded() {
        for (j, &entry) in EXP2_Q31.iter().enumerate() {
            let exact = 2f64.powf(-(j as f64) / 128.0) * 2f64.powi(31);
            assert_eq!(entry as f64, exact.round(), "entry {j}");
        }
    }

    #[test]
    fn exp2_interpolation_error_over_a_dense_grid() {
        // Every 2^-16 step of the first two octaves, and a sparser sweep to 2^-32.
        let mut worst_relative: f64 = 0.0;
        for y in (0..2 << 16).chain((2 << 16..32 << 16).step_by(97)) {
            let exact = 2f64.powf(-(y as f64) / 65536.0) * 2f64.powi(31);
            let got = exp2_neg_q31(y) as f64;
            // Relative error of the interpolation, plus ½ LSB of each of the two roundings.
            assert!(
                (got - exact).abs() <= 7.4e-6 * exact + 1.0,
                "y = {y}: {got} vs {exact}"
            );
            if exact > 2f64.powi(20) {
                worst_relative = worst_relative.max((got - exact).abs() / exact);
            }
        }
        eprintln!("exp2 table: worst relative error {worst_relative:.2e}");
        assert_eq!(exp2_neg_q31(32 << 16), 0);
        assert_eq!(exp2_neg_q31(u64::MAX), 0);
        assert_eq!(exp2_neg_q31(0), 1 << 31);
    }

    #[test]
    fn softmax_of_equal_logits_is_uniform_and_extremes_do_not_overflow() {
        let mut p = [0u16; 4];
        assert!(i32::softmax_q15(&[7; 4], 10, &mut p));
        assert_eq!(p, [8192; 4]);
        assert!(i32::softmax_q15(&[i32::MAX, i32::MIN], 0, &mut p[..2]));
        assert_eq!(&p[..2], &[32768, 0]);
        assert!(i32::softmax_q15(&[i32::MIN, i32::MAX], 0, &mut p[..2]));
        assert_eq!(&p[..2], &[0, 32768]);
        // At 31 fractional bits the i32 range is ±1: softmax of (-1, 1) = (0.1192, 0.8808).
        assert!(i32::softmax_q15(&[i32::MIN, i32::MAX], 31, &mut p[..2]));
        assert_eq!(&p[..2], &[3906, 28862]);
        assert!(f32::softmax_q15(&[f32::MAX, -f32::MAX], 0, &mut p[..2]));
        assert_eq!(&p[..2], &[32768, 0]);
        assert!(f32::softmax_q15(&[0.0], 0, &mut p[..1]));
        assert_eq!(p[0], 32768);
    }

    #[test]
    fn softmax_refuses_non_finite_logits_and_empty_input() {
        let mut p = [1u16; 3];
        assert!(!f32::softmax_q15(&[0.0, f32::NAN, 1.0], 0, &mut p));
        assert_eq!(p, [0; 3]);
        let mut p = [1u16; 2];
        assert!(!f32::softmax_q15(&[f32::INFINITY, 1.0], 0, &mut p));
        assert_eq!(p, [0; 2]);
        assert!(!i32::softmax_q15(&[], 0, &mut p));
        // More outputs than logits: the extra outputs are left alone.
        let mut p = [5u16; 3];
        assert!(i32::softmax_q15(&[0, 0], 0, &mut p));
        assert_eq!(p, [16384, 16384, 5]);
    }

    #[test]
    fn softmax_error_table() {
        // A deterministic sweep, printed with --nocapture: the worst error over logit
        // spreads from 0 to 20 nats, 2 to 8 classes, fixed point at 8 and 16 bits and f32.
        let mut rng = 0x2545F4914F6CDD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut worst_fixed, mut worst_f32) = (0f64, 0f64);
        // The largest error beyond the final rounding, relative to p, over p ≥ 1/64.
        let mut relative: f64 = 0.0;
        for case in 0..20_000 {
            let classes = 2 + case % 7;
            let spread = 20.0 * next();
            let z: Vec<f64> = (0..classes)
                .map(|_| spread * (2.0 * next() - 1.0))
                .collect();
            for frac in [8u8, 16] {
                let q: Vec<i32> = z
                    .iter()
                    .map(|&v| (v * (1u32 << frac) as f64).round() as i32)
                    .collect();
                let exact = softmax_q15_f64(
                    &q.iter()
                        .map(|&v| v as f64 / (1u32 << frac) as f64)
                        .collect::<Vec<_>>(),
                );
                let mut p = vec![0u16; classes];
                assert!(i32::softmax_q15(&q, frac, &mut p));
                for (&got, &want) in p.iter().zip(&exact) {
                    let e = (got as f64 - want).abs();
                    assert!(e <= bound(want), "{q:?} frac {frac}: {p:?} vs {exact:?}");
                    worst_fixed = worst_fixed.max(e);
                    if want >= 512.0 {
                        relative = relative.max((e - 0.5).max(0.0) / want);
                    }
                }
            }
            let f: Vec<f32> = z.iter().map(|&v| v as f32).collect();
            let exact = softmax_q15_f64(&f.iter().map(|&v| v as f64).collect::<Vec<_>>());
            let mut p = vec![0u16; classes];
            assert!(f32::softmax_q15(&f, 0, &mut p));
            for (&got, &want) in p.iter().zip(&exact) {
                let e = (got as f64 - want).abs();
                assert!(e <= bound_f32(want), "{f:?}: {p:?} vs {exact:?}");
                worst_f32 = worst_f32.max(e);
                if want >= 512.0 {
                    relative = relative.max((e - 0.5).max(0.0) / want);
                }
            }
        }
        eprintln!(
            "softmax vs f64: worst {:.3} LSB of Q15 ({:.2e}) fixed point, {:.3} LSB ({:.2e}) f32; \
             beyond the rounding at most {:.2e} of p",
            worst_fixed,
            worst_fixed / 32768.0,
            worst_f32,
            worst_f32 / 32768.0,
            relative
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Fixed-point softmax against f64 within `1.5e-5 + 2.6e-5 · p`, for any `i32` logits
        /// and any `frac` the heads use.
        #[test]
        fn fixed_softmax_within_its_bound(
            z in prop::collection::vec(any::<i32>(), 1..10),
            frac in 0u8..=24,
            narrow in prop::bool::ANY,
        ) {
            // Half the cases within a few nats of each other (where probabilities are not all
            // 0 or 1), half over the whole i32 range.
            let z: Vec<i32> = if narrow { z.iter().map(|v| v >> 8).collect() } else { z };
            let unit = (1u64 << frac) as f64;
            let exact = softmax_q15_f64(&z.iter().map(|&v| v as f64 / unit).collect::<Vec<_>>());
            let mut p = vec![0u16; z.len()];
            prop_assert!(i32::softmax_q15(&z, frac, &mut p));
            for (&got, &want) in p.iter().zip(&exact) {
                prop_assert!((got as f64 - want).abs() <= bound(want), "{:?} vs {:?}", p, exact);
            }
        }

        /// `f32` softmax against f64 within its bound.
        #[test]
        fn f32_softmax_within_its_bound(z in prop::collection::vec(-60.0f32..60.0, 1..10)) {
            let exact = softmax_q15_f64(&z.iter().map(|&v| v as f64).collect::<Vec<_>>());
            let mut p = vec![0u16; z.len()];
            prop_assert!(f32::softmax_q15(&z, 0, &mut p));
            for (&got, &want) in p.iter().zip(&exact) {
                prop_assert!((got as f64 - want).abs() <= bound_f32(want), "{:?} vs {:?}", p, exact);
            }
        }

        /// Exponential smoothing against the same recurrence in f64, within 1 LSB.
        #[test]
        fn exponential_smoothing_tracks_its_f64_recurrence(
            ps in prop::collection::vec(0u16..=32768, 1..60),
            shift in 1u8..=15,
        ) {
            let config = DecisionConfig::new().with_smoothing(Smoothing::Exponential { shift });
            let mut decider = Decider::<1, 1>::try_new(config).unwrap();
            let mut s = ps[0] as f64;
            for (i, &p) in ps.iter().enumerate() {
                decider.update(&[p], i as u64);
                if i > 0 {
                    s += (p as f64 - s) / 2f64.powi(shift as i32);
                }
                // Each step rounds by at most 2^-16 LSB; the output by ½ LSB.
                let tolerance = 0.5 + (i as f64 + 1.0) * 2f64.powi(-15);
                prop_assert!((decider.probabilities()[0] as f64 - s).abs() <= tolerance);
            }
        }
    }

    fn decide<const C: usize, const K: usize>(
        config: DecisionConfig,
        updates: &[[u16; C]],
    ) -> Vec<Decision> {
        let mut decider = Decider::<C, K>::try_new(config).unwrap();
        updates
            .iter()
            .enumerate()
            .filter_map(|(i, p)| decider.update(p, i as u64))
            .collect()
    }

    fn event(class: Option<u16>, confidence: u16, sample_index: u64) -> Decision {
        Decision {
            class,
            confidence,
            sample_index,
        }
    }

    const HI: u16 = 30000;
    const LO: u16 = 2768;

    #[test]
    fn plain_argmax_reports_every_change() {
        let a = [HI, LO];
        let b = [LO, HI];
        let events = decide::<2, 1>(DecisionConfig::new(), &[a, a, b, a, a]);
        assert_eq!(
            events,
            [
                event(Some(0), HI, 0),
                event(Some(1), HI, 2),
                event(Some(0), HI, 3)
            ]
        );
    }

    #[test]
    fn hysteresis_needs_hold_consecutive_updates() {
        let a = [HI, LO];
        let b = [LO, HI];
        let config = DecisionConfig::new().with_hold(3);
        // b twice is not enough; three times is. An interruption restarts the count.
        let events = decide::<2, 1>(config, &[a, a, a, b, b, a, b, b, b, a]);
        assert_eq!(events, [event(Some(0), HI, 2), event(Some(1), HI, 8)]);
    }

    #[test]
    fn below_min_confidence_is_unknown_and_a_small_lead_is_no_candidate() {
        let sure = [HI, LO, 0];
        let unsure = [12000, 11000, 9768];
        let close = [16000, 15000, 1768];
        let config = DecisionConfig::new()
            .with_min_confidence(q15(0.45))
            .with_margin(q15(0.1));
        let events = decide::<3, 1>(config, &[sure, close, close, unsure, close, sure]);
        assert_eq!(
            events,
            [
                event(Some(0), HI, 0),
                // `close` leads by 1000 < margin: no candidate, the decision stays.
                event(None, 12000, 3),
                event(Some(0), HI, 5),
            ]
        );
    }

    #[test]
    fn refractory_period_suppresses_changes_after_an_event() {
        let a = [HI, LO];
        let b = [LO, HI];
        let config = DecisionConfig::new().with_refractory(3);
        // Events at 0; b at 1..=3 is suppressed (3 updates), the change happens at 4 once the
        // period is over (the candidate has been held throughout).
        let events = decide::<2, 1>(config, &[a, b, b, b, b, a, a, a, a, a]);
        assert_eq!(
            events,
            [
                event(Some(0), HI, 0),
                event(Some(1), HI, 4),
                event(Some(0), HI, 8)
            ]
        );
    }

    #[test]
    fn mean_smoothing_averages_the_last_vectors() {
        let config = DecisionConfig::new().with_smoothing(Smoothing::Mean { window: 3 });
        let mut decider = Decider::<2, 4>::try_new(config).unwrap();
        decider.update(&[30000, 2768], 0);
        assert_eq!(decider.probabilities(), &[30000, 2768]);
        decider.update(&[0, 32768], 1);
        assert_eq!(decider.probabilities(), &[15000, 17768]);
        decider.update(&[3, 0], 2);
        // 30003 / 3 and 35536 / 3 = 11845.33, rounded.
        assert_eq!(decider.probabilities(), &[10001, 11845]);
        // The first vector leaves the window: (0 + 3 + 0) / 3, 32768 / 3 = 10922.67.
        decider.update(&[0, 0], 3);
        assert_eq!(decider.probabilities(), &[1, 10923]);
    }

    #[test]
    fn config_errors_are_refused() {
        let bad = |config: DecisionConfig| Decider::<2, 4>::try_new(config).unwrap_err();
        assert_eq!(bad(DecisionConfig::new().with_hold(0)), ConfigError::Hold);
        assert_eq!(
            bad(DecisionConfig::new().with_smoothing(Smoothing::Mean { window: 5 })),
            ConfigError::SmoothingWindow {
                window: 5,
                capacity: 4
            }
        );
        assert_eq!(
            bad(DecisionConfig::new().with_smoothing(Smoothing::Exponential { shift: 16 })),
            ConfigError::ExponentialShift { shift: 16 }
        );
        assert!(matches!(
            bad(DecisionConfig::new().with_margin(40000)),
            ConfigError::Probability {
                field: "margin",
                ..
            }
        ));
        assert_eq!(
            bad(DecisionConfig::new().with_smoothing(Smoothing::Mean { window: 0 })).to_string(),
            "mean smoothing over 0 vectors: must be 1..=4 (the decider's capacity)"
        );
    }

    #[test]
    #[should_panic(expected = "hold must be at least 1")]
    fn new_panics_on_a_bad_config_which_try_new_returns() {
        let config = DecisionConfig::new().with_hold(0);
        assert!(Decider::<2, 2>::try_new(config).is_err());
        let _ = Decider::<2, 2>::new(config);
    }

    #[test]
    fn reset_forgets_everything_but_the_config() {
        let config = DecisionConfig::new().with_smoothing(Smoothing::Mean { window: 2 });
        let mut decider = Decider::<2, 2>::try_new(config).unwrap();
        assert_eq!(decider.update(&[HI, LO], 0), Some(event(Some(0), HI, 0)));
        decider.reset();
        assert_eq!(decider.current(), None);
        assert_eq!(decider.probabilities(), &[] as &[u16]);
        // The same vector is an event again, and the mean starts over.
        assert_eq!(decider.update(&[LO, HI], 1), Some(event(Some(1), HI, 1)));
        assert_eq!(*decider.config(), config);
    }

    #[test]
    fn q15_converts_thresholds() {
        assert_eq!(q15(0.5), 16384);
        assert_eq!(q15(1.5), PROB_ONE);
        assert_eq!(q15(-1.0), 0);
        assert_eq!(q15(f32::NAN), 0);
        assert_eq!(q15(0.6), 19661);
    }

    #[test]
    fn ties_go_to_the_first_class_with_no_lead() {
        assert_eq!(top_two(&[5, 9, 9, 1]), (1, 9, 9));
        assert_eq!(top_two(&[9]), (0, 9, 0));
        assert_eq!(top_two(&[1, 2, 3]), (2, 3, 2));
    }
}
