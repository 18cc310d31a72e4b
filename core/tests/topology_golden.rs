//! Golden vectors of the topologies for the firmware self-test (`firmware/src/bin/selftest/`):
//! three small q15 models — a two-layer bidirectional GRU with an MLP head, a bidirectional
//! projected LSTM with a head on every step, a forecaster (LSTM body, MLP head) — their inputs
//! and the outputs the host computes, in `golden/topologies_q15.rs`. The self-test includes the
//! same file and checks, on every Cortex-M core under QEMU, that the device computes the same
//! bits.
//!
//! This test writes the file: `TINYRNN_BLESS=1 cargo test -p tinyrnn --test topology_golden`
//! regenerates it. Without the variable it fails if the committed file differs from what it
//! would write (weights, inputs and outputs: a change of any result shows here first), and it
//! checks that the models exactly as the file defines them (the `static`s the firmware
//! compiles) compute the file's outputs.

mod reference;

#[allow(dead_code)]
mod golden {
    include!("golden/topologies_q15.rs");
}

use std::fmt::{Display, Write};

use reference::*;
use tinyrnn::topology::bidirectional::BiLayers;
use tinyrnn::{
    BiLayer, BiStack, Bidirectional, ErrorMetric, Forecaster, Head, Mlp, Nonlinearity, QFormat,
    Recurrent, Q15,
};

const PATH: &str = "tests/golden/topologies_q15.rs";

// ---------------------------------------------------------------------------------------------
// What each case computes: the same procedure on the host (here) and on the device.
// ---------------------------------------------------------------------------------------------

/// One run of a bidirectional model: the sample it ran after, the head's outputs (on
/// `[f_{W-1} ; b_0]`, or on every step), and the last layer's outputs `[f_t ; b_t]`.
#[derive(Debug, PartialEq)]
struct Run {
    after: usize,
    head: Vec<i32>,
    outputs: Vec<i16>,
}

/// Pushes every sample; at each run records the head on `[f_{W-1} ; b_0]` (`per_step` false)
/// or on each step in turn (`per_step` true), and all outputs.
fn bidirectional_runs<L, Hd, const I: usize, const W: usize>(
    model: &Bidirectional<Q15, L, Hd, I, W>,
    stride: u32,
    input: &[[i16; I]],
    per_step: bool,
) -> Vec<Run>
where
    L: BiLayers<Q15, W>,
    Hd: Head<Q15>,
{
    let mut state = model.new_state(stride).expect("stride");
    let mut runs = Vec::new();
    for (t, x) in input.iter().enumerate() {
        if !model.push(&mut state, x) {
            continue;
        }
        let mut head = Vec::new();
        let mut out = vec![0i32; Hd::OUTPUT];
        if per_step {
            for s in 0..W {
                model.head_step(&state, s, &mut out);
                head.extend_from_slice(&out);
            }
        } else {
            model.head_final(&state, &mut out);
            head.extend_from_slice(&out);
        }
        let outputs = (0..W)
            .flat_map(|s| model.output(&state, s).to_vec())
            .collect();
        runs.push(Run {
            after: t,
            head,
            outputs,
        });
    }
    runs
}

/// The forecaster: squared-error scores over the warm-up (from the second sample on), then
/// the generated samples.
fn forecast<R, Hd>(
    model: &Forecaster<Q15, R, Hd, 2>,
    warm_up: &[[i16; 2]],
    steps: usize,
) -> (Vec<u64>, Vec<[i16; 2]>)
where
    R: Recurrent<Q15>,
    Hd: Head<Q15>,
{
    let mut state = model.new_state();
    let scores = warm_up
        .iter()
        .filter_map(|x| model.observe(&mut state, x, ErrorMetric::Squared))
        .collect();
    let mut generated = Vec::new();
    model.generate(&mut state, steps, |x| generated.push(*x));
    (scores, generated)
}

// ---------------------------------------------------------------------------------------------
// The cases, built from seeded random PyTorch-initialised weights.
// ---------------------------------------------------------------------------------------------

const FORECAST_STEPS: usize = 10;

