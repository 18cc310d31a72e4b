//! `cargo xtask demo`: the product's main job, end to end, as a list of named steps — train a
//! GRU on UEA BasicMotions, quantise it to q15, evaluate it on the host, export it, build the
//! firmware for Cortex-M4F and Cortex-M0, stream every test recording through QEMU sample by
//! sample and print one table (accuracy on the host and on each device, instructions per step,
//! flash, RAM). Each step leaves its results in `out/demo/`, so any step can be re-run alone
//! (`cargo xtask demo --only device,summary`).
//!
//! The first step still classifies two bundled recordings with a GRU trained in PyTorch and
//! compares with PyTorch's logits (it takes a second).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tinyrnn_sim::export::is_float_format;
use tinyrnn_sim::target::classify::{self, LabelledCase};
use tinyrnn_sim::target::{elf, has_fpu, isolation::isolated_build, qemu::Machine};

use crate::{cmd, repo_path, repo_root, steps::Step, tools};

/// The demo model trained in PyTorch (first step only).
const MODEL: &str = "data/demo/basicmotions_gru.safetensors";
/// PyTorch's logits for the demo recordings.
const EXPECTED_LOGITS: &str = "data/demo/expected_logits.json";
/// Output classes of the demo model, in logit order.
const CLASS_NAMES: &[&str] = &["Standing", "Running", "Walking", "Badminton"];

/// Training and test data (UEA BasicMotions: 40 + 40 recordings, 100 steps × 6 channels).
const TRAIN_DATA: &str = "data/BasicMotions_TRAIN.ts";
const TEST_DATA: &str = "data/BasicMotions_TEST.ts";
/// Where the demo writes everything.
const OUT: &str = "out/demo";
/// Trained f32 model, its training curves and `--json` summary.
const F32_MODEL: &str = "out/demo/gru.safetensors";
const CURVES: &str = "out/demo/curves.svg";
const TRAIN_JSON: &str = "out/demo/train.json";
/// Quantised model and its export (the Rust source a firmware `include!`s).
const Q15_MODEL: &str = "out/demo/gru_q15.safetensors";
const EXPORT: &str = "out/demo/gru_q15.rs";
/// Host evaluation results and confusion matrices.
const EVAL_F32_JSON: &str = "out/demo/eval_f32.json";
const EVAL_Q15_JSON: &str = "out/demo/eval_q15.json";
const CONFUSION_F32: &str = "out/demo/confusion_f32.svg";
const CONFUSION_Q15: &str = "out/demo/confusion_q15.svg";
/// Everything in one file.
const SUMMARY: &str = "out/demo/summary.json";
/// The firmware binary that classifies streamed recordings (`firmware/src/bin/demo.rs`).
const FIRMWARE_BIN: &str = "demo";
/// Cell and hidden size of the demo model.
const CELL: &str = "gru";
const HIDDEN: &str = "32";

/// The devices: target triple and the core's name.
const DEVICES: &[(&str, &str)] = &[
    ("thumbv7em-none-eabihf", "Cortex-M4F"),
    ("thumbv6m-none-eabi", "Cortex-M0"),
];

/// The steps of `cargo xtask demo`, in order.
pub fn steps() -> Vec<Step> {
    vec![
        Step {
            name: "tools",
            about: "rustup targets and QEMU installed",
            run: tools::ensure_firmware_tools,
        },
        Step {
            name: "build",
            about: "build the host CLI (tinyrnn-sim) in release",
            run: build_host_cli,
        },
        Step {
            name: "pytorch",
            about: "classify data/demo/{walking,running}.csv with a GRU trained in PyTorch",
            run: pytorch_check,
        },
        Step {
            name: "train",
            about: "train a GRU (32 hidden units, default settings) on BasicMotions",
            run: train,
        },
        Step {
            name: "quantize",
            about: "quantise it to q15, calibrated on the training data",
            run: quantize,
        },
        Step {
            name: "eval",
            about: "accuracy of the f32 and q15 models on the test data, on the host",
            run: eval,
        },
        Step {
            name: "firmware",
            about: "export the q15 model and build the firmware for Cortex-M4F and Cortex-M0",
            run: firmware,
        },
        Step {
            name: "device",
            about: "stream every test recording through QEMU; compare with the host bit for bit",
            run: device,
        },
        Step {
            name: "summary",
            about: "one table: accuracy, instructions per step, flash and RAM; summary.json",
            run: summary,
        },
    ]
}

