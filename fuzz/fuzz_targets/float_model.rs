//! libFuzzer entry of the `float_model` target; the target is defined in
//! `tinyrnn_tests::fuzz_harness::float_model`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyrnn_tests::fuzz_harness::float_model(data));