/// Weights and inputs of the three cases.
struct Cases {
    gru: [[Stored<Q15>; 2]; 2],
    gru_head: [(Linear, QFormat); 2],
    gru_input: Vec<[i16; 3]>,
    proj: [Stored<Q15>; 2],
    proj_head: (Linear, QFormat),
    proj_input: Vec<[i16; 2]>,
    body: Stored<Q15>,
    body_head: [(Linear, QFormat); 2],
    warm_up: Vec<[i16; 2]>,
}

fn format(x_frac: i8, h_frac: i8) -> QFormat {
    QFormat {
        x_frac,
        h_frac,
        pre_frac: 16,
        c_frac: 12,
    }
}

fn cases() -> Cases {
    let mut rng = Rng(0x601d);
    let pair = |kind, i, h, p, x_frac, h_frac, rng: &mut Rng| {
        [0, 1].map(|_| Torch::random(kind, i, h, p, rng).store::<Q15>(x_frac, h_frac))
    };
    let samples = |n, width, rng: &mut Rng| -> Vec<Vec<i16>> {
        rng.samples(n, width, 2.0)
            .iter()
            .map(|x| x.iter().map(|&v| Q15::act(v, 12)).collect())
            .collect()
    };
    let gru = [
        pair(Kind::Gru, 3, 4, 0, 12, 15, &mut rng),
        pair(Kind::Gru, 8, 3, 0, 15, 15, &mut rng),
    ];
    let gru_head = [
        (Linear::random(6, 5, &mut rng), format(15, 12)),
        (Linear::random(5, 2, &mut rng), format(12, 15)),
    ];
    let gru_input = samples(11, 3, &mut rng)
        .iter()
        .map(|x| [x[0], x[1], x[2]])
        .collect();
    let proj = pair(Kind::Lstm, 2, 4, 3, 12, 13, &mut rng);
    let proj_head = (Linear::random(6, 2, &mut rng), format(13, 15));
    let proj_input = samples(9, 2, &mut rng)
        .iter()
        .map(|x| [x[0], x[1]])
        .collect();
    let body = Torch::random(Kind::Lstm, 2, 5, 0, &mut rng).store::<Q15>(12, 15);
    let body_head = [
        (Linear::random(5, 4, &mut rng), format(15, 15)),
        (Linear::random(4, 2, &mut rng), format(15, 15)),
    ];
    let warm_up = (0..6)
        .map(|t| {
            let a = t as f64 * 0.6;
            [Q15::act(a.sin(), 12), Q15::act(0.5 * a.cos(), 12)]
        })
        .collect();
    Cases {
        gru,
        gru_head,
        gru_input,
        proj,
        proj_head,
        proj_input,
        body,
        body_head,
        warm_up,
    }
}

// ---------------------------------------------------------------------------------------------
// Rust source of the golden file.
// ---------------------------------------------------------------------------------------------

/// `values` as nested array literals of `dims` (outermost first), one innermost array per
/// line below the outermost level.
fn array<T: Display>(values: &[T], dims: &[usize], indent: usize) -> String {
    assert_eq!(values.len(), dims.iter().product::<usize>(), "{dims:?}");
    match dims {
        [] => values[0].to_string(),
        [_] => {
            let items: Vec<String> = values.iter().map(|v| v.to_string()).collect();
            format!("[{}]", items.join(", "))
        }
        [n, rest @ ..] => {
            let chunk = values.len() / n;
            let pad = " ".repeat(indent + 4);
            let items: Vec<String> = values
                .chunks(chunk)
                .map(|c| format!("{pad}{},\n", array(c, rest, indent + 4)))
                .collect();
            format!("[\n{}{}]", items.concat(), " ".repeat(indent))
        }
    }
}

fn format_literal(f: &QFormat) -> String {
    format!(
        "QFormat {{ x_frac: {}, h_frac: {}, pre_frac: {}, c_frac: {} }}",
        f.x_frac, f.h_frac, f.pre_frac, f.c_frac
    )
}

