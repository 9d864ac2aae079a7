//! The training loop, written once for every model and recipe: softmax cross-entropy, the
//! training set reshuffled every epoch, a test-set score (and a validation score when
//! images are held out) after each epoch, and the run folder kept up to date.
//!
//! A run can stop anywhere and go on to the very numbers it would have reached:
//! - a checkpoint (weights, Adam's state and the position in the run) is saved at each
//!   epoch's end, every `--checkpoint-every` minutes within one, and on Ctrl-C;
//! - every random draw (the shuffle, augmentation, dropout) is seeded from the run's seed
//!   and its position (epoch and step), so a resumed run draws what it would have drawn.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Result};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::cuda_graph::GraphedStep;
use crate::data::{self, Split};
use crate::device;
use crate::ema::Ema;
use crate::models;
use crate::optim::Adam;
use crate::progress;
use crate::recipe::{self, Optimizer, Precision, Recipe, RecipeName};
use crate::run_dir::checkpoint::{self, Position, State};
use crate::run_dir::{self, EpochMetrics, RunConfig, RunDir, RunLock};
use crate::score;
use crate::shim;
use crate::stop;
use crate::tensorboard::{EventWriter, Scalar};

/// Everything a training run needs: the plan of the run, which the binaries resolve from
/// their flags (`crate::flags::resolve`).
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The model and every training setting; `recipe.epochs` is the epoch to stop after,
    /// counting those a resumed run already has, and `recipe.validation_images` the
    /// training images to hold out.
    pub recipe: Recipe,
    pub seed: u64,
    pub device: Device,
    /// CPU threads for libtorch; `None`: [`TrainOptions::threads`] decides.
    pub threads: Option<usize>,
    /// `None`: search the default places, downloading when needed.
    pub data_dir: Option<PathBuf>,
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

/// What a finished run leaves: its folder and a row per epoch (all of them, on resume).
pub struct TrainReport {
    pub run_dir: PathBuf,
    pub epochs: Vec<EpochMetrics>,
    /// The epoch with the best validation accuracy, kept in `best.safetensors`.
    pub best_epoch: Option<u32>,
}

