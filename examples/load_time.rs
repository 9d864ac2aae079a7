//! How long loading the data takes, with libtorch already loaded:
//! - the four Fashion-MNIST files, checked (issue #4's target: 0.3 s), and where the time
//!   goes for the largest file;
//! - a folder of images (`examples/fashion_mnist_folders.rs` writes Fashion-MNIST as one):
//!   decoding them all, and the memory it takes beyond the process's before, against
//!   the decoded tensors' size.
//!
//! `cargo run --release --example load_time [DIR]`; `scripts/bench.sh` runs it.
use std::time::Instant;

use anyhow::Result;
use fashion_tch::data;
use sha2::{Digest, Sha256};

fn seconds<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/usr/share/datasets/fashion-mnist".into());
    let dir = std::path::Path::new(&dir);
    let _ = tch::Tensor::zeros([1], tch::kind::FLOAT_CPU); // libtorch loaded and warm
    if !data::has_dataset(dir) {
        return folder(dir);
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        let (data, load) = seconds(|| data::load_dir(dir, tch::Device::Cpu));
        let data = data?;
        best = best.min(load);
        let (raw, gunzip) = seconds(|| data::read_file(&dir.join("train-images-idx3-ubyte.gz")));
        let (_, sha) = seconds(|| Sha256::digest(raw.as_deref().unwrap_or_default()));
        println!(
            "load_dir {load:.3} s for {} images; the training images alone: read and gunzip \
             {gunzip:.3} s, SHA-256 {sha:.3} s",
            data.train.len() + data.test.len()
        );
    }
    println!("loading and checking the four data files: {best:.3} s (best of 3; target 0.3 s)");
    Ok(())
}

/// Times three loads of the folder of images `dir`; the first one's memory peak.
fn folder(dir: &std::path::Path) -> Result<()> {
    let choice = data::Choice {
        dir: Some(dir.to_path_buf()),
        ..data::Choice::default()
    };
    let before = kib("VmRSS");
    let mut best = f64::MAX;
    for round in 0..3 {
        let (data, load) = seconds(|| data::load(&choice, tch::Device::Cpu));
        let data = data?;
        best = best.min(load);
        if round == 0 {
            let decoded = (data.train.pixels.numel() + data.test.pixels.numel()) as f64 / 1024.0;
            let peak = kib("VmHWM") - before;
            println!(
                "decoded {:.1} MiB of images; the process's peak grew by {:.1} MiB while \
                 loading ({:.2} times the decoded size)",
                decoded / 1024.0,
                peak / 1024.0,
                peak / decoded
            );
        }
    }
    println!("decoding the folder's images: {best:.2} s (best of 3)");
    Ok(())
}

/// A figure of this process's memory from /proc/self/status, in KiB (0 where none).
fn kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    (status.lines())
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0.0)
}
