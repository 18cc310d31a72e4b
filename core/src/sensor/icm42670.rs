//! TDK InvenSense ICM-42670-P (and ICM-42607) over I2C, on the `icm42670` driver
//! (embedded-hal 1.0) for identification and configuration.
//!
//! Set-up ([`Icm42670Source::new`]): the driver checks `WHO_AM_I` and turns both sensors on in
//! low-noise mode; then the ranges and output data rates are set, read-modify-write, each in
//! its bit field of `ACCEL_CONFIG0`/`GYRO_CONFIG0`. Samples are read here rather than through
//! the driver: its raw reads take one I2C transaction per byte (twelve per sample, the high and
//! low byte of a value possibly from different samples), this adapter one 12-byte burst from
//! `ACCEL_DATA_X1` (accelerometer then gyroscope, big-endian).
//!
//! Registers and fields are those of the ICM-42670-P datasheet (DS-000451), user bank 0; the
//! tests in this file check every transaction against it.

use ::icm42670::{AccelOdr, AccelRange as DriverAccelRange, Error as DriverError, GyroOdr};
use ::icm42670::{GyroRange as DriverGyroRange, Icm42670};
use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

pub use ::icm42670::Address;

use super::{read_i16_registers, read_u8_register, Endian, SensorError};
use crate::pipeline::scale::ChannelMap;
use crate::pipeline::source::SampleSource;

const WHO_AM_I_REGISTER: u8 = 0x75;
/// `WHO_AM_I` of the ICM-42670-P.
pub const WHO_AM_I_ICM42670: u8 = 0x67;
/// `WHO_AM_I` of the ICM-42607 (the same part for mass production).
pub const WHO_AM_I_ICM42607: u8 = 0x60;
/// The first output register, `ACCEL_DATA_X1`; `GYRO_DATA_Z0` (0x16) is the twelfth.
const ACCEL_DATA_X1: u8 = 0x0B;

/// Accelerometer full-scale range (`ACCEL_UI_FS_SEL`, bits 6:5 of `ACCEL_CONFIG0`).
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
    /// Counts per g (the datasheet's accelerometer sensitivity scale factors, Table 2).
    pub const fn counts_per_g(self) -> f64 {
        match self {
            AccelRange::G2 => 16384.0,
            AccelRange::G4 => 8192.0,
            AccelRange::G8 => 4096.0,
            AccelRange::G16 => 2048.0,
        }
    }

    const fn driver(self) -> DriverAccelRange {
        match self {
            AccelRange::G2 => DriverAccelRange::G2,
            AccelRange::G4 => DriverAccelRange::G4,
            AccelRange::G8 => DriverAccelRange::G8,
            AccelRange::G16 => DriverAccelRange::G16,
        }
    }
}

/// Gyroscope full-scale range (`GYRO_UI_FS_SEL`, bits 6:5 of `GYRO_CONFIG0`).
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
    /// Counts per °/s (the datasheet's gyroscope sensitivity scale factors, Table 1).
    pub const fn counts_per_dps(self) -> f64 {
        match self {
            GyroRange::Dps250 => 131.0,
            GyroRange::Dps500 => 65.5,
            GyroRange::Dps1000 => 32.8,
            GyroRange::Dps2000 => 16.4,
        }
    }

    const fn driver(self) -> DriverGyroRange {
        match self {
            GyroRange::Dps250 => DriverGyroRange::Deg250,
            GyroRange::Dps500 => DriverGyroRange::Deg500,
            GyroRange::Dps1000 => DriverGyroRange::Deg1000,
            GyroRange::Dps2000 => DriverGyroRange::Deg2000,
        }
    }
}

/// Output data rate of both sensors in low-noise mode (`ACCEL_ODR`/`GYRO_ODR`, bits 3:0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Rate {
    /// 12.5 Hz.
    Hz12_5,
    /// 25 Hz.
    Hz25,
    /// 50 Hz.
    Hz50,
    /// 100 Hz.
    Hz100,
    /// 200 Hz.
    Hz200,
    /// 400 Hz.
    Hz400,
    /// 800 Hz.
    Hz800,
    /// 1.6 kHz.
    Hz1600,
}

