//! Fixed-point golden vectors: the committed q15/w8a16 quantisations of every PyTorch fixture
//! (`tests/fixtures/golden/<case>/<fmt>.safetensors`, made by `tests/fixtures/gen_golden.sh`)
//! must produce exactly the committed integer outputs (`<fmt>.bits.csv`), bit for bit. These
//! are the vectors the firmware is held to under QEMU.

use std::path::PathBuf;

use tinyrnn_sim::any_model::AnyModel;
use tinyrnn_sim::dataset::read_sequence_csv;
use tinyrnn_sim::model_file::{FloatModel, Nonlinearity};
use tinyrnn_sim::quantize::{self, Granularity, QuantKind, QuantModel, QuantOptions};
use tinyrnn_tests::{
    cases, fixtures_dir, read_metadata, read_tensors, write_tensors_with_metadata, Case,
};

const FORMATS: [(&str, QuantKind, Granularity); 2] = [
    ("q15", QuantKind::Q15, Granularity::Tensor),
    ("w8a16", QuantKind::W8a16, Granularity::Row),
];

fn golden_dir(case: &Case) -> PathBuf {
    fixtures_dir().join("golden").join(&case.name)
}

fn nonlinearity(case: &Case) -> Option<Nonlinearity> {
    case.meta
        .nonlinearity
        .as_deref()
        .and_then(Nonlinearity::parse)
}

fn read_bits(path: &std::path::Path) -> Vec<Vec<i64>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|v| v.trim().parse::<i64>().expect("integer"))
                .collect()
        })
        .collect()
}

