//! Trains the lesson's dense network: Flatten → Linear(784, 128) → ReLU → Linear(128, 10)
//! (`fashion_tch::lesson::Dense`).
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::flags::{CommonArgs, DenseArgs};
use fashion_tch::{cli, models::ModelKind};

/// Train the Keras lesson's dense network on Fashion-MNIST (5 epochs; the lesson reaches 0.878).
#[derive(Parser)]
#[command(name = "train_dense", version)]
// the strong recipe's settings, which the dense network has no recipe for: still read,
// for their usage error, but not offered
#[command(mut_arg("weight_decay", |a| a.hide(true)))]
#[command(mut_arg("alternate_flips", |a| a.hide(true)))]
#[command(mut_arg("cutout", |a| a.hide(true)))]
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
