//! On the host, `f32` LSTM and GRU layers update their units eight at a time (one vector per
//! gate, lane = unit) and the last `H mod 8` units one at a time; RNN layers take their units'
//! rows two at a time and an odd last unit alone. All must give the bits of the one-unit
//! definitions, for every hidden size and every unit's place in a block. The definitions' f32
//! multiply-adds are `mul_add` (fused in x86-64 builds with FMA), so this holds in every build.

use tinyrnn::activation::float::{Accurate, FloatActivation};
use tinyrnn::kernel::portable::{dot_f32, mul_add};
use tinyrnn::{GruWeights, LstmWeights, F32};

/// Values of mixed signs and magnitudes, deterministic.
fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|v| v.to_bits()).collect()
}

/// `bias + w_x·x + w_h·h`, as `Numeric::preact` defines it for `f32`.
fn preact(bias: f32, w_x: &[f32], x: &[f32], w_h: &[f32], h: &[f32]) -> f32 {
    bias + dot_f32(w_x, x) + dot_f32(w_h, h)
}

#[test]
fn lstm_units_in_blocks_equal_the_one_unit_definition() {
    for (i, hidden) in [1, 6, 9]
        .into_iter()
        .flat_map(|i| (1..=13).map(move |h| (i, h)))
    {
        let rows = 4 * hidden;
        let (w_ih, w_hh) = (values(1, rows * i, 0.9), values(2, rows * hidden, 0.6));
        let bias = values(3, rows, 0.5);
        let scales = vec![(); rows];
        let layer =
            LstmWeights::<F32>::new(i, hidden, &w_ih, &w_hh, &bias, &scales, &scales, ()).unwrap();
        let (mut h, mut c) = (vec![0f32; hidden], vec![0f32; hidden]);
        let (mut h_ref, mut c_ref) = (h.clone(), c.clone());
        for t in 0..6 {
            let x = values(10 + t, i, 3.0);
            let mut h_next = vec![0f32; hidden];
            layer.step(&x, &h, &mut h_next, &mut c);
            h = h_next;

            let mut h_next = vec![0f32; hidden];
            for j in 0..hidden {
                let gate = |g: usize| {
                    let r = 4 * j + g;
                    preact(
                        bias[r],
                        &w_ih[r * i..][..i],
                        &x,
                        &w_hh[r * hidden..][..hidden],
                        &h_ref,
                    )
                };
                let (ig, fg) = (Accurate::sigmoid(gate(0)), Accurate::sigmoid(gate(1)));
                let (gg, og) = (Accurate::tanh(gate(2)), Accurate::sigmoid(gate(3)));
                c_ref[j] = mul_add(fg, c_ref[j], ig * gg);
                h_next[j] = og * Accurate::tanh(c_ref[j]);
            }
            h_ref = h_next;
            assert_eq!(bits(&h), bits(&h_ref), "h, I = {i}, H = {hidden}, step {t}");
            assert_eq!(bits(&c), bits(&c_ref), "c, I = {i}, H = {hidden}, step {t}");
        }
    }
}

#[test]
fn gru_units_in_blocks_equal_the_one_unit_definition() {
    for (i, hidden) in [1, 6, 9]
        .into_iter()
        .flat_map(|i| (1..=13).map(move |h| (i, h)))
    {
        let rows = 3 * hidden;
        let (w_ih, w_hh) = (values(4, rows * i, 0.9), values(5, rows * hidden, 0.6));
        let (bias, bias_hn) = (values(6, rows, 0.5), values(7, hidden, 0.5));
        let scales = vec![(); rows];
        let layer = GruWeights::<F32>::new(
            i,
            hidden,
            &w_ih,
            &w_hh,
            &bias,
            &bias_hn,
            &scales,
            &scales,
            (),
        )
        .unwrap();
        let mut h = values(8, hidden, 0.9);
        let mut h_ref = h.clone();
        for t in 0..6 {
            let x = values(20 + t, i, 3.0);
            let mut h_next = vec![0f32; hidden];
            layer.step(&x, &h, &mut h_next);
            h = h_next;

            let mut h_next = vec![0f32; hidden];
            for j in 0..hidden {
                let wx = |g: usize| &w_ih[(3 * j + g) * i..][..i];
                let wh = |g: usize| &w_hh[(3 * j + g) * hidden..][..hidden];
                let r = Accurate::sigmoid(preact(bias[3 * j], wx(0), &x, wh(0), &h_ref));
                let z = Accurate::sigmoid(preact(bias[3 * j + 1], wx(1), &x, wh(1), &h_ref));
                let n_x = preact(bias[3 * j + 2], wx(2), &x, &[], &[]);
                let n_h = preact(bias_hn[j], &[], &[], wh(2), &h_ref);
                let n = Accurate::tanh(mul_add(r, n_h, n_x));
                h_next[j] = mul_add(1.0 - z, n, z * h_ref[j]);
            }
            h_ref = h_next;
            assert_eq!(bits(&h), bits(&h_ref), "h, I = {i}, H = {hidden}, step {t}");
        }
    }
}

