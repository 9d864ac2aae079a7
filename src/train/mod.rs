//! Training: the lesson's `model.fit`, written once for every network and recipe. The
//! epoch loop is [`train`]; the step it takes on each batch is [`step::train_step`]. What
//! surrounds them has a file each:
//! - `learner`: the network and Adam, and the step's wrappers (augmentation, bf16, the
//!   CUDA graph, the weight average);
//! - `splits`: the training, validation and test images;
//! - `seeds`: every random draw seeded by the run's seed and its position;
//! - `keeper`: the checkpoint policy, and the order in which the run folder is written;
//! - `restore`: a run folder new or resumed, and the run's state back from it;
//! - `watch` and `events`: what watches a run (the console, the curves, TensorBoard).
//!
//! A run can stop anywhere and go on to the very numbers it would have reached: a
//! checkpoint holds the weights, Adam's state and the position in the run, and every
//! random draw is seeded from the run's seed and that position.

mod events;
mod keeper;
mod learner;
mod restore;
mod seeds;
mod splits;
pub mod step;
mod watch;

use std::path::PathBuf;

use anyhow::{anyhow, ensure, Result};
use tch::Device;

use crate::device;
use crate::models;
use crate::recipe::{self, Recipe, StepSettings};
use crate::run_dir::checkpoint::{Position, State};
use crate::run_dir::EpochMetrics;
use crate::score::Sums;
use crate::stop;

use keeper::Keeper;
use learner::Learner;
use splits::Splits;
use watch::{Seen, Watch, Watchers};

/// Trains `opts.recipe.model` on Fashion-MNIST and keeps the run in its folder: an epoch
/// at a time, a batch at a time, each batch one [`step::train_step`]; after each epoch,
/// the test images (and the validation images, where some are held out) are scored and
/// the folder written. Ctrl-C stops it at a checkpoint, with [`Interrupted`].
pub fn train(opts: &TrainOptions) -> Result<TrainReport> {
    let mut run = Run::open(opts)?;
    let per_epoch = run.data.steps_per_epoch(opts.recipe.batch_size);
    while run.state.position.epoch <= opts.recipe.epochs {
        if run.keeper.stops_early(&run.state)? {
            break;
        }
        let epoch = run.state.position.epoch;
        let order = seeds::epoch_order(run.data.train.len(), opts.seed, epoch, opts.device);
        let (mut sums, clock) = run.resume_epoch();
        for (step, index) in (order.split(opts.recipe.batch_size as i64, 0).iter())
            .enumerate()
            .skip(run.state.position.step)
        {
            let at = At::new(opts, epoch, step, per_epoch);
            seeds::seed_step(opts.seed, epoch, step as u64);
            let batch = run.data.batch(index, epoch);
            let (loss, logits) = run.learner.step(&batch, at.settings)?;
            sums.add(&loss, &logits, &batch.labels);
            let stopping = stop::requested();
            let saving = stopping || run.keeper.due();
            run.watch.step(&Seen::new(at, &sums, &logits, saving))?;
            if saving {
                run.state.position = position(epoch, step + 1, &sums, &clock);
                run.keeper.save(&run.learner, &run.state, &mut run.watch)?;
                if stopping {
                    return Err(run.interrupted().into());
                }
            }
        }
        let done = position(epoch, per_epoch, &sums, &clock);
        run.finish_epoch(done)?;
        // Ctrl-C after the last step: the run is complete, and ends as one
        if stop::requested() && run.state.position.epoch <= opts.recipe.epochs {
            return Err(run.interrupted().into());
        }
    }
    run.report()
}

