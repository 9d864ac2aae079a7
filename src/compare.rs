//! `compare RUN…`: several runs side by side, as a markdown table of final figures and a
//! chart of test accuracy per epoch (the lesson's closing comparison).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};

use crate::plots::{self, Line};
use crate::recipe::RecipeName;
use crate::run_dir::{self, EpochMetrics, RunConfig, Weights};

/// The chart's file where `--out` is not given: in the working folder.
pub const FILE: &str = "compare.svg";

/// One run's folder (as given, which names it in the table and chart), config and
/// metrics.
pub struct RunSummary {
    pub path: PathBuf,
    pub config: RunConfig,
    pub metrics: Vec<EpochMetrics>,
}

impl RunSummary {
    /// The row of the epoch whose weights `which` names.
    pub fn row(&self, which: Weights) -> Result<&EpochMetrics> {
        let (weights, epoch) = which.choose(&self.path, &self.config, self.metrics.len() as u32)?;
        self.metrics
            .iter()
            .find(|m| m.epoch == epoch)
            .with_context(|| {
                format!(
                    "{} holds epoch {epoch}, which metrics.csv in {} has no row for",
                    weights.display(),
                    self.path.display()
                )
            })
    }
}

/// Reads the runs; each must have at least one finished epoch.
pub fn read_runs(runs: &[PathBuf]) -> Result<Vec<RunSummary>> {
    runs.iter()
        .map(|run| {
            let metrics = run_dir::read_metrics(run)?;
            ensure!(
                !metrics.is_empty(),
                "{} has no finished epoch yet",
                run.display()
            );
            Ok(RunSummary {
                path: run.clone(),
                config: run_dir::read_config(run)?,
                metrics,
            })
        })
        .collect()
}

/// The markdown table: a row per run with its model, the epochs it trained, and the
/// figures of the epoch whose weights `which` names (the best on validation, or the
/// last): test, validation and train accuracy; then its whole training time.
pub fn table(runs: &[RunSummary], which: Weights) -> Result<String> {
    let mut out = String::from(
        "| run | model | parameters | epochs | weights of epoch | test accuracy | \
         validation accuracy | train accuracy | time |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let m = r.row(which)?;
        let seconds: f64 = r.metrics.iter().map(|m| m.seconds).sum();
        let model = match r.config.recipe.name {
            RecipeName::Lesson => r.config.model().name().to_string(),
            recipe => format!("{} ({recipe} recipe)", r.config.model().name()),
        };
        out += &format!(
            "| {} | {model} | {} | {} | {} | {:.4} | {} | {:.4} | {seconds:.0} s |\n",
            r.path.display(),
            r.config.trainable_parameters,
            r.metrics.len(),
            m.epoch,
            m.test_accuracy,
            m.validation_accuracy
                .map_or("–".to_string(), |v| format!("{v:.4}")),
            m.train_accuracy,
        );
    }
    Ok(out)
}

/// Writes the chart of test accuracy per epoch to `path`.
pub fn chart(path: &Path, runs: &[RunSummary]) -> Result<()> {
    let lines: Vec<Line> = runs
        .iter()
        .map(|r| Line {
            label: crate::progress::printable(&r.path.to_string_lossy()).into_owned(),
            points: r
                .metrics
                .iter()
                .map(|m| (f64::from(m.epoch), m.test_accuracy))
                .collect(),
        })
        .collect();
    crate::files::write_atomically(path, plots::compare(&lines)?.as_bytes())
}
