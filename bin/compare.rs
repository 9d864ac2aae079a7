//! Compares runs: a markdown table of their figures and a chart of test accuracy per epoch.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::{cli, compare, flags, out, run_dir};

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
    weights: flags::WeightsArgs,
    /// Where to write the chart [default: compare.svg, replaced by each compare]; an
    /// existing file only with --force, and never one of a run folder's own files
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace the --out file if it exists
    #[arg(long, requires = "out")]
    force: bool,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| {
        let out = match &args.out {
            Some(out) => {
                run_dir::refuse_to_replace(out, "--out", args.force)?;
                out.clone()
            }
            None => PathBuf::from(compare::FILE),
        };
        let runs = compare::read_runs(&args.runs)?;
        out!("{}", compare::table(&runs, args.weights.weights)?)?;
        compare::chart(&out, &runs)?;
        out!("wrote {}", out.display())?;
        Ok(())
    })
}
