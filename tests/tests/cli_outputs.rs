//! What every subcommand does with the files it writes (`host-sim/src/output_file.rs`):
//!
//! * an output that is the same file as an input (or as another output) is refused before any
//!   work, with one line naming both flags and the path, and the input keeps its bytes;
//! * a write that fails half-way (`ulimit -f`) leaves the previous output byte-identical;
//! * outputs are checked before long work: `train` with an unwritable output fails at once;
//! * no subcommand creates a directory: a missing parent is an error naming it.
//!
//! Every input is a copy in a temporary directory, so a regression cannot damage the fixtures.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tinyrnn_tests::{assert_clean_failure, tiny_ts, tinyrnn, tinyrnn_bin, Case, Outcome};

fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_os_string()).collect()
}

fn assert_ok(what: &str, out: &Outcome) {
    assert_eq!(out.code, Some(0), "{what} failed:\n{}", out.stderr);
}

/// Copies `src` into `dir` under `name`.
fn copy(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
    dst
}

/// The files of `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Trains a small GRU on `data` into `dir/name` (one epoch: only the file matters).
fn tiny_model(dir: &Path, data: &Path, name: &str) -> PathBuf {
    let model = dir.join(name);
    let out = tinyrnn(&os(&[
        &"train",
        &"--train",
        &data,
        &"--hidden",
        &"4",
        &"--epochs",
        &"1",
        &"--out",
        &model,
    ]));
    assert_ok("train tiny model", &out);
    model
}

