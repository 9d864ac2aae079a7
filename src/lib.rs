//! fashion-tch: the Keras Fashion-MNIST lesson's dense network and CNN, trained from Rust
//! with tch (libtorch), on the CPU or CUDA.
//!
//! The house, top to bottom; a module uses only the ones below it:
//!
//! ```text
//! bin/*        thin binaries: parse flags, call one function below, print the result
//! cli          the flag groups every binary flattens in, and how a binary ends
//! sweep  compare  evaluate  predict  export   what the binaries of those names do
//! report       report.html: a run on one page (evaluate writes it)
//! train        the training loop: stops anywhere and goes on exactly
//! run_dir      a run folder: config.json, metrics.csv, weights, checkpoint, resume rules
//! recipe  optim  models  score           how to train, Adam, the networks, scoring
//! data  device  stop  progress           the dataset, --device, Ctrl-C, progress bars
//! cuda_graph                             --cuda-graph: the step captured, then replayed
//! plots  files  shim  tensorboard        pictures from plain numbers, files written
//!                                        atomically, libtorch calls tch has no binding
//!                                        for, TensorBoard's event files
//! ```

pub mod cli;
mod cnn_builder;
pub mod compare;
pub(crate) mod cuda_graph;
pub mod data;
pub mod device;
pub(crate) mod ema;
pub mod evaluate;
pub mod export;
pub mod files;
pub mod flags;
pub mod lesson;
pub mod models;
pub mod optim;
pub mod plots;
pub mod predict;
pub mod progress;
pub mod recipe;
pub mod report;
pub mod run_dir;
pub mod score;
pub(crate) mod shim;
pub(crate) mod stop;
pub mod sweep;
pub mod tensorboard;
pub mod train;
mod views;

/// libtorch draws every random number of a process from one generator, and `cargo test`
/// runs tests on several threads. A test that seeds the generator or draws from it holds
/// this lock, so that no other test reseeds it or draws from it in between.
#[cfg(test)]
pub(crate) fn own_the_generator() -> std::sync::MutexGuard<'static, ()> {
    static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());
    GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
