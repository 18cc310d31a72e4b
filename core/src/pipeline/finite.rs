//! The cheap check behind the pipeline's non-finite policy: is every value of a state finite?
//!
//! An `f32` state can be poisoned: one NaN or infinite input makes the hidden state NaN, and
//! (as in PyTorch) it stays NaN for every later step. Infinite inputs poison it too wherever
//! they meet weights of both signs (`∞ − ∞`), or pass through a `relu`. Fixed-point values
//! cannot be non-finite, so for `Q15`/`W8A16` states the check is the constant `true` and
//! compiles to nothing.

use crate::{GruState, LstmState, Numeric, RnnState, StackState};

/// A number that may be non-finite: `f32`, or an integer (always finite).
pub trait FiniteCheck: Copy {
    /// `false` for NaN and ±∞.
    fn is_finite(self) -> bool;
}

impl FiniteCheck for f32 {
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

macro_rules! integers_are_finite {
    ($($t:ty),*) => {$(
        impl FiniteCheck for $t {
            #[inline(always)]
            fn is_finite(self) -> bool {
                true
            }
        }
    )*};
}
integers_are_finite!(i8, i16, i32, i64);

/// Whether every value of `values` is finite.
#[inline]
pub fn all_finite<T: FiniteCheck>(values: &[T]) -> bool {
    values.iter().all(|v| v.is_finite())
}

/// A recurrent state whose values can be checked for NaN and ±∞.
///
/// Implemented for the states of [`Rnn`](crate::Rnn), [`Lstm`](crate::Lstm) (hidden *and*
/// cell state), [`Gru`](crate::Gru) and [`Stack`](crate::Stack)s of them.
pub trait FiniteState {
    /// `true` when every value the next step reads is finite. Cost: one compare per value for
    /// `f32`, nothing for fixed point.
    fn is_finite(&self) -> bool;
}

impl<N: Numeric, const H: usize> FiniteState for RnnState<N, H>
where
    N::Act: FiniteCheck,
{
    #[inline]
    fn is_finite(&self) -> bool {
        all_finite(self.hidden())
    }
}

impl<N: Numeric, const H: usize> FiniteState for GruState<N, H>
where
    N::Act: FiniteCheck,
{
    #[inline]
    fn is_finite(&self) -> bool {
        all_finite(self.hidden())
    }
}

impl<N: Numeric, const H: usize> FiniteState for LstmState<N, H>
where
    N::Act: FiniteCheck,
    N::Cell: FiniteCheck,
{
    #[inline]
    fn is_finite(&self) -> bool {
        all_finite(self.hidden()) && all_finite(self.cell())
    }
}

impl<A: FiniteState, B: FiniteState> FiniteState for StackState<A, B> {
    #[inline]
    fn is_finite(&self) -> bool {
        self.first.is_finite() && self.rest.is_finite()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gru, Lstm, Recurrent, Rnn, Stack, F32, Q15};

    fn gru() -> Gru<F32, 2, 3> {
        Gru::new(
            [[[0.5; 2]; 3]; 3],
            [[[0.1; 3]; 3]; 3],
            [[0.0; 3]; 3],
            [0.0; 3],
        )
    }

    #[test]
    fn a_nan_input_poisons_an_f32_state_and_the_check_sees_it() {
        let layer = gru();
        let mut state = layer.new_state();
        layer.step(&mut state, &[0.3, -0.2]);
        assert!(state.is_finite());
        layer.step(&mut state, &[f32::NAN, 0.0]);
        assert!(!state.is_finite());
        // As in PyTorch, it stays poisoned: a finite input does not heal it.
        layer.step(&mut state, &[0.3, -0.2]);
        assert!(!state.is_finite());
        layer.reset(&mut state);
        assert!(state.is_finite());
    }

    #[test]
    fn an_infinite_input_is_caught_in_every_cell_kind() {
        let rnn = Rnn::<F32, 2, 3>::new(
            crate::Nonlinearity::Relu,
            [[0.5; 2]; 3],
            [[0.1; 3]; 3],
            [0.0; 3],
        );
        let mut state = rnn.new_state();
        rnn.step(&mut state, &[f32::INFINITY, 0.0]);
        assert!(!state.is_finite());

        let lstm = Lstm::<F32, 2, 3>::new([[[0.5; 2]; 4]; 3], [[[0.1; 3]; 4]; 3], [[0.0; 4]; 3]);
        let mut state = lstm.new_state();
        // −∞ and +∞ meet in every gate's sum: NaN.
        lstm.step(&mut state, &[f32::NEG_INFINITY, f32::INFINITY]);
        assert!(!state.is_finite());

        let stack = Stack::new(gru(), gru_3());
        let mut state = stack.new_state();
        stack.step(&mut state, &[0.1, 0.2]);
        assert!(state.is_finite());
        stack.step(&mut state, &[f32::NAN, 0.2]);
        assert!(!state.is_finite());
    }

    fn gru_3() -> Gru<F32, 3, 3> {
        Gru::new(
            [[[0.5; 3]; 3]; 3],
            [[[0.1; 3]; 3]; 3],
            [[0.0; 3]; 3],
            [0.0; 3],
        )
    }

    #[test]
    fn fixed_point_states_are_always_finite() {
        let state = <Gru<Q15, 2, 3> as Recurrent<Q15>>::State::default();
        assert!(state.is_finite());
        assert!(FiniteCheck::is_finite(i16::MIN) && FiniteCheck::is_finite(i32::MAX));
    }
}
