//! Training recurrent classifiers on the host: backpropagation through time, by hand.
//!
//! The network is a stack of `layers` recurrent layers (Elman RNN, LSTM or GRU, PyTorch
//! semantics, always with both bias vectors) and a linear head, i.e. the PyTorch module
//!
//! ```python
//! class Net(nn.Module):
//!     def __init__(self, I, H, L, C):       # nn.GRU / nn.LSTM / nn.RNN(nonlinearity=...)
//!         super().__init__()
//!         self.rnn = nn.GRU(I, H, num_layers=L, batch_first=True)
//!         self.head = nn.Linear(H, C)
//!     def forward(self, x):                  # x: (batch, steps, I)
//!         out, _ = self.rnn(x)
//!         return self.head(out)              # logits per step; many-to-one reads the last one
//! ```
//!
//! [`Network::to_float_model`] writes exactly its `state_dict` keys (`rnn.*`, `head.*`), so a
//! trained file loads with `net.load_state_dict(safetensors.torch.load_file(path))`.
//!
//! Each cell's backward pass lives next to its forward: [`rnn`], [`lstm`], [`gru`], and the head
//! with the loss in [`dense`]. The code is generic over [`Real`] so that the same BPTT runs in
//! `f32` for training and in `f64` for finite-difference checks.
//!
//! # Losses
//!
//! - **Many-to-one** ([`Target::Last`]): softmax cross-entropy of the head's logits at the
//!   last step of each sequence, averaged over the sequences of the mini-batch.
//! - **Many-to-many** ([`Target::PerStep`]): cross-entropy at every step, averaged over all
//!   steps of all sequences of the mini-batch (a masked mean: padding does not exist here).
//!
//! # Variable-length mini-batches
//!
//! Every sequence runs at its own length and the per-sequence gradients are summed, so no
//! padding can leak into the result. Sequences are split into fixed chunks of
//! [`CHUNK`] (independent of the number of threads); chunks run in parallel (rayon), each
//! sums its sequences in order, and the chunk sums are added in order: the result is the same
//! for a given seed on any machine.
//!
//! # Truncated BPTT (`window = Some(K)`)
//!
//! Each sequence of `T` steps is cut into windows of `K` steps **aligned to its end**:
//! `[T-K, T)`, `[T-2K, T-K)`, …, the first window holding the remaining `T mod K` steps. The
//! forward pass carries the state across window boundaries unchanged; the backward pass treats
//! the state entering each window as a constant (PyTorch: `h = h.detach()` — and `c` for LSTM —
//! at every boundary, for every layer). The gradient from the loss at step `t` therefore flows
//! back to the start of `t`'s window: at most `K` steps, and for the many-to-one loss exactly
//! `min(K, T)` steps. Gradients between layers at the same step are never cut. One optimiser
//! step is still taken per mini-batch (not per window).

pub mod adam;
pub mod augment;
pub mod collapse;
pub mod dense;
pub mod gru;
pub mod init;
mod linalg;
pub mod lstm;
pub mod rnn;
pub mod schedule;

#[cfg(test)]
mod gradcheck;
#[cfg(test)]
mod pytorch_fixtures;

use std::fmt::Debug;
use std::ops::{AddAssign, SubAssign};

use anyhow::{bail, Result};
use num_traits::Float;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::model_file::{CellKind, FloatModel, HeadWeights, LayerWeights, ModelMeta};
use dense::DenseParams;

pub use augment::Augment;
pub use collapse::CollapseCheck;
pub use init::{GateBias, InitConfig, RecurrentInit};
pub use schedule::{LrSchedule, Scheduler};

/// The floating-point types BPTT runs in (`f32` for training, `f64` for gradient checks).
pub trait Real: Float + AddAssign + SubAssign + Send + Sync + Debug + 'static {}
impl Real for f32 {}
impl Real for f64 {}

/// Sequences per parallel work unit. Fixed so that the summation order (and so the result)
/// does not depend on the number of threads.
pub const CHUNK: usize = 4;

/// Parameters (or gradients) of one recurrent layer, PyTorch layout (gate-major rows).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams<T> {
    /// Input features.
    pub input: usize,
    /// Hidden units.
    pub hidden: usize,
    /// `weight_ih`: `gates·hidden × input`.
    pub w_ih: Vec<T>,
    /// `weight_hh`: `gates·hidden × hidden`.
    pub w_hh: Vec<T>,
    /// `bias_ih`: `gates·hidden`.
    pub b_ih: Vec<T>,
    /// `bias_hh`: `gates·hidden`.
    pub b_hh: Vec<T>,
}

