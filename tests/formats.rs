//! Run folders of every earlier format, kept under tests/fixtures/, still load, evaluate
//! and train on: config.json formats 1 (before whole recipes, with a recipe name or
//! none, with and without a checkpoint), 2 (the whole recipe, before format_version) and
//! 3 (before test-time views and the moving average), and checkpoint metadata formats 1
//! (before format_version) and 2.
//!
//! `cargo run --release --example format_fixtures` wrote them.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{run_bin, stderr, write_synthetic};
use fashion_tch::models::ModelSpec;
use fashion_tch::run_dir::{self, config::FORMAT_VERSION};

const DENSE: &str = env!("CARGO_BIN_EXE_train_dense");
const EVALUATE: &str = env!("CARGO_BIN_EXE_evaluate");

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture folders, each a run folder of an earlier format.
fn fixture_runs() -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    assert_eq!(runs.len(), 4, "{runs:?}");
    runs
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn run_folders_of_every_earlier_format_load_evaluate_and_train_on() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let d = data.to_str().unwrap();
    for fixture in fixture_runs() {
        let name = fixture.file_name().unwrap().to_str().unwrap();
        let checkpoint = fixture.join("checkpoint.safetensors").exists();
        let run = tmp.path().join(name);
        copy_dir(&fixture, &run);
        let config = run_dir::read_config(&run).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(*config.model(), ModelSpec::Dense { hidden: 4 }, "{name}");
        assert_eq!(config.recipe.epochs, 1, "{name}");
        let r = run.to_str().unwrap();
        let out = run_bin(EVALUATE, &[r, "--data-dir", d, "--device", "cpu"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let mut args = vec![
            "--resume",
            r,
            "--epochs",
            "1",
            "--data-dir",
            d,
            "--device",
            "cpu",
        ];
        if !checkpoint {
            args.push("--fresh-optimizer");
        }
        let out = run_bin(DENSE, &args);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let config = run_dir::read_config(&run).unwrap();
        assert_eq!(
            config.format_version, FORMAT_VERSION,
            "{name} is written anew"
        );
        assert_eq!(run_dir::read_metrics(&run).unwrap().len(), 2, "{name}");
        let text = fs::read_to_string(run.join("config.json")).unwrap();
        let written = format!("\"format_version\": {FORMAT_VERSION}");
        assert!(text.contains(&written), "{name}: {text}");
    }
}

#[test]
fn a_config_that_fits_no_format_names_the_field_at_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    copy_dir(&fixtures().join("config-2-checkpoint-1"), &run);
    let path = run.join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    json["recipe"].as_object_mut().unwrap().remove("schedule");
    fs::write(&path, json.to_string()).unwrap();
    let out = run_bin(EVALUATE, &[run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("config.json") && err.contains("missing field `schedule`"),
        "{err}"
    );
    json["format_version"] = 9.into();
    fs::write(&path, json.to_string()).unwrap();
    let err = stderr(&run_bin(EVALUATE, &[run.to_str().unwrap()]));
    assert!(err.contains("format_version 9 is newer"), "{err}");
}