impl Rate {
    /// The rate in mHz.
    pub const fn millihertz(self) -> u32 {
        match self {
            Rate::Hz12_5 => 12_500,
            Rate::Hz25 => 25_000,
            Rate::Hz50 => 50_000,
            Rate::Hz100 => 100_000,
            Rate::Hz200 => 200_000,
            Rate::Hz400 => 400_000,
            Rate::Hz800 => 800_000,
            Rate::Hz1600 => 1_600_000,
        }
    }

    const fn driver(self) -> (AccelOdr, GyroOdr) {
        match self {
            Rate::Hz12_5 => (AccelOdr::Hz12_5, GyroOdr::Hz12_5),
            Rate::Hz25 => (AccelOdr::Hz25, GyroOdr::Hz25),
            Rate::Hz50 => (AccelOdr::Hz50, GyroOdr::Hz50),
            Rate::Hz100 => (AccelOdr::Hz100, GyroOdr::Hz100),
            Rate::Hz200 => (AccelOdr::Hz200, GyroOdr::Hz200),
            Rate::Hz400 => (AccelOdr::Hz400, GyroOdr::Hz400),
            Rate::Hz800 => (AccelOdr::Hz800, GyroOdr::Hz800),
            Rate::Hz1600 => (AccelOdr::Hz1600, GyroOdr::Hz1600),
        }
    }
}

/// Range and rate of an ICM-42670.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Icm42670Config {
    /// Accelerometer range.
    pub accel: AccelRange,
    /// Gyroscope range.
    pub gyro: GyroRange,
    /// Output data rate of both sensors.
    pub rate: Rate,
}

impl Icm42670Config {
    /// ±4 g, ±500 °/s, 100 samples per second.
    pub const fn new() -> Self {
        Icm42670Config {
            accel: AccelRange::G4,
            gyro: GyroRange::Dps500,
            rate: Rate::Hz100,
        }
    }

    /// With the accelerometer range `accel`.
    pub const fn with_accel(self, accel: AccelRange) -> Self {
        Icm42670Config { accel, ..self }
    }

    /// With the gyroscope range `gyro`.
    pub const fn with_gyro(self, gyro: GyroRange) -> Self {
        Icm42670Config { gyro, ..self }
    }

    /// With the output data rate `rate`.
    pub const fn with_rate(self, rate: Rate) -> Self {
        Icm42670Config { rate, ..self }
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

    /// The six channels' counts in g and °/s, for [`InputScaling`](crate::pipeline::scale::InputScaling).
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

impl Default for Icm42670Config {
    fn default() -> Self {
        Self::new()
    }
}

/// An ICM-42670 as a source of `[ax, ay, az, gx, gy, gz]` raw counts.
pub struct Icm42670Source<I2C> {
    i2c: I2C,
    address: u8,
    config: Icm42670Config,
}

/// A driver error as the adapter reports it.
fn from_driver<E>(error: DriverError<E>) -> SensorError<E> {
    match error {
        DriverError::BusError(e) => SensorError::Bus(e),
        DriverError::SensorError(_) => SensorError::Driver,
    }
}

impl<I2C: I2c> Icm42670Source<I2C> {
    /// Sets up the ICM-42670 at `address` with `config`; `delay` waits after the power-on
    /// (200 µs before further register writes) and for the gyroscope to start (45 ms).
    pub fn new(
        mut i2c: I2C,
        address: Address,
        config: Icm42670Config,
        delay: &mut impl DelayNs,
    ) -> Result<Self, SensorError<I2C::Error>> {
        let raw_address = address as u8;
        // Read once here for a message with the value found (the driver only says "bad chip").
        let who_am_i =
            read_u8_register(&mut i2c, raw_address, WHO_AM_I_REGISTER).map_err(SensorError::Bus)?;
        if who_am_i != WHO_AM_I_ICM42670 && who_am_i != WHO_AM_I_ICM42607 {
            return Err(SensorError::WrongDevice {
                who_am_i,
                expected: "0x67 (ICM-42670-P) or 0x60 (ICM-42607)",
            });
        }
        {
            // The driver borrows the bus for the set-up only (embedded-hal's `I2c` is
            // implemented for `&mut` of a bus).
            let mut device = Icm42670::new(&mut i2c, address).map_err(from_driver)?;
            delay.delay_us(200);
            let (accel_odr, gyro_odr) = config.rate.driver();
            device
                .set_accel_range(config.accel.driver())
                .map_err(from_driver)?;
            device
                .set_gyro_range(config.gyro.driver())
                .map_err(from_driver)?;
            device.set_accel_odr(accel_odr).map_err(from_driver)?;
            device.set_gyro_odr(gyro_odr).map_err(from_driver)?;
        }
        delay.delay_ms(45);
        Ok(Icm42670Source {
            i2c,
            address: raw_address,
            config,
        })
    }

    /// The configuration set up.
    pub const fn config(&self) -> &Icm42670Config {
        &self.config
    }

    /// The I2C bus back.
    pub fn release(self) -> I2C {
        self.i2c
    }
}

impl<I2C: I2c> SampleSource<6> for Icm42670Source<I2C> {
    type Error = SensorError<I2C::Error>;

    fn read(&mut self) -> Result<Option<[i16; 6]>, Self::Error> {
        read_i16_registers(&mut self.i2c, self.address, ACCEL_DATA_X1, Endian::Big)
            .map(Some)
            .map_err(SensorError::Bus)
    }
}

#[cfg(test)]
mod tests {
    //! Every transaction against the ICM-42670-P datasheet (DS-000451), user bank 0 register
    //! map: WHO_AM_I 0x75 (0x67), PWR_MGMT0 0x1F (GYRO_MODE bits 3:2, ACCEL_MODE bits 1:0; 11 =
    //! low-noise), GYRO_CONFIG0 0x20 and ACCEL_CONFIG0 0x21 (full-scale select in bits 6:5:
    //! 00 = ±2000 °/s / ±16 g … 11 = ±250 °/s / ±2 g; ODR in bits 3:0: 0101 = 1.6 kHz …
    //! 1100 = 12.5 Hz), data ACCEL_DATA_X1 0x0B … GYRO_DATA_Z0 0x16 (X1 the high byte).
    //! The register contents the mock returns are arbitrary: the read-modify-writes must keep
    //! every bit outside their field.

    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as Delay};
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as I2c};

