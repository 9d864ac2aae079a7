//! One epoch of each trainer on the real Fashion-MNIST, found where a user's run finds it.
//! When `CI` is set the dataset must be there (the set-up script installs it); elsewhere a
//! missing dataset skips these tests with a visible message.

mod common;

use common::{run_bin, stderr};
use fashion_tch::{data, run_dir};

fn dataset_present() -> bool {
    let found = data::default_dirs().iter().any(|d| data::has_dataset(d));
    if !found {
        common::skip(&format!(
            "Fashion-MNIST is in none of {:?} (scripts/setup_libtorch.sh installs it)",
            data::default_dirs()
        ));
    }
    found
}

fn one_epoch_reaches(bin: &str, bound: f64) {
    if !dataset_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let result = run_bin(
        bin,
        &[
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(result.status.success(), "{}", stderr(&result));
    let metrics = run_dir::read_metrics(&out).unwrap();
    assert!(metrics[0].test_accuracy >= bound, "{metrics:?}");
}

#[test]
fn train_dense_one_epoch_beats_0_80() {
    one_epoch_reaches(env!("CARGO_BIN_EXE_train_dense"), 0.80);
}

#[test]
fn train_cnn_one_epoch_beats_0_85() {
    one_epoch_reaches(env!("CARGO_BIN_EXE_train_cnn"), 0.85);
}
