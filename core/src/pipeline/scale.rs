//! Integer input scaling: from a sensor's raw counts to the model's input, per channel.
//!
//! # What is computed
//!
//! A channel is described by a [`ChannelMap`]: `units_per_count` and `offset` turn a raw count
//! into the units the model was trained on, and `mean`/`std` are the model's input
//! normalisation (leave them at 0 and 1 when the model has it folded into its first layer, as
//! `tinyrnn quantize` does). The model input is
//!
//! ```text
//! x = ((count · units_per_count + offset) − mean) / std  =  a · count + b
//! ```
//!
//! * **Fixed point** ([`FixedScale`]): the input is `q = x · 2^input_frac` as an `i16`. An M0
//!   computes it with integers only:
//!
//!   ```text
//!   q = sat_i16((count · mul + add) >> shift)        (i64 intermediate, arithmetic shift)
//!   mul  = round(a · 2^(input_frac + shift))          (i32)
//!   add  = round(b · 2^(input_frac + shift)) + 2^(shift − 1)
//!   ```
//!
//!   The `2^(shift − 1)` folded into `add` makes the floor of `>>` a **round half up** of the
//!   exact value. `shift` is the largest that keeps `mul` in an `i32` (and `add` far from the
//!   `i64` limits), so `mul` carries 31 significant bits. **Error**: `|q − clamp(x · 2^f)| ≤ ½ +
//!   (|count| + 1) / 2^(shift + 1)` LSB ([`FixedScale::error_bound_lsb`] gives it for the worst
//!   count). With `mul` at 31 bits the second term is at most about `|a| · 2^f · 2⁻¹⁶` LSB,
//!   below 1e-4 LSB whenever one count is worth at most 6 LSB of the input: `q` is the
//!   correctly rounded value except within that distance of a rounding boundary, and saturates
//!   exactly where `x · 2^f` leaves the `i16` range. Held against `f64` by the tests of this
//!   file (every count of a typical channel, and a property test over random channels).
//! * **`f32`** ([`FloatScale`]): `x = count as f32 · a + b`, with `a`, `b` rounded to `f32`.
//!   **Error**: `|x − x_exact| ≤ 2⁻²² · (|a · count| + |b|)` (four roundings of 2⁻²⁴), held by a
//!   property test.
//!
//! The constructors are `const fn` in `f64`: evaluate them in a `const` (or on the host, as the
//! export does), so that the firmware holds only the integer (or `f32`) parameters and an M0
//! links no floating-point routine.
//!
//! ```
//! use tinyrnn::pipeline::scale::{ChannelMap, FixedScale};
//!
//! // ±4 g over the i16 range, trained in m/s², normalised with mean 0.3 and std 2.5 m/s²; the
//! // model's input has 12 fractional bits.
//! const ACCEL_X: FixedScale = match FixedScale::new(
//!     ChannelMap::full_scale(4.0).with_units(9.80665).normalized(0.3, 2.5),
//!     12,
//! ) {
//!     Ok(scale) => scale,
//!     Err(_) => panic!("bad input scaling"),
//! };
//! // 1 g (8192 counts) is 9.80665 m/s², (9.80665 - 0.3) / 2.5 = 3.80266 → 15575.7 · 2^-12.
//! assert_eq!(ACCEL_X.apply(8192), 15576);
//! assert_eq!(ACCEL_X.apply(i16::MAX), i16::MAX); // saturates
//! ```

use core::fmt;

/// The fractional bits an `i16` input may have (the kernels' `x_frac` range).
pub const MAX_INPUT_FRAC: u8 = 15;

/// How one input channel's raw counts become the model's input (see the [module](self) doc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelMap {
    /// Training units per raw count (e.g. `4.0 / 32768.0` g for a ±4 g accelerometer).
    pub units_per_count: f64,
    /// Added after the multiplication, in training units (e.g. a sensor's zero offset, negated).
    pub offset: f64,
    /// The model's input normalisation mean, in training units (0 when folded into the model).
    pub mean: f64,
    /// The model's input normalisation standard deviation (1 when folded into the model).
    pub std: f64,
}

