//! PyTorch `torch.save(model.state_dict(), path)` files (`.pt`, `.pth`, any extension).
//!
//! Two serialisations exist, and both are read:
//!
//! * **zip** (the default since PyTorch 1.6): an uncompressed zip with one top-level folder
//!   holding `data.pkl` (the pickled `OrderedDict`, each tensor a `_rebuild_tensor_v2` call on a
//!   storage named by a persistent id `("storage", torch.FloatStorage, key, location, numel)`),
//!   `data/<key>` (each storage's raw bytes) and `byteorder` (`little` or `big`; absent in files
//!   older than PyTorch 2.1, which are little-endian);
//! * **legacy** (`_use_new_zipfile_serialization=False`): five pickles one after another —
//!   magic number, protocol version, system info, the `OrderedDict`, the list of storage keys —
//!   followed by each storage as an 8-byte element count and its raw bytes, both little-endian.
//!
//! Tensors are strided views into storages: each is gathered element by element through its
//! storage offset, sizes and strides, so transposed or sliced views (`w.t()`) come out in
//! row-major order. f32, f64, f16 and bf16 become `f32`. Only a dict of tensors is accepted;
//! the pickle is read by [`super::pickle`], which executes nothing.

use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read};

use anyhow::{anyhow, bail, Result};

use super::pickle::{self, Id, Obj, Pickle, StorageDtype, StorageRef, TensorRef, SAVE_STATE_DICT};
use super::{decode_floats, Tensor, TensorMap, TensorValues};

/// The number the legacy format's first pickle holds.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;

/// Reads a zip-serialised `torch.save` file.
pub fn read_zip(bytes: &[u8]) -> Result<TensorMap> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| anyhow!("damaged or truncated zip archive ({e})"))?;
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("damaged zip archive ({e})"))?;
    let pkl = names
        .iter()
        .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .collect::<Vec<_>>();
    let pkl = match pkl.as_slice() {
        [one] => one.to_string(),
        [] => {
            if names
                .iter()
                .any(|n| n == "model.weights.h5" || n == "config.json")
            {
                bail!(
                    "a zip archive holding `{}`: a Keras .keras model, not a PyTorch file; \
                     convert it to ONNX with tf2onnx",
                    names.join("`, `")
                );
            }
            bail!(
                "a zip archive without `<name>/data.pkl`: not a PyTorch file (it holds `{}`)",
                names
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("`, `")
            )
        }
        many => bail!(
            "a zip archive with {} `data.pkl` files; expected one",
            many.len()
        ),
    };
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    if names.iter().any(|n| n == &format!("{prefix}constants.pkl")) {
        bail!(
            "a TorchScript archive (torch.jit.save), not a state_dict; save the weights with \
             {SAVE_STATE_DICT}"
        );
    }
    let mut read_entry = |name: &str| -> Result<Vec<u8>> {
        let mut f = archive
            .by_name(name)
            .map_err(|e| anyhow!("zip entry `{name}`: {e}"))?;
        let mut out = Vec::with_capacity(f.size().min(bytes.len() as u64) as usize);
        f.read_to_end(&mut out)
            .map_err(|e| anyhow!("zip entry `{name}`: {e}"))?;
        Ok(out)
    };
    let big_endian = match names.iter().any(|n| n == &format!("{prefix}byteorder")) {
        true => {
            let order = read_entry(&format!("{prefix}byteorder"))?;
            match order.as_slice() {
                b"little" => false,
                b"big" => true,
                other => bail!(
                    "`{prefix}byteorder` is `{}`; expected little or big",
                    String::from_utf8_lossy(other)
                ),
            }
        }
        false => false,
    };
    let data = read_entry(&pkl)?;
    let pickle =
        pickle::read(&data, 0, &mut |p, pid| storage_from_pid(p, pid, false)).map_err(|e| {
            if e.is::<pickle::Refusal>() {
                e
            } else {
                anyhow!("{pkl}: {e:#}")
            }
        })?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    tensor_map(
        &pickle,
        |s: &StorageRef| {
            if !storages.contains_key(&s.key) {
                let b = read_entry(&format!("{prefix}data/{}", s.key))?;
                storages.insert(s.key.clone(), b);
            }
            Ok(storages[&s.key].clone())
        },
        big_endian,
    )
}

