//! End-to-end tests of `tinyrnn train`, `tinyrnn quantize` and `tinyrnn eval` through the built
//! binary, on the bundled BasicMotions data (see [`tinyrnn_tests::tinyrnn_bin`]).
//!
//! Training runs for 3 epochs with 8 hidden units so that the whole file takes a few seconds in
//! a debug build: these tests check the plumbing and the reports' consistency, not accuracy
//! (the accuracy targets are measured with release builds, see the README).
//!
//! * Success: train writes a model and a JSON summary; eval of the `f32`, q15 and w8a16 models
//!   reports an accuracy in [0, 1] equal to `correct / total` and a confusion matrix summing to
//!   `total`; eval of the `f32` model agrees with train's own test accuracy; per-step labels are
//!   scored per step; a model without class names is matched by index.
//! * Bad input: exit code ≠ 0, no panic text, one stderr line naming the file or the option.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
use tinyrnn_tests::{assert_clean_failure, pytorch_dir, tinyrnn, Outcome};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}

fn assert_ok(what: &str, out: &Outcome) {
    assert_eq!(
        out.code,
        Some(0),
        "{what} failed:\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
}

/// `tinyrnn eval --model M --data D --json`, checked for internal consistency; returns the JSON.
fn eval_json(model: &Path, data: &Path) -> Value {
    let out = tinyrnn(&os(&[
        &"eval", &"--model", &model, &"--data", &data, &"--json",
    ]));
    assert_ok(&format!("eval {}", model.display()), &out);
    let v: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("eval --json is not JSON ({e}):\n{}", out.stdout));
    let acc = v["accuracy"].as_f64().expect("accuracy");
    let correct = v["correct"].as_u64().expect("correct");
    let total = v["total"].as_u64().expect("total");
    assert!((0.0..=1.0).contains(&acc), "accuracy {acc} not in [0, 1]");
    assert!(total > 0 && correct <= total, "{v}");
    assert!((acc - correct as f64 / total as f64).abs() < 1e-12, "{v}");
    let classes = v["classes"].as_array().expect("classes");
    let confusion = v["confusion"].as_array().expect("confusion");
    assert_eq!(confusion.len(), classes.len());
    let mut sum = 0;
    let mut diagonal = 0;
    for (t, row) in confusion.iter().enumerate() {
        let row = row.as_array().expect("confusion row");
        assert_eq!(row.len(), classes.len());
        for (p, n) in row.iter().enumerate() {
            let n = n.as_u64().expect("count");
            sum += n;
            if t == p {
                diagonal += n;
            }
        }
    }
    assert_eq!(sum, total, "confusion matrix sums to total: {v}");
    assert_eq!(diagonal, correct, "diagonal is the correct count: {v}");
    let per_class = v["per_class"].as_array().expect("per_class");
    assert_eq!(per_class.len(), classes.len());
    let support: u64 = per_class
        .iter()
        .map(|c| c["support"].as_u64().expect("support"))
        .sum();
    assert_eq!(support, total);
    for c in per_class {
        for k in ["precision", "recall", "f1"] {
            let x = c[k].as_f64().expect(k);
            assert!((0.0..=1.0).contains(&x), "{k} {x} not in [0, 1]: {c}");
        }
    }
    v
}

fn train_small(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, Value) {
    let model = dir.join(name);
    let mut args = os(&[
        &"train",
        &"--train",
        &data("BasicMotions_TRAIN.ts"),
        &"--test",
        &data("BasicMotions_TEST.ts"),
        &"--epochs",
        &"3",
        &"--hidden",
        &"8",
        &"--no-extend",
        &"--out",
        &model,
        &"--json",
    ]);
    args.extend(extra.iter().map(OsString::from));
    let out = tinyrnn(&args);
    assert_ok("train", &out);
    assert!(model.is_file(), "train wrote no model");
    let summary: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("train --json is not JSON ({e}):\n{}", out.stdout));
    (model, summary)
}

// ---------------------------------------------------------------------------------------------
// Success.

