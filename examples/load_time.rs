//! How long loading and checking the four Fashion-MNIST files takes, with libtorch already
//! loaded (issue #4's target: 0.3 s), and where the time goes for the largest file.
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
