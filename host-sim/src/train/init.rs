//! Initial weights: PyTorch's uniform initialisation, plus the options that keep long sequences
//! trainable (orthogonal recurrent blocks, a memory-gate bias).
//!
//! [`Network::init`](super::Network::init) draws every tensor as PyTorch does; [`InitConfig`]
//! then changes it in place, each option from its own RNG stream, so that turning one option on
//! or off leaves the draws of the others unchanged.

use rand::Rng;
use rand_distr::StandardNormal;

use super::{CellKind, Network, Real};

/// How the recurrent matrices `weight_hh` start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentInit {
    /// PyTorch's `U(-1/√H, 1/√H)` for every entry.
    Uniform,
    /// Every `H × H` gate block of `weight_hh` an independent random orthogonal matrix (Haar
    /// distributed; Saxe et al. 2014). All its singular values are 1, so at the start a
    /// gradient neither grows nor shrinks through the recurrent weights from step to step.
    Orthogonal,
}

/// How the bias of the gate that keeps the previous state (LSTM forget gate `f`, GRU update
/// gate `z`) starts; an Elman RNN has no such gate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GateBias {
    /// PyTorch's bias plus this constant (0: PyTorch's), see [`Network::add_gate_bias`].
    Add(f32),
    /// Chrono initialisation (Tallec & Ollivier 2018): unit `k`'s keep-gate bias (both bias
    /// vectors together) is `ln u_k`, `u_k ~ U(1, T − 1)` for sequences of `T` steps, so that
    /// the units start with memory time scales spread from 1 step to the whole sequence; for
    /// LSTM the input gate's bias is `−ln u_k`, so that a long-memory unit also starts writing
    /// little.
    Chrono,
}

/// Changes to PyTorch's initialisation, applied by [`InitConfig::apply`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InitConfig {
    /// Recurrent matrices.
    pub recurrent: RecurrentInit,
    /// The keep-gate bias.
    pub gate_bias: GateBias,
    /// Lowest initial spread of the first layer's input weights `weight_ih`. PyTorch's
    /// `U(-1/√H, 1/√H)` gives the input part of a gate's pre-activation, `W_ih x` for `I`
    /// inputs of unit variance (normalised data), a standard deviation of `√(I/(3H))`: with one
    /// or two channels the input barely moves the gates at the start. `Some(s)` scales
    /// PyTorch's draws up where that is below `s`, to `U(-√(3/I)·s, √(3/I)·s)` (standard
    /// deviation `s`), and leaves them as they are where it is not; `None` always leaves them.
    pub input_std: Option<f32>,
}

impl InitConfig {
    /// PyTorch's initialisation unchanged.
    pub const PYTORCH: InitConfig = InitConfig {
        recurrent: RecurrentInit::Uniform,
        gate_bias: GateBias::Add(0.0),
        input_std: None,
    };

