//! Finite-difference checks of every BPTT gradient, in `f64`.
//!
//! Each test builds a small random network (weights scaled up so that gates leave their linear
//! range), computes the analytic gradient of the summed loss of two sequences of different
//! lengths, and compares every parameter's derivative with a central difference
//! `(L(θ+ε) - L(θ-ε)) / 2ε`, `ε = 1e-5`. Tolerance: `|analytic - numeric| ≤ 1e-7 + 1e-5·|numeric|`
//! (the central difference's truncation error is O(ε²) ≈ 1e-10 relative; the rest is rounding).
//!
//! Truncated BPTT is not the gradient of the loss, so it is checked against the derivative of
//! the function it *is* the gradient of: each window's loss terms computed from the window's
//! entering state held fixed at its unperturbed value (see the module docs of `train`).

use super::*;
use crate::model_file::Nonlinearity;

const EPS: f64 = 1e-5;

fn random_net(kind: CellKind, layers: usize, seed: u64) -> Network<f64> {
    let mut r = rng(seed, 99);
    let mut net: Network<f64> = Network::init(kind, 3, 4, layers, 3, &mut r);
    for t in net.tensors_mut() {
        for v in t.iter_mut() {
            *v *= 3.0;
        }
    }
    net
}

struct Seq {
    xs: Vec<f64>,
    steps: usize,
    labels: Vec<usize>,
}

fn random_seqs(seed: u64) -> Vec<Seq> {
    let mut r = rng(seed, 98);
    [7usize, 4]
        .iter()
        .map(|&steps| Seq {
            xs: (0..steps * 3).map(|_| r.gen_range(-1.5..1.5)).collect(),
            steps,
            labels: (0..steps).map(|_| r.gen_range(0..3)).collect(),
        })
        .collect()
}

fn target(s: &Seq, per_step: bool) -> Target<'_> {
    if per_step {
        Target::PerStep(&s.labels)
    } else {
        Target::Last(s.labels[0])
    }
}

/// Loss that the (possibly truncated) gradient differentiates, at parameters `net`, with window
/// entering states taken from the unperturbed network `base`.
fn reference_loss(
    net: &Network<f64>,
    base: &Network<f64>,
    seqs: &[Seq],
    per_step: bool,
    window: Option<usize>,
) -> f64 {
    let mut total = 0.0;
    for s in seqs {
        let tg = target(s, per_step);
        let Some(k) = window else {
            total += net.evaluate(&s.xs, s.steps, tg).loss_sum;
            continue;
        };
        // Window starts, aligned to the end of the sequence.
        let mut starts: Vec<usize> = (1..)
            .map(|j| s.steps as isize - (j * k) as isize)
            .take_while(|&v| v > 0)
            .map(|v| v as usize)
            .collect();
        starts.push(0);
        starts.reverse();
        let caches = base.forward(&s.xs, s.steps, None);
        for (w, &start) in starts.iter().enumerate() {
            let end = starts.get(w + 1).copied().unwrap_or(s.steps);
            let init: Option<Vec<Vec<f64>>> = (start > 0).then(|| {
                caches
                    .iter()
                    .zip(&base.layers)
                    .map(|(c, l)| c.state_after(start - 1, l.hidden))
                    .collect()
            });
            let len = end - start;
            let wc = net.forward(&s.xs[start * 3..end * 3], len, init.as_deref());
            let h = wc.last().map(|c| c.h()).unwrap_or(&[]);
            let wt = match tg {
                Target::Last(y) if end == s.steps => Some(Target::Last(y)),
                Target::Last(_) => None,
                Target::PerStep(ys) => Some(Target::PerStep(&ys[start..end])),
            };
            if let Some(wt) = wt {
                total += net.head_stats(h, len, wt, |_, _| {}).loss_sum;
            }
        }
    }
    total
}

fn check(kind: CellKind, layers: usize, per_step: bool, window: Option<usize>) {
    let net = random_net(kind, layers, 7 + layers as u64);
    let seqs = random_seqs(11);
    let mut g = net.zeros_like();
    for s in &seqs {
        net.sequence_grad(&s.xs, s.steps, target(s, per_step), window, 1.0, &mut g);
    }
    let names: Vec<String> = g.tensors().into_iter().map(|(n, _)| n).collect();
    let analytic: Vec<Vec<f64>> = g.tensors().into_iter().map(|(_, t)| t.to_vec()).collect();
    let mut worst = 0.0f64;
    for (ti, name) in names.iter().enumerate() {
        // A check of all-zero gradients would prove nothing.
        assert!(
            analytic[ti].iter().any(|v| v.abs() > 1e-6),
            "{kind:?} {name}: gradient is zero"
        );
        for (i, &a) in analytic[ti].iter().enumerate() {
            let mut plus = net.clone();
            plus.tensors_mut()[ti][i] += EPS;
            let mut minus = net.clone();
            minus.tensors_mut()[ti][i] -= EPS;
            let numeric = (reference_loss(&plus, &net, &seqs, per_step, window)
                - reference_loss(&minus, &net, &seqs, per_step, window))
                / (2.0 * EPS);
            let err = (a - numeric).abs();
            worst = worst.max(err / (1e-7 + 1e-5 * numeric.abs()));
            assert!(
                err <= 1e-7 + 1e-5 * numeric.abs(),
                "{kind:?} L={layers} per_step={per_step} window={window:?}: {name}[{i}] analytic {a} vs numeric {numeric}"
            );
        }
    }
    assert!(worst.is_finite());
}

