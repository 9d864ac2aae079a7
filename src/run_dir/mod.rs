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
mod metrics;
mod weights;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use tch::nn::VarStore;

pub use config::{read_config, RunConfig};
pub(crate) use lock::RunLock;
pub use metrics::{curves, draw_curves, read_metrics, EpochMetrics, METRICS};
use metrics::{metrics_row, METRICS_HEADER, VALIDATION_COLUMN};
pub use weights::BEST_WEIGHTS;
pub(crate) use weights::{best_weights_epoch, copy_into};
pub use weights::{load_run, load_weights, Held, LoadedRun, Weights, WEIGHTS};

use crate::files::{is_temporary_of, write_atomically, write_safetensors};
use crate::models::ModelSpec;

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

    /// Saves the weights `vs` of epoch `epoch` as `file` in the folder: [`WEIGHTS`]
    /// (the last epoch's) or [`BEST_WEIGHTS`] (the best on validation). The file says
    /// which epoch it holds, so a reader never pairs them with another epoch's row, and
    /// which weights (`held`).
    pub fn save_weights(&self, file: &str, vs: &VarStore, epoch: u32, held: Held) -> Result<()> {
        let tensors: Vec<_> = vs.variables().into_iter().collect();
        let metadata = weights::weights_metadata(epoch, held);
        write_safetensors(&self.path.join(file), &tensors, Some(metadata))
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
        let _ = dense.build(&vs, &crate::data::Input::fashion_mnist());
        rd.save_weights(WEIGHTS, &vs, 1, Held::Trained).unwrap();
        let weights = dir.path().join(WEIGHTS);
        let mut other = VarStore::new(tch::Device::Cpu);
        let _ = ModelSpec::lesson_cnn().build(&other, &crate::data::Input::fashion_mnist());
        let err = load_weights(&weights, &mut other).unwrap_err().to_string();
        assert!(err.contains("does not fit the model"), "{err}");
        let mut same = VarStore::new(tch::Device::Cpu);
        let _ = dense.build(&same, &crate::data::Input::fashion_mnist());
        load_weights(&weights, &mut same).unwrap();
        for (name, t) in same.variables() {
            assert!(t.equal(&vs.variables()[&name]), "{name}");
        }
    }
}
