//! Model file readers: safetensors, PyTorch `.pt`/`.pth` and ONNX, each turned into one neutral
//! [`TensorMap`] in PyTorch `state_dict` naming and layout, which
//! [`crate::model_file::FloatModel`] parses.
//!
//! The format is recognised by the file's content, never by its extension
//! ([`ModelFormat::sniff`]): a user's `model.pt` that really is an ONNX file still loads, and a
//! file that is none of them is refused with a line saying what its first bytes look like.
//!
//! * safetensors: the tensors as stored, `__metadata__` as [`TensorMap::metadata`];
//! * PyTorch ([`torch`]): `torch.save(model.state_dict(), path)` in the zip serialisation (the
//!   default since PyTorch 1.6) and the legacy one (`_use_new_zipfile_serialization=False`);
//! * ONNX ([`onnx`]): the `LSTM`/`GRU`/`RNN` operators with an optional linear head, converted to
//!   PyTorch's gate order and key names.

pub mod onnx;
mod onnx_proto;
mod pickle;
pub mod torch;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::Dtype;

/// The values of one tensor, converted to `f32` when they are floating point.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorValues {
    /// Row-major (C order) values; f64, f16 and bf16 are converted to `f32`.
    F32(Vec<f32>),
    /// A tensor of a non-float dtype (named, e.g. `int64`): kept so that a model that does not
    /// use it still loads, and one that does gets an error naming its dtype.
    NotFloat(String),
}

/// One named tensor: shape and values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in row-major order.
    pub values: TensorValues,
}

impl Tensor {
    /// An `f32` tensor.
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Tensor {
        Tensor {
            shape,
            values: TensorValues::F32(values),
        }
    }
}

/// A model's tensors in PyTorch `state_dict` naming and layout, plus metadata strings
/// (safetensors `__metadata__` entries, or what a reader learnt from its format, e.g.
/// `tinyrnn.nonlinearity` from an ONNX `RNN` node's activations).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorMap {
    /// Tensors by key (`rnn.weight_ih_l0`, `head.bias`, …).
    pub tensors: BTreeMap<String, Tensor>,
    /// Metadata strings (`tinyrnn.*` keys and any others).
    pub metadata: BTreeMap<String, String>,
}

impl TensorMap {
    /// The tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Adds (or replaces) a tensor.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.tensors.insert(name.into(), tensor);
    }
}

/// The model file formats the readers understand, as recognised from the content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// safetensors (8-byte header length, then a JSON header).
    SafeTensors,
    /// PyTorch zip serialisation (`torch.save` since 1.6): a zip archive.
    TorchZip,
    /// PyTorch legacy serialisation: a sequence of pickles (protocol byte `0x80`).
    TorchLegacy,
    /// ONNX: a protobuf `ModelProto`.
    Onnx,
}

impl ModelFormat {
    /// Recognises the format from the first bytes of a file; an error says what was found.
    pub fn sniff(bytes: &[u8]) -> Result<ModelFormat> {
        if bytes.is_empty() {
            bail!("the file is empty: {EXPECTED}");
        }
        if bytes.starts_with(b"PK\x03\x04")
            || bytes.starts_with(b"PK\x05\x06")
            || bytes.starts_with(b"PK\x07\x08")
        {
            return Ok(ModelFormat::TorchZip);
        }
        // The JSON header begins right after its 8-byte length (a header that is claimed longer
        // than the file is still safetensors: truncated, and the safetensors reader says so).
        if bytes.len() > 8 && bytes[8] == b'{' && header_len(bytes) <= MAX_SAFETENSORS_HEADER {
            return Ok(ModelFormat::SafeTensors);
        }
        // Every pickle protocol ≥ 2 starts with PROTO (0x80) and its version.
        if bytes.len() > 1 && bytes[0] == 0x80 && (2..=5).contains(&bytes[1]) {
            return Ok(ModelFormat::TorchLegacy);
        }
        if onnx::looks_like_onnx(bytes) {
            return Ok(ModelFormat::Onnx);
        }
        bail!("{EXPECTED}; {}", describe_start(bytes))
    }
}

