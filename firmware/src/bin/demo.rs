//! The `cargo xtask demo` firmware: classifies recordings streamed from the host, one sample per
//! step, with the state reset between recordings (see `tinyrnn_firmware::harness`).
//!
//! Built by `cargo xtask demo` after it has written `firmware/generated/demo/cases.rs` (that
//! directory is not in git); needs `--features generated`. The host writes the recordings to
//! `case<i>.in`, their lengths to `case<i>.seq`, and reads every step's outputs back from
//! `case<i>.out`; the class of each recording is logged through defmt.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use tinyrnn_firmware::define_cases;
use tinyrnn_firmware::harness::{run_cases, Options};

include!("../../generated/demo/cases.rs");

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