/// A trainable network: recurrent stack plus linear head.
#[derive(Clone, Debug, PartialEq)]
pub struct Network<T> {
    /// Cell kind of every layer.
    pub kind: CellKind,
    /// Recurrent layers, input first.
    pub layers: Vec<LayerParams<T>>,
    /// Linear head on the last layer's hidden state.
    pub head: DenseParams<T>,
}

/// What a sequence is trained against.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// One class for the whole sequence, read from the last step (many-to-one).
    Last(usize),
    /// One class per step (many-to-many); as long as the sequence.
    PerStep(&'a [usize]),
}

/// One training or evaluation example.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// `steps × input` values, row-major.
    pub xs: &'a [f32],
    /// Number of steps (≥ 1).
    pub steps: usize,
    /// The label(s).
    pub target: Target<'a>,
}

impl Sample<'_> {
    /// Number of loss terms: 1 for many-to-one, `steps` for many-to-many.
    pub fn terms(&self) -> usize {
        match self.target {
            Target::Last(_) => 1,
            Target::PerStep(_) => self.steps,
        }
    }
}

/// Summed loss and accuracy counts over some loss terms.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Sum of the cross-entropy losses.
    pub loss_sum: f64,
    /// Loss terms whose arg-max was right.
    pub correct: usize,
    /// Loss terms (sequences for many-to-one, steps for many-to-many).
    pub count: usize,
}

impl Stats {
    /// Mean loss (NaN when empty).
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.count as f64
    }

    /// Fraction of terms right (NaN when empty).
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count as f64
    }

    fn add(&mut self, o: Stats) {
        self.loss_sum += o.loss_sum;
        self.correct += o.correct;
        self.count += o.count;
    }
}

/// Per-layer forward caches.
enum LayerCache<T> {
    Rnn(rnn::Cache<T>),
    Lstm(lstm::Cache<T>),
    Gru(gru::Cache<T>),
}

impl<T> LayerCache<T> {
    /// The layer's hidden states, `steps × hidden`.
    fn h(&self) -> &[T] {
        match self {
            LayerCache::Rnn(c) => &c.h,
            LayerCache::Lstm(c) => &c.h,
            LayerCache::Gru(c) => &c.h,
        }
    }

    /// The layer's state after step `t` (`[h; c]` for LSTM), for restarting a forward pass
    /// there (used by the truncated-BPTT gradient check).
    #[cfg(test)]
    fn state_after(&self, t: usize, hidden: usize) -> Vec<T>
    where
        T: Copy,
    {
        let mut s = self.h()[t * hidden..(t + 1) * hidden].to_vec();
        if let LayerCache::Lstm(c) = self {
            s.extend_from_slice(&c.c[t * hidden..(t + 1) * hidden]);
        }
        s
    }
}

impl<T: Real> LayerParams<T> {
    fn zeros(gates: usize, input: usize, hidden: usize) -> Self {
        let rows = gates * hidden;
        LayerParams {
            input,
            hidden,
            w_ih: vec![T::zero(); rows * input],
            w_hh: vec![T::zero(); rows * hidden],
            b_ih: vec![T::zero(); rows],
            b_hh: vec![T::zero(); rows],
        }
    }
}

impl<T: Real> Network<T> {
    /// All-zero network (also used as a gradient accumulator).
    pub fn zeros(
        kind: CellKind,
        input: usize,
        hidden: usize,
        layers: usize,
        classes: usize,
    ) -> Self {
        Network {
            kind,
            layers: (0..layers)
                .map(|k| {
                    LayerParams::zeros(kind.gates(), if k == 0 { input } else { hidden }, hidden)
                })
                .collect(),
            head: DenseParams::zeros(hidden, classes),
        }
    }

    /// PyTorch's default initialisation from a seeded RNG: every recurrent weight and bias
    /// `U(-1/√H, 1/√H)` (`nn.RNNBase.reset_parameters`), and the head `U(-1/√H, 1/√H)` too
    /// (`nn.Linear`: Kaiming-uniform with `a = √5` reduces to `1/√fan_in` for the weight, and
    /// the bias uses `1/√fan_in`). Tensors are drawn in `state_dict` order.
    pub fn init(
        kind: CellKind,
        input: usize,
        hidden: usize,
        layers: usize,
        classes: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let mut net = Self::zeros(kind, input, hidden, layers, classes);
        let bound = 1.0 / (hidden as f64).sqrt();
        for t in net.tensors_mut() {
            for v in t.iter_mut() {
                *v = T::from(rng.gen_range(-bound..bound)).unwrap_or_else(T::zero);
            }
        }
        net
    }

