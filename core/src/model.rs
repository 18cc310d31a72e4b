//! Composition: the [`Recurrent`] trait, stacking ([`Stack`]) and a recurrent body with a dense
//! head ([`Model`]).

use crate::dense::Dense;
use crate::numeric::Numeric;

/// A recurrent layer or stack of layers that consumes one sample per [`step`](Self::step).
pub trait Recurrent<N: Numeric> {
    /// Caller-owned state; `Default` is the zero state PyTorch starts from.
    type State: Default;
    /// Input features per step.
    const INPUT: usize;
    /// Output features per step (the last layer's hidden size).
    const OUTPUT: usize;

    /// Consumes one sample `x` (`INPUT` values), updates `state`, returns the new output.
    ///
    /// Never allocates, never panics; memory is `state` plus a bounded stack frame.
    fn step<'s>(&self, state: &'s mut Self::State, x: &[N::Act]) -> &'s [N::Act];

    /// Returns `state` to the zero state.
    fn reset(&self, state: &mut Self::State) {
        *state = Self::State::default();
    }

    /// A fresh zero state.
    fn new_state(&self) -> Self::State {
        Self::State::default()
    }

    /// Many-to-many: steps through `samples`, handing every step's output to `each`.
    fn run<'x>(
        &self,
        state: &mut Self::State,
        samples: impl IntoIterator<Item = &'x [N::Act]>,
        mut each: impl FnMut(&[N::Act]),
    ) where
        N::Act: 'x,
    {
        for x in samples {
            each(self.step(state, x));
        }
    }
}

/// Two recurrent stages in sequence: the output of `first` is the input of `rest`.
///
/// Nest it for deeper stacks: `Stack::new(a, Stack::new(b, c))`. Sizes may differ per layer;
/// `Stack::new` refuses at compile time to join mismatched sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct Stack<A, B> {
    first: A,
    rest: B,
}

impl<A, B> Stack<A, B> {
    /// Joins two stages. Fails to compile unless `first`'s output size is `rest`'s input size.
    pub const fn new<N: Numeric>(first: A, rest: B) -> Self
    where
        A: Recurrent<N>,
        B: Recurrent<N>,
    {
        const {
            assert!(
                A::OUTPUT == B::INPUT,
                "stacked layers: output size must equal the next input size"
            )
        };
        Stack { first, rest }
    }
}

/// State of a [`Stack`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StackState<SA, SB> {
    /// State of the first stage.
    pub first: SA,
    /// State of the remaining stages.
    pub rest: SB,
}

impl<N: Numeric, A: Recurrent<N>, B: Recurrent<N>> Recurrent<N> for Stack<A, B> {
    type State = StackState<A::State, B::State>;
    const INPUT: usize = A::INPUT;
    const OUTPUT: usize = B::OUTPUT;

    fn step<'s>(&self, state: &'s mut Self::State, x: &[N::Act]) -> &'s [N::Act] {
        let y = self.first.step(&mut state.first, x);
        self.rest.step(&mut state.rest, y)
    }
}

/// A recurrent body `R` (one layer or a [`Stack`]) followed by a dense head with `O` outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Model<N: Numeric, R, const H: usize, const O: usize> {
    body: R,
    head: Dense<N, H, O>,
}

/// State of a [`Model`]: the body's state.
pub type ModelState<N, R> = <R as Recurrent<N>>::State;

impl<N: Numeric, R: Recurrent<N>, const H: usize, const O: usize> Model<N, R, H, O> {
    /// Joins a body and a head. Fails to compile unless the body's output size is `H`.
    pub const fn new(body: R, head: Dense<N, H, O>) -> Self {
        const {
            assert!(
                R::OUTPUT == H,
                "the head's input size must equal the body's output size"
            )
        };
        Model { body, head }
    }

    /// The recurrent body.
    pub fn body(&self) -> &R {
        &self.body
    }

    /// The dense head.
    pub fn head(&self) -> &Dense<N, H, O> {
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

    /// Consumes one sample and returns the head's outputs (logits) for this step.
    pub fn step(&self, state: &mut R::State, x: &[N::Act]) -> [N::Pre; O] {
        let h = self.body.step(state, x);
        self.head.forward(h)
    }

    /// Many-to-one: runs every sample and returns the last step's outputs (`None` if empty).
    pub fn classify<'x>(
        &self,
        state: &mut R::State,
        samples: impl IntoIterator<Item = &'x [N::Act]>,
    ) -> Option<[N::Pre; O]>
    where
        N::Act: 'x,
    {
        let mut last = None;
        for x in samples {
            last = Some(self.step(state, x));
        }
        last
    }
}

/// Index of the largest value (the first one on ties); `None` for an empty slice.
pub fn argmax<T: PartialOrd>(values: &[T]) -> Option<usize> {
    let mut best: Option<(usize, &T)> = None;
    for (i, v) in values.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}
