//! Fetching Fashion-MNIST's four files over HTTP, for users who have neither Debian's
//! package nor the files at hand. Every file is checked against its SHA-256 before it
//! takes its name, and every failure says what the server did and the ways to get the data.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use sha2::{Digest, Sha256};

use super::{default_dirs, hex, how_to_get, read_limited, FILES, MAX_FILE_BYTES};

/// Where the official files live; `FASHION_MNIST_URL` replaces it (a mirror, or a test).
pub(crate) const OFFICIAL_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";

/// Seconds a download waits for the server to connect or to send more data, unless
/// `FASHION_MNIST_TIMEOUT_SECS` says otherwise.
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Downloads the dataset into `data/fashion-mnist` from `FASHION_MNIST_URL` (or the
/// official location); on failure, one error that says where it looked, what the download
/// did, and the ways to get the data.
pub(super) fn download_default() -> Result<PathBuf> {
    let target = PathBuf::from("data/fashion-mnist");
    // The folders the download will create; a failed download leaves none of them behind.
    let created: Vec<&Path> = target
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    if let Err(err) = download(&download_url(), &target) {
        for dir in created {
            // Only ever an empty folder: remove_dir refuses one that holds anything.
            let _ = fs::remove_dir(dir);
        }
        let searched = default_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" nor ");
        bail!(
            "Fashion-MNIST is in neither {searched}, and the download failed: {err:#}\n{}",
            how_to_get()
        );
    }
    Ok(target)
}

/// `FASHION_MNIST_URL`, or the official location.
pub(super) fn download_url() -> String {
    match std::env::var("FASHION_MNIST_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => OFFICIAL_URL.into(),
    }
}

/// Downloads the four gzipped files, `<base_url>/<stem>.gz`, into `dir`.
///
/// Each file is written to `NAME.gz.part`, the SHA-256 of its decompressed bytes is checked,
/// and only then is it renamed to `NAME.gz`; on any failure the `.part` file is deleted, so
/// `dir` never holds a file that has not passed the check. Files already in `dir` passed it
/// when they were renamed and are kept, so a rerun fetches only what is missing.
///
/// The server has `FASHION_MNIST_TIMEOUT_SECS` seconds (default 30) to accept the connection
/// and, at every point after, to send more data: a slow link is fine, a stalled one is an
/// error that says so.
pub fn download(base_url: &str, dir: &Path) -> Result<()> {
    download_with_timeout(base_url, dir, timeout_from_env()?)
}

/// [`download`] with the time-out given rather than read from `FASHION_MNIST_TIMEOUT_SECS`.
pub fn download_with_timeout(base_url: &str, dir: &Path, timeout: Duration) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(timeout)
        .timeout_read(timeout)
        .timeout_write(timeout)
        .build();
    for file in &FILES {
        let name = format!("{}.gz", file.stem);
        let path = dir.join(&name);
        if path.is_file() {
            continue;
        }
        let url = format!("{}/{name}", base_url.trim_end_matches('/'));
        let part = dir.join(format!("{name}.part"));
        let result = fetch(&agent, &url, &part, timeout).and_then(|()| {
            let bytes = read_file_as_gz(&part)?;
            let got = hex(&Sha256::digest(&bytes));
            ensure!(
                got == file.sha256,
                "its content has SHA-256 {got}, but Fashion-MNIST's {} has {} \
                 (the server sent another file)",
                file.stem,
                file.sha256
            );
            Ok(())
        });
        if let Err(err) = result {
            let _ = fs::remove_file(&part);
            return Err(err.context(format!(
                "downloading {url} into {} failed, and nothing was kept",
                path.display()
            )));
        }
        fs::rename(&part, &path)
            .with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
    }
    Ok(())
}

/// The download time-out: `FASHION_MNIST_TIMEOUT_SECS`, or [`DEFAULT_TIMEOUT_SECS`].
fn timeout_from_env() -> Result<Duration> {
    let value = std::env::var_os("FASHION_MNIST_TIMEOUT_SECS");
    parse_timeout(value.as_ref().map(|v| v.to_string_lossy()).as_deref())
}

