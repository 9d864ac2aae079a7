//! Adam and AdamW, written here so that their state belongs to the run: the moment
//! estimates and the step count are saved in every checkpoint and loaded on resume.
//! (tch's `nn::Optimizer` keeps them inside libtorch, out of reach, so a resumed run used
//! to restart Adam from zero.)
//!
//! The arithmetic is libtorch's `torch::optim::Adam` and `AdamW`, step for step. On the
//! CPU each parameter tensor is updated in one pass of Rust over its memory: libtorch's
//! loop dispatches eight tensor operations per parameter tensor per step, a large part of
//! a small network's step at batch 32. On other devices the same update runs as tensor
//! operations, which keep the data where it is.

use std::collections::HashMap;

use anyhow::{bail, Result};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Adam's second-moment decay (PyTorch's default).
pub const BETA2: f64 = 0.999;
/// Added to the root of the second moment (PyTorch's default).
pub const EPS: f64 = 1e-8;

/// Adam, or AdamW when `weight_decay` is above 0, over a var store's trainable tensors.
pub struct Adam {
    params: Vec<Param>,
    /// Updates made so far (Adam's bias correction counts them).
    pub steps: u64,
    /// AdamW's decoupled weight decay; 0 for Adam.
    weight_decay: f64,
    /// Update with tensor operations even on the CPU (to test that path without a GPU).
    tensor_ops: bool,
}

/// One trainable tensor and its moment estimates, in the same memory layout.
struct Param {
    name: String,
    value: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// The scalars of one update, computed once per step as libtorch computes them.
#[derive(Clone, Copy)]
struct Coefficients {
    /// What the weights are multiplied by first (AdamW), or 1.
    decay: f64,
    beta1: f64,
    /// The step size, `lr / (1 - β₁ᵗ)`.
    step_size: f64,
    /// `sqrt(1 - β₂ᵗ)`.
    root_correction2: f64,
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
        let params = vars
            .into_iter()
            .map(|(name, value)| {
                // zeros_like keeps the layout (the CNN's CPU weights are channels-last), so
                // the CPU update can walk all three buffers in the same order
                let exp_avg = value.zeros_like();
                let exp_avg_sq = value.zeros_like();
                Param {
                    name,
                    value,
                    exp_avg,
                    exp_avg_sq,
                }
            })
            .collect();
        Adam {
            params,
            steps: 0,
            weight_decay,
            tensor_ops: false,
        }
    }

    /// Backpropagates `loss` and updates every parameter at learning rate `lr` with
    /// first-moment decay `beta1` (a one-cycle schedule moves both).
    pub fn backward_step(&mut self, loss: &Tensor, lr: f64, beta1: f64) {
        let values: Vec<&Tensor> = self.params.iter().map(|p| &p.value).collect();
        // the gradients come back to us rather than into each tensor's .grad, so there is
        // nothing to zero before the next step
        let grads = Tensor::run_backward(&[loss], &values, false, false);
        self.steps += 1;
        let c = self.coefficients(lr, beta1);
        tch::no_grad(|| {
            for (param, grad) in self.params.iter_mut().zip(&grads) {
                if !grad.defined() {
                    continue; // not used by this loss
                }
                if param.value.device() == Device::Cpu && !self.tensor_ops {
                    update_on_cpu(param, grad, &c);
                } else {
                    update_with_tensor_ops(param, grad, &c);
                }
            }
        });
    }

    fn coefficients(&self, lr: f64, beta1: f64) -> Coefficients {
        let t = self.steps as i32;
        Coefficients {
            decay: 1.0 - lr * self.weight_decay,
            beta1,
            step_size: lr / (1.0 - beta1.powi(t)),
            root_correction2: (1.0 - BETA2.powi(t)).sqrt(),
        }
    }

    /// The moment estimates, named `exp_avg.<variable>` and `exp_avg_sq.<variable>` (as
    /// PyTorch's optimiser state calls them), for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .flat_map(|p| {
                [
                    (format!("exp_avg.{}", p.name), p.exp_avg.shallow_clone()),
                    (
                        format!("exp_avg_sq.{}", p.name),
                        p.exp_avg_sq.shallow_clone(),
                    ),
                ]
            })
            .collect()
    }

    /// Takes the moments from `state` (as [`Adam::state`] names them) and the step count.
    /// Errs, naming the tensor, when one is missing or has another shape.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps: u64) -> Result<()> {
        tch::no_grad(|| {
            for p in &mut self.params {
                for (kind, moment) in [
                    ("exp_avg", &mut p.exp_avg),
                    ("exp_avg_sq", &mut p.exp_avg_sq),
                ] {
                    let name = format!("{kind}.{}", p.name);
                    match state.get(&name) {
                        Some(t) if t.size() == moment.size() => moment.copy_(t),
                        Some(t) => bail!(
                            "the optimiser state {name} is {:?}, but the model's {} is {:?}",
                            t.size(),
                            p.name,
                            moment.size()
                        ),
                        None => bail!("the optimiser state has no {name}"),
                    }
                }
            }
            Ok(())
        })?;
        self.steps = steps;
        Ok(())
    }

    /// Updates with tensor operations on every device, as on a GPU; for tests.
    pub fn use_tensor_ops(&mut self) {
        self.tensor_ops = true;
    }
}

