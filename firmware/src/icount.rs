//! Executed-instruction counts under QEMU, read from SysTick.
//!
//! With `-icount shift=10` QEMU advances guest time by exactly 1024 ns per instruction, so
//! SysTick running on the core clock ticks a fixed number of times per instruction:
//! `k = f_core × 1024 ns` — 25.6 on mps2-an385/an386 (25 MHz), 20.48 on mps2-an505 (20 MHz),
//! 16.384 on microbit (16 MHz), 12.8 on lm3s6965evb (12.5 MHz). The firmware reports raw ticks
//! (integers, no floats in the firmware); the host divides by `k`.
//!
//! These are executed instructions, not cycles. SysTick is 24 bits wide, so one reading covers
//! at most 2^24 ticks (≈ 655k instructions at k = 25.6); [`measure`] returns `None` when the
//! counter wrapped. To remove the fixed cost of the measurement itself, time N and 2N
//! iterations and take the difference ([`ticks_per_n`]).

use cortex_m::peripheral::{syst::SystClkSource, SYST};

/// Largest SysTick reload value (24-bit counter).
const RELOAD: u32 = 0x00FF_FFFF;

/// A free-running SysTick on the core clock, used only for measuring.
pub struct InstructionCounter {
    syst: SYST,
}

impl InstructionCounter {
    /// Takes SysTick and starts it counting down from 2^24 − 1 on the core clock,
    /// with its interrupt disabled.
    pub fn new(mut syst: SYST) -> Self {
        syst.disable_counter();
        syst.disable_interrupt();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_counter();
        Self { syst }
    }

    /// Runs `f` and returns the SysTick ticks it took, or `None` when the 24-bit counter wrapped
    /// during the run (the run was too long to measure in one reading).
    pub fn measure<R>(&mut self, f: impl FnOnce() -> R) -> Option<u32> {
        self.syst.clear_current();
        // Reading the control register clears COUNTFLAG; it is set again only on a wrap.
        let _ = self.syst.has_wrapped();
        let start = SYST::get_current();
        core::hint::black_box(f());
        let end = SYST::get_current();
        if self.syst.has_wrapped() {
            return None;
        }
        Some(start.wrapping_sub(end) & RELOAD)
    }

    /// Ticks taken by `n` iterations of `run(count)`, measured as `ticks(2n) − ticks(n)` so that
    /// the call and measurement overhead cancels. `None` when a reading wrapped.
    pub fn ticks_per_n<R>(&mut self, n: u32, mut run: impl FnMut(u32) -> R) -> Option<u32> {
        let once = self.measure(|| run(core::hint::black_box(n)))?;
        let twice = self.measure(|| run(core::hint::black_box(2 * n)))?;
        twice.checked_sub(once)
    }
}

/// Logs one measurement in the line format the host (`cargo xtask`) recognises and converts
/// to instructions: `icount <name> n=<iterations> ticks=<ticks>`.
pub fn report(name: &str, iterations: u32, ticks: u32) {
    defmt::info!(
        "icount {=str} n={=u32} ticks={=u32}",
        name,
        iterations,
        ticks
    );
}
