//! TensorBoard's event files of a run, as it trains: the settings once, the learning rate
//! every step, the training loss and accuracy every 25 steps and at each epoch's end,
//! and each epoch's figures. A resumed run checks that the earlier files hold what its
//! checkpoint covers, and writes again what it can.

use std::collections::HashSet;

use anyhow::Result;

use super::watch::{Seen, Watch};
use super::TrainOptions;
use crate::progress;
use crate::run_dir::checkpoint::State;
use crate::run_dir::{EpochMetrics, RunDir};
use crate::tensorboard::{self, EventWriter, Scalar};

/// Steps between the training loss and accuracy written for TensorBoard (and one at each
/// epoch's end): about 75 points per epoch of the lesson, enough to show its shape.
const LOG_EVERY: usize = 25;

/// The tags of an epoch's figures, with their values in `m`.
fn figures(m: &EpochMetrics) -> [(&'static str, Option<f64>); 6] {
    [
        ("epoch/train_loss", Some(m.train_loss)),
        ("epoch/train_accuracy", Some(m.train_accuracy)),
        ("epoch/test_loss", Some(m.test_loss)),
        ("epoch/test_accuracy", Some(m.test_accuracy)),
        ("epoch/validation_accuracy", m.validation_accuracy),
        ("epoch/seconds", Some(m.seconds)),
    ]
}

/// This session's event file.
pub(crate) struct Events {
    writer: EventWriter,
    per_epoch: usize,
}

impl Events {
    /// Starts this session's event file in `dir`, for a run of `per_epoch` steps an
    /// epoch at `state`: with the settings for a new run; for a resumed one, a session
    /// start after the step it goes on from, and the finished epochs' figures that
    /// earlier sessions' files lack ([`Events::fill_gaps`]).
    pub(crate) fn open(
        opts: &TrainOptions,
        dir: &RunDir,
        state: &State,
        per_epoch: usize,
    ) -> Result<Events> {
        let p = &state.position;
        let done = (per_epoch * (p.epoch as usize - 1) + p.step) as i64;
        let resumed_at = opts.resume.map(|_| done);
        let earlier = resumed_at.map(|_| tensorboard::read(&dir.path));
        let mut writer = EventWriter::create(&dir.path, resumed_at)?;
        if resumed_at.is_none() {
            let settings = serde_json::to_string_pretty(dir.config())?;
            writer.text(0, "settings", &format!("```json\n{settings}\n```"))?;
        }
        writer.flush()?;
        let mut events = Events { writer, per_epoch };
        if let Some(earlier) = earlier {
            events.fill_gaps(dir, earlier, state, done)?;
        }
        Ok(events)
    }

    /// On resume: checks that the earlier sessions' event files hold every point of the
    /// `done` steps the checkpoint covers. A finished epoch's figures they lack (a crash
    /// after the checkpoint that records the epoch, before them) are written again from
    /// its row; a training step's points, which only that step knew, are named as lost.
    fn fill_gaps(
        &mut self,
        dir: &RunDir,
        earlier: Result<Vec<Scalar>>,
        state: &State,
        done: i64,
    ) -> Result<()> {
        let earlier = earlier.unwrap_or_else(|e| {
            let _ = crate::out!("TensorBoard: {}", progress::error_text(&e));
            Vec::new()
        });
        for odd in tensorboard::not_regular(&dir.path)? {
            crate::out!(
                "TensorBoard: {} is not a regular file, so it was not read",
                odd.display()
            )?;
        }
        let have: HashSet<(i64, &str)> =
            (earlier.iter()).map(|s| (s.step, s.tag.as_str())).collect();
        let per_epoch = self.per_epoch as i64;
        let lost = (1..=done)
            .flat_map(|step| {
                let logged = step % LOG_EVERY as i64 == 0 || step % per_epoch == 0;
                let tags = ["train/learning_rate", "train/loss", "train/accuracy"];
                tags.into_iter()
                    .take(if logged { 3 } else { 1 })
                    .map(move |tag| (step, tag))
            })
            .filter(|point| !have.contains(point))
            .count();
        if lost > 0 && !earlier.is_empty() {
            crate::out!(
                "TensorBoard: the run's event files lack {} of the {done} steps its checkpoint \
                 covers (a file cut short or damaged); they stay missing from its charts",
                progress::count(lost as u64, "training point")
            )?;
        }
        for m in &state.history {
            let at = per_epoch * i64::from(m.epoch);
            self.log_epoch(m, |tag| !have.contains(&(at, tag)))?;
        }
        Ok(())
    }

    /// Writes the figures of the finished epoch `m`, at its last step: those whose tag
    /// `wanted` takes.
    fn log_epoch(&mut self, m: &EpochMetrics, wanted: impl Fn(&str) -> bool) -> Result<()> {
        let at = (self.per_epoch * m.epoch as usize) as i64;
        for (tag, value) in figures(m) {
            if let Some(v) = value.filter(|_| wanted(tag)) {
                self.writer.scalar(at, tag, v)?;
            }
        }
        self.writer.flush()
    }
}

impl Watch for Events {
    fn step(&mut self, seen: &Seen) -> Result<()> {
        let (step, done) = (seen.at.step, seen.at.run_step as i64 + 1);
        self.writer
            .scalar(done, "train/learning_rate", seen.at.settings.learning_rate)?;
        if (step + 1).is_multiple_of(LOG_EVERY) || step + 1 == self.per_epoch {
            // the epoch so far, as the progress bar shows it
            let (loss, accuracy) = seen.sums.means();
            self.writer.scalar(done, "train/loss", loss)?;
            self.writer.scalar(done, "train/accuracy", accuracy)?;
            self.writer.flush()?;
        }
        Ok(())
    }

    /// After the checkpoint that records the epoch as done: a crash before it repeats the
    /// epoch, which writes them then; one after it leaves them to the resume.
    fn epoch(&mut self, m: &EpochMetrics, _history: &[EpochMetrics]) -> Result<()> {
        self.log_epoch(m, |_| true)
    }

    /// The points up to the checkpoint on the disk, as it will be, so that a resume from
    /// it leaves no gap.
    fn before_checkpoint(&mut self) -> Result<()> {
        self.writer.sync()
    }
}
