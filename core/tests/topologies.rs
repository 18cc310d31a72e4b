//! The sequence topologies — bidirectional windows, projected LSTM layers, MLP heads,
//! generation — for every numeric type, against
//!
//! * an `f64` implementation of PyTorch's definitions written here and in `reference/`
//!   (PyTorch layouts, gate-major rows, `_reverse` directions, `proj_size`, `nn.Sequential`,
//!   the autoregressive loop): `f32`
//!   within 1e-5, fixed point within the tolerance of its arithmetic on the weights as stored;
//! * the existing unidirectional cells, run forward over each window and over the reversed
//!   window: bit for bit, in fixed point and in `f32` (the same operations in the same order);
//! * the slice views the host uses, bit for bit against the const-generic types the firmware
//!   uses.
//!
//! Run with `--nocapture` to see the measured maxima.

use tinyrnn::topology::bidirectional::{BiLayers, StrideError, WindowBuffers};
use tinyrnn::{
    BiLayer, BiStack, Bidirectional, BidirectionalWeights, CellKernel, Dense, DenseWeights,
    ErrorMetric, Feedback, Forecaster, Gru, Head, Lstm, LstmProjWeights, Mlp, MlpWeights, Network,
    Nonlinearity, Projection, QFormat, Recurrent, ShapeError, WindowRows, F32, Q15, W8A16,
};

mod reference;

use reference::*;

// ---------------------------------------------------------------------------------------------
// Unidirectional references built from the existing cells.
// ---------------------------------------------------------------------------------------------

/// One bidirectional layer from two unidirectional cells: `fwd` over the rows in order, `bwd`
/// over the reversed rows, each from its fresh state; rows of `[f_t ; b_t]`.
fn unidirectional_pair<N: Quantise, R: Recurrent<N>>(
    fwd: &R,
    bwd: &R,
    rows: &[Vec<N::Act>],
) -> Vec<Vec<N::Act>> {
    let mut state = fwd.new_state();
    let mut out: Vec<Vec<N::Act>> = rows
        .iter()
        .map(|x| fwd.step(&mut state, x).to_vec())
        .collect();
    let mut state = bwd.new_state();
    for (t, x) in rows.iter().enumerate().rev() {
        out[t].extend_from_slice(bwd.step(&mut state, x));
    }
    out
}

/// A window's rows through the unidirectional cells.
type Unidirectional<'a, N> = dyn Fn(&[Vec<<N as tinyrnn::Elementwise>::Act>]) -> Vec<Vec<<N as tinyrnn::Elementwise>::Act>>
    + 'a;

