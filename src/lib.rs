//! fashion-tch: the Keras Fashion-MNIST lesson's dense network and CNN, trained from Rust
//! with tch (libtorch), on the CPU or CUDA.
//!
//! Where things live:
//! - [`data`]: finding, downloading, checking and parsing the four IDX files;
//! - [`models`]: the model specs and how each builds its network;
//! - [`train`]: the training loop, which can stop anywhere and go on exactly;
//! - [`recipe`]: how a network is trained, as plain data: the lesson's recipe and the
//!   strong one;
//! - [`optim`]: Adam and AdamW, whose state is saved with the weights;
//! - [`shim`]: libtorch calls tch has no binding for (`src/shim.cpp`);
//! - [`stop`]: Ctrl-C, for the whole process;
//! - [`eval`]: scoring a network on a split: loss, accuracy, per-class figures, confusion;
//! - [`evaluate`]: a saved run scored and drawn (the `evaluate` binary);
//! - [`device`]: `--device` and `--threads`;
//! - [`cli`]: the argument groups every binary flattens in, and how a binary ends;
//! - [`compare`]: several runs side by side (the `compare` binary);
//! - [`run_dir`]: a run folder's `config.json`, `metrics.csv`, weights and checkpoint, and
//!   the resume rules;
//! - [`plots`]: the SVG pictures;
//! - [`sweep`]: layer sizes and epoch counts compared (the `sweep` binary);
//! - [`predict`]: images to network inputs, and top classes (the `predict` binary);
//! - [`progress`]: progress bars.

pub mod cli;
pub mod compare;
pub mod data;
pub mod device;
pub mod eval;
pub mod evaluate;
pub mod models;
pub mod optim;
pub mod plots;
pub mod predict;
pub mod progress;
pub mod recipe;
pub mod run_dir;
pub mod shim;
pub mod stop;
pub mod sweep;
pub mod train;
