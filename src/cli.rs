//! The argument groups every binary flattens in, and how a binary ends: one error line,
//! never a panic trace.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::Args;

use crate::device::DeviceChoice;
use serde::Serialize;

use crate::models::ModelKind;
use crate::progress::for_terminal;
use crate::recipe::{positive_f64, Overrides, Recipe, RecipeArgs, RecipeName};
use crate::run_dir::{self, resume, Weights};
use crate::stop;
use crate::train::{Interrupted, Resume, TrainOptions};

/// `--checkpoint-every`'s default.
pub const CHECKPOINT_MINUTES: f64 = 5.0;

/// How to train: the flags the trainers and `sweep` share.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The recipe's settings.
    #[command(flatten)]
    pub recipe: RecipeArgs,

    /// Seed for the initial weights and every random draw (shuffling, augmentation,
    /// dropout), which is also seeded by the epoch and step, so a resumed run draws what
    /// it would have drawn; on the CPU, the same seed and --threads give the same numbers
    /// [default: 0]
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,

    /// Minutes between checkpoints within an epoch (one is also saved at every epoch's
    /// end and on Ctrl-C); a kill or power cut loses at most this much work
    #[arg(long, allow_negative_numbers = true, value_name = "MINUTES", default_value_t = CHECKPOINT_MINUTES, value_parser = minutes)]
    pub checkpoint_every: f64,

    /// With --resume (or a rerun of sweep) on a run folder made before checkpoints
    /// existed: go on from its model.safetensors with Adam's moments started afresh,
    /// which cannot reproduce the run exactly
    #[arg(long)]
    pub fresh_optimizer: bool,

    /// No progress bars: one line per epoch only (also the case when stdout is not a terminal)
    #[arg(long, short)]
    pub quiet: bool,

    /// Write no TensorBoard event files (events.out.tfevents.*) into the run folder; by
    /// default `tensorboard --logdir runs` shows every run as it trains
    #[arg(long)]
    pub no_tensorboard: bool,

    /// Train by replaying each step from a CUDA graph, captured after three warm-up
    /// steps: one launch per step rather than one per kernel, for small batches on a fast
    /// GPU. CUDA only; not with --recipe strong, whose schedule moves Adam's β₁ at every
    /// step
    #[arg(long)]
    pub cuda_graph: bool,
}

/// Which run: a new one, or one to continue.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Passes over the 60,000 training images [default: 5 for the dense net, 10 for the
    /// CNN, 48 with --recipe strong]; with --resume, the number of further epochs
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,

    /// The run folder for config.json, metrics.csv, model.safetensors and the checkpoint
    /// [default: runs/MODEL-YYYYmmdd-HHMMSS]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Continue the run in DIR where it stopped (after Ctrl-C, a kill or a crash: at its
    /// last checkpoint); on the CPU with the same --threads, to the very numbers it would
    /// have reached. --epochs N trains N more epochs (a longer plan: the strong recipe's
    /// schedule then changes); without it, the run finishes its planned epochs. The
    /// model, recipe, batch size, learning rate, validation split and seed are the run's
    /// own
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,
}

/// Which weights of a saved run to use.
#[derive(Args, Debug, Clone)]
pub struct WeightsArgs {
    /// best: the epoch with the best validation accuracy (best.safetensors), in a run that
    /// held images out for validation; otherwise, and with last, the last finished
    /// epoch's (model.safetensors). The test set never chooses
    #[arg(long, value_enum, default_value_t = Weights::Best)]
    pub weights: Weights,
}

/// A saved run to read, and which of its weights.
#[derive(Args, Debug, Clone)]
pub struct SavedRunArgs {
    /// The run folder (made by train_dense or train_cnn)
    pub run: PathBuf,
    #[command(flatten)]
    pub weights: WeightsArgs,
}

/// Where the data is.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Folder with the four Fashion-MNIST IDX files (gzipped or raw). Without it:
    /// data/fashion-mnist, then /usr/share/datasets/fashion-mnist, else a download into
    /// data/fashion-mnist
    #[arg(long, value_name = "DIR", env = "FASHION_MNIST_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Where to compute.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// auto (CUDA when available, else the CPU), cpu, cuda or cuda:N. An explicit cuda
    /// that is not available is an error, never a silent CPU run
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,

    /// CPU threads for libtorch [default: one per physical core; 1 to train the dense
    /// net, whose steps are too small to share between cores; with --resume, the run's]
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
}

