//! The training step: one batch of the lesson's `model.fit`. The network guesses, the
//! loss says how wrong the guess is, backpropagation gives each weight's gradient, and
//! Adam moves the weights against it. As tch's own examples write it:
//! `let loss = net.forward_t(&images, true).cross_entropy_for_logits(&labels);
//! opt.backward_step(&loss);`.

use anyhow::Result;
use tch::nn::ModuleT;
use tch::{Reduction, Tensor};

use crate::optim::Adam;
use crate::recipe::StepSettings;

/// One training step on `images` (`[b, 1, 28, 28]` for Fashion-MNIST) and their `labels`
/// (`[b]`): forward, the [`loss`], backward, and Adam's update at the step's learning rate
/// and β₁. Returns the loss and the logits (`[b, 10]`), for the epoch's running figures.
///
/// Whatever else a recipe does wraps this function, and none of it is inside:
/// augmentation before it, bfloat16 autocast and the CUDA graph around it, the moving
/// average of the weights after it (`learner.rs`).
pub fn train_step(
    net: &impl ModuleT,
    adam: &mut Adam,
    (images, labels): (&Tensor, &Tensor),
    label_smoothing: f64,
    at: StepSettings,
) -> Result<(Tensor, Tensor)> {
    let logits = net.forward_t(images, true); // [b, 10]
    let loss = loss(&logits, labels, label_smoothing); // []
    let gradients = adam.backward(&loss); // ∂loss/∂w, for every weight w
    adam.update(&gradients, at)?; // each w a step against its gradient, counted
    Ok((loss, logits))
}

/// The training loss: softmax cross-entropy of `logits` (`[b, 10]`) against `labels`
/// (`[b]`), the lesson's `SparseCategoricalCrossentropy(from_logits=True)`, against
/// labels smoothed by `label_smoothing` where the recipe smooths them (with 0.1 the true
/// class gets 0.91 and every other 0.01, which keeps the network from growing ever more
/// confident). Scores always use the plain loss.
pub fn loss(logits: &Tensor, labels: &Tensor, label_smoothing: f64) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, label_smoothing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelSpec;
    use crate::recipe::schedule::BETA1;
    use tch::{nn::VarStore, Device, Kind};

    #[test]
    fn smoothed_labels_keep_a_confident_right_answer_from_a_loss_of_zero() {
        // a confident, right answer: the plain loss is nearly 0; with smoothing by 0.1
        // each wrong class still asks for 0.01 of the mass, at a log-probability of -20
        let mut row = [0.0f32; 10];
        row[3] = 20.0;
        let logits = Tensor::from_slice(&row).view([1, 10]);
        let labels = Tensor::from_slice(&[3i64]);
        let plain = loss(&logits, &labels, 0.0).double_value(&[]);
        let smoothed = loss(&logits, &labels, 0.1).double_value(&[]);
        assert!(plain < 1e-6, "{plain}");
        assert!((smoothed - 9.0 * 0.01 * 20.0).abs() < 0.01, "{smoothed}");
    }

    #[test]
    fn steps_on_one_batch_bring_its_loss_down() {
        let _generator = crate::own_the_generator();
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let net = ModelSpec::Dense { hidden: 16 }.build(&vs, &crate::data::Input::fashion_mnist());
        let mut adam = Adam::new(&vs, 0.0);
        let images = Tensor::rand([32, 1, 28, 28], (Kind::Float, Device::Cpu));
        let labels = Tensor::randint(10, [32], (Kind::Int64, Device::Cpu));
        let at = StepSettings {
            learning_rate: 3e-3,
            beta1: BETA1,
        };
        let mut losses = Vec::new();
        for _ in 0..30 {
            let (loss, logits) = train_step(&net, &mut adam, (&images, &labels), 0.0, at).unwrap();
            assert_eq!(logits.size(), [32, 10]);
            losses.push(loss.double_value(&[]));
        }
        assert!(losses[29] < losses[0] * 0.5, "{losses:?}");
        assert_eq!(adam.steps, 30);
    }
}
