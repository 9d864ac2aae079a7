//! Helpers shared by the integration tests: a small synthetic dataset a network can learn
//! in a few epochs, and a way to run the binaries.
#![allow(dead_code)]

pub mod images;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fashion_tch::data::{write_idx_dir, SIDE};
use fashion_tch::models::{ModelKind, ModelSpec, Views};
use fashion_tch::recipe::Recipe;
use fashion_tch::run_dir::{EpochMetrics, Held, RunConfig, RunDir};

/// Pixels and labels of `n` images whose class is drawn over noise: a bright band of two
/// rows at rows 5·(c mod 5) + 3 and + 4, and for classes 5 to 9 a bright stripe down the
/// middle two columns too. Bands 5 rows apart stay apart under the strong recipe's shifts
/// of up to 2 pixels, and mirroring keeps the stripe, so augmentation keeps every label.
/// The labels are drawn at random.
pub fn synthetic(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut pixels = vec![0u8; n * SIDE * SIDE];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = (next() % 10) as usize;
        labels.push(class as u8);
        let top = 5 * (class % 5) + 3;
        let img = &mut pixels[i * SIDE * SIDE..(i + 1) * SIDE * SIDE];
        for (j, px) in img.iter_mut().enumerate() {
            let (row, column) = (j / SIDE, j % SIDE);
            let band = row == top || row == top + 1;
            let stripe = class >= 5 && (column == SIDE / 2 - 1 || column == SIDE / 2);
            *px = if band || stripe { 200 } else { 0 } + (next() % 50) as u8;
        }
    }
    (pixels, labels)
}

/// Writes a synthetic dataset (600 training, 200 test images) into `dir`.
pub fn write_synthetic(dir: &Path) {
    let (train_px, train_lb) = synthetic(600, 1);
    let (test_px, test_lb) = synthetic(200, 2);
    write_idx_dir(dir, (&train_px, &train_lb), (&test_px, &test_lb)).unwrap();
}

/// The arguments of a quick run on the CPU with data from `data` into `out` (when
/// given), then `extra`.
pub fn args<'a>(data: &'a Path, out: Option<&'a Path>, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--data-dir", data.to_str().unwrap(), "--device", "cpu"];
    if let Some(out) = out {
        args.extend(["--out", out.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    args
}

/// A CNN small enough to train or build in a moment: two blocks of 4 and 8 filters, 16
/// hidden units, nothing else.
pub fn small_cnn_spec() -> ModelSpec {
    ModelSpec::Cnn {
        filters: vec![4, 8],
        hidden: 16,
        convs: Default::default(),
        batch_norm: false,
        dropout: 0.0,
        views: Views::One,
    }
}

/// A run folder made without training, at `dir`: the lesson's config for `model`,
/// `epochs` rows of made-up figures, and freshly initialised weights; what evaluate,
/// predict and compare read.
pub fn fake_run(dir: &Path, model: ModelSpec, epochs: u32) -> PathBuf {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net = model.build(&vs, &fashion_tch::data::Input::fashion_mnist());
    let config = RunConfig {
        format_version: fashion_tch::run_dir::config::FORMAT_VERSION,
        recipe: Recipe {
            model,
            epochs,
            ..Recipe::lesson(ModelKind::Dense)
        },
        seed: 0,
        device: "cpu".into(),
        threads: 2,
        cuda_graph: false,
        trainable_parameters: fashion_tch::models::parameter_count(&vs),
        input: fashion_tch::data::Input::fashion_mnist(),
        folders: None,
        data_dir: "data".into(),
        libtorch_version: "2.11.0".into(),
        fashion_tch_version: "0.1.0".into(),
        started: "2026-11-26T00:00:00+00:00".into(),
        best_epoch: None,
        stopped_early: None,
    };
    let mut run = RunDir::create(dir, &config).unwrap();
    for epoch in 1..=epochs {
        let progress = f64::from(epoch) / f64::from(epochs);
        run.append_metrics(&EpochMetrics {
            epoch,
            train_loss: 1.0 - 0.5 * progress,
            train_accuracy: 0.5 + 0.4 * progress,
            test_loss: 1.1 - 0.5 * progress,
            test_accuracy: 0.5 + 0.3 * progress,
            seconds: 1.0,
            validation_accuracy: None,
        })
        .unwrap();
    }
    (run.save_weights(fashion_tch::run_dir::WEIGHTS, &vs, epochs, Held::Trained)).unwrap();
    dir.to_path_buf()
}

/// Writes the variables of `vs` to `path` as a plain state dict, without the header that
/// says their epoch (as weights files from before it had one).
pub fn write_weights(path: &Path, vs: &tch::nn::VarStore) {
    let tensors: Vec<_> = vs.variables().into_iter().collect();
    fashion_tch::files::write_safetensors(path, &tensors, None).unwrap();
}

/// Says that a test cannot make its check on this machine (no GPU, no pip, no real data,
/// …). Under CI that is a failure: CI's machine must have what every test needs.
pub fn skip(reason: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "CI is set, but this test cannot run here: {reason}");
    eprintln!("SKIPPED: {reason}");
}

/// The program `name` that a test runs beside ours (`parallel`, `chromium`), installed by
/// `scripts/test_tools.sh` where it is missing; `None` (a failure under CI) where it
/// cannot be.
pub fn test_tool(name: &str) -> Option<PathBuf> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test_tools.sh");
    let out = Command::new(script).arg(name).output().unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !path.is_empty() {
        return Some(PathBuf::from(path));
    }
    skip(&format!(
        "{name} is not installed and scripts/test_tools.sh could not install it: {}",
        stderr(&out)
    ));
    None
}

