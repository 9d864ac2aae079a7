//! `export RUN`: a run's network as a TorchScript module, traced in evaluation mode
//! (dropout off, batch norm's running statistics), which PyTorch loads with
//! `torch.jit.load` and can take on to ONNX.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, ensure, Result};
use tch::nn::ModuleT;
use tch::{CModule, Device, Kind, Tensor};

use crate::data::Input;
use crate::files;
use crate::progress::libtorch_text;
use crate::run_dir::{self, Weights};

/// What `export` wrote.
pub struct Exported {
    pub path: PathBuf,
    /// The epoch whose weights it holds.
    pub epoch: u32,
    pub weights: PathBuf,
    /// What the module takes and gives: the run's input.
    pub input: Input,
}

impl Exported {
    /// What the module takes, in words.
    pub fn takes(&self) -> String {
        let i = &self.input;
        let what = match (i.channels, *i == Input::fashion_mnist()) {
            (1, true) => "grey levels in [0, 1], a light garment on a dark background \
                          (Fashion-MNIST's pixels divided by 255)"
                .to_string(),
            (1, false) => "grey levels in [0, 1] (the image's bytes divided by 255)".to_string(),
            _ => "red, green and blue in [0, 1], one plane after the other (the image's \
                  bytes divided by 255)"
                .to_string(),
        };
        format!(
            "a float32 tensor [batch, {}, {2}, {2}] of {what}, each image made square and \
             {2}×{2} as training made it (padded with its border's colour, resized {})",
            i.channels,
            crate::data::images::RESIZE_FILTER,
            i.size
        )
    }

    /// What the module gives back, in words.
    pub fn gives(&self) -> String {
        format!(
            "a float32 tensor [batch, {}] of logits, one per class in the order below (softmax \
             turns them into probabilities)",
            self.input.class_count()
        )
    }

    /// The class names, in the order of the module's outputs: `0 T-shirt/top, 1 Trouser, …`.
    pub fn classes(&self) -> String {
        (self.input.classes.iter().enumerate())
            .map(|(i, c)| format!("{i} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Traces the `which` weights of the run in `run` into a TorchScript module at `out`
/// (`None`: `model.pt` in the run folder, export's own file there, which it replaces). An
/// `out` that already exists is replaced only with `force`, and one among the run's other
/// files never: the run stays whole.
pub fn export(run: &Path, which: Weights, out: Option<&Path>, force: bool) -> Result<Exported> {
    let own = run.join(run_dir::MODULE);
    let out = out.unwrap_or(&own);
    check_out(run, out, &own, force)?;
    let mut loaded = run_dir::load_run(run, which, Device::Cpu)?;
    // the weights become the module's constants, which must not ask for gradients
    loaded.vs.freeze();
    let i = &loaded.config.input;
    let example = Tensor::zeros([2, i.channels, i.size, i.size], (Kind::Float, Device::Cpu));
    let module = tch::no_grad(|| {
        CModule::create_by_tracing("FashionMnistClassifier", "forward", &[example], &mut |xs| {
            vec![loaded.net.forward_t(&xs[0], false)]
        })
    })
    .map_err(|e| anyhow!("tracing the network: {}", libtorch_text(&e)))?;
    files::replace_with(out, |tmp| {
        module
            .save(tmp)
            .map_err(|e| anyhow!("{}", libtorch_text(&e)))
    })?;
    Ok(Exported {
        path: out.to_path_buf(),
        epoch: loaded.epoch,
        weights: loaded.weights,
        input: loaded.config.input,
    })
}

/// Errs when writing `out` would overwrite what export did not make: a file of the run
/// (in the run folder, only `own` is export's), a file of any other run, a folder, or,
/// without `force`, any file.
fn check_out(run: &Path, out: &Path, own: &Path, force: bool) -> Result<()> {
    let folder = out.parent().filter(|p| !p.as_os_str().is_empty());
    let in_run = match (
        folder.unwrap_or(Path::new(".")).canonicalize(),
        run.canonicalize(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let is_own = in_run && out.file_name() == own.file_name();
    ensure!(
        !in_run || is_own,
        "--out {} is inside the run folder {}, whose files are the run's; write the module \
         elsewhere, or leave out --out for {}",
        out.display(),
        run.display(),
        own.display()
    );
    match is_own {
        true => Ok(()),
        false => run_dir::refuse_to_replace(out, "--out", force),
    }
}
