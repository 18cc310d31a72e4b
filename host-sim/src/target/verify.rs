//! On-target runs of exported models: export (in-process), write the firmware case table,
//! build the firmware for a target, run it under QEMU, parse its defmt report, read its ELF
//! sizes, and compare every output of every step with the host. Used by `tinyrnn verify`,
//! `tinyrnn bench` and `cargo xtask test`; runs at the same time are isolated from each other
//! (see [`super::isolation`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::build::Built;
use super::cases::CaseSource;
use super::defmt_log::LogLine;
use super::isolation::isolated_build;
use super::qemu::{self, Machine, RunOptions};
use crate::export::{is_float_format, ExportInfo, Exportable, Golden};
use crate::model_file::Nonlinearity;

/// Absolute tolerance for `f32` and `f32-fast` outputs (fixed point must match bit for bit).
pub const F32_TOLERANCE: f32 = 1e-5;

/// Golden steps embedded in flash when the input is streamed (they drive the timed loop).
pub const STREAM_FLASH_STEPS: usize = 16;

/// A model and the input sequence to verify it on.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// Model file (f32, q15 or w8a16 safetensors).
    pub model: PathBuf,
    /// CSV input, one row per step.
    pub input: PathBuf,
    /// RNN nonlinearity for f32 files that do not say.
    pub nonlinearity: Option<Nonlinearity>,
    /// Fast (`micromath`) activations for an f32 file (format `f32-fast`; an error for a
    /// quantised one).
    pub fast: bool,
}

/// How to prepare cases.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrepareOptions {
    /// Stream the input from a host file instead of embedding it in flash.
    pub stream: bool,
    /// Corrupt the expected output of this step (on the device and the host), to prove that a
    /// mismatch is caught.
    pub corrupt_golden: Option<usize>,
}

/// One model ready for the firmware: its source and what the host expects.
pub struct PreparedCase {
    /// Display name (model file stem and format).
    pub name: String,
    /// `rnn`, `lstm`, `gru`.
    pub cell: String,
    /// `f32`, `f32-fast`, `q15`, `w8a16`.
    pub format: String,
    /// Inputs per step.
    pub input: usize,
    /// Hidden size of each layer.
    pub hidden: Vec<usize>,
    /// Input words per step, for streaming.
    pub input_words: Vec<Vec<u32>>,
    /// Expected output words per step (computed on the host).
    pub expected: Vec<Vec<u32>>,
    /// Streamed input made of several recordings: their lengths in steps (written to
    /// `case<i>.seq`; the firmware resets the state before each and logs its class). Empty: one
    /// sequence.
    pub sequence_lengths: Vec<usize>,
    /// What the firmware includes.
    pub source: CaseSource,
}

impl PreparedCase {
    /// A copy (the case source is not `Clone`).
    pub fn clone_case(&self) -> PreparedCase {
        PreparedCase {
            name: self.name.clone(),
            cell: self.cell.clone(),
            format: self.format.clone(),
            input: self.input,
            hidden: self.hidden.clone(),
            input_words: self.input_words.clone(),
            expected: self.expected.clone(),
            sequence_lengths: self.sequence_lengths.clone(),
            source: CaseSource {
                name: self.source.name.clone(),
                source: self.source.source.clone(),
                stream: self.source.stream,
            },
        }
    }
}

fn words(rows: &[Vec<i64>]) -> Vec<Vec<u32>> {
    // f32 bit patterns are non-negative i64; integers wrap to their two's-complement word.
    rows.iter()
        .map(|row| row.iter().map(|&v| v as u32).collect())
        .collect()
}

fn name_of(path: &Path) -> String {
    // `…/gru_2l_head/model.safetensors` → `gru_2l_head`; `…/x.safetensors` → `x`.
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    match stem.as_deref() {
        Some("model") | None => path
            .parent()
            .and_then(|p| p.file_name())
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned()),
        Some(stem) => stem.to_owned(),
    }
}

