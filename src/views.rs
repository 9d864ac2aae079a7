//! Test-time views: outside training, a network scores an image as the average of its
//! logits over views of it, the image and its mirror image (and shifted copies), as
//! airbench does. A garment mirrored, or moved by a pixel, is the same garment. Training
//! sees each image as it is.

use serde::{Deserialize, Serialize};
use tch::nn;

/// What a network looks at to score an image outside training (test-time augmentation):
/// the average of its logits over these views of the image. A garment mirrored, or
/// moved by a pixel, is the same garment.
#[derive(clap::ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Views {
    /// The image alone.
    #[default]
    One,
    /// The image and its mirror image, left to right (2 passes).
    Mirror,
    /// Those two, and both again shifted one pixel up and left, and one down and right,
    /// weighted 1/2, 1/4 and 1/4 (6 passes; airbench's multi-crop).
    Shifted,
}

impl std::fmt::Display for Views {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Views::One => "one",
            Views::Mirror => "mirror",
            Views::Shifted => "shifted",
        })
    }
}

/// A network built from a [`crate::models::ModelSpec`]: the network itself, and the
/// views of an image whose logits it averages outside training.
#[derive(Debug)]
pub struct Network {
    net: Box<dyn nn::ModuleT>,
    views: Views,
}

impl Network {
    pub(crate) fn new(net: Box<dyn nn::ModuleT>, views: Views) -> Network {
        Network { net, views }
    }
}

impl nn::ModuleT for Network {
    fn forward_t(&self, xs: &tch::Tensor, train: bool) -> tch::Tensor {
        if train {
            return self.net.forward_t(xs, true);
        }
        let view = |xs: &tch::Tensor| self.net.forward_t(xs, false);
        let with_mirror = |xs: &tch::Tensor| (view(xs) + view(&xs.flip([3]))) / 2.0; // left to right
        match self.views {
            Views::One => view(xs),
            Views::Mirror => with_mirror(xs),
            Views::Shifted => {
                let side = xs.size()[3];
                // from a copy padded by a pixel: 0 moves the garment down and right, 2 up and left
                let padded = xs.constant_pad_nd([1, 1, 1, 1]);
                let shifted = |at: i64| padded.narrow(2, at, side).narrow(3, at, side);
                with_mirror(xs) * 0.5
                    + with_mirror(&shifted(0)) * 0.25
                    + with_mirror(&shifted(2)) * 0.25
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Convs, ModelSpec};
    use tch::{nn::ModuleT, Device, Kind, Tensor};

    #[test]
    fn test_time_views_score_an_image_like_its_mirror_and_act_outside_training_only() {
        let _generator = crate::own_the_generator();
        let xs = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu));
        let mirrored = xs.flip([3]);
        let net_with = |views| {
            tch::manual_seed(0);
            let vs = nn::VarStore::new(Device::Cpu);
            let spec = ModelSpec::Cnn {
                filters: vec![4, 8],
                hidden: 16,
                convs: Convs::default(),
                batch_norm: false,
                dropout: 0.0,
                views,
            };
            (spec.build(&vs, &crate::data::Input::fashion_mnist()), vs)
        };
        let alike = |a: &Tensor, b: &Tensor| a.allclose(b, 1e-5, 1e-6, false);
        let (net, _vs) = net_with(Views::Mirror);
        let (a, b) = (net.forward_t(&xs, false), net.forward_t(&mirrored, false));
        assert!(alike(&a, &b), "scoring averages each image with its mirror");
        let (a, b) = (net.forward_t(&xs, true), net.forward_t(&mirrored, true));
        assert!(!alike(&a, &b), "training sees each image as it is");
        // the same weights: the shifted views change the scores, and train alike
        let (one, mirror, shifted) = (
            net_with(Views::One),
            net_with(Views::Mirror),
            net_with(Views::Shifted),
        );
        assert!(alike(
            &one.0.forward_t(&xs, true),
            &shifted.0.forward_t(&xs, true)
        ));
        assert!(!alike(
            &mirror.0.forward_t(&xs, false),
            &shifted.0.forward_t(&xs, false)
        ));
        assert!(!alike(
            &one.0.forward_t(&xs, false),
            &mirror.0.forward_t(&xs, false)
        ));
    }
}