/// Everything a training run needs: the plan of the run, which the binaries resolve from
/// their flags (`crate::flags::resolve`).
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The model and every training setting; `recipe.epochs` is the epoch to stop after,
    /// counting those a resumed run already has, and `recipe.validation_images` the
    /// training images to hold out. Its arithmetic is what the device does:
    /// `flags::options` turns a bf16 recipe into float32 on a CPU without bfloat16
    /// arithmetic, which libtorch would emulate slower; `train` trains what it is given.
    pub recipe: Recipe,
    pub seed: u64,
    pub device: Device,
    /// CPU threads for libtorch; `None`: [`TrainOptions::threads`] decides.
    pub threads: Option<usize>,
    /// The data, and how a folder of images is made into the network's input.
    pub data: crate::data::Choice,
    /// `None`: `runs/<model>-<timestamp>`. With `resume`, the run to continue.
    pub out: Option<PathBuf>,
    /// Continue the run in `out`.
    pub resume: Option<Resume>,
    /// No progress bars, even on a terminal.
    pub quiet: bool,
    /// Minutes between checkpoints within an epoch (one is saved at its end anyway).
    pub checkpoint_minutes: f64,
    /// Write TensorBoard event files into the run folder as it trains.
    pub tensorboard: bool,
    /// Replay the training step from a CUDA graph (`crate::cuda_graph`).
    pub cuda_graph: bool,
    /// On resume: `--early-stop`'s patience counts from this many finished epochs (a run
    /// that stopped early, told to go on for more).
    pub patience_from: Option<u32>,
}

/// How a run continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// From its checkpoint, exactly.
    Exactly,
    /// From `model.safetensors` with Adam started afresh (folders without a checkpoint).
    FreshOptimizer,
}

impl TrainOptions {
    /// Errs on options no run can train with, naming the flag: what the flags refuse,
    /// from a program calling the library.
    pub fn check(&self) -> Result<()> {
        self.recipe.check().map_err(|msg| anyhow!(msg))?;
        ensure!(
            self.threads != Some(0),
            "threads must be 1 or more (--threads)"
        );
        // a captured step replays the β₁ it was captured with
        ensure!(
            !self.cuda_graph || self.recipe.schedule == recipe::Schedule::Constant,
            "--cuda-graph replays the training step as it was captured, and the {} recipe's \
             one-cycle schedule moves Adam's β₁ at every step; train it without --cuda-graph",
            self.recipe.name
        );
        ensure!(
            !self.cuda_graph || self.device.is_cuda(),
            "--cuda-graph needs --device cuda: a CUDA graph replays GPU kernels, and this run \
             is on {}",
            device::device_name(self.device)
        );
        Ok(())
    }

    /// The CPU threads to train on: those the options name (`--threads`, or a resumed
    /// run's own); else one for the dense net on the CPU, whose step is too small to
    /// share between two cores (every operation's hand-over costs more than its half of
    /// the work: on this project's machine its epoch at batch 32 took 0.7 s on one thread,
    /// and 0.7 to 1.5 s on two, docs/speed.md); else `None`, libtorch's default.
    pub fn threads(&self) -> Option<usize> {
        let dense = self.recipe.model.kind() == models::ModelKind::Dense;
        self.threads
            .or((dense && self.device == Device::Cpu).then_some(1))
    }
}

/// What a finished run leaves: its folder and a row per epoch (all of them, on resume;
/// at least one).
pub struct TrainReport {
    pub run_dir: PathBuf,
    pub epochs: Vec<EpochMetrics>,
    /// The epoch with the best validation accuracy, kept in `best.safetensors`.
    pub best_epoch: Option<u32>,
}

impl TrainReport {
    /// The last epoch's figures.
    pub fn last(&self) -> Option<&EpochMetrics> {
        self.epochs.last()
    }
}

/// The error a run stops with after Ctrl-C, once its checkpoint is saved.
#[derive(Debug)]
pub struct Interrupted {
    pub run_dir: PathBuf,
    pub position: Position,
    pub steps_per_epoch: usize,
    /// How to go on, for runs another command started: `None`, `--resume DIR`.
    pub go_on: Option<String>,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.position;
        let at = match p.step {
            0 => format!("after epoch {}", p.epoch - 1),
            step => format!(
                "in epoch {} after step {step} of {}",
                p.epoch, self.steps_per_epoch
            ),
        };
        let dir = self.run_dir.display();
        let go_on = match &self.go_on {
            Some(how) => how.clone(),
            None => format!("continue with --resume {dir}"),
        };
        write!(
            f,
            "stopped {at}; its checkpoint is saved in {dir} (no row is written for an \
             unfinished epoch); {go_on}"
        )
    }
}

impl std::error::Error for Interrupted {}

/// Where a step is: its epoch, its place in the epoch and in the run (from 0), and the
/// learning rate and β₁ the recipe's schedule gives it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct At {
    pub epoch: u32,
    pub step: usize,
    pub run_step: usize,
    pub settings: StepSettings,
}

