//! Heads: what turns a recurrent body's output into the model's outputs — a [`Dense`] layer
//! (`nn.Linear`) or an [`Mlp`](mlp::Mlp) (`nn.Sequential` of linears with `ReLU`/`Tanh`
//! between them) — and [`Network`], a recurrent body with any head.
//!
//! A head maps one vector to one output vector; where it is applied is the caller's choice.
//! On every step, [`Network::step`] (or [`Model::step`](crate::Model::step)) returns the head's
//! outputs for that step (many-to-many, PyTorch's `head(output)`); for the last step only
//! (many-to-one, `head(output[:, -1])`), keep the last of them
//! ([`Network::classify`]), or step the body alone and apply [`Head::forward`] once at the end
//! of the sequence, which saves the head's work on every other step.

pub mod mlp;

use core::marker::PhantomData;

use crate::dense::Dense;
use crate::numeric::Schedule;
use crate::pipeline::{FiniteState, LogitFormat, StreamModel};
use crate::recurrent::Recurrent;

/// A head with sizes fixed at compile time: `INPUT` activations in, `OUTPUT` pre-activation
/// values (logits, regression outputs) out.
pub trait Head<N: Schedule> {
    /// Inputs.
    const INPUT: usize;
    /// Outputs.
    const OUTPUT: usize;

    /// Writes the head's outputs for `x` into `out` (as many as both have).
    fn forward(&self, x: &[N::Act], out: &mut [N::Pre]);

    /// The format of the outputs: for fixed point, `pre_frac` is their fractional bits (`()`
    /// for floats).
    fn output_format(&self) -> N::Format;
}

impl<N: Schedule, const I: usize, const O: usize> Head<N> for Dense<N, I, O> {
    const INPUT: usize = I;
    const OUTPUT: usize = O;

    #[inline]
    fn forward(&self, x: &[N::Act], out: &mut [N::Pre]) {
        self.weights().forward(x, out);
    }

    fn output_format(&self) -> N::Format {
        *self.weights().format()
    }
}

/// A recurrent body `R` (a layer or a [`Stack`](crate::Stack)) followed by any [`Head`] `Hd`
/// with `O` outputs: the [`Model`](crate::Model) of heads other than a single [`Dense`].
///
/// ```
/// use tinyrnn::{Dense, Gru, Mlp, Network, Nonlinearity, F32};
///
/// // A GRU (2 inputs, 3 units) with Sequential(Linear(3, 4), ReLU(), Linear(4, 2)).
/// let gru = Gru::<F32, 2, 3>::new([[[0.1; 2]; 3]; 3], [[[0.05; 3]; 3]; 3], [[0.0; 3]; 3], [0.0; 3]);
/// let head = Mlp::new(
///     Dense::<F32, 3, 4>::new([[0.5; 3]; 4], [0.1; 4]),
///     Nonlinearity::Relu,
///     Dense::<F32, 4, 2>::new([[1.0; 4], [-1.0; 4]], [0.0; 2]),
/// );
/// let model: Network<F32, _, _, 2> = Network::new(gru, head);
/// let mut state = model.new_state();
/// let logits = model.classify(&mut state, [&[0.2, -1.0][..], &[0.4, 0.3][..]]).unwrap();
/// assert!(logits[0] > logits[1]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Network<N, R, Hd, const O: usize> {
    body: R,
    head: Hd,
    numeric: PhantomData<N>,
}

impl<N: Schedule, R: Recurrent<N>, Hd: Head<N>, const O: usize> Network<N, R, Hd, O> {
    /// Joins a body and a head. Fails to compile unless the head takes the body's output size
    /// and has `O` outputs.
    pub const fn new(body: R, head: Hd) -> Self {
        const {
            assert!(
                R::OUTPUT == Hd::INPUT,
                "the head's input size must equal the body's output size"
            );
            assert!(Hd::OUTPUT == O, "the head must have O outputs");
        };
        Network {
            body,
            head,
            numeric: PhantomData,
        }
    }

    /// The recurrent body.
    pub fn body(&self) -> &R {
        &self.body
    }

    /// The head.
    pub fn head(&self) -> &Hd {
        &self.head
    }

    /// A fresh zero state.
    pub fn new_state(&self) -> R::State {
        R::State::default()
    }

    /// Returns `state` to the zero state.
    pub fn reset(&self, state: &mut R::State) {
        self.body.reset(state);
    }

    /// Consumes one sample and returns the head's outputs for this step.
    pub fn step(&self, state: &mut R::State, x: &[N::Act]) -> [N::Pre; O] {
        let mut out = [N::Pre::default(); O];
        self.head.forward(self.body.step(state, x), &mut out);
        out
    }

    /// Many-to-one: steps the body through every sample and applies the head once, to the
    /// last step's output (`None` if there is no sample).
    pub fn classify<'x>(
        &self,
        state: &mut R::State,
        samples: impl IntoIterator<Item = &'x [N::Act]>,
    ) -> Option<[N::Pre; O]>
    where
        N::Act: 'x,
    {
        let mut samples = samples.into_iter().peekable();
        while let Some(x) = samples.next() {
            let h = self.body.step(state, x);
            if samples.peek().is_none() {
                let mut out = [N::Pre::default(); O];
                self.head.forward(h, &mut out);
                return Some(out);
            }
        }
        None
    }
}

impl<N, R, Hd, const O: usize> StreamModel<N> for Network<N, R, Hd, O>
where
    N: Schedule,
    R: Recurrent<N>,
    R::State: FiniteState,
    Hd: Head<N>,
    N::Format: LogitFormat,
{
    type State = R::State;

    fn input_size(&self) -> usize {
        R::INPUT
    }

    fn classes(&self) -> usize {
        O
    }

    fn logit_frac(&self) -> u8 {
        self.head.output_format().logit_frac()
    }

    #[inline]
    fn step_logits(&self, state: &mut R::State, x: &[N::Act], logits: &mut [N::Pre]) {
        self.head.forward(self.body.step(state, x), logits);
    }

    fn reset_state(&self, state: &mut R::State) {
        self.body.reset(state);
    }

    #[inline]
    fn state_is_finite(&self, state: &R::State) -> bool {
        state.is_finite()
    }
}