impl TrainReport {
    /// The last epoch's figures.
    pub fn last(&self) -> &EpochMetrics {
        self.epochs
            .last()
            .expect("a run trains at least one epoch (clap refuses --epochs 0)")
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

/// Trains `opts.recipe.model` on Fashion-MNIST and keeps the run in its folder.
pub fn train(opts: &TrainOptions) -> Result<TrainReport> {
    opts.check()?;
    stop::install();
    let device = opts.device;
    device::configure(device, opts.threads());
    let data = data::load(opts.data_dir.as_deref(), device)?;
    let held_out = held_out(opts, &data)?;
    let (train_split, validation) = data.train.split_off_last(held_out);
    let splits = Splits {
        train: train_split,
        validation: (held_out > 0).then_some(validation),
        test: data.test,
    };
    let mut run = Run::open(opts, device, &data.dir, &splits)?;
    run.announce(&splits, &data.dir)?;
    while run.state.position.epoch <= opts.recipe.epochs {
        // before each epoch, so a run resumed where it should have stopped stops too
        if run.stop_early()? {
            break;
        }
        let epoch = run.state.position.epoch;
        let finished = run
            .train_epoch(&splits.train)
            .map_err(|e| e.context(format!("epoch {epoch}")))?;
        if !finished {
            return Err(run.interrupted().into());
        }
        run.finish_epoch(&splits)?;
        // Ctrl-C after the last step: the run is complete, and ends as one
        if stop::requested() && run.state.position.epoch <= opts.recipe.epochs {
            return Err(run.interrupted().into());
        }
    }
    if stop::requested() {
        crate::out!("Ctrl-C came after the last step: the run is complete")?;
    }
    Ok(TrainReport {
        best_epoch: run.dir.config().best_epoch,
        run_dir: run.dir.path,
        epochs: run.state.history,
    })
}

/// How many training images to hold out: the recipe's number, checked against the data.
fn held_out(opts: &TrainOptions, data: &data::Dataset) -> Result<i64> {
    let n = data.train.len();
    let held_out = i64::from(opts.recipe.validation_images);
    ensure!(
        held_out < n,
        "holding out {held_out} images for validation (--validation{}) leaves nothing to \
         train on: {} has {n} training images; give --validation N with fewer (0 trains on \
         all of them)",
        match opts.recipe.name {
            RecipeName::Lesson => String::new(),
            name => format!(", {held_out} with --recipe {name}"),
        },
        data.dir.display(),
    );
    if let (Some(patience), 0) = (opts.recipe.early_stop, held_out) {
        bail!(
            "--early-stop {patience} watches the validation accuracy, but no images are held \
             out for validation; give --validation N as well"
        );
    }
    Ok(held_out)
}

/// The data a run sees.
struct Splits {
    train: Split,
    validation: Option<Split>,
    test: Split,
}

/// What a run computes with: the network, its optimiser, the moving average of its
/// weights where the recipe keeps one, and the training step.
struct Learner {
    vs: nn::VarStore,
    net: models::Network,
    adam: Adam,
    ema: Option<Ema>,
    /// With `--cuda-graph`: the step, captured once and replayed.
    graph: Option<GraphedStep>,
}

impl Learner {
    /// The network with its initial weights (drawn from the seed), Adam, and the moving
    /// average and CUDA graph where `opts` ask for them.
    fn new(opts: &TrainOptions, device: Device) -> Result<Learner> {
        tch::manual_seed(opts.seed as i64);
        let vs = nn::VarStore::new(device);
        let net = opts.recipe.model.build(&vs);
        let weight_decay = match opts.recipe.optimizer {
            Optimizer::Adam => 0.0,
            Optimizer::AdamW { weight_decay } => weight_decay,
        };
        let adam = match opts.cuda_graph {
            true => Adam::new(&vs, weight_decay).for_cuda_graph(),
            false => Adam::new(&vs, weight_decay),
        };
        let ema = match opts.recipe.ema {
            decay if decay > 0.0 => Some(Ema::new(&opts.recipe.model, &vs, decay)?),
            _ => None,
        };
        let graph = match opts.cuda_graph {
            true => Some(GraphedStep::new(device, opts.recipe.batch_size)?),
            false => None,
        };
        Ok(Learner {
            vs,
            net,
            adam,
            ema,
            graph,
        })
    }

    /// The network that is scored and saved, and its variables: the moving average's
    /// where the recipe keeps one, else the trained one.
    fn kept(&self) -> (&models::Network, &nn::VarStore) {
        match &self.ema {
            Some(ema) => (&ema.net, &ema.vs),
            None => (&self.net, &self.vs),
        }
    }

    /// One optimisation step of `recipe` on images `xs` (`[b, 1, 28, 28]`) with labels
    /// `ys` (`[b]`), at the step's learning rate and β₁: augmented as the recipe says
    /// (mirrored where `mirror` says, or at random), forward, loss, backward, Adam, and
    /// the moving average. Returns the loss and the logits (`[b, 10]`).
    fn step(
        &mut self,
        recipe: &Recipe,
        (xs, ys): (&Tensor, &Tensor),
        mirror: Option<&Tensor>,
        at: recipe::StepSettings,
    ) -> Result<(Tensor, Tensor)> {
        let xs = match recipe.augment {
            true => recipe::augment::augment(xs, mirror, i64::from(recipe.cutout)),
            false => xs.shallow_clone(),
        };
        self.adam.count(at.learning_rate);
        let Learner {
            vs,
            net,
            adam,
            graph,
            ..
        } = self;
        let mut step = |xs: &Tensor, ys: &Tensor| {
            let forward = || {
                let logits = net.forward_t(xs, true);
                let loss = logits.cross_entropy_loss::<Tensor>(
                    ys,
                    None,
                    tch::Reduction::Mean,
                    -100,
                    recipe.label_smoothing,
                );
                (loss, logits)
            };
            let (loss, logits) = match recipe.precision {
                Precision::F32 => forward(),
                Precision::Bf16 => shim::autocast_bf16(vs.device(), forward)?,
            };
            adam.update(&loss, at.learning_rate, at.beta1)?;
            Ok((loss, logits))
        };
        let (loss, logits) = match graph {
            Some(graph) => graph.run(&xs, ys, step)?,
            None => step(&xs, ys)?,
        };
        if let Some(ema) = &mut self.ema {
            ema.update(self.adam.steps);
        }
        Ok((loss, logits))
    }
}

/// A run in progress: its learner, where it stands (the [`State`] its checkpoint holds,
/// kept nowhere else) and its folder (which holds the config it wrote).
struct Run<'a> {
    opts: &'a TrainOptions,
    learner: Learner,
    state: State,
    dir: RunDir,
    steps_per_epoch: usize,
    /// With alternating flips: whether each training image is mirrored in the odd epochs
    /// (the others are, in the even ones).
    odd_mirrors: Option<Tensor>,
    /// TensorBoard's event file of this session, unless turned off.
    events: Option<EventWriter>,
}

/// Steps between the training loss and accuracy written for TensorBoard (and one at each
/// epoch's end): about 75 points per epoch of the lesson, enough to show its shape.
const LOG_EVERY: usize = 25;

impl<'a> Run<'a> {
    /// Builds the network and optimiser, and creates the run folder or, on resume, takes
    /// the weights, optimiser state and position from it.
    fn open(
        opts: &'a TrainOptions,
        device: Device,
        data: &Path,
        splits: &Splits,
    ) -> Result<Run<'a>> {
        let out = opts
            .out
            .clone()
            .unwrap_or_else(|| RunDir::default_path(&opts.recipe.model));
        let mut learner = Learner::new(opts, device)?;
        let config = new_config(opts, device, data, &learner.vs);
        let training_images = splits.train.len() as u64;
        let (mut state, dir) = match opts.resume {
            Some(how) => {
                // the lock first: the checkpoint is read as no other trainer leaves it
                let lock = RunLock::acquire(&out)?;
                let state = restore(&out, how, &mut learner, training_images)?;
                let dir = reopen(lock, &out, config, &state.history)?;
                (state, dir)
            }
            None => (
                State::fresh(Vec::new(), training_images),
                RunDir::create(&out, &config)?,
            ),
        };
        state.patience_from = state.patience_from.max(opts.patience_from.unwrap_or(0));
        let steps_per_epoch = (splits.train.len() as usize).div_ceil(opts.recipe.batch_size);
        let odd_mirrors = (opts.recipe.augment && opts.recipe.alternate_flips)
            .then(|| odd_mirrors(splits.train.len(), opts.seed, device));
        let mut run = Run {
            opts,
            learner,
            state,
            dir,
            steps_per_epoch,
            odd_mirrors,
            events: None,
        };
        // a first checkpoint before any training: a folder that cannot take one fails now
        run.save_checkpoint()?;
        if opts.tensorboard {
            run.open_events()?;
        }
        Ok(run)
    }

