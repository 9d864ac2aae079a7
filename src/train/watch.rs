//! What watches a run train, behind one small trait: told of each step and each epoch,
//! none of them changes what is trained. Every run has the check that the loss stays
//! finite, the console (the progress bar and a line per epoch) and `curves.svg`; most
//! have TensorBoard's event files too (`events.rs`).

use std::time::Instant;

use anyhow::{bail, Result};
use indicatif::ProgressBar;
use tch::Tensor;

use super::splits::Splits;
use super::{At, TrainOptions};
use crate::progress;
use crate::recipe::Precision;
use crate::run_dir::checkpoint::{Position, State};
use crate::run_dir::{self, EpochMetrics, RunDir};
use crate::score::Sums;

/// A step, as its watchers see it: where it is, the epoch's running sums so far, the
/// step's logits, and whether a checkpoint follows it.
pub(crate) struct Seen<'a> {
    pub at: At,
    pub sums: &'a Sums,
    pub logits: &'a Tensor,
    pub saving: bool,
}

impl<'a> Seen<'a> {
    pub(crate) fn new(at: At, sums: &'a Sums, logits: &'a Tensor, saving: bool) -> Seen<'a> {
        Seen {
            at,
            sums,
            logits,
            saving,
        }
    }
}

/// Something that watches a run; every call does nothing unless it says otherwise.
pub(crate) trait Watch {
    /// An epoch starts, or goes on, at `from`.
    fn epoch_started(&mut self, _from: &Position) {}
    /// A step was taken. An error stops the run.
    fn step(&mut self, _seen: &Seen) -> Result<()> {
        Ok(())
    }
    /// The epoch's last step was taken; `done` is where it ended, before the scoring.
    fn epoch_ended(&mut self, _done: &Position) -> Result<()> {
        Ok(())
    }
    /// A checkpoint is about to be written: what it covers must be on the disk.
    fn before_checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
    /// The epoch `m` is scored and recorded; `history` holds every finished epoch.
    fn epoch(&mut self, _m: &EpochMetrics, _history: &[EpochMetrics]) -> Result<()> {
        Ok(())
    }
    /// Ctrl-C stopped the run, at a checkpoint.
    fn stopped(&mut self) {}
}

/// Every watcher of a run, told in turn.
#[derive(Default)]
pub(crate) struct Watchers(pub Vec<Box<dyn Watch>>);

/// The watchers every run starts with: the check that the loss stays finite, and the
/// console, which announces the run of `opts` in `dir` at `state`, on `data`.
pub(crate) fn every_run(
    opts: &TrainOptions,
    dir: &RunDir,
    state: &State,
    data: &Splits,
) -> Result<Watchers> {
    Ok(Watchers(vec![
        Box::new(Finite {
            learning_rate: opts.recipe.learning_rate,
            per_epoch: data.steps_per_epoch(opts.recipe.batch_size),
        }),
        Box::new(Console::new(opts, dir, state, data)?),
    ]))
}

/// The watcher that redraws `curves.svg` in `dir` after each epoch: the last one, once
/// every figure of the epoch is written.
pub(crate) fn curves(dir: &RunDir) -> Box<dyn Watch> {
    Box::new(Curves {
        run: dir.path.clone(),
    })
}

impl Watch for Watchers {
    fn epoch_started(&mut self, from: &Position) {
        self.0.iter_mut().for_each(|w| w.epoch_started(from));
    }
    fn step(&mut self, seen: &Seen) -> Result<()> {
        self.0.iter_mut().try_for_each(|w| w.step(seen))
    }
    fn epoch_ended(&mut self, done: &Position) -> Result<()> {
        self.0.iter_mut().try_for_each(|w| w.epoch_ended(done))
    }
    fn before_checkpoint(&mut self) -> Result<()> {
        self.0.iter_mut().try_for_each(|w| w.before_checkpoint())
    }
    fn epoch(&mut self, m: &EpochMetrics, history: &[EpochMetrics]) -> Result<()> {
        self.0.iter_mut().try_for_each(|w| w.epoch(m, history))
    }
    fn stopped(&mut self) {
        self.0.iter_mut().for_each(|w| w.stopped());
    }
}

/// Steps between checks that the loss is still finite (a host sync each); one is made
/// before every checkpoint too, so none holds weights that have diverged.
const CHECK_EVERY: usize = 100;

/// The check that the loss stays finite: a loss of NaN or infinity ends the run with
/// what to do.
struct Finite {
    /// The recipe's learning rate, which the message names.
    learning_rate: f64,
    per_epoch: usize,
}

impl Finite {
    fn check(&self, mean_loss: f64, epoch: u32, step: usize) -> Result<()> {
        if !mean_loss.is_finite() {
            bail!(
                "the loss became {mean_loss} by batch {} of epoch {epoch} (learning rate {}); \
                 training diverged. Try a lower --lr (the lesson's is 0.001). The run folder \
                 keeps its last checkpoint, from before the loss diverged.",
                step + 1,
                progress::number(self.learning_rate),
            );
        }
        Ok(())
    }
}

