//! The training loop, written once for every model and recipe: softmax cross-entropy, the
//! training set reshuffled every epoch, a test-set score (and a validation score when
//! images are held out), `metrics.csv`, `curves.svg` and the weights saved after each
//! epoch. Ctrl-C saves the epoch so far and stops.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use crate::data::{self, Split};
use crate::device::{self, DeviceChoice};
use crate::eval;
use crate::models::{self, ModelSpec};
use crate::plots;
use crate::progress;
use crate::recipe::{self, Recipe};
use crate::run_dir::{self, EpochMetrics, RunConfig, RunDir};

/// Everything a training run needs; the binaries fill it from their flags.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub model: ModelSpec,
    /// Optimiser, schedule, augmentation and the default validation split.
    pub recipe: Recipe,
    /// The epoch to stop after, counting those a resumed run already has.
    pub epochs: u32,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Training images held out for validation; `None`: the recipe's number (on resume,
    /// the run's own).
    pub validation: Option<u32>,
    pub seed: u64,
    pub device: DeviceChoice,
    pub threads: Option<usize>,
    /// `None`: search the default places, downloading when needed.
    pub data_dir: Option<PathBuf>,
    /// `None`: `runs/<model>-<timestamp>`. With `resume`, the run to continue.
    pub out: Option<PathBuf>,
    /// Continue the run in `out` from its weights and epoch count.
    pub resume: bool,
    /// No progress bars, even on a terminal.
    pub quiet: bool,
}

/// What a finished run leaves: its folder and a row per epoch (all of them, on resume).
pub struct TrainReport {
    pub run_dir: PathBuf,
    pub epochs: Vec<EpochMetrics>,
}

impl TrainReport {
    /// The last epoch's figures.
    pub fn last(&self) -> &EpochMetrics {
        self.epochs
            .last()
            .expect("a run trains at least one epoch (clap refuses --epochs 0)")
    }
}

/// The error a run stops with when Ctrl-C was pressed, after saving what it had.
#[derive(Debug)]
pub struct Interrupted {
    pub run_dir: PathBuf,
    pub epoch: u32,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted in epoch {}; that epoch's row and the weights so far are saved in {}. \
             Continue with --resume {}",
            self.epoch,
            self.run_dir.display(),
            self.run_dir.display()
        )
    }
}

impl std::error::Error for Interrupted {}

