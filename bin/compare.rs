//! Compares runs: a markdown table of their figures and a chart of test accuracy per epoch.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::{cli, compare, out, run_dir};

/// Compare runs made by train_dense and train_cnn: prints a markdown table of their
/// figures (of the epoch --weights names) and draws their test accuracy per epoch on one
/// chart.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Run folders to compare
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    #[command(flatten)]
    weights: cli::WeightsArgs,
    /// Where to write the chart
    #[arg(long, default_value = "compare.svg", value_name = "FILE")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| {
        run_dir::refuse_trainer_file(&args.out, "--out")?;
        let runs = compare::read_runs(&args.runs)?;
        out!("{}", compare::table(&runs, args.weights.weights)?)?;
        compare::chart(&args.out, &runs)?;
        out!("wrote {}", args.out.display())?;
        Ok(())
    })
}
