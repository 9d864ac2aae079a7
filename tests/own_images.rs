//! Training on your own images: folders of class folders, in grey or colour, at any size,
//! through every binary, as a user of the Keras tutorial meets them (unreadable files, an
//! empty class, images of several sizes and modes); and the real Fashion-MNIST written
//! out as such folders. Every case runs the real binaries.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::images::{hue_image, square_image, write_class_images, Draws};
use common::{metrics_without_seconds, run_bin, stderr, stdout, Running};
use fashion_tch::data::{self, folders, Input};
use fashion_tch::run_dir;

const CNN: &str = env!("CARGO_BIN_EXE_train_cnn");
const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");
const PREDICT: &str = env!("CARGO_BIN_EXE_predict");
const EXPORT: &str = env!("CARGO_BIN_EXE_export");

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A folder `dir` with `train/` and `test/` of the classes `classes`.
fn train_and_test(
    dir: &Path,
    classes: &[&str],
    (train, test): (usize, usize),
    image: impl Fn(usize, &mut Draws) -> image::DynamicImage + Copy,
) {
    write_class_images(&dir.join("train"), classes, train, 1, image);
    write_class_images(&dir.join("test"), classes, test, 2, image);
}

/// Trains `bin` on the folder `data` into `out` with `extra`; returns the last test
/// accuracy and what it printed.
fn train(bin: &str, data: &Path, out: &Path, extra: &[&str]) -> (f64, String) {
    let mut args = vec!["--data-dir", s(data), "--device", "cpu", "--out", s(out)];
    args.extend_from_slice(extra);
    let result = run_bin(bin, &args);
    assert!(result.status.success(), "{args:?}: {}", stderr(&result));
    let last = run_dir::read_metrics(out).unwrap().pop().unwrap();
    (last.test_accuracy, stdout(&result))
}

/// A small CNN, for a quick run.
const SMALL: [&str; 4] = ["--filters", "8,16", "--hidden", "32"];

#[test]
fn colour_is_used_where_the_classes_differ_only_by_hue() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hues");
    train_and_test(&data, &["blue", "green", "red"], (60, 30), hue_image(16));
    let mut extra = SMALL.to_vec();
    extra.extend(["--epochs", "8"]);
    let (colour, printed) = train(CNN, &data, &tmp.path().join("colour"), &extra);
    assert!(printed.contains("16×16 colour"), "{printed}");
    assert!(colour >= 0.99, "in colour: {colour}");
    // the same images made grey: every class has one luma, and the noise is alike
    extra.extend(["--channels", "1"]);
    let (grey, _) = train(CNN, &data, &tmp.path().join("grey"), &extra);
    eprintln!("test accuracy in colour {colour:.4}, in grey {grey:.4}");
    assert!(grey < 0.6, "in grey, near the chance of 1/3: {grey}");
    let config = run_dir::read_config(&tmp.path().join("colour")).unwrap();
    assert_eq!(
        config.input,
        Input {
            size: 16,
            channels: 3,
            classes: vec!["blue".into(), "green".into(), "red".into()],
        }
    );
}

/// Trains `case`'s flags on `data` into `out` start to end; returns how long it took.
fn uninterrupted(data: &Path, out: &Path, extra: &[&str]) -> Duration {
    let mut args = vec!["--data-dir", s(data), "--device", "cpu", "--out", s(out)];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let result = run_bin(CNN, &args);
    assert!(result.status.success(), "{}", stderr(&result));
    started.elapsed()
}

/// Trains as `uninterrupted` did into `out`, stopped with Ctrl-C part of the way (a
/// quarter of `took`, or earlier where the run ends first).
fn stop_with_ctrl_c(data: &Path, out: &Path, extra: &[&str], took: Duration) {
    let mut args = vec!["--data-dir", s(data), "--device", "cpu", "--out", s(out)];
    args.extend_from_slice(extra);
    let mut fraction = 0.25;
    loop {
        let _ = fs::remove_dir_all(out);
        let mut run = Running::spawn(CNN, &args);
        assert!(run.wait_for("training", 1), "no start");
        std::thread::sleep(took.mul_f64(fraction));
        run.signal("-INT");
        match run.finish() {
            (Some(130), ..) => return,
            (Some(0), ..) if fraction > 0.01 => fraction /= 2.0,
            (code, out, err) => panic!("exit {code:?}: {err}\n{out}"),
        }
    }
}

