//! How a network is trained, beyond its shape: the lesson's recipe (plain Adam at a fixed
//! rate on all 60,000 training images, the default) or the strong one, which gives the
//! CNN a second convolution in each block after the first, batch norm and dropout, and
//! trains it on random crops and flips of every batch, with smoothed labels, AdamW and a
//! one-cycle schedule, and 5,000 training images held out to choose settings on, so
//! that the test set is only ever reported.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};
use tch::{Kind, Tensor};

use crate::models::{comma_list, Convs, ModelSpec};

/// A training recipe, saved in a run's `config.json`.
#[derive(clap::ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// The Keras lesson's network and settings.
    #[default]
    Lesson,
    /// A second convolution in each block after the first, batch norm, dropout, a wider
    /// dense layer, augmentation, label smoothing, AdamW and a one-cycle schedule, with a
    /// validation split.
    Strong,
}

impl std::fmt::Display for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Recipe::Lesson => "lesson",
            Recipe::Strong => "strong",
        })
    }
}

/// AdamW's decoupled weight decay in the strong recipe.
const WEIGHT_DECAY: f64 = 0.05;
/// How much of each label the strong recipe spreads over the other classes.
const LABEL_SMOOTHING: f64 = 0.1;
/// Images the strong recipe holds out of the training set for validation.
const VALIDATION_IMAGES: i64 = 5_000;

impl Recipe {
    /// The CNN this recipe trains; `filters`, `convs` (one count per block, or one for
    /// all) and `hidden` replace its sizes. Errs when `convs` has several counts but not
    /// one for each block of `filters`.
    pub fn cnn(
        self,
        filters: Option<Vec<i64>>,
        convs: Option<Vec<i64>>,
        hidden: Option<i64>,
    ) -> Result<ModelSpec, String> {
        let (default_convs, default_hidden, batch_norm, dropout) = match self {
            Recipe::Lesson => (Convs::default(), 128, false, 0.0),
            // the first block's second convolution, at the full 28×28, would cost about
            // half of each step
            Recipe::Strong => (Convs::new(vec![1, 2]), 256, true, 0.1),
        };
        let which = if filters.is_none() {
            " (the default)"
        } else {
            ""
        };
        let filters = filters.unwrap_or(vec![32, 64]);
        let convs = match convs {
            Some(counts) if counts.len() > 1 && counts.len() != filters.len() => {
                return Err(format!(
                    "--convs {} gives {} counts for the {} blocks of --filters {}{}: give one \
                     count per block, or one for all",
                    comma_list(&counts),
                    counts.len(),
                    filters.len(),
                    comma_list(&filters),
                    which
                ))
            }
            Some(counts) => Convs::new(counts),
            None => default_convs,
        };
        Ok(ModelSpec::Cnn {
            filters,
            hidden: hidden.unwrap_or(default_hidden),
            convs,
            batch_norm,
            dropout,
        })
    }

    /// Epochs of the CNN unless `--epochs`.
    pub fn cnn_epochs(self) -> u32 {
        match self {
            Recipe::Lesson => 10,
            Recipe::Strong => 18,
        }
    }

    /// Images per step unless `--batch-size`.
    pub fn batch_size(self) -> usize {
        match self {
            Recipe::Lesson => 32,
            Recipe::Strong => 128,
        }
    }

    /// The learning rate unless `--lr`: the fixed rate, or the one-cycle schedule's peak.
    pub fn learning_rate(self) -> f64 {
        match self {
            Recipe::Lesson => 1e-3,
            Recipe::Strong => 5e-3,
        }
    }

    /// How many of `train_len` training images are held out for validation unless
    /// `--validation`: none, or 5,000 (a tenth, for sets under 50,000 images).
    pub fn validation_images(self, train_len: i64) -> i64 {
        match self {
            Recipe::Lesson => 0,
            Recipe::Strong => VALIDATION_IMAGES.min(train_len / 10),
        }
    }

    /// The training loss: softmax cross-entropy, against labels smoothed by 0.1 in the
    /// strong recipe (the true class gets 0.91, every other 0.01), which keeps the
    /// network from growing ever more confident. Scores always use the plain loss.
    pub fn loss(self, logits: &Tensor, labels: &Tensor) -> Tensor {
        let smoothing = match self {
            Recipe::Lesson => 0.0,
            Recipe::Strong => LABEL_SMOOTHING,
        };
        logits.cross_entropy_loss::<Tensor>(labels, None, tch::Reduction::Mean, -100, smoothing)
    }

    /// Whether each training batch is randomly cropped and flipped ([`augment`]).
    pub fn augments(self) -> bool {
        self == Recipe::Strong
    }

    /// Adam, or AdamW with decoupled weight decay, at learning rate `lr`.
    pub fn optimizer(self, vs: &nn::VarStore, lr: f64) -> Result<nn::Optimizer> {
        Ok(match self {
            Recipe::Lesson => nn::Adam::default().build(vs, lr)?,
            Recipe::Strong => nn::AdamW {
                wd: WEIGHT_DECAY,
                ..Default::default()
            }
            .build(vs, lr)?,
        })
    }

    /// Sets the optimiser's learning rate (and Adam's β₁) for step `step` of `total`:
    /// constant for the lesson, [`OneCycle`] for the strong recipe.
    pub fn schedule(self, opt: &mut nn::Optimizer, lr: f64, step: usize, total: usize) {
        if self == Recipe::Strong {
            let cycle = OneCycle { peak: lr, total };
            opt.set_lr(cycle.learning_rate(step));
            opt.set_momentum(cycle.beta1(step));
        }
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
        let plain = Recipe::Lesson.loss(&logits, &labels).double_value(&[]);
        let smoothed = Recipe::Strong.loss(&logits, &labels).double_value(&[]);
        assert!(plain < 1e-6, "{plain}");
        assert!((smoothed - 9.0 * 0.01 * 20.0).abs() < 0.01, "{smoothed}");
    }

    #[test]
    fn the_schedule_reaches_the_optimiser() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().zeros("w", &[3]);
        let mut opt = Recipe::Strong.optimizer(&vs, 1.0).unwrap();
        // with the rate of the last step (4e-6) one step moves a weight by about that
        Recipe::Strong.schedule(&mut opt, 1.0, 99, 100);
        opt.backward_step(&(&w - 1.0).square().sum(Kind::Float));
        let moved = w.abs().max().double_value(&[]);
        assert!(moved > 1e-6 && moved < 1e-5, "{moved}");
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
