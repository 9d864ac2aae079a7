//! `evaluate RUN`: a saved run scored on the test set, then its pictures written into the
//! run folder: `predictions.svg`, `confusion.svg` and, for a CNN, `filters.svg`, and
//! `report.html`, the run on one page (`report.rs`). These are evaluate's own
//! files: it writes none that a trainer writes (`curves.svg` is the trainer's, redrawn
//! after every epoch), so it can run beside a training. It reads none of the folder's
//! pictures either: the page's are drawn here, the curves from `metrics.csv`'s numbers.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::{Kind, Tensor};

use crate::data::{Input, Split};
use crate::files;
use crate::models::ModelSpec;
use crate::plots::{self, FilterView, Image, Prediction};
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
    /// The folder of the test images it scored (the run's own, or `--data-dir`).
    pub data: PathBuf,
    /// The finished epochs' rows of `metrics.csv`.
    history: Vec<run_dir::EpochMetrics>,
    predictions: Vec<Prediction>,
    filters: Option<FilterView>,
}

/// One of evaluate's pictures: its file in the run folder, its heading on the page, and
/// its SVG.
pub struct Picture {
    pub file: &'static str,
    heading: &'static str,
    svg: String,
}

/// Scores the `which` weights of the run in `run` on the test set of the data in
/// `data_dir` (the run's own when `None`: `RunConfig::data`).
pub fn evaluate(
    run: &Path,
    which: Weights,
    data_dir: Option<&Path>,
    device: tch::Device,
) -> Result<Evaluation> {
    let loaded = run_dir::load_run(run, which, device)?;
    let data = loaded.config.test_data(run, data_dir, device)?;
    let logits = score::logits(&loaded.net, &data.test.images(0, data.test.len()));
    let input = &loaded.config.input;
    let report = Report::from_logits(&logits, &data.test.labels, &input.classes);
    let predicted = logits.argmax(-1, false);
    let filters = match loaded.config.model() {
        ModelSpec::Cnn { .. } => Some(filter_view(&loaded, &data.test)?),
        ModelSpec::Dense { .. } => None,
    };
    Ok(Evaluation {
        report,
        predictions: test_predictions(&data.test, &predicted, input, 25),
        config: loaded.config,
        filters,
        epoch: loaded.epoch,
        weights: loaded.weights,
        data: data.dir.clone(),
        history: loaded.history,
    })
}

impl Evaluation {
    /// Draws evaluate's pictures: the predictions, the confusion matrix and, for a CNN,
    /// the filters.
    pub fn pictures(&self) -> Result<Vec<Picture>> {
        let mut pictures = vec![
            Picture {
                file: "predictions.svg",
                heading: "The first test images",
                svg: plots::predictions(&self.predictions)?,
            },
            Picture {
                file: "confusion.svg",
                heading: "Confusion matrix",
                svg: plots::confusion(&self.report.confusion, &self.config.input.classes)?,
            },
        ];
        if let Some(view) = &self.filters {
            pictures.push(Picture {
                file: "filters.svg",
                heading: "The first layer's filters",
                svg: plots::filters(view)?,
            });
        }
        Ok(pictures)
    }

    /// Writes `pictures` into the run folder `run`; returns their paths.
    pub fn draw(&self, run: &Path, pictures: &[Picture]) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        for picture in pictures {
            let path = run.join(picture.file);
            files::write_atomically(&path, picture.svg.as_bytes())?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Writes `report.html` into the run folder `run`, with the training curves (drawn
    /// from the run's numbers) and `pictures`; returns its path.
    pub fn write_report(&self, run: &Path, pictures: &[Picture]) -> Result<PathBuf> {
        let curves = run_dir::curves(&self.config, &self.history)?;
        let mut shown = vec![("Training curves", curves.as_str())];
        shown.extend(pictures.iter().map(|p| (p.heading, p.svg.as_str())));
        report::Page {
            run,
            config: &self.config,
            report: &self.report,
            weights: &self.weights,
            epoch: self.epoch,
            data: &self.data,
            pictures: shown,
        }
        .write()
    }
}

/// The first `count` test images with their predicted and true classes, named as
/// `input` names them.
pub(crate) fn test_predictions(
    test: &Split,
    predicted: &Tensor,
    input: &Input,
    count: i64,
) -> Vec<Prediction> {
    (0..count.min(test.len()))
        .map(|i| Prediction {
            image: image(&test.images(i, 1)),
            predicted: input.class(predicted.int64_value(&[i])).to_string(),
            truth: input.class(test.labels.int64_value(&[i])).to_string(),
        })
        .collect()
}

/// An image `[1, C, S, S]` (or `[C, S, S]`) to draw.
fn image(image: &Tensor) -> Image {
    let channels = image.size().iter().rev().nth(2).copied().unwrap_or(1) as usize;
    Image {
        values: pixels(image),
        channels,
    }
}

/// An image tensor (any shape) as a flat vector on the host.
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
        .context("the CNN has no conv1.weight")?; // [f, C, 3, 3]
    let bias = vars.get("conv1.bias"); // [f]; none before a batch norm
    let norm =
        ["weight", "bias", "running_mean", "running_var"].map(|v| vars.get(&format!("bn1.{v}")));
    let input = test.images(0, 1); // [1, C, S, S]
    let (maps, pooled) = tch::no_grad(|| {
        let mut maps = input.conv2d(weight, bias, [1, 1], [1, 1], [1, 1], 1); // [1, f, S, S]
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
        let pooled = maps.max_pool2d_default(2); // [1, f, S/2, S/2]
        (maps, pooled)
    });
    let per_channel = |t: &Tensor| -> Vec<Vec<f32>> {
        (0..t.size()[1]).map(|c| pixels(&t.select(1, c))).collect()
    };
    let classes = &loaded.config.input;
    Ok(FilterView {
        input: image(&input),
        input_label: classes.class(test.labels.int64_value(&[0])).to_string(),
        kernels: (0..weight.size()[0])
            .map(|k| pixels(&weight.get(k)))
            .collect(),
        maps: per_channel(&maps),
        pooled: per_channel(&pooled),
    })
}
