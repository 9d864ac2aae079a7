//! What comes after training, run as a user runs it on a synthetic run: evaluate,
//! predict, --resume, compare, and the pictures.

mod common;

use std::path::{Path, PathBuf};

use common::{args, fake_run, run_bin, small_cnn_spec, stderr, stdout, write_synthetic};
use fashion_tch::models::ModelSpec;
use fashion_tch::{data, predict, run_dir};
use image::{GrayImage, Luma, Rgb, RgbImage};
use tch::Device;

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const CNN: &str = env!("CARGO_BIN_EXE_train_cnn");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");
const PREDICT: &str = env!("CARGO_BIN_EXE_predict");
const COMPARE: &str = env!("CARGO_BIN_EXE_compare");

/// A synthetic dataset and a small CNN trained on it for `epochs`.
struct Trained {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    run: PathBuf,
}

fn trained(bin: &str, epochs: &str, extra: &[&str]) -> Trained {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let run = tmp.path().join("run");
    let mut args = args(&data, Some(&run), &["--epochs", epochs]);
    args.extend_from_slice(extra);
    let out = run_bin(bin, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    Trained {
        _tmp: tmp,
        data,
        run,
    }
}

fn small_cnn(epochs: &str) -> Trained {
    trained(CNN, epochs, &["--filters", "4,8", "--hidden", "16"])
}

/// Parses an SVG as XML and counts its elements named `tag`.
fn count_tags(svg: &Path, tag: &str) -> usize {
    let text = std::fs::read_to_string(svg).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not valid XML: {e}", svg.display()));
    doc.descendants()
        .filter(|n| n.tag_name().name() == tag)
        .count()
}

#[test]
fn evaluate_agrees_with_the_trainer_and_draws_its_pictures() {
    let t = small_cnn("2");
    let out = run_bin(
        EVALUATE,
        &[
            t.run.to_str().unwrap(),
            "--json",
            "--data-dir",
            t.data.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = run_dir::read_metrics(&t.run).unwrap().pop().unwrap();
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - last.test_accuracy).abs() < 1e-6,
        "{accuracy} vs {last:?}"
    );

    let matrix: Vec<Vec<u64>> = serde_json::from_value(report["confusion"].clone()).unwrap();
    let total: u64 = matrix.iter().flatten().sum();
    let diagonal: u64 = (0..10).map(|i| matrix[i][i]).sum();
    assert_eq!(total, 200);
    assert!((diagonal as f64 / 200.0 - accuracy).abs() < 1e-9);
    let per_class = report["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 10);
    for (c, figures) in per_class.iter().enumerate() {
        let support = figures["support"].as_u64().unwrap();
        assert_eq!(support, matrix[c].iter().sum::<u64>());
        let recall = figures["recall"].as_f64().unwrap();
        assert!((recall - matrix[c][c] as f64 / support.max(1) as f64).abs() < 1e-9);
    }

    // pictures: a 5×5 grid of images, a 10×10 heat map, the CNN's filters
    assert_eq!(count_tags(&t.run.join("predictions.svg"), "image"), 25);
    assert!(count_tags(&t.run.join("confusion.svg"), "rect") >= 100);
    // input + 4 kernels + 4 maps + 4 pooled maps
    assert_eq!(count_tags(&t.run.join("filters.svg"), "image"), 13);

    // the readable form has the table and the named confusions
    let text = run_bin(
        EVALUATE,
        &[
            t.run.to_str().unwrap(),
            "--data-dir",
            t.data.to_str().unwrap(),
        ],
    );
    let text = stdout(&text);
    assert!(
        text.contains("confusion matrix") && text.contains("Ankle boot"),
        "{text}"
    );
}

#[test]
fn evaluate_refuses_a_folder_that_is_not_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_bin(EVALUATE, &[tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("config.json"), "{}", stderr(&out));
}

#[test]
#[expect(clippy::too_many_lines, reason = "one story, start to end")]
fn predict_on_png_files_matches_the_tensor_path() {
    let t = trained(DENSE, "5", &["--hidden", "64"]);
    let test = data::load_dir(&t.data, Device::Cpu).unwrap().test;
    let run = run_dir::load_run(&t.run, run_dir::Weights::Last, Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for i in 0..5 {
        let pixels = Vec::<f32>::try_from(test.images(i, 1).reshape([-1])).unwrap();
        let bytes: Vec<u8> = pixels.iter().map(|v| (v * 255.0).round() as u8).collect();
        let expected = predict::top_k(&run.net, &test.images(i, 1), 1)[0][0].0;
        let class = data::CLASS_NAMES[expected];

        // the 28×28 image itself
        let small = dir.path().join(format!("{i}.png"));
        GrayImage::from_raw(28, 28, bytes.clone())
            .unwrap()
            .save(&small)
            .unwrap();
        // a large RGB copy, and a dark-on-light copy as a photo on white would be
        let big = dir.path().join(format!("{i}-big.png"));
        RgbImage::from_fn(280, 280, |x, y| {
            let v = bytes[(y / 10 * 28 + x / 10) as usize];
            Rgb([v, v, v])
        })
        .save(&big)
        .unwrap();
        let light = dir.path().join(format!("{i}-light.jpg"));
        GrayImage::from_fn(28, 28, |x, y| Luma([255 - bytes[(y * 28 + x) as usize]]))
            .save(&light)
            .unwrap();

        let out = run_bin(
            PREDICT,
            &[
                t.run.to_str().unwrap(),
                small.to_str().unwrap(),
                big.to_str().unwrap(),
                light.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let stdout = stdout(&out);
        for line in stdout.lines() {
            let top = line.split(": ").nth(1).unwrap();
            assert!(top.starts_with(class), "expected {class}: {line}");
            checked += 1;
        }
    }
    assert_eq!(checked, 15);

    let out = run_bin(
        PREDICT,
        &[
            t.run.to_str().unwrap(),
            "--test-index",
            "0..8",
            "--data-dir",
            t.data.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("test image"))
            .count(),
        8,
        "{stdout}"
    );
    assert!(stdout.contains("test image 0 (labelled "), "{stdout}");
}

/// A temporary folder holding an untrained dense run, `run`.
fn untrained_dense() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let run = fake_run(&tmp.path().join("run"), ModelSpec::Dense { hidden: 8 }, 1);
    (tmp, run)
}

#[test]
fn predict_refuses_what_is_not_an_image() {
    let (dir, run) = untrained_dense();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, b"not an image at all").unwrap();
    for path in [&empty, &text] {
        let out = run_bin(PREDICT, &[run.to_str().unwrap(), path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn predict_checks_a_huge_image_before_decoding_it() {
    let (dir, run) = untrained_dense();
    // A PNG header claiming 30000×30000 pixels: decoding it would need 900 MB.
    let huge = dir.path().join("huge.png");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let ihdr = [
        &30000u32.to_be_bytes()[..],
        &30000u32.to_be_bytes(),
        &[8, 0, 0, 0, 0],
    ]
    .concat();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&ihdr);
    let crc = crc32(&chunk);
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc.to_be_bytes());
    for name in [&b"IDAT"[..], b"IEND"] {
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(name);
        png.extend_from_slice(&crc32(name).to_be_bytes());
    }
    std::fs::write(&huge, png).unwrap();
    let out = run_bin(PREDICT, &[run.to_str().unwrap(), huge.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("30000×30000"), "{}", stderr(&out));
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn resume_continues_the_epoch_count_and_the_metrics() {
    let t = trained(DENSE, "2", &["--hidden", "16"]);
    assert_eq!(count_tags(&t.run.join("curves.svg"), "circle"), 2 * 2 * 2);
    let out = run_bin(
        DENSE,
        &[
            "--resume",
            t.run.to_str().unwrap(),
            "--epochs",
            "2",
            "--data-dir",
            t.data.to_str().unwrap(),
            "--device",
            "cpu",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let epochs: Vec<u32> = run_dir::read_metrics(&t.run)
        .unwrap()
        .iter()
        .map(|m| m.epoch)
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4]);
    let config = run_dir::read_config(&t.run).unwrap();
    assert_eq!(config.recipe.epochs, 4);
    assert_eq!(
        *config.model(),
        fashion_tch::models::ModelSpec::Dense { hidden: 16 }
    );
    // two panels × train and test × four epochs
    assert_eq!(count_tags(&t.run.join("curves.svg"), "circle"), 2 * 2 * 4);

    // a flag that would change the model is refused, naming both
    let out = run_bin(
        DENSE,
        &[
            "--resume",
            t.run.to_str().unwrap(),
            "--hidden",
            "32",
            "--epochs",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("trained with --hidden 16, not --hidden 32"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn compare_tables_and_charts_several_runs() {
    let dir = tempfile::tempdir().unwrap();
    let a = fake_run(&dir.path().join("a"), ModelSpec::Dense { hidden: 8 }, 2);
    let b = fake_run(&dir.path().join("b"), small_cnn_spec(), 3);
    let chart = dir.path().join("c.svg");
    let out = run_bin(
        COMPARE,
        &[
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            chart.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("| ")).count(),
        3,
        "{stdout}"
    );
    assert!(
        stdout.contains("| dense |") && stdout.contains("| cnn |"),
        "{stdout}"
    );
    // one point per epoch per run
    assert_eq!(count_tags(&chart, "circle"), 2 + 3);
}

#[test]
fn a_damaged_run_folder_gets_an_error_naming_the_file_or_the_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let dense = fake_run(&tmp.path().join("dense"), ModelSpec::Dense { hidden: 8 }, 1);
    let cnn = fake_run(&tmp.path().join("cnn"), small_cnn_spec(), 1);
    let data = data.to_str().unwrap();
    let evaluate = |run: &Path| {
        let out = run_bin(EVALUATE, &[run.to_str().unwrap(), "--data-dir", data]);
        assert_eq!(out.status.code(), Some(1));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        stderr(&out)
    };

    // dense weights under a CNN config
    std::fs::copy(
        dense.join("model.safetensors"),
        cnn.join("model.safetensors"),
    )
    .unwrap();
    let err = evaluate(&cnn);
    assert!(
        err.contains("does not fit the model in config.json"),
        "{err}"
    );

    // a truncated weights file
    let weights = dense.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = evaluate(&dense);
    assert!(err.contains("model.safetensors"), "{err}");

    // a config.json that is not JSON
    std::fs::write(dense.join("config.json"), "{ not json").unwrap();
    let err = evaluate(&dense);
    assert!(
        err.contains("config.json is not a valid run config"),
        "{err}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `compare RUN | head -1`: here the reader is gone before compare prints (it spends
    // its first few hundred milliseconds loading libtorch)
    let (dir, run) = untrained_dense();
    let mut child = std::process::Command::new(COMPARE)
        .args([run.to_str().unwrap(), "--out"])
        .arg(dir.path().join("c.svg"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}
