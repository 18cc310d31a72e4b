//! Any model file, loaded into the numeric type its metadata names.

use std::path::Path;

use anyhow::{Context, Result};
use tinyrnn::{F32Fast, F32};

use crate::dataset::Series;
use crate::model_file::{FloatModel, Nonlinearity};
use crate::runtime_model::RuntimeModel;

/// A runtime model in one of the numeric types.
#[derive(Clone, Debug)]
pub enum AnyModel {
    /// `f32`, accurate activations.
    F32(RuntimeModel<F32>),
    /// `f32`, fast activations.
    F32Fast(RuntimeModel<F32Fast>),
}

/// Calls `$body` with `$m` bound to the inner runtime model, whatever its numeric type.
#[macro_export]
macro_rules! with_model {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            $crate::any_model::AnyModel::F32($m) => $body,
            $crate::any_model::AnyModel::F32Fast($m) => $body,
        }
    };
}

impl AnyModel {
    /// Loads a model file; `fast` selects the fast activations for `f32` models.
    pub fn load(path: &Path, nonlinearity: Option<Nonlinearity>, fast: bool) -> Result<AnyModel> {
        let float = FloatModel::load(path, nonlinearity)?;
        let ctx = || path.display().to_string();
        Ok(if fast {
            AnyModel::F32Fast(RuntimeModel::from_float_with(&float).with_context(ctx)?)
        } else {
            AnyModel::F32(RuntimeModel::from_float(&float).with_context(ctx)?)
        })
    }

    /// Input features per step.
    pub fn input_size(&self) -> usize {
        with_model!(self, m => m.input_size())
    }

    /// Values per step.
    pub fn output_size(&self) -> usize {
        with_model!(self, m => m.output_size())
    }

    /// Every step's outputs for one series, as real values.
    pub fn run_real(&self, series: &Series) -> Vec<Vec<f64>> {
        with_model!(self, m => m.run_real(series.rows()))
    }
}
