//! Host simulator for `tinyrnn`: model files, datasets, training, quantisation, export and
//! on-target verification. The `tinyrnn` binary (`src/main.rs`) is a thin `clap` front end over
//! these modules.

pub mod any_model;
pub mod cmd;
pub mod dataset;
pub mod evaluation;
pub mod export;
pub mod import;
pub mod model_file;
pub mod output_file;
pub mod quantize;
pub mod quote;
pub mod runtime_model;
pub mod target;
pub mod train;
