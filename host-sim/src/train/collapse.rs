//! Detecting a collapsed run — one still classifying at chance after some epochs — so that
//! [`train`](super::train) can restart it from another seed.
//!
//! A recurrent net that starts in a bad place (gates saturated, gradients vanishing through a
//! long sequence) can sit at the majority class for a whole run; the loss barely moves and the
//! user would only learn it from the test accuracy. The check is made once, after
//! [`CollapseCheck::after_epochs`] epochs: the run has collapsed when the best training
//! accuracy of those epochs (the running accuracy of each epoch's mini-batches) is below
//!
//! ```text
//! threshold = chance + margin · (1 − chance)
//! ```
//!
//! where `chance` is the accuracy of always answering the most frequent class of the training
//! split (per loss term: series for many-to-one, steps for many-to-many) and `margin` is
//! [`CollapseCheck::margin`] — a fraction of the way from chance to perfect.
//!
//! A restart draws new initial weights, shuffles and augmentations from the seed
//! [`restart_seed`]`(seed, k)` for the `k`-th restart (the validation split stays the user's);
//! after [`CollapseCheck::max_restarts`] restarts the last run is trained to the end
//! unchecked, so training always ends with a model.

use rand::RngCore;

use super::{rng, Sample, Target};

/// RNG stream of the restart seeds.
pub const STREAM_RESTART: u64 = 5;

/// When a run counts as collapsed and how often to restart it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CollapseCheck {
    /// Epoch after which the check is made (1-based; a run shorter than this is never
    /// checked).
    pub after_epochs: usize,
    /// Fraction of the way from chance to 100 % accuracy that the best training accuracy must
    /// reach by then.
    pub margin: f64,
    /// Restarts at most; the run after the last one is not checked.
    pub max_restarts: usize,
}

impl CollapseCheck {
    /// The check of `tinyrnn train`: after 20 epochs, a quarter of the way from chance to
    /// perfect, at most 3 restarts.
    pub const DEFAULT: CollapseCheck = CollapseCheck {
        after_epochs: 20,
        margin: 0.25,
        max_restarts: 3,
    };

    /// The accuracy a run must have reached, given the chance accuracy.
    pub fn threshold(&self, chance: f64) -> f64 {
        chance + self.margin * (1.0 - chance)
    }
}

