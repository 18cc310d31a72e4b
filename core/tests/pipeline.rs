//! The device pipeline end to end, for a Q15 and an `f32` GRU classifier: windowing policies
//! against the model run by hand, the non-finite policy with NaN/∞ inputs, raw counts through
//! the integer input scaling, and the compile-time memory figure.

use tinyrnn::pipeline::decision::{Decider, Decision, DecisionConfig, Logit, Smoothing};
use tinyrnn::pipeline::scale::{ChannelMap, InputScaling};
use tinyrnn::pipeline::source::SliceSource;
use tinyrnn::pipeline::window::{StatePolicy, Window};
use tinyrnn::pipeline::{FitError, Pipeline, StreamModel};
use tinyrnn::{Dense, Gru, GruState, Model, QFormat, Recurrent, F32, Q15};

const I: usize = 3;
const H: usize = 8;
const O: usize = 3;

type QModel = Model<Q15, Gru<Q15, I, H>, H, O>;
type FModel = Model<F32, Gru<F32, I, H>, H, O>;

/// Deterministic values in `[-scale, scale)`.
fn values(seed: u64, len: usize, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn arr<const N: usize, T: Copy>(v: &[T]) -> [T; N] {
    v.try_into().unwrap()
}

/// A GRU classifier with the same real weights in `f32` and in Q15 (weights at 14 fractional
/// bits, inputs at 12, pre-activations at 12, head outputs at 10).
fn models() -> (FModel, QModel) {
    let w_ih = values(1, H * 3 * I, 1.2);
    let w_hh = values(2, H * 3 * H, 0.5);
    let b = values(3, H * 3, 0.3);
    let b_hn = values(4, H, 0.3);
    let w_head = values(5, O * H, 2.0);
    let b_head = values(6, O, 0.5);

    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let gate_rows_f = |v: &[f32], n: usize| -> Vec<[Vec<f32>; 3]> {
        v.chunks(3 * n)
            .map(|u| [u[..n].to_vec(), u[n..2 * n].to_vec(), u[2 * n..].to_vec()])
            .collect()
    };
    let (w_ih_f, w_hh_f) = (f(&w_ih), f(&w_hh));
    let unit_ih: Vec<[[f32; I]; 3]> = gate_rows_f(&w_ih_f, I)
        .into_iter()
        .map(|g| g.map(|r| arr(&r)))
        .collect();
    let unit_hh: Vec<[[f32; H]; 3]> = gate_rows_f(&w_hh_f, H)
        .into_iter()
        .map(|g| g.map(|r| arr(&r)))
        .collect();
    let bias_f: Vec<[f32; 3]> = f(&b).chunks(3).map(arr).collect();
    let head_f: Vec<[f32; H]> = f(&w_head).chunks(H).map(arr).collect();
    let float = Model::new(
        Gru::<F32, I, H>::new(arr(&unit_ih), arr(&unit_hh), arr(&bias_f), arr(&f(&b_hn))),
        Dense::new(arr(&head_f), arr(&f(&b_head))),
    );

    let q = |v: &[f64], frac: i32| -> Vec<i16> {
        v.iter()
            .map(|&x| (x * 2f64.powi(frac)).round() as i16)
            .collect()
    };
    let q32 = |v: &[f64], frac: i32| -> Vec<i32> {
        v.iter()
            .map(|&x| (x * 2f64.powi(frac)).round() as i32)
            .collect()
    };
    let gate_rows_q = |v: &[i16], n: usize| -> Vec<[Vec<i16>; 3]> {
        v.chunks(3 * n)
            .map(|u| [u[..n].to_vec(), u[n..2 * n].to_vec(), u[2 * n..].to_vec()])
            .collect()
    };
    let unit_ih: Vec<[[i16; I]; 3]> = gate_rows_q(&q(&w_ih, 14), I)
        .into_iter()
        .map(|g| g.map(|r| arr(&r)))
        .collect();
    let unit_hh: Vec<[[i16; H]; 3]> = gate_rows_q(&q(&w_hh, 14), H)
        .into_iter()
        .map(|g| g.map(|r| arr(&r)))
        .collect();
    let bias_q: Vec<[i32; 3]> = q32(&b, 12).chunks(3).map(arr).collect();
    let head_q: Vec<[i16; H]> = q(&w_head, 14).chunks(H).map(arr).collect();
    let layer_format = QFormat {
        x_frac: 12,
        h_frac: 15,
        pre_frac: 12,
        c_frac: 12,
    };
    let head_format = QFormat {
        x_frac: 15,
        h_frac: 15,
        pre_frac: 10,
        c_frac: 0,
    };
    let fixed = Model::new(
        Gru::<Q15, I, H>::from_parts(
            arr(&unit_ih),
            arr(&unit_hh),
            arr(&bias_q),
            arr(&q32(&b_hn, 12)),
            [[14; 3]; H],
            [[14; 3]; H],
            layer_format,
        ),
        Dense::from_parts(arr(&head_q), arr(&q32(&b_head, 10)), [14; O], head_format),
    );
    (float, fixed)
}

/// A stream of `len` samples of raw accelerometer-like counts whose pattern changes every 40
/// samples (so that the classes change).
fn stream(len: usize) -> Vec<[i16; I]> {
    let noise = values(9, len * I, 1500.0);
    (0..len)
        .map(|t| {
            let phase = (t / 40) % 3;
            core::array::from_fn(|c| {
                let level = [
                    [6000.0, -3000.0, 1000.0],
                    [-5000.0, 4000.0, -2000.0],
                    [0.0, 0.0, 7000.0],
                ][phase][c];
                (level + noise[t * I + c]) as i16
            })
        })
        .collect()
}

/// ±2 g over i16, in g: 1 g is 16384 counts.
fn maps() -> [ChannelMap; I] {
    [ChannelMap::full_scale(2.0); I]
}

fn q_inputs(raw: &[[i16; I]]) -> Vec<[i16; I]> {
    let scaling = InputScaling::fixed(maps(), 12).unwrap();
    raw.iter().map(|r| scaling.apply(r)).collect()
}

fn f_inputs(raw: &[[i16; I]]) -> Vec<[f32; I]> {
    let scaling = InputScaling::float(maps()).unwrap();
    raw.iter().map(|r| scaling.apply(r)).collect()
}

fn softmax<L: Logit>(logits: &[L], frac: u8) -> Vec<u16> {
    let mut p = vec![0u16; logits.len()];
    assert!(L::softmax_q15(logits, frac, &mut p));
    p
}

/// The plain argmax decider.
fn plain() -> Decider<O, 1> {
    Decider::new(DecisionConfig::new())
}

#[test]
fn reset_policy_decides_each_window_as_its_own_sequence() {
    let (_, model) = models();
    let k = 5;
    let x = q_inputs(&stream(200));
    let window = Window::new(k, StatePolicy::Reset).unwrap();
    let mut pipeline: Pipeline<Q15, _, O, 1> =
        Pipeline::new(model.body().new_state(), window, plain());
    let mut events = 0;
    for (t, sample) in x.iter().enumerate() {
        events += pipeline.push(&model, sample).is_some() as usize;
        if (t + 1) % k as usize == 0 {
            // The window's samples through a fresh state, by hand.
            let start = t + 1 - k as usize;
            let mut state = model.new_state();
            let logits = model
                .classify(&mut state, x[start..=t].iter().map(|s| s.as_slice()))
                .unwrap();
            assert_eq!(
                pipeline.decider().probabilities(),
                softmax(&logits, 10),
                "window ending {t}"
            );
            assert_eq!(
                *pipeline.state(),
                GruState::default(),
                "state reset after the window"
            );
        }
    }
    let stats = pipeline.stats();
    assert_eq!(
        (stats.samples, stats.windows, stats.non_finite_resets),
        (200, 40, 0)
    );
    assert!(
        events >= 3,
        "the classes change with the stream: {events} events"
    );
}

#[test]
fn carry_policy_runs_one_state_over_the_stream() {
    let (_, model) = models();
    let k = 4;
    let x = q_inputs(&stream(160));
    let window = Window::new(k, StatePolicy::Carry).unwrap();
    let mut pipeline: Pipeline<Q15, _, O, 1> =
        Pipeline::new(model.body().new_state(), window, plain());
    let mut state = model.new_state();
    for (t, sample) in x.iter().enumerate() {
        pipeline.push(&model, sample);
        let logits = model.step(&mut state, sample);
        if (t + 1) % k as usize == 0 {
            assert_eq!(
                pipeline.decider().probabilities(),
                softmax(&logits, 10),
                "step {t}"
            );
        }
        assert_eq!(pipeline.state(), &state, "step {t}");
    }
}

#[test]
fn events_carry_stream_indices_and_follow_the_decision_rules() {
    let (_, model) = models();
    let x = q_inputs(&stream(240));
    let window = Window::new(5, StatePolicy::Reset).unwrap();
    let config = DecisionConfig::new()
        .with_smoothing(Smoothing::Mean { window: 3 })
        .with_hold(2)
        .with_refractory(2);
    let mut pipeline: Pipeline<Q15, _, O, 4> =
        Pipeline::new(model.body().new_state(), window, Decider::new(config));
    // The same decisions from a decider fed the per-window probabilities by hand.
    let mut by_hand = Decider::<O, 4>::new(config);
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for (t, sample) in x.iter().enumerate() {
        got.extend(pipeline.push(&model, sample));
        if (t + 1) % 5 == 0 {
            let mut state = model.new_state();
            let logits = model
                .classify(&mut state, x[t - 4..=t].iter().map(|s| s.as_slice()))
                .unwrap();
            expected.extend(by_hand.update(&softmax(&logits, 10), t as u64));
        }
    }
    assert!(!got.is_empty());
    assert_eq!(got, expected);
    // Each event is at a window end, and successive events are more than `refractory` windows
    // apart.
    for pair in got.windows(2) {
        assert_ne!(pair[0].class, pair[1].class);
        assert!(pair[1].sample_index - pair[0].sample_index > 2 * 5);
    }
    assert!(got.iter().all(|d: &Decision| d.sample_index % 5 == 4));
}

#[test]
fn a_nan_input_resets_the_state_drops_the_window_and_is_counted() {
    let (model, _) = models();
    let k = 4u32;
    let mut x = f_inputs(&stream(24));
    x[6][1] = f32::NAN; // inside the second window (samples 4..=7)
    let window = Window::new(k, StatePolicy::Reset).unwrap();
    let mut pipeline: Pipeline<F32, _, O, 1> =
        Pipeline::new(model.body().new_state(), window, plain());
    let mut updated_at = Vec::new();
    let mut previous = pipeline.stats().windows;
    for (t, sample) in x.iter().enumerate() {
        pipeline.push(&model, sample);
        assert!(model.state_is_finite(pipeline.state()), "step {t}");
        if pipeline.stats().windows != previous {
            previous = pipeline.stats().windows;
            updated_at.push(t);
            // Every decision is the many-to-one output of the last k clean samples.
            let mut state = model.new_state();
            let logits = model
                .classify(
                    &mut state,
                    x[t + 1 - k as usize..=t].iter().map(|s| s.as_slice()),
                )
                .unwrap();
            assert_eq!(
                pipeline.decider().probabilities(),
                softmax(&logits, 0),
                "step {t}"
            );
        }
    }
    // Window 4..=7 is lost; a new one starts at 7 (after the reset at 6) and closes at 10.
    assert_eq!(updated_at, [3, 10, 14, 18, 22]);
    let stats = pipeline.stats();
    assert_eq!(
        (stats.samples, stats.windows, stats.non_finite_resets),
        (24, 5, 1)
    );
}

#[test]
fn infinite_inputs_are_caught_with_the_state_carried_too() {
    let (model, _) = models();
    let mut x = f_inputs(&stream(40));
    // +∞ and −∞ in one sample: where a unit's two weights have the same sign, ∞ − ∞ = NaN.
    x[10] = [f32::INFINITY, f32::NEG_INFINITY, 0.0];
    x[25][2] = f32::NAN;
    let window = Window::every_sample();
    let mut pipeline: Pipeline<F32, _, O, 1> =
        Pipeline::new(model.body().new_state(), window, plain());
    for sample in &x {
        pipeline.push(&model, sample);
        assert!(model.state_is_finite(pipeline.state()));
    }
    let stats = pipeline.stats();
    assert_eq!((stats.windows, stats.non_finite_resets), (38, 2));
    // After the last reset (at 25) the pipeline's state is that of a fresh run over 26..40.
    let mut state = model.new_state();
    for sample in &x[26..] {
        model.step(&mut state, sample);
    }
    assert_eq!(pipeline.state(), &state);
}

#[test]
fn fixed_point_never_resets_even_at_the_input_extremes() {
    let (_, model) = models();
    let raw: Vec<[i16; I]> = (0..64)
        .map(|t| match t % 3 {
            0 => [i16::MAX; I],
            1 => [i16::MIN; I],
            _ => [i16::MAX, i16::MIN, 0],
        })
        .collect();
    let scaling = InputScaling::fixed(maps(), 12).unwrap();
    let window = Window::new(8, StatePolicy::Carry).unwrap();
    let mut pipeline: Pipeline<Q15, _, O, 1> =
        Pipeline::new(model.body().new_state(), window, plain());
    for r in &raw {
        pipeline.push_raw(&model, &scaling, r);
    }
    assert_eq!(pipeline.stats().non_finite_resets, 0);
    assert_eq!(pipeline.stats().windows, 8);
}

#[test]
fn raw_counts_run_through_the_integer_scaling_and_a_source() {
    let (_, model) = models();
    let raw = stream(200);
    let scaling = InputScaling::fixed(maps(), 12).unwrap();
    let window = Window::new(10, StatePolicy::Reset).unwrap();
    let config = DecisionConfig::new().with_hold(2);
    let fresh = || -> Pipeline<Q15, _, O, 1> {
        Pipeline::new(model.body().new_state(), window, Decider::new(config))
    };

    let mut by_run = fresh();
    let mut events = Vec::new();
    by_run
        .run(&model, &scaling, &mut SliceSource::new(&raw), |d| {
            events.push(d)
        })
        .unwrap();

    let mut by_push = fresh();
    let scaled = q_inputs(&raw);
    let pushed: Vec<Decision> = scaled
        .iter()
        .filter_map(|x| by_push.push(&model, x))
        .collect();
    assert_eq!(events, pushed);
    assert!(!events.is_empty());
    assert_eq!(by_run.stats(), by_push.stats());

    // A reset starts the decisions over; the counters go on.
    by_run.reset(&model);
    assert_eq!(by_run.decider().current(), None);
    assert_eq!(by_run.stats().samples, 200);
    let first = raw
        .iter()
        .find_map(|r| by_run.push_raw(&model, &scaling, r))
        .unwrap();
    assert!(first.sample_index >= 200);
}

#[test]
fn fit_names_a_model_that_does_not_fit() {
    let (_, model) = models();
    let window = Window::every_sample();
    let small: Pipeline<Q15, _, 2, 1> = Pipeline::new(
        model.body().new_state(),
        window,
        Decider::new(DecisionConfig::new()),
    );
    let error = small.fit(&model, I).unwrap_err();
    assert_eq!(
        error,
        FitError::Classes {
            model: 3,
            capacity: 2
        }
    );
    assert_eq!(
        error.to_string(),
        "the model has 3 classes, the pipeline holds 2"
    );
    let right: Pipeline<Q15, _, O, 1> = Pipeline::new(model.body().new_state(), window, plain());
    assert_eq!(right.fit(&model, I), Ok(()));
    assert_eq!(
        right.fit(&model, 6).unwrap_err().to_string(),
        "the model takes 3 inputs per sample, the source gives 6 channels"
    );
}

/// The whole pipeline's RAM, known to the compiler.
const RAM: usize = Pipeline::<Q15, GruState<Q15, H>, O, 8>::RAM_BYTES;
const _: () = assert!(RAM > 0);

#[test]
fn memory_is_a_compile_time_constant_covering_every_buffer() {
    type P = Pipeline<Q15, GruState<Q15, H>, O, 8>;
    let memory = P::memory();
    assert_eq!(memory.total, RAM);
    assert_eq!(memory.total, core::mem::size_of::<P>());
    assert_eq!(memory.model_state, core::mem::size_of::<GruState<Q15, H>>());
    // The double-buffered hidden state: 2 · H i16 values.
    assert!(memory.model_state >= 2 * H * 2);
    // Ring buffer K · C · 2 bytes, averages C · 4, smoothed probabilities C · 2.
    assert!(memory.decision >= 8 * O * 2 + O * 4 + O * 2);
    // Plus the window (3 words) and the counters (2 · u64 + u32).
    assert!(memory.total >= memory.model_state + memory.decision + 12 + 20);
    // The model's weights are not in it: they stay in flash.
    let (_, model) = models();
    assert!(core::mem::size_of_val(&model) > 0);
    assert!(memory.total < memory.model_state + memory.decision + 64);
}

/// Any `Numeric`, any body: an LSTM in `F32Fast` and a stack of an RNN and a GRU in `W8A16`
/// run through the same pipeline (the decisions are only checked to be well-formed; the
/// arithmetic of each path has its own tests).
#[test]
fn every_numeric_and_body_runs_through_the_pipeline() {
    use tinyrnn::{F32Fast, Lstm, Nonlinearity, Rnn, Stack, W8A16};

    let lstm = Model::new(
        Lstm::<F32Fast, 2, 4>::new([[[0.9, -0.6]; 4]; 4], [[[0.2; 4]; 4]; 4], [[0.1; 4]; 4]),
        Dense::new([[1.0; 4], [-1.0; 4]], [0.0; 2]),
    );
    let window = Window::new(3, StatePolicy::Carry).unwrap();
    let mut pipeline: Pipeline<F32Fast, _, 2, 2> = Pipeline::new(
        lstm.body().new_state(),
        window,
        Decider::new(DecisionConfig::new()),
    );
    let scaling = InputScaling::float([ChannelMap::full_scale(2.0); 2]).unwrap();
    let mut source = SliceSource::new(&[[9000, -4000]; 12]);
    let mut events = Vec::new();
    pipeline
        .run(&lstm, &scaling, &mut source, |d| events.push(d))
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].class, Some(0));
    assert_eq!(pipeline.stats().windows, 4);

    let format = QFormat {
        x_frac: 12,
        h_frac: 15,
        pre_frac: 12,
        c_frac: 12,
    };
    let rnn = Rnn::<W8A16, 2, 4>::from_parts(
        Nonlinearity::Tanh,
        [[60, -40]; 4],
        [[10; 4]; 4],
        [100; 4],
        [6; 4],
        [6; 4],
        format,
    );
    let gru = Gru::<W8A16, 4, 4>::from_parts(
        [[[30; 4]; 3]; 4],
        [[[-20; 4]; 3]; 4],
        [[50; 3]; 4],
        [0; 4],
        [[6; 3]; 4],
        [[6; 3]; 4],
        QFormat {
            x_frac: 15,
            ..format
        },
    );
    let head_format = QFormat {
        x_frac: 15,
        h_frac: 15,
        pre_frac: 8,
        c_frac: 0,
    };
    let stacked = Model::new(
        Stack::new(rnn, gru),
        Dense::<W8A16, 4, 3>::from_parts([[50; 4], [-50; 4], [0; 4]], [0; 3], [6; 3], head_format),
    );
    assert_eq!(stacked.logit_frac(), 8);
    let mut pipeline: Pipeline<W8A16, _, 3, 1> = Pipeline::new(
        stacked.body().new_state(),
        Window::new(2, StatePolicy::Reset).unwrap(),
        Decider::new(DecisionConfig::new()),
    );
    let scaling = InputScaling::fixed([ChannelMap::full_scale(2.0); 2], 12).unwrap();
    let mut source = SliceSource::new(&[[16000, -16000]; 10]);
    let mut events = Vec::new();
    pipeline
        .run(&stacked, &scaling, &mut source, |d| events.push(d))
        .unwrap();
    assert_eq!(pipeline.stats().windows, 5);
    assert_eq!(events.len(), 1, "{events:?}");
    let total: u32 = pipeline
        .decider()
        .probabilities()
        .iter()
        .map(|&p| p as u32)
        .sum();
    assert!((32766..=32770).contains(&total), "{total}");
}

