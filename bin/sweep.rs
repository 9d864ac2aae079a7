//! The lesson's experiments as one command: several layer sizes, several epoch counts.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fashion_tch::flags::{self, Changes, CnnArgs};
use fashion_tch::models::{ModelKind, ModelSpec};
use fashion_tch::recipe::Recipe;
use fashion_tch::sweep::{self, Sweep, TrainerFlags};
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
    train: flags::TrainArgs,
    #[command(flatten)]
    data: flags::DataArgs,
    #[command(flatten)]
    images: flags::ImagesArgs,
    #[command(flatten)]
    device: flags::DeviceArgs,
}

#[derive(Clone)]
struct FilterList(Vec<Vec<i64>>);

fn parse_filter_list(s: &str) -> Result<FilterList, String> {
    s.split(';')
        .map(flags::parse_filters)
        .collect::<Result<_, _>>()
        .map(FilterList)
}

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::run(|| {
        let lesson = Recipe::lesson(args.model);
        let settings = Changes {
            settings: args.train.recipe.clone(),
            ..Changes::default()
        };
        let recipe = settings.apply(&lesson).map_err(anyhow::Error::msg)?;
        let the_sweep = Sweep {
            models: sizes(&args, &lesson).map_err(anyhow::Error::msg)?,
            epochs: args.epochs.clone(),
            seeds: match args.seeds.is_empty() {
                true => vec![args.train.seed.unwrap_or(0)],
                false => args.seeds.clone(),
            },
            out: args.out.clone().unwrap_or_else(|| default_out(&lesson)),
        };
        if args.plan {
            return print_plan(&args, &the_sweep, &recipe);
        }
        let data = (&args.data, &args.images);
        let base = flags::options(&args.train, data, &args.device, recipe)?;
        let rows = sweep::sweep(&the_sweep, &base, args.train.fresh_optimizer)?;
        out!("\n{}", sweep::table(&rows))?;
        out!("wrote {}", the_sweep.out.join("sweep.svg").display())?;
        Ok(())
    })
}

/// The networks of the sweep, a size at a time: its model's flags over the lesson's.
fn sizes(args: &Cli, lesson: &Recipe) -> Result<Vec<ModelSpec>, String> {
    let filter_lists = match args.model {
        ModelKind::Dense => vec![None],
        ModelKind::Cnn => args.filters.0.iter().cloned().map(Some).collect(),
    };
    let sizes = filter_lists.iter().flat_map(|filters| {
        args.hidden.iter().map(move |&hidden| CnnArgs {
            hidden: Some(hidden),
            filters: filters.clone(),
            ..CnnArgs::default()
        })
    });
    sizes
        .map(|model| {
            let size = Changes {
                model,
                ..Changes::default()
            };
            size.apply(lesson).map(|r| r.model)
        })
        .collect()
}

/// `runs/sweep-MODEL-YYYYmmdd-HHMMSS`.
fn default_out(lesson: &Recipe) -> PathBuf {
    let stamp = RunDir::default_path(&lesson.model);
    let name = stamp.file_name().unwrap_or_default().to_string_lossy();
    PathBuf::from("runs").join(format!("sweep-{name}"))
}

/// Prints the planned commands, one a line, or as JSON.
fn print_plan(args: &Cli, the_sweep: &Sweep, recipe: &Recipe) -> anyhow::Result<()> {
    // the trainers built beside this sweep, else those on the PATH
    let here = std::env::current_exe().ok();
    let dir = here.as_deref().and_then(|exe| exe.parent());
    let dir = dir.filter(|d| d.join("train_dense").is_file());
    let flags = TrainerFlags {
        train: &args.train,
        data: &args.data,
        images: &args.images,
        device: &args.device,
    };
    let planned = sweep::plan(the_sweep, recipe, &flags, dir)?;
    if args.json {
        return Ok(out!("{}", serde_json::to_string_pretty(&planned)?)?);
    }
    for run in planned {
        out!("{}", run.command)?;
    }
    Ok(())
}
