//! Images made for the tests of your own images: repeatable, PNG, in class folders.

use std::fs;
use std::path::Path;

/// A repeatable stream of numbers, for images that are the same on every run.
pub struct Draws(pub u64);

impl Draws {
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

/// A colour of hue `hue` (radians) whose luma (Rec. 709, as grey images are made) is
/// `luma`: on the circle of colours around grey that all have that luma.
fn hue(hue: f64, luma: f64, amount: f64) -> [f64; 3] {
    let w = [0.2126, 0.7152, 0.0722];
    // two directions of no luma: (1, 0, -w₀/w₂) and one at right angles to it within
    // the plane w·c = 0
    let u = [1.0, 0.0, -w[0] / w[2]];
    let v = [
        w[1] * u[2] - w[2] * u[1],
        w[2] * u[0] - w[0] * u[2],
        w[0] * u[1] - w[1] * u[0],
    ];
    let norm = |x: [f64; 3]| {
        let n = (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt();
        x.map(|c| c / n)
    };
    let (u, v) = (norm(u), norm(v));
    [0, 1, 2].map(|c| luma + amount * (u[c] * hue.cos() + v[c] * hue.sin()))
}

/// Writes `count` images of each of `classes` (a function of the class and the draws to
/// the pixels, as `RgbImage` or `GrayImage`) into `dir/<class>/`.
pub fn write_class_images(
    dir: &Path,
    classes: &[&str],
    count: usize,
    seed: u64,
    image: impl Fn(usize, &mut Draws) -> image::DynamicImage,
) {
    let mut draws = Draws(seed);
    for (c, class) in classes.iter().enumerate() {
        let folder = dir.join(class);
        fs::create_dir_all(&folder).unwrap();
        for i in 0..count {
            image(c, &mut draws)
                .save(folder.join(format!("{i:03}.png")))
                .unwrap();
        }
    }
}

/// Three classes that differ only by hue: every pixel of an image the colour of its
/// class's hue, at one luma for all, with grey noise on top.
pub fn hue_image(side: u32) -> impl Fn(usize, &mut Draws) -> image::DynamicImage + Copy {
    move |class, draws| {
        let colour = hue(class as f64 * 2.0 * std::f64::consts::PI / 3.0, 120.0, 60.0);
        let img = image::RgbImage::from_fn(side, side, |_, _| {
            let noise = f64::from(draws.next() % 60) - 30.0;
            image::Rgb(colour.map(|c| (c + noise).round().clamp(0.0, 255.0) as u8))
        });
        image::DynamicImage::ImageRgb8(img)
    }
}

/// A grey image of `side` × `side` whose class is where a bright square sits, on noise:
/// one of four quarters.
pub fn square_image(side: u32) -> impl Fn(usize, &mut Draws) -> image::DynamicImage + Copy {
    move |class, draws| {
        let (qx, qy) = ((class % 2) as u32, (class / 2) as u32);
        let half = side / 2;
        let img = image::GrayImage::from_fn(side, side, |x, y| {
            let inside = x / half.max(1) == qx && y / half.max(1) == qy;
            image::Luma([if inside { 200 } else { 20 } + (draws.next() % 40) as u8])
        });
        image::DynamicImage::ImageLuma8(img)
    }
}