    /// Adds `b` to `bias_ih` of the gate that keeps the previous state — the LSTM forget gate
    /// and the GRU update gate `z` (second gate block of both) — in every layer; nothing for
    /// an Elman RNN. With `b > 0` the initial network remembers for longer and gradients from
    /// the last step reach early steps (Gers et al. 2000; Jozefowicz et al. 2015). PyTorch:
    /// `net.rnn.bias_ih_l{k}.data[H:2*H] += b`.
    pub fn add_gate_bias(&mut self, b: T) {
        if !matches!(self.kind, CellKind::Gru | CellKind::Lstm) {
            return;
        }
        for l in &mut self.layers {
            let h = l.hidden;
            for v in &mut l.b_ih[h..2 * h] {
                *v += b;
            }
        }
    }

    /// A zero network of the same shape.
    pub fn zeros_like(&self) -> Self {
        let l0 = &self.layers[0];
        Self::zeros(
            self.kind,
            l0.input,
            l0.hidden,
            self.layers.len(),
            self.head.output,
        )
    }

    /// `(state_dict key, values)` of every tensor, in PyTorch `state_dict` order.
    pub fn tensors(&self) -> Vec<(String, &[T])> {
        let mut out: Vec<(String, &[T])> = Vec::new();
        for (k, l) in self.layers.iter().enumerate() {
            out.push((format!("rnn.weight_ih_l{k}"), &l.w_ih));
            out.push((format!("rnn.weight_hh_l{k}"), &l.w_hh));
            out.push((format!("rnn.bias_ih_l{k}"), &l.b_ih));
            out.push((format!("rnn.bias_hh_l{k}"), &l.b_hh));
        }
        out.push(("head.weight".into(), &self.head.weight));
        out.push(("head.bias".into(), &self.head.bias));
        out
    }

    /// Mutable views of every tensor, in the order of [`Network::tensors`].
    pub fn tensors_mut(&mut self) -> Vec<&mut [T]> {
        let mut out: Vec<&mut [T]> = Vec::new();
        for l in &mut self.layers {
            out.push(&mut l.w_ih);
            out.push(&mut l.w_hh);
            out.push(&mut l.b_ih);
            out.push(&mut l.b_hh);
        }
        out.push(&mut self.head.weight);
        out.push(&mut self.head.bias);
        out
    }

    /// Adds `other` to `self`, tensor by tensor.
    pub fn add_assign(&mut self, other: &Network<T>) {
        for (a, (_, b)) in self.tensors_mut().into_iter().zip(other.tensors()) {
            linalg::add_assign(a, b);
        }
    }

    /// Converts every value to another float type.
    pub fn cast<U: Real>(&self) -> Network<U> {
        let c = |v: &Vec<T>| {
            v.iter()
                .map(|x| U::from(*x).unwrap_or_else(U::nan))
                .collect()
        };
        Network {
            kind: self.kind,
            layers: self
                .layers
                .iter()
                .map(|l| LayerParams {
                    input: l.input,
                    hidden: l.hidden,
                    w_ih: c(&l.w_ih),
                    w_hh: c(&l.w_hh),
                    b_ih: c(&l.b_ih),
                    b_hh: c(&l.b_hh),
                })
                .collect(),
            head: DenseParams {
                input: self.head.input,
                output: self.head.output,
                weight: c(&self.head.weight),
                bias: c(&self.head.bias),
            },
        }
    }

    /// State size of one layer: `hidden`, or `2·hidden` (`[h; c]`) for LSTM.
    fn state_len(&self, layer: usize) -> usize {
        let h = self.layers[layer].hidden;
        if self.kind == CellKind::Lstm {
            2 * h
        } else {
            h
        }
    }

    /// Runs every layer over `xs` (`steps × input`) from the initial states `init` (one per
    /// layer; zeros when `None`). Returns each layer's cache.
    fn forward(&self, xs: &[T], steps: usize, init: Option<&[Vec<T>]>) -> Vec<LayerCache<T>> {
        let mut caches: Vec<LayerCache<T>> = Vec::with_capacity(self.layers.len());
        for (k, p) in self.layers.iter().enumerate() {
            let zero;
            let s0: &[T] = match init {
                Some(s) => &s[k],
                None => {
                    zero = vec![T::zero(); self.state_len(k)];
                    &zero
                }
            };
            let input: &[T] = if k == 0 { xs } else { caches[k - 1].h() };
            let cache = match self.kind {
                CellKind::Rnn(f) => LayerCache::Rnn(rnn::forward(p, f, input, steps, s0)),
                CellKind::Lstm => LayerCache::Lstm(lstm::forward(p, input, steps, s0)),
                CellKind::Gru => LayerCache::Gru(gru::forward(p, input, steps, s0)),
            };
            caches.push(cache);
        }
        caches
    }

    /// Loss and accuracy of one sequence, without gradients.
    pub fn evaluate(&self, xs: &[T], steps: usize, target: Target<'_>) -> Stats {
        let caches = self.forward(xs, steps, None);
        let h = caches.last().map_or(&[][..], |c| c.h());
        self.head_stats(h, steps, target, |_, _| {})
    }

