//! Fashion-MNIST: finding and checking its four IDX files, parsing them, and holding the
//! result as tensors on the training device. Fetching them over HTTP is in [`download`].
//!
//! The files are read whole (the largest is 47 MB decompressed), checked against the
//! SHA-256 of their decompressed bytes, then parsed with every header field checked before
//! any tensor is built. The IDX format itself (parsing, encoding, the bounded reader) is in
//! `idx`, which has no tch dependency so the fuzz target can compile it alone.
//!
//! Every error about a file names it: "`<file>` is corrupt: …", "`<file>` is not an IDX
//! image file: …".

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use tch::{Device, Kind, Tensor};

use crate::progress::libtorch_text;

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

pub mod download;
pub mod folders;
mod idx;
pub mod images;
mod input;

pub use idx::{
    encode_images, encode_labels, gzip, parse_images, parse_labels, read_limited, MAX_FILE_BYTES,
    NUM_CLASSES, SIDE,
};
pub use input::Input;

/// One of the four files: its name without `.gz`, and the SHA-256 of its decompressed bytes
/// (the same for upstream's files and Debian's recompressed ones).
pub(crate) struct IdxFile {
    pub(crate) stem: &'static str,
    pub(crate) sha256: &'static str,
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
pub(crate) const FILES: [IdxFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Images as `[n, C, S, S]` bytes (`[n, 1, 28, 28]` for Fashion-MNIST), and labels as `[n]` int64,
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

    /// Examples `start..start + len` as network inputs, `[len, C, S, S]`.
    pub fn images(&self, start: i64, len: i64) -> Tensor {
        inputs(&self.pixels.narrow(0, start, len))
    }

    /// The examples at the indices `idx` as network inputs, `[idx.len, C, S, S]`.
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
    /// What a network takes in and gives out on this data.
    pub input: Input,
    /// For a folder of images: how it was read. `None`: Fashion-MNIST's IDX files.
    pub folders: Option<folders::Folders>,
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

/// Which data a run reads, and how a folder of images is made into the network's input.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// The folder: Fashion-MNIST's four IDX files, or a folder of class folders. `None`:
    /// Fashion-MNIST from the default places, downloaded when none has it.
    pub dir: Option<PathBuf>,
    /// For a folder of images: the side of the network's square input (`None`: the
    /// images' own, where they all have one).
    pub image_size: Option<i64>,
    /// For a folder of images: 1 (grey) or 3 (colour) (`None`: 3 where any image is in
    /// colour, else 1).
    pub channels: Option<i64>,
    /// For a folder of class folders alone: the share of each class held out as the test
    /// set (`None`: [`DEFAULT_TEST_SHARE`]).
    pub test_share: Option<f64>,
    /// For a folder of images: train on the rest where some cannot be read.
    pub skip_unreadable: bool,
    /// Show a progress bar while a folder's images are decoded (on a terminal).
    pub bars: bool,
    /// For a folder of images: read the test images alone (the training split comes out
    /// empty), for a reader of a saved run.
    pub test_only: bool,
}

impl Default for Choice {
    /// Fashion-MNIST, from the default places.
    fn default() -> Choice {
        Choice {
            dir: None,
            image_size: None,
            channels: None,
            test_share: None,
            skip_unreadable: false,
            bars: false,
            test_only: false,
        }
    }
}

/// The share of each class held out as the test set of a folder of class folders alone:
/// the Keras tutorial's `validation_split=0.2`.
pub const DEFAULT_TEST_SHARE: f64 = 0.2;

/// Finds the data `choice` names and loads it onto `device`.
///
/// With a folder given (`--data-dir` or `FASHION_MNIST_DIR`), only that folder is used:
/// Fashion-MNIST's four IDX files, or a folder of class folders (`folders.rs`). Otherwise
/// the default folders are searched for the IDX files and, when none has them, they are
/// downloaded into `data/fashion-mnist`.
pub fn load(choice: &Choice, device: Device) -> Result<Dataset> {
    let dir = match &choice.dir {
        Some(dir) if !has_dataset(dir) && folders::is_image_folder(dir) => {
            let (train, test, input, read) = folders::load(dir, choice, device, choice.bars)?;
            return Ok(Dataset {
                train,
                test,
                input,
                dir: dir.clone(),
                folders: Some(read),
            });
        }
        Some(dir) => {
            ensure!(
                dir.is_dir(),
                "the data folder {} does not exist (or is not a folder); give --data-dir a \
                 folder with the four Fashion-MNIST files, or class folders of images",
                dir.display()
            );
            if let Some(missing) = missing_files(dir).first() {
                bail!(
                    "{} has no {missing}(.gz); the folder needs the four Fashion-MNIST files {}, \
                     or class folders of PNG or JPEG images (<class>/…, or train/<class>/… \
                     and test/<class>/…).\n{}",
                    dir.display(),
                    stems(),
                    how_to_get()
                );
            }
            dir.clone()
        }
        None => match default_dirs().into_iter().find(|d| has_dataset(d)) {
            Some(dir) => dir,
            None => download::download_default()?,
        },
    };
    let fashion = Input::fashion_mnist();
    for (given, flag, theirs) in [
        (choice.image_size, "--image-size", fashion.size),
        (choice.channels, "--channels", fashion.channels),
    ] {
        if let Some(n) = given.filter(|&n| n != theirs) {
            bail!(
                "{flag} {n}: {} holds Fashion-MNIST's IDX files, whose images are 28×28 \
                 grey; {flag} is for a folder of images of your own",
                dir.display()
            );
        }
    }
    if let Some(share) = choice.test_share {
        bail!(
            "--test-share {share}: {} holds Fashion-MNIST's IDX files, whose test set is its \
             own 10,000 images; --test-share is for a folder of class folders alone",
            dir.display()
        );
    }
    load_dir(&dir, device)
}

/// The ways to get the dataset, for error messages.
fn how_to_get() -> String {
    format!(
        "Ways to get it: (1) apt-get install dataset-fashion-mnist (Debian, into \
         /usr/share/datasets/fashion-mnist; scripts/setup_libtorch.sh does this as root); \
         (2) put the four files in a folder and pass --data-dir DIR or set FASHION_MNIST_DIR; \
         (3) run without --data-dir while {} is reachable and they are downloaded into \
         data/fashion-mnist (FASHION_MNIST_URL names a mirror; FASHION_MNIST_TIMEOUT_SECS \
         how long to wait for it).",
        download::download_url()
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
        input: Input::fashion_mnist(),
        dir: dir.to_path_buf(),
        folders: None,
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
        n > 0,
        "{} holds no labels; a dataset needs images to train on and images to test on",
        label_path.display()
    );
    ensure!(
        pixels.len() == n * SIDE * SIDE,
        "{} holds {} images but {} holds {n} labels; they must be the same count",
        image_path.display(),
        pixels.len() / (SIDE * SIDE),
        label_path.display()
    );
    split_tensors(pixels, labels, device)
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
/// Errs with libtorch's message when the device cannot take them (out of memory).
pub(crate) fn split_tensors(pixels: &[u8], labels: &[u8], device: Device) -> Result<Split> {
    let n = labels.len() as i64;
    let side = SIDE as i64;
    let moved = || -> Result<Split, tch::TchError> {
        let pixels = Tensor::from_slice(pixels)
            .view([n, 1, side, side])
            .f_to_device(device)?;
        let labels = Tensor::from_slice(labels)
            .to_kind(Kind::Int64)
            .f_to_device(device)?;
        Ok(Split { pixels, labels })
    };
    moved().map_err(|e| anyhow!("moving the data to {device:?}: {}", libtorch_text(&e)))
}

/// Bytes to network inputs: floats scaled to [0, 1], as in the lesson.
pub fn inputs(pixels: &Tensor) -> Tensor {
    pixels.to_kind(Kind::Float) / 255.0
}

/// Completes one of `idx`'s predicate errors with the file's name:
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
        // every member, as gunzip and zcat read them, not only the first
        read_limited(flate2::read::MultiGzDecoder::new(&compressed[..]), size)
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

/// Bytes as lowercase hexadecimal, as SHA-256 sums are written.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