/// Trains `opts.model` on Fashion-MNIST and keeps the run in its folder.
pub fn train(opts: &TrainOptions) -> Result<TrainReport> {
    let device = opts.device.resolve()?;
    device::configure(device, opts.threads);
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| RunDir::default_path(&opts.model));
    let mut history = if opts.resume {
        run_dir::read_metrics(&out)?
    } else {
        Vec::new()
    };
    let done = history.len() as u32;
    let data = data::load(opts.data_dir.as_deref(), device)?;
    let held_out = validation_images(opts, &out, data.train.len())?;
    ensure!(
        held_out < data.train.len(),
        "holding out {held_out} images for validation (--validation) leaves nothing to train \
         on: {} has {} training images; give fewer (0 trains on all of them)",
        data.dir.display(),
        data.train.len()
    );
    let (train_split, validation) = data.train.split_off_last(held_out);
    let validation = (held_out > 0).then_some(validation);
    // A resumed run reshuffles differently from its first epochs, yet reproducibly.
    tch::manual_seed((opts.seed + u64::from(done)) as i64);
    let mut vs = nn::VarStore::new(device);
    let net = opts.model.build(&vs.root());
    let config = RunConfig {
        model: opts.model.clone(),
        recipe: opts.recipe,
        epochs: opts.epochs,
        batch_size: opts.batch_size,
        learning_rate: opts.learning_rate,
        validation_images: Some(held_out as u32),
        seed: opts.seed,
        device: device::device_name(device),
        threads: tch::get_num_threads() as usize,
        trainable_parameters: models::parameter_count(&vs),
        data_dir: data.dir.clone(),
        libtorch_version: env!("FASHION_TCH_LIBTORCH_VERSION").to_string(),
        fashion_tch_version: env!("CARGO_PKG_VERSION").to_string(),
        started: chrono::Local::now().to_rfc3339(),
    };
    let mut run = if opts.resume {
        run_dir::load_weights(&out, &mut vs)?;
        RunDir::reopen(&out, &config)?
    } else {
        RunDir::create(&out, &config, validation.is_some())?
    };
    let mut opt = opts.recipe.optimizer(&vs, opts.learning_rate)?;
    println!(
        "training {} ({} parameters, {} recipe) on {} {}, {} training{} and {} test images \
         from {}",
        opts.model.name(),
        config.trainable_parameters,
        opts.recipe,
        config.device,
        if done == 0 {
            match opts.epochs {
                1 => "for 1 epoch".to_string(),
                n => format!("for {n} epochs"),
            }
        } else {
            format!("from epoch {} to {}", done + 1, opts.epochs)
        },
        train_split.len(),
        match &validation {
            Some(v) => format!(" ({} more held out for validation)", v.len()),
            None => String::new(),
        },
        data.test.len(),
        data.dir.display()
    );

    let stop = ctrl_c_flag();
    let steps_per_epoch = (train_split.len() as usize).div_ceil(opts.batch_size);
    for epoch in done + 1..=opts.epochs {
        let started = Instant::now();
        let prefix = format!("epoch {epoch:>2}/{}", opts.epochs);
        let epoch_ctx = |e: anyhow::Error| e.context(format!("epoch {epoch}"));
        let schedule = Schedule {
            first: steps_per_epoch * (epoch - 1) as usize,
            total: steps_per_epoch * opts.epochs as usize,
        };
        let pass = train_epoch(&net, &mut opt, &train_split, opts, schedule, &prefix, &stop)
            .map_err(epoch_ctx)?;
        let test = eval::score(&net, &data.test);
        let validation_accuracy = validation.as_ref().map(|v| eval::score(&net, v).accuracy);
        let m = EpochMetrics {
            epoch,
            train_loss: pass.loss,
            train_accuracy: pass.accuracy,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            seconds: started.elapsed().as_secs_f64(),
            validation_accuracy,
        };
        println!(
            "{prefix}  train loss {:.4} acc {:.4}  {}test loss {:.4} acc {:.4}  {:.1} s{}",
            m.train_loss,
            m.train_accuracy,
            validation_accuracy.map_or(String::new(), |a| format!("validation acc {a:.4}  ")),
            m.test_loss,
            m.test_accuracy,
            m.seconds,
            if pass.interrupted {
                "  (interrupted)"
            } else {
                ""
            }
        );
        // Weights first: a row in metrics.csv always has its weights on disk.
        run.save_weights(&vs)?;
        run.append_metrics(&m)?;
        history.push(m);
        plots::curves(&run.path.join("curves.svg"), &history)?;
        if pass.interrupted {
            return Err(Interrupted {
                run_dir: run.path,
                epoch,
            }
            .into());
        }
    }
    Ok(TrainReport {
        run_dir: run.path,
        epochs: history,
    })
}

/// How many of the `train_len` training images to hold out: `--validation`, else the
/// recipe's number; a resumed run keeps its own and refuses another.
fn validation_images(opts: &TrainOptions, out: &Path, train_len: i64) -> Result<i64> {
    let asked = opts.validation.map(i64::from);
    if !opts.resume {
        return Ok(asked.unwrap_or_else(|| opts.recipe.validation_images(train_len)));
    }
    let config = run_dir::read_config(out)?;
    let had = config
        .validation_images
        .map(i64::from)
        // runs from before --validation held out their recipe's number
        .unwrap_or_else(|| config.recipe.validation_images(train_len));
    if let Some(asked) = asked.filter(|&v| v != had) {
        bail!(
            "--resume {}: the run holds out {had} training images for validation, not \
             --validation {asked}; a resumed run keeps its split (drop the flag, or start a \
             new run)",
            out.display()
        );
    }
    Ok(had)
}

