//! Windowed many-to-one: a decision every `k` samples over an endless stream.
//!
//! The model steps on every sample; every `k`-th step (samples `k−1`, `2k−1`, … counted from
//! the stream's start or from the last [restart](Window::restart)) closes a window, and that
//! step's logits go to the decision layer. What happens to the recurrent state then is the
//! window's [`StatePolicy`]:
//!
//! * [`StatePolicy::Reset`]: the state returns to zero after each window, so every decision is
//!   the model's many-to-one output over exactly its window's `k` samples — what PyTorch
//!   computes for that window as a sequence of its own (the way a classifier trained on
//!   fixed-length recordings sees its data).
//! * [`StatePolicy::Carry`]: the state runs on across windows, so a decision sees the whole
//!   past stream (models trained per step, or on long sequences); `k = 1` is many-to-many.
//!
//! Memory: two `u32` and the policy; no buffer of samples.

use super::ConfigError;

/// What happens to the recurrent state when a window closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StatePolicy {
    /// Zero the state after every window: each window is its own sequence.
    Reset,
    /// Keep the state: windows only set when decisions are taken.
    Carry,
}

/// Where the stream is within the current window of `length` samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Window {
    length: u32,
    policy: StatePolicy,
    filled: u32,
}

impl Window {
    /// Windows of `length` samples (at least 1) with `policy`.
    pub const fn new(length: u32, policy: StatePolicy) -> Result<Window, ConfigError> {
        if length == 0 {
            return Err(ConfigError::WindowLength);
        }
        Ok(Window {
            length,
            policy,
            filled: 0,
        })
    }

    /// A decision on every sample, the state carried: many-to-many streaming.
    pub const fn every_sample() -> Window {
        Window {
            length: 1,
            policy: StatePolicy::Carry,
            filled: 0,
        }
    }

    /// Samples per window.
    pub const fn length(&self) -> u32 {
        self.length
    }

    /// The state policy.
    pub const fn policy(&self) -> StatePolicy {
        self.policy
    }

    /// Samples of the current window already stepped.
    pub const fn filled(&self) -> u32 {
        self.filled
    }

    /// Counts one stepped sample; `true` when it closes the window (the next sample starts a
    /// new one).
    #[inline]
    pub fn advance(&mut self) -> bool {
        self.filled += 1;
        if self.filled >= self.length {
            self.filled = 0;
            true
        } else {
            false
        }
    }

    /// Starts a new window with the next sample.
    pub fn restart(&mut self) {
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kth_sample_closes_a_window() {
        let mut window = Window::new(3, StatePolicy::Reset).unwrap();
        let closes: [bool; 7] = core::array::from_fn(|_| window.advance());
        assert_eq!(closes, [false, false, true, false, false, true, false]);
        assert_eq!(window.filled(), 1);
        window.restart();
        assert_eq!(
            [window.advance(), window.advance(), window.advance()],
            [false, false, true]
        );
        assert_eq!(
            Window::new(0, StatePolicy::Carry),
            Err(ConfigError::WindowLength)
        );
        let mut each = Window::every_sample();
        assert!(each.advance() && each.advance());
    }
}
