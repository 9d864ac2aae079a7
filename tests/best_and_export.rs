//! Using what was trained: the best epoch kept, early stopping, the network exported to
//! TorchScript, and predict on a folder of images.

mod common;

use std::path::Path;

use common::{args, run_bin, stderr, stdout, write_synthetic, write_synthetic_sized};
use fashion_tch::models::ModelSpec;
use fashion_tch::run_dir::{self, Weights};
use fashion_tch::{data, score};
use tch::{CModule, Device};

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const CNN: &str = env!("CARGO_BIN_EXE_train_cnn");
const EXPORT: &str = env!("CARGO_BIN_EXE_export");
const PREDICT: &str = env!("CARGO_BIN_EXE_predict");

fn train(bin: &str, data: &Path, run: &Path, extra: &[&str]) -> String {
    let result = run_bin(bin, &args(data, Some(run), extra));
    assert!(result.status.success(), "{}", stderr(&result));
    stdout(&result)
}

#[test]
fn best_safetensors_scores_the_validation_accuracy_recorded_for_its_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    let flags = ["--validation", "100", "--epochs", "4"];
    train(DENSE, &data, &run, &flags);
    let config = run_dir::read_config(&run).unwrap();
    let best = config
        .best_epoch
        .expect("a run with a validation split has a best epoch");
    let metrics = run_dir::read_metrics(&run).unwrap();
    let recorded = metrics[best as usize - 1].validation_accuracy.unwrap();
    assert!(
        metrics
            .iter()
            .all(|m| m.validation_accuracy <= Some(recorded)),
        "{metrics:?}"
    );
    // the held-out images are the last 100 of the training set
    let dataset = data::load_dir(&data, Device::Cpu).unwrap();
    let (_, validation) = dataset.train.split_off_last(100);
    let loaded = run_dir::load_run(&run, Weights::Best, Device::Cpu).unwrap();
    assert!(loaded.weights.ends_with("best.safetensors"));
    let scored = score::score(&loaded.net, &validation).accuracy;
    assert_eq!(scored, recorded, "best.safetensors is not epoch {best}'s");

    // without a validation split there is no best epoch, and no flag that pretends one
    let plain = tmp.path().join("plain");
    train(DENSE, &data, &plain, &["--epochs", "1"]);
    assert!(!plain.join("best.safetensors").exists());
    assert_eq!(run_dir::read_config(&plain).unwrap().best_epoch, None);
    let out = run_bin(DENSE, &args(&data, None, &["--keep-best"]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "--keep-best is gone: the best is always kept"
    );
}

