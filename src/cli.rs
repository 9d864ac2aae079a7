//! The argument groups every binary flattens in, and how a binary ends: one error line,
//! never a panic trace.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::Args;

use crate::device::DeviceChoice;
use crate::models::{ModelSpec, MAX_BLOCKS};
use crate::recipe::Recipe;
use crate::run_dir;
use crate::train::{Interrupted, TrainOptions};

/// How to train.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Passes over the 60,000 training images [default: 5 for the dense net, 10 for the
    /// CNN, 18 with --recipe strong]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,

    /// Images per optimisation step [default: 32; 128 with --recipe strong]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: Option<u32>,

    /// Adam's learning rate, above 0; with --recipe strong, the peak of its one-cycle
    /// schedule [default: 0.001; 0.005 with --recipe strong]
    #[arg(long, value_parser = positive_f64)]
    pub lr: Option<f64>,

    /// Training images held out (the last N, fewer than the training set) and scored
    /// every epoch, to choose settings on without looking at the test set; 0 trains on
    /// all of them (the final fit, once settings are chosen) [default: 0; with --recipe
    /// strong 5000, or a tenth of a smaller set]
    #[arg(long, value_name = "N")]
    pub validation: Option<u32>,

    /// Seed for the initial weights and the shuffling; on the CPU, the same seed and
    /// threads give the same numbers
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// The run folder for config.json, metrics.csv and model.safetensors
    /// [default: runs/<model>-<timestamp>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Continue the run in DIR from its weights and epoch count, appending to its
    /// metrics.csv; --epochs is then the number of further epochs (without it, an
    /// interrupted run finishes its planned epochs). The model, recipe, batch size,
    /// learning rate and validation split are the run's own. Adam's moment estimates
    /// start afresh (tch cannot save them)
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    pub resume: Option<PathBuf>,

    /// No progress bars: one line per epoch only (also the case when stdout is not a terminal)
    #[arg(long, short)]
    pub quiet: bool,
}

/// Where the data is.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Folder with the four Fashion-MNIST IDX files (gzipped or raw). Without it:
    /// data/fashion-mnist, then /usr/share/datasets/fashion-mnist, else a download into
    /// data/fashion-mnist
    #[arg(long, value_name = "DIR", env = "FASHION_MNIST_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Where to compute.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// auto (CUDA when available, else the CPU), cpu, cuda or cuda:N. An explicit cuda
    /// that is not available is an error, never a silent CPU run
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,

    /// CPU threads for libtorch [default: libtorch's choice, one per physical core]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
}

impl DeviceArgs {
    /// The device asked for, checked, with the thread setting applied.
    pub fn resolve(&self) -> Result<tch::Device> {
        let device = self.device.resolve()?;
        crate::device::configure(device, self.threads.map(|n| n as usize));
        Ok(device)
    }
}

/// The flags every trainer shares.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl CommonArgs {
    /// The library's options for training `model` (`model_flags`: whether the user gave
    /// flags that shape it) with `recipe` (None: not given, the lesson's),
    /// `default_epochs` unless --epochs. With --resume, the run's own config fills in what
    /// the flags leave open, and flags that contradict it are refused.
    pub fn train_options(
        &self,
        recipe: Option<Recipe>,
        model: ModelSpec,
        model_flags: bool,
        default_epochs: u32,
    ) -> Result<TrainOptions> {
        let t = &self.train;
        let given_recipe = recipe;
        let recipe = recipe.unwrap_or_default();
        let mut options = TrainOptions {
            model,
            recipe,
            epochs: t.epochs.unwrap_or(default_epochs),
            batch_size: t.batch_size.map_or(recipe.batch_size(), |b| b as usize),
            learning_rate: t.lr.unwrap_or(recipe.learning_rate()),
            validation: t.validation,
            seed: t.seed,
            device: self.device.device,
            threads: self.device.threads.map(|n| n as usize),
            data_dir: self.data.data_dir.clone(),
            out: t.out.clone(),
            resume: false,
            quiet: t.quiet,
        };
        let Some(run) = &t.resume else {
            return Ok(options);
        };
        let config = run_dir::read_config(run)?;
        let done = run_dir::read_metrics(run)?.len() as u32;
        let refuse = |what: &str, ours: String, theirs: String| {
            anyhow!(
                "--resume {}: the run was trained with {what} {theirs}, not {ours}; a resumed \
                 run keeps its config (drop the flag, or start a new run)",
                run.display()
            )
        };
        if options.model.name() != config.model.name() {
            bail!(
                "--resume {}: that run trained a {} network; resume it with train_{}",
                run.display(),
                config.model.name(),
                config.model.name()
            );
        }
        if model_flags && options.model != config.model {
            return Err(refuse(
                "the model",
                format!("{:?}", options.model),
                format!("{:?}", config.model),
            ));
        }
        if let Some(r) = given_recipe.filter(|&r| r != config.recipe) {
            return Err(refuse("--recipe", r.to_string(), config.recipe.to_string()));
        }
        if let Some(b) = t.batch_size.filter(|&b| b as usize != config.batch_size) {
            return Err(refuse(
                "--batch-size",
                b.to_string(),
                config.batch_size.to_string(),
            ));
        }
        if let Some(lr) = t.lr.filter(|&lr| lr != config.learning_rate) {
            return Err(refuse(
                "--lr",
                lr.to_string(),
                config.learning_rate.to_string(),
            ));
        }
        options.epochs = match t.epochs {
            Some(more) => done + more,
            None if done < config.epochs => config.epochs,
            None => bail!(
                "--resume {}: the run has finished its {done} epochs; give --epochs N to train N more",
                run.display()
            ),
        };
        options.model = config.model;
        options.recipe = config.recipe;
        options.batch_size = config.batch_size;
        options.learning_rate = config.learning_rate;
        options.seed = config.seed;
        options.out = Some(run.clone());
        options.resume = true;
        Ok(options)
    }
}