/// Runs one of the binaries with `args`, with no dataset location from the environment.
pub fn run_bin(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("FASHION_MNIST_DIR")
        .output()
        .unwrap()
}

/// Runs `bin` with `args` (any bytes), with no dataset location from the environment,
/// failing the test rather than waiting past `limit`: the programs must never hang.
pub fn run_within(bin: &str, args: &[&std::ffi::OsStr], limit: std::time::Duration) -> Output {
    let mut child = spawn_piped(bin, args);
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{bin} {args:?} was still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Starts `bin` with `args`, its output piped to us, with no dataset location from the
/// environment.
fn spawn_piped<A: AsRef<std::ffi::OsStr>>(bin: &str, args: &[A]) -> std::process::Child {
    Command::new(bin)
        .args(args)
        .env_remove("FASHION_MNIST_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Trains a small CNN (filters 4,8, 16 hidden units) for 2 epochs on the data in `data`
/// into `run`, with 60 images held out, so that it has a best epoch; returns what the
/// trainer printed.
pub fn validated_cnn(data: &Path, run: &Path) -> String {
    let extra = [
        "--epochs",
        "2",
        "--filters",
        "4,8",
        "--hidden",
        "16",
        "--validation",
        "60",
    ];
    let out = run_bin(
        env!("CARGO_BIN_EXE_train_cnn"),
        &args(data, Some(run), &extra),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The text a failed command printed, for assertion messages.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a command printed on standard output.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a synthetic dataset of `train` training and 200 test images into `dir`.
pub fn write_synthetic_sized(dir: &Path, train: usize) {
    let (train_px, train_lb) = synthetic(train, 1);
    let (test_px, test_lb) = synthetic(200, 2);
    write_idx_dir(dir, (&train_px, &train_lb), (&test_px, &test_lb)).unwrap();
}

/// A binary running in the background, whose output lines can be waited for.
pub struct Running {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// The stdout lines read so far.
    pub stdout: Vec<String>,
}

impl Running {
    /// Starts `bin` with `args`, with no dataset location from the environment.
    pub fn spawn(bin: &str, args: &[&str]) -> Running {
        use std::io::BufRead;
        let mut child = spawn_piped(bin, args);
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            stdout: Vec::new(),
        }
    }

    /// Waits for the `nth` stdout line (from 1) that contains `text`, counting those
    /// already read; false when the program ends first or 300 s pass.
    pub fn wait_for(&mut self, text: &str, nth: usize) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        while self.stdout.iter().filter(|l| l.contains(text)).count() < nth {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(_) => return false,
            }
        }
        true
    }

    /// Sends `sig` (as `kill` takes it: `-INT`, `-KILL`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} failed");
    }

    /// Waits for the end; the exit code (None when killed by a signal), all of stdout
    /// and stderr.
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        use std::io::Read;
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut err).unwrap();
        }
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv() {
            self.stdout.push(line);
        }
        (status.code(), self.stdout.join("\n"), err)
    }
}

/// A run's metrics.csv without the seconds column, which no two runs share.
pub fn metrics_without_seconds(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    text.lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split(',').collect();
            fields.remove(5); // epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds
            fields.join(",")
        })
        .collect()
}

/// A number from the clock, to pick a random moment; printed so a failure can be traced.
pub fn random_fraction(label: &str) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let fraction = f64::from(nanos % 1000) / 1000.0;
    eprintln!("{label}: random fraction {fraction}");
    fraction
}
