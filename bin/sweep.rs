//! The lesson's experiments as one command: several layer sizes, several epoch counts.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::models::{self, CnnArgs, ModelKind, ModelSpec};
use fashion_tch::recipe::{Overrides, Recipe, RecipeArgs};
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
    /// Which network
    #[arg(long, value_enum)]
    model: ModelKind,
    /// Hidden units to try, comma-separated
    #[arg(long, allow_negative_numbers = true, value_delimiter = ',', default_value = "128",
          value_parser = clap::value_parser!(i64).range(1..))]
    hidden: Vec<i64>,
    /// CNN filter lists to try, separated by ';' (quote it): "16,32;32,64"
    #[arg(long, allow_negative_numbers = true, default_value = "32,64", value_parser = parse_filter_list)]
    filters: FilterList,
    /// Epoch counts to report, comma-separated; one run per size trains to the largest
    #[arg(long, allow_negative_numbers = true, value_delimiter = ',', required = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Vec<u32>,
    /// Seeds to repeat each size with, comma-separated; the table and chart give each
    /// figure's mean and spread [default: --seed's, else 0]
    #[arg(
        long,
        allow_negative_numbers = true,
        value_delimiter = ',',
        value_name = "N,N,…",
        conflicts_with = "seed"
    )]
    seeds: Vec<u64>,
    /// The sweep folder [default: runs/sweep-MODEL-YYYYmmdd-HHMMSS]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Train nothing: print the trainer's command for each run, one a line, for a
    /// scheduler (needs --out, the folder the runs and the gathering share) (`parallel -j 2 < plan.txt`, or a Slurm array's
    /// `sed -n "${SLURM_ARRAY_TASK_ID}p" plan.txt`). The same sweep command without
    /// --plan then gathers the runs: it skips the finished ones, continues the others
    /// and draws the table and chart
    #[arg(long, requires = "out")]
    plan: bool,
    /// With --plan: print the runs as one JSON array of records {size, seed, out, argv,
    /// command}
    #[arg(long, requires = "plan")]
    json: bool,
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
        .map(models::parse_filters)
        .collect::<Result<_, _>>()
        .map(FilterList)
}

fn main() -> ExitCode {
    let args = Cli::parse();
    let filter_lists = match args.model {
        ModelKind::Dense => vec![None],
        ModelKind::Cnn => args.filters.0.iter().cloned().map(Some).collect(),
    };
    // a size at a time: its model's flags over the lesson's network
    let sizes = filter_lists.iter().flat_map(|filters| {
        args.hidden.iter().map(move |&hidden| CnnArgs {
            hidden: Some(hidden),
            filters: filters.clone(),
            ..CnnArgs::default()
        })
    });
    let lesson = Recipe::lesson(args.model);
    let no_settings = RecipeArgs::default();
    let models: Result<Vec<ModelSpec>, String> = sizes
        .map(|size| Overrides::new(None, &no_settings, &size, None).apply(&lesson))
        .map(|recipe| recipe.map(|r| r.model))
        .collect();
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = RunDir::default_path(&lesson.model);
        let name = stamp.file_name().unwrap_or_default().to_string_lossy();
        PathBuf::from("runs").join(format!("sweep-{name}"))
    });
    cli::run(|| {
        let settings = Overrides::new(None, &args.train.recipe, &(), None);
        let recipe = settings.apply(&lesson).map_err(anyhow::Error::msg)?;
        let seeds = match args.seeds.is_empty() {
            true => vec![args.train.seed.unwrap_or(0)],
            false => args.seeds.clone(),
        };
        let options = SweepOptions {
            base: cli::options(&args.train, &args.data, &args.device, recipe),
            models: models.map_err(anyhow::Error::msg)?,
            epochs: args.epochs.clone(),
            seeds,
            out,
            fresh_optimizer: args.train.fresh_optimizer,
        };
        if args.plan {
            // the trainers built beside this sweep, else those on the PATH
            let here = std::env::current_exe().ok();
            let dir = here.as_deref().and_then(|exe| exe.parent());
            let dir = dir.filter(|d| d.join("train_dense").is_file());
            let planned = sweep::plan(&options, dir)?;
            if args.json {
                return Ok(out!("{}", serde_json::to_string_pretty(&planned)?)?);
            }
            for run in planned {
                out!("{}", run.command)?;
            }
            return Ok(());
        }
        let rows = sweep::sweep(&options)?;
        out!("\n{}", sweep::table(&rows))?;
        out!("wrote {}", options.out.join("sweep.svg").display())?;
        Ok(())
    })
}
