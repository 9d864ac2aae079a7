//! The argument groups every binary flattens in, and how a binary ends: one error line,
//! never a panic trace.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::device::DeviceChoice;
use crate::models::ModelSpec;
use crate::train::TrainOptions;

/// How to train.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Passes over the 60,000 training images [default: 5 for the dense net, 10 for the CNN]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: Option<u32>,

    /// Images per optimisation step
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,

    /// Adam's learning rate (must be above 0)
    #[arg(long, default_value_t = 1e-3, value_parser = positive_f64)]
    pub lr: f64,

    /// Seed for the initial weights and the shuffling; on the CPU, the same seed and
    /// threads give the same numbers
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// The run folder for config.json, metrics.csv and model.safetensors
    /// [default: runs/<model>-<timestamp>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

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
    /// The library's options for training `model`, `default_epochs` unless --epochs.
    pub fn train_options(&self, model: ModelSpec, default_epochs: u32) -> TrainOptions {
        TrainOptions {
            model,
            epochs: self.train.epochs.unwrap_or(default_epochs),
            batch_size: self.train.batch_size as usize,
            learning_rate: self.train.lr,
            seed: self.train.seed,
            device: self.device.device,
            threads: self.device.threads.map(|n| n as usize),
            data_dir: self.data.data_dir.clone(),
            out: self.train.out.clone(),
            quiet: self.train.quiet,
        }
    }
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{s} is not above 0")),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// A trainer binary's body: train `model`, then print the final test accuracy and where
/// the run is kept.
pub fn train_and_report(common: &CommonArgs, model: ModelSpec, default_epochs: u32) -> ExitCode {
    let options = common.train_options(model, default_epochs);
    run(|| {
        let report = crate::train::train(&options)?;
        println!(
            "test accuracy {:.4}; run saved in {}",
            report.last().test_accuracy,
            report.run_dir.display()
        );
        Ok(())
    })
}

/// Parses `--filters FIRST,SECOND` (two positive counts).
pub fn parse_filters(s: &str) -> Result<[i64; 2], String> {
    let parts: Vec<_> = s.split(',').map(|p| p.trim().parse::<i64>()).collect();
    match parts[..] {
        [Ok(a), Ok(b)] if a > 0 && b > 0 => Ok([a, b]),
        _ => Err(format!(
            "'{s}' is not two positive filter counts like 32,64"
        )),
    }
}

/// Runs a binary's body: prints its error chain on one line and exits 1. libtorch reports
/// its own failures (out of GPU memory, a driver fault) as Rust panics; they end the same
/// way, with the message and no backtrace.
pub fn run(body: impl FnOnce() -> anyhow::Result<()> + std::panic::UnwindSafe) -> ExitCode {
    std::panic::set_hook(Box::new(|_| {}));
    match std::panic::catch_unwind(body) {
        Ok(Ok(())) => ExitCode::SUCCESS,
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
            eprintln!("error: libtorch failed: {msg}");
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
        let o = cli.common.train_options(ModelSpec::LESSON_CNN, 10);
        assert_eq!((o.epochs, o.batch_size, o.learning_rate), (10, 32, 1e-3));
        assert_eq!(o.device, DeviceChoice::Auto);
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