    /// Per-step head logits (`steps × classes`) for a sequence.
    pub fn logits(&self, xs: &[T], steps: usize) -> Vec<T> {
        let caches = self.forward(xs, steps, None);
        let h = caches.last().map_or(&[][..], |c| c.h());
        let (n_h, n_c) = (self.head.input, self.head.output);
        let mut out = vec![T::zero(); steps * n_c];
        for t in 0..steps {
            self.head
                .logits(&h[t * n_h..(t + 1) * n_h], &mut out[t * n_c..(t + 1) * n_c]);
        }
        out
    }

    fn head_stats(
        &self,
        h: &[T],
        steps: usize,
        target: Target<'_>,
        mut each: impl FnMut(usize, usize),
    ) -> Stats {
        let (n_h, n_c) = (self.head.input, self.head.output);
        let mut z = vec![T::zero(); n_c];
        let mut stats = Stats::default();
        let mut term = |t: usize, label: usize, stats: &mut Stats| {
            self.head.logits(&h[t * n_h..(t + 1) * n_h], &mut z);
            let (l, ok) = dense::softmax_cross_entropy(&mut z, label);
            stats.add(Stats {
                loss_sum: l,
                correct: usize::from(ok),
                count: 1,
            });
            each(t, label);
        };
        match target {
            Target::Last(y) => term(steps - 1, y, &mut stats),
            Target::PerStep(ys) => {
                for (t, &y) in ys.iter().enumerate().take(steps) {
                    term(t, y, &mut stats);
                }
            }
        }
        stats
    }

    /// Forward and backward for one sequence: adds `scale · ∂(summed loss)/∂θ` into `g` and
    /// returns the (unscaled) summed loss and accuracy counts. `window` enables truncated BPTT
    /// (see the [module docs](self)).
    pub fn sequence_grad(
        &self,
        xs: &[T],
        steps: usize,
        target: Target<'_>,
        window: Option<usize>,
        scale: T,
        g: &mut Network<T>,
    ) -> Stats {
        if steps == 0 {
            return Stats::default();
        }
        let caches = self.forward(xs, steps, None);
        let n_layers = self.layers.len();
        let top = &caches[n_layers - 1];
        let n_h = self.head.input;
        // Gradient arriving at the top layer's h_t from the head.
        let mut dh = vec![T::zero(); steps * n_h];
        let mut stats = Stats::default();
        {
            let mut term = |t: usize, y: usize| {
                let ht = &top.h()[t * n_h..(t + 1) * n_h];
                let (l, ok) = self.head.loss_backward(
                    ht,
                    y,
                    scale,
                    &mut g.head,
                    &mut dh[t * n_h..(t + 1) * n_h],
                );
                stats.add(Stats {
                    loss_sum: l,
                    correct: usize::from(ok),
                    count: 1,
                });
            };
            match target {
                Target::Last(y) => term(steps - 1, y),
                Target::PerStep(ys) => {
                    for (t, &y) in ys.iter().enumerate().take(steps) {
                        term(t, y);
                    }
                }
            }
        }
        // Windows are aligned to the end: step t starts one iff steps - t is a multiple of K.
        let cut = move |t: usize| window.is_some_and(|k| t % k.max(1) == steps % k.max(1));
        for k in (0..n_layers).rev() {
            let p = &self.layers[k];
            let s0 = vec![T::zero(); self.state_len(k)];
            let input: &[T] = if k == 0 { xs } else { caches[k - 1].h() };
            let mut dx = if k > 0 {
                Some(vec![T::zero(); steps * p.input])
            } else {
                None
            };
            let gk = &mut g.layers[k];
            match (&caches[k], self.kind) {
                (LayerCache::Rnn(c), CellKind::Rnn(f)) => {
                    rnn::backward(p, f, input, steps, &s0, c, &dh, &cut, gk, dx.as_deref_mut())
                }
                (LayerCache::Lstm(c), _) => {
                    lstm::backward(p, input, steps, &s0, c, &dh, &cut, gk, dx.as_deref_mut())
                }
                (LayerCache::Gru(c), _) => {
                    gru::backward(p, input, steps, &s0, c, &dh, &cut, gk, dx.as_deref_mut())
                }
                (LayerCache::Rnn(_), _) => unreachable!("cache kind follows the network kind"),
            }
            if let Some(dx) = dx {
                dh = dx;
            }
        }
        stats
    }
}