fn build_host_cli() -> Result<()> {
    cmd::run(cmd::cargo(
        repo_root(),
        &["build", "--release", "-p", "tinyrnn-sim"],
    ))
}

/// The release CLI built by the `build` step.
fn cli() -> Result<String> {
    let cli = repo_path("target/release/tinyrnn");
    if !cli.is_file() {
        bail!(
            "{} is missing: run `cargo xtask demo --only build` first",
            cli.display()
        );
    }
    Ok(cli.to_string_lossy().into_owned())
}

/// Runs `tinyrnn args…` with its output shown.
fn tinyrnn(args: &[&str]) -> Result<()> {
    create_out_dir()?;
    cmd::run(cmd::command(repo_root(), &cli()?, args))
}

/// `out/demo/`: every demo command writes there, and `tinyrnn` never creates directories (a
/// missing one is an error), so each step, runnable alone with `--only`, makes sure it exists.
fn create_out_dir() -> Result<()> {
    std::fs::create_dir_all(repo_path(OUT)).with_context(|| format!("creating {OUT}"))
}

/// Runs `tinyrnn args…` (which must include `--json`) with stderr shown (progress), parses its
/// stdout as JSON and also writes it to `save`.
fn tinyrnn_json(args: &[&str], save: &str) -> Result<Value> {
    create_out_dir()?;
    let mut command = cmd::command(repo_root(), &cli()?, args);
    let line = cmd::describe(&command);
    println!("$ {line}");
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed ({})", output.status);
    }
    let value: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("`{line}` printed no JSON"))?;
    write_json(save, &value)?;
    Ok(value)
}

fn write_json(path: &str, value: &Value) -> Result<()> {
    create_out_dir()?;
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(repo_path(path), text + "\n").with_context(|| format!("writing {path}"))
}

fn read_json(path: &str, step: &str) -> Result<Value> {
    let text = std::fs::read_to_string(repo_path(path))
        .with_context(|| format!("reading {path} (run `cargo xtask demo --only {step}` first)"))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {path}"))
}

fn require(path: &str, step: &str) -> Result<()> {
    if !repo_path(path).is_file() {
        bail!("{path} is missing: run `cargo xtask demo --only {step}` first");
    }
    Ok(())
}

fn percent(fraction: f64) -> String {
    format!("{:.1} %", 100.0 * fraction)
}

fn pytorch_check() -> Result<()> {
    classify("walking")?;
    classify("running")
}

fn train() -> Result<()> {
    let summary = tinyrnn_json(
        &[
            "train", "--train", TRAIN_DATA, "--test", TEST_DATA, "--cell", CELL, "--hidden",
            HIDDEN, "--out", F32_MODEL, "--curves", CURVES, "--json",
        ],
        TRAIN_JSON,
    )?;
    println!(
        "trained in {:.1} s ({:.0} sequence-steps/s): train accuracy {}, test accuracy {}; \
         wrote {F32_MODEL}, {CURVES}",
        summary["seconds"].as_f64().unwrap_or(0.0),
        summary["steps_per_second"].as_f64().unwrap_or(0.0),
        percent(summary["train_accuracy"].as_f64().unwrap_or(0.0)),
        percent(summary["test_accuracy"].as_f64().unwrap_or(0.0)),
    );
    Ok(())
}

