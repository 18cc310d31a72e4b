//! Multi-layer heads, PyTorch's `nn.Sequential(Linear, act, Linear, …, Linear)` with `act`
//! = `nn.ReLU` or `nn.Tanh` between the linears (any depth; PyTorch's `Dropout` is the
//! identity at inference and is simply left out).
//!
//! ```text
//! a_0 = x
//! a_k = act_k(W_k a_{k-1} + b_k)      k = 1 … L-1   (hidden layers)
//! y   = W_L a_{L-1} + b_L             the last linear: the head's outputs
//! ```
//!
//! # Fixed point
//!
//! Each linear has its own [`QFormat`](crate::QFormat): `x_frac` its input's format (the
//! previous layer's `h_frac`, or the body's output format), `pre_frac` its sums' (for the last
//! linear, the head's outputs). A hidden layer's activations are `i16` in its `h_frac`:
//! `ReLU` rescales `max(pre, 0)` from `pre_frac` to `h_frac` (round half up, saturating,
//! ½ LSB), `Tanh` is the Q15 table rescaled to `h_frac` (the errors of
//! [`Elementwise::relu`](crate::Elementwise::relu) and
//! [`Elementwise::tanh`](crate::Elementwise::tanh)). Integer-only.
//!
//! # Two faces
//!
//! [`Mlp`] nests const-generic layers (`Mlp<N, I, H, Rest>`: a linear `I → H`, its activation,
//! then `Rest`, another `Mlp` or the last [`Dense`]); its hidden activations live on the stack
//! during [`Head::forward`] (`H` pre-activations and `H` activations per hidden layer).
//! [`MlpWeights`] is the run-time-sized slice view with caller-owned scratch. Both run each
//! hidden layer through [`hidden_layer`].

use crate::cell::Nonlinearity;
use crate::dense::{Dense, DenseWeights};
use crate::error::ShapeError;
use crate::head::Head;
use crate::numeric::{Numeric, Schedule};

/// One hidden layer: `out = act(W x + b)`, through `pre` (the layer's output size of scratch).
/// Outputs beyond the shorter of `pre` and `out` are not computed.
pub fn hidden_layer<N: Schedule>(
    linear: &DenseWeights<'_, N>,
    activation: Nonlinearity,
    x: &[N::Act],
    pre: &mut [N::Pre],
    out: &mut [N::Act],
) {
    linear.forward(x, pre);
    let format = linear.format();
    for (a, &p) in out.iter_mut().zip(pre.iter()) {
        *a = match activation {
            Nonlinearity::Relu => N::relu(p, format),
            Nonlinearity::Tanh => N::tanh(p, format),
        };
    }
}

/// A hidden linear `I → H` with its activation, followed by `Rest` (another [`Mlp`] or the
/// last [`Dense`]): a head of sizes fixed at compile time, weights inline (can be `static`).
/// See the [module](self) doc.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<N: Numeric, const I: usize, const H: usize, Rest> {
    linear: Dense<N, I, H>,
    activation: Nonlinearity,
    rest: Rest,
}

impl<N: Schedule, const I: usize, const H: usize, Rest: Head<N>> Mlp<N, I, H, Rest> {
    /// `activation(linear(x))` into `rest`. Fails to compile unless `rest` takes `H` inputs.
    pub const fn new(linear: Dense<N, I, H>, activation: Nonlinearity, rest: Rest) -> Self {
        const {
            assert!(
                Rest::INPUT == H,
                "an MLP layer's output size must be the next layer's input size"
            )
        };
        Mlp {
            linear,
            activation,
            rest,
        }
    }

    /// The hidden linear.
    pub fn linear(&self) -> &Dense<N, I, H> {
        &self.linear
    }

    /// Its activation.
    pub fn activation(&self) -> Nonlinearity {
        self.activation
    }

    /// The layers after it.
    pub fn rest(&self) -> &Rest {
        &self.rest
    }
}

impl<N: Schedule, const I: usize, const H: usize, Rest: Head<N>> Head<N> for Mlp<N, I, H, Rest> {
    const INPUT: usize = I;
    const OUTPUT: usize = Rest::OUTPUT;

