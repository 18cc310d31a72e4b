//! Proof that the inference path cannot panic: this binary runs `step` of each generated model
//! (`firmware/generated/nopanic/cases.rs`, written by `cargo xtask test`) on inputs the
//! optimiser cannot see, and its panic handler calls a function that does not exist. If any
//! panic path (bounds check, overflow check, unwrap, …) survives optimisation, the link fails
//! with `undefined symbol: tinyrnn_inference_path_can_panic`, naming the caller.
//!
//! It does not use the `tinyrnn_firmware` library (whose panic handler would be linked) and no
//! `defmt`: only the models, `cortex-m-rt` and a semihosting exit. Built for a q15-only case
//! set, its symbol table also shows whether any soft-float routine is linked (integer-only
//! check on Cortex-M0). Needs `--features generated`.
#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;

/// One `#[inline(never)]` function per model: a fresh state, one step on an opaque input.
macro_rules! define_cases {
    ($(($m:ident, $name:expr, $stream:expr)),* $(,)?) => {
        fn run_all() {
            $(
                {
                    #[inline(never)]
                    fn run_case() {
                        let mut state = black_box(<$m::State as Default>::default());
                        let x = black_box([<$m::Act as Default>::default(); $m::INPUTS]);
                        for _ in 0..black_box(2u32) {
                            let y = $m::step(&mut state, &x);
                            black_box(y);
                        }
                        black_box(&state);
                    }
                    run_case();
                }
            )*
        }
    };
}

include!("../../generated/nopanic/cases.rs");

#[entry]
fn main() -> ! {
    run_all();
    semihosting::process::exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    extern "C" {
        /// Deliberately undefined: linking succeeds only if no panic path is left.
        fn tinyrnn_inference_path_can_panic() -> !;
    }
    // SAFETY: never linked; see above.
    unsafe { tinyrnn_inference_path_can_panic() }
}
