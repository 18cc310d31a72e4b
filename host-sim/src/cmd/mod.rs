//! One module per `tinyrnn` subcommand: its `clap` arguments and its entry point.

pub mod bench;
pub mod eval;
pub mod export;
pub mod quantize;
pub mod run;
pub mod train;
pub mod verify;

use crate::dataset::{LoadOptions, MissingPolicy};

/// `--fill-missing`: what the dataset readers do with missing values of `.ts` files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FillMissing {
    /// Each missing value takes the previous value of its dimension; leading missing values
    /// take the first present one. A dimension with no value at all is still an error.
    Forward,
}

/// [`LoadOptions`] for an optional `--fill-missing` (without it, missing values are an error).
pub fn load_options(fill: Option<FillMissing>) -> LoadOptions {
    LoadOptions {
        missing: match fill {
            None => MissingPolicy::Error,
            Some(FillMissing::Forward) => MissingPolicy::FillForward,
        },
    }
}