/// Reads a legacy-serialised `torch.save` file (`_use_new_zipfile_serialization=False`).
pub fn read_legacy(bytes: &[u8]) -> Result<TensorMap> {
    let mut no_pid = |_: &Pickle, _: Id| -> Result<Obj> { bail!("unexpected persistent id") };
    let magic = pickle::read(bytes, 0, &mut no_pid)?;
    if magic.get(magic.root) != &Obj::Int(LEGACY_MAGIC) {
        bail!(
            "a pickle that is not a PyTorch file (it holds a {} where torch.save writes its \
             magic number); only state_dicts saved with torch.save are read",
            magic.kind(magic.root)
        );
    }
    let version = pickle::read(bytes, magic.end, &mut no_pid)?;
    if version.get(version.root) != &Obj::Int(1001) {
        bail!(
            "PyTorch legacy format version {:?}; expected 1001",
            version.get(version.root)
        );
    }
    // System info (endianness, type sizes): informational only, as PyTorch writes the storage
    // sizes and bytes of this format little-endian on every host.
    let sys_info = pickle::read(bytes, version.end, &mut no_pid)?;
    let body = pickle::read(bytes, sys_info.end, &mut |p, pid| {
        storage_from_pid(p, pid, true)
    })?;
    let keys = pickle::read(bytes, body.end, &mut no_pid)?;
    let key_list: Vec<String> = match keys.get(keys.root) {
        Obj::List(ids) => ids
            .iter()
            .map(|&id| match keys.get(id) {
                Obj::Str(s) => Ok(s.clone()),
                o => bail!("a storage key is a {o:?}"),
            })
            .collect::<Result<_>>()?,
        _ => bail!("the storage key list is a {}", keys.kind(keys.root)),
    };
    // The storages follow in key order, each as an element count and its bytes; their element
    // sizes come from the tensors that use them.
    let elem_size: HashMap<&str, usize> = body
        .objects
        .iter()
        .filter_map(|o| match o {
            Obj::Storage(s) => Some((s.key.as_str(), s.dtype.size())),
            _ => None,
        })
        .collect();
    let mut pos = keys.end;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for key in &key_list {
        let size = *elem_size
            .get(key.as_str())
            .ok_or_else(|| anyhow!("storage `{key}` is listed but no tensor uses it"))?;
        let count = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| anyhow!("the file ends before storage `{key}` (truncated file?)"))?;
        let mut c = [0u8; 8];
        c.copy_from_slice(count);
        let count = u64::from_le_bytes(c);
        let len = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(size))
            .filter(|&n| n <= bytes.len() - pos - 8)
            .ok_or_else(|| {
                anyhow!(
                    "storage `{key}` claims {count} elements, more than the file holds \
                     (truncated file?)"
                )
            })?;
        storages.insert(key.clone(), bytes[pos + 8..pos + 8 + len].to_vec());
        pos += 8 + len;
    }
    tensor_map(
        &body,
        |s: &StorageRef| {
            storages
                .get(&s.key)
                .cloned()
                .ok_or_else(|| anyhow!("storage `{}` is not in the file", s.key))
        },
        false,
    )
}

