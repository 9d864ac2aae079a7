//! Your own images: a folder of class folders, as Keras' `image_dataset_from_directory`
//! and torchvision's `ImageFolder` read one. Two layouts:
//! - `train/<class>/…` and `test/<class>/…`: the split is the folders';
//! - `<class>/…` alone: a share of each class ([`Choice::test_share`]) is held out as the
//!   test set, chosen by a draw seeded by the file names alone, so every run (of any
//!   `--seed`) tests on the same images.
//!
//! Class names are the folder names, sorted. PNG and JPEG files of any mode and bit
//! depth are read, in the class folders and below them; hidden files and folders are
//! skipped. Each image is decoded once, in parallel, made into the network's input
//! (`images.rs`) and kept as bytes in one tensor, as the IDX images are.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::{images, Choice, Input, Split};

/// How a folder of images was read, as a run's `config.json` records it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Folders {
    /// The share of each class held out as the test set, for a folder of class folders
    /// alone; `None` for one of `train/` and `test/`.
    pub test_share: Option<f64>,
    /// The images left out because they could not be read (`--skip-unreadable`).
    pub left_out: usize,
}

/// One image file and its class.
#[derive(Clone, Debug)]
struct Labelled {
    path: PathBuf,
    label: i64,
}

/// Whether `dir` looks like a folder of class folders: it holds a folder that is not
/// hidden.
pub(crate) fn is_image_folder(dir: &Path) -> bool {
    visible_entries(dir).is_ok_and(|entries| entries.iter().any(|p| p.is_dir()))
}

/// The images of the folder `dir`, read as `choice` says: the training and test splits
/// on `device`, the input they make, and how they were read. `bars`: show a progress bar
/// while decoding (on a terminal).
pub(crate) fn load(
    dir: &Path,
    choice: &Choice,
    device: Device,
    bars: bool,
) -> Result<(Split, Split, Input, Folders)> {
    let started = Instant::now();
    let (classes, mut train, mut test, test_share) = find(dir, choice.test_share)?;
    let input = input_of(dir, &classes, &train, choice)?;
    if choice.test_only {
        train.clear();
    }
    // a fixed order of the training images, mixed across classes, so that the
    // validation images held out at its end are of every class
    shuffle(&mut train);
    shuffle(&mut test);
    let total = train.len() + test.len();
    let bar = crate::progress::count_bar(total as u64, "decoding images", bars);
    let (train, train_failed) = decode(&train, &input, &bar)?;
    let (test, test_failed) = decode(&test, &input, &bar)?;
    bar.finish_and_clear();
    let failed: Vec<(PathBuf, String)> = train_failed.into_iter().chain(test_failed).collect();
    if !failed.is_empty() && !choice.skip_unreadable {
        let first: Vec<String> = (failed.iter().take(10))
            .map(|(path, why)| format!("{} ({why})", path.display()))
            .collect();
        bail!(
            "{} of the {total} images in {} cannot be read, so no training starts; the first \
             {}: {}. Give --skip-unreadable to train on the rest (nothing is deleted)",
            failed.len(),
            dir.display(),
            first.len(),
            first.join("; ")
        );
    }
    let (train, test) = (train.into_split(device)?, test.into_split(device)?);
    ensure!(
        (choice.test_only || !train.is_empty()) && !test.is_empty(),
        "{} gives {} readable training and {} test images; it needs some of each",
        dir.display(),
        train.len(),
        test.len()
    );
    let folders = Folders {
        test_share,
        left_out: failed.len(),
    };
    if choice.test_only {
        return Ok((train, test, input, folders));
    }
    crate::out!(
        "read {} images of {} classes ({}) from {} in {:.1} s{}",
        total - failed.len(),
        classes.len(),
        input.describe(),
        dir.display(),
        started.elapsed().as_secs_f64(),
        match failed.len() {
            0 => String::new(),
            n => format!(", leaving out {n} that could not be read"),
        }
    )?;
    Ok((train, test, input, folders))
}

/// The classes of `dir` and its training and test images, by its layout; the test share
/// where it was drawn.
type Found = (Vec<String>, Vec<Labelled>, Vec<Labelled>, Option<f64>);

fn find(dir: &Path, test_share: f64) -> Result<Found> {
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    if train_dir.is_dir() && test_dir.is_dir() {
        let classes = class_names(&train_dir)?;
        let test_classes = class_names(&test_dir)?;
        ensure!(
            test_classes == classes,
            "{} has the classes {} and {} the classes {}; they must be the same",
            train_dir.display(),
            classes.join(", "),
            test_dir.display(),
            test_classes.join(", ")
        );
        let train = labelled(&train_dir, &classes)?;
        let test = labelled(&test_dir, &classes)?;
        return Ok((classes, train, test, None));
    }
    let classes = class_names(dir)?;
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let mut files = images_of(&dir.join(class), label as i64)?;
        shuffle(&mut files);
        let held = ((files.len() as f64 * test_share).round() as usize)
            .clamp(usize::from(test_share > 0.0), files.len().saturating_sub(1));
        test.extend(files.drain(..held));
        train.extend(files);
    }
    Ok((classes, train, test, Some(test_share)))
}

