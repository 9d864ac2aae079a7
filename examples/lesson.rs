//! The lesson in one file: Fashion-MNIST, the lesson's CNN and its training step, for the
//! lesson's 10 epochs at batch 32, as tch's own `examples/mnist` writes a training; about
//! 0.92 on the test images. It uses the library's pieces and none of its machinery: the
//! trainers add the run folder, checkpoints, resuming, TensorBoard, the report and the
//! rest (`cargo run --release --bin train_cnn`).
//!
//! `cargo run --release --example lesson`
use anyhow::Result;
use fashion_tch::recipe::StepSettings;
use fashion_tch::train::step::train_step;
use fashion_tch::{data, lesson, optim::Adam, score};
use tch::{nn, Device, Kind, Tensor};

fn main() -> Result<()> {
    let device = Device::cuda_if_available();
    let data = data::load(&data::Choice::default(), device)?; // [60000, 1, 28, 28], [10000, …]
    let vs = nn::VarStore::new(device);
    let net = lesson::Cnn::new(&vs.root(), &data.input, (32, 64), 128); // 28×28 grey, 10 classes
    let mut adam = Adam::new(&vs, 0.0);
    let at = StepSettings {
        learning_rate: 1e-3,
        beta1: 0.9,
    };
    for epoch in 1..=10 {
        let order = Tensor::randperm(data.train.len(), (Kind::Int64, device));
        for batch in order.split(32, 0) {
            let images = data.train.images_at(&batch); // [32, 1, 28, 28], in [0, 1]
            let labels = data.train.labels.index_select(0, &batch); // [32]
            let (_loss, _logits) = train_step(&net, &mut adam, (&images, &labels), 0.0, at)?;
        }
        let test = score::score(&net, &data.test);
        println!("epoch {epoch:>2}  test accuracy {:.4}", test.accuracy);
    }
    Ok(())
}