#[test]
fn a_size_not_divisible_by_4_trains_resumes_exactly_exports_and_predicts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("squares");
    let classes = ["bottom-left", "bottom-right", "top-left", "top-right"];
    train_and_test(&data, &classes, (150, 20), square_image(30));
    let extra = [
        SMALL.as_slice(),
        &["--epochs", "3", "--seed", "5", "--threads", "2", "--quiet"],
    ]
    .concat();
    let whole = tmp.path().join("whole");
    let took = uninterrupted(&data, &whole, &extra);
    let accuracy = run_dir::read_metrics(&whole).unwrap().pop().unwrap();
    assert!(accuracy.test_accuracy >= 0.9, "{accuracy:?}");
    // Ctrl-C part of the way, then --resume: the very same run
    let stopped = tmp.path().join("stopped");
    stop_with_ctrl_c(&data, &stopped, &extra, took);
    let resumed = run_bin(CNN, &["--resume", s(&stopped), "--quiet"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(
        metrics_without_seconds(&whole),
        metrics_without_seconds(&stopped)
    );
    let weights = |run: &Path| fs::read(run.join("model.safetensors")).unwrap();
    assert!(
        weights(&whole) == weights(&stopped),
        "model.safetensors differs"
    );

    // TorchScript on [b, 1, 30, 30], as libtorch's loader (torch.jit.load's) reads it
    let module = tmp.path().join("squares.pt");
    let exported = run_bin(EXPORT, &[s(&whole), "--out", s(&module)]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert!(
        stdout(&exported).contains("[batch, 1, 30, 30]"),
        "{}",
        stdout(&exported)
    );
    let loaded = tch::CModule::load(&module).unwrap();
    let logits = loaded
        .forward_ts(&[tch::Tensor::zeros([3, 1, 30, 30], tch::kind::FLOAT_CPU)])
        .unwrap();
    assert_eq!(logits.size(), [3, 4]);
    python_loads(&module, [2, 1, 30, 30], 4);

    // predict names the class by its folder, from a photo of another size
    let photo = tmp.path().join("photo.png");
    let big = square_image(90)(3, &mut Draws(9));
    big.save(&photo).unwrap();
    let predicted = run_bin(PREDICT, &[s(&whole), s(&photo)]);
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    assert!(
        stdout(&predicted).contains(": top-right "),
        "{}",
        stdout(&predicted)
    );
}

/// Runs `module` with Python's torch.jit.load on zeros of `shape`, where a PyTorch is
/// installed (.bench/venv, which scripts/bench.sh makes, or python3's own), and checks
/// that it gives `classes` logits an image.
fn python_loads(module: &Path, shape: [i64; 4], classes: i64) {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".bench/venv/bin/python3");
    let python = [venv.to_str().unwrap(), "python3"].into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        eprintln!("NOT CHECKED WITH PYTHON: no PyTorch in .bench/venv or python3 (libtorch's own loader above is the check)");
        return;
    };
    let shape = shape.map(|n| n.to_string()).join(", ");
    let script = format!(
        "import sys, torch\nm = torch.jit.load(sys.argv[1])\nprint(tuple(m(torch.zeros({shape})).shape))"
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script, s(module)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let batch = shape.split(',').next().unwrap();
    assert_eq!(stdout(&out).trim(), format!("({batch}, {classes})"));
}

#[test]
fn colour_at_64_pixels_trains_exports_and_predicts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hues64");
    // the class folders alone: a fifth of each held out for testing
    write_class_images(&data, &["cyan", "magenta", "yellow"], 40, 3, hue_image(64));
    let run = tmp.path().join("run");
    let mut extra = SMALL.to_vec();
    extra.extend(["--epochs", "4", "--test-share", "0.25"]);
    let (accuracy, printed) = train(CNN, &data, &run, &extra);
    assert!(printed.contains("64×64 colour"), "{printed}");
    assert!(
        printed.contains("90 training and 30 test images"),
        "{printed}"
    );
    assert!(accuracy >= 0.9, "{accuracy}");
    let evaluated = run_bin(EVALUATE, &[s(&run), "--json"]);
    assert!(evaluated.status.success(), "{}", stderr(&evaluated));
    let report: serde_json::Value = serde_json::from_slice(&evaluated.stdout).unwrap();
    let classes: Vec<(&str, u64)> = (report["per_class"].as_array().unwrap().iter())
        .map(|c| (c["class"].as_str().unwrap(), c["support"].as_u64().unwrap()))
        .collect();
    assert_eq!(classes, [("cyan", 10), ("magenta", 10), ("yellow", 10)]);
    let module = tmp.path().join("hues.pt");
    let exported = run_bin(EXPORT, &[s(&run), "--out", s(&module)]);
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert!(
        stdout(&exported).contains("[batch, 3, 64, 64]"),
        "{}",
        stdout(&exported)
    );
    python_loads(&module, [2, 3, 64, 64], 3);
    let photo = tmp.path().join("yellow.jpg");
    hue_image(100)(2, &mut Draws(4)).save(&photo).unwrap();
    let predicted = run_bin(PREDICT, &[s(&run), s(&photo), "--json"]);
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    let records: serde_json::Value = serde_json::from_slice(&predicted.stdout).unwrap();
    assert_eq!(records[0]["top"][0]["class"], "yellow", "{records}");
}