/// The class folders of `dir`, sorted: its folders that are not hidden. Errs, naming
/// `dir`, where there are fewer than two.
fn class_names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = visible_entries(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    match names.len() {
        0 => bail!(
            "{} holds no class folders: put each class's images in a folder of its own \
             (<class>/…, or train/<class>/… and test/<class>/…)",
            dir.display()
        ),
        1 => bail!(
            "{} holds one class folder only ({}); a network needs two classes or more to \
             tell apart",
            dir.display(),
            names[0]
        ),
        _ => Ok(names),
    }
}

/// Every image of `classes`' folders in `dir`, labelled by class.
fn labelled(dir: &Path, classes: &[String]) -> Result<Vec<Labelled>> {
    let mut all = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        all.extend(images_of(&dir.join(class), label as i64)?);
    }
    Ok(all)
}

/// The PNG and JPEG files in the class folder `dir` and its folders, sorted, labelled
/// `label`; hidden files and folders skipped. Errs, naming the folder, where there is
/// none.
fn images_of(dir: &Path, label: i64) -> Result<Vec<Labelled>> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for path in visible_entries(&folder)? {
            if path.is_dir() {
                folders.push(path);
            } else if is_image_name(&path) {
                found.push(path);
            }
        }
    }
    ensure!(
        !found.is_empty(),
        "the class folder {} holds no PNG or JPEG images; every class needs some",
        dir.display()
    );
    found.sort();
    Ok(found
        .into_iter()
        .map(|path| Labelled { path, label })
        .collect())
}

/// Whether `path` is named as a PNG or JPEG file is.
fn is_image_name(path: &Path) -> bool {
    let extension = path.extension().map(|e| e.to_string_lossy().to_lowercase());
    matches!(extension.as_deref(), Some("png" | "jpg" | "jpeg"))
}

/// The entries of the folder `dir` whose names do not begin with a dot.
fn visible_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading the folder {}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading the folder {}", dir.display()))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            paths.push(entry.path());
        }
    }
    Ok(paths)
}

/// The network's input for the images of `classes` as `choice` says: its side and
/// channels where given, else as the training images are, from their headers: their
/// size where they all have one (the longer side of it), and grey where every one is.
fn input_of(dir: &Path, classes: &[String], train: &[Labelled], choice: &Choice) -> Result<Input> {
    let needs_headers = choice.image_size.is_none() || choice.channels.is_none();
    let (mut sizes, mut colour) = (Vec::<((u32, u32), &Path)>::new(), false);
    if needs_headers {
        for image in train {
            // an unreadable header is left to the decoding, which names every such file
            if let Ok((size, in_colour)) = header(&image.path) {
                if !sizes.iter().any(|(s, _)| *s == size) {
                    sizes.push((size, &image.path));
                }
                colour |= in_colour;
            }
        }
    }
    let size = match (choice.image_size, &sizes[..]) {
        (Some(size), _) => size,
        (None, [((w, h), _)]) => i64::from(*w.max(h)),
        (None, []) => bail!(
            "{} has no training image whose size can be read",
            dir.display()
        ),
        (None, [(a, first), (b, second), ..]) => bail!(
            "the images in {} are of different sizes ({} is {}×{}, {} is {}×{}); give \
             --image-size N to make each N×N",
            dir.display(),
            first.display(),
            a.0,
            a.1,
            second.display(),
            b.0,
            b.1
        ),
    };
    Ok(Input {
        size,
        channels: choice.channels.unwrap_or(if colour { 3 } else { 1 }),
        classes: classes.to_vec(),
    })
}

/// The size of the image at `path` and whether it is in colour, from its header.
fn header(path: &Path) -> Result<((u32, u32), bool)> {
    use image::ImageDecoder;
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let reader = image::io::Reader::new(file).with_guessed_format()?;
    let file = reader.into_inner();
    let (size, colour) = match path.extension().map(|e| e.to_string_lossy().to_lowercase()) {
        Some(e) if e == "png" => {
            let d = image::codecs::png::PngDecoder::new(file)?;
            (d.dimensions(), d.color_type().has_color())
        }
        _ => {
            let d = image::codecs::jpeg::JpegDecoder::new(file)?;
            (d.dimensions(), d.color_type().has_color())
        }
    };
    Ok((size, colour))
}

/// The images of a split as decoded: their bytes in one tensor (`[n, C, S, S]`, on the
/// CPU), which of them were read, and their labels.
struct Decoded {
    pixels: Tensor,
    readable: Vec<bool>,
    labels: Vec<i64>,
}

/// Images per piece a thread decodes before copying it into the tensor.
const PIECE: usize = 256;

