//! On-target checks of `cargo xtask test`: verification of the PyTorch fixtures (f32,
//! f32-fast, q15, w8a16) on every ARM target under QEMU, a corrupted golden vector that must be caught,
//! two `tinyrnn verify` runs at once that must not see each other's firmware, the
//! panic-free inference build and the integer-only (no soft-float) check on Cortex-M0.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tinyrnn_sim::export::F32_FAST;
use tinyrnn_sim::model_file::Nonlinearity;
use tinyrnn_sim::target::{
    self,
    cases::CaseSource,
    elf,
    isolation::{isolated_build, RunDir},
    verify::{prepare, run_cases, ModelSpec, PrepareOptions, PreparedCase, RunCasesOptions},
};

use crate::{cmd, repo_path, repo_root};

/// Quantised formats every fixture is also verified in.
const QUANT_FORMATS: &[&str] = &["q15", "w8a16"];

/// Every format a fixture is verified in: f32 with accurate and with fast activations, then the
/// quantised ones.
const FORMATS: &[&str] = &["f32", F32_FAST, "q15", "w8a16"];

/// Targets of the panic-free build (no FPU and FPU).
const NOPANIC_TARGETS: &[&str] = &["thumbv6m-none-eabi", "thumbv7em-none-eabihf"];

/// Fixtures the panic-free and integer-only builds use: one per cell kind.
const NOPANIC_FIXTURES: &[&str] = &["rnn_relu_2l_head", "lstm_1l_head", "gru_2l_head"];

/// The fixture used for the corrupted-golden check, and the step that is corrupted.
const CORRUPT_FIXTURE: &str = "gru_2l_head";
const CORRUPT_STEP: usize = 7;

/// The concurrent-runs check: one good model and one with a corrupted golden vector, of
/// different shapes, verified at the same time on the same target. The M3's QEMU machine is
/// the one that prints the "Timer with period zero" line that must not reach the user.
const CONCURRENT_GOOD: &str = "gru_2l_head";
const CONCURRENT_CORRUPT: &str = "lstm_1l_head";
const CONCURRENT_STEP: usize = 5;
const CONCURRENT_TARGET: &str = "thumbv7m-none-eabi";

/// One PyTorch parity fixture.
struct Fixture {
    name: String,
    dir: PathBuf,
    nonlinearity: Nonlinearity,
}