/// Measured maxima, for the report.
#[derive(Default)]
struct Worst {
    outputs: f64,
    head: f64,
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Tolerance on `|output - output_ref|` against the layers as stored: the arithmetic alone.
fn tolerance<N: Quantise>() -> f64 {
    match N::NAME {
        "f32" => 1e-5,
        _ => 6e-4,
    }
}

/// Checks a const-generic [`Bidirectional`] on a stream against everything else: each run's
/// outputs against the slice view on the same window (bit for bit), against `uni` (the
/// unidirectional cells, bit for bit), and against the f64 reference of the stored layers;
/// `[f_{W-1} ; b_0]` and the head on it against f64.
#[allow(clippy::too_many_arguments)]
fn check_stream<N, L, Hd, const I: usize, const W: usize>(
    model: &Bidirectional<N, L, Hd, I, W>,
    stride: u32,
    stored: &[[Stored<N>; 2]],
    torch: &[[Torch; 2]],
    head_f64: &dyn Fn(&[f64]) -> Vec<f64>,
    uni: &Unidirectional<'_, N>,
    out_frac: i8,
    rng: &mut Rng,
) -> Worst
where
    N: Quantise,
    L: BiLayers<N, W>,
    Hd: Head<N>,
{
    let layers: Vec<BiLayer<Layer<'_, N>>> = stored
        .iter()
        .map(|[f, b]| BiLayer::new(f.layer(), b.layer()))
        .collect();
    let view = BidirectionalWeights::new(&layers).expect("a chained stack");
    assert_eq!(view.input_size(), I);
    assert_eq!(view.output_size(), 2 * L::HIDDEN);
    let sizes = view.buffer_sizes(W);
    let mut ping = vec![N::Act::default(); sizes.outputs];
    let mut pong = vec![N::Act::default(); sizes.outputs * (sizes.output_buffers - 1)];
    let mut zeros = vec![N::Act::default(); sizes.zeros];
    let mut cell = vec![N::Cell::default(); sizes.cell];
    let mut scratch = vec![N::Act::default(); sizes.scratch];

    let torch_stored: Vec<[Torch; 2]> = torch
        .iter()
        .map(|[f, b]| [f.as_stored::<N>(), b.as_stored::<N>()])
        .collect();
    let stream = rng.samples(3 * W + 2, I, 2.0);
    let quantised: Vec<[N::Act; I]> = stream
        .iter()
        .map(|x| std::array::from_fn(|k| N::act(x[k], X_FRAC)))
        .collect();
    let mut state = model.new_state(stride).expect("a stride within the window");
    let mut worst = Worst::default();
    let mut runs = 0;
    for (t, x) in quantised.iter().enumerate() {
        let ran = model.push(&mut state, x);
        let due = t + 1 >= W && (t + 1 - W).checked_rem(stride as usize) == Some(0);
        assert_eq!(
            ran, due,
            "sample {t}: a run is due after samples W-1, W-1+k, …"
        );
        if !ran {
            continue;
        }
        runs += 1;
        let window = &quantised[t + 1 - W..=t];
        let flat: Vec<N::Act> = window.iter().flatten().copied().collect();
        let got = model.outputs(&state);
        assert_eq!(got.len(), W);

        // The slice view, on the same window: the same bits.
        let from_view = view.run(
            WindowRows::new(&flat, I),
            WindowBuffers {
                outputs: [&mut ping, &mut pong],
                zeros: &mut zeros,
                cell: &mut cell,
                scratch: &mut scratch,
            },
        );
        let got_flat: Vec<N::Act> = (0..W).flat_map(|s| got.row(s).to_vec()).collect();
        assert_eq!(
            got_flat,
            from_view,
            "{}: slice view vs const generic",
            N::NAME
        );

        // The unidirectional cells forward and over the reversed window: the same bits.
        let rows: Vec<Vec<N::Act>> = window.iter().map(|x| x.to_vec()).collect();
        let reference = uni(&rows);
        for (s, want) in reference.iter().enumerate() {
            assert_eq!(
                got.row(s),
                &want[..],
                "{}: step {s} vs the unidirectional cells",
                N::NAME
            );
        }

        // f64, PyTorch's definition on the stored layers and inputs.
        let real: Vec<Vec<f64>> = window
            .iter()
            .map(|x| x.iter().map(|&v| N::act_value(v, X_FRAC)).collect())
            .collect();
        let want = bidirectional_f64(&torch_stored, &real);
        for (s, want) in want.iter().enumerate() {
            let got: Vec<f64> = got
                .row(s)
                .iter()
                .map(|&v| N::act_value(v, out_frac))
                .collect();
            worst.outputs = worst.outputs.max(max_abs_diff(&got, want));
        }
        let fin: Vec<f64> = model
            .final_hidden(&state)
            .iter()
            .map(|&v| N::act_value(v, out_frac))
            .collect();
        assert!(max_abs_diff(&fin, &final_f64(&want)) <= tolerance::<N>());
        let mut logits = vec![N::Pre::default(); Hd::OUTPUT];
        model.head_final(&state, &mut logits);
        let logits: Vec<f64> = logits.iter().map(|&p| N::pre_value(p)).collect();
        worst.head = worst
            .head
            .max(max_abs_diff(&logits, &head_f64(&final_f64(&want))));
        // The head on the last step reads that step's [f ; b].
        model.head_step(&state, W - 1, &mut vec![N::Pre::default(); Hd::OUTPUT]);
    }
    assert_eq!(runs, (quantised.len() - W) / stride as usize + 1);
    assert!(
        worst.outputs <= tolerance::<N>(),
        "{}: max |output - f64| = {:.3e}",
        N::NAME,
        worst.outputs
    );
    worst
}

// ---------------------------------------------------------------------------------------------
// Bidirectional cases with sizes fixed at compile time, for every numeric type.
// ---------------------------------------------------------------------------------------------

/// One layer of LSTM (3 inputs, 4 units per direction) over windows of 5, a dense head
/// `8 → 2`, decisions every 2 samples.
fn lstm_one_layer<N: Quantise>(rng: &mut Rng) -> Worst {
    let torch = vec![[0, 1].map(|_| Torch::random(Kind::Lstm, 3, 4, 0, rng))];
    let stored: Vec<[Stored<N>; 2]> = torch
        .iter()
        .map(|[f, b]| [f.store::<N>(X_FRAC, 15), b.store::<N>(X_FRAC, 15)])
        .collect();
    let linear = Linear::random(8, 2, rng);
    let head = linear.dense::<N, 8, 2>(N::format(15, 15));
    let [f, b] = &stored[0];
    let (fwd, bwd) = (f.lstm::<3, 4>(), b.lstm::<3, 4>());
    let model: Bidirectional<N, _, _, 3, 5> =
        Bidirectional::new(BiLayer::new(fwd.clone(), bwd.clone()), head);
    let stored_linear = linear.as_stored::<N>();
    check_stream(
        &model,
        2,
        &stored,
        &torch,
        &|x| stored_linear.forward(x),
        &|rows| unidirectional_pair(&fwd, &bwd, rows),
        15,
        rng,
    )
}

/// Two layers of GRU (3 inputs, 4 units; then 8 inputs, 3 units) over windows of 6, an MLP head
/// `6 → 5 → ReLU → 2`, non-overlapping windows.
fn gru_two_layers<N: Quantise>(rng: &mut Rng) -> Worst {
    let torch = vec![
        [0, 1].map(|_| Torch::random(Kind::Gru, 3, 4, 0, rng)),
        [0, 1].map(|_| Torch::random(Kind::Gru, 8, 3, 0, rng)),
    ];
    let stored: Vec<[Stored<N>; 2]> = vec![
        torch[0].clone().map(|t| t.store::<N>(X_FRAC, 15)),
        torch[1].clone().map(|t| t.store::<N>(15, 15)),
    ];
    let (l1, l2) = (Linear::random(6, 5, rng), Linear::random(5, 2, rng));
    let head = Mlp::new(
        l1.dense::<N, 6, 5>(N::format(15, 12)),
        Nonlinearity::Relu,
        l2.dense::<N, 5, 2>(N::format(12, 15)),
    );
    let (a, b) = (stored[0][0].gru::<3, 4>(), stored[0][1].gru::<3, 4>());
    let (c, d) = (stored[1][0].gru::<8, 3>(), stored[1][1].gru::<8, 3>());
    let layers = BiStack::new(
        BiLayer::new(a.clone(), b.clone()),
        BiLayer::new(c.clone(), d.clone()),
    );
    let model: Bidirectional<N, _, _, 3, 6> = Bidirectional::new(layers, head);
    let stored_linears = [l1.as_stored::<N>(), l2.as_stored::<N>()];
    check_stream(
        &model,
        6,
        &stored,
        &torch,
        &|x| sequential_f64(&stored_linears, &[Nonlinearity::Relu], x),
        &|rows| {
            let first = unidirectional_pair(&a, &b, rows);
            unidirectional_pair(&c, &d, &first)
        },
        15,
        rng,
    )
}

/// A tanh RNN (2 inputs, 5 units) over windows of 1 (a decision per sample, each its own
/// window of one step), a dense head `10 → 3`.
fn rnn_window_of_one<N: Quantise>(rng: &mut Rng) -> Worst {
    let torch = vec![[0, 1].map(|_| Torch::random(Kind::Rnn, 2, 5, 0, rng))];
    let stored = vec![torch[0].clone().map(|t| t.store::<N>(X_FRAC, 15))];
    let linear = Linear::random(10, 3, rng);
    let (fwd, bwd) = (stored[0][0].rnn::<2, 5>(), stored[0][1].rnn::<2, 5>());
    let model: Bidirectional<N, _, _, 2, 1> = Bidirectional::new(
        BiLayer::new(fwd.clone(), bwd.clone()),
        linear.dense::<N, 10, 3>(N::format(15, 15)),
    );
    let stored_linear = linear.as_stored::<N>();
    check_stream(
        &model,
        1,
        &stored,
        &torch,
        &|x| stored_linear.forward(x),
        &|rows| unidirectional_pair(&fwd, &bwd, rows),
        15,
        rng,
    )
}

/// Two layers of projected LSTM (3 inputs, 5 units, `proj_size` 2; then 4 inputs, 3 units,
/// `proj_size` 2) over windows of 4, decisions every 3 samples; the projected `h` at 13
/// fractional bits in fixed point.
fn lstm_proj_two_layers<N: Quantise>(rng: &mut Rng) -> Worst {
    let torch = vec![
        [0, 1].map(|_| Torch::random(Kind::Lstm, 3, 5, 2, rng)),
        [0, 1].map(|_| Torch::random(Kind::Lstm, 4, 3, 2, rng)),
    ];
    let stored = vec![
        torch[0].clone().map(|t| t.store::<N>(X_FRAC, 13)),
        torch[1].clone().map(|t| t.store::<N>(13, 13)),
    ];
    let linear = Linear::random(4, 2, rng);
    let (a, b) = (
        stored[0][0].lstm_proj::<3, 5, 2>(),
        stored[0][1].lstm_proj::<3, 5, 2>(),
    );
    let (c, d) = (
        stored[1][0].lstm_proj::<4, 3, 2>(),
        stored[1][1].lstm_proj::<4, 3, 2>(),
    );
    let layers = BiStack::new(
        BiLayer::new(a.clone(), b.clone()),
        BiLayer::new(c.clone(), d.clone()),
    );
    let model: Bidirectional<N, _, _, 3, 4> =
        Bidirectional::new(layers, linear.dense::<N, 4, 2>(N::format(13, 15)));
    let stored_linear = linear.as_stored::<N>();
    check_stream(
        &model,
        3,
        &stored,
        &torch,
        &|x| stored_linear.forward(x),
        &|rows| {
            let first = unidirectional_pair(&a, &b, rows);
            unidirectional_pair(&c, &d, &first)
        },
        13,
        rng,
    )
}

/// One layer of LSTM and one of GRU with 9 units per direction (3 inputs), windows of 3: on the
/// host, `f32` cells with 8 or more units update them eight at a time, so this compares the
/// vector paths of the unidirectional cells with the slice kernels of the window.
fn nine_units<N: Quantise>(rng: &mut Rng) -> Worst {
    let torch = vec![
        [0, 1].map(|_| Torch::random(Kind::Lstm, 3, 9, 0, rng)),
        [0, 1].map(|_| Torch::random(Kind::Gru, 18, 9, 0, rng)),
    ];
    let stored = vec![
        torch[0].clone().map(|t| t.store::<N>(X_FRAC, 15)),
        torch[1].clone().map(|t| t.store::<N>(15, 15)),
    ];
    let linear = Linear::random(18, 2, rng);
    let (a, b) = (stored[0][0].lstm::<3, 9>(), stored[0][1].lstm::<3, 9>());
    let (c, d) = (stored[1][0].gru::<18, 9>(), stored[1][1].gru::<18, 9>());
    let layers = BiStack::new(
        BiLayer::new(a.clone(), b.clone()),
        BiLayer::new(c.clone(), d.clone()),
    );
    let model: Bidirectional<N, _, _, 3, 3> =
        Bidirectional::new(layers, linear.dense::<N, 18, 2>(N::format(15, 15)));
    let stored_linear = linear.as_stored::<N>();
    check_stream(
        &model,
        1,
        &stored,
        &torch,
        &|x| stored_linear.forward(x),
        &|rows| {
            let first = unidirectional_pair(&a, &b, rows);
            unidirectional_pair(&c, &d, &first)
        },
        15,
        rng,
    )
}

fn bidirectional_suite<N: Quantise>(head_tolerance: f64) {
    let mut rng = Rng(0xb1d1);
    for (name, case) in [
        ("lstm 1 layer", lstm_one_layer::<N> as fn(&mut Rng) -> Worst),
        ("lstm + gru, 9 units", nine_units::<N>),
        ("gru 2 layers + mlp", gru_two_layers::<N>),
        ("rnn window 1", rnn_window_of_one::<N>),
        ("lstm proj 2 layers", lstm_proj_two_layers::<N>),
    ] {
        let worst = case(&mut rng);
        eprintln!(
            "{} {name}: max |output - f64| {:.2e}, |head - f64| {:.2e}",
            N::NAME,
            worst.outputs,
            worst.head
        );
        assert!(
            worst.head <= head_tolerance,
            "{} {name}: head off by {:.3e}",
            N::NAME,
            worst.head
        );
    }
}

#[test]
fn bidirectional_f32() {
    bidirectional_suite::<F32>(1e-5);
}

#[test]
fn bidirectional_q15() {
    bidirectional_suite::<Q15>(2e-4);
}

#[test]
fn bidirectional_w8a16() {
    bidirectional_suite::<W8A16>(2e-4);
}

// ---------------------------------------------------------------------------------------------
// Random stacks through the slice view (the host's face).
// ---------------------------------------------------------------------------------------------

/// One direction of a layer stepped over `rows` with its own double buffer, through
/// `CellKernel::step` directly: the loop a unidirectional host model runs.
fn one_direction<N: Quantise>(layer: &Layer<'_, N>, rows: &[Vec<N::Act>]) -> Vec<Vec<N::Act>> {
    let h = CellKernel::<N>::output_size(layer);
    let (mut prev, mut next) = (vec![N::Act::default(); h], vec![N::Act::default(); h]);
    let mut c = vec![N::Cell::default(); CellKernel::<N>::cell_size(layer)];
    let mut scratch = vec![N::Act::default(); CellKernel::<N>::scratch_size(layer)];
    rows.iter()
        .map(|x| {
            CellKernel::<N>::step_buffers(layer, x, &prev, &mut next, &mut c, &mut scratch);
            std::mem::swap(&mut prev, &mut next);
            prev.clone()
        })
        .collect()
}

/// 48 random stacks — LSTM, GRU, RNN or projected LSTM, 1–3 layers with their own sizes,
/// windows of 1–7 — run through `BidirectionalWeights` with buffers of exactly
/// `buffer_sizes`: equal, bit for bit, to each direction stepped on its own over the window
/// and over the reversed window, and within tolerance of f64.
fn random_stacks<N: Quantise>() {
    let mut worst = 0f64;
    for case in 0..48u64 {
        let mut rng = Rng(0x51ac_0000 + case);
        let kind = [Kind::Lstm, Kind::Gru, Kind::Rnn, Kind::Lstm][case as usize % 4];
        let projected = case % 4 == 3;
        let depth = 1 + rng.below(3) as usize;
        let window = 1 + rng.below(7) as usize;
        let input = 1 + rng.below(5) as usize;
        let (mut torch, mut stored) = (Vec::new(), Vec::new());
        let (mut layer_input, mut x_frac) = (input, X_FRAC);
        for _ in 0..depth {
            let hidden = 1 + rng.below(6) as usize + projected as usize;
            let proj = if projected {
                1 + rng.below(hidden as u64 - 1) as usize
            } else {
                0
            };
            let h_frac = if projected { 13 } else { 15 };
            let pair = [0, 1].map(|_| Torch::random(kind, layer_input, hidden, proj, &mut rng));
            stored.push(pair.clone().map(|t| t.store::<N>(x_frac, h_frac)));
            layer_input = 2 * pair[0].out();
            x_frac = h_frac;
            torch.push(pair);
        }
        let out_frac = x_frac;
        let layers: Vec<BiLayer<Layer<'_, N>>> = stored
            .iter()
            .map(|[f, b]| BiLayer::new(f.layer(), b.layer()))
            .collect();
        let view = BidirectionalWeights::new(&layers).expect("chained");
        let sizes = view.buffer_sizes(window);
        assert_eq!(sizes.output_buffers, if depth > 1 { 2 } else { 1 });
        let mut ping = vec![N::Act::default(); sizes.outputs];
        let mut pong = vec![N::Act::default(); if depth > 1 { sizes.outputs } else { 0 }];
        let mut zeros = vec![N::Act::default(); sizes.zeros];
        let mut cell = vec![N::Cell::default(); sizes.cell];
        let mut scratch = vec![N::Act::default(); sizes.scratch];

        let real = rng.samples(window, input, 2.0);
        let x: Vec<N::Act> = real.iter().flatten().map(|&v| N::act(v, X_FRAC)).collect();
        let got = view
            .run(
                WindowRows::new(&x, input),
                WindowBuffers {
                    outputs: [&mut ping, &mut pong],
                    zeros: &mut zeros,
                    cell: &mut cell,
                    scratch: &mut scratch,
                },
            )
            .to_vec();
        assert_eq!(got.len(), window * view.output_size());

        let mut rows: Vec<Vec<N::Act>> = x.chunks(input).map(|r| r.to_vec()).collect();
        for layer in &layers {
            let fwd = one_direction(layer.forward(), &rows);
            let reversed: Vec<Vec<N::Act>> = rows.iter().rev().cloned().collect();
            let mut bwd = one_direction(layer.backward(), &reversed);
            bwd.reverse();
            rows = fwd
                .into_iter()
                .zip(bwd)
                .map(|(mut f, b)| {
                    f.extend(b);
                    f
                })
                .collect();
        }
        let want: Vec<N::Act> = rows.concat();
        assert_eq!(
            got,
            want,
            "{} case {case}: {kind:?} × {depth}, window {window}",
            N::NAME
        );

        let stored_torch: Vec<[Torch; 2]> = torch
            .iter()
            .map(|p| p.clone().map(|t| t.as_stored::<N>()))
            .collect();
        let real_stored: Vec<Vec<f64>> = real
            .iter()
            .map(|r| {
                r.iter()
                    .map(|&v| N::act_value(N::act(v, X_FRAC), X_FRAC))
                    .collect()
            })
            .collect();
        let want = bidirectional_f64(&stored_torch, &real_stored).concat();
        let got: Vec<f64> = got.iter().map(|&v| N::act_value(v, out_frac)).collect();
        worst = worst.max(max_abs_diff(&got, &want));
    }
    eprintln!("{} random stacks: max |output - f64| {worst:.2e}", N::NAME);
    assert!(worst <= tolerance::<N>(), "{}: {worst:.3e}", N::NAME);
}

#[test]
fn random_stacks_f32() {
    random_stacks::<F32>();
}

#[test]
fn random_stacks_q15() {
    random_stacks::<Q15>();
}

#[test]
fn random_stacks_w8a16() {
    random_stacks::<W8A16>();
}

// ---------------------------------------------------------------------------------------------
// Errors, the decision schedule, memory.
// ---------------------------------------------------------------------------------------------

#[test]
fn mismatched_stacks_are_refused_with_the_offending_size() {
    let mut rng = Rng(7);
    let make = |kind, i, h, rng: &mut Rng| Torch::random(kind, i, h, 0, rng).store::<Q15>(12, 15);
    let (a, b) = (
        make(Kind::Gru, 3, 4, &mut rng),
        make(Kind::Gru, 3, 4, &mut rng),
    );
    let (c, d) = (
        make(Kind::Gru, 7, 2, &mut rng),
        make(Kind::Gru, 7, 2, &mut rng),
    );
    let wide = make(Kind::Gru, 3, 5, &mut rng);
    let none: &[BiLayer<Layer<'_, Q15>>] = &[];
    assert_eq!(
        BidirectionalWeights::new(none).err(),
        Some(ShapeError::ZeroSize)
    );
    let unchained = [
        BiLayer::new(a.layer(), b.layer()),
        BiLayer::new(c.layer(), d.layer()),
    ];
    assert_eq!(
        BidirectionalWeights::new(&unchained).err(),
        Some(ShapeError::Chain {
            layer: 1,
            expected: 7,
            actual: 8
        })
    );
    let lopsided = [BiLayer::new(a.layer(), wide.layer())];
    let err = BidirectionalWeights::new(&lopsided).err().unwrap();
    assert_eq!(
        err,
        ShapeError::Length {
            tensor: "backward output",
            expected: 4,
            actual: 5
        }
    );
    assert_eq!(
        err.to_string(),
        "`backward output` has 5 elements; expected 4"
    );
}

#[test]
fn a_stride_must_be_within_the_window() {
    let gru =
        || Gru::<F32, 1, 2>::new([[[0.5]; 3]; 2], [[[0.1; 2]; 3]; 2], [[0.0; 3]; 2], [0.0; 2]);
    let model: Bidirectional<F32, _, _, 1, 4> = Bidirectional::new(
        BiLayer::new(gru(), gru()),
        Dense::<F32, 4, 1>::new([[1.0; 4]], [0.0]),
    );
    for stride in [0, 5] {
        let err = model.new_state(stride).unwrap_err();
        assert_eq!(err, StrideError { stride, window: 4 });
        assert_eq!(
            err.to_string(),
            format!("a decision every {stride} samples: must be 1..=4 (the window)")
        );
    }
    assert!(model.new_state(4).is_ok() && model.new_state(1).is_ok());
}

#[test]
fn reset_empties_the_window_and_runs_match_a_fresh_state() {
    let mut rng = Rng(11);
    let torch = [0, 1].map(|_| Torch::random(Kind::Lstm, 2, 3, 0, &mut rng));
    let [f, b] = torch.map(|t| t.store::<Q15>(X_FRAC, 15));
    let linear = Linear::random(6, 2, &mut rng);
    let model: Bidirectional<Q15, _, _, 2, 3> = Bidirectional::new(
        BiLayer::new(f.lstm::<2, 3>(), b.lstm::<2, 3>()),
        linear.dense::<Q15, 6, 2>(Q15::format(15, 15)),
    );
    let stream: Vec<[i16; 2]> = rng
        .samples(9, 2, 2.0)
        .iter()
        .map(|x| [Q15::act(x[0], X_FRAC), Q15::act(x[1], X_FRAC)])
        .collect();
    let mut state = model.new_state(2).unwrap();
    assert!(!model.run(&mut state), "no run before W samples");
    for x in &stream[..5] {
        model.push(&mut state, x);
    }
    model.reset(&mut state);
    assert_eq!(state.samples().len(), 0);
    let mut fresh = model.new_state(2).unwrap();
    let mut runs = 0;
    for (t, x) in stream[5..].iter().enumerate() {
        let ran = model.push(&mut state, x);
        assert_eq!(ran, model.push(&mut fresh, x), "sample {t}");
        if ran {
            assert_eq!(model.outputs(&state), model.outputs(&fresh));
            runs += 1;
        }
    }
    assert_eq!(
        runs, 1,
        "after the reset, runs after samples W-1 (and W-1+2 = 4 > 3)"
    );
    // Samples are kept oldest first across the ring buffer's wrap.
    let kept: Vec<i16> = (0..3)
        .flat_map(|t| state.samples().row(t).to_vec())
        .collect();
    assert_eq!(kept, stream[6..].concat());
}

#[test]
fn ram_is_the_documented_sum() {
    // Two layers (LSTM 3 → 4, then 8 → 2), W = 5, q15: 2-byte activations and cell values.
    type Layers = BiStack<BiLayer<Lstm<Q15, 3, 4>>, BiLayer<Lstm<Q15, 8, 2>>>;
    type State = tinyrnn::BidirectionalState<Q15, <Layers as BiLayers<Q15, 5>>::State, 3, 5>;
    let ring = 5 * 3 * 2;
    let layer = |h: usize| (5 + 1) * 2 * h * 2 + h * 2;
    let documented = ring + layer(4) + layer(2);
    // The rest: the ring buffer's two indices and flag, the stride and counter, padding.
    let overhead = State::RAM_BYTES - documented;
    assert!(
        overhead <= 4 * std::mem::size_of::<usize>(),
        "RAM {} B = {documented} B documented + {overhead} B",
        State::RAM_BYTES
    );
}

// ---------------------------------------------------------------------------------------------
// MLP heads and Network.
// ---------------------------------------------------------------------------------------------

/// `Linear(5, 4) → Tanh → Linear(4, 3) → ReLU → Linear(3, 2)`: the const-generic `Mlp` and the
/// slice view `MlpWeights` give the same bits, within tolerance of f64 on the stored weights.
fn mlp_suite<N: Quantise>(tol: f64) {
    let mut rng = Rng(0x3170);
    let linears = [
        Linear::random(5, 4, &mut rng),
        Linear::random(4, 3, &mut rng),
        Linear::random(3, 2, &mut rng),
    ];
    let acts = [Nonlinearity::Tanh, Nonlinearity::Relu];
    // Tanh's output at Q15, ReLU's at 12 fractional bits (room up to 8).
    let formats = [N::format(X_FRAC, 15), N::format(15, 12), N::format(12, 15)];
    let mlp = Mlp::new(
        linears[0].dense::<N, 5, 4>(formats[0]),
        acts[0],
        Mlp::new(
            linears[1].dense::<N, 4, 3>(formats[1]),
            acts[1],
            linears[2].dense::<N, 3, 2>(formats[2]),
        ),
    );
    let parts: Vec<_> = linears.iter().map(|l| l.store::<N>()).collect();
    let views: Vec<DenseWeights<'_, N>> = parts
        .iter()
        .zip(&linears)
        .zip(formats)
        .map(|(((w, b, s), l), f)| DenseWeights::new(l.input, l.output, w, b, s, f).unwrap())
        .collect();
    let view = MlpWeights::new(&views, &acts).unwrap();
    assert_eq!((view.input_size(), view.output_size()), (5, 2));
    let (pre_len, act_len) = view.scratch_sizes();
    assert_eq!((pre_len, act_len), (4, 8));
    let stored: Vec<Linear> = linears.iter().map(|l| l.as_stored::<N>()).collect();
    let mut worst = 0f64;
    for x in rng.samples(64, 5, 2.0) {
        let q: Vec<N::Act> = x.iter().map(|&v| N::act(v, X_FRAC)).collect();
        let mut from_mlp = [N::Pre::default(); 2];
        mlp.forward(&q, &mut from_mlp);
        let (mut from_view, mut pre, mut scratch) = (
            [N::Pre::default(); 2],
            vec![N::Pre::default(); pre_len],
            vec![N::Act::default(); act_len],
        );
        view.forward(&q, &mut from_view, &mut pre, &mut scratch);
        assert_eq!(from_mlp, from_view, "{}", N::NAME);
        let real: Vec<f64> = q.iter().map(|&v| N::act_value(v, X_FRAC)).collect();
        let want = sequential_f64(&stored, &acts, &real);
        let got: Vec<f64> = from_mlp.iter().map(|&p| N::pre_value(p)).collect();
        worst = worst.max(max_abs_diff(&got, &want));
    }
    eprintln!("{} mlp: max |y - f64| {worst:.2e}", N::NAME);
    assert!(worst <= tol, "{}: {worst:.3e}", N::NAME);
}

#[test]
fn mlp_heads_f32() {
    mlp_suite::<F32>(1e-6);
}

#[test]
fn mlp_heads_q15() {
    mlp_suite::<Q15>(5e-4);
}

#[test]
fn mlp_heads_w8a16() {
    mlp_suite::<W8A16>(5e-4);
}

#[test]
fn mlp_chains_are_checked() {
    let (w, b, s) = (vec![0i16; 12], vec![0i32; 4], vec![14i8; 4]);
    let f = Q15::format(12, 15);
    let a = DenseWeights::<Q15>::new(3, 4, &w, &b, &s, f).unwrap();
    let c = DenseWeights::<Q15>::new(4, 3, &w, &b[..3], &s[..3], f).unwrap();
    let d = DenseWeights::<Q15>::new(3, 4, &w, &b, &s, f).unwrap();
    assert_eq!(MlpWeights::<Q15>::new(&[], &[]), Err(ShapeError::ZeroSize));
    assert_eq!(
        MlpWeights::new(&[a, c], &[]),
        Err(ShapeError::Length {
            tensor: "activations",
            expected: 1,
            actual: 0
        })
    );
    assert_eq!(
        MlpWeights::new(&[a, d], &[Nonlinearity::Relu]),
        Err(ShapeError::Chain {
            layer: 1,
            expected: 3,
            actual: 4
        })
    );
    assert!(MlpWeights::new(&[a, c], &[Nonlinearity::Tanh]).is_ok());
}

#[test]
fn a_network_with_a_dense_head_is_a_model() {
    let mut rng = Rng(21);
    let stored = Torch::random(Kind::Gru, 3, 4, 0, &mut rng).store::<Q15>(X_FRAC, 15);
    let linear = Linear::random(4, 3, &mut rng);
    let head = || linear.dense::<Q15, 4, 3>(Q15::format(15, 15));
    let network: Network<Q15, _, _, 3> = Network::new(stored.gru::<3, 4>(), head());
    let model = tinyrnn::Model::new(stored.gru::<3, 4>(), head());
    let samples: Vec<Vec<i16>> = rng
        .samples(12, 3, 2.0)
        .iter()
        .map(|x| x.iter().map(|&v| Q15::act(v, X_FRAC)).collect())
        .collect();
    let (mut a, mut b) = (network.new_state(), model.new_state());
    for x in &samples {
        assert_eq!(network.step(&mut a, x), model.step(&mut b, x));
    }
    let (mut a, mut b) = (network.new_state(), model.new_state());
    let rows = || samples.iter().map(|x| &x[..]);
    assert_eq!(
        network.classify(&mut a, rows()),
        model.classify(&mut b, rows())
    );
    assert_eq!(network.classify(&mut a, std::iter::empty()), None);
}

/// A GRU with an MLP head in the device pipeline: `Network` is a `StreamModel`, and its
/// decisions are those of the same logits computed step by step.
#[test]
fn a_network_runs_in_the_pipeline() {
    use tinyrnn::pipeline::decision::{Decider, DecisionConfig};
    use tinyrnn::pipeline::window::{StatePolicy, Window};
    use tinyrnn::pipeline::{Pipeline, StreamModel};
    let mut rng = Rng(22);
    let stored = Torch::random(Kind::Gru, 2, 4, 0, &mut rng).store::<Q15>(X_FRAC, 15);
    let (l1, l2) = (
        Linear::random(4, 6, &mut rng),
        Linear::random(6, 3, &mut rng),
    );
    let head = Mlp::new(
        l1.dense::<Q15, 4, 6>(Q15::format(15, 12)),
        Nonlinearity::Relu,
        l2.dense::<Q15, 6, 3>(Q15::format(12, 15)),
    );
    let network: Network<Q15, _, _, 3> = Network::new(stored.gru::<2, 4>(), head);
    assert_eq!(
        (
            network.input_size(),
            network.classes(),
            network.logit_frac()
        ),
        (2, 3, 16)
    );
    let window = Window::new(4, StatePolicy::Reset).unwrap();
    let mut pipeline: Pipeline<Q15, _, 3, 1> = Pipeline::new(
        network.new_state(),
        window,
        Decider::new(DecisionConfig::new()),
    );
    let samples: Vec<[i16; 2]> = rng
        .samples(16, 2, 2.0)
        .iter()
        .map(|x| [Q15::act(x[0], X_FRAC), Q15::act(x[1], X_FRAC)])
        .collect();
    let mut state = network.new_state();
    for (t, x) in samples.iter().enumerate() {
        let event = pipeline.push(&network, x);
        let logits = network.step(&mut state, x);
        if t % 4 == 3 {
            network.reset(&mut state);
            if let Some(event) = event {
                assert_eq!(event.class.map(usize::from), tinyrnn::argmax(logits));
            }
        } else {
            assert!(event.is_none());
        }
    }
    assert_eq!(pipeline.stats().windows, 4);
}

// ---------------------------------------------------------------------------------------------
// The projected LSTM on its own, and its rounding.
// ---------------------------------------------------------------------------------------------

fn projected_lstm_steps<N: Quantise>(tol: f64) {
    let mut rng = Rng(0x9a0);
    let torch = Torch::random(Kind::Lstm, 3, 6, 3, &mut rng);
    let stored = torch.store::<N>(X_FRAC, 13);
    let layer = stored.lstm_proj::<3, 6, 3>();
    let reference = torch.as_stored::<N>();
    let mut state = layer.new_state();
    let (mut h, mut c) = (vec![0.0; 3], vec![0.0; 6]);
    let mut worst = 0f64;
    for x in rng.samples(40, 3, 2.0) {
        let q: Vec<N::Act> = x.iter().map(|&v| N::act(v, X_FRAC)).collect();
        let got: Vec<f64> = Recurrent::step(&layer, &mut state, &q)
            .iter()
            .map(|&v| N::act_value(v, 13))
            .collect();
        let real: Vec<f64> = q.iter().map(|&v| N::act_value(v, X_FRAC)).collect();
        h = reference.step(&real, &h, &mut c);
        worst = worst.max(max_abs_diff(&got, &h));
    }
    assert_eq!(state.hidden().len(), 3);
    assert_eq!(state.cell().len(), 6);
    eprintln!(
        "{} projected lstm: max |h - f64| over 40 steps {worst:.2e}",
        N::NAME
    );
    assert!(worst <= tol, "{}: {worst:.3e}", N::NAME);
}

#[test]
fn projected_lstm_f32() {
    projected_lstm_steps::<F32>(1e-5);
}

#[test]
fn projected_lstm_q15() {
    projected_lstm_steps::<Q15>(5e-4);
}

#[test]
fn projected_lstm_w8a16() {
    projected_lstm_steps::<W8A16>(5e-4);
}

#[test]
fn projected_lstm_shapes_are_checked() {
    let (w, b, s) = (vec![0i16; 200], vec![0i32; 16], vec![14i8; 16]);
    let f = Q15::format(12, 13);
    let ok =
        LstmProjWeights::<Q15>::new(3, 4, 2, &w[..48], &w[..32], &b, &s, &s, &w[..8], &s[..2], f);
    assert!(ok.is_ok());
    assert_eq!(
        LstmProjWeights::<Q15>::new(3, 4, 2, &w[..48], &w[..32], &b, &s, &s, &w[..9], &s[..2], f),
        Err(ShapeError::Length {
            tensor: "w_hr",
            expected: 8,
            actual: 9
        })
    );
    assert_eq!(
        LstmProjWeights::<Q15>::new(3, 4, 2, &w[..48], &w[..64], &b, &s, &s, &w[..8], &s[..2], f),
        Err(ShapeError::Length {
            tensor: "w_hh",
            expected: 32,
            actual: 64
        })
    );
    assert_eq!(
        LstmProjWeights::<Q15>::new(3, 4, 0, &w[..48], &[], &b, &s, &s, &[], &[], f),
        Err(ShapeError::ZeroSize)
    );
}

/// `v / 2^shift` rounded half up (floor of `v / 2^shift + 1/2`), or `v · 2^-shift`, exactly.
fn round_half_up(v: i128, shift: i32) -> i128 {
    if shift > 0 {
        (v + (1i128 << (shift - 1))).div_euclid(1i128 << shift)
    } else {
        v << (-shift)
    }
}

fn clamp_i16(v: i128) -> i16 {
    v.clamp(i16::MIN as i128, i16::MAX as i128) as i16
}

proptest::proptest! {
    // No regression files: these are integration tests, without a `lib.rs` beside them.
    #![proptest_config(proptest::test_runner::Config {
        cases: 2048,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// One projected value: the exact dot product, one rounding half up to `h_frac`, saturated.
    #[test]
    fn projection_rounds_once_and_saturates(
        w in proptest::collection::vec(proptest::num::i16::ANY, 1..40),
        m in proptest::collection::vec(proptest::num::i16::ANY, 40),
        scale in -16i8..16,
        h_frac in 0i8..=15,
    ) {
        let f = Q15::format(12, h_frac);
        let exact: i128 = w.iter().zip(&m).map(|(&a, &b)| a as i128 * b as i128).sum();
        let want = clamp_i16(round_half_up(exact, scale as i32 + 15 - h_frac as i32));
        proptest::prop_assert_eq!(Q15::project(&w, scale, &m, &f), want);
        let w8: Vec<i8> = w.iter().map(|&v| (v >> 8) as i8).collect();
        let exact: i128 = w8.iter().zip(&m).map(|(&a, &b)| a as i128 * b as i128).sum();
        let want = clamp_i16(round_half_up(exact, scale as i32 + 15 - h_frac as i32));
        proptest::prop_assert_eq!(W8A16::project(&w8, scale, &m, &f), want);
    }

    /// The feedback requantisation: `pre` from the head's `pre_frac` to the input's `x_frac`,
    /// rounded half up once, saturated.
    #[test]
    fn feedback_rounds_half_up_and_saturates(
        pre in proptest::num::i32::ANY,
        pre_frac in 0i8..=24,
        x_frac in 0i8..=15,
    ) {
        let head = QFormat { pre_frac, ..Q15::format(0, 15) };
        let input = Q15::format(x_frac, 15);
        let want = clamp_i16(round_half_up(pre as i128, pre_frac as i32 - x_frac as i32));
        proptest::prop_assert_eq!(Q15::feed_back(pre, &head, &input), want);
        proptest::prop_assert_eq!(W8A16::feed_back(pre, &head, &input), want);
    }

    /// Prediction errors in fixed point are the exact integer sums.
    #[test]
    fn integer_prediction_errors_are_exact(
        p in proptest::collection::vec(proptest::num::i16::ANY, 0..32),
        x in proptest::collection::vec(proptest::num::i16::ANY, 32),
    ) {
        let d = || p.iter().zip(&x).map(|(&a, &b)| (a as i128 - b as i128).abs());
        let squared: i128 = d().map(|d| d * d).sum();
        let absolute: i128 = d().sum();
        proptest::prop_assert_eq!(Q15::prediction_error(&p, &x, ErrorMetric::Squared) as i128, squared);
        proptest::prop_assert_eq!(Q15::prediction_error(&p, &x, ErrorMetric::Absolute) as i128, absolute);
    }
}

#[test]
fn thresholds_flag_scores_above_and_nan() {
    assert!(F32::exceeds(0.5, 0.25) && !F32::exceeds(0.25, 0.25) && !F32::exceeds(0.1, 0.25));
    assert!(F32::exceeds(f32::NAN, 0.25), "a NaN score is an anomaly");
    assert!(Q15::exceeds(101, 100) && !Q15::exceeds(100, 100));
    assert_eq!(
        F32::prediction_error(&[1.0, -2.0], &[0.5, 0.0], ErrorMetric::Squared),
        4.25
    );
    assert_eq!(
        F32::prediction_error(&[1.0, -2.0], &[0.5, 0.0], ErrorMetric::Absolute),
        2.5
    );
}

// ---------------------------------------------------------------------------------------------
// Generation and anomaly scores.
// ---------------------------------------------------------------------------------------------

/// PyTorch's autoregressive loop in f64: warm up on `warm` (recording each sample's squared
/// prediction error after the first), then generate `n` samples.
fn forecast_f64(
    body: &Torch,
    head: &Linear,
    warm: &[Vec<f64>],
    n: usize,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let (mut h, mut c) = (vec![0.0; body.out()], vec![0.0; body.hidden]);
    let mut prediction: Option<Vec<f64>> = None;
    let mut errors = Vec::new();
    for x in warm {
        if let Some(p) = &prediction {
            errors.push(p.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum());
        }
        h = body.step(x, &h, &mut c);
        prediction = Some(head.forward(&h));
    }
    let mut generated = Vec::new();
    let mut p = prediction.expect("a warm-up");
    for _ in 0..n {
        generated.push(p.clone());
        h = body.step(&p, &h, &mut c);
        p = head.forward(&h);
    }
    (errors, generated)
}

/// A GRU (2 inputs, 6 units) with a dense head `6 → 2` predicting its next input; 8 samples of
/// warm-up, 12 generated. f32 and fixed point against the f64 loop on the stored weights; the
/// fixed-point bits against the same loop written with the slice kernels and the requantisation
/// spelled out here.
fn forecast_suite<N: Quantise>(tol: f64) {
    let mut rng = Rng(0xf0ca);
    let torch = Torch::random(Kind::Gru, 2, 6, 0, &mut rng);
    let stored = torch.store::<N>(X_FRAC, 15);
    let linear = Linear::random(6, 2, &mut rng);
    // The head's outputs at PRE_FRAC, fed back at X_FRAC.
    let head_format = N::format(15, 15);
    let input_format = N::format(X_FRAC, 15);
    let model: Forecaster<N, _, _, 2> = Forecaster::new(
        stored.gru::<2, 6>(),
        linear.dense::<N, 6, 2>(head_format),
        input_format,
    );
    let warm: Vec<[N::Act; 2]> = (0..8)
        .map(|t| {
            let v = [(t as f64 * 0.7).sin(), (t as f64 * 0.7).cos()];
            [N::act(v[0], X_FRAC), N::act(v[1], X_FRAC)]
        })
        .collect();

    let mut state = model.new_state();
    assert_eq!(
        model.generate(&mut state, 5, |_| panic!("nothing to start from")),
        0
    );
    let mut scores = Vec::new();
    for (t, x) in warm.iter().enumerate() {
        let score = model.observe(&mut state, x, ErrorMetric::Squared);
        assert_eq!(score.is_none(), t == 0);
        scores.extend(score);
    }
    let mut generated = Vec::new();
    assert_eq!(model.generate(&mut state, 12, |x| generated.push(*x)), 12);

    // The loop by hand over the slice kernels (what the host runs), requantising as defined.
    let layer = stored.layer();
    let (w, b, s) = linear.store::<N>();
    let dense = DenseWeights::<N>::new(6, 2, &w, &b, &s, head_format).unwrap();
    let (mut prev, mut next) = (vec![N::Act::default(); 6], vec![N::Act::default(); 6]);
    let mut step = |x: &[N::Act]| {
        CellKernel::<N>::step_buffers(&layer, x, &prev, &mut next, &mut [], &mut []);
        std::mem::swap(&mut prev, &mut next);
        let mut out = [N::Pre::default(); 2];
        dense.forward(&prev, &mut out);
        out.map(|p| N::feed_back(p, &head_format, &input_format))
    };
    let mut p: Option<[N::Act; 2]> = None;
    let mut by_hand_scores = Vec::new();
    for x in &warm {
        if let Some(p) = p {
            by_hand_scores.push(N::prediction_error(&p, x, ErrorMetric::Squared));
        }
        p = Some(step(x));
    }
    let mut by_hand = Vec::new();
    let mut p = p.unwrap();
    for _ in 0..12 {
        by_hand.push(p);
        p = step(&p);
    }
    assert_eq!(generated, by_hand, "{}", N::NAME);
    assert_eq!(scores, by_hand_scores, "{}", N::NAME);
    assert_eq!(state.prediction(), Some(&p));

    // f64 on the stored weights and inputs.
    let real: Vec<Vec<f64>> = warm
        .iter()
        .map(|x| x.iter().map(|&v| N::act_value(v, X_FRAC)).collect())
        .collect();
    let (errors, want) = forecast_f64(&torch.as_stored::<N>(), &linear.as_stored::<N>(), &real, 12);
    let got: Vec<f64> = generated
        .iter()
        .flatten()
        .map(|&v| N::act_value(v, X_FRAC))
        .collect();
    let worst = max_abs_diff(&got, &want.concat());
    let score_scale = match N::NAME {
        "f32" => 1.0,
        _ => 2f64.powi(2 * X_FRAC as i32),
    };
    let score_worst = scores
        .iter()
        .zip(&errors)
        .map(|(&s, e)| (score_as_f64::<N>(s) / score_scale - e).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{} forecast: max |generated - f64| {worst:.2e}, |score - f64| {score_worst:.2e}",
        N::NAME
    );
    assert!(
        worst <= tol && score_worst <= tol,
        "{}: {worst:.3e} / {score_worst:.3e}",
        N::NAME
    );

    model.reset(&mut state);
    assert_eq!(state.prediction(), None);
    assert_eq!(
        model.observe(&mut state, &warm[0], ErrorMetric::Absolute),
        None
    );
}

fn score_as_f64<N: Quantise>(score: N::Score) -> f64 {
    format!("{score:?}").parse().expect("a number")
}

#[test]
fn forecast_f32() {
    forecast_suite::<F32>(1e-5);
}

#[test]
fn forecast_q15() {
    forecast_suite::<Q15>(2e-3);
}

#[test]
fn forecast_w8a16() {
    forecast_suite::<W8A16>(2e-3);
}
