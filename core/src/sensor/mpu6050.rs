//! InvenSense MPU-6050 over I2C, on the `mpu6050-dmp` driver (embedded-hal 1.0).
//!
//! Set-up ([`Mpu6050Source::new`]): check `WHO_AM_I`, device reset, wake-up, gyro PLL clock,
//! then sample rate, low-pass filter and both full-scale ranges. Each [`read`] is one 14-byte
//! burst from `ACCEL_XOUT_H` (accelerometer, temperature, gyroscope, big-endian), which the
//! part guarantees to come from one sampling instant; the temperature is dropped.
//!
//! The register values are the MPU-6000/MPU-6050 Register Map and Descriptions
//! (RM-MPU-6000A-00, revision 4.2); the tests in this file check every transaction against it.
//!
//! [`read`]: crate::pipeline::source::SampleSource::read

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;
use mpu6050_dmp::accel::AccelFullScale;
use mpu6050_dmp::address::Address;
use mpu6050_dmp::clock_source::ClockSource;
use mpu6050_dmp::config::DigitalLowPassFilter;
use mpu6050_dmp::error::Error as DriverError;
use mpu6050_dmp::gyro::GyroFullScale;
use mpu6050_dmp::sensor::Mpu6050;

use super::{read_u8_register, SensorError};
use crate::pipeline::scale::ChannelMap;
use crate::pipeline::source::SampleSource;

/// The I2C address with the AD0 pin low.
pub const ADDRESS_AD0_LOW: u8 = 0x68;
/// The I2C address with the AD0 pin high.
pub const ADDRESS_AD0_HIGH: u8 = 0x69;
/// `WHO_AM_I` (register 0x75) of a genuine part (RM section 4.32).
pub const WHO_AM_I: u8 = 0x68;
const WHO_AM_I_REGISTER: u8 = 0x75;

/// Accelerometer full-scale range (`AFS_SEL`, RM section 4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AccelRange {
    /// ±2 g, 16384 counts per g.
    G2,
    /// ±4 g, 8192 counts per g.
    G4,
    /// ±8 g, 4096 counts per g.
    G8,
    /// ±16 g, 2048 counts per g.
    G16,
}

impl AccelRange {
    /// Counts per g (RM section 4.17, the `AFS_SEL` sensitivity table).
    pub const fn counts_per_g(self) -> f64 {
        match self {
            AccelRange::G2 => 16384.0,
            AccelRange::G4 => 8192.0,
            AccelRange::G8 => 4096.0,
            AccelRange::G16 => 2048.0,
        }
    }

    const fn driver(self) -> AccelFullScale {
        match self {
            AccelRange::G2 => AccelFullScale::G2,
            AccelRange::G4 => AccelFullScale::G4,
            AccelRange::G8 => AccelFullScale::G8,
            AccelRange::G16 => AccelFullScale::G16,
        }
    }
}

/// Gyroscope full-scale range (`FS_SEL`, RM section 4.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GyroRange {
    /// ±250 °/s, 131 counts per °/s.
    Dps250,
    /// ±500 °/s, 65.5 counts per °/s.
    Dps500,
    /// ±1000 °/s, 32.8 counts per °/s.
    Dps1000,
    /// ±2000 °/s, 16.4 counts per °/s.
    Dps2000,
}

impl GyroRange {
    /// Counts per °/s (RM section 4.19, the `FS_SEL` sensitivity table).
    pub const fn counts_per_dps(self) -> f64 {
        match self {
            GyroRange::Dps250 => 131.0,
            GyroRange::Dps500 => 65.5,
            GyroRange::Dps1000 => 32.8,
            GyroRange::Dps2000 => 16.4,
        }
    }

    const fn driver(self) -> GyroFullScale {
        match self {
            GyroRange::Dps250 => GyroFullScale::Deg250,
            GyroRange::Dps500 => GyroFullScale::Deg500,
            GyroRange::Dps1000 => GyroFullScale::Deg1000,
            GyroRange::Dps2000 => GyroFullScale::Deg2000,
        }
    }
}

/// The digital low-pass filter (`DLPF_CFG`, RM section 4.3), by accelerometer bandwidth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LowPass {
    /// 260 Hz (filter off); the gyroscope output rate is then 8 kHz.
    Hz260,
    /// 184 Hz.
    Hz184,
    /// 94 Hz.
    Hz94,
    /// 44 Hz.
    Hz44,
    /// 21 Hz.
    Hz21,
    /// 10 Hz.
    Hz10,
    /// 5 Hz.
    Hz5,
}

