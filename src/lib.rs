//! fashion-tch: the Keras Fashion-MNIST lesson's dense network and CNN, trained from Rust
//! with tch (libtorch), on the CPU or CUDA.
//!
//! Read the lesson first, in three files: its two networks ([`lesson`]), the training
//! step (`train/step.rs`, the lesson's `model.fit` for one batch) and the epoch loop
//! ([`train::train`]). Everything else wraps them.
//!
//! The house, top to bottom; a module uses only the ones below it:
//!
//! ```text
//! bin/*                    thin binaries: parse flags, call one function below, print
//! cli                      how a binary ends; the trainers' body
//! sweep/                   the lesson's experiments as one command; --plan (plan.rs)
//! evaluate                 a run scored on the test set, its pictures and report.html
//! flags/                   every flag: the clap groups, their parsers, one resolve()
//!                          into a run's plan, the resume rules, recipes back as flags
//! report  export  compare  report.html; TorchScript; runs side by side
//! train/                   the epoch loop (mod.rs) and the step (step.rs); the learner
//!                          (the step's wrappers), the keeper of the folder, restoring,
//!                          seeds, the data's splits, the watchers and TensorBoard's
//! run_dir/                 a run folder: config.json, metrics.csv, weights, checkpoint,
//!                          the lock; what readers may replace
//! optim                    Adam and AdamW, with the state a checkpoint keeps
//! recipe/  ema             how to train: the recipe, its schedule, augmentation, its
//!                          words; the moving average of the weights
//! predict  models          photos made into the network's input; a network as data
//!                          (ModelSpec), built
//! lesson  cnn_builder      the lesson's two networks, written out; the configurable CNN
//! score                    loss, accuracy and the per-class report, in batches
//! data/  tensorboard       the dataset: IDX files (checked, downloaded) or folders of
//!                          your own images (folders.rs), decoded (images.rs), and the
//!                          network's input they make (input.rs); event files
//! cuda_graph               --cuda-graph: the step captured, then replayed
//! views  plots  files      test-time views; pictures from plain numbers; files read
//!                          bounded and written atomically
//! progress  shim           what a binary shows; libtorch calls tch has no binding for
//! device  stop             --device and --threads; Ctrl-C
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
pub(crate) mod plots;
pub mod predict;
pub mod progress;
pub mod recipe;
pub(crate) mod report;
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
