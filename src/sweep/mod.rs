//! `sweep`: the lesson's experiments with layer sizes, epoch counts and seeds as one
//! command. Each size and seed trains one run (in its own folder under the sweep folder)
//! for the largest epoch count, and the smaller counts are read from its metrics on the
//! way; the table and chart give each figure's mean over the seeds, and its spread.
//!
//! The runs are independent, so a scheduler can run them: `--plan` prints the trainer's
//! command for each, one a line, for GNU parallel or a Slurm array, and trains nothing.
//! A run of the same `sweep` command afterwards gathers them wherever they stand: it
//! skips the finished runs, continues the others exactly, and refuses a folder trained
//! with other settings, so one table never mixes them.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::data::Choice;
use crate::files::{is_temporary_of, write_atomically};
use crate::flags::{comma_list, resume};
use crate::models::ModelSpec;
use crate::plots::{self, SweepLine};
use crate::recipe::Recipe;
use crate::run_dir::{self, checkpoint, config, lock, RunLock};
use crate::tensorboard;
use crate::train::{self, Interrupted, Resume, TrainOptions};

mod plan;

pub use plan::{plan, PlannedRun, TrainerFlags};

/// One size at one epoch count, over the sweep's seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    /// The size, as the flags give it: `64` (hidden units) or `32,64` (filters).
    pub size: String,
    pub parameters: i64,
    pub epochs: u32,
    pub train_accuracy: Spread,
    pub test_accuracy: Spread,
    /// Training time up to this epoch, the mean over the seeds.
    pub seconds: f64,
}

/// A figure over the seeds: its mean, standard deviation (0 for one seed), lowest and
/// highest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub seeds: usize,
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Spread {
            seeds: values.len(),
            mean,
            sd: var.sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

impl std::fmt::Display for Spread {
    /// `0.8754`, or `0.8754 ± 0.0021` (the standard deviation) over several seeds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seeds {
            0 | 1 => write!(f, "{:.4}", self.mean),
            _ => write!(f, "{:.4} ± {:.4}", self.mean, self.sd),
        }
    }
}

/// What a sweep trains: `models` with each of `seeds` for up to the largest of `epochs`,
/// in folders under `out`.
pub struct Sweep {
    pub models: Vec<ModelSpec>,
    pub epochs: Vec<u32>,
    pub seeds: Vec<u64>,
    pub out: PathBuf,
}

/// One run of a sweep: a size with a seed, and its folder.
#[derive(Clone, Debug)]
pub struct SweepRun {
    pub model: ModelSpec,
    pub seed: u64,
    pub dir: PathBuf,
}

impl Sweep {
    /// The recipe of the run for `model`: `base`'s, with that model, for the sweep's
    /// largest epoch count.
    fn recipe(&self, base: &Recipe, model: &ModelSpec) -> Recipe {
        Recipe {
            model: model.clone(),
            epochs: self.epochs.iter().copied().max().unwrap_or(1),
            ..base.clone()
        }
    }

