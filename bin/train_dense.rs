//! Trains the lesson's dense network: Flatten → Linear(784, 128) → ReLU → Linear(128, 10).
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::cli;
use fashion_tch::models::{DenseArgs, ModelKind};

/// Train the Keras lesson's dense network on Fashion-MNIST (5 epochs; the lesson reaches 0.878).
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    model: DenseArgs,
    #[command(flatten)]
    common: cli::CommonArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let flags = args.common.overrides(None, &args.model);
    cli::train_and_report(&args.common, ModelKind::Dense, &flags)
}