/// Prepares one exported model with golden data from `rows`.
pub fn prepare_model(
    name: String,
    model: &Exportable,
    rows: &[Vec<f32>],
    options: PrepareOptions,
) -> Result<PreparedCase> {
    if rows.is_empty() {
        bail!("{name}: the input has no rows");
    }
    let golden = model.golden(rows.iter().map(Vec::as_slice))?;
    let (_, info) = model.generate(None)?;
    let float = is_float_format(info.numeric);
    let mut expected = words(&golden.outputs);
    let input_words = words(&golden.inputs);
    let mut flash = if options.stream {
        let keep = golden.inputs.len().min(STREAM_FLASH_STEPS);
        Golden {
            inputs: golden.inputs[..keep].to_vec(),
            outputs: golden.outputs[..keep].to_vec(),
        }
    } else {
        golden
    };
    if let Some(step) = options.corrupt_golden {
        if step >= expected.len() {
            bail!(
                "--corrupt-golden {step}: the input has only {} steps",
                expected.len()
            );
        }
        let corrupt = |w: u32| {
            if float {
                (f32::from_bits(w) + 0.5).to_bits()
            } else {
                w ^ 1
            }
        };
        expected[step][0] = corrupt(expected[step][0]);
        if let Some(row) = flash.outputs.get_mut(step) {
            // Flash data: f32 bit patterns (non-negative) or the raw integer.
            row[0] = if float {
                i64::from(corrupt(row[0] as u32))
            } else {
                row[0] ^ 1
            };
        }
    }
    let (source, _) = model.generate(Some(&flash))?;
    Ok(case_from(
        name,
        &info,
        input_words,
        expected,
        source,
        options.stream,
    ))
}

/// A prepared case from an exported model and its encoded inputs and expected outputs.
pub(crate) fn case_from(
    name: String,
    info: &ExportInfo,
    input_words: Vec<Vec<u32>>,
    expected: Vec<Vec<u32>>,
    source: String,
    stream: bool,
) -> PreparedCase {
    PreparedCase {
        source: CaseSource {
            name: name.clone(),
            source,
            stream,
        },
        name,
        cell: info.cell.name().to_owned(),
        format: info.numeric.to_owned(),
        input: info.inputs,
        hidden: info.hidden.clone(),
        input_words,
        expected,
        sequence_lengths: Vec::new(),
    }
}

/// Loads, exports and prepares every model of `specs`.
pub fn prepare(specs: &[ModelSpec], options: PrepareOptions) -> Result<Vec<PreparedCase>> {
    specs
        .iter()
        .map(|spec| {
            let model = Exportable::load(&spec.model, spec.nonlinearity, spec.fast)?;
            let series = crate::dataset::read_sequence_csv(&spec.input)?;
            crate::cmd::run::check_width(&spec.input, series.channels, model.input_size())?;
            let rows: Vec<Vec<f32>> = series.rows().map(<[f32]>::to_vec).collect();
            let (_, info) = model.generate(None)?;
            let name = format!("{} {}", name_of(&spec.model), info.numeric);
            prepare_model(name, &model, &rows, options)
                .with_context(|| format!("preparing {}", spec.model.display()))
        })
        .collect()
}

/// The result of one case on one target (also the `--json` row).
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Target triple.
    pub target: String,
    /// Case name.
    pub name: String,
    /// `rnn`, `lstm`, `gru`.
    pub cell: String,
    /// `f32`, `f32-fast`, `q15`, `w8a16`.
    pub format: String,
    /// Inputs per step.
    pub input: usize,
    /// Hidden size (of the last layer; `hidden_layers` has all).
    pub hidden: usize,
    /// Hidden size of each layer.
    pub hidden_layers: Vec<usize>,
    /// Steps compared.
    pub steps: usize,
    /// Every output of every step matched the host (bit-exact, or within 1e-5 for f32).
    #[serde(rename = "match")]
    pub matched: bool,
    /// First step whose outputs differ from the host's (or that is missing).
    pub first_mismatch: Option<usize>,
    /// Largest |device − host| over all outputs (in output units: raw integers or f32).
    pub max_abs_diff: f64,
    /// Executed instructions per step (SysTick under `-icount`, 2N − N steps).
    pub instructions_per_step: f64,
    /// Weights plus code.
    pub flash_bytes: u64,
    /// `size_of_val(&MODEL)`.
    pub flash_weights_bytes: u64,
    /// Flash of the firmware minus every case's weights and golden test vectors (shared code:
    /// runtime, harness and kernels of every case in the same build).
    pub flash_code_bytes: u64,
    /// Static RAM of the firmware (`.data + .bss + .uninit`) with only this case's state.
    pub ram_bytes: u64,
    /// This model's state.
    pub state_bytes: u64,
    /// Stack high-water of one step (bytes below the caller's stack pointer).
    pub stack_bytes: u64,
    /// Every output word the device wrote, step after step (when outputs are compared).
    #[serde(skip)]
    pub device_outputs: Vec<u32>,
    /// The class the device logged for each recording (cases with sequence lengths).
    #[serde(skip)]
    pub device_classes: Vec<Option<usize>>,
}

/// What the firmware reported for one case.
#[derive(Clone, Debug, Default)]
struct Reported {
    weights: u64,
    golden: u64,
    state: u64,
    steps: usize,
    mismatch: Option<usize>,
    n: u64,
    ticks: u64,
    stack: Option<u64>,
    seen_result: bool,
    classes: Vec<Option<usize>>,
}

fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