fn quantize() -> Result<()> {
    require(F32_MODEL, "train")?;
    tinyrnn(&[
        "quantize", "--model", F32_MODEL, "--calib", TRAIN_DATA, "--format", "q15", "--out",
        Q15_MODEL,
    ])
}

fn eval() -> Result<()> {
    require(F32_MODEL, "train")?;
    require(Q15_MODEL, "quantize")?;
    for (model, json, svg) in [
        (F32_MODEL, EVAL_F32_JSON, CONFUSION_F32),
        (Q15_MODEL, EVAL_Q15_JSON, CONFUSION_Q15),
    ] {
        let report = tinyrnn_json(
            &[
                "eval",
                "--model",
                model,
                "--data",
                TEST_DATA,
                "--confusion",
                svg,
                "--json",
            ],
            json,
        )?;
        println!(
            "{model}: accuracy {} ({}/{}), confusion matrix {svg}",
            percent(report["accuracy"].as_f64().unwrap_or(0.0)),
            report["correct"],
            report["total"]
        );
    }
    Ok(())
}

/// The q15 model and every test recording, prepared for the firmware.
fn labelled_case() -> Result<LabelledCase> {
    require(Q15_MODEL, "quantize")?;
    classify::prepare_dataset(&repo_path(Q15_MODEL), &repo_path(TEST_DATA))
}

fn firmware() -> Result<()> {
    require(Q15_MODEL, "quantize")?;
    tinyrnn(&["export", "--model", Q15_MODEL, "--out", EXPORT])?;
    let labelled = labelled_case()?;
    println!(
        "firmware/generated/{FIRMWARE_BIN}/: {} ({} {}, {} inputs), first {} steps in flash for \
         the timed loop",
        labelled.case.name,
        labelled.case.format,
        labelled.case.cell,
        labelled.case.input,
        tinyrnn_sim::target::verify::STREAM_FLASH_STEPS
    );
    for (target, core) in DEVICES {
        println!("building the {FIRMWARE_BIN} firmware for {core} ({target}) …");
        // The ELF checked below is this run's copy (removed with `_run_dir`).
        let (_run_dir, built) =
            isolated_build(target, FIRMWARE_BIN, &[&labelled.case.source], false)?;
        let size = std::fs::metadata(&built.elf).map_or(0, |m| m.len());
        println!(
            "   built in {:.1} s: firmware/target/{target}/release/{FIRMWARE_BIN} ({size} bytes \
             with debug info)",
            built.elapsed.as_secs_f64(),
        );
        if !has_fpu(target) && !is_float_format(&labelled.case.format) {
            // A fixed-point model on a core without FPU: pure integer arithmetic.
            let symbols = elf::symbol_names(&std::fs::read(&built.elf)?)?;
            let float: Vec<String> = symbols
                .into_iter()
                .filter(|name| elf::is_soft_float(name))
                .collect();
            if !float.is_empty() {
                bail!(
                    "the {} firmware for {target} links soft-float routines: {}",
                    labelled.case.format,
                    float.join(", ")
                );
            }
            println!("   integer-only: no soft-float routine (__aeabi_f*, __aeabi_d*) is linked");
        }
    }
    Ok(())
}

fn device_json(target: &str) -> String {
    format!("{OUT}/device_{target}.json")
}

/// (recording, step within it) of step `step` of the concatenated stream.
fn recording_of(lengths: &[usize], mut step: usize) -> (usize, usize) {
    for (recording, &len) in lengths.iter().enumerate() {
        if step < len {
            return (recording, step);
        }
        step -= len;
    }
    (lengths.len(), step)
}

