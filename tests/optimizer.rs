//! Our Adam and AdamW beside libtorch's, their state saved and loaded, and the learning
//! rate read from a tensor beside the one passed by value. One test, so
//! nothing else in this process runs beside it: libtorch's random generator and thread
//! pool are shared by the whole process.

mod common;

use std::collections::HashMap;

use fashion_tch::optim::Adam;
use fashion_tch::recipe::{OneCycle, StepSettings};
use tch::nn::{self, ModuleT, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

/// A small CNN (channels-last weights, biases, two dense layers), in `kind`, its weights
/// drawn from seed 0: the same numbers every run. (From an unseeded start, a run now
/// and then drew weights where a gradient of about Adam's ε took its sign from the last
/// bits, and the two ways of passing the learning rate then parted by 1.5e-6.)
fn net(kind: Kind) -> (VarStore, fashion_tch::models::Network) {
    tch::manual_seed(0);
    let mut vs = VarStore::new(Device::Cpu);
    let net = common::small_cnn_spec().build(&vs, &fashion_tch::data::Input::fashion_mnist());
    vs.set_kind(kind);
    (vs, net)
}

/// Batch `step` of a stream of noisy images whose class is the row of a bright band, as
/// `kind`.
fn batch(step: i64, kind: Kind) -> (Tensor, Tensor) {
    let mut state = 1000 + step as u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as u32
    };
    let labels: Vec<i64> = (0..32).map(|_| i64::from(next() % 10)).collect();
    let noise: Vec<f32> = (0..32 * 28 * 28)
        .map(|_| next() as f32 / (1 << 24) as f32 * 0.5)
        .collect();
    let ys = Tensor::from_slice(&labels);
    let rows = Tensor::arange(28, (Kind::Int64, Device::Cpu)).view([1, 1, 28, 1]);
    let band = rows.eq_tensor(&(ys.view([32, 1, 1, 1]) * 2 + 4));
    let noise = Tensor::from_slice(&noise).view([32, 1, 28, 28]);
    ((band.to_kind(Kind::Float) + noise).to_kind(kind), ys)
}

/// One step of our Adam on `loss`, as a training step takes it: backward, then the
/// update at `learning_rate` and `beta1`, which counts it.
fn adam_step(adam: &mut Adam, loss: &Tensor, learning_rate: f64, beta1: f64) {
    let grads = adam.backward(loss);
    let at = StepSettings {
        learning_rate,
        beta1,
    };
    adam.update(&grads, at).unwrap();
}

fn copies(named: impl IntoIterator<Item = (String, Tensor)>) -> HashMap<String, Tensor> {
    named.into_iter().map(|(n, t)| (n, t.copy())).collect()
}