const KINDS: [CellKind; 4] = [
    CellKind::Rnn(Nonlinearity::Tanh),
    CellKind::Rnn(Nonlinearity::Relu),
    CellKind::Lstm,
    CellKind::Gru,
];

#[test]
fn finite_differences_many_to_one_full_bptt() {
    for kind in KINDS {
        for layers in [1, 2] {
            check(kind, layers, false, None);
        }
    }
}

#[test]
fn finite_differences_many_to_many_full_bptt() {
    for kind in KINDS {
        for layers in [1, 2] {
            check(kind, layers, true, None);
        }
    }
}

#[test]
fn finite_differences_truncated_bptt() {
    for kind in KINDS {
        for layers in [1, 2] {
            for per_step in [false, true] {
                check(kind, layers, per_step, Some(3));
            }
        }
    }
}

#[test]
fn window_longer_than_sequence_is_full_bptt() {
    let net = random_net(CellKind::Gru, 2, 3);
    let seqs = random_seqs(5);
    let (mut a, mut b) = (net.zeros_like(), net.zeros_like());
    for s in &seqs {
        net.sequence_grad(&s.xs, s.steps, target(s, true), None, 1.0, &mut a);
        net.sequence_grad(&s.xs, s.steps, target(s, true), Some(7), 1.0, &mut b);
    }
    assert_eq!(a, b);
    let mut c = net.zeros_like();
    for s in &seqs {
        net.sequence_grad(&s.xs, s.steps, target(s, true), Some(3), 1.0, &mut c);
    }
    assert_ne!(
        a, c,
        "a window shorter than the sequence must change the gradient"
    );
}

#[test]
fn batch_gradient_is_deterministic_and_the_mean_of_sequences() {
    let mut r = rng(1, 0);
    let net: Network<f32> = Network::init(CellKind::Lstm, 2, 5, 1, 3, &mut r);
    let data: Vec<(Vec<f32>, usize)> = (0..11)
        .map(|i| {
            (
                (0..(3 + i) * 2).map(|_| r.gen_range(-1.0..1.0)).collect(),
                i % 3,
            )
        })
        .collect();
    let batch: Vec<Sample<'_>> = data
        .iter()
        .map(|(xs, y)| Sample {
            xs,
            steps: xs.len() / 2,
            target: Target::Last(*y),
        })
        .collect();
    let (g1, s1) = batch_grad(&net, &batch, None);
    let (g2, s2) = batch_grad(&net, &batch, None);
    assert_eq!(g1, g2);
    assert_eq!(s1, s2);
    assert_eq!(s1.count, 11);
    // Compare with the sequential mean in f64.
    let n64 = net.cast::<f64>();
    let mut g = n64.zeros_like();
    for s in &batch {
        let xs: Vec<f64> = s.xs.iter().map(|&v| f64::from(v)).collect();
        n64.sequence_grad(&xs, s.steps, s.target, None, 1.0 / 11.0, &mut g);
    }
    for ((_, a), (_, b)) in g1.tensors().into_iter().zip(g.tensors()) {
        for (x, y) in a.iter().zip(b) {
            assert!((f64::from(*x) - y).abs() < 1e-6, "{x} vs {y}");
        }
    }
}

#[test]
fn stratified_split_keeps_every_class_in_training() {
    let labels = [0, 0, 0, 0, 0, 1, 1, 2];
    let (tr, va) = split_validation(&labels, 0.2, 3);
    assert_eq!(tr.len() + va.len(), 8);
    for c in 0..3 {
        assert!(tr.iter().any(|&i| labels[i] == c));
    }
    assert_eq!(va.iter().filter(|&&i| labels[i] == 0).count(), 1);
    assert_eq!(va.iter().filter(|&&i| labels[i] == 1).count(), 1);
    assert_eq!(va.iter().filter(|&&i| labels[i] == 2).count(), 0);
    assert_eq!(split_validation(&labels, 0.2, 3), (tr, va));
    assert!(split_validation(&labels, 0.0, 3).1.is_empty());
}

#[test]
fn gate_bias_shifts_only_the_second_gate_block() {
    let base = random_net(CellKind::Gru, 2, 3);
    let mut net = base.clone();
    net.add_gate_bias(2.0);
    for (a, b) in net.layers.iter().zip(&base.layers) {
        let h = a.hidden;
        for (i, (x, y)) in a.b_ih.iter().zip(&b.b_ih).enumerate() {
            let want = if (h..2 * h).contains(&i) { 2.0 } else { 0.0 };
            assert!((x - y - want).abs() < 1e-12, "{i}: {x} - {y}");
        }
        assert_eq!(a.b_hh, b.b_hh);
        assert_eq!(a.w_ih, b.w_ih);
    }
    let mut rnn = random_net(CellKind::Rnn(Nonlinearity::Tanh), 1, 3);
    let before = rnn.clone();
    rnn.add_gate_bias(2.0);
    assert_eq!(rnn, before);
}