#[test]
fn train_quantize_eval_end_to_end() {
    let tmp = TempDir::new().unwrap();
    let (model, summary) = train_small(tmp.path(), "m.safetensors", &["--cell", "gru"]);
    let test_acc = summary["test_accuracy"].as_f64().expect("test_accuracy");
    assert!((0.0..=1.0).contains(&test_acc), "{summary}");

    let test = data("BasicMotions_TEST.ts");
    let f32 = eval_json(&model, &test);
    assert_eq!(f32["total"], 40, "one sample per test series");
    let classes: Vec<&str> = f32["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(classes, ["Standing", "Running", "Walking", "Badminton"]);
    // eval runs the saved file through the runtime kernels; train scored its own network.
    let diff = (f32["accuracy"].as_f64().unwrap() - test_acc).abs();
    assert!(
        diff <= 1.0 / 40.0 + 1e-9,
        "eval {} vs train {test_acc}",
        f32["accuracy"]
    );

    for format in ["q15", "w8a16"] {
        let q = tmp.path().join(format!("{format}.safetensors"));
        let out = tinyrnn(&os(&[
            &"quantize",
            &"--model",
            &model,
            &"--calib",
            &data("BasicMotions_TRAIN.ts"),
            &"--format",
            &format,
            &"--out",
            &q,
        ]));
        assert_ok(&format!("quantize {format}"), &out);
        let v = eval_json(&q, &test);
        assert_eq!(v["total"], 40);
        assert_eq!(v["classes"], f32["classes"], "{format}: class names kept");
    }

    // Human-readable output and the SVG.
    // The tool does not create directories (tests/tests/cli_outputs.rs): make it here.
    std::fs::create_dir(tmp.path().join("plots")).unwrap();
    let svg = tmp.path().join("plots/confusion.svg");
    let out = tinyrnn(&os(&[
        &"eval",
        &"--model",
        &model,
        &"--data",
        &test,
        &"--confusion",
        &svg,
    ]));
    assert_ok("eval --confusion", &out);
    for needle in [
        "accuracy",
        "precision",
        "recall",
        "true \\ predicted",
        "Badminton",
    ] {
        assert!(
            out.stdout.contains(needle),
            "no `{needle}`:\n{}",
            out.stdout
        );
    }
    let text = std::fs::read_to_string(&svg).expect("SVG written");
    assert!(
        text.starts_with("<svg") && text.contains("Walking"),
        "{text}"
    );

    // Per-step labels (a CSV dataset with a label column): one sample per step.
    let csv = tmp.path().join("steps.csv");
    let mut rows = String::from("sequence,label,a,b,c,d,e,f\n");
    for (seq, labels) in [("s1", ["Walking"; 5]), ("s2", ["Running"; 5])] {
        for (t, l) in labels.iter().enumerate() {
            rows.push_str(&format!("{seq},{l},{t},0.5,-1,2,0,0.25\n"));
        }
    }
    std::fs::write(&csv, rows).unwrap();
    let v = eval_json(&model, &csv);
    assert_eq!(v["total"], 10, "per-step labels count every step");
    assert_eq!(
        v["classes"], f32["classes"],
        "model's classes, matched by name"
    );
}

/// Every series the same, labels alternating: no model beats chance (50 %), so every checked
/// run collapses, deterministically.
fn write_same_series(dir: &Path) -> PathBuf {
    let path = dir.join("same.ts");
    let mut text =
        String::from("@problemName Same\n@univariate true\n@classLabel true a b\n@data\n");
    for i in 0..8 {
        text.push_str(&format!("1,3,2,5,4:{}\n", ["a", "b"][i % 2]));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn train_restarts_a_collapsed_run_and_says_so() {
    use tinyrnn_sim::train::collapse::restart_seed;
    let tmp = TempDir::new().unwrap();
    let same = write_same_series(tmp.path());
    let model = tmp.path().join("m.safetensors");
    let run = |epochs: &str, extra: &[&str]| {
        let mut args = os(&[
            &"train",
            &"--train",
            &same,
            &"--epochs",
            &epochs,
            &"--hidden",
            &"4",
            &"--seed",
            &"5",
            &"--out",
            &model,
            &"--json",
        ]);
        args.extend(extra.iter().map(OsString::from));
        let out = tinyrnn(&args);
        assert_ok("train", &out);
        let v: Value = serde_json::from_str(out.stdout.trim())
            .unwrap_or_else(|e| panic!("train --json is not JSON ({e}):\n{}", out.stdout));
        (v, out.stderr)
    };

    let (v, log) = run("3", &["--restarts", "2", "--collapse-epochs", "2"]);
    assert_eq!(v["restarts"], 2, "{v}");
    assert_eq!(v["seed"], restart_seed(5, 2), "{v}");
    assert_eq!(
        v["epochs"], 6,
        "the last run is trained to the end, extended to twice --epochs as it never fits: {v}"
    );
    assert_eq!(v["train_accuracy"], 0.5);
    assert!(model.is_file(), "a model is written after the restarts");
    let said: Vec<&str> = log.lines().filter(|l| l.contains("collapsed")).collect();
    assert_eq!(said.len(), 2, "one log line per restart:\n{log}");
    for (line, (from, to)) in said.iter().zip([
        (5, restart_seed(5, 1)),
        (restart_seed(5, 1), restart_seed(5, 2)),
    ]) {
        for needle in [
            format!("seed {from}:"),
            "training accuracy 50.0% after 2 epochs, below 62.5%".to_string(),
            format!("restarting with seed {to}"),
        ] {
            assert!(line.contains(&needle), "no `{needle}` in: {line}");
        }
    }

    // The defaults check too (3 restarts after 20 epochs); `--restarts 0` turns it off.
    let (v, _) = run("21", &[]);
    assert_eq!(
        (v["restarts"].as_u64(), v["seed"].as_u64()),
        (Some(3), Some(restart_seed(5, 3)))
    );
    let (v, log) = run("3", &["--restarts", "0", "--collapse-epochs", "1"]);
    assert_eq!(
        (v["restarts"].as_u64(), v["seed"].as_u64()),
        (Some(0), Some(5)),
        "{v}"
    );
    assert!(!log.contains("collapsed"), "{log}");
}

#[test]
fn train_with_augmentation_runs_and_is_deterministic() {
    let tmp = TempDir::new().unwrap();
    let (a, sa) = train_small(
        tmp.path(),
        "a.safetensors",
        &["--augment", "jitter,scale,warp=0.3,crop"],
    );
    let (b, sb) = train_small(
        tmp.path(),
        "b.safetensors",
        &["--augment", "jitter,scale,warp=0.3,crop"],
    );
    let (c, _) = train_small(tmp.path(), "c.safetensors", &[]);
    let weights = |p: &Path| {
        let m = tinyrnn_sim::model_file::FloatModel::load(p, None).unwrap();
        (m.layers, m.head)
    };
    assert!(
        weights(&a) == weights(&b),
        "same seed, same augmented model"
    );
    assert!(weights(&a) != weights(&c), "augmentation changes the model");
    assert_eq!(sa["test_accuracy"], sb["test_accuracy"]);
    // Crops shorten the series trained on; throughput still counts the steps trained.
    assert!(sa["steps_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn eval_matches_classes_by_index_without_class_names() {
    // A PyTorch state_dict (I=6, 4 outputs, no metadata) against BasicMotions' 4 classes.
    let model = pytorch_dir().join("gru_2l_head/model.safetensors");
    let v = eval_json(&model, &data("BasicMotions_TEST.ts"));
    assert_eq!(v["total"], 40);
    assert_eq!(v["classes"][3], "Badminton");
}

// ---------------------------------------------------------------------------------------------
// Bad input.

#[test]
fn train_rejects_bad_input() {
    let tmp = TempDir::new().unwrap();
    let out_model = tmp.path().join("m.safetensors");
    let train = |train: &Path, extra: &[&str]| {
        let mut args = os(&[
            &"train",
            &"--train",
            &train,
            &"--epochs",
            &"1",
            &"--out",
            &out_model,
        ]);
        args.extend(extra.iter().map(OsString::from));
        tinyrnn(&args)
    };

    let missing = tmp.path().join("nope.ts");
    assert_clean_failure("missing file", &train(&missing, &[]), &["nope.ts"]);

    let bm = data("BasicMotions_TRAIN.ts");
    assert_clean_failure("--hidden 0", &train(&bm, &["--hidden", "0"]), &["--hidden"]);

    let unlabelled = tmp.path().join("unlabelled.csv");
    std::fs::write(&unlabelled, "1,2\n3,4\n5,6\n").unwrap();
    assert_clean_failure(
        "unlabelled CSV",
        &train(&unlabelled, &[]),
        &["unlabelled.csv", "no labels"],
    );

    let gp = data("GunPoint_TEST.ts");
    let gp = gp.to_str().unwrap();
    assert_clean_failure(
        "test width mismatch",
        &train(&bm, &["--test", gp]),
        &["GunPoint_TEST.ts", "channels"],
    );
    assert_clean_failure(
        "--input-std 0",
        &train(&bm, &["--input-std", "0"]),
        &["--input-std"],
    );
    assert_clean_failure(
        "--collapse-epochs 0",
        &train(&bm, &["--collapse-epochs", "0"]),
        &["--collapse-epochs"],
    );
    // Argument parsing (clap) errors: exit code 2 and the reason, no panic.
    for (bad, needle) in [
        ("shift", "unknown augmentation `shift`"),
        ("crop=1.5", "crop: strength must be a number [0, 1)"),
        ("jitter=x", "jitter: `x` is not a number"),
    ] {
        let out = train(&bm, &["--augment", bad]);
        assert_eq!(out.code, Some(2), "--augment {bad}: {}", out.stderr);
        assert!(
            out.stderr.contains(needle),
            "--augment {bad}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
    assert!(!out_model.exists(), "a failed train wrote a model");
}

#[test]
fn eval_rejects_bad_input() {
    let tmp = TempDir::new().unwrap();
    let eval = |model: &Path, data: &Path| {
        tinyrnn(&os(&[
            &"eval", &"--model", &model, &"--data", &data, &"--json",
        ]))
    };
    let with_head = pytorch_dir().join("gru_2l_head/model.safetensors"); // I=6, O=4
    let bm = data("BasicMotions_TEST.ts");

    assert_clean_failure(
        "missing model",
        &eval(&tmp.path().join("nope.safetensors"), &bm),
        &["nope.safetensors"],
    );
    assert_clean_failure(
        "missing data",
        &eval(&with_head, &tmp.path().join("nope.ts")),
        &["nope.ts"],
    );

    let unlabelled = tmp.path().join("unlabelled.csv");
    std::fs::write(&unlabelled, "1,2,3,4,5,6\n1,2,3,4,5,6\n").unwrap();
    assert_clean_failure(
        "unlabelled data",
        &eval(&with_head, &unlabelled),
        &["unlabelled.csv", "no labels"],
    );

    assert_clean_failure(
        "width mismatch",
        &eval(&with_head, &data("GunPoint_TEST.ts")),
        &["GunPoint_TEST.ts", "6 inputs"],
    );

    let no_head = pytorch_dir().join("lstm_2l_nobias/model.safetensors");
    assert_clean_failure(
        "model without head",
        &eval(&no_head, &bm),
        &["lstm_2l_nobias", "head"],
    );

    // No class names in the file and 3 outputs for 4 classes: cannot match by index.
    let three = pytorch_dir().join("gru_1l_nobias_head/model.safetensors");
    assert_clean_failure(
        "class count mismatch",
        &eval(&three, &bm),
        &["BasicMotions_TEST.ts", "3 outputs"],
    );

    // A class the trained model does not know.
    let (model, _) = train_small(tmp.path(), "m.safetensors", &[]);
    let jumping = tmp.path().join("jumping.ts");
    std::fs::write(
        &jumping,
        "@problemName J\n@dimensions 6\n@classLabel true Walking Jumping\n@data\n\
         1,2:1,2:1,2:1,2:1,2:1,2:Walking\n1,2:1,2:1,2:1,2:1,2:1,2:Jumping\n",
    )
    .unwrap();
    assert_clean_failure(
        "unknown class",
        &eval(&model, &jumping),
        &["jumping.ts", "Jumping"],
    );
}