impl DeviceArgs {
    /// The device asked for, checked, with the thread setting applied.
    pub fn resolve(&self) -> Result<tch::Device> {
        let device = self.device.resolve()?;
        crate::device::configure(device, self.threads.map(|n| n as usize));
        Ok(device)
    }
}

/// The flags every trainer shares.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl CommonArgs {
    /// What the flags change in the recipe: `--recipe` (the CNN's), this group's settings
    /// and `--epochs`, and the model's flags `model`.
    pub fn overrides(&self, recipe: Option<RecipeName>, model: &impl Serialize) -> Overrides {
        Overrides::new(recipe, &self.train.recipe, model, self.run.epochs)
    }

    /// The library's options for training a network of `kind` as `flags` say. With
    /// --resume, the run's own config, which the flags may not contradict
    /// ([`resume::plan`]).
    pub(crate) fn train_options(&self, kind: ModelKind, flags: &Overrides) -> Result<TrainOptions> {
        let t = &self.train;
        if t.fresh_optimizer && self.run.resume.is_none() {
            bail!("--fresh-optimizer goes with --resume DIR: it says how to go on with an old run");
        }
        let Some(run) = &self.run.resume else {
            let recipe = flags.recipe(kind).map_err(|msg| anyhow!(msg))?;
            let mut options = options(t, &self.data, &self.device, recipe);
            options.out = self.run.out.clone();
            return Ok(options);
        };
        let plan = resume::plan(run, kind, flags, t.seed, t.fresh_optimizer)?;
        let mut options = options(t, &self.data, &self.device, plan.config.recipe.clone());
        // the run's own data, unless --data-dir says otherwise
        if options.data_dir.is_none() && plan.config.data_dir.is_dir() {
            options.data_dir = Some(plan.config.data_dir.clone());
        }
        // a run that stopped early, told to go on: patience counts afresh
        options.patience_from = plan.stopped_early.map(|_| plan.done);
        options.threads = options.threads.or(plan.threads());
        options.seed = plan.config.seed;
        options.out = Some(run.clone());
        options.resume = Some(match t.fresh_optimizer {
            true => Resume::FreshOptimizer,
            false => Resume::Exactly,
        });
        Ok(options)
    }
}

/// The options for a new run of `recipe` as the shared groups of flags say (into a
/// folder of its own unless `out` is set).
pub fn options(
    train: &TrainArgs,
    data: &DataArgs,
    device: &DeviceArgs,
    recipe: Recipe,
) -> TrainOptions {
    TrainOptions {
        recipe,
        seed: train.seed.unwrap_or(0),
        device: device.device,
        threads: device.threads.map(|n| n as usize),
        cuda_graph: train.cuda_graph,
        data_dir: data.data_dir.clone(),
        out: None,
        resume: None,
        quiet: train.quiet,
        checkpoint_minutes: train.checkpoint_every,
        after_epoch: run_dir::draw_curves,
        tensorboard: !train.no_tensorboard,
        patience_from: None,
    }
}

/// Parses minutes above 0 and at most a year (`--checkpoint-every`).
fn minutes(s: &str) -> Result<f64, String> {
    match positive_f64(s)? {
        m if m <= 525_600.0 => Ok(m),
        _ => Err(format!("{s} minutes is more than a year")),
    }
}

/// A trainer binary's body: train a network of `kind` as `flags` say, then print the final
/// test accuracy and where the run is kept.
pub fn train_and_report(common: &CommonArgs, kind: ModelKind, flags: &Overrides) -> ExitCode {
    run(|| {
        let options = common.train_options(kind, flags)?;
        let report = crate::train::train(&options)?;
        let last = report.last();
        let best = match report.best_epoch {
            Some(b) if b != last.epoch => format!(" (epoch {b} was the best on validation)"),
            _ => String::new(),
        };
        let dir = report.run_dir.display();
        crate::out!(
            "test accuracy {:.4}{best}; run saved in {dir}",
            last.test_accuracy
        )?;
        let tensorboard = match options.tensorboard {
            true => {
                let logdir = (report.run_dir.parent())
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                format!(
                    "\n  tensorboard --logdir {}    # the curves, live (pip install tensorboard)",
                    logdir.display()
                )
            }
            false => String::new(),
        };
        crate::out!(
            "next:\n  cargo run --release --bin evaluate -- {dir}    # scores, pictures, {dir}/report.html\n  \
             cargo run --release --bin predict -- {dir} IMAGE…\n  \
             cargo run --release --bin compare -- {dir} OTHER_RUN…\n  \
             cargo run --release --bin export -- {dir}    # TorchScript for PyTorch{tensorboard}"
        )?;
        Ok(())
    })
}