/// Decodes `images` into `input`'s bytes, on every core, a piece at a time straight into
/// one tensor (so the peak is the tensor and a piece per thread), counting each on
/// `bar`; returns them and the files that could not be read, with why.
fn decode(
    files: &[Labelled],
    input: &Input,
    bar: &indicatif::ProgressBar,
) -> Result<(Decoded, Vec<(PathBuf, String)>)> {
    let values = input.values() as usize;
    let shape = [files.len() as i64, input.channels, input.size, input.size];
    let pixels = Tensor::f_zeros(shape, (Kind::Uint8, Device::Cpu))
        .map_err(|e| anyhow::anyhow!("{}", crate::progress::libtorch_text(&e)))
        .with_context(|| {
            format!(
                "making room for {} images of {}",
                files.len(),
                input.describe()
            )
        })?;
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let readable = Mutex::new(vec![true; files.len()]);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            // a view of the one tensor for each thread, each writing its own pieces
            let pixels = pixels.shallow_clone();
            let (next, failed, readable) = (&next, &failed, &readable);
            s.spawn(move || loop {
                let start = next.fetch_add(PIECE, Ordering::Relaxed);
                if start >= files.len() {
                    break;
                }
                let piece = &files[start..(start + PIECE).min(files.len())];
                let mut bytes = vec![0u8; piece.len() * values];
                for (i, image) in piece.iter().enumerate() {
                    let slot = &mut bytes[i * values..(i + 1) * values];
                    match images::open(&image.path) {
                        Ok(decoded) => {
                            slot.copy_from_slice(&images::prepare(&decoded, input, false))
                        }
                        Err(e) => {
                            let why = crate::progress::error_text(&e);
                            if let Ok(mut r) = readable.lock() {
                                r[start + i] = false;
                            }
                            if let Ok(mut f) = failed.lock() {
                                f.push((image.path.clone(), why));
                            }
                        }
                    }
                    bar.inc(1);
                }
                let mut view = pixels.narrow(0, start as i64, piece.len() as i64);
                view.copy_(&Tensor::from_slice(&bytes).view(view.size().as_slice()));
            });
        }
    });
    let mut failed = failed.into_inner().unwrap_or_default();
    failed.sort();
    let decoded = Decoded {
        pixels,
        readable: readable.into_inner().unwrap_or_default(),
        labels: files.iter().map(|i| i.label).collect(),
    };
    Ok((decoded, failed))
}

impl Decoded {
    /// The readable images as a split on `device`: the others left out, the ones after
    /// them moved up in place (no second copy of the tensor).
    fn into_split(self, device: Device) -> Result<Split> {
        let mut kept = 0;
        let mut labels = Vec::with_capacity(self.labels.len());
        for (i, &ok) in self.readable.iter().enumerate() {
            if ok {
                if kept != i {
                    let mut to = self.pixels.narrow(0, kept as i64, 1);
                    to.copy_(&self.pixels.narrow(0, i as i64, 1));
                }
                labels.push(self.labels[i]);
                kept += 1;
            }
        }
        let pixels = self.pixels.narrow(0, 0, kept as i64);
        let moved = || -> Result<Split, tch::TchError> {
            Ok(Split {
                pixels: pixels.f_to_device(device)?,
                labels: Tensor::from_slice(&labels).f_to_device(device)?,
            })
        };
        moved().map_err(|e| {
            anyhow::anyhow!(
                "moving the data to {device:?}: {}",
                crate::progress::libtorch_text(&e)
            )
        })
    }
}

/// Shuffles `images` by a draw seeded by their paths alone (SplitMix64 from a fixed
/// seed, a Fisher-Yates shuffle of them sorted), so that the same files always come out
/// in the same order.
fn shuffle(images: &mut [Labelled]) {
    images.sort_by(|a, b| a.path.cmp(&b.path));
    let mut state: u64 = 0x5eed_f01d_e25f_0000;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..images.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        images.swap(i, j);
    }
}

/// Writes the images of `split` (as `input` has them) as PNG files into `dir`, a folder
/// per class named as `input` names it: `dir/<class>/<n>.png`, numbered in the split's
/// order. For a dataset in the IDX layout to be read back as a folder of images.
pub fn write(split: &Split, input: &Input, dir: &Path) -> Result<()> {
    let (side, channels) = (input.size as u32, input.channels as usize);
    for class in &input.classes {
        let folder = dir.join(class);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    let pixels = split.pixels.to_device(Device::Cpu).contiguous();
    let labels = Vec::<i64>::try_from(&split.labels.to_device(Device::Cpu))?;
    let values = input.values() as usize;
    let mut bytes = vec![0u8; pixels.numel()];
    pixels.f_copy_data_u8(&mut bytes, pixels.numel())?;
    for (i, (image, &label)) in bytes.chunks(values).zip(&labels).enumerate() {
        let path = dir.join(input.class(label)).join(format!("{i:05}.png"));
        let written = match channels {
            1 => image::GrayImage::from_raw(side, side, image.to_vec()).map(|g| g.save(&path)),
            _ => {
                // the planes back into pixels
                let plane = (side * side) as usize;
                let rgb = (0..plane)
                    .flat_map(|p| (0..channels).map(move |c| image[c * plane + p]))
                    .collect();
                image::RgbImage::from_raw(side, side, rgb).map(|c| c.save(&path))
            }
        };
        match written {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e).with_context(|| format!("writing {}", path.display())),
            None => bail!("image {i} of the split is not {side}×{side}"),
        }
    }
    Ok(())
}
