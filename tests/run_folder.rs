//! A run folder has one writer, and the binaries run beside one another as a hostile user
//! would run them: a second trainer, evaluate in a loop, sweep and export pointed at what
//! they did not make, damaged and odd files. Every case runs the real binaries.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{
    args, fake_run, run_bin, run_within, small_cnn_spec, stderr, stdout, write_synthetic, Running,
};
use fashion_tch::models::ModelSpec;
use fashion_tch::run_dir::{self, checkpoint};

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const CNN: &str = env!("CARGO_BIN_EXE_train_cnn");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");
const PREDICT: &str = env!("CARGO_BIN_EXE_predict");
const COMPARE: &str = env!("CARGO_BIN_EXE_compare");
const EXPORT: &str = env!("CARGO_BIN_EXE_export");
const SWEEP: &str = env!("CARGO_BIN_EXE_sweep");

/// A folder with the synthetic dataset in `data/`.
fn dataset() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    (tmp, data)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

/// A dense run that trains until it is stopped (a thousand epochs of 600 images), with
/// its first epoch finished.
fn long_training(data: &Path, run: &Path) -> Running {
    let mut trainer = Running::spawn(
        DENSE,
        &args(data, Some(run), &["--epochs", "1000", "--hidden", "16"]),
    );
    assert!(trainer.wait_for("epoch ", 1), "the trainer ended early");
    trainer
}

/// The run's files agree: a row per finished epoch in metrics.csv, as many as its
/// checkpoint records, the weights of the last of them.
fn assert_consistent(run: &Path) -> usize {
    let rows = run_dir::read_metrics(run).unwrap();
    let state = checkpoint::read_state(run).unwrap().unwrap();
    assert_eq!(
        rows.len(),
        state.history.len(),
        "metrics.csv against the checkpoint"
    );
    for (row, kept) in rows.iter().zip(&state.history) {
        // metrics.csv holds 6 decimals
        assert_eq!(row.epoch, kept.epoch);
        assert!(
            (row.test_accuracy - kept.test_accuracy).abs() < 1e-6,
            "epoch {}",
            row.epoch
        );
    }
    assert_eq!(state.position.epoch as usize, rows.len() + 1);
    let loaded = run_dir::load_run(run, run_dir::Weights::Last, tch::Device::Cpu).unwrap();
    assert_eq!(loaded.epoch as usize, rows.len());
    rows.len()
}

#[test]
fn evaluate_looped_beside_a_training_never_disturbs_it() {
    let (tmp, data) = dataset();
    let run = tmp.path().join("run");
    let mut trainer = long_training(&data, &run);
    // two at a time, so that evaluate's own pictures are written by two processes too
    for _ in 0..4 {
        let a = Running::spawn(
            EVALUATE,
            &[s(&run), "--data-dir", s(&data), "--device", "cpu"],
        );
        let b = Running::spawn(
            EVALUATE,
            &[s(&run), "--data-dir", s(&data), "--device", "cpu"],
        );
        for e in [a, b] {
            let (code, out, err) = e.finish();
            assert_eq!(code, Some(0), "{out}\n{err}");
            assert!(out.contains("accuracy"), "{out}");
        }
    }
    assert!(
        trainer.child.try_wait().unwrap().is_none(),
        "the training ended"
    );
    trainer.signal("-INT");
    let (code, out, err) = trainer.finish();
    assert_eq!(
        code,
        Some(130),
        "the training was stopped by Ctrl-C only:\n{out}\n{err}"
    );
    assert!(!err.contains("error"), "{err}");
    assert!(assert_consistent(&run) >= 1);
}

