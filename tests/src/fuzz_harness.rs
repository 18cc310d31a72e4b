//! The fuzz targets, defined once: `fuzz/fuzz_targets/*.rs` hands libFuzzer's inputs to these
//! functions, and `tests/tests/fuzz_replay.rs` runs every committed seed and every saved crash
//! through them as ordinary tests (no libFuzzer, no sanitizer build).
//!
//! A target takes arbitrary bytes and panics only when it has found a bug:
//!
//! - a panic in the code under test (with overflow checks on in both the fuzz build and the
//!   test build);
//! - an error that is not one line (every reader promises one line naming the file and the
//!   problem);
//! - an accepted input that breaks the reader's own contract (a dataset whose series do not have
//!   the channels it declares, a label outside the class names, a non-finite value, a model the
//!   loader accepts but that cannot be built or run);
//! - a round trip that changes something: what the `f32` writer or `quantize` writes must load
//!   back equal, through the same loader the CLI uses, and compute the same output bits.
//!
//! Returning an error for bad input is the expected outcome, not a finding. Readers that only
//! take a path are fed through a file in a fresh temporary directory, so the fuzzers go through
//! exactly what the CLI calls, file reading included.

use std::path::{Path, PathBuf};

use anyhow::Error;
use tinyrnn::{F32Fast, F32};
use tinyrnn_sim::any_model::AnyModel;
use tinyrnn_sim::dataset::{self, Dataset, Labels, LoadOptions, MissingPolicy, Series};
use tinyrnn_sim::export::{golden_of, Exportable};
use tinyrnn_sim::model_file::{FloatModel, Nonlinearity};
use tinyrnn_sim::quantize::{self, Granularity, QuantKind, QuantModel, QuantOptions, QuantRuntime};
use tinyrnn_sim::runtime_model::RuntimeModel;

