//! `compare RUN…`: several runs side by side, as a markdown table of final figures and a
//! chart of test accuracy per epoch (the lesson's closing comparison).

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};

use crate::plots::{self, Line};
use crate::run_dir::{self, EpochMetrics, RunConfig};

/// One run's folder (as given), config and metrics.
pub struct RunSummary {
    pub name: String,
    pub config: RunConfig,
    pub metrics: Vec<EpochMetrics>,
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
                name: run.display().to_string(),
                config: run_dir::read_config(run)?,
                metrics,
            })
        })
        .collect()
}

/// The markdown table: a row per run with its model, epochs, final and best test
/// accuracy, final train accuracy, and training time.
pub fn table(runs: &[RunSummary]) -> String {
    let mut out = String::from(
        "| run | model | parameters | epochs | test accuracy | best (epoch) | train accuracy | time |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let last = r
            .metrics
            .last()
            .expect("read_runs keeps runs with an epoch");
        let best = r
            .metrics
            .iter()
            .max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy))
            .expect("read_runs keeps runs with an epoch");
        let seconds: f64 = r.metrics.iter().map(|m| m.seconds).sum();
        out += &format!(
            "| {} | {} | {} | {} | {:.4} | {:.4} ({}) | {:.4} | {:.0} s |\n",
            r.name,
            match r.config.recipe.name.as_str() {
                "lesson" => r.config.model().name().to_string(),
                recipe => format!("{} ({recipe} recipe)", r.config.model().name()),
            },
            r.config.trainable_parameters,
            last.epoch,
            last.test_accuracy,
            best.test_accuracy,
            best.epoch,
            last.train_accuracy,
            seconds
        );
    }
    out
}

/// Writes the chart of test accuracy per epoch to `path`.
pub fn chart(path: &Path, runs: &[RunSummary]) -> Result<()> {
    let lines: Vec<Line> = runs
        .iter()
        .map(|r| Line {
            label: r.name.clone(),
            points: r
                .metrics
                .iter()
                .map(|m| (f64::from(m.epoch), m.test_accuracy))
                .collect(),
        })
        .collect();
    plots::compare(path, &lines)
}
