//! A folder's images decoded, on every core, straight into one tensor of the network's
//! input; the ones that cannot be read named.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{bail, ensure, Context, Result};
use tch::{Device, Kind, Tensor};

use super::super::{images, Input, Split};
use super::listing::Labelled;

/// The images of a split as decoded: their bytes in one tensor (`[n, C, S, S]`, on the
/// CPU), which of them were read, and their labels.
pub(super) struct Decoded {
    pixels: Tensor,
    readable: Vec<bool>,
    labels: Vec<i64>,
}

/// Images per piece a thread decodes before copying it into the tensor.
const PIECE: usize = 256;

/// Decodes `images` into `input`'s bytes, on every core, a piece at a time straight into
/// one tensor (so the peak is the tensor and a piece per thread), counting each on
/// `bar`; returns them and the files that could not be read, with why.
pub(super) fn decode(
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
    /// Errs where a class of `classes` (the labels' names) has no readable image here,
    /// all of them left out as unreadable.
    pub(super) fn ensure_every_class(&self, classes: &[String]) -> Result<()> {
        let mut counts = vec![0usize; classes.len()];
        for (&label, _) in self.labels.iter().zip(&self.readable).filter(|(_, &ok)| ok) {
            counts[label as usize] += 1;
        }
        match counts.iter().position(|&n| n == 0) {
            Some(empty) => bail!(
                "no training image of the class {} can be read (--skip-unreadable left them \
                 all out); every class needs some",
                classes[empty]
            ),
            None => Ok(()),
        }
    }

    /// The readable images as a split on `device`: the others left out, the ones after
    /// them moved up in place (no second copy of the tensor).
    pub(super) fn into_split(self, device: Device) -> Result<Split> {
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

/// Errs where any of the `total` images in `dir` could not be read (`failed`, with why),
/// naming the first ten: a training does not start (`--skip-unreadable` trains on the
/// rest), and a saved run's reader (`test_only`) cannot score on them.
pub(super) fn refuse_unreadable(
    failed: &[(PathBuf, String)],
    total: usize,
    dir: &Path,
    test_only: bool,
) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let first: Vec<String> = (failed.iter().take(10))
        .map(
            |(path, why)| match why.contains(&path.display().to_string()) {
                true => why.clone(),
                false => format!("{} ({why})", path.display()),
            },
        )
        .collect();
    let (count, first) = (failed.len(), first.join("; "));
    let shown = failed.len().min(10);
    ensure!(
        !test_only,
        "{count} of the {total} images in {} cannot be read, so the run cannot be scored on \
         them; the first {shown}: {first}",
        dir.display()
    );
    bail!(
        "{count} of the {total} images in {} cannot be read, so no training starts; the first \
         {shown}: {first}. Give --skip-unreadable to train on the rest (nothing is deleted)",
        dir.display()
    )
}
