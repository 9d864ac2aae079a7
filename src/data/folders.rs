//! Your own images: a folder of class folders, as Keras' `image_dataset_from_directory`
//! and torchvision's `ImageFolder` read one. Two layouts:
//! - `train/<class>/…` and `test/<class>/…`: the split is the folders';
//! - `<class>/…` alone: a share of each class ([`Choice::test_share`]) is held out as the
//!   test set, chosen by a draw seeded by the file names alone, so every run (of any
//!   `--seed`) tests on the same images.
//!
//! Class names are the folder names, sorted. PNG and JPEG files of any mode and bit
//! depth are read, by their content, in the class folders and below them; hidden files
//! and folders are skipped, and so are links to folders below a class folder
//! (`folders/listing.rs`). Each image is decoded once, in parallel, made into the
//! network's input (`images.rs`) and kept as bytes in one tensor, as the IDX images are
//! (`folders/decode.rs`).

mod decode;
mod listing;

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

use super::{Choice, Input, Split};
use decode::decode;
pub(crate) use listing::visible_entries;
use listing::{find, list_digest, shuffle, Labelled};

/// How a folder of images was read, as a run's `config.json` records it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Folders {
    /// The share of each class held out as the test set, for a folder of class folders
    /// alone; `None` for one of `train/` and `test/`.
    pub test_share: Option<f64>,
    /// The images left out because they could not be read (`--skip-unreadable`).
    pub left_out: usize,
    /// The SHA-256 of the list of images, of each split the labels and the paths within
    /// the folder (`listing.rs`), by which a resumed run and its readers know that the
    /// folder still holds the very images (and test split) it had. `None` in the runs of
    /// before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<String>,
}

impl Folders {
    /// Errs where these images, read from `dir`, are not those `had` records, the ones a
    /// saved run in `run` was trained on (files added, removed or renamed since): with
    /// class folders alone the test images would be drawn anew, some of them trained on.
    /// `what`: what to do instead. Runs of before the list was kept pass.
    pub fn ensure_same_images(
        &self,
        had: &Folders,
        dir: &Path,
        run: &Path,
        what: &str,
    ) -> Result<()> {
        if let (Some(had), Some(now)) = (&had.images, &self.images) {
            ensure!(
                had == now,
                "{}: the images in {} are not the ones the run was trained on (files were \
                 added, removed or renamed since, or it is another folder); {what}",
                run.display(),
                dir.display()
            );
        }
        Ok(())
    }
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
    let images = list_digest(dir, &train, &test);
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
    let failed: Vec<_> = train_failed.into_iter().chain(test_failed).collect();
    if !choice.skip_unreadable {
        decode::refuse_unreadable(&failed, total, dir, choice.test_only)?;
    }
    if !choice.test_only {
        train.ensure_every_class(&classes)?;
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
        images: Some(images),
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

/// The size of the image at `path` and whether it is in colour, from its header: of a
/// regular file (a FIFO would block the open), PNG or JPEG by its content, whatever its
/// name says.
fn header(path: &Path) -> Result<((u32, u32), bool)> {
    use image::{ImageDecoder, ImageFormat};
    ensure!(std::fs::metadata(path)?.is_file(), "not a regular file");
    let reader = image::io::Reader::open(path)?.with_guessed_format()?;
    let format = reader.format();
    let file = reader.into_inner();
    let (size, colour) = match format {
        Some(ImageFormat::Png) => {
            let d = image::codecs::png::PngDecoder::new(file)?;
            (d.dimensions(), d.color_type().has_color())
        }
        Some(ImageFormat::Jpeg) => {
            let d = image::codecs::jpeg::JpegDecoder::new(file)?;
            (d.dimensions(), d.color_type().has_color())
        }
        _ => bail!("not a PNG or JPEG image"),
    };
    Ok((size, colour))
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
