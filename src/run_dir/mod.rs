//! A run folder, the record of one training run:
//! - `config.json`: what it was made with ([`config`]);
//! - `metrics.csv`: a row per finished epoch, flushed as it goes;
//! - `model.safetensors`: the weights after the last finished epoch, a plain state dict
//!   that `evaluate`, `predict` and PyTorch read;
//! - `checkpoint.safetensors`: everything needed to continue exactly ([`checkpoint`]);
//! - pictures that other modules draw.
//!
//! Every file is replaced through a temporary file and a rename, so a crash never leaves
//! half of one; a resume rewrites `metrics.csv` from the checkpoint. What a resumed run
//! keeps and refuses is in `crate::flags::resume`.

pub mod checkpoint;
pub mod config;
pub(crate) mod lock;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

pub use config::{read_config, RunConfig};
pub(crate) use lock::RunLock;

use crate::files::{is_temporary_of, write_atomically, write_safetensors};
use crate::files::{read_regular, read_regular_text, LARGE_FILE, SMALL_FILE};
use crate::models::ModelSpec;
use crate::plots::{self, Line};

/// One epoch's figures, a row of `metrics.csv`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    pub epoch: u32,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub seconds: f64,
    /// Accuracy on the images held out of training (the strong recipe's), the figure to
    /// choose settings on.
    pub validation_accuracy: Option<f64>,
}

const METRICS_HEADER: &str = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds";
/// The extra column of a run with a validation split.
const VALIDATION_COLUMN: &str = ",validation_accuracy";

/// A row per finished epoch.
pub const METRICS: &str = "metrics.csv";
/// The weights of the last finished epoch.
pub const WEIGHTS: &str = "model.safetensors";
/// The weights of the epoch with the best validation accuracy.
pub(crate) const BEST_WEIGHTS: &str = "best.safetensors";
/// The metadata key of `model.safetensors` and `best.safetensors` that names their epoch.
const EPOCH_KEY: &str = "epoch";
/// Their metadata key that says which weights they hold, as [`Held`] names them.
const HELD_KEY: &str = "weights";

/// Which weights a weights file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// The weights as the last step left them.
    Trained,
    /// The moving average of the weights (`--ema`).
    Average,
}

impl Held {
    fn name(self) -> &'static str {
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

/// An open run folder, written by this process alone while it is open (`training.lock`).
pub struct RunDir {
    pub path: PathBuf,
    /// The config it holds, as last written.
    config: RunConfig,
    metrics: File,
    _lock: RunLock,
}

/// The files a trainer writes in its run folder; readers never write them.
pub(crate) const TRAINER_FILES: [&str; 7] = [
    config::FILE,
    METRICS,
    WEIGHTS,
    BEST_WEIGHTS,
    checkpoint::FILE,
    CURVES,
    lock::FILE,
];

/// The trainer's picture of its curves, redrawn after every epoch.
pub const CURVES: &str = "curves.svg";

impl RunDir {
    /// The default folder for a new run: `runs/<model>-<YYYYmmdd-HHMMSS>`.
    pub fn default_path(model: &ModelSpec) -> PathBuf {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        PathBuf::from("runs").join(format!("{}-{stamp}", model.name()))
    }

    /// Creates the folder, takes its lock and writes `config.json` and the `metrics.csv`
    /// header, so that a folder we cannot write to fails now, before any training. Only a
    /// new or empty folder is taken: a run's results, or anyone's other files, are never
    /// overwritten.
    pub fn create(path: &Path, config: &RunConfig) -> Result<RunDir> {
        if path.is_file() {
            bail!(
                "--out {} is a file; give a folder (new or empty) for the run",
                path.display()
            );
        }
        fs::create_dir_all(path)
            .with_context(|| format!("creating the run folder {}", path.display()))?;
        // a folder another trainer holds is refused as that trainer's; the rest before
        // a lock file is made, so that a refused folder is left as it was, and again
        // under the lock, as another trainer may have taken the folder a moment ago
        let held = RunLock::acquire_if_present(path)?;
        refuse_unless_empty(path)?;
        let lock = match held {
            Some(lock) => lock,
            None => RunLock::acquire(path)?,
        };
        refuse_unless_empty(path)?;
        RunDir::open(lock, path, config.clone(), &[])
    }