/// The largest header length taken for safetensors (its own reader's limit).
const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;

/// The little-endian `u64` a safetensors file starts with.
fn header_len(bytes: &[u8]) -> u64 {
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(n)
}

/// What a model file may be, for the unknown-format error.
const EXPECTED: &str = "not a safetensors file, PyTorch .pt/.pth file or ONNX model";

/// Says what a file that is no model file looks like, for the error line.
fn describe_start(bytes: &[u8]) -> String {
    let known: &[(&[u8], usize, &str)] = &[
        (
            b"\x89HDF\r\n\x1a\n",
            0,
            "an HDF5 file (Keras .h5? convert it with tf2onnx)",
        ),
        (b"TFL3", 4, "a TensorFlow Lite flatbuffer"),
        (b"\x1f\x8b", 0, "gzip-compressed data"),
        (b"\x93NUMPY", 0, "a NumPy .npy array"),
    ];
    for (magic, at, what) in known {
        if bytes.len() >= at + magic.len() && &bytes[*at..at + magic.len()] == *magic {
            return format!("it is {what}");
        }
    }
    let head = &bytes[..bytes.len().min(16)];
    if head
        .iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\n' || *b == b'\t' || *b == b'\r')
    {
        let text: String = head
            .iter()
            .map(|&b| {
                if b.is_ascii_whitespace() {
                    ' '
                } else {
                    b as char
                }
            })
            .collect();
        return format!("it starts with the text `{}`", text.trim_end());
    }
    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("it starts with the bytes {}", hex.join(" "))
}

/// Reads the tensors of a model file of any format. `path` locates ONNX external data (a
/// `location` is relative to the model file's directory).
pub fn read_path(path: &Path) -> Result<TensorMap> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read file", path.display()))?;
    read_bytes(&bytes, path.parent()).map_err(|e| anyhow!("{}: {e:#}", path.display()))
}

/// Reads the tensors of a model file held in memory. `dir` is the directory ONNX external data
/// is looked up in (`None`: a model with external data is an error).
pub fn read_bytes(bytes: &[u8], dir: Option<&Path>) -> Result<TensorMap> {
    match ModelFormat::sniff(bytes)? {
        ModelFormat::SafeTensors => read_safetensors(bytes),
        ModelFormat::TorchZip => torch::read_zip(bytes),
        ModelFormat::TorchLegacy => torch::read_legacy(bytes),
        ModelFormat::Onnx => onnx::read(bytes, dir),
    }
}

/// Is this a quantised `tinyrnn` model file? Only safetensors files can be; every other format is
/// a float model.
pub fn is_quantized(bytes: &[u8]) -> Result<bool> {
    match ModelFormat::sniff(bytes)? {
        ModelFormat::SafeTensors => crate::quantize::file::is_quantized(bytes),
        _ => Ok(false),
    }
}

/// Reads a safetensors file into a [`TensorMap`] (float dtypes converted to `f32`).
pub fn read_safetensors(bytes: &[u8]) -> Result<TensorMap> {
    // The container reader reports a key that appears twice in the header.
    let container = crate::model_file::read_container(bytes)?;
    let mut map = TensorMap {
        metadata: container.metadata,
        ..TensorMap::default()
    };
    for name in &container.names {
        let view = container
            .tensors
            .tensor(name)
            .map_err(|e| anyhow!("tensor `{}`: {e}", crate::quote::shorten(name)))?;
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => TensorValues::F32(decode_floats(data, FloatType::F32, false)),
            Dtype::F64 => TensorValues::F32(decode_floats(data, FloatType::F64, false)),
            Dtype::F16 => TensorValues::F32(decode_floats(data, FloatType::F16, false)),
            Dtype::BF16 => TensorValues::F32(decode_floats(data, FloatType::BF16, false)),
            other => TensorValues::NotFloat(format!("{other:?}")),
        };
        map.insert(
            name.clone(),
            Tensor {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Ok(map)
}

/// The floating-point element types the readers convert to `f32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloatType {
    F32,
    F64,
    F16,
    BF16,
}

impl FloatType {
    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            FloatType::F32 => 4,
            FloatType::F64 => 8,
            FloatType::F16 | FloatType::BF16 => 2,
        }
    }

    /// Decodes one element from exactly [`FloatType::size`] bytes.
    pub(crate) fn decode(self, b: &[u8], big_endian: bool) -> f32 {
        let mut buf = [0u8; 8];
        let n = self.size();
        buf[..n].copy_from_slice(&b[..n]);
        if big_endian {
            buf[..n].reverse();
        }
        match self {
            FloatType::F32 => f32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]),
            FloatType::F64 => f64::from_le_bytes(buf) as f32,
            FloatType::F16 => half::f16::from_le_bytes([buf[0], buf[1]]).to_f32(),
            FloatType::BF16 => half::bf16::from_le_bytes([buf[0], buf[1]]).to_f32(),
        }
    }
}

