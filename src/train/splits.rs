//! The images a run sees: the training set, less the validation images it holds out
//! (the last ones, as Keras' `validation_split` holds them out), and the test set; and an
//! epoch's figures on them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Result};
use tch::Tensor;

use super::learner::{Batch, Learner};
use super::TrainOptions;
use crate::data::{self, folders::Folders, Input, Split};
use crate::recipe::RecipeName;
use crate::run_dir::checkpoint::Position;
use crate::run_dir::EpochMetrics;
use crate::score::score;

/// The data of a run, on its device.
pub(crate) struct Splits {
    pub train: Split,
    pub validation: Option<Split>,
    pub test: Split,
    /// What the network takes in and gives out, as the data says.
    pub input: Input,
    /// For a folder of images: how it was read.
    pub folders: Option<Folders>,
    /// The folder the data was read from.
    pub dir: PathBuf,
}

impl Splits {
    /// The dataset `opts` name, on their device, with the recipe's validation images held
    /// out of the training set.
    pub(crate) fn load(opts: &TrainOptions) -> Result<Splits> {
        let data = data::load(&opts.data, opts.device)?;
        let held_out = held_out(opts, &data)?;
        let (train, validation) = data.train.split_off_last(held_out);
        Ok(Splits {
            train,
            validation: (held_out > 0).then_some(validation),
            test: data.test,
            input: data.input,
            folders: data.folders,
            dir: data.dir,
        })
    }

    /// Optimisation steps in an epoch of batches of `batch_size`: the last may be smaller.
    pub(crate) fn steps_per_epoch(&self, batch_size: usize) -> usize {
        (self.train.len() as usize).div_ceil(batch_size)
    }

    /// The training images at `index` (`[b]`), in epoch `epoch`.
    pub(crate) fn batch(&self, index: &Tensor, epoch: u32) -> Batch {
        Batch {
            images: self.train.images_at(index),              // [b, C, S, S]
            labels: self.train.labels.index_select(0, index), // [b]
            index: index.shallow_clone(),
            epoch,
        }
    }

    /// The figures of the epoch that ended at `done`: its running training figures, and
    /// the scores of the network `learner` keeps on the test images and the validation
    /// images; its time, the scoring's included.
    pub(crate) fn score_epoch(&self, learner: &Learner, done: &Position) -> EpochMetrics {
        let started = Instant::now();
        let (net, _) = learner.kept();
        let test = score(net, &self.test);
        let validation_accuracy = (self.validation.as_ref()).map(|v| score(net, v).accuracy);
        let seen = done.seen.max(1) as f64;
        EpochMetrics {
            epoch: done.epoch,
            train_loss: done.loss_sum / seen,
            train_accuracy: done.correct as f64 / seen,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            seconds: done.seconds + started.elapsed().as_secs_f64(),
            validation_accuracy,
        }
    }
}

/// How many training images to hold out: the recipe's number, checked against the data.
fn held_out(opts: &TrainOptions, data: &data::Dataset) -> Result<i64> {
    let n = data.train.len();
    let held_out = i64::from(opts.recipe.validation_images);
    ensure!(
        held_out < n,
        "holding out {held_out} images for validation (--validation{}) leaves nothing to \
         train on: {} has {n} training images; give --validation N with fewer (0 trains on \
         all of them)",
        match opts.recipe.name {
            RecipeName::Lesson => String::new(),
            name => format!(", {held_out} with --recipe {name}"),
        },
        data.dir.display(),
    );
    if let (Some(patience), 0) = (opts.recipe.early_stop, held_out) {
        bail!(
            "--early-stop {patience} watches the validation accuracy, but no images are held \
             out for validation; give --validation N as well"
        );
    }
    Ok(held_out)
}
