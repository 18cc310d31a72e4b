//! A restricted pickle reader for PyTorch `state_dict` files.
//!
//! Why not a crate: `serde-pickle` (the maintained pickle crate) implements neither
//! `BINPERSID` (PyTorch stores every tensor's storage as a persistent id) nor named globals (it
//! folds every global it does not know into one opaque value, so `_rebuild_tensor_v2` cannot be
//! told from a user's class). Loading a state_dict needs both, so this module is a small pickle
//! machine for the opcodes that `pickle` protocols 2–5 use for dicts, tuples, lists, numbers,
//! strings and tensors.
//!
//! Nothing from the file is executed. A global is only a name: the handful that a state_dict
//! uses (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, the `torch.*Storage`
//! types, …) are recognised and evaluated here by rules of our own; any other global is refused,
//! and a class of a user's module (`__main__.Net`, `torch.nn.*`) is reported as a pickled whole
//! module with the Python line that saves a state_dict instead.
//!
//! Objects live in an arena and the stack and memo hold indices, so that a container filled
//! after it was memoised (`EMPTY_DICT`, `BINPUT`, `SETITEMS`) is the same object wherever it is
//! referenced, and a file cannot make the reader copy a value exponentially often.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};

use super::FloatType;

/// Index of an object in [`Pickle::objects`].
pub(crate) type Id = usize;

/// The element type of a PyTorch storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StorageDtype {
    /// A floating-point storage, converted to `f32`.
    Float(FloatType),
    /// Any other storage (named like PyTorch's dtype, e.g. `int64`), with its element size.
    Other(&'static str, usize),
}

impl StorageDtype {
    /// Bytes per element.
    pub(crate) fn size(&self) -> usize {
        match self {
            StorageDtype::Float(f) => f.size(),
            StorageDtype::Other(_, s) => *s,
        }
    }
}

/// A storage referenced by a persistent id: which record holds its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StorageRef {
    /// Element type.
    pub dtype: StorageDtype,
    /// The storage's key (`archive/data/<key>` in a zip file).
    pub key: String,
    /// Elements, where the persistent id says.
    pub numel: Option<usize>,
}

/// A tensor: a strided view into a storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TensorRef {
    /// The storage the values live in.
    pub storage: StorageRef,
    /// Offset of element `[0, 0, …]` in the storage, in elements.
    pub offset: usize,
    /// Dimensions.
    pub size: Vec<usize>,
    /// Stride of each dimension, in elements.
    pub stride: Vec<usize>,
}

/// The callables and classes a state_dict pickle may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Global {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2` / `_rebuild_tensor`.
    RebuildTensor,
    /// `torch._utils._rebuild_parameter` / `_rebuild_parameter_with_state`.
    RebuildParameter,
    /// `_codecs.encode` (protocol 2 pickles `bytes` as `encode(str, "latin1")`).
    Encode,
    /// A `torch.<Type>Storage` class, named in a persistent id.
    Storage(&'static str),
}

/// A pickled object.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Obj {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    /// `dict` or `collections.OrderedDict` (`ordered`), items in insertion order.
    Dict {
        ordered: bool,
        items: Vec<(Id, Id)>,
    },
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// The objects of one unpickled value.
#[derive(Debug)]
pub(crate) struct Pickle {
    /// Every object created, referenced by [`Id`].
    pub objects: Vec<Obj>,
    /// The value the pickle produced.
    pub root: Id,
    /// Offset just past the `STOP` opcode (the legacy format puts pickles one after another).
    pub end: usize,
}

impl Pickle {
    /// The object `id`.
    pub(crate) fn get(&self, id: Id) -> &Obj {
        &self.objects[id]
    }

    /// A short name for the kind of object `id`, for error messages.
    pub(crate) fn kind(&self, id: Id) -> String {
        kind_of(&self.objects[id])
    }
}

