//! Classifying a labelled dataset on a device: every recording is streamed through the
//! firmware under QEMU, one sample per step, with the state reset between recordings (the
//! harness reads the recording lengths from `case<i>.seq`), in **one** firmware run. The device
//! logs the class of each recording (argmax of the head at its last step) and writes every
//! step's outputs back; the host checks every output against its own, bit for bit for fixed
//! point, and computes the device's accuracy from the device's classes.
//!
//! Used by `cargo xtask demo`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::build::Built;
use super::verify::{run_cases, CaseResult, PreparedCase, RunCasesOptions, STREAM_FLASH_STEPS};
use crate::dataset::{self, Labels};
use crate::evaluation::argmax;
use crate::export::{is_float_format, Exportable, Golden};

/// A labelled dataset prepared for the firmware: one streamed case holding every recording.
pub struct LabelledCase {
    /// The case: every recording's encoded inputs and the host's outputs, concatenated.
    pub case: PreparedCase,
    /// Class names, in model output order.
    pub classes: Vec<String>,
    /// True class of each recording (a model output index).
    pub labels: Vec<usize>,
    /// The class the host predicts for each recording (same arithmetic as the device).
    pub host_predicted: Vec<usize>,
}

impl LabelledCase {
    /// Recordings in the dataset.
    pub fn recordings(&self) -> usize {
        self.labels.len()
    }

    /// Steps over all recordings.
    pub fn steps(&self) -> usize {
        self.case.sequence_lengths.iter().sum()
    }

    /// Fraction of recordings the host classifies correctly.
    pub fn host_accuracy(&self) -> f64 {
        accuracy(&self.host_predicted, &self.labels)
    }
}

fn accuracy(predicted: &[usize], labels: &[usize]) -> f64 {
    let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    correct as f64 / labels.len().max(1) as f64
}

/// Argmax of one step's output words (`f32` bits for float models, integers otherwise).
fn argmax_words(words: &[u32], float: bool) -> usize {
    let values: Vec<f64> = words
        .iter()
        .map(|&w| {
            if float {
                f64::from(f32::from_bits(w))
            } else {
                f64::from(w as i32)
            }
        })
        .collect();
    argmax(&values)
}

/// Loads `model` (f32, q15 or w8a16) and the labelled `data` (`.ts`, CSV; raw values) and
/// prepares one streamed case with every recording.
pub fn prepare_dataset(model: &Path, data: &Path) -> Result<LabelledCase> {
    let exportable = Exportable::load(model, None, false)?;
    let ds = dataset::load(data)?;
    if ds.is_empty() {
        bail!("{}: the data has no series", data.display());
    }
    let Some(Labels::PerSeries(labels)) = &ds.labels else {
        bail!(
            "{}: on-device classification needs one label per series",
            data.display()
        );
    };
    crate::cmd::run::check_width(data, ds.channels, exportable.input_size())?;
    let model_classes = match &exportable {
        Exportable::Float { model, .. } => model.meta.class_names.clone(),
        Exportable::Quant(q) => q.meta.class_names.clone(),
    };
    let (classes, labels): (Vec<String>, Vec<usize>) = if model_classes.is_empty() {
        (ds.class_names.clone(), labels.clone())
    } else {
        let mapped = labels
            .iter()
            .map(|&k| {
                let name = &ds.class_names[k];
                model_classes
                    .iter()
                    .position(|c| c == name)
                    .with_context(|| {
                        format!(
                            "{}: class `{name}` is not one of the model's classes ({})",
                            data.display(),
                            model_classes.join(", ")
                        )
                    })
            })
            .collect::<Result<Vec<usize>>>()?;
        (model_classes, mapped)
    };

    let (_, info) = exportable.generate(None)?;
    let float = is_float_format(info.numeric);
    let mut input_words = Vec::new();
    let mut expected = Vec::new();
    let mut lengths = Vec::new();
    let mut host_predicted = Vec::new();
    let mut flash = None;
    for (i, series) in ds.series.iter().enumerate() {
        if series.steps == 0 {
            bail!("{}: series {} has no steps", data.display(), i + 1);
        }
        let golden = exportable.golden(series.rows())?;
        let to_words = |rows: &[Vec<i64>]| -> Vec<Vec<u32>> {
            rows.iter()
                .map(|row| row.iter().map(|&v| v as u32).collect())
                .collect()
        };
        let outputs = to_words(&golden.outputs);
        host_predicted.push(argmax_words(outputs.last().expect("steps > 0"), float));
        input_words.extend(to_words(&golden.inputs));
        expected.extend(outputs);
        lengths.push(series.steps);
        if flash.is_none() {
            // The first steps of the first recording drive the timed loop in flash.
            let keep = golden.inputs.len().min(STREAM_FLASH_STEPS);
            flash = Some(Golden {
                inputs: golden.inputs[..keep].to_vec(),
                outputs: golden.outputs[..keep].to_vec(),
            });
        }
    }
    let (source, _) = exportable.generate(flash.as_ref())?;
    let stem = model
        .file_stem()
        .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
    let name = format!("{stem} {}", info.numeric);
    Ok(LabelledCase {
        case: PreparedCase {
            sequence_lengths: lengths,
            ..super::verify::case_from(name, &info, input_words, expected, source, true)
        },
        classes,
        labels,
        host_predicted,
    })
}

