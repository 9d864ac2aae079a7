//! How a network is trained. A [`Recipe`] is plain data: the network, the optimiser, the
//! schedule, augmentation, label smoothing, batch size, learning rate, epochs and the
//! validation split. A run saves its recipe whole in `config.json` (with the changes its
//! flags made), so the folder records exactly what trained it.
//!
//! There are two: [`Recipe::lesson`], the Keras lesson's, and [`Recipe::strong`]. Adding
//! one means adding a constructor and its name to [`Recipe::named`].

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::models::{comma_list, Convs, ModelKind, ModelSpec};

/// How a network is trained; see the module's documentation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Recipe {
    /// The name `--recipe` takes.
    pub name: String,
    /// The network, as `--hidden`, `--filters` and `--convs` shape it.
    pub model: ModelSpec,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    /// Random shifts of up to 2 pixels and mirroring of every training batch ([`augment`]).
    pub augment: bool,
    /// The share of each label spread evenly over the ten classes (0: plain labels).
    pub label_smoothing: f64,
    /// Images per optimisation step.
    pub batch_size: usize,
    /// The fixed learning rate, or the peak of the one-cycle schedule.
    pub learning_rate: f64,
    /// Passes over the training set.
    pub epochs: u32,
    /// Training images held out (the last ones) and scored every epoch, to choose settings
    /// on. A run records the number it held out; a constructor's number is for the
    /// 60,000 images of Fashion-MNIST, and smaller sets hold out at most a tenth.
    pub validation_images: u32,
    /// Stop when validation accuracy has not improved for this many epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<u32>,
    /// The forward pass's arithmetic (the weights and Adam's state stay float32).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

/// The arithmetic of the training step's forward pass (`--precision`).
#[derive(clap::ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 throughout.
    #[default]
    F32,
    /// CUDA autocast in bfloat16: matrix products and convolutions in bfloat16, the loss
    /// and the weights in float32 (CUDA only).
    Bf16,
}

