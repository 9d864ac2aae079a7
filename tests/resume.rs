//! Exact resume, as a user meets it: a run stopped anywhere (Ctrl-C at a random step, or
//! kill -9 after a checkpoint within an epoch) and resumed ends with the same metrics.csv
//! (every column but the seconds) and a byte-identical model.safetensors as the run that
//! was never stopped. For the lesson's dense net, the lesson's CNN, and the strong recipe
//! (one-cycle schedule, augmentation with alternating flips and cutout, dropout, batch
//! norm, a validation split, a moving average of the weights, which model.safetensors
//! then holds, and the step in bfloat16 where the CPU has it), on synthetic data, with a
//! fixed --threads.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{metrics_without_seconds, random_fraction, run_bin, stderr, stdout, Running};
use fashion_tch::run_dir::checkpoint;
use fashion_tch::tensorboard;

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const CNN: &str = env!("CARGO_BIN_EXE_train_cnn");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");

/// One of the three kinds of run.
struct Case {
    name: &'static str,
    bin: &'static str,
    flags: &'static [&'static str],
}

const CASES: [Case; 3] = [
    Case {
        name: "dense",
        bin: DENSE,
        flags: &["--hidden", "32"],
    },
    Case {
        name: "cnn",
        bin: CNN,
        flags: &["--filters", "4,8", "--hidden", "16"],
    },
    Case {
        name: "strong",
        bin: CNN,
        flags: &[
            "--recipe",
            "strong",
            "--validation",
            "150",
            "--filters",
            "4,8",
            "--batch-size",
            "32",
            "--ema",
            "0.99",
            "--alternate-flips",
            "true",
            "--cutout",
            "6",
            "--precision",
            "bf16",
        ],
    },
];

/// Synthetic data big enough for an epoch to take a moment, in `tmp`.
fn data(tmp: &Path) -> PathBuf {
    let dir = tmp.join("data");
    common::write_synthetic_sized(&dir, 1500);
    dir
}

/// The arguments of a run of `case` into `out`, and `extra`.
fn args<'a>(case: &'a Case, data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = common::args(
        data,
        Some(out),
        &["--epochs", "3", "--seed", "7", "--threads", "2", "--quiet"],
    );
    args.extend_from_slice(case.flags);
    args.extend_from_slice(extra);
    args
}

/// Trains `case` start to end into `out`; returns how long its training took.
fn uninterrupted(case: &Case, data: &Path, out: &Path) -> Duration {
    let mut run = Running::spawn(case.bin, &args(case, data, out, &[]));
    assert!(run.wait_for("training", 1), "{}: no start", case.name);
    let started = Instant::now();
    let (code, stdout, err) = run.finish();
    assert_eq!(code, Some(0), "{}: {err}\n{stdout}", case.name);
    started.elapsed()
}

/// Resumes the run in `out` to its planned end.
fn resume(case: &Case, data: &Path, out: &Path) -> String {
    let extra = ["--resume", out.to_str().unwrap(), "--threads", "2"];
    let result = run_bin(case.bin, &common::args(data, None, &extra));
    assert!(
        result.status.success(),
        "{}: {}",
        case.name,
        stderr(&result)
    );
    stdout(&result)
}

fn assert_same_run(case: &Case, whole: &Path, resumed: &Path) {
    // TensorBoard's curves go on without a seam: the same points, none twice
    let curves = |run: &Path| -> Vec<tensorboard::Scalar> {
        let mut scalars = tensorboard::read(run).unwrap();
        scalars.retain(|s| s.tag != "epoch/seconds");
        scalars
    };
    assert_eq!(
        curves(whole),
        curves(resumed),
        "{}: TensorBoard's curves differ",
        case.name
    );
    assert!(
        tensorboard::event_files(resumed).unwrap().len() >= 2,
        "{}",
        case.name
    );
    assert_eq!(
        metrics_without_seconds(whole),
        metrics_without_seconds(resumed),
        "{}: metrics.csv differs",
        case.name
    );
    let weights = |run: &Path| fs::read(run.join("model.safetensors")).unwrap();
    assert!(
        weights(whole) == weights(resumed),
        "{}: model.safetensors differs",
        case.name
    );
}

/// Epochs and steps done, as the run's checkpoint records them.
fn checkpoint_position(run: &Path) -> Option<(u32, usize)> {
    let state = checkpoint::read_state(run).ok()??;
    Some((state.position.epoch, state.position.step))
}