impl Network<f32> {
    /// Builds a network from a loaded model file (all biases required, a head required).
    pub fn from_float_model(m: &FloatModel) -> Result<Network<f32>> {
        let Some(head) = &m.head else {
            bail!("the model has no linear head")
        };
        let mut layers = Vec::new();
        for (k, l) in m.layers.iter().enumerate() {
            let (Some(b_ih), Some(b_hh)) = (&l.b_ih, &l.b_hh) else {
                bail!("layer {k} has no biases; training needs bias=True")
            };
            layers.push(LayerParams {
                input: l.input_size,
                hidden: l.hidden_size,
                w_ih: l.w_ih.clone(),
                w_hh: l.w_hh.clone(),
                b_ih: b_ih.clone(),
                b_hh: b_hh.clone(),
            });
        }
        let Some(bias) = &head.bias else {
            bail!("the head has no bias; training needs bias=True")
        };
        Ok(Network {
            kind: m.kind,
            layers,
            head: DenseParams {
                input: head.input_size,
                output: head.output_size,
                weight: head.weight.clone(),
                bias: bias.clone(),
            },
        })
    }

    /// The model file for this network: prefix `rnn`, head prefix `head`, with `meta`.
    pub fn to_float_model(&self, meta: ModelMeta) -> FloatModel {
        FloatModel {
            kind: self.kind,
            layers: self
                .layers
                .iter()
                .map(|l| LayerWeights {
                    input_size: l.input,
                    hidden_size: l.hidden,
                    w_ih: l.w_ih.clone(),
                    w_hh: l.w_hh.clone(),
                    b_ih: Some(l.b_ih.clone()),
                    b_hh: Some(l.b_hh.clone()),
                })
                .collect(),
            head: Some(HeadWeights {
                input_size: self.head.input,
                output_size: self.head.output,
                weight: self.head.weight.clone(),
                bias: Some(self.head.bias.clone()),
            }),
            prefix: "rnn".into(),
            head_prefix: "head".into(),
            meta,
        }
    }
}

/// The mean loss gradient of a mini-batch (see the [module docs](self) for the loss and the
/// deterministic parallel summation). Returns the gradient and the summed statistics.
pub fn batch_grad(
    net: &Network<f32>,
    batch: &[Sample<'_>],
    window: Option<usize>,
) -> (Network<f32>, Stats) {
    let terms: usize = batch.iter().map(Sample::terms).sum();
    let scale = 1.0 / terms.max(1) as f32;
    let parts: Vec<(Network<f32>, Stats)> = batch
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut g = net.zeros_like();
            let mut stats = Stats::default();
            for s in chunk {
                stats.add(net.sequence_grad(s.xs, s.steps, s.target, window, scale, &mut g));
            }
            (g, stats)
        })
        .collect();
    let mut parts = parts.into_iter();
    let (mut g, mut stats) = parts
        .next()
        .unwrap_or_else(|| (net.zeros_like(), Stats::default()));
    for (gp, sp) in parts {
        g.add_assign(&gp);
        stats.add(sp);
    }
    (g, stats)
}

/// Loss and accuracy over a set of samples (parallel, summed in a fixed order).
pub fn evaluate(net: &Network<f32>, samples: &[Sample<'_>]) -> Stats {
    let parts: Vec<Stats> = samples
        .par_iter()
        .map(|s| net.evaluate(s.xs, s.steps, s.target))
        .collect();
    let mut total = Stats::default();
    for p in parts {
        total.add(p);
    }
    total
}

/// Training hyper-parameters. [`TrainConfig::new`] gives the defaults of `tinyrnn train`.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Cell kind.
    pub kind: CellKind,
    /// Hidden units per layer.
    pub hidden: usize,
    /// Recurrent layers.
    pub layers: usize,
    /// Number of epochs (fewer with early stopping, more with `extend_until_fit`).
    pub epochs: usize,
    /// Whether a run that has not fit its training split after `epochs` epochs goes on, up to
    /// `epochs` more, until an epoch's training loss is below [`FIT_LOSS`] (the loss of the
    /// weights after the epoch without validation data, the running loss with it). A run that
    /// fits early stops at `epochs` and is not over-trained; one still learning gets the time.
    /// Not with a cosine schedule, whose rate has reached 0 by then.
    pub extend_until_fit: bool,
    /// Sequences per mini-batch.
    pub batch: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// Seed for initialisation, shuffling and augmentation (restarts derive theirs from it).
    pub seed: u64,
    /// Truncated-BPTT window (`None`: full BPTT).
    pub bptt_window: Option<usize>,
    /// Global gradient-norm clipping threshold (`None`: no clipping).
    pub clip: Option<f32>,
    /// Stop after this many epochs without a new best validation loss (`None`: never).
    pub patience: Option<usize>,
    /// Learning-rate schedule over the run (`lr` is its peak).
    pub schedule: LrSchedule,
    /// Changes to PyTorch's initialisation.
    pub init: InitConfig,
    /// Augmentation of the training series, drawn anew every epoch.
    pub augment: Augment,
    /// Restart a run still at chance after some epochs (`None`: never check).
    pub collapse: Option<CollapseCheck>,
}