#[test]
fn a_second_trainer_is_refused_naming_the_folder_and_the_process_and_the_folder_stays_whole() {
    let (tmp, data) = dataset();
    let run = tmp.path().join("run");
    let mut trainer = long_training(&data, &run);
    let pid = format!("PID {}", trainer.child.id());
    let resumed = run_bin(
        DENSE,
        &[&["--resume", s(&run)][..], &args(&data, None, &[])].concat(),
    );
    let fresh = run_bin(DENSE, &args(&data, Some(&run), &["--hidden", "16"]));
    for (what, out) in [("--resume", resumed), ("--out", fresh)] {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        let refused = err.contains(&pid) || err.contains("already holds a run");
        assert!(refused && err.contains(s(&run)), "{what}: {err}");
        assert!(!stdout(&out).contains("epoch "), "{what} trained");
    }
    assert!(
        trainer.child.try_wait().unwrap().is_none(),
        "the training ended"
    );
    trainer.signal("-INT");
    let (code, _, err) = trainer.finish();
    assert_eq!(code, Some(130), "{err}");
    let done = assert_consistent(&run);
    let config = run_dir::read_config(&run).unwrap();
    assert_eq!(
        config.recipe.epochs, 1000,
        "config.json is the first trainer's"
    );
    // once the first has ended, the run goes on
    let more = run_bin(
        DENSE,
        &[
            &["--resume", s(&run), "--epochs", "1"][..],
            &args(&data, None, &[]),
        ]
        .concat(),
    );
    assert!(more.status.success(), "{}", stderr(&more));
    assert_eq!(assert_consistent(&run), done + 1);
}

#[test]
fn a_sweep_run_that_another_process_trains_is_refused() {
    let (tmp, data) = dataset();
    let sweep_dir = tmp.path().join("sweep");
    // the run the sweep would make, started by hand with the sweep's settings
    let run = sweep_dir.join("dense-16");
    let trainer = long_training(&data, &run);
    let out = run_bin(
        SWEEP,
        &args(
            &data,
            Some(&sweep_dir),
            &["--model", "dense", "--hidden", "16", "--epochs", "2000"],
        ),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("PID {}", trainer.child.id())),
        "{err}"
    );
    trainer.signal("-INT");
    assert_eq!(trainer.finish().0, Some(130));
    assert_consistent(&run);
}

