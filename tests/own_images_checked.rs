//! Your own images as a user's folders really are: two classes, a folder that changed
//! after training (a class renamed, images added), a run read from another folder (and
//! with FASHION_MNIST_DIR set), and folders laid out or named in ways the loader must
//! refuse by name or read rightly (one image in a class, train/ without test/, a pipe
//! named .png, a link that loops, a PNG named .jpg, a class left empty by
//! --skip-unreadable). Every case runs the binaries.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::images::{square_image, write_class_images};
use common::{run_bin, run_within, stderr, stdout};
use fashion_tch::run_dir;

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");
const PREDICT: &str = env!("CARGO_BIN_EXE_predict");
const SWEEP: &str = env!("CARGO_BIN_EXE_sweep");

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Trains the dense net for an epoch on `data` into `out`, with `extra`; asserts it did.
fn train(data: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--data-dir", s(data), "--out", s(out), "--epochs", "1"];
    args.extend_from_slice(&["--hidden", "16", "--device", "cpu"]);
    args.extend_from_slice(extra);
    let result = run_bin(DENSE, &args);
    assert!(result.status.success(), "{args:?}: {}", stderr(&result));
    stdout(&result)
}

/// What `bin` with `args` says on failing with status 1.
fn refused(bin: &str, args: &[&str]) -> String {
    let result = run_bin(bin, args);
    assert_eq!(
        result.status.code(),
        Some(1),
        "{args:?}: {}",
        stdout(&result)
    );
    stderr(&result)
}

#[test]
fn two_classes_are_predicted_and_their_test_images_classified() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("pets"), tmp.path().join("run"));
    write_class_images(&data, &["cat", "dog"], 10, 1, square_image(12));
    train(&data, &run, &[]);
    let photo = data.join("cat/000.png");
    let result = run_bin(PREDICT, &[s(&run), s(&photo), "--json"]);
    assert!(result.status.success(), "{}", stderr(&result));
    let json: serde_json::Value = serde_json::from_str(&stdout(&result)).unwrap();
    let top = json[0]["top"].as_array().unwrap();
    let named: Vec<&str> = top.iter().map(|t| t["class"].as_str().unwrap()).collect();
    assert_eq!(named.len(), 2, "{json}");
    assert!(named.contains(&"cat") && named.contains(&"dog"), "{json}");
    // a folder, with a file of the Finder's among its images
    fs::write(data.join("dog/.DS_Store"), b"\0\0\0\x01Bud1").unwrap();
    let result = run_bin(PREDICT, &[s(&run), s(&data.join("dog"))]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert_eq!(
        stdout(&result).matches("dog/").count(),
        10,
        "{}",
        stdout(&result)
    );
    let result = run_bin(PREDICT, &[s(&run), "--test-index", "0..4"]);
    assert!(result.status.success(), "{}", stderr(&result));
    assert!(
        stdout(&result).contains("(labelled "),
        "{}",
        stdout(&result)
    );
}

#[test]
fn a_run_reads_its_own_folder_from_anywhere_even_with_fashion_mnist_dir_set() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    write_class_images(&data, &["a", "b", "c"], 10, 1, square_image(12));
    // trained with a relative --data-dir, evaluated from another folder
    let result = std::process::Command::new(DENSE)
        .args([
            "--data-dir",
            "shapes",
            "--out",
            "run",
            "--epochs",
            "1",
            "--device",
            "cpu",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", stderr(&result));
    let run = tmp.path().join("run");
    let elsewhere = tempfile::tempdir().unwrap();
    // FASHION_MNIST_DIR names the trainers' data, not a saved run's
    common::write_synthetic(elsewhere.path());
    let result = std::process::Command::new(EVALUATE)
        .arg(&run)
        .env("FASHION_MNIST_DIR", elsewhere.path())
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(result.status.success(), "{}", stderr(&result));
    // and says which images it scored, on the terminal and on the page
    let printed = stdout(&result);
    let scored = format!("on the test images of {}", data.display());
    assert!(printed.contains(&scored), "{printed}");
    let page = fs::read_to_string(run.join("report.html")).unwrap();
    assert!(
        page.contains(&format!("<code>{}</code>", data.display())),
        "{page}"
    );
}

#[test]
fn a_run_refuses_its_own_folder_once_changed_and_data_of_other_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("shapes"), tmp.path().join("run"));
    write_class_images(&data, &["a", "b", "c"], 10, 1, square_image(12));
    train(&data, &run, &[]);
    // one image more: the test images would be drawn anew, some of them trained on
    square_image(12)(0, &mut common::images::Draws(9))
        .save(data.join("a/new.png"))
        .unwrap();
    let err = refused(EVALUATE, &[s(&run)]);
    assert!(
        err.contains("not the ones the run was trained on") && err.contains(s(&data)),
        "{err}"
    );
    let err = refused(DENSE, &["--resume", s(&run), "--epochs", "1"]);
    assert!(err.contains("not the ones the run was trained on"), "{err}");
    fs::remove_file(data.join("a/new.png")).unwrap();

    // a class renamed: both lists named
    fs::rename(data.join("b"), data.join("bee")).unwrap();
    let err = refused(EVALUATE, &[s(&run)]);
    assert!(
        err.contains("a, b, c") && err.contains("a, bee, c"),
        "{err}"
    );
    let err = refused(PREDICT, &[s(&run), "--test-index", "0"]);
    assert!(
        err.contains("a, b, c") && err.contains("a, bee, c"),
        "{err}"
    );

    // another folder of other classes, given by --data-dir
    let other = tmp.path().join("other");
    write_class_images(&other, &["x", "y"], 5, 2, square_image(12));
    let err = refused(EVALUATE, &[s(&run), "--data-dir", s(&other)]);
    assert!(err.contains("x, y") && err.contains("--data-dir"), "{err}");
}

