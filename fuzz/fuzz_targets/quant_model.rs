//! libFuzzer entry of the `quant_model` target; the target is defined in
//! `tinyrnn_tests::fuzz_harness::quant_model`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyrnn_tests::fuzz_harness::quant_model(data));
