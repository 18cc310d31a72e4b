//! libFuzzer entry of the `ts` target; the target is defined in
//! `tinyrnn_tests::fuzz_harness::ts`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyrnn_tests::fuzz_harness::ts(data));