fn parse_reports(lines: &[LogLine], count: usize) -> Vec<Reported> {
    let mut reports = vec![Reported::default(); count];
    let num = |m: &str, k: &str| field(m, k).and_then(|v| v.parse::<i64>().ok());
    for line in lines {
        let m = line.message.as_str();
        if let Some(rest) = m.strip_prefix("case ") {
            let Some(index) = rest
                .split_whitespace()
                .next()
                .and_then(|i| i.parse::<usize>().ok())
            else {
                continue;
            };
            if let Some(r) = reports.get_mut(index) {
                r.weights = num(m, "weights").unwrap_or(0) as u64;
                r.golden = num(m, "golden").unwrap_or(0) as u64;
                r.state = num(m, "state").unwrap_or(0) as u64;
            }
        } else if m.starts_with("class ") {
            let (Some(index), Some(recording), Some(class)) =
                (num(m, "case"), num(m, "recording"), num(m, "class"))
            else {
                continue;
            };
            if let Some(r) = reports.get_mut(index as usize) {
                let recording = recording as usize;
                if r.classes.len() <= recording {
                    r.classes.resize(recording + 1, None);
                }
                r.classes[recording] = Some(class as usize);
            }
        } else if m.starts_with("result ") {
            let Some(index) = num(m, "case") else {
                continue;
            };
            if let Some(r) = reports.get_mut(index as usize) {
                r.seen_result = true;
                r.steps = num(m, "steps").unwrap_or(0) as usize;
                r.mismatch = num(m, "mismatch").filter(|&v| v >= 0).map(|v| v as usize);
                r.n = num(m, "n").unwrap_or(0) as u64;
                r.ticks = num(m, "ticks").unwrap_or(0) as u64;
                r.stack = num(m, "stack").filter(|&v| v >= 0).map(|v| v as u64);
            }
        }
    }
    reports
}

/// Compares device output words with the host's: (first mismatching step, max |diff|).
fn compare(case: &PreparedCase, got: &[u32]) -> (Option<usize>, f64) {
    let width = case.expected.first().map_or(0, Vec::len);
    let float = is_float_format(&case.format);
    let mut first = None;
    let mut max_diff = 0.0f64;
    for (step, expected) in case.expected.iter().enumerate() {
        let Some(row) = got.get(step * width..(step + 1) * width) else {
            first.get_or_insert(step);
            break;
        };
        for (&g, &e) in row.iter().zip(expected) {
            let (ok, diff) = if float {
                let (a, b) = (f32::from_bits(g), f32::from_bits(e));
                let diff = f64::from((a - b).abs());
                (g == e || diff <= f64::from(F32_TOLERANCE), diff)
            } else {
                let diff = (f64::from(g as i32) - f64::from(e as i32)).abs();
                (g == e, diff)
            };
            if diff.is_finite() {
                max_diff = max_diff.max(diff);
            }
            if !ok {
                first.get_or_insert(step);
            }
        }
    }
    (first, max_diff)
}

/// Options of one target run.
#[derive(Clone, Copy, Debug)]
pub struct RunCasesOptions<'a> {
    /// Firmware binary: `verify` (writes outputs) or `bench`.
    pub bin: &'a str,
    /// Compare the outputs written by the firmware with the host's.
    pub compare: bool,
    /// Show cargo's and the firmware's output.
    pub verbose: bool,
    /// QEMU time-out.
    pub timeout: Duration,
}