fn device() -> Result<()> {
    let labelled = labelled_case()?;
    let host_q15 = read_json(EVAL_Q15_JSON, "eval")?["accuracy"]
        .as_f64()
        .context("eval_q15.json: no accuracy")?;
    // The host's own prediction (same integer arithmetic as the firmware) is `tinyrnn eval`'s.
    if (labelled.host_accuracy() - host_q15).abs() > 1e-12 {
        bail!(
            "the host's golden outputs give accuracy {} but `tinyrnn eval` gives {}",
            percent(labelled.host_accuracy()),
            percent(host_q15)
        );
    }
    let mut failures = Vec::new();
    for (target, core) in DEVICES {
        let machine = Machine::for_target(target)?;
        println!(
            "{core} ({target}, QEMU -machine {}): streaming {} recordings ({} steps × {} \
             inputs) sample by sample, state reset between recordings …",
            machine.machine,
            labelled.recordings(),
            labelled.steps(),
            labelled.case.input
        );
        let started = Instant::now();
        let device = classify::classify_on_target(&labelled, target, FIRMWARE_BIN, false)?;
        write_json(&device_json(target), &serde_json::to_value(&device)?)?;
        let r = &device.result;
        println!(
            "   {}/{} recordings correct ({}); {} of {} outputs equal the host's{} \
             ({:.1} s: build {:.1} s, QEMU {:.1} s)",
            device.correct,
            device.recordings,
            percent(device.accuracy),
            if r.matched { "all" } else { "NOT all" },
            device.outputs_compared,
            if is_float_format(&r.format) {
                " (1e-5)"
            } else {
                " bit for bit"
            },
            started.elapsed().as_secs_f64(),
            device.build_seconds,
            device.run_seconds
        );
        if !device.matches_host {
            failures.push(match r.first_mismatch {
                Some(step) => {
                    let (recording, at) = recording_of(&labelled.case.sequence_lengths, step);
                    format!(
                        "{core}: outputs differ from the host's from step {at} of recording \
                         {recording} (step {step} of the stream)"
                    )
                }
                None => format!("{core}: a recording's class differs from the host's"),
            });
        } else if (device.accuracy - host_q15).abs() > 1e-12 {
            failures.push(format!(
                "{core}: accuracy {} differs from the host's {}",
                percent(device.accuracy),
                percent(host_q15)
            ));
        }
    }
    if !failures.is_empty() {
        bail!(
            "the devices disagree with the host: {}",
            failures.join("; ")
        );
    }
    Ok(())
}

