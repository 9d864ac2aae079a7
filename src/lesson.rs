//! The lesson's two networks, side by side, as tch's own `examples/mnist` writes them: a
//! struct of named layers, and a `forward_t` that reads as one chain. "All the code,
//! except for one block, remains the same": the CNN is the dense network with two
//! convolutions and two poolings in front of it.
//!
//! Every image comes in as `[b, 1, 28, 28]`, grey levels in [0, 1]; every network gives
//! `[b, 10]` logits, one a class (the softmax is in the loss). Those are Fashion-MNIST's
//! sizes (the shapes in the comments); a folder of your own images has its own
//! ([`Input`]), and the first layers and the last follow from it. The widths are
//! parameters, because the lesson's experiments change them; the lesson's are 128 hidden
//! units, and 32 and 64 filters.

use tch::{nn, Tensor};

use crate::data::Input;

/// The dense network: Flatten → Dense(128, relu) → Dense(10).
#[derive(Debug)]
pub struct Dense {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Dense {
    pub fn new(vs: &nn::Path, input: &Input, hidden: i64) -> Dense {
        let (values, classes) = (input.values(), input.class_count()); // 784, 10
        let fc1 = nn::linear(vs / "fc1", values, hidden, Default::default());
        let fc2 = nn::linear(vs / "fc2", hidden, classes, Default::default());
        Dense { fc1, fc2 }
    }
}

impl nn::ModuleT for Dense {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        xs.flatten(1, -1) // [b, 784]
            .apply(&self.fc1) // [b, 128]
            .relu()
            .apply(&self.fc2) // [b, 10]
    }
}

/// The convolutional network: the lesson's block, Conv2D(32, 3×3, relu) → MaxPooling(2×2)
/// → Conv2D(64, 3×3, relu) → MaxPooling(2×2), then the dense network's layers.
#[derive(Debug)]
pub struct Cnn {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Cnn {
    pub fn new(vs: &nn::Path, input: &Input, (filters1, filters2): (i64, i64), hidden: i64) -> Cnn {
        // "same" padding: a 3×3 convolution keeps the image's 28×28
        let same = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let conv1 = nn::conv2d(vs / "conv1", input.channels, filters1, 3, same);
        let conv2 = nn::conv2d(vs / "conv2", filters1, filters2, 3, same);
        // two poolings halve the side twice, rounding down: 28 → 14 → 7
        let features = filters2 * (input.size / 2 / 2).pow(2);
        let fc1 = nn::linear(vs / "fc1", features, hidden, Default::default());
        let fc2 = nn::linear(vs / "fc2", hidden, input.class_count(), Default::default());
        Cnn {
            conv1,
            conv2,
            fc1,
            fc2,
        }
    }
}

impl nn::ModuleT for Cnn {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        // the ReLU after the pooling rather than before: the same numbers, forward and
        // backward (the max of ReLUs is the ReLU of the max), on a quarter of the values
        xs.apply(&self.conv1) // [b, 32, 28, 28]
            .max_pool2d_default(2) // [b, 32, 14, 14]
            .relu()
            .apply(&self.conv2) // [b, 64, 14, 14]
            .max_pool2d_default(2) // [b, 64, 7, 7]
            .relu()
            .flatten(1, -1) // [b, 3136]
            .apply(&self.fc1) // [b, 128]
            .relu()
            .apply(&self.fc2) // [b, 10]
    }
}
