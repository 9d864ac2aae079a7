//! `sweep` run as a user runs it, on synthetic data: the table, the chart, and a rerun
//! that skips finished runs and resumes one cut short.

mod common;

use common::{run_bin, stderr, stdout, write_synthetic, Running};
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
    let printed = stdout(&first);
    let rows = table_rows(&printed);
    assert_eq!(rows.len(), 4, "{printed}");
    assert!(rows[0].starts_with("| 8 | 6370 | 1 |"), "{printed}");
    assert!(rows[3].starts_with("| 32 | 25450 | 3 |"), "{printed}");
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

    // a rerun of the same command trains nothing
    let again = run_bin(SWEEP, &args);
    assert!(again.status.success(), "{}", stderr(&again));
    let printed = stdout(&again);
    assert!(
        printed.contains("dense-8: already trained 3 epochs, skipped"),
        "{printed}"
    );
    assert_eq!(table_rows(&printed), rows);
}

#[test]
#[expect(clippy::too_many_lines, reason = "one story, start to end")]
fn ctrl_c_in_the_second_run_stops_the_sweep_and_a_rerun_finishes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic_sized(&data, 3000);
    let sweep = |name: &str| -> Vec<String> {
        let out = tmp.path().join(name);
        [
            "--model",
            "dense",
            "--hidden",
            "16,32",
            "--epochs",
            "2,4",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--threads",
            "2",
            "--device",
            "cpu",
        ]
        .map(String::from)
        .to_vec()
    };
    // the table without its time column, which no two runs share
    let without_time = |stdout: &str| -> Vec<String> {
        table_rows(stdout)
            .iter()
            .map(|row| row.rsplitn(3, '|').last().unwrap().to_string())
            .collect()
    };

    let result = run_bin(SWEEP, &as_strs(&sweep("whole")));
    assert!(result.status.success(), "{}", stderr(&result));
    let expected = without_time(&stdout(&result));

    let args = sweep("stopped");
    let mut run = Running::spawn(SWEEP, &as_strs(&args));
    assert!(run.wait_for("training dense", 2), "no second run");
    assert!(
        run.wait_for("epoch  1/4", 2),
        "the second run trained no epoch"
    );
    run.signal("-INT");
    let (code, printed, err) = run.finish();
    assert_eq!(code, Some(130), "{err}\n{printed}");
    assert!(err.contains("run the same sweep command again"), "{err}");

    let again = run_bin(SWEEP, &as_strs(&args));
    assert!(again.status.success(), "{}", stderr(&again));
    let printed = stdout(&again);
    assert!(
        printed.contains("dense-16: already trained 4 epochs"),
        "{printed}"
    );
    // every run complete, with the numbers of the sweep that was never stopped
    assert_eq!(without_time(&printed), expected);
    let stopped = tmp.path().join("stopped");
    for size in ["16", "32"] {
        let run = stopped.join(format!("dense-{size}"));
        assert_eq!(run_dir::read_metrics(&run).unwrap().len(), 4);
    }

    // a rerun with another learning rate is refused, naming the flag and the folder
    let mut other = args.clone();
    other.extend(["--lr".to_string(), "0.002".to_string()]);
    let refused = run_bin(SWEEP, &as_strs(&other));
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains("--lr 0.001, not --lr 0.002") && err.contains(stopped.to_str().unwrap()),
        "{err}"
    );
}

/// GNU parallel, installed by scripts/test_tools.sh where it is missing; `None` (a
/// failure under CI) where it cannot be.
fn gnu_parallel() -> Option<()> {
    common::test_tool("parallel").map(|_| ())
}