    fn announce(&self, splits: &Splits, data: &Path) -> Result<()> {
        let (epochs, done) = (self.opts.recipe.epochs, self.state.position.epoch - 1);
        let span = match (done, self.state.position.step) {
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
            self.opts.recipe.model.name(),
            self.dir.config().trainable_parameters,
            self.opts.recipe.name,
            self.dir.config().device,
            splits.train.len(),
            match &splits.validation {
                Some(v) => format!(" ({} more held out for validation)", v.len()),
                None => String::new(),
            },
            splits.test.len(),
            data.display()
        )?;
        Ok(())
    }

    /// Starts this session's TensorBoard event file: with the settings for a new run; for
    /// a resumed one, a session start after the step it goes on from, and the finished
    /// epochs' figures that earlier sessions' files lack ([`Run::fill_event_gaps`]).
    fn open_events(&mut self) -> Result<()> {
        let p = &self.state.position;
        let done = (self.steps_per_epoch * (p.epoch as usize - 1) + p.step) as i64;
        let resumed_at = self.opts.resume.map(|_| done);
        let earlier = match resumed_at {
            Some(_) => Some(crate::tensorboard::read(&self.dir.path)),
            None => None,
        };
        let mut events = EventWriter::create(&self.dir.path, resumed_at)?;
        if resumed_at.is_none() {
            let settings = serde_json::to_string_pretty(self.dir.config())?;
            events.text(0, "settings", &format!("```json\n{settings}\n```"))?;
        }
        events.flush()?;
        self.events = Some(events);
        match earlier {
            Some(earlier) => self.fill_event_gaps(earlier, done),
            None => Ok(()),
        }
    }

