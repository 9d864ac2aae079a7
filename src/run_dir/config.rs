//! `config.json`: what a run was made with, read back by every binary that opens the
//! run. It carries a `format_version`; each older format is read by one migration to the
//! next, so a folder of any version loads as today's [`RunConfig`]:
//! - 1: before recipes were saved whole (no `format_version`; a recipe name, or none,
//!   with the model and settings beside it);
//! - 2: the whole recipe (no `format_version` yet);
//! - 3: `format_version` 3, and every setting of the model written out;
//! - 4: the model's test-time `views` in place of `mirror_average`, and the recipe's
//!   `ema`, `alternate_flips` and `cutout` (0 and false in older formats);
//! - 5: the network's `input`: its images' size and channels and the class names
//!   (Fashion-MNIST's, 28×28 grey and its ten garments, in older formats), and for a
//!   folder of images, how it was read (`folders`; none in older formats).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::folders::Folders;
use crate::data::{Choice, Dataset, Input};
use crate::files::{read_regular_text, SMALL_FILE};
use crate::models::ModelSpec;
use crate::recipe::{Recipe, RecipeName};

/// The file's name in a run folder.
pub const FILE: &str = "config.json";

/// The format `config.json` is written in.
pub const FORMAT_VERSION: u32 = 5;

/// Everything a run was made with, saved as `config.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// [`FORMAT_VERSION`] when written.
    #[serde(default = "format_version")]
    pub format_version: u32,
    /// How it was trained: the model and every setting, with the flags' changes; its
    /// `epochs` is the number the run is planned to reach.
    pub recipe: Recipe,
    pub seed: u64,
    /// The device it trained on, as `cpu` or `cuda:N`.
    pub device: String,
    /// libtorch's intra-op threads.
    pub threads: usize,
    /// Whether the steps were replayed from a CUDA graph (`--cuda-graph`).
    #[serde(default)]
    pub cuda_graph: bool,
    pub trainable_parameters: i64,
    /// The network's input: the images' size and channels, and the classes.
    #[serde(default = "Input::fashion_mnist")]
    pub input: Input,
    /// For a folder of images: how it was read (its test share, the images left out).
    /// `None`: Fashion-MNIST's IDX files.
    #[serde(default)]
    pub folders: Option<Folders>,
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
    #[serde(default)]
    pub best_epoch: Option<u32>,
    /// The epoch after which `--early-stop` ended the run.
    #[serde(default)]
    pub stopped_early: Option<u32>,
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

impl RunConfig {
    /// The network the run trained.
    pub fn model(&self) -> &ModelSpec {
        &self.recipe.model
    }

    /// The data the run trained on, read as it read it: from `dir` where given, else
    /// from its own folder where that is still there (else the default places, for
    /// Fashion-MNIST); a folder of images made into the run's very input, its test
    /// share and unreadable images as they were.
    pub fn data(&self, dir: Option<&Path>) -> Choice {
        let own = Some(self.data_dir.clone()).filter(|d| d.is_dir());
        let images = self
            .folders
            .as_ref()
            .map(|f| (self.input.size, self.input.channels, f));
        Choice {
            dir: dir.map(Path::to_path_buf).or(own),
            image_size: images.map(|i| i.0),
            channels: images.map(|i| i.1),
            test_share: images.and_then(|i| i.2.test_share),
            skip_unreadable: images.is_some_and(|i| i.2.left_out > 0),
            ..Choice::default()
        }
    }

    /// The test images of the run in `run`, which this config is of, on `device`: of its
    /// own data, or of `dir` (`--data-dir`). Errs, naming both, where they are not of the
    /// run's classes and input, or where the run's own folder of images no longer holds
    /// the very images it had (its test images would be drawn anew).
    pub fn test_data(
        &self,
        run: &Path,
        dir: Option<&Path>,
        device: tch::Device,
    ) -> Result<Dataset> {
        let choice = Choice {
            test_only: true,
            ..self.data(dir)
        };
        let data = crate::data::load(&choice, device)?;
        let what = "give --data-dir a folder of the images it was trained on";
        data.input.ensure_is(&self.input, &data.dir, run, what)?;
        if let (None, Some(had), Some(now)) = (dir, &self.folders, &data.folders) {
            let what = "give --data-dir to score it on the folder as it is now, its test \
                        images drawn anew (some of them may have been trained on)";
            now.ensure_same_images(had, &data.dir, run, what)?;
        }
        Ok(data)
    }
}

fn lossy<S: serde::Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// Reads a run's `config.json`, of any format version.
pub fn read_config(run: &Path) -> Result<RunConfig> {
    let path = run.join(FILE);
    let text = read_regular_text(&path, SMALL_FILE)
        .with_context(|| format!("{} does not look like a run folder", run.display()))?;
    parse(&text).with_context(|| format!("{} is not a valid run config", path.display()))
}

/// A config.json's text as today's config, through the migrations its version needs.
pub fn parse(text: &str) -> Result<RunConfig> {
    let mut json: Value = serde_json::from_str(text)?;
    let Value::Object(fields) = &json else {
        bail!("it is not a JSON object");
    };
    let mut version = match fields.get("format_version") {
        Some(v) => {
            let v = v.as_u64().context("format_version is not a whole number")?;
            // a number past u32 is newer than any this reads, not the version it wraps to
            u32::try_from(v).unwrap_or(u32::MAX)
        }
        // the two formats from before the field, told apart once, here
        None if fields.get("recipe").is_some_and(Value::is_object) => 2,
        None => 1,
    };
    if version > FORMAT_VERSION {
        let version = &fields["format_version"];
        bail!(
            "its format_version {version} is newer than this fashion-tch reads \
             ({FORMAT_VERSION}); use the fashion-tch that made it"
        );
    }
    while version < FORMAT_VERSION {
        json = match version {
            1 => from_1(json)?,
            3 => from_3(json),
            _ => json,
        };
        version += 1;
    }
    json["format_version"] = FORMAT_VERSION.into();
    let config: RunConfig = serde_json::from_value(json)?;
    config.recipe.check().map_err(anyhow::Error::msg)?;
    ensure!(
        config.threads >= 1,
        "its threads is {}; a run trains on 1 or more",
        config.threads
    );
    Ok(config)
}