fn max_difference(a: &VarStore, b: &VarStore) -> f64 {
    let b = b.variables();
    a.variables()
        .iter()
        .map(|(name, t)| (t - &b[name]).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

/// The largest difference in any weight after `steps` steps of ours and of libtorch's
/// optimiser from the same start on the same batches, with the learning rate and β₁
/// moving as a 200-step one-cycle schedule moves them.
fn ours_beside_libtorch(kind: Kind, weight_decay: f64, steps: usize) -> f64 {
    let (ours_vs, ours_net) = net(kind);
    let (mut theirs_vs, theirs_net) = net(kind);
    theirs_vs.copy(&ours_vs).unwrap();
    let mut ours = Adam::new(&ours_vs, weight_decay);
    let mut theirs = match weight_decay {
        0.0 => nn::Adam::default().build(&theirs_vs, 1e-3).unwrap(),
        wd => nn::AdamW {
            wd,
            ..Default::default()
        }
        .build(&theirs_vs, 1e-3)
        .unwrap(),
    };
    let cycle = OneCycle {
        peak: 5e-3,
        total: 200,
    };
    for step in 0..steps {
        let (xs, ys) = batch(step as i64, kind);
        let (lr, beta1) = (cycle.learning_rate(step), cycle.beta1(step));
        let loss = ours_net.forward_t(&xs, true).cross_entropy_for_logits(&ys);
        adam_step(&mut ours, &loss, lr, beta1);
        theirs.set_lr(lr);
        theirs.set_momentum(beta1);
        let loss = theirs_net
            .forward_t(&xs, true)
            .cross_entropy_for_logits(&ys);
        theirs.backward_step(&loss);
    }
    assert_eq!(ours.steps, steps as u64);
    max_difference(&ours_vs, &theirs_vs)
}

/// Four steps; then the third step's weights and saved state put back into a new
/// optimiser, whose fourth step must be the same to the bit.
fn saved_state_continues_the_same_steps() {
    let (vs, net) = net(Kind::Float);
    let mut adam = Adam::new(&vs, 0.05);
    let step = |adam: &mut Adam, i: i64| {
        let (xs, ys) = batch(i, Kind::Float);
        let loss = net.forward_t(&xs, true).cross_entropy_for_logits(&ys);
        adam_step(adam, &loss, 1e-3, 0.9);
    };
    for i in 0..3 {
        step(&mut adam, i);
    }
    let saved = copies(adam.state());
    let before = copies(vs.variables());
    step(&mut adam, 3);
    let after = copies(vs.variables());
    tch::no_grad(|| {
        for (name, mut t) in vs.variables() {
            t.copy_(&before[&name]);
        }
    });
    let mut again = Adam::new(&vs, 0.05);
    again.load_state(&saved, 3).unwrap();
    step(&mut again, 3);
    for (name, t) in vs.variables() {
        assert!(t.equal(&after[&name]), "{name} differs");
    }
    let mut short = saved;
    short.remove("exp_avg.fc1.weight");
    let err = again.load_state(&short, 3).unwrap_err().to_string();
    assert!(err.contains("exp_avg.fc1.weight"), "{err}");
}

/// The learning rate read from a tensor (as a step replayed from a CUDA graph reads it)
/// moves the weights as the one passed by value does, step count and schedule included.
/// Returns the largest difference after 20 one-cycle steps in double precision (the
/// tensor holds the rate as a float32, as the CUDA kernel wants it).
fn learning_rate_on_the_device_steps_alike() -> f64 {
    let (by_value_vs, by_value_net) = net(Kind::Double);
    let (mut on_device_vs, on_device_net) = net(Kind::Double);
    on_device_vs.copy(&by_value_vs).unwrap();
    let mut by_value = Adam::new(&by_value_vs, 0.0);
    let mut on_device = Adam::new(&on_device_vs, 0.0).for_cuda_graph();
    let cycle = OneCycle {
        peak: 5e-3,
        total: 20,
    };
    for step in 0..20 {
        let (xs, ys) = batch(step as i64, Kind::Double);
        let (lr, beta1) = (cycle.learning_rate(step), cycle.beta1(step));
        let loss = by_value_net
            .forward_t(&xs, true)
            .cross_entropy_for_logits(&ys);
        adam_step(&mut by_value, &loss, lr, beta1);
        // as a replayed step runs it: counted (and the rate set) first, then the update
        on_device.count(lr);
        let loss = on_device_net
            .forward_t(&xs, true)
            .cross_entropy_for_logits(&ys);
        adam_step(&mut on_device, &loss, lr, beta1);
    }
    assert_eq!(on_device.steps, 20);
    max_difference(&by_value_vs, &on_device_vs)
}

/// In double precision the two compute the same update with rounding differences of
/// about 1e-16, which 200 steps of training cannot grow to anything seen. Two float
/// trainings are compared nowhere: a gradient of about Adam's ε (1e-8) whose sign the
/// last bits of a float sum decide moves its weight by ±lr, so two float computations of
/// one step can differ by 1e-3, which failed this test now and then. Our float update is
/// checked to carry on exactly from a saved state.
#[test]
fn adam_and_adamw_match_libtorch_within_1e_5_after_200_steps_and_resume_exactly() {
    tch::set_num_threads(2);
    for (name, weight_decay) in [("Adam", 0.0), ("AdamW", 0.05)] {
        let diff = ours_beside_libtorch(Kind::Double, weight_decay, 200);
        eprintln!("{name}: largest difference from libtorch's after 200 steps {diff:e}");
        assert!(diff <= 1e-5, "{name}: {diff}");
    }
    saved_state_continues_the_same_steps();
    let diff = learning_rate_on_the_device_steps_alike();
    eprintln!("the learning rate read from a tensor: after 20 steps {diff:e}");
    assert!(diff <= 1e-6, "the learning rate read from a tensor: {diff}");
}
