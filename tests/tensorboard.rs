//! TensorBoard's event files, read back as TensorBoard reads them and checked against
//! the run's own metrics.csv. (That a resumed run's curves go on without a seam is
//! checked in resume.rs, after Ctrl-C and after kill -9.)

mod common;

use common::{args, run_bin, stderr, stdout, write_synthetic};
use fashion_tch::run_dir;
use fashion_tch::tensorboard::{self, Scalar};

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");

fn values(scalars: &[Scalar], tag: &str) -> Vec<(i64, f32)> {
    scalars
        .iter()
        .filter(|s| s.tag == tag)
        .map(|s| (s.step, s.value))
        .collect()
}

#[test]
fn a_run_writes_its_curves_for_tensorboard_as_metrics_csv_has_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    let extra = ["--epochs", "3", "--validation", "100", "--hidden", "16"];
    let out = run_bin(DENSE, &args(&data, Some(&run), &extra));
    assert!(out.status.success(), "{}", stderr(&out));
    let scalars = tensorboard::read(&run).unwrap();
    let metrics = run_dir::read_metrics(&run).unwrap();
    // 500 training images in batches of 32: 16 steps an epoch
    let steps_per_epoch = 16;
    // metrics.csv keeps 6 decimals, and 3 of the seconds
    let per_epoch = |tag: &str, get: fn(&run_dir::EpochMetrics) -> Option<f64>, within: f32| {
        let expected: Vec<(i64, f32)> = metrics
            .iter()
            .map(|m| (i64::from(m.epoch) * steps_per_epoch, get(m).unwrap() as f32))
            .collect();
        let written = values(&scalars, tag);
        assert_eq!(written.len(), 3, "{tag}");
        for (w, e) in written.iter().zip(&expected) {
            assert!(
                w.0 == e.0 && (w.1 - e.1).abs() < within,
                "{tag}: {w:?} against {e:?}"
            );
        }
    };
    per_epoch("epoch/test_accuracy", |m| Some(m.test_accuracy), 1e-5);
    per_epoch("epoch/test_loss", |m| Some(m.test_loss), 1e-5);
    per_epoch("epoch/train_loss", |m| Some(m.train_loss), 1e-5);
    per_epoch("epoch/train_accuracy", |m| Some(m.train_accuracy), 1e-5);
    per_epoch("epoch/validation_accuracy", |m| m.validation_accuracy, 1e-5);
    per_epoch("epoch/seconds", |m| Some(m.seconds), 6e-4);
    // the learning rate at every step; the training loss at each epoch's end, where it
    // is the epoch's train loss
    let lr = values(&scalars, "train/learning_rate");
    assert_eq!(lr.len(), 48);
    assert!(lr.iter().all(|&(_, v)| v == 0.001));
    let loss = values(&scalars, "train/loss");
    assert_eq!(loss.iter().map(|l| l.0).collect::<Vec<_>>(), [16, 32, 48]);
    for (l, m) in loss.iter().zip(&metrics) {
        assert!((f64::from(l.1) - m.train_loss).abs() < 1e-5);
    }
    assert_eq!(tensorboard::event_files(&run).unwrap().len(), 1);
    assert!(
        stdout(&out).contains("tensorboard --logdir"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn no_tensorboard_writes_no_event_file_and_suggests_none() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    let extra = ["--epochs", "1", "--no-tensorboard"];
    let out = run_bin(DENSE, &args(&data, Some(&run), &extra));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(tensorboard::event_files(&run).unwrap().is_empty());
    assert!(!stdout(&out).contains("tensorboard"), "{}", stdout(&out));
}

#[test]
fn a_resume_writes_every_finished_epochs_figures_the_event_files_lack() {
    // a run whose event files lack its finished epochs (here: trained without them) goes
    // on with them: the finished epochs' figures, then the new epoch's
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    let first = ["--epochs", "2", "--hidden", "16", "--no-tensorboard"];
    let out = run_bin(DENSE, &args(&data, Some(&run), &first));
    assert!(out.status.success(), "{}", stderr(&out));
    let more = ["--resume", run.to_str().unwrap(), "--epochs", "1"];
    let out = run_bin(DENSE, &args(&data, None, &more));
    assert!(out.status.success(), "{}", stderr(&out));
    let scalars = tensorboard::read(&run).unwrap();
    let metrics = run_dir::read_metrics(&run).unwrap();
    // 600 training images in batches of 32: 19 steps an epoch
    let written = values(&scalars, "epoch/test_accuracy");
    let expected: Vec<(i64, f32)> = metrics
        .iter()
        .map(|m| (i64::from(m.epoch) * 19, m.test_accuracy as f32))
        .collect();
    assert_eq!(written.len(), 3, "{written:?}");
    for (w, e) in written.iter().zip(&expected) {
        assert!(
            w.0 == e.0 && (w.1 - e.1).abs() < 1e-5,
            "{w:?} against {e:?}"
        );
    }
}
