//! Shared helpers for the cross-crate tests in `tests/tests/*.rs`: PyTorch fixture discovery,
//! CSV and safetensors reading/writing, flat-to-array conversion for const-generic models, and
//! locating (building if needed) the `tinyrnn` binary for CLI tests; [`fuzz_harness`] holds the
//! fuzz targets' definitions.

pub mod fuzz_harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use serde::Deserialize;
use tinyrnn_sim::dataset::{read_sequence_csv, Series};
use tinyrnn_sim::model_file::{FloatModel, Nonlinearity};

/// `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `tests/fixtures/pytorch/`.
pub fn pytorch_dir() -> PathBuf {
    fixtures_dir().join("pytorch")
}

/// `meta.json` of a PyTorch fixture case.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct CaseMeta {
    /// `rnn`, `lstm` or `gru`.
    pub cell: String,
    /// `tanh`/`relu` for RNNs, `null` otherwise.
    pub nonlinearity: Option<String>,
    /// Number of stacked recurrent layers.
    pub layers: usize,
    /// Input features.
    pub input_size: usize,
    /// Hidden units (every layer).
    pub hidden_size: usize,
    /// Whether the recurrent module and the head have biases.
    pub bias: bool,
    /// Outputs of the linear head, `None` without a head.
    pub head_outputs: Option<usize>,
    /// Timesteps in `input.csv`.
    pub steps: usize,
}

/// One PyTorch fixture case (`tests/fixtures/pytorch/<name>/`).
#[derive(Clone, Debug)]
pub struct Case {
    /// Directory name.
    pub name: String,
    /// The case directory.
    pub dir: PathBuf,
    /// Its `meta.json`.
    pub meta: CaseMeta,
}

impl Case {
    /// Loads `tests/fixtures/pytorch/<name>/meta.json`.
    pub fn load(name: &str) -> Case {
        let dir = pytorch_dir().join(name);
        let path = dir.join("meta.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
        let meta = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: bad meta.json: {e}", path.display()));
        Case {
            name: name.to_string(),
            dir,
            meta,
        }
    }

    /// `model.safetensors`.
    pub fn model_path(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// `input.csv`.
    pub fn input_path(&self) -> PathBuf {
        self.dir.join("input.csv")
    }

    /// `expected.csv`.
    pub fn expected_path(&self) -> PathBuf {
        self.dir.join("expected.csv")
    }

    /// The RNN nonlinearity from `meta.json` (what a user passes as `--nonlinearity`).
    pub fn nonlinearity(&self) -> Option<Nonlinearity> {
        self.meta.nonlinearity.as_deref().map(|s| {
            Nonlinearity::parse(s)
                .unwrap_or_else(|| panic!("{}: bad nonlinearity `{s}` in meta.json", self.name))
        })
    }

    /// The input sequence, read by the host tool's own CSV reader.
    pub fn input(&self) -> Series {
        read_sequence_csv(&self.input_path()).unwrap_or_else(|e| panic!("{}: {e:#}", self.name))
    }

    /// PyTorch's per-step outputs.
    pub fn expected(&self) -> Vec<Vec<f64>> {
        read_csv_f64(&self.expected_path())
    }

    /// The model in PyTorch layout.
    pub fn float_model(&self) -> FloatModel {
        FloatModel::load(&self.model_path(), self.nonlinearity())
            .unwrap_or_else(|e| panic!("{}: {e:#}", self.name))
    }

    /// Values per output row: head outputs, or the hidden size.
    pub fn output_width(&self) -> usize {
        self.meta.head_outputs.unwrap_or(self.meta.hidden_size)
    }
}

/// Every case listed in `tests/fixtures/pytorch/manifest.json`, in manifest order.
pub fn cases() -> Vec<Case> {
    let path = pytorch_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    let names: Vec<String> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: bad manifest: {e}", path.display()));
    names.iter().map(|n| Case::load(n)).collect()
}

/// Reads a headerless numeric CSV as `f64` rows (blank lines skipped). Panics on bad input: it
/// is only used on fixtures and on files the CLI wrote.
pub fn read_csv_f64(path: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .unwrap_or_else(|e| panic!("{}:{}: `{v}`: {e}", path.display(), i + 1))
                })
                .collect()
        })
        .collect()
}

