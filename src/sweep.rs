//! `sweep`: the lesson's experiments with layer sizes and epoch counts as one command.
//! Each size trains one run (in its own folder under the sweep folder) for the largest
//! epoch count, and the smaller counts are read from its metrics on the way. A rerun of
//! the same command skips the runs already finished and continues the others exactly;
//! a rerun with other settings is refused, so one table never mixes them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::files::{is_temporary_of, write_atomically};
use crate::models::{comma_list, ModelSpec};
use crate::plots::{self, SweepLine};
use crate::recipe::Recipe;
use crate::run_dir::{self, checkpoint, lock, resume, RunLock};
use crate::train::{self, Interrupted, Resume, TrainOptions};

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
    /// Continue runs that have no checkpoint (made before checkpoints existed) from their
    /// weights, with Adam started afresh.
    pub fresh_optimizer: bool,
}

impl SweepOptions {
    /// The recipe of the run for `model`.
    fn recipe(&self, model: &ModelSpec) -> Recipe {
        Recipe {
            model: model.clone(),
            epochs: self.epochs.iter().copied().max().unwrap_or(1),
            ..self.base.recipe.clone()
        }
    }
}

/// The size of a model as the sweep's flags give it.
pub(crate) fn size_label(model: &ModelSpec) -> String {
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
    if let Some(n) = opts.base.recipe.early_stop {
        bail!(
            "--early-stop {n}: a sweep reads every run at each of its epoch counts, so its \
             runs must not stop early"
        );
    }
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating the sweep folder {}", opts.out.display()))?;
    refuse_other_settings(opts)?;
    let mut rows = Vec::new();
    for model in &opts.models {
        let dir = run_folder(&opts.out, model);
        train_to_the_end(opts, model, &dir)?;
        rows.extend(rows_of(opts, model, &dir)?);
    }
    write_atomically(&opts.out.join("sweep.md"), table(&rows).as_bytes())?;
    chart(&opts.out.join("sweep.svg"), &rows)?;
    Ok(rows)
}

/// Draws `sweep.svg`: a line per epoch count across the sizes.
fn chart(path: &Path, rows: &[SweepRow]) -> Result<()> {
    let mut sizes: Vec<String> = Vec::new();
    let mut epochs: Vec<u32> = Vec::new();
    for r in rows {
        if !sizes.contains(&r.size) {
            sizes.push(r.size.clone());
        }
        if !epochs.contains(&r.epochs) {
            epochs.push(r.epochs);
        }
    }
    let lines: Vec<SweepLine> = epochs
        .iter()
        .map(|&e| {
            let at = |get: fn(&SweepRow) -> f64| -> Vec<f64> {
                rows.iter().filter(|r| r.epochs == e).map(get).collect()
            };
            SweepLine {
                label: format!("{e} epoch{}", if e == 1 { "" } else { "s" }),
                test: at(|r| r.test_accuracy),
                train: at(|r| r.train_accuracy),
            }
        })
        .collect();
    plots::sweep(path, &sizes, &lines)
}

/// Errs, naming every difference, when a run already in the sweep folder was trained
/// with other settings than this sweep's (more epochs aside).
fn refuse_other_settings(opts: &SweepOptions) -> Result<()> {
    let mut found = Vec::new();
    for model in &opts.models {
        let dir = run_folder(&opts.out, model);
        if dir.join("config.json").exists() {
            let differences = resume::differences(&dir, &opts.recipe(model), opts.base.seed)?;
            if !differences.is_empty() {
                found.push(format!("{} has {}", dir.display(), differences.join("; ")));
            }
        }
    }
    if !found.is_empty() {
        bail!(
            "the sweep folder {} holds runs made with other settings, and one table must not \
             mix them: {}. Rerun with the settings they were made with, or give another --out",
            opts.out.display(),
            found.join(". ")
        );
    }
    Ok(())
}

/// Trains the run for `model` in `dir` to the sweep's last epoch count: from the start,
/// from where it stopped, or not at all when it is there.
fn train_to_the_end(opts: &SweepOptions, model: &ModelSpec, dir: &Path) -> Result<()> {
    let recipe = opts.recipe(model);
    let started = dir.join("config.json").exists()
        && (dir.join(checkpoint::FILE).exists() || dir.join(run_dir::WEIGHTS).exists());
    if dir.exists() && !started {
        clear_unstarted(dir)?;
    }
    let resume = match started {
        false => None,
        true => {
            let fresh = opts.fresh_optimizer;
            let done = resume::finished_epochs(dir, fresh)?;
            if done >= recipe.epochs {
                let done = crate::progress::count(done, "epoch");
                crate::out!("{}: already trained {done}, skipped", dir.display())?;
                return Ok(());
            }
            Some(if fresh {
                Resume::FreshOptimizer
            } else {
                Resume::Exactly
            })
        }
    };
    let trained = train::train(&TrainOptions {
        recipe,
        out: Some(dir.to_path_buf()),
        resume,
        ..opts.base.clone()
    });
    match trained {
        Ok(_) => Ok(()),
        Err(e) => match e.downcast::<Interrupted>() {
            Ok(stopped) => Err(Interrupted {
                go_on: Some("run the same sweep command again to go on".into()),
                ..stopped
            }
            .into()),
            Err(e) => Err(e),
        },
    }
}

/// Empties the folder `dir` of a run of this sweep that was cut short before its first
/// checkpoint (its config.json, already checked against the sweep's settings, and a
/// metrics.csv without rows), so that it starts afresh there. Anything else in the folder
/// was not made by the sweep: it is refused, by name, and nothing is deleted. So is a
/// folder that another process is training.
fn clear_unstarted(dir: &Path) -> Result<()> {
    let _lock = RunLock::acquire(dir)?;
    let ours = ["config.json", "metrics.csv"];
    let mut found = run_dir::entries(dir)?;
    found.retain(|name| name != lock::FILE);
    let strays: Vec<&String> = found
        .iter()
        .filter(|name| !ours.iter().any(|o| *name == o || is_temporary_of(name, o)))
        .collect();
    let rows = match dir.join("metrics.csv").exists() {
        true => run_dir::read_metrics(dir)?.len(),
        false => 0,
    };
    if !strays.is_empty() || rows > 0 {
        let what = match strays.is_empty() {
            true => format!("metrics.csv with {rows} rows but no weights or checkpoint"),
            false => strays
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        bail!(
            "{} has the name of one of this sweep's runs, but holds {what}, which the sweep \
             did not make; move it out of the sweep folder (nothing was deleted)",
            dir.display()
        );
    }
    for name in found {
        let path = dir.join(&name);
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The sweep's rows for the run of `model` in `dir`.
fn rows_of(opts: &SweepOptions, model: &ModelSpec, dir: &Path) -> Result<Vec<SweepRow>> {
    let config = run_dir::read_config(dir)?;
    let metrics = run_dir::read_metrics(dir)?;
    opts.epochs
        .iter()
        .map(|&epochs| {
            let m = metrics.get(epochs as usize - 1).with_context(|| {
                format!(
                    "{} has no row for epoch {epochs} in metrics.csv",
                    dir.display()
                )
            })?;
            Ok(SweepRow {
                size: size_label(model),
                parameters: config.trainable_parameters,
                epochs,
                train_accuracy: m.train_accuracy,
                test_accuracy: m.test_accuracy,
                seconds: metrics[..epochs as usize].iter().map(|m| m.seconds).sum(),
            })
        })
        .collect()
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