    /// On resume: checks that the earlier sessions' event files hold every point of the
    /// `done` steps the checkpoint covers. A finished epoch's figures they lack (a crash
    /// after the checkpoint that records the epoch, before them) are written again from
    /// its row; a training step's points, which only that step knew, are named as lost.
    fn fill_event_gaps(&mut self, earlier: Result<Vec<Scalar>>, done: i64) -> Result<()> {
        let earlier = earlier.unwrap_or_else(|e| {
            let _ = crate::out!("TensorBoard: {}", progress::error_text(&e));
            Vec::new()
        });
        for odd in crate::tensorboard::not_regular(&self.dir.path)? {
            crate::out!(
                "TensorBoard: {} is not a regular file, so it was not read",
                odd.display()
            )?;
        }
        let have: HashSet<(i64, &str)> =
            (earlier.iter()).map(|s| (s.step, s.tag.as_str())).collect();
        let per_epoch = self.steps_per_epoch as i64;
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
        for m in self.state.history.clone() {
            let at = per_epoch * i64::from(m.epoch);
            self.log_epoch(&m, |tag| !have.contains(&(at, tag)))?;
        }
        Ok(())
    }

    fn save_checkpoint(&mut self) -> Result<()> {
        // TensorBoard's points up to the checkpoint first, on the disk as it will be,
        // so that a resume from it leaves no gap
        if let Some(events) = &mut self.events {
            events.sync()?;
        }
        let Learner { vs, adam, ema, .. } = &self.learner;
        let average = ema.as_ref().map(|ema| &ema.vs);
        checkpoint::save(&self.dir.path, (vs, average), adam, &self.state)
    }

    fn interrupted(&self) -> Interrupted {
        Interrupted {
            run_dir: self.dir.path.clone(),
            position: self.state.position.clone(),
            steps_per_epoch: self.steps_per_epoch,
            go_on: None,
        }
    }