#[test]
fn early_stop_ends_a_run_whose_validation_accuracy_stalls_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    // a learning rate so small that nothing changes: the first epoch stays the best
    let flags = [
        "--validation",
        "100",
        "--early-stop",
        "2",
        "--lr",
        "1e-12",
        "--epochs",
        "10",
    ];
    let stdout = train(DENSE, &data, &run, &flags);
    assert!(
        stdout.contains(
            "stopping early after epoch 3: validation accuracy has not improved for 2 epochs"
        ),
        "{stdout}"
    );
    assert_eq!(run_dir::read_metrics(&run).unwrap().len(), 3);
    let config = run_dir::read_config(&run).unwrap();
    assert_eq!(
        (config.stopped_early, config.best_epoch),
        (Some(3), Some(1))
    );
    // a resume knows it stopped, and goes on only when asked for more epochs
    let resume = |extra: &[&str]| {
        let mut a = args(&data, None, &["--resume", run.to_str().unwrap()]);
        a.extend_from_slice(extra);
        run_bin(DENSE, &a)
    };
    let refused = resume(&[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("stopped early after epoch 3"),
        "{}",
        stderr(&refused)
    );
    assert!(resume(&["--epochs", "1"]).status.success());
    assert_eq!(run_dir::read_metrics(&run).unwrap().len(), 4);
    // it needs images held out
    let none = run_bin(
        DENSE,
        &args(&data, Some(&tmp.path().join("x")), &["--early-stop", "2"]),
    );
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("give --validation N"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn export_writes_torchscript_that_gives_the_networks_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    // batch norm and dropout: the module must be traced in evaluation mode
    let flags = [
        "--recipe",
        "strong",
        "--validation",
        "60",
        "--filters",
        "4,8",
        "--batch-size",
        "32",
        "--epochs",
        "2",
    ];
    train(CNN, &data, &run, &flags);
    let result = run_bin(EXPORT, &[run.to_str().unwrap()]);
    assert!(result.status.success(), "{}", stderr(&result));
    let module = run.join("model.pt");
    let stdout = stdout(&result);
    assert!(
        stdout.contains("[batch, 1, 28, 28]") && stdout.contains("9 Ankle boot"),
        "{stdout}"
    );

    let test = data::load_dir(&data, Device::Cpu).unwrap().test;
    let images = test.images(0, 100);
    let ours = run_dir::load_run(&run, Weights::Best, Device::Cpu).unwrap();
    let expected = score::logits(&ours.net, &images);
    let loaded = CModule::load(&module).unwrap();
    let got = tch::no_grad(|| loaded.forward_ts(&[&images]).unwrap());
    let diff = (&got - &expected).abs().max().double_value(&[]);
    assert!(diff <= 1e-5, "TorchScript logits differ by {diff}");
    python_agrees(&module, &images, &expected, tmp.path());
}

/// Loads `module` with Python's torch.jit.load, where a PyTorch is installed
/// (.bench/venv, which scripts/bench.sh makes, or python3's own), and checks its logits.
fn python_agrees(module: &Path, images: &tch::Tensor, expected: &tch::Tensor, tmp: &Path) {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".bench/venv/bin/python3");
    let python = [venv.to_str().unwrap(), "python3"].into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        eprintln!("NOT CHECKED WITH PYTHON: no PyTorch in .bench/venv or python3 (the Rust load above is the check)");
        return;
    };
    let raw = |t: &tch::Tensor, name: &str| {
        let path = tmp.join(name);
        let values = Vec::<f32>::try_from(t.contiguous().view([-1])).unwrap();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let (x, y) = (raw(images, "x.f32"), raw(expected, "y.f32"));
    let script = "import sys, torch\n\
        m = torch.jit.load(sys.argv[1])\n\
        x = torch.frombuffer(bytearray(open(sys.argv[2], 'rb').read()), dtype=torch.float32).view(-1, 1, 28, 28)\n\
        y = torch.frombuffer(bytearray(open(sys.argv[3], 'rb').read()), dtype=torch.float32).view(-1, 10)\n\
        print((m(x) - y).abs().max().item())";
    let out = std::process::Command::new(python)
        .args([
            "-c",
            script,
            module.to_str().unwrap(),
            x.to_str().unwrap(),
            y.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let diff: f64 = stdout(&out).trim().parse().unwrap();
    assert!(
        diff <= 1e-5,
        "Python's torch.jit.load gives logits {diff} away"
    );
}

#[test]
fn predict_classifies_a_folder_of_1000_pngs_and_names_a_file_that_is_not_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic_sized(&data, 1000);
    let folder = tmp.path().join("images");
    std::fs::create_dir(&folder).unwrap();
    let test = data::load_dir(&data, Device::Cpu).unwrap().train;
    for i in 0..1000 {
        let pixels = Vec::<u8>::try_from(test.pixels.get(i).view([-1])).unwrap();
        image::GrayImage::from_raw(28, 28, pixels)
            .unwrap()
            .save(folder.join(format!("{i:04}.png")))
            .unwrap();
    }
    std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
    let run = common::fake_run(&tmp.path().join("run"), ModelSpec::Dense { hidden: 8 }, 1);
    let result = run_bin(
        PREDICT,
        &[run.to_str().unwrap(), folder.to_str().unwrap(), "--json"],
    );
    assert_eq!(
        result.status.code(),
        Some(1),
        "one file could not be classified"
    );
    let err = stderr(&result);
    assert!(
        err.contains("1 of 1001 files could not be classified"),
        "{err}"
    );
    let records: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 1001);
    let classified: Vec<_> = records.iter().filter(|r| r["top"].is_array()).collect();
    assert_eq!(classified.len(), 1000);
    assert!(classified
        .iter()
        .all(|r| r["top"].as_array().unwrap().len() == 3));
    let bad: Vec<_> = records.iter().filter(|r| r["error"].is_string()).collect();
    assert_eq!(bad.len(), 1);
    assert!(bad[0]["file"].as_str().unwrap().ends_with("notes.txt"));
    assert!(
        bad[0]["error"].as_str().unwrap().contains("notes.txt"),
        "{}",
        bad[0]
    );
}
