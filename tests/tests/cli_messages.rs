//! Messages and dataset options through the `tinyrnn` binary: user text quoted short, a
//! byte-order mark skipped, a `.ts` directory named as such, `--fill-missing forward` on every
//! subcommand that reads datasets, and the same message on every run.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use tempfile::TempDir;
use tinyrnn_tests::{
    assert_clean_failure, read_tensors, tiny_ts, tiny_ts_text, tiny_ts_value, tinyrnn,
    write_tensors, Case, Outcome,
};

fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}

fn assert_ok(what: &str, out: &Outcome) {
    assert_eq!(out.code, Some(0), "{what} failed:\n{}", out.stderr);
}

fn run(model: &Path, input: &Path, output: &Path) -> Outcome {
    tinyrnn(&os(&[
        &"run",
        &"--model",
        &model,
        &"--input",
        &input,
        &"--output",
        &output,
    ]))
}

#[test]
fn a_10_mb_bad_token_gives_a_short_line() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("lstm_1l_head");
    let input = tmp.path().join("x.csv");
    let token = "7".repeat(5 << 20) + &"z".repeat(5 << 20);
    std::fs::write(
        &input,
        format!("0.1,0.2,0.3,0.4,0.5,0.6\n0.1,{token},0,0,0,0\n"),
    )
    .unwrap();
    let out = run(&case.model_path(), &input, &tmp.path().join("y.csv"));
    let line = assert_clean_failure(
        "10 MB token",
        &out,
        &[
            "x.csv:2: column 2: `7777",
            "…` (10485760 characters) is not a number",
        ],
    );
    let path_len = input.display().to_string().len();
    assert!(line.len() < path_len + 200, "{} bytes", line.len());

    // A `.ts` line whose class label is missing: the dimension is not echoed.
    let data = tmp.path().join("d.ts");
    let values = vec!["0.25"; 1 << 20].join(",");
    std::fs::write(
        &data,
        format!("@classLabel true a b\n@data\n{values}:{values}\n"),
    )
    .unwrap();
    let out = tinyrnn(&os(&[
        &"train",
        &"--train",
        &data,
        &"--out",
        &tmp.path().join("m.safetensors"),
    ]));
    let line = assert_clean_failure("missing label", &out, &["d.ts:3:", "no class label"]);
    assert!(line.len() < path_len + 400, "{} bytes: {line}", line.len());
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("lstm_1l_head");
    let plain = std::fs::read_to_string(case.input_path()).unwrap();
    let bom = tmp.path().join("bom.csv");
    std::fs::write(&bom, format!("\u{feff}{plain}")).unwrap();
    let (a, b) = (tmp.path().join("a.csv"), tmp.path().join("b.csv"));
    assert_ok("run", &run(&case.model_path(), &case.input_path(), &a));
    assert_ok("run with BOM", &run(&case.model_path(), &bom, &b));
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let ts = tiny_ts(tmp.path(), "d.ts");
    let with_bom = tmp.path().join("bom.ts");
    let text = std::fs::read_to_string(&ts).unwrap();
    std::fs::write(&with_bom, format!("\u{feff}{text}")).unwrap();
    let train = |data: &Path, out: &Path| {
        tinyrnn(&os(&[
            &"train",
            &"--train",
            &data,
            &"--hidden",
            &"3",
            &"--epochs",
            &"2",
            &"--out",
            &out,
        ]))
    };
    let (m1, m2) = (
        tmp.path().join("m1.safetensors"),
        tmp.path().join("m2.safetensors"),
    );
    assert_ok("train", &train(&ts, &m1));
    assert_ok("train with BOM", &train(&with_bom, &m2));
    assert_eq!(read_tensors(&m1), read_tensors(&m2));
}

#[test]
fn a_ts_directory_is_named_as_such() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("Gestures_TRAIN.ts");
    std::fs::create_dir(&dir).unwrap();
    let out = tinyrnn(&os(&[
        &"train",
        &"--train",
        &dir,
        &"--out",
        &tmp.path().join("m.safetensors"),
    ]));
    let line = assert_clean_failure(
        "train on a .ts directory",
        &out,
        &["Gestures_TRAIN.ts: is a directory, not a .ts file"],
    );
    assert!(!line.contains(".csv"), "{line}");
}

/// `(series, channel, step)` of the holes in [`with_holes`]: two leading values of one
/// channel (filled backwards) and one in the middle (filled forwards).
const HOLES: [(usize, usize, usize); 3] = [(0, 0, 0), (0, 0, 1), (3, 1, 5)];

fn with_holes(s: usize, d: usize, t: usize) -> String {
    match HOLES.iter().position(|&h| h == (s, d, t)) {
        Some(0) => "?".into(),
        Some(_) => "NaN".into(),
        None => format!("{:.3}", tiny_ts_value(s, d, t)),
    }
}

