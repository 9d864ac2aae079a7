//! Classifies images, or test-set images by index, with a saved run's network.
#![warn(clippy::too_many_lines)]
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::ensure;
use clap::Parser;
use fashion_tch::data::{self, CLASS_NAMES};
use fashion_tch::predict::{self, Invert};
use fashion_tch::{cli, out, run_dir};
use tch::Tensor;

/// Predict the class of PNG or JPEG images (any size or colour) with a run made by
/// train_dense or train_cnn, printing the top 3 classes and their probabilities.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// The run folder (holding config.json and model.safetensors)
    run: PathBuf,
    /// PNG or JPEG files to classify
    images: Vec<PathBuf>,
    /// Test-set images to classify instead, as A..B (B excluded) or one index; their true
    /// class is shown beside the prediction
    #[arg(long, value_name = "A..B", value_parser = predict::parse_range)]
    test_index: Option<std::ops::Range<i64>>,
    /// Flip dark and light: auto flips an image whose border is mostly light (the network
    /// saw light garments on a dark background)
    #[arg(long, default_value = "auto", value_name = "auto|yes|no")]
    invert: Invert,
    #[command(flatten)]
    data: cli::DataArgs,
    #[command(flatten)]
    device: cli::DeviceArgs,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| {
        ensure!(
            !args.images.is_empty() || args.test_index.is_some(),
            "give image files to classify, or --test-index A..B"
        );
        let device = args.device.resolve()?;
        let run = run_dir::load_run(&args.run, device)?;
        for path in &args.images {
            let pixels = predict::load_image(path, args.invert)?;
            let image = Tensor::from_slice(&pixels)
                .view([1, 1, 28, 28])
                .to_device(device);
            let top = &predict::top_k(&run.net, &image, 3)[0];
            out!("{}: {}", path.display(), predict::describe(top))?;
        }
        if let Some(range) = &args.test_index {
            let test = data::load(args.data.data_dir.as_deref(), device)?.test;
            ensure!(
                range.end <= test.len(),
                "--test-index {}..{}: the test set has {} images (0..{})",
                range.start,
                range.end,
                test.len(),
                test.len()
            );
            let images = test.images(range.start, range.end - range.start);
            for (i, top) in range.clone().zip(predict::top_k(&run.net, &images, 3)) {
                let truth = test.labels.int64_value(&[i]) as usize;
                let mark = if top[0].0 == truth { "right" } else { "WRONG" };
                out!(
                    "test image {i} (a {}): {}  [{mark}]",
                    CLASS_NAMES[truth],
                    predict::describe(&top)
                )?;
            }
        }
        Ok(())
    })
}
