//! Scores a saved run on the test set and draws its pictures into the run folder.
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use fashion_tch::{cli, evaluate, flags, out};

/// Evaluate a run made by train_dense or train_cnn: test loss and accuracy, per-class
/// precision/recall/accuracy, the confusion matrix and the classes most often confused.
/// Writes predictions.svg, confusion.svg, (for a CNN) filters.svg and report.html, the
/// whole run on one page, into the run folder;
/// it can run while the run is still training, and writes none of the trainer's files.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    saved: flags::SavedRunArgs,
    /// Print the report as JSON instead of tables
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: flags::SavedDataArgs,
    #[command(flatten)]
    device: flags::DeviceArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| {
        let device = args.device.resolve()?;
        let (run, weights) = (&args.saved.run, args.saved.weights.weights);
        let found = evaluate::evaluate(run, weights, args.data.data_dir.as_deref(), device)?;
        if args.json {
            out!("{}", serde_json::to_string_pretty(&found.report)?)?;
        } else {
            let file = found.weights.display();
            let data = found.data.display();
            out!(
                "the weights of epoch {} ({file}), on the test images of {data}\n",
                found.epoch
            )?;
            out!("{}", found.report.to_text())?;
        }
        // the scores are out before the pictures, which a read-only folder refuses
        let pictures = found.pictures()?;
        let written = found
            .draw(run, &pictures)
            .context("the scores above stand; the pictures could not be drawn")?;
        let page = found
            .write_report(run, &pictures)
            .context("the scores above stand; the report page could not be written")?;
        if !args.json {
            for p in written.iter().chain([&page]) {
                out!("wrote {}", p.display())?;
            }
        }
        Ok(())
    })
}