    /// Opens a run folder, whose `lock` this process holds, to continue it from the
    /// finished epochs `history`: writes `config` (keeping the start time of the one
    /// there) and rewrites `metrics.csv` with `history`'s rows, then appends to it.
    pub(crate) fn reopen(
        lock: RunLock,
        path: &Path,
        config: &RunConfig,
        history: &[EpochMetrics],
    ) -> Result<RunDir> {
        // what a killed writer of ours left half-written (we hold the lock)
        for name in entries(path)? {
            if TRAINER_FILES.iter().any(|f| is_temporary_of(&name, f)) {
                let _ = fs::remove_file(path.join(name));
            }
        }
        // the one read of config.json in a resumed run's training, under the lock
        let started = read_config(path).map(|old| old.started);
        let config = RunConfig {
            started: started.unwrap_or_else(|_| config.started.clone()),
            ..config.clone()
        };
        RunDir::open(lock, path, config, history)
    }

    /// Writes `config` and `metrics.csv` with `history`'s rows into the folder `path`,
    /// whose `lock` this process holds, and opens `metrics.csv` to append to it.
    fn open(
        lock: RunLock,
        path: &Path,
        config: RunConfig,
        history: &[EpochMetrics],
    ) -> Result<RunDir> {
        let validation = config.recipe.validation_images > 0;
        let mut csv = format!(
            "{METRICS_HEADER}{}\n",
            if validation { VALIDATION_COLUMN } else { "" }
        );
        for m in history {
            csv += &metrics_row(m);
        }
        let metrics_path = path.join(METRICS);
        write_atomically(&metrics_path, csv.as_bytes())?;
        let metrics = OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .with_context(|| format!("opening {}", metrics_path.display()))?;
        let dir = RunDir {
            path: path.to_path_buf(),
            config,
            metrics,
            _lock: lock,
        };
        dir.write_config()?;
        Ok(dir)
    }

    /// Appends one epoch's row to `metrics.csv` and flushes it to disk.
    pub fn append_metrics(&mut self, m: &EpochMetrics) -> Result<()> {
        let path = self.path.join(METRICS);
        self.metrics
            .write_all(metrics_row(m).as_bytes())
            .and_then(|()| self.metrics.sync_data())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Saves the weights of epoch `epoch` as `model.safetensors`; the file says which
    /// epoch it holds, so a reader never pairs them with another epoch's row, and which
    /// weights (`held`).
    pub fn save_weights(&self, vs: &VarStore, epoch: u32, held: Held) -> Result<()> {
        save_weights(
            &self.path.join(WEIGHTS),
            vs,
            Some(weights_metadata(epoch, held)),
        )
    }

    /// Saves the weights of epoch `epoch`, the best on validation, as `best.safetensors`;
    /// the file says which epoch it holds, and which weights.
    pub(crate) fn save_best_weights(&self, vs: &VarStore, epoch: u32, held: Held) -> Result<()> {
        let metadata = weights_metadata(epoch, held);
        save_weights(&self.path.join(BEST_WEIGHTS), vs, Some(metadata))
    }

    /// The config in `config.json`, as this run wrote it.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// Changes the config as `change` does, and rewrites `config.json`.
    pub(crate) fn update_config(&mut self, change: impl FnOnce(&mut RunConfig)) -> Result<()> {
        change(&mut self.config);
        self.write_config()
    }

    fn write_config(&self) -> Result<()> {
        write_atomically(
            &self.path.join(config::FILE),
            serde_json::to_string_pretty(&self.config)?.as_bytes(),
        )
    }
}

/// What a weights file's header says: its epoch, and which weights it holds.
fn weights_metadata(epoch: u32, held: Held) -> HashMap<String, String> {
    HashMap::from([
        (EPOCH_KEY.to_string(), epoch.to_string()),
        (HELD_KEY.to_string(), held.name().to_string()),
    ])
}

fn metrics_row(m: &EpochMetrics) -> String {
    let validation = m
        .validation_accuracy
        .map_or(String::new(), |a| format!(",{a:.6}"));
    format!(
        "{},{:.6},{:.6},{:.6},{:.6},{:.3}{validation}\n",
        m.epoch, m.train_loss, m.train_accuracy, m.test_loss, m.test_accuracy, m.seconds
    )
}

/// How a recipe's training batches differ from what is scored, in a few words each.
fn as_trained(recipe: &crate::recipe::Recipe) -> Vec<&'static str> {
    let dropout = matches!(recipe.model, ModelSpec::Cnn { dropout, .. } if dropout > 0.0);
    [
        (recipe.augment, "augmented"),
        (dropout, "dropout on"),
        (recipe.label_smoothing > 0.0, "smoothed labels"),
    ]
    .into_iter()
    .filter_map(|(on, what)| on.then_some(what))
    .collect()
}

/// The error of a new run's folder that already holds a run, which is never overwritten.
#[derive(Debug)]
pub struct HoldsARun {
    pub path: PathBuf,
}

impl std::fmt::Display for HoldsARun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--out {} already holds a run; choose another folder so its results are kept \
             (or continue it with --resume)",
            self.path.display()
        )
    }
}

