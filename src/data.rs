//! Fashion-MNIST: finding, downloading and checking its four IDX files, parsing them, and
//! holding the result as tensors on the training device.
//!
//! The files are read whole (the largest is 47 MB decompressed), checked against the
//! SHA-256 of their decompressed bytes, then parsed with every header field checked before
//! any tensor is built. The IDX format itself (parsing, encoding, the bounded reader) is in
//! [`idx`](self::idx), which has no tch dependency so the fuzz target can compile it alone.
//!
//! Every error about a file names it: "`<file>` is corrupt: …", "`<file>` is not an IDX
//! image file: …".

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

/// The ten classes, in label order.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

mod idx;

pub use idx::{
    encode_images, encode_labels, parse_images, parse_labels, read_limited, MAX_FILE_BYTES,
    NUM_CLASSES, SIDE,
};

/// Where the official files live; `FASHION_MNIST_URL` replaces it (a mirror, or a test).
pub const OFFICIAL_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com";

/// Seconds a download waits for the server to connect or to send more data, unless
/// `FASHION_MNIST_TIMEOUT_SECS` says otherwise.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// One of the four files: its name without `.gz`, and the SHA-256 of its decompressed bytes
/// (the same for upstream's files and Debian's recompressed ones).
struct IdxFile {
    stem: &'static str,
    sha256: &'static str,
}

const TRAIN_IMAGES: IdxFile = IdxFile {
    stem: "train-images-idx3-ubyte",
    sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
};
const TRAIN_LABELS: IdxFile = IdxFile {
    stem: "train-labels-idx1-ubyte",
    sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
};
const TEST_IMAGES: IdxFile = IdxFile {
    stem: "t10k-images-idx3-ubyte",
    sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
};
const TEST_LABELS: IdxFile = IdxFile {
    stem: "t10k-labels-idx1-ubyte",
    sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
};
const FILES: [IdxFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Images as `[n, 1, 28, 28]` bytes, as the files hold them, and labels as `[n]` int64,
/// on one device. Batches become network inputs (floats in [0, 1]) as they are cut
/// ([`Split::images`]): the whole set never exists as floats, which saves the loading
/// time and three quarters of the memory.
pub struct Split {
    pub pixels: Tensor,
    pub labels: Tensor,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    /// Examples `start..start + len` as network inputs, `[len, 1, 28, 28]`.
    pub fn images(&self, start: i64, len: i64) -> Tensor {
        inputs(&self.pixels.narrow(0, start, len))
    }

    /// The examples at the indices `idx` as network inputs, `[idx.len, 1, 28, 28]`.
    pub fn images_at(&self, idx: &Tensor) -> Tensor {
        inputs(&self.pixels.index_select(0, idx))
    }

    /// True when the split holds no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `len - n` examples and the last `n`, as two splits (views, no copy).
    /// Keras' `validation_split` holds out the end of the set the same way.
    pub fn split_off_last(&self, n: i64) -> (Split, Split) {
        let keep = self.len() - n;
        let part = |start, len| Split {
            pixels: self.pixels.narrow(0, start, len),
            labels: self.labels.narrow(0, start, len),
        };
        (part(0, keep), part(keep, n))
    }
}

/// The training and test splits.
pub struct Dataset {
    pub train: Split,
    pub test: Split,
    /// The folder the files were read from.
    pub dir: PathBuf,
}

/// The folders searched, in order, when no `--data-dir` is given.
pub fn default_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from("data/fashion-mnist"),
        PathBuf::from("/usr/share/datasets/fashion-mnist"),
    ]
}

/// Finds the dataset and loads it onto `device`.
///
/// With `dir` given (`--data-dir` or `FASHION_MNIST_DIR`), only that folder is used.
/// Otherwise the default folders are searched and, when none has the files, they are
/// downloaded into `data/fashion-mnist`.
pub fn load(dir: Option<&Path>, device: Device) -> Result<Dataset> {
    let dir = match dir {
        Some(dir) => {
            if let Some(missing) = missing_files(dir).first() {
                bail!(
                    "{} has no {missing}(.gz); the folder needs the four Fashion-MNIST files {}.\n{}",
                    dir.display(),
                    stems(),
                    how_to_get()
                );
            }
            dir.to_path_buf()
        }
        None => match default_dirs().into_iter().find(|d| has_dataset(d)) {
            Some(dir) => dir,
            None => download_default()?,
        },
    };
    load_dir(&dir, device)
}

