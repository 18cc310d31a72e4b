//! A recurrent body with a dense head ([`Model`]), and [`argmax`] of its outputs.

use crate::dense::Dense;
use crate::numeric::{Numeric, Schedule};
use crate::recurrent::Recurrent;

/// A recurrent body `R` (one layer or a [`Stack`](crate::Stack)) followed by a dense head with `O` outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Model<N: Numeric, R, const H: usize, const O: usize> {
    body: R,
    head: Dense<N, H, O>,
}

/// State of a [`Model`]: the body's state.
pub type ModelState<N, R> = <R as Recurrent<N>>::State;

impl<N: Schedule, R: Recurrent<N>, const H: usize, const O: usize> Model<N, R, H, O> {
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

/// Index of the largest value, the first one on ties: the class a classifier predicts from its
/// head's outputs, for `f32`, `i16`, `i32` or any other ordered values.
///
/// NaN never wins: a value that is not equal to itself is skipped. `None` when `values` is
/// empty or holds nothing but NaN.
pub fn argmax<T: PartialOrd>(values: impl IntoIterator<Item = T>) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for (i, v) in values.into_iter().enumerate() {
        // Once a number leads, `v > b` is false for a NaN `v`; before that, NaN is the one value
        // not equal to itself.
        #[allow(clippy::eq_op)]
        let leads = match &best {
            Some((_, b)) => v > *b,
            None => v == v,
        };
        if leads {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_takes_the_first_maximum_and_never_a_nan() {
        assert_eq!(argmax([0.1f32, 0.7, 0.7, -1.0]), Some(1));
        assert_eq!(argmax(&[f32::NAN, -3.0, -4.0][..]), Some(1));
        assert_eq!(argmax([-3.0, f32::NAN, 5.0, f32::NAN]), Some(2));
        assert_eq!(argmax([f32::NAN, f32::NAN]), None);
        assert_eq!(argmax::<f32>([]), None);
        assert_eq!(argmax([f32::NEG_INFINITY, f32::NEG_INFINITY]), Some(0));
        assert_eq!(argmax(&[-7i16, i16::MAX, i16::MAX][..]), Some(1));
        assert_eq!(argmax([i32::MIN, -1, i32::MIN]), Some(1));
    }
}
