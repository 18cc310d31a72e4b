//! The firmware face of `tinyrnn` (const-generic `Lstm`/`Gru`/`Rnn`/`Stack`/`Model`, weights in
//! arrays) and the host face (`tinyrnn_sim::runtime_model::RuntimeModel`, sizes known at run
//! time) run the same slice kernels, so with the same weights they must produce the same bits,
//! for both the accurate and the fast activations.
//!
//! Weights come from the PyTorch fixtures, converted with the host tool's own
//! `unit_major`/`folded_biases`, and from synthetic weights for a stack whose layers differ in
//! kind and size.

use tinyrnn::activation::float::{Accurate, Fast, FloatActivation};
use tinyrnn::numeric::float::Float;
use tinyrnn::{Dense, Gru, Lstm, Model, Nonlinearity, Recurrent, Rnn, Stack, F32};
use tinyrnn_sim::dataset::Series;
use tinyrnn_sim::model_file::{self, CellKind, FloatModel};
use tinyrnn_sim::runtime_model::{folded_biases, unit_major, LayerStore, RuntimeModel};
use tinyrnn_tests::{arr, arr2, arr3, pseudo_random, Case};

type Bits = Vec<Vec<u32>>;

// ---------------------------------------------------------------------------------------------
// PyTorch layout → const-generic layers, via the host tool's conversion functions.

fn lstm<A: FloatActivation, const I: usize, const H: usize>(
    m: &FloatModel,
    k: usize,
) -> Lstm<Float<A>, I, H> {
    let l = &m.layers[k];
    assert_eq!(
        (m.kind, l.input_size, l.hidden_size),
        (CellKind::Lstm, I, H)
    );
    let (bias, _) = folded_biases(CellKind::Lstm, H, l.b_ih.as_deref(), l.b_hh.as_deref());
    Lstm::new(
        arr3::<H, 4, I>(&unit_major(&l.w_ih, 4, H, I)),
        arr3::<H, 4, H>(&unit_major(&l.w_hh, 4, H, H)),
        arr2::<H, 4>(&bias),
    )
}

fn gru<A: FloatActivation, const I: usize, const H: usize>(
    m: &FloatModel,
    k: usize,
) -> Gru<Float<A>, I, H> {
    let l = &m.layers[k];
    assert_eq!((m.kind, l.input_size, l.hidden_size), (CellKind::Gru, I, H));
    let (bias, bias_hn) = folded_biases(CellKind::Gru, H, l.b_ih.as_deref(), l.b_hh.as_deref());
    Gru::new(
        arr3::<H, 3, I>(&unit_major(&l.w_ih, 3, H, I)),
        arr3::<H, 3, H>(&unit_major(&l.w_hh, 3, H, H)),
        arr2::<H, 3>(&bias),
        arr::<H>(&bias_hn),
    )
}

fn rnn<A: FloatActivation, const I: usize, const H: usize>(
    m: &FloatModel,
    k: usize,
) -> Rnn<Float<A>, I, H> {
    let l = &m.layers[k];
    let nl = match m.kind {
        CellKind::Rnn(model_file::Nonlinearity::Tanh) => Nonlinearity::Tanh,
        CellKind::Rnn(model_file::Nonlinearity::Relu) => Nonlinearity::Relu,
        other => panic!("not an RNN: {other:?}"),
    };
    assert_eq!((l.input_size, l.hidden_size), (I, H));
    let (bias, _) = folded_biases(m.kind, H, l.b_ih.as_deref(), l.b_hh.as_deref());
    Rnn::new(
        nl,
        arr2::<H, I>(&unit_major(&l.w_ih, 1, H, I)),
        arr2::<H, H>(&unit_major(&l.w_hh, 1, H, H)),
        arr::<H>(&bias),
    )
}

fn head<A: FloatActivation, const H: usize, const O: usize>(
    m: &FloatModel,
) -> Dense<Float<A>, H, O> {
    let h = m.head.as_ref().expect("the fixture has a head");
    assert_eq!((h.input_size, h.output_size), (H, O));
    let bias = h.bias.clone().unwrap_or_else(|| vec![0.0; O]);
    Dense::new(arr2::<O, H>(&h.weight), arr::<O>(&bias))
}

// ---------------------------------------------------------------------------------------------
// Running and comparing.

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every step's outputs of the runtime model, as `f32` bit patterns.
fn runtime_bits<A: FloatActivation>(m: &RuntimeModel<Float<A>>, input: &Series) -> Bits {
    let mut state = m.new_state();
    let mut x = vec![0.0f32; m.input_size()];
    input
        .rows()
        .map(|row| {
            m.encode_input(row, &mut x);
            let y = m.step_encoded(&mut state, &x).to_bits();
            y.iter()
                .map(|&b| u32::try_from(b).expect("f32 bits"))
                .collect()
        })
        .collect()
}

/// Every step's outputs of `step`, as `f32` bit patterns.
fn static_bits(input: &Series, mut step: impl FnMut(&[f32]) -> Vec<f32>) -> Bits {
    input.rows().map(|row| bits(&step(row))).collect()
}

