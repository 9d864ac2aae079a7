//! Faults during training, run as a user meets them: a diverging loss and a run folder
//! that cannot be written. (Ctrl-C and kill -9 are in resume.rs.)

mod common;

use common::{args, run_bin, stderr, stdout, write_synthetic};

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");

#[test]
fn a_diverging_loss_stops_with_the_epoch_batch_and_a_lower_lr() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    let out = run_bin(DENSE, &args(&data, Some(&run), &["--lr", "1e30"]));
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
        let result = run_bin(DENSE, &args(&data, Some(&out), &[]));
        assert_eq!(result.status.code(), Some(1));
        let err = stderr(&result);
        assert!(
            err.contains(says) && err.contains(out.to_str().unwrap()),
            "{err}"
        );
        let stdout = stdout(&result);
        assert!(!stdout.contains("epoch"), "training started: {stdout}");
    }
}