/// Accuracy of always predicting the most frequent class of `samples` (over loss terms), for
/// `classes` classes; 0 when there is nothing to count.
pub fn chance_accuracy(samples: &[Sample<'_>], classes: usize) -> f64 {
    let mut counts = vec![0usize; classes];
    let mut total = 0usize;
    let mut count = |y: usize| {
        if let Some(c) = counts.get_mut(y) {
            *c += 1;
        }
        total += 1;
    };
    for s in samples {
        match s.target {
            Target::Last(y) => count(y),
            Target::PerStep(ys) => ys.iter().take(s.steps).for_each(|&y| count(y)),
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    if total == 0 {
        0.0
    } else {
        max as f64 / total as f64
    }
}

/// The seed of the `k`-th restart (`k ≥ 1`) of a run started with `seed`: the `k`-th number of
/// a ChaCha stream of `seed`, so every restart seed is fixed by the user's seed alone.
pub fn restart_seed(seed: u64, k: usize) -> u64 {
    let mut r = rng(seed, STREAM_RESTART);
    let mut s = seed;
    for _ in 0..k {
        s = r.next_u64();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::{train, TrainConfig, TrainEvent};
    use super::*;
    use crate::model_file::CellKind;

    /// Eight one-channel series of 5 steps, labels alternating 0, 1; `signal` says whether
    /// the values tell the classes apart (±1) or are all 0 (no model beats 50 %).
    fn data(signal: bool) -> (Vec<Vec<f32>>, Vec<usize>) {
        let labels: Vec<usize> = (0..8).map(|i| i % 2).collect();
        let xs = labels
            .iter()
            .map(|&y| {
                let v = if signal { 2.0 * y as f32 - 1.0 } else { 0.0 };
                vec![v; 5]
            })
            .collect();
        (xs, labels)
    }

    fn small_config(check: Option<CollapseCheck>) -> TrainConfig {
        TrainConfig {
            hidden: 4,
            epochs: 3,
            batch: 4,
            lr: 0.05,
            seed: 9,
            collapse: check,
            extend_until_fit: false,
            ..TrainConfig::new(CellKind::Gru)
        }
    }

    /// What `train` reported: `E<epoch>` per epoch, `R` per restart.
    fn run(signal: bool, cfg: &TrainConfig) -> (super::super::TrainOutcome, Vec<String>) {
        let (xs, labels) = data(signal);
        let set: Vec<Sample<'_>> = xs
            .iter()
            .zip(&labels)
            .map(|(x, &y)| Sample {
                xs: x,
                steps: 5,
                target: Target::Last(y),
            })
            .collect();
        let mut events = Vec::new();
        let out = train(cfg, 1, 2, &set, &[], &mut |e| {
            events.push(match e {
                TrainEvent::Epoch(r) => format!("E{}", r.epoch),
                TrainEvent::Restart(_) => "R".to_string(),
            })
        })
        .unwrap();
        (out, events)
    }

    const CHECK: CollapseCheck = CollapseCheck {
        after_epochs: 2,
        margin: 0.25,
        max_restarts: 2,
    };

    #[test]
    fn a_run_at_chance_restarts_up_to_the_bound_and_keeps_the_last() {
        let cfg = small_config(Some(CHECK));
        let (out, events) = run(false, &cfg);
        assert_eq!(
            events,
            ["E1", "E2", "R", "E1", "E2", "R", "E1", "E2", "E3"],
            "checked at epoch 2, twice; the last run goes unchecked to the end"
        );
        assert_eq!(out.restarts.len(), 2);
        assert_eq!(out.restarts[0].seed, 9);
        assert_eq!(out.restarts[0].next_seed, restart_seed(9, 1));
        assert_eq!(out.restarts[1].seed, restart_seed(9, 1));
        assert_eq!(out.seed, restart_seed(9, 2));
        for r in &out.restarts {
            assert_eq!((r.epoch, r.train_accuracy, r.threshold), (2, 0.5, 0.625));
        }
        assert_eq!(out.history.len(), 3);
        // Deterministic, restarts included.
        let (again, _) = run(false, &cfg);
        assert_eq!((again.net, again.restarts), (out.net, out.restarts));
    }

    /// A run not fit after `epochs` goes on up to twice as long; one that is fit stops.
    #[test]
    fn an_unfit_run_is_extended_up_to_twice_its_epochs() {
        let cfg = TrainConfig {
            extend_until_fit: true,
            ..small_config(None)
        };
        let (out, _) = run(false, &cfg);
        assert_eq!(out.history.len(), 6, "never fit: 3 + 3 epochs");
        // Learnable at a high rate: the first epoch from the third on whose training loss is
        // below FIT_LOSS ends the run.
        let cfg = TrainConfig { lr: 0.2, ..cfg };
        let (out, _) = run(true, &cfg);
        let fit = out
            .history
            .iter()
            .skip(2)
            .position(|r| r.fit_loss.is_some_and(|l| l < super::super::FIT_LOSS))
            .map(|i| i + 3);
        assert_eq!(
            Some(out.history.len()),
            fit,
            "stops once fit: {:?}",
            out.history
        );
        assert!(out.history.len() < 6, "{:?}", out.history);
    }

    #[test]
    fn a_learning_run_or_an_unchecked_one_is_not_restarted() {
        let (out, events) = run(true, &small_config(Some(CHECK)));
        assert!(out.history[1].train_accuracy >= 0.625, "{:?}", out.history);
        assert_eq!(events, ["E1", "E2", "E3"]);
        assert!(out.restarts.is_empty());
        assert_eq!(out.seed, 9);
        let (out, events) = run(false, &small_config(None));
        assert_eq!(events, ["E1", "E2", "E3"]);
        assert!(out.restarts.is_empty());
    }

    #[test]
    fn chance_is_the_majority_fraction_per_loss_term() {
        let xs = [0.0f32; 4];
        let last = |y| Sample {
            xs: &xs,
            steps: 4,
            target: Target::Last(y),
        };
        assert_eq!(chance_accuracy(&[last(0), last(1), last(1)], 3), 2.0 / 3.0);
        let ys = [2, 2, 2, 0];
        let per_step = Sample {
            xs: &xs,
            steps: 4,
            target: Target::PerStep(&ys),
        };
        assert_eq!(chance_accuracy(&[per_step, last(0)], 3), 3.0 / 5.0);
        assert_eq!(chance_accuracy(&[], 2), 0.0);
    }

    #[test]
    fn threshold_is_a_fraction_of_the_way_to_perfect() {
        let c = CollapseCheck {
            after_epochs: 10,
            margin: 0.25,
            max_restarts: 2,
        };
        assert_eq!(c.threshold(0.5), 0.625);
        assert_eq!(c.threshold(0.25), 0.4375);
        assert_eq!(c.threshold(1.0), 1.0);
    }

    #[test]
    fn restart_seeds_are_fixed_by_the_seed_and_distinct() {
        let seeds: Vec<u64> = (1..=4).map(|k| restart_seed(7, k)).collect();
        assert_eq!(
            seeds,
            (1..=4).map(|k| restart_seed(7, k)).collect::<Vec<_>>()
        );
        let mut sorted = seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
        assert!(!seeds.contains(&7));
        assert_ne!(restart_seed(8, 1), restart_seed(7, 1));
        assert_eq!(restart_seed(7, 0), 7);
    }
}
