//! Checks the failure path: panics on purpose, so QEMU must exit with status 101.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinyrnn_firmware as _;

#[entry]
fn main() -> ! {
    defmt::info!("expect_panic: panicking on purpose");
    if core::hint::black_box(true) {
        panic!("deliberate panic");
    }
    tinyrnn_firmware::exit(0)
}
