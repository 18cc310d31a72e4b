//! End-to-end tests of `tinyrnn export --fast` through the built binary: an f32 model is
//! written with the fast activations (`tinyrnn::F32Fast`, format `f32-fast`); a quantised one is
//! refused with one clear line and a non-zero exit code, and nothing is written.

use std::ffi::OsString;
use std::path::Path;

use tempfile::TempDir;
use tinyrnn_tests::{assert_clean_failure, fixtures_dir, tinyrnn, Case, Outcome};

/// `tinyrnn export --model M --out O --fast [extra...]`.
fn export_fast(model: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<OsString> = vec![
        "export".into(),
        "--model".into(),
        model.into(),
        "--out".into(),
        out.into(),
        "--fast".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    tinyrnn(&args)
}

#[test]
fn export_fast_writes_an_f32_fast_model_with_golden_data() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("lstm_1l_head");
    let out = tmp.path().join("model.rs");
    let input = case.input_path();
    let run = export_fast(
        &case.model_path(),
        &out,
        &["--golden", input.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("f32-fast lstm"), "{}", run.stdout);
    let source = std::fs::read_to_string(&out).unwrap();
    assert!(source.contains("pub type Num = tinyrnn::F32Fast;"));
    assert!(source.contains("pub static GOLDEN_OUTPUT"));
}

#[test]
fn export_fast_of_a_quantised_model_fails_cleanly() {
    let tmp = TempDir::new().unwrap();
    let model = fixtures_dir().join("golden/lstm_1l_head/q15.safetensors");
    let out = tmp.path().join("model.rs");
    let run = export_fast(&model, &out, &[]);
    assert_clean_failure("export --fast of q15", &run, &["q15.safetensors", "--fast"]);
    assert!(!out.exists());
}
