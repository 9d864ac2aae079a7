//! Trains the lesson's dense network: Flatten → Linear(784, 128) → ReLU → Linear(128, 10)
//! (`fashion_tch::lesson::Dense`).
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::flags::{CommonArgs, DenseArgs};
use fashion_tch::{cli, models::ModelKind};

/// Train the Keras lesson's dense network on Fashion-MNIST (5 epochs; the lesson reaches 0.878).
#[derive(Parser)]
#[command(name = "train_dense", version)]
struct Cli {
    #[command(flatten)]
    model: DenseArgs,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let changes = args.common.changes(None, (&args.model).into());
    cli::train_and_report::<Cli>(&args.common, ModelKind::Dense, &changes)
}