impl LowPass {
    const fn driver(self) -> DigitalLowPassFilter {
        match self {
            LowPass::Hz260 => DigitalLowPassFilter::Filter0,
            LowPass::Hz184 => DigitalLowPassFilter::Filter1,
            LowPass::Hz94 => DigitalLowPassFilter::Filter2,
            LowPass::Hz44 => DigitalLowPassFilter::Filter3,
            LowPass::Hz21 => DigitalLowPassFilter::Filter4,
            LowPass::Hz10 => DigitalLowPassFilter::Filter5,
            LowPass::Hz5 => DigitalLowPassFilter::Filter6,
        }
    }
}

/// Range and rate of an MPU-6050.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Mpu6050Config {
    /// Accelerometer range.
    pub accel: AccelRange,
    /// Gyroscope range.
    pub gyro: GyroRange,
    /// Low-pass filter; also sets the gyroscope output rate the divider divides.
    pub low_pass: LowPass,
    /// `SMPLRT_DIV`: sample rate = gyroscope output rate / (1 + divider) (RM section 4.2).
    pub sample_rate_divider: u8,
    /// The `WHO_AM_I` value required (`None`: accept any, for compatible parts that answer
    /// another value).
    pub who_am_i: Option<u8>,
}

impl Mpu6050Config {
    /// ±4 g, ±500 °/s, 44 Hz low-pass, 100 samples per second.
    pub const fn new() -> Self {
        Mpu6050Config {
            accel: AccelRange::G4,
            gyro: GyroRange::Dps500,
            low_pass: LowPass::Hz44,
            sample_rate_divider: 9,
            who_am_i: Some(WHO_AM_I),
        }
    }

    /// With the accelerometer range `accel`.
    pub const fn with_accel(self, accel: AccelRange) -> Self {
        Mpu6050Config { accel, ..self }
    }

    /// With the gyroscope range `gyro`.
    pub const fn with_gyro(self, gyro: GyroRange) -> Self {
        Mpu6050Config { gyro, ..self }
    }

    /// With the low-pass filter `low_pass` and the sample rate divider `divider`.
    pub const fn with_rate(self, low_pass: LowPass, divider: u8) -> Self {
        Mpu6050Config {
            low_pass,
            sample_rate_divider: divider,
            ..self
        }
    }

    /// The sample rate in mHz: 8 kHz (filter off) or 1 kHz, divided by `1 + divider`. The
    /// accelerometer itself samples at 1 kHz: above that its values repeat.
    pub const fn sample_rate_millihertz(&self) -> u32 {
        let gyro_output = match self.low_pass {
            LowPass::Hz260 => 8_000_000,
            _ => 1_000_000,
        };
        gyro_output / (1 + self.sample_rate_divider as u32)
    }

    /// Physical units per count of the six channels: g for the accelerometer, °/s for the
    /// gyroscope.
    pub const fn units_per_count(&self) -> [f64; 6] {
        let (a, g) = (
            1.0 / self.accel.counts_per_g(),
            1.0 / self.gyro.counts_per_dps(),
        );
        [a, a, a, g, g, g]
    }

    /// The six channels' counts in g and °/s, for [`InputScaling`](crate::pipeline::scale::InputScaling)
    /// (add the training data's units and normalisation with the `ChannelMap` methods).
    pub const fn channel_maps(&self) -> [ChannelMap; 6] {
        let u = self.units_per_count();
        [
            ChannelMap::per_count(u[0]),
            ChannelMap::per_count(u[1]),
            ChannelMap::per_count(u[2]),
            ChannelMap::per_count(u[3]),
            ChannelMap::per_count(u[4]),
            ChannelMap::per_count(u[5]),
        ]
    }
}

impl Default for Mpu6050Config {
    fn default() -> Self {
        Self::new()
    }
}

/// An MPU-6050 as a source of `[ax, ay, az, gx, gy, gz]` raw counts.
pub struct Mpu6050Source<I2C: I2c> {
    sensor: Mpu6050<I2C>,
    config: Mpu6050Config,
}

/// A driver error as the adapter reports it.
fn from_driver<I: I2c>(error: DriverError<I>) -> SensorError<I::Error> {
    match error {
        DriverError::WriteError(e) | DriverError::WriteReadError(e) => SensorError::Bus(e),
        _ => SensorError::Driver,
    }
}