/// A model defined outside the crate (as a host tool's run-time model would be): a running
/// sum per class. The pipeline is built in a `const`, as a firmware would build it in a
/// `static`.
struct Accumulator;

impl StreamModel<F32> for Accumulator {
    type State = [f32; 2];

    fn input_size(&self) -> usize {
        2
    }

    fn classes(&self) -> usize {
        2
    }

    fn logit_frac(&self) -> u8 {
        0
    }

    fn step_logits(&self, state: &mut [f32; 2], x: &[f32], logits: &mut [f32]) {
        for ((s, &x), l) in state.iter_mut().zip(x).zip(logits) {
            *s += x;
            *l = *s;
        }
    }

    fn reset_state(&self, state: &mut [f32; 2]) {
        *state = [0.0; 2];
    }

    fn state_is_finite(&self, state: &[f32; 2]) -> bool {
        state.iter().all(|v| v.is_finite())
    }
}

const CONST_PIPELINE: Pipeline<F32, [f32; 2], 2, 2> = Pipeline::new(
    [0.0; 2],
    match Window::new(2, StatePolicy::Reset) {
        Ok(w) => w,
        Err(_) => panic!("window"),
    },
    Decider::new(DecisionConfig::new().with_smoothing(Smoothing::Mean { window: 2 })),
);

