//! The trainers, run as a user runs them, on a small synthetic dataset.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{args, metrics_without_seconds, run_bin, stderr, stdout, write_synthetic};
use fashion_tch::models::{Convs, ModelSpec, Views};
use fashion_tch::recipe::Precision;
use fashion_tch::{data, run_dir, score};
use tch::{nn, Device};

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const CNN: &str = env!("CARGO_BIN_EXE_train_cnn");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");

/// The synthetic data beside a run made by [`trains_and_keeps_the_run`].
fn data_dir(run: &Path) -> PathBuf {
    run.with_file_name("data")
}

/// Trains with `bin` on synthetic data and checks what a user would: it exits 0, the loss
/// falls, accuracy is far above chance, the run folder holds its three files, and the saved
/// weights load back and score what the trainer reported. Returns the temporary folder,
/// the run folder and what the trainer printed.
fn trains_and_keeps_the_run(bin: &str, extra: &[&str]) -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    write_synthetic(&data_dir);
    let out = tmp.path().join("run");
    let mut args = args(&data_dir, Some(&out), &["--epochs", "3"]);
    args.extend_from_slice(extra);
    let result = run_bin(bin, &args);
    assert!(result.status.success(), "{}", stderr(&result));
    let stdout = stdout(&result);
    let epoch_lines = stdout.lines().filter(|l| l.starts_with("epoch "));
    assert_eq!(epoch_lines.count(), 3, "{stdout}");
    assert!(stdout.contains("test accuracy"), "{stdout}");

    for file in ["config.json", "metrics.csv", "model.safetensors"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let metrics = run_dir::read_metrics(&out).unwrap();
    assert_eq!(metrics.len(), 3);
    assert!(metrics[2].train_loss < metrics[0].train_loss, "{metrics:?}");
    assert!(metrics[2].test_accuracy > 0.6, "{metrics:?}");

    let config = run_dir::read_config(&out).unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = config
        .model()
        .build(&vs, &fashion_tch::data::Input::fashion_mnist());
    run_dir::load_weights(&out.join(run_dir::WEIGHTS), &mut vs).unwrap();
    let data = data::load_dir(&data_dir, Device::Cpu).unwrap();
    let score = score::score(&net, &data.test);
    assert!(
        (score.accuracy - metrics[2].test_accuracy).abs() < 1e-6,
        "{score:?} vs {:?}",
        metrics[2]
    );
    (tmp, out, stdout)
}

#[test]
fn train_dense_learns_and_keeps_its_run() {
    let (_tmp, out, _) = trains_and_keeps_the_run(DENSE, &["--hidden", "32"]);
    // its steps are too small to share between cores, unless --threads says otherwise
    assert_eq!(run_dir::read_config(&out).unwrap().threads, 1);
    let (_tmp, out, _) = trains_and_keeps_the_run(DENSE, &["--hidden", "32", "--threads", "2"]);
    assert_eq!(run_dir::read_config(&out).unwrap().threads, 2);
    // a resumed run keeps the threads it trained on, for the very numbers
    let more = [
        "--resume",
        out.to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
    ];
    let result = run_bin(DENSE, &more);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(run_dir::read_metrics(&out).unwrap().len(), 4);
    assert_eq!(run_dir::read_config(&out).unwrap().threads, 2);
}

#[test]
fn train_cnn_learns_and_keeps_its_run() {
    let (_tmp, out, _) = trains_and_keeps_the_run(CNN, &["--filters", "4,8", "--hidden", "16"]);
    assert_eq!(held(&out.join("model.safetensors")), "trained");
}

#[test]
fn train_cnn_in_bf16_learns_on_a_cpu_with_bf16_and_says_so_on_one_without() {
    let (_tmp, out, stdout) = trains_and_keeps_the_run(
        CNN,
        &["--filters", "4,8", "--hidden", "16", "--precision", "bf16"],
    );
    let precision = run_dir::read_config(&out).unwrap().recipe.precision;
    if fashion_tch::device::has_bf16(Device::Cpu) {
        assert!(stdout.contains("came out as BFloat16"), "{stdout}");
        assert_eq!(precision, Precision::Bf16);
    } else {
        assert!(stdout.contains("so the run trains in float32"), "{stdout}");
        assert_eq!(precision, Precision::F32);
    }
}

/// Which weights a weights file says it holds.
fn held(file: &Path) -> String {
    let bytes = fs::read(file).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    header.metadata().as_ref().unwrap()["weights"].clone()
}

