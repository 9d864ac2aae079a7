//! How a network is trained. A [`Recipe`] is plain data: the network, the optimiser, the
//! schedule, augmentation, label smoothing, batch size, learning rate, epochs and the
//! validation split. A run saves its recipe whole in `config.json` (with the changes its
//! flags made), so the folder records exactly what trained it.
//!
//! There are two: [`Recipe::lesson`], the Keras lesson's, and [`Recipe::strong`]. Adding
//! one means adding a constructor and its name to [`RecipeName`].
//!
//! The flags that change a recipe are declared once, in [`RecipeArgs`] (and the model's
//! in [`crate::models::CnnArgs`]): each field has the name of the recipe field it sets,
//! and [`Overrides`] applies them by that name. Adding a setting touches three places: its
//! field in [`RecipeArgs`], its field in [`Recipe`] (with its value in
//! [`Recipe::lesson`]), and the code that uses it (docs/adding-a-setting.md).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tch::{Kind, Tensor};

use crate::models::{CnnArgs, Convs, ModelKind, ModelSpec, Views};

/// How a network is trained; see the module's documentation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Recipe {
    /// The name `--recipe` takes.
    pub name: RecipeName,
    /// The network, as `--hidden`, `--filters` and `--convs` shape it.
    pub model: ModelSpec,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    /// Random shifts of up to 2 pixels and mirroring of every training batch ([`augment`]).
    pub augment: bool,
    /// With `augment`: each image mirrored in every other epoch (in the odd or the even
    /// ones, as a draw from the seed decides for it), rather than at random every time.
    #[serde(default)]
    pub alternate_flips: bool,
    /// With `augment`: the side of a square zeroed at a random place in each training
    /// image (cutout); 0 for none.
    #[serde(default)]
    pub cutout: u32,
    /// The decay of the moving average of the weights that is scored and saved
    /// (`src/ema.rs`); 0 for none, the weights of the last step.
    #[serde(default)]
    pub ema: f64,
    /// The share of each label spread evenly over the ten classes (0: plain labels).
    pub label_smoothing: f64,
    /// Images per optimisation step.
    pub batch_size: usize,
    /// The fixed learning rate, or the peak of the one-cycle schedule.
    pub learning_rate: f64,
    /// Passes over the training set.
    pub epochs: u32,
    /// Training images held out (the last ones) and scored every epoch, to choose settings
    /// on: exactly this many (a constructor's number is for the 60,000 images of
    /// Fashion-MNIST; a smaller set may need `--validation N`).
    pub validation_images: u32,
    /// Stop when validation accuracy has not improved for this many epochs.
    #[serde(default)]
    pub early_stop: Option<u32>,
    /// The forward pass's arithmetic (the weights and Adam's state stay float32).
    #[serde(default)]
    pub precision: Precision,
}

/// The recipes, by the name `--recipe` takes.
#[derive(clap::ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecipeName {
    /// The Keras lesson's network and settings.
    #[default]
    Lesson,
    /// A stronger CNN, trained the stronger way (the CNN only).
    Strong,
}

impl std::fmt::Display for RecipeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecipeName::Lesson => "lesson",
            RecipeName::Strong => "strong",
        })
    }
}

impl RecipeName {
    /// What `--help` says of `--recipe`: the strong recipe's [`Recipe::summary`].
    pub fn help() -> String {
        format!(
            "lesson: the lesson's network and settings. strong: {} [default: lesson]",
            Recipe::strong().summary()
        )
    }
}

/// The arithmetic of the training step's forward pass (`--precision`).
#[derive(clap::ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 throughout.
    #[default]
    F32,
    /// Autocast in bfloat16: the training step's matrix products and convolutions in
    /// bfloat16, the loss, the weights and the scoring in float32 (float32 throughout, with
    /// a note, on a CPU without AVX-512 BF16)
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

/// The optimiser (see [`crate::optim`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Optimizer {
    /// Adam with PyTorch's defaults: β₁ 0.9, β₂ 0.999, ε 1e-8.
    Adam,
    /// AdamW: Adam whose weight decay shrinks the weights directly.
    AdamW { weight_decay: f64 },
}

/// How the learning rate moves over the run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The same rate at every step.
    Constant,
    /// [`OneCycle`]: up to the peak over the first 30% of the steps, then down to almost
    /// nothing, with Adam's β₁ moving the other way.
    OneCycle,
}

/// What a recipe sets at one step: the learning rate and Adam's β₁.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StepSettings {
    pub learning_rate: f64,
    pub beta1: f64,
}

/// Adam's β₁ outside a one-cycle schedule (PyTorch's default).
pub(crate) const BETA1: f64 = 0.9;

impl Recipe {
    /// The recipe called `name` for a network of `kind`; errs, naming both, when there is
    /// none.
    pub fn named(name: RecipeName, kind: ModelKind) -> Result<Recipe, String> {
        match (name, kind) {
            (RecipeName::Lesson, kind) => Ok(Recipe::lesson(kind)),
            (RecipeName::Strong, ModelKind::Cnn) => Ok(Recipe::strong()),
            (name, kind) => Err(format!(
                "there is no recipe '{name}' for the {} network; it has the lesson's",
                kind.name()
            )),
        }
    }