impl std::error::Error for HoldsARun {}

/// Errs unless the folder `path` is empty (a lock file aside): a run's results, or
/// anyone's other files, are never overwritten.
fn refuse_unless_empty(path: &Path) -> Result<()> {
    let mut found = entries(path)?;
    found.retain(|name| name != lock::FILE);
    if found.iter().any(|name| name == config::FILE) {
        return Err(HoldsARun {
            path: path.to_path_buf(),
        }
        .into());
    }
    if !found.is_empty() {
        bail!(
            "--out {} is not empty and holds no run ({}); give a new or empty folder, so \
             that nothing in it is overwritten",
            path.display(),
            found.join(", ")
        );
    }
    Ok(())
}

/// `evaluate`'s page of the run.
pub const REPORT: &str = "report.html";
/// `export`'s TorchScript module, where `--out` is not given.
pub const MODULE: &str = "model.pt";

/// The files of a run folder that its readers write: `evaluate`'s pictures and page, and
/// `export`'s module.
const READER_FILES: [&str; 5] = [
    "predictions.svg",
    "confusion.svg",
    "filters.svg",
    REPORT,
    MODULE,
];

/// Errs when `out`, where a reader is to write (given by `flag`), would replace what it
/// does not own: a file of a run folder (its trainer's, its readers', any TensorBoard
/// event file), a folder, or, without `force`, any file that is there.
pub fn refuse_to_replace(out: &Path, flag: &str, force: bool) -> Result<()> {
    let folder = out.parent().filter(|p| !p.as_os_str().is_empty());
    let in_run = folder
        .unwrap_or(Path::new("."))
        .join(config::FILE)
        .is_file();
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let run_file = (TRAINER_FILES.iter().chain(&READER_FILES)).any(|f| *f == name)
        || name.starts_with(crate::tensorboard::PREFIX);
    let shown = out.display();
    ensure!(
        !(in_run && run_file),
        "{flag} {shown} is one of the files of the run folder it is in; give another name"
    );
    ensure!(
        !out.is_dir(),
        "{flag} {shown} is a folder; give a file name"
    );
    ensure!(
        force || !out.exists(),
        "{flag} {shown} already exists; give --force to replace it, or another file name"
    );
    Ok(())
}

/// The names of the entries of the folder `path`, sorted.
pub fn entries(path: &Path) -> Result<Vec<String>> {
    let read = || -> std::io::Result<Vec<String>> {
        let mut names = fs::read_dir(path)?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
    };
    read().with_context(|| format!("reading the folder {}", path.display()))
}

/// Saves the variables of `vs` to `path` as safetensors (a state dict PyTorch loads),
/// atomically, with `metadata` in its header.
pub fn save_weights(
    path: &Path,
    vs: &VarStore,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    write_safetensors(
        path,
        &vs.variables().into_iter().collect::<Vec<_>>(),
        metadata,
    )
}

/// Redraws a run's `curves.svg` from its finished epochs ([`curves`]).
pub fn draw_curves(run: &Path, history: &[EpochMetrics]) -> Result<()> {
    let config = read_config(run)?;
    write_atomically(&run.join(CURVES), curves(&config, history)?.as_bytes())
}

/// The training curves of a run made with `config`, from its finished epochs `history`,
/// as SVG: loss and accuracy, train and test, and validation accuracy where images were
/// held out. Where the training batches were not what is scored (augmented, dropout on,
/// labels smoothed), the train lines' label says so: their loss sits above the test loss
/// by design, not by a bug.
pub fn curves(config: &RunConfig, history: &[EpochMetrics]) -> Result<String> {
    let line = |label: &str, get: fn(&EpochMetrics) -> Option<f64>| Line {
        label: label.into(),
        points: history
            .iter()
            .filter_map(|m| Some((f64::from(m.epoch), get(m)?)))
            .collect(),
    };
    let train = match as_trained(&config.recipe) {
        how if how.is_empty() => "train".to_string(),
        how => format!("train ({})", how.join(", ")),
    };
    let loss = [
        line(&train, |m| Some(m.train_loss)),
        line("test", |m| Some(m.test_loss)),
    ];
    let mut accuracy = vec![
        line(&train, |m| Some(m.train_accuracy)),
        line("test", |m| Some(m.test_accuracy)),
        line("validation", |m| m.validation_accuracy),
    ];
    accuracy.retain(|l| !l.points.is_empty());
    plots::curves(&loss, &accuracy)
}