impl<I2C: I2c> Mpu6050Source<I2C> {
    /// Sets up the MPU-6050 at `address` with `config`; `delay` waits out the reset (200 ms).
    ///
    /// The reset comes first because the driver's range and filter setters OR their bits into
    /// the registers: from the reset value 0x00 (RM section 3) the result is exactly the
    /// value asked for, whatever an earlier run of the firmware left in the part.
    pub fn new(
        mut i2c: I2C,
        address: u8,
        config: Mpu6050Config,
        delay: &mut impl DelayNs,
    ) -> Result<Self, SensorError<I2C::Error>> {
        let who_am_i =
            read_u8_register(&mut i2c, address, WHO_AM_I_REGISTER).map_err(SensorError::Bus)?;
        if config.who_am_i.is_some_and(|expected| expected != who_am_i) {
            return Err(SensorError::WrongDevice {
                who_am_i,
                expected: "0x68",
            });
        }
        let mut sensor = Mpu6050::new(i2c, Address(address)).map_err(|e| from_driver(e.error))?;
        sensor.reset(delay).map_err(from_driver)?;
        sensor.disable_sleep().map_err(from_driver)?;
        sensor
            .set_clock_source(ClockSource::Xgyro)
            .map_err(from_driver)?;
        sensor
            .set_sample_rate_divider(config.sample_rate_divider)
            .map_err(from_driver)?;
        sensor
            .set_digital_lowpass_filter(config.low_pass.driver())
            .map_err(from_driver)?;
        sensor
            .set_accel_full_scale(config.accel.driver())
            .map_err(from_driver)?;
        sensor
            .set_gyro_full_scale(config.gyro.driver())
            .map_err(from_driver)?;
        Ok(Mpu6050Source { sensor, config })
    }

    /// The configuration set up.
    pub const fn config(&self) -> &Mpu6050Config {
        &self.config
    }

    /// The I2C bus back.
    pub fn release(self) -> I2C {
        self.sensor.release()
    }
}

impl<I2C: I2c> SampleSource<6> for Mpu6050Source<I2C> {
    type Error = SensorError<I2C::Error>;

    fn read(&mut self) -> Result<Option<[i16; 6]>, Self::Error> {
        let (a, g) = self.sensor.motion6().map_err(from_driver)?;
        Ok(Some([a.x(), a.y(), a.z(), g.x(), g.y(), g.z()]))
    }
}

