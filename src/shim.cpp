// What tch has no binding for, called from src/shim.rs: libtorch's fused Adam and AdamW
// (one dispatch for every parameter tensor, in parallel on the CPU, one kernel on a GPU),
// and autocast in bfloat16 on the CPU or CUDA (tch's autocast is CUDA's, in libtorch's
// default float16).
// Every function catches libtorch's exceptions and returns their message instead, so
// nothing unwinds into Rust.
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>
#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/_fused_adamw.h>

#include <cstring>
#include <exception>
#include <vector>

namespace {

// Copies `what` into the caller's buffer (cut to fit) and returns 1.
int fail(const char* what, char* error, size_t error_len) {
  if (error_len > 0) {
    std::strncpy(error, what, error_len - 1);
    error[error_len - 1] = '\0';
  }
  return 1;
}

// Runs `body`, turning any exception into its message in the caller's buffer: libtorch's
// own without its C++ backtrace.
template <typename F>
int guarded(F body, char* error, size_t error_len) {
  try {
    body();
    return 0;
  } catch (const c10::Error& e) {
    return fail(e.what_without_backtrace(), error, error_len);
  } catch (const std::exception& e) {
    return fail(e.what(), error, error_len);
  } catch (...) {
    return fail("an unknown C++ exception", error, error_len);
  }
}

std::vector<at::Tensor> list(at::Tensor** tensors, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; i++) out.push_back(*tensors[i]);
  return out;
}

}  // namespace

extern "C" int fashion_tch_fused_adam(at::Tensor** params, at::Tensor** grads,
                                      at::Tensor** exp_avgs, at::Tensor** exp_avg_sqs,
                                      at::Tensor* step, int n, double lr, double beta1,
                                      double beta2, double weight_decay, double eps,
                                      char* error, size_t error_len) {
  return guarded(
      [&] {
        // as torch.optim runs its step: the update is no part of the autograd graph
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> steps(n, *step);
        if (weight_decay == 0.0) {
          at::_fused_adam_(list(params, n), list(grads, n), list(exp_avgs, n),
                           list(exp_avg_sqs, n), {}, steps, lr, beta1, beta2, 0.0, eps,
                           /*amsgrad=*/false, /*maximize=*/false);
        } else {
          at::_fused_adamw_(list(params, n), list(grads, n), list(exp_avgs, n),
                            list(exp_avg_sqs, n), {}, steps, lr, beta1, beta2, weight_decay,
                            eps, /*amsgrad=*/false, /*maximize=*/false);
        }
      },
      error, error_len);
}

// Turns autocast on in bfloat16 for CUDA tensors (`cuda` 1) or CPU tensors (0), or off (and
// drops the cast weights it cached).
extern "C" int fashion_tch_autocast_bf16(int cuda, int enabled, char* error,
                                         size_t error_len) {
  return guarded(
      [&] {
        const auto device = cuda != 0 ? at::kCUDA : at::kCPU;
        at::autocast::set_autocast_dtype(device, at::kBFloat16);
        at::autocast::set_autocast_enabled(device, enabled != 0);
        if (enabled == 0) at::autocast::clear_cache();
      },
      error, error_len);
}