/// Runs a binary's body and turns how it ended into the exit status:
/// - an error: its chain on one line, status 1;
/// - Ctrl-C: where the run stopped, status 130, as shells expect;
/// - the reader of its output went away (`… | head`): nothing more, status 141, as a
///   shell tool killed by SIGPIPE ends;
/// - a failure inside libtorch (out of memory, a driver fault), which tch reports as a
///   panic: libtorch's message on one line, status 1;
/// - a panic anywhere else is a bug of ours: Rust's own report, with its file and line
///   and, under `RUST_BACKTRACE=1`, the backtrace.
pub fn run(body: impl FnOnce() -> anyhow::Result<()> + std::panic::UnwindSafe) -> ExitCode {
    let ours = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = (payload.downcast_ref::<String>().map(String::as_str))
            .or_else(|| payload.downcast_ref::<&str>().copied());
        match text.and_then(libtorch_failure) {
            Some(message) => eprintln!("error: libtorch: {message}"),
            None => ours(info),
        }
    }));
    match std::panic::catch_unwind(body) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) if err.is::<Interrupted>() => {
            eprintln!("{}", for_terminal(&err.to_string()));
            ExitCode::from(stop::EXIT_CODE)
        }
        Ok(Err(err)) if is_broken_pipe(&err) => ExitCode::from(141),
        Ok(Err(err)) => {
            eprintln!(
                "error: {}",
                for_terminal(&crate::progress::error_text(&err))
            );
            ExitCode::FAILURE
        }
        // the hook above has told what happened
        Err(_) => ExitCode::FAILURE,
    }
}

/// libtorch's message, when a panic's text is tch unwrapping a libtorch error (its
/// `TchError::Torch`, which tch's methods without `f_` unwrap: out of memory, a driver
/// fault): the first line, without libtorch's C++ backtrace. `None` for any other panic,
/// which is a bug of ours. Where a failure is expected (weights, devices, checkpoints) we
/// call tch's `f_` methods and get a `Result` instead.
fn libtorch_failure(panic: &str) -> Option<String> {
    let (_, message) = panic.split_once("on an `Err` value: Torch(\"")?;
    // the message is Debug-quoted: its line ends are written as \n
    let first = message.split(['\n']).next().unwrap_or(message);
    let first = first.split("\\n").next().unwrap_or(first);
    Some(first.trim_end_matches("\")").to_string())
}

/// Whether `err` comes from writing to a reader that went away.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_lessons() {
        let cli = parse(&[]).unwrap();
        let flags = cli
            .common
            .overrides(None, &crate::models::CnnArgs::default());
        let o = cli.common.train_options(ModelKind::Cnn, &flags).unwrap();
        assert_eq!(o.recipe, crate::recipe::Recipe::lesson(ModelKind::Cnn));
        assert_eq!((o.seed, o.resume), (0, None));
        assert_eq!(o.checkpoint_minutes, 5.0);
        assert_eq!(o.device, DeviceChoice::Auto);
    }

    #[test]
    fn libtorch_failures_are_told_by_tchs_error_in_one_line_and_our_bugs_are_not() {
        let panic = "called `Result::unwrap()` on an `Err` value: Torch(\"DefaultCPUAllocator: \
                     not enough memory: you tried to allocate 4000000000000 bytes.\\nException \
                     raised from alloc_cpu at c10/core/impl/alloc_cpu.cpp:117\")";
        assert_eq!(
            libtorch_failure(panic).as_deref(),
            Some("DefaultCPUAllocator: not enough memory: you tried to allocate 4000000000000 bytes.")
        );
        // our own bugs keep Rust's report, wherever the checkout lies
        for ours in [
            "index out of bounds: the len is 3 but the index is 7",
            "called `Result::unwrap()` on an `Err` value: Os { code: 2 }",
        ] {
            assert_eq!(libtorch_failure(ours), None, "{ours}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for args in [
            &["--epochs", "0"][..],
            &["--batch-size", "0"],
            &["--lr", "0"],
            &["--lr", "-1"],
            &["--lr", "abc"],
            &["--device", "tpu"],
            &["--threads", "0"],
            &["--checkpoint-every", "0"],
        ] {
            let err = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} was accepted"));
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
