//! The download of Fashion-MNIST against a small HTTP server on 127.0.0.1 that misbehaves
//! on purpose: a file with the wrong checksum, 404 and 500, a body cut off halfway, a
//! server that stalls. Each must give a clear error naming the URL and leave nothing under
//! the file's final name nor a `.part` file; a rerun against a good server must then work.
//!
//! The good server serves the real files from /usr/share/datasets/fashion-mnist (the pinned
//! checksums are the real data's). Where that folder is missing those steps are skipped with
//! a message, except under CI, where the set-up script installs it.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::stderr;
use fashion_tch::data;

const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
const FIRST: &str = "train-images-idx3-ubyte.gz";

/// What the server does with one request.
enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// This status and its reason phrase.
    Status(u16, &'static str),
    /// Promises twice the body's length, sends the body, closes.
    CutOff(Vec<u8>),
    /// Sends nothing at all; waits for the client to give up.
    Stall,
    /// Sends the headers and half of the body, then waits for the client to give up.
    StallHalfway(Vec<u8>),
}

/// A server that answers a fixed number of requests, then stops (closing its port); it
/// also stops after a minute whatever happened, so a failing test cannot hang on it.
struct Server {
    url: String,
    thread: JoinHandle<Vec<String>>,
}

impl Server {
    fn start(requests: usize, reply: impl Fn(&str) -> Reply + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut paths = Vec::new();
            while paths.len() < requests && Instant::now() < deadline {
                let mut stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                    Err(_) => break,
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                stream
                    .set_write_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let Some(path) = read_request(&mut stream) else {
                    continue;
                };
                let reply = reply(&path);
                paths.push(path);
                let _ = respond(&mut stream, reply);
            }
            paths
        });
        Server { url, thread }
    }

    /// Waits for the server to finish and returns the paths it was asked for.
    fn requests(self) -> Vec<String> {
        self.thread.join().unwrap()
    }
}

/// The path of a GET request, once its head has been read.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    (words.next() == Some("GET")).then(|| words.next().unwrap_or("").to_string())
}

