//! The keeper of a run's folder: when a checkpoint is written (the policy), and in what
//! order the folder's files are written at an epoch's end (the mechanism), so that a
//! crash anywhere leaves a folder whose files agree; and the best epoch and early
//! stopping, which decide what is kept and when the run ends.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::learner::Learner;
use super::watch::{Watch, Watchers};
use super::TrainOptions;
use crate::progress;
use crate::run_dir::checkpoint::{self, Position, State};
use crate::run_dir::{self, EpochMetrics, RunDir};

/// A run's open folder, and when its last checkpoint was written.
pub(crate) struct Keeper {
    dir: RunDir,
    /// How often a checkpoint is written within an epoch (`--checkpoint-every`); one is
    /// written at every epoch's end anyway, and on Ctrl-C.
    every: Duration,
    last: Instant,
    /// `--early-stop`'s patience.
    early_stop: Option<u32>,
}

impl Keeper {
    pub(crate) fn new(dir: RunDir, opts: &TrainOptions) -> Keeper {
        Keeper {
            dir,
            every: Duration::from_secs_f64(opts.checkpoint_minutes * 60.0),
            last: Instant::now(),
            early_stop: opts.recipe.early_stop,
        }
    }

    pub(crate) fn dir(&self) -> &RunDir {
        &self.dir
    }

    pub(crate) fn into_dir(self) -> RunDir {
        self.dir
    }

    /// Whether a checkpoint is due after the step just taken: `--checkpoint-every`'s
    /// minutes have passed since the last one (Ctrl-C asks for one too).
    pub(crate) fn due(&self) -> bool {
        self.last.elapsed() >= self.every
    }

    /// Writes the checkpoint of `learner` at `state`, once the watchers have put on the
    /// disk what they wrote of the steps it covers.
    pub(crate) fn save(
        &mut self,
        learner: &Learner,
        state: &State,
        watch: &mut Watchers,
    ) -> Result<()> {
        watch.before_checkpoint()?;
        let average = learner.ema.as_ref().map(|ema| &ema.vs);
        checkpoint::save(&self.dir.path, (&learner.vs, average), &learner.adam, state)?;
        self.last = Instant::now();
        Ok(())
    }

    /// Records the finished epoch `m` in `state` and the folder. The files of the
    /// finished epoch first, the checkpoint that records it as done last: a crash in
    /// between leaves the previous checkpoint, and a resume repeats the epoch and
    /// rewrites metrics.csv from the checkpoint. Its row comes before model.safetensors,
    /// best.safetensors and config.json name it, so a reader (`compare` beside a
    /// training) never meets weights that metrics.csv has no row for yet.
    pub(crate) fn finish_epoch(
        &mut self,
        learner: &Learner,
        state: &mut State,
        m: &EpochMetrics,
        watch: &mut Watchers,
    ) -> Result<()> {
        state.history.push(m.clone());
        state.position = Position::start_of(m.epoch + 1);
        let ((_, vs), held) = (learner.kept(), learner.held());
        self.dir.append_metrics(m)?;
        self.dir.save_weights(run_dir::WEIGHTS, vs, m.epoch, held)?;
        if best_epoch(&state.history) == Some(m.epoch) {
            self.dir
                .save_weights(run_dir::BEST_WEIGHTS, vs, m.epoch, held)?;
            self.dir.update_config(|c| c.best_epoch = Some(m.epoch))?;
        }
        self.save(learner, state, watch)
    }

    /// Whether `--early-stop N` ends the run at `state`: validation accuracy has not
    /// improved for N epochs (counted from the epoch the run was last told to go on from,
    /// after an early stop). Says why, and records it in `config.json`.
    pub(crate) fn stops_early(&mut self, state: &State) -> Result<bool> {
        let Some(patience) = self.early_stop else {
            return Ok(false);
        };
        let Some(best) = early_stop_due(state, patience) else {
            return Ok(false);
        };
        let last = state.history.len() as u32;
        let accuracy = (state.history.iter())
            .find(|m| m.epoch == best)
            .and_then(|m| m.validation_accuracy)
            .unwrap_or(0.0);
        crate::out!(
            "stopping early after epoch {last}: validation accuracy has not improved for {} \
             (--early-stop {patience}); the best was {accuracy:.4} at epoch {best}, kept in \
             best.safetensors",
            progress::count(patience, "epoch")
        )?;
        self.dir.update_config(|c| c.stopped_early = Some(last))?;
        Ok(true)
    }
}

/// The best epoch, when a run at `state` has gone `patience` epochs without bettering
/// it, counted from the best epoch or from where the run was last told to go on
/// (`patience_from`), whichever is later; `None` while it may still improve.
fn early_stop_due(state: &State, patience: u32) -> Option<u32> {
    let best = best_epoch(&state.history)?;
    let last = state.history.len() as u32;
    (last.saturating_sub(best.max(state.patience_from)) >= patience).then_some(best)
}

/// The epoch with the best validation accuracy in `history` (the first, on a tie).
pub(crate) fn best_epoch(history: &[EpochMetrics]) -> Option<u32> {
    let mut best: Option<(u32, f64)> = None;
    for m in history {
        if let Some(v) = m.validation_accuracy {
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((m.epoch, v));
            }
        }
    }
    best.map(|(epoch, _)| epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(validation: &[f64]) -> Vec<EpochMetrics> {
        validation
            .iter()
            .enumerate()
            .map(|(i, &v)| EpochMetrics {
                epoch: i as u32 + 1,
                train_loss: 0.5,
                train_accuracy: 0.8,
                test_loss: 0.5,
                test_accuracy: 0.8,
                seconds: 1.0,
                validation_accuracy: Some(v),
            })
            .collect()
    }

    #[test]
    fn the_best_epoch_is_the_first_of_a_tie_and_none_without_validation() {
        assert_eq!(best_epoch(&history(&[0.5, 0.7, 0.7, 0.6])), Some(2));
        assert_eq!(best_epoch(&history(&[0.9, 0.7])), Some(1));
        assert_eq!(best_epoch(&[]), None);
        let mut plain = history(&[0.5]);
        plain[0].validation_accuracy = None;
        assert_eq!(best_epoch(&plain), None);
    }

    #[test]
    fn early_stopping_waits_patience_epochs_after_the_best_or_after_going_on() {
        let at = |validation: &[f64], patience_from: u32| State {
            patience_from,
            ..State::fresh(history(validation), 600)
        };
        // best at epoch 2: two epochs without improvement stop a patience of 2
        assert_eq!(early_stop_due(&at(&[0.5, 0.7, 0.6], 0), 2), None);
        assert_eq!(early_stop_due(&at(&[0.5, 0.7, 0.6, 0.6], 0), 2), Some(2));
        // a tie is no improvement
        assert_eq!(early_stop_due(&at(&[0.5, 0.7, 0.7, 0.7], 0), 2), Some(2));
        // told to go on after epoch 4: patience counts from there
        assert_eq!(early_stop_due(&at(&[0.5, 0.7, 0.6, 0.6, 0.6], 4), 2), None);
        assert_eq!(
            early_stop_due(&at(&[0.5, 0.7, 0.6, 0.6, 0.6, 0.6], 4), 2),
            Some(2)
        );
        assert_eq!(early_stop_due(&State::fresh(vec![], 600), 1), None);
    }
}
