//! Scores a saved run on the test set and draws its pictures into the run folder.
#![warn(clippy::too_many_lines)]
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::{cli, evaluate, out};

/// Evaluate a run made by train_dense or train_cnn: test loss and accuracy, per-class
/// precision/recall/accuracy, the confusion matrix and the classes most often confused.
/// Writes predictions.svg, confusion.svg and (for a CNN) filters.svg into the run folder.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The run folder (holding config.json and model.safetensors)
    run: PathBuf,
    /// Print the report as JSON instead of tables
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: cli::DataArgs,
    #[command(flatten)]
    device: cli::DeviceArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| {
        let device = args.device.resolve()?;
        let (report, pictures) =
            evaluate::evaluate(&args.run, args.data.data_dir.as_deref(), device)?;
        if args.json {
            out!("{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            out!("{}", report.to_text())?;
            for p in pictures {
                out!("wrote {}", p.display())?;
            }
        }
        Ok(())
    })
}