fn respond(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    let ok = |len: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    match reply {
        Reply::Body(body) => {
            stream.write_all(ok(body.len()).as_bytes())?;
            stream.write_all(&body)?;
        }
        Reply::Status(code, reason) => {
            let body = format!("{code} {reason}\n");
            write!(
                stream,
                "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
        }
        Reply::CutOff(body) => {
            stream.write_all(ok(2 * body.len()).as_bytes())?;
            stream.write_all(&body)?;
        }
        Reply::Stall => wait_for_close(stream),
        Reply::StallHalfway(body) => {
            stream.write_all(ok(body.len()).as_bytes())?;
            stream.write_all(&body[..body.len() / 2])?;
            stream.flush()?;
            wait_for_close(stream);
        }
    }
    stream.flush()
}

/// Blocks until the client closes the connection (or the server's own 20 s read limit).
fn wait_for_close(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// A well-formed gzipped IDX file that is not Fashion-MNIST's.
fn other_file() -> Vec<u8> {
    data::gzip(&data::encode_labels(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0]))
}

/// The names in `dir` (empty when it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<_> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether the real gzipped files are here to serve; under CI they must be.
fn real_files_present() -> bool {
    let present = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    .iter()
    .all(|f| Path::new(SYSTEM_DIR).join(f).is_file());
    if !present {
        common::skip(&format!(
            "no real Fashion-MNIST .gz files in {SYSTEM_DIR} to serve (scripts/setup_libtorch.sh \
             installs them)"
        ));
    }
    present
}

/// A server that serves the real files, for `requests` requests.
fn good_server(requests: usize) -> Server {
    Server::start(requests, |path| {
        match fs::read(Path::new(SYSTEM_DIR).join(path.trim_start_matches('/'))) {
            Ok(bytes) => Reply::Body(bytes),
            Err(_) => Reply::Status(404, "Not Found"),
        }
    })
}

/// The error of a download that must fail, as the user reads it.
fn failed_download(url: &str, dir: &Path) -> String {
    let err = data::download::download(url, dir).expect_err("the download must fail");
    format!("{err:#}")
}

/// The error names the URL and the file it was to become.
fn assert_names_url_and_file(err: &str, server: &str, dir: &Path) {
    let url = format!("{server}/{FIRST}");
    let file = dir.join(FIRST);
    assert!(err.contains(&url), "the URL {url} is not in: {err}");
    assert!(
        err.contains(&file.display().to_string()),
        "the file {} is not in: {err}",
        file.display()
    );
}

#[test]
fn a_file_with_the_wrong_checksum_is_deleted_and_a_rerun_downloads_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fashion-mnist");

    let bad = Server::start(1, |_| Reply::Body(other_file()));
    let err = failed_download(&bad.url, &dir);
    assert_names_url_and_file(&err, &bad.url, &dir);
    assert!(
        err.contains("SHA-256") && err.contains("c59f468a2f672dc8"),
        "the checksums are not in: {err}"
    );
    assert_eq!(bad.requests(), [format!("/{FIRST}")]);
    assert_eq!(
        names_in(&dir),
        Vec::<String>::new(),
        "nothing may be left, neither under the final name nor as .part"
    );

    if !real_files_present() {
        return;
    }
    let good = good_server(4);
    data::download::download(&good.url, &dir).unwrap();
    assert_eq!(good.requests().len(), 4);
    assert_eq!(
        names_in(&dir),
        [
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
    for name in names_in(&dir) {
        assert_eq!(
            fs::read(dir.join(&name)).unwrap(),
            fs::read(Path::new(SYSTEM_DIR).join(&name)).unwrap(),
            "{name}"
        );
    }

    // What is there is kept: a rerun asks only for what is missing.
    fs::remove_file(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let good = good_server(1);
    data::download::download(&good.url, &dir).unwrap();
    assert_eq!(good.requests(), ["/t10k-labels-idx1-ubyte.gz"]);
    assert_eq!(names_in(&dir).len(), 4);
}

#[test]
fn http_errors_name_the_status() {
    for (code, reason) in [(404, "Not Found"), (500, "Internal Server Error")] {
        let tmp = tempfile::tempdir().unwrap();
        let server = Server::start(1, move |_| Reply::Status(code, reason));
        let err = failed_download(&server.url, tmp.path());
        assert_names_url_and_file(&err, &server.url, tmp.path());
        assert!(
            err.contains(&format!("the server answered {code} {reason}")),
            "{err}"
        );
        assert_eq!(server.requests().len(), 1);
        assert_eq!(names_in(tmp.path()), Vec::<String>::new());
    }
}

#[test]
fn a_body_cut_off_halfway_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let body = vec![0x1f; 5000];
    let server = Server::start(1, move |_| Reply::CutOff(body.clone()));
    let err = failed_download(&server.url, tmp.path());
    assert_names_url_and_file(&err, &server.url, tmp.path());
    assert!(err.contains("after 5000 of 10000 bytes (cut off)"), "{err}");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(names_in(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_server_that_sends_nothing_times_out_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(1, |_| Reply::Stall);
    let start = Instant::now();
    let err =
        data::download::download_with_timeout(&server.url, tmp.path(), Duration::from_secs(1))
            .expect_err("a stalled server must fail the download");
    let err = format!("{err:#}");
    let took = start.elapsed();
    assert_names_url_and_file(&err, &server.url, tmp.path());
    assert!(
        err.contains("the server did not answer within 1 s (the time-out")
            && err.contains("FASHION_MNIST_TIMEOUT_SECS"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(names_in(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_server_that_stops_halfway_times_out_and_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(1, |_| Reply::StallHalfway(vec![7; 4000]));
    let err =
        data::download::download_with_timeout(&server.url, tmp.path(), Duration::from_secs(1))
            .expect_err("a stalled server must fail the download");
    let err = format!("{err:#}");
    assert_names_url_and_file(&err, &server.url, tmp.path());
    assert!(
        err.contains("the server sent 2000 of 4000 bytes, then nothing for 1 s (the time-out"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
    assert_eq!(names_in(tmp.path()), Vec::<String>::new());
}

/// Runs `train_dense` in `cwd` as a user with no dataset anywhere would: no
/// `--data-dir`, nothing in `data/fashion-mnist`, and nothing in Debian's folder. Where
/// that folder exists it is hidden behind an empty tmpfs in a private mount namespace
/// (`unshare -rm`); where that is not allowed, `None`, and the test says it skipped.
fn train_dense_without_dataset(cwd: &Path, envs: &[(&str, &str)]) -> Option<Output> {
    let bin = env!("CARGO_BIN_EXE_train_dense");
    let args = [
        "--device", "cpu", "--epochs", "1", "--quiet", "--out", "run",
    ];
    let mut cmd = if data::has_dataset(Path::new(SYSTEM_DIR)) {
        let hide = "mount -t tmpfs tmpfs /usr/share/datasets";
        let probe = Command::new("unshare")
            .args(["-rm", "sh", "-c", hide])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            common::skip(&format!(
                "{SYSTEM_DIR} holds the dataset and it cannot be hidden here (unshare -rm, a \
                 user and mount namespace, is not allowed), so the binary would never download"
            ));
            return None;
        }
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-rm",
            "sh",
            "-c",
            &format!("{hide} && exec \"$0\" \"$@\""),
            bin,
        ])
        .args(args);
        cmd
    } else {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        cmd
    };
    cmd.current_dir(cwd)
        .env_remove("FASHION_MNIST_DIR")
        .env_remove("FASHION_MNIST_URL")
        .env_remove("FASHION_MNIST_TIMEOUT_SECS")
        .envs(envs.iter().copied());
    Some(cmd.output().unwrap())
}

fn assert_one_clean_error(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    for panic_text in ["panicked", "RUST_BACKTRACE", "unexpected failure"] {
        assert!(!err.contains(panic_text), "panic text in: {err}");
    }
    err
}

#[test]
fn train_dense_with_no_dataset_and_a_failed_download_says_where_it_looked_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(1, |_| Reply::Status(404, "Not Found"));
    let url = server.url.clone();
    let Some(out) = train_dense_without_dataset(tmp.path(), &[("FASHION_MNIST_URL", &url)]) else {
        return;
    };
    let err = assert_one_clean_error(&out);
    for needed in [
        // the places searched
        "data/fashion-mnist",
        SYSTEM_DIR,
        // what the download did
        &format!("{url}/{FIRST}"),
        "404 Not Found",
        // the ways to get the data
        "apt-get install dataset-fashion-mnist",
        "--data-dir",
        "FASHION_MNIST_DIR",
    ] {
        assert!(err.contains(needed), "'{needed}' is not in: {err}");
    }
    assert_eq!(server.requests(), [format!("/{FIRST}")]);
    // Not even the empty folders the download made.
    let data = tmp.path().join("data");
    assert!(!data.exists(), "left behind: {:?}", names_in(&data));
}

#[test]
fn train_dense_honours_fashion_mnist_timeout_secs() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(1, |_| Reply::Stall);
    let url = server.url.clone();
    let start = Instant::now();
    let Some(out) = train_dense_without_dataset(
        tmp.path(),
        &[
            ("FASHION_MNIST_URL", &url),
            ("FASHION_MNIST_TIMEOUT_SECS", "1"),
        ],
    ) else {
        return;
    };
    let took = start.elapsed();
    let err = assert_one_clean_error(&out);
    assert!(
        err.contains(
            "did not answer within 1 s (the time-out; FASHION_MNIST_TIMEOUT_SECS sets it)"
        ),
        "{err}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(server.requests().len(), 1);
}
