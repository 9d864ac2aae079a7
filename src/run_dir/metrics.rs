//! `metrics.csv`, a row per finished epoch, flushed as it goes, and the training curves
//! drawn from it (`curves.svg`, and the page's).

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::{read_config, RunConfig};
use crate::files::{read_regular_text, write_atomically, SMALL_FILE};
use crate::models::ModelSpec;
use crate::plots::{self, Line};

/// One epoch's figures, a row of `metrics.csv`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    pub epoch: u32,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
    /// Accuracy on the images held out of training (the strong recipe's), the figure to
    /// choose settings on.
    pub validation_accuracy: Option<f64>,
}

pub(super) const METRICS_HEADER: &str =
    "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds";
/// The extra column of a run with a validation split.
pub(super) const VALIDATION_COLUMN: &str = ",validation_accuracy";

/// A row per finished epoch.
pub const METRICS: &str = "metrics.csv";
pub(super) fn metrics_row(m: &EpochMetrics) -> String {
    let validation = m
        .validation_accuracy
        .map_or(String::new(), |a| format!(",{a:.6}"));
    format!(
        "{},{:.6},{:.6},{:.6},{:.6},{:.3}{validation}\n",
        m.epoch, m.train_loss, m.train_accuracy, m.test_loss, m.test_accuracy, m.seconds
    )
}

/// Reads a run's `metrics.csv`. A last line without its line end is a row cut off by a
/// crash while it was written, and is left out.
pub fn read_metrics(run: &Path) -> Result<Vec<EpochMetrics>> {
    let path = run.join(METRICS);
    let text = read_regular_text(&path, SMALL_FILE)?;
    let whole = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let mut rows = Vec::new();
    for (i, line) in whole.lines().enumerate().skip(1) {
        let bad = || {
            format!(
                "{} line {} is not the row of epoch {}: {line:?}",
                path.display(),
                i + 1,
                rows.len() + 1
            )
        };
        let f: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(bad)?;
        if (f.len() != 6 && f.len() != 7) || f[0] != (rows.len() + 1) as f64 {
            bail!(bad());
        }
        rows.push(EpochMetrics {
            epoch: f[0] as u32,
            train_loss: f[1],
            train_accuracy: f[2],
            test_loss: f[3],
            test_accuracy: f[4],
            seconds: f[5],
            validation_accuracy: f.get(6).copied(),
        });
    }
    Ok(rows)
}

/// How a recipe's training batches differ from what is scored, in a few words each.
fn as_trained(recipe: &crate::recipe::Recipe) -> Vec<&'static str> {
    let dropout = matches!(recipe.model, ModelSpec::Cnn { dropout, .. } if dropout > 0.0);
    [
        (recipe.augment, "augmented"),
        (dropout, "dropout on"),
        (recipe.label_smoothing > 0.0, "smoothed labels"),
    ]
    .into_iter()
    .filter_map(|(on, what)| on.then_some(what))
    .collect()
}

/// Redraws a run's `curves.svg` from its finished epochs ([`curves`]).
pub fn draw_curves(run: &Path, history: &[EpochMetrics]) -> Result<()> {
    let config = read_config(run)?;
    write_atomically(
        &run.join(super::CURVES),
        curves(&config, history)?.as_bytes(),
    )
}

/// The training curves of a run made with `config`, from its finished epochs `history`,
/// as SVG: loss and accuracy, train and test, and validation accuracy where images were
/// held out. Where the training batches were not what is scored (augmented, dropout on,
/// labels smoothed), the train lines' label says so: their loss sits above the test loss
/// by design, not by a bug.
pub fn curves(config: &RunConfig, history: &[EpochMetrics]) -> Result<String> {
    let line = |label: &str, get: fn(&EpochMetrics) -> Option<f64>| Line {
        label: label.into(),
        points: history
            .iter()
            .filter_map(|m| Some((f64::from(m.epoch), get(m)?)))
            .collect(),
    };
    let train = match as_trained(&config.recipe) {
        how if how.is_empty() => "train".to_string(),
        how => format!("train ({})", how.join(", ")),
    };
    let loss = [
        line(&train, |m| Some(m.train_loss)),
        line("test", |m| Some(m.test_loss)),
    ];
    let mut accuracy = vec![
        line(&train, |m| Some(m.train_accuracy)),
        line("test", |m| Some(m.test_accuracy)),
        line("validation", |m| m.validation_accuracy),
    ];
    accuracy.retain(|l| !l.points.is_empty());
    plots::curves(&loss, &accuracy)
}
