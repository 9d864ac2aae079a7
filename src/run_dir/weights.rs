//! A run's weights: `model.safetensors` (the last finished epoch's) and
//! `best.safetensors` (the best on validation), plain state dicts that PyTorch loads, each
//! saying in its header which epoch and which weights it holds; which of them a reader
//! takes (`--weights`), and a saved run rebuilt from them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use tch::nn::VarStore;

use super::{read_config, read_metrics, EpochMetrics, RunConfig};
use crate::files::{read_regular, LARGE_FILE};

/// The weights of the last finished epoch.
pub const WEIGHTS: &str = "model.safetensors";
/// The weights of the epoch with the best validation accuracy.
pub const BEST_WEIGHTS: &str = "best.safetensors";
/// The metadata key of `model.safetensors` and `best.safetensors` that names their epoch.
pub(super) const EPOCH_KEY: &str = "epoch";
/// Their metadata key that says which weights they hold, as [`Held`] names them.
pub(super) const HELD_KEY: &str = "weights";

/// Which weights a weights file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// The weights as the last step left them.
    Trained,
    /// The moving average of the weights (`--ema`).
    Average,
}

impl Held {
    pub(super) fn name(self) -> &'static str {
        match self {
            Held::Trained => "trained",
            Held::Average => "ema",
        }
    }
}

/// The epoch whose weights `best.safetensors` in `run` holds, as the file says; `None`
/// when there is no such file, or it does not say.
pub(crate) fn best_weights_epoch(run: &Path) -> Option<u32> {
    weights_epoch(&run.join(BEST_WEIGHTS)).ok()
}

/// The epoch the weights file `path` says it holds; errs, naming the file, when it is
/// missing, damaged or silent (`model.safetensors` from before it said).
fn weights_epoch(path: &Path) -> Result<u32> {
    let bytes = read_regular(path, LARGE_FILE)?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow!("{} is damaged: {e:?}", path.display()))?;
    let epoch = header.metadata().as_ref().and_then(|m| m.get(EPOCH_KEY));
    epoch
        .and_then(|e| e.parse().ok())
        .with_context(|| format!("{} does not say which epoch it holds", path.display()))
}

/// What a weights file's header says: its epoch, and which weights it holds.
pub(super) fn weights_metadata(epoch: u32, held: Held) -> HashMap<String, String> {
    HashMap::from([
        (EPOCH_KEY.to_string(), epoch.to_string()),
        (HELD_KEY.to_string(), held.name().to_string()),
    ])
}

/// Loads the weights in `path` into `vs`, whose variables must match them by name and
/// shape.
pub fn load_weights(path: &Path, vs: &mut VarStore) -> Result<()> {
    let bytes = read_regular(path, LARGE_FILE)?;
    let damaged = || format!("{} is damaged (cut short?)", path.display());
    let file = safetensors::SafeTensors::deserialize(&bytes).with_context(damaged)?;
    let stored = (file.tensors().into_iter())
        .map(|(name, view)| Ok((name, tch::Tensor::try_from(view).with_context(damaged)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    copy_into(vs, &stored, path)
}

/// Copies `stored` into the variables of `vs`, which must match them by name and shape;
/// errors name `source`.
pub(crate) fn copy_into(
    vs: &mut VarStore,
    stored: &std::collections::HashMap<String, tch::Tensor>,
    source: &Path,
) -> Result<()> {
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            match stored.get(&name) {
                Some(t) if t.size() == var.size() => var
                    .f_copy_(t)
                    .map_err(|e| anyhow!("{}: {}", source.display(), crate::progress::libtorch_text(&e)))?,
                Some(t) => bail!(
                    "{} does not fit the model in config.json: {name} is {:?} there, {:?} in the model",
                    source.display(),
                    t.size(),
                    var.size()
                ),
                None => bail!(
                    "{} does not fit the model in config.json: it has no {name}",
                    source.display()
                ),
            }
        }
        Ok(())
    })
}