/// Runs `args`; expects a clean failure naming `needles` and every file of `intact` with the
/// bytes it had before.
fn refused(what: &str, args: Vec<OsString>, needles: &[&str], intact: &[&Path]) {
    let before: Vec<Vec<u8>> = intact.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let out = tinyrnn(&args);
    assert_clean_failure(what, &out, needles);
    for (p, b) in intact.iter().zip(before) {
        assert_eq!(
            std::fs::read(p).unwrap(),
            b,
            "{what}: {} was changed",
            p.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// An output that is an input.

#[test]
fn run_refuses_to_overwrite_its_inputs() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("lstm_1l_head");
    let model = copy(&case.model_path(), tmp.path(), "m.safetensors");
    let input = copy(&case.input_path(), tmp.path(), "x.csv");
    let run = |output: &Path| {
        os(&[
            &"run",
            &"--model",
            &model,
            &"--input",
            &input,
            &"--output",
            &output,
        ])
    };
    let line = format!(
        "--output and --input name the same file ({}",
        input.display()
    );
    refused("run --output = --input", run(&input), &[&line], &[&input]);
    refused(
        "run --output = --model",
        run(&model),
        &["--output and --model name the same file", "m.safetensors"],
        &[&model],
    );
    // The same file under other names.
    let dotted = tmp.path().join(".").join("x.csv");
    refused(
        "run --output = ./--input",
        run(&dotted),
        &["--output and --input"],
        &[&input],
    );
    #[cfg(unix)]
    {
        let link = tmp.path().join("link.csv");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        refused(
            "run --output = symlink to --input",
            run(&link),
            &["--output and --input", "link.csv"],
            &[&input],
        );
        let hard = tmp.path().join("hard.csv");
        std::fs::hard_link(&input, &hard).unwrap();
        refused(
            "run --output = hard link to --input",
            run(&hard),
            &["--output and --input", "hard.csv"],
            &[&input],
        );
    }
    // An unrelated output still works.
    assert_ok("run", &tinyrnn(&run(&tmp.path().join("y.csv"))));
}

#[test]
fn quantize_and_export_refuse_to_overwrite_their_inputs() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("lstm_1l_head");
    let model = copy(&case.model_path(), tmp.path(), "m.safetensors");
    let calib = copy(&case.input_path(), tmp.path(), "calib.csv");
    let quantize = |out: &Path| {
        os(&[
            &"quantize",
            &"--model",
            &model,
            &"--calib",
            &calib,
            &"--format",
            &"q15",
            &"--out",
            &out,
        ])
    };
    refused(
        "quantize --out = --model",
        quantize(&model),
        &["--out and --model name the same file", "m.safetensors"],
        &[&model],
    );
    refused(
        "quantize --out = --calib",
        quantize(&calib),
        &["--out and --calib name the same file", "calib.csv"],
        &[&calib],
    );
    let export = |out: &Path| {
        os(&[
            &"export",
            &"--model",
            &model,
            &"--golden",
            &calib,
            &"--out",
            &out,
        ])
    };
    refused(
        "export --out = --model",
        export(&model),
        &["--out and --model name the same file"],
        &[&model],
    );
    refused(
        "export --out = --golden",
        export(&calib),
        &["--out and --golden name the same file", "calib.csv"],
        &[&calib],
    );
}

#[test]
fn train_and_eval_refuse_to_overwrite_their_inputs() {
    let tmp = TempDir::new().unwrap();
    let data = tiny_ts(tmp.path(), "d.ts");
    let test = tiny_ts(tmp.path(), "t.ts");
    let model = tmp.path().join("m.safetensors");
    let train = |out: &Path, curves: &Path| {
        os(&[
            &"train",
            &"--train",
            &data,
            &"--test",
            &test,
            &"--hidden",
            &"4",
            &"--epochs",
            &"1",
            &"--out",
            &out,
            &"--curves",
            &curves,
        ])
    };
    let svg = tmp.path().join("c.svg");
    refused(
        "train --out = --train",
        train(&data, &svg),
        &["--out and --train name the same file", "d.ts"],
        &[&data],
    );
    refused(
        "train --out = --test",
        train(&test, &svg),
        &["--out and --test name the same file", "t.ts"],
        &[&test],
    );
    refused(
        "train --curves = --train",
        train(&model, &data),
        &["--curves and --train name the same file", "d.ts"],
        &[&data],
    );
    refused(
        "train --curves = --out",
        train(&model, &model),
        &["--curves and --out name the same file", "m.safetensors"],
        &[],
    );
    assert!(
        !model.exists() && !svg.exists(),
        "a refused run wrote files"
    );

    // A file that a dataset directory holds is an input too.
    let dir = tmp.path().join("series");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.csv"), "0.1,0.2\n0.3,0.4\n").unwrap();
    std::fs::write(dir.join("b.csv"), "0.5,0.6\n0.7,0.8\n").unwrap();
    std::fs::write(dir.join("labels.csv"), "a.csv,x\nb.csv,y\n").unwrap();
    let inner = dir.join("b.csv");
    refused(
        "train --out = a file of the --train directory",
        os(&[
            &"train",
            &"--train",
            &dir,
            &"--hidden",
            &"2",
            &"--epochs",
            &"1",
            &"--out",
            &inner,
        ]),
        &[
            "--out and --train name the same file",
            "b.csv",
            "read from --train",
        ],
        &[&inner],
    );

    let model = tiny_model(tmp.path(), &data, "m.safetensors");
    let eval = |confusion: &Path| {
        os(&[
            &"eval",
            &"--model",
            &model,
            &"--data",
            &test,
            &"--confusion",
            &confusion,
        ])
    };
    refused(
        "eval --confusion = --data",
        eval(&test),
        &["--confusion and --data name the same file", "t.ts"],
        &[&test],
    );
    refused(
        "eval --confusion = --model",
        eval(&model),
        &["--confusion and --model name the same file"],
        &[&model],
    );
    assert_ok("eval", &tinyrnn(&eval(&svg)));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

// ---------------------------------------------------------------------------------------------
// Writes that fail half-way.

/// Runs the binary with `args` under `ulimit -f blocks` (512-byte blocks in `dash`, 1024 in
/// `bash`: the limits below hold either way). With `ignore_signal`, SIGXFSZ is ignored, so the
/// write fails with EFBIG and the tool reports it; otherwise the kernel kills the process.
fn under_file_limit(blocks: u32, ignore_signal: bool, args: &[OsString]) -> Outcome {
    let trap = if ignore_signal { "trap '' XFSZ; " } else { "" };
    let script = format!("{trap}ulimit -f {blocks}; exec \"$0\" \"$@\"");
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(tinyrnn_bin())
        .args(args)
        .output()
        .expect("run sh");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[cfg(unix)]
#[test]
fn a_write_that_fails_half_way_leaves_the_previous_output() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("lstm_1l_head"); // 6 inputs, 4 outputs
    let model = copy(&case.model_path(), tmp.path(), "m.safetensors");
    // 3,000 steps: about 150 kB of output, far over the 8-block limit.
    let row = "0.1,-0.2,0.3,-0.4,0.5,-0.6\n";
    let input = tmp.path().join("long.csv");
    std::fs::write(&input, row.repeat(3000)).unwrap();
    let output = tmp.path().join("out.csv");
    let args = os(&[
        &"run",
        &"--model",
        &model,
        &"--input",
        &input,
        &"--output",
        &output,
    ]);
    let short = tmp.path().join("short.csv");
    std::fs::write(&short, row.repeat(3)).unwrap();
    assert_ok(
        "run (good output)",
        &tinyrnn(&os(&[
            &"run",
            &"--model",
            &model,
            &"--input",
            &short,
            &"--output",
            &output,
        ])),
    );
    let good = std::fs::read(&output).unwrap();

    // Killed by SIGXFSZ in the middle of the write.
    let out = under_file_limit(8, false, &args);
    assert_ne!(
        out.code,
        Some(0),
        "the limited run succeeded: {}",
        out.stderr
    );
    assert_eq!(std::fs::read(&output).unwrap(), good, "output damaged");

    // The write fails with EFBIG: a clean error, and the temporary file is gone.
    for f in listing(tmp.path()) {
        if f.ends_with(".tinyrnn-tmp") {
            std::fs::remove_file(tmp.path().join(f)).unwrap();
        }
    }
    let out = under_file_limit(8, true, &args);
    assert_clean_failure("EFBIG", &out, &["--output", "out.csv", "cannot write"]);
    assert_eq!(std::fs::read(&output).unwrap(), good, "output damaged");
    assert_eq!(
        listing(tmp.path()),
        ["long.csv", "m.safetensors", "out.csv", "short.csv"]
    );

    // A model file: the previous one still loads.
    let q = tmp.path().join("q.safetensors");
    let quantize = os(&[
        &"quantize",
        &"--model",
        &model,
        &"--calib",
        &input,
        &"--format",
        &"q15",
        &"--out",
        &q,
    ]);
    assert_ok("quantize", &tinyrnn(&quantize));
    let good = std::fs::read(&q).unwrap();
    assert!(
        good.len() > 2048,
        "{} bytes: too small for the limit",
        good.len()
    );
    let out = under_file_limit(1, true, &quantize);
    assert_clean_failure("quantize EFBIG", &out, &["--out", "q.safetensors"]);
    assert_eq!(std::fs::read(&q).unwrap(), good, "model file damaged");
    let out = under_file_limit(1, false, &quantize);
    assert_ne!(out.code, Some(0));
    assert_eq!(std::fs::read(&q).unwrap(), good, "model file damaged");
}

// ---------------------------------------------------------------------------------------------
// Outputs checked before work; no directories created.

/// Runs `args` with a kill after `limit`; `None` if it had to be killed.
fn run_with_limit(args: &[OsString], limit: Duration) -> Option<(Outcome, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(tinyrnn_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tinyrnn");
    loop {
        if child.try_wait().expect("wait").is_some() {
            let out = child.wait_with_output().expect("output");
            let outcome = Outcome {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            return Some((outcome, started.elapsed()));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn train_checks_its_outputs_before_training() {
    let tmp = TempDir::new().unwrap();
    let data = tiny_ts(tmp.path(), "d.ts");
    let curves = tmp.path().join("c.svg");
    let model = tmp.path().join("m.safetensors");
    // A million epochs: hours of training if the outputs were checked only afterwards.
    let train = |out: &Path, curves: &Path| {
        os(&[
            &"train",
            &"--train",
            &data,
            &"--hidden",
            &"8",
            &"--epochs",
            &"1000000",
            &"--out",
            &out,
            &"--curves",
            &curves,
        ])
    };
    let missing = tmp.path().join("no_such_dir");
    let cases: [(&str, Vec<OsString>, &Path); 3] = [
        (
            "--out in a missing directory",
            train(&missing.join("m.safetensors"), &curves),
            &curves,
        ),
        (
            "--curves in a missing directory",
            train(&model, &missing.join("c.svg")),
            &model,
        ),
        ("--out is a directory", train(tmp.path(), &curves), &curves),
    ];
    for (what, args, other) in cases {
        let Some((out, took)) = run_with_limit(&args, Duration::from_secs(60)) else {
            panic!("{what}: still training after 60 s: the output was not checked first");
        };
        let line = assert_clean_failure(what, &out, &["cannot create the file"]);
        assert!(
            line.contains("--out") || line.contains("--curves"),
            "{what}: {line}"
        );
        assert!(!other.exists(), "{what}: {} was written", other.display());
        assert!(
            !out.stderr.contains("epoch"),
            "{what}: training started: {}",
            out.stderr
        );
        assert!(took < Duration::from_secs(60));
    }
    assert!(!missing.exists(), "a directory was created");
    assert_eq!(listing(tmp.path()), ["d.ts"], "files left behind");
}

#[test]
fn no_subcommand_creates_a_directory() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("lstm_1l_head");
    let model = copy(&case.model_path(), tmp.path(), "m.safetensors");
    let input = copy(&case.input_path(), tmp.path(), "x.csv");
    let data = tiny_ts(tmp.path(), "d.ts");
    let classifier = tiny_model(tmp.path(), &data, "c.safetensors");
    let missing = tmp.path().join("new/sub");
    let target = |name: &str| missing.join(name);
    let cases: Vec<(&str, Vec<OsString>, &str)> = vec![
        (
            "run",
            os(&[
                &"run",
                &"--model",
                &model,
                &"--input",
                &input,
                &"--output",
                &target("y.csv"),
            ]),
            "--output",
        ),
        (
            "quantize",
            os(&[
                &"quantize",
                &"--model",
                &model,
                &"--calib",
                &input,
                &"--format",
                &"w8a16",
                &"--out",
                &target("q.safetensors"),
            ]),
            "--out",
        ),
        (
            "export",
            os(&[&"export", &"--model", &model, &"--out", &target("m.rs")]),
            "--out",
        ),
        (
            "train",
            os(&[
                &"train",
                &"--train",
                &data,
                &"--epochs",
                &"1",
                &"--out",
                &target("t.safetensors"),
            ]),
            "--out",
        ),
        (
            "eval",
            os(&[
                &"eval",
                &"--model",
                &classifier,
                &"--data",
                &data,
                &"--confusion",
                &target("c.svg"),
            ]),
            "--confusion",
        ),
    ];
    let named = format!("the directory {} does not exist", missing.display());
    for (what, args, flag) in cases {
        let out = tinyrnn(&args);
        assert_clean_failure(what, &out, &[flag, &named]);
        assert!(
            !tmp.path().join("new").exists(),
            "{what} created a directory"
        );
    }
}

#[test]
fn a_run_that_fails_on_a_late_row_leaves_nothing() {
    let tmp = TempDir::new().unwrap();
    let case = Case::load("lstm_1l_head");
    let model = copy(&case.model_path(), tmp.path(), "m.safetensors");
    let row = "0.1,0.2,0.3,0.4,0.5,0.6\n";
    let input = tmp.path().join("x.csv");
    std::fs::write(
        &input,
        format!("{}0.1,0.2,oops,0.4,0.5,0.6\n", row.repeat(5000)),
    )
    .unwrap();
    let output = tmp.path().join("y.csv");
    let out = tinyrnn(&os(&[
        &"run",
        &"--model",
        &model,
        &"--input",
        &input,
        &"--output",
        &output,
    ]));
    assert_clean_failure("late bad row", &out, &["x.csv:5001:", "column 3", "`oops`"]);
    assert_eq!(listing(tmp.path()), ["m.safetensors", "x.csv"]);
}