    /// Trains the rest of the epoch in progress. Returns false when Ctrl-C stopped it
    /// (its checkpoint is saved).
    fn train_epoch(&mut self, train: &Split) -> Result<bool> {
        let epoch = self.state.position.epoch;
        let order = shuffled(train.len(), self.opts.seed, epoch, train.pixels.device());
        let batches = order.split(self.opts.recipe.batch_size as i64, 0);
        let bar = progress::epoch_bar(
            batches.len() as u64,
            self.prefix(),
            progress::interactive(self.opts.quiet),
        );
        bar.set_position(self.state.position.step as u64);
        let mut sums = RunningSums::from(&self.state.position, train.pixels.device());
        let seen_before = sums.seen;
        let (started, mut last_checkpoint) = (Instant::now(), Instant::now());
        let checkpoint_every = Duration::from_secs_f64(self.opts.checkpoint_minutes * 60.0);
        let seconds_before = self.state.position.seconds;
        for (step, idx) in batches.iter().enumerate().skip(self.state.position.step) {
            seed_draws(self.opts.seed, epoch, step as u64);
            self.step(train, idx, step, &mut sums)?;
            let stopping = stop::requested();
            let saving = stopping || last_checkpoint.elapsed() >= checkpoint_every;
            if saving || (!bar.is_hidden() && step % 25 == 0) || step % CHECK_EVERY == 0 {
                // never a checkpoint of weights that have diverged
                let (mean_loss, accuracy) = sums.means();
                check_finite(mean_loss, step, self.opts.recipe.learning_rate)?;
                let images = (sums.seen - seen_before) as f64;
                let rate = images / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_position(step as u64 + 1);
                bar.set_message(format!(
                    "{rate:>6.0} img/s  loss {mean_loss:.4}  acc {accuracy:.4}"
                ));
            }
            if saving {
                let seconds = seconds_before + started.elapsed().as_secs_f64();
                self.state.position = sums.position(epoch, step + 1, seconds);
                self.save_checkpoint()?;
                last_checkpoint = Instant::now();
                if stopping {
                    bar.abandon();
                    return Ok(false);
                }
            }
        }
        bar.finish_and_clear();
        let (mean_loss, _) = sums.means();
        check_finite(mean_loss, batches.len() - 1, self.opts.recipe.learning_rate)?;
        let seconds = seconds_before + started.elapsed().as_secs_f64();
        self.state.position = sums.position(epoch, batches.len(), seconds);
        Ok(true)
    }

    /// One optimisation step on the images at `idx`, step `step` of the epoch.
    fn step(
        &mut self,
        train: &Split,
        idx: &Tensor,
        step: usize,
        sums: &mut RunningSums,
    ) -> Result<()> {
        let recipe = &self.opts.recipe;
        let run_step = self.steps_per_epoch * (self.state.position.epoch as usize - 1) + step;
        let at = recipe.at_step(run_step, self.steps_per_epoch * recipe.epochs as usize);
        let xs = train.images_at(idx); // [b, 1, 28, 28]
        let ys = train.labels.index_select(0, idx); // [b]
        let mirror = self.odd_mirrors.as_ref().map(|odd| {
            let odd = odd.index_select(0, idx);
            match self.state.position.epoch % 2 {
                1 => odd,
                _ => odd.logical_not(),
            }
        });
        let (loss, logits) = self.learner.step(recipe, (&xs, &ys), mirror.as_ref(), at)?;
        sums.add(&loss, &logits, &ys);
        if let Some(events) = &mut self.events {
            let done = run_step as i64 + 1;
            events.scalar(done, "train/learning_rate", at.learning_rate)?;
            if (step + 1).is_multiple_of(LOG_EVERY) || step + 1 == self.steps_per_epoch {
                // the epoch so far, as the progress bar shows it
                let (loss, accuracy) = sums.means();
                events.scalar(done, "train/loss", loss)?;
                events.scalar(done, "train/accuracy", accuracy)?;
                events.flush()?;
            }
        }
        if run_step == 0 && recipe.precision != Precision::F32 {
            // what autocast really ran, rather than what was asked
            crate::out!(
                "--precision {}: the network's output came out as {:?}",
                recipe.precision,
                logits.kind()
            )?;
        }
        Ok(())
    }