    /// The runs, size by size and seed by seed. A run's folder is named by its size
    /// (`dense-64`, `cnn-32-64`), and by its seed too (`dense-64-seed1`) unless the sweep
    /// has seed 0 alone.
    pub fn runs(&self) -> Vec<SweepRun> {
        let by_seed = self.seeds != [0];
        let mut runs = Vec::new();
        for model in &self.models {
            let label = size_label(model).replace([',', ' '], "-");
            for &seed in &self.seeds {
                let name = match by_seed {
                    true => format!("{}-{label}-seed{seed}", model.name()),
                    false => format!("{}-{label}", model.name()),
                };
                runs.push(SweepRun {
                    model: model.clone(),
                    seed,
                    dir: self.out.join(name),
                });
            }
        }
        runs
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

/// Runs the sweep (the runs not yet finished, one after another), each as `base` says
/// (its recipe, the model aside, and how to train), writes `sweep.md` (the table) and
/// `sweep.svg` into the sweep folder, and returns the rows. `fresh_optimizer`: continue
/// runs that have no checkpoint (made before checkpoints existed) from their weights,
/// with Adam started afresh.
pub fn sweep(opts: &Sweep, base: &TrainOptions, fresh_optimizer: bool) -> Result<Vec<SweepRow>> {
    check(opts, &base.recipe)?;
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating the sweep folder {}", opts.out.display()))?;
    refuse_other_settings(opts, &base.recipe, &base.data)?;
    for run in opts.runs() {
        train_to_the_end(opts, base, fresh_optimizer, &run)?;
    }
    let rows = rows(opts)?;
    write_atomically(&opts.out.join("sweep.md"), table(&rows).as_bytes())?;
    chart(&opts.out.join("sweep.svg"), &rows)?;
    Ok(rows)
}

/// Errs on what a sweep of `recipe` cannot do.
fn check(opts: &Sweep, recipe: &Recipe) -> Result<()> {
    if let Some(n) = recipe.early_stop {
        bail!(
            "--early-stop {n}: a sweep reads every run at each of its epoch counts, so its \
             runs must not stop early"
        );
    }
    if opts.seeds.is_empty() {
        bail!("--seeds: give at least one seed");
    }
    if let Some(seed) =
        (opts.seeds.iter()).find(|s| opts.seeds.iter().filter(|t| t == s).count() > 1)
    {
        bail!("--seeds names seed {seed} twice; each run needs a folder of its own");
    }
    let sizes: Vec<String> = opts.models.iter().map(size_label).collect();
    if let Some(size) = sizes
        .iter()
        .find(|s| sizes.iter().filter(|t| t == s).count() > 1)
    {
        bail!("the sweep names size {size} twice; each run needs a folder of its own");
    }
    Ok(())
}

/// Draws `sweep.svg`: a line per epoch count across the sizes, with the spread over the
/// seeds.
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
            let at = rows.iter().filter(|r| r.epochs == e);
            SweepLine {
                label: format!("{e} epoch{}", if e == 1 { "" } else { "s" }),
                test: at.clone().map(|r| r.test_accuracy.mean).collect(),
                test_range: at
                    .clone()
                    .map(|r| (r.test_accuracy.min, r.test_accuracy.max))
                    .collect(),
                train: at.map(|r| r.train_accuracy.mean).collect(),
            }
        })
        .collect();
    write_atomically(path, plots::sweep(&sizes, &lines)?.as_bytes())
}

