//! One module per `tinyrnn` subcommand: its `clap` arguments and its entry point.

pub mod bench;
pub mod eval;
pub mod export;
pub mod quantize;
pub mod run;
pub mod train;
pub mod verify;
