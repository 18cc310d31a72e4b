//! On-target verification of generated models (see `tinyrnn_firmware::harness`).
//!
//! Built by `tinyrnn verify` after it has written `firmware/generated/verify/cases.rs` (that
//! directory is not in git); needs `--features generated`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinyrnn_firmware::define_cases;
use tinyrnn_firmware::harness::{run_cases, Options};

include!("../../generated/verify/cases.rs");

#[entry]
fn main() -> ! {
    run_cases(
        cases(),
        Options {
            write_outputs: true,
            max_timed_steps: 16,
        },
    )
}
