//! BPTT against PyTorch autograd on the committed fixtures in `tests/fixtures/grad/`
//! (made by `tests/fixtures/gen_grad.py`; see its docstring for the layout and the losses).
//!
//! Each case is a batch of four sequences of lengths 6, 3, 9 and 1 (variable lengths, run by
//! PyTorch through `pack_padded_sequence`). Tolerances, applied to the loss and to every
//! element of every parameter gradient, with `scale = max(1, |reference|)`:
//!
//! - `f32` training path ([`batch_grad`]): `|ours - torch| ≤ 1e-5 · scale` (absolute below 1,
//!   relative above);
//! - the same BPTT in `f64`: `≤ 1e-10 · scale` (the reference is computed in `f64` from the same
//!   f32 weights and inputs, so only rounding separates the two).

use std::path::PathBuf;

use safetensors::SafeTensors;
use serde_json::Value;

use super::*;
use crate::model_file::read_f32;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/grad")
}

struct Case {
    name: String,
    net: Network<f32>,
    inputs: Vec<Vec<f32>>,
    steps: Vec<usize>,
    last: Vec<usize>,
    per_step: Option<Vec<Vec<usize>>>,
    window: Option<usize>,
    loss: f64,
    grads: Vec<(String, Vec<f32>)>,
}

fn load(name: &str) -> Case {
    let d = dir();
    let model = FloatModel::load(&d.join(format!("{name}.safetensors")), None).expect("weights");
    let net = Network::from_float_model(&model).expect("trainable model");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join(format!("{name}.json"))).expect("json"),
    )
    .expect("json");
    let bytes = std::fs::read(d.join(format!("{name}_grad.safetensors"))).expect("grads");
    let st = crate::import::read_safetensors(&bytes).expect("grads");
    // read_f32 converts the f64 reference to f32; compare in f64 from the raw bytes instead.
    let grads = net
        .tensors()
        .into_iter()
        .map(|(key, t)| {
            let (shape, v) = read_f32(&st, &key).expect("grad tensor");
            assert_eq!(
                shape.iter().product::<usize>(),
                t.len(),
                "{name}: {key} shape"
            );
            (key, v)
        })
        .collect();
    let nums = |v: &Value| -> Vec<usize> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_u64().expect("int") as usize)
            .collect()
    };
    let steps = nums(&json["steps"]);
    let inputs = json["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|s| {
            s.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("num") as f32)
                .collect()
        })
        .collect();
    let (last, per_step) = if json["mode"] == "per_step" {
        (
            vec![],
            Some(
                json["labels"]
                    .as_array()
                    .expect("labels")
                    .iter()
                    .map(nums)
                    .collect(),
            ),
        )
    } else {
        (nums(&json["labels"]), None)
    };
    Case {
        name: name.into(),
        net,
        inputs,
        steps,
        last,
        per_step,
        window: json["window"].as_u64().map(|k| k as usize),
        loss: json["loss"].as_f64().expect("loss"),
        grads,
    }
}

/// The f64 reference gradients straight from the file (not rounded to f32).
fn grads_f64(name: &str) -> Vec<(String, Vec<f64>)> {
    let bytes = std::fs::read(dir().join(format!("{name}_grad.safetensors"))).expect("grads");
    let st = SafeTensors::deserialize(&bytes).expect("grads");
    let mut out: Vec<(String, Vec<f64>)> = st
        .tensors()
        .into_iter()
        .map(|(k, t)| {
            assert_eq!(t.dtype(), safetensors::Dtype::F64);
            (
                k,
                t.data()
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn close(ours: f64, reference: f64, tol: f64) -> bool {
    (ours - reference).abs() <= tol * reference.abs().max(1.0)
}

fn check_case(name: &str) {
    let c = load(name);
    let samples: Vec<Sample<'_>> = (0..c.steps.len())
        .map(|i| Sample {
            xs: &c.inputs[i],
            steps: c.steps[i],
            target: match &c.per_step {
                Some(ys) => Target::PerStep(&ys[i]),
                None => Target::Last(c.last[i]),
            },
        })
        .collect();
    // f32, the training path.
    let (g, stats) = batch_grad(&c.net, &samples, c.window);
    assert!(
        close(stats.loss(), c.loss, 1e-5),
        "{}: loss {} vs torch {}",
        c.name,
        stats.loss(),
        c.loss
    );
    let reference = grads_f64(name);
    let find = |key: &str| {
        &reference
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("{name}: no {key}"))
            .1
    };
    for ((key, ours), (_, r32)) in g.tensors().into_iter().zip(&c.grads) {
        let r = find(&key);
        assert_eq!(r.len(), ours.len());
        assert_eq!(r32.len(), ours.len());
        for (i, (a, b)) in ours.iter().zip(r).enumerate() {
            assert!(
                close(f64::from(*a), *b, 1e-5),
                "{name}: {key}[{i}] f32 {a} vs torch {b}"
            );
        }
        assert!(
            r.iter().any(|v| v.abs() > 1e-6),
            "{name}: {key}: reference gradient is all zero"
        );
    }
    // f64, the same code.
    let n64 = c.net.cast::<f64>();
    let terms: usize = samples.iter().map(Sample::terms).sum();
    let mut g64 = n64.zeros_like();
    let mut s64 = Stats::default();
    for s in &samples {
        let xs: Vec<f64> = s.xs.iter().map(|&v| f64::from(v)).collect();
        s64.add(n64.sequence_grad(
            &xs,
            s.steps,
            s.target,
            c.window,
            1.0 / terms as f64,
            &mut g64,
        ));
    }
    assert!(
        close(s64.loss(), c.loss, 1e-10),
        "{name}: f64 loss {} vs torch {}",
        s64.loss(),
        c.loss
    );
    for (key, ours) in g64.tensors() {
        for (i, (a, b)) in ours.iter().zip(find(&key)).enumerate() {
            assert!(
                close(*a, *b, 1e-10),
                "{name}: {key}[{i}] f64 {a} vs torch {b}"
            );
        }
    }
}

#[test]
fn pytorch_autograd_fixtures_match() {
    let manifest: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(dir().join("manifest.json")).expect("manifest"),
    )
    .expect("manifest");
    assert!(
        manifest.len() >= 8,
        "expected every cell kind with 1 and 2 layers"
    );
    for name in &manifest {
        check_case(name);
    }
}
