//! A network as plain data ([`ModelSpec`]), saved in a run's `config.json` so that the
//! exact network can be rebuilt from a run folder, and built: the lesson's networks
//! ([`crate::lesson`]) where it has their shape, the configurable CNN
//! (`cnn_builder.rs`) beyond it, and around either the test-time views it scores.

use serde::{Deserialize, Serialize};
use tch::nn;

use crate::data::Input;
use crate::{cnn_builder, lesson};

pub use crate::views::{Network, Views};

/// A network, as the lesson builds it. Inputs are `[b, C, S, S]` (`[b, 1, 28, 28]` for
/// Fashion-MNIST), outputs `[b, classes]` logits (the softmax is in the loss).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// Flatten → Linear(784, hidden) → ReLU → Linear(hidden, 10).
    Dense { hidden: i64 },
    /// A block per entry of `filters`: its [`Convs`] count of Conv2d(3×3, same padding) →
    /// \[BatchNorm\] → ReLU, then MaxPool(2×2, stride 2); then Flatten → \[Dropout\] →
    /// Linear(·, hidden) → ReLU → \[Dropout\] → Linear(hidden, 10). The lesson's has two
    /// blocks of one convolution, no batch norm and no dropout; the strong recipe's
    /// (`crate::recipe`) adds them.
    Cnn {
        filters: Vec<i64>,
        hidden: i64,
        /// Convolutions per block.
        #[serde(default)]
        convs: Convs,
        #[serde(default)]
        batch_norm: bool,
        /// The probability of zeroing an input of each dense layer while training.
        #[serde(default)]
        dropout: f64,
        /// The views of each image whose logits are averaged outside training.
        #[serde(default)]
        views: Views,
    },
}

/// Convolutions in each block of a CNN, the last count repeating for any further blocks:
/// `[2]` is two in every block, `[1, 2]` one in the first block and two in each later
/// one. Kept in that shortest form, so equal networks compare equal, and saved as a
/// number when it is one (as run folders from before per-block counts have it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(try_from = "OneOrMany", into = "OneOrMany")]
pub struct Convs(Vec<i64>);

impl Convs {
    /// `counts` must hold at least one count.
    pub fn new(mut counts: Vec<i64>) -> Convs {
        assert!(!counts.is_empty(), "a CNN has at least one block");
        while counts.len() > 1 && counts[counts.len() - 1] == counts[counts.len() - 2] {
            counts.pop();
        }
        Convs(counts)
    }

    /// The same count in every block.
    pub fn each(count: i64) -> Convs {
        Convs(vec![count])
    }

    /// Convolutions in block `block` (0-based).
    pub(crate) fn in_block(&self, block: usize) -> i64 {
        self.0[block.min(self.0.len() - 1)]
    }

    /// The count of each of `blocks` blocks.
    pub(crate) fn per_block(&self, blocks: usize) -> Vec<i64> {
        (0..blocks).map(|b| self.in_block(b)).collect()
    }

    /// The counts, in the shortest form.
    pub fn counts(&self) -> &[i64] {
        &self.0
    }
}

impl Default for Convs {
    /// The lesson's one convolution per block.
    fn default() -> Convs {
        Convs::each(1)
    }
}

/// How [`Convs`] is written in JSON.
#[derive(Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a count of convolutions from 1 to 4, or a list of them, one per block"
)]
enum OneOrMany {
    One(i64),
    Many(Vec<i64>),
}

impl TryFrom<OneOrMany> for Convs {
    type Error = String;

    fn try_from(raw: OneOrMany) -> Result<Convs, String> {
        let counts = match raw {
            OneOrMany::One(n) => vec![n],
            OneOrMany::Many(counts) => counts,
        };
        if counts.is_empty() || counts.iter().any(|n| !CONVS_PER_BLOCK.contains(n)) {
            return Err(format!(
                "convs {counts:?}: each block needs 1 to 4 convolutions"
            ));
        }
        Ok(Convs::new(counts))
    }
}

