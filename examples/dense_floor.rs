//! The floor under the dense net's epoch: the lesson's network and our Adam stepping
//! through 1,875 batches of 32 already in memory (no indexing, no running sums, no
//! scoring), and the first layer's two matrix products alone, at one thread and at two.
//! docs/speed.md ("The dense net's floor") sets these beside PyTorch's best epoch.
//! `cargo run --release --example dense_floor`
use std::time::Instant;

use anyhow::Result;
use fashion_tch::{models::ModelSpec, optim::Adam, recipe::StepSettings};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn seconds(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    tch::manual_seed(0);
    let images = Tensor::rand([60_000, 1, 28, 28], (Kind::Float, Device::Cpu));
    let labels = Tensor::randint(10, [60_000], (Kind::Int64, Device::Cpu));
    let batches: Vec<(Tensor, Tensor)> = images
        .split(32, 0)
        .into_iter()
        .zip(labels.split(32, 0))
        .collect();
    for threads in [1, 2, 1, 2] {
        tch::set_num_threads(threads);
        let vs = nn::VarStore::new(Device::Cpu);
        let net =
            ModelSpec::Dense { hidden: 128 }.build(&vs, &fashion_tch::data::Input::fashion_mnist());
        let mut adam = Adam::new(&vs, 0.0);
        let at = StepSettings {
            learning_rate: 1e-3,
            beta1: 0.9,
        };
        let step = seconds(|| {
            for (xs, ys) in &batches {
                let loss = net.forward_t(xs, true).cross_entropy_for_logits(ys);
                adam.update(&adam.backward(&loss), at)?;
            }
            Ok(())
        })?;
        // forward xs·W₁ᵀ and the weight's gradient gᵀ·xs, into buffers made once
        let w1 = Tensor::randn([128, 784], (Kind::Float, Device::Cpu));
        let (h, g) = (
            Tensor::zeros([32, 128], (Kind::Float, Device::Cpu)),
            Tensor::zeros([128, 784], (Kind::Float, Device::Cpu)),
        );
        let products = seconds(|| {
            for (xs, _) in &batches {
                let xs = xs.view([-1, 784]);
                let _ = xs.mm_out(&h, &w1.tr());
                let _ = h.tr().mm_out(&g, &xs);
            }
            Ok(())
        })?;
        println!("{threads} thread(s): the step alone {step:.3} s an epoch; the first layer's two products alone {products:.3} s");
    }
    Ok(())
}