fn kind_of(obj: &Obj) -> String {
    match obj {
        Obj::None => "None".into(),
        Obj::Bool(_) => "bool".into(),
        Obj::Int(_) => "int".into(),
        Obj::Float(_) => "float".into(),
        Obj::Str(_) => "str".into(),
        Obj::Bytes(_) => "bytes".into(),
        Obj::Tuple(_) => "tuple".into(),
        Obj::List(_) => "list".into(),
        Obj::Dict { ordered: true, .. } => "OrderedDict".into(),
        Obj::Dict { ordered: false, .. } => "dict".into(),
        Obj::Global(g) => format!("{g:?}"),
        Obj::Storage(_) => "storage".into(),
        Obj::Tensor(_) => "tensor".into(),
    }
}

/// An error about what the pickle holds (a refused global), said to the user as is: where in
/// the pickle it was found would not help them.
#[derive(Debug)]
pub(crate) struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// The Python line that turns a whole pickled module into a file this tool reads.
pub(crate) const SAVE_STATE_DICT: &str = "torch.save(model.state_dict(), \"m.pt\")";

/// Resolves a global by module and name, or refuses it.
fn global(module: &str, name: &str) -> Result<Global> {
    let storage = |n: &str| -> Option<&'static str> {
        const STORAGES: &[&str] = &[
            "FloatStorage",
            "DoubleStorage",
            "HalfStorage",
            "BFloat16Storage",
            "LongStorage",
            "IntStorage",
            "ShortStorage",
            "CharStorage",
            "ByteStorage",
            "BoolStorage",
            "ComplexFloatStorage",
            "ComplexDoubleStorage",
            "UntypedStorage",
        ];
        STORAGES.iter().copied().find(|s| *s == n)
    };
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            Global::RebuildParameter
        }
        ("_codecs", "encode") => Global::Encode,
        ("torch" | "torch.storage", n) if storage(n).is_some() => {
            Global::Storage(storage(n).unwrap_or_default())
        }
        (m, n) if m == "__main__" || m.starts_with("torch.nn.") || m == "torch.nn" => {
            return Err(Refusal(format!(
                "this file holds a pickled whole module (`{m}.{n}`), not a state_dict; save the \
                 weights in Python with {SAVE_STATE_DICT} (or safetensors.torch.save_file(\
                 model.state_dict(), \"m.safetensors\"))"
            ))
            .into())
        }
        (m, n) => {
            return Err(Refusal(format!(
                "the pickle refers to `{m}.{n}`, which is not part of a state_dict of tensors \
                 (refused: nothing from the file is executed); if this is a whole model, save \
                 its weights with {SAVE_STATE_DICT}"
            ))
            .into())
        }
    })
}

/// The dtype of a `torch.<Type>Storage`.
pub(crate) fn storage_dtype(name: &str) -> StorageDtype {
    match name {
        "FloatStorage" => StorageDtype::Float(FloatType::F32),
        "DoubleStorage" => StorageDtype::Float(FloatType::F64),
        "HalfStorage" => StorageDtype::Float(FloatType::F16),
        "BFloat16Storage" => StorageDtype::Float(FloatType::BF16),
        "LongStorage" => StorageDtype::Other("int64", 8),
        "IntStorage" => StorageDtype::Other("int32", 4),
        "ShortStorage" => StorageDtype::Other("int16", 2),
        "CharStorage" => StorageDtype::Other("int8", 1),
        "BoolStorage" => StorageDtype::Other("bool", 1),
        "ComplexFloatStorage" => StorageDtype::Other("complex64", 8),
        "ComplexDoubleStorage" => StorageDtype::Other("complex128", 16),
        _ => StorageDtype::Other("uint8", 1),
    }
}

/// Turns a persistent id into the object it stands for (a storage).
pub(crate) type PersistentLoad<'a> = dyn FnMut(&Pickle, Id) -> Result<Obj> + 'a;

/// The machine's state while it reads one pickle.
struct Machine<'b> {
    bytes: &'b [u8],
    pos: usize,
    objects: Vec<Obj>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
}

