//! Damaged and wrong dataset files, fed to the real `train_dense` binary: each must end
//! with status 1 and one message that names the file and says what is wrong with it, never
//! a panic. (The parser's own unit tests are in src/data/idx.rs; these check that the
//! message survives all the way to the user.)

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{args, run_bin, stderr, write_synthetic};
use fashion_tch::data;

const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// A folder with the synthetic dataset (600 training, 200 test images), raw.
fn dataset() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic(tmp.path());
    tmp
}

/// Replaces the raw `stem` in `dir` by `stem.gz` holding `gz(gzip of the raw bytes)`.
fn gzip_with(dir: &Path, stem: &str, damage: impl FnOnce(Vec<u8>) -> Vec<u8>) -> PathBuf {
    let raw = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    fs::write(&gz, damage(data::gzip(&fs::read(&raw).unwrap()))).unwrap();
    fs::remove_file(raw).unwrap();
    gz
}

/// Rewrites the raw `stem` in `dir` with `change` applied to its bytes.
fn edit(dir: &Path, stem: &str, change: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let path = dir.join(stem);
    let mut bytes = fs::read(&path).unwrap();
    change(&mut bytes);
    fs::write(&path, bytes).unwrap();
    path
}

fn train_dense(data: &Path) -> Output {
    let out = data.join("run");
    run_bin(
        env!("CARGO_BIN_EXE_train_dense"),
        &args(data, Some(&out), &["--epochs", "1", "--quiet"]),
    )
}

/// The run failed with status 1 and the one error line "error: <file> <what>…", no panic.
fn assert_refused(out: &Output, file: &Path, what: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for panic_text in [
        "panicked",
        "RUST_BACKTRACE",
        "unexpected failure",
        "stack backtrace",
    ] {
        assert!(!err.contains(panic_text), "panic text in: {err}");
    }
    let expected = format!("error: {} {what}", file.display());
    assert!(
        err.lines().any(|l| l.starts_with(&expected)),
        "expected a line starting with '{expected}' in:\n{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one error line: {err}");
}

#[test]
fn the_synthetic_dataset_itself_is_accepted() {
    // Without this, every refusal below could come from a broken fixture.
    let data = dataset();
    gzip_with(data.path(), TEST_LABELS, |gz| gz);
    let out = train_dense(data.path());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_truncated_gz_file_is_corrupt() {
    let data = dataset();
    let gz = gzip_with(data.path(), TRAIN_IMAGES, |gz| gz[..gz.len() / 2].to_vec());
    assert_refused(&train_dense(data.path()), &gz, "is corrupt: it ends early");
}

#[test]
fn a_gz_file_missing_its_trailer_is_corrupt() {
    let data = dataset();
    let gz = gzip_with(data.path(), TEST_LABELS, |gz| gz[..gz.len() - 4].to_vec());
    assert_refused(&train_dense(data.path()), &gz, "is corrupt: it ends early");
}

#[test]
fn a_damaged_gzip_stream_is_corrupt() {
    let data = dataset();
    let gz = gzip_with(data.path(), TRAIN_IMAGES, |mut gz| {
        let mid = gz.len() / 2;
        for b in &mut gz[mid..mid + 16] {
            *b ^= 0x5a;
        }
        gz
    });
    assert_refused(&train_dense(data.path()), &gz, "is corrupt: ");
}

#[test]
fn a_gz_file_that_is_not_gzip_is_corrupt() {
    let data = dataset();
    let gz = gzip_with(data.path(), TRAIN_LABELS, |_| b"<html>404</html>".to_vec());
    assert_refused(
        &train_dense(data.path()),
        &gz,
        "is corrupt: it does not decompress (invalid gzip header)",
    );
}

#[test]
fn a_raw_file_cut_short_is_corrupt() {
    let data = dataset();
    let path = edit(data.path(), TRAIN_LABELS, |b| b.truncate(b.len() - 5));
    assert_refused(
        &train_dense(data.path()),
        &path,
        "is corrupt: its header promises 600 labels (608 bytes) but it has 603 bytes",
    );
    let data = dataset();
    let path = edit(data.path(), TEST_IMAGES, |b| b.truncate(10));
    assert_refused(
        &train_dense(data.path()),
        &path,
        "is corrupt: 10 bytes is shorter than an IDX image header",
    );
}

#[test]
fn a_wrong_magic_number_is_named() {
    let data = dataset();
    // A label file's magic in the image file: the files were swapped.
    let path = edit(data.path(), TRAIN_IMAGES, |b| {
        b[..4].copy_from_slice(&2049u32.to_be_bytes())
    });
    assert_refused(
        &train_dense(data.path()),
        &path,
        "is not an IDX image file: magic number 2049",
    );
    let data = dataset();
    let path = edit(data.path(), TEST_LABELS, |b| {
        b[..4].copy_from_slice(&7u32.to_be_bytes())
    });
    assert_refused(
        &train_dense(data.path()),
        &path,
        "is not an IDX label file: magic number 7, expected 2049",
    );
}

#[test]
fn wrong_image_dimensions_are_named() {
    let data = dataset();
    let path = edit(data.path(), TEST_IMAGES, |b| {
        b[8..12].copy_from_slice(&32u32.to_be_bytes())
    });
    assert_refused(
        &train_dense(data.path()),
        &path,
        "holds 32×28 images; Fashion-MNIST images are 28×28",
    );
}

#[test]
fn image_and_label_counts_that_differ_name_both_files() {
    let data = dataset();
    // 599 well-formed labels for 600 images.
    let labels = edit(data.path(), TRAIN_LABELS, |b| {
        b.pop();
        b[4..8].copy_from_slice(&599u32.to_be_bytes());
    });
    let images = data.path().join(TRAIN_IMAGES);
    assert_refused(
        &train_dense(data.path()),
        &images,
        &format!("holds 600 images but {} holds 599 labels", labels.display()),
    );
}

#[test]
fn a_label_of_ten_or_more_is_named() {
    let data = dataset();
    let path = edit(data.path(), TEST_LABELS, |b| b[8 + 3] = 10);
    assert_refused(
        &train_dense(data.path()),
        &path,
        "holds label 10 (example 3); Fashion-MNIST labels are 0 to 9",
    );
    let data = dataset();
    let path = edit(data.path(), TRAIN_LABELS, |b| *b.last_mut().unwrap() = 255);
    assert_refused(
        &train_dense(data.path()),
        &path,
        "holds label 255 (example 599)",
    );
}