fn summary() -> Result<()> {
    let train = read_json(TRAIN_JSON, "train")?;
    let eval_f32 = read_json(EVAL_F32_JSON, "eval")?;
    let eval_q15 = read_json(EVAL_Q15_JSON, "eval")?;
    let mut devices = Vec::new();
    for (target, core) in DEVICES {
        let device = read_json(&device_json(target), "device")?;
        devices.push((*target, *core, device));
    }
    let acc = |v: &Value| v["accuracy"].as_f64().unwrap_or(f64::NAN);
    let recordings = eval_q15["total"].as_u64().unwrap_or(0);

    println!(
        "\nBasicMotions: {recordings} test recordings × 100 steps × 6 channels (raw values), \
         GRU with {HIDDEN} hidden units + linear head, 4 classes\n"
    );
    println!(
        "| {:<26} | {:>8} | {:>10} | {:>22} | {:>20} | {:<24} |",
        "model / where",
        "accuracy",
        "instr/step",
        "flash (weights + code)",
        "RAM (static + stack)",
        "vs host"
    );
    println!(
        "|{}|{}:|{}:|{}:|{}:|{}|",
        "-".repeat(28),
        "-".repeat(9),
        "-".repeat(11),
        "-".repeat(23),
        "-".repeat(21),
        "-".repeat(26)
    );
    let blank = "";
    println!(
        "| {:<26} | {:>8} | {blank:>10} | {blank:>22} | {blank:>20} | {blank:<24} |",
        "f32, host",
        percent(acc(&eval_f32))
    );
    println!(
        "| {:<26} | {:>8} | {blank:>10} | {blank:>22} | {blank:>20} | {blank:<24} |",
        "q15, host",
        percent(acc(&eval_q15))
    );
    let mut device_rows = Vec::new();
    let mut all_match = true;
    for (target, core, device) in &devices {
        let r = &device["result"];
        let num = |k: &str| r[k].as_u64().unwrap_or(0);
        let (weights, code, flash) = (
            num("flash_weights_bytes"),
            num("flash_code_bytes"),
            num("flash_bytes"),
        );
        let (static_ram, stack) = (num("ram_bytes"), num("stack_bytes"));
        let matches = device["matches_host"].as_bool() == Some(true);
        all_match &= matches;
        let verdict = if matches {
            format!("{} outputs, all equal", device["outputs_compared"])
        } else {
            "DIFFERENT".to_owned()
        };
        println!(
            "| {:<26} | {:>8} | {:>10.0} | {:>22} | {:>20} | {:<24} |",
            format!("q15, {core} (QEMU)"),
            percent(acc(device)),
            r["instructions_per_step"].as_f64().unwrap_or(0.0),
            format!("{weights} + {code} = {flash}"),
            format!("{static_ram} + {stack} = {}", static_ram + stack),
            verdict
        );
        device_rows.push(json!({
            "target": target,
            "core": core,
            "qemu_machine": Machine::for_target(target)?.machine,
            "accuracy": acc(device),
            "correct": device["correct"],
            "recordings": device["recordings"],
            "steps": device["steps"],
            "matches_host": device["matches_host"],
            "outputs_compared": device["outputs_compared"],
            "instructions_per_step": r["instructions_per_step"],
            "flash_bytes": flash,
            "flash_weights_bytes": weights,
            "flash_code_bytes": code,
            "static_ram_bytes": static_ram,
            "state_bytes": r["state_bytes"],
            "stack_bytes": stack,
            "ram_bytes": static_ram + stack,
            "build_seconds": device["build_seconds"],
            "run_seconds": device["run_seconds"],
        }));
    }
    println!(
        "\ninstr/step: executed instructions per step under QEMU -icount (not cycles). flash: the \
         model's weights + the firmware's code (runtime, kernels, the streaming harness and its \
         semihosting I/O). RAM: static RAM (model state, logging buffers) + stack high-water of \
         one step. vs host: outputs of every step of every recording, compared with the host's."
    );
    if all_match {
        println!(
            "Every device output equals the host's bit for bit; device accuracy = host accuracy."
        );
    }
    let summary = json!({
        "dataset": {"train": TRAIN_DATA, "test": TEST_DATA, "test_recordings": recordings},
        "model": {"cell": CELL, "hidden": HIDDEN.parse::<u32>().unwrap_or(0), "f32": F32_MODEL, "q15": Q15_MODEL, "export": EXPORT},
        "train": train,
        "accuracy": {
            "f32_host": acc(&eval_f32),
            "q15_host": acc(&eval_q15),
            "devices": devices.iter().map(|(t, _, d)| ((*t).to_owned(), json!(acc(d)))).collect::<serde_json::Map<_, _>>(),
        },
        "devices": device_rows,
        "files": {
            "training_curves": CURVES,
            "confusion_f32": CONFUSION_F32,
            "confusion_q15": CONFUSION_Q15,
        },
    });
    write_json(SUMMARY, &summary)?;
    println!("\ntraining curves:           {CURVES}");
    println!("confusion matrix (f32):    {CONFUSION_F32}");
    println!("confusion matrix (q15):    {CONFUSION_Q15}");
    println!("exported model (Rust):     {EXPORT}");
    println!("numbers:                   {SUMMARY}");
    Ok(())
}