impl At {
    fn new(opts: &TrainOptions, epoch: u32, step: usize, steps_per_epoch: usize) -> At {
        let run_step = steps_per_epoch * (epoch as usize - 1) + step;
        let total = steps_per_epoch * opts.recipe.epochs as usize;
        At {
            epoch,
            step,
            run_step,
            settings: opts.recipe.at_step(run_step, total),
        }
    }
}

/// The position after `step` steps of epoch `epoch`, with its running `sums` and the
/// time on its `clock`, read once the sums are on the host (on a GPU, once its queued
/// work is done).
fn position(epoch: u32, step: usize, sums: &Sums, clock: &Clock) -> Position {
    let (loss_sum, correct) = sums.totals();
    Position {
        epoch,
        step,
        loss_sum,
        correct,
        seen: sums.seen,
        seconds: clock.elapsed(),
    }
}

/// The time an epoch has taken: what its position says, and this session's since.
struct Clock {
    before: f64,
    started: std::time::Instant,
}

impl Clock {
    fn elapsed(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }
}

/// A run in progress, its parts: the data, the learner, where it stands (the [`State`]
/// its checkpoint holds, kept nowhere else), the keeper of its folder and what watches
/// it.
struct Run<'a> {
    opts: &'a TrainOptions,
    data: Splits,
    learner: Learner,
    state: State,
    keeper: Keeper,
    watch: Watchers,
}

impl<'a> Run<'a> {
    /// The run of `opts`: the process set up for it, its data loaded, the network
    /// built, its folder made or reopened (with the state it holds), and a first
    /// checkpoint before any training, so that a folder that cannot take one fails now.
    fn open(opts: &'a TrainOptions) -> Result<Run<'a>> {
        opts.check()?;
        stop::install();
        device::configure(opts.device, opts.threads());
        let data = Splits::load(opts)?;
        let mut learner = Learner::new(opts, &data.input, data.train.len())?;
        let (state, dir) = restore::open(opts, &mut learner, &data)?;
        let mut keeper = Keeper::new(dir, opts);
        let mut watch = Watchers::default();
        keeper.save(&learner, &state, &mut watch)?;
        let mut watch = watch::every_run(opts, keeper.dir(), &state, &data)?;
        if opts.tensorboard {
            let per_epoch = data.steps_per_epoch(opts.recipe.batch_size);
            let events = events::Events::open(opts, keeper.dir(), &state, per_epoch)?;
            watch.0.push(Box::new(events));
        }
        watch.0.push(watch::curves(keeper.dir()));
        Ok(Run {
            opts,
            data,
            learner,
            state,
            keeper,
            watch,
        })
    }

    /// The epoch in progress's running sums and clock, from where its position is.
    fn resume_epoch(&mut self) -> (Sums, Clock) {
        let p = &self.state.position;
        self.watch.epoch_started(p);
        let sums = Sums::from(p.loss_sum, p.correct, p.seen, self.opts.device);
        let clock = Clock {
            before: p.seconds,
            started: std::time::Instant::now(),
        };
        (sums, clock)
    }

    /// Scores the epoch that ended at `done`, records it in the folder, and tells the
    /// watchers.
    fn finish_epoch(&mut self, done: Position) -> Result<()> {
        self.watch.epoch_ended(&done)?;
        let m = self.data.score_epoch(&self.learner, &done);
        self.keeper
            .finish_epoch(&self.learner, &mut self.state, &m, &mut self.watch)?;
        self.watch.epoch(&m, &self.state.history)
    }

    fn interrupted(&mut self) -> Interrupted {
        self.watch.stopped();
        Interrupted {
            run_dir: self.keeper.dir().path.clone(),
            position: self.state.position.clone(),
            steps_per_epoch: self.data.steps_per_epoch(self.opts.recipe.batch_size),
            go_on: None,
        }
    }

    fn report(self) -> Result<TrainReport> {
        if stop::requested() {
            crate::out!("Ctrl-C came after the last step: the run is complete")?;
        }
        ensure!(
            !self.state.history.is_empty(),
            "the run ended with no finished epoch"
        );
        let dir = self.keeper.into_dir();
        Ok(TrainReport {
            best_epoch: dir.config().best_epoch,
            run_dir: dir.path,
            epochs: self.state.history,
        })
    }
}