impl Watch for Finite {
    fn step(&mut self, seen: &Seen) -> Result<()> {
        match seen.saving || seen.at.step.is_multiple_of(CHECK_EVERY) {
            true => self.check(seen.sums.means().0, seen.at.epoch, seen.at.step),
            false => Ok(()),
        }
    }

    fn epoch_ended(&mut self, done: &Position) -> Result<()> {
        let mean_loss = done.loss_sum / done.seen.max(1) as f64;
        self.check(mean_loss, done.epoch, self.per_epoch - 1)
    }
}

/// The console: the run announced, a progress bar over each epoch's batches on a
/// terminal, and a line per epoch.
struct Console {
    /// `epoch  7/10`'s total.
    epochs: u32,
    bar: ProgressBar,
    /// Whether bars are drawn: stdout is a terminal, and no `--quiet`.
    interactive: bool,
    per_epoch: usize,
    /// This session's start of the epoch in progress, and the images seen by then.
    started: (Instant, i64),
    /// `--precision bf16`: what the first step's output came out as is told.
    precision: Precision,
}

/// Steps between the progress bar's figures (a host sync each).
const SHOW_EVERY: usize = 25;

impl Console {
    /// The console of a run, which announces it: what it trains, where, and on what.
    fn new(opts: &TrainOptions, dir: &RunDir, state: &State, data: &Splits) -> Result<Console> {
        let (epochs, p) = (opts.recipe.epochs, &state.position);
        let done = p.epoch - 1;
        let span = match (done, p.step) {
            (0, 0) => format!("for {}", progress::count(epochs, "epoch")),
            (_, 0) => format!("from epoch {} to {epochs}", done + 1),
            (_, step) => format!(
                "from step {} of epoch {} to epoch {epochs}",
                step + 1,
                done + 1
            ),
        };
        crate::out!(
            "training {} ({} parameters, {} recipe) on {} {span}, {} training{} and {} test \
             images from {}",
            opts.recipe.model.name(),
            dir.config().trainable_parameters,
            opts.recipe.name,
            dir.config().device,
            data.train.len(),
            match &data.validation {
                Some(v) => format!(" ({} more held out for validation)", v.len()),
                None => String::new(),
            },
            data.test.len(),
            data.dir.display()
        )?;
        Ok(Console {
            epochs,
            bar: ProgressBar::hidden(),
            interactive: progress::interactive(opts.quiet),
            per_epoch: data.steps_per_epoch(opts.recipe.batch_size),
            started: (Instant::now(), 0),
            precision: opts.recipe.precision,
        })
    }

    fn prefix(&self, epoch: u32) -> String {
        format!("epoch {epoch:>2}/{}", self.epochs)
    }
}

impl Watch for Console {
    fn epoch_started(&mut self, from: &Position) {
        let prefix = self.prefix(from.epoch);
        self.bar = progress::epoch_bar(self.per_epoch as u64, prefix, self.interactive);
        self.bar.set_position(from.step as u64);
        self.started = (Instant::now(), from.seen);
    }

    fn step(&mut self, seen: &Seen) -> Result<()> {
        let step = seen.at.step;
        if !self.bar.is_hidden() && (step.is_multiple_of(SHOW_EVERY) || seen.saving) {
            let (loss, accuracy) = seen.sums.means();
            let images = (seen.sums.seen - self.started.1) as f64;
            let rate = images / self.started.0.elapsed().as_secs_f64().max(1e-9);
            self.bar.set_position(step as u64 + 1);
            self.bar.set_message(format!(
                "{rate:>6.0} img/s  loss {loss:.4}  acc {accuracy:.4}"
            ));
        }
        if seen.at.run_step == 0 && self.precision != Precision::F32 {
            // what autocast really ran, rather than what was asked
            crate::out!(
                "--precision {}: the network's output came out as {:?}",
                self.precision,
                seen.logits.kind()
            )?;
        }
        Ok(())
    }

    fn epoch_ended(&mut self, _done: &Position) -> Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }

    fn epoch(&mut self, m: &EpochMetrics, _history: &[EpochMetrics]) -> Result<()> {
        crate::out!(
            "{}  train loss {:.4} acc {:.4}  {}test loss {:.4} acc {:.4}  {:.1} s",
            self.prefix(m.epoch),
            m.train_loss,
            m.train_accuracy,
            (m.validation_accuracy).map_or(String::new(), |a| format!("validation acc {a:.4}  ")),
            m.test_loss,
            m.test_accuracy,
            m.seconds,
        )?;
        Ok(())
    }

    fn stopped(&mut self) {
        self.bar.abandon();
    }
}

/// `curves.svg`, redrawn from the finished epochs after each.
struct Curves {
    run: std::path::PathBuf,
}

impl Watch for Curves {
    fn epoch(&mut self, _m: &EpochMetrics, history: &[EpochMetrics]) -> Result<()> {
        run_dir::draw_curves(&self.run, history)
    }
}
