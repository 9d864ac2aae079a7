//! What tch has no binding for, compiled from `src/shim.cpp` against libtorch's headers
//! by `build.rs`. Each call returns libtorch's error as an `Err`, never a crash.

use std::ffi::{c_char, c_int, c_void, CStr};

use anyhow::{bail, ensure, Result};
use tch::{Device, Tensor};

extern "C" {
    fn fashion_tch_fused_adam(
        params: *const *mut c_void,
        grads: *const *mut c_void,
        exp_avgs: *const *mut c_void,
        exp_avg_sqs: *const *mut c_void,
        step: *mut c_void,
        n: c_int,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;

    fn fashion_tch_autocast_bf16(
        cuda: c_int,
        enabled: c_int,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;
}

/// The scalars of one Adam step.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// AdamW's decoupled weight decay; 0 for Adam.
    pub weight_decay: f64,
    pub eps: f64,
}

/// libtorch's fused Adam (`weight_decay` 0) or AdamW step (`torch._fused_adam_`,
/// `_fused_adamw_`) over every tensor at once, in place: `params[i]` moves by its
/// `grads[i]`, updating its moments `exp_avgs[i]` and `exp_avg_sqs[i]`. `step` holds the
/// step count (the same for every tensor; the kernel reads it). All tensors are on one
/// device, and each parameter, gradient and moment of one index share a memory layout.
/// The update runs without recording gradients, as PyTorch's optimisers run it.
pub fn fused_adam(
    params: &mut [&mut Tensor],
    grads: &[&Tensor],
    exp_avgs: &mut [&mut Tensor],
    exp_avg_sqs: &mut [&mut Tensor],
    step: &Tensor,
    s: AdamStep,
) -> Result<()> {
    let n = params.len();
    ensure!(
        grads.len() == n && exp_avgs.len() == n && exp_avg_sqs.len() == n,
        "fused Adam needs one gradient and two moments per parameter: {n} parameters, {} \
         gradients, {} and {} moments",
        grads.len(),
        exp_avgs.len(),
        exp_avg_sqs.len()
    );
    let written = |ts: &mut [&mut Tensor]| -> Vec<*mut c_void> {
        ts.iter_mut().map(|t| t.as_mut_ptr().cast()).collect()
    };
    // read only: the kernel takes `const at::Tensor&`s of these
    let read = |ts: &[&Tensor]| -> Vec<*mut c_void> {
        ts.iter().map(|t| t.as_ptr().cast_mut().cast()).collect()
    };
    let (params, exp_avgs, exp_avg_sqs) =
        (written(params), written(exp_avgs), written(exp_avg_sqs));
    let mut error = [0 as c_char; 512];
    // SAFETY: a tch `Tensor` wraps a `*mut C_tensor`, which torch-sys's C API
    // (libtch/torch_api.h: `typedef torch::Tensor *tensor`) defines as a pointer to a
    // libtorch `at::Tensor`; shim.cpp takes them as `at::Tensor*`. Every pointer is a live
    // tensor borrowed for the call: the parameters and moments mutably (`&mut`), which
    // the kernel updates in place, the gradients and the step shared, which it only reads.
    // The lists have `n` entries each, and `error` is a buffer of its stated length.
    let failed = unsafe {
        fashion_tch_fused_adam(
            params.as_ptr(),
            read(grads).as_ptr(),
            exp_avgs.as_ptr(),
            exp_avg_sqs.as_ptr(),
            step.as_ptr().cast_mut().cast(),
            n as c_int,
            s.lr,
            s.beta1,
            s.beta2,
            s.weight_decay,
            s.eps,
            error.as_mut_ptr(),
            error.len(),
        )
    };
    check(failed, &error, "libtorch's fused Adam")
}

/// Runs `f` under autocast in bfloat16 on `device`: matrix products and convolutions
/// take bfloat16 copies of their inputs (the weights stay float32), and ops that need the
/// range, such as the loss, run in float32. Cast weights are dropped after, as they change
/// every step.
pub fn autocast_bf16<T>(device: Device, f: impl FnOnce() -> T) -> Result<T> {
    /// Turns autocast off again however `f` ends, a panic included.
    struct Off(bool);
    impl Drop for Off {
        fn drop(&mut self) {
            let _ = set_autocast_bf16(self.0, false);
        }
    }
    let cuda = device.is_cuda();
    set_autocast_bf16(cuda, true)?;
    let off = Off(cuda);
    let result = f();
    drop(off);
    Ok(result)
}

fn set_autocast_bf16(cuda: bool, enabled: bool) -> Result<()> {
    let mut error = [0 as c_char; 512];
    // SAFETY: `error` is a buffer of its stated length.
    let failed = unsafe {
        fashion_tch_autocast_bf16(
            c_int::from(cuda),
            c_int::from(enabled),
            error.as_mut_ptr(),
            error.len(),
        )
    };
    check(failed, &error, "switching autocast")
}

/// `Err` with the shim's message when `failed` is not 0.
fn check(failed: c_int, error: &[c_char], what: &str) -> Result<()> {
    if failed != 0 {
        // SAFETY: the shim wrote a NUL-terminated message into `error`.
        let msg = unsafe { CStr::from_ptr(error.as_ptr()) }.to_string_lossy();
        bail!("{what} failed: {msg}");
    }
    Ok(())
}
