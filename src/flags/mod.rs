//! Every flag of every binary, in one place: the clap groups the binaries flatten in
//! (here, and the recipe's in `settings`), the parsers of their values (`parse`), and
//! one step that resolves a trainer's flags into the plan of its run ([`resolve`]), as
//! ripgrep turns its low arguments into high ones once. The resume rules are in
//! `resume`; a recipe written back as flags, for messages and sweep's plans, in `table`.
//! The library below takes typed options, and knows no flag.

mod parse;
mod resolve;
pub(crate) mod resume;
mod settings;
mod table;

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::device::DeviceChoice;
use crate::run_dir::Weights;

pub use parse::filters as parse_filters;
pub use resolve::{options, resolve};
pub use settings::{recipe_help, Changes, CnnArgs, DenseArgs, RecipeArgs};
pub use table::{comma_list, differences, flags_over};

use parse::minutes;

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
    /// Passes over the training images (Fashion-MNIST's 60,000) [default: 5 for the dense
    /// net, 10 for the CNN, 48 with --recipe strong]; with --resume, the number of further
    /// epochs
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
    /// Folder with the four Fashion-MNIST IDX files (gzipped or raw), or a folder of your
    /// own images: a folder per class (CLASS/…, PNG or JPEG), or train/CLASS/… and
    /// test/CLASS/…. Without it: data/fashion-mnist, then
    /// /usr/share/datasets/fashion-mnist, else a download into data/fashion-mnist
    #[arg(long, value_name = "DIR", env = "FASHION_MNIST_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Where a saved run's test images are.
#[derive(Args, Debug, Clone)]
pub struct SavedDataArgs {
    /// The test images to score the run on: Fashion-MNIST's IDX files, or a folder of
    /// images of the run's classes. Without it: the data the run was trained on, from
    /// its config.json (FASHION_MNIST_DIR is not read here: it names the trainers' data)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// How a folder of your own images is made into the network's input.
#[derive(Args, Debug, Clone, Default)]
pub struct ImagesArgs {
    /// For a folder of images: make each N×N pixels (padded to a square with its
    /// border's colour, then resized bilinearly), as predict makes its images [default:
    /// the images' own size, where they all have one; 28 for Fashion-MNIST]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(4..=1024))]
    pub image_size: Option<i64>,

    /// For a folder of images: 1 (grey) or 3 (colour) [default: 3 where any training
    /// image is in colour, else 1; 1 for Fashion-MNIST]
    #[arg(long, value_name = "1|3", value_parser = parse::channels)]
    pub channels: Option<i64>,

    /// For a folder of class folders alone (no train/ and test/): the share of each
    /// class held out as the test set, chosen by the file names alone, so every run
    /// tests on the same images; above 0 and below 1 [default: 0.2]
    #[arg(long, value_name = "SHARE", value_parser = parse::test_share)]
    pub test_share: Option<f64>,

    /// For a folder of images: train on the rest where some cannot be read (the Keras
    /// tutorial's first step filters them out); config.json records how many were left
    /// out, and nothing is ever deleted
    #[arg(long)]
    pub skip_unreadable: bool,
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
    pub images: ImagesArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl CommonArgs {
    /// What the flags change in the recipe: `--recipe` (the CNN's), this group's settings
    /// and `--epochs`, and the model's flags `model`.
    pub fn changes(&self, recipe: Option<crate::recipe::RecipeName>, model: CnnArgs) -> Changes {
        Changes {
            recipe,
            settings: self.train.recipe.clone(),
            model,
            epochs: self.run.epochs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelKind;
    use crate::recipe::Recipe;
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
        let cli = parse(&["--device", "cpu"]).unwrap();
        let changes = cli.common.changes(None, CnnArgs::default());
        let o = resolve(&cli.common, ModelKind::Cnn, &changes).unwrap();
        assert_eq!(o.recipe, Recipe::lesson(ModelKind::Cnn));
        assert_eq!((o.seed, o.resume), (0, None));
        assert_eq!(o.checkpoint_minutes, CHECKPOINT_MINUTES);
        assert_eq!(o.device, tch::Device::Cpu);
        // the dense net trains on one thread on the CPU, unless told otherwise
        let dense = resolve(&cli.common, ModelKind::Dense, &changes).unwrap();
        assert_eq!((o.threads(), dense.threads()), (None, Some(1)));
        assert!(parse(&["--device", "auto"]).is_ok());
    }

    #[test]
    fn the_help_of_recipe_holds_the_strong_recipe_in_words() {
        assert!(recipe_help().contains(&Recipe::strong().summary()));
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
