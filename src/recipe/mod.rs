//! How a network is trained. A [`Recipe`] is plain data: the network, the optimiser, the
//! schedule, augmentation, label smoothing, batch size, learning rate, epochs and the
//! validation split. A run saves its recipe whole in `config.json` (with the changes its
//! flags made), so the folder records exactly what trained it.
//!
//! There are two: [`Recipe::lesson`], the Keras lesson's, and [`Recipe::strong`]. Adding
//! one means adding a constructor and its name to [`RecipeName`]. How the learning rate
//! moves is in [`schedule`], how the training images are augmented in `augment`, and
//! the recipe in words in `summary`. The flags that change a recipe are
//! `crate::flags`'s: adding a setting is docs/adding-a-setting.md.

pub(crate) mod augment;
pub mod schedule;
mod summary;

use serde::{Deserialize, Serialize};

use crate::data::Input;
use crate::models::{Convs, ModelKind, ModelSpec, Views};

pub use schedule::{OneCycle, StepSettings};

/// How a network is trained; see the module's documentation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Recipe {
    /// The name `--recipe` takes.
    pub name: RecipeName,
    /// The network, as `--hidden`, `--filters` and `--convs` shape it.
    pub model: ModelSpec,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    /// Random shifts of up to 2 pixels and mirroring of every training batch
    /// (`augment.rs`).
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
    /// The share of each label spread evenly over the classes (0: plain labels).
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

    /// Errs, naming the flag, when the recipe cannot train on images of `input`: a network
    /// that pools them away, or a cutout larger than they are.
    pub fn fits(&self, input: &Input) -> Result<(), String> {
        self.model.fits(input)?;
        match i64::from(self.cutout) <= input.size {
            true => Ok(()),
            false => Err(format!(
                "--cutout {}: the images are {} pixels on a side; give a cutout of at most {}",
                self.cutout, input.size, input.size
            )),
        }
    }
}
