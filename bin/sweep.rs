//! The lesson's experiments as one command: several layer sizes, several epoch counts.
#![warn(clippy::too_many_lines)]
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::models::{ModelKind, ModelSpec};
use fashion_tch::recipe::{Recipe, RecipeFlags};
use fashion_tch::sweep::{self, SweepOptions};
use fashion_tch::{cli, out, run_dir::RunDir};

/// Train a network at several sizes and compare test and train accuracy after several
/// epoch counts (one run per size, the smaller counts read on its way). Prints a markdown
/// table and writes sweep.md and sweep.svg into the sweep folder. Rerunning the same
/// command skips finished runs and continues interrupted ones exactly; a rerun with other
/// settings is refused.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Which network: dense or cnn
    #[arg(long, value_parser = ["dense", "cnn"])]
    model: String,
    /// Hidden units to try, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "128",
          value_parser = clap::value_parser!(i64).range(1..))]
    hidden: Vec<i64>,
    /// CNN filter lists to try, separated by ';' (quote it): "16,32;32,64"
    #[arg(long, default_value = "32,64", value_parser = parse_filter_list)]
    filters: FilterList,
    /// Epoch counts to report, comma-separated; one run per size trains to the largest
    #[arg(long, value_delimiter = ',', required = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Vec<u32>,
    /// The sweep folder [default: runs/sweep-<model>-<timestamp>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    train: cli::TrainArgs,
    #[command(flatten)]
    data: cli::DataArgs,
    #[command(flatten)]
    device: cli::DeviceArgs,
}

#[derive(Clone)]
struct FilterList(Vec<Vec<i64>>);

fn parse_filter_list(s: &str) -> Result<FilterList, String> {
    s.split(';')
        .map(cli::parse_filters)
        .collect::<Result<_, _>>()
        .map(FilterList)
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let (kind, filter_lists) = match args.model.as_str() {
        "dense" => (ModelKind::Dense, vec![None]),
        _ => (
            ModelKind::Cnn,
            args.filters.0.iter().cloned().map(Some).collect(),
        ),
    };
    let lesson = args.train.recipe_flags().apply(Recipe::lesson(kind));
    let sizes = filter_lists.iter().flat_map(|filters| {
        args.hidden.iter().map(move |&hidden| RecipeFlags {
            hidden: Some(hidden),
            filters: filters.clone(),
            ..RecipeFlags::default()
        })
    });
    let models: Vec<ModelSpec> = sizes
        .map(|size| size.apply(Recipe::lesson(kind)).map(|r| r.model))
        .collect::<Result<_, _>>()
        .expect("sizes alone always fit the lesson's recipe");
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = RunDir::default_path(&models[0]);
        let name = stamp.file_name().unwrap_or_default().to_string_lossy();
        PathBuf::from("runs").join(format!("sweep-{name}"))
    });
    cli::run(|| {
        let recipe = lesson.map_err(anyhow::Error::msg)?;
        let options = SweepOptions {
            base: cli::options(&args.train, &args.data, &args.device, recipe),
            models,
            epochs: args.epochs.clone(),
            out,
            fresh_optimizer: args.train.fresh_optimizer,
        };
        let rows = sweep::sweep(&options)?;
        out!("\n{}", sweep::table(&rows))?;
        out!("wrote {}", options.out.join("sweep.svg").display())?;
        Ok(())
    })
}