    const A: u8 = 0x68;

    /// The set-up, given what the part holds in ACCEL_CONFIG0 / GYRO_CONFIG0 / PWR_MGMT0 and
    /// the expected final field values (`fs` in bits 6:5, `odr` in bits 3:0).
    fn setup(accel_fs: u8, gyro_fs: u8, odr: u8) -> Vec<I2c> {
        // Bits outside the fields (7 and 4) set, to catch a write that clears them.
        let (accel0, gyro0, pwr0) = (0x96, 0x96, 0xF0);
        let after_default = |v: u8| v & !0x60; // the driver's default ranges: ±16 g, ±2000 °/s
        let accel1 = after_default(accel0);
        let gyro1 = after_default(gyro0);
        let accel2 = (accel1 & !0x60) | accel_fs << 5;
        let gyro2 = (gyro1 & !0x60) | gyro_fs << 5;
        vec![
            I2c::write_read(A, vec![0x75], vec![0x67]),
            // The driver: WHO_AM_I, its default ranges, both sensors on in low-noise mode.
            I2c::write_read(A, vec![0x75], vec![0x67]),
            I2c::write_read(A, vec![0x21], vec![accel0]),
            I2c::write(A, vec![0x21, accel1]),
            I2c::write_read(A, vec![0x20], vec![gyro0]),
            I2c::write(A, vec![0x20, gyro1]),
            I2c::write_read(A, vec![0x1F], vec![pwr0]),
            I2c::write(A, vec![0x1F, 0xFF]),
            // The configuration.
            I2c::write_read(A, vec![0x21], vec![accel1]),
            I2c::write(A, vec![0x21, accel2]),
            I2c::write_read(A, vec![0x20], vec![gyro1]),
            I2c::write(A, vec![0x20, gyro2]),
            I2c::write_read(A, vec![0x21], vec![accel2]),
            I2c::write(A, vec![0x21, (accel2 & 0xF0) | odr]),
            I2c::write_read(A, vec![0x20], vec![gyro2]),
            I2c::write(A, vec![0x20, (gyro2 & 0xF0) | odr]),
        ]
    }

    fn delays() -> CheckedDelay {
        CheckedDelay::new(&[Delay::delay_us(200), Delay::delay_ms(45)])
    }

