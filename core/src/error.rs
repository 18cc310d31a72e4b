//! Errors raised when weights are assembled from slices (never by `step`).

use core::fmt;

/// A slice handed to a weights constructor does not have the length the sizes imply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ShapeError {
    /// `input_size` or `hidden_size` (or a head's size) is zero.
    ZeroSize,
    /// A tensor has the wrong number of elements.
    Length {
        /// Which tensor (`w_ih`, `w_hh`, `bias`, `scale_ih`, ...).
        tensor: &'static str,
        /// Elements expected from the sizes.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
    /// A fixed-point format is outside the range the kernels support.
    Format {
        /// Which format field.
        field: &'static str,
        /// Its value.
        value: i32,
    },
    /// A layer's input size does not match the previous layer's output size.
    Chain {
        /// Index of the offending layer.
        layer: usize,
        /// The input size it expects.
        expected: usize,
        /// What the previous layer produces.
        actual: usize,
    },
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShapeError::ZeroSize => write!(f, "a layer size is zero"),
            ShapeError::Length {
                tensor,
                expected,
                actual,
            } => {
                write!(f, "`{tensor}` has {actual} elements; expected {expected}")
            }
            ShapeError::Format { field, value } => {
                write!(f, "fixed-point format `{field}` = {value} is out of range")
            }
            ShapeError::Chain {
                layer,
                expected,
                actual,
            } => write!(
                f,
                "layer {layer} expects {expected} inputs but the previous layer gives {actual}"
            ),
        }
    }
}

impl core::error::Error for ShapeError {}

/// Checks `slice.len() == expected`.
pub(crate) fn check_len<T>(
    tensor: &'static str,
    slice: &[T],
    expected: usize,
) -> Result<(), ShapeError> {
    if slice.len() == expected {
        Ok(())
    } else {
        Err(ShapeError::Length {
            tensor,
            expected,
            actual: slice.len(),
        })
    }
}
