//! A run folder: `config.json` (everything needed to rebuild and judge the run),
//! `metrics.csv` (a row per epoch, flushed as it goes) and `model.safetensors` (the
//! weights, replaced atomically so a crash never leaves half a file).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use crate::models::ModelSpec;
use crate::recipe::Recipe;

/// Everything a run was made with, saved as `config.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RunConfig {
    pub model: ModelSpec,
    /// Runs from before recipes existed trained the lesson's way.
    #[serde(default)]
    pub recipe: Recipe,
    pub epochs: u32,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Training images held out for validation (`--validation`). Runs from before the
    /// flag held out their recipe's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_images: Option<u32>,
    pub seed: u64,
    /// The device it trained on, as `cpu` or `cuda:N`.
    pub device: String,
    /// libtorch's intra-op threads.
    pub threads: usize,
    pub trainable_parameters: i64,
    /// The folder the data was read from.
    pub data_dir: PathBuf,
    pub libtorch_version: String,
    pub fashion_tch_version: String,
    /// When the run started, local time (RFC 3339).
    pub started: String,
}

/// One epoch's figures, a row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq)]
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

/// An open run folder.
pub struct RunDir {
    pub path: PathBuf,
    metrics: File,
}

impl RunDir {
    /// The default folder for a new run: `runs/<model>-<YYYYmmdd-HHMMSS>`.
    pub fn default_path(model: &ModelSpec) -> PathBuf {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        PathBuf::from("runs").join(format!("{}-{stamp}", model.name()))
    }