impl ChannelMap {
    /// Raw counts are the training units: `x = count`.
    pub const fn counts() -> Self {
        Self::per_count(1.0)
    }

    /// `units_per_count` training units per count, no offset, no normalisation.
    pub const fn per_count(units_per_count: f64) -> Self {
        ChannelMap {
            units_per_count,
            offset: 0.0,
            mean: 0.0,
            std: 1.0,
        }
    }

    /// A sensor whose full `i16` range spans `±range` units (`range / 32768` per count), as
    /// accelerometers state their ranges (±2/4/8/16 g).
    pub const fn full_scale(range: f64) -> Self {
        Self::per_count(range / 32768.0)
    }

    /// The same physical quantity in other units: multiplies `units_per_count` and `offset` by
    /// `factor` (e.g. 9.80665 from g to m/s², π/180 from °/s to rad/s).
    pub const fn with_units(self, factor: f64) -> Self {
        ChannelMap {
            units_per_count: self.units_per_count * factor,
            offset: self.offset * factor,
            ..self
        }
    }

    /// Adds `offset` training units after the multiplication.
    pub const fn with_offset(self, offset: f64) -> Self {
        ChannelMap {
            offset: self.offset + offset,
            ..self
        }
    }

    /// The model's input normalisation `(value − mean) / std`.
    pub const fn normalized(self, mean: f64, std: f64) -> Self {
        ChannelMap { mean, std, ..self }
    }

    /// `(a, b)` of `x = a · count + b`.
    pub const fn affine(&self) -> (f64, f64) {
        (
            self.units_per_count / self.std,
            (self.offset - self.mean) / self.std,
        )
    }

    /// The exact model input for `count`, in `f64` (the reference the integer path is held to).
    pub const fn value(&self, count: i16) -> f64 {
        ((count as f64 * self.units_per_count + self.offset) - self.mean) / self.std
    }

    /// The first field that is not a finite number, or a `std` that is not positive.
    const fn check(&self) -> Result<(), ScaleProblem> {
        let fields = [
            ("units_per_count", self.units_per_count),
            ("offset", self.offset),
            ("mean", self.mean),
            ("std", self.std),
        ];
        let mut i = 0;
        while i < fields.len() {
            let (field, value) = fields[i];
            if !value.is_finite() {
                return Err(ScaleProblem::NotFinite { field, value });
            }
            i += 1;
        }
        if self.std <= 0.0 {
            return Err(ScaleProblem::Std { value: self.std });
        }
        Ok(())
    }
}

/// Why a channel's scaling cannot be built.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ScaleProblem {
    /// A parameter (or the combined `a`, `b`) is NaN or infinite.
    NotFinite {
        /// The parameter's name (`units_per_count`, `offset`, `mean`, `std`, `a`, `b`).
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// `std` is zero or negative.
    Std {
        /// Its value.
        value: f64,
    },
    /// `input_frac` is above [`MAX_INPUT_FRAC`].
    InputFrac {
        /// The value asked for.
        value: u8,
    },
    /// One count is worth more than `2^31` LSB of the input: nothing but a zero count could
    /// avoid saturating.
    TooSteep {
        /// `|a| · 2^input_frac`, in LSB per count.
        lsb_per_count: f64,
    },
}

impl fmt::Display for ScaleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ScaleProblem::NotFinite { field, value } => {
                write!(f, "{field} must be a finite number (got {value})")
            }
            ScaleProblem::Std { value } => write!(f, "std must be positive (got {value})"),
            ScaleProblem::InputFrac { value } => write!(
                f,
                "input_frac must be at most {MAX_INPUT_FRAC} fractional bits (got {value})"
            ),
            ScaleProblem::TooSteep { lsb_per_count } => write!(
                f,
                "one raw count is {lsb_per_count:e} LSB of the model input, above 2^31"
            ),
        }
    }
}

/// A [`ScaleProblem`] of one channel.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ScaleError {
    /// The input channel (0-based).
    pub channel: usize,
    /// What is wrong with it.
    pub problem: ScaleProblem,
}

