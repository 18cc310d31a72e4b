//! Data augmentation for sensor series: jitter, scaling, smooth time warps and window crops.
//!
//! [`Augment`] holds one strength per transform (0 turns it off). [`train`](super::train)
//! draws a fresh augmented copy of every training series at the start of every epoch (the
//! validation split, the loss that selects the saved epoch and the test data are never
//! augmented). All draws come from one seeded RNG, series by series in order, so a run is
//! deterministic for its seed.
//!
//! The transforms run in this order on a series of `T` steps and `C` channels (values already
//! normalised with the training split's statistics):
//!
//! 1. **crop** `s`: a window of `T − round(s·T)` consecutive steps (at least one) at a uniformly
//!    random start. A many-to-one label is kept; per-step labels are cut with the window.
//! 2. **warp** `s`: smooth random resampling in time. The playback speed is `exp(s·n(u))`,
//!    where `n` interpolates standard normal draws at [`WARP_KNOTS`] + 1 evenly spaced knots
//!    with half-cosine steps (smooth, always positive); the integrated speed, scaled to end at
//!    the last step, says which input time each output step reads (linear interpolation between
//!    samples; per-step labels from the nearest sample). The length and both ends stay.
//! 3. **scale** `s`: every channel of the series multiplied by its own gain `exp(s·N(0, 1))`
//!    (about the training mean, since the values are normalised): a sensor's gain or a
//!    person's amplitude varying from recording to recording.
//! 4. **jitter** `s`: Gaussian noise of standard deviation `s ×` the channel's standard
//!    deviation over the training split added to every value.
//!
//! Suggested strengths (what `--augment NAME` alone uses, [`Augment::DEFAULT_STRENGTHS`]):
//! jitter 0.03, scale 0.1, warp 0.2, crop 0.1.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand_distr::StandardNormal;

use super::{Sample, Target};

/// Knot intervals of the time warp's speed curve over a series.
pub const WARP_KNOTS: usize = 4;

/// Strengths of the four transforms; 0 turns a transform off (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Augment {
    /// Noise standard deviation relative to each channel's standard deviation.
    pub jitter: f32,
    /// Standard deviation of the log-gain per series and channel.
    pub scale: f32,
    /// Standard deviation of the log-speed of the time warp.
    pub warp: f32,
    /// Fraction of each series cut away by the crop, in `[0, 1)`.
    pub crop: f32,
}

/// An augmented copy of one series: values, steps and, for per-step targets, the labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Augmented {
    /// `steps × channels` values, row-major.
    pub xs: Vec<f32>,
    /// Number of steps.
    pub steps: usize,
    /// Per-step labels (`None` for a many-to-one target, which is kept as it is).
    pub labels: Option<Vec<usize>>,
}

impl Augmented {
    /// The training sample: these values with the original's target (cut or warped along for
    /// per-step labels).
    pub fn sample<'a>(&'a self, original: &Sample<'a>) -> Sample<'a> {
        Sample {
            xs: &self.xs,
            steps: self.steps,
            target: match &self.labels {
                Some(l) => Target::PerStep(l),
                None => original.target,
            },
        }
    }
}

impl Augment {
    /// Every transform off.
    pub const OFF: Augment = Augment {
        jitter: 0.0,
        scale: 0.0,
        warp: 0.0,
        crop: 0.0,
    };

    /// The strength each transform gets when named without a value.
    pub const DEFAULT_STRENGTHS: Augment = Augment {
        jitter: 0.03,
        scale: 0.1,
        warp: 0.2,
        crop: 0.1,
    };

    /// Whether every transform is off.
    pub fn is_off(&self) -> bool {
        *self == Augment::OFF
    }

    /// An augmented copy of `s` (`channels` values per step; `channel_std` from
    /// [`channel_std`]). Transforms whose strength is 0 are skipped and draw nothing.
    pub fn apply(
        &self,
        s: &Sample<'_>,
        channels: usize,
        channel_std: &[f32],
        rng: &mut impl Rng,
    ) -> Augmented {
        let mut xs = s.xs[..s.steps * channels].to_vec();
        let mut labels = match s.target {
            Target::PerStep(l) => Some(l[..s.steps].to_vec()),
            Target::Last(_) => None,
        };
        let mut steps = s.steps;
        if self.crop > 0.0 {
            let (start, len) = crop_window(steps, self.crop, rng);
            xs = xs[start * channels..(start + len) * channels].to_vec();
            if let Some(l) = &mut labels {
                *l = l[start..start + len].to_vec();
            }
            steps = len;
        }
        if self.warp > 0.0 {
            let pos = warp_positions(steps, self.warp, rng);
            xs = resample(&xs, channels, &pos);
            if let Some(l) = &mut labels {
                *l = pos.iter().map(|&p| l[p.round() as usize]).collect();
            }
        }
        if self.scale > 0.0 {
            scale(&mut xs, channels, self.scale, rng);
        }
        if self.jitter > 0.0 {
            jitter(&mut xs, channel_std, self.jitter, rng);
        }
        Augmented { xs, steps, labels }
    }
}

