//! Adam and AdamW, written here so that their state belongs to the run: the moment
//! estimates and the step count are saved in every checkpoint and loaded on resume.
//! (tch's `nn::Optimizer` keeps them inside libtorch, out of reach, so a resumed run used
//! to restart Adam from zero.)
//!
//! The update itself is libtorch's fused kernel (`torch._fused_adam_`/`_fused_adamw_`,
//! through `crate::shim`): one call for every parameter tensor, a single pass over
//! memory in parallel on the CPU and one kernel on a GPU, where libtorch's own optimiser
//! dispatches eight tensor operations per parameter tensor per step.

use std::collections::HashMap;

use anyhow::{bail, ensure, Result};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::recipe::StepSettings;
use crate::shim::{self, AdamStep};

/// Adam's second-moment decay (PyTorch's default).
pub(crate) const BETA2: f64 = 0.999;
/// Added to the root of the second moment (PyTorch's default).
pub(crate) const EPS: f64 = 1e-8;

/// Adam, or AdamW when `weight_decay` is above 0, over a var store's trainable tensors.
pub struct Adam {
    names: Vec<String>,
    params: Vec<Tensor>,
    exp_avgs: Vec<Tensor>,
    exp_avg_sqs: Vec<Tensor>,
    /// Updates made so far (Adam's bias correction counts them).
    pub steps: u64,
    /// `steps` as the fused kernel reads it: a float on the parameters' device.
    step: Tensor,
    /// AdamW's decoupled weight decay; 0 for Adam.
    weight_decay: f64,
    /// For a step replayed from a CUDA graph ([`Adam::for_cuda_graph`]): the learning rate
    /// as the kernel reads it, a float on the parameters' device. `None`: passed by value.
    lr: Option<Tensor>,
}

impl Adam {
    /// Adam (`weight_decay` 0) or AdamW over the trainable variables of `vs`, with fresh
    /// moments. The variables are taken in the order of their names.
    pub fn new(vs: &VarStore, weight_decay: f64) -> Adam {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, params): (Vec<String>, Vec<Tensor>) = vars.into_iter().unzip();
        // zeros_like keeps each layout (the CNN's CPU weights are channels-last): the
        // kernel walks a parameter and its moments in memory order
        let zeros = || params.iter().map(Tensor::zeros_like).collect();
        Adam {
            exp_avgs: zeros(),
            exp_avg_sqs: zeros(),
            names,
            params,
            steps: 0,
            step: Tensor::zeros([], (Kind::Float, vs.device())),
            weight_decay,
            lr: None,
        }
    }

    /// The same Adam, reading its learning rate from the device as the step count, so
    /// that a step captured in a CUDA graph follows both when replayed. Its steps are
    /// counted outside the graph, by [`Adam::count`] before each, and not by the update.
    /// β₁ stays the one the step was captured with.
    pub fn for_cuda_graph(mut self) -> Adam {
        self.lr = Some(Tensor::zeros([], (Kind::Float, self.step.device())));
        self
    }

    /// Counts the step about to be taken (Adam's bias correction counts them), and sets
    /// its learning rate `lr` where the update reads it. [`Adam::update`] does it, but
    /// for an Adam [`Adam::for_cuda_graph`], whose learner calls it before each step,
    /// outside the graph, where a replayed step cannot.
    pub fn count(&mut self, lr: f64) {
        self.steps += 1;
        let _ = self.step.fill_(self.steps as f64);
        if let Some(on_device) = &mut self.lr {
            let _ = on_device.fill_(lr);
        }
    }

    /// Backpropagation: the gradient of `loss` for each parameter, in the order Adam holds
    /// them. They come back here rather than into each tensor's `.grad`, so there is
    /// nothing to zero before the next step.
    pub fn backward(&self, loss: &Tensor) -> Vec<Tensor> {
        Tensor::run_backward(&[loss], &self.params, false, false)
    }

    /// Counts the step, and moves every parameter against its gradient in `grads`
    /// ([`Adam::backward`]'s) at the learning rate and β₁ of `at` (a one-cycle schedule
    /// moves both).
    pub fn update(&mut self, grads: &[Tensor], at: StepSettings) -> Result<()> {
        let StepSettings {
            learning_rate: lr,
            beta1,
        } = at;
        if self.lr.is_none() {
            self.count(lr);
        }
        ensure!(
            grads.len() == self.params.len(),
            "{} gradients for Adam's {} parameters",
            grads.len(),
            self.params.len()
        );
        // a parameter the loss does not use gets no gradient, and no update (as in libtorch)
        let used: Vec<usize> = (0..grads.len()).filter(|&i| grads[i].defined()).collect();
        let grads: Vec<Tensor> = used
            .iter()
            .map(|&i| in_layout_of(&grads[i], &self.params[i]))
            .collect();
        shim::fused_adam(
            &mut pick(&mut self.params, &used),
            &grads.iter().collect::<Vec<_>>(),
            &mut pick(&mut self.exp_avgs, &used),
            &mut pick(&mut self.exp_avg_sqs, &used),
            &self.step,
            AdamStep {
                lr,
                lr_on_device: self.lr.as_ref(),
                beta1,
                beta2: BETA2,
                weight_decay: self.weight_decay,
                eps: EPS,
            },
        )
    }

    /// The moment estimates, named `exp_avg.<variable>` and `exp_avg_sq.<variable>` (as
    /// PyTorch's optimiser state calls them), for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let named = |kind: &str, moments: &[Tensor]| -> Vec<(String, Tensor)> {
            self.names
                .iter()
                .zip(moments)
                .map(|(name, t)| (format!("{kind}.{name}"), t.shallow_clone()))
                .collect()
        };
        let mut state = named("exp_avg", &self.exp_avgs);
        state.extend(named("exp_avg_sq", &self.exp_avg_sqs));
        state
    }

    /// Takes the moments from `state` (as [`Adam::state`] names them) and the step count.
    /// Errs, naming the tensor, when one is missing or has another shape.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        for (kind, moments) in [
            ("exp_avg", &mut self.exp_avgs),
            ("exp_avg_sq", &mut self.exp_avg_sqs),
        ] {
            for (name, moment) in self.names.iter().zip(moments.iter_mut()) {
                let key = format!("{kind}.{name}");
                match state.get(&key) {
                    Some(t) if t.size() == moment.size() => tch::no_grad(|| moment.copy_(t)),
                    Some(t) => bail!(
                        "the optimiser state {key} is {:?}, but the model's {name} is {:?}",
                        t.size(),
                        moment.size()
                    ),
                    None => bail!("the optimiser state has no {key}"),
                }
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// The tensors of `all` at the indices `used` (ascending), to update in place.
fn pick<'a>(all: &'a mut [Tensor], used: &[usize]) -> Vec<&'a mut Tensor> {
    all.iter_mut()
        .enumerate()
        .filter(|(i, _)| used.binary_search(i).is_ok())
        .map(|(_, t)| t)
        .collect()
}

/// `grad` laid out in memory as `param` is: a convolution's gradient may come back in
/// another layout than its channels-last weight.
fn in_layout_of(grad: &Tensor, param: &Tensor) -> Tensor {
    if grad.stride() == param.stride() {
        return grad.shallow_clone();
    }
    let mut copy = param.empty_like();
    copy.copy_(grad);
    copy
}
