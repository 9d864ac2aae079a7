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
    /// Filters of the two convolutions, as FIRST,SECOND
    #[arg(long, default_value = "32,64", value_parser = cli::parse_filters)]
    filters: [i64; 2],
    /// Units in the hidden dense layer
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(i64).range(1..))]
    hidden: i64,
    #[command(flatten)]
    common: cli::CommonArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let model = ModelSpec::Cnn {
        filters: args.filters,
        hidden: args.hidden,
    };
    cli::train_and_report(&args.common, model, 10)
}