impl fmt::Display for ScaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "input channel {}: {}", self.channel, self.problem)
    }
}

/// One channel's conversion from a raw count to a fixed-point input: `sat_i16((count · mul +
/// add) >> shift)` (see the [module](self) doc for the rounding and the error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FixedScale {
    /// `round(a · 2^(input_frac + shift))`.
    pub mul: i32,
    /// `round(b · 2^(input_frac + shift)) + 2^(shift − 1)` (the half makes `>>` round).
    pub add: i64,
    /// Right shift of the `i64` sum, at most 62.
    pub shift: u8,
}

/// `|mul|` may not exceed this.
const MUL_LIMIT: f64 = i32::MAX as f64;
/// `|round(b · 2^s)| + 2^s` may not exceed this: with `|count · mul| ≤ 2^46` the `i64` sum
/// cannot overflow.
const ADD_LIMIT: f64 = (1u64 << 61) as f64;
/// The largest shift tried.
const MAX_SHIFT: u8 = 62;

impl FixedScale {
    /// `count` itself, saturated: `x = count` at `input_frac` 0.
    pub const IDENTITY: FixedScale = FixedScale {
        mul: 1,
        add: 0,
        shift: 0,
    };

    /// The integer parameters for `map` into an input with `input_frac` fractional bits.
    pub const fn new(map: ChannelMap, input_frac: u8) -> Result<FixedScale, ScaleProblem> {
        if input_frac > MAX_INPUT_FRAC {
            return Err(ScaleProblem::InputFrac { value: input_frac });
        }
        if let Err(problem) = map.check() {
            return Err(problem);
        }
        let (a, b) = map.affine();
        let unit = (1u32 << input_frac) as f64;
        let (lsb_a, mut lsb_b) = (a * unit, b * unit);
        if !lsb_a.is_finite() {
            return Err(ScaleProblem::NotFinite {
                field: "a",
                value: lsb_a,
            });
        }
        if !lsb_b.is_finite() {
            return Err(ScaleProblem::NotFinite {
                field: "b",
                value: lsb_b,
            });
        }
        let steep = abs(lsb_a);
        if steep > MUL_LIMIT {
            return Err(ScaleProblem::TooSteep {
                lsb_per_count: steep,
            });
        }
        // Beyond this offset every count saturates to the same end, exactly as the exact value
        // does: |a · count| ≤ |a| · 2^15 cannot bring the sum back into the i16 range.
        let far = 65536.0 + steep * 32768.0;
        if lsb_b > far {
            lsb_b = far;
        } else if lsb_b < -far {
            lsb_b = -far;
        }
        let mut shift = 0;
        let mut power = 1.0;
        while shift < MAX_SHIFT {
            let next = power * 2.0;
            if steep * next > MUL_LIMIT || (abs(lsb_b) + 1.0) * next > ADD_LIMIT {
                break;
            }
            power = next;
            shift += 1;
        }
        let half = if shift > 0 { 1i64 << (shift - 1) } else { 0 };
        Ok(FixedScale {
            mul: round_half_up(lsb_a * power) as i32,
            add: round_half_up(lsb_b * power) + half,
            shift,
        })
    }

    /// The model input for `count`. Integer-only; never panics, never overflows (the
    /// constructor bounds `add`; a hand-made `shift` above 63 acts as 63).
    #[inline]
    pub const fn apply(&self, count: i16) -> i16 {
        let sum = (count as i64 * self.mul as i64).saturating_add(self.add);
        let shift = if self.shift > 63 { 63 } else { self.shift };
        let q = sum >> shift;
        if q > i16::MAX as i64 {
            i16::MAX
        } else if q < i16::MIN as i64 {
            i16::MIN
        } else {
            q as i16
        }
    }

    /// The largest `|apply(count) − clamp(value(count) · 2^input_frac)|` in LSB over every
    /// `count`: `½ + (2^15 + 1) / 2^(shift + 1)`.
    pub const fn error_bound_lsb(&self) -> f64 {
        let mut power = 1.0;
        let mut s = 0;
        while s <= self.shift && s <= 63 {
            power *= 2.0;
            s += 1;
        }
        0.5 + 32769.0 / power
    }
}