impl Precision {
    fn is_f32(&self) -> bool {
        *self == Precision::F32
    }
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
pub struct StepSettings {
    pub learning_rate: f64,
    pub beta1: f64,
}

/// Adam's β₁ outside a one-cycle schedule (PyTorch's default).
pub const BETA1: f64 = 0.9;

impl Recipe {
    /// The recipes' names, as `--recipe` takes them.
    pub const NAMES: [&'static str; 2] = ["lesson", "strong"];

    /// The recipe called `name` for a network of `kind`; `None` when there is none.
    pub fn named(name: &str, kind: ModelKind) -> Option<Recipe> {
        match (name, kind) {
            ("lesson", kind) => Some(Recipe::lesson(kind)),
            ("strong", ModelKind::Cnn) => Some(Recipe::strong()),
            _ => None,
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
            name: "lesson".into(),
            model,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Constant,
            augment: false,
            label_smoothing: 0.0,
            batch_size: 32,
            learning_rate: 1e-3,
            epochs,
            validation_images: 0,
            early_stop: None,
            precision: Precision::F32,
        }
    }

    /// A stronger CNN trained the stronger way: one convolution in the first block and
    /// two in the second (the first block's second convolution, at the full 28×28, would
    /// cost about half of each step), batch norm, dropout 0.1, 256 hidden units; random
    /// shifts and mirroring, labels smoothed by 0.1, AdamW (weight decay 0.05) with a
    /// one-cycle schedule peaking at 0.005, batch 128, 32 epochs, and the last 5,000
    /// training images held out for validation; each image is scored as the average of
    /// the network's logits for it and for its mirror image.
    pub fn strong() -> Recipe {
        Recipe {
            name: "strong".into(),
            model: ModelSpec::Cnn {
                filters: vec![32, 64],
                hidden: 256,
                convs: Convs::new(vec![1, 2]),
                batch_norm: true,
                dropout: 0.1,
                mirror_average: true,
            },
            optimizer: Optimizer::AdamW { weight_decay: 0.05 },
            schedule: Schedule::OneCycle,
            augment: true,
            label_smoothing: 0.1,
            batch_size: 128,
            learning_rate: 5e-3,
            epochs: 32,
            validation_images: 5_000,
            early_stop: None,
            precision: Precision::F32,
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
            (
                model_ok,
                "the model needs units in every layer, 1 to 4 blocks, dropout in [0, 1)",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(format!("its recipe cannot train: {what}")),
            None => Ok(()),
        }
    }

    /// How many of `train_len` training images to hold out unless `--validation` says:
    /// the recipe's number, at most a tenth of the set.
    pub fn default_held_out(&self, train_len: i64) -> i64 {
        i64::from(self.validation_images).min(train_len / 10)
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
    pub fn at_step(&self, step: usize, total: usize) -> StepSettings {
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

    /// The recipe's settings that flags set, as the flags write them, in the order of
    /// `--help`: `[("--recipe", "lesson"), ("--hidden", "128"), …]`.
    pub fn as_flags(&self) -> Vec<(&'static str, String)> {
        let mut flags = vec![("--recipe", self.name.clone())];
        match &self.model {
            ModelSpec::Dense { hidden } => flags.push(("--hidden", hidden.to_string())),
            ModelSpec::Cnn {
                filters,
                hidden,
                convs,
                mirror_average,
                ..
            } => {
                flags.push(("--filters", comma_list(filters)));
                flags.push(("--convs", convs.to_string()));
                flags.push(("--hidden", hidden.to_string()));
                flags.push(("--mirror-average", mirror_average.to_string()));
            }
        }
        flags.push(("--batch-size", self.batch_size.to_string()));
        flags.push(("--lr", self.learning_rate.to_string()));
        flags.push(("--epochs", self.epochs.to_string()));
        flags.push(("--validation", self.validation_images.to_string()));
        let patience = self.early_stop.map_or("off".into(), |n| n.to_string());
        flags.push(("--early-stop", patience));
        flags.push(("--precision", self.precision.to_string()));
        flags
    }

    /// Where `self` and `other` differ, as flags: `--lr 0.001, not --lr 0.002` for each
    /// (`self`'s value first); settings no flag sets (batch norm, the optimiser, …)
    /// differ only with the recipe, and are named by `--recipe`. `--epochs` is left out:
    /// a run may always go on for longer.
    pub fn differences(&self, other: &Recipe) -> Vec<String> {
        let theirs = other.as_flags();
        let mut out: Vec<String> = self
            .as_flags()
            .into_iter()
            .filter(|(flag, _)| *flag != "--epochs")
            .filter_map(|(flag, ours)| {
                let other = theirs.iter().find(|(f, _)| *f == flag);
                match other {
                    Some((_, v)) if *v == ours => None,
                    Some((_, v)) => Some(format!("{flag} {ours}, not {flag} {v}")),
                    None => Some(format!("{flag} {ours}, which the other does not have")),
                }
            })
            .collect();
        if out.is_empty() && self.with_epochs(other.epochs) != *other {
            out.push(format!(
                "--recipe {} as it was then, not as it is now",
                self.name
            ));
        }
        out
    }

    fn with_epochs(&self, epochs: u32) -> Recipe {
        Recipe {
            epochs,
            ..self.clone()
        }
    }
}

/// The flags that change a recipe; `None`: not given.
#[derive(Clone, Debug, Default)]
pub struct RecipeFlags {
    /// `--recipe`.
    pub recipe: Option<String>,
    /// `--hidden`.
    pub hidden: Option<i64>,
    /// `--filters` (CNN only).
    pub filters: Option<Vec<i64>>,
    /// `--convs` (CNN only).
    pub convs: Option<Vec<i64>>,
    /// `--mirror-average` (CNN only).
    pub mirror_average: Option<bool>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub epochs: Option<u32>,
    /// `--validation`.
    pub validation: Option<u32>,
    /// `--early-stop`.
    pub early_stop: Option<u32>,
    /// `--precision`.
    pub precision: Option<Precision>,
}

impl RecipeFlags {
    /// The recipe `--recipe` names (the lesson's when not given) for a network of `kind`,
    /// changed by the other flags. Errs with a message that names the flags.
    pub fn recipe(&self, kind: ModelKind) -> Result<Recipe, String> {
        let name = self.recipe.as_deref().unwrap_or("lesson");
        let base = Recipe::named(name, kind).ok_or_else(|| {
            format!(
                "there is no recipe '{name}' for the {} network; choose one of {}",
                kind.name(),
                Recipe::NAMES.join(", ")
            )
        })?;
        self.apply(base)
    }

    /// `base` changed by every flag given (`--recipe` aside).
    pub fn apply(&self, base: Recipe) -> Result<Recipe, String> {
        let model = match base.model {
            ModelSpec::Dense { hidden } => ModelSpec::Dense {
                hidden: self.hidden.unwrap_or(hidden),
            },
            ModelSpec::Cnn {
                filters,
                hidden,
                convs,
                batch_norm,
                dropout,
                mirror_average,
            } => {
                let which = if self.filters.is_none() {
                    " (the default)"
                } else {
                    ""
                };
                let filters = self.filters.clone().unwrap_or(filters);
                let convs = match &self.convs {
                    Some(counts) if counts.len() > 1 && counts.len() != filters.len() => {
                        return Err(format!(
                            "--convs {} gives {} counts for the {} blocks of --filters {}{which}: \
                             give one count per block, or one for all",
                            comma_list(counts),
                            counts.len(),
                            filters.len(),
                            comma_list(&filters),
                        ))
                    }
                    Some(counts) => Convs::new(counts.clone()),
                    None => convs,
                };
                ModelSpec::Cnn {
                    filters,
                    hidden: self.hidden.unwrap_or(hidden),
                    convs,
                    batch_norm,
                    dropout,
                    mirror_average: self.mirror_average.unwrap_or(mirror_average),
                }
            }
        };
        Ok(Recipe {
            model,
            batch_size: self.batch_size.unwrap_or(base.batch_size),
            learning_rate: self.learning_rate.unwrap_or(base.learning_rate),
            epochs: self.epochs.unwrap_or(base.epochs),
            validation_images: self.validation.unwrap_or(base.validation_images),
            early_stop: self.early_stop.or(base.early_stop),
            precision: self.precision.unwrap_or(base.precision),
            ..base
        })
    }
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
/// two pixels of zeros, mirrored left to right half of the time: the same garment,
/// shifted by up to two pixels, so every label still holds. One gather, on the
/// images' device.
pub fn augment(images: &Tensor) -> Tensor {
    let (b, side) = (images.size()[0], images.size()[3]);
    let device = images.device();
    let padded = images.squeeze_dim(1).constant_pad_nd([PAD, PAD, PAD, PAD]); // [b, side+4, side+4]
    let offset = || Tensor::randint(2 * PAD + 1, [b, 1, 1], (Kind::Int64, device));
    let along = Tensor::arange(side, (Kind::Int64, device));
    let flip = Tensor::rand([b, 1, 1], (Kind::Float, device)).lt(0.5);
    let columns = (side - 1 - &along)
        .view([1, 1, side])
        .where_self(&flip, &along.view([1, 1, side])); // [b, 1, side]
    let rows = offset() + along.view([1, side, 1]); // [b, side, 1]
    let columns = offset() + columns;
    let image = Tensor::arange(b, (Kind::Int64, device)).view([b, 1, 1]);
    padded
        .index(&[Some(image), Some(rows), Some(columns)]) // [b, side, side]
        .unsqueeze(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

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

    #[test]
    fn flags_change_a_recipe_and_differences_speak_flags() {
        let flags = RecipeFlags {
            hidden: Some(64),
            learning_rate: Some(2e-3),
            epochs: Some(3),
            ..Default::default()
        };
        let dense = flags.recipe(ModelKind::Dense).unwrap();
        assert_eq!(dense.model, ModelSpec::Dense { hidden: 64 });
        assert_eq!((dense.learning_rate, dense.epochs), (2e-3, 3));
        let lesson = Recipe::lesson(ModelKind::Dense);
        assert_eq!(
            lesson.differences(&dense),
            [
                "--hidden 128, not --hidden 64",
                "--lr 0.001, not --lr 0.002"
            ]
        );
        assert!(lesson.differences(&lesson.with_epochs(50)).is_empty());
        let strong = RecipeFlags {
            recipe: Some("strong".into()),
            ..Default::default()
        };
        assert_eq!(strong.recipe(ModelKind::Cnn).unwrap(), Recipe::strong());
        let err = strong.recipe(ModelKind::Dense).unwrap_err();
        assert!(
            err.contains("no recipe 'strong' for the dense network"),
            "{err}"
        );
        let bad = RecipeFlags {
            convs: Some(vec![1, 2, 2]),
            ..Default::default()
        };
        let err = bad.recipe(ModelKind::Cnn).unwrap_err();
        assert!(err.contains("--filters 32,64 (the default)"), "{err}");
    }

    #[test]
    fn augmentation_shifts_and_mirrors_each_image_but_keeps_it() {
        tch::manual_seed(3);
        // garments inside a 2-pixel border, as Fashion-MNIST's are: a crop loses nothing
        let inner = Tensor::rand([64, 1, 24, 24], (Kind::Float, Device::Cpu));
        let images = inner.constant_pad_nd([2, 2, 2, 2]); // [64, 1, 28, 28]
        let out = augment(&images);
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
