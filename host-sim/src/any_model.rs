//! Any model file, loaded into the numeric type its metadata names.

use std::path::Path;

use anyhow::{Context, Result};
use tinyrnn::{F32Fast, F32, Q15, W8A16};

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
    /// 16-bit fixed point.
    Q15(RuntimeModel<Q15>),
    /// 8-bit weights, 16-bit activations.
    W8a16(RuntimeModel<W8A16>),
}

/// Calls `$body` with `$m` bound to the inner runtime model, whatever its numeric type.
#[macro_export]
macro_rules! with_model {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            $crate::any_model::AnyModel::F32($m) => $body,
            $crate::any_model::AnyModel::F32Fast($m) => $body,
            $crate::any_model::AnyModel::Q15($m) => $body,
            $crate::any_model::AnyModel::W8a16($m) => $body,
        }
    };
}

impl AnyModel {
    /// Loads a model file; `fast` selects the fast activations for `f32` models.
    pub fn load(path: &Path, nonlinearity: Option<Nonlinearity>, fast: bool) -> Result<AnyModel> {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
        let quantized =
            crate::import::is_quantized(&bytes).with_context(|| path.display().to_string())?;
        if quantized {
            let q = crate::quantize::QuantModel::from_bytes(&bytes)
                .with_context(|| path.display().to_string())?;
            return Ok(
                match q.to_runtime().with_context(|| path.display().to_string())? {
                    crate::quantize::QuantRuntime::Q15(m) => AnyModel::Q15(m),
                    crate::quantize::QuantRuntime::W8a16(m) => AnyModel::W8a16(m),
                },
            );
        }
        let float = FloatModel::from_bytes_in(&bytes, path.parent(), nonlinearity)
            .with_context(|| path.display().to_string())?;
        let ctx = || path.display().to_string();
        Ok(if fast {
            AnyModel::F32Fast(RuntimeModel::from_float_with(&float, |_| ()).with_context(ctx)?)
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

    /// Every step's outputs for one series, as raw bits (integers, or `f32` bit patterns).
    pub fn run_bits(&self, series: &Series) -> Vec<Vec<i64>> {
        with_model!(self, m => crate::export::golden_of(m, series.rows()).outputs)
    }
}
