//! `predict`: photos or drawings turned into what the network saw in training (grey,
//! 28×28, a light garment on a dark background), and the network's top classes for each,
//! for files and whole folders, in batches.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, ensure, Context, Result};
use image::imageops::FilterType;
use image::{GrayImage, ImageFormat, Luma};
use serde::Serialize;
use tch::{nn::ModuleT, Kind, Tensor};

use crate::data::{CLASS_NAMES, SIDE};
use crate::score;

/// The largest width or height accepted: checked from the header, before decoding, so a
/// huge image never gets the memory to decode it.
pub const MAX_SIDE: u32 = 12_000;

/// `--invert`: whether to flip dark and light.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invert {
    /// Flip images whose border is mostly light (a garment photographed on white).
    Auto,
    Yes,
    No,
}

impl FromStr for Invert {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Invert::Auto),
            "yes" => Ok(Invert::Yes),
            "no" => Ok(Invert::No),
            _ => Err(format!("'{s}' is not auto, yes or no")),
        }
    }
}

impl fmt::Display for Invert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Invert::Auto => "auto",
            Invert::Yes => "yes",
            Invert::No => "no",
        })
    }
}

/// Reads a PNG or JPEG of any size and colour mode and returns it as the network's
/// input: 28×28 grey levels in [0, 1], row-major, light garment on a dark background.
pub(crate) fn load_image(path: &Path, invert: Invert) -> Result<Vec<f32>> {
    // before opening it: a FIFO or a device would block the open or never end
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        meta.is_file(),
        "{} is not a regular file (a pipe, socket or device), so not an image",
        path.display()
    );
    let open = || {
        image::io::Reader::open(path)
            .and_then(|r| r.with_guessed_format())
            .with_context(|| format!("reading {}", path.display()))
    };
    let reader = open()?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        _ => bail!("{} is not a PNG or JPEG image", path.display()),
    }
    let (w, h) = reader
        .into_dimensions()
        .with_context(|| format!("{} is not a readable image", path.display()))?;
    ensure!(
        w.max(h) <= MAX_SIDE && w.min(h) > 0,
        "{} is {w}×{h} pixels; images up to {MAX_SIDE}×{MAX_SIDE} are accepted (scale it down first)",
        path.display()
    );
    let decoded = open()?.decode().map_err(|e| match e {
        // the decoder's own bound on memory (512 MiB): a large image of many bytes a pixel
        image::ImageError::Limits(_) => anyhow::anyhow!(
            "{} is {w}×{h} pixels, too many bytes to decode in memory at its colour depth; \
             scale it down first",
            path.display()
        ),
        e => anyhow::Error::new(e).context(format!("{} is not a readable image", path.display())),
    })?;
    let grey = decoded.to_luma8();
    Ok(to_network_input(&grey, invert))
}

/// Grey image → the network's input: inverted where asked (or where the border is mostly
/// light, with `Auto`), padded to a square with the background, shrunk to 28×28.
pub(crate) fn to_network_input(grey: &GrayImage, invert: Invert) -> Vec<f32> {
    let flip = match invert {
        Invert::Yes => true,
        Invert::No => false,
        Invert::Auto => border_mean(grey) > 127.5,
    };
    let mut img = grey.clone();
    if flip {
        image::imageops::invert(&mut img);
    }
    let (w, h) = img.dimensions();
    let side = w.max(h);
    // a square image, or one already 28×28 (as the dataset's are), is used as it is: the
    // padding and the resize would only copy it
    let square = if w == h {
        img
    } else {
        let background = border_mean(&img).round() as u8;
        let mut square = GrayImage::from_pixel(side, side, Luma([background]));
        let (x, y) = ((side - w) / 2, (side - h) / 2);
        image::imageops::overlay(&mut square, &img, i64::from(x), i64::from(y));
        square
    };
    let small = match side == SIDE as u32 {
        true => square,
        false => image::imageops::resize(&square, SIDE as u32, SIDE as u32, FilterType::Triangle),
    };
    small
        .into_raw()
        .into_iter()
        .map(|p| f32::from(p) / 255.0)
        .collect()
}

/// Mean grey level of the outermost pixels.
fn border_mean(img: &GrayImage) -> f64 {
    let (w, h) = img.dimensions();
    let (sum, count) = img
        .enumerate_pixels()
        .filter(|(x, y, _)| *x == 0 || *y == 0 || *x + 1 == w || *y + 1 == h)
        .fold((0u64, 0u64), |(s, c), (_, _, p)| (s + p[0] as u64, c + 1));
    sum as f64 / count.max(1) as f64
}

