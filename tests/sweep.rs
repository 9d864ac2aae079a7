//! `sweep` run as a user runs it, on synthetic data: the table, the chart, and a rerun
//! that skips finished runs and resumes one cut short.

mod common;

use common::{run_bin, stderr, write_synthetic};
use fashion_tch::run_dir;

const SWEEP: &str = env!("CARGO_BIN_EXE_sweep");

fn table_rows(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| size"))
        .collect()
}

#[test]
fn sweep_tables_two_sizes_at_two_epoch_counts_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let out = tmp.path().join("sweep");
    let args = [
        "--model",
        "dense",
        "--hidden",
        "8,32",
        "--epochs",
        "1,3",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    let first = run_bin(SWEEP, &args);
    assert!(first.status.success(), "{}", stderr(&first));
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    let rows = table_rows(&stdout);
    assert_eq!(rows.len(), 4, "{stdout}");
    assert!(rows[0].starts_with("| 8 | 6370 | 1 |"), "{stdout}");
    assert!(rows[3].starts_with("| 32 | 25450 | 3 |"), "{stdout}");
    // one run per size, trained to the largest count
    for size in ["8", "32"] {
        let run = out.join(format!("dense-{size}"));
        assert_eq!(run_dir::read_metrics(&run).unwrap().len(), 3);
    }
    let table = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert_eq!(table_rows(&table), rows);
    let svg = std::fs::read_to_string(out.join("sweep.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // a dot per size on each test-accuracy line
    let dots = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .count();
    assert_eq!(dots, 4);

    // cut the second run short, as an interruption after its first epoch would
    let cut = out.join("dense-32");
    let metrics = std::fs::read_to_string(cut.join("metrics.csv")).unwrap();
    let kept: Vec<&str> = metrics.lines().take(2).collect();
    std::fs::write(cut.join("metrics.csv"), kept.join("\n") + "\n").unwrap();

    let again = run_bin(SWEEP, &args);
    assert!(again.status.success(), "{}", stderr(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        stdout.contains("dense-8: already trained 3 epochs, skipped"),
        "{stdout}"
    );
    assert!(stdout.contains("from epoch 2 to 3"), "{stdout}");
    assert_eq!(table_rows(&stdout).len(), 4, "{stdout}");
    let epochs: Vec<u32> = run_dir::read_metrics(&cut)
        .unwrap()
        .iter()
        .map(|m| m.epoch)
        .collect();
    assert_eq!(epochs, [1, 2, 3]);
}

#[test]
fn sweep_refuses_a_bad_filter_list() {
    let out = run_bin(
        SWEEP,
        &["--model", "cnn", "--filters", "16,32;x", "--epochs", "1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a list of positive filter counts"),
        "{}",
        stderr(&out)
    );
}
