//! Sample sources: where the pipeline pulls its samples from.
//!
//! A source delivers **raw sensor counts**, one `[i16; C]` per sample (the registers of an
//! IMU, an ADC reading), not model inputs: the conversion to the model's input format is the
//! pipeline's [input scaling](super::scale), so that it can be integer-only and shared by the
//! host and the device. Sources here:
//!
//! * [`SliceSource`]: a recording in memory (flash on a device, a file's rows on the host);
//! * [`Select`]: some channels of another source, in any order (a 6-axis IMU feeding an
//!   accelerometer-only model);
//! * with the `mpu6050` / `icm42670` features, the IMU adapters of [`sensor`](crate::sensor).

use core::convert::Infallible;
use core::fmt;

/// A stream of samples of `C` raw `i16` channels.
///
/// `read` returns the next sample, `Ok(None)` once the stream has ended (a recording; a sensor
/// never ends), or the source's error (a bus error; no allocation: `Error` is a plain type).
/// Pacing is the caller's: call `read` from the sensor's data-ready interrupt or a timer at the
/// sample rate.
pub trait SampleSource<const C: usize> {
    /// What a failed read reports.
    type Error;

    /// The next sample; `Ok(None)` at the end of the stream.
    fn read(&mut self) -> Result<Option<[i16; C]>, Self::Error>;
}

impl<S: SampleSource<C> + ?Sized, const C: usize> SampleSource<C> for &mut S {
    type Error = S::Error;

    fn read(&mut self) -> Result<Option<[i16; C]>, S::Error> {
        (**self).read()
    }
}

/// A recording in memory, replayed sample by sample.
#[derive(Clone, Debug)]
pub struct SliceSource<'a, const C: usize> {
    samples: &'a [[i16; C]],
    next: usize,
}

impl<'a, const C: usize> SliceSource<'a, C> {
    /// Replays `samples` from the first.
    pub const fn new(samples: &'a [[i16; C]]) -> Self {
        SliceSource { samples, next: 0 }
    }

    /// Samples not read yet.
    pub fn remaining(&self) -> usize {
        self.samples.len().saturating_sub(self.next)
    }
}

impl<const C: usize> SampleSource<C> for SliceSource<'_, C> {
    type Error = Infallible;

    fn read(&mut self) -> Result<Option<[i16; C]>, Infallible> {
        let sample = self.samples.get(self.next).copied();
        if sample.is_some() {
            self.next += 1;
        }
        Ok(sample)
    }
}

/// `I` channels of a `C`-channel source: channel `k` of a sample is channel `channels[k]` of
/// the source's.
#[derive(Clone, Debug)]
pub struct Select<S, const C: usize, const I: usize> {
    source: S,
    channels: [usize; I],
}

/// A [`Select`] naming a channel the source does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChannelOutOfRange {
    /// The channel asked for.
    pub channel: usize,
    /// The source's channel count.
    pub channels: usize,
}

impl fmt::Display for ChannelOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "channel {} selected from a source of {} channels",
            self.channel, self.channels
        )
    }
}

impl<S: SampleSource<C>, const C: usize, const I: usize> Select<S, C, I> {
    /// Selects `channels` (0-based, each below `C`; repeats allowed) of `source`.
    pub fn new(source: S, channels: [usize; I]) -> Result<Self, ChannelOutOfRange> {
        if let Some(&channel) = channels.iter().find(|&&c| c >= C) {
            return Err(ChannelOutOfRange {
                channel,
                channels: C,
            });
        }
        Ok(Select { source, channels })
    }

    /// The wrapped source.
    pub fn into_inner(self) -> S {
        self.source
    }
}

impl<S: SampleSource<C>, const C: usize, const I: usize> SampleSource<I> for Select<S, C, I> {
    type Error = S::Error;

    fn read(&mut self) -> Result<Option<[i16; I]>, S::Error> {
        Ok(self.source.read()?.map(|sample| {
            let mut out = [0; I];
            for (out, &channel) in out.iter_mut().zip(&self.channels) {
                // `new` checked every channel: the fallback is never taken.
                *out = sample.get(channel).copied().unwrap_or_default();
            }
            out
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_source_replays_then_ends() {
        let recording = [[1, 2], [3, 4]];
        let mut source = SliceSource::new(&recording);
        assert_eq!(source.remaining(), 2);
        assert_eq!(source.read(), Ok(Some([1, 2])));
        assert_eq!(source.read(), Ok(Some([3, 4])));
        assert_eq!(source.read(), Ok(None));
        assert_eq!(source.read(), Ok(None));
        assert_eq!(source.remaining(), 0);
    }

    #[test]
    fn select_picks_and_reorders_channels() {
        let recording = [[10, 11, 12, 13, 14, 15]];
        let mut accel_z_x = Select::new(SliceSource::new(&recording), [2, 0, 2]).unwrap();
        assert_eq!(accel_z_x.read(), Ok(Some([12, 10, 12])));
        assert_eq!(accel_z_x.read(), Ok(None));
        let error = Select::<_, 6, 1>::new(SliceSource::new(&recording), [6]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "channel 6 selected from a source of 6 channels"
        );
    }

    #[test]
    fn a_mutable_reference_is_a_source() {
        fn first<S: SampleSource<1>>(mut source: S) -> Result<Option<[i16; 1]>, S::Error> {
            source.read()
        }
        let recording = [[7], [8]];
        let mut source = SliceSource::new(&recording);
        assert_eq!(first(&mut source), Ok(Some([7])));
        assert_eq!(source.remaining(), 1);
    }
}
