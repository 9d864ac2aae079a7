//! Writes tests/fixtures/: run folders in each earlier format, as the fashion-tch of its
//! day wrote them (tests/formats.rs checks that they still load, evaluate and train on).
//! Run it only to add a format: the fixtures are the old formats, kept as they were.
//!
//! ```text
//! cargo run --release --example format_fixtures
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use fashion_tch::files::write_safetensors;
use fashion_tch::models::ModelSpec;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture folders, and whether each has a checkpoint.
const FOLDERS: [(&str, bool); 4] = [
    ("config-1-lesson-checkpoint-1", true),
    ("config-1-no-recipe-no-checkpoint", false),
    ("config-2-checkpoint-1", true),
    ("config-3-checkpoint-2", true),
];

/// Writes the fixtures: a dense net of 4 hidden units, one finished epoch, in each
/// format as the fashion-tch of its day wrote it.
#[expect(clippy::too_many_lines, reason = "one story, start to end")]
fn main() {
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _net =
        ModelSpec::Dense { hidden: 4 }.build(&vs, &fashion_tch::data::Input::fashion_mnist());
    let row = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,seconds\n\
               1,1.500000,0.500000,1.400000,0.550000,0.100\n";
    let common = serde_json::json!({
        "seed": 0, "device": "cpu", "threads": 1, "trainable_parameters": 3190,
        "data_dir": "data", "libtorch_version": "2.11.0", "fashion_tch_version": "0.1.0",
        "started": "2026-11-20T10:00:00+00:00"
    });
    let with = |extra: serde_json::Value| {
        let mut json = common.clone();
        for (k, v) in extra.as_object().unwrap() {
            json[k] = v.clone();
        }
        serde_json::to_string_pretty(&json).unwrap()
    };
    let configs = [
        with(serde_json::json!({
            "recipe": "lesson", "model": {"kind": "dense", "hidden": 4},
            "epochs": 1, "batch_size": 32, "learning_rate": 0.001
        })),
        with(serde_json::json!({
            "model": {"kind": "dense", "hidden": 4},
            "epochs": 1, "batch_size": 32, "learning_rate": 0.001
        })),
        with(serde_json::json!({
            "recipe": {
                "name": "lesson", "model": {"kind": "dense", "hidden": 4},
                "optimizer": {"kind": "adam"}, "schedule": "constant", "augment": false,
                "label_smoothing": 0.0, "batch_size": 32, "learning_rate": 0.001,
                "epochs": 1, "validation_images": 0
            }
        })),
        with(serde_json::json!({
            "format_version": 3,
            "recipe": {
                "name": "lesson", "model": {"kind": "dense", "hidden": 4},
                "optimizer": {"kind": "adam"}, "schedule": "constant", "augment": false,
                "label_smoothing": 0.0, "batch_size": 32, "learning_rate": 0.001,
                "epochs": 1, "validation_images": 0, "early_stop": null, "precision": "f32"
            },
            "best_epoch": null, "stopped_early": null
        })),
    ];
    let position = serde_json::json!({
        "epoch": 2, "step": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0
    });
    let history = serde_json::json!([{
        "epoch": 1, "train_loss": 1.5, "train_accuracy": 0.5, "test_loss": 1.4,
        "test_accuracy": 0.55, "seconds": 0.1, "validation_accuracy": null
    }]);
    let states = [
        Some(serde_json::json!({"position": position, "optimizer_steps": 19, "history": history})),
        None,
        Some(serde_json::json!({
            "position": position, "optimizer_steps": 19, "history": history,
            "patience_from": 0, "training_images": 600
        })),
        Some(serde_json::json!({
            "format_version": 2, "optimizer_steps": 19, "position": position,
            "history": history, "patience_from": 0, "training_images": 600
        })),
    ];
    for (((name, _), config), state) in FOLDERS.iter().zip(configs).zip(states) {
        let dir = fixtures().join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.json"), config).unwrap();
        fs::write(dir.join("metrics.csv"), row).unwrap();
        fashion_tch::files::write_safetensors(
            &dir.join("model.safetensors"),
            &vs.variables().into_iter().collect::<Vec<_>>(),
            None,
        )
        .unwrap();
        let Some(state) = state else { continue };
        let mut tensors: Vec<(String, tch::Tensor)> = Vec::new();
        for (name, t) in vs.variables() {
            tensors.push((format!("optimizer.exp_avg.{name}"), t.zeros_like()));
            tensors.push((format!("optimizer.exp_avg_sq.{name}"), t.zeros_like()));
            tensors.push((format!("model.{name}"), t));
        }
        let metadata = HashMap::from([("fashion_tch".to_string(), state.to_string())]);
        write_safetensors(
            &dir.join("checkpoint.safetensors"),
            &tensors,
            Some(metadata),
        )
        .unwrap();
    }
}
