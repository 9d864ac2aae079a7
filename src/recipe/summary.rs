//! A recipe in words, made from its values: what `train_cnn --help` and the README say
//! of the strong recipe (a test holds the README to it).

use super::augment::PAD;
use super::{Optimizer, Precision, Recipe, Schedule};
use crate::models::{ModelSpec, Views};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelKind;

    #[test]
    fn the_readme_and_help_describe_the_strong_recipe_as_it_is() {
        // one description, made from the recipe's values: --help prints it, and the
        // README's "The strong recipe" holds it word for word
        let summary = Recipe::strong().summary();
        assert!(
            include_str!("../../README.md").contains(&summary),
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
}
