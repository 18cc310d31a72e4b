//! libFuzzer entry of the `csv_sequence` target; the target is defined in
//! `tinyrnn_tests::fuzz_harness::csv_sequence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyrnn_tests::fuzz_harness::csv_sequence(data));