/// Downloads the dataset into `data/fashion-mnist` from `FASHION_MNIST_URL` (or the
/// official location); on failure, one error that says where it looked, what the download
/// did, and the ways to get the data.
fn download_default() -> Result<PathBuf> {
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
fn download_url() -> String {
    match std::env::var("FASHION_MNIST_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => OFFICIAL_URL.into(),
    }
}

fn how_to_get() -> String {
    format!(
        "Ways to get it: (1) apt-get install dataset-fashion-mnist (Debian, into \
         /usr/share/datasets/fashion-mnist; scripts/setup_libtorch.sh does this as root); \
         (2) put the four files in a folder and pass --data-dir DIR or set FASHION_MNIST_DIR; \
         (3) run without --data-dir while {} is reachable and they are downloaded into \
         data/fashion-mnist (FASHION_MNIST_URL names a mirror; FASHION_MNIST_TIMEOUT_SECS \
         how long to wait for it).",
        download_url()
    )
}

fn stems() -> String {
    FILES.iter().map(|f| f.stem).collect::<Vec<_>>().join(", ")
}

/// Whether `dir` holds all four files (raw or gzipped).
pub fn has_dataset(dir: &Path) -> bool {
    missing_files(dir).is_empty()
}

/// The files of the dataset that `dir` lacks (neither raw nor gzipped).
fn missing_files(dir: &Path) -> Vec<&'static str> {
    FILES
        .iter()
        .filter(|f| find_file(dir, f.stem).is_none())
        .map(|f| f.stem)
        .collect()
}

/// `dir/stem.gz` or `dir/stem`, whichever exists (gzipped first).
fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [dir.join(format!("{stem}.gz")), dir.join(stem)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Loads the four files from `dir` onto `device`.
///
/// Files with the official counts (60,000 training and 10,000 test examples) must be the
/// real Fashion-MNIST: the SHA-256 of their decompressed bytes is checked. Other counts
/// (a subset, synthetic data in tests, one's own IDX files) get the structure checks only.
pub fn load_dir(dir: &Path, device: Device) -> Result<Dataset> {
    // the test files load on a second thread while the larger training files load here
    let (train, test) = std::thread::scope(|s| {
        let test = s.spawn(|| load_split(dir, &TEST_IMAGES, &TEST_LABELS, 10_000, device));
        let train = load_split(dir, &TRAIN_IMAGES, &TRAIN_LABELS, 60_000, device);
        (train, test.join())
    });
    let test = test.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    Ok(Dataset {
        train: train?,
        test: test?,
        dir: dir.to_path_buf(),
    })
}

fn load_split(
    dir: &Path,
    images: &IdxFile,
    labels: &IdxFile,
    official_count: usize,
    device: Device,
) -> Result<Split> {
    let (image_path, image_bytes) = read_checked(dir, images, official_count * SIDE * SIDE + 16)?;
    let (label_path, label_bytes) = read_checked(dir, labels, official_count + 8)?;
    let pixels = parse_images(&image_bytes).map_err(|e| named(&image_path, e))?;
    let labels = parse_labels(&label_bytes).map_err(|e| named(&label_path, e))?;
    let n = labels.len();
    ensure!(
        pixels.len() == n * SIDE * SIDE,
        "{} holds {} images but {} holds {n} labels; they must be the same count",
        image_path.display(),
        pixels.len() / (SIDE * SIDE),
        label_path.display()
    );
    Ok(split_tensors(pixels, labels, device))
}

/// Reads one of the four files; when it has the official length, its SHA-256 must match.
fn read_checked(dir: &Path, file: &IdxFile, official_len: usize) -> Result<(PathBuf, Vec<u8>)> {
    let path = find_file(dir, file.stem).with_context(|| {
        format!(
            "{} has no {}(.gz).\n{}",
            dir.display(),
            file.stem,
            how_to_get()
        )
    })?;
    let bytes = read_file(&path)?;
    if bytes.len() == official_len {
        let got = hex(&Sha256::digest(&bytes));
        ensure!(
            got == file.sha256,
            "{} is corrupt: its content has SHA-256 {got}, but Fashion-MNIST's {} has {}. \
             Delete it and get the dataset again.",
            path.display(),
            file.stem,
            file.sha256
        );
    }
    Ok((path, bytes))
}

/// Builds a split from raw pixels (row-major 28×28 bytes per image) and labels.
pub fn split_tensors(pixels: &[u8], labels: &[u8], device: Device) -> Split {
    let n = labels.len() as i64;
    let side = SIDE as i64;
    let pixels = Tensor::from_slice(pixels)
        .view([n, 1, side, side])
        .to_device(device);
    let labels = Tensor::from_slice(labels)
        .to_kind(Kind::Int64)
        .to_device(device);
    Split { pixels, labels }
}

/// Bytes to network inputs: floats scaled to [0, 1], as in the lesson.
pub fn inputs(pixels: &Tensor) -> Tensor {
    pixels.to_kind(Kind::Float) / 255.0
}

/// Completes one of [`idx`](self::idx)'s predicate errors with the file's name:
/// "`<path>` is corrupt: …".
fn named(path: &Path, err: anyhow::Error) -> anyhow::Error {
    anyhow!("{} {err:#}", path.display())
}

/// Reads a whole IDX file, gunzipping it when its name ends in `.gz`. A gzip stream that
/// ends early or does not decode gives "`<path>` is corrupt: …".
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let result = if gz {
        // read whole, so the decompressed size in the gzip trailer sizes the buffer once
        let mut compressed = Vec::new();
        io::Read::read_to_end(&mut io::BufReader::new(file), &mut compressed)
            .with_context(|| format!("reading {}", path.display()))?;
        let size = compressed
            .last_chunk()
            .map_or(0, |&trailer| u32::from_le_bytes(trailer) as usize);
        read_limited(flate2::read::GzDecoder::new(&compressed[..]), size)
    } else {
        let size = file.metadata().map_or(0, |m| m.len() as usize);
        read_limited(file, size)
    };
    result.map_err(|e| named(path, e))
}

