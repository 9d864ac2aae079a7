//! The lesson's two networks, described as plain data ([`ModelSpec`]) that is saved in a
//! run's `config.json`, so the exact network can be rebuilt from a run folder.

use serde::{Deserialize, Serialize};
use tch::nn;

/// A network, as the lesson builds it. Inputs are `[b, 1, 28, 28]`, outputs `[b, 10]`
/// logits (the softmax is in the loss).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// Flatten → Linear(784, hidden) → ReLU → Linear(hidden, 10).
    Dense { hidden: i64 },
    /// Two blocks of Conv2d(3×3, same padding) → ReLU → MaxPool(2×2, stride 2), with
    /// `filters[0]` then `filters[1]` channels, then Flatten → Linear(·, hidden) → ReLU →
    /// Linear(hidden, 10).
    Cnn { filters: [i64; 2], hidden: i64 },
}

impl ModelSpec {
    /// The lesson's dense network (128 hidden units).
    pub const LESSON_DENSE: ModelSpec = ModelSpec::Dense { hidden: 128 };
    /// The lesson's CNN (32 and 64 filters, 128 hidden units).
    pub const LESSON_CNN: ModelSpec = ModelSpec::Cnn {
        filters: [32, 64],
        hidden: 128,
    };

    /// Short name: `dense` or `cnn` (used for run folder names).
    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Dense { .. } => "dense",
            ModelSpec::Cnn { .. } => "cnn",
        }
    }

    /// Builds the network with its variables under `vs`.
    pub fn build(&self, vs: &nn::Path) -> nn::SequentialT {
        match *self {
            ModelSpec::Dense { hidden } => nn::seq_t()
                .add_fn(|xs| xs.flatten(1, -1)) // [b, 784]
                .add(nn::linear(vs / "fc1", 784, hidden, Default::default()))
                .add_fn(|xs| xs.relu())
                .add(nn::linear(vs / "fc2", hidden, 10, Default::default())),
            ModelSpec::Cnn {
                filters: [f1, f2],
                hidden,
            } => {
                let same = nn::ConvConfig {
                    padding: 1,
                    ..Default::default()
                };
                let conv = |name: &str, c_in: i64, c_out: i64| {
                    let conv = nn::conv2d(vs / name, c_in, c_out, 3, same);
                    if vs.device() == tch::Device::Cpu {
                        channels_last(&conv.ws);
                    }
                    conv
                };
                nn::seq_t()
                    .add(conv("conv1", 1, f1)) // [b, f1, 28, 28]
                    .add_fn(|xs| xs.relu().max_pool2d_default(2)) // [b, f1, 14, 14]
                    .add(conv("conv2", f1, f2)) // [b, f2, 14, 14]
                    .add_fn(|xs| xs.relu().max_pool2d_default(2)) // [b, f2, 7, 7]
                    .add_fn(|xs| xs.flatten(1, -1)) // [b, f2 * 49]
                    .add(nn::linear(vs / "fc1", f2 * 49, hidden, Default::default()))
                    .add_fn(|xs| xs.relu())
                    .add(nn::linear(vs / "fc2", hidden, 10, Default::default()))
            }
        }
    }
}

/// Stores a convolution's weight `[out, in, kh, kw]` channel-innermost ("channels last").
/// libtorch's oneDNN convolutions on the CPU then run in that layout, forward and
/// backward, and keep it for their outputs and gradients: `scripts/bench.sh` showed the
/// lesson's CNN training about 1.3× faster per step this way, as PyTorch's
/// `model.to(memory_format=torch.channels_last)` does. tch has no memory-format
/// argument, so the strides are set explicitly (a plain permute would leave a
/// one-channel weight looking contiguous, and the layers would then disagree on layout).
fn channels_last(weight: &tch::Tensor) {
    let [n, c, h, w] = weight.size()[..] else {
        unreachable!("a conv2d weight has four dimensions")
    };
    let nhwc = tch::no_grad(|| weight.permute([0, 2, 3, 1]).contiguous());
    let mut weight = weight.shallow_clone();
    weight.set_data(&nhwc.as_strided([n, c, h, w], [h * w * c, 1, w * c, c], 0));
}

/// Number of trainable values in a var store.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::ModuleT, Device, Kind, Tensor};

    #[test]
    fn lesson_networks_have_the_lessons_parameter_counts() {
        // Keras' model.summary() for the lesson: 101,770 (dense) and 421,642 (CNN).
        for (spec, count) in [
            (ModelSpec::LESSON_DENSE, 101_770),
            (ModelSpec::LESSON_CNN, 421_642),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = spec.build(&vs.root());
            assert_eq!(parameter_count(&vs), count, "{spec:?}");
            let out = net.forward_t(
                &Tensor::zeros([3, 1, 28, 28], (Kind::Float, Device::Cpu)),
                false,
            );
            assert_eq!(out.size(), [3, 10]);
        }
    }

    #[test]
    fn cnn_weights_on_the_cpu_are_channels_last() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = ModelSpec::LESSON_CNN.build(&vs.root());
        let vars = vs.variables();
        assert_eq!(vars["conv1.weight"].stride(), [9, 1, 3, 1]);
        assert_eq!(vars["conv2.weight"].stride(), [288, 1, 96, 32]);
    }

    #[test]
    fn spec_round_trips_through_json() {
        let json = serde_json::to_string(&ModelSpec::LESSON_CNN).unwrap();
        assert_eq!(json, r#"{"kind":"cnn","filters":[32,64],"hidden":128}"#);
        let back: ModelSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ModelSpec::LESSON_CNN);
    }
}
