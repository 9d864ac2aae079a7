//! `predict`: photos or drawings turned into what the network saw in training (for
//! Fashion-MNIST: grey, 28×28, a light garment on a dark background; for a folder of
//! one's own images: their size and colour), and the network's top classes for each, for
//! files and whole folders, in batches.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use image::DynamicImage;
use serde::Serialize;
use tch::{nn::ModuleT, Kind, Tensor};

use crate::data::{images, Input};
use crate::score;

/// `--invert`: whether to flip dark and light.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invert {
    /// For a network trained on Fashion-MNIST, flip images whose border is mostly light
    /// (a garment photographed on white); others' images go as they are.
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

impl Invert {
    /// Whether to flip `image`: where asked, or, with `Auto` for a network that saw
    /// light garments on a dark background (`light_garments`: Fashion-MNIST's), where
    /// its border is mostly light.
    fn flip(self, image: &DynamicImage, light_garments: bool) -> bool {
        match self {
            Invert::Yes => true,
            Invert::No => false,
            Invert::Auto => light_garments && images::light_border(image),
        }
    }
}

/// Reads a PNG or JPEG of any size and colour mode and returns it as the network's
/// input for `input` (`[C, S, S]`, values in [0, 1]): as in training
/// ([`images::prepare`]), flipped as `invert` says.
pub(crate) fn load_image(path: &Path, input: &Input, invert: Invert) -> Result<Vec<f32>> {
    let image = images::open(path)?;
    let flip = invert.flip(&image, *input == Input::fashion_mnist());
    let bytes = images::prepare(&image, input, flip);
    Ok(bytes.into_iter().map(|p| f32::from(p) / 255.0).collect())
}

/// The `k` most likely classes of each image in `images` (`[n, C, S, S]`), with their
/// probabilities, most likely first: all of them where the network has `k` or fewer.
pub fn top_k(net: &impl ModuleT, images: &Tensor, k: i64) -> Vec<Vec<(usize, f64)>> {
    if images.size()[0] == 0 {
        return Vec::new();
    }
    let probs = score::logits(net, images).softmax(-1, Kind::Float); // [n, classes]
    let k = k.min(probs.size()[1]);
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
/// subfolders and hidden files (`.DS_Store`, as training skips them), in name order. A
/// path that cannot be looked at is an error that names it and says why ("No such file
/// or directory", "Too many levels of symbolic links"); an entry that is not a regular
/// file (a pipe, a device) is kept, for the classifying to name it, as it does a file
/// that is not an image.
pub fn image_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            let mut inside = crate::data::folders::visible_entries(path)?;
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
    pub class: String,
    pub probability: f64,
}

/// Images per forward pass.
const BATCH: usize = 256;

/// Classifies `files` with `net` (whose input is `input`) on `device`, a batch at a
/// time: the `k` most likely classes of each file that is a readable image, and for the
/// others the reason.
pub fn classify_files(
    net: &impl ModuleT,
    input: &Input,
    files: &[PathBuf],
    invert: Invert,
    device: tch::Device,
    k: i64,
) -> Vec<Record> {
    let mut records = Vec::with_capacity(files.len());
    for chunk in files.chunks(BATCH) {
        let loaded: Vec<Result<Vec<f32>>> =
            chunk.iter().map(|f| load_image(f, input, invert)).collect();
        let pixels: Vec<f32> = loaded.iter().flatten().flatten().copied().collect();
        let n = pixels.len() as i64 / input.values();
        let images = Tensor::from_slice(&pixels)
            .view([n, input.channels, input.size, input.size])
            .to_device(device);
        let mut tops = top_k(net, &images, k).into_iter();
        for (file, image) in chunk.iter().zip(loaded) {
            let (top, error) = match image {
                Ok(_) => (tops.next().map(|top| guesses(top, input)), None),
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

/// Classes by index with their probabilities, as guesses named as `input` names them.
pub fn guesses(top: Vec<(usize, f64)>, input: &Input) -> Vec<Guess> {
    top.into_iter()
        .map(|(c, probability)| Guess {
            class: input.class(c as i64).to_string(),
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
    fn ranges_parse() {
        assert_eq!(parse_range("0..8"), Ok(0..8));
        assert_eq!(parse_range("5"), Ok(5..6));
        assert!(parse_range("8..2").is_err());
        assert!(parse_range("a..b").is_err());
    }
}