/// What one device did with the dataset (also a JSON object).
#[derive(Clone, Debug, Serialize)]
pub struct DeviceClassification {
    /// Target triple.
    pub target: String,
    /// Recordings streamed.
    pub recordings: usize,
    /// Steps streamed (over all recordings).
    pub steps: usize,
    /// Recordings the device classified correctly.
    pub correct: usize,
    /// `correct / recordings`.
    pub accuracy: f64,
    /// The class the device logged for each recording.
    pub predicted: Vec<usize>,
    /// Every output of every step equals the host's (bit for bit for fixed point, 1e-5 for f32)
    /// and every class the device logged equals the host's.
    pub matches_host: bool,
    /// Output words compared with the host's.
    pub outputs_compared: usize,
    /// Seconds to build the firmware.
    pub build_seconds: f64,
    /// Seconds to run it under QEMU (with the host's comparison).
    pub run_seconds: f64,
    /// Instructions per step, flash, RAM and the output comparison.
    pub result: CaseResult,
}

/// Builds `bin` for `target` with `labelled` as its only case, streams every recording through
/// it under QEMU and compares the device with the host.
pub fn classify_on_target(
    labelled: &LabelledCase,
    target: &str,
    bin: &str,
    verbose: bool,
) -> Result<DeviceClassification> {
    let started = std::time::Instant::now();
    let (mut results, built): (Vec<CaseResult>, Built) = run_cases(
        std::slice::from_ref(&labelled.case),
        target,
        RunCasesOptions {
            bin,
            compare: true,
            verbose,
            timeout: super::qemu::timeout()?,
        },
    )?;
    let run_seconds = (started.elapsed() - built.elapsed).as_secs_f64();
    let result = results.pop().context("no result")?;
    let recordings = labelled.recordings();
    let float = is_float_format(&labelled.case.format);
    let width = labelled.case.expected.first().map_or(0, Vec::len);
    let mut predicted = Vec::with_capacity(recordings);
    let mut classes_match = true;
    let mut end = 0;
    for (i, &len) in labelled.case.sequence_lengths.iter().enumerate() {
        end += len;
        let logged = result
            .device_classes
            .get(i)
            .copied()
            .flatten()
            .with_context(|| {
                format!("{bin} on {target}: the device logged no class for recording {i}")
            })?;
        // The class logged by the device must be the argmax of the outputs it wrote.
        let last = result
            .device_outputs
            .get((end - 1) * width..end * width)
            .with_context(|| format!("{bin} on {target}: outputs of recording {i} missing"))?;
        if argmax_words(last, float) != logged {
            bail!(
                "{bin} on {target}: recording {i}: the device logged class {logged} but its \
                 outputs' argmax is {}",
                argmax_words(last, float)
            );
        }
        classes_match &= logged == labelled.host_predicted[i];
        predicted.push(logged);
    }
    let correct = predicted
        .iter()
        .zip(&labelled.labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(DeviceClassification {
        target: target.to_owned(),
        recordings,
        steps: labelled.steps(),
        correct,
        accuracy: accuracy(&predicted, &labelled.labels),
        predicted,
        matches_host: result.matched && classes_match,
        outputs_compared: result.device_outputs.len().min(labelled.steps() * width),
        build_seconds: built.elapsed.as_secs_f64(),
        run_seconds,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_of_words_reads_f32_bits_or_signed_integers() {
        let float: Vec<u32> = [0.5f32, -1.0, 2.5, 2.5]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(argmax_words(&float, true), 2, "first of equal maxima");
        let ints: Vec<u32> = [-5i32, -3, -7].iter().map(|&v| v as u32).collect();
        assert_eq!(
            argmax_words(&ints, false),
            1,
            "negative integers are signed"
        );
    }

    #[test]
    fn accuracy_is_a_fraction() {
        assert_eq!(accuracy(&[0, 1, 2, 3], &[0, 1, 2, 0]), 0.75);
        assert_eq!(accuracy(&[], &[]), 0.0);
    }
}
