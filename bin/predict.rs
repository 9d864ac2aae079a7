//! Classifies image files and folders, or test-set images by index, with a saved run's
//! network.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, ensure, Result};
use clap::Parser;
use fashion_tch::predict::{self, Invert, Record};
use fashion_tch::progress::printable;
use fashion_tch::{cli, flags, out, run_dir};

/// Predict the class of PNG or JPEG images (any size or colour), given as files or
/// folders, with a run made by train_dense or train_cnn: the top 3 classes and their
/// probabilities for each. A file that is not a readable image is reported by name and
/// the others are still classified; the exit status is then 1.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    saved: flags::SavedRunArgs,
    /// PNG or JPEG files, and folders of them (their files, not their subfolders)
    images: Vec<PathBuf>,
    /// Test-set images to classify instead, as A..B (B excluded) or one index; their true
    /// class is shown beside the prediction
    #[arg(long, allow_negative_numbers = true, value_name = "A..B", value_parser = predict::parse_range)]
    test_index: Option<std::ops::Range<i64>>,
    /// Flip dark and light: auto flips an image whose border is mostly light (the network
    /// saw light garments on a dark background)
    #[arg(long, default_value = "auto", value_name = "auto|yes|no")]
    invert: Invert,
    /// Print one JSON array for scripts: per file its top classes and probabilities, or
    /// the error that kept it from being read
    #[arg(long, conflicts_with = "test_index")]
    json: bool,
    #[command(flatten)]
    data: flags::SavedDataArgs,
    #[command(flatten)]
    device: flags::DeviceArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| {
        ensure!(
            !args.images.is_empty() || args.test_index.is_some(),
            "give image files or folders to classify, or --test-index A..B"
        );
        let device = args.device.resolve()?;
        let run = run_dir::load_run(&args.saved.run, args.saved.weights.weights, device)?;
        let files = predict::image_files(&args.images)?;
        ensure!(
            !files.is_empty() || args.test_index.is_some(),
            "found no files to classify in {}",
            args.images
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let input = &run.config.input;
        let records = predict::classify_files(&run.net, input, &files, args.invert, device, 3);
        report(&records, args.json)?;
        if let Some(range) = &args.test_index {
            test_images(&args, &run, range.clone(), device)?;
        }
        let failed = records.iter().filter(|r| r.error.is_some()).count();
        if failed > 0 {
            bail!(
                "{failed} of {} files could not be classified",
                records.len()
            );
        }
        Ok(())
    })
}

/// Prints the records: a line each (errors on stderr), or one JSON array.
fn report(records: &[Record], json: bool) -> Result<()> {
    if json {
        return Ok(out!("{}", serde_json::to_string_pretty(records)?)?);
    }
    for r in records {
        match (&r.top, &r.error) {
            // one line a file, whatever its name holds
            (Some(top), _) => out!("{}: {}", printable(&r.file), predict::describe(top))?,
            (None, error) => eprintln!(
                "error: {}",
                printable(error.as_deref().unwrap_or("unreadable"))
            ),
        }
    }
    Ok(())
}

/// Classifies test-set images `range`, beside their true classes.
fn test_images(
    args: &Cli,
    run: &run_dir::LoadedRun,
    range: std::ops::Range<i64>,
    device: tch::Device,
) -> Result<()> {
    let data_dir = args.data.data_dir.as_deref();
    let test = (run.config.test_data(&args.saved.run, data_dir, device)?).test;
    ensure!(
        range.end <= test.len(),
        "--test-index {}..{}: the test set has {} images (0..{})",
        range.start,
        range.end,
        test.len(),
        test.len()
    );
    let images = test.images(range.start, range.end - range.start);
    let input = &run.config.input;
    for (i, top) in range.zip(predict::top_k(&run.net, &images, 3)) {
        let truth = test.labels.int64_value(&[i]);
        let mark = if top[0].0 as i64 == truth {
            "right"
        } else {
            "WRONG"
        };
        out!(
            "test image {i} (labelled {}): {}  [{mark}]",
            input.class(truth),
            predict::describe(&predict::guesses(top, input))
        )?;
    }
    Ok(())
}