    /// Scores the finished epoch, records it and saves everything.
    fn finish_epoch(&mut self, splits: &Splits) -> Result<()> {
        let started = Instant::now();
        let p = &self.state.position;
        let (net, vs) = self.learner.kept();
        let test = score::score(net, &splits.test);
        let validation_accuracy = splits
            .validation
            .as_ref()
            .map(|v| score::score(net, v).accuracy);
        let seen = p.seen.max(1) as f64;
        let m = EpochMetrics {
            epoch: p.epoch,
            train_loss: p.loss_sum / seen,
            train_accuracy: p.correct as f64 / seen,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            seconds: p.seconds + started.elapsed().as_secs_f64(),
            validation_accuracy,
        };
        crate::out!(
            "{}  train loss {:.4} acc {:.4}  {}test loss {:.4} acc {:.4}  {:.1} s",
            self.prefix(),
            m.train_loss,
            m.train_accuracy,
            validation_accuracy.map_or(String::new(), |a| format!("validation acc {a:.4}  ")),
            m.test_loss,
            m.test_accuracy,
            m.seconds,
        )?;
        self.state.history.push(m.clone());
        self.state.position = Position::start_of(m.epoch + 1);
        // The files of the finished epoch first, the checkpoint that records it as done
        // last: a crash in between leaves the previous checkpoint, and a resume repeats
        // the epoch and rewrites metrics.csv from the checkpoint. Its row comes before
        // model.safetensors, best.safetensors and config.json name it, so a reader
        // (`compare` beside a training) never meets weights that metrics.csv has no row
        // for yet.
        let held = match self.learner.ema {
            Some(_) => run_dir::Held::Average,
            None => run_dir::Held::Trained,
        };
        self.dir.append_metrics(&m)?;
        self.dir.save_weights(vs, m.epoch, held)?;
        if best_epoch(&self.state.history) == Some(m.epoch) {
            self.dir.save_best_weights(vs, m.epoch, held)?;
            self.dir.update_config(|c| c.best_epoch = Some(m.epoch))?;
        }
        self.save_checkpoint()?;
        // after the checkpoint that records the epoch as done: a crash before it repeats
        // the epoch, which writes them then; one after it leaves them to the resume
        self.log_epoch(&m, |_| true)?;
        run_dir::draw_curves(&self.dir.path, &self.state.history)
    }

    /// Writes the figures of the finished epoch `m` for TensorBoard, at its last step:
    /// those whose tag `wanted` takes.
    fn log_epoch(&mut self, m: &EpochMetrics, wanted: impl Fn(&str) -> bool) -> Result<()> {
        let Some(events) = &mut self.events else {
            return Ok(());
        };
        let done = (self.steps_per_epoch * m.epoch as usize) as i64;
        let figures = [
            ("epoch/train_loss", Some(m.train_loss)),
            ("epoch/train_accuracy", Some(m.train_accuracy)),
            ("epoch/test_loss", Some(m.test_loss)),
            ("epoch/test_accuracy", Some(m.test_accuracy)),
            ("epoch/validation_accuracy", m.validation_accuracy),
            ("epoch/seconds", Some(m.seconds)),
        ];
        for (tag, value) in figures {
            if let Some(v) = value.filter(|_| wanted(tag)) {
                events.scalar(done, tag, v)?;
            }
        }
        events.flush()
    }