fn parse_timeout(value: Option<&str>) -> Result<Duration> {
    match value.map(str::trim) {
        None | Some("") => Ok(Duration::from_secs(DEFAULT_TIMEOUT_SECS)),
        Some(v) => match v.parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
            _ => bail!(
                "FASHION_MNIST_TIMEOUT_SECS must be a whole number of seconds above 0, not '{v}'"
            ),
        },
    }
}

fn read_file_as_gz(path: &Path) -> Result<Vec<u8>> {
    let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    read_limited(
        flate2::read::MultiGzDecoder::new(io::BufReader::new(file)),
        0,
    )
    .map_err(|e| anyhow!("the download {e:#}"))
}

/// Whether `err` or anything under it is an I/O time-out.
fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

fn timeout_note(timeout: Duration) -> String {
    format!(
        "{} s (the time-out; FASHION_MNIST_TIMEOUT_SECS sets it)",
        timeout.as_secs()
    )
}

/// Fetches `url` into the file `part`, checking that the server sent all it announced.
fn fetch(agent: &ureq::Agent, url: &str, part: &Path, timeout: Duration) -> Result<()> {
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, r) => {
            anyhow!("the server answered {code} {}", r.status_text())
        }
        ureq::Error::Transport(t) if is_timeout(&t) => {
            anyhow!("the server did not answer within {}", timeout_note(timeout))
        }
        ureq::Error::Transport(t) => anyhow!("{t}"),
    })?;
    let len = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok());
    let mut out = fs::File::create(part).with_context(|| format!("creating {}", part.display()))?;
    let bar = crate::progress::bytes_bar(len, url);
    let reader = response.into_reader().take(MAX_FILE_BYTES + 1);
    let copied = copy_body(reader, &mut out, len, timeout, |n| bar.inc(n))
        .map_err(|e| e.context(format!("writing {}", part.display())));
    bar.finish_and_clear();
    let copied = copied?;
    ensure!(
        copied <= MAX_FILE_BYTES,
        "the server sent more than {MAX_FILE_BYTES} bytes, more than any Fashion-MNIST file"
    );
    if let Some(len) = len {
        ensure!(
            copied == len,
            "the server sent {copied} of {len} bytes (cut off)"
        );
    }
    out.sync_all()
        .with_context(|| format!("writing {}", part.display()))?;
    Ok(())
}

/// Copies a response body of `len` bytes (when announced) into `out`, telling `progress`
/// of each chunk; returns the bytes copied, or what went wrong in the server's terms.
fn copy_body(
    mut reader: impl Read,
    out: &mut impl Write,
    len: Option<u64>,
    timeout: Duration,
    progress: impl Fn(u64),
) -> Result<u64> {
    let of_len = len.map(|l| format!(" of {l}")).unwrap_or_default();
    let mut buf = vec![0u8; 64 << 10];
    let mut copied = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => bail!(
                "the server sent {copied}{of_len} bytes, then nothing for {}",
                timeout_note(timeout)
            ),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                bail!("the server closed the connection after {copied}{of_len} bytes (cut off)")
            }
            Err(e) => bail!("the connection failed after {copied}{of_len} bytes: {e}"),
        };
        out.write_all(&buf[..n])?;
        copied += n as u64;
        progress(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_comes_from_the_environment_or_defaults_to_30_s() {
        assert_eq!(parse_timeout(None).unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout(Some("")).unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout(Some(" 2 ")).unwrap(), Duration::from_secs(2));
        for bad in ["0", "-1", "1.5", "soon"] {
            let err = parse_timeout(Some(bad)).unwrap_err().to_string();
            assert!(
                err.contains("FASHION_MNIST_TIMEOUT_SECS") && err.contains(bad),
                "{err}"
            );
        }
    }
}
