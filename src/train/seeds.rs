//! Every random draw of a run is seeded by the run's seed and where the run is (its
//! epoch and step), never by what was drawn before: a run resumed anywhere draws what it
//! would have drawn. The draws: each epoch's shuffle of the training set, each step's
//! augmentation and dropout, and, with alternating flips, which images are mirrored in
//! which epochs.

use tch::{Device, Kind, Tensor};

/// The training set's order in epoch `epoch`: drawn on the CPU (the same on every
/// device) from the seed and the epoch.
pub(crate) fn epoch_order(n: i64, seed: u64, epoch: u32, device: Device) -> Tensor {
    tch::manual_seed(position_seed(seed, epoch, u64::MAX));
    Tensor::randperm(n, (Kind::Int64, Device::Cpu)).to_device(device)
}

/// With alternating flips: whether each of the `n` training images is mirrored in the
/// odd epochs, drawn once from the seed (on the CPU, the same on every device).
pub(crate) fn odd_mirrors(n: i64, seed: u64, device: Device) -> Tensor {
    // epoch 0 is no epoch of the run: a draw of its own
    tch::manual_seed(position_seed(seed, 0, 0));
    Tensor::rand([n], (Kind::Float, Device::Cpu))
        .lt(0.5)
        .to_device(device)
}

/// Seeds libtorch's generators for the draws of step `step` of epoch `epoch`
/// (augmentation, dropout).
pub(crate) fn seed_step(seed: u64, epoch: u32, step: u64) {
    tch::manual_seed(position_seed(seed, epoch, step));
}

/// A seed for one point of a run, mixed from the run's seed and the point (SplitMix64).
fn position_seed(seed: u64, epoch: u32, step: u64) -> i64 {
    let mix = |mut x: u64| {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    };
    let x = mix(mix(mix(seed) ^ u64::from(epoch)) ^ step);
    (x >> 1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_seeded_by_the_seed_epoch_and_step_alone() {
        let _generator = crate::own_the_generator();
        let seeds: Vec<i64> = [(0, 1, 0), (0, 1, 1), (0, 2, 0), (1, 1, 0), (0, 1, u64::MAX)]
            .iter()
            .map(|&(seed, epoch, step)| position_seed(seed, epoch, step))
            .collect();
        for (i, a) in seeds.iter().enumerate() {
            assert!(*a >= 0, "a seed libtorch takes");
            assert!(seeds[i + 1..].iter().all(|b| b != a), "{seeds:?}");
        }
        assert_eq!(position_seed(7, 3, 11), position_seed(7, 3, 11));
        // the same point draws the same numbers, whatever was drawn before
        let draw = || Tensor::rand([4], (Kind::Float, Device::Cpu));
        seed_step(7, 3, 11);
        let first = draw();
        let _ = draw();
        seed_step(7, 3, 11);
        assert!(draw().equal(&first));
        let order = epoch_order(10, 7, 2, Device::Cpu);
        let _ = draw();
        assert!(epoch_order(10, 7, 2, Device::Cpu).equal(&order));
        assert!(!epoch_order(10, 7, 3, Device::Cpu).equal(&order));
    }
}
