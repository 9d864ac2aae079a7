//! `checkpoint.safetensors`: everything needed to continue a run exactly where it was,
//! in one file replaced atomically, so weights can never be paired with another step's
//! optimiser state:
//! - the weights, as `model.<variable>` (batch norm's running statistics included);
//! - Adam's moments, as `optimizer.exp_avg.<variable>` and `optimizer.exp_avg_sq.<…>`;
//! - where the recipe keeps one, the moving average of the weights, as `ema.<variable>`;
//! - in the file's metadata (JSON under the key `fashion_tch`): its `format_version`, the
//!   position in the run (epoch, steps done, the epoch's running sums), Adam's step count,
//!   and the finished epochs' rows of `metrics.csv`, which a resume writes back. Format 1
//!   (no `format_version`) predates `patience_from` and `training_images`; one migration
//!   reads it.
//!
//! The random draws need no saved state: they are seeded from the run's position (see
//! [`crate::train`]).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use safetensors::tensor::SafeTensors;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::Tensor;

use super::EpochMetrics;
use crate::files::{read_regular_if_any, write_safetensors, LARGE_FILE};
use crate::optim::Adam;

/// The checkpoint's file name in a run folder.
pub const FILE: &str = "checkpoint.safetensors";
/// The metadata key that holds [`State`].
const KEY: &str = "fashion_tch";
/// The format of that metadata.
pub const FORMAT_VERSION: u32 = 2;

/// Where a run is: the epoch in progress and how far into it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Position {
    /// The epoch in progress, from 1: the finished epochs and one.
    pub epoch: u32,
    /// Its optimisation steps done.
    pub step: usize,
    /// Its running sums so far: training loss times batch size, right answers, images.
    pub loss_sum: f64,
    pub correct: i64,
    pub seen: i64,
    /// Seconds spent on it so far.
    pub seconds: f64,
}

impl Position {
    /// The start of epoch `epoch`.
    pub(crate) fn start_of(epoch: u32) -> Position {
        Position {
            epoch,
            step: 0,
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            seconds: 0.0,
        }
    }
}

/// Where a run stands: what a checkpoint holds besides tensors and Adam's step count.
/// A run in progress keeps its state here, and only here.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct State {
    pub position: Position,
    /// The finished epochs' rows.
    pub history: Vec<EpochMetrics>,
    /// The finished epochs when `--early-stop`'s patience last started counting: 0, or
    /// where a run that had stopped early was told to go on.
    pub patience_from: u32,
    /// The training images the run steps through, so that a resume on other data is
    /// refused (0 in checkpoints from before it was recorded).
    pub training_images: u64,
}

impl State {
    /// A run at the start of the epoch after `history`: a new run, or an old one going
    /// on with fresh moments.
    pub(crate) fn fresh(history: Vec<EpochMetrics>, training_images: u64) -> State {
        State {
            position: Position::start_of(history.len() as u32 + 1),
            history,
            patience_from: 0,
            training_images,
        }
    }
}

/// The checkpoint's metadata as written: the state, Adam's step count and the format.
#[derive(Serialize, Deserialize)]
struct Metadata<S> {
    format_version: u32,
    /// Adam's updates so far.
    optimizer_steps: u64,
    #[serde(flatten)]
    state: S,
}

impl State {
    /// Errs unless the state is one a run could be in: an epoch from 1, a row for each
    /// finished epoch, numbered from 1.
    fn check(&self) -> Result<()> {
        let p = &self.position;
        let rows_in_order = self
            .history
            .iter()
            .enumerate()
            .all(|(i, m)| m.epoch as usize == i + 1);
        ensure!(
            p.epoch >= 1 && self.history.len() == p.epoch as usize - 1 && rows_in_order,
            "its position (epoch {}, step {}) does not follow its {} finished epochs",
            p.epoch,
            p.step,
            self.history.len()
        );
        Ok(())
    }
}

/// A checkpoint read back.
pub(crate) struct Checkpoint {
    pub state: State,
    /// Adam's updates so far.
    pub optimizer_steps: u64,
    /// The weights by variable name.
    pub weights: HashMap<String, Tensor>,
    /// Adam's moments, named as [`Adam::state`] names them.
    pub optimizer: HashMap<String, Tensor>,
    /// The moving average of the weights by variable name (empty without one).
    pub average: HashMap<String, Tensor>,
}

/// Writes the checkpoint of a run at `state` into the folder `run`: its weights `vs`,
/// their moving average `average` where it keeps one, and `adam`'s state.
pub(crate) fn save(
    run: &Path,
    (vs, average): (&VarStore, Option<&VarStore>),
    adam: &Adam,
    state: &State,
) -> Result<()> {
    let named = |prefix: &'static str, vs: &VarStore| {
        vs.variables()
            .into_iter()
            .map(move |(name, t)| (format!("{prefix}.{name}"), t))
    };
    let tensors: Vec<(String, Tensor)> = named("model", vs)
        .chain(average.into_iter().flat_map(|vs| named("ema", vs)))
        .chain(
            adam.state()
                .into_iter()
                .map(|(name, t)| (format!("optimizer.{name}"), t)),
        )
        .collect();
    let json = serde_json::to_string(&Metadata {
        format_version: FORMAT_VERSION,
        optimizer_steps: adam.steps,
        state,
    })?;
    let metadata = HashMap::from([(KEY.to_string(), json)]);
    write_safetensors(&run.join(FILE), &tensors, Some(metadata))
}

