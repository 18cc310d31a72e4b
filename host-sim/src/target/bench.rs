//! `tinyrnn bench`: instructions per step, flash and RAM of RNN, LSTM and GRU layers
//! (I = 6, H ∈ {16, 32, 64}) in f32, f32-fast, q15 and w8a16 on each target — one multi-model
//! firmware build per target. Weights are random (fixed seed, PyTorch's uniform ±1/√H init),
//! quantised on random calibration data; f32 and f32-fast (the same weights, fast activations)
//! run only where the target has an FPU.

use anyhow::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::verify::{prepare_model, PrepareOptions, PreparedCase};
use crate::dataset::{Dataset, Series};
use crate::export::{Exportable, F32_FAST};
use crate::model_file::{CellKind, FloatModel, LayerWeights, ModelMeta, Nonlinearity};
use crate::quantize::{self, Granularity, QuantKind, QuantOptions};

/// Inputs per step of every benchmarked model.
pub const INPUT: usize = 6;
/// Hidden sizes benchmarked.
pub const HIDDEN: &[usize] = &[16, 32, 64];
/// Steps of in-flash input the timed loop cycles over.
const STEPS: usize = 8;
/// Seed of the random weights and data.
const SEED: u64 = 0x7159_2026;

/// The cells benchmarked.
pub fn cells() -> [CellKind; 3] {
    [
        CellKind::Rnn(Nonlinearity::Tanh),
        CellKind::Lstm,
        CellKind::Gru,
    ]
}

fn random_model(kind: CellKind, hidden: usize, rng: &mut ChaCha8Rng) -> FloatModel {
    let rows = kind.gates() * hidden;
    let bound = 1.0 / (hidden as f32).sqrt();
    let mut uniform =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-bound..bound)).collect() };
    FloatModel {
        kind,
        layers: vec![LayerWeights {
            input_size: INPUT,
            hidden_size: hidden,
            w_ih: uniform(rows * INPUT),
            w_hh: uniform(rows * hidden),
            b_ih: Some(uniform(rows)),
            b_hh: Some(uniform(rows)),
        }],
        head: None,
        prefix: "rnn".into(),
        head_prefix: "head".into(),
        meta: ModelMeta::default(),
    }
}

fn random_rows(steps: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f32>> {
    (0..steps)
        .map(|_| (0..INPUT).map(|_| rng.gen_range(-2.0f32..2.0)).collect())
        .collect()
}

/// Every benchmark model for a target, prepared for the firmware (f32 and f32-fast only with an
/// FPU).
pub fn cases(with_f32: bool) -> Result<Vec<PreparedCase>> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let calib_rows = random_rows(128, &mut rng);
    let calib = Dataset {
        series: vec![Series {
            values: calib_rows.iter().flatten().copied().collect(),
            steps: calib_rows.len(),
            channels: INPUT,
        }],
        labels: None,
        class_names: Vec::new(),
        channels: INPUT,
        name: "bench-calibration".into(),
    };
    let rows = random_rows(STEPS, &mut rng);
    let mut out = Vec::new();
    for kind in cells() {
        for &hidden in HIDDEN {
            let model = random_model(kind, hidden, &mut rng);
            let name = |format: &str| format!("{} h{hidden} {format}", kind.name());
            if with_f32 {
                for (format, fast) in [("f32", false), (F32_FAST, true)] {
                    let m = Exportable::Float {
                        model: model.clone(),
                        fast,
                    };
                    out.push(prepare_model(
                        name(format),
                        &m,
                        &rows,
                        PrepareOptions::default(),
                    )?);
                }
            }
            let cal = quantize::calibrate(&model, &calib)?;
            for (kind_q, granularity) in [
                (QuantKind::Q15, Granularity::Tensor),
                (QuantKind::W8a16, Granularity::Row),
            ] {
                let q = quantize::quantize(
                    &model,
                    &cal,
                    &QuantOptions {
                        kind: kind_q,
                        granularity,
                        headroom: 1.25,
                    },
                )?;
                let m = Exportable::Quant(q);
                out.push(prepare_model(
                    name(kind_q.name()),
                    &m,
                    &rows,
                    PrepareOptions::default(),
                )?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::is_float_format;

    /// The generated source up to its golden outputs (the part activations cannot change),
    /// with the numeric type's name left out.
    fn weights_and_inputs(case: &PreparedCase) -> String {
        let source = &case.source.source;
        let end = source
            .find("pub static GOLDEN_OUTPUT")
            .unwrap_or(source.len());
        source[..end].replace("tinyrnn::F32Fast", "tinyrnn::F32")
    }

    #[test]
    fn f32_fast_cases_share_the_f32_weights() {
        let all = cases(true).expect("cases");
        let of_format = |format: &str| -> Vec<&PreparedCase> {
            all.iter().filter(|c| c.format == format).collect()
        };
        let (accurate, fast) = (of_format("f32"), of_format(F32_FAST));
        assert_eq!(fast.len(), cells().len() * HIDDEN.len());
        assert_eq!(accurate.len(), fast.len());
        for (a, f) in accurate.iter().zip(&fast) {
            assert_eq!((&a.cell, &a.hidden), (&f.cell, &f.hidden));
            assert_eq!(weights_and_inputs(a), weights_and_inputs(f), "{}", f.name);
            assert_ne!(a.expected, f.expected, "{}: same outputs", f.name);
        }
        let without_fpu = cases(false).expect("cases");
        assert!(without_fpu.iter().all(|c| !is_float_format(&c.format)));
    }
}