/// `Gru::from_parts(…)`, `Lstm::from_parts(…)` or `LstmProj::from_parts(…)` of a stored layer.
fn cell_literal(s: &Stored<Q15>, indent: usize) -> String {
    let (i, h, p) = (s.input, s.hidden, s.proj);
    let g = s.kind.gates();
    let r = if p > 0 { p } else { h };
    let next = indent + 4;
    let pad = " ".repeat(next);
    let mut args = vec![
        array(&s.w_ih, &[h, g, i], next),
        array(&s.w_hh, &[h, g, r], next),
        array(&s.bias, &[h, g], next),
    ];
    let name = match (s.kind, p) {
        (Kind::Gru, _) => {
            args.push(array(&s.bias_hn, &[h], next));
            "Gru"
        }
        (Kind::Lstm, 0) => "Lstm",
        (Kind::Lstm, _) => "LstmProj",
        (Kind::Rnn, _) => unreachable!("no RNN in the golden cases"),
    };
    args.push(array(&s.scales, &[h, g], next));
    args.push(array(&s.scales, &[h, g], next));
    if p > 0 {
        args.push(array(&s.w_hr, &[p, h], next));
        args.push(array(&s.scale_hr, &[p], next));
    }
    args.push(format_literal(&s.format));
    let body: String = args.iter().map(|a| format!("{pad}{a},\n")).collect();
    format!("{name}::from_parts(\n{body}{})", " ".repeat(indent))
}

fn dense_literal((linear, f): &(Linear, QFormat), indent: usize) -> String {
    let (w, b, s) = linear.store::<Q15>();
    let next = indent + 4;
    let pad = " ".repeat(next);
    format!(
        "Dense::from_parts(\n{pad}{},\n{pad}{},\n{pad}{},\n{pad}{},\n{})",
        array(&w, &[linear.output, linear.input], next),
        array(&b, &[linear.output], next),
        array(&s, &[linear.output], next),
        format_literal(f),
        " ".repeat(indent)
    )
}

fn runs_literal(runs: &[Run], head: usize, width: usize, window: usize) -> String {
    let mut s = String::from("[\n");
    for run in runs {
        writeln!(
            s,
            "    GoldenRun {{\n        after: {},\n        head: {},\n        outputs: {},\n    }},",
            run.after,
            array(&run.head, &[head], 8),
            array(&run.outputs, &[window, width], 8)
        )
        .unwrap();
    }
    s.push(']');
    s
}