#[test]
fn unreadable_images_stop_the_run_until_told_to_skip_them_and_nothing_is_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("squares");
    train_and_test(&data, &["a", "b", "c", "d"], (30, 8), square_image(16));
    let broken: Vec<PathBuf> = (0..12)
        .map(|i| data.join("train/b").join(format!("broken-{i:02}.jpg")))
        .collect();
    for path in &broken {
        fs::write(path, b"not a JPEG at all").unwrap();
    }
    let args = ["--data-dir", s(&data), "--device", "cpu", "--epochs", "1"];
    let refused = run_bin(
        DENSE,
        &[&args[..], &["--out", s(&tmp.path().join("no"))]].concat(),
    );
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains("12 of the 164 images") && err.contains("--skip-unreadable"),
        "{err}"
    );
    assert!(
        err.contains("broken-00.jpg") && err.contains("broken-09.jpg"),
        "{err}"
    );
    assert!(!err.contains("broken-10.jpg"), "the first ten only: {err}");
    let run = tmp.path().join("run");
    let skipped = run_bin(
        DENSE,
        &[&args[..], &["--out", s(&run), "--skip-unreadable"]].concat(),
    );
    assert!(skipped.status.success(), "{}", stderr(&skipped));
    assert!(
        stdout(&skipped).contains("leaving out 12"),
        "{}",
        stdout(&skipped)
    );
    let config = run_dir::read_config(&run).unwrap();
    assert_eq!(config.folders.unwrap().left_out, 12);
    assert!(broken.iter().all(|p| p.exists()), "nothing is deleted");
    // a resume reads the folder as the run did
    let resumed = run_bin(DENSE, &["--resume", s(&run), "--epochs", "1"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
}

#[test]
fn an_empty_class_one_class_and_no_class_folders_are_errors_naming_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = |data: &Path| -> String {
        let result = run_bin(DENSE, &["--data-dir", s(data), "--device", "cpu"]);
        assert_eq!(result.status.code(), Some(1), "{}", stdout(&result));
        stderr(&result)
    };
    let empty = tmp.path().join("empty-class");
    write_class_images(&empty, &["a", "b"], 5, 1, square_image(8));
    fs::create_dir_all(empty.join("c/.hidden")).unwrap();
    fs::write(empty.join("c/notes.txt"), "no images here").unwrap();
    let err = refused(&empty);
    assert!(
        err.contains(s(&empty.join("c"))) && err.contains("no PNG or JPEG"),
        "{err}"
    );
    let one = tmp.path().join("one-class");
    write_class_images(&one, &["only"], 5, 1, square_image(8));
    let err = refused(&one);
    assert!(err.contains("one class folder only (only)"), "{err}");
    let none = tmp.path().join("no-classes");
    fs::create_dir_all(none.join(".git")).unwrap();
    fs::write(none.join("x.png"), b"").unwrap();
    let err = refused(&none);
    assert!(
        err.contains(s(&none)) && err.contains("class folders"),
        "{err}"
    );
}