fn fixtures() -> Result<Vec<Fixture>> {
    let root = repo_path("tests/fixtures/pytorch");
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(&root).with_context(|| format!("reading {}", root.display()))?;
    for entry in entries {
        let dir = entry?.path();
        let meta = dir.join("meta.json");
        if !meta.is_file() || !dir.join("model.safetensors").is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&meta)?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", meta.display()))?;
        let nonlinearity = match json["nonlinearity"].as_str() {
            Some("relu") => Nonlinearity::Relu,
            _ => Nonlinearity::Tanh,
        };
        out.push(Fixture {
            name: dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            dir,
            nonlinearity,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.is_empty() {
        bail!("no fixtures in {}", root.display());
    }
    Ok(out)
}

/// The host CLI (debug build; `cargo test --workspace` builds it anyway).
fn cli() -> Result<PathBuf> {
    cmd::run(cmd::cargo(
        repo_root(),
        &["build", "--quiet", "-p", "tinyrnn-sim"],
    ))?;
    Ok(repo_path("target/debug/tinyrnn"))
}

/// `tinyrnn quantize` of a fixture into `target/xtask/fixtures/<name>_<format>.safetensors`.
fn quantized(cli: &Path, fixture: &Fixture, format: &str) -> Result<PathBuf> {
    let out = repo_path(&format!(
        "target/xtask/fixtures/{}_{format}.safetensors",
        fixture.name
    ));
    std::fs::create_dir_all(out.parent().expect("has a parent"))?;
    let model = fixture.dir.join("model.safetensors");
    let calib = fixture.dir.join("input.csv");
    let output = cmd::output(cmd::command(
        repo_root(),
        &cli.to_string_lossy(),
        &[
            "quantize",
            "--model",
            &model.to_string_lossy(),
            "--calib",
            &calib.to_string_lossy(),
            "--format",
            format,
            "--nonlinearity",
            fixture.nonlinearity.name(),
            "--out",
            &out.to_string_lossy(),
        ],
    ))?;
    drop(output);
    Ok(out)
}

/// Specs for every fixture in f32, f32-fast and each quantised format, grouped by format.
fn fixture_specs(cli: &Path, only: Option<&[&str]>) -> Result<Vec<(String, Vec<ModelSpec>)>> {
    let fixtures: Vec<Fixture> = fixtures()?
        .into_iter()
        .filter(|f| only.is_none_or(|names| names.contains(&f.name.as_str())))
        .collect();
    let float_specs = |fast: bool| -> Vec<ModelSpec> {
        fixtures
            .iter()
            .map(|f| ModelSpec {
                model: f.dir.join("model.safetensors"),
                input: f.dir.join("input.csv"),
                nonlinearity: Some(f.nonlinearity),
                fast,
            })
            .collect()
    };
    let mut groups = vec![
        ("f32".to_owned(), float_specs(false)),
        (F32_FAST.to_owned(), float_specs(true)),
    ];
    for format in QUANT_FORMATS {
        let mut specs = Vec::new();
        for f in &fixtures {
            specs.push(ModelSpec {
                model: quantized(cli, f, format)?,
                input: f.dir.join("input.csv"),
                nonlinearity: Some(f.nonlinearity),
                fast: false,
            });
        }
        groups.push(((*format).to_owned(), specs));
    }
    Ok(groups)
}

/// Names cases `<fixture> <format>` (quantised files are named `<fixture>_<format>`).
fn rename(cases: &mut [PreparedCase]) {
    for case in cases {
        let fixture = case
            .name
            .split(' ')
            .next()
            .unwrap_or("")
            .trim_end_matches("_q15")
            .trim_end_matches("_w8a16")
            .to_owned();
        case.name = format!("{fixture} {}", case.format);
        case.source.name = case.name.clone();
    }
}

/// `verify` of every fixture × {f32, f32-fast, q15, w8a16} on every ARM target: one firmware build per
/// target carries every case; the w8a16 cases stream their input through semihosting.
pub fn verify_fixtures() -> Result<()> {
    let cli = cli()?;
    let mut cases = Vec::new();
    for (format, specs) in fixture_specs(&cli, None)? {
        let stream = format == "w8a16";
        cases.extend(prepare(
            &specs,
            PrepareOptions {
                stream,
                corrupt_golden: None,
            },
        )?);
    }
    rename(&mut cases);
    let timeout = target::qemu::timeout()?;
    let mut failures = Vec::new();
    let mut all = Vec::new();
    for machine in target::qemu::MACHINES {
        let started = Instant::now();
        // 256 KB of flash (M0, M3) cannot hold every fixture in every format: one build per
        // format there; one build for everything on the 4 MB parts.
        let batches: Vec<Vec<&PreparedCase>> = if target::has_fpu(machine.target) {
            vec![cases.iter().collect()]
        } else {
            FORMATS
                .iter()
                .map(|f| cases.iter().filter(|c| c.format == *f).collect())
                .collect()
        };
        let mut rows = Vec::new();
        let mut build_seconds = 0.0;
        for batch in batches {
            let batch: Vec<PreparedCase> =
                batch.into_iter().map(PreparedCase::clone_case).collect();
            let (batch_rows, built) = run_cases(
                &batch,
                machine.target,
                RunCasesOptions {
                    bin: "verify",
                    compare: true,
                    verbose: false,
                    timeout,
                },
            )?;
            build_seconds += built.elapsed.as_secs_f64();
            rows.extend(batch_rows);
        }
        println!(
            "{}: {} case(s), firmware built in {:.1} s, built + run in {:.1} s",
            machine.target,
            rows.len(),
            build_seconds,
            started.elapsed().as_secs_f64()
        );
        failures.extend(
            rows.iter()
                .filter(|r| !r.matched)
                .map(|r| format!("{} on {} (step {:?})", r.name, r.target, r.first_mismatch)),
        );
        all.extend(rows);
    }
    tinyrnn_sim::cmd::verify::print_table(&all);
    if !failures.is_empty() {
        bail!(
            "device outputs differ from the host: {}",
            failures.join("; ")
        );
    }
    println!(
        "{} case(s) × target(s): every output of every step matches the host",
        all.len()
    );
    Ok(())
}

/// A corrupted expected output must make `tinyrnn verify` fail, at the corrupted step.
pub fn verify_corrupt() -> Result<()> {
    let cli = cli()?;
    let dir = repo_path(&format!("tests/fixtures/pytorch/{CORRUPT_FIXTURE}"));
    let fixture = Fixture {
        name: CORRUPT_FIXTURE.into(),
        dir: dir.clone(),
        nonlinearity: Nonlinearity::Tanh,
    };
    let q15 = quantized(&cli, &fixture, "q15")?;
    let model = dir.join("model.safetensors");
    let input = dir.join("input.csv");
    let step = CORRUPT_STEP.to_string();
    for stream in [false, true] {
        let mut args = vec![
            "verify",
            "--model",
            model.to_str().context("path")?,
            "--model",
            q15.to_str().context("path")?,
            "--input",
            input.to_str().context("path")?,
            "--target",
            "thumbv7em-none-eabihf",
            "--json",
            "--corrupt-golden",
            &step,
        ];
        if stream {
            args.push("--stream");
        }
        let command = cmd::command(repo_root(), &cli.to_string_lossy(), &args);
        println!("$ {}", cmd::describe(&command));
        let mut command = command;
        let output = command.output().context("running tinyrnn verify")?;
        if output.status.success() {
            bail!("`tinyrnn verify --corrupt-golden {step}` passed: the check cannot fail");
        }
        let rows: serde_json::Value = serde_json::from_slice(&output.stdout)
            .context("tinyrnn verify --json printed no JSON (did it fail for another reason?)")?;
        let rows = rows.as_array().context("JSON list")?;
        for row in rows {
            if row["match"] != serde_json::Value::Bool(false)
                || row["first_mismatch"].as_u64() != Some(CORRUPT_STEP as u64)
            {
                bail!("expected a mismatch at step {step}, got {row}");
            }
        }
        println!(
            "   {} case(s){}: exit status {}, first mismatch at step {step} as expected",
            rows.len(),
            if stream { " (streamed)" } else { "" },
            output.status.code().unwrap_or(-1)
        );
    }
    Ok(())
}

/// What one `tinyrnn verify --json` run of the concurrent check must report.
struct Expected<'a> {
    /// The model file's stem, which names the run's only result row.
    stem: &'a str,
    /// The other run's model, which this run's output must not mention.
    other: &'a str,
    /// Steps of its input.
    steps: usize,
    /// `None`: every output matches; `Some(step)`: the first mismatch is there.
    mismatch: Option<usize>,
}

/// Checks one finished run of the concurrent check against what it alone must report.
fn check_concurrent_run(
    label: &str,
    output: &std::process::Output,
    expected: &Expected<'_>,
) -> Result<()> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = || format!("{label}: {}, stderr:\n{stderr}", output.status);
    if output.status.success() != expected.mismatch.is_none() {
        bail!(
            "{}\nexpected {}",
            context(),
            if expected.mismatch.is_none() {
                "success"
            } else {
                "a failure"
            }
        );
    }
    let rows: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{}\nno JSON on stdout", context()))?;
    let [row] = rows.as_array().map(Vec::as_slice).unwrap_or_default() else {
        bail!("{}\nexpected one result row, got {rows}", context());
    };
    let name = row["name"].as_str().unwrap_or_default();
    let first_mismatch = row["first_mismatch"].as_u64().map(|s| s as usize);
    if !name.starts_with(expected.stem)
        || row["steps"].as_u64() != Some(expected.steps as u64)
        || row["target"].as_str() != Some(CONCURRENT_TARGET)
        || first_mismatch != expected.mismatch
    {
        bail!(
            "{}\nexpected model {} ({} steps, first mismatch {:?}), got {row}",
            context(),
            expected.stem,
            expected.steps,
            expected.mismatch
        );
    }
    if stderr.contains(expected.other)
        || String::from_utf8_lossy(&output.stdout).contains(expected.other)
    {
        bail!(
            "{}\nthe output mentions the other run's model {}",
            context(),
            expected.other
        );
    }
    if let Some(step) = expected.mismatch {
        // The failure names this run's model and step.
        let message = format!("{name} on {CONCURRENT_TARGET} (first mismatch at step {step})");
        if !stderr.contains(&message) {
            bail!("{}\nexpected the message `{message}`", context());
        }
    }
    if stderr.contains("Timer with period zero") {
        bail!(
            "{}\nQEMU's known \"Timer with period zero\" line leaked into the output",
            context()
        );
    }
    Ok(())
}