#[test]
#[expect(clippy::too_many_lines, reason = "one story, start to end")]
fn a_planned_sweep_run_by_gnu_parallel_gathers_into_the_one_process_table() {
    if gnu_parallel().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data);
    let sweep = |name: &str, extra: &[&str]| -> Vec<String> {
        let out = tmp.path().join(name);
        let mut args: Vec<String> = [
            "--model",
            "dense",
            "--hidden",
            "8,16",
            "--seeds",
            "0,1",
            "--epochs",
            "1,100",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let without_time = |stdout: &str| -> Vec<String> {
        table_rows(stdout)
            .iter()
            .map(|row| row.rsplitn(3, '|').last().unwrap().to_string())
            .collect()
    };
    let whole = run_bin(SWEEP, &as_strs(&sweep("whole", &[])));
    assert!(whole.status.success(), "{}", stderr(&whole));
    let expected = without_time(&stdout(&whole));
    assert_eq!(expected.len(), 4);
    assert!(
        expected[0].starts_with("| 8 | 6370 | 1 | 2 | "),
        "{expected:?}"
    );
    assert!(expected[0].contains(" ± "), "mean and spread: {expected:?}");

    // planned, then run by GNU parallel two at a time
    let plan = run_bin(SWEEP, &as_strs(&sweep("planned", &["--plan"])));
    assert!(plan.status.success(), "{}", stderr(&plan));
    let lines = stdout(&plan);
    assert_eq!(lines.lines().count(), 4, "{lines}");
    assert!(
        !tmp.path().join("planned").exists(),
        "--plan trains nothing"
    );
    // a flag of the trainers reaches each planned command
    let graphed = run_bin(
        SWEEP,
        &as_strs(&sweep("graphed", &["--plan", "--cuda-graph"])),
    );
    assert!(graphed.status.success(), "{}", stderr(&graphed));
    let graphed = stdout(&graphed);
    assert!(
        graphed.lines().all(|l| l.contains(" --cuda-graph ")),
        "{graphed}"
    );
    let plan_file = tmp.path().join("plan.txt");
    std::fs::write(&plan_file, &lines).unwrap();
    let status = std::process::Command::new("parallel")
        .args(["--will-cite", "-j", "2"])
        .stdin(std::fs::File::open(&plan_file).unwrap())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "parallel failed");
    let gathered = run_bin(SWEEP, &as_strs(&sweep("planned", &[])));
    assert!(gathered.status.success(), "{}", stderr(&gathered));
    let printed = stdout(&gathered);
    assert_eq!(
        printed
            .matches("already trained 100 epochs, skipped")
            .count(),
        4
    );
    assert_eq!(without_time(&printed), expected);

    // one job killed with -9 is continued by the gathering sweep, to the same numbers
    let planned = tmp.path().join("planned");
    let killed = planned.join("dense-16-seed1");
    std::fs::remove_dir_all(&killed).unwrap();
    let line = lines
        .lines()
        .find(|l| l.contains("dense-16-seed1"))
        .unwrap();
    let words: Vec<&str> = line.split(' ').collect();
    let mut job = Running::spawn(words[0], &words[1..]);
    assert!(job.wait_for("epoch  2/100", 1), "the job trained no epoch");
    job.signal("-KILL");
    assert_eq!(job.finish().0, None, "killed by the signal");
    let gathered = run_bin(SWEEP, &as_strs(&sweep("planned", &[])));
    assert!(gathered.status.success(), "{}", stderr(&gathered));
    let printed = stdout(&gathered);
    assert!(
        printed.contains("training dense") && printed.contains(" to 100, "),
        "{printed}"
    );
    assert_eq!(without_time(&printed), expected);

    // a folder trained with other settings is refused, by name
    let other = planned.join("dense-8-seed0");
    std::fs::remove_dir_all(&other).unwrap();
    let args = [
        "--hidden", "8", "--lr", "0.01", "--epochs", "1", "--seed", "0", "--quiet",
    ];
    let mut argv: Vec<&str> = args.to_vec();
    argv.extend([
        "--out",
        other.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let made = run_bin(env!("CARGO_BIN_EXE_train_dense"), &argv);
    assert!(made.status.success(), "{}", stderr(&made));
    let refused = run_bin(SWEEP, &as_strs(&sweep("planned", &[])));
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert!(
        err.contains(other.to_str().unwrap()) && err.contains("--lr 0.01, not --lr 0.001"),
        "{err}"
    );
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
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
