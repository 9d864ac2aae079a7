//! The resume rules, in one place. A resumed run (`--resume DIR`, or a run `sweep` goes
//! on with):
//! - keeps its own recipe and seed, and refuses flags that say otherwise, naming each
//!   (`--hidden 128, not --hidden 64`);
//! - keeps its CPU threads, where this machine has as many cores, and its data folder,
//!   unless `--threads` and `--data-dir` say otherwise: its sums then add up as before;
//! - trains `--epochs N` more, or without it the rest of its planned epochs; one that
//!   stopped early goes on only with `--epochs`, its patience counting afresh;
//! - goes on from its checkpoint, or, in a folder older than checkpoints, from its
//!   weights with Adam restarted, but only when asked (`--fresh-optimizer`).

use std::path::Path;

use anyhow::{bail, Result};

use crate::data::Choice;
use crate::models::ModelKind;
use crate::progress::count;
use crate::recipe::Recipe;
use crate::run_dir::{checkpoint, read_config, read_metrics, RunConfig, WEIGHTS};
use crate::train::TrainOptions;

use super::settings::Changes;
use super::table::differences;

/// How a resumed run goes on: its config, with its recipe's epochs set to the number to
/// reach.
pub(crate) struct Resumed {
    pub config: RunConfig,
    /// Epochs the run has finished.
    pub done: u32,
    /// The epoch after which `--early-stop` had ended the run, which now goes on.
    pub stopped_early: Option<u32>,
}

/// The plan for `--resume run` with a trainer of `kind`, the flags' `changes` and
/// `--seed` if given; errs when a flag contradicts the run, or when it has nothing left
/// to do.
pub(crate) fn plan(
    run: &Path,
    kind: ModelKind,
    changes: &Changes,
    seed: Option<u64>,
    fresh_optimizer: bool,
) -> Result<Resumed> {
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
    let flags = Changes {
        epochs: None,
        ..changes.clone()
    };
    let mut found = match flags.apply(&config.recipe) {
        Ok(recipe) => differences(&config.recipe, &recipe),
        Err(msg) => bail!("--resume {}: {msg}", run.display()),
    };
    if let Some(name) = flags.recipe.filter(|&n| n != config.recipe.name) {
        found.insert(
            0,
            format!("--recipe {}, not --recipe {name}", config.recipe.name),
        );
    }
    if let Some(seed) = seed.filter(|&s| s != config.seed) {
        found.push(format!("--seed {}, not --seed {seed}", config.seed));
    }
    if !found.is_empty() {
        bail!(
            "--resume {}: the run was trained with {}; a resumed run keeps its settings \
             (drop the flags, or start a new run)",
            run.display(),
            found.join("; ")
        );
    }
    let done = finished_epochs(run, fresh_optimizer)?;
    let stopped_early = config.stopped_early;
    config.recipe.epochs = match (changes.epochs, stopped_early) {
        (Some(more), _) => done.saturating_add(more),
        (None, Some(after)) => bail!(
            "--resume {}: the run stopped early after epoch {after}: its validation accuracy \
             had not improved for {} (--early-stop); give --epochs N to go on for up \
             to N more (early stopping watches again from there)",
            run.display(),
            count(config.recipe.early_stop.unwrap_or(0), "epoch")
        ),
        (None, None) if done < config.recipe.epochs => config.recipe.epochs,
        (None, None) => bail!(
            "--resume {}: the run has finished its {}; give --epochs N to train N more",
            run.display(),
            count(done, "epoch")
        ),
    };
    config.stopped_early = None;
    Ok(Resumed {
        config,
        done,
        stopped_early,
    })
}

/// What a run made with `config` brings to `options` that go on with it: its CPU
/// threads, where it trained on the CPU and this machine has as many cores (unless the
/// options say), and its data: its folder, where it is still there and the options name
/// none, and for a folder of images, the very input and test share it had. Errs, naming
/// the flag, where the options ask for other images.
pub(crate) fn inherit(config: &RunConfig, options: &mut TrainOptions) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if config.device == "cpu" && config.threads <= cores {
        options.threads = options.threads.or(Some(config.threads));
    }
    let given = &options.data;
    let own = config.data(given.dir.as_deref());
    if let Some(first) = data_differences(&own, given).first() {
        bail!("the run was trained with {first}; a resumed run keeps its settings (drop the flag)");
    }
    options.data = crate::data::Choice {
        bars: given.bars,
        skip_unreadable: given.skip_unreadable || own.skip_unreadable,
        ..own
    };
    Ok(())
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
            "{}: the run has no {} (it was made before fashion-tch saved the optimiser's \
             state), so it cannot go on exactly. Add --fresh-optimizer to go on from \
             {WEIGHTS} with Adam's moments started afresh",
            run.display(),
            checkpoint::FILE
        );
    }
    Ok(read_metrics(run)?.len() as u32)
}

/// Whether the run in `run` may be continued as `asked` with `seed` on `data` (by
/// `sweep`, whose runs must all share its settings): the differences, in flags, or none.
pub(crate) fn refused(run: &Path, asked: &Recipe, seed: u64, data: &Choice) -> Result<Vec<String>> {
    let config = read_config(run)?;
    let mut out = differences(&config.recipe, asked);
    if config.seed != seed {
        out.push(format!("--seed {}, not --seed {seed}", config.seed));
    }
    let absolute = |d: &Path| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf());
    if let Some(dir) = &data.dir {
        if absolute(dir) != absolute(&config.data_dir) {
            out.push(format!(
                "--data-dir {}, not --data-dir {}",
                config.data_dir.display(),
                dir.display()
            ));
        }
    }
    out.extend(data_differences(&config.data(None), data));
    Ok(out)
}

/// The flags of `asked` that would read a folder of images otherwise than `own`, a run's
/// own choice, as `FLAG HAD, not FLAG ASKED`.
fn data_differences(own: &Choice, asked: &Choice) -> Vec<String> {
    let share = |s: Option<f64>| s.map(crate::progress::number);
    let number = |n: Option<i64>| n.map(|n| n.to_string());
    [
        (
            "--image-size",
            number(asked.image_size),
            number(own.image_size),
        ),
        ("--channels", number(asked.channels), number(own.channels)),
        (
            "--test-share",
            share(asked.test_share),
            share(own.test_share),
        ),
    ]
    .into_iter()
    .filter_map(|(flag, asked, had)| match (asked, had) {
        (Some(asked), Some(had)) if asked != had => {
            Some(format!("{flag} {had}, not {flag} {asked}"))
        }
        _ => None,
    })
    .collect()
}
