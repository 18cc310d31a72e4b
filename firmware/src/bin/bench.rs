//! Instruction counts, flash and RAM of generated models (see `tinyrnn_firmware::harness`).
//!
//! Built by `tinyrnn bench` after it has written `firmware/generated/bench/cases.rs` (that
//! directory is not in git); needs `--features generated`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinyrnn_firmware::define_cases;
use tinyrnn_firmware::harness::{run_cases, Options};

include!("../../generated/bench/cases.rs");

#[entry]
fn main() -> ! {
    run_cases(
        cases(),
        Options {
            write_outputs: false,
            max_timed_steps: 16,
        },
    )
}