/// Parses a number above 0 (`--lr`).
pub fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{s} is not above 0")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// A trainer binary's body: train `model` (`model_flags`: whether flags shaped it) with
/// `recipe`, then print the final test accuracy and where the run is kept.
pub fn train_and_report(
    common: &CommonArgs,
    recipe: Option<Recipe>,
    model: ModelSpec,
    model_flags: bool,
    default_epochs: u32,
) -> ExitCode {
    run(|| {
        let options = common.train_options(recipe, model, model_flags, default_epochs)?;
        let report = crate::train::train(&options)?;
        println!(
            "test accuracy {:.4}; run saved in {}",
            report.last().test_accuracy,
            report.run_dir.display()
        );
        Ok(())
    })
}

/// Parses `--filters 32,64`: the filters of each convolution block, one to four
/// positive counts.
pub fn parse_filters(s: &str) -> Result<Vec<i64>, String> {
    parse_counts(s, |n| n > 0, "positive filter counts like 32,64")
}

/// Parses `--convs 1,2`: convolutions in each block (1 to 4), one count for every block
/// or one per block.
pub fn parse_convs(s: &str) -> Result<Vec<i64>, String> {
    parse_counts(s, |n| (1..=4).contains(&n), "counts from 1 to 4 like 1,2")
}

/// One to [`MAX_BLOCKS`] comma-separated counts, each `valid`; `what` says which.
fn parse_counts(s: &str, valid: fn(i64) -> bool, what: &str) -> Result<Vec<i64>, String> {
    let counts: Vec<i64> = s
        .split(',')
        .map(|p| p.trim().parse::<i64>().ok().filter(|&n| valid(n)))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("'{s}' is not a list of {what}"))?;
    if counts.len() > MAX_BLOCKS {
        return Err(format!(
            "'{s}' has {} blocks; at most {MAX_BLOCKS} fit a 28-pixel image (each halves it)",
            counts.len()
        ));
    }
    Ok(counts)
}

/// Runs a binary's body: prints its error chain on one line and exits 1 (130 after
/// Ctrl-C, as shells expect). libtorch reports its own failures (out of GPU memory, a
/// driver fault) as Rust panics; they end the same way, with the message and no
/// backtrace. Printing into a closed pipe (`… | head`) panics too, and ends quietly with
/// status 141, as a shell tool killed by SIGPIPE would.
pub fn run(body: impl FnOnce() -> anyhow::Result<()> + std::panic::UnwindSafe) -> ExitCode {
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(body) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) if err.is::<Interrupted>() => {
            eprintln!("{err}");
            ExitCode::from(130)
        }
        Ok(Err(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown failure");
            if msg.contains("Broken pipe") {
                // the reader went away (`… | head`): end quietly, as a shell tool does
                return ExitCode::from(141);
            }
            eprintln!("error: {msg} (an unexpected failure)");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_lessons() {
        let cli = parse(&[]).unwrap();
        let o = cli
            .common
            .train_options(None, ModelSpec::lesson_cnn(), false, 10)
            .unwrap();
        assert_eq!((o.epochs, o.batch_size, o.learning_rate), (10, 32, 1e-3));
        assert_eq!(o.device, DeviceChoice::Auto);
    }

    #[test]
    fn filters_are_one_to_four_positive_counts() {
        assert_eq!(parse_filters("32,64"), Ok(vec![32, 64]));
        assert_eq!(parse_filters("16, 32,64"), Ok(vec![16, 32, 64]));
        for bad in ["", "x", "32,0", "32,-1", "32,,64"] {
            let err = parse_filters(bad).unwrap_err();
            assert!(
                err.contains("not a list of positive filter counts"),
                "{bad}: {err}"
            );
        }
        let err = parse_filters("8,8,8,8,8").unwrap_err();
        assert!(err.contains("at most 4"), "{err}");
    }

    #[test]
    fn convs_are_one_to_four_counts_of_one_to_four() {
        assert_eq!(parse_convs("2"), Ok(vec![2]));
        assert_eq!(parse_convs("1, 2"), Ok(vec![1, 2]));
        for bad in ["", "0", "5", "1,x"] {
            let err = parse_convs(bad).unwrap_err();
            assert!(err.contains("counts from 1 to 4"), "{bad}: {err}");
        }
        assert!(parse_convs("1,1,1,1,1").unwrap_err().contains("at most 4"));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for args in [
            &["--epochs", "0"][..],
            &["--batch-size", "0"],
            &["--lr", "0"],
            &["--lr", "-1"],
            &["--lr", "abc"],
            &["--device", "tpu"],
            &["--threads", "0"],
        ] {
            let err = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} was accepted"));
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