/// The whole golden file for `cases`, with the outputs the host computes from them.
fn golden_source(c: &Cases) -> String {
    // The models built from the same data at run time.
    let [[a, b], [cc, d]] = &c.gru;
    let bi_gru: Bidirectional<Q15, _, _, 3, 5> = Bidirectional::new(
        BiStack::new(
            BiLayer::new(a.gru::<3, 4>(), b.gru::<3, 4>()),
            BiLayer::new(cc.gru::<8, 3>(), d.gru::<8, 3>()),
        ),
        Mlp::new(
            c.gru_head[0].0.dense::<Q15, 6, 5>(c.gru_head[0].1),
            Nonlinearity::Relu,
            c.gru_head[1].0.dense::<Q15, 5, 2>(c.gru_head[1].1),
        ),
    );
    let gru_runs = bidirectional_runs(&bi_gru, 2, &c.gru_input, false);
    let [p, q] = &c.proj;
    let bi_proj: Bidirectional<Q15, _, _, 2, 4> = Bidirectional::new(
        BiLayer::new(p.lstm_proj::<2, 4, 3>(), q.lstm_proj::<2, 4, 3>()),
        c.proj_head.0.dense::<Q15, 6, 2>(c.proj_head.1),
    );
    let proj_runs = bidirectional_runs(&bi_proj, 4, &c.proj_input, true);
    let forecaster: Forecaster<Q15, _, _, 2> = Forecaster::new(
        c.body.lstm::<2, 5>(),
        Mlp::new(
            c.body_head[0].0.dense::<Q15, 5, 4>(c.body_head[0].1),
            Nonlinearity::Tanh,
            c.body_head[1].0.dense::<Q15, 4, 2>(c.body_head[1].1),
        ),
        format(12, 15),
    );
    let (scores, generated) = forecast(&forecaster, &c.warm_up, FORECAST_STEPS);

    let flat = |rows: &[[i16; 3]]| rows.iter().flatten().copied().collect::<Vec<_>>();
    let flat2 = |rows: &[[i16; 2]]| rows.iter().flatten().copied().collect::<Vec<_>>();
    let mut s = String::new();
    s.push_str(
        "// Generated by core/tests/topology_golden.rs: \
         `TINYRNN_BLESS=1 cargo test -p tinyrnn --test topology_golden`. Do not edit.\n\
         //\n\
         // Three q15 models, their inputs and the outputs the host computes, for the firmware\n\
         // self-test (`firmware/src/bin/selftest/topologies.rs`), which includes this file.\n\n\
         use tinyrnn::{\n    \
         BiLayer, BiStack, Bidirectional, Dense, Forecaster, Gru, Lstm, LstmProj, Mlp, Nonlinearity,\n    \
         QFormat, Q15,\n};\n\n\
         /// One run of a bidirectional model: the sample index it ran after, the head's outputs,\n\
         /// the last layer's outputs `[f_t ; b_t]` for every step of the window.\n\
         pub struct GoldenRun<const O: usize, const W: usize, const B: usize> {\n    \
         pub after: usize,\n    pub head: [i32; O],\n    pub outputs: [[i16; B]; W],\n}\n\n",
    );
    writeln!(
        s,
        "/// Two bidirectional GRU layers (3 → 4, 8 → 3 per direction), windows of 5, an MLP head\n\
         /// `Linear(6, 5) → ReLU → Linear(5, 2)` on `[f_4 ; b_0]`.\n\
         pub type BiGru = Bidirectional<\n    Q15,\n    \
         BiStack<BiLayer<Gru<Q15, 3, 4>>, BiLayer<Gru<Q15, 8, 3>>>,\n    \
         Mlp<Q15, 6, 5, Dense<Q15, 5, 2>>,\n    3,\n    5,\n>;\n\n\
         pub static BI_GRU: BiGru = Bidirectional::new(\n    BiStack::new(\n        \
         BiLayer::new(\n            {},\n            {},\n        ),\n        \
         BiLayer::new(\n            {},\n            {},\n        ),\n    ),\n    \
         Mlp::new(\n        {},\n        Nonlinearity::Relu,\n        {},\n    ),\n);\n\n\
         /// A run every 2 samples.\npub const BI_GRU_STRIDE: u32 = 2;\n\n\
         pub const BI_GRU_INPUT: [[i16; 3]; {}] = {};\n\n\
         pub const BI_GRU_RUNS: [GoldenRun<2, 5, 6>; {}] = {};\n",
        cell_literal(a, 12),
        cell_literal(b, 12),
        cell_literal(cc, 12),
        cell_literal(d, 12),
        dense_literal(&c.gru_head[0], 8),
        dense_literal(&c.gru_head[1], 8),
        c.gru_input.len(),
        array(&flat(&c.gru_input), &[c.gru_input.len(), 3], 0),
        gru_runs.len(),
        runs_literal(&gru_runs, 2, 6, 5),
    )
    .unwrap();
    writeln!(
        s,
        "/// A bidirectional projected LSTM (2 inputs, 4 units, `proj_size` 3, `h` at 13 fractional\n\
         /// bits), windows of 4 without overlap, a head `Linear(6, 2)` on every step.\n\
         pub type BiProj = Bidirectional<Q15, BiLayer<LstmProj<Q15, 2, 4, 3>>, Dense<Q15, 6, 2>, 2, 4>;\n\n\
         pub static BI_PROJ: BiProj = Bidirectional::new(\n    \
         BiLayer::new(\n        {},\n        {},\n    ),\n    {},\n);\n\n\
         pub const BI_PROJ_STRIDE: u32 = 4;\n\n\
         pub const BI_PROJ_INPUT: [[i16; 2]; {}] = {};\n\n\
         /// The head on each step in turn: 4 steps × 2 outputs.\n\
         pub const BI_PROJ_RUNS: [GoldenRun<8, 4, 6>; {}] = {};\n",
        cell_literal(p, 8),
        cell_literal(q, 8),
        dense_literal(&c.proj_head, 4),
        c.proj_input.len(),
        array(&flat2(&c.proj_input), &[c.proj_input.len(), 2], 0),
        proj_runs.len(),
        runs_literal(&proj_runs, 8, 6, 4),
    )
    .unwrap();
    let generated: Vec<i16> = generated.iter().flatten().copied().collect();
    write!(
        s,
        "/// A forecaster: an LSTM (2 inputs, 5 units) with an MLP head `Linear(5, 4) → Tanh →\n\
         /// Linear(4, 2)` predicting the next input (fed back at 12 fractional bits).\n\
         pub type Forecast = Forecaster<Q15, Lstm<Q15, 2, 5>, Mlp<Q15, 5, 4, Dense<Q15, 4, 2>>, 2>;\n\n\
         pub static FORECAST: Forecast = Forecaster::new(\n    {},\n    \
         Mlp::new(\n        {},\n        Nonlinearity::Tanh,\n        {},\n    ),\n    {},\n);\n\n\
         /// Real samples: the warm-up.\n\
         pub const FORECAST_WARM_UP: [[i16; 2]; {}] = {};\n\n\
         /// Squared prediction errors (LSB² of the input) of warm-up samples 1 … 5.\n\
         pub const FORECAST_SCORES: [u64; {}] = {};\n\n\
         /// Then generated: {} samples.\n\
         pub const FORECAST_GENERATED: [[i16; 2]; {}] = {};\n",
        cell_literal(&c.body, 4),
        dense_literal(&c.body_head[0], 8),
        dense_literal(&c.body_head[1], 8),
        format_literal(&format(12, 15)),
        c.warm_up.len(),
        array(&flat2(&c.warm_up), &[c.warm_up.len(), 2], 0),
        scores.len(),
        array(&scores, &[scores.len()], 0),
        FORECAST_STEPS,
        FORECAST_STEPS,
        array(&generated, &[FORECAST_STEPS, 2], 0),
    )
    .unwrap();
    s
}