#[test]
fn a_const_pipeline_runs_a_model_defined_elsewhere() {
    let mut pipeline = CONST_PIPELINE;
    let samples = [
        [1.0, 0.0],
        [1.0, 0.0],
        [0.0, 3.0],
        [0.0, 3.0],
        [0.0, 3.0],
        [0.0, 3.0],
    ];
    let events: Vec<Decision> = samples
        .iter()
        .filter_map(|x| pipeline.push(&Accumulator, x))
        .collect();
    // Window 1 sums to (2, 0): class 0. Window 2 (state reset) sums to (0, 6); the mean of the
    // two windows' probabilities already favours class 1.
    assert_eq!(events.len(), 2);
    assert_eq!((events[0].class, events[0].sample_index), (Some(0), 1));
    assert_eq!((events[1].class, events[1].sample_index), (Some(1), 3));
    assert_eq!(pipeline.stats().windows, 3);
}

/// A host tool can run every model with one generous capacity: the decisions depend on the
/// model's class count and the configuration, not on `C` or `K`.
#[test]
fn decisions_do_not_depend_on_the_capacities() {
    let (_, model) = models();
    let raw = stream(300);
    let scaling = InputScaling::fixed(maps(), 12).unwrap();
    let window = Window::new(6, StatePolicy::Reset).unwrap();
    let config = DecisionConfig::new()
        .with_smoothing(Smoothing::Mean { window: 3 })
        .with_min_confidence(tinyrnn::pipeline::decision::q15(0.5))
        .with_hold(2);
    let mut exact: Pipeline<Q15, _, O, 3> =
        Pipeline::new(model.body().new_state(), window, Decider::new(config));
    let mut roomy: Pipeline<Q15, _, 64, 32> =
        Pipeline::new(model.body().new_state(), window, Decider::new(config));
    let mut a = Vec::new();
    let mut b = Vec::new();
    for r in &raw {
        a.extend(exact.push_raw(&model, &scaling, r));
        b.extend(roomy.push_raw(&model, &scaling, r));
        assert_eq!(
            exact.decider().probabilities(),
            roomy.decider().probabilities()
        );
    }
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
