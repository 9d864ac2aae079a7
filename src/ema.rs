//! An exponential moving average of a network's weights (`--ema DECAY`): after every
//! optimisation step each averaged weight moves a share `1 - decay` of the way to the
//! trained one. The average smooths out the last steps' noise, so it usually scores
//! better than the weights of the last step. A run that keeps one scores it in validation
//! and testing and saves it as `model.safetensors` and `best.safetensors`; the trained
//! weights stay in the checkpoint, beside the average, so a resumed run goes on exactly.
//!
//! Early in a run the average would still remember the random initial weights, so the
//! decay starts low and rises to `decay`: `min(decay, (1 + t) / (10 + t))` after `t`
//! steps, as timm's `ModelEmaV2` and TensorFlow's `ExponentialMovingAverage` do.

use anyhow::Result;
use tch::nn::VarStore;
use tch::Tensor;

use crate::data::Input;
use crate::models::{ModelSpec, Network};

/// The averaged weights, in their own var store and network.
pub(crate) struct Ema {
    decay: f64,
    pub vs: VarStore,
    pub net: Network,
    /// Each averaged variable beside the trained one it follows.
    pairs: Vec<(Tensor, Tensor)>,
}

impl Ema {
    /// An average of the variables of `trained` (a network built from `spec` for
    /// `input`) with the decay `decay`, starting at their present values.
    pub(crate) fn new(
        spec: &ModelSpec,
        input: &Input,
        trained: &VarStore,
        decay: f64,
    ) -> Result<Ema> {
        let mut vs = VarStore::new(trained.device());
        let net = spec.build(&vs, input);
        vs.copy(trained)?;
        let theirs = trained.variables();
        let mut pairs: Vec<(Tensor, Tensor)> = vs
            .variables()
            .into_iter()
            .filter_map(|(name, ours)| Some((ours, theirs.get(&name)?.shallow_clone())))
            .collect();
        // the average never needs a gradient
        for (ours, _) in &mut pairs {
            let _ = ours.set_requires_grad(false);
        }
        Ok(Ema {
            decay,
            vs,
            net,
            pairs,
        })
    }

    /// The decay after `steps` optimisation steps.
    fn decay_after(&self, steps: u64) -> f64 {
        let t = steps as f64;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Moves the average toward the trained weights, after the run's `steps`-th step.
    pub(crate) fn update(&mut self, steps: u64) {
        let share = 1.0 - self.decay_after(steps);
        tch::no_grad(|| {
            for (ours, theirs) in &mut self.pairs {
                let _ = ours.lerp_(theirs, share);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn the_average_follows_the_weights_slowly_after_a_short_start() {
        let _generator = crate::own_the_generator();
        let spec = ModelSpec::Dense { hidden: 4 };
        let trained = VarStore::new(Device::Cpu);
        let _net = spec.build(&trained, &Input::fashion_mnist());
        let mut ema = Ema::new(&spec, &Input::fashion_mnist(), &trained, 0.99).unwrap();
        assert!(
            (ema.decay_after(0) - 0.1).abs() < 1e-12,
            "a short memory at first"
        );
        assert!((ema.decay_after(10_000) - 0.99).abs() < 1e-12);
        let (name, mut weight) = trained.variables().into_iter().next().unwrap();
        let before = weight.copy();
        tch::no_grad(|| weight.copy_(&(&before + 1.0)));
        ema.update(10_000);
        let averaged = &ema.vs.variables()[&name];
        // a hundredth of the way from the old weights to the new ones
        let moved = (averaged - &before).mean(Kind::Float).double_value(&[]);
        assert!((moved - 0.01).abs() < 1e-5, "{moved}");
        assert!(!averaged.requires_grad());
    }
}