/// Runs the PyTorch-trained model over `data/demo/<name>.csv`, writes
/// `out/demo/<name>_logits.csv` and prints the class with the largest logit at the last step.
fn classify(name: &str) -> Result<()> {
    let input = format!("data/demo/{name}.csv");
    let output = format!("out/demo/{name}_logits.csv");
    tinyrnn(&[
        "run", "--model", MODEL, "--input", &input, "--output", &output,
    ])?;
    let (class, logits) = last_step_argmax(&repo_path(&output))?;
    let class_name = CLASS_NAMES.get(class).copied().unwrap_or("?");
    println!(
        "{input}: class {class} ({class_name}) has the largest logit at the last step; logits {logits:?}"
    );
    compare_with_pytorch(&format!("{name}.csv"), class_name, &logits)
}

/// Compares with the PyTorch logits in `data/demo/expected_logits.json` (when present): prints
/// the largest difference and fails if PyTorch predicted another class.
fn compare_with_pytorch(recording: &str, class_name: &str, logits: &[f64]) -> Result<()> {
    let path = repo_path(EXPECTED_LOGITS);
    if !path.is_file() {
        println!("({EXPECTED_LOGITS} not found: no comparison with PyTorch)");
        return Ok(());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {EXPECTED_LOGITS}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {EXPECTED_LOGITS}"))?;
    let expected = &json["recordings"][recording];
    let predicted = expected["predicted"]
        .as_str()
        .with_context(|| format!("{EXPECTED_LOGITS}: no recordings.{recording}.predicted"))?;
    let reference: Vec<f64> = expected["logits"]
        .as_array()
        .with_context(|| format!("{EXPECTED_LOGITS}: no recordings.{recording}.logits"))?
        .iter()
        .filter_map(serde_json::Value::as_f64)
        .collect();
    if reference.len() != logits.len() {
        bail!(
            "{EXPECTED_LOGITS} has {} logits for {recording}, we have {}",
            reference.len(),
            logits.len()
        );
    }
    let max_diff = reference
        .iter()
        .zip(logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "PyTorch predicts {predicted}; largest |logit difference| vs PyTorch = {max_diff:.2e}"
    );
    if predicted != class_name {
        bail!("{recording}: we predict {class_name}, PyTorch predicts {predicted}");
    }
    Ok(())
}

/// Reads a logits CSV (one row per timestep) and returns the index of the largest of the last
/// row's class logits, with those logits. Non-numeric rows (a header) are skipped; when a row has
/// more columns than there are classes, the last `CLASS_NAMES.len()` are the logits.
fn last_step_argmax(path: &Path) -> Result<(usize, Vec<f64>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_last_step_argmax(&text).with_context(|| format!("in {}", path.display()))
}

fn parse_last_step_argmax(text: &str) -> Result<(usize, Vec<f64>)> {
    let row = text
        .lines()
        .rev()
        .find_map(|line| {
            let values: Result<Vec<f64>, _> =
                line.split(',').map(|v| v.trim().parse::<f64>()).collect();
            values.ok().filter(|values| !values.is_empty())
        })
        .context("no numeric row")?;
    if row.len() < CLASS_NAMES.len() {
        bail!(
            "last row has {} values, expected {} logits",
            row.len(),
            CLASS_NAMES.len()
        );
    }
    let logits = row[row.len() - CLASS_NAMES.len()..].to_vec();
    let class = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(index, _)| index)
        .context("no logits")?;
    Ok((class, logits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_of_last_row_skipping_header_and_index_column() {
        let csv = "step,a,b,c,d\n0,1,2,3,4\n1,0.5,3.5,-1,0\n\n";
        let (class, logits) = parse_last_step_argmax(csv).unwrap();
        assert_eq!(class, 1);
        assert_eq!(logits, vec![0.5, 3.5, -1.0, 0.0]);
        assert!(parse_last_step_argmax("a,b\n").is_err());
    }

    #[test]
    fn stream_steps_map_to_recordings() {
        assert_eq!(recording_of(&[100, 100, 50], 0), (0, 0));
        assert_eq!(recording_of(&[100, 100, 50], 1234 % 250), (2, 34));
        assert_eq!(recording_of(&[100, 100], 199), (1, 99));
    }
}
