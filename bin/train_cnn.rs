//! Trains the lesson's CNN: two Conv2d(3×3) → ReLU → MaxPool(2×2) blocks (32 and 64
//! filters), then Linear(3136, 128) → ReLU → Linear(128, 10) (`fashion_tch::lesson::Cnn`);
//! or, with `--recipe strong`, a stronger small CNN the stronger way (see
//! `fashion_tch::recipe`).
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::flags::{recipe_help, CnnArgs, CommonArgs};
use fashion_tch::{cli, models::ModelKind, recipe::RecipeName};

/// Train the Keras lesson's convolutional network on Fashion-MNIST (10 epochs; the lesson
/// reaches 0.91), or with --recipe strong a stronger one
#[derive(Parser)]
#[command(name = "train_cnn", version)]
struct Cli {
    /// How to train: lesson (the lesson's network and settings) or strong [default: lesson]
    #[arg(long, value_enum, long_help = recipe_help())]
    recipe: Option<RecipeName>,
    #[command(flatten)]
    model: CnnArgs,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let changes = args.common.changes(args.recipe, args.model.clone());
    cli::train_and_report::<Cli>(&args.common, ModelKind::Cnn, &changes)
}