    #[inline]
    fn forward(&self, x: &[N::Act], out: &mut [N::Pre]) {
        let mut pre = [N::Pre::default(); H];
        let mut hidden = [N::Act::default(); H];
        hidden_layer(
            &self.linear.weights(),
            self.activation,
            x,
            &mut pre,
            &mut hidden,
        );
        self.rest.forward(&hidden, out);
    }

    fn output_format(&self) -> N::Format {
        self.rest.output_format()
    }
}

/// An MLP head as slice views, for sizes known only at run time: `layers` linears, with
/// `activations[k]` after `layers[k]` (one fewer than the linears).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpWeights<'a, N: Numeric> {
    layers: &'a [DenseWeights<'a, N>],
    activations: &'a [Nonlinearity],
}

impl<'a, N: Schedule> MlpWeights<'a, N> {
    /// Checks the chain: at least one linear, one activation between each two
    /// ([`ShapeError::Length`] of `activations`), each linear's input size the previous one's
    /// output size ([`ShapeError::Chain`]).
    pub fn new(
        layers: &'a [DenseWeights<'a, N>],
        activations: &'a [Nonlinearity],
    ) -> Result<Self, ShapeError> {
        if layers.is_empty() {
            return Err(ShapeError::ZeroSize);
        }
        if activations.len() + 1 != layers.len() {
            return Err(ShapeError::Length {
                tensor: "activations",
                expected: layers.len() - 1,
                actual: activations.len(),
            });
        }
        for (k, pair) in layers.windows(2).enumerate() {
            if let [a, b] = pair {
                if b.input_size() != a.output_size() {
                    return Err(ShapeError::Chain {
                        layer: k + 1,
                        expected: b.input_size(),
                        actual: a.output_size(),
                    });
                }
            }
        }
        Ok(MlpWeights {
            layers,
            activations,
        })
    }

    /// The linears.
    pub fn layers(&self) -> &'a [DenseWeights<'a, N>] {
        self.layers
    }

    /// The activations between them.
    pub fn activations(&self) -> &'a [Nonlinearity] {
        self.activations
    }

    /// Inputs.
    pub fn input_size(&self) -> usize {
        self.layers.first().map_or(0, |l| l.input_size())
    }

    /// Outputs.
    pub fn output_size(&self) -> usize {
        self.layers.last().map_or(0, |l| l.output_size())
    }

    /// Scratch [`forward`](Self::forward) needs: `(pre, acts)` elements, the widest hidden
    /// layer once and twice.
    pub fn scratch_sizes(&self) -> (usize, usize) {
        let hidden = self.layers.split_last().map_or(0, |(_, hidden)| {
            hidden.iter().map(|l| l.output_size()).max().unwrap_or(0)
        });
        (hidden, 2 * hidden)
    }

    /// Writes the head's outputs for `x` into `out`, through the caller's scratch (sizes from
    /// [`scratch_sizes`](Self::scratch_sizes)); shorter scratch shortens the work instead of
    /// panicking.
    pub fn forward(
        &self,
        x: &[N::Act],
        out: &mut [N::Pre],
        pre: &mut [N::Pre],
        acts: &mut [N::Act],
    ) {
        let Some((last, hidden)) = self.layers.split_last() else {
            return;
        };
        let half = acts.len() / 2;
        let (mut current, mut next) = acts.split_at_mut(half);
        let mut width = None;
        for (layer, &activation) in hidden.iter().zip(self.activations) {
            let input: &[N::Act] = match width {
                None => x,
                Some(w) => current.get(..w).unwrap_or_default(),
            };
            let h = layer.output_size().min(next.len());
            hidden_layer(layer, activation, input, pre, &mut next[..h]);
            core::mem::swap(&mut current, &mut next);
            width = Some(h);
        }
        let input: &[N::Act] = match width {
            None => x,
            Some(w) => current.get(..w).unwrap_or_default(),
        };
        last.forward(input, out);
    }
}
