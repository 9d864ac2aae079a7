//! What a run computes with: the network and Adam, and the training step with what a
//! recipe wraps around it, none of it inside the step itself ([`train_step`]):
//! - augmentation, before it: each batch shifted, mirrored and cut out as the recipe says;
//! - bfloat16 autocast around it (`--precision bf16`);
//! - the CUDA graph around it (`--cuda-graph`): captured once, then replayed;
//! - the moving average of the weights after it (`--ema`), which is scored and saved.

use anyhow::Result;
use tch::nn::{self, VarStore};
use tch::Tensor;

use super::step::train_step;
use super::TrainOptions;
use crate::cuda_graph::GraphedStep;
use crate::data::Input;
use crate::ema::Ema;
use crate::models::Network;
use crate::optim::Adam;
use crate::recipe::{augment::augment, Optimizer, Precision, StepSettings};
use crate::run_dir::Held;
use crate::shim;

/// A batch of the training set: its images (`[b, C, S, S]`) and labels (`[b]`), which
/// images of the set they are (`[b]`), and the epoch it is of.
pub(crate) struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
    pub index: Tensor,
    pub epoch: u32,
}

/// The network, its optimiser, and the wrappers of its step.
pub(crate) struct Learner {
    pub vs: VarStore,
    net: Network,
    pub adam: Adam,
    /// The moving average of the weights, where the recipe keeps one.
    pub ema: Option<Ema>,
    /// With `--cuda-graph`: the step, captured once and replayed.
    graph: Option<GraphedStep>,
    precision: Precision,
    label_smoothing: f64,
    /// Where the recipe augments its batches.
    augment: Option<Augmentation>,
}

/// How a recipe augments each batch (beyond the shifts and mirroring every augmented
/// batch gets).
struct Augmentation {
    /// The side of the square cut out of each image; 0 for none.
    cutout: i64,
    /// With alternating flips: whether each training image is mirrored in the odd
    /// epochs (the others are, in the even ones); `None`: mirrored at random.
    odd_mirrors: Option<Tensor>,
}

impl Learner {
    /// The network of `opts` for `input`, with its initial weights (drawn from the seed),
    /// Adam, and the wrappers its recipe asks for, on a training set of `training_images`.
    pub(crate) fn new(opts: &TrainOptions, input: &Input, training_images: i64) -> Result<Learner> {
        let recipe = &opts.recipe;
        recipe.fits(input).map_err(anyhow::Error::msg)?;
        tch::manual_seed(opts.seed as i64);
        let vs = VarStore::new(opts.device);
        let net = recipe.model.build(&vs, input);
        let weight_decay = match recipe.optimizer {
            Optimizer::Adam => 0.0,
            Optimizer::AdamW { weight_decay } => weight_decay,
        };
        let adam = match opts.cuda_graph {
            true => Adam::new(&vs, weight_decay).for_cuda_graph(),
            false => Adam::new(&vs, weight_decay),
        };
        let ema = match recipe.ema {
            decay if decay > 0.0 => Some(Ema::new(&recipe.model, input, &vs, decay)?),
            _ => None,
        };
        let graph = match opts.cuda_graph {
            true => Some(GraphedStep::new(opts.device, recipe.batch_size)?),
            false => None,
        };
        let augment = recipe.augment.then(|| Augmentation {
            cutout: i64::from(recipe.cutout),
            odd_mirrors: recipe
                .alternate_flips
                .then(|| super::seeds::odd_mirrors(training_images, opts.seed, opts.device)),
        });
        Ok(Learner {
            vs,
            net,
            adam,
            ema,
            graph,
            precision: recipe.precision,
            label_smoothing: recipe.label_smoothing,
            augment,
        })
    }

    /// One optimisation step on `batch` at the learning rate and β₁ of `at`: the batch
    /// augmented, then [`train_step`] in the recipe's arithmetic, eagerly or replayed
    /// from its CUDA graph, then the moving average moved. Returns the loss and the
    /// logits (`[b, 10]`).
    pub(crate) fn step(&mut self, batch: &Batch, at: StepSettings) -> Result<(Tensor, Tensor)> {
        let images = self.augmented(batch);
        if self.graph.is_some() {
            // the step counted outside it, where a replayed graph cannot count
            self.adam.count(at.learning_rate);
        }
        let Learner {
            vs,
            net,
            adam,
            graph,
            precision,
            label_smoothing,
            ..
        } = self;
        let mut step = |xs: &Tensor, ys: &Tensor| match precision {
            Precision::F32 => train_step(net, adam, (xs, ys), *label_smoothing, at),
            Precision::Bf16 => shim::autocast_bf16(vs.device(), || {
                train_step(net, adam, (xs, ys), *label_smoothing, at)
            })?,
        };
        let (loss, logits) = match graph {
            Some(graph) => graph.run(&images, &batch.labels, step)?,
            None => step(&images, &batch.labels)?,
        };
        if let Some(ema) = &mut self.ema {
            ema.update(self.adam.steps);
        }
        Ok((loss, logits))
    }

    /// The images of `batch` as the recipe trains on them: shifted and mirrored (as
    /// alternating flips say, or at random), and cut out, where it augments.
    fn augmented(&self, batch: &Batch) -> Tensor {
        let Some(how) = &self.augment else {
            return batch.images.shallow_clone();
        };
        let mirror = how.odd_mirrors.as_ref().map(|odd| {
            let odd = odd.index_select(0, &batch.index);
            match batch.epoch % 2 {
                1 => odd,
                _ => odd.logical_not(),
            }
        });
        augment(&batch.images, mirror.as_ref(), how.cutout)
    }

    /// The network that is scored and saved, and its variables: the moving average's
    /// where the recipe keeps one, else the trained one.
    pub(crate) fn kept(&self) -> (&Network, &nn::VarStore) {
        match &self.ema {
            Some(ema) => (&ema.net, &ema.vs),
            None => (&self.net, &self.vs),
        }
    }

    /// Which weights [`Learner::kept`] gives.
    pub(crate) fn held(&self) -> Held {
        match self.ema {
            Some(_) => Held::Average,
            None => Held::Trained,
        }
    }
}