/// Builds the `options.bin` firmware with `cases` for `target`, runs it under QEMU and returns
/// one result per case, plus the build. The case table is written and the firmware built
/// under the firmware lock; QEMU runs this run's own copy of the ELF in its own run directory,
/// removed afterwards.
pub fn run_cases(
    cases: &[PreparedCase],
    target: &str,
    options: RunCasesOptions<'_>,
) -> Result<(Vec<CaseResult>, Built)> {
    let machine = Machine::for_target(target)?;
    qemu::ensure_qemu()?;
    let sources: Vec<&CaseSource> = cases.iter().map(|c| &c.source).collect();
    // Semihosting file names are relative to QEMU's working directory: the run directory.
    let (run_dir, built) = isolated_build(target, options.bin, &sources, options.verbose)?;
    let run_dir_path = run_dir.path();
    let elf =
        std::fs::read(&built.elf).with_context(|| format!("reading {}", built.elf.display()))?;
    let sizes = super::elf::sizes(&elf).with_context(|| built.elf.display().to_string())?;
    for (index, case) in cases.iter().enumerate() {
        if case.source.stream {
            let bytes: Vec<u8> = case
                .input_words
                .iter()
                .flatten()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            let path = run_dir_path.join(format!("case{index}.in"));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            if !case.sequence_lengths.is_empty() {
                let lengths: Vec<u8> = case
                    .sequence_lengths
                    .iter()
                    .flat_map(|&n| (n as u32).to_le_bytes())
                    .collect();
                let path = run_dir_path.join(format!("case{index}.seq"));
                std::fs::write(&path, lengths)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    let echo = if options.verbose { Some("   | ") } else { None };
    let run = qemu::run_with(
        &built.elf,
        target,
        &RunOptions {
            timeout: options.timeout,
            cwd: Some(run_dir_path),
            echo,
        },
    );
    let result = (|| {
        let run = run?;
        let tail = || {
            let from = run.lines.len().saturating_sub(8);
            run.lines[from..]
                .iter()
                .map(|l| format!("\n   | {l}"))
                .collect::<String>()
        };
        if run.timed_out {
            bail!(
                "{} on {target} timed out after {} s (QEMU killed){}",
                options.bin,
                options.timeout.as_secs(),
                tail()
            );
        }
        match run.exit_code {
            Some(0 | 1) => {}
            Some(code) => bail!(
                "{} on {target} exited with status {code} (101 = panic, 102 = HardFault, \
                 103 = unexpected exception){}",
                options.bin,
                tail()
            ),
            None => bail!("{} on {target}: QEMU was killed by a signal", options.bin),
        }
        let reports = parse_reports(&run.lines, cases.len());
        let total_weights: u64 = reports.iter().map(|r| r.weights).sum();
        let total_golden: u64 = reports.iter().map(|r| r.golden).sum();
        let total_state: u64 = reports.iter().map(|r| r.state).sum();
        let code = sizes.flash().saturating_sub(total_weights + total_golden);
        let mut results = Vec::new();
        for (index, (case, report)) in cases.iter().zip(&reports).enumerate() {
            if !report.seen_result {
                bail!(
                    "{} on {target}: no result for case {index} ({}){}",
                    options.bin,
                    case.name,
                    tail()
                );
            }
            let mut device_outputs = Vec::new();
            let (first_mismatch, max_abs_diff, steps) = if options.compare {
                let path = run_dir_path.join(format!("case{index}.out"));
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("case {index} ({}): no output file", case.name))?;
                let got: Vec<u32> = bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                let (first, diff) = compare(case, &got);
                device_outputs = got;
                // The device's own in-flash comparison must agree with the host's.
                let first = match (first, report.mismatch) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (first, diff, case.expected.len())
            } else {
                (None, 0.0, report.steps)
            };
            let instructions = if report.n == 0 {
                0.0
            } else {
                machine.instructions_u64(report.ticks) / report.n as f64
            };
            results.push(CaseResult {
                target: target.to_owned(),
                name: case.name.clone(),
                cell: case.cell.clone(),
                format: case.format.clone(),
                input: case.input,
                hidden: case.hidden.last().copied().unwrap_or(0),
                hidden_layers: case.hidden.clone(),
                steps,
                matched: first_mismatch.is_none(),
                first_mismatch,
                max_abs_diff,
                instructions_per_step: (instructions * 10.0).round() / 10.0,
                flash_bytes: report.weights + code,
                flash_weights_bytes: report.weights,
                flash_code_bytes: code,
                ram_bytes: sizes.static_ram().saturating_sub(total_state) + report.state,
                state_bytes: report.state,
                stack_bytes: report.stack.unwrap_or(0),
                device_outputs,
                device_classes: report.classes.clone(),
            });
        }
        if run.exit_code == Some(1) && results.iter().all(|r| r.matched) {
            bail!(
                "{} on {target} reported a failure although every output matched{}",
                options.bin,
                tail()
            );
        }
        Ok(results)
    })();
    drop(run_dir);
    result.map(|r| (r, built))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> LogLine {
        LogLine {
            level: Some("info"),
            message: message.to_owned(),
            location: None,
        }
    }

    #[test]
    fn reports_collect_results_and_per_recording_classes() {
        let lines = [
            line("case 0 name=m inputs=6 outputs=4 golden_steps=16 stream=true weights=100 golden=20 state=64"),
            line("class case=0 recording=0 steps=100 class=2"),
            line("class case=0 recording=2 steps=100 class=1"),
            line("result case=0 steps=300 mismatch=-1 n=16 ticks=2560 stack=320"),
        ];
        let reports = parse_reports(&lines, 1);
        let r = &reports[0];
        assert!(r.seen_result);
        assert_eq!((r.weights, r.golden, r.state), (100, 20, 64));
        assert_eq!((r.steps, r.mismatch, r.n, r.ticks), (300, None, 16, 2560));
        assert_eq!(r.stack, Some(320));
        assert_eq!(r.classes, vec![Some(2), None, Some(1)]);
    }
}