/// Reads a run's `metrics.csv`. A last line without its line end is a row cut off by a
/// crash while it was written, and is left out.
pub fn read_metrics(run: &Path) -> Result<Vec<EpochMetrics>> {
    let path = run.join(METRICS);
    let text = read_regular_text(&path, SMALL_FILE)?;
    let whole = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    let mut rows = Vec::new();
    for (i, line) in whole.lines().enumerate().skip(1) {
        let bad = || {
            format!(
                "{} line {} is not the row of epoch {}: {line:?}",
                path.display(),
                i + 1,
                rows.len() + 1
            )
        };
        let f: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(bad)?;
        if (f.len() != 6 && f.len() != 7) || f[0] != (rows.len() + 1) as f64 {
            bail!(bad());
        }
        rows.push(EpochMetrics {
            epoch: f[0] as u32,
            train_loss: f[1],
            train_accuracy: f[2],
            test_loss: f[3],
            test_accuracy: f[4],
            seconds: f[5],
            validation_accuracy: f.get(6).copied(),
        });
    }
    Ok(rows)
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
    let net = config.model().build(&vs);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelSpec;
    use config::tests::config;

    fn row(epoch: u32, validation: Option<f64>) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 0.5,
            train_accuracy: 0.8,
            test_loss: 0.6,
            test_accuracy: 0.75,
            seconds: 1.5,
            validation_accuracy: validation,
        }
    }

    #[test]
    fn metrics_read_back_and_a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let mut rd = RunDir::create(&run, &config()).unwrap();
        rd.append_metrics(&row(1, None)).unwrap();
        rd.append_metrics(&row(2, None)).unwrap();
        assert_eq!(
            read_metrics(&run).unwrap(),
            vec![row(1, None), row(2, None)]
        );
        // a crash in the middle of writing row 3
        let mut f = OpenOptions::new()
            .append(true)
            .open(run.join("metrics.csv"))
            .unwrap();
        f.write_all(b"3,0.4,0.8").unwrap();
        assert_eq!(read_metrics(&run).unwrap().len(), 2);
        // reopening from the finished epochs rewrites the file without it
        drop(rd);
        let lock = RunLock::acquire(&run).unwrap();
        let mut rd = RunDir::reopen(lock, &run, &config(), &[row(1, None)]).unwrap();
        rd.append_metrics(&row(2, None)).unwrap();
        assert_eq!(
            read_metrics(&run).unwrap(),
            vec![row(1, None), row(2, None)]
        );

        let run = dir.path().join("validated");
        let mut validated = config();
        validated.recipe.validation_images = 60;
        let mut rd = RunDir::create(&run, &validated).unwrap();
        rd.append_metrics(&row(1, Some(0.7))).unwrap();
        assert_eq!(read_metrics(&run).unwrap(), vec![row(1, Some(0.7))]);
        let header = fs::read_to_string(run.join("metrics.csv")).unwrap();
        assert!(header.starts_with(&format!("{METRICS_HEADER}{VALIDATION_COLUMN}\n")));
    }

    #[test]
    fn an_existing_run_or_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        RunDir::create(dir.path(), &config()).unwrap();
        let err = RunDir::create(dir.path(), &config())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("already holds a run"), "{err}");
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let err = RunDir::create(&file, &config()).err().unwrap().to_string();
        assert!(err.contains("is a file"), "{err}");
    }

    #[test]
    fn weights_of_another_model_are_refused() {
        let _generator = crate::own_the_generator();
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::create(dir.path(), &config()).unwrap();
        let dense = ModelSpec::Dense { hidden: 128 };
        let vs = VarStore::new(tch::Device::Cpu);
        let _ = dense.build(&vs);
        rd.save_weights(&vs, 1, Held::Trained).unwrap();
        let weights = dir.path().join(WEIGHTS);
        let mut other = VarStore::new(tch::Device::Cpu);
        let _ = ModelSpec::lesson_cnn().build(&other);
        let err = load_weights(&weights, &mut other).unwrap_err().to_string();
        assert!(err.contains("does not fit the model"), "{err}");
        let mut same = VarStore::new(tch::Device::Cpu);
        let _ = dense.build(&same);
        load_weights(&weights, &mut same).unwrap();
        for (name, t) in same.variables() {
            assert!(t.equal(&vs.variables()[&name]), "{name}");
        }
    }
}
