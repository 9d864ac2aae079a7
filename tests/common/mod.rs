//! Helpers shared by the integration tests: a small synthetic dataset a network can learn
//! in a few epochs, and a way to run the binaries.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use fashion_tch::data::{write_idx_dir, SIDE};

/// Pixels and labels of `n` images whose class is drawn as a bright band (rows
/// 2·c+4 and 2·c+5 for class c) over noise; the label cycles through the ten classes.
pub fn synthetic(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut pixels = vec![0u8; n * SIDE * SIDE];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = (next() % 10) as usize;
        labels.push(class as u8);
        let img = &mut pixels[i * SIDE * SIDE..(i + 1) * SIDE * SIDE];
        for (j, px) in img.iter_mut().enumerate() {
            let row = j / SIDE;
            let band = row == 2 * class + 4 || row == 2 * class + 5;
            *px = if band { 200 } else { 0 } + (next() % 50) as u8;
        }
    }
    (pixels, labels)
}

/// Writes a synthetic dataset (600 training, 200 test images) into `dir`.
pub fn write_synthetic(dir: &Path) {
    let (train_px, train_lb) = synthetic(600, 1);
    let (test_px, test_lb) = synthetic(200, 2);
    write_idx_dir(dir, (&train_px, &train_lb), (&test_px, &test_lb)).unwrap();
}

/// Runs one of the binaries with `args`, with no dataset location from the environment.
pub fn run_bin(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("FASHION_MNIST_DIR")
        .output()
        .unwrap()
}

/// The text a failed command printed, for assertion messages.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