/// Interprets a persistent id `("storage", torch.<T>Storage, key, location, numel[, view])`.
fn storage_from_pid(p: &Pickle, pid: Id, legacy: bool) -> Result<Obj> {
    let Obj::Tuple(items) = p.get(pid) else {
        bail!("a persistent id is a {}, expected a tuple", p.kind(pid));
    };
    let text = |id: Id| match p.get(id) {
        Obj::Str(s) => Some(s.clone()),
        _ => None,
    };
    if items.len() < 5 || text(items[0]).as_deref() != Some("storage") {
        bail!("a persistent id that is not a storage");
    }
    let dtype = match p.get(items[1]) {
        Obj::Global(pickle::Global::Storage(name)) => pickle::storage_dtype(name),
        o => bail!("a storage of type {o:?}"),
    };
    let key = text(items[2]).ok_or_else(|| anyhow!("a storage key is not a string"))?;
    let numel = match p.get(items[4]) {
        Obj::Int(n) => usize::try_from(*n).ok(),
        _ => None,
    };
    if legacy && items.len() > 5 && p.get(items[5]) != &Obj::None {
        bail!("storage `{key}` is a view of another storage (PyTorch < 0.4 files are not read)");
    }
    Ok(Obj::Storage(StorageRef { dtype, key, numel }))
}

/// Builds the tensor map from an unpickled state_dict; `storage` returns a storage's bytes.
fn tensor_map(
    p: &Pickle,
    mut storage: impl FnMut(&StorageRef) -> Result<Vec<u8>>,
    big_endian: bool,
) -> Result<TensorMap> {
    let Obj::Dict { items, .. } = p.get(p.root) else {
        bail!(
            "the file holds {}, not a state_dict (a dict of tensors); save the weights with \
             {SAVE_STATE_DICT}",
            a(&p.kind(p.root))
        );
    };
    let text = |id: Id| match p.get(id) {
        Obj::Str(s) => Some(s.clone()),
        _ => None,
    };
    // A training checkpoint holds the state_dict as one of its values.
    let nested = items.iter().find(|&&(_, v)| match p.get(v) {
        Obj::Dict { items: inner, .. } => inner
            .iter()
            .any(|&(_, x)| matches!(p.get(x), Obj::Tensor(_))),
        _ => false,
    });
    if let Some(&(k, _)) = nested {
        let names: Vec<String> = items
            .iter()
            .filter_map(|&(k, _)| text(k).map(|s| format!("`{s}`")))
            .collect();
        bail!(
            "a checkpoint dict (keys {}), not a state_dict; save the model's weights alone: \
             torch.save(checkpoint[\"{}\"], \"m.pt\")",
            names.join(", "),
            text(k).unwrap_or_default()
        );
    }
    let mut map = TensorMap::default();
    let mut keys = BTreeMap::new();
    for &(k, v) in items {
        let key = text(k)
            .ok_or_else(|| anyhow!("a state_dict key is {}, not a string", a(&p.kind(k))))?;
        match p.get(v) {
            Obj::Tensor(t) => {
                keys.insert(key, t.clone());
            }
            _ => bail!(
                "state_dict entry `{key}` is {}, not a tensor; save the weights with \
                 {SAVE_STATE_DICT}",
                a(&p.kind(v))
            ),
        }
    }
    for (key, t) in keys {
        let bytes = storage(&t.storage).map_err(|e| anyhow!("tensor `{key}`: {e:#}"))?;
        let tensor =
            gather(&t, &bytes, big_endian).map_err(|e| anyhow!("tensor `{key}`: {e:#}"))?;
        map.insert(key, tensor);
    }
    Ok(map)
}

/// `a list`, `an int`, `None`: a kind with its article.
fn a(kind: &str) -> String {
    match kind {
        "None" => kind.to_string(),
        k if k.starts_with(['a', 'e', 'i', 'o', 'u', 'A', 'E', 'I', 'O', 'U']) => format!("an {k}"),
        k => format!("a {k}"),
    }
}