/// libtorch's Adam update of one tensor, as tensor operations (tch's bindings have no
/// `alpha` or `value` arguments, hence the products computed apart).
fn update_with_tensor_ops(p: &mut Param, grad: &Tensor, c: &Coefficients) {
    if c.decay != 1.0 {
        let _ = p.value.g_mul_scalar_(c.decay);
    }
    let _ = p.exp_avg.g_mul_scalar_(c.beta1);
    let _ = p.exp_avg.g_add_(&(grad * (1.0 - c.beta1)));
    let _ = p.exp_avg_sq.g_mul_scalar_(BETA2);
    let _ = p.exp_avg_sq.addcmul_(grad, &(grad * (1.0 - BETA2)));
    let denom = (p.exp_avg_sq.sqrt() / c.root_correction2) + EPS;
    let _ = p.value.addcdiv_(&(&p.exp_avg * -c.step_size), &denom);
}

/// libtorch's Adam update of one float or double tensor in a single pass over its memory.
fn update_on_cpu(p: &mut Param, grad: &Tensor, c: &Coefficients) {
    match p.value.kind() {
        Kind::Float => update_elements::<f32>(p, grad, c),
        Kind::Double => update_elements::<f64>(p, grad, c),
        _ => update_with_tensor_ops(p, grad, c),
    }
}

/// A float type the CPU update runs in.
trait Element:
    Copy
    + PartialEq
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
    + std::ops::MulAssign
{
    const KIND: Kind;
    fn of(x: f64) -> Self;
    fn sqrt(self) -> Self;
}

impl Element for f32 {
    const KIND: Kind = Kind::Float;
    fn of(x: f64) -> f32 {
        x as f32
    }
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
}

impl Element for f64 {
    const KIND: Kind = Kind::Double;
    fn of(x: f64) -> f64 {
        x
    }
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
}

fn update_elements<T: Element>(p: &mut Param, grad: &Tensor, c: &Coefficients) {
    // The gradient must walk memory in the parameter's order; a convolution's gradient
    // may come back in another layout than its channels-last weight.
    let same_layout = grad.kind() == T::KIND && grad.stride() == p.value.stride();
    let grad = if same_layout && is_dense(grad) {
        grad.shallow_clone()
    } else {
        let mut copy = p.value.empty_like();
        copy.copy_(grad);
        copy
    };
    let n = p.value.numel();
    // SAFETY: `value`, `exp_avg` and `exp_avg_sq` are CPU tensors of `n` elements of type
    // T that we own, each a dense block of memory in the same layout (`Adam::new` made
    // the moments with zeros_like; checked by `is_dense` in a debug build); `grad` was
    // checked or copied into that layout above. They are four distinct allocations, and
    // no other thread touches them during the step.
    let (value, exp_avg, exp_avg_sq, grad) = unsafe {
        debug_assert!(is_dense(&p.value) && p.value.kind() == T::KIND);
        (
            slice_mut::<T>(&p.value, n),
            slice_mut::<T>(&p.exp_avg, n),
            slice_mut::<T>(&p.exp_avg_sq, n),
            std::slice::from_raw_parts(grad.data_ptr() as *const T, n),
        )
    };
    let decay = T::of(c.decay);
    let (beta1, one_minus_beta1) = (T::of(c.beta1), T::of(1.0 - c.beta1));
    let (beta2, one_minus_beta2) = (T::of(BETA2), T::of(1.0 - BETA2));
    let (root_correction2, eps) = (T::of(c.root_correction2), T::of(EPS));
    let step_size = T::of(-c.step_size);
    let one = T::of(1.0);
    for (((w, m), v), &g) in value.iter_mut().zip(exp_avg).zip(exp_avg_sq).zip(grad) {
        if decay != one {
            *w *= decay; // p.mul_(1 - lr * weight_decay), AdamW only
        }
        *m = *m * beta1 + g * one_minus_beta1; // exp_avg.mul_(β₁).add_(g, 1 - β₁)
        *v = *v * beta2 + one_minus_beta2 * g * g; // exp_avg_sq.mul_(β₂).addcmul_(g, g, 1 - β₂)
        let denom = v.sqrt() / root_correction2 + eps;
        *w += step_size * (*m / denom); // p.addcdiv_(exp_avg, denom, -step_size)
    }
}

/// # Safety
/// `t` must be a CPU tensor of type T whose `n` elements fill one dense block of memory,
/// not otherwise borrowed while the slice lives.
unsafe fn slice_mut<'a, T>(t: &Tensor, n: usize) -> &'a mut [T] {
    std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, n)
}

/// Whether `t`'s elements fill one block of memory with no gaps and no overlaps, in some
/// order of its dimensions (contiguous, channels-last, …).
fn is_dense(t: &Tensor) -> bool {
    let mut dims: Vec<(i64, i64)> = t
        .size()
        .into_iter()
        .zip(t.stride())
        .filter(|&(size, _)| size != 1)
        .collect();
    dims.sort_by_key(|&(_, stride)| stride);
    let mut expected = 1;
    for (size, stride) in dims {
        if stride != expected {
            return false;
        }
        expected *= size;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_layouts_are_recognised() {
        let t = Tensor::zeros([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        assert!(is_dense(&t));
        let channels_last = t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
        assert!(is_dense(&channels_last));
        assert!(!is_dense(&t.narrow(3, 0, 2)));
    }
}