    #[test]
    fn default_setup_writes_the_datasheet_fields() {
        // ±4 g: ACCEL_UI_FS_SEL 10; ±500 °/s: GYRO_UI_FS_SEL 10; 100 Hz: ODR 1001.
        let expectations = setup(0b10, 0b10, 0b1001);
        assert_eq!(expectations[9], I2c::write(A, vec![0x21, 0xD6]));
        let mut i2c = Mock::new(&expectations);
        let mut delay = delays();
        let source = Icm42670Source::new(
            i2c.clone(),
            Address::Primary,
            Icm42670Config::new(),
            &mut delay,
        )
        .unwrap();
        assert_eq!(source.config().rate.millihertz(), 100_000);
        source.release();
        i2c.done();
        delay.done();
    }

    #[test]
    fn range_and_rate_extremes() {
        let config = Icm42670Config::new()
            .with_accel(AccelRange::G2)
            .with_gyro(GyroRange::Dps250)
            .with_rate(Rate::Hz1600);
        let expectations = setup(0b11, 0b11, 0b0101);
        let mut i2c = Mock::new(&expectations);
        let mut delay = delays();
        drop(Icm42670Source::new(i2c.clone(), Address::Primary, config, &mut delay).unwrap());
        i2c.done();
        delay.done();

        let config = config
            .with_accel(AccelRange::G16)
            .with_gyro(GyroRange::Dps2000)
            .with_rate(Rate::Hz12_5);
        let expectations = setup(0b00, 0b00, 0b1100);
        let mut i2c = Mock::new(&expectations);
        let mut delay = delays();
        drop(Icm42670Source::new(i2c.clone(), Address::Primary, config, &mut delay).unwrap());
        i2c.done();
        delay.done();
    }

    #[test]
    fn a_sample_is_one_big_endian_burst() {
        let mut expectations = setup(0b10, 0b10, 0b1001);
        expectations.push(I2c::write_read(
            A,
            vec![0x0B],
            vec![
                0x20, 0x00, // ACCEL_DATA_X = 8192: 1 g at ±4 g
                0xE0, 0x00, // ACCEL_DATA_Y = -8192
                0x7F, 0xFF, // ACCEL_DATA_Z = 32767
                0x00, 0x41, // GYRO_DATA_X = 65
                0xFF, 0xBF, // GYRO_DATA_Y = -65
                0x80, 0x00, // GYRO_DATA_Z = -32768
            ],
        ));
        let mut i2c = Mock::new(&expectations);
        let mut delay = delays();
        let mut source = Icm42670Source::new(
            i2c.clone(),
            Address::Primary,
            Icm42670Config::new(),
            &mut delay,
        )
        .unwrap();
        assert_eq!(
            source.read(),
            Ok(Some([8192, -8192, 32767, 65, -65, -32768]))
        );
        assert_eq!(source.config().units_per_count()[0] * 8192.0, 1.0);
        assert_eq!(source.config().units_per_count()[5] * 65.5, 1.0);
        drop(source);
        i2c.done();
        delay.done();
    }

    #[test]
    fn another_device_and_bus_errors_are_reported() {
        let expectations = [I2c::write_read(0x69, vec![0x75], vec![0x68])];
        let mut i2c = Mock::new(&expectations);
        let mut delay = CheckedDelay::new(&[]);
        let error = Icm42670Source::new(
            i2c.clone(),
            Address::Secondary,
            Icm42670Config::new(),
            &mut delay,
        );
        assert!(matches!(
            error,
            Err(SensorError::WrongDevice { who_am_i: 0x68, .. })
        ));
        i2c.done();
        delay.done();

        let mut expectations = setup(0b10, 0b10, 0b1001);
        expectations.push(I2c::write_read(A, vec![0x0B], vec![0; 12]).with_error(ErrorKind::Other));
        let mut i2c = Mock::new(&expectations);
        let mut delay = delays();
        let mut source = Icm42670Source::new(
            i2c.clone(),
            Address::Primary,
            Icm42670Config::new(),
            &mut delay,
        )
        .unwrap();
        assert_eq!(source.read(), Err(SensorError::Bus(ErrorKind::Other)));
        drop(source);
        i2c.done();
        delay.done();
    }
}