    /// The Keras lesson: its network, plain Adam at 0.001, batch 32, 5 epochs of the
    /// dense net or 10 of the CNN, all 60,000 training images.
    pub fn lesson(kind: ModelKind) -> Recipe {
        let (model, epochs) = match kind {
            ModelKind::Dense => (ModelSpec::Dense { hidden: 128 }, 5),
            ModelKind::Cnn => (ModelSpec::lesson_cnn(), 10),
        };
        Recipe {
            name: RecipeName::Lesson,
            model,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Constant,
            augment: false,
            alternate_flips: false,
            cutout: 0,
            ema: 0.0,
            label_smoothing: 0.0,
            batch_size: 32,
            learning_rate: 1e-3,
            epochs,
            validation_images: 0,
            early_stop: None,
            precision: Precision::F32,
        }
    }

    /// A stronger CNN trained the stronger way. [`Recipe::summary`] says it in words (for
    /// `--help` and the README); docs/strong-recipe.md has why each value, as measured on
    /// held-out images (the first block's second convolution, at the full 28×28, would
    /// cost about half of each step, for one).
    pub fn strong() -> Recipe {
        Recipe {
            name: RecipeName::Strong,
            model: ModelSpec::Cnn {
                filters: vec![32, 64],
                hidden: 256,
                convs: Convs::new(vec![1, 2]),
                batch_norm: true,
                dropout: 0.1,
                views: Views::Mirror,
            },
            optimizer: Optimizer::AdamW { weight_decay: 0.05 },
            schedule: Schedule::OneCycle,
            augment: true,
            label_smoothing: 0.1,
            batch_size: 128,
            learning_rate: 5e-3,
            epochs: 48,
            validation_images: 5_000,
            precision: Precision::Bf16,
            // the rest as the lesson has it: no moving average, flips at random, no
            // cutout, no early stop
            ..Recipe::lesson(ModelKind::Cnn)
        }
    }

