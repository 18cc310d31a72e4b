//! Executed-instruction counts under QEMU, read from SysTick.
//!
//! With `-icount shift=10` QEMU advances guest time by exactly 1024 ns per instruction, so
//! SysTick running on the core clock ticks a fixed number of times per instruction:
//! `k = f_core × 1024 ns` — 25.6 on mps2-an385/an386 (25 MHz), 20.48 on mps2-an505 (20 MHz),
//! 16.384 on microbit (16 MHz), 12.8 on lm3s6965evb (12.5 MHz). The firmware reports raw ticks
//! (integers, no floats in the firmware); the host divides by `k`.
//!
//! These are executed instructions, not cycles. SysTick is a 24-bit down-counter; to measure
//! runs longer than 2^24 ticks (≈ 655k instructions at k = 25.6 — one soft-float step on the
//! Cortex-M0 can take that long) the SysTick exception counts the wraps, and a reading combines
//! the wrap count with the counter. The handler's own instructions (a few per 2^24 ticks) are
//! counted too, an error below 10⁻⁵. To remove the fixed cost of the measurement itself, time
//! N and 2N iterations and take the difference ([`InstructionCounter::ticks_per_n`]).

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SCB, SYST};
use cortex_m_rt::exception;

/// Largest SysTick reload value (24-bit counter): the counter period is `RELOAD + 1` ticks.
const RELOAD: u32 = 0x00FF_FFFF;

/// SysTick wraps since the counter was started (incremented by the SysTick exception).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    // Single core, the handler does not preempt itself: load + store is enough (no CAS on v6-M).
    WRAPS.store(
        WRAPS.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// A free-running SysTick on the core clock whose wraps are counted, used only for measuring.
pub struct InstructionCounter {
    _syst: SYST,
}

impl InstructionCounter {
    /// Takes SysTick and starts it counting down from 2^24 − 1 on the core clock, with its
    /// exception enabled to count wraps.
    pub fn new(mut syst: SYST) -> Self {
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        WRAPS.store(0, Ordering::Relaxed);
        syst.enable_interrupt();
        syst.enable_counter();
        Self { _syst: syst }
    }

    /// Ticks since the counter started (64 bits: wraps × 2^24 + elapsed in the current period).
    pub fn now(&self) -> u64 {
        cortex_m::interrupt::free(|_| {
            // With interrupts masked a wrap shows as a pending SysTick instead of a WRAPS
            // increment. If it became pending while the counter was read, read it again: the
            // second reading is after the reload.
            let pending_before = SCB::is_pendst_pending();
            let mut current = SYST::get_current();
            let pending_after = SCB::is_pendst_pending();
            if pending_after && !pending_before {
                current = SYST::get_current();
            }
            let wraps = u64::from(WRAPS.load(Ordering::Relaxed)) + u64::from(pending_after);
            wraps * u64::from(RELOAD + 1) + u64::from(RELOAD - (current & RELOAD))
        })
    }

    /// Runs `f` and returns the SysTick ticks it took.
    pub fn measure<R>(&mut self, f: impl FnOnce() -> R) -> u64 {
        let start = self.now();
        core::hint::black_box(f());
        self.now() - start
    }

    /// Ticks taken by `n` iterations of `run(count)`, measured as `ticks(2n) − ticks(n)` so that
    /// the call and measurement overhead cancels. `None` if the second run was not longer.
    pub fn ticks_per_n<R>(&mut self, n: u32, mut run: impl FnMut(u32) -> R) -> Option<u64> {
        let once = self.measure(|| run(core::hint::black_box(n)));
        let twice = self.measure(|| run(core::hint::black_box(2 * n)));
        twice.checked_sub(once)
    }
}

/// Logs one measurement in the line format the host recognises and converts to
/// instructions: `icount <name> n=<iterations> ticks=<ticks>`.
pub fn report(name: &str, iterations: u32, ticks: u64) {
    defmt::info!(
        "icount {=str} n={=u32} ticks={=u64}",
        name,
        iterations,
        ticks
    );
}