    /// Applies the options to a network fresh from [`Network::init`]. `steps` is the typical
    /// sequence length (the `T` of [`GateBias::Chrono`]); `rng` is used only by
    /// [`RecurrentInit::Orthogonal`] and [`GateBias::Chrono`].
    pub fn apply<T: Real>(&self, net: &mut Network<T>, steps: usize, rng: &mut impl Rng) {
        let cast = |v: f64| T::from(v).unwrap_or_else(T::zero);
        if let (Some(s), Some(l)) = (self.input_std, net.layers.first_mut()) {
            // PyTorch drew U(-1/√H, 1/√H); the factor maps that onto U(-√(3/I)·s, √(3/I)·s).
            let f = f64::from(s) * (3.0 * l.hidden as f64 / l.input.max(1) as f64).sqrt();
            if f > 1.0 {
                let f = cast(f);
                for w in &mut l.w_ih {
                    *w = *w * f;
                }
            }
        }
        if self.recurrent == RecurrentInit::Orthogonal {
            for layer in &mut net.layers {
                let h = layer.hidden;
                for block in layer.w_hh.chunks_exact_mut(h * h) {
                    let q = random_orthogonal(h, rng);
                    for (w, v) in block.iter_mut().zip(q) {
                        *w = T::from(v).unwrap_or_else(T::zero);
                    }
                }
            }
        }
        let gated = matches!(net.kind, CellKind::Gru | CellKind::Lstm);
        match self.gate_bias {
            GateBias::Add(b) if b != 0.0 && gated => net.add_gate_bias(cast(f64::from(b))),
            GateBias::Chrono if gated => {
                let top = (steps.max(3) - 1) as f64;
                let lstm = net.kind == CellKind::Lstm;
                for l in &mut net.layers {
                    let h = l.hidden;
                    for k in 0..h {
                        let b = rng.gen_range(1.0..top).ln();
                        l.b_ih[h + k] = cast(b);
                        l.b_hh[h + k] = T::zero();
                        if lstm {
                            l.b_ih[k] = cast(-b);
                            l.b_hh[k] = T::zero();
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// A random `n × n` orthogonal matrix, row-major, uniformly distributed over the orthogonal
/// group: the `Q` of the QR decomposition of a matrix of standard normal entries, with the signs
/// fixed so that `R` has a positive diagonal (without that fix `Q` is not uniformly
/// distributed; Mezzadri 2007). QR by modified Gram–Schmidt on the columns, in `f64`, twice
/// (re-orthogonalising once keeps `QᵀQ = I` to rounding even when the normal draws are
/// nearly dependent).
pub fn random_orthogonal(n: usize, rng: &mut impl Rng) -> Vec<f64> {
    // Columns of the Gaussian matrix, one Vec each.
    let mut cols: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..n).map(|_| rng.sample(StandardNormal)).collect())
        .collect();
    for j in 0..n {
        let (done, rest) = cols.split_at_mut(j);
        let c = &mut rest[0];
        for _pass in 0..2 {
            for q in done.iter() {
                let d = dot(q, c);
                for (x, y) in c.iter_mut().zip(q) {
                    *x -= d * y;
                }
            }
        }
        let norm = dot(c, c).sqrt();
        // A zero column has probability 0 for normal draws; a unit vector keeps Q defined.
        if !(norm.is_normal()) {
            c.fill(0.0);
            c[j] = 1.0;
            continue;
        }
        // Dividing by the norm makes R's diagonal entry (the norm) positive: the sign fix.
        for x in c.iter_mut() {
            *x /= norm;
        }
    }
    let mut out = vec![0.0; n * n];
    for (j, c) in cols.iter().enumerate() {
        for (i, v) in c.iter().enumerate() {
            out[i * n + j] = *v;
        }
    }
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The largest `|WᵀW - I|` entry of a row-major `n × n` matrix (0 for an orthogonal one).
#[cfg(test)]
pub(crate) fn orthogonality_error<T: Real>(w: &[T], n: usize) -> f64 {
    let mut worst = 0.0f64;
    for a in 0..n {
        for b in 0..n {
            let s: f64 = (0..n)
                .map(|i| {
                    let f = |v: T| num_traits::ToPrimitive::to_f64(&v).unwrap_or(f64::NAN);
                    f(w[i * n + a]) * f(w[i * n + b])
                })
                .sum();
            let want = if a == b { 1.0 } else { 0.0 };
            worst = worst.max((s - want).abs());
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::super::rng;
    use super::*;
    use crate::model_file::Nonlinearity;

    #[test]
    fn random_orthogonal_is_orthogonal_and_seeded() {
        for n in [1, 2, 7, 32] {
            let q = random_orthogonal(n, &mut rng(5, 0));
            assert!(orthogonality_error(&q, n) < 1e-12, "n = {n}");
            assert_eq!(q, random_orthogonal(n, &mut rng(5, 0)));
            if n > 1 {
                assert_ne!(q, random_orthogonal(n, &mut rng(6, 0)));
            }
        }
    }

    /// Haar measure: every entry of a uniform random orthogonal `n × n` matrix has mean 0 and
    /// variance `1/n`, the first column's as well as the last's (which Gram–Schmidt produced
    /// after projecting out all the others).
    #[test]
    fn random_orthogonal_entries_have_haar_moments() {
        let (n, draws) = (4, 4000);
        let mut r = rng(11, 0);
        let mut moments = [[0.0f64; 2]; 2];
        for _ in 0..draws {
            let q = random_orthogonal(n, &mut r);
            for (m, v) in moments.iter_mut().zip([q[0], q[n * n - 1]]) {
                m[0] += v;
                m[1] += v * v;
            }
        }
        for [sum, sq] in moments {
            let mean = sum / draws as f64;
            let var = sq / draws as f64 - mean * mean;
            // Standard error of the mean: √(1/(n·draws)) ≈ 0.008.
            assert!(mean.abs() < 0.03, "mean {mean}");
            assert!((var - 0.25).abs() < 0.02, "variance {var}");
        }
    }

    #[test]
    fn orthogonal_init_replaces_every_recurrent_block_only() {
        for kind in [
            CellKind::Gru,
            CellKind::Lstm,
            CellKind::Rnn(Nonlinearity::Tanh),
        ] {
            let base: Network<f32> = Network::init(kind, 3, 6, 2, 4, &mut rng(1, 1));
            let mut net = base.clone();
            let cfg = InitConfig {
                recurrent: RecurrentInit::Orthogonal,
                ..InitConfig::PYTORCH
            };
            cfg.apply(&mut net, 10, &mut rng(1, 4));
            for (l, b) in net.layers.iter().zip(&base.layers) {
                assert_eq!(l.w_hh.len(), kind.gates() * 36);
                for block in l.w_hh.chunks_exact(36) {
                    assert!(orthogonality_error(block, 6) < 1e-6, "{kind:?}");
                }
                assert_ne!(l.w_hh, b.w_hh);
                assert_eq!((&l.w_ih, &l.b_ih, &l.b_hh), (&b.w_ih, &b.b_ih, &b.b_hh));
            }
            assert_eq!(net.head, base.head);
        }
    }

    #[test]
    fn pytorch_config_changes_nothing() {
        let base: Network<f32> = Network::init(CellKind::Lstm, 3, 5, 1, 2, &mut rng(2, 1));
        let mut net = base.clone();
        InitConfig::PYTORCH.apply(&mut net, 10, &mut rng(2, 4));
        assert_eq!(net, base);
    }

    #[test]
    fn chrono_spreads_the_keep_gate_over_the_sequence_length() {
        for kind in [CellKind::Lstm, CellKind::Gru] {
            let base: Network<f64> = Network::init(kind, 2, 64, 2, 3, &mut rng(3, 1));
            let mut net = base.clone();
            let cfg = InitConfig {
                gate_bias: GateBias::Chrono,
                ..InitConfig::PYTORCH
            };
            cfg.apply(&mut net, 100, &mut rng(3, 4));
            for (l, b) in net.layers.iter().zip(&base.layers) {
                let h = l.hidden;
                let keep: Vec<f64> = (h..2 * h).map(|i| l.b_ih[i] + l.b_hh[i]).collect();
                // ln U(1, 99): all in (0, ln 99), spread over most of it.
                assert!(keep.iter().all(|&v| v > 0.0 && v < 99f64.ln()), "{keep:?}");
                let (lo, hi) = keep
                    .iter()
                    .fold((9.0f64, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
                assert!(lo < 1.5 && hi > 4.0, "{kind:?}: {lo}..{hi}");
                if kind == CellKind::Lstm {
                    for (k, kb) in keep.iter().enumerate() {
                        assert_eq!(l.b_ih[k] + l.b_hh[k], -kb, "input gate opposite");
                    }
                } else {
                    assert_eq!(&l.b_ih[..h], &b.b_ih[..h], "GRU reset gate untouched");
                }
                // Other gates and all weights untouched.
                assert_eq!(&l.b_ih[2 * h..], &b.b_ih[2 * h..]);
                assert_eq!((&l.w_ih, &l.w_hh), (&b.w_ih, &b.w_hh));
            }
        }
        // An Elman RNN has no keep gate.
        let base: Network<f64> = Network::init(
            CellKind::Rnn(Nonlinearity::Tanh),
            2,
            4,
            1,
            3,
            &mut rng(3, 1),
        );
        let mut net = base.clone();
        let cfg = InitConfig {
            gate_bias: GateBias::Chrono,
            ..InitConfig::PYTORCH
        };
        cfg.apply(&mut net, 100, &mut rng(3, 4));
        assert_eq!(net, base);
    }

    /// With `input_std = s` the input part of a gate's pre-activation, `W_ih x` for `x` of
    /// unit variance, has standard deviation about `s` where PyTorch's would be lower, and
    /// PyTorch's (`√(I/(3H))`) elsewhere.
    #[test]
    fn input_std_raises_the_spread_of_the_input_part_of_every_gate() {
        for inputs in [1, 6, 24, 96] {
            let base: Network<f64> =
                Network::init(CellKind::Lstm, inputs, 64, 2, 2, &mut rng(4, 1));
            let mut net = base.clone();
            let cfg = InitConfig {
                input_std: Some(0.3),
                ..InitConfig::PYTORCH
            };
            cfg.apply(&mut net, 10, &mut rng(4, 4));
            let w = &net.layers[0].w_ih;
            // PyTorch's spread at H = 64: 0.072, 0.18, 0.35, 0.71 for 1, 6, 24, 96 inputs.
            let want = (inputs as f64 / (3.0 * 64.0)).sqrt().max(0.3);
            let bound = (3.0 / inputs as f64).sqrt() * want;
            assert!(
                w.iter().all(|v| v.abs() <= bound + 1e-12),
                "inputs {inputs}"
            );
            // Var(W x) = I · Var(w) for independent unit-variance inputs.
            let var = inputs as f64 * w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
            let got = var.sqrt();
            assert!((got / want - 1.0).abs() < 0.1, "inputs {inputs}: {got}");
            if want > 0.3 {
                assert_eq!(
                    net, base,
                    "inputs {inputs}: PyTorch's spread is already wider"
                );
            }
            // Same draws, rescaled: the signs and the order stay.
            let f = w[0] / base.layers[0].w_ih[0];
            for (a, b) in w.iter().zip(&base.layers[0].w_ih) {
                assert!((a - f * b).abs() < 1e-12);
            }
            assert_eq!(
                net.layers[1], base.layers[1],
                "deeper layers keep PyTorch's"
            );
            assert_eq!(net.layers[0].w_hh, base.layers[0].w_hh);
        }
    }
}