/// The const-generic layers give the bits of the slice layers (on the host they run from their
/// own copy of the weights in blocks of eight units, specialised for their sizes).
fn const_generic_matches<const I: usize, const H: usize>() {
    use tinyrnn::{Gru, Lstm, Recurrent};
    let arrays = |seed: u64, gates: usize| {
        let (w_ih, w_hh) = (
            values(seed, gates * H * I, 0.9),
            values(seed + 1, gates * H * H, 0.6),
        );
        let bias = values(seed + 2, gates * H, 0.5);
        (w_ih, w_hh, bias)
    };
    let (w_ih, w_hh, bias) = arrays(30, 4);
    let lstm = Lstm::<F32, I, H>::new(
        core::array::from_fn(|j| {
            core::array::from_fn(|g| core::array::from_fn(|k| w_ih[(4 * j + g) * I + k]))
        }),
        core::array::from_fn(|j| {
            core::array::from_fn(|g| core::array::from_fn(|k| w_hh[(4 * j + g) * H + k]))
        }),
        core::array::from_fn(|j| core::array::from_fn(|g| bias[4 * j + g])),
    );
    let scales = vec![(); 4 * H];
    let slices = LstmWeights::<F32>::new(I, H, &w_ih, &w_hh, &bias, &scales, &scales, ()).unwrap();
    let mut state = Default::default();
    let (mut h, mut c) = (vec![0f32; H], vec![0f32; H]);
    for t in 0..5 {
        let x = values(40 + t, I, 3.0);
        let got = bits(lstm.step(&mut state, &x));
        let mut h_next = vec![0f32; H];
        slices.step(&x, &h, &mut h_next, &mut c);
        h = h_next;
        assert_eq!(got, bits(&h), "LSTM I = {I}, H = {H}, step {t}");
    }

    let (w_ih, w_hh, bias) = arrays(50, 3);
    let bias_hn = values(53, H, 0.5);
    let gru = Gru::<F32, I, H>::new(
        core::array::from_fn(|j| {
            core::array::from_fn(|g| core::array::from_fn(|k| w_ih[(3 * j + g) * I + k]))
        }),
        core::array::from_fn(|j| {
            core::array::from_fn(|g| core::array::from_fn(|k| w_hh[(3 * j + g) * H + k]))
        }),
        core::array::from_fn(|j| core::array::from_fn(|g| bias[3 * j + g])),
        core::array::from_fn(|j| bias_hn[j]),
    );
    let scales = vec![(); 3 * H];
    let slices =
        GruWeights::<F32>::new(I, H, &w_ih, &w_hh, &bias, &bias_hn, &scales, &scales, ()).unwrap();
    let mut state = Default::default();
    let mut h = vec![0f32; H];
    for t in 0..5 {
        let x = values(60 + t, I, 3.0);
        let got = bits(gru.step(&mut state, &x));
        let mut h_next = vec![0f32; H];
        slices.step(&x, &h, &mut h_next);
        h = h_next;
        assert_eq!(got, bits(&h), "GRU I = {I}, H = {H}, step {t}");
    }
}

#[test]
fn const_generic_layers_equal_the_slice_layers() {
    // No block of eight, one, one plus three units, three, two plus one (on the host the
    // blocks of eight run from the lane layout; the rest through the general step).
    const_generic_matches::<6, 5>();
    const_generic_matches::<6, 8>();
    const_generic_matches::<3, 11>();
    const_generic_matches::<6, 24>();
    const_generic_matches::<9, 17>();
}

#[test]
fn dense_outputs_in_blocks_equal_the_one_row_definition() {
    use tinyrnn::DenseWeights;
    for (i, outputs) in [1, 6, 32]
        .into_iter()
        .flat_map(|i| (1..=9).map(move |o| (i, o)))
    {
        let (weight, bias) = (values(70, outputs * i, 0.8), values(71, outputs, 0.5));
        let scales = vec![(); outputs];
        let head = DenseWeights::<F32>::new(i, outputs, &weight, &bias, &scales, ()).unwrap();
        let x = values(72, i, 2.0);
        let mut got = vec![0f32; outputs];
        head.forward(&x, &mut got);
        let want: Vec<f32> = (0..outputs)
            .map(|o| preact(bias[o], &weight[o * i..][..i], &x, &[], &[]))
            .collect();
        assert_eq!(bits(&got), bits(&want), "I = {i}, O = {outputs}");
    }
}

#[test]
fn rnn_units_in_pairs_equal_the_one_unit_definition() {
    use tinyrnn::{Nonlinearity, RnnWeights};
    for (i, hidden, nonlinearity) in [1, 6, 9].into_iter().flat_map(|i| {
        (1..=13).flat_map(move |h| {
            [Nonlinearity::Tanh, Nonlinearity::Relu]
                .into_iter()
                .map(move |n| (i, h, n))
        })
    }) {
        let (w_ih, w_hh) = (values(1, hidden * i, 0.9), values(2, hidden * hidden, 0.6));
        let bias = values(3, hidden, 0.5);
        let scales = vec![(); hidden];
        let layer = RnnWeights::<F32>::new(
            i,
            hidden,
            nonlinearity,
            &w_ih,
            &w_hh,
            &bias,
            &scales,
            &scales,
            (),
        )
        .unwrap();
        let (mut h, mut h_ref) = (vec![0f32; hidden], vec![0f32; hidden]);
        for t in 0..6 {
            let x = values(10 + t, i, 3.0);
            let mut h_next = vec![0f32; hidden];
            layer.step(&x, &h, &mut h_next);
            h = h_next;

            let h_next: Vec<f32> = (0..hidden)
                .map(|j| {
                    let pre = preact(
                        bias[j],
                        &w_ih[j * i..][..i],
                        &x,
                        &w_hh[j * hidden..][..hidden],
                        &h_ref,
                    );
                    match nonlinearity {
                        Nonlinearity::Tanh => Accurate::tanh(pre),
                        Nonlinearity::Relu => pre.max(0.0),
                    }
                })
                .collect();
            h_ref = h_next;
            assert_eq!(
                bits(&h),
                bits(&h_ref),
                "I = {i}, H = {hidden}, {nonlinearity:?}, step {t}"
            );
        }
    }
}
