// What tch has no binding for, called from src/shim.rs: libtorch's fused Adam and AdamW
// (one dispatch for every parameter tensor, in parallel on the CPU, one kernel on a GPU),
// autocast in bfloat16 on the CPU or CUDA (tch's autocast is CUDA's, in libtorch's
// default float16), and CUDA graphs. build.rs defines FASHION_TCH_CUDA when it builds
// against libtorch's CUDA layout with CUDA's headers; without it the graph functions
// return an error that says so.
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
#include <stdexcept>
#include <vector>

#ifdef FASHION_TCH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/core/DeviceGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

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

// `lr_tensor`, when not null, is the learning rate as a float32 scalar on the parameters'
// device, read by the kernel when it runs (a step replayed from a CUDA graph); else `lr`.
extern "C" int fashion_tch_fused_adam(at::Tensor** params, at::Tensor** grads,
                                      at::Tensor** exp_avgs, at::Tensor** exp_avg_sqs,
                                      at::Tensor* step, int n, double lr,
                                      at::Tensor* lr_tensor, double beta1, double beta2,
                                      double weight_decay, double eps, char* error,
                                      size_t error_len) {
  return guarded(
      [&] {
        // as torch.optim runs its step: the update is no part of the autograd graph
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> steps(n, *step);
        auto update = [&](const auto& rate) {
          if (weight_decay == 0.0) {
            at::_fused_adam_(list(params, n), list(grads, n), list(exp_avgs, n),
                             list(exp_avg_sqs, n), {}, steps, rate, beta1, beta2, 0.0, eps,
                             /*amsgrad=*/false, /*maximize=*/false);
          } else {
            at::_fused_adamw_(list(params, n), list(grads, n), list(exp_avgs, n),
                              list(exp_avg_sqs, n), {}, steps, rate, beta1, beta2,
                              weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false);
          }
        };
        if (lr_tensor != nullptr) {
          update(*lr_tensor);
        } else {
          update(lr);
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

// A CUDA graph, and the side stream that its warm-up and capture run on (as PyTorch's
// torch.cuda.graph runs them): libraries set up their per-stream state there before the
// capture, which may not allocate it.
struct FashionTchGraph {
#ifdef FASHION_TCH_CUDA
  explicit FashionTchGraph(c10::DeviceIndex device)
      : side(c10::cuda::getStreamFromPool(false, device)),
        outer(c10::cuda::getCurrentCUDAStream(device)) {}
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAStream side;
  // the stream that was current before the side stream was entered
  c10::cuda::CUDAStream outer;
#endif
};

#ifndef FASHION_TCH_CUDA
namespace {
const char* const NO_CUDA_GRAPHS =
    "this program was built without CUDA graphs (against libtorch's CPU layout, or without "
    "CUDA's headers); run scripts/setup_libtorch.sh --device cuda, then cargo build again";
}
#endif

// A new graph on CUDA device `device`, into `*graph` (to be freed by fashion_tch_graph_free).
extern "C" int fashion_tch_graph_new(int device, FashionTchGraph** graph, char* error,
                                     size_t error_len) {
#ifdef FASHION_TCH_CUDA
  return guarded(
      [&] {
        const auto index = static_cast<c10::DeviceIndex>(device);
        c10::DeviceGuard on_device(c10::Device(c10::DeviceType::CUDA, index));
        *graph = new FashionTchGraph(index);
      },
      error, error_len);
#else
  (void)device;
  (void)graph;
  return fail(NO_CUDA_GRAPHS, error, error_len);
#endif
}

// `what`: 0 enters the side stream (the device first finishes what it was given), 1 leaves
// it for the stream current before (again once the device is done), 2 begins a capture on
// the current stream, 3 ends it, 4 replays the captured graph on the current stream.
extern "C" int fashion_tch_graph(FashionTchGraph* graph, int what, char* error,
                                 size_t error_len) {
#ifdef FASHION_TCH_CUDA
  return guarded(
      [&] {
        // the capture, its memory pool, the random generator it registers and the
        // synchronisation are all of the current device: make it the graph's
        c10::DeviceGuard on_device(graph->side.device());
        switch (what) {
          case 0:
            c10::cuda::device_synchronize();
            graph->outer = c10::cuda::getCurrentCUDAStream(graph->side.device_index());
            c10::cuda::setCurrentCUDAStream(graph->side);
            break;
          case 1:
            c10::cuda::device_synchronize();
            c10::cuda::setCurrentCUDAStream(graph->outer);
            break;
          case 2:
            graph->graph.capture_begin();
            break;
          case 3:
            graph->graph.capture_end();
            break;
          case 4:
            graph->graph.replay();
            break;
          default:
            throw std::invalid_argument("fashion_tch_graph: no such operation");
        }
      },
      error, error_len);
#else
  (void)graph;
  (void)what;
  return fail(NO_CUDA_GRAPHS, error, error_len);
#endif
}

extern "C" void fashion_tch_graph_free(FashionTchGraph* graph) {
  try {
    delete graph;
  } catch (...) {
    // a destructor that throws at exit: nothing left to tell
  }
}