impl From<Convs> for OneOrMany {
    fn from(convs: Convs) -> OneOrMany {
        match convs.0[..] {
            [n] => OneOrMany::One(n),
            _ => OneOrMany::Many(convs.0),
        }
    }
}

impl std::fmt::Display for Convs {
    /// As `--convs` takes it: `1,2`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<String> = self.0.iter().map(i64::to_string).collect();
        f.write_str(&counts.join(","))
    }
}

/// Most convolution blocks a network may have: each halves the 28-pixel side.
pub(crate) const MAX_BLOCKS: usize = 4;

/// Convolutions a block may have.
pub(crate) const CONVS_PER_BLOCK: std::ops::RangeInclusive<i64> = 1..=4;

/// The two kinds of network, each with its own trainer.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// The dense network.
    Dense,
    /// The convolutional network.
    Cnn,
}

impl ModelKind {
    /// `dense` or `cnn`, as the trainers' names and run folders have it.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Dense => "dense",
            ModelKind::Cnn => "cnn",
        }
    }
}

impl ModelSpec {
    /// The lesson's CNN: two blocks of one convolution (32 and 64 filters), 128 hidden
    /// units, no batch norm, no dropout.
    pub fn lesson_cnn() -> ModelSpec {
        ModelSpec::Cnn {
            filters: vec![32, 64],
            hidden: 128,
            convs: Convs::default(),
            batch_norm: false,
            dropout: 0.0,
            views: Views::One,
        }
    }

    /// The network in a line: `1 × Conv(32) → MaxPool, then 2 × Conv(64) → MaxPool, …`.
    pub fn summary(&self) -> String {
        match self {
            ModelSpec::Dense { hidden } => format!("Linear({hidden}) → ReLU → Linear(10)"),
            ModelSpec::Cnn {
                filters,
                hidden,
                convs,
                batch_norm,
                dropout,
                ..
            } => {
                let blocks: Vec<String> = filters
                    .iter()
                    .enumerate()
                    .map(|(b, f)| format!("{} × Conv({f}) → MaxPool", convs.in_block(b)))
                    .collect();
                let norm = if *batch_norm { " → BatchNorm" } else { "" };
                let drop = match *dropout {
                    p if p > 0.0 => format!("Dropout {p} → "),
                    _ => String::new(),
                };
                format!(
                    "{}, each Conv 3×3{norm} → ReLU; {drop}Linear({hidden}) → ReLU → \
                     {drop}Linear(10)",
                    blocks.join(", then ")
                )
            }
        }
    }

    /// Which kind of network this is.
    pub fn kind(&self) -> ModelKind {
        match self {
            ModelSpec::Dense { .. } => ModelKind::Dense,
            ModelSpec::Cnn { .. } => ModelKind::Cnn,
        }
    }

    /// Short name: `dense` or `cnn` (used for run folder names).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Errs, naming the flag, where images of `input` are too small for the network:
    /// each block of a CNN halves their side.
    pub fn fits(&self, input: &Input) -> Result<(), String> {
        let ModelSpec::Cnn { filters, .. } = self else {
            return Ok(());
        };
        let blocks = filters.len() as u32;
        match input.size >> blocks {
            0 => Err(format!(
                "--filters {}: {blocks} blocks halve the side {blocks} times, and the images \
                 are {} pixels on a side; give fewer blocks, or --image-size {} or more",
                self.filters_flag(),
                input.size,
                (1 << blocks).max(4)
            )),
            _ => Ok(()),
        }
    }

    /// The filters as `--filters` takes them.
    fn filters_flag(&self) -> String {
        match self {
            ModelSpec::Cnn { filters, .. } => {
                let counts: Vec<String> = filters.iter().map(i64::to_string).collect();
                counts.join(",")
            }
            ModelSpec::Dense { .. } => String::new(),
        }
    }

