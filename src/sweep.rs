//! `sweep`: the lesson's experiments with layer sizes and epoch counts as one command.
//! Each size trains one run (in its own folder under the sweep folder) for the largest
//! epoch count, and the smaller counts are read from its metrics on the way. A rerun
//! skips the runs already finished and resumes the ones cut short.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::models::{comma_list, ModelSpec};
use crate::plots;
use crate::run_dir::{self, write_atomically};
use crate::train::{self, TrainOptions};

/// One size at one epoch count.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    /// The size, as the flags give it: `64` (hidden units) or `32,64` (filters).
    pub size: String,
    pub parameters: i64,
    pub epochs: u32,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// Training time up to this epoch.
    pub seconds: f64,
}

/// What a sweep trains: `models` for up to the largest of `epochs`, in folders under
/// `out`; everything else as in `base`.
pub struct SweepOptions {
    pub base: TrainOptions,
    pub models: Vec<ModelSpec>,
    pub epochs: Vec<u32>,
    pub out: PathBuf,
}

/// The size of a model as the sweep's flags give it.
pub fn size_label(model: &ModelSpec) -> String {
    match model {
        ModelSpec::Dense { hidden } => hidden.to_string(),
        ModelSpec::Cnn {
            filters, hidden, ..
        } => {
            let filters = comma_list(filters);
            match hidden {
                128 => filters,
                _ => format!("{filters} hidden {hidden}"),
            }
        }
    }
}

fn run_folder(out: &Path, model: &ModelSpec) -> PathBuf {
    let label = size_label(model).replace([',', ' '], "-");
    out.join(format!("{}-{label}", model.name()))
}

/// Runs the sweep, writes `sweep.md` (the table) and `sweep.svg` into `out`, and returns
/// the rows.
pub fn sweep(opts: &SweepOptions) -> Result<Vec<SweepRow>> {
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating the sweep folder {}", opts.out.display()))?;
    let last = opts.epochs.iter().copied().max().unwrap_or(1);
    let mut rows = Vec::new();
    for model in &opts.models {
        let dir = run_folder(&opts.out, model);
        let done = if dir.join("config.json").exists() {
            run_dir::read_metrics(&dir)?.len() as u32
        } else {
            0
        };
        if done >= last {
            println!("{}: already trained {done} epochs, skipped", dir.display());
        } else {
            if done == 0 && dir.exists() {
                // cut short before its first epoch ended: nothing to keep
                fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            train::train(&TrainOptions {
                model: model.clone(),
                epochs: last,
                out: Some(dir.clone()),
                resume: done > 0,
                ..opts.base.clone()
            })?;
        }
        let config = run_dir::read_config(&dir)?;
        let metrics = run_dir::read_metrics(&dir)?;
        for &epochs in &opts.epochs {
            let m = &metrics[epochs as usize - 1];
            rows.push(SweepRow {
                size: size_label(model),
                parameters: config.trainable_parameters,
                epochs,
                train_accuracy: m.train_accuracy,
                test_accuracy: m.test_accuracy,
                seconds: metrics[..epochs as usize].iter().map(|m| m.seconds).sum(),
            });
        }
    }
    write_atomically(&opts.out.join("sweep.md"), table(&rows).as_bytes())?;
    plots::sweep(&opts.out.join("sweep.svg"), &rows)?;
    Ok(rows)
}

/// The markdown table of a sweep: a row per size and epoch count.
pub fn table(rows: &[SweepRow]) -> String {
    let mut out = String::from(
        "| size | parameters | epochs | train accuracy | test accuracy | gap | time |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {:.4} | {:.4} | {:+.4} | {:.0} s |\n",
            r.size,
            r.parameters,
            r.epochs,
            r.train_accuracy,
            r.test_accuracy,
            r.train_accuracy - r.test_accuracy,
            r.seconds
        );
    }
    out
}
