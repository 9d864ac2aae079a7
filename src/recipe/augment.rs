//! Augmentation: each training batch shifted and mirrored at random (and cut out, where
//! the recipe says), so the network sees a garment in many places; every label holds.

use tch::{Kind, Tensor};

/// Pixels of zero padding around each image before the random crop.
pub(crate) const PAD: i64 = 2;

/// A random crop of each image of `images` (`[b, C, S, S]`: `[b, 1, 28, 28]` for
/// Fashion-MNIST) from its copy padded by two pixels of zeros, mirrored left to right
/// where `mirror` (`[b]`, bool) says, or half of the time at random when it is `None`:
/// the same garment, shifted by up to two pixels, so every label still holds; every
/// channel of an image alike. With `cutout` above 0, a square of that side (clipped at
/// the edges) is then zeroed around a random point of each image. One gather, on the
/// images' device.
pub fn augment(images: &Tensor, mirror: Option<&Tensor>, cutout: i64) -> Tensor {
    let (b, channels, side) = (images.size()[0], images.size()[1], images.size()[3]);
    let device = images.device();
    let padded = images.constant_pad_nd([PAD, PAD, PAD, PAD]); // [b, C, side+4, side+4]
    let offset = || Tensor::randint(2 * PAD + 1, [b, 1, 1], (Kind::Int64, device));
    let along = Tensor::arange(side, (Kind::Int64, device));
    let flip = match mirror {
        Some(mirror) => mirror.view([b, 1, 1]),
        None => Tensor::rand([b, 1, 1], (Kind::Float, device)).lt(0.5),
    };
    let columns = (side - 1 - &along)
        .view([1, 1, side])
        .where_self(&flip, &along.view([1, 1, side])); // [b, 1, side]
    let rows = offset() + along.view([1, side, 1]); // [b, side, 1]
    let columns = offset() + columns;
    let image = Tensor::arange(b, (Kind::Int64, device)).view([b, 1, 1, 1]);
    let channel = Tensor::arange(channels, (Kind::Int64, device)).view([1, channels, 1, 1]);
    let (rows, columns) = (rows.unsqueeze(1), columns.unsqueeze(1)); // [b, 1, side, 1], [b, 1, 1, side]
    let out = padded.index(&[Some(image), Some(channel), Some(rows), Some(columns)]); // [b, C, side, side]
    match cutout {
        0 => out,
        cutout => {
            let centre = || Tensor::randint(side, [b, 1, 1], (Kind::Int64, device));
            let (cy, cx) = (centre(), centre());
            // within the square: from the centre, cutout / 2 back and the rest forward
            let inside = |at: Tensor, centre: &Tensor| {
                let from = centre - cutout / 2;
                at.ge_tensor(&from)
                    .logical_and(&at.lt_tensor(&(from + cutout)))
            };
            let erased = inside(along.view([1, side, 1]), &cy)
                .logical_and(&inside(along.view([1, 1, side]), &cx)); // [b, side, side]
            out.masked_fill(&erased.unsqueeze(1), 0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Each image of `out` matched to the shift of `images` (up to 2 pixels, zero padded)
    /// that it equals in most pixels: the draws need not be repeatable, as other tests
    /// draw from the same global generator in parallel.
    fn nearest_shifts(out: &Tensor, images: &Tensor) -> Tensor {
        let padded = images.constant_pad_nd([2, 2, 2, 2]);
        let (mut best, mut most) = (
            out.zeros_like(),
            Tensor::full([16], -1, (Kind::Int64, Device::Cpu)),
        );
        for (dy, dx) in (0..5).flat_map(|dy| (0..5).map(move |dx| (dy, dx))) {
            let shifted = padded.narrow(2, dy, 28).narrow(3, dx, 28);
            let equal =
                shifted
                    .eq_tensor(out)
                    .sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Int64);
            best = shifted.where_self(&equal.gt_tensor(&most).view([16, 1, 1, 1]), &best);
            most = most.maximum(&equal);
        }
        best
    }

    #[test]
    fn augmentation_mirrors_as_told_and_cutout_zeroes_a_square() {
        let _generator = crate::own_the_generator();
        let images = Tensor::rand([16, 1, 28, 28], (Kind::Float, Device::Cpu)) + 0.5;
        let with = |mirror: bool, cutout| {
            let mirror = Tensor::full([16], i64::from(mirror), (Kind::Bool, Device::Cpu));
            augment(&images, Some(&mirror), cutout)
        };
        let plain = with(false, 0);
        assert!(
            plain.equal(&nearest_shifts(&plain, &images)),
            "shifted copies"
        );
        // flipped back, a mirrored image is a shifted copy; an unmirrored one is not
        let back = with(true, 0).flip([3]);
        assert!(
            back.equal(&nearest_shifts(&back, &images)),
            "mirrored copies"
        );
        let cut = with(false, 8);
        let plain = nearest_shifts(&cut, &images);
        let lost = plain.ne_tensor(&cut); // [16, 1, 28, 28]
        assert!(
            cut.le_tensor(&plain).all().int64_value(&[]) == 1,
            "only zeroes"
        );
        for i in 0..16 {
            let lost = lost.get(i).squeeze_dim(0).nonzero(); // [n, 2]
            let n = lost.size()[0];
            assert!((1..=64).contains(&n), "image {i} lost {n} pixels");
            let span = |d: i64| {
                let at = lost.select(1, d);
                at.max().int64_value(&[]) - at.min().int64_value(&[]) + 1
            };
            assert!(
                span(0) <= 8 && span(1) <= 8,
                "image {i}: not one 8×8 square"
            );
        }
    }

    #[test]
    fn augmentation_shifts_and_mirrors_each_image_but_keeps_it() {
        let _generator = crate::own_the_generator();
        tch::manual_seed(3);
        // garments inside a 2-pixel border, as Fashion-MNIST's are: a crop loses nothing
        let inner = Tensor::rand([64, 1, 24, 24], (Kind::Float, Device::Cpu));
        let images = inner.constant_pad_nd([2, 2, 2, 2]); // [64, 1, 28, 28]
        let out = augment(&images, None, 0);
        assert_eq!(out.size(), images.size());
        let mut changed = 0;
        for i in 0..64 {
            let (x, y) = (images.get(i), out.get(i));
            // y must be x shifted by up to 2 pixels and maybe mirrored: the same garment,
            // so its label still holds
            let padded = x.constant_pad_nd([2, 2, 2, 2]);
            let found = (0..5).any(|dy| {
                (0..5).any(|dx| {
                    let crop = padded.narrow(1, dy, 28).narrow(2, dx, 28);
                    crop.equal(&y) || crop.flip([2]).equal(&y)
                })
            });
            assert!(
                found,
                "image {i} is not a shifted or mirrored copy of itself"
            );
            changed += i64::from(!x.equal(&y));
        }
        assert!(changed > 50, "only {changed} of 64 images changed");
    }
}