    /// Builds the network for images and classes of `input` with its variables in `vs`:
    /// the lesson's networks
    /// ([`crate::lesson`]) where the spec has their shape, else the configurable CNN.
    pub fn build(&self, vs: &nn::VarStore, input: &Input) -> Network {
        let root = &vs.root();
        let (net, views): (Box<dyn nn::ModuleT>, Views) = match self {
            ModelSpec::Dense { hidden } => (
                Box::new(lesson::Dense::new(root, input, *hidden)),
                Views::One,
            ),
            ModelSpec::Cnn {
                filters,
                hidden,
                convs,
                batch_norm: false,
                dropout: 0.0,
                views,
            } if filters.len() == 2 && convs.counts() == [1] => {
                let net = lesson::Cnn::new(root, input, (filters[0], filters[1]), *hidden);
                (Box::new(net), *views)
            }
            ModelSpec::Cnn {
                filters,
                hidden,
                convs,
                batch_norm,
                dropout,
                views,
            } => {
                let convs = convs.per_block(filters.len());
                let (batch_norm, dropout) = (*batch_norm, *dropout);
                let net =
                    cnn_builder::build(root, input, filters, *hidden, &convs, batch_norm, dropout);
                (Box::new(net), *views)
            }
        };
        convolutions_channels_last(vs);
        Network::new(net, views)
    }
}