#[test]
fn a_sweep_or_a_resume_with_another_test_share_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    write_class_images(&data, &["a", "b"], 10, 1, square_image(12));
    let out = tmp.path().join("sweep");
    let sweep = |share: &str| {
        let args = [
            "--model",
            "dense",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--data-dir",
            s(&data),
            "--out",
            s(&out),
            "--device",
            "cpu",
            "--test-share",
            share,
        ];
        run_bin(SWEEP, &args)
    };
    assert!(sweep("0.2").status.success());
    let again = sweep("0.5");
    assert_eq!(again.status.code(), Some(1), "{}", stdout(&again));
    let err = stderr(&again);
    assert!(
        err.contains("--test-share 0.2, not --test-share 0.5"),
        "{err}"
    );

    let run = tmp.path().join("run");
    train(&data, &run, &[]);
    let err = refused(
        DENSE,
        &["--resume", s(&run), "--epochs", "1", "--test-share", "0.5"],
    );
    assert!(
        err.contains("--test-share 0.2, not --test-share 0.5"),
        "{err}"
    );
    let zero = run_bin(DENSE, &["--data-dir", s(&data), "--test-share", "0"]);
    assert_eq!(zero.status.code(), Some(2), "{}", stdout(&zero));
    assert!(stderr(&zero).contains("--test-share"), "{}", stderr(&zero));
}

#[test]
fn folders_laid_out_wrongly_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let refused_dir = |data: &Path| refused(DENSE, &["--data-dir", s(data), "--device", "cpu"]);
    // a class of one image cannot be split into training and test images
    let one = tmp.path().join("one-image");
    write_class_images(&one, &["many"], 5, 1, square_image(12));
    write_class_images(&one, &["solo"], 1, 1, square_image(12));
    let err = refused_dir(&one);
    assert!(
        err.contains(s(&one.join("solo"))) && err.contains("one image"),
        "{err}"
    );
    // train/ beside val/, not test/
    let val = tmp.path().join("val-layout");
    write_class_images(&val.join("train"), &["a", "b"], 3, 1, square_image(12));
    write_class_images(&val.join("val"), &["a", "b"], 3, 1, square_image(12));
    let err = refused_dir(&val);
    assert!(err.contains("has train/ but no test/"), "{err}");
    // test/ lacking a class
    let lacking = tmp.path().join("test-lacks");
    write_class_images(&lacking.join("train"), &["a", "b"], 3, 1, square_image(12));
    write_class_images(&lacking.join("test"), &["a"], 3, 1, square_image(12));
    let err = refused_dir(&lacking);
    assert!(
        err.contains("the classes a, b") && err.contains("the classes a;"),
        "{err}"
    );
    // a share to hold out, where train/ and test/ (or the IDX files) make the split
    let split = tmp.path().join("split");
    write_class_images(&split.join("train"), &["a", "b"], 3, 1, square_image(12));
    write_class_images(&split.join("test"), &["a", "b"], 3, 2, square_image(12));
    let idx = tmp.path().join("idx");
    common::write_synthetic(&idx);
    for data in [&split, &idx] {
        let err = refused(DENSE, &["--data-dir", s(data), "--test-share", "0.3"]);
        assert!(
            err.contains("--test-share 0.3: ") && err.contains(s(data)),
            "{err}"
        );
    }
    // a data folder that is not there
    let err = refused_dir(&tmp.path().join("nowhere"));
    assert!(err.contains("does not exist"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_pipe_named_png_is_refused_and_never_waited_on() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("pipe");
    write_class_images(&data, &["a", "b"], 5, 1, square_image(12));
    let pipe = data.join("a/pipe.png");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap();
    assert!(made.success());
    let out = tmp.path().join("r");
    let args = ["--data-dir", s(&data), "--device", "cpu", "--out", s(&out)];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let result = run_within(DENSE, &args, Duration::from_secs(60));
    assert_eq!(result.status.code(), Some(1), "{}", stdout(&result));
    let err = stderr(&result);
    assert!(
        err.contains(s(&pipe)) && err.contains("not a regular file"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn links_to_folders_are_not_followed_and_images_are_read_by_their_content() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("linked");
    write_class_images(&data, &["cat", "dog"], 6, 1, square_image(12));
    // a link back up from a class folder would loop, and bring dogs in as cats
    std::os::unix::fs::symlink("..", data.join("cat/loop")).unwrap();
    // a PNG named as a JPEG is read as the PNG it is
    fs::rename(data.join("dog/000.png"), data.join("dog/000.jpg")).unwrap();
    let printed = train(&data, &tmp.path().join("run"), &[]);
    assert!(printed.contains("read 12 images of 2 classes"), "{printed}");
}

#[test]
fn a_class_whose_images_are_all_unreadable_is_refused_even_when_skipping() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("broken-class");
    write_class_images(&data, &["a", "b"], 5, 1, square_image(12));
    fs::create_dir_all(data.join("bad")).unwrap();
    for i in 0..3 {
        fs::write(data.join(format!("bad/{i}.png")), b"not an image").unwrap();
    }
    let args = [
        "--data-dir",
        s(&data),
        "--device",
        "cpu",
        "--skip-unreadable",
    ];
    let err = refused(DENSE, &args);
    assert!(
        err.contains("class bad") && err.contains("every class needs"),
        "{err}"
    );
    let config = tmp.path().join("r").join(run_dir::config::FILE);
    assert!(!config.exists());
}
