//! Sigmoid and tanh: accurate and fast `f32` versions, and fixed-point table versions.
//!
//! Every approximation states its maximum error here and has a test that holds it to it.

pub mod fixed;
pub mod float;
