//! A run's folder, made anew or reopened, and where the run stands: a new run starts at
//! its first step in a new or empty folder; a resumed one takes its weights, Adam's state
//! and its position from its checkpoint (or, with `--fresh-optimizer`, its weights from a
//! folder older than checkpoints), under the folder's lock.

use std::path::Path;

use anyhow::{bail, ensure, Result};
use tch::nn;

use super::learner::Learner;
use super::splits::Splits;
use super::{Resume, TrainOptions};
use crate::device;
use crate::models;
use crate::run_dir::checkpoint::{self, State};
use crate::run_dir::{self, RunConfig, RunDir, RunLock};

/// Makes the folder of the run of `opts` (on the data `data`), or, resuming, reopens it
/// and puts the run's weights and Adam's state into `learner`; returns where the run
/// stands, and its open folder.
pub(crate) fn open(
    opts: &TrainOptions,
    learner: &mut Learner,
    data: &Splits,
) -> Result<(State, RunDir)> {
    let out = (opts.out.clone()).unwrap_or_else(|| RunDir::default_path(&opts.recipe.model));
    let config = new_config(opts, data, &learner.vs);
    let training_images = data.train.len() as u64;
    let (mut state, dir) = match opts.resume {
        Some(how) => {
            // the lock first: the checkpoint is read as no other trainer leaves it
            let lock = RunLock::acquire(&out)?;
            let had = run_dir::read_config(&out)?;
            let what = "resume it with the data it was trained on (--data-dir)";
            data.input.ensure_is(&had.input, &data.dir, &out, what)?;
            if let (Some(had), Some(now)) = (&had.folders, &data.folders) {
                now.ensure_same_images(had, &data.dir, &out, what)?;
            }
            let state = restore(&out, how, learner, training_images)?;
            // the best epoch is the one its history holds: best.safetensors of an epoch
            // a crash undid is gone
            let done = state.history.len() as u32;
            let best = run_dir::best_weights_epoch(&out).filter(|&e| e <= done);
            if best.is_none() {
                let _ = std::fs::remove_file(out.join(run_dir::BEST_WEIGHTS));
            }
            let config = RunConfig {
                best_epoch: best,
                ..config
            };
            // the run keeps the start time of the config there
            let dir = RunDir::reopen(lock, &out, &config, &state.history)?;
            (state, dir)
        }
        None => (
            State::fresh(Vec::new(), training_images),
            RunDir::create(&out, &config)?,
        ),
    };
    state.patience_from = state.patience_from.max(opts.patience_from.unwrap_or(0));
    Ok((state, dir))
}

/// The config of a run of `opts` on the data `data` with the network in `vs`.
fn new_config(opts: &TrainOptions, data: &Splits, vs: &nn::VarStore) -> RunConfig {
    RunConfig {
        format_version: run_dir::config::FORMAT_VERSION,
        recipe: opts.recipe.clone(),
        seed: opts.seed,
        device: device::device_name(opts.device),
        threads: tch::get_num_threads() as usize,
        cuda_graph: opts.cuda_graph,
        trainable_parameters: models::parameter_count(vs),
        input: data.input.clone(),
        folders: data.folders.clone(),
        // absolute, so that its readers find it from any folder
        data_dir: std::path::absolute(&data.dir).unwrap_or_else(|_| data.dir.clone()),
        libtorch_version: env!("FASHION_TCH_LIBTORCH_VERSION").to_string(),
        fashion_tch_version: env!("CARGO_PKG_VERSION").to_string(),
        started: chrono::Local::now().to_rfc3339(),
        best_epoch: None,
        stopped_early: None,
    }
}

/// Puts back the weights and Adam's state of the run in `out` into `learner`, and returns
/// where the run stands: the finished epochs and the position to go on from. A run that
/// steps through `training_images` images.
fn restore(out: &Path, how: Resume, learner: &mut Learner, training_images: u64) -> Result<State> {
    match checkpoint::load(out)? {
        Some(ck) => {
            let source = out.join(checkpoint::FILE);
            let had = ck.state.training_images;
            ensure!(
                had == 0 || had == training_images,
                "{}: the run steps through {had} training images, and this data \
                 gives {training_images}; resume it with the data it was trained on (--data-dir)",
                out.display()
            );
            run_dir::copy_into(&mut learner.vs, &ck.weights, &source)?;
            if let Some(ema) = &mut learner.ema {
                ensure!(
                    !ck.average.is_empty(),
                    "{} holds no moving average of the weights (ema.*), which the run's \
                     recipe keeps; resume it with the fashion-tch that made it",
                    source.display()
                );
                run_dir::copy_into(&mut ema.vs, &ck.average, &source)?;
            }
            learner
                .adam
                .load_state(&ck.optimizer, ck.optimizer_steps)
                .map_err(|e| e.context(format!("{} does not fit the model", source.display())))?;
            Ok(State {
                training_images,
                ..ck.state
            })
        }
        None if how == Resume::FreshOptimizer => {
            run_dir::load_weights(&out.join(run_dir::WEIGHTS), &mut learner.vs)?;
            if let Some(ema) = &mut learner.ema {
                // the average starts afresh from the saved weights, as Adam does
                ema.vs.copy(&learner.vs)?;
            }
            Ok(State::fresh(run_dir::read_metrics(out)?, training_images))
        }
        None => bail!(
            "{} has no {}; resume it with --fresh-optimizer",
            out.display(),
            checkpoint::FILE
        ),
    }
}