/// The largest error of `got` against `expected`, relative to `max(1, |expected|)`, with where
/// it happened: `(error, step, column)`. Shape mismatches panic with the case name.
pub fn max_scaled_error(
    case: &str,
    got: &[Vec<f64>],
    expected: &[Vec<f64>],
) -> (f64, usize, usize) {
    assert_eq!(
        got.len(),
        expected.len(),
        "{case}: {} output rows, expected {}",
        got.len(),
        expected.len()
    );
    let mut worst = (0.0, 0, 0);
    for (t, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(
            g.len(),
            e.len(),
            "{case}: step {t}: {} outputs, expected {}",
            g.len(),
            e.len()
        );
        for (c, (&g, &e)) in g.iter().zip(e).enumerate() {
            let err = (g - e).abs() / e.abs().max(1.0);
            // NaN compares false: count it as infinitely wrong.
            let err = if err.is_nan() { f64::INFINITY } else { err };
            if err > worst.0 {
                worst = (err, t, c);
            }
        }
    }
    worst
}

/// Every `(step, column, got, expected)` whose error exceeds `tol * max(1, |expected|)`.
pub fn mismatches(
    got: &[Vec<f64>],
    expected: &[Vec<f64>],
    tol: f64,
) -> Vec<(usize, usize, f64, f64)> {
    let mut out = Vec::new();
    for (t, (g, e)) in got.iter().zip(expected).enumerate() {
        for (c, (&g, &e)) in g.iter().zip(e).enumerate() {
            // Written so that NaN counts as a mismatch.
            let within = (g - e).abs() <= tol * e.abs().max(1.0);
            if !within {
                out.push((t, c, g, e));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Flat vectors to arrays (for const-generic core models).

/// `v` as an array; panics if the length differs.
pub fn arr<const N: usize>(v: &[f32]) -> [f32; N] {
    v.try_into()
        .unwrap_or_else(|_| panic!("expected {N} values, got {}", v.len()))
}

/// Row-major `v` as `[[f32; C]; R]`.
pub fn arr2<const R: usize, const C: usize>(v: &[f32]) -> [[f32; C]; R] {
    assert_eq!(v.len(), R * C, "expected {R}x{C} values");
    std::array::from_fn(|r| arr(&v[r * C..(r + 1) * C]))
}

/// Row-major `v` as `[[[f32; C]; B]; A]`.
pub fn arr3<const A: usize, const B: usize, const C: usize>(v: &[f32]) -> [[[f32; C]; B]; A] {
    assert_eq!(v.len(), A * B * C, "expected {A}x{B}x{C} values");
    std::array::from_fn(|a| arr2(&v[a * B * C..(a + 1) * B * C]))
}

/// Deterministic pseudo-random values in `[-scale, scale)` (SplitMix64), for synthetic weights.
pub fn pseudo_random(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let unit = (z >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            (unit * 2.0 - 1.0) * scale
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// safetensors files.

/// One tensor: dtype, shape, raw little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Raw bytes.
    pub data: Vec<u8>,
}

impl RawTensor {
    /// An `F32` tensor.
    pub fn f32(shape: Vec<usize>, values: &[f32]) -> RawTensor {
        RawTensor {
            dtype: Dtype::F32,
            shape,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// The values of an `F32` tensor.
    pub fn values(&self) -> Vec<f32> {
        assert_eq!(self.dtype, Dtype::F32);
        self.data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

/// Every tensor of a safetensors file, by name.
pub fn read_tensors(path: &Path) -> BTreeMap<String, RawTensor> {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: not safetensors: {e}", path.display()));
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                RawTensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    data: view.data().to_vec(),
                },
            )
        })
        .collect()
}

/// The `__metadata__` of a safetensors file (empty if it has none).
pub fn read_metadata(path: &Path) -> BTreeMap<String, String> {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .unwrap_or_else(|e| panic!("{}: not safetensors: {e}", path.display()));
    header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Writes tensors as a safetensors file (no metadata, like `safetensors.torch.save_file`).
pub fn write_tensors(path: &Path, tensors: &BTreeMap<String, RawTensor>) {
    write_tensors_with_metadata(path, tensors, &BTreeMap::new());
}

/// Writes tensors and `__metadata__` as a safetensors file with the `safetensors` crate itself
/// (not through `tinyrnn`'s checked writers), so that tests can make files the writers refuse.
pub fn write_tensors_with_metadata(
    path: &Path,
    tensors: &BTreeMap<String, RawTensor>,
    metadata: &BTreeMap<String, String>,
) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, t)| {
            let view = TensorView::new(t.dtype, t.shape.clone(), &t.data)
                .unwrap_or_else(|e| panic!("tensor {name}: {e}"));
            (name.clone(), view)
        })
        .collect();
    let metadata = (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect());
    let bytes = safetensors::serialize(views, metadata).expect("serialise safetensors");
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: cannot write: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// The `tinyrnn` binary.

/// Path of the `tinyrnn` binary, built once per test process.
///
/// Integration tests of another package cannot use `CARGO_BIN_EXE_tinyrnn`, so this runs
/// `cargo build -p tinyrnn-sim --bin tinyrnn` (a no-op when up to date, and never stale) into the
/// same target directory and profile as the running test executable
/// (`target/<profile>/deps/<test>` → `target/<profile>/tinyrnn`). Set `TINYRNN_BIN` to use a
/// prebuilt binary instead.
pub fn tinyrnn_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("TINYRNN_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/<test-exe>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable is in target/<profile>/deps")
            .to_path_buf();
        let target_dir = profile_dir
            .parent()
            .expect("profile dir has a parent")
            .to_path_buf();
        let profile = profile_dir
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("debug")
            .to_string();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "tinyrnn-sim", "--bin", "tinyrnn"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd
            .status()
            .expect("run cargo build for the tinyrnn binary");
        assert!(
            status.success(),
            "building the tinyrnn binary failed: {status}"
        );
        let bin = profile_dir.join(format!("tinyrnn{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// What a run of the `tinyrnn` binary produced.
pub struct Outcome {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the `tinyrnn` binary with `args`, with `RUST_BACKTRACE=1` so a panic would show.
pub fn tinyrnn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Outcome {
    let out = Command::new(tinyrnn_bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run tinyrnn");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Exit code ≠ 0 (and not a signal), no panic text, one non-empty stderr line containing every
/// `needle`; returns that line.
pub fn assert_clean_failure(what: &str, out: &Outcome, needles: &[&str]) -> String {
    assert!(
        matches!(out.code, Some(c) if c != 0),
        "{what}: expected a non-zero exit code, got {:?}\nstderr: {}",
        out.code,
        out.stderr
    );
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !out.stderr.contains(bad),
            "{what}: stderr contains `{bad}`:\n{}",
            out.stderr
        );
    }
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected exactly one stderr line, got:\n{}",
        out.stderr
    );
    for n in needles {
        assert!(
            lines[0].contains(n),
            "{what}: stderr line does not mention `{n}`:\n{}",
            lines[0]
        );
    }
    lines[0].to_string()
}

/// Runs the `tinyrnn` binary with `args` and returns what it produced with its peak resident
/// memory in bytes, as the kernel accounted it for exactly this child (`wait4(2)`'s
/// `ru_maxrss`): not a sample, so a short spike is not missed, and no other child of the test
/// process (the `cargo build` of [`tinyrnn_bin`], parallel tests) is counted.
#[cfg(target_os = "linux")]
pub fn tinyrnn_peak_rss<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Outcome, u64) {
    use std::io::Read;
    use std::process::Stdio;

    // Reaped by `wait4` below, which `Child::wait` cannot replace: it discards the usage.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new(tinyrnn_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tinyrnn");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (`Child` only reaps in `wait`, which is
    // never called); both pointers are to live, writable locals of the right types.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let outcome = Outcome {
        code,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    // Linux reports kilobytes.
    let peak = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    (outcome, peak)
}

// ---------------------------------------------------------------------------------------------
// A small dataset for CLI tests.

/// Series, steps and channels of [`tiny_ts_text`].
pub const TINY_TS_SHAPE: (usize, usize, usize) = (8, 12, 2);

/// Value of channel `d` at step `t` of series `s` in [`tiny_ts_text`]: even series (class `lo`)
/// around -0.5, odd ones (`hi`) around 0.5.
pub fn tiny_ts_value(s: usize, d: usize, t: usize) -> f64 {
    let base = if s & 1 == 0 { -0.5 } else { 0.5 };
    base + 0.01 * (t * (d + 1) + s) as f64
}

/// A small labelled `.ts` file (shape [`TINY_TS_SHAPE`], classes `lo`/`hi`) whose value
/// `(series, channel, step)` is written as `value(s, d, t)`.
pub fn tiny_ts_text(value: impl Fn(usize, usize, usize) -> String) -> String {
    let (series, steps, dims) = TINY_TS_SHAPE;
    let mut text = String::from("@problemName tiny\n@univariate false\n@dimensions 2\n");
    text.push_str("@equalLength true\n@seriesLength 12\n@classLabel true lo hi\n@data\n");
    for s in 0..series {
        for d in 0..dims {
            let row: Vec<String> = (0..steps).map(|t| value(s, d, t)).collect();
            text.push_str(&row.join(","));
            text.push(':');
        }
        text.push_str(if s & 1 == 0 { "lo\n" } else { "hi\n" });
    }
    text
}

/// [`tiny_ts_text`] with every value printed with three decimals, written to `dir/name`.
pub fn tiny_ts(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let text = tiny_ts_text(|s, d, t| format!("{:.3}", tiny_ts_value(s, d, t)));
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: cannot write: {e}", p.display()));
    p
}