/// Format 1 to 2: the named recipe (the lesson's when none is named: runs from before
/// recipes trained the lesson's way) with the run's own model and settings, put
/// together into the whole recipe.
fn from_1(mut json: Value) -> Result<Value> {
    let take = |json: &mut Value, field: &str| -> Result<Value> {
        match json.as_object_mut().and_then(|o| o.remove(field)) {
            Some(v) if !v.is_null() => Ok(v),
            _ => bail!("it has no {field}"),
        }
    };
    let name: RecipeName = match json.get("recipe") {
        Some(name) => serde_json::from_value(name.clone())
            .with_context(|| format!("it names an unknown recipe {name}"))?,
        None => RecipeName::Lesson,
    };
    let model: ModelSpec = serde_json::from_value(take(&mut json, "model")?)
        .context("its model is not one fashion-tch builds")?;
    let base = Recipe::named(name, model.kind()).map_err(anyhow::Error::msg)?;
    let validation = json
        .as_object_mut()
        .and_then(|o| o.remove("validation_images"));
    let mut recipe = serde_json::to_value(Recipe { model, ..base })?;
    recipe["epochs"] = take(&mut json, "epochs")?;
    recipe["batch_size"] = take(&mut json, "batch_size")?;
    recipe["learning_rate"] = take(&mut json, "learning_rate")?;
    if let Some(n) = validation.filter(|v| !v.is_null()) {
        recipe["validation_images"] = n;
    }
    json["recipe"] = recipe;
    Ok(json)
}

/// Format 3 (and before) to 4: a CNN's `mirror_average: true` is the `views` "mirror",
/// and false (or none) "one". The recipe's new settings are off: none of those runs had
/// them (format 1's recipe, filled in from today's, may have them on).
fn from_3(mut json: Value) -> Value {
    if let Some(recipe) = json.get_mut("recipe").and_then(Value::as_object_mut) {
        recipe.insert("ema".into(), 0.0.into());
        recipe.insert("alternate_flips".into(), false.into());
        recipe.insert("cutout".into(), 0.into());
    }
    if let Some(model) = json
        .get_mut("recipe")
        .and_then(|r| r.get_mut("model"))
        .and_then(Value::as_object_mut)
    {
        if let Some(mirror) = model.remove("mirror_average") {
            let views = match mirror.as_bool() {
                Some(true) => "mirror",
                _ => "one",
            };
            model.insert("views".into(), views.into());
        }
    }
    json
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::models::{ModelKind, Views};
    use std::fs;

    pub(crate) fn config() -> RunConfig {
        RunConfig {
            format_version: FORMAT_VERSION,
            recipe: Recipe {
                epochs: 2,
                ..Recipe::lesson(ModelKind::Dense)
            },
            seed: 1,
            device: "cpu".into(),
            threads: 2,
            cuda_graph: false,
            trainable_parameters: 101_770,
            input: Input::fashion_mnist(),
            folders: None,
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
        assert_eq!(old.recipe.name, RecipeName::Strong);
        assert!(old.recipe.augment && old.recipe.label_smoothing > 0.0);
        assert_eq!(
            (old.recipe.batch_size, old.recipe.learning_rate),
            (64, 0.004)
        );
        assert_eq!((old.recipe.epochs, old.recipe.validation_images), (18, 100));
        assert_eq!(old.seed, 3);
        // its network and recipe as they were, though today's strong recipe scores other
        // views, and may average its weights
        let views = |model: &ModelSpec| match model {
            ModelSpec::Cnn { views, .. } => *views,
            ModelSpec::Dense { .. } => Views::One,
        };
        assert_eq!(views(old.model()), Views::One);
        assert_ne!(views(&Recipe::strong().model), Views::One);
        assert_eq!(old.recipe.ema, 0.0);
        assert!(!old.recipe.alternate_flips && old.recipe.cutout == 0);

        // before recipes, and before --validation: the lesson's way, nothing held out
        write(old_config(None, None));
        let old = read_config(dir.path()).unwrap();
        assert_eq!(old.recipe.name, RecipeName::Lesson);
        assert_eq!(old.recipe.validation_images, 0);

        write(old_config(Some("strong"), Some(-5)));
        let err = format!("{:#}", read_config(dir.path()).unwrap_err());
        assert!(err.contains("not a valid run config"), "{err}");
    }

    #[test]
    fn format_3_scores_with_the_mirror_as_it_said() {
        let mut json = serde_json::to_value(RunConfig {
            recipe: Recipe {
                model: ModelSpec::lesson_cnn(),
                ..config().recipe
            },
            ..config()
        })
        .unwrap();
        json["format_version"] = 3.into();
        let model = json["recipe"]["model"].as_object_mut().unwrap();
        model.remove("views");
        for (mirror, views) in [(true, Views::Mirror), (false, Views::One)] {
            json["recipe"]["model"]["mirror_average"] = mirror.into();
            let back = parse(&json.to_string()).unwrap();
            assert!(matches!(back.model(), ModelSpec::Cnn { views: v, .. } if *v == views));
            assert_eq!(back.format_version, FORMAT_VERSION);
        }
    }
}