/// Which of a run's weights to use (`--weights`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weights {
    /// The epoch with the best validation accuracy (best.safetensors), where the run held
    /// images out; else the last epoch's.
    #[default]
    Best,
    /// The last finished epoch's (model.safetensors).
    Last,
}

impl Weights {
    /// The file of these weights in the run folder `run`, made with `config`, and the
    /// epoch they are from (`finished`: the run's finished epochs in metrics.csv). `Best`
    /// is the last epoch's weights where the run kept no best (nothing held out); where
    /// config.json names a best epoch, a missing or damaged best.safetensors is an error,
    /// never a quiet switch to other weights.
    pub fn choose(self, run: &Path, config: &RunConfig, finished: u32) -> Result<(PathBuf, u32)> {
        let best = match (self, config.best_epoch) {
            (Weights::Best, Some(named)) => {
                Some(weights_epoch(&run.join(BEST_WEIGHTS)).with_context(|| {
                    format!(
                    "config.json names epoch {named} as the best on validation, but its weights \
                     cannot be read; give --weights last for the last epoch's, or --resume the \
                     run to save them again"
                )
                })?)
            }
            // runs from before config.json named the best epoch
            (Weights::Best, None) => best_weights_epoch(run),
            (Weights::Last, _) => None,
        };
        if let Some(epoch) = best {
            return Ok((run.join(BEST_WEIGHTS), epoch));
        }
        // the epoch the file says (it may be one behind metrics.csv while a trainer
        // finishes an epoch, which writes the row first); older files say none, and are
        // the last row's
        let path = run.join(WEIGHTS);
        if let Ok(epoch) = weights_epoch(&path) {
            return Ok((path, epoch));
        }
        ensure!(
            finished > 0,
            "{} has no finished epoch yet (metrics.csv has no row, so {WEIGHTS} is not an \
             epoch's weights); wait for its first epoch to end, or, if its training stopped, \
             continue it with --resume {}",
            run.display(),
            run.display()
        );
        ensure!(
            path.exists(),
            "{} has a finished epoch in metrics.csv but no {WEIGHTS}: its trainer writes the \
             row first and the weights a moment later, so wait and try again, or, if its \
             training stopped there, continue it with --resume {}",
            run.display(),
            run.display()
        );
        Ok((path, finished))
    }
}

/// A saved run, rebuilt: its config and its network with the saved weights.
pub struct LoadedRun {
    pub config: RunConfig,
    pub vs: VarStore,
    pub net: crate::models::Network,
    /// The file the weights came from, and the epoch they are from.
    pub weights: PathBuf,
    pub epoch: u32,
    /// The finished epochs' rows of `metrics.csv`.
    pub history: Vec<EpochMetrics>,
}

/// Rebuilds the exact network of the run in `run` from its `config.json` and loads the
/// `which` weights onto `device`.
pub fn load_run(run: &Path, which: Weights, device: tch::Device) -> Result<LoadedRun> {
    if !run.is_dir() {
        bail!(
            "{} is not a run folder (one made by train_dense or train_cnn)",
            run.display()
        );
    }
    let config = read_config(run)?;
    let mut vs = VarStore::new(device);
    config
        .model()
        .fits(&config.input)
        .map_err(anyhow::Error::msg)?;
    let net = config.model().build(&vs, &config.input);
    let history = read_metrics(run)?;
    let (weights, epoch) = which.choose(run, &config, history.len() as u32)?;
    load_weights(&weights, &mut vs)?;
    let finite = tch::no_grad(|| {
        vs.variables()
            .values()
            .all(|t| bool::try_from(t.isfinite().all()).unwrap_or(false))
    });
    ensure!(
        finite,
        "{} holds NaN or infinite weights: its training diverged. Train again with a lower \
         --lr{}",
        weights.display(),
        match which {
            Weights::Best => "",
            Weights::Last => ", or try --weights best",
        }
    );
    Ok(LoadedRun {
        config,
        vs,
        net,
        weights,
        epoch,
        history,
    })
}