/// Standard deviation of each channel over all steps of all samples (population; 1 for a
/// channel with no spread, so that jitter stays relative to something).
pub fn channel_std(samples: &[Sample<'_>], channels: usize) -> Vec<f32> {
    let mut n = 0u64;
    let mut sum = vec![0.0f64; channels];
    let mut sq = vec![0.0f64; channels];
    for s in samples {
        for row in s.xs[..s.steps * channels].chunks_exact(channels) {
            n += 1;
            for (c, &v) in row.iter().enumerate() {
                sum[c] += f64::from(v);
                sq[c] += f64::from(v) * f64::from(v);
            }
        }
    }
    let n = n.max(1) as f64;
    sum.iter()
        .zip(&sq)
        .map(|(&s, &q)| {
            let var = (q / n - (s / n) * (s / n)).max(0.0);
            if var > 0.0 {
                var.sqrt() as f32
            } else {
                1.0
            }
        })
        .collect()
}

/// `(start, length)` of a crop that cuts `round(fraction · steps)` steps (keeping at least one)
/// at a uniformly random start.
pub fn crop_window(steps: usize, fraction: f32, rng: &mut impl Rng) -> (usize, usize) {
    let cut = (f64::from(fraction.clamp(0.0, 1.0)) * steps as f64).round() as usize;
    let len = steps.saturating_sub(cut).max(1).min(steps);
    let start = rng.gen_range(0..=steps - len);
    (start, len)
}

/// For each of `steps` output steps, the (fractional) input step it reads under a random time
/// warp of log-speed standard deviation `strength`: increasing, from 0 to `steps − 1`.
pub fn warp_positions(steps: usize, strength: f32, rng: &mut impl Rng) -> Vec<f64> {
    let knots: Vec<f64> = (0..=WARP_KNOTS)
        .map(|_| f64::from(strength) * rng.sample::<f64, _>(StandardNormal))
        .collect();
    if steps < 2 {
        return vec![0.0; steps];
    }
    let last = (steps - 1) as f64;
    let speed = |t: usize| {
        let u = t as f64 / last * WARP_KNOTS as f64;
        let k = (u.floor() as usize).min(WARP_KNOTS - 1);
        let w = 0.5 - 0.5 * (std::f64::consts::PI * (u - k as f64)).cos();
        ((1.0 - w) * knots[k] + w * knots[k + 1]).exp()
    };
    // Trapezoidal integral of the speed, step by step.
    let mut pos = Vec::with_capacity(steps);
    let mut acc = 0.0;
    let mut prev = speed(0);
    pos.push(0.0);
    for t in 1..steps {
        let v = speed(t);
        acc += 0.5 * (prev + v);
        prev = v;
        pos.push(acc);
    }
    let total = acc;
    for p in &mut pos {
        *p = (*p * last / total).clamp(0.0, last);
    }
    pos
}

/// The series `xs` (`channels` values per step) read at fractional steps `pos`, linearly
/// interpolated.
pub fn resample(xs: &[f32], channels: usize, pos: &[f64]) -> Vec<f32> {
    let steps = xs.len() / channels;
    let mut out = Vec::with_capacity(pos.len() * channels);
    for &p in pos {
        let i = (p.floor() as usize).min(steps.saturating_sub(2));
        let frac = (p - i as f64) as f32;
        let j = (i + 1).min(steps - 1);
        for c in 0..channels {
            let (a, b) = (xs[i * channels + c], xs[j * channels + c]);
            out.push(a * (1.0 - frac) + b * frac);
        }
    }
    out
}

/// Multiplies every channel of the series by its own gain `exp(strength · N(0, 1))`.
pub fn scale(xs: &mut [f32], channels: usize, strength: f32, rng: &mut impl Rng) {
    let gains: Vec<f32> = (0..channels)
        .map(|_| (f64::from(strength) * rng.sample::<f64, _>(StandardNormal)).exp() as f32)
        .collect();
    for row in xs.chunks_exact_mut(channels) {
        for (v, g) in row.iter_mut().zip(&gains) {
            *v *= g;
        }
    }
}

/// Adds `N(0, (strength · channel_std[c])²)` noise to every value of channel `c`.
pub fn jitter(xs: &mut [f32], channel_std: &[f32], strength: f32, rng: &mut impl Rng) {
    for row in xs.chunks_exact_mut(channel_std.len()) {
        for (v, s) in row.iter_mut().zip(channel_std) {
            let n: f32 = rng.sample(StandardNormal);
            *v += strength * s * n;
        }
    }
}

/// Error of [`Augment::from_str`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseAugmentError(String);

impl fmt::Display for ParseAugmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseAugmentError {}

impl FromStr for Augment {
    type Err = ParseAugmentError;

    /// A comma-separated list of `NAME` or `NAME=STRENGTH`, names `jitter`, `scale`, `warp`,
    /// `crop` (a name alone takes its [`Augment::DEFAULT_STRENGTHS`] entry); `none` for all
    /// off.
    fn from_str(s: &str) -> Result<Augment, ParseAugmentError> {
        let mut a = Augment::OFF;
        if s.trim() == "none" {
            return Ok(a);
        }
        for item in s.split(',').map(str::trim) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (item, None),
            };
            let (slot, default, max) = match name {
                "jitter" => (
                    &mut a.jitter,
                    Augment::DEFAULT_STRENGTHS.jitter,
                    f32::INFINITY,
                ),
                "scale" => (
                    &mut a.scale,
                    Augment::DEFAULT_STRENGTHS.scale,
                    f32::INFINITY,
                ),
                "warp" => (&mut a.warp, Augment::DEFAULT_STRENGTHS.warp, f32::INFINITY),
                "crop" => (&mut a.crop, Augment::DEFAULT_STRENGTHS.crop, 1.0),
                _ => {
                    return Err(ParseAugmentError(format!(
                        "unknown augmentation `{name}` (expected jitter, scale, warp, crop or none)"
                    )))
                }
            };
            let v = match value {
                None => default,
                Some(v) => v
                    .parse::<f32>()
                    .map_err(|_| ParseAugmentError(format!("{name}: `{v}` is not a number")))?,
            };
            if !(v.is_finite() && v >= 0.0 && v < max) {
                let range = if max.is_finite() { "[0, 1)" } else { "≥ 0" };
                return Err(ParseAugmentError(format!(
                    "{name}: strength must be a number {range}, got {v}"
                )));
            }
            *slot = v;
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rng;
    use super::*;

    fn series(steps: usize, channels: usize) -> Vec<f32> {
        (0..steps * channels)
            .map(|i| ((i as f32) * 0.37).sin() * (1.0 + (i % channels) as f32))
            .collect()
    }

    #[test]
    fn every_transform_is_the_identity_at_strength_zero() {
        let (steps, ch) = (37, 3);
        let xs = series(steps, ch);
        let mut r = rng(1, 0);
        assert_eq!(crop_window(steps, 0.0, &mut r), (0, steps));
        let pos = warp_positions(steps, 0.0, &mut r);
        assert_eq!(pos, (0..steps).map(|t| t as f64).collect::<Vec<_>>());
        assert_eq!(resample(&xs, ch, &pos), xs);
        let mut v = xs.clone();
        scale(&mut v, ch, 0.0, &mut r);
        assert_eq!(v, xs);
        jitter(&mut v, &[1.0, 2.0, 3.0], 0.0, &mut r);
        assert_eq!(v, xs);
        let s = Sample {
            xs: &xs,
            steps,
            target: Target::Last(1),
        };
        let a = Augment::OFF.apply(&s, ch, &[1.0; 3], &mut r);
        assert_eq!((a.xs.as_slice(), a.steps, a.labels), (&xs[..], steps, None));
    }

    #[test]
    fn shapes_and_labels_follow_the_transforms() {
        let (steps, ch) = (50, 2);
        let xs = series(steps, ch);
        let labels: Vec<usize> = (0..steps).map(|t| usize::from(t >= 25)).collect();
        let all = Augment {
            jitter: 0.1,
            scale: 0.2,
            warp: 0.3,
            crop: 0.2,
        };
        let mut r = rng(2, 0);
        for _ in 0..20 {
            let s = Sample {
                xs: &xs,
                steps,
                target: Target::PerStep(&labels),
            };
            let a = all.apply(&s, ch, &[1.0; 2], &mut r);
            assert_eq!(a.steps, 40, "crop 0.2 of 50 keeps 40");
            assert_eq!(a.xs.len(), 40 * ch);
            let l = a.labels.as_ref().expect("per-step labels kept");
            assert_eq!(l.len(), 40);
            // Labels stay a step function 0…0 1…1 (warping is monotone).
            assert!(l.windows(2).all(|w| w[0] <= w[1]), "{l:?}");
            assert!(matches!(a.sample(&s).target, Target::PerStep(t) if t.len() == 40));
            let m = Sample {
                target: Target::Last(3),
                ..s
            };
            let b = all.apply(&m, ch, &[1.0; 2], &mut r);
            assert_eq!(b.labels, None);
            assert!(matches!(b.sample(&m).target, Target::Last(3)));
        }
        // A crop never removes the last step of a one-step series.
        assert_eq!(crop_window(1, 0.9, &mut r), (0, 1));
        assert_eq!(crop_window(10, 0.95, &mut r).1, 1);
    }

    #[test]
    fn augmentation_is_deterministic_for_a_seed() {
        let xs = series(30, 2);
        let s = Sample {
            xs: &xs,
            steps: 30,
            target: Target::Last(0),
        };
        let all = Augment {
            jitter: 0.1,
            scale: 0.1,
            warp: 0.2,
            crop: 0.1,
        };
        let run = |seed| {
            let mut r = rng(seed, 5);
            (0..4)
                .map(|_| all.apply(&s, 2, &[1.0; 2], &mut r))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    /// Jitter is zero-mean Gaussian noise with the requested standard deviation, per channel.
    #[test]
    fn jitter_noise_has_the_requested_statistics() {
        let (steps, std) = (20_000, [0.5f32, 2.0]);
        let mut xs = vec![1.0f32; steps * 2];
        jitter(&mut xs, &std, 0.1, &mut rng(3, 0));
        for (c, s) in std.iter().enumerate() {
            let noise: Vec<f64> = xs
                .iter()
                .skip(c)
                .step_by(2)
                .map(|&v| f64::from(v) - 1.0)
                .collect();
            let n = noise.len() as f64;
            let mean = noise.iter().sum::<f64>() / n;
            let sd = (noise.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
            let want = 0.1 * f64::from(*s);
            // 5 standard errors: σ/√n for the mean, σ/√(2n) for the standard deviation.
            assert!(
                mean.abs() < 5.0 * want / n.sqrt(),
                "channel {c}: mean {mean}"
            );
            assert!(
                (sd - want).abs() < 5.0 * want / (2.0 * n).sqrt(),
                "channel {c}: sd {sd}"
            );
            // Gaussian, not uniform: ~4.55 % of draws beyond 2σ (uniform of this σ: 0 %).
            let tail = noise.iter().filter(|v| v.abs() > 2.0 * want).count() as f64 / n;
            assert!((tail - 0.0455).abs() < 0.006, "channel {c}: tail {tail}");
        }
    }

    /// The gain is one per series and channel, log-normal with the requested spread.
    #[test]
    fn scale_gains_are_per_channel_and_log_normal() {
        let mut r = rng(4, 0);
        let mut logs = Vec::new();
        for _ in 0..4000 {
            let mut xs = vec![1.0f32, 2.0, 1.0, 2.0];
            scale(&mut xs, 2, 0.2, &mut r);
            // Same gain at both steps of a channel.
            assert!((xs[2] - xs[0]).abs() < 1e-6 && (xs[3] - xs[1]).abs() < 1e-6);
            logs.push(f64::from(xs[0]).ln());
            logs.push(f64::from(xs[1] / 2.0).ln());
        }
        let n = logs.len() as f64;
        let mean = logs.iter().sum::<f64>() / n;
        let sd = (logs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 0.01, "mean log-gain {mean}");
        assert!((sd - 0.2).abs() < 0.01, "log-gain sd {sd}");
    }

    #[test]
    fn warps_are_monotone_keep_both_ends_and_move_the_middle() {
        let mut r = rng(6, 0);
        let mut moved = 0.0f64;
        for _ in 0..50 {
            let pos = warp_positions(100, 0.3, &mut r);
            assert_eq!(pos.len(), 100);
            assert_eq!(pos[0], 0.0);
            assert!((pos[99] - 99.0).abs() < 1e-9);
            assert!(pos.windows(2).all(|w| w[1] > w[0]), "strictly increasing");
            // Smooth: the speed (step size) changes by a few percent from one step to the next
            // (its log by at most π/2 · knots/steps · the knot difference); a speed drawn per
            // step would jump by about the strength, 30 %.
            let d: Vec<f64> = pos.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(
                d.windows(2).all(|w| (w[1] / w[0]).ln().abs() < 0.15),
                "{d:?}"
            );
            moved = moved.max((pos[50] - 50.0).abs());
        }
        assert!(
            moved > 2.0,
            "a warp of strength 0.3 moves the middle: {moved}"
        );
        // Resampling a linear ramp at fractional positions gives those positions.
        let ramp: Vec<f32> = (0..100).map(|t| t as f32).collect();
        let pos = warp_positions(100, 0.3, &mut r);
        for (v, p) in resample(&ramp, 1, &pos).iter().zip(&pos) {
            assert!((f64::from(*v) - p).abs() < 1e-4);
        }
    }

    /// `train` feeds augmented copies to the mini-batches (a crop of half of every series
    /// halves the steps trained), draws them from the seed, and selects the saved epoch on the
    /// original training series.
    #[test]
    fn training_augments_the_training_batches_only() {
        use super::super::{evaluate, train, TrainConfig};
        use crate::model_file::CellKind;
        let xs: Vec<Vec<f32>> = (0..6)
            .map(|i| (0..20).map(|t| ((i * 20 + t) as f32 * 0.3).sin()).collect())
            .collect();
        let set: Vec<Sample<'_>> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| Sample {
                xs: x,
                steps: 10,
                target: Target::Last(i % 2),
            })
            .collect();
        let run = |augment: Augment, seed: u64| {
            let cfg = TrainConfig {
                hidden: 3,
                epochs: 4,
                batch: 3,
                seed,
                augment,
                collapse: None,
                extend_until_fit: false,
                ..TrainConfig::new(CellKind::Lstm)
            };
            train(&cfg, 2, 2, &set, &[], &mut |_| {}).unwrap()
        };
        let plain = run(Augment::OFF, 1);
        assert_eq!(plain.trained_steps, 4 * 6 * 10);
        let crop = Augment {
            crop: 0.5,
            jitter: 0.1,
            ..Augment::OFF
        };
        let aug = run(crop, 1);
        assert_eq!(
            aug.trained_steps,
            4 * 6 * 5,
            "every batch sees cropped series"
        );
        assert_ne!(aug.net, plain.net);
        assert_eq!(run(crop, 1).net, aug.net, "same seed, same augmentations");
        assert_ne!(run(crop, 2).net, aug.net);
        let fit = aug.history[aug.best_epoch - 1].fit_loss.unwrap();
        assert_eq!(
            fit,
            evaluate(&aug.net, &set).loss(),
            "selected on the originals"
        );
    }

    #[test]
    fn channel_std_is_per_channel() {
        let xs = [1.0f32, 5.0, 3.0, 5.0];
        let s = Sample {
            xs: &xs,
            steps: 2,
            target: Target::Last(0),
        };
        assert_eq!(channel_std(&[s], 2), vec![1.0, 1.0]);
        let ys = [0.0f32, 0.0, 4.0, 2.0];
        let t = Sample { xs: &ys, ..s };
        let sd = channel_std(&[s, t], 2);
        // Channel 0: 1, 3, 0, 4 → sd √2.5; channel 1: 5, 5, 0, 2 → sd √4.5.
        assert!((sd[0] - 2.5f32.sqrt()).abs() < 1e-6 && (sd[1] - 4.5f32.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn parses_names_strengths_and_rejects_bad_ones() {
        assert_eq!("none".parse::<Augment>(), Ok(Augment::OFF));
        let a: Augment = "jitter,warp=0.5, crop = 0.25".parse().unwrap();
        assert_eq!(
            a,
            Augment {
                jitter: 0.03,
                scale: 0.0,
                warp: 0.5,
                crop: 0.25
            }
        );
        for (bad, needle) in [
            ("shift", "unknown augmentation `shift`"),
            ("jitter=x", "jitter: `x` is not a number"),
            ("crop=1", "crop: strength must be a number [0, 1)"),
            ("scale=-1", "scale: strength must be a number ≥ 0"),
            ("warp=nan", "warp: strength"),
        ] {
            let e = bad.parse::<Augment>().unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