/// A flag that Ctrl-C (SIGINT) sets, so the loop can save and stop between batches.
fn ctrl_c_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let setter = flag.clone();
    // Only one handler per process may be set; a second run in the same process (tests)
    // keeps the first, which is fine for them.
    let _ = ctrlc::set_handler(move || setter.store(true, Ordering::SeqCst));
    flag
}

/// What one pass over the training set gives.
struct Pass {
    loss: f64,
    accuracy: f64,
    /// Ctrl-C stopped the pass early.
    interrupted: bool,
}

/// Where an epoch's steps are in the whole run, for the learning-rate schedule.
#[derive(Clone, Copy)]
struct Schedule {
    /// The run's step number of the epoch's first step.
    first: usize,
    /// Steps in the whole run.
    total: usize,
}

/// Batches between checks that the loss is still finite (a host sync each).
const CHECK_EVERY: usize = 100;

/// One pass over the shuffled training set: the mean loss and the accuracy seen along the
/// way (as Keras reports them).
fn train_epoch(
    net: &impl ModuleT,
    opt: &mut nn::Optimizer,
    train: &Split,
    opts: &TrainOptions,
    schedule: Schedule,
    prefix: &str,
    stop: &AtomicBool,
) -> Result<Pass> {
    let device = train.pixels.device();
    let n = train.len();
    let batch = opts.batch_size as i64;
    let batches = (n + batch - 1) / batch;
    let bar = progress::epoch_bar(
        batches as u64,
        prefix.to_string(),
        progress::interactive(opts.quiet),
    );
    let started = Instant::now();
    // Running sums stay on the device; the host reads them only for the bar, the NaN
    // check and at the end, so the GPU rarely waits for us.
    let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
    let mut correct = Tensor::zeros([], (Kind::Int64, device));
    let order = Tensor::randperm(n, (Kind::Int64, device));
    let mut seen = 0;
    let mut interrupted = false;
    for (step, idx) in order.split(batch, 0).iter().enumerate() {
        opts.recipe.schedule(
            opt,
            opts.learning_rate,
            schedule.first + step,
            schedule.total,
        );
        let mut xs = train.images_at(idx); // [b, 1, 28, 28]
        if opts.recipe.augments() {
            xs = recipe::augment(&xs);
        }
        let ys = train.labels.index_select(0, idx); // [b]
        let logits = net.forward_t(&xs, true); // [b, 10]
        let loss = opts.recipe.loss(&logits, &ys);
        opt.backward_step(&loss);
        let b = ys.size()[0];
        seen += b;
        tch::no_grad(|| {
            loss_sum += loss.to_kind(Kind::Double) * b;
            correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64);
        });
        let redraw = !bar.is_hidden() && step % 25 == 0;
        if redraw || step % CHECK_EVERY == 0 {
            let (mean_loss, accuracy) = read_means(&loss_sum, &correct, seen);
            check_finite(mean_loss, step, opts)?;
            let rate = seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_position(step as u64 + 1);
            bar.set_message(format!(
                "{rate:>6.0} img/s  loss {mean_loss:.4}  acc {accuracy:.4}"
            ));
        }
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
    }
    bar.finish_and_clear();
    let (loss, accuracy) = read_means(&loss_sum, &correct, seen);
    check_finite(loss, batches as usize - 1, opts)?;
    Ok(Pass {
        loss,
        accuracy,
        interrupted,
    })
}

fn read_means(loss_sum: &Tensor, correct: &Tensor, seen: i64) -> (f64, f64) {
    let seen = seen.max(1) as f64;
    (
        loss_sum.double_value(&[]) / seen,
        correct.int64_value(&[]) as f64 / seen,
    )
}

fn check_finite(mean_loss: f64, step: usize, opts: &TrainOptions) -> Result<()> {
    if !mean_loss.is_finite() {
        bail!(
            "the loss became {mean_loss} by batch {} (learning rate {}); training diverged. \
             Try a lower --lr (the lesson's is 0.001). The weights of the last finished epoch \
             are kept in the run folder.",
            step + 1,
            opts.learning_rate
        );
    }
    Ok(())
}