    /// Whether `--early-stop N` ends the run here: validation accuracy has not improved
    /// for N epochs (counted from the epoch the run was last told to go on from, after an
    /// early stop). Says why, and records it in `config.json`.
    fn stop_early(&mut self) -> Result<bool> {
        let Some(patience) = self.opts.recipe.early_stop else {
            return Ok(false);
        };
        let Some(best) = early_stop_due(&self.state, patience) else {
            return Ok(false);
        };
        let last = self.state.history.len() as u32;
        let accuracy = self
            .state
            .history
            .iter()
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

    fn prefix(&self) -> String {
        format!(
            "epoch {:>2}/{}",
            self.state.position.epoch, self.opts.recipe.epochs
        )
    }
}

/// The config of a run of `opts` on `device` with the data in `data` and the network in
/// `vs`.
fn new_config(opts: &TrainOptions, device: Device, data: &Path, vs: &nn::VarStore) -> RunConfig {
    RunConfig {
        format_version: run_dir::config::FORMAT_VERSION,
        recipe: opts.recipe.clone(),
        seed: opts.seed,
        device: device::device_name(device),
        threads: tch::get_num_threads() as usize,
        cuda_graph: opts.cuda_graph,
        trainable_parameters: models::parameter_count(vs),
        data_dir: data.to_path_buf(),
        libtorch_version: env!("FASHION_TCH_LIBTORCH_VERSION").to_string(),
        fashion_tch_version: env!("CARGO_PKG_VERSION").to_string(),
        started: chrono::Local::now().to_rfc3339(),
        best_epoch: None,
        stopped_early: None,
    }
}

/// Opens the run folder `out` to go on with `config` from the finished epochs `history`:
/// the run keeps its start, and its best epoch is the one its history holds.
fn reopen(
    lock: RunLock,
    out: &Path,
    config: RunConfig,
    history: &[EpochMetrics],
) -> Result<RunDir> {
    let done = history.len() as u32;
    let best = run_dir::best_weights_epoch(out).filter(|&e| e <= done);
    if best.is_none() {
        // best.safetensors of an epoch a crash undid, if any
        let _ = std::fs::remove_file(out.join(run_dir::BEST_WEIGHTS));
    }
    // RunDir::reopen keeps the start time of the config there
    let config = RunConfig {
        best_epoch: best,
        ..config
    };
    RunDir::reopen(lock, out, &config, history)
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
pub fn best_epoch(history: &[EpochMetrics]) -> Option<u32> {
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

/// Puts back the weights and Adam's state of the run in `out` into `learner`, and returns
/// where the run stands: the finished epochs and the position to go on from. A run that
/// steps through `training_images` images.
fn restore(out: &Path, how: Resume, learner: &mut Learner, training_images: u64) -> Result<State> {
    match checkpoint::load(out)? {
        Some(ck) => {
            let source = out.join(checkpoint::FILE);
            let had = ck.state.training_images;
            ensure!(
                had == 0 || had == training_images,
                "{}: the run steps through {had} training images, and this data \
                 gives {training_images}; resume it with the data it was trained on (--data-dir)",
                out.display()
            );
            run_dir::copy_into(&mut learner.vs, &ck.weights, &source)?;
            if let Some(ema) = &mut learner.ema {
                ensure!(
                    !ck.average.is_empty(),
                    "{} holds no moving average of the weights (ema.*), which the run's \
                     recipe keeps; resume it with the fashion-tch that made it",
                    source.display()
                );
                run_dir::copy_into(&mut ema.vs, &ck.average, &source)?;
            }
            learner
                .adam
                .load_state(&ck.optimizer, ck.optimizer_steps)
                .map_err(|e| e.context(format!("{} does not fit the model", source.display())))?;
            Ok(State {
                training_images,
                ..ck.state
            })
        }
        None if how == Resume::FreshOptimizer => {
            run_dir::load_weights(&out.join(run_dir::WEIGHTS), &mut learner.vs)?;
            if let Some(ema) = &mut learner.ema {
                // the average starts afresh from the saved weights, as Adam does
                ema.vs.copy(&learner.vs)?;
            }
            Ok(State::fresh(run_dir::read_metrics(out)?, training_images))
        }
        None => bail!(
            "{} has no {}; resume it with --fresh-optimizer",
            out.display(),
            checkpoint::FILE
        ),
    }
}

/// The epoch's running sums, kept on the device so the GPU rarely waits for the host.
struct RunningSums {
    loss: Tensor,
    correct: Tensor,
    seen: i64,
}

impl RunningSums {
    fn from(p: &Position, device: Device) -> RunningSums {
        RunningSums {
            loss: Tensor::from(p.loss_sum).to_device(device),
            correct: Tensor::from(p.correct).to_device(device),
            seen: p.seen,
        }
    }

    fn add(&mut self, loss: &Tensor, logits: &Tensor, labels: &Tensor) {
        let b = labels.size()[0];
        self.seen += b;
        tch::no_grad(|| {
            self.loss += loss.to_kind(Kind::Double) * b;
            self.correct += logits.argmax(-1, false).eq_tensor(labels).sum(Kind::Int64);
        });
    }

    /// The mean loss and the accuracy so far (a host sync).
    fn means(&self) -> (f64, f64) {
        let seen = self.seen.max(1) as f64;
        (
            self.loss.double_value(&[]) / seen,
            self.correct.int64_value(&[]) as f64 / seen,
        )
    }

    fn position(&self, epoch: u32, step: usize, seconds: f64) -> Position {
        Position {
            epoch,
            step,
            loss_sum: self.loss.double_value(&[]),
            correct: self.correct.int64_value(&[]),
            seen: self.seen,
            seconds,
        }
    }
}

/// Batches between checks that the loss is still finite (a host sync each).
const CHECK_EVERY: usize = 100;

/// The training set's order in epoch `epoch`: drawn on the CPU (the same on every
/// device) from the seed and the epoch.
fn shuffled(n: i64, seed: u64, epoch: u32, device: Device) -> Tensor {
    tch::manual_seed(position_seed(seed, epoch, u64::MAX));
    Tensor::randperm(n, (Kind::Int64, Device::Cpu)).to_device(device)
}

/// With alternating flips: whether each of the `n` training images is mirrored in the
/// odd epochs, drawn once from the seed (on the CPU, the same on every device).
fn odd_mirrors(n: i64, seed: u64, device: Device) -> Tensor {
    // epoch 0 is no epoch of the run: a draw of its own
    tch::manual_seed(position_seed(seed, 0, 0));
    Tensor::rand([n], (Kind::Float, Device::Cpu))
        .lt(0.5)
        .to_device(device)
}

/// Seeds libtorch's generators for the draws of step `step` of epoch `epoch`
/// (augmentation, dropout).
fn seed_draws(seed: u64, epoch: u32, step: u64) {
    tch::manual_seed(position_seed(seed, epoch, step));
}

/// A seed for one point of a run, mixed from the run's seed and the point (SplitMix64).
fn position_seed(seed: u64, epoch: u32, step: u64) -> i64 {
    let mix = |mut x: u64| {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let x = mix(mix(mix(seed) ^ u64::from(epoch)) ^ step);
    (x >> 1) as i64
}

fn check_finite(mean_loss: f64, step: usize, learning_rate: f64) -> Result<()> {
    if !mean_loss.is_finite() {
        bail!(
            "the loss became {mean_loss} by batch {} (learning rate {}); training \
             diverged. Try a lower --lr (the lesson's is 0.001). The run folder keeps its last \
             checkpoint, from before the loss diverged.",
            step + 1,
            progress::number(learning_rate),
        );
    }
    Ok(())
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

    #[test]
    fn draws_are_seeded_by_the_seed_epoch_and_step_alone() {
        let _generator = crate::own_the_generator();
        let seeds: Vec<i64> = [(0, 1, 0), (0, 1, 1), (0, 2, 0), (1, 1, 0), (0, 1, u64::MAX)]
            .iter()
            .map(|&(seed, epoch, step)| position_seed(seed, epoch, step))
            .collect();
        for (i, a) in seeds.iter().enumerate() {
            assert!(*a >= 0, "a seed libtorch takes");
            assert!(seeds[i + 1..].iter().all(|b| b != a), "{seeds:?}");
        }
        assert_eq!(position_seed(7, 3, 11), position_seed(7, 3, 11));
        // the same point draws the same numbers, whatever was drawn before
        let draw = || Tensor::rand([4], (Kind::Float, Device::Cpu));
        seed_draws(7, 3, 11);
        let first = draw();
        let _ = draw();
        seed_draws(7, 3, 11);
        assert!(draw().equal(&first));
        let order = shuffled(10, 7, 2, Device::Cpu);
        let _ = draw();
        assert!(shuffled(10, 7, 2, Device::Cpu).equal(&order));
        assert!(!shuffled(10, 7, 3, Device::Cpu).equal(&order));
    }
}