#[test]
#[expect(clippy::too_many_lines, reason = "one story, start to end")]
fn the_strong_recipe_learns_validates_on_held_out_images_and_keeps_its_run() {
    let (_tmp, out, stdout) = trains_and_keeps_the_run(
        CNN,
        &[
            "--recipe",
            "strong",
            "--validation",
            "60",
            "--filters",
            "4,8,8",
            "--batch-size",
            "32",
            "--ema",
            "0.99",
        ],
    );
    // the saved weights say which they are: the moving average of the weights
    for file in ["model.safetensors", "best.safetensors"] {
        assert_eq!(held(&out.join(file)), "ema", "{file}");
    }
    // the train curves are labelled as what they measure, not what is scored
    let curves = fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(
        curves.contains("train (augmented, dropout on, smoothed labels)"),
        "curves.svg does not say how the train figures were taken"
    );
    // a tenth of the 600 synthetic training images is held out, and scored every epoch
    assert!(
        stdout.contains("540 training (60 more held out for validation)"),
        "{stdout}"
    );
    let metrics = run_dir::read_metrics(&out).unwrap();
    assert!(
        metrics.iter().all(|m| m.validation_accuracy > Some(0.3)),
        "{metrics:?}"
    );
    let config = run_dir::read_config(&out).unwrap();
    assert_eq!(config.recipe.name, fashion_tch::recipe::RecipeName::Strong);
    assert_eq!(
        *config.model(),
        ModelSpec::Cnn {
            filters: vec![4, 8, 8],
            hidden: 256,
            convs: Convs::new(vec![1, 2]),
            batch_norm: true,
            dropout: 0.1,
            views: Views::Mirror,
        }
    );
    // evaluate draws its pictures, the first layer's filters through its batch norm too
    let result = run_bin(
        EVALUATE,
        &[
            out.to_str().unwrap(),
            "--data-dir",
            data_dir(&out).to_str().unwrap(),
        ],
    );
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(out.join("filters.svg").is_file());
    // a resumed run keeps its recipe, and refuses another
    let result = run_bin(
        CNN,
        &["--resume", out.to_str().unwrap(), "--recipe", "lesson"],
    );
    assert_eq!(result.status.code(), Some(1));
    assert!(
        stderr(&result).contains("--recipe strong, not --recipe lesson"),
        "{}",
        stderr(&result)
    );
}

#[test]
#[expect(clippy::too_many_lines, reason = "one story, start to end")]
fn validation_sets_the_images_held_out_and_0_trains_on_all_of_them() {
    // the lesson's recipe can hold images out too
    let (tmp, out, printed) = trains_and_keeps_the_run(DENSE, &["--validation", "100"]);
    assert!(
        printed.contains("500 training (100 more held out for validation)"),
        "{printed}"
    );
    let metrics = run_dir::read_metrics(&out).unwrap();
    assert!(
        metrics.iter().all(|m| m.validation_accuracy.is_some()),
        "{metrics:?}"
    );
    // and the strong recipe's final fit trains on all 600 synthetic images, with no
    // validation column (how well it learns is the test above's)
    let data = data_dir(&out);
    let out = tmp.path().join("final-fit");
    let final_fit = [
        "--recipe",
        "strong",
        "--validation",
        "0",
        "--filters",
        "4,8",
    ];
    let mut fit = args(&data, Some(&out), &["--epochs", "1"]);
    fit.extend_from_slice(&final_fit);
    let result = run_bin(CNN, &fit);
    assert!(result.status.success(), "{}", stderr(&result));
    let printed = stdout(&result);
    assert!(printed.contains(" 600 training and "), "{printed}");
    assert!(!printed.contains("held out"), "{printed}");
    let metrics = run_dir::read_metrics(&out).unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].validation_accuracy, None);
    assert_eq!(
        run_dir::read_config(&out).unwrap().recipe.validation_images,
        0
    );
    // a resumed run keeps its split, and refuses another
    let resume = |extra: &[&str]| {
        let mut args = args(
            &data,
            None,
            &["--resume", out.to_str().unwrap(), "--epochs", "1"],
        );
        args.extend_from_slice(extra);
        run_bin(CNN, &args)
    };
    let result = resume(&["--validation", "60"]);
    assert_eq!(result.status.code(), Some(1));
    let err = stderr(&result);
    assert!(
        err.contains("trained with --validation 0, not --validation 60"),
        "{err}"
    );
    let result = resume(&[]);
    assert!(result.status.success(), "{}", stderr(&result));
    let printed = stdout(&result);
    assert!(printed.contains(" 600 training and "), "{printed}");
    let metrics = run_dir::read_metrics(&out).unwrap();
    assert_eq!(metrics.len(), 2);
    assert!(
        metrics.iter().all(|m| m.validation_accuracy.is_none()),
        "{metrics:?}"
    );
    // holding out every training image is refused before a run folder is made
    let too_many = tmp.path().join("too-many");
    let result = run_bin(CNN, &args(&data, Some(&too_many), &["--validation", "600"]));
    assert_eq!(result.status.code(), Some(1));
    let err = stderr(&result);
    assert!(
        err.contains("holding out 600 images for validation (--validation)")
            && err.contains("has 600 training images"),
        "{err}"
    );
    assert!(!too_many.exists());
}

#[test]
fn the_same_seed_gives_the_same_numbers_on_the_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    write_synthetic(&data_dir);
    let run = |name: &str, seed: &str| {
        let out = tmp.path().join(name);
        let extra = ["--epochs", "2", "--seed", seed, "--threads", "2"];
        let result = run_bin(DENSE, &args(&data_dir, Some(&out), &extra));
        assert!(result.status.success(), "{}", stderr(&result));
        metrics_without_seconds(&out)
    };
    let a = run("a", "7");
    assert_eq!(a, run("b", "7"));
    assert_ne!(a, run("c", "8"));
}