/// Reads the checkpoint in the folder `run`; `None` when there is none.
pub(crate) fn load(run: &Path) -> Result<Option<Checkpoint>> {
    let path = run.join(FILE);
    let Some(bytes) = read(&path)? else {
        return Ok(None);
    };
    let Metadata {
        state,
        optimizer_steps,
        ..
    } = metadata_of(&path, &bytes)?;
    let file = SafeTensors::deserialize(&bytes).with_context(|| damaged(&path))?;
    let (mut weights, mut optimizer, mut average) =
        (HashMap::new(), HashMap::new(), HashMap::new());
    for (name, view) in file.tensors() {
        let tensor = Tensor::try_from(view).with_context(|| damaged(&path))?;
        if let Some(var) = name.strip_prefix("model.") {
            weights.insert(var.to_string(), tensor);
        } else if let Some(moment) = name.strip_prefix("optimizer.") {
            optimizer.insert(moment.to_string(), tensor);
        } else if let Some(var) = name.strip_prefix("ema.") {
            average.insert(var.to_string(), tensor);
        }
    }
    Ok(Some(Checkpoint {
        state,
        optimizer_steps,
        weights,
        optimizer,
        average,
    }))
}

/// Puts the weights of the checkpoint in the folder `run`, as its last step left them,
/// into `vs` (they differ from `model.safetensors` where the run keeps a moving average
/// of them); returns the checkpoint's path.
pub fn load_trained_weights(run: &Path, vs: &mut VarStore) -> Result<std::path::PathBuf> {
    let path = run.join(FILE);
    let checkpoint = load(run)?.with_context(|| format!("{} has no {FILE}", run.display()))?;
    super::copy_into(vs, &checkpoint.weights, &path)?;
    Ok(path)
}

/// Reads only the [`State`] of the checkpoint in `run` (its header, not its tensors).
pub fn read_state(run: &Path) -> Result<Option<State>> {
    let path = run.join(FILE);
    Ok(match read(&path)? {
        Some(bytes) => Some(metadata_of(&path, &bytes)?.state),
        None => None,
    })
}

fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    read_regular_if_any(path, LARGE_FILE)
}

fn metadata_of(path: &Path, bytes: &[u8]) -> Result<Metadata<State>> {
    let (_, header) = SafeTensors::read_metadata(bytes).with_context(|| damaged(path))?;
    let Some(json) = header.metadata().as_ref().and_then(|m| m.get(KEY)) else {
        bail!("{}: it has no {KEY} metadata", damaged(path));
    };
    let metadata = migrate(serde_json::from_str(json).with_context(|| damaged(path))?)
        .and_then(|json| Ok(serde_json::from_value::<Metadata<State>>(json)?))
        .with_context(|| damaged(path))?;
    metadata.state.check().with_context(|| damaged(path))?;
    Ok(metadata)
}

/// The metadata of any format, as today's: format 1 had no `format_version`, no
/// `patience_from` (0: patience counts from the start) and no `training_images` (0: not
/// recorded, so not checked on resume).
fn migrate(mut json: serde_json::Value) -> Result<serde_json::Value> {
    let version = match json.get("format_version") {
        Some(v) => v.as_u64().context("format_version is not a whole number")?,
        None => 1,
    };
    ensure!(
        version <= u64::from(FORMAT_VERSION),
        "its format_version {version} is newer than this fashion-tch reads ({FORMAT_VERSION})"
    );
    if version == 1 {
        let Some(fields) = json.as_object_mut() else {
            bail!("its metadata is not a JSON object");
        };
        fields.entry("patience_from").or_insert(0.into());
        fields.entry("training_images").or_insert(0.into());
        fields.insert("format_version".into(), FORMAT_VERSION.into());
    }
    Ok(json)
}

fn damaged(path: &Path) -> String {
    format!(
        "{} is not a fashion-tch checkpoint (damaged?); delete it to continue from \
         model.safetensors with --fresh-optimizer",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelSpec;
    use std::fs;

    #[test]
    fn a_checkpoint_reads_back_whole_and_damage_is_named() {
        let _generator = crate::own_the_generator();
        let dir = tempfile::tempdir().unwrap();
        let vs = VarStore::new(tch::Device::Cpu);
        let _ = ModelSpec::lesson_cnn().build(&vs, &crate::data::Input::fashion_mnist());
        let adam = Adam::new(&vs, 0.0);
        let state = State {
            position: Position {
                step: 7,
                loss_sum: 0.1 + 0.2,
                ..Position::start_of(1)
            },
            history: vec![],
            patience_from: 0,
            training_images: 600,
        };
        assert!(load(dir.path()).unwrap().is_none());
        save(dir.path(), (&vs, None), &adam, &state).unwrap();
        let back = load(dir.path()).unwrap().unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.optimizer_steps, adam.steps);
        assert_eq!(read_state(dir.path()).unwrap(), Some(state));
        for (name, t) in vs.variables() {
            assert!(back.weights[&name].equal(&t.contiguous()), "{name}");
        }
        assert_eq!(back.optimizer.len(), 2 * vs.trainable_variables().len());

        fs::write(dir.path().join(FILE), b"not a checkpoint").unwrap();
        let err = format!("{:#}", load(dir.path()).err().unwrap());
        assert!(
            err.contains(FILE) && err.contains("--fresh-optimizer"),
            "{err}"
        );
    }
}