#[test]
fn ctrl_c_at_a_random_step_then_resume_gives_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    for case in &CASES {
        let whole = tmp.path().join(format!("{}-whole", case.name));
        let took = uninterrupted(case, &data, &whole);
        let stopped = tmp.path().join(format!("{}-stopped", case.name));
        // a random moment of the run; if the run ends first, earlier
        let mut fraction = random_fraction(case.name) * 0.9;
        let err = loop {
            let _ = fs::remove_dir_all(&stopped);
            let mut run = Running::spawn(case.bin, &args(case, &data, &stopped, &[]));
            assert!(run.wait_for("training", 1), "{}: no start", case.name);
            std::thread::sleep(took.mul_f64(fraction));
            run.signal("-INT");
            match run.finish() {
                (Some(130), _, err) => break err,
                (Some(0), ..) if fraction > 0.01 => fraction /= 2.0,
                (code, out, err) => panic!("{}: exit {code:?}: {err}\n{out}", case.name),
            }
        };
        assert!(
            err.contains("stopped ") && err.contains("--resume"),
            "{}: {err}",
            case.name
        );
        // no row for the unfinished epoch
        let (epoch, step) = checkpoint_position(&stopped).unwrap();
        let rows = metrics_without_seconds(&stopped).len() - 1;
        assert_eq!(rows as u32, epoch - 1, "{}: at step {step}", case.name);
        eprintln!("{}: stopped in epoch {epoch} after step {step}", case.name);

        let out = resume(case, &data, &stopped);
        assert!(out.contains("training"), "{out}");
        assert_same_run(case, &whole, &stopped);
    }
}

#[test]
fn kill_9_after_a_checkpoint_within_an_epoch_then_resume_gives_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    for case in &CASES {
        let whole = tmp.path().join(format!("{}-whole", case.name));
        uninterrupted(case, &data, &whole);
        let killed = tmp.path().join(format!("{}-killed", case.name));
        // a checkpoint every few milliseconds: kill once one is within an epoch
        let run = Running::spawn(
            case.bin,
            &args(case, &data, &killed, &["--checkpoint-every", "0.0001"]),
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        while !matches!(checkpoint_position(&killed), Some((e, s)) if e >= 2 && s > 0) {
            assert!(Instant::now() < deadline, "{}: no checkpoint", case.name);
            std::thread::sleep(Duration::from_millis(2));
        }
        run.signal("-KILL");
        let (code, ..) = run.finish();
        assert_eq!(code, None, "{}: the run ended before the kill", case.name);
        let (epoch, step) = checkpoint_position(&killed).unwrap();
        eprintln!("{}: killed after epoch {epoch} step {step}", case.name);
        // the folder still evaluates, from its last finished epoch
        let result = run_bin(
            EVALUATE,
            &[
                killed.to_str().unwrap(),
                "--data-dir",
                data.to_str().unwrap(),
            ],
        );
        assert!(result.status.success(), "{}", stderr(&result));
        // a crash in the middle of writing a row of metrics.csv does not block a resume
        let mut csv = fs::read_to_string(killed.join("metrics.csv")).unwrap();
        csv += "9,0.1,0.9";
        fs::write(killed.join("metrics.csv"), csv).unwrap();

        resume(case, &data, &killed);
        assert_same_run(case, &whole, &killed);
    }
}

#[test]
fn a_second_ctrl_c_quits_at_once_and_the_run_still_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let case = &CASES[1];
    let run_dir = tmp.path().join("run");
    let mut run = Running::spawn(case.bin, &args(case, &data, &run_dir, &[]));
    assert!(run.wait_for("epoch  1/3", 1), "no first epoch");
    run.signal("-INT");
    run.signal("-INT");
    let (code, _, err) = run.finish();
    assert_eq!(code, Some(130), "{err}");
    resume(case, &data, &run_dir);
    let rows = metrics_without_seconds(&run_dir).len() - 1;
    assert_eq!(rows, 3);
}

#[test]
fn a_run_without_a_checkpoint_resumes_only_with_fresh_optimizer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let case = &CASES[0];
    let run = tmp.path().join("old");
    uninterrupted(case, &data, &run);
    // as folders made before checkpoints existed
    fs::remove_file(run.join(checkpoint::FILE)).unwrap();
    let more = |extra: &[&str]| {
        let mut args = common::args(
            &data,
            None,
            &["--resume", run.to_str().unwrap(), "--epochs", "1"],
        );
        args.extend_from_slice(extra);
        run_bin(case.bin, &args)
    };
    let result = more(&[]);
    assert_eq!(result.status.code(), Some(1));
    let err = stderr(&result);
    assert!(
        err.contains("checkpoint.safetensors") && err.contains("--fresh-optimizer"),
        "{err}"
    );
    let result = more(&["--fresh-optimizer"]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(metrics_without_seconds(&run).len() - 1, 4);
    // and from then on it has a checkpoint
    assert!(more(&[]).status.success());
}