/// On the CPU, every convolution's weight in `vs` stored channels-last ([`channels_last`]).
fn convolutions_channels_last(vs: &nn::VarStore) {
    if vs.device() == tch::Device::Cpu {
        for (_, weight) in vs.variables() {
            if weight.dim() == 4 {
                channels_last(&weight);
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
        let _generator = crate::own_the_generator();
        // Keras' model.summary() for the lesson: 101,770 (dense) and 421,642 (CNN).
        for (spec, count) in [
            (ModelSpec::Dense { hidden: 128 }, 101_770),
            (ModelSpec::lesson_cnn(), 421_642),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = spec.build(&vs, &crate::data::Input::fashion_mnist());
            assert_eq!(parameter_count(&vs), count, "{spec:?}");
            let out = net.forward_t(
                &Tensor::zeros([3, 1, 28, 28], (Kind::Float, Device::Cpu)),
                false,
            );
            assert_eq!(out.size(), [3, 10]);
        }
    }

    #[test]
    fn the_lesson_cnn_written_out_is_the_builders_network() {
        let _generator = crate::own_the_generator();
        let ModelSpec::Cnn {
            filters,
            hidden,
            convs,
            ..
        } = ModelSpec::lesson_cnn()
        else {
            panic!("the lesson's CNN is a CNN")
        };
        tch::manual_seed(7);
        let (written, built) = (
            nn::VarStore::new(Device::Cpu),
            nn::VarStore::new(Device::Cpu),
        );
        let written_net =
            ModelSpec::lesson_cnn().build(&written, &crate::data::Input::fashion_mnist());
        tch::manual_seed(7);
        let convs = convs.per_block(filters.len());
        let built_net = cnn_builder::build(
            &built.root(),
            &crate::data::Input::fashion_mnist(),
            &filters,
            hidden,
            &convs,
            false,
            0.0,
        );
        convolutions_channels_last(&built);
        let (ours, theirs) = (written.variables(), built.variables());
        assert_eq!(ours.len(), theirs.len());
        for (name, t) in &ours {
            assert!(t.equal(&theirs[name]), "{name} drawn otherwise");
            assert_eq!(t.stride(), theirs[name].stride(), "{name}");
        }
        let xs = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
        let (a, b) = (
            written_net.forward_t(&xs, true),
            built_net.forward_t(&xs, true),
        );
        assert!(a.equal(&b), "the same chain of layers");
    }

    #[test]
    fn cnn_weights_on_the_cpu_are_channels_last() {
        let _generator = crate::own_the_generator();
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = ModelSpec::lesson_cnn().build(&vs, &crate::data::Input::fashion_mnist());
        let vars = vs.variables();
        assert_eq!(vars["conv1.weight"].stride(), [9, 1, 3, 1]);
        assert_eq!(vars["conv2.weight"].stride(), [288, 1, 96, 32]);
    }

    #[test]
    fn dropout_acts_in_training_only() {
        let _generator = crate::own_the_generator();
        let vs = nn::VarStore::new(Device::Cpu);
        let spec = ModelSpec::Cnn {
            filters: vec![4, 8, 8],
            hidden: 16,
            convs: Convs::each(2),
            batch_norm: true,
            dropout: 0.5,
            views: Views::One,
        };
        let net = spec.build(&vs, &crate::data::Input::fashion_mnist());
        let xs = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu));
        let (a, b) = (net.forward_t(&xs, false), net.forward_t(&xs, false));
        assert!(a.equal(&b), "evaluation must not drop anything");
        let (c, d) = (net.forward_t(&xs, true), net.forward_t(&xs, true));
        assert!(
            !c.allclose(&d, 1e-6, 1e-6, false),
            "training must drop at random"
        );
        assert_eq!(a.size(), [8, 10]);
    }

    #[test]
    fn spec_round_trips_through_json() {
        // every setting is written out; as run folders from before batch norm and dropout
        // have it, the lesson's CNN still loads without them
        let json = serde_json::to_string(&ModelSpec::lesson_cnn()).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"cnn","filters":[32,64],"hidden":128,"convs":1,"batch_norm":false,"dropout":0.0,"views":"one"}"#
        );
        let old = r#"{"kind":"cnn","filters":[32,64],"hidden":128}"#;
        for json in [json.as_str(), old] {
            let back: ModelSpec = serde_json::from_str(json).unwrap();
            assert_eq!(back, ModelSpec::lesson_cnn());
        }
        for convs in [Convs::each(2), Convs::new(vec![1, 2])] {
            let strong = ModelSpec::Cnn {
                filters: vec![32, 64, 128],
                hidden: 128,
                convs,
                batch_norm: true,
                dropout: 0.3,
                views: Views::One,
            };
            let back: ModelSpec =
                serde_json::from_str(&serde_json::to_string(&strong).unwrap()).unwrap();
            assert_eq!(back, strong);
        }
    }

    #[test]
    fn a_run_folder_from_before_per_block_counts_loads() {
        let old = r#"{"kind":"cnn","filters":[32,64],"hidden":256,"convs":2,"batch_norm":true}"#;
        let ModelSpec::Cnn { convs, .. } = serde_json::from_str(old).unwrap() else {
            panic!("not a CNN")
        };
        assert_eq!((convs.in_block(0), convs.in_block(1)), (2, 2));
        for bad in ["0", "[]", "[1,0]", "\"1,2\""] {
            let json = format!(r#"{{"kind":"cnn","filters":[32,64],"hidden":256,"convs":{bad}}}"#);
            let err = serde_json::from_str::<ModelSpec>(&json)
                .unwrap_err()
                .to_string();
            assert!(err.contains("convolutions"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_last_count_of_convs_repeats_for_later_blocks() {
        let _generator = crate::own_the_generator();
        assert_eq!(Convs::new(vec![1, 2, 2, 2]), Convs::new(vec![1, 2]));
        assert_eq!(Convs::new(vec![2, 2]), Convs::each(2));
        let spec = ModelSpec::Cnn {
            filters: vec![4, 8, 8],
            hidden: 16,
            convs: Convs::new(vec![1, 2]),
            batch_norm: false,
            dropout: 0.0,
            views: Views::One,
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = spec.build(&vs, &crate::data::Input::fashion_mnist());
        let mut convs: Vec<String> = vs
            .variables()
            .into_keys()
            .filter(|name| name.starts_with("conv") && name.ends_with("weight"))
            .collect();
        convs.sort();
        assert_eq!(
            convs,
            [
                "conv1.weight",
                "conv2.weight",
                "conv2_2.weight",
                "conv3.weight",
                "conv3_2.weight"
            ]
        );
    }
}