    /// Errs, naming the setting, when the recipe cannot train (a hand-edited
    /// `config.json`): no batch, a learning rate that is not above 0, a probability out
    /// of range, or layers without units.
    pub fn check(&self) -> Result<(), String> {
        let probability = |p: f64| (0.0..1.0).contains(&p);
        let model_ok = match &self.model {
            ModelSpec::Dense { hidden } => *hidden >= 1,
            ModelSpec::Cnn {
                filters,
                hidden,
                dropout,
                ..
            } => {
                *hidden >= 1
                    && !filters.is_empty()
                    && filters.len() <= crate::models::MAX_BLOCKS
                    && filters.iter().all(|&f| f >= 1)
                    && probability(*dropout)
            }
        };
        let decay_ok = match self.optimizer {
            Optimizer::Adam => true,
            Optimizer::AdamW { weight_decay } => weight_decay >= 0.0,
        };
        let checks = [
            (self.batch_size >= 1, "batch_size must be 1 or more"),
            (
                self.learning_rate > 0.0 && self.learning_rate.is_finite(),
                "learning_rate must be above 0",
            ),
            (self.epochs >= 1, "epochs must be 1 or more"),
            (
                probability(self.label_smoothing),
                "label_smoothing must be in [0, 1)",
            ),
            (decay_ok, "weight_decay must not be negative"),
            (probability(self.ema), "ema must be in [0, 1)"),
            (
                i64::from(self.cutout) <= crate::data::SIDE as i64,
                "cutout must be at most the image's 28 pixels",
            ),
            (
                self.augment || (self.cutout == 0 && !self.alternate_flips),
                "--cutout and --alternate-flips change augmented batches, and this recipe \
                 does not augment (--recipe strong does)",
            ),
            (
                model_ok,
                "the model needs units in every layer, 1 to 4 blocks, dropout in [0, 1)",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(format!("the recipe cannot train: {what}")),
            None => Ok(()),
        }
    }

    /// The training loss: softmax cross-entropy, against smoothed labels where the recipe
    /// smooths them (with 0.1 the true class gets 0.91 and every other 0.01, which keeps
    /// the network from growing ever more confident). Scores always use the plain loss.
    pub fn loss(&self, logits: &Tensor, labels: &Tensor) -> Tensor {
        logits.cross_entropy_loss::<Tensor>(
            labels,
            None,
            tch::Reduction::Mean,
            -100,
            self.label_smoothing,
        )
    }

    /// The learning rate and β₁ for step `step` (0-based) of a run of `total` steps.
    pub(crate) fn at_step(&self, step: usize, total: usize) -> StepSettings {
        match self.schedule {
            Schedule::Constant => StepSettings {
                learning_rate: self.learning_rate,
                beta1: BETA1,
            },
            Schedule::OneCycle => {
                let cycle = OneCycle {
                    peak: self.learning_rate,
                    total,
                };
                StepSettings {
                    learning_rate: cycle.learning_rate(step),
                    beta1: cycle.beta1(step),
                }
            }
        }
    }

    /// Where `self` and `other` differ, as flags: `--lr 0.001, not --lr 0.002` for each
    /// (`self`'s value first), sorted by the settings' names. Settings no flag sets
    /// (batch norm, the optimiser, …) differ only with the recipe, and are named by
    /// `--recipe`. `--epochs` is left out: a run may always go on for longer.
    pub fn differences(&self, other: &Recipe) -> Vec<String> {
        let (ours, theirs) = (settings(self), settings(other));
        let mut out = Vec::new();
        let mut unflagged = false;
        for (field, value) in &ours {
            let other = theirs.iter().find(|(f, _)| f == field).map(|(_, v)| v);
            if field == "epochs" || other == Some(value) {
                continue;
            }
            let name = field.rsplit('.').next().unwrap_or(field);
            // a setting that is off has no flag: "no --early-stop"
            let said = |flag: &str, v: Option<&Value>| match v.filter(|v| !v.is_null()) {
                Some(v) => format!("--{flag} {}", flag_value(v)),
                None => format!("no --{flag}"),
            };
            match flag_of(name) {
                Some(flag) => out.push(format!(
                    "{}, not {}",
                    said(&flag, Some(value)),
                    said(&flag, other)
                )),
                None => unflagged = true,
            }
        }
        if unflagged && out.iter().all(|d| !d.starts_with("--recipe")) {
            out.push(format!(
                "--recipe {} as it was then, not as it is now",
                self.name
            ));
        }
        out
    }
}

impl Recipe {
    /// The recipe in a few lines, from its values: what `train_cnn --help` and the README
    /// say of the strong recipe (a test holds the README to it).
    pub fn summary(&self) -> String {
        let mut parts = vec![self.model.summary()];
        if self.validation_images > 0 {
            parts.push(format!(
                "the last {} training images held out for validation (--validation 0 trains \
                 on all of them)",
                thousands(self.validation_images)
            ));
        }
        if self.augment {
            let flips = match self.alternate_flips {
                true => "each image mirrored in every other epoch",
                false => "mirrored half the time",
            };
            let cutout = match self.cutout {
                0 => String::new(),
                side => format!(", with a {side}×{side} square cut out"),
            };
            parts.push(format!(
                "every batch shifted by up to {PAD} pixels at random and {flips}{cutout}"
            ));
        }
        if self.label_smoothing > 0.0 {
            parts.push(format!("labels smoothed by {}", self.label_smoothing));
        }
        let optimiser = match self.optimizer {
            Optimizer::Adam => "Adam".to_string(),
            Optimizer::AdamW { weight_decay } => format!("AdamW (weight decay {weight_decay})"),
        };
        parts.push(match self.schedule {
            Schedule::Constant => format!("{optimiser} at {}", self.learning_rate),
            Schedule::OneCycle => format!(
                "{optimiser} on a one-cycle schedule peaking at {}",
                self.learning_rate
            ),
        });
        parts.push(format!("batch {}, {} epochs", self.batch_size, self.epochs));
        if self.precision == Precision::Bf16 {
            parts.push(
                "the training step in bfloat16 where the CPU or GPU has it, in float32 elsewhere"
                    .into(),
            );
        }
        if self.ema > 0.0 {
            parts.push(format!(
                "a moving average of the weights (decay {}) scored and saved",
                self.ema
            ));
        }
        if let ModelSpec::Cnn { views, .. } = self.model {
            match views {
                Views::One => {}
                Views::Mirror => parts.push("each image scored with its mirror image".into()),
                Views::Shifted => parts.push(
                    "each image scored with its mirror image, and both shifted a pixel \
                     up-left and down-right"
                        .into(),
                ),
            }
        }
        parts.join("; ")
    }
}

/// `5000` as `5,000`.
fn thousands(n: u32) -> String {
    match n {
        0..1000 => n.to_string(),
        _ => format!("{},{:03}", n / 1000, n % 1000),
    }
}

impl Recipe {
    /// The flags that make `base` into this recipe (`--epochs` aside, which a run's
    /// length sets): `["--hidden", "64", "--lr", "0.002"]`. Errs, naming it, where they
    /// differ in a setting no flag sets.
    pub fn flags_over(&self, base: &Recipe) -> Result<Vec<String>, String> {
        let theirs = settings(base);
        let mut flags = Vec::new();
        for (field, value) in settings(self) {
            let same = theirs.iter().any(|(f, v)| *f == field && *v == value);
            if field == "epochs" || same {
                continue;
            }
            let name = field.rsplit('.').next().unwrap_or(&field);
            if value.is_null() {
                return Err(format!(
                    "the recipe has no {field}, which the {} recipe sets, and no flag unsets it",
                    base.name
                ));
            }
            let flag = flag_of(name).ok_or_else(|| {
                format!(
                    "the recipe's {field} differs from the {} recipe's, and no flag sets it",
                    base.name
                )
            })?;
            flags.extend([format!("--{flag}"), flag_value(&value)]);
        }
        Ok(flags)
    }
}

/// A recipe's settings, each by its path (`model.hidden`), sorted; a list is one
/// setting.
fn settings(recipe: &Recipe) -> Vec<(String, Value)> {
    fn walk(prefix: &str, value: Value, out: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(fields) => {
                for (name, value) in fields {
                    walk(&format!("{prefix}{name}."), value, out);
                }
            }
            value => out.push((prefix.trim_end_matches('.').to_string(), value)),
        }
    }
    let mut json = serde_json::to_value(recipe).unwrap_or_default();
    // per-block convolutions as --convs takes them: one count, or one per block (the
    // recipe keeps them shortened, the last count repeating)
    let blocks = json["model"]["filters"].as_array().map_or(0, Vec::len);
    if let Some(convs) = json["model"].get_mut("convs").and_then(Value::as_array_mut) {
        while convs.len() < blocks {
            let last = convs.last().cloned().unwrap_or_default();
            convs.push(last);
        }
    }
    let mut out = Vec::new();
    walk("", json, &mut out);
    out
}

