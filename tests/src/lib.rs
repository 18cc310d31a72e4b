//! Shared helpers for the cross-crate tests live in `tests/tests/*.rs`; this crate has no library code.