/// Decodes a packed array of `ty` elements (a trailing partial element is ignored: callers check
/// lengths).
pub(crate) fn decode_floats(data: &[u8], ty: FloatType, big_endian: bool) -> Vec<f32> {
    data.chunks_exact(ty.size())
        .map(|b| ty.decode(b, big_endian))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_each_format_by_content() {
        let st = sample_safetensors();
        assert_eq!(ModelFormat::sniff(&st).unwrap(), ModelFormat::SafeTensors);
        assert_eq!(
            ModelFormat::sniff(b"PK\x03\x04rest").unwrap(),
            ModelFormat::TorchZip
        );
        assert_eq!(
            ModelFormat::sniff(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.").unwrap(),
            ModelFormat::TorchLegacy
        );
        // ir_version 8, then producer_name "x".
        assert_eq!(
            ModelFormat::sniff(b"\x08\x08\x12\x01x").unwrap(),
            ModelFormat::Onnx
        );
    }

    #[test]
    fn unknown_formats_say_what_they_look_like() {
        let e = ModelFormat::sniff(b"").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = ModelFormat::sniff(b"hello, world\n1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a safetensors file"), "{e}");
        assert!(e.contains("the text `hello, world 1,2`"), "{e}");
        let e = ModelFormat::sniff(b"\x89HDF\r\n\x1a\n\0\0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("HDF5"), "{e}");
        let e = ModelFormat::sniff(&[0u8, 1, 2, 250, 9, 9, 9, 9, 9, 9])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bytes 00 01 02 fa 09 09 09 09"), "{e}");
    }

    #[test]
    fn safetensors_float_dtypes_become_f32() {
        let bytes = sample_safetensors();
        let map = read_safetensors(&bytes).unwrap();
        let t = map.get("a").unwrap();
        assert_eq!(t.shape, vec![2]);
        assert_eq!(t.values, TensorValues::F32(vec![1.5, -2.0]));
        let h = map.get("h").unwrap();
        assert_eq!(h.values, TensorValues::F32(vec![1.0, -0.5]));
        assert_eq!(
            map.get("i").unwrap().values,
            TensorValues::NotFloat("I64".into())
        );
        assert_eq!(map.metadata.get("k").map(String::as_str), Some("v"));
    }

    /// A small safetensors file: f32, f16 and i64 tensors and one metadata entry.
    fn sample_safetensors() -> Vec<u8> {
        use safetensors::tensor::TensorView;
        let a: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let h: Vec<u8> = [half::f16::from_f32(1.0), half::f16::from_f32(-0.5)]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let i: Vec<u8> = 7i64.to_le_bytes().to_vec();
        let views = vec![
            ("a", TensorView::new(Dtype::F32, vec![2], &a).unwrap()),
            ("h", TensorView::new(Dtype::F16, vec![2], &h).unwrap()),
            ("i", TensorView::new(Dtype::I64, vec![1], &i).unwrap()),
        ];
        let meta = std::collections::HashMap::from([("k".to_string(), "v".to_string())]);
        safetensors::serialize(views, Some(meta)).unwrap()
    }
}
