//! Sensors over `embedded-hal` 1.0 I2C, as [`SampleSource`](crate::pipeline::source::SampleSource)s.
//!
//! * [`mpu6050`] (feature `mpu6050`): InvenSense MPU-6050, on the `mpu6050-dmp` driver.
//! * [`icm42670`] (feature `icm42670`): TDK InvenSense ICM-42670-P / ICM-42607, on the
//!   `icm42670` driver for its configuration, with a burst read of the samples.
//!
//! Both deliver six raw channels per sample, in the order of the recordings this project
//! trains on (BasicMotions): accelerometer x, y, z, then gyroscope x, y, z; and both give the
//! [`ChannelMap`](crate::pipeline::scale::ChannelMap)s of their configured ranges (g and °/s
//! per count, from the datasheets' sensitivity tables) for the input scaling.
//!
//! [`read_i16_registers`] is the helper for other register-mapped sensors: one burst read of
//! consecutive 16-bit registers.

use core::fmt;

use embedded_hal::i2c::I2c;

#[cfg(feature = "icm42670")]
pub mod icm42670;
#[cfg(feature = "mpu6050")]
pub mod mpu6050;

/// Byte order of a sensor's 16-bit registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Endian {
    /// High byte at the lower address (InvenSense parts).
    Big,
    /// Low byte at the lower address (ST and Bosch parts).
    Little,
}

/// Reads `N` consecutive signed 16-bit registers starting at register `first` of the device at
/// 7-bit `address`, in one I2C write-read (so that a sensor with shadowed output registers
/// returns values of one sampling instant).
pub fn read_i16_registers<I2C: I2c, const N: usize>(
    i2c: &mut I2C,
    address: u8,
    first: u8,
    endian: Endian,
) -> Result<[i16; N], I2C::Error> {
    let mut bytes = [[0u8; 2]; N];
    i2c.write_read(address, &[first], bytes.as_flattened_mut())?;
    Ok(bytes.map(|pair| match endian {
        Endian::Big => i16::from_be_bytes(pair),
        Endian::Little => i16::from_le_bytes(pair),
    }))
}

/// Reads one 8-bit register.
pub fn read_u8_register<I2C: I2c>(
    i2c: &mut I2C,
    address: u8,
    register: u8,
) -> Result<u8, I2C::Error> {
    let mut byte = [0u8];
    i2c.write_read(address, &[register], &mut byte)?;
    Ok(byte[0])
}

/// Why a sensor could not be set up or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SensorError<E> {
    /// The I2C bus reported an error.
    Bus(E),
    /// The device at the address is not the expected part.
    WrongDevice {
        /// The identification register's value.
        who_am_i: u8,
        /// The value(s) expected, for the message.
        expected: &'static str,
    },
    /// The driver crate reported an error other than a bus error.
    Driver,
}

impl<E: fmt::Debug> fmt::Display for SensorError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SensorError::Bus(e) => write!(f, "I2C bus error: {e:?}"),
            SensorError::WrongDevice { who_am_i, expected } => write!(
                f,
                "WHO_AM_I reads {who_am_i:#04x}, expected {expected}: another device at this address"
            ),
            SensorError::Driver => f.write_str("the sensor driver reported an error"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    #[test]
    fn burst_reads_decode_both_byte_orders() {
        let mut i2c = Mock::new(&[
            Transaction::write_read(0x33, vec![0x28], vec![0x01, 0x80, 0xFF, 0x7F]),
            Transaction::write_read(0x33, vec![0x28], vec![0x01, 0x80, 0xFF, 0x7F]),
        ]);
        let big: [i16; 2] = read_i16_registers(&mut i2c, 0x33, 0x28, Endian::Big).unwrap();
        assert_eq!(big, [0x0180, -129]);
        let little: [i16; 2] = read_i16_registers(&mut i2c, 0x33, 0x28, Endian::Little).unwrap();
        assert_eq!(little, [-32767, 0x7FFF]);
        i2c.done();
    }

    #[test]
    fn wrong_device_message_names_the_id() {
        let e: SensorError<()> = SensorError::WrongDevice {
            who_am_i: 0x70,
            expected: "0x68",
        };
        assert_eq!(
            e.to_string(),
            "WHO_AM_I reads 0x70, expected 0x68: another device at this address"
        );
    }
}
