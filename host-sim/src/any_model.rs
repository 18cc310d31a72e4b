//! Any model file, loaded into the numeric type its metadata names.

use std::path::Path;

use anyhow::{Context, Result};
use tinyrnn::{F32Fast, F32, Q15, W8A16};

use crate::dataset::Series;
use crate::model_file::{FloatModel, Nonlinearity};
use crate::quantize::QuantModel;
use crate::runtime_model::RuntimeModel;

/// A model file as stored: `f32` (PyTorch layout) or quantised.
///
/// The one place that decides which of the two a file is (its metadata has
/// `tinyrnn.numeric` or not), so that every subcommand reads files by the same rules.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelFile {
    /// An `f32` model.
    Float(FloatModel),
    /// A q15 or w8a16 model.
    Quant(QuantModel),
}

impl ModelFile {
    /// Parses either kind of file. `nonlinearity` is a plain RNN's nonlinearity when the file
    /// does not store it; it must agree with the file when it does (see
    /// [`crate::model_file`]).
    pub fn from_bytes(bytes: &[u8], nonlinearity: Option<Nonlinearity>) -> Result<ModelFile> {
        Self::from_bytes_in(bytes, None, nonlinearity)
    }

    /// [`ModelFile::from_bytes`] for a file read from directory `dir` (where an ONNX model's
    /// external data files are).
    pub fn from_bytes_in(
        bytes: &[u8],
        dir: Option<&Path>,
        nonlinearity: Option<Nonlinearity>,
    ) -> Result<ModelFile> {
        Ok(if crate::import::is_quantized(bytes)? {
            ModelFile::Quant(QuantModel::from_bytes_with(bytes, nonlinearity)?)
        } else {
            ModelFile::Float(FloatModel::from_bytes_in(bytes, dir, nonlinearity)?)
        })
    }

    /// Reads and parses a file of any format [`crate::import`] reads; errors name the file.
    pub fn load(path: &Path, nonlinearity: Option<Nonlinearity>) -> Result<ModelFile> {
        let bytes =
            std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
        Self::from_bytes_in(&bytes, path.parent(), nonlinearity)
            .with_context(|| path.display().to_string())
    }

    /// The class names the file stores (empty if none).
    pub fn class_names(&self) -> &[String] {
        match self {
            ModelFile::Float(m) => &m.meta.class_names,
            ModelFile::Quant(q) => &q.meta.class_names,
        }
    }
}

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
        let file = ModelFile::load(path, nonlinearity)?;
        AnyModel::from_file(&file, fast).with_context(|| path.display().to_string())
    }

    /// The runnable model of a parsed file; `fast` selects the fast activations for `f32`.
    pub fn from_file(file: &ModelFile, fast: bool) -> Result<AnyModel> {
        Ok(match file {
            ModelFile::Quant(q) => match q.to_runtime()? {
                crate::quantize::QuantRuntime::Q15(m) => AnyModel::Q15(m),
                crate::quantize::QuantRuntime::W8a16(m) => AnyModel::W8a16(m),
            },
            ModelFile::Float(float) if fast => {
                AnyModel::F32Fast(RuntimeModel::from_float_with(float, |_| ())?)
            }
            ModelFile::Float(float) => AnyModel::F32(RuntimeModel::from_float(float)?),
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