/// One channel's conversion from a raw count to an `f32` input: `count · mul + add`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FloatScale {
    /// `a`, rounded to `f32`.
    pub mul: f32,
    /// `b`, rounded to `f32`.
    pub add: f32,
}

impl FloatScale {
    /// The `f32` parameters for `map`.
    pub const fn new(map: ChannelMap) -> Result<FloatScale, ScaleProblem> {
        if let Err(problem) = map.check() {
            return Err(problem);
        }
        let (a, b) = map.affine();
        let (mul, add) = (a as f32, b as f32);
        if !mul.is_finite() {
            return Err(ScaleProblem::NotFinite {
                field: "a",
                value: a,
            });
        }
        if !add.is_finite() {
            return Err(ScaleProblem::NotFinite {
                field: "b",
                value: b,
            });
        }
        Ok(FloatScale { mul, add })
    }

    /// The model input for `count`.
    #[inline]
    pub fn apply(&self, count: i16) -> f32 {
        count as f32 * self.mul + self.add
    }
}

/// A channel conversion into input values of type `A` (`i16` for fixed point, `f32`).
pub trait ScaleChannel<A> {
    /// The model input for one raw count.
    fn scale(&self, count: i16) -> A;
}

impl ScaleChannel<i16> for FixedScale {
    #[inline]
    fn scale(&self, count: i16) -> i16 {
        self.apply(count)
    }
}

impl ScaleChannel<f32> for FloatScale {
    #[inline]
    fn scale(&self, count: i16) -> f32 {
        self.apply(count)
    }
}

/// The conversions of all `I` input channels (can be a `static` or `const`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InputScaling<S, const I: usize> {
    channels: [S; I],
}

impl<S, const I: usize> InputScaling<S, I> {
    /// From per-channel conversions.
    pub const fn from_channels(channels: [S; I]) -> Self {
        InputScaling { channels }
    }

    /// The per-channel conversions.
    pub const fn channels(&self) -> &[S; I] {
        &self.channels
    }

    /// The model input for one sample of raw counts.
    #[inline]
    pub fn apply<A: Copy + Default>(&self, raw: &[i16; I]) -> [A; I]
    where
        S: ScaleChannel<A>,
    {
        let mut x = [A::default(); I];
        for ((x, channel), &count) in x.iter_mut().zip(&self.channels).zip(raw) {
            *x = channel.scale(count);
        }
        x
    }
}

impl<const I: usize> InputScaling<FixedScale, I> {
    /// Fixed-point conversions of every channel into an input with `input_frac` fractional
    /// bits; the first channel that cannot be built is the error.
    pub const fn fixed(maps: [ChannelMap; I], input_frac: u8) -> Result<Self, ScaleError> {
        let mut channels = [FixedScale::IDENTITY; I];
        let mut channel = 0;
        while channel < I {
            match FixedScale::new(maps[channel], input_frac) {
                Ok(scale) => channels[channel] = scale,
                Err(problem) => return Err(ScaleError { channel, problem }),
            }
            channel += 1;
        }
        Ok(InputScaling { channels })
    }
}

impl<const I: usize> InputScaling<FloatScale, I> {
    /// `f32` conversions of every channel; the first channel that cannot be built is the error.
    pub const fn float(maps: [ChannelMap; I]) -> Result<Self, ScaleError> {
        let mut channels = [FloatScale { mul: 1.0, add: 0.0 }; I];
        let mut channel = 0;
        while channel < I {
            match FloatScale::new(maps[channel]) {
                Ok(scale) => channels[channel] = scale,
                Err(problem) => return Err(ScaleError { channel, problem }),
            }
            channel += 1;
        }
        Ok(InputScaling { channels })
    }
}

/// `|v|` (`f64::abs` is not `const` on the crate's minimum Rust).
const fn abs(v: f64) -> f64 {
    if v < 0.0 {
        -v
    } else {
        v
    }
}