#[test]
fn committed_quantized_models_reproduce_their_golden_bits() {
    let mut checked = 0;
    for case in cases() {
        let input = read_sequence_csv(&case.dir.join("input.csv")).expect("input");
        for (fmt, _, _) in FORMATS {
            let dir = golden_dir(&case);
            let model = AnyModel::load(&dir.join(format!("{fmt}.safetensors")), None, false)
                .unwrap_or_else(|e| panic!("{} {fmt}: {e:#}", case.name));
            let got = model.run_bits(&input);
            let want = read_bits(&dir.join(format!("{fmt}.bits.csv")));
            assert_eq!(got.len(), want.len(), "{} {fmt}: step count", case.name);
            for (t, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(
                    g, w,
                    "{} {fmt}: step {t} differs from the golden bits",
                    case.name
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} golden sets found");
}

#[test]
fn quantizer_reproduces_the_committed_files() {
    // The quantiser is deterministic: re-quantising each fixture gives the committed file.
    for case in cases() {
        let float = FloatModel::load(&case.dir.join("model.safetensors"), nonlinearity(&case))
            .expect("model");
        let data =
            tinyrnn_sim::dataset::load(&case.dir.join("input.csv")).expect("calibration data");
        let folded = float.fold_normalization();
        let cal = quantize::calibrate(&folded, &data).expect("calibration");
        for (fmt, kind, granularity) in FORMATS {
            let opts = QuantOptions {
                kind,
                granularity,
                headroom: 1.25,
            };
            let q = quantize::quantize(&folded, &cal, &opts).expect("quantize");
            let committed = QuantModel::load(&golden_dir(&case).join(format!("{fmt}.safetensors")))
                .expect("committed");
            assert_eq!(q, committed, "{} {fmt}: quantiser output changed; rerun tests/fixtures/gen_golden.sh if intended", case.name);
        }
    }
}

#[test]
fn q15_keeps_the_argmax_on_99_percent_of_steps() {
    let mut with_head = 0;
    for case in cases()
        .into_iter()
        .filter(|c| c.meta.head_outputs.is_some())
    {
        let float = FloatModel::load(&case.dir.join("model.safetensors"), nonlinearity(&case))
            .expect("model");
        let data = tinyrnn_sim::dataset::load(&case.dir.join("input.csv")).expect("data");
        let folded = float.fold_normalization();
        let cal = quantize::calibrate(&folded, &data).expect("calibration");
        for (fmt, kind, granularity) in FORMATS {
            let q = quantize::quantize(
                &folded,
                &cal,
                &QuantOptions {
                    kind,
                    granularity,
                    headroom: 1.25,
                },
            )
            .expect("quantize");
            let report = quantize::report::build(&folded, &q, &cal, &data).expect("report");
            let agreement = report.argmax_agreement.expect("has a head");
            println!(
                "{:<22} {fmt:<6} max err {:.3e} mean err {:.3e} argmax {:.1}%",
                case.name,
                report.max_abs_error,
                report.mean_abs_error,
                agreement * 100.0
            );
            if kind == QuantKind::Q15 {
                assert!(
                    agreement >= 0.99,
                    "{}: q15 argmax agreement {agreement}",
                    case.name
                );
            }
            // The report's error is real: the integer model differs from f32, but by at most 5%
            // of the output range.
            let range = report
                .tensors
                .iter()
                .find(|t| t.tensor == "head.out")
                .map_or(1.0, |t| t.max_abs.max(1.0));
            assert!(
                report.max_abs_error > 0.0 && report.max_abs_error < 0.05 * range,
                "{} {fmt}: {} (range {range})",
                case.name,
                report.max_abs_error
            );
        }
        with_head += 1;
    }
    assert!(with_head >= 6);
}

/// A quantised file with inconsistent formats is refused by the loader, and the writer refuses to
/// produce one. (The writer used to write anything; the bad files are now made by editing a good
/// file's metadata with the `safetensors` crate directly.)
#[test]
fn inconsistent_quantized_files_are_rejected_with_a_clear_error() {
    let case = Case::load("gru_2l_head");
    let good = golden_dir(&case).join("q15.safetensors");
    let q = QuantModel::load(&good).expect("load");
    let tmp = tempfile::tempdir().expect("tmp");
    let check =
        |what: &str, edit: &dyn Fn(&mut QuantModel, &mut serde_json::Value), needle: &str| {
            let (mut bad, mut formats) = (q.clone(), formats_json(&good));
            edit(&mut bad, &mut formats);
            let refused = bad
                .to_bytes()
                .err()
                .unwrap_or_else(|| panic!("{what}: written"));
            assert!(
                format!("{refused:#}").contains(needle),
                "{what}: {refused:#}"
            );
            let path = tmp.path().join(format!("{what}.safetensors"));
            let mut metadata = read_metadata(&good);
            metadata.insert("tinyrnn.formats".into(), formats.to_string());
            write_tensors_with_metadata(&path, &read_tensors(&good), &metadata);
            let err = AnyModel::load(&path, None, false)
                .err()
                .unwrap_or_else(|| panic!("{what}: loaded"));
            let msg = format!("{err:#}");
            assert!(
                msg.contains(needle) && msg.contains(&path.display().to_string()),
                "{what}: {msg}"
            );
        };
    check(
        "chain",
        &|q, f| {
            q.layers[1].format.x_frac = 3;
            f["layers"][1]["x_frac"] = 3.into();
        },
        "x_frac",
    );
    check(
        "range",
        &|q, f| {
            q.layers[0].format.pre_frac = 40;
            f["layers"][0]["pre_frac"] = 40.into();
        },
        "pre_frac",
    );
    check(
        "input",
        &|q, f| {
            q.input_frac = 2;
            f["input_frac"] = 2.into();
        },
        "input_frac",
    );

    // Metadata without the formats entry.
    let bytes = std::fs::read(&good).expect("read");
    // Same-length rename inside the JSON header keeps the file valid safetensors.
    let needle = b"tinyrnn.formats";
    let mut renamed = bytes.clone();
    let at = renamed
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("formats key present");
    renamed[at + 9] = b'F';
    let path = tmp.path().join("noformats.safetensors");
    std::fs::write(&path, &renamed).expect("write");
    let err = AnyModel::load(&path, None, false).expect_err("must fail");
    assert!(format!("{err:#}").contains("tinyrnn.formats"), "{err:#}");
}

/// The `tinyrnn.formats` JSON of a quantised file.
fn formats_json(path: &std::path::Path) -> serde_json::Value {
    let metadata = read_metadata(path);
    serde_json::from_str(&metadata["tinyrnn.formats"]).expect("formats JSON")
}
