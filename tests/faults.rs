//! Faults during training, run as a user meets them: Ctrl-C, kill -9, a diverging loss,
//! and a run folder that cannot be written.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{run_bin, stderr, synthetic, write_synthetic};
use fashion_tch::data::write_idx_dir;
use fashion_tch::run_dir;

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const CNN: &str = env!("CARGO_BIN_EXE_train_cnn");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");

/// A synthetic dataset big enough that an epoch of the small CNN takes a moment.
fn slow_data(dir: &Path) {
    let (train_px, train_lb) = synthetic(6000, 1);
    let (test_px, test_lb) = synthetic(200, 2);
    write_idx_dir(dir, (&train_px, &train_lb), (&test_px, &test_lb)).unwrap();
}

fn spawn_long_run(data: &Path, run: &Path) -> Child {
    Command::new(CNN)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
        .args([
            "--epochs",
            "1000",
            "--device",
            "cpu",
            "--filters",
            "4,8",
            "--hidden",
            "16",
        ])
        .env_remove("FASHION_MNIST_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the run has `rows` finished epochs in metrics.csv.
fn wait_for_rows(run: &Path, rows: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while run_dir::read_metrics(run).map_or(0, |m| m.len()) < rows {
        assert!(Instant::now() < deadline, "no epoch finished in 300 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn resume_one_more(data: &Path, run: &Path) -> Vec<u32> {
    let out = run_bin(
        CNN,
        &[
            "--resume",
            run.to_str().unwrap(),
            "--epochs",
            "1",
            "--data-dir",
            data.to_str().unwrap(),
            "--device",
            "cpu",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    run_dir::read_metrics(run)
        .unwrap()
        .iter()
        .map(|m| m.epoch)
        .collect()
}

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    slow_data(&data);
    let run = tmp.path().join("run");
    (tmp, data, run)
}

#[test]
fn ctrl_c_saves_the_epoch_so_far_exits_130_and_resume_goes_on() {
    let (_tmp, data, run) = dirs();
    let child = spawn_long_run(&data, &run);
    wait_for_rows(&run, 1);
    std::thread::sleep(Duration::from_millis(200)); // well into epoch 2
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("interrupted in epoch") && err.contains("--resume"),
        "{err}"
    );

    let rows = run_dir::read_metrics(&run).unwrap();
    let stopped = rows.last().unwrap().epoch;
    assert!(
        stopped >= 2,
        "the interrupted epoch's row is missing: {rows:?}"
    );
    run_dir::load_run(&run, tch::Device::Cpu).unwrap();
    let epochs = resume_one_more(&data, &run);
    assert_eq!(*epochs.last().unwrap(), stopped + 1, "{epochs:?}");
}

#[test]
fn after_kill_9_the_run_folder_still_evaluates_and_resumes() {
    let (_tmp, data, run) = dirs();
    let mut child = spawn_long_run(&data, &run);
    wait_for_rows(&run, 1);
    signal(&child, "-KILL");
    child.wait().unwrap();
    let done = run_dir::read_metrics(&run).unwrap().len() as u32;

    let out = run_bin(
        EVALUATE,
        &[run.to_str().unwrap(), "--data-dir", data.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let epochs = resume_one_more(&data, &run);
    assert_eq!(epochs, (1..=done + 1).collect::<Vec<_>>());
}

#[test]
fn a_diverging_loss_stops_with_the_epoch_batch_and_a_lower_lr() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    let out = run_bin(
        DENSE,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--lr",
            "1e30",
            "--device",
            "cpu",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("epoch 1") && err.contains("by batch") && err.contains("lower --lr"),
        "{err}"
    );
    assert!(
        !run.join("model.safetensors").exists(),
        "no weights from a diverged epoch"
    );
}

#[test]
fn an_unwritable_out_fails_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    // a path that is a file, and a folder that cannot be made (its parent is a file)
    for (out, says) in [
        (file.clone(), "is a file"),
        (file.join("run"), "creating the run folder"),
    ] {
        let result = run_bin(
            DENSE,
            &[
                "--data-dir",
                data.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--device",
                "cpu",
            ],
        );
        assert_eq!(result.status.code(), Some(1));
        let err = stderr(&result);
        assert!(
            err.contains(says) && err.contains(out.to_str().unwrap()),
            "{err}"
        );
        let stdout = String::from_utf8_lossy(&result.stdout);
        assert!(!stdout.contains("epoch"), "training started: {stdout}");
    }
}