impl TrainConfig {
    /// The defaults of `tinyrnn train` for `kind` (see the README for the measurements they
    /// were chosen by): one layer of 32 units, 100 epochs (up to 200 while the training loss
    /// is above [`FIT_LOSS`]) of mini-batches of 8, Adam at 5e-3,
    /// gradient norm clipped to 1, full BPTT, seed 0, no early stopping, the LSTM forget-gate
    /// bias raised by 1, the input weights' spread at least 0.25 ([`InitConfig::input_std`]),
    /// PyTorch's initialisation otherwise, no augmentation, and
    /// a collapsed run restarted ([`CollapseCheck::DEFAULT`]).
    pub fn new(kind: CellKind) -> TrainConfig {
        TrainConfig {
            kind,
            hidden: 32,
            layers: 1,
            epochs: 100,
            extend_until_fit: true,
            batch: 8,
            lr: 5e-3,
            seed: 0,
            bptt_window: None,
            clip: Some(1.0),
            patience: None,
            schedule: LrSchedule::Constant,
            init: InitConfig {
                gate_bias: GateBias::Add(if kind == CellKind::Lstm { 1.0 } else { 0.0 }),
                input_std: Some(0.25),
                ..InitConfig::PYTORCH
            },
            augment: Augment::OFF,
            collapse: Some(CollapseCheck::DEFAULT),
        }
    }
}

/// One restart of a collapsed run, as reported by [`train`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Restart {
    /// Seed of the run that collapsed.
    pub seed: u64,
    /// Epoch at which it was found collapsed.
    pub epoch: usize,
    /// Its best training accuracy up to then.
    pub train_accuracy: f64,
    /// The accuracy it had to reach ([`CollapseCheck::threshold`]).
    pub threshold: f64,
    /// Seed of the next run.
    pub next_seed: u64,
}

/// What [`train`] reports while it runs.
#[derive(Clone, Copy, Debug)]
pub enum TrainEvent<'a> {
    /// An epoch ended (epochs count from 1 again after a restart).
    Epoch(&'a EpochRecord),
    /// A run collapsed and training starts again from another seed.
    Restart(&'a Restart),
}

/// One epoch's numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's mini-batches (weights changing as it goes).
    pub train_loss: f64,
    /// Training accuracy over the same passes.
    pub train_accuracy: f64,
    /// Validation loss after the epoch (`None` without validation data).
    pub val_loss: Option<f64>,
    /// Validation accuracy after the epoch.
    pub val_accuracy: Option<f64>,
    /// Loss of the weights after the epoch on the whole training set (computed only without
    /// validation data, where it selects the saved epoch).
    pub fit_loss: Option<f64>,
    /// Learning rate of the epoch's last optimiser step.
    pub lr: f32,
}

/// What [`train`] returns.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The best network: lowest validation loss, or without validation data the lowest loss
    /// on the training set (measured after each epoch with the weights fixed).
    pub net: Network<f32>,
    /// One record per epoch of the run that produced `net`.
    pub history: Vec<EpochRecord>,
    /// 1-based epoch of `net`.
    pub best_epoch: usize,
    /// Seed of the run that produced `net` (the configured one unless a run restarted).
    pub seed: u64,
    /// The restarts before that run, in order.
    pub restarts: Vec<Restart>,
    /// Sequence-steps processed by forward + backward passes (all runs).
    pub trained_steps: u64,
    /// Seconds spent in forward, backward and optimiser steps (all runs; validation
    /// excluded).
    pub train_seconds: f64,
}

/// The RNG stream for `purpose` under `seed`: independent streams so that, e.g., changing the
/// validation split does not change the initial weights.
pub fn rng(seed: u64, purpose: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(purpose);
    r
}

/// RNG stream for the initial weights.
pub const STREAM_INIT: u64 = 1;
/// RNG stream for the per-epoch shuffles.
pub const STREAM_SHUFFLE: u64 = 2;
/// RNG stream for the validation split.
pub const STREAM_SPLIT: u64 = 3;
/// RNG stream for the orthogonal recurrent and chrono initialisations.
pub const STREAM_ORTHOGONAL: u64 = 4;
/// RNG stream for the augmentations.
pub const STREAM_AUGMENT: u64 = 6;

/// Training loss below which a run counts as having fit its training split (the right class
/// gets about 99 % probability on average).
pub const FIT_LOSS: f64 = 0.01;