/// Errs, naming every difference, when a run already in the sweep folder was trained
/// with other settings than this sweep's (more epochs aside).
fn refuse_other_settings(opts: &Sweep, base: &Recipe, data: &Choice) -> Result<()> {
    let mut found = Vec::new();
    for run in opts.runs() {
        if run.dir.join(config::FILE).exists() {
            let recipe = opts.recipe(base, &run.model);
            let differences = resume::refused(&run.dir, &recipe, run.seed, data)?;
            if !differences.is_empty() {
                found.push(format!(
                    "{} has {}",
                    run.dir.display(),
                    differences.join("; ")
                ));
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

/// Trains `run` to the sweep's last epoch count: from the start, from where it stopped,
/// or not at all when it is there.
fn train_to_the_end(
    opts: &Sweep,
    base: &TrainOptions,
    fresh_optimizer: bool,
    run: &SweepRun,
) -> Result<()> {
    let (recipe, dir) = (opts.recipe(&base.recipe, &run.model), run.dir.as_path());
    let started = dir.join(config::FILE).exists()
        && (dir.join(checkpoint::FILE).exists() || dir.join(run_dir::WEIGHTS).exists());
    if dir.exists() && !started {
        clear_unstarted(dir)?;
    }
    let resume = match started {
        false => None,
        true => {
            let fresh = fresh_optimizer;
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
    let mut options = TrainOptions {
        recipe,
        seed: run.seed,
        out: Some(dir.to_path_buf()),
        resume,
        ..base.clone()
    };
    if resume.is_some() {
        resume::inherit(&run_dir::read_config(dir)?, &mut options)?;
    }
    let trained = train::train(&options);
    match trained {
        Ok(_) => Ok(()),
        Err(e) if e.is::<run_dir::HoldsARun>() => bail!(
            "{}: another process started this run as this sweep was about to; run the same \
             sweep command again to gather it",
            dir.display()
        ),
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
/// checkpoint, so that it starts afresh there. Only what proves to be the sweep's own is
/// deleted ([`unstarted_files`]); anything else is refused, by name, and nothing is
/// deleted. So is a folder that another process is training.
fn clear_unstarted(dir: &Path) -> Result<()> {
    // a folder another process trains is that process's, whatever it holds this moment
    let held = RunLock::acquire_if_present(dir)?;
    // checked before a lock file is made, so that a refused folder is left as it was,
    // and again under the lock, before anything is deleted
    unstarted_files(dir)?;
    let _lock = match held {
        Some(lock) => lock,
        None => RunLock::acquire(dir)?,
    };
    for name in unstarted_files(dir)? {
        let path = dir.join(&name);
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// The files in `dir` (its lock aside) when they are those of this sweep's run cut short
/// before its first checkpoint: its config.json (already checked against the sweep's
/// settings), a metrics.csv without rows, event files of this program's own names and
/// half-written temporaries of its files. Errs, naming them, on anything else, and on
/// any file at all in a folder without that config.json.
fn unstarted_files(dir: &Path) -> Result<Vec<String>> {
    let mut found = run_dir::entries(dir)?;
    found.retain(|name| name != lock::FILE);
    let has_config = found.iter().any(|name| name == config::FILE);
    let ours = |name: &str| {
        name == config::FILE
            || name == run_dir::METRICS
            || tensorboard::is_ours(name)
            || (run_dir::TRAINER_FILES.iter()).any(|f| is_temporary_of(name, f))
    };
    let strays: Vec<&str> = (found.iter().map(String::as_str))
        .filter(|name| !(has_config && ours(name)))
        .collect();
    let rows = match has_config && dir.join(run_dir::METRICS).exists() {
        true => run_dir::read_metrics(dir)?.len(),
        false => 0,
    };
    if !strays.is_empty() || rows > 0 {
        let what = match strays.is_empty() {
            true => format!("metrics.csv with {rows} rows but no weights or checkpoint"),
            false => strays
                .iter()
                .map(|name| crate::progress::printable(name).into_owned())
                .collect::<Vec<_>>()
                .join(", "),
        };
        bail!(
            "{} has the name of one of this sweep's runs, but holds {what}, which the sweep \
             did not make; move it out of the sweep folder (nothing was deleted)",
            dir.display()
        );
    }
    Ok(found)
}

/// The sweep's rows: each size at each epoch count, over the seeds.
fn rows(opts: &Sweep) -> Result<Vec<SweepRow>> {
    let runs = opts.runs();
    let mut rows = Vec::new();
    for model in &opts.models {
        let mut parameters = 0;
        let mut metrics = Vec::new();
        for run in runs.iter().filter(|r| r.model == *model) {
            parameters = run_dir::read_config(&run.dir)?.trainable_parameters;
            metrics.push((run, run_dir::read_metrics(&run.dir)?));
        }
        for &epochs in &opts.epochs {
            let at = metrics
                .iter()
                .map(|(run, rows)| {
                    let m = rows.get(epochs as usize - 1).with_context(|| {
                        format!(
                            "{} has no row for epoch {epochs} in metrics.csv",
                            run.dir.display()
                        )
                    })?;
                    let seconds: f64 = rows[..epochs as usize].iter().map(|m| m.seconds).sum();
                    Ok((m.train_accuracy, m.test_accuracy, seconds))
                })
                .collect::<Result<Vec<_>>>()?;
            let column = |get: fn(&(f64, f64, f64)) -> f64| at.iter().map(get).collect::<Vec<_>>();
            rows.push(SweepRow {
                size: size_label(model),
                parameters,
                epochs,
                train_accuracy: Spread::of(&column(|r| r.0)),
                test_accuracy: Spread::of(&column(|r| r.1)),
                seconds: Spread::of(&column(|r| r.2)).mean,
            });
        }
    }
    Ok(rows)
}

/// The markdown table of a sweep: a row per size and epoch count, each figure the mean
/// over the seeds, ± its standard deviation where there are several.
pub fn table(rows: &[SweepRow]) -> String {
    let mut out = String::from(
        "| size | parameters | epochs | seeds | train accuracy | test accuracy | gap | time |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {:+.4} | {:.0} s |\n",
            r.size,
            r.parameters,
            r.epochs,
            r.test_accuracy.seeds,
            r.train_accuracy,
            r.test_accuracy,
            r.train_accuracy.mean - r.test_accuracy.mean,
            r.seconds
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_reads_as_mean_and_deviation() {
        let one = Spread::of(&[0.8754]);
        assert_eq!(one.to_string(), "0.8754");
        let three = Spread::of(&[0.87, 0.88, 0.89]);
        assert_eq!(three.to_string(), "0.8800 ± 0.0100");
        assert_eq!((three.min, three.max), (0.87, 0.89));
    }
}
