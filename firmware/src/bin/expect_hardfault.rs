//! Checks the failure path: triggers a HardFault on purpose (permanently undefined
//! instruction), so QEMU must exit with status 102.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinyrnn_firmware as _;

#[entry]
fn main() -> ! {
    defmt::info!("expect_hardfault: executing an undefined instruction on purpose");
    cortex_m::asm::udf()
}
