//! The configurable CNN, for the strong recipe and the experiments beyond the lesson's
//! shape: one to four blocks, each of one to four convolutions with batch norm where
//! asked, and dropout before each dense layer where asked. The lesson's own CNN, two
//! blocks of one convolution, is written out in [`crate::lesson`]; this builder makes the
//! same network from the same settings (a test holds the two to it).

use tch::nn;

use crate::data::Input;

/// A block per entry of `filters`: its count in `convs` of Conv2d(3×3, same padding) →
/// \[BatchNorm\] → ReLU, then MaxPool(2×2, stride 2); then Flatten → \[Dropout\] →
/// Linear(·, hidden) → ReLU → \[Dropout\] → Linear(hidden, 10). The variables are named as
/// the lesson's are (`conv1`, `fc1`, …), a block's later convolutions `conv1_2`, ….
pub(crate) fn build(
    vs: &nn::Path,
    input: &Input,
    filters: &[i64],
    hidden: i64,
    convs: &[i64],
    batch_norm: bool,
    dropout: f64,
) -> nn::SequentialT {
    let mut net = nn::seq_t();
    let (mut channels, mut side) = (input.channels, input.size);
    for (block, (&out, &count)) in filters.iter().zip(convs).enumerate() {
        net = conv_block(net, vs, block, (channels, out), count, batch_norm);
        (channels, side) = (out, side / 2); // [b, out, side/2, side/2]
    }
    let net = net.add_fn(|xs| xs.flatten(1, -1)); // [b, channels * side²]
    dense_head(
        net,
        vs,
        (channels * side * side, hidden, input.class_count()),
        dropout,
    )
}

/// Block `block` (from 0) of a CNN: `count` times Conv2d(3×3, same padding) → [batch
/// norm] → ReLU from `channels.0` to `channels.1` channels, then MaxPool(2×2).
fn conv_block(
    mut net: nn::SequentialT,
    vs: &nn::Path,
    block: usize,
    (mut channels, out): (i64, i64),
    count: i64,
    batch_norm: bool,
) -> nn::SequentialT {
    let same = nn::ConvConfig {
        padding: 1,
        // batch norm's shift does a bias's work
        bias: !batch_norm,
        ..Default::default()
    };
    for conv in 0..count {
        // conv1, conv1_2, …, conv2, …: the first one keeps the lesson's name
        let suffix = match conv {
            0 => format!("{}", block + 1),
            _ => format!("{}_{}", block + 1, conv + 1),
        };
        let layer = nn::conv2d(vs / format!("conv{suffix}"), channels, out, 3, same);
        net = net.add(layer); // [b, out, side, side]
        if batch_norm {
            net = net.add(nn::batch_norm2d(
                vs / format!("bn{suffix}"),
                out,
                Default::default(),
            ));
        }
        if conv + 1 < count {
            net = net.add_fn(|xs| xs.relu());
        }
        channels = out;
    }
    // ReLU after the pooling: the same numbers, forward and backward (the max of ReLUs is
    // the ReLU of the max), on a quarter of the values
    net.add_fn(|xs| xs.max_pool2d_default(2).relu())
}

/// The dense layers after the features: [Dropout] → Linear(inputs, hidden) → ReLU →
/// [Dropout] → Linear(hidden, classes).
fn dense_head(
    net: nn::SequentialT,
    vs: &nn::Path,
    (inputs, hidden, classes): (i64, i64, i64),
    dropout: f64,
) -> nn::SequentialT {
    let drop = |net: nn::SequentialT| {
        if dropout == 0.0 {
            net
        } else {
            net.add_fn_t(move |xs, train| xs.dropout(dropout, train))
        }
    };
    let net = drop(net)
        .add(nn::linear(vs / "fc1", inputs, hidden, Default::default()))
        .add_fn(|xs| xs.relu());
    drop(net).add(nn::linear(vs / "fc2", hidden, classes, Default::default()))
}
