//! scripts/setup_libtorch.sh without the internet: pip is pointed at a local folder
//! (`PIP_NO_INDEX`, `PIP_FIND_LINKS`) holding a fake wheel under the pinned torch file
//! name, so every fetch gives a file whose SHA-256 is not the pinned one. The script must
//! stop with a message naming the file and both hashes and delete the download, and must
//! notice a partial file left in its cache by an interrupted run, delete it and fetch again.
//!
//! The script always gets `--dir` inside a temporary folder (never the project's
//! libtorch/), and `FASHION_MNIST_DIR` points at a folder with the dataset so its last
//! step would never try apt. Needs bash, python3 and pip, as the script itself does: where
//! pip is missing the tests are skipped with a message, except under CI.

mod common;
use common::{stderr, stdout};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup_libtorch.sh");
const PINS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/libtorch_wheels.txt");

/// The first wheel the CPU layout fetches (torch): its pinned file name and SHA-256.
fn first_cpu_pin() -> (String, String) {
    let pins = fs::read_to_string(PINS).unwrap();
    pins.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() == 3 && w[2].split(',').any(|layout| layout == "cpu"))
        .map(|w| (w[0].to_string(), w[1].to_string()))
        .expect("scripts/libtorch_wheels.txt pins a wheel for the cpu layout")
}

fn pip_available() -> bool {
    let ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip("python3 -m pip does not run, and the set-up script needs it");
    }
    ok
}

/// A temporary world for one run of the script.
struct Sandbox {
    tmp: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("index")).unwrap();
        let (px, lb) = (vec![0u8; 784], [3u8]);
        fashion_tch::data::write_idx_dir(&tmp.path().join("data"), (&px, &lb), (&px, &lb)).unwrap();
        Sandbox { tmp }
    }

    /// Where the script installs (`--dir`).
    fn dir(&self) -> PathBuf {
        self.tmp.path().join("lt")
    }

    /// The script's download cache for that `--dir`.
    fn cache(&self) -> PathBuf {
        self.tmp.path().join("lt.download")
    }

    /// The folder pip takes its files from.
    fn index(&self) -> PathBuf {
        self.tmp.path().join("index")
    }

    /// Puts a well-formed wheel named `file` (pip reads its metadata) in the local index;
    /// returns its SHA-256.
    fn put_fake_wheel(&self, file: &str) -> String {
        let path = self.index().join(file);
        let (name, rest) = file.split_once('-').unwrap();
        let version = rest.split('-').next().unwrap();
        let tag = file
            .trim_end_matches(".whl")
            .splitn(3, '-')
            .nth(2)
            .unwrap()
            .to_string();
        let py = r#"
import sys, zipfile
path, name, version, tag = sys.argv[1:]
info = f"{name}-{version}.dist-info"
with zipfile.ZipFile(path, "w") as z:
    z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    z.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: fashion-tch test\nRoot-Is-Purelib: false\nTag: {tag}\n")
    z.writestr(f"{info}/RECORD", "")
"#;
        let out = Command::new("python3")
            .args(["-c", py, path.to_str().unwrap(), name, version, &tag])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        sha256_of(&path)
    }

    fn run_script(&self) -> Output {
        Command::new("bash")
            .arg(SCRIPT)
            .args(["--dir", self.dir().to_str().unwrap(), "--device", "cpu"])
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", self.index())
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_NO_CACHE_DIR", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("FASHION_MNIST_DIR", self.tmp.path().join("data"))
            .env_remove("LIBTORCH")
            .env_remove("LIBTORCH_USE_PYTORCH")
            .output()
            .unwrap()
    }
}

fn sha256_of(path: &Path) -> String {
    Sha256::digest(fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn text(out: &Output) -> (String, String) {
    (stdout(out), stderr(out))
}

/// The run stopped on the hash: status 1, one error naming the file and both hashes, the
/// download deleted, nothing installed.
fn assert_stopped_on_hash(sandbox: &Sandbox, out: &Output, file: &str, got: &str, pinned: &str) {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let expected = format!(
        "setup_libtorch: error: {file} has SHA-256 {got}, but {pinned} is pinned; the download was deleted."
    );
    assert!(
        stderr.contains(&expected),
        "expected '{expected}' in:\n{stderr}"
    );
    assert!(
        !sandbox.cache().join(file).exists(),
        "the download with the wrong hash was left in {}",
        sandbox.cache().display()
    );
    assert!(!sandbox.dir().exists(), "something was installed");
    assert!(!sandbox.tmp.path().join("lt.staging").exists());
}

#[test]
fn a_wheel_with_the_wrong_hash_stops_the_script_and_is_deleted() {
    if !pip_available() {
        return;
    }
    let (file, pinned) = first_cpu_pin();
    let sandbox = Sandbox::new();
    let got = sandbox.put_fake_wheel(&file);
    assert_ne!(got, pinned);
    let out = sandbox.run_script();
    assert_stopped_on_hash(&sandbox, &out, &file, &got, &pinned);
    let (stdout, _) = text(&out);
    assert!(stdout.contains(&format!("downloading {file}")), "{stdout}");
}

#[test]
fn a_partial_download_from_an_interrupted_run_is_deleted_and_fetched_again() {
    if !pip_available() {
        return;
    }
    let (file, pinned) = first_cpu_pin();
    let sandbox = Sandbox::new();
    let fetched = sandbox.put_fake_wheel(&file);
    // What an interrupted run leaves: the first bytes of the file under its final name.
    fs::create_dir_all(sandbox.cache()).unwrap();
    fs::write(
        sandbox.cache().join(&file),
        b"PK\x03\x04 the first bytes only",
    )
    .unwrap();

    let out = sandbox.run_script();
    let (stdout, _) = text(&out);
    let noticed = format!(
        "{file} in {} does not match its pinned SHA-256 (an interrupted download?); fetching it again",
        sandbox.cache().display()
    );
    let at_noticed = stdout
        .find(&noticed)
        .unwrap_or_else(|| panic!("expected '{noticed}' in:\n{stdout}"));
    let at_download = stdout
        .find(&format!("downloading {file}"))
        .unwrap_or_else(|| panic!("no 'downloading {file}' in:\n{stdout}"));
    assert!(at_noticed < at_download, "{stdout}");
    // The hash in the error is the new download's, not the partial file's: it was fetched
    // again (and, the fake index serving a wrong file, refused).
    assert_stopped_on_hash(&sandbox, &out, &file, &fetched, &pinned);
}

#[test]
fn an_index_without_the_file_stops_with_a_clear_message() {
    if !pip_available() {
        return;
    }
    let (file, _) = first_cpu_pin();
    let sandbox = Sandbox::new();
    let out = sandbox.run_script();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let name = file.split('-').next().unwrap();
    assert!(
        stderr.contains(&format!(
            "setup_libtorch: error: pip could not download {name}==2.11.0"
        )) && stderr.contains("Rerun this script when it is reachable"),
        "{stderr}"
    );
    assert!(!sandbox.dir().exists(), "something was installed");
}
