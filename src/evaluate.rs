//! `evaluate RUN`: a saved run scored on the test set, then its pictures written into the
//! run folder: `predictions.svg`, `confusion.svg` and, for a CNN, `filters.svg`, and
//! `report.html`, the run on one page ([`crate::report`]). These are evaluate's own
//! files: it writes none that a trainer writes (`curves.svg` is the trainer's, redrawn
//! after every epoch), so it can run beside a training.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::{Kind, Tensor};

use crate::data::{self, Split, CLASS_NAMES};
use crate::models::ModelSpec;
use crate::plots::{self, FilterView, Prediction};
use crate::report;
use crate::run_dir::{self, LoadedRun, RunConfig, Weights};
use crate::score::{self, Report};

/// What `evaluate` found, and what its pictures show.
pub struct Evaluation {
    pub report: Report,
    /// The run's config.
    pub config: RunConfig,
    /// The weights it scored, and the epoch they are from.
    pub weights: PathBuf,
    pub epoch: u32,
    predictions: Vec<Prediction>,
    filters: Option<FilterView>,
}

/// Scores the `which` weights of the run in `run` on the test set of the data in
/// `data_dir` (the default places when `None`).
pub fn evaluate(
    run: &Path,
    which: Weights,
    data_dir: Option<&Path>,
    device: tch::Device,
) -> Result<Evaluation> {
    let loaded = run_dir::load_run(run, which, device)?;
    let data = data::load(data_dir, device)?;
    let logits = score::logits(&loaded.net, &data.test.images(0, data.test.len()));
    let report = Report::from_logits(&logits, &data.test.labels);
    let predicted = logits.argmax(-1, false);
    let filters = match loaded.config.model() {
        ModelSpec::Cnn { .. } => Some(filter_view(&loaded, &data.test)?),
        ModelSpec::Dense { .. } => None,
    };
    Ok(Evaluation {
        report,
        config: loaded.config,
        predictions: test_predictions(&data.test, &predicted, 25),
        filters,
        epoch: loaded.epoch,
        weights: loaded.weights,
    })
}

impl Evaluation {
    /// Draws the pictures into the run folder `run`; returns their paths.
    pub fn draw(&self, run: &Path) -> Result<Vec<PathBuf>> {
        let mut pictures = vec![run.join("predictions.svg"), run.join("confusion.svg")];
        plots::predictions(&pictures[0], &self.predictions)?;
        plots::confusion(&pictures[1], &self.report.confusion, &CLASS_NAMES)?;
        if let Some(view) = &self.filters {
            let path = run.join("filters.svg");
            plots::filters(&path, view)?;
            pictures.push(path);
        }
        Ok(pictures)
    }

    /// Writes `report.html` into the run folder `run`, with the `pictures` [`draw`] drew
    /// and the trainer's curves; returns its path.
    ///
    /// [`draw`]: Evaluation::draw
    pub fn write_report(&self, run: &Path, pictures: &[PathBuf]) -> Result<PathBuf> {
        let heading = |p: &PathBuf| match p.file_name().and_then(|n| n.to_str()) {
            Some("predictions.svg") => "The first test images",
            Some("confusion.svg") => "Confusion matrix",
            _ => "The first layer's filters",
        };
        let mut shown = vec![("Training curves", run.join("curves.svg"))];
        shown.extend(pictures.iter().map(|p| (heading(p), p.clone())));
        report::Page {
            run,
            config: &self.config,
            report: &self.report,
            weights: &self.weights,
            epoch: self.epoch,
            pictures: shown,
        }
        .write()
    }
}

/// The first `count` test images with their predicted and true classes.
pub(crate) fn test_predictions(test: &Split, predicted: &Tensor, count: i64) -> Vec<Prediction> {
    (0..count.min(test.len()))
        .map(|i| Prediction {
            pixels: pixels(&test.images(i, 1)),
            predicted: class_name(predicted.int64_value(&[i])),
            truth: class_name(test.labels.int64_value(&[i])),
        })
        .collect()
}

/// The name of class `label`.
fn class_name(label: i64) -> String {
    CLASS_NAMES[label as usize].to_string()
}

/// An image tensor (any shape of 784 values) as a flat vector on the host.
pub fn pixels(image: &Tensor) -> Vec<f32> {
    let flat = image
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .reshape([-1]);
    Vec::<f32>::try_from(&flat).expect("a float tensor converts to Vec<f32>")
}

/// The first convolution's kernels and what they make of the first test image (after
/// its batch norm, when the network has one).
fn filter_view(loaded: &LoadedRun, test: &Split) -> Result<FilterView> {
    let vars = loaded.vs.variables();
    let weight = vars
        .get("conv1.weight")
        .context("the CNN has no conv1.weight")?; // [f, 1, 3, 3]
    let bias = vars.get("conv1.bias"); // [f]; none before a batch norm
    let norm =
        ["weight", "bias", "running_mean", "running_var"].map(|v| vars.get(&format!("bn1.{v}")));
    let input = test.images(0, 1); // [1, 1, 28, 28]
    let (maps, pooled) = tch::no_grad(|| {
        let mut maps = input.conv2d(weight, bias, [1, 1], [1, 1], [1, 1], 1); // [1, f, 28, 28]
        if let [Some(w), Some(b), Some(mean), Some(var)] = norm {
            // as the network's batch norm, with tch's settings, in evaluation mode
            let config = tch::nn::BatchNormConfig::default();
            maps = maps.batch_norm(
                Some(w),
                Some(b),
                Some(mean),
                Some(var),
                false,
                config.momentum,
                config.eps,
                false,
            );
        }
        let maps = maps.relu();
        let pooled = maps.max_pool2d_default(2); // [1, f, 14, 14]
        (maps, pooled)
    });
    let per_channel = |t: &Tensor| -> Vec<Vec<f32>> {
        (0..t.size()[1]).map(|c| pixels(&t.select(1, c))).collect()
    };
    Ok(FilterView {
        input: pixels(&input),
        input_label: class_name(test.labels.int64_value(&[0])),
        kernels: (0..weight.size()[0])
            .map(|k| pixels(&weight.get(k)))
            .collect(),
        maps: per_channel(&maps),
        pooled: per_channel(&pooled),
    })
}
