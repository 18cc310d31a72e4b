//! The streaming interface every layer implements, [`Recurrent`], and stacking ([`Stack`]).
//!
//! Below the cells: `cell/*` implement [`Recurrent`], and [`Model`](crate::Model) puts a dense
//! head on top of any [`Recurrent`] body.

use crate::numeric::Schedule;

/// A recurrent layer or stack of layers that consumes one sample per [`step`](Self::step).
pub trait Recurrent<N: Schedule> {
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
    pub const fn new<N: Schedule>(first: A, rest: B) -> Self
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

impl<N: Schedule, A: Recurrent<N>, B: Recurrent<N>> Recurrent<N> for Stack<A, B> {
    type State = StackState<A::State, B::State>;
    const INPUT: usize = A::INPUT;
    const OUTPUT: usize = B::OUTPUT;

    fn step<'s>(&self, state: &'s mut Self::State, x: &[N::Act]) -> &'s [N::Act] {
        let y = self.first.step(&mut state.first, x);
        self.rest.step(&mut state.rest, y)
    }
}