/// Reads one pickle starting at `start`; `persistent_load` resolves `BINPERSID` ids.
pub(crate) fn read(
    bytes: &[u8],
    start: usize,
    persistent_load: &mut PersistentLoad<'_>,
) -> Result<Pickle> {
    let mut m = Machine {
        bytes,
        pos: start,
        objects: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let at = m.pos;
        let op = m.take(1).map_err(|_| truncated(at))?[0];
        m.step(op, persistent_load).map_err(|e| {
            if e.is::<Refusal>() {
                e
            } else {
                anyhow!("pickle, byte {at} (opcode {}): {e:#}", op_name(op))
            }
        })?;
        if op == b'.' {
            let root = m
                .stack
                .pop()
                .ok_or_else(|| anyhow!("pickle, byte {at}: STOP with an empty stack"))?;
            return Ok(Pickle {
                objects: m.objects,
                root,
                end: m.pos,
            });
        }
    }
}

fn truncated(at: usize) -> anyhow::Error {
    anyhow!("pickle ends at byte {at} before its STOP opcode (truncated file?)")
}

/// Opcode names of pickletools, for messages.
fn op_name(op: u8) -> String {
    let name = match op {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82..=0x84 => "EXT",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return format!("0x{op:02x}"),
    };
    name.to_string()
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| truncated(self.bytes.len()))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length field: must fit in the rest of the file.
    fn len(&mut self, n: u64) -> Result<usize> {
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.pos)
            .ok_or_else(|| truncated(self.bytes.len()))
    }

    /// A text line (protocol 0 arguments), without its newline.
    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| truncated(self.bytes.len()))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn string(&mut self, n: usize) -> Result<String> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| anyhow!("a string is not valid UTF-8"))
    }

    fn push(&mut self, obj: Obj) {
        self.objects.push(obj);
        self.stack.push(self.objects.len() - 1);
    }

    fn pop(&mut self) -> Result<Id> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            bail!("the stack is empty");
        }
        Ok(self.stack.pop().unwrap_or_default())
    }

    fn top(&self) -> Result<Id> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| anyhow!("the stack is empty"))
    }

    /// Pops everything above the last MARK, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| anyhow!("no MARK to pop to"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn memo_put(&mut self, key: u64) -> Result<()> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<()> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| anyhow!("memo entry {key} was never stored"))?;
        self.stack.push(id);
        Ok(())
    }

    fn int(&self, id: Id) -> Result<i128> {
        match &self.objects[id] {
            Obj::Int(v) => Ok(*v),
            Obj::Bool(b) => Ok(*b as i128),
            o => bail!("expected an int, found {}", kind_of(o)),
        }
    }

    /// A non-negative int that fits in `usize`.
    fn index(&self, id: Id, what: &str) -> Result<usize> {
        let v = self.int(id)?;
        usize::try_from(v).map_err(|_| anyhow!("{what} is {v}; expected a non-negative size"))
    }

    fn tuple(&self, id: Id, what: &str) -> Result<Vec<Id>> {
        match &self.objects[id] {
            Obj::Tuple(v) | Obj::List(v) => Ok(v.clone()),
            o => bail!("{what} is a {}, expected a tuple", kind_of(o)),
        }
    }

    fn add_items(&mut self, dict: Id, items: Vec<Id>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            bail!("odd number of items for a dict");
        }
        match &mut self.objects[dict] {
            Obj::Dict { items: d, .. } => {
                d.extend(items.chunks_exact(2).map(|p| (p[0], p[1])));
                Ok(())
            }
            o => bail!("SETITEM(S) on a {}, expected a dict", kind_of(o)),
        }
    }

    fn append(&mut self, list: Id, items: Vec<Id>) -> Result<()> {
        match &mut self.objects[list] {
            Obj::List(l) => {
                l.extend(items);
                Ok(())
            }
            o => bail!("APPEND(S) on a {}, expected a list", kind_of(o)),
        }
    }

    /// Calls an allowed global (REDUCE and NEWOBJ).
    fn call(&mut self, callable: Id, args: Id) -> Result<Obj> {
        let g = match &self.objects[callable] {
            Obj::Global(g) => *g,
            o => bail!("cannot call a {}", kind_of(o)),
        };
        let args = self.tuple(args, "the argument list")?;
        match g {
            Global::OrderedDict => {
                let mut items = Vec::new();
                if let Some(&a) = args.first() {
                    // OrderedDict([(k, v), …])
                    for pair in self.tuple(a, "OrderedDict's argument")? {
                        let kv = self.tuple(pair, "an OrderedDict item")?;
                        if kv.len() != 2 {
                            bail!("an OrderedDict item has {} values", kv.len());
                        }
                        items.push((kv[0], kv[1]));
                    }
                }
                Ok(Obj::Dict {
                    ordered: true,
                    items,
                })
            }
            Global::RebuildTensor => {
                if args.len() < 4 {
                    bail!("_rebuild_tensor_v2 with {} arguments", args.len());
                }
                let storage = match &self.objects[args[0]] {
                    Obj::Storage(s) => s.clone(),
                    o => bail!("a tensor's storage is a {}", kind_of(o)),
                };
                let offset = self.index(args[1], "a storage offset")?;
                let size = self
                    .tuple(args[2], "a tensor's size")?
                    .into_iter()
                    .map(|d| self.index(d, "a tensor dimension"))
                    .collect::<Result<Vec<_>>>()?;
                let stride = self
                    .tuple(args[3], "a tensor's stride")?
                    .into_iter()
                    .map(|d| self.index(d, "a tensor stride"))
                    .collect::<Result<Vec<_>>>()?;
                if size.len() != stride.len() {
                    bail!(
                        "a tensor has {} dimensions but {} strides",
                        size.len(),
                        stride.len()
                    );
                }
                Ok(Obj::Tensor(TensorRef {
                    storage,
                    offset,
                    size,
                    stride,
                }))
            }
            Global::RebuildParameter => match args.first().map(|&a| &self.objects[a]) {
                Some(t @ Obj::Tensor(_)) => Ok(t.clone()),
                Some(o) => bail!("a parameter's data is a {}", kind_of(o)),
                None => bail!("_rebuild_parameter without arguments"),
            },
            Global::Encode => match args.first().map(|&a| &self.objects[a]) {
                // encode(str, "latin1"): every char is one byte.
                Some(Obj::Str(s)) => Ok(Obj::Bytes(s.chars().map(|c| c as u32 as u8).collect())),
                _ => bail!("_codecs.encode without a string"),
            },
            Global::Storage(name) => bail!("cannot construct a torch.{name} directly"),
        }
    }

    fn step(&mut self, op: u8, persistent_load: &mut PersistentLoad<'_>) -> Result<()> {
        match op {
            0x80 => {
                let proto = self.u8()?;
                if proto > 5 {
                    bail!("pickle protocol {proto} (expected 2 to 5)");
                }
            }
            0x95 => {
                self.u64()?; // FRAME: a length hint only
            }
            b'.' => {}
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let id = self.top()?;
                self.stack.push(id);
            }
            b'N' => self.push(Obj::None),
            0x88 => self.push(Obj::Bool(true)),
            0x89 => self.push(Obj::Bool(false)),
            b'J' => {
                let v = self.u32()? as i32;
                self.push(Obj::Int(v as i128));
            }
            b'K' => {
                let v = self.u8()?;
                self.push(Obj::Int(v as i128));
            }
            b'M' => {
                let v = self.u16()?;
                self.push(Obj::Int(v as i128));
            }
            0x8a | 0x8b => {
                let n = if op == 0x8a {
                    self.u8()? as u64
                } else {
                    self.u32()? as u64
                };
                let n = self.len(n)?;
                if n > 16 {
                    bail!("an integer of {n} bytes");
                }
                let b = self.take(n)?;
                let mut v: i128 = 0;
                for (i, &byte) in b.iter().enumerate() {
                    v |= (byte as i128) << (8 * i);
                }
                if n > 0 && n < 16 && b[n - 1] & 0x80 != 0 {
                    v -= 1i128 << (8 * n);
                }
                self.push(Obj::Int(v));
            }
            b'I' => {
                let line = self.line()?;
                let obj = match line.as_str() {
                    "00" => Obj::Bool(false),
                    "01" => Obj::Bool(true),
                    s => Obj::Int(s.parse().map_err(|_| anyhow!("INT `{s}`"))?),
                };
                self.push(obj);
            }
            b'G' => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                self.push(Obj::Float(f64::from_be_bytes(a)));
            }
            b'F' => {
                let line = self.line()?;
                let v = line.parse().map_err(|_| anyhow!("FLOAT `{line}`"))?;
                self.push(Obj::Float(v));
            }
            b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                let n = match op {
                    b'X' | b'T' => self.u32()? as u64,
                    0x8d => self.u64()?,
                    _ => self.u8()? as u64,
                };
                let n = self.len(n)?;
                let s = if op == b'T' || op == b'U' {
                    // Python 2 `str`: bytes, read as latin-1 like Python 3's `encoding="latin1"`.
                    self.take(n)?.iter().map(|&b| b as char).collect()
                } else {
                    self.string(n)?
                };
                self.push(Obj::Str(s));
            }
            b'B' | b'C' | 0x8e => {
                let n = match op {
                    b'B' => self.u32()? as u64,
                    b'C' => self.u8()? as u64,
                    _ => self.u64()?,
                };
                let n = self.len(n)?;
                let b = self.take(n)?.to_vec();
                self.push(Obj::Bytes(b));
            }
            b')' => self.push(Obj::Tuple(Vec::new())),
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Obj::Tuple(items));
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push(Obj::Tuple(items));
            }
            b']' => self.push(Obj::List(Vec::new())),
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Obj::List(items));
            }
            b'a' => {
                let v = self.pop()?;
                let list = self.top()?;
                self.append(list, vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                let list = self.top()?;
                self.append(list, items)?;
            }
            b'}' => self.push(Obj::Dict {
                ordered: false,
                items: Vec::new(),
            }),
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Obj::Dict {
                    ordered: false,
                    items: Vec::new(),
                });
                let dict = self.top()?;
                self.add_items(dict, items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let dict = self.top()?;
                self.add_items(dict, vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let dict = self.top()?;
                self.add_items(dict, items)?;
            }
            b'q' => {
                let k = self.u8()? as u64;
                self.memo_put(k)?;
            }
            b'r' => {
                let k = self.u32()? as u64;
                self.memo_put(k)?;
            }
            0x94 => {
                let k = self.memo.len() as u64;
                self.memo_put(k)?;
            }
            b'p' => {
                let line = self.line()?;
                let k = line.parse().map_err(|_| anyhow!("PUT `{line}`"))?;
                self.memo_put(k)?;
            }
            b'h' => {
                let k = self.u8()? as u64;
                self.memo_get(k)?;
            }
            b'j' => {
                let k = self.u32()? as u64;
                self.memo_get(k)?;
            }
            b'g' => {
                let line = self.line()?;
                let k = line.parse().map_err(|_| anyhow!("GET `{line}`"))?;
                self.memo_get(k)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let g = global(&module, &name)?;
                self.push(Obj::Global(g));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Obj::Str(module), Obj::Str(name)) =
                    (&self.objects[module], &self.objects[name])
                else {
                    bail!("STACK_GLOBAL without two strings");
                };
                let g = global(module, name)?;
                self.push(Obj::Global(g));
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let obj = self.call(callable, args)?;
                self.push(obj);
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                match (&self.objects[target], &self.objects[state]) {
                    // A state_dict's `_metadata` attribute (module versions): not needed.
                    (Obj::Dict { .. }, Obj::Dict { .. } | Obj::None) => {}
                    (t, s) => bail!(
                        "cannot set the state of a {} from a {}",
                        kind_of(t),
                        kind_of(s)
                    ),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                let snapshot = Pickle {
                    objects: std::mem::take(&mut self.objects),
                    root: pid,
                    end: self.pos,
                };
                let result = persistent_load(&snapshot, pid);
                self.objects = snapshot.objects;
                let obj = result?;
                self.push(obj);
            }
            _ => bail!("unsupported opcode (not used by a state_dict of tensors)"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_pid(_: &Pickle, _: Id) -> Result<Obj> {
        bail!("no persistent ids here")
    }

    fn load(bytes: &[u8]) -> Result<Pickle> {
        read(bytes, 0, &mut no_pid)
    }

    /// `pickle.dumps({"a": [1, -2, 3.5], "b": (True, None, "x")}, protocol=2)`.
    const DICT_P2: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00eX\x01\x00\x00\x00bq\x03\x88NX\x01\x00\x00\x00xq\x04\x87q\x05u.";

    #[test]
    fn reads_containers_and_numbers() {
        let p = load(DICT_P2).unwrap();
        let Obj::Dict { ordered, items } = p.get(p.root) else {
            panic!("not a dict: {}", p.kind(p.root));
        };
        assert!(!ordered);
        assert_eq!(items.len(), 2);
        assert_eq!(p.get(items[0].0), &Obj::Str("a".into()));
        let Obj::List(l) = p.get(items[0].1) else {
            panic!("not a list");
        };
        let vals: Vec<&Obj> = l.iter().map(|&i| p.get(i)).collect();
        assert_eq!(vals, [&Obj::Int(1), &Obj::Int(-2), &Obj::Float(3.5)]);
        let Obj::Tuple(t) = p.get(items[1].1) else {
            panic!("not a tuple");
        };
        assert_eq!(p.get(t[0]), &Obj::Bool(true));
        assert_eq!(p.get(t[1]), &Obj::None);
        assert_eq!(p.end, DICT_P2.len());
    }

    #[test]
    fn long1_is_little_endian_twos_complement() {
        // LONG1 of the legacy PyTorch magic number 0x1950a86a20f9469cfc6c, and of -1.
        let p = load(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.").unwrap();
        assert_eq!(p.get(p.root), &Obj::Int(0x1950a86a20f9469cfc6c));
        let p = load(b"\x80\x02\x8a\x01\xff.").unwrap();
        assert_eq!(p.get(p.root), &Obj::Int(-1));
    }

    #[test]
    fn memo_refers_to_the_same_object() {
        // d = {}; l = [d, d]; d["k"] = 1 -- the dict is filled after it was memoised.
        let bytes = b"\x80\x02](}q\x00h\x00eh\x00X\x01\x00\x00\x00kK\x01s0.";
        let p = load(bytes).unwrap();
        let Obj::List(l) = p.get(p.root) else {
            panic!("not a list: {}", p.kind(p.root));
        };
        assert_eq!(l[0], l[1]);
        let Obj::Dict { items, .. } = p.get(l[0]) else {
            panic!("not a dict");
        };
        assert_eq!(items.len(), 1);
    }

    #[test]
    fn refuses_unknown_globals_without_running_them() {
        // pickle.dumps of os.system("echo hi") via __reduce__.
        let bytes = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03.";
        let e = format!("{:#}", load(bytes).unwrap_err());
        assert!(e.contains("`posix.system`"), "{e}");
        assert!(e.contains("refused"), "{e}");
    }

    #[test]
    fn names_a_pickled_module_and_the_line_that_fixes_it() {
        let bytes = b"\x80\x02c__main__\nNet\nq\x00)\x81q\x01.";
        let e = format!("{:#}", load(bytes).unwrap_err());
        assert!(e.contains("whole module (`__main__.Net`)"), "{e}");
        assert!(e.contains(SAVE_STATE_DICT), "{e}");
    }

    #[test]
    fn truncation_and_garbage_are_errors() {
        let e = format!("{:#}", load(&DICT_P2[..20]).unwrap_err());
        assert!(e.contains("truncated"), "{e}");
        let e = format!("{:#}", load(b"\x80\x02\xff.").unwrap_err());
        assert!(e.contains("opcode 0xff"), "{e}");
        let e = format!("{:#}", load(b"\x80\x02s.").unwrap_err());
        assert!(e.contains("stack is empty"), "{e}");
    }
}
