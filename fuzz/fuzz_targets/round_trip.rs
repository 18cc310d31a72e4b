//! libFuzzer entry of the `round_trip` target; the target is defined in
//! `tinyrnn_tests::fuzz_harness::round_trip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyrnn_tests::fuzz_harness::round_trip(data));