/// Reads a strided view into row-major `f32` values.
fn gather(t: &TensorRef, bytes: &[u8], big_endian: bool) -> Result<Tensor> {
    let StorageDtype::Float(ty) = t.storage.dtype else {
        let StorageDtype::Other(name, _) = t.storage.dtype else {
            unreachable!()
        };
        return Ok(Tensor {
            shape: t.size.clone(),
            values: TensorValues::NotFloat(name.to_string()),
        });
    };
    let esize = ty.size();
    let available = bytes.len() / esize;
    if let Some(n) = t.storage.numel {
        if n > available {
            bail!("its storage has {available} elements but the file says {n} (truncated file?)");
        }
    }
    let numel: usize = t
        .size
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| anyhow!("its size {:?} overflows", t.size))?;
    if numel == 0 {
        return Ok(Tensor::f32(t.size.clone(), Vec::new()));
    }
    // A view with more elements than its storage repeats elements (an expanded, stride-0
    // view): no state_dict holds one, and it would let a small file claim a huge tensor.
    if numel > available {
        bail!(
            "its view (size {:?}, stride {:?}) has {numel} elements, more than its storage's \
             {available}",
            t.size,
            t.stride
        );
    }
    // The furthest element the view reaches must lie in the storage.
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| a.checked_add(x))
        })
        .ok_or_else(|| anyhow!("its strides overflow"))?;
    if last >= available {
        bail!(
            "its view (offset {}, size {:?}, stride {:?}) reaches element {last} of a storage of \
             {available}",
            t.offset,
            t.size,
            t.stride
        );
    }
    let contiguous = {
        let mut expect = 1usize;
        let mut ok = true;
        for (&d, &s) in t.size.iter().zip(&t.stride).rev() {
            if d != 1 && s != expect {
                ok = false;
            }
            expect *= d;
        }
        ok
    };
    let values = if contiguous {
        decode_floats(
            &bytes[t.offset * esize..(t.offset + numel) * esize],
            ty,
            big_endian,
        )
    } else {
        let mut out = Vec::with_capacity(numel);
        let mut index = vec![0usize; t.size.len()];
        for _ in 0..numel {
            let at = t.offset
                + index
                    .iter()
                    .zip(&t.stride)
                    .map(|(i, s)| i * s)
                    .sum::<usize>();
            out.push(ty.decode(&bytes[at * esize..(at + 1) * esize], big_endian));
            for d in (0..index.len()).rev() {
                index[d] += 1;
                if index[d] < t.size[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        out
    };
    Ok(Tensor::f32(t.size.clone(), values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::FloatType;

    fn view(offset: usize, size: &[usize], stride: &[usize]) -> TensorRef {
        TensorRef {
            storage: StorageRef {
                dtype: StorageDtype::Float(FloatType::F32),
                key: "0".into(),
                numel: None,
            },
            offset,
            size: size.to_vec(),
            stride: stride.to_vec(),
        }
    }

    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn gathers_transposed_and_offset_views() {
        let storage = bytes(&[0., 1., 2., 3., 4., 5., 6.]);
        // A 2x3 tensor at offset 1, and its transpose (3x2, strides (1, 3)).
        let t = gather(&view(1, &[2, 3], &[3, 1]), &storage, false).unwrap();
        assert_eq!(t.values, TensorValues::F32(vec![1., 2., 3., 4., 5., 6.]));
        let t = gather(&view(1, &[3, 2], &[1, 3]), &storage, false).unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.values, TensorValues::F32(vec![1., 4., 2., 5., 3., 6.]));
        // Every other element (a strided slice).
        let t = gather(&view(0, &[4], &[2]), &storage, false).unwrap();
        assert_eq!(t.values, TensorValues::F32(vec![0., 2., 4., 6.]));
    }

    #[test]
    fn a_view_past_its_storage_is_an_error() {
        let storage = bytes(&[0., 1., 2.]);
        let e = gather(&view(1, &[3], &[1]), &storage, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("reaches element 3 of a storage of 3"), "{e}");
    }

    #[test]
    fn a_view_larger_than_its_storage_is_an_error() {
        let storage = bytes(&[0., 1.]);
        let e = gather(&view(0, &[1_000_000_000], &[0]), &storage, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than its storage's 2"), "{e}");
    }

    #[test]
    fn big_endian_storages_are_swapped() {
        let storage: Vec<u8> = [1.5f32, -3.0]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        let t = gather(&view(0, &[2], &[1]), &storage, true).unwrap();
        assert_eq!(t.values, TensorValues::F32(vec![1.5, -3.0]));
    }
}