// ---------------------------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_golden_file_is_what_the_host_computes() {
    let source = golden_source(&cases());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PATH);
    if std::env::var_os("TINYRNN_BLESS").is_some() {
        let temp = path.with_extension("rs.tmp");
        std::fs::write(&temp, &source).expect("write the golden file");
        std::fs::rename(&temp, &path).expect("rename the golden file");
        return;
    }
    let committed = std::fs::read_to_string(&path).expect("the committed golden file");
    if committed != source {
        let line = committed
            .lines()
            .zip(source.lines())
            .position(|(a, b)| a != b)
            .map_or(committed.lines().count().min(source.lines().count()), |l| l);
        panic!(
            "{PATH} differs from what the host computes now (first at line {}): if the change \
             is intended, run `TINYRNN_BLESS=1 cargo test -p tinyrnn --test topology_golden`",
            line + 1
        );
    }
}

fn runs_of<const O: usize, const W: usize, const B: usize>(
    golden: &[golden::GoldenRun<O, W, B>],
) -> Vec<Run> {
    golden
        .iter()
        .map(|r| Run {
            after: r.after,
            head: r.head.to_vec(),
            outputs: r.outputs.concat(),
        })
        .collect()
}

/// The `static`s of the file — what the firmware compiles — give the file's outputs.
#[test]
fn the_golden_models_compute_the_golden_outputs() {
    let runs = bidirectional_runs(
        &golden::BI_GRU,
        golden::BI_GRU_STRIDE,
        &golden::BI_GRU_INPUT,
        false,
    );
    assert_eq!(runs, runs_of(&golden::BI_GRU_RUNS));
    assert_eq!(
        runs.iter().map(|r| r.after).collect::<Vec<_>>(),
        [4, 6, 8, 10]
    );
    let runs = bidirectional_runs(
        &golden::BI_PROJ,
        golden::BI_PROJ_STRIDE,
        &golden::BI_PROJ_INPUT,
        true,
    );
    assert_eq!(runs, runs_of(&golden::BI_PROJ_RUNS));
    assert_eq!(runs.iter().map(|r| r.after).collect::<Vec<_>>(), [3, 7]);
    let (scores, generated) =
        forecast(&golden::FORECAST, &golden::FORECAST_WARM_UP, FORECAST_STEPS);
    assert_eq!(scores, golden::FORECAST_SCORES);
    assert_eq!(generated, golden::FORECAST_GENERATED);
    // Not a degenerate case: the outputs vary.
    assert!(generated.windows(2).any(|w| w[0] != w[1]));
    assert!(golden::BI_GRU_RUNS
        .windows(2)
        .all(|w| w[0].head != w[1].head));
}
