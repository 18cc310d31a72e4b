//! Learning-rate schedules: constant, warm-up + cosine, and reduce-on-plateau.

/// How the learning rate moves over a run of `epochs` epochs of `b` mini-batches each, i.e.
/// `N = epochs · b` optimiser steps. The rate is set before every step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    /// `lr` at every step.
    Constant,
    /// Linear warm-up from `lr / W` to `lr` over the first `W = warmup_epochs · b` steps, then
    /// half a cosine from `lr` down to 0 over the remaining steps (SGDR without restarts,
    /// Loshchilov & Hutter 2017; PyTorch `LinearLR` then `CosineAnnealingLR(eta_min = 0)`,
    /// stepped per mini-batch). Large steps early explore, small steps late settle into a
    /// minimum instead of bouncing out of it.
    Cosine {
        /// Warm-up length in epochs (0: none).
        warmup_epochs: usize,
    },
    /// `lr`, multiplied by `factor` whenever the loss that selects the saved epoch (validation
    /// loss, or the training-set loss without validation data) has not improved on its best
    /// by a relative `1e-4` for more than `patience` epochs (PyTorch `ReduceLROnPlateau` with
    /// its default threshold, stepped per epoch).
    Plateau {
        /// Multiplier of each reduction, in `(0, 1)`.
        factor: f32,
        /// Epochs without improvement tolerated before a reduction.
        patience: usize,
    },
}

impl LrSchedule {
    /// The rate of optimiser step `step` (0-based) of `total`, `warmup` of which warm up, for
    /// a peak rate `lr`, before any plateau reduction (see [`Scheduler`]).
    pub fn rate(self, lr: f32, step: usize, total: usize, warmup: usize) -> f32 {
        match self {
            LrSchedule::Constant | LrSchedule::Plateau { .. } => lr,
            LrSchedule::Cosine { .. } => {
                let warmup = warmup.min(total.saturating_sub(1));
                if step < warmup {
                    return lr * (step + 1) as f32 / warmup as f32;
                }
                let span = total.saturating_sub(warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / span).min(1.0);
                (f64::from(lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32
            }
        }
    }
}

/// A schedule running over one training run: the rate of each step, and the plateau state
/// fed with each epoch's selection loss.
#[derive(Clone, Debug)]
pub struct Scheduler {
    schedule: LrSchedule,
    lr: f32,
    total: usize,
    warmup: usize,
    factor: f32,
    best: f64,
    bad_epochs: usize,
}

impl Scheduler {
    /// The schedule for peak rate `lr` over `epochs` epochs of `per_epoch` optimiser steps.
    pub fn new(schedule: LrSchedule, lr: f32, per_epoch: usize, epochs: usize) -> Scheduler {
        let warmup = match schedule {
            LrSchedule::Cosine { warmup_epochs } => per_epoch * warmup_epochs,
            _ => 0,
        };
        Scheduler {
            schedule,
            lr,
            total: per_epoch * epochs,
            warmup,
            factor: 1.0,
            best: f64::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The rate of optimiser step `step` (0-based).
    pub fn rate(&self, step: usize) -> f32 {
        self.factor * self.schedule.rate(self.lr, step, self.total, self.warmup)
    }

    /// Records the selection loss after an epoch (a plateau schedule may lower the rate).
    pub fn end_epoch(&mut self, loss: f64) {
        let LrSchedule::Plateau { factor, patience } = self.schedule else {
            return;
        };
        if loss < self.best * (1.0 - 1e-4) {
            self.best = loss;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
            if self.bad_epochs > patience {
                self.factor *= factor;
                self.bad_epochs = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_warms_up_then_decays_to_zero() {
        let s = LrSchedule::Cosine { warmup_epochs: 1 };
        let (lr, total, warmup) = (1.0f32, 12, 2);
        assert_eq!(s.rate(lr, 0, total, warmup), 0.5);
        assert_eq!(s.rate(lr, 1, total, warmup), 1.0);
        assert_eq!(s.rate(lr, 2, total, warmup), 1.0);
        assert!((s.rate(lr, 7, total, warmup) - 0.5).abs() < 1e-6);
        let rates: Vec<f32> = (2..total).map(|i| s.rate(lr, i, total, warmup)).collect();
        assert!(rates.windows(2).all(|w| w[1] < w[0]), "{rates:?}");
        assert!(rates[rates.len() - 1] < 0.03);
        assert_eq!(LrSchedule::Constant.rate(0.1, 5, total, warmup), 0.1);
        let sched = Scheduler::new(s, 1.0, 2, 6);
        assert_eq!(sched.rate(0), 0.5);
        assert_eq!(sched.rate(7), s.rate(lr, 7, total, warmup));
    }

    #[test]
    fn plateau_lowers_the_rate_after_patience_epochs_without_improvement() {
        let mut s = Scheduler::new(
            LrSchedule::Plateau {
                factor: 0.5,
                patience: 2,
            },
            0.1,
            3,
            20,
        );
        let mut rates = Vec::new();
        // Improves twice, then flat: the third flat epoch exceeds patience 2.
        for loss in [1.0, 0.9, 0.9, 0.9, 0.89999, 0.9, 0.5, 0.6, 0.6, 0.6] {
            s.end_epoch(loss);
            rates.push(s.rate(0));
        }
        assert_eq!(
            rates,
            [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.025]
        );
        // Constant and cosine ignore the losses.
        let mut c = Scheduler::new(LrSchedule::Constant, 0.1, 3, 20);
        for _ in 0..10 {
            c.end_epoch(1.0);
        }
        assert_eq!(c.rate(5), 0.1);
    }
}
