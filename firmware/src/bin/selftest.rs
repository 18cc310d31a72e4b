//! Firmware self-test: proves that logging, computing, instruction counting and exiting with
//! a status code all work under QEMU. Exits 0 on success.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use tinyrnn_firmware::{exit, fail, icount, EXIT_SUCCESS};

/// A small integer computation with a known answer: the sum of squares 1² + … + n².
#[inline(never)]
fn sum_of_squares(n: u32) -> u32 {
    (1..=n).map(|i| black_box(i * i)).sum()
}

/// The loop whose instruction count is measured: `n` rounds of a multiply-add whose result
/// the optimiser cannot see through.
#[inline(never)]
fn dummy_loop(n: u32) -> u32 {
    let mut acc = 0u32;
    for i in 0..n {
        acc = black_box(acc.wrapping_mul(31).wrapping_add(i));
    }
    acc
}

#[entry]
fn main() -> ! {
    defmt::info!("tinyrnn-firmware selftest: start");

    let sum = sum_of_squares(black_box(100));
    if sum != 338_350 {
        fail("sum_of_squares(100) != 338350");
    }
    defmt::info!("sum_of_squares(100) = {=u32}", sum);

    let peripherals = cortex_m::Peripherals::take().unwrap_or_else(|| fail("peripherals taken"));
    let mut counter = icount::InstructionCounter::new(peripherals.SYST);
    const N: u32 = 1000;
    match counter.ticks_per_n(N, dummy_loop) {
        Some(ticks) => icount::report("dummy_loop", N, ticks),
        None => fail("dummy_loop: 2N iterations took no longer than N"),
    }

    defmt::info!("tinyrnn-firmware selftest: pass");
    exit(EXIT_SUCCESS)
}