/// One fuzz target: a name (the `fuzz/fuzz_targets/<name>.rs` binary, the
/// `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/` directories) and its definition.
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// What it exercises, in one line.
    pub about: &'static str,
    /// Runs one input; panics on a finding.
    pub run: fn(&[u8]),
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "float_model",
        about: "f32 model loader (FloatModel::from_bytes), then building and running the model",
        run: float_model,
    },
    Target {
        name: "quant_model",
        about: "any model file through AnyModel::load (the quantised loader) and Exportable::load",
        run: quant_model,
    },
    Target {
        name: "ts",
        about: "UEA/UCR .ts reader, with both missing-value policies",
        run: ts,
    },
    Target {
        name: "csv_sequence",
        about: "CSV sequence reader (read_sequence_csv)",
        run: csv_sequence,
    },
    Target {
        name: "csv_dataset",
        about: "CSV dataset file (header with a sequence column, or a plain sequence)",
        run: csv_dataset,
    },
    Target {
        name: "csv_dir",
        about: "CSV dataset directory (labels.csv and sequence files), parts split at NUL bytes",
        run: csv_dir,
    },
    Target {
        name: "round_trip",
        about: "f32 writer and quantize: what they write loads back equal and computes the same",
        run: round_trip,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

// ---------------------------------------------------------------------------------------------
// Targets.

/// `FloatModel::from_bytes`; an accepted model must build as `F32` and `F32Fast` runtime
/// models (also with its normalisation folded) and run.
pub fn float_model(data: &[u8]) {
    let model = match FloatModel::from_bytes(data, nonlinearity_choice(data)) {
        Ok(m) => m,
        Err(e) => return one_line("FloatModel::from_bytes", &e),
    };
    let input = sample_series(model.input_size());
    let accurate = RuntimeModel::<F32>::from_float(&model).unwrap_or_else(|e| {
        panic!("a model FloatModel::from_bytes accepted does not build: {e:#}")
    });
    check_outputs(
        "f32",
        &accurate.run_real(input.rows()),
        &input,
        model.output_size(),
    );
    let fast = RuntimeModel::<F32Fast>::from_float_with(&model, |_| ()).unwrap_or_else(|e| {
        panic!("a model FloatModel::from_bytes accepted does not build as f32-fast: {e:#}")
    });
    check_outputs(
        "f32-fast",
        &fast.run_real(input.rows()),
        &input,
        model.output_size(),
    );
    let folded = model.fold_normalization();
    let folded_rt = RuntimeModel::<F32>::from_float(&folded).unwrap_or_else(|e| {
        panic!("a model FloatModel::from_bytes accepted does not build once folded: {e:#}")
    });
    check_outputs(
        "folded",
        &folded_rt.run_real(input.rows()),
        &input,
        model.output_size(),
    );
}

/// A model file as `run` (`AnyModel::load`) and `export`/`verify` (`Exportable::load`, golden
/// data, code generation) load it. Seeded with quantised files, so it mostly exercises
/// `QuantModel::from_bytes` and `QuantModel::to_runtime`.
pub fn quant_model(data: &[u8]) {
    let dir = scratch_dir();
    let path = write_file(dir.path(), "model.safetensors", data);
    let nonlinearity = nonlinearity_choice(data);
    let runnable = match AnyModel::load(&path, nonlinearity, false) {
        Ok(m) => {
            let input = sample_series(m.input_size());
            check_outputs("AnyModel", &m.run_bits(&input), &input, m.output_size());
            true
        }
        Err(e) => {
            one_line("AnyModel::load", &e);
            false
        }
    };
    let exportable = match Exportable::load(&path, nonlinearity, false) {
        Ok(x) => x,
        Err(e) => return one_line("Exportable::load", &e),
    };
    let input = sample_series(exportable.input_size());
    let golden = match exportable.golden(input.rows()) {
        Ok(g) => g,
        Err(e) if !runnable => return one_line("Exportable::golden", &e),
        Err(e) => {
            panic!("AnyModel::load runs this model but export cannot compute golden data: {e:#}")
        }
    };
    if let Err(e) = exportable.generate(Some(&golden)) {
        if runnable {
            panic!("AnyModel::load runs this model but export cannot generate code: {e:#}");
        }
        one_line("Exportable::generate", &e);
    }
}

/// A `.ts` file through `dataset::load_with`, with each missing-value policy.
pub fn ts(data: &[u8]) {
    let dir = scratch_dir();
    let path = write_file(dir.path(), "fuzz.ts", data);
    for missing in [MissingPolicy::Error, MissingPolicy::FillForward] {
        match dataset::load_with(&path, &LoadOptions { missing }) {
            Ok(d) => check_dataset(&d),
            Err(e) => one_line(".ts reader", &e),
        }
    }
}

/// A CSV sequence file through `read_sequence_csv`.
pub fn csv_sequence(data: &[u8]) {
    let dir = scratch_dir();
    let path = write_file(dir.path(), "fuzz.csv", data);
    match dataset::read_sequence_csv(&path) {
        Ok(s) => {
            check_series(&s, s.channels, "read_sequence_csv");
            assert!(
                s.steps > 0,
                "read_sequence_csv accepted a sequence without steps"
            );
        }
        Err(e) => one_line("read_sequence_csv", &e),
    }
}

/// A `.csv` file through `dataset::load` (the header form with a `sequence` column, or a plain
/// sequence file).
pub fn csv_dataset(data: &[u8]) {
    let dir = scratch_dir();
    let path = write_file(dir.path(), "fuzz.csv", data);
    match dataset::load(&path) {
        Ok(d) => check_dataset(&d),
        Err(e) => one_line("CSV dataset reader", &e),
    }
}

/// A directory of CSV sequence files through `dataset::load`. The input is split at NUL bytes:
/// the first part is `labels.csv` (not written when empty), the others are `0.csv`, `1.csv`, …
/// (at most [`MAX_DIR_FILES`]). Inputs whose `labels.csv` names a path outside the directory
/// are skipped, so that a run never depends on files elsewhere on the machine.
pub fn csv_dir(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let labels = parts.next().unwrap_or_default();
    if labels.contains(&b'/') || labels.contains(&b'\\') {
        return;
    }
    let dir = scratch_dir();
    if !labels.is_empty() {
        write_file(dir.path(), "labels.csv", labels);
    }
    for (i, part) in parts.take(MAX_DIR_FILES).enumerate() {
        write_file(dir.path(), &format!("{i}.csv"), part);
    }
    match dataset::load(dir.path()) {
        Ok(d) => check_dataset(&d),
        Err(e) => one_line("CSV directory reader", &e),
    }
}

/// Files `csv_dir` writes at most (besides `labels.csv`).
pub const MAX_DIR_FILES: usize = 8;

/// A loaded `f32` model written back with `FloatModel::to_bytes`, and quantised (q15 and w8a16,
/// per-tensor and per-row scales, calibrated on [`sample_series`]) and written with
/// `QuantModel::to_bytes`: each file must load back equal (`FloatModel::from_bytes`,
/// `QuantModel::from_bytes`) and, loaded as the CLI loads it (`AnyModel::load`), compute the
/// same output bits as the model it was written from.
pub fn round_trip(data: &[u8]) {
    let Ok(model) = FloatModel::from_bytes(data, nonlinearity_choice(data)) else {
        return;
    };
    let input = sample_series(model.input_size());
    let dir = scratch_dir();

    let bytes = model
        .to_bytes()
        .unwrap_or_else(|e| panic!("FloatModel::to_bytes fails on a model it loaded: {e:#}"));
    let back = FloatModel::from_bytes(&bytes, None)
        .unwrap_or_else(|e| panic!("the file FloatModel::to_bytes wrote does not load: {e:#}"));
    if back != model {
        panic!(
            "FloatModel write → read changed the model: {}",
            float_difference(&model, &back)
        );
    }
    let want = RuntimeModel::<F32>::from_float(&model)
        .map(|m| golden_of(&m, input.rows()).outputs)
        .unwrap_or_else(|e| {
            panic!("a model FloatModel::from_bytes accepted does not build: {e:#}")
        });
    let path = write_file(dir.path(), "f32.safetensors", &bytes);
    let loaded = AnyModel::load(&path, None, false)
        .unwrap_or_else(|e| panic!("the file FloatModel::to_bytes wrote does not load: {e:#}"));
    assert_same_bits(
        "f32 write → AnyModel::load",
        &loaded.run_bits(&input),
        &want,
    );

    let folded = model.fold_normalization();
    let calibration_set = Dataset {
        series: vec![input.clone()],
        labels: None,
        class_names: Vec::new(),
        channels: input.channels,
        name: "fuzz".into(),
    };
    let calibration = match quantize::calibrate(&folded, &calibration_set) {
        Ok(c) => c,
        Err(e) => panic!("calibration fails on a loaded model and matching data: {e:#}"),
    };
    for kind in [QuantKind::Q15, QuantKind::W8a16] {
        for granularity in [Granularity::Tensor, Granularity::Row] {
            let what = format!("quantize {} {granularity:?}", kind.name());
            let opts = QuantOptions {
                kind,
                granularity,
                headroom: 1.25,
            };
            let q = quantize::quantize(&folded, &calibration, &opts)
                .unwrap_or_else(|e| panic!("{what} fails on a loaded model: {e:#}"));
            let bytes = q
                .to_bytes()
                .unwrap_or_else(|e| panic!("{what}: QuantModel::to_bytes fails: {e:#}"));
            let back = QuantModel::from_bytes(&bytes)
                .unwrap_or_else(|e| panic!("{what}: the file it wrote does not load: {e:#}"));
            if back != q {
                panic!(
                    "{what}: write → read changed the model: {}",
                    quant_difference(&q, &back)
                );
            }
            let want = match q.to_runtime() {
                Ok(QuantRuntime::Q15(m)) => golden_of(&m, input.rows()).outputs,
                Ok(QuantRuntime::W8a16(m)) => golden_of(&m, input.rows()).outputs,
                Err(e) => panic!("{what} produced a model that does not run: {e:#}"),
            };
            let path = write_file(dir.path(), "quantized.safetensors", &bytes);
            let loaded = AnyModel::load(&path, None, false).unwrap_or_else(|e| {
                panic!("{what}: the file it wrote does not load through AnyModel: {e:#}")
            });
            assert_same_bits(
                &format!("{what} → AnyModel::load"),
                &loaded.run_bits(&input),
                &want,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs and checks.

/// The `--nonlinearity` a target passes with `data`: none, `tanh` or `relu` by input length, so
/// the corpus covers the flag and the file's own metadata alike.
pub fn nonlinearity_choice(data: &[u8]) -> Option<Nonlinearity> {
    match data.len() % 3 {
        0 => None,
        1 => Some(Nonlinearity::Tanh),
        _ => Some(Nonlinearity::Relu),
    }
}

/// Steps of [`sample_series`].
pub const SAMPLE_STEPS: usize = 6;

/// The inputs a loaded model is run on: [`SAMPLE_STEPS`] steps of `channels` fixed
/// pseudo-random values in `[-2, 2)`, the last step scaled to `[-200, 200)` so that saturating
/// paths run too.
pub fn sample_series(channels: usize) -> Series {
    let mut values = crate::pseudo_random(0x5EED, SAMPLE_STEPS * channels, 2.0);
    let last = (SAMPLE_STEPS - 1) * channels;
    for v in &mut values[last..] {
        *v *= 100.0;
    }
    Series {
        values,
        steps: SAMPLE_STEPS,
        channels,
    }
}

/// A fresh temporary directory, removed when dropped: in `/dev/shm` where there is one, since
/// creating and deleting files on a disk file system would take most of a target's time.
fn scratch_dir() -> tempfile::TempDir {
    let mut builder = tempfile::Builder::new();
    builder.prefix("tinyrnn-fuzz-");
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("create a temporary directory")
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap_or_else(|e| panic!("{}: cannot write: {e}", path.display()));
    path
}

/// At most `n` characters of `text`, for panic messages about large inputs.
fn clip(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((i, _)) => format!("{}… ({} bytes)", &text[..i], text.len()),
        None => text.to_string(),
    }
}

/// Every error of a reader must be one non-empty line.
fn one_line(what: &str, e: &Error) {
    let text = format!("{e:#}");
    assert!(
        !text.trim().is_empty() && !text.contains('\n'),
        "{what}: the error is not one line: {:?}",
        clip(&text, 300)
    );
}

/// One output row of `width` values per input step.
fn check_outputs<T>(what: &str, out: &[Vec<T>], input: &Series, width: usize) {
    assert_eq!(out.len(), input.steps, "{what}: output rows");
    if let Some((t, row)) = out.iter().enumerate().find(|(_, r)| r.len() != width) {
        panic!(
            "{what}: step {t} has {} outputs, expected {width}",
            row.len()
        );
    }
}

fn assert_same_bits(what: &str, got: &[Vec<i64>], want: &[Vec<i64>]) {
    if got == want {
        return;
    }
    let step = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: outputs differ from the model it was written from, first at step {step}: {:?} vs {:?}",
        got.get(step).map(|r| clip(&format!("{r:?}"), 200)),
        want.get(step).map(|r| clip(&format!("{r:?}"), 200)),
    );
}

/// `s` holds `steps` rows of `channels` finite values.
fn check_series(s: &Series, channels: usize, what: &str) {
    assert_eq!(
        s.channels, channels,
        "{what}: a series has {} channels, the dataset says {channels}",
        s.channels
    );
    assert!(channels > 0, "{what}: accepted a series without channels");
    assert_eq!(
        s.values.len(),
        s.steps * s.channels,
        "{what}: {} values for {} steps of {} channels",
        s.values.len(),
        s.steps,
        s.channels
    );
    if let Some(i) = s.values.iter().position(|v| !v.is_finite()) {
        panic!("{what}: value {i} is {}, not finite", s.values[i]);
    }
}

/// The contract of a loaded [`Dataset`]: every series has `channels` finite columns, labels
/// match the series and index `class_names`, class names are unique.
fn check_dataset(d: &Dataset) {
    for s in &d.series {
        check_series(s, d.channels, "dataset");
    }
    assert!(
        !d.series.is_empty(),
        "a dataset without series was accepted"
    );
    let classes = d.class_names.len();
    let check_label = |l: usize| {
        assert!(l < classes, "label {l} but only {classes} class names");
    };
    match &d.labels {
        None => {}
        Some(Labels::PerSeries(ls)) => {
            assert_eq!(ls.len(), d.series.len(), "one label per series");
            ls.iter().copied().for_each(check_label);
        }
        Some(Labels::PerStep(ls)) => {
            assert_eq!(ls.len(), d.series.len(), "one label list per series");
            for (s, l) in d.series.iter().zip(ls) {
                assert_eq!(l.len(), s.steps, "one label per step");
                l.iter().copied().for_each(check_label);
            }
        }
    }
    for (i, n) in d.class_names.iter().enumerate() {
        assert!(
            !d.class_names[..i].contains(n),
            "class name {:?} appears twice",
            clip(n, 60)
        );
    }
}

/// The fields in which two `f32` models differ (for a failed round trip).
fn float_difference(a: &FloatModel, b: &FloatModel) -> String {
    differences(&[
        ("kind", dbg(&a.kind), dbg(&b.kind)),
        ("layers", dbg(&a.layers), dbg(&b.layers)),
        ("head", dbg(&a.head), dbg(&b.head)),
        ("prefix", dbg(&a.prefix), dbg(&b.prefix)),
        ("head_prefix", dbg(&a.head_prefix), dbg(&b.head_prefix)),
        ("meta", dbg(&a.meta), dbg(&b.meta)),
    ])
}

/// The fields in which two quantised models differ (for a failed round trip).
fn quant_difference(a: &QuantModel, b: &QuantModel) -> String {
    differences(&[
        ("kind", dbg(&a.kind), dbg(&b.kind)),
        ("cell", dbg(&a.cell), dbg(&b.cell)),
        ("layers", dbg(&a.layers), dbg(&b.layers)),
        ("head", dbg(&a.head), dbg(&b.head)),
        ("input_frac", dbg(&a.input_frac), dbg(&b.input_frac)),
        ("output_frac", dbg(&a.output_frac), dbg(&b.output_frac)),
        ("prefix", dbg(&a.prefix), dbg(&b.prefix)),
        ("head_prefix", dbg(&a.head_prefix), dbg(&b.head_prefix)),
        ("meta", dbg(&a.meta), dbg(&b.meta)),
    ])
}

fn dbg(v: &impl std::fmt::Debug) -> String {
    format!("{v:?}")
}

fn differences(fields: &[(&str, String, String)]) -> String {
    let diffs: Vec<String> = fields
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| format!("{name}: written {} read {}", clip(a, 200), clip(b, 200)))
        .collect();
    if diffs.is_empty() {
        "a value that compares unequal to itself".to_string()
    } else {
        diffs.join("; ")
    }
}
