//! Trains the lesson's CNN: two Conv2d(3×3) → ReLU → MaxPool(2×2) blocks (32 and 64
//! filters), then Linear(3136, 128) → ReLU → Linear(128, 10); or, with `--recipe
//! strong`, a stronger small CNN the stronger way (see `fashion_tch::recipe`).
#![warn(clippy::too_many_lines)]
use std::process::ExitCode;

use clap::{error::ErrorKind, CommandFactory, Parser};
use fashion_tch::{cli, models::ModelKind, recipe::Recipe, recipe::RecipeFlags};

/// Train the Keras lesson's convolutional network on Fashion-MNIST (10 epochs; the lesson
/// reaches 0.91), or with --recipe strong a stronger one (32 epochs)
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// lesson: the lesson's network and settings. strong: one convolution in the first
    /// block and two in each later one, batch norm, dropout 0.1, 256 hidden units, random
    /// 2-pixel shifts and mirroring of each batch, labels smoothed by 0.1, AdamW (weight
    /// decay 0.05) with a one-cycle schedule peaking at --lr, batch 128, 32 epochs, the
    /// last 5,000 training images held out for validation (--validation 0 trains on all
    /// of them), and each image scored with its mirror image [default: lesson]
    #[arg(long, value_parser = Recipe::NAMES)]
    recipe: Option<String>,
    /// Filters of each convolution block, e.g. 32,64 (one to four blocks)
    /// [default: 32,64]
    // the full path keeps clap from reading Vec as "the flag repeated"
    #[arg(long, value_parser = cli::parse_filters)]
    filters: Option<std::vec::Vec<i64>>,
    /// Convolutions in each block, each followed by its ReLU (and batch norm): one count
    /// for every block, or one per block, e.g. 1,2 [default: 1; 1,2 with --recipe strong]
    #[arg(long, value_parser = cli::parse_convs)]
    convs: Option<std::vec::Vec<i64>>,
    /// Score each image as the average of the network's logits for it and for its mirror
    /// image (test-time augmentation) in validation, testing, evaluate, predict and
    /// export [default: false; true with --recipe strong]
    #[arg(long, value_name = "true|false")]
    mirror_average: Option<bool>,
    /// Units in the hidden dense layer [default: 128; 256 with --recipe strong]
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    hidden: Option<i64>,
    #[command(flatten)]
    common: cli::CommonArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let flags = RecipeFlags {
        recipe: args.recipe,
        hidden: args.hidden,
        filters: args.filters,
        convs: args.convs,
        mirror_average: args.mirror_average,
        ..args.common.recipe_flags()
    };
    if args.common.run.resume.is_none() {
        if let Err(msg) = flags.recipe(ModelKind::Cnn) {
            Cli::command()
                .error(ErrorKind::ArgumentConflict, msg)
                .exit()
        }
    }
    cli::train_and_report(&args.common, ModelKind::Cnn, &flags)
}
