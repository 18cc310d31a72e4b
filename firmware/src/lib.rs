//! Runtime support shared by the tinyrnn firmware binaries running under QEMU.
//!
//! - Logging goes through `defmt` over semihosting (`defmt-semihosting`); nothing else may write
//!   to semihosting stdout, or the frame stream seen by the host decoder is corrupted.
//! - [`exit`] ends QEMU with a status code through semihosting (`SYS_EXIT_EXTENDED`), so the
//!   host sees the firmware's verdict as QEMU's exit status.
//! - A panic exits with [`EXIT_PANIC`], a HardFault with [`EXIT_HARDFAULT`], any other
//!   unexpected exception or interrupt with [`EXIT_UNEXPECTED_EXCEPTION`].
//! - [`icount`] counts executed instructions with SysTick (QEMU run with `-icount shift=10`).
#![no_std]
#![deny(missing_docs)]

use cortex_m_rt::{exception, ExceptionFrame};
// Links the defmt global logger.
use defmt_semihosting as _;
// The firmware will call into the core crate; linking it now proves it builds for every target.
use tinyrnn as _;

pub mod harness;
pub mod icount;

/// Exit status of a firmware run that passed.
pub const EXIT_SUCCESS: i32 = 0;
/// Exit status of a firmware run whose checks failed (reported with [`fail`]).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status after a panic (same as a panicking Rust test binary).
pub const EXIT_PANIC: i32 = 101;
/// Exit status after a HardFault.
pub const EXIT_HARDFAULT: i32 = 102;
/// Exit status after any other unexpected exception or interrupt.
pub const EXIT_UNEXPECTED_EXCEPTION: i32 = 103;

/// Ends the program: QEMU exits with `code` as its own exit status.
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

/// Logs `reason` as an error and exits with [`EXIT_FAILURE`].
pub fn fail(reason: &str) -> ! {
    defmt::error!("FAIL: {=str}", reason);
    exit(EXIT_FAILURE)
}

/// Logs the panic location (and the message when it is a plain string, so no `core::fmt`
/// machinery is pulled in) and exits with [`EXIT_PANIC`].
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let message = info.message().as_str().unwrap_or("<formatted message>");
    match info.location() {
        Some(at) => defmt::error!(
            "panicked at {=str}:{=u32}: {=str}",
            at.file(),
            at.line(),
            message
        ),
        None => defmt::error!("panicked: {=str}", message),
    }
    exit(EXIT_PANIC)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!(
        "HardFault at pc={=u32:#010x} lr={=u32:#010x}",
        frame.pc(),
        frame.lr()
    );
    exit(EXIT_HARDFAULT)
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    defmt::error!("unexpected exception or interrupt {=i16}", irqn);
    exit(EXIT_UNEXPECTED_EXCEPTION)
}
