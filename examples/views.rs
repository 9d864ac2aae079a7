//! Scores a run's weights on the images it held out for validation, once with each of the
//! test-time views (`--views`), and times each: the figures the strong recipe's choice
//! among them was made on (docs/strong-recipe.md). The test set is not looked at.
//!
//! ```text
//! cargo run --release --example views -- RUN [last|best|trained]
//! ```
//!
//! `last` (the default) and `best` are the weights files; `trained` is the weights as the
//! last step left them, from the checkpoint, which differ from `last` where the run keeps
//! a moving average of them (`--ema`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::ValueEnum;
use fashion_tch::models::{ModelSpec, Views};
use fashion_tch::run_dir::{self, checkpoint, Weights};
use fashion_tch::{data, score};
use tch::{nn::VarStore, Device};

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(run) = args.next().map(PathBuf::from) else {
        bail!("give a run folder: cargo run --release --example views -- RUN [last|best|trained]");
    };
    let which = args.next().map(|w| w.to_string_lossy().into_owned());
    let mut loaded = match which.as_deref() {
        None | Some("trained") => run_dir::load_run(&run, Weights::Last, Device::Cpu)?,
        Some(w) => run_dir::load_run(
            &run,
            Weights::from_str(w, true).map_err(anyhow::Error::msg)?,
            Device::Cpu,
        )?,
    };
    if which.as_deref() == Some("trained") {
        loaded.weights = checkpoint::load_trained_weights(&run, &mut loaded.vs)?;
    }
    let held_out = i64::from(loaded.config.recipe.validation_images);
    ensure!(
        held_out > 0,
        "{} held no images out for validation (--validation 0)",
        run.display()
    );
    let data = data::load(&loaded.config.data(None), Device::Cpu)
        .with_context(|| format!("the data {} trained on", run.display()))?;
    let (_, validation) = data.train.split_off_last(held_out);
    println!(
        "{} (epoch {}), {held_out} validation images",
        loaded.weights.display(),
        loaded.epoch
    );
    for views in Views::value_variants() {
        let ModelSpec::Cnn { .. } = loaded.config.model() else {
            bail!("only a CNN scores other views");
        };
        let mut spec = loaded.config.model().clone();
        if let ModelSpec::Cnn { views: v, .. } = &mut spec {
            *v = *views;
        }
        let mut vs = VarStore::new(Device::Cpu);
        let net = spec.build(&vs, &fashion_tch::data::Input::fashion_mnist());
        vs.copy(&loaded.vs)?;
        let started = Instant::now();
        let found = score::score(&net, &validation);
        println!(
            "--views {views:<8} validation accuracy {:.4}  loss {:.4}  {:.2} s",
            found.accuracy,
            found.loss,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
