//! How the learning rate (and Adam's β₁) moves over a run: the same at every step, or
//! PyTorch's one-cycle schedule.

use super::{Recipe, Schedule};

/// What a recipe sets at one step: the learning rate and Adam's β₁.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepSettings {
    pub learning_rate: f64,
    pub beta1: f64,
}

/// Adam's β₁ outside a one-cycle schedule (PyTorch's default).
pub(crate) const BETA1: f64 = 0.9;

impl Recipe {
    /// The learning rate and β₁ for step `step` (0-based) of a run of `total` steps.
    pub(crate) fn at_step(&self, step: usize, total: usize) -> StepSettings {
        match self.schedule {
            Schedule::Constant => StepSettings {
                learning_rate: self.learning_rate,
                beta1: BETA1,
            },
            Schedule::OneCycle => {
                let cycle = OneCycle {
                    peak: self.learning_rate,
                    total,
                };
                StepSettings {
                    learning_rate: cycle.learning_rate(step),
                    beta1: cycle.beta1(step),
                }
            }
        }
    }
}

/// PyTorch's `OneCycleLR` with its defaults (cosine annealing): over the first 30% of
/// the steps the learning rate rises from `peak / 25` to `peak` while Adam's β₁ falls
/// from 0.95 to 0.85; over the rest the rate falls to `peak / 250,000` and β₁ climbs back.
#[derive(Clone, Copy, Debug)]
pub struct OneCycle {
    pub peak: f64,
    /// Optimisation steps in the whole run.
    pub total: usize,
}

impl OneCycle {
    const WARM_UP: f64 = 0.3;
    const START_DIV: f64 = 25.0;
    const END_DIV: f64 = 25.0 * 1e4;
    const BETA1: (f64, f64) = (0.95, 0.85);

    /// The learning rate at step `step` (0-based); the last step gets the end value.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let (start, end) = (self.peak / Self::START_DIV, self.peak / Self::END_DIV);
        match self.phase(step) {
            (true, pct) => cosine(start, self.peak, pct),
            (false, pct) => cosine(self.peak, end, pct),
        }
    }

    /// Adam's β₁ at step `step`: low while the rate is high.
    pub fn beta1(&self, step: usize) -> f64 {
        let (high, low) = Self::BETA1;
        match self.phase(step) {
            (true, pct) => cosine(high, low, pct),
            (false, pct) => cosine(low, high, pct),
        }
    }

    /// Whether `step` is in the warm-up, and how far through its phase it is (0 to 1).
    fn phase(&self, step: usize) -> (bool, f64) {
        let last = self.total.saturating_sub(1).max(1) as f64;
        let turn = (Self::WARM_UP * self.total as f64 - 1.0).max(1.0);
        let step = (step as f64).min(last);
        if step <= turn {
            (true, step / turn)
        } else {
            (false, (step - turn) / (last - turn).max(1.0))
        }
    }
}

/// From `from` at `pct` 0 to `to` at `pct` 1 along half a cosine.
fn cosine(from: f64, to: f64, pct: f64) -> f64 {
    to + (from - to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cycle_rises_to_its_peak_and_ends_at_its_end_value() {
        let cycle = OneCycle {
            peak: 5e-3,
            total: 4300,
        };
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
        assert!(close(cycle.learning_rate(0), 5e-3 / 25.0));
        assert!(close(cycle.learning_rate(1289), 5e-3), "the peak at 30%");
        assert!(
            close(cycle.learning_rate(4299), 5e-3 / 25.0 / 1e4),
            "the last step"
        );
        assert!(close(cycle.beta1(0), 0.95) && close(cycle.beta1(1289), 0.85));
        assert!(close(cycle.beta1(4299), 0.95));
        let rates: Vec<f64> = (0..4300).map(|s| cycle.learning_rate(s)).collect();
        assert!(rates[..1290].windows(2).all(|w| w[0] < w[1]), "rises");
        assert!(rates[1289..].windows(2).all(|w| w[0] > w[1]), "then falls");
    }
}
