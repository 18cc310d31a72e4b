//! Parity with PyTorch: every case of `tests/fixtures/pytorch/manifest.json`, loaded from its
//! plain `state_dict` file the way `tinyrnn run` loads it, stepped over `input.csv` from the zero
//! state, compared per step and per column with PyTorch's float32 outputs (`expected.csv`).
//!
//! Tolerances, relative to `max(1, |expected|)`:
//!
//! * accurate activations ([`tinyrnn::F32`]): [`ACCURATE_TOL`] = 1e-5 (the bound);
//! * fast activations ([`tinyrnn::F32Fast`], `micromath`): [`FAST_TOL`] = 2.5e-3. Measured worst
//!   cases: rnn_tanh_1l 1.16e-3, lstm_2l_nobias 1.06e-3, lstm_saturating 6.1e-4, lstm_bare
//!   5.1e-4, gru_bare 5.0e-4, gru_2l_head 5.0e-4, lstm_1l_head 4.7e-4, rnn_tanh_nobias_head
//!   3.3e-4, gru_1l_nobias_head 2.8e-4, gru_saturating 2.7e-4, and ≤ 2.2e-7 for the ReLU RNNs
//!   (no sigmoid/tanh). The bound has ~2x headroom over the worst (1.16e-3); it is of the order
//!   of the fast activations' own error (sigmoid ≤ 1e-3, tanh ≤ 2e-3 absolute). The test prints
//!   the measured error of every case (`cargo test -- --nocapture`).

use std::collections::BTreeSet;

use tinyrnn_sim::any_model::AnyModel;
use tinyrnn_tests::{cases, max_scaled_error, mismatches, pytorch_dir, Case};

/// Accurate path: per-value error bound relative to `max(1, |expected|)`.
const ACCURATE_TOL: f64 = 1e-5;
/// Fast (`micromath`) path: per-value error bound relative to `max(1, |expected|)`.
const FAST_TOL: f64 = 2.5e-3;

fn run(case: &Case, fast: bool) -> Vec<Vec<f64>> {
    let model = AnyModel::load(&case.model_path(), case.nonlinearity(), fast)
        .unwrap_or_else(|e| panic!("{}: load failed: {e:#}", case.name));
    let input = case.input();
    assert_eq!(
        (input.steps, input.channels),
        (case.meta.steps, case.meta.input_size),
        "{}: input.csv does not match meta.json",
        case.name
    );
    assert_eq!(model.input_size(), case.meta.input_size, "{}", case.name);
    assert_eq!(model.output_size(), case.output_width(), "{}", case.name);
    model.run_real(&input)
}

/// Compares every case with `fast` activations; returns the per-case worst errors.
fn check_all(fast: bool, tol: f64) -> Vec<(String, f64)> {
    let label = if fast { "fast" } else { "accurate" };
    let mut failures = Vec::new();
    let mut measured = Vec::new();
    for case in cases() {
        let expected = case.expected();
        assert_eq!(
            expected.len(),
            case.meta.steps,
            "{}: expected.csv rows",
            case.name
        );
        let got = run(&case, fast);
        let (err, t, c) = max_scaled_error(&case.name, &got, &expected);
        println!(
            "{label:>8} {:<22} max error {err:.3e} (step {t}, column {c})",
            case.name
        );
        measured.push((case.name.clone(), err));
        for (t, c, g, e) in mismatches(&got, &expected, tol) {
            failures.push(format!(
                "{}: step {t}, column {c}: got {g:e}, PyTorch {e:e} (|diff| {:.3e})",
                case.name,
                (g - e).abs()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{label} path: {} values outside {tol:e} x max(1, |expected|):\n{}",
        failures.len(),
        failures.join("\n")
    );
    measured
}

#[test]
fn accurate_path_matches_pytorch_within_1e_5() {
    let measured = check_all(false, ACCURATE_TOL);
    assert!(!measured.is_empty());
}

#[test]
fn fast_path_matches_pytorch_within_stated_tolerance() {
    let measured = check_all(true, FAST_TOL);
    // The fast path really is different (otherwise this test proves nothing about it).
    assert!(
        measured.iter().any(|(_, e)| *e > ACCURATE_TOL),
        "fast activations give the same results as the accurate ones: {measured:?}"
    );
}

/// Removing a fixture (or the manifest losing it) must fail the suite: the manifest covers every
/// cell kind with 1 and 2 layers, with and without bias, with and without head, both RNN
/// nonlinearities, and a saturating input for every kind.
#[test]
fn manifest_covers_every_kind_and_option() {
    let cases = cases();
    let mut missing = Vec::new();
    for cell in ["rnn", "lstm", "gru"] {
        let of_kind: Vec<&Case> = cases.iter().filter(|c| c.meta.cell == cell).collect();
        for layers in [1, 2] {
            if !of_kind.iter().any(|c| c.meta.layers == layers) {
                missing.push(format!("{cell} with {layers} layer(s)"));
            }
        }
        for bias in [true, false] {
            if !of_kind.iter().any(|c| c.meta.bias == bias) {
                missing.push(format!("{cell} with bias={bias}"));
            }
        }
        for head in [true, false] {
            if !of_kind
                .iter()
                .any(|c| c.meta.head_outputs.is_some() == head)
            {
                missing.push(format!("{cell} with head={head}"));
            }
        }
        // Saturating inputs: some value far outside the sigmoid/tanh linear range.
        let saturating = of_kind
            .iter()
            .any(|c| c.input().values.iter().any(|v| v.abs() >= 10.0));
        if !saturating {
            missing.push(format!("{cell} with saturating inputs (|x| >= 10)"));
        }
    }
    for nl in ["tanh", "relu"] {
        if !cases
            .iter()
            .any(|c| c.meta.cell == "rnn" && c.meta.nonlinearity.as_deref() == Some(nl))
        {
            missing.push(format!("rnn with nonlinearity {nl}"));
        }
    }
    for c in &cases {
        match (c.meta.cell.as_str(), c.meta.nonlinearity.as_deref()) {
            ("rnn", Some("tanh" | "relu")) | ("lstm" | "gru", None) => {}
            other => missing.push(format!("{}: bad cell/nonlinearity {other:?}", c.name)),
        }
    }
    assert!(missing.is_empty(), "fixture coverage gaps: {missing:?}");

    // Every case directory on disk is in the manifest (a forgotten entry is not tested).
    let listed: BTreeSet<String> = cases.iter().map(|c| c.name.clone()).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(pytorch_dir())
        .expect("list fixtures")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, on_disk, "manifest.json vs case directories");
}