    /// Creates the folder and writes `config.json` and the `metrics.csv` header, so that a
    /// folder we cannot write to fails now, before any training. A folder that already
    /// holds a run is refused: its results are never overwritten. `validation`: the rows
    /// will have a validation accuracy.
    pub fn create(path: &Path, config: &RunConfig, validation: bool) -> Result<RunDir> {
        if path.is_file() {
            bail!(
                "--out {} is a file; give a folder (new or empty) for the run",
                path.display()
            );
        }
        if path.join("config.json").exists() {
            bail!(
                "--out {} already holds a run; choose another folder so its results are kept",
                path.display()
            );
        }
        fs::create_dir_all(path)
            .with_context(|| format!("creating the run folder {}", path.display()))?;
        write_atomically(
            &path.join("config.json"),
            serde_json::to_string_pretty(config)?.as_bytes(),
        )?;
        let metrics_path = path.join("metrics.csv");
        let mut metrics = File::create(&metrics_path)
            .with_context(|| format!("creating {}", metrics_path.display()))?;
        let extra = if validation { VALIDATION_COLUMN } else { "" };
        writeln!(metrics, "{METRICS_HEADER}{extra}")
            .with_context(|| format!("writing {}", metrics_path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// Opens a run folder to continue it: rewrites `config.json` with `config` (the run's
    /// own, with the new epoch total; its start time is kept) and appends to `metrics.csv`.
    pub fn reopen(path: &Path, config: &RunConfig) -> Result<RunDir> {
        let old = read_config(path)?;
        let config = RunConfig {
            started: old.started,
            ..config.clone()
        };
        write_atomically(
            &path.join("config.json"),
            serde_json::to_string_pretty(&config)?.as_bytes(),
        )?;
        let metrics_path = path.join("metrics.csv");
        let metrics = OpenOptions::new()
            .append(true)
            .open(&metrics_path)
            .with_context(|| format!("opening {}", metrics_path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// Appends one epoch's row to `metrics.csv` and flushes it to disk.
    pub fn append_metrics(&mut self, m: &EpochMetrics) -> Result<()> {
        let path = self.path.join("metrics.csv");
        let validation = m
            .validation_accuracy
            .map_or(String::new(), |a| format!(",{a:.6}"));
        writeln!(
            self.metrics,
            "{},{:.6},{:.6},{:.6},{:.6},{:.3}{validation}",
            m.epoch, m.train_loss, m.train_accuracy, m.test_loss, m.test_accuracy, m.seconds
        )
        .and_then(|()| self.metrics.sync_data())
        .with_context(|| format!("writing {}", path.display()))
    }

    /// Saves the weights as `model.safetensors`, through a temporary file and a rename.
    pub fn save_weights(&self, vs: &VarStore) -> Result<()> {
        let path = self.path.join("model.safetensors");
        let tmp = self.path.join(".model.tmp.safetensors");
        // safetensors holds contiguous data; the CNN's CPU weights are channels-last.
        let mut vars: Vec<(String, tch::Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.contiguous()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        tch::Tensor::write_safetensors(&vars, &tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }
}

/// Reads a run's `config.json`.
pub fn read_config(run: &Path) -> Result<RunConfig> {
    let path = run.join("config.json");
    let text = fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} ({} does not look like a run folder)",
            path.display(),
            run.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid run config", path.display()))
}

/// Reads a run's `metrics.csv`.
pub fn read_metrics(run: &Path) -> Result<Vec<EpochMetrics>> {
    let path = run.join("metrics.csv");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let bad = || {
            format!(
                "{} line {} is not a metrics row: {line:?}",
                path.display(),
                i + 1
            )
        };
        let f: Vec<f64> = line
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(bad)?;
        if f.len() != 6 && f.len() != 7 {
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

/// Loads a run's weights into `vs`, whose variables must match them by name and shape.
pub fn load_weights(run: &Path, vs: &mut VarStore) -> Result<()> {
    let path = run.join("model.safetensors");
    let stored = tch::Tensor::read_safetensors(&path)
        .with_context(|| format!("reading {} (missing or truncated?)", path.display()))?;
    let stored: std::collections::HashMap<_, _> = stored.into_iter().collect();
    for (name, var) in vs.variables() {
        match stored.get(&name) {
            Some(t) if t.size() == var.size() => {}
            Some(t) => bail!(
                "{} does not fit the model in config.json: {name} is {:?} there, {:?} in the model",
                path.display(),
                t.size(),
                var.size()
            ),
            None => bail!(
                "{} does not fit the model in config.json: it has no {name}",
                path.display()
            ),
        }
    }
    vs.load(&path)
        .with_context(|| format!("loading {}", path.display()))
}

/// A saved run, rebuilt: its config and its network with the saved weights.
pub struct LoadedRun {
    pub config: RunConfig,
    pub vs: VarStore,
    pub net: tch::nn::SequentialT,
}

/// Rebuilds the exact network of the run in `run` from its `config.json` and loads its
/// weights onto `device`.
pub fn load_run(run: &Path, device: tch::Device) -> Result<LoadedRun> {
    if !run.is_dir() {
        bail!(
            "{} is not a run folder (one made by train_dense or train_cnn)",
            run.display()
        );
    }
    let config = read_config(run)?;
    let mut vs = VarStore::new(device);
    let net = config.model.build(&vs.root());
    load_weights(run, &mut vs)?;
    Ok(LoadedRun { config, vs, net })
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RunConfig {
        RunConfig {
            model: ModelSpec::LESSON_DENSE,
            recipe: Recipe::Lesson,
            epochs: 2,
            batch_size: 32,
            learning_rate: 1e-3,
            validation_images: Some(0),
            seed: 1,
            device: "cpu".into(),
            threads: 2,
            trainable_parameters: 101_770,
            data_dir: "data".into(),
            libtorch_version: "2.11.0".into(),
            fashion_tch_version: "0.1.0".into(),
            started: "now".into(),
        }
    }

    #[test]
    fn config_and_metrics_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let mut rd = RunDir::create(&run, &config(), false).unwrap();
        let m = EpochMetrics {
            epoch: 1,
            train_loss: 0.5,
            train_accuracy: 0.8,
            test_loss: 0.6,
            test_accuracy: 0.75,
            seconds: 1.5,
            validation_accuracy: None,
        };
        rd.append_metrics(&m).unwrap();
        assert_eq!(read_config(&run).unwrap(), config());
        assert_eq!(read_metrics(&run).unwrap(), vec![m.clone()]);

        let run = dir.path().join("validated");
        let mut rd = RunDir::create(&run, &config(), true).unwrap();
        let m = EpochMetrics {
            validation_accuracy: Some(0.7),
            ..m
        };
        rd.append_metrics(&m).unwrap();
        assert_eq!(read_metrics(&run).unwrap(), vec![m]);
    }

    #[test]
    fn configs_from_before_recipes_and_validation_load_and_a_negative_split_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut json = serde_json::to_value(config()).unwrap();
        let fields = json.as_object_mut().unwrap();
        fields.remove("recipe");
        fields.remove("validation_images");
        fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
        let old = read_config(dir.path()).unwrap();
        assert_eq!((old.recipe, old.validation_images), (Recipe::Lesson, None));

        json["validation_images"] = (-5).into();
        fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
        let err = format!("{:#}", read_config(dir.path()).unwrap_err());
        assert!(err.contains("not a valid run config"), "{err}");
    }

    #[test]
    fn an_existing_run_or_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        RunDir::create(dir.path(), &config(), false).unwrap();
        let err = RunDir::create(dir.path(), &config(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("already holds a run"), "{err}");
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let err = RunDir::create(&file, &config(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("is a file"), "{err}");
    }

    #[test]
    fn weights_of_another_model_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::create(dir.path(), &config(), false).unwrap();
        let vs = VarStore::new(tch::Device::Cpu);
        let _ = ModelSpec::LESSON_DENSE.build(&vs.root());
        rd.save_weights(&vs).unwrap();
        let mut other = VarStore::new(tch::Device::Cpu);
        let _ = ModelSpec::lesson_cnn().build(&other.root());
        let err = load_weights(dir.path(), &mut other)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not fit the model"), "{err}");
        let mut same = VarStore::new(tch::Device::Cpu);
        let _ = ModelSpec::LESSON_DENSE.build(&same.root());
        load_weights(dir.path(), &mut same).unwrap();
    }
}
