//! `config.json`: what a run was made with, read back by every binary that opens the
//! run. Folders written before recipes were saved whole still load: their recipe name,
//! model and settings are put together into today's [`Recipe`].

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::models::ModelSpec;
use crate::recipe::Recipe;

/// Everything a run was made with, saved as `config.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(try_from = "StoredConfig")]
pub struct RunConfig {
    /// How it was trained: the model and every setting, with the flags' changes; its
    /// `epochs` is the number the run is planned to reach.
    pub recipe: Recipe,
    pub seed: u64,
    /// The device it trained on, as `cpu` or `cuda:N`.
    pub device: String,
    /// libtorch's intra-op threads.
    pub threads: usize,
    pub trainable_parameters: i64,
    /// The folder the data was read from (a name that is not UTF-8 is saved with its odd
    /// bytes replaced, as JSON holds only text).
    #[serde(serialize_with = "lossy")]
    pub data_dir: PathBuf,
    pub libtorch_version: String,
    pub fashion_tch_version: String,
    /// When the run started, local time (RFC 3339).
    pub started: String,
    /// The epoch with the best validation accuracy so far, whose weights are kept in
    /// `best.safetensors` (runs that hold images out for validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<u32>,
    /// The epoch after which `--early-stop` ended the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<u32>,
}

impl RunConfig {
    /// The network the run trained.
    pub fn model(&self) -> &ModelSpec {
        &self.recipe.model
    }
}

/// `config.json` as any version wrote it: today's whole recipe, or a recipe name (or
/// none, before recipes) with the model and settings beside it.
#[derive(Deserialize)]
struct StoredConfig {
    #[serde(default)]
    recipe: Option<StoredRecipe>,
    model: Option<ModelSpec>,
    epochs: Option<u32>,
    batch_size: Option<usize>,
    learning_rate: Option<f64>,
    validation_images: Option<u32>,
    seed: u64,
    device: String,
    threads: usize,
    trainable_parameters: i64,
    data_dir: PathBuf,
    libtorch_version: String,
    fashion_tch_version: String,
    started: String,
    #[serde(default)]
    best_epoch: Option<u32>,
    #[serde(default)]
    stopped_early: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StoredRecipe {
    Whole(Recipe),
    Name(String),
}

impl TryFrom<StoredConfig> for RunConfig {
    type Error = String;

    fn try_from(c: StoredConfig) -> Result<RunConfig, String> {
        let recipe = match c.recipe {
            Some(StoredRecipe::Whole(recipe)) => recipe,
            old => {
                // before recipes were saved whole: the named recipe with the run's own
                // model and settings (runs from before recipes trained the lesson's way)
                let name = match old {
                    Some(StoredRecipe::Name(name)) => name,
                    _ => "lesson".into(),
                };
                let model = c.model.ok_or("it has no model")?;
                let base = Recipe::named(&name, model.kind())
                    .ok_or_else(|| format!("it names an unknown recipe '{name}'"))?;
                Recipe {
                    epochs: c.epochs.ok_or("it has no epochs")?,
                    batch_size: c.batch_size.ok_or("it has no batch_size")?,
                    learning_rate: c.learning_rate.ok_or("it has no learning_rate")?,
                    validation_images: c.validation_images.unwrap_or(base.validation_images),
                    model,
                    ..base
                }
            }
        };
        recipe.check()?;
        Ok(RunConfig {
            recipe,
            seed: c.seed,
            device: c.device,
            threads: c.threads,
            trainable_parameters: c.trainable_parameters,
            data_dir: c.data_dir,
            libtorch_version: c.libtorch_version,
            fashion_tch_version: c.fashion_tch_version,
            started: c.started,
            best_epoch: c.best_epoch,
            stopped_early: c.stopped_early,
        })
    }
}

fn lossy<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::models::ModelKind;

    pub(crate) fn config() -> RunConfig {
        RunConfig {
            recipe: Recipe {
                epochs: 2,
                ..Recipe::lesson(ModelKind::Dense)
            },
            seed: 1,
            device: "cpu".into(),
            threads: 2,
            trainable_parameters: 101_770,
            data_dir: "data".into(),
            libtorch_version: "2.11.0".into(),
            fashion_tch_version: "0.1.0".into(),
            started: "now".into(),
            best_epoch: None,
            stopped_early: None,
        }
    }

    #[test]
    fn a_config_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::to_string_pretty(&config()).unwrap();
        fs::write(dir.path().join("config.json"), json).unwrap();
        assert_eq!(read_config(dir.path()).unwrap(), config());
    }

    /// config.json as the versions before whole recipes wrote it.
    fn old_config(recipe: Option<&str>, validation: Option<i64>) -> serde_json::Value {
        let mut json = serde_json::json!({
            "model": {"kind": "cnn", "filters": [32, 64], "hidden": 256, "convs": [1, 2],
                      "batch_norm": true, "dropout": 0.1},
            "epochs": 18, "batch_size": 64, "learning_rate": 0.004, "seed": 3,
            "device": "cpu", "threads": 2, "trainable_parameters": 5, "data_dir": "d",
            "libtorch_version": "2.11.0", "fashion_tch_version": "0.1.0", "started": "then"
        });
        if let Some(name) = recipe {
            json["recipe"] = name.into();
        }
        if let Some(n) = validation {
            json["validation_images"] = n.into();
        }
        json
    }

    #[test]
    fn configs_from_before_whole_recipes_load_and_a_negative_split_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let write = |json: serde_json::Value| {
            fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
        };
        write(old_config(Some("strong"), Some(100)));
        let old = read_config(dir.path()).unwrap();
        assert_eq!(old.recipe.name, "strong");
        assert!(old.recipe.augment && old.recipe.label_smoothing > 0.0);
        assert_eq!(
            (old.recipe.batch_size, old.recipe.learning_rate),
            (64, 0.004)
        );
        assert_eq!((old.recipe.epochs, old.recipe.validation_images), (18, 100));
        assert_eq!(old.seed, 3);
        // its network as it was, though today's strong recipe scores with mirror images
        assert!(matches!(
            old.model(),
            ModelSpec::Cnn {
                mirror_average: false,
                ..
            }
        ));
        assert!(matches!(
            Recipe::strong().model,
            ModelSpec::Cnn {
                mirror_average: true,
                ..
            }
        ));

        // before recipes, and before --validation: the lesson's way, nothing held out
        write(old_config(None, None));
        let old = read_config(dir.path()).unwrap();
        assert_eq!(old.recipe.name, "lesson");
        assert_eq!(old.recipe.validation_images, 0);

        write(old_config(Some("strong"), Some(-5)));
        let err = format!("{:#}", read_config(dir.path()).unwrap_err());
        assert!(err.contains("not a valid run config"), "{err}");
    }
}