fn assert_same_bits(what: &str, got: &Bits, want: &Bits) {
    assert_eq!(got.len(), want.len(), "{what}: step count");
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: step {t}: width");
        for (c, (&g, &w)) in g.iter().zip(w).enumerate() {
            assert!(
                g == w,
                "{what}: step {t}, column {c}: static {} ({g:#010x}) vs runtime {} ({w:#010x})",
                f32::from_bits(g),
                f32::from_bits(w)
            );
        }
    }
    assert!(!got.is_empty(), "{what}: no steps");
}

/// Loads a fixture and returns (PyTorch-layout model, runtime model, input).
fn fixture<A: FloatActivation>(name: &str) -> (FloatModel, RuntimeModel<Float<A>>, Series) {
    let case = Case::load(name);
    let float = case.float_model();
    let runtime = RuntimeModel::<Float<A>>::from_float_with(&float, |_| ())
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    (float, runtime, case.input())
}

// ---------------------------------------------------------------------------------------------
// Fixture models.

fn lstm_1l_head<A: FloatActivation>() {
    let (f, rt, input) = fixture::<A>("lstm_1l_head");
    let model = Model::new(lstm::<A, 6, 16>(&f, 0), head::<A, 16, 4>(&f));
    let mut s = model.new_state();
    let got = static_bits(&input, |x| model.step(&mut s, x).to_vec());
    assert_same_bits("lstm_1l_head", &got, &runtime_bits(&rt, &input));
}

fn lstm_2l_nobias<A: FloatActivation>() {
    let (f, rt, input) = fixture::<A>("lstm_2l_nobias");
    let body = Stack::new(lstm::<A, 5, 9>(&f, 0), lstm::<A, 9, 9>(&f, 1));
    let mut s = body.new_state();
    let got = static_bits(&input, |x| body.step(&mut s, x).to_vec());
    assert_same_bits("lstm_2l_nobias", &got, &runtime_bits(&rt, &input));
}

fn gru_2l_head<A: FloatActivation>() {
    let (f, rt, input) = fixture::<A>("gru_2l_head");
    let body = Stack::new(gru::<A, 6, 32>(&f, 0), gru::<A, 32, 32>(&f, 1));
    let model = Model::new(body, head::<A, 32, 4>(&f));
    let mut s = model.new_state();
    let got = static_bits(&input, |x| model.step(&mut s, x).to_vec());
    assert_same_bits("gru_2l_head", &got, &runtime_bits(&rt, &input));
}

fn gru_1l_nobias_head<A: FloatActivation>() {
    let (f, rt, input) = fixture::<A>("gru_1l_nobias_head");
    let model = Model::new(gru::<A, 6, 11>(&f, 0), head::<A, 11, 3>(&f));
    let mut s = model.new_state();
    let got = static_bits(&input, |x| model.step(&mut s, x).to_vec());
    assert_same_bits("gru_1l_nobias_head", &got, &runtime_bits(&rt, &input));
}

fn rnn_tanh_1l<A: FloatActivation>() {
    let (f, rt, input) = fixture::<A>("rnn_tanh_1l");
    let layer = rnn::<A, 3, 8>(&f, 0);
    let mut s = layer.new_state();
    let got = static_bits(&input, |x| layer.step(&mut s, x).to_vec());
    assert_same_bits("rnn_tanh_1l", &got, &runtime_bits(&rt, &input));
}

fn rnn_relu_2l_head<A: FloatActivation>() {
    let (f, rt, input) = fixture::<A>("rnn_relu_2l_head");
    let body = Stack::new(rnn::<A, 5, 7>(&f, 0), rnn::<A, 7, 7>(&f, 1));
    let model = Model::new(body, head::<A, 7, 4>(&f));
    let mut s = model.new_state();
    let got = static_bits(&input, |x| model.step(&mut s, x).to_vec());
    assert_same_bits("rnn_relu_2l_head", &got, &runtime_bits(&rt, &input));
}

#[test]
fn lstm_static_equals_runtime_bit_for_bit() {
    lstm_1l_head::<Accurate>();
    lstm_1l_head::<Fast>();
    lstm_2l_nobias::<Accurate>();
    lstm_2l_nobias::<Fast>();
}

#[test]
fn gru_static_equals_runtime_bit_for_bit() {
    gru_2l_head::<Accurate>();
    gru_2l_head::<Fast>();
    gru_1l_nobias_head::<Accurate>();
    gru_1l_nobias_head::<Fast>();
}

#[test]
fn rnn_static_equals_runtime_bit_for_bit() {
    rnn_tanh_1l::<Accurate>();
    rnn_tanh_1l::<Fast>();
    rnn_relu_2l_head::<Accurate>();
    rnn_relu_2l_head::<Fast>();
}

// ---------------------------------------------------------------------------------------------
// A stack mixing kinds and sizes: GRU 3→5, LSTM 5→4, RNN(tanh) 4→6, head 6→2.

const SEED: u64 = 0x7157_2024;

