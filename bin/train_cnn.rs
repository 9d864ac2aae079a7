//! Trains the lesson's CNN: two Conv2d(3×3) → ReLU → MaxPool(2×2) blocks (32 and 64
//! filters), then Linear(3136, 128) → ReLU → Linear(128, 10).
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::{cli, models::ModelSpec};

/// Train the Keras lesson's convolutional network on Fashion-MNIST (10 epochs; the lesson
/// reaches 0.91).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Filters of the two convolutions, as FIRST,SECOND [default: 32,64]
    #[arg(long, value_parser = cli::parse_filters)]
    filters: Option<[i64; 2]>,
    /// Units in the hidden dense layer [default: 128]
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    hidden: Option<i64>,
    #[command(flatten)]
    common: cli::CommonArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let model = ModelSpec::Cnn {
        filters: args.filters.unwrap_or([32, 64]),
        hidden: args.hidden.unwrap_or(128),
    };
    cli::train_and_report(
        &args.common,
        model,
        args.filters.is_some() || args.hidden.is_some(),
        10,
    )
}