/// Writes a dataset in the IDX layout (raw, not gzipped) into `dir`: train and test
/// pixels (28×28 bytes per image) and labels.
pub fn write_idx_dir(dir: &Path, train: (&[u8], &[u8]), test: (&[u8], &[u8])) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        (TRAIN_IMAGES.stem, encode_images(train.0)),
        (TRAIN_LABELS.stem, encode_labels(train.1)),
        (TEST_IMAGES.stem, encode_images(test.0)),
        (TEST_LABELS.stem, encode_labels(test.1)),
    ];
    for (stem, bytes) in files {
        let path = dir.join(stem);
        fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    read_limited(flate2::read::GzDecoder::new(io::BufReader::new(file)), 0)
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
    let of_len = len.map(|l| format!(" of {l}")).unwrap_or_default();
    let mut out = fs::File::create(part).with_context(|| format!("creating {}", part.display()))?;
    let bar = crate::progress::bytes_bar(len, url);
    let mut reader = response.into_reader().take(MAX_FILE_BYTES + 1);
    let mut buf = vec![0u8; 64 << 10];
    let mut copied = 0u64;
    let copy = loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                break Err(anyhow!(
                    "the server sent {copied}{of_len} bytes, then nothing for {}",
                    timeout_note(timeout)
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                break Err(anyhow!(
                    "the server closed the connection after {copied}{of_len} bytes (cut off)"
                ))
            }
            Err(e) => {
                break Err(anyhow!(
                    "the connection failed after {copied}{of_len} bytes: {e}"
                ))
            }
        };
        if let Err(e) = out.write_all(&buf[..n]) {
            break Err(anyhow!(e).context(format!("writing {}", part.display())));
        }
        copied += n as u64;
        bar.inc(n as u64);
    };
    bar.finish_and_clear();
    copy?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let px = vec![0u8; 3 * 784];
        write_idx_dir(dir.path(), (&px, &[1, 2]), (&px, &[1, 2, 3])).unwrap();
        let err = load_dir(dir.path(), Device::Cpu).err().unwrap().to_string();
        assert!(
            err.contains("3 images") && err.contains("2 labels") && err.contains("train-labels"),
            "{err}"
        );
    }

    #[test]
    fn synthetic_files_load_as_scaled_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let mut px = vec![0u8; 2 * 784];
        px[0] = 255;
        write_idx_dir(dir.path(), (&px, &[5, 6]), (&px[..784], &[7])).unwrap();
        let data = load_dir(dir.path(), Device::Cpu).unwrap();
        assert_eq!(data.train.pixels.size(), [2, 1, 28, 28]);
        assert_eq!(data.test.len(), 1);
        let images = data.train.images(0, 2);
        assert_eq!(images.kind(), Kind::Float);
        assert_eq!(images.double_value(&[0, 0, 0, 0]), 1.0);
        assert_eq!(images.double_value(&[1, 0, 0, 0]), 0.0);
        assert_eq!(data.train.labels.int64_value(&[1]), 6);
    }

    #[test]
    fn a_file_of_official_size_with_other_content_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(TRAIN_LABELS.stem),
            encode_labels(&[3; 60_000]),
        )
        .unwrap();
        let err = read_checked(dir.path(), &TRAIN_LABELS, 60_008)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train-labels-idx1-ubyte is corrupt") && err.contains("SHA-256"),
            "{err}"
        );
    }

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

    #[test]
    fn a_damaged_gz_file_is_named_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gz");
        fs::write(&path, b"<html>not found</html>").unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} is corrupt: it does not decompress (invalid gzip header)",
                path.display()
            )
        );
    }
}
