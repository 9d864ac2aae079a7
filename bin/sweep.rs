//! The lesson's experiments as one command: several layer sizes, several epoch counts.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::models::ModelSpec;
use fashion_tch::sweep::{self, SweepOptions};
use fashion_tch::{cli, run_dir::RunDir, train::TrainOptions};

/// Train a network at several sizes and compare test and train accuracy after several
/// epoch counts (one run per size, the smaller counts read on its way). Prints a markdown
/// table and writes sweep.md and sweep.svg into the sweep folder. Rerunning the same
/// command skips finished runs and resumes interrupted ones.
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
    /// Images per optimisation step
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Adam's learning rate, above 0
    #[arg(long, default_value_t = 1e-3, value_parser = cli::positive_f64)]
    lr: f64,
    /// Seed for every run's initial weights and shuffling
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// No progress bars
    #[arg(long, short)]
    quiet: bool,
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
    let models: Vec<ModelSpec> = match args.model.as_str() {
        "dense" => args
            .hidden
            .iter()
            .map(|&hidden| ModelSpec::Dense { hidden })
            .collect(),
        _ => args
            .filters
            .0
            .iter()
            .flat_map(|filters| {
                args.hidden
                    .iter()
                    .map(move |&hidden| ModelSpec::cnn(filters.clone(), hidden))
            })
            .collect(),
    };
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = RunDir::default_path(&models[0]);
        let name = stamp
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        PathBuf::from("runs").join(format!("sweep-{name}"))
    });
    let options = SweepOptions {
        base: TrainOptions {
            model: models[0].clone(),
            recipe: Default::default(),
            epochs: 1,
            batch_size: args.batch_size as usize,
            learning_rate: args.lr,
            validation: None,
            seed: args.seed,
            device: args.device.device,
            threads: args.device.threads.map(|n| n as usize),
            data_dir: args.data.data_dir.clone(),
            out: None,
            resume: false,
            quiet: args.quiet,
        },
        models,
        epochs: args.epochs.clone(),
        out,
    };
    cli::run(|| {
        let rows = sweep::sweep(&options)?;
        print!("\n{}", sweep::table(&rows));
        println!("\nwrote {}", options.out.join("sweep.svg").display());
        Ok(())
    })
}
