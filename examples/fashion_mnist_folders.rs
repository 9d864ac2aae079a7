//! Writes Fashion-MNIST's 70,000 images as PNG files in class folders,
//! `DIR/train/<class>/*.png` and `DIR/test/<class>/*.png`: the real data in the layout of
//! your own images, for `train_cnn --data-dir DIR`. The folders are named `0 T-shirt-top`
//! to `9 Ankle boot`, so that sorted they keep Fashion-MNIST's order of labels.
//!
//! `cargo run --release --example fashion_mnist_folders -- DIR`
use std::path::PathBuf;

use anyhow::{Context, Result};
use fashion_tch::data::{self, folders, Input};

fn main() -> Result<()> {
    let usage =
        "usage: fashion_mnist_folders DIR (writes DIR/train/CLASS/*.png and DIR/test/CLASS/*.png)";
    let dir: PathBuf = std::env::args_os().nth(1).context(usage)?.into();
    // --help, or any flag, is not a folder to write 70,000 files into
    anyhow::ensure!(!dir.to_string_lossy().starts_with('-'), "{usage}");
    let data = data::load(&data::Choice::default(), tch::Device::Cpu)?;
    let input = Input {
        classes: (data.input.classes.iter().enumerate())
            .map(|(i, c)| format!("{i} {}", c.replace('/', "-")))
            .collect(),
        ..data.input
    };
    folders::write(&data.train, &input, &dir.join("train"))?;
    folders::write(&data.test, &input, &dir.join("test"))?;
    println!(
        "wrote {} and {} images into {}",
        data.train.len(),
        data.test.len(),
        dir.display()
    );
    Ok(())
}
