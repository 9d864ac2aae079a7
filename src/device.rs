//! `--device` and `--threads`: what the user asked for, checked against what libtorch can
//! do here, before any work starts.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use tch::{Cuda, Device};

/// The `--device` value: `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA (GPU 0) when libtorch can use it, else the CPU.
    Auto,
    Cpu,
    /// A CUDA GPU by index.
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("'{s}' is not a device: use auto, cpu, cuda or cuda:N")),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// The libtorch device, or an error that says how to get CUDA when it was asked for
    /// and is not there. Never falls back to the CPU silently.
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cuda(n) => {
                if !Cuda::is_available() {
                    bail!(
                        "--device {self}: CUDA is not available to this build. Either this \
                         machine has no usable NVIDIA GPU and driver (check `nvidia-smi`), or \
                         the binary was built against the CPU-only libtorch: run \
                         `scripts/setup_libtorch.sh --device cuda`, then build again \
                         (cargo rebuilds by itself). Use --device cpu to train on the CPU."
                    );
                }
                let count = Cuda::device_count() as usize;
                if n >= count {
                    bail!(
                        "--device {self}: this machine has {count} CUDA device(s), numbered 0 to {}",
                        count - 1
                    );
                }
                Ok(Device::Cuda(n))
            }
        }
    }
}

/// A device as people write it: `cpu` or `cuda:N`.
pub(crate) fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    }
}

/// Whether `device` does bfloat16 arithmetic in hardware: a CUDA GPU, or an x86 CPU with
/// AVX-512 BF16 (AMD Zen 4 and later, Intel Xeons since Cooper Lake). Elsewhere libtorch
/// emulates it, slower than float32.
pub fn has_bf16(device: Device) -> bool {
    if device.is_cuda() {
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Applies `--threads` (libtorch's intra-op threads) when given; libtorch's default is
/// one thread per physical core. Keeps freed memory for reuse ([`keep_freed_memory`]).
/// On CUDA, turns on cuDNN's autotuner: the lesson's shapes never change, so the first
/// batches pay for a faster kernel choice.
pub(crate) fn configure(device: Device, threads: Option<usize>) {
    if let Some(n) = threads {
        tch::set_num_threads(n as i32);
    }
    keep_freed_memory();
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
}

/// Tells glibc's allocator to keep the memory a step frees for the next step. By default
/// it hands blocks of a few megabytes (the CNN's activations) back to the kernel and
/// takes them again, so every step paid for page faults and zeroed pages: a sixth of
/// a CNN step's CPU time in `perf`, and its forward and backward passes took about a
/// third longer. The cost is that the process keeps its peak memory until it ends.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any of the
    // step's allocations, and glibc checks the values (a refused one changes nothing).
    unsafe {
        // blocks up to 32 MiB (glibc's largest threshold) come from the reused heap
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        // and free memory at its top stays there
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            let err = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(err.contains("auto, cpu, cuda or cuda:N"), "{bad}: {err}");
        }
    }
}
