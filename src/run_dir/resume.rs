//! The resume rules, in one place: a resumed run keeps its own recipe, seed and CPU
//! threads, and refuses flags that say otherwise; `--epochs N` trains N more epochs; a run goes on
//! from its checkpoint, or, for folders older than checkpoints, from its weights with
//! Adam restarted, but only when asked to (`--fresh-optimizer`).

use std::path::Path;

use anyhow::{bail, Result};

use super::{checkpoint, read_config, read_metrics, RunConfig, WEIGHTS};
use crate::models::ModelKind;
use crate::recipe::{Overrides, Recipe};

/// How a resumed run continues: the run's config, with its recipe's epochs set to the
/// number to reach.
pub(crate) struct Plan {
    pub config: RunConfig,
    /// Epochs the run has finished.
    pub done: u32,
    /// The epoch after which `--early-stop` had ended the run, which now goes on.
    pub stopped_early: Option<u32>,
}

/// The plan for `--resume run` with a trainer of `kind`, the flags' `overrides` and
/// `--seed` if given; errs when a flag contradicts the run, or when it has nothing left
/// to do.
pub(crate) fn plan(
    run: &Path,
    kind: ModelKind,
    overrides: &Overrides,
    seed: Option<u64>,
    fresh_optimizer: bool,
) -> Result<Plan> {
    let mut config = read_config(run)?;
    if config.model().kind() != kind {
        bail!(
            "--resume {}: that run trained a {} network; resume it with train_{}",
            run.display(),
            config.model().name(),
            config.model().name()
        );
    }
    // the run's own recipe with the flags' changes, so a flag that says what the run
    // has is no difference
    let flags = overrides.without_epochs();
    let mut differences = match flags.apply(&config.recipe) {
        Ok(recipe) => config.recipe.differences(&recipe),
        Err(msg) => bail!("--resume {}: {msg}", run.display()),
    };
    if let Some(name) = flags.recipe.filter(|&n| n != config.recipe.name) {
        differences.insert(
            0,
            format!("--recipe {}, not --recipe {name}", config.recipe.name),
        );
    }
    if let Some(seed) = seed.filter(|&s| s != config.seed) {
        differences.push(format!("--seed {}, not --seed {seed}", config.seed));
    }
    if !differences.is_empty() {
        bail!(
            "--resume {}: the run was trained with {}; a resumed run keeps its settings \
             (drop the flags, or start a new run)",
            run.display(),
            differences.join("; ")
        );
    }
    let done = finished_epochs(run, fresh_optimizer)?;
    let stopped_early = config.stopped_early;
    config.recipe.epochs = match (overrides.epochs(), stopped_early) {
        (Some(more), _) => done.saturating_add(more),
        (None, Some(after)) => bail!(
            "--resume {}: the run stopped early after epoch {after}: its validation accuracy \
             had not improved for {} (--early-stop); give --epochs N to go on for up \
             to N more (early stopping watches again from there)",
            run.display(),
            crate::progress::count(config.recipe.early_stop.unwrap_or(0), "epoch")
        ),
        (None, None) if done < config.recipe.epochs => config.recipe.epochs,
        (None, None) => bail!(
            "--resume {}: the run has finished its {}; give --epochs N to train N more",
            run.display(),
            crate::progress::count(done, "epoch")
        ),
    };
    config.stopped_early = None;
    Ok(Plan {
        config,
        done,
        stopped_early,
    })
}

impl Plan {
    /// The CPU threads the run trained on, to go on to the very numbers (libtorch's sums
    /// depend on how the work is split); `None` for runs trained on CUDA, or on more
    /// threads than this machine has, which go on with the trainers' default.
    pub fn threads(&self) -> Option<usize> {
        run_threads(&self.config)
    }
}

/// The CPU threads a run made with `config` goes on with: its own, where it trained on
/// the CPU and this machine has as many cores; `None`: the trainers' default.
pub(crate) fn run_threads(config: &RunConfig) -> Option<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (config.device == "cpu" && config.threads <= cores).then_some(config.threads)
}

/// The epochs the run in `run` has finished, by its checkpoint; a folder without one
/// continues only with `fresh_optimizer`, from `model.safetensors` and `metrics.csv`.
pub(crate) fn finished_epochs(run: &Path, fresh_optimizer: bool) -> Result<u32> {
    if let Some(state) = checkpoint::read_state(run)? {
        return Ok(state.position.epoch - 1);
    }
    if !run.join(WEIGHTS).exists() {
        bail!(
            "{}: the run stopped before its first checkpoint, so there is nothing to \
             continue; start it again (delete the folder, or give another --out)",
            run.display()
        );
    }
    if !fresh_optimizer {
        bail!(
            "{}: the run has no {} (it was made before fashion-tch saved the \
             optimiser's state), so it cannot go on exactly. Add --fresh-optimizer to go on \
             from {WEIGHTS} with Adam's moments started afresh",
            run.display(),
            checkpoint::FILE
        );
    }
    Ok(read_metrics(run)?.len() as u32)
}

/// Whether the run in `run` may be continued as `asked` with `seed` (by `sweep`, whose
/// runs must all share its settings): the differences, in flags, or none.
pub fn differences(run: &Path, asked: &Recipe, seed: u64) -> Result<Vec<String>> {
    let config = read_config(run)?;
    let mut out = config.recipe.differences(asked);
    if config.seed != seed {
        out.push(format!("--seed {}, not --seed {seed}", config.seed));
    }
    Ok(out)
}
