//! Writes a run's network as a TorchScript module.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::export;
use fashion_tch::{cli, flags, out};

/// Export a run made by train_dense or train_cnn as a TorchScript module (traced in
/// evaluation mode): PyTorch loads it with torch.jit.load("model.pt"). For Fashion-MNIST
/// it takes a float32 tensor [batch, 1, 28, 28] of grey levels in [0, 1] (a light garment
/// on a dark background) and gives [batch, 10] logits for T-shirt/top, Trouser, Pullover,
/// Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot, in that order; for a folder of
/// one's own images, [batch, C, S, S] and a logit per class of the run. It prints which.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    saved: flags::SavedRunArgs,
    /// Where to write the module [default: model.pt in the run folder, replaced by each
    /// export]; anywhere but among the run's own files
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Replace the --out file if it exists
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| {
        let (run, weights) = (&args.saved.run, args.saved.weights.weights);
        let done = export::export(run, weights, args.out.as_deref(), args.force)?;
        out!(
            "wrote {} (the weights of epoch {}, {})",
            done.path.display(),
            done.epoch,
            done.weights.display()
        )?;
        out!("input: {}", done.takes())?;
        out!("output: {}", done.gives())?;
        out!("classes: {}", done.classes())?;
        out!(
            "in Python: m = torch.jit.load(\"{}\"); logits = m(x)",
            done.path.display()
        )?;
        Ok(())
    })
}