#[cfg(test)]
mod tests {
    //! Every transaction against RM-MPU-6000A-00 rev. 4.2. Register numbers there are decimal;
    //! in hex: SMPLRT_DIV 25 = 0x19 (section 4.2), CONFIG 26 = 0x1A (4.3), GYRO_CONFIG 27 = 0x1B
    //! (4.4, FS_SEL in bits 4:3), ACCEL_CONFIG 28 = 0x1C (4.5, AFS_SEL in bits 4:3),
    //! ACCEL_XOUT_H 59 = 0x3B … GYRO_ZOUT_L 72 = 0x48 (4.17–4.19), PWR_MGMT_1 107 = 0x6B (4.28:
    //! DEVICE_RESET bit 7, SLEEP bit 6, CLKSEL bits 2:0, 1 = PLL with the X gyro), WHO_AM_I 117 =
    //! 0x75 (4.32, 0x68). Reset values: 0x00 except PWR_MGMT_1 0x40 and WHO_AM_I 0x68 (section 3).

    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as Delay};
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as I2c};

    const A: u8 = ADDRESS_AD0_LOW;

    /// The set-up of `config`, register by register, for a part just out of power-on reset.
    fn setup(config: &Mpu6050Config, accel_bits: u8, gyro_bits: u8, dlpf: u8) -> Vec<I2c> {
        vec![
            // WHO_AM_I.
            I2c::write_read(A, vec![0x75], vec![0x68]),
            // The driver's wake-up: read PWR_MGMT_1 (0x40: asleep), clear SLEEP.
            I2c::write_read(A, vec![0x6B], vec![0x40]),
            I2c::write(A, vec![0x6B, 0x00]),
            // DEVICE_RESET, then (after the delay) the reset value, asleep again: wake up.
            I2c::write_read(A, vec![0x6B], vec![0x00]),
            I2c::write(A, vec![0x6B, 0x80]),
            I2c::write_read(A, vec![0x6B], vec![0x40]),
            I2c::write(A, vec![0x6B, 0x00]),
            // CLKSEL = 1: PLL with the X-axis gyroscope as reference.
            I2c::write_read(A, vec![0x6B], vec![0x00]),
            I2c::write(A, vec![0x6B, 0x01]),
            I2c::write(A, vec![0x19, config.sample_rate_divider]),
            I2c::write_read(A, vec![0x1A], vec![0x00]),
            I2c::write(A, vec![0x1A, dlpf]),
            I2c::write_read(A, vec![0x1C], vec![0x00]),
            I2c::write(A, vec![0x1C, accel_bits]),
            I2c::write_read(A, vec![0x1B], vec![0x00]),
            I2c::write(A, vec![0x1B, gyro_bits]),
        ]
    }

    #[test]
    fn default_setup_writes_the_datasheet_values() {
        // ±4 g: AFS_SEL 1 → 0x08; ±500 °/s: FS_SEL 1 → 0x08; 44 Hz: DLPF_CFG 3; divider 9:
        // 1 kHz / 10 = 100 Hz.
        let config = Mpu6050Config::new();
        let expectations = setup(&config, 0x08, 0x08, 0x03);
        let mut i2c = Mock::new(&expectations);
        let mut delay = CheckedDelay::new(&[Delay::delay_ms(200)]);
        let source = Mpu6050Source::new(i2c.clone(), A, config, &mut delay).unwrap();
        assert_eq!(source.config().sample_rate_millihertz(), 100_000);
        source.release();
        i2c.done();
        delay.done();
    }

    #[test]
    fn every_range_and_filter_sets_its_bits() {
        let config = Mpu6050Config::new()
            .with_accel(AccelRange::G16)
            .with_gyro(GyroRange::Dps2000)
            .with_rate(LowPass::Hz260, 7);
        // AFS_SEL 3, FS_SEL 3 → 0x18 each; DLPF_CFG 0; 8 kHz / 8 = 1 kHz.
        let expectations = setup(&config, 0x18, 0x18, 0x00);
        let mut i2c = Mock::new(&expectations);
        let mut delay = CheckedDelay::new(&[Delay::delay_ms(200)]);
        let source = Mpu6050Source::new(i2c.clone(), A, config, &mut delay).unwrap();
        assert_eq!(source.config().sample_rate_millihertz(), 1_000_000);
        drop(source);
        i2c.done();
        delay.done();

        let config = Mpu6050Config::new()
            .with_accel(AccelRange::G8)
            .with_gyro(GyroRange::Dps1000)
            .with_rate(LowPass::Hz5, 99);
        let expectations = setup(&config, 0x10, 0x10, 0x06);
        let mut i2c = Mock::new(&expectations);
        let mut delay = CheckedDelay::new(&[Delay::delay_ms(200)]);
        let source = Mpu6050Source::new(i2c.clone(), A, config, &mut delay).unwrap();
        assert_eq!(source.config().sample_rate_millihertz(), 10_000);
        drop(source);
        i2c.done();
        delay.done();
    }

    #[test]
    fn a_sample_is_one_big_endian_burst_without_the_temperature() {
        let config = Mpu6050Config::new()
            .with_accel(AccelRange::G2)
            .with_gyro(GyroRange::Dps250);
        let mut expectations = setup(&config, 0x00, 0x00, 0x03);
        expectations.push(I2c::write_read(
            A,
            vec![0x3B],
            vec![
                0x40, 0x00, // ACCEL_XOUT = 16384: 1 g at ±2 g
                0xC0, 0x00, // ACCEL_YOUT = -16384
                0x00, 0x01, // ACCEL_ZOUT = 1
                0x12, 0x34, // TEMP_OUT (dropped)
                0x00, 0x83, // GYRO_XOUT = 131: 1 °/s at ±250 °/s
                0xFF, 0x7D, // GYRO_YOUT = -131
                0x80, 0x00, // GYRO_ZOUT = -32768
            ],
        ));
        let mut i2c = Mock::new(&expectations);
        let mut delay = CheckedDelay::new(&[Delay::delay_ms(200)]);
        let mut source = Mpu6050Source::new(i2c.clone(), A, config, &mut delay).unwrap();
        assert_eq!(
            source.read(),
            Ok(Some([16384, -16384, 1, 131, -131, -32768]))
        );
        let units = source.config().units_per_count();
        assert_eq!(units[0] * 16384.0, 1.0);
        assert_eq!(units[3] * 131.0, 1.0);
        drop(source);
        i2c.done();
        delay.done();
    }

    #[test]
    fn another_device_and_bus_errors_are_reported() {
        let expectations = [I2c::write_read(A, vec![0x75], vec![0x70])];
        let mut i2c = Mock::new(&expectations);
        let mut delay = CheckedDelay::new(&[]);
        let error = Mpu6050Source::new(i2c.clone(), A, Mpu6050Config::new(), &mut delay);
        assert!(matches!(
            error,
            Err(SensorError::WrongDevice { who_am_i: 0x70, .. })
        ));
        i2c.done();

        let expectations =
            [I2c::write_read(A, vec![0x75], vec![0x68]).with_error(ErrorKind::Other)];
        let mut i2c = Mock::new(&expectations);
        let error = Mpu6050Source::new(i2c.clone(), A, Mpu6050Config::new(), &mut delay);
        assert!(matches!(error, Err(SensorError::Bus(ErrorKind::Other))));
        i2c.done();
        delay.done();
    }
}