#[test]
fn out_of_range_flags_exit_2_with_one_message() {
    for args in [
        &["--epochs", "0"][..],
        &["--batch-size", "0"],
        &["--lr", "0"],
        &["--device", "tpu"],
        &["--no-such-flag"],
    ] {
        usage_error(DENSE, args);
    }
}

/// Runs `bin` with `args`, checks that it exits with status 2 and an "error:" line, as
/// clap does for bad flags, and returns its stderr.
fn usage_error(bin: &str, args: &[&str]) -> String {
    let result = run_bin(bin, args);
    let err = stderr(&result);
    assert_eq!(result.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.starts_with("error:"), "{args:?}: {err}");
    err
}

#[test]
fn convs_not_matching_the_blocks_of_filters_are_refused_naming_both_flags() {
    for (args, filters) in [
        (
            &["--filters", "32,64", "--convs", "1,2,2"][..],
            "--filters 32,64",
        ),
        (&["--convs", "1,2,2"], "--filters 32,64 (the default)"),
        (
            &["--filters", "8,16,32", "--convs", "1,2"],
            "--filters 8,16,32",
        ),
    ] {
        let err = usage_error(CNN, args);
        assert!(
            err.contains("--convs 1,2") && err.contains(filters),
            "{err}"
        );
    }
}

#[test]
fn flags_that_make_no_recipe_together_are_a_usage_error_of_either_trainer() {
    let err = usage_error(DENSE, &["--weight-decay", "0.1"]);
    assert!(
        err.contains("plain Adam") && err.contains("Usage: train_dense"),
        "{err}"
    );
    let err = usage_error(CNN, &["--cutout", "4"]);
    assert!(
        err.contains("does not augment") && err.contains("Usage: train_cnn"),
        "{err}"
    );
}

#[test]
fn help_explains_every_flag() {
    let result = run_bin(CNN, &["--help"]);
    let help = stdout(&result);
    for flag in [
        "--device",
        "--epochs",
        "--batch-size",
        "--lr",
        "--seed",
        "--threads",
        "--data-dir",
        "--out",
        "--quiet",
        "--filters",
        "--hidden",
        "--convs",
        "--recipe",
        "--validation",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    // the dense trainer offers its own settings, not the strong recipe's it has no use for
    let dense = stdout(&run_bin(DENSE, &["--help"]));
    for flag in [
        "--hidden",
        "--ema",
        "--validation",
        "--data-dir",
        "--image-size",
    ] {
        assert!(dense.contains(flag), "{flag} missing from --help:\n{dense}");
    }
    for flag in [
        "--weight-decay",
        "--alternate-flips",
        "--cutout",
        "--filters",
    ] {
        assert!(
            !dense.contains(flag),
            "{flag} in train_dense --help:\n{dense}"
        );
    }
}

#[test]
fn cuda_on_a_machine_without_it_is_a_clear_error_before_any_work() {
    if tch::Cuda::is_available() {
        common::skip("this machine has CUDA, so --device cuda is not an error here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    for device in ["cuda", "cuda:3"] {
        let result = run_bin(
            CNN,
            &[
                "--device",
                device,
                "--data-dir",
                "/nonexistent",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(result.status.code(), Some(1));
        let err = stderr(&result);
        assert!(err.contains(": CUDA is not available"), "{device}: {err}");
        assert!(
            err.contains("setup_libtorch.sh --device cuda"),
            "{device}: {err}"
        );
        assert!(
            !out.exists(),
            "a run folder was made before the device check"
        );
    }
}

#[test]
fn cuda_graph_is_refused_off_cuda_and_with_a_schedule_that_moves_beta1() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let refused = |bin: &str, extra: &[&str]| {
        let mut argv = vec![
            "--cuda-graph",
            "--data-dir",
            "/nonexistent",
            "--out",
            out.to_str().unwrap(),
        ];
        argv.extend_from_slice(extra);
        let result = run_bin(bin, &argv);
        assert_eq!(result.status.code(), Some(1), "{}", stderr(&result));
        assert!(!out.exists(), "a run folder was made before the check");
        stderr(&result)
    };
    let err = refused(CNN, &["--recipe", "strong"]);
    assert!(
        err.contains("--cuda-graph") && err.contains("one-cycle schedule moves Adam's β₁"),
        "{err}"
    );
    let err = refused(DENSE, &["--device", "cpu"]);
    assert!(
        err.contains("--cuda-graph needs --device cuda") && err.contains("this run is on cpu"),
        "{err}"
    );
}

#[test]
fn a_missing_data_folder_is_named_with_the_ways_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let result = run_bin(DENSE, &args(&empty, None, &[]));
    assert_eq!(result.status.code(), Some(1));
    let err = stderr(&result);
    assert!(err.contains(empty.to_str().unwrap()), "{err}");
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
    assert!(
        err.contains("apt-get install dataset-fashion-mnist"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