/// The flag that sets the recipe field named `field`, without its dashes: the long name of
/// the argument of that name in [`RecipeArgs`] or [`CnnArgs`] (`learning_rate` is `lr`);
/// `recipe` for the name. `None` for settings no flag sets.
fn flag_of(field: &str) -> Option<String> {
    if field == "name" {
        return Some("recipe".into());
    }
    use clap::Args;
    let command = CnnArgs::augment_args(RecipeArgs::augment_args(clap::Command::new("flags")));
    let arg = command.get_arguments().find(|a| a.get_id() == field)?;
    arg.get_long().map(str::to_string)
}

/// A setting's value as a flag takes it: `32,64` for a list.
fn flag_value(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(flag_value).collect::<Vec<_>>().join(","),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The flags that change a recipe's training settings, as clap reads them: each field is
/// named after the [`Recipe`] field it sets, which is how [`Overrides`] applies it (so a
/// flag's long name may differ, as `--lr` sets `learning_rate`). `None`: not given.
#[derive(clap::Args, Serialize, Clone, Debug, Default)]
pub struct RecipeArgs {
    /// Images per optimisation step [default: 32; 128 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,

    /// Adam's learning rate, above 0; with --recipe strong, the peak of its one-cycle
    /// schedule [default: 0.001; 0.005 with --recipe strong]
    #[arg(long = "lr", allow_negative_numbers = true, value_parser = positive_f64)]
    pub learning_rate: Option<f64>,

    /// Training images held out (the last N, fewer than the training set) and scored
    /// every epoch, to choose settings on without looking at the test set; 0 trains on
    /// all of them (the final fit, once settings are chosen); the best epoch's weights are
    /// kept in best.safetensors [default: 0; 5000 with --recipe strong]
    #[arg(long = "validation", allow_negative_numbers = true, value_name = "N")]
    pub validation_images: Option<u32>,

    /// Stop when the validation accuracy has not improved for N epochs, and say so (the
    /// best epoch's weights are in best.safetensors); needs images held out (--validation)
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub early_stop: Option<u32>,

    /// The share of each label spread evenly over the ten classes, from 0 (plain
    /// labels) to below 1; the training loss only [default: 0; 0.1 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_name = "SHARE", value_parser = share)]
    pub label_smoothing: Option<f64>,

    /// AdamW's weight decay: each step shrinks the weights by this share of the learning
    /// rate, apart from the gradient; 0 or more; AdamW only (--recipe strong)
    /// [default: 0.05 with --recipe strong]
    #[arg(long, allow_negative_numbers = true, value_name = "DECAY", value_parser = non_negative_f64)]
    #[serde(skip)]
    pub weight_decay: Option<f64>,

    /// Keep an exponential moving average of the weights, moving a share 1 - DECAY of the
    /// way to the trained weights after every step, and use it for validation, testing
    /// and the saved weights (model.safetensors, best.safetensors); from 0 (none) to below
    /// 1: 0.999 averages over about the last 1,000 steps [default: 0]
    #[arg(long, allow_negative_numbers = true, value_name = "DECAY", value_parser = share)]
    pub ema: Option<f64>,

    /// With augmentation (--recipe strong): mirror each training image in every other
    /// epoch, in the odd or the even ones as a draw from the seed decides for it, instead
    /// of at random every time [default: false]
    #[arg(long, value_name = "true|false")]
    pub alternate_flips: Option<bool>,

    /// With augmentation (--recipe strong): zero a square of PIXELS × PIXELS at a random
    /// place in each training image (cutout); 0 for none [default: 0]
    #[arg(long, allow_negative_numbers = true, value_name = "PIXELS", value_parser = clap::value_parser!(u32).range(0..=28))]
    pub cutout: Option<u32>,

    /// The training step's arithmetic: f32, or bf16 (autocast runs matrix products and
    /// convolutions in bfloat16; the weights, the optimiser, the loss and the scoring stay
    /// float32). A CUDA GPU or a CPU with AVX-512 BF16 only; elsewhere the run says so and
    /// trains in f32 [default: f32, bf16 with --recipe strong]
    #[arg(long, value_enum, value_name = "f32|bf16")]
    pub precision: Option<Precision>,
}

/// Parses a share from 0 to below 1 (`--label-smoothing`, `--dropout`).
pub(crate) fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(_) => Err(format!("{s} is not from 0 to below 1")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// Parses a finite number of 0 or more (`--weight-decay`).
fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{s} is not a finite number of 0 or more")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// Parses a number above 0 (`--lr`).
pub(crate) fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(v) if !v.is_finite() => Err(format!("{s} is not a finite number")),
        Ok(_) => Err(format!("{s} is not above 0")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// What the flags change in a recipe: `--recipe`, and the fields the other flags set, by
/// the recipe's own names (the model's under `model`), as JSON. Built from the clap groups
/// that declare the flags, so no setting is copied by hand.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// `--recipe`; `None`: the lesson's, or a resumed run's own.
    pub recipe: Option<RecipeName>,
    fields: Map<String, Value>,
}

impl Overrides {
    /// The overrides that `settings`, the model's flags `model` and `--epochs` give.
    pub fn new(
        recipe: Option<RecipeName>,
        settings: &RecipeArgs,
        model: &impl Serialize,
        epochs: Option<u32>,
    ) -> Overrides {
        let mut fields = given(settings);
        // the optimiser's own setting lives in the recipe's `optimizer`
        if let Some(decay) = settings.weight_decay {
            fields.insert(
                "optimizer".into(),
                serde_json::json!({ "weight_decay": decay }),
            );
        }
        let model = given(model);
        if !model.is_empty() {
            fields.insert("model".into(), Value::Object(model));
        }
        if let Some(epochs) = epochs {
            fields.insert("epochs".into(), epochs.into());
        }
        Overrides { recipe, fields }
    }

    /// `--epochs`, if given.
    pub fn epochs(&self) -> Option<u32> {
        let epochs = self.fields.get("epochs")?.as_u64()?;
        u32::try_from(epochs).ok()
    }

    /// The same without `--epochs`.
    pub(crate) fn without_epochs(&self) -> Overrides {
        let mut fields = self.fields.clone();
        fields.remove("epochs");
        Overrides {
            recipe: self.recipe,
            fields,
        }
    }

    /// The recipe `--recipe` names (the lesson's when not given) for a network of
    /// `kind`, with every flag's change. Errs with a message that names the flags.
    pub fn recipe(&self, kind: ModelKind) -> Result<Recipe, String> {
        self.apply(&Recipe::named(self.recipe.unwrap_or_default(), kind)?)
    }

    /// `base` with every flag's change (`--recipe` aside), checked.
    pub fn apply(&self, base: &Recipe) -> Result<Recipe, String> {
        if self.fields.contains_key("optimizer") && base.optimizer == Optimizer::Adam {
            return Err(
                "--weight-decay sets AdamW's decay, and this recipe trains with plain Adam \
                 (only train_cnn --recipe strong trains with AdamW)"
                    .into(),
            );
        }
        let mut recipe = serde_json::to_value(base).map_err(|e| e.to_string())?;
        merge(&mut recipe, &self.fields)?;
        // --convs as given, before its counts are shortened: one, or one per block
        let given = self.fields.get("model").and_then(|m| m.get("convs"));
        if let (Some(Value::Array(convs)), Some(Value::Array(filters))) =
            (given, recipe["model"].get("filters"))
        {
            if convs.len() > 1 && convs.len() != filters.len() {
                let which = match given.and(self.fields["model"].get("filters")) {
                    Some(_) => "",
                    None => " (the default)",
                };
                return Err(format!(
                    "--convs {} gives {} counts for the {} blocks of --filters {}{which}: give \
                     one count per block, or one for all",
                    flag_value(&Value::Array(convs.clone())),
                    convs.len(),
                    filters.len(),
                    flag_value(&Value::Array(filters.clone())),
                ));
            }
        }
        let recipe: Recipe = serde_json::from_value(recipe).map_err(|e| e.to_string())?;
        recipe.check()?;
        Ok(recipe)
    }
}

/// The fields of `flags` that were given (not `None`), by name.
fn given(flags: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(flags) {
        Ok(Value::Object(mut fields)) => {
            fields.retain(|_, v| !v.is_null());
            fields
        }
        _ => Map::new(),
    }
}

/// Puts `changes` over `value`, field by field, into objects.
/// Errs on a change with no field of that name: a flag whose field is not named after
/// the setting it sets would otherwise do nothing.
fn merge(value: &mut Value, changes: &Map<String, Value>) -> Result<(), String> {
    let Value::Object(fields) = value else {
        return Ok(());
    };
    for (name, change) in changes {
        match (fields.get_mut(name), change) {
            (Some(inner @ Value::Object(_)), Value::Object(changes)) => merge(inner, changes)?,
            (Some(field), _) => *field = change.clone(),
            (None, _) => {
                return Err(format!(
                    "no setting of this network is named {name}: a flag sets the setting its \
                 field is named after"
                ))
            }
        }
    }
    Ok(())
}

/// PyTorch's `OneCycleLR` with its defaults (cosine annealing): over the first 30% of
/// the steps the learning rate rises from `peak / 25` to `peak` while Adam's β₁ falls
/// from 0.95 to 0.85; over the rest the rate falls to `peak / 250,000` and β₁ climbs back.
#[derive(Clone, Copy, Debug)]
pub struct OneCycle {
    pub peak: f64,
    /// Optimisation steps in the whole run.
    pub total: usize,
}

impl OneCycle {
    const WARM_UP: f64 = 0.3;
    const START_DIV: f64 = 25.0;
    const END_DIV: f64 = 25.0 * 1e4;
    const BETA1: (f64, f64) = (0.95, 0.85);

    /// The learning rate at step `step` (0-based); the last step gets the end value.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let (start, end) = (self.peak / Self::START_DIV, self.peak / Self::END_DIV);
        match self.phase(step) {
            (true, pct) => cosine(start, self.peak, pct),
            (false, pct) => cosine(self.peak, end, pct),
        }
    }

    /// Adam's β₁ at step `step`: low while the rate is high.
    pub fn beta1(&self, step: usize) -> f64 {
        let (high, low) = Self::BETA1;
        match self.phase(step) {
            (true, pct) => cosine(high, low, pct),
            (false, pct) => cosine(low, high, pct),
        }
    }

    /// Whether `step` is in the warm-up, and how far through its phase it is (0 to 1).
    fn phase(&self, step: usize) -> (bool, f64) {
        let last = self.total.saturating_sub(1).max(1) as f64;
        let turn = (Self::WARM_UP * self.total as f64 - 1.0).max(1.0);
        let step = (step as f64).min(last);
        if step <= turn {
            (true, step / turn)
        } else {
            (false, (step - turn) / (last - turn).max(1.0))
        }
    }
}

/// From `from` at `pct` 0 to `to` at `pct` 1 along half a cosine.
fn cosine(from: f64, to: f64, pct: f64) -> f64 {
    to + (from - to) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0)
}