/// Synthetic unit-major weights `(w_ih, w_hh, bias, bias_hn)` for one layer.
fn synthetic(k: u64, gates: usize, i: usize, h: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let seed = SEED + 10 * k;
    (
        pseudo_random(seed, gates * h * i, 0.8),
        pseudo_random(seed + 1, gates * h * h, 0.6),
        pseudo_random(seed + 2, gates * h, 0.3),
        pseudo_random(seed + 3, h, 0.3),
    )
}

type MixedBody = Stack<Gru<F32, 3, 5>, Stack<Lstm<F32, 5, 4>, Rnn<F32, 4, 6>>>;

fn mixed_model() -> (Model<F32, MixedBody, 6, 2>, RuntimeModel<F32>) {
    let (g_ih, g_hh, g_b, g_bhn) = synthetic(0, 3, 3, 5);
    let (l_ih, l_hh, l_b, _) = synthetic(1, 4, 5, 4);
    let (r_ih, r_hh, r_b, _) = synthetic(2, 1, 4, 6);
    let (d_w, d_b) = (
        pseudo_random(SEED + 99, 2 * 6, 1.0),
        pseudo_random(SEED + 98, 2, 0.5),
    );

    let body = Stack::new(
        Gru::<F32, 3, 5>::new(arr3(&g_ih), arr3(&g_hh), arr2(&g_b), arr(&g_bhn)),
        Stack::new(
            Lstm::<F32, 5, 4>::new(arr3(&l_ih), arr3(&l_hh), arr2(&l_b)),
            Rnn::<F32, 4, 6>::new(Nonlinearity::Tanh, arr2(&r_ih), arr2(&r_hh), arr(&r_b)),
        ),
    );
    let model = Model::new(body, Dense::<F32, 6, 2>::new(arr2(&d_w), arr(&d_b)));

    let store = |kind: CellKind, i: usize, h: usize, w_ih: Vec<f32>, w_hh, bias, bias_hn| {
        let rows = kind.gates() * h;
        LayerStore::<F32> {
            kind,
            input_size: i,
            hidden_size: h,
            w_ih,
            w_hh,
            bias,
            bias_hn,
            scale_ih: vec![(); rows],
            scale_hh: vec![(); rows],
            format: (),
        }
    };
    let runtime = RuntimeModel {
        layers: vec![
            store(CellKind::Gru, 3, 5, g_ih, g_hh, g_b, g_bhn),
            store(CellKind::Lstm, 5, 4, l_ih, l_hh, l_b, vec![]),
            store(
                CellKind::Rnn(model_file::Nonlinearity::Tanh),
                4,
                6,
                r_ih,
                r_hh,
                r_b,
                vec![],
            ),
        ],
        head: Some(tinyrnn_sim::runtime_model::HeadStore {
            input_size: 6,
            output_size: 2,
            weight: d_w,
            bias: d_b,
            scale: vec![(); 2],
            format: (),
        }),
        input_frac: 0,
        output_frac: 0,
        normalization: None,
    };
    runtime.validate().expect("mixed runtime model is valid");
    (model, runtime)
}

fn mixed_input() -> Series {
    let steps = 40;
    Series {
        values: pseudo_random(SEED + 7, steps * 3, 3.0),
        steps,
        channels: 3,
    }
}

#[test]
fn stack_of_mixed_kinds_and_sizes_matches_runtime_model() {
    let (model, runtime) = mixed_model();
    let input = mixed_input();
    let mut s = model.new_state();
    let got = static_bits(&input, |x| model.step(&mut s, x).to_vec());
    assert!(
        got.iter().flatten().all(|&b| f32::from_bits(b).is_finite()),
        "non-finite output"
    );
    // The outputs move: the recurrence is doing something.
    assert_ne!(got[0], got[got.len() - 1]);
    assert_same_bits(
        "mixed GRU/LSTM/RNN stack",
        &got,
        &runtime_bits(&runtime, &input),
    );
}

#[test]
fn reset_returns_to_the_zero_state() {
    let (model, _) = mixed_model();
    let input = mixed_input();

    let mut fresh = model.new_state();
    let first = static_bits(&input, |x| model.step(&mut fresh, x).to_vec());
    assert_ne!(fresh, model.new_state(), "stepping must change the state");

    // `fresh` is now dirty; reset it and the same input gives the same bits.
    let mut state = fresh;
    model.reset(&mut state);
    assert_eq!(state, model.new_state(), "Model::reset");
    let again = static_bits(&input, |x| model.step(&mut state, x).to_vec());
    assert_same_bits("after Model::reset", &again, &first);

    // The same through the body's `Recurrent::reset`, reset in the middle of a sequence.
    let body = model.body();
    let mut s = body.new_state();
    for x in input.rows().take(7) {
        body.step(&mut s, x);
    }
    body.reset(&mut s);
    assert_eq!(s, body.new_state(), "Recurrent::reset on a Stack");
    let mut fresh = body.new_state();
    for x in input.rows() {
        let a = body.step(&mut s, x).to_vec();
        let b = body.step(&mut fresh, x).to_vec();
        assert_eq!(bits(&a), bits(&b));
    }
}
