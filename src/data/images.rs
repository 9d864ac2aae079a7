//! Image files made into a network's input, the same way for training on a folder of
//! images and for `predict`: a PNG or JPEG of any size, colour mode and bit depth,
//! decoded, made grey or colour as the input has it, padded to a square with the colour
//! of its border, and resized to the input's side with a bilinear filter (the `image`
//! crate's `Triangle`). An image of the input's size and mode is used as it is.

use std::fs;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, ImageFormat, Pixel};

use super::Input;

/// The largest width or height accepted: checked from the header, before decoding, so a
/// huge image never gets the memory to decode it.
pub const MAX_SIDE: u32 = 12_000;

/// The filter images are resized with, as messages and the README name it.
pub const RESIZE_FILTER: &str = "bilinear (Triangle)";

/// Reads the PNG or JPEG at `path`: a regular file (a FIFO or a device would block the
/// open or never end), whose header says it is at most [`MAX_SIDE`] on a side, and that
/// decodes within the decoder's bound on memory.
pub fn open(path: &Path) -> Result<DynamicImage> {
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
    open()?.decode().map_err(|e| match e {
        // the decoder's own bound on memory (512 MiB): a large image of many bytes a pixel
        image::ImageError::Limits(_) => anyhow::anyhow!(
            "{} is {w}×{h} pixels, too many bytes to decode in memory at its colour depth; \
             scale it down first",
            path.display()
        ),
        e => anyhow::Error::new(e).context(format!("{} is not a readable image", path.display())),
    })
}

/// `image` as `input`'s network takes it, in bytes: its channels one after the other
/// (`[C, S, S]`, each row by row), dark and light flipped where `flip` says, padded to a
/// square with its border's colour and resized to the input's side.
pub fn prepare(image: &DynamicImage, input: &Input, flip: bool) -> Vec<u8> {
    let side = input.size as u32;
    match input.channels {
        1 => planes(square(image.to_luma8(), flip, side)),
        _ => planes(square(image.to_rgb8(), flip, side)),
    }
}

/// Whether the border of `image` is mostly light (a garment photographed on white).
pub fn light_border(image: &DynamicImage) -> bool {
    border_mean(&image.to_luma8())[0] > 127.5
}

type Buffer<P> = ImageBuffer<P, Vec<u8>>;

/// `image` flipped where asked, padded to a square with its border's colour, and resized
/// to `side` × `side`. A square image, or one already of that side, is used as it is:
/// the padding and the resize would only copy it.
fn square<P: Pixel<Subpixel = u8> + 'static>(
    mut image: Buffer<P>,
    flip: bool,
    side: u32,
) -> Buffer<P> {
    if flip {
        image::imageops::invert(&mut image);
    }
    let (w, h) = image.dimensions();
    let longer = w.max(h);
    let square = if w == h {
        image
    } else {
        let mean = border_mean(&image);
        let mut background = *image.get_pixel(0, 0);
        for (c, v) in background.channels_mut().iter_mut().enumerate() {
            *v = mean[c].round() as u8;
        }
        let mut square = ImageBuffer::from_pixel(longer, longer, background);
        let (x, y) = ((longer - w) / 2, (longer - h) / 2);
        image::imageops::overlay(&mut square, &image, i64::from(x), i64::from(y));
        square
    };
    match longer == side {
        true => square,
        false => image::imageops::resize(&square, side, side, FilterType::Triangle),
    }
}

/// The bytes of `image`'s channels, one plane after the other.
fn planes<P: Pixel<Subpixel = u8>>(image: Buffer<P>) -> Vec<u8> {
    let channels = P::CHANNEL_COUNT as usize;
    let raw = image.into_raw();
    if channels == 1 {
        return raw;
    }
    let pixels = raw.len() / channels;
    let mut out = vec![0u8; raw.len()];
    for (i, pixel) in raw.chunks_exact(channels).enumerate() {
        for (c, &v) in pixel.iter().enumerate() {
            out[c * pixels + i] = v;
        }
    }
    out
}

/// The mean of each channel over the outermost pixels.
fn border_mean<P: Pixel<Subpixel = u8>>(image: &Buffer<P>) -> Vec<f64> {
    let (w, h) = image.dimensions();
    let channels = P::CHANNEL_COUNT as usize;
    let mut sums = vec![0u64; channels];
    let mut count = 0u64;
    for (x, y, p) in image.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            for (sum, &v) in sums.iter_mut().zip(p.channels()) {
                *sum += u64::from(v);
            }
            count += 1;
        }
    }
    sums.iter()
        .map(|&s| s as f64 / count.max(1) as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    #[test]
    fn a_wide_image_is_padded_with_its_border_and_shrunk_to_the_side() {
        // a dark square on white, 100×60: flipped, a light square on black
        let mut img = GrayImage::from_pixel(100, 60, Luma([255]));
        for y in 20..40 {
            for x in 40..60 {
                img.put_pixel(x, y, Luma([0]));
            }
        }
        let img = DynamicImage::ImageLuma8(img);
        assert!(light_border(&img));
        let px = prepare(&img, &Input::fashion_mnist(), true);
        assert_eq!(px.len(), 784);
        assert!(px[0] < 3, "corner {}", px[0]);
        assert!(px[14 * 28 + 14] > 230, "centre {}", px[14 * 28 + 14]);
        let kept = prepare(&img, &Input::fashion_mnist(), false);
        assert!(kept[0] > 252);
    }

    #[test]
    fn colour_comes_out_as_three_planes_and_grey_as_one() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(8, 8, Rgb([200, 100, 0])));
        let colour = Input {
            size: 4,
            channels: 3,
            classes: vec!["a".into(), "b".into()],
        };
        let px = prepare(&img, &colour, false);
        assert_eq!(px.len(), 3 * 16);
        assert!(px[..16].iter().all(|&v| v == 200), "red first");
        assert!(px[16..32].iter().all(|&v| v == 100));
        assert!(px[32..].iter().all(|&v| v == 0));
        let grey = Input {
            channels: 1,
            ..colour
        };
        let px = prepare(&img, &grey, false);
        assert_eq!(px.len(), 16);
        // the luma of (200, 100, 0), by the Rec. 709 weights the image crate uses
        assert!(px.iter().all(|&v| v == 114), "{px:?}");
    }
}