/// Pixels of zero padding around each image before the random crop.
const PAD: i64 = 2;

/// A random crop of each image of `images` (`[b, 1, 28, 28]`) from its copy padded by
/// two pixels of zeros, mirrored left to right where `mirror` (`[b]`, bool) says, or half
/// of the time at random when it is `None`: the same garment, shifted by up to two
/// pixels, so every label still holds. With `cutout` above 0, a square of that side
/// (clipped at the edges) is then zeroed around a random point of each image. One gather,
/// on the images' device.
pub fn augment(images: &Tensor, mirror: Option<&Tensor>, cutout: i64) -> Tensor {
    let (b, side) = (images.size()[0], images.size()[3]);
    let device = images.device();
    let padded = images.squeeze_dim(1).constant_pad_nd([PAD, PAD, PAD, PAD]); // [b, side+4, side+4]
    let offset = || Tensor::randint(2 * PAD + 1, [b, 1, 1], (Kind::Int64, device));
    let along = Tensor::arange(side, (Kind::Int64, device));
    let flip = match mirror {
        Some(mirror) => mirror.view([b, 1, 1]),
        None => Tensor::rand([b, 1, 1], (Kind::Float, device)).lt(0.5),
    };
    let columns = (side - 1 - &along)
        .view([1, 1, side])
        .where_self(&flip, &along.view([1, 1, side])); // [b, 1, side]
    let rows = offset() + along.view([1, side, 1]); // [b, side, 1]
    let columns = offset() + columns;
    let image = Tensor::arange(b, (Kind::Int64, device)).view([b, 1, 1]);
    let out = padded.index(&[Some(image), Some(rows), Some(columns)]); // [b, side, side]
    let out = match cutout {
        0 => out,
        cutout => {
            let centre = || Tensor::randint(side, [b, 1, 1], (Kind::Int64, device));
            let (cy, cx) = (centre(), centre());
            // within the square: from the centre, cutout / 2 back and the rest forward
            let inside = |at: Tensor, centre: &Tensor| {
                let from = centre - cutout / 2;
                at.ge_tensor(&from)
                    .logical_and(&at.lt_tensor(&(from + cutout)))
            };
            let erased = inside(along.view([1, side, 1]), &cy)
                .logical_and(&inside(along.view([1, 1, side]), &cx)); // [b, side, side]
            out.masked_fill(&erased, 0.0)
        }
    };
    out.unsqueeze(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn the_readme_and_help_describe_the_strong_recipe_as_it_is() {
        // one description, made from the recipe's values: --help prints it, and the
        // README's "The strong recipe" holds it word for word
        let summary = Recipe::strong().summary();
        assert!(RecipeName::help().contains(&summary));
        assert!(
            include_str!("../README.md").contains(&summary),
            "README.md's 'The strong recipe' must hold Recipe::strong().summary():\n{summary}"
        );
        let lesson = Recipe::lesson(ModelKind::Cnn).summary();
        assert!(
            lesson.starts_with("1 × Conv(32) → MaxPool, then 1 × Conv(64)"),
            "{lesson}"
        );
        assert!(
            lesson.contains("Adam at 0.001; batch 32, 10 epochs"),
            "{lesson}"
        );
    }

    #[test]
    fn one_cycle_rises_to_its_peak_and_ends_at_its_end_value() {
        let cycle = OneCycle {
            peak: 5e-3,
            total: 4300,
        };
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
        assert!(close(cycle.learning_rate(0), 5e-3 / 25.0));
        assert!(close(cycle.learning_rate(1289), 5e-3), "the peak at 30%");
        assert!(
            close(cycle.learning_rate(4299), 5e-3 / 25.0 / 1e4),
            "the last step"
        );
        assert!(close(cycle.beta1(0), 0.95) && close(cycle.beta1(1289), 0.85));
        assert!(close(cycle.beta1(4299), 0.95));
        let rates: Vec<f64> = (0..4300).map(|s| cycle.learning_rate(s)).collect();
        assert!(rates[..1290].windows(2).all(|w| w[0] < w[1]), "rises");
        assert!(rates[1289..].windows(2).all(|w| w[0] > w[1]), "then falls");
    }

    #[test]
    fn the_strong_recipe_trains_on_smoothed_labels() {
        // a confident, right answer: the plain loss is nearly 0; with smoothing each
        // wrong class still asks for 0.01 of the mass, at a log-probability of about -20
        let mut row = [0.0f32; 10];
        row[3] = 20.0;
        let logits = Tensor::from_slice(&row).view([1, 10]);
        let labels = Tensor::from_slice(&[3i64]);
        let lesson = Recipe::lesson(ModelKind::Cnn);
        let plain = lesson.loss(&logits, &labels).double_value(&[]);
        let smoothed = Recipe::strong().loss(&logits, &labels).double_value(&[]);
        assert!(plain < 1e-6, "{plain}");
        assert!((smoothed - 9.0 * 0.01 * 20.0).abs() < 0.01, "{smoothed}");
    }

    /// The overrides of these flags to a trainer of the CNN.
    fn flags(args: &[&str]) -> Overrides {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[arg(long, value_enum)]
            recipe: Option<RecipeName>,
            #[command(flatten)]
            settings: RecipeArgs,
            #[command(flatten)]
            model: CnnArgs,
            #[arg(long)]
            epochs: Option<u32>,
        }
        let cli = Cli::parse_from(std::iter::once("t").chain(args.iter().copied()));
        Overrides::new(cli.recipe, &cli.settings, &cli.model, cli.epochs)
    }

    #[test]
    fn flags_change_a_recipe_and_differences_speak_flags() {
        let dense = flags(&["--hidden", "64", "--lr", "0.002", "--epochs", "3"]);
        let dense = dense.recipe(ModelKind::Dense).unwrap();
        assert_eq!(dense.model, ModelSpec::Dense { hidden: 64 });
        assert_eq!((dense.learning_rate, dense.epochs), (2e-3, 3));
        let lesson = Recipe::lesson(ModelKind::Dense);
        assert_eq!(
            lesson.differences(&dense),
            [
                "--lr 0.001, not --lr 0.002",
                "--hidden 128, not --hidden 64"
            ]
        );
        let longer = Recipe {
            epochs: 50,
            ..lesson.clone()
        };
        assert!(lesson.differences(&longer).is_empty());
        let strong = flags(&["--recipe", "strong"]);
        assert_eq!(strong.recipe(ModelKind::Cnn).unwrap(), Recipe::strong());
        let err = strong.recipe(ModelKind::Dense).unwrap_err();
        assert!(
            err.contains("no recipe 'strong' for the dense network"),
            "{err}"
        );
        let err = flags(&["--convs", "1,2,2"])
            .recipe(ModelKind::Cnn)
            .unwrap_err();
        assert!(err.contains("--convs 1,2,2 gives 3 counts"), "{err}");
        assert!(err.contains("--filters 32,64"), "{err}");
        // settings no flag sets are named by the recipe
        let other = Recipe {
            augment: false,
            ..Recipe::strong()
        };
        assert_eq!(
            Recipe::strong().differences(&other),
            ["--recipe strong as it was then, not as it is now"]
        );
        let patient = flags(&[
            "--recipe",
            "strong",
            "--early-stop",
            "3",
            "--views",
            "one",
            "--ema",
            "0.999",
            "--label-smoothing",
            "0.05",
        ]);
        assert_eq!(
            Recipe::strong().differences(&patient.recipe(ModelKind::Cnn).unwrap()),
            [
                "no --early-stop, not --early-stop 3",
                "--ema 0.0, not --ema 0.999",
                "--label-smoothing 0.1, not --label-smoothing 0.05",
                "--views mirror, not --views one"
            ]
        );
    }

    #[test]
    fn cutout_and_alternating_flips_need_augmented_batches() {
        for flag in [["--cutout", "4"], ["--alternate-flips", "true"]] {
            let err = flags(&flag).recipe(ModelKind::Cnn).unwrap_err();
            assert!(err.contains("does not augment"), "{flag:?}: {err}");
            let mut strong = vec!["--recipe", "strong"];
            strong.extend(flag);
            assert!(flags(&strong).recipe(ModelKind::Cnn).is_ok(), "{flag:?}");
        }
    }

    #[test]
    fn weight_decay_sets_adamw_and_only_adamw_and_dropout_reads_back() {
        let decayed = flags(&["--recipe", "strong", "--weight-decay", "0.1"])
            .recipe(ModelKind::Cnn)
            .unwrap();
        assert_eq!(decayed.optimizer, Optimizer::AdamW { weight_decay: 0.1 });
        assert_eq!(
            Recipe::strong().differences(&decayed),
            ["--weight-decay 0.05, not --weight-decay 0.1"]
        );
        let written = decayed.flags_over(&Recipe::strong()).unwrap();
        assert_eq!(written, ["--weight-decay", "0.1"]);
        // --dropout, the model's, reads the same way
        let dropped = flags(&["--recipe", "strong", "--dropout", "0.2"])
            .recipe(ModelKind::Cnn)
            .unwrap();
        assert_eq!(
            Recipe::strong().differences(&dropped),
            ["--dropout 0.1, not --dropout 0.2"]
        );
        let err = flags(&["--weight-decay", "0.1"])
            .recipe(ModelKind::Cnn)
            .unwrap_err();
        assert!(
            err.contains("--weight-decay") && err.contains("plain Adam"),
            "{err}"
        );
        assert!(non_negative_f64("-0.1").unwrap_err().contains("-0.1"));
        assert!(non_negative_f64("inf").is_err());
    }

    #[test]
    fn flags_written_for_a_recipe_read_back_as_it() {
        // per-block counts are written out as --convs takes them, and read back the same
        let three = flags(&["--filters", "8,16,32", "--convs", "1,2,2"])
            .recipe(ModelKind::Cnn)
            .unwrap();
        let lesson = Recipe::lesson(ModelKind::Cnn);
        let written = three.flags_over(&lesson).unwrap();
        assert!(
            written.windows(2).any(|w| w == ["--convs", "1,2,2"]),
            "{written:?}"
        );
        let args: Vec<&str> = written.iter().map(String::as_str).collect();
        assert_eq!(flags(&args).recipe(ModelKind::Cnn).unwrap(), three);
    }

    /// Each image of `out` matched to the shift of `images` (up to 2 pixels, zero padded)
    /// that it equals in most pixels: the draws need not be repeatable, as other tests
    /// draw from the same global generator in parallel.
    fn nearest_shifts(out: &Tensor, images: &Tensor) -> Tensor {
        let padded = images.constant_pad_nd([2, 2, 2, 2]);
        let (mut best, mut most) = (
            out.zeros_like(),
            Tensor::full([16], -1, (Kind::Int64, Device::Cpu)),
        );
        for (dy, dx) in (0..5).flat_map(|dy| (0..5).map(move |dx| (dy, dx))) {
            let shifted = padded.narrow(2, dy, 28).narrow(3, dx, 28);
            let equal =
                shifted
                    .eq_tensor(out)
                    .sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Int64);
            best = shifted.where_self(&equal.gt_tensor(&most).view([16, 1, 1, 1]), &best);
            most = most.maximum(&equal);
        }
        best
    }

    #[test]
    fn augmentation_mirrors_as_told_and_cutout_zeroes_a_square() {
        let _generator = crate::own_the_generator();
        let images = Tensor::rand([16, 1, 28, 28], (Kind::Float, Device::Cpu)) + 0.5;
        let with = |mirror: bool, cutout| {
            let mirror = Tensor::full([16], i64::from(mirror), (Kind::Bool, Device::Cpu));
            augment(&images, Some(&mirror), cutout)
        };
        let plain = with(false, 0);
        assert!(
            plain.equal(&nearest_shifts(&plain, &images)),
            "shifted copies"
        );
        // flipped back, a mirrored image is a shifted copy; an unmirrored one is not
        let back = with(true, 0).flip([3]);
        assert!(
            back.equal(&nearest_shifts(&back, &images)),
            "mirrored copies"
        );
        let cut = with(false, 8);
        let plain = nearest_shifts(&cut, &images);
        let lost = plain.ne_tensor(&cut); // [16, 1, 28, 28]
        assert!(
            cut.le_tensor(&plain).all().int64_value(&[]) == 1,
            "only zeroes"
        );
        for i in 0..16 {
            let lost = lost.get(i).squeeze_dim(0).nonzero(); // [n, 2]
            let n = lost.size()[0];
            assert!((1..=64).contains(&n), "image {i} lost {n} pixels");
            let span = |d: i64| {
                let at = lost.select(1, d);
                at.max().int64_value(&[]) - at.min().int64_value(&[]) + 1
            };
            assert!(
                span(0) <= 8 && span(1) <= 8,
                "image {i}: not one 8×8 square"
            );
        }
    }

    #[test]
    fn augmentation_shifts_and_mirrors_each_image_but_keeps_it() {
        let _generator = crate::own_the_generator();
        tch::manual_seed(3);
        // garments inside a 2-pixel border, as Fashion-MNIST's are: a crop loses nothing
        let inner = Tensor::rand([64, 1, 24, 24], (Kind::Float, Device::Cpu));
        let images = inner.constant_pad_nd([2, 2, 2, 2]); // [64, 1, 28, 28]
        let out = augment(&images, None, 0);
        assert_eq!(out.size(), images.size());
        let mut changed = 0;
        for i in 0..64 {
            let (x, y) = (images.get(i), out.get(i));
            // y must be x shifted by up to 2 pixels and maybe mirrored: the same garment,
            // so its label still holds
            let padded = x.constant_pad_nd([2, 2, 2, 2]);
            let found = (0..5).any(|dy| {
                (0..5).any(|dx| {
                    let crop = padded.narrow(1, dy, 28).narrow(2, dx, 28);
                    crop.equal(&y) || crop.flip([2]).equal(&y)
                })
            });
            assert!(
                found,
                "image {i} is not a shifted or mirrored copy of itself"
            );
            changed += i64::from(!x.equal(&y));
        }
        assert!(changed > 50, "only {changed} of 64 images changed");
    }
}