/// Whether the epoch's training loss (of the weights after it where that was measured, else
/// the running one) is below [`FIT_LOSS`].
fn is_fit(r: &EpochRecord) -> bool {
    r.fit_loss.unwrap_or(r.train_loss) < FIT_LOSS
}

/// How one run of [`run`] ended.
enum RunEnd {
    Finished {
        net: Network<f32>,
        history: Vec<EpochRecord>,
        best_epoch: usize,
    },
    Collapsed {
        epoch: usize,
        train_accuracy: f64,
    },
}

/// Trains a fresh network on `train_set`, validating on `val_set` (may be empty) after each
/// epoch; `on_event` sees each epoch's record and each restart as they happen. A run that
/// collapses (see [`collapse`]) starts again from a seed derived from `cfg.seed`.
/// Deterministic for a given config and data; prints nothing.
pub fn train(
    cfg: &TrainConfig,
    input: usize,
    classes: usize,
    train_set: &[Sample<'_>],
    val_set: &[Sample<'_>],
    on_event: &mut dyn FnMut(TrainEvent<'_>),
) -> Result<TrainOutcome> {
    if train_set.is_empty() {
        bail!("no training sequences");
    }
    if cfg.hidden == 0 || cfg.layers == 0 || cfg.batch == 0 || cfg.epochs == 0 {
        bail!("hidden, layers, batch and epochs must all be at least 1");
    }
    if input == 0 || classes == 0 {
        bail!("the data needs at least one channel and one class");
    }
    let channel_std = (!cfg.augment.is_off()).then(|| augment::channel_std(train_set, input));
    let chance = collapse::chance_accuracy(train_set, classes);
    let mut restarts = Vec::new();
    let mut trained_steps = 0u64;
    let mut train_seconds = 0.0;
    loop {
        let seed = collapse::restart_seed(cfg.seed, restarts.len());
        let check = cfg
            .collapse
            .filter(|c| restarts.len() < c.max_restarts && c.after_epochs <= cfg.epochs);
        let end = run(
            cfg,
            seed,
            input,
            classes,
            train_set,
            val_set,
            channel_std.as_deref(),
            check.map(|c| (c.after_epochs, c.threshold(chance))),
            &mut trained_steps,
            &mut train_seconds,
            on_event,
        )?;
        match end {
            RunEnd::Finished {
                net,
                history,
                best_epoch,
            } => {
                return Ok(TrainOutcome {
                    net,
                    history,
                    best_epoch,
                    seed,
                    restarts,
                    trained_steps,
                    train_seconds,
                })
            }
            RunEnd::Collapsed {
                epoch,
                train_accuracy,
            } => {
                let r = Restart {
                    seed,
                    epoch,
                    train_accuracy,
                    threshold: check.map_or(0.0, |c| c.threshold(chance)),
                    next_seed: collapse::restart_seed(cfg.seed, restarts.len() + 1),
                };
                on_event(TrainEvent::Restart(&r));
                restarts.push(r);
            }
        }
    }
}

/// One training run from `seed`; with `check = Some((epoch, threshold))` it stops as
/// collapsed when the best running training accuracy up to that epoch is below `threshold`.
#[allow(clippy::too_many_arguments)] // the run's whole context, one call site
fn run(
    cfg: &TrainConfig,
    seed: u64,
    input: usize,
    classes: usize,
    train_set: &[Sample<'_>],
    val_set: &[Sample<'_>],
    channel_std: Option<&[f32]>,
    check: Option<(usize, f64)>,
    trained_steps: &mut u64,
    train_seconds: &mut f64,
    on_event: &mut dyn FnMut(TrainEvent<'_>),
) -> Result<RunEnd> {
    let mut net: Network<f32> = Network::init(
        cfg.kind,
        input,
        cfg.hidden,
        cfg.layers,
        classes,
        &mut rng(seed, STREAM_INIT),
    );
    let typical_steps = train_set.iter().map(|s| s.steps).sum::<usize>() / train_set.len();
    cfg.init
        .apply(&mut net, typical_steps, &mut rng(seed, STREAM_ORTHOGONAL));
    let sizes: Vec<usize> = net.tensors().iter().map(|(_, t)| t.len()).collect();
    let mut opt = adam::Adam::new(cfg.lr, &sizes);
    let mut shuffle_rng = rng(seed, STREAM_SHUFFLE);
    let mut augment_rng = rng(seed, STREAM_AUGMENT);
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    let mut history = Vec::new();
    let mut best: Option<(f64, usize, Network<f32>)> = None;
    let mut best_train_accuracy = 0.0f64;
    let per_epoch = train_set.len().div_ceil(cfg.batch);
    let mut scheduler = Scheduler::new(cfg.schedule, cfg.lr, per_epoch, cfg.epochs);
    let mut step = 0usize;
    let extend = match cfg.schedule {
        LrSchedule::Cosine { .. } => 0,
        _ if cfg.extend_until_fit => cfg.epochs,
        _ => 0,
    };
    for epoch in 1..=cfg.epochs + extend {
        if epoch > cfg.epochs && history.last().is_some_and(is_fit) {
            break;
        }
        order.shuffle(&mut shuffle_rng);
        let start = std::time::Instant::now();
        let augmented: Vec<augment::Augmented> = match channel_std {
            Some(sd) => train_set
                .iter()
                .map(|s| cfg.augment.apply(s, input, sd, &mut augment_rng))
                .collect(),
            None => Vec::new(),
        };
        let epoch_set: Vec<Sample<'_>>;
        let current: &[Sample<'_>] = if channel_std.is_some() {
            epoch_set = augmented
                .iter()
                .zip(train_set)
                .map(|(a, s)| a.sample(s))
                .collect();
            &epoch_set
        } else {
            train_set
        };
        let mut stats = Stats::default();
        let mut batch: Vec<Sample<'_>> = Vec::with_capacity(cfg.batch);
        for idx in order.chunks(cfg.batch) {
            batch.clear();
            batch.extend(idx.iter().map(|&i| current[i]));
            let (mut g, s) = batch_grad(&net, &batch, cfg.bptt_window);
            stats.add(s);
            *trained_steps += batch.iter().map(|s| s.steps as u64).sum::<u64>();
            let mut grads = g.tensors_mut();
            if let Some(c) = cfg.clip {
                adam::clip_grad_norm(&mut grads, c);
            }
            let grads: Vec<&[f32]> = grads.into_iter().map(|g| &*g).collect();
            opt.lr = scheduler.rate(step);
            step += 1;
            opt.step(&mut net.tensors_mut(), &grads);
        }
        *train_seconds += start.elapsed().as_secs_f64();
        if !stats.loss().is_finite() {
            bail!(
                "training diverged at epoch {epoch} (loss is not finite); lower --lr or set --clip"
            );
        }
        let val = (!val_set.is_empty()).then(|| evaluate(&net, val_set));
        // Without validation data, the epoch to keep is chosen on the training loss of the
        // fixed weights: the running loss above mixes weights from the whole epoch, and the
        // last epoch can be a bad one (a loss spike late in training).
        let fit = val.is_none().then(|| evaluate(&net, train_set));
        let rec = EpochRecord {
            epoch,
            train_loss: stats.loss(),
            train_accuracy: stats.accuracy(),
            val_loss: val.map(|v| v.loss()),
            val_accuracy: val.map(|v| v.accuracy()),
            fit_loss: fit.map(|f| f.loss()),
            lr: opt.lr,
        };
        history.push(rec);
        on_event(TrainEvent::Epoch(&rec));
        best_train_accuracy = best_train_accuracy.max(rec.train_accuracy);
        if let Some((at, threshold)) = check {
            if epoch == at && best_train_accuracy < threshold {
                return Ok(RunEnd::Collapsed {
                    epoch,
                    train_accuracy: best_train_accuracy,
                });
            }
        }
        if let Some(v) = rec.val_loss.or(rec.fit_loss) {
            scheduler.end_epoch(v);
            // A NaN never becomes the best; ties keep the earlier epoch.
            if best.as_ref().is_none_or(|(b, _, _)| v < *b) {
                best = Some((v, epoch, net.clone()));
            } else if let (Some(p), Some((_, be, _)), true) =
                (cfg.patience, &best, rec.val_loss.is_some())
            {
                if epoch - be >= p {
                    break;
                }
            }
        }
    }
    let last = history.len();
    let (net, best_epoch) = match best {
        Some((_, e, n)) => (n, e),
        None => (net, last),
    };
    Ok(RunEnd::Finished {
        net,
        history,
        best_epoch,
    })
}

/// Splits `0..n` into (train, validation) indices: a fraction `val_split` of each class goes to
/// validation (rounded, at least one when the fraction is positive and the class has two or
/// more members, never the whole class), chosen by the seed. `labels[i]` is a class per item;
/// both lists come back sorted.
pub fn split_validation(labels: &[usize], val_split: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = rng(seed, STREAM_SPLIT);
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for c in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
        members.shuffle(&mut rng);
        let n = members.len();
        let mut k = (n as f64 * val_split).round() as usize;
        if val_split > 0.0 && n >= 2 {
            k = k.clamp(1, n - 1);
        } else {
            k = k.min(n.saturating_sub(1));
        }
        va.extend_from_slice(&members[..k]);
        tr.extend_from_slice(&members[k..]);
    }
    tr.sort_unstable();
    va.sort_unstable();
    (tr, va)
}