#[test]
fn images_of_several_sizes_and_modes_train_once_given_a_size() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mixed");
    write_class_images(&data, &["a", "b"], 12, 1, square_image(20));
    // grey and colour, PNG and JPEG, wide and tall
    hue_image(24)(0, &mut Draws(5))
        .save(data.join("a/colour.png"))
        .unwrap();
    let wide = image::DynamicImage::ImageLuma8(image::GrayImage::new(40, 10));
    wide.save(data.join("b/wide.jpg")).unwrap();
    let first = run_bin(DENSE, &["--data-dir", s(&data), "--device", "cpu"]);
    assert_eq!(first.status.code(), Some(1));
    let err = stderr(&first);
    assert!(
        err.contains("different sizes") && err.contains("--image-size"),
        "{err}"
    );
    let run = tmp.path().join("run");
    let (_, printed) = train(DENSE, &data, &run, &["--image-size", "20", "--epochs", "1"]);
    // one image in colour makes the input colour
    assert!(printed.contains("20×20 colour"), "{printed}");
    let config = run_dir::read_config(&run).unwrap();
    assert_eq!((config.input.size, config.input.channels), (20, 3));
    assert_eq!(
        config.trainable_parameters,
        (3 * 20 * 20 + 1) * 128 + 129 * 2
    );
}

#[test]
fn fashion_mnist_written_as_folders_trains_to_its_accuracy_and_is_named_by_them() {
    let Some(real) = data::default_dirs()
        .into_iter()
        .find(|d| data::has_dataset(d))
    else {
        common::skip("the real Fashion-MNIST is not installed (scripts/setup_libtorch.sh does it)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fashion = data::load_dir(&real, tch::Device::Cpu).unwrap();
    let input = Input {
        classes: (fashion.input.classes.iter().enumerate())
            .map(|(i, c)| format!("{i} {}", c.replace('/', "-")))
            .collect(),
        ..fashion.input
    };
    let dir = tmp.path().join("fashion");
    folders::write(&fashion.train, &input, &dir.join("train")).unwrap();
    folders::write(&fashion.test, &input, &dir.join("test")).unwrap();
    let run = tmp.path().join("run");
    let (accuracy, printed) = train(CNN, &dir, &run, &["--epochs", "1", "--quiet"]);
    assert!(
        printed.contains("read 70000 images of 10 classes (28×28 grey)"),
        "{printed}"
    );
    assert!(accuracy >= 0.88, "one epoch: {accuracy}");
    let evaluated = run_bin(EVALUATE, &[s(&run)]);
    assert!(evaluated.status.success(), "{}", stderr(&evaluated));
    assert!(
        stdout(&evaluated).contains("9 Ankle boot"),
        "{}",
        stdout(&evaluated)
    );
    let shoe = dir.join("test/9 Ankle boot");
    let first = fs::read_dir(&shoe).unwrap().next().unwrap().unwrap().path();
    let predicted = run_bin(PREDICT, &[s(&run), s(&first)]);
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    assert!(
        stdout(&predicted).contains(": 9 Ankle boot "),
        "{}",
        stdout(&predicted)
    );
}

#[test]
fn a_cutout_may_be_as_large_as_the_images_and_no_larger() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("squares");
    write_class_images(&data, &["a", "b", "c", "d"], 8, 1, square_image(40));
    let strong = ["--recipe", "strong", "--validation", "0", "--epochs", "1"];
    let extra = [&strong[..], &SMALL[..], &["--cutout", "32"]].concat();
    // a cutout above Fashion-MNIST's 28 pixels trains on 40×40 images, and is recorded
    let run = tmp.path().join("run");
    train(CNN, &data, &run, &extra);
    let config = run_dir::read_config(&run).unwrap();
    assert_eq!((config.recipe.cutout, config.input.size), (32, 40));
    let too_large = [
        &strong[..],
        &SMALL[..],
        &["--cutout", "20", "--image-size", "16"],
    ]
    .concat();
    let mut args = vec!["--data-dir", s(&data), "--device", "cpu"];
    args.extend_from_slice(&too_large);
    let result = run_bin(CNN, &args);
    assert_eq!(result.status.code(), Some(1), "{}", stdout(&result));
    let err = stderr(&result);
    assert!(
        err.contains("--cutout 20") && err.contains("16 pixels"),
        "{err}"
    );
}
