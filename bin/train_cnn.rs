//! Trains the lesson's CNN: two Conv2d(3×3) → ReLU → MaxPool(2×2) blocks (32 and 64
//! filters), then Linear(3136, 128) → ReLU → Linear(128, 10); or, with `--recipe
//! strong`, a stronger small CNN the stronger way (see `fashion_tch::recipe`).
use std::process::ExitCode;

use clap::{error::ErrorKind, CommandFactory, Parser};
use fashion_tch::models::{CnnArgs, ModelKind};
use fashion_tch::{cli, recipe::RecipeName};

/// Train the Keras lesson's convolutional network on Fashion-MNIST (10 epochs; the lesson
/// reaches 0.91), or with --recipe strong a stronger one
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// How to train: lesson (the lesson's network and settings) or strong [default: lesson]
    #[arg(long, value_enum, long_help = RecipeName::help())]
    recipe: Option<RecipeName>,
    #[command(flatten)]
    model: CnnArgs,
    #[command(flatten)]
    common: cli::CommonArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let flags = args.common.overrides(args.recipe, &args.model);
    if args.common.run.resume.is_none() {
        if let Err(msg) = flags.recipe(ModelKind::Cnn) {
            Cli::command()
                .error(ErrorKind::ArgumentConflict, msg)
                .exit()
        }
    }
    cli::train_and_report(&args.common, ModelKind::Cnn, &flags)
}