#[test]
fn sweep_deletes_nothing_it_did_not_make() {
    let (tmp, data) = dataset();
    let sweep_dir = tmp.path().join("sweep");
    let sweep = |hidden: &str| {
        run_bin(
            SWEEP,
            &args(
                &data,
                Some(&sweep_dir),
                &["--model", "dense", "--hidden", hidden, "--epochs", "1"],
            ),
        )
    };
    // a folder named like the sweep's run, holding someone's file
    let theirs = sweep_dir.join("dense-16");
    fs::create_dir_all(&theirs).unwrap();
    fs::write(theirs.join("notes.txt"), "mine").unwrap();
    let out = sweep("16");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(s(&theirs)) && err.contains("notes.txt"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(theirs.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        run_dir::entries(&theirs).unwrap(),
        ["notes.txt"],
        "left as it was"
    );

    // a run of its own cut short before its first checkpoint starts afresh
    let ours = sweep_dir.join("dense-8");
    fs::create_dir_all(&ours).unwrap();
    let cut = sweep("8"); // trains dense-8 whole; then cut it back to its start
    assert!(cut.status.success(), "{}", stderr(&cut));
    for f in ["model.safetensors", "checkpoint.safetensors", "curves.svg"] {
        fs::remove_file(ours.join(f)).unwrap();
    }
    let header = fs::read_to_string(ours.join("metrics.csv")).unwrap();
    let header = header.lines().next().unwrap().to_string() + "\n";
    fs::write(ours.join("metrics.csv"), header).unwrap();
    let again = sweep("8");
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(run_dir::read_metrics(&ours).unwrap().len(), 1);
}

#[test]
fn out_into_a_folder_that_is_not_a_run_is_refused_and_left_alone() {
    let (tmp, data) = dataset();
    let theirs = tmp.path().join("photos");
    fs::create_dir_all(&theirs).unwrap();
    fs::write(theirs.join("metrics.csv"), "my own figures").unwrap();
    let out = run_bin(DENSE, &args(&data, Some(&theirs), &[]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("not empty") && err.contains("metrics.csv"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(theirs.join("metrics.csv")).unwrap(),
        "my own figures"
    );
    assert_eq!(
        run_dir::entries(&theirs).unwrap(),
        ["metrics.csv"],
        "left as it was"
    );
}

/// A small CNN trained with images held out, so it has a best epoch.
fn validated_run(tmp: &Path, data: &Path) -> PathBuf {
    let run = tmp.join("run");
    common::validated_cnn(data, &run);
    assert!(run_dir::read_config(&run).unwrap().best_epoch.is_some());
    run
}

#[test]
fn export_writes_only_its_own_file_atomically_and_fails_in_one_line() {
    let (tmp, data) = dataset();
    let run = validated_run(tmp.path(), &data);
    let before: Vec<(String, Vec<u8>)> = ["config.json", "best.safetensors", "model.safetensors"]
        .iter()
        .map(|f| (f.to_string(), fs::read(run.join(f)).unwrap()))
        .collect();
    for name in ["best.safetensors", "config.json", "notes.pt"] {
        let out = run_bin(EXPORT, &[s(&run), "--out", s(&run.join(name)), "--force"]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            stderr(&out).contains("inside the run folder"),
            "{}",
            stderr(&out)
        );
    }
    for (name, bytes) in &before {
        assert_eq!(&fs::read(run.join(name)).unwrap(), bytes, "{name} changed");
    }
    // its own model.pt, again and again
    for _ in 0..2 {
        let out = run_bin(EXPORT, &[s(&run)]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // elsewhere: an existing file only with --force
    let elsewhere = tmp.path().join("model.pt");
    fs::write(&elsewhere, "keep me").unwrap();
    let out = run_bin(EXPORT, &[s(&run), "--out", s(&elsewhere)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "keep me");
    let out = run_bin(EXPORT, &[s(&run), "--out", s(&elsewhere), "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tch::CModule::load(&elsewhere).is_ok());
    // a folder that does not exist: one line, no C++ backtrace, no file left behind
    let nowhere = tmp.path().join("no/such/folder/model.pt");
    let out = run_bin(EXPORT, &[s(&run), "--out", s(&nowhere)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(s(&nowhere)) && !err.contains("frame #"),
        "{err}"
    );
    let leftovers: Vec<_> = run_dir::entries(tmp.path())
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
#[expect(clippy::too_many_lines, reason = "one story, start to end")]
fn a_missing_or_damaged_best_safetensors_is_an_error_never_the_last_epoch_instead() {
    let (tmp, data) = dataset();
    let run = validated_run(tmp.path(), &data);
    let best = run.join("best.safetensors");
    let image = tmp.path().join("shirt.png");
    image::GrayImage::from_pixel(28, 28, image::Luma([90]))
        .save(&image)
        .unwrap();
    let readers = |weights: &str| -> Vec<(&str, Output)> {
        let w = ["--weights", weights];
        vec![
            (
                "evaluate",
                run_bin(
                    EVALUATE,
                    &[&[s(&run), "--data-dir", s(&data)][..], &w].concat(),
                ),
            ),
            (
                "compare",
                run_bin(
                    COMPARE,
                    &[
                        &[s(&run), "--out", s(&tmp.path().join("c.svg")), "--force"][..],
                        &w,
                    ]
                    .concat(),
                ),
            ),
            (
                "predict",
                run_bin(PREDICT, &[&[s(&run), s(&image)][..], &w].concat()),
            ),
            (
                "export",
                run_bin(
                    EXPORT,
                    &[
                        &[s(&run), "--out", s(&tmp.path().join("m.pt")), "--force"][..],
                        &w,
                    ]
                    .concat(),
                ),
            ),
        ]
    };
    for damage in ["missing", "damaged"] {
        match damage {
            "missing" => fs::remove_file(&best).unwrap(),
            _ => fs::write(&best, b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":").unwrap(),
        }
        for (bin, out) in readers("best") {
            assert_eq!(
                out.status.code(),
                Some(1),
                "{bin} with best.safetensors {damage}"
            );
            let err = stderr(&out);
            assert!(
                err.contains(s(&best)) && err.contains("--weights last"),
                "{bin}, {damage}: {err}"
            );
        }
        for (bin, out) in readers("last") {
            assert!(
                out.status.success(),
                "{bin} --weights last: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn evaluate_and_compare_end_on_metrics_without_rows_torn_rows_nan_and_inf() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = fake_run(&tmp.path().join("run"), ModelSpec::Dense { hidden: 8 }, 3);
    let metrics = run.join("metrics.csv");
    let header = fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let limit = Duration::from_secs(120);
    // weights and no complete row, a torn one (trainers before the row came first): the
    // weights say their epoch, and are scored as that epoch's
    fs::write(&metrics, format!("{header}\n1,0.5,0.8")).unwrap();
    let out = run_within(EVALUATE, &os(&[s(&run), "--data-dir", s(&data)]), limit);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert!(stdout.contains("the weights of epoch 3"), "{stdout}");
    // weights from before they said their epoch, with no row: which epoch is unknown
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _ = ModelSpec::Dense { hidden: 8 }.build(&vs, &fashion_tch::data::Input::fashion_mnist());
    common::write_weights(&run.join("model.safetensors"), &vs);
    let out = run_within(EVALUATE, &os(&[s(&run), "--data-dir", s(&data)]), limit);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no finished epoch") && err.contains("--resume"),
        "{err}"
    );
    let out = run_within(
        COMPARE,
        &os(&[s(&run), "--out", s(&tmp.path().join("c.svg"))]),
        limit,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no finished epoch"),
        "{}",
        stderr(&out)
    );

    // compare never writes a run's file, even when told to replace it
    let curves = run.join("curves.svg");
    let out = run_bin(COMPARE, &[s(&run), "--out", s(&curves), "--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("one of the files of the run folder"),
        "{}",
        stderr(&out)
    );

    // figures that are not numbers: compare draws the others
    let rows = "1,inf,0.5,NaN,0.5,1.0\n2,0.5,0.6,inf,inf,1.0\n3,0.4,0.7,0.5,-inf,1.0\n";
    fs::write(&metrics, format!("{header}\n{rows}")).unwrap();
    let chart = tmp.path().join("c.svg");
    let out = run_within(COMPARE, &os(&[s(&run), "--out", s(&chart)]), limit);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = fs::read_to_string(&chart).unwrap();
    roxmltree::Document::parse(&svg).unwrap();
    assert!(!svg.contains("NaN"), "every point drawn is a number");
    let out = run_within(EVALUATE, &os(&[s(&run), "--data-dir", s(&data)]), limit);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_row_without_its_weights_says_so_and_points_to_resume() {
    // the row written, the weights not yet (a trainer between the two, or stopped there)
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = fake_run(&tmp.path().join("run"), ModelSpec::Dense { hidden: 8 }, 1);
    fs::remove_file(run.join("model.safetensors")).unwrap();
    let out = run_within(
        EVALUATE,
        &os(&[s(&run), "--data-dir", s(&data)]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no model.safetensors") && err.contains("--resume"),
        "{err}"
    );
}

#[test]
fn predict_refuses_what_is_not_a_regular_file_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let run = fake_run(&tmp.path().join("run"), small_cnn_spec(), 1);
    let fifo = tmp.path().join("pipe.png");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let image = tmp.path().join("shirt.png");
    image::GrayImage::from_pixel(28, 28, image::Luma([90]))
        .save(&image)
        .unwrap();
    let out = run_within(
        PREDICT,
        &os(&[s(&run), s(&fifo), "/dev/null", s(&image)]),
        Duration::from_secs(120),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(s(&fifo)) && err.contains("not a regular file"),
        "{err}"
    );
    assert!(
        err.contains("/dev/null") && err.contains("2 of 3 files"),
        "{err}"
    );
    let stdout = stdout(&out);
    assert!(
        stdout.contains(&format!("{}: ", image.display())),
        "{stdout}"
    );
}

#[test]
fn paths_that_are_not_utf8_work_and_are_shown_lossily() {
    let tmp = tempfile::tempdir().unwrap();
    let odd = |name: &[u8]| tmp.path().join(OsStr::from_bytes(name));
    // a dataset in a folder whose name is not UTF-8
    let data = odd(b"data-\xff");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    let mut train: Vec<&OsStr> = vec![
        OsStr::new("--data-dir"),
        data.as_os_str(),
        OsStr::new("--out"),
        run.as_os_str(),
    ];
    train.extend(os(&["--device", "cpu", "--epochs", "1", "--hidden", "8"]));
    let out = run_within(DENSE, &train, Duration::from_secs(300));
    assert!(out.status.success(), "{}", stderr(&out));
    let config = run_dir::read_config(&run).unwrap();
    assert!(config.data_dir.to_string_lossy().contains("data-\u{fffd}"));

    // predict --json: every file has its record, the odd name with its bytes replaced
    let image = odd(b"shirt-\xfe.png");
    image::GrayImage::from_pixel(28, 28, image::Luma([90]))
        .save(&image)
        .unwrap();
    let plain = tmp.path().join("plain.png");
    fs::copy(&image, &plain).unwrap();
    let out = run_within(
        PREDICT,
        &[
            run.as_os_str(),
            image.as_os_str(),
            plain.as_os_str(),
            OsStr::new("--json"),
        ],
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 2);
    assert!(files[0].contains("shirt-\u{fffd}.png") && files[1].ends_with("plain.png"));
}

#[test]
fn ctrl_c_during_the_last_epochs_scoring_ends_a_complete_run_normally() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // 64 training images (two steps), 30,000 test images to score: seconds of scoring
    let (train_px, train_lb) = common::synthetic(64, 1);
    let (test_px, test_lb) = common::synthetic(30_000, 2);
    fashion_tch::data::write_idx_dir(&data, (&train_px, &train_lb), (&test_px, &test_lb)).unwrap();
    let run = tmp.path().join("run");
    let mut trainer = Running::spawn(CNN, &args(&data, Some(&run), &["--epochs", "1"]));
    assert!(trainer.wait_for("training cnn", 1));
    std::thread::sleep(Duration::from_millis(700));
    trainer.signal("-INT");
    let (code, out, err) = trainer.finish();
    assert_eq!(code, Some(0), "a complete run ends normally:\n{out}\n{err}");
    assert!(out.contains("Ctrl-C came after the last step"), "{out}");
    assert!(out.contains("test accuracy"), "{out}");
    assert_eq!(assert_consistent(&run), 1);
    let again = run_bin(
        CNN,
        &[&["--resume", s(&run)][..], &args(&data, None, &[])].concat(),
    );
    assert!(
        stderr(&again).contains("finished its 1 epoch;"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn evaluate_on_a_run_stopped_in_its_first_epoch_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic_sized(&data, 6000);
    let run = tmp.path().join("run");
    let mut trainer = Running::spawn(CNN, &args(&data, Some(&run), &["--epochs", "1"]));
    assert!(trainer.wait_for("training cnn", 1));
    trainer.signal("-INT");
    let (code, _, err) = trainer.finish();
    assert_eq!(code, Some(130), "{err}");
    let out = run_bin(EVALUATE, &[s(&run), "--data-dir", s(&data)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no finished epoch") && !err.contains("Os {"),
        "{err}"
    );
}

#[test]
fn evaluate_prints_its_scores_before_pictures_it_cannot_write() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = fake_run(&tmp.path().join("run"), ModelSpec::Dense { hidden: 8 }, 1);
    // a folder where the picture goes: not writable, even by root
    fs::create_dir(run.join("predictions.svg")).unwrap();
    let out = run_bin(EVALUATE, &[s(&run), "--data-dir", s(&data)]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = stdout(&out);
    assert!(stdout.contains("test accuracy"), "{stdout}");
    let err = stderr(&out);
    assert!(
        err.contains("predictions.svg") && err.contains("scores above stand"),
        "{err}"
    );
}

#[test]
fn nan_weights_are_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let model = ModelSpec::Dense { hidden: 8 };
    let run = fake_run(&tmp.path().join("run"), model.clone(), 1);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _ = model.build(&vs, &fashion_tch::data::Input::fashion_mnist());
    tch::no_grad(|| {
        for (_, mut t) in vs.variables() {
            let _ = t.fill_(f64::NAN);
        }
    });
    common::write_weights(&run.join("model.safetensors"), &vs);
    let image = tmp.path().join("shirt.png");
    image::GrayImage::from_pixel(28, 28, image::Luma([90]))
        .save(&image)
        .unwrap();
    for out in [
        run_bin(EVALUATE, &[s(&run), "--data-dir", s(&data)]),
        run_bin(PREDICT, &[s(&run), s(&image), "--json"]),
    ] {
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("model.safetensors") && err.contains("NaN"),
            "{err}"
        );
        assert!(!stdout(&out).contains("null"));
    }
}

#[test]
fn a_multi_member_gz_file_is_read_as_zcat_reads_it() {
    let (tmp, data) = dataset();
    let raw = fs::read(data.join("train-labels-idx1-ubyte")).unwrap();
    let (a, b) = raw.split_at(raw.len() / 2);
    let gzip = |bytes: &[u8]| {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    };
    let mut two = gzip(a);
    two.extend(gzip(b));
    fs::remove_file(data.join("train-labels-idx1-ubyte")).unwrap();
    fs::write(data.join("train-labels-idx1-ubyte.gz"), two).unwrap();
    let out = run_bin(
        DENSE,
        &args(&data, Some(&tmp.path().join("run")), &["--epochs", "1"]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn data_without_test_or_training_images_is_refused_naming_the_file() {
    for (train, test, file) in [(600, 0, "t10k-labels"), (0, 200, "train-labels")] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let (train_px, train_lb) = common::synthetic(train, 1);
        let (test_px, test_lb) = common::synthetic(test, 2);
        fashion_tch::data::write_idx_dir(&data, (&train_px, &train_lb), (&test_px, &test_lb))
            .unwrap();
        let out = run_bin(DENSE, &args(&data, Some(&tmp.path().join("run")), &[]));
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains(file) && err.contains("holds no labels"),
            "{err}"
        );
        assert!(!err.contains("--validation"), "{err}");
        let run = fake_run(&tmp.path().join("fake"), ModelSpec::Dense { hidden: 8 }, 1);
        let out = run_bin(EVALUATE, &[s(&run), "--data-dir", s(&data)]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains(file), "{}", stderr(&out));
    }
}

#[test]
fn messages_read_as_english() {
    let (tmp, data) = dataset();
    // --lr inf
    let out = run_bin(DENSE, &args(&data, None, &["--lr", "inf"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("inf is not a finite number"),
        "{}",
        stderr(&out)
    );
    // 1 epoch, not 1 epochs
    let run = tmp.path().join("run");
    let out = run_bin(DENSE, &args(&data, Some(&run), &["--epochs", "1"]));
    assert!(out.status.success());
    assert!(stdout(&out).contains("for 1 epoch,"));
    let again = run_bin(
        DENSE,
        &[&["--resume", s(&run)][..], &args(&data, None, &[])].concat(),
    );
    let err = stderr(&again);
    assert!(
        err.contains("finished its 1 epoch;") && !err.contains("1 epochs"),
        "{err}"
    );
    // an image's error said once
    let fake = tmp.path().join("fake.png");
    fs::write(&fake, "not a picture").unwrap();
    let out = run_bin(PREDICT, &[s(&run), s(&fake)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("Invalid PNG signature").count(), 1, "{err}");
}