/// [`with_holes`] filled by hand: what `--fill-missing forward` must read.
fn filled(s: usize, d: usize, t: usize) -> String {
    let (s, d, t) = match (s, d, t) {
        (0, 0, 0 | 1) => (0, 0, 2),
        (3, 1, 5) => (3, 1, 4),
        other => other,
    };
    format!("{:.3}", tiny_ts_value(s, d, t))
}

#[test]
fn fill_missing_forward_in_train_eval_and_quantize() {
    let tmp = TempDir::new().unwrap();
    let holes = tmp.path().join("holes.ts");
    std::fs::write(&holes, tiny_ts_text(with_holes)).unwrap();
    let full = tmp.path().join("full.ts");
    std::fs::write(&full, tiny_ts_text(filled)).unwrap();
    let fill: &[&str] = &["--fill-missing", "forward"];
    let with = |mut args: Vec<OsString>, extra: &[&str]| {
        args.extend(extra.iter().map(OsString::from));
        tinyrnn(&args)
    };

    // train
    let train = |data: &Path, out: &Path| {
        os(&[
            &"train",
            &"--train",
            &data,
            &"--hidden",
            &"3",
            &"--epochs",
            &"3",
            &"--out",
            &out,
        ])
    };
    let (m_holes, m_full) = (
        tmp.path().join("h.safetensors"),
        tmp.path().join("f.safetensors"),
    );
    let out = with(train(&holes, &m_holes), &[]);
    assert_clean_failure(
        "train without --fill-missing",
        &out,
        &[
            "holes.ts:8: dimension 1: missing value `?` at step 1",
            "--fill-missing forward",
        ],
    );
    assert_ok("train --fill-missing", &with(train(&holes, &m_holes), fill));
    assert_ok("train", &with(train(&full, &m_full), &[]));
    assert_eq!(read_tensors(&m_holes), read_tensors(&m_full));

    // eval
    let eval = |data: &Path| os(&[&"eval", &"--model", &m_full, &"--data", &data, &"--json"]);
    let out = with(eval(&holes), &[]);
    assert_clean_failure(
        "eval without --fill-missing",
        &out,
        &["--fill-missing forward"],
    );
    let got = with(eval(&holes), fill);
    assert_ok("eval --fill-missing", &got);
    assert_eq!(got.stdout, with(eval(&full), &[]).stdout);

    // quantize --calib
    let quantize = |calib: &Path, out: &Path| {
        os(&[
            &"quantize",
            &"--model",
            &m_full,
            &"--calib",
            &calib,
            &"--format",
            &"q15",
            &"--out",
            &out,
            &"--json",
        ])
    };
    let (q_holes, q_full) = (
        tmp.path().join("qh.safetensors"),
        tmp.path().join("qf.safetensors"),
    );
    let out = with(quantize(&holes, &q_holes), &[]);
    assert_clean_failure(
        "quantize without --fill-missing",
        &out,
        &["--fill-missing forward"],
    );
    assert_ok(
        "quantize --fill-missing",
        &with(quantize(&holes, &q_holes), fill),
    );
    assert_ok("quantize", &with(quantize(&full, &q_full), &[]));
    assert_eq!(read_tensors(&q_holes), read_tensors(&q_full));

    // A channel without any value cannot be filled.
    let empty = tmp.path().join("empty.ts");
    let text = tiny_ts_text(|s, d, t| {
        if (s, d) == (2, 1) {
            "?".into()
        } else {
            with_holes(s, d, t)
        }
    });
    std::fs::write(&empty, text).unwrap();
    let out = with(train(&empty, &tmp.path().join("e.safetensors")), fill);
    assert_clean_failure(
        "all missing",
        &out,
        &["empty.ts:10: dimension 2: every value is missing"],
    );
}

/// Messages that name tensors do not depend on the hash-map order of the file's keys: the
/// same line on every run, names in sorted order.
#[test]
fn messages_naming_keys_are_the_same_on_every_run() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("gru_bare"); // 1 input, keys without a prefix
    let original = read_tensors(&case.model_path());
    let names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let mut tensors = BTreeMap::new();
    // Inserted in reverse so that no insertion order could produce the sorted one.
    for name in names.iter().rev() {
        for (key, t) in &original {
            tensors.insert(format!("{name}.{key}"), t.clone());
        }
    }
    let model = tmp.path().join("many.safetensors");
    write_tensors(&model, &tensors);
    let mut lines = Vec::new();
    for _ in 0..6 {
        let out = run(&model, &case.input_path(), &tmp.path().join("y.csv"));
        lines.push(assert_clean_failure(
            "six modules",
            &out,
            &["many.safetensors"],
        ));
    }
    assert!(lines.iter().all(|l| l == &lines[0]), "{lines:#?}");
    let at: Vec<usize> = names
        .iter()
        .map(|n| {
            lines[0]
                .find(n)
                .unwrap_or_else(|| panic!("{n} not in {}", lines[0]))
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "not sorted: {}",
        lines[0]
    );
}
