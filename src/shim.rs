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
        lr_tensor: *mut c_void,
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

    fn fashion_tch_graph_new(
        device: c_int,
        graph: *mut *mut c_void,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;

    fn fashion_tch_graph(
        graph: *mut c_void,
        what: c_int,
        error: *mut c_char,
        error_len: usize,
    ) -> c_int;

    fn fashion_tch_graph_free(graph: *mut c_void);
}

/// The scalars of one Adam step.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep<'a> {
    pub lr: f64,
    /// The learning rate as a float32 scalar on the parameters' device, read by the kernel
    /// when it runs (in a step replayed from a CUDA graph), in place of `lr`.
    pub lr_on_device: Option<&'a Tensor>,
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
    // the kernel updates in place, the gradients, the step and the learning rate (or
    // null) shared, which it only reads.
    // The lists have `n` entries each, and `error` is a buffer of its stated length.
    let lr_on_device = s
        .lr_on_device
        .map_or(std::ptr::null_mut(), |t| t.as_ptr().cast_mut().cast());
    let failed = unsafe {
        fashion_tch_fused_adam(
            params.as_ptr(),
            read(grads).as_ptr(),
            exp_avgs.as_ptr(),
            exp_avg_sqs.as_ptr(),
            step.as_ptr().cast_mut().cast(),
            n as c_int,
            s.lr,
            lr_on_device,
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

/// A CUDA graph: kernels captured once and replayed with one launch, each replay reading
/// and writing the same memory. Its warm-up and capture run on a side stream of its own,
/// as PyTorch's `torch.cuda.graph` runs them.
pub struct CudaGraph(*mut c_void);

/// What `fashion_tch_graph` does (src/shim.cpp).
#[derive(Clone, Copy)]
enum GraphOp {
    EnterSideStream = 0,
    LeaveSideStream = 1,
    BeginCapture = 2,
    EndCapture = 3,
    Replay = 4,
}

impl CudaGraph {
    /// An empty graph on CUDA device `device`. Errs on a build without CUDA graphs (the
    /// CPU layout of libtorch, or no CUDA headers at build time), saying how to get one.
    pub fn new(device: Device) -> Result<CudaGraph> {
        let Device::Cuda(index) = device else {
            bail!("CUDA graphs run on a CUDA device, not {device:?}");
        };
        let mut graph = std::ptr::null_mut();
        let mut error = [0 as c_char; 512];
        // SAFETY: `graph` is written with a pointer that `Drop` frees; `error` is a buffer
        // of its stated length.
        let failed = unsafe {
            fashion_tch_graph_new(index as c_int, &mut graph, error.as_mut_ptr(), error.len())
        };
        check(failed, &error, "making a CUDA graph")?;
        Ok(CudaGraph(graph))
    }

    fn op(&self, op: GraphOp) -> Result<()> {
        let mut error = [0 as c_char; 512];
        // SAFETY: `self.0` came from fashion_tch_graph_new and is freed only by `Drop`.
        let failed =
            unsafe { fashion_tch_graph(self.0, op as c_int, error.as_mut_ptr(), error.len()) };
        check(failed, &error, "a CUDA graph")
    }

    /// Runs `f` with the graph's side stream as the current one, and the one before it
    /// current again after, however `f` ends (a panic included).
    pub fn on_side_stream<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.op(GraphOp::EnterSideStream)?;
        let leave = Then(self, Some(GraphOp::LeaveSideStream));
        let value = f()?;
        leave.now()?;
        Ok(value)
    }

    /// Records the kernels that `f` launches, on the side stream, without running them;
    /// [`CudaGraph::replay`] runs them. What `f` allocates belongs to the graph and stays
    /// where it is for every replay.
    pub fn capture<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.on_side_stream(|| {
            self.op(GraphOp::BeginCapture)?;
            // a capture begun is ended, or the stream stays unusable
            let end = Then(self, Some(GraphOp::EndCapture));
            let value = f()?;
            end.now()?;
            Ok(value)
        })
    }

    /// Runs the captured kernels once, on the current stream.
    pub fn replay(&self) -> Result<()> {
        self.op(GraphOp::Replay)
    }
}

/// `op` on the graph when dropped, unless [`Then::now`] ran it first: what was begun is
/// ended however the code between ends, an error or a panic included.
struct Then<'a>(&'a CudaGraph, Option<GraphOp>);

impl Then<'_> {
    fn now(mut self) -> Result<()> {
        match self.1.take() {
            Some(op) => self.0.op(op),
            None => Ok(()),
        }
    }
}

impl Drop for Then<'_> {
    fn drop(&mut self) {
        if let Some(op) = self.1.take() {
            let _ = self.0.op(op);
        }
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from fashion_tch_graph_new, and is freed once, here.
        unsafe { fashion_tch_graph_free(self.0) }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// On a build without CUDA graphs (CI's, against the CPU layout) making one errs,
    /// saying how to get one; on a CUDA build without a GPU it errs; with a GPU, a
    /// captured `x *= 2` runs only when replayed, once per replay.
    #[test]
    fn a_graph_replays_what_it_captured_or_says_why_there_is_none() {
        let cpu = CudaGraph::new(Device::Cpu)
            .err()
            .expect("no graph on the CPU");
        assert!(cpu.to_string().contains("a CUDA device"), "{cpu}");
        let graph = CudaGraph::new(Device::Cuda(0));
        if !cfg!(cuda_graphs) {
            let err = graph.err().expect("a build without graphs").to_string();
            assert!(
                err.contains("built without CUDA graphs")
                    && err.contains("scripts/setup_libtorch.sh --device cuda"),
                "{err}"
            );
            return;
        }
        if !tch::Cuda::is_available() {
            let err = graph.err().expect("no GPU, no graph").to_string();
            assert!(err.contains("making a CUDA graph failed"), "{err}");
            return;
        }
        let graph = graph.unwrap();
        let mut x = Tensor::ones([4], (tch::Kind::Float, Device::Cuda(0)));
        graph
            .capture(|| {
                let _ = x.g_mul_scalar_(2.0);
                Ok(())
            })
            .unwrap();
        assert_eq!(
            x.sum(tch::Kind::Float).double_value(&[]),
            4.0,
            "captured, not run"
        );
        graph.replay().unwrap();
        graph.replay().unwrap();
        assert_eq!(x.sum(tch::Kind::Float).double_value(&[]), 16.0);
    }
}