/// Two `tinyrnn verify` runs started at once on the same target, one good and one whose golden
/// vector is corrupted, of different shapes: each must report its own model, the good one must
/// pass and the corrupted one must fail alone, at its step. Two rounds, started in both orders.
pub fn verify_concurrent() -> Result<()> {
    let cli = cli()?;
    let fixture = |name: &str| repo_path(&format!("tests/fixtures/pytorch/{name}"));
    let steps_of = |input: &Path| -> Result<usize> {
        let text = std::fs::read_to_string(input)
            .with_context(|| format!("reading {}", input.display()))?;
        Ok(text.lines().filter(|l| !l.trim().is_empty()).count())
    };
    let good = Fixture {
        name: CONCURRENT_GOOD.into(),
        dir: fixture(CONCURRENT_GOOD),
        nonlinearity: Nonlinearity::Tanh,
    };
    let good_model = quantized(&cli, &good, "q15")?;
    let good_input = good.dir.join("input.csv");
    let bad_model = fixture(CONCURRENT_CORRUPT).join("model.safetensors");
    let bad_input = fixture(CONCURRENT_CORRUPT).join("input.csv");
    let good_stem = format!("{CONCURRENT_GOOD}_q15");
    let step = CONCURRENT_STEP.to_string();
    let path = |p: &Path| p.to_string_lossy().into_owned();
    // The good model streams its input (run-directory files), the other runs from flash.
    let good_args = [
        "verify".to_owned(),
        "--model".into(),
        path(&good_model),
        "--input".into(),
        path(&good_input),
        "--target".into(),
        CONCURRENT_TARGET.into(),
        "--stream".into(),
        "--json".into(),
    ];
    let bad_args = [
        "verify".to_owned(),
        "--model".into(),
        path(&bad_model),
        "--input".into(),
        path(&bad_input),
        "--target".into(),
        CONCURRENT_TARGET.into(),
        "--corrupt-golden".into(),
        step,
        "--json".into(),
    ];
    let expected_good = Expected {
        stem: &good_stem,
        other: CONCURRENT_CORRUPT,
        steps: steps_of(&good_input)?,
        mismatch: None,
    };
    let expected_bad = Expected {
        stem: CONCURRENT_CORRUPT,
        other: CONCURRENT_GOOD,
        steps: steps_of(&bad_input)?,
        mismatch: Some(CONCURRENT_STEP),
    };
    for round in 0..2 {
        let started = Instant::now();
        let mut runs = [
            ("good run", &good_args[..], &expected_good),
            ("corrupted run", &bad_args[..], &expected_bad),
        ];
        if round == 1 {
            runs.reverse();
        }
        let children = runs
            .iter()
            .map(|(label, args, _)| {
                let mut command = cmd::command(repo_root(), &cli.to_string_lossy(), args);
                println!("$ {} &", cmd::describe(&command));
                command
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .with_context(|| format!("starting the {label}"))
            })
            .collect::<Result<Vec<_>>>()?;
        // Collected in threads: a child blocked on a full pipe would stall the other wait.
        let outputs = std::thread::scope(|scope| {
            let waits: Vec<_> = children
                .into_iter()
                .map(|child| scope.spawn(move || child.wait_with_output()))
                .collect();
            waits
                .into_iter()
                .map(|w| w.join().expect("wait thread panicked"))
                .collect::<std::io::Result<Vec<_>>>()
        })
        .context("waiting for tinyrnn verify")?;
        // Both verdicts, so that a mix-up shows from both sides.
        let errors: Vec<String> = runs
            .iter()
            .zip(&outputs)
            .filter_map(|((label, _, expected), output)| {
                check_concurrent_run(label, output, expected)
                    .err()
                    .map(|e| format!("{e:#}"))
            })
            .collect();
        if !errors.is_empty() {
            bail!("round {}:\n{}", round + 1, errors.join("\n\n"));
        }
        println!(
            "   round {}: both runs at once in {:.1} s; {good_stem} q15 matches on \
             {CONCURRENT_TARGET}, {CONCURRENT_CORRUPT} f32 fails alone at step \
             {CONCURRENT_STEP}",
            round + 1,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The `nopanic` cases for `formats` of the [`NOPANIC_FIXTURES`], and their names.
fn nopanic_cases(cli: &Path, formats: &[&str]) -> Result<(Vec<CaseSource>, Vec<String>)> {
    let mut cases = Vec::new();
    for (format, specs) in fixture_specs(cli, Some(NOPANIC_FIXTURES))? {
        if formats.contains(&format.as_str()) {
            cases.extend(prepare(&specs, PrepareOptions::default())?);
        }
    }
    rename(&mut cases);
    let names = cases.iter().map(|c| c.name.clone()).collect();
    Ok((cases.into_iter().map(|c| c.source).collect(), names))
}

/// Builds the `nopanic` firmware with `cases` for `target`; the ELF is in the run directory.
fn build_nopanic(target: &str, cases: &[CaseSource]) -> Result<(RunDir, target::build::Built)> {
    let sources: Vec<&CaseSource> = cases.iter().collect();
    isolated_build(target, "nopanic", &sources, false)
}

/// The `nopanic` firmware links only if no panic path survives in `step`.
pub fn panic_free() -> Result<()> {
    let cli = cli()?;
    let (cases, names) = nopanic_cases(&cli, FORMATS)?;
    println!("models: {}", names.join(", "));
    for target in NOPANIC_TARGETS {
        let (_run_dir, built) = build_nopanic(target, &cases).with_context(|| {
            format!(
                "the panic-free build for {target} failed to link: a panic path survives in \
                     the inference path (see `undefined symbol: tinyrnn_inference_path_can_panic` \
                     and its callers above)"
            )
        })?;
        println!(
            "{target}: nopanic links (built in {:.1} s): no panic path in step",
            built.elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// Builds the `nopanic` firmware with `cases` and lists the soft-float routines its ELF
/// contains.
fn nopanic_soft_float_symbols(target: &str, cases: &[CaseSource]) -> Result<Vec<String>> {
    let (_run_dir, built) = build_nopanic(target, cases)?;
    Ok(elf::symbol_names(&std::fs::read(&built.elf)?)?
        .into_iter()
        .filter(|name| elf::is_soft_float(name))
        .collect())
}

/// The q15/w8a16 inference path on Cortex-M0 links no soft-float routine.
pub fn integer_only() -> Result<()> {
    let cli = cli()?;
    let (cases, names) = nopanic_cases(&cli, &["q15", "w8a16"])?;
    println!("models: {}", names.join(", "));
    let target = "thumbv6m-none-eabi";
    let float = nopanic_soft_float_symbols(target, &cases)?;
    if !float.is_empty() {
        bail!(
            "the fixed-point inference path on {target} links soft-float routines: {}",
            float.join(", ")
        );
    }
    // The check must be able to fail: the f32 build of the same models does link them.
    let (cases, names) = nopanic_cases(&cli, &["f32"])?;
    let f32_float = nopanic_soft_float_symbols(target, &cases)?.len();
    if f32_float == 0 {
        bail!(
            "sanity check: the f32 build ({}) shows no soft-float symbol; the scan is broken",
            names.join(", ")
        );
    }
    println!(
        "{target}: q15/w8a16 inference links no __aeabi_f*/__aeabi_d* routine \
         (the f32 build of the same models links {f32_float})"
    );
    Ok(())
}