/// The `k` most likely classes of each image in `images` (`[n, 1, 28, 28]`), with their
/// probabilities, most likely first.
pub fn top_k(net: &impl ModuleT, images: &Tensor, k: i64) -> Vec<Vec<(usize, f64)>> {
    if images.size()[0] == 0 {
        return Vec::new();
    }
    let probs = score::logits(net, images).softmax(-1, Kind::Float);
    let (values, indices) = probs.topk(k, -1, true, true);
    let host = |t: Tensor| t.to_device(tch::Device::Cpu).view([-1]);
    let values = Vec::<f32>::try_from(host(values)).expect("softmax gives floats");
    let indices = Vec::<i64>::try_from(host(indices)).expect("topk gives int64 indices");
    values
        .chunks(k as usize)
        .zip(indices.chunks(k as usize))
        .map(|(v, i)| {
            i.iter()
                .zip(v)
                .map(|(&c, &p)| (c as usize, f64::from(p)))
                .collect()
        })
        .collect()
}

/// The files to classify: each file given, and what is in each folder given but its
/// subfolders, in name order. A path that cannot be looked at is an error that names it
/// and says why ("No such file or directory", "Too many levels of symbolic links"); an
/// entry that is not a regular file (a pipe, a device) is kept, for the classifying to
/// name it, as it does a file that is not an image.
pub fn image_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            let entries = fs::read_dir(path)
                .with_context(|| format!("reading the folder {}", path.display()))?;
            let mut inside: Vec<PathBuf> = entries
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .with_context(|| format!("reading the folder {}", path.display()))?;
            inside.retain(|p| !p.is_dir());
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// What `predict` says of one file: its top classes, or why it could not be read.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Record {
    /// The file as given; a name that is not UTF-8 is shown with its odd bytes replaced.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top: Option<Vec<Guess>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A class and its probability.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Guess {
    pub class: &'static str,
    pub probability: f64,
}

/// Images per forward pass.
const BATCH: usize = 256;

/// Classifies `files` with `net` on `device`, a batch at a time: the `k` most likely
/// classes of each file that is a readable image, and for the others the reason.
pub fn classify_files(
    net: &impl ModuleT,
    files: &[PathBuf],
    invert: Invert,
    device: tch::Device,
    k: i64,
) -> Vec<Record> {
    let mut records = Vec::with_capacity(files.len());
    for chunk in files.chunks(BATCH) {
        let loaded: Vec<Result<Vec<f32>>> = chunk.iter().map(|f| load_image(f, invert)).collect();
        let pixels: Vec<f32> = loaded.iter().flatten().flatten().copied().collect();
        let n = (pixels.len() / (SIDE * SIDE)) as i64;
        let side = SIDE as i64;
        let images = Tensor::from_slice(&pixels)
            .view([n, 1, side, side])
            .to_device(device);
        let mut tops = top_k(net, &images, k).into_iter();
        for (file, image) in chunk.iter().zip(loaded) {
            let (top, error) = match image {
                Ok(_) => (tops.next().map(guesses), None),
                Err(e) => (None, Some(crate::progress::error_text(&e))),
            };
            records.push(Record {
                file: file.to_string_lossy().into_owned(),
                top,
                error,
            });
        }
    }
    records
}

/// Classes by index with their probabilities, as named guesses.
pub fn guesses(top: Vec<(usize, f64)>) -> Vec<Guess> {
    top.into_iter()
        .map(|(c, probability)| Guess {
            class: CLASS_NAMES[c],
            probability,
        })
        .collect()
}

/// One prediction as a line: `Shirt 0.71, T-shirt/top 0.20, Pullover 0.05`.
pub fn describe(top: &[Guess]) -> String {
    top.iter()
        .map(|g| format!("{} {:.2}", g.class, g.probability))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `--test-index A..B` (B excluded) or a single index `A`.
pub fn parse_range(s: &str) -> Result<std::ops::Range<i64>, String> {
    let bad = || format!("'{s}' is not an index range like 0..8 or a single index like 3");
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
        None => {
            let a: i64 = s.parse().map_err(|_| bad())?;
            (a, a + 1)
        }
    };
    if a < 0 || b <= a {
        return Err(format!("'{s}' is an empty or negative range"));
    }
    Ok(a..b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn light_backgrounds_are_inverted_in_auto_mode() {
        // a dark square on white, 100×60: after auto inversion, a light square on black
        let mut img = GrayImage::from_pixel(100, 60, Luma([255]));
        for y in 20..40 {
            for x in 40..60 {
                img.put_pixel(x, y, Luma([0]));
            }
        }
        let px = to_network_input(&img, Invert::Auto);
        assert_eq!(px.len(), 784);
        assert!(px[0] < 0.01, "corner {}", px[0]);
        assert!(px[14 * 28 + 14] > 0.9, "centre {}", px[14 * 28 + 14]);
        let kept = to_network_input(&img, Invert::No);
        assert!(kept[0] > 0.99);
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("0..8"), Ok(0..8));
        assert_eq!(parse_range("5"), Ok(5..6));
        assert!(parse_range("8..2").is_err());
        assert!(parse_range("a..b").is_err());
    }
}
