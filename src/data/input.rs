//! The network's input, as a setting of the data: the images' side and channels, and
//! the classes.

use std::path::Path;

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

use super::{CLASS_NAMES, SIDE};

/// What a network takes in and gives out, as its data says: square images of `size` ×
/// `size` pixels with `channels` channels (1 grey, 3 colour), each of one of `classes`
/// (in label order). Saved in a run's `config.json`, so that its readers make images into
/// the very input it trained on, and rebuild its network.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Input {
    pub size: i64,
    pub channels: i64,
    pub classes: Vec<String>,
}

impl Input {
    /// Fashion-MNIST's: 28 × 28 grey images of its ten garments.
    pub fn fashion_mnist() -> Input {
        Input {
            size: SIDE as i64,
            channels: 1,
            classes: CLASS_NAMES.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// The values of one image: channels × size × size (784 for Fashion-MNIST).
    pub fn values(&self) -> i64 {
        self.channels * self.size * self.size
    }

    /// The number of classes, as the network's last layer counts them.
    pub fn class_count(&self) -> i64 {
        self.classes.len() as i64
    }

    /// The name of class `label`; `?` for a label outside the classes.
    pub fn class(&self, label: i64) -> &str {
        usize::try_from(label)
            .ok()
            .and_then(|l| self.classes.get(l))
            .map_or("?", String::as_str)
    }

    /// Errs where this, the input of the data read from `dir`, is not `had`, the input a
    /// saved run in `run` trained on (other classes, size or colour), naming both; `what`:
    /// what to do instead.
    pub fn ensure_is(&self, had: &Input, dir: &Path, run: &Path, what: &str) -> Result<()> {
        ensure!(
            self == had,
            "{}: the run trained on {} images of the classes {}, and {} gives {} images of \
             the classes {}; {what}",
            run.display(),
            had.describe(),
            had.classes.join(", "),
            dir.display(),
            self.describe(),
            self.classes.join(", ")
        );
        Ok(())
    }

    /// `28×28 grey` or `64×64 colour`.
    pub fn describe(&self) -> String {
        let colour = match self.channels {
            1 => "grey",
            _ => "colour",
        };
        format!("{0}×{0} {colour}", self.size)
    }
}