/// `v` rounded half up to an integer, for `|v| < 2^62` (the callers' bounds). Exact: the
/// truncation and the fraction are computed without rounding.
const fn round_half_up(v: f64) -> i64 {
    let truncated = v as i64;
    let fraction = v - truncated as f64;
    if fraction >= 0.5 {
        truncated + 1
    } else if fraction < -0.5 {
        truncated - 1
    } else {
        truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `clamp(value · 2^frac)` to the i16 range, in f64.
    fn exact_lsb(map: &ChannelMap, frac: u8, count: i16) -> f64 {
        (map.value(count) * (1u32 << frac) as f64).clamp(i16::MIN as f64, i16::MAX as f64)
    }

    #[test]
    fn rounding_helper_rounds_half_up() {
        for (v, r) in [
            (2.5, 3),
            (-2.5, -2),
            (-2.5000001, -3),
            (2.4999999, 2),
            (0.0, 0),
            (-0.5, 0),
            (0.5, 1),
            (4.0e15 + 0.5, 4_000_000_000_000_001),
        ] {
            assert_eq!(round_half_up(v), r, "{v}");
        }
    }

    #[test]
    fn identity_counts_at_frac_zero_are_the_counts() {
        let scale = FixedScale::new(ChannelMap::counts(), 0).unwrap();
        for count in [i16::MIN, -1, 0, 1, 12345, i16::MAX] {
            assert_eq!(scale.apply(count), count);
        }
    }

    #[test]
    fn a_typical_accelerometer_channel_is_correctly_rounded_for_every_count() {
        // ±4 g over i16, normalised by mean 0.1 g and std 0.35 g, 12 fractional bits. Every
        // one of the 65536 counts against f64.
        let map = ChannelMap::full_scale(4.0).normalized(0.1, 0.35);
        let scale = FixedScale::new(map, 12).unwrap();
        let bound = scale.error_bound_lsb();
        assert!(bound < 0.5 + 1e-4, "bound {bound}");
        let mut worst: f64 = 0.0;
        for count in i16::MIN..=i16::MAX {
            let exact = exact_lsb(&map, 12, count);
            let got = scale.apply(count) as f64;
            worst = worst.max((got - exact).abs());
            assert!(
                (got - exact).abs() <= bound,
                "count {count}: {got} vs {exact}"
            );
        }
        assert!(worst <= 0.5 + 1e-4);
        eprintln!("±4 g channel at Q12: worst {worst:.7} LSB over every count (bound {bound:.7})");
    }

    #[test]
    fn saturates_both_ways_and_far_offsets_saturate_every_count() {
        let map = ChannelMap::per_count(0.01).with_offset(-1.0e30);
        let scale = FixedScale::new(map, 8).unwrap();
        for count in [i16::MIN, 0, i16::MAX] {
            assert_eq!(scale.apply(count), i16::MIN);
        }
        let map = ChannelMap::per_count(0.01).with_offset(1.0e30);
        let scale = FixedScale::new(map, 8).unwrap();
        assert_eq!(scale.apply(i16::MIN), i16::MAX);
        let steep = FixedScale::new(ChannelMap::per_count(1000.0), 15).unwrap();
        assert_eq!(
            (steep.apply(-1), steep.apply(0), steep.apply(1)),
            (i16::MIN, 0, i16::MAX)
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = |map: ChannelMap, frac| FixedScale::new(map, frac).unwrap_err();
        assert_eq!(
            err(ChannelMap::counts().normalized(0.0, 0.0), 4),
            ScaleProblem::Std { value: 0.0 }
        );
        assert!(matches!(
            err(ChannelMap::counts().normalized(f64::NAN, 1.0), 4),
            ScaleProblem::NotFinite { field: "mean", .. }
        ));
        assert!(matches!(
            err(ChannelMap::per_count(f64::INFINITY), 4),
            ScaleProblem::NotFinite {
                field: "units_per_count",
                ..
            }
        ));
        assert_eq!(
            err(ChannelMap::counts(), 16),
            ScaleProblem::InputFrac { value: 16 }
        );
        assert!(matches!(
            err(ChannelMap::per_count(1.0e6), 15),
            ScaleProblem::TooSteep { .. }
        ));
        // An overflow of a / b in f64 is named too.
        assert!(matches!(
            err(ChannelMap::per_count(1.0e300).normalized(0.0, 1.0e-300), 4),
            ScaleProblem::NotFinite {
                field: "units_per_count" | "a",
                ..
            }
        ));
        let maps = [
            ChannelMap::counts(),
            ChannelMap::counts().normalized(0.0, -2.0),
        ];
        let error = InputScaling::fixed(maps, 3).unwrap_err();
        assert_eq!(error.channel, 1);
        assert_eq!(
            error.to_string(),
            "input channel 1: std must be positive (got -2)"
        );
        assert!(InputScaling::float(maps).is_err());
    }

    #[test]
    fn the_shift_uses_the_full_width_of_mul() {
        let scale = FixedScale::new(ChannelMap::full_scale(2.0).normalized(0.0, 0.5), 13).unwrap();
        assert!(scale.mul.unsigned_abs() >= 1 << 30, "{scale:?}");
        let doubled =
            FixedScale::new(ChannelMap::full_scale(4.0).normalized(0.0, 0.5), 13).unwrap();
        assert_eq!(doubled.shift + 1, scale.shift);
    }

    #[test]
    fn input_scaling_applies_each_channel_in_order() {
        let maps = [
            ChannelMap::counts(),
            ChannelMap::per_count(0.5),
            ChannelMap::counts().with_offset(10.0),
        ];
        let fixed = InputScaling::fixed(maps, 1).unwrap();
        assert_eq!(fixed.apply(&[3, 3, 3]), [6i16, 3, 26]);
        let float = InputScaling::float(maps).unwrap();
        assert_eq!(float.apply(&[3, 3, 3]), [3.0f32, 1.5, 13.0]);
    }

    fn channel_map() -> impl Strategy<Value = ChannelMap> {
        (
            1.0e-6f64..10.0,
            prop::bool::ANY,
            -50.0f64..50.0,
            -50.0f64..50.0,
            1.0e-3f64..100.0,
        )
            .prop_map(|(units, negative, offset, mean, std)| ChannelMap {
                units_per_count: if negative { -units } else { units },
                offset,
                mean,
                std,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The fixed-point conversion against f64, within the stated bound, for random maps,
        /// formats and counts (the extremes included through `any::<i16>()`'s edge bias).
        #[test]
        fn fixed_scale_within_its_bound(map in channel_map(), frac in 0u8..=15, count in any::<i16>()) {
            match FixedScale::new(map, frac) {
                Ok(scale) => {
                    let exact = exact_lsb(&map, frac, count);
                    let got = scale.apply(count) as f64;
                    // The bound at this count, ½ + (|count| + 1) / 2^(shift + 1), and the
                    // documented worst case over every count above it.
                    let at_count = 0.5
                        + (count.unsigned_abs() as f64 + 1.0) / 2f64.powi(scale.shift as i32 + 1);
                    prop_assert!(at_count <= scale.error_bound_lsb());
                    prop_assert!((got - exact).abs() <= at_count,
                        "{scale:?} count {count}: {got} vs {exact}");
                }
                Err(ScaleProblem::TooSteep { lsb_per_count }) => {
                    prop_assert!(lsb_per_count > MUL_LIMIT);
                }
                Err(other) => prop_assert!(false, "{other}"),
            }
        }

        /// The f32 conversion against f64 within `2^-22 · (|a · count| + |b|)`.
        #[test]
        fn float_scale_within_its_bound(map in channel_map(), count in any::<i16>()) {
            let scale = FloatScale::new(map).unwrap();
            let (a, b) = map.affine();
            let exact = map.value(count);
            let got = scale.apply(count) as f64;
            let bound = (2.0f64).powi(-22) * ((a * count as f64).abs() + b.abs()) + 1e-40;
            prop_assert!((got - exact).abs() <= bound, "{got} vs {exact} (bound {bound})");
        }
    }
}
