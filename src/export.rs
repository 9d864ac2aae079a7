//! `export RUN`: a run's network as a TorchScript module, traced in evaluation mode
//! (dropout off, batch norm's running statistics), which PyTorch loads with
//! `torch.jit.load` and can take on to ONNX.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::nn::ModuleT;
use tch::{CModule, Device, Kind, Tensor};

use crate::data::{CLASS_NAMES, SIDE};
use crate::run_dir::{self, Weights};

/// What the exported module takes, in words.
pub const INPUT: &str = "a float32 tensor [batch, 1, 28, 28] of grey levels in [0, 1], a light \
                         garment on a dark background (Fashion-MNIST's pixels divided by 255)";
/// What it gives back.
pub const OUTPUT: &str = "a float32 tensor [batch, 10] of logits, one per class in the order \
                          below (softmax turns them into probabilities)";

/// What `export` wrote.
pub struct Exported {
    pub path: PathBuf,
    /// The epoch whose weights it holds.
    pub epoch: u32,
    pub weights: PathBuf,
}

/// Traces the `which` weights of the run in `run` into a TorchScript module at `out`.
pub fn export(run: &Path, which: Weights, out: &Path) -> Result<Exported> {
    let mut loaded = run_dir::load_run(run, which, Device::Cpu)?;
    // the weights become the module's constants, which must not ask for gradients
    loaded.vs.freeze();
    let side = SIDE as i64;
    let example = Tensor::zeros([2, 1, side, side], (Kind::Float, Device::Cpu));
    let module = tch::no_grad(|| {
        CModule::create_by_tracing("FashionMnistClassifier", "forward", &[example], &mut |xs| {
            vec![loaded.net.forward_t(&xs[0], false)]
        })
    })
    .context("tracing the network")?;
    module
        .save(out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(Exported {
        path: out.to_path_buf(),
        epoch: loaded.epoch,
        weights: loaded.weights,
    })
}

/// The class names, in the order of the module's outputs.
pub fn classes() -> String {
    CLASS_NAMES
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{i} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
