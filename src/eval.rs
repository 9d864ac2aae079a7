//! Judging a network on a split: loss and accuracy, computed in large batches without
//! gradients.

use tch::{nn::ModuleT, Kind, Tensor};

use crate::data::Split;

/// Loss and accuracy of a network on a split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Fraction of examples whose top class is the label.
    pub accuracy: f64,
}

/// Examples per forward pass when evaluating: large batches keep the cores busy, and no
/// gradient memory is kept.
pub const EVAL_BATCH: i64 = 1000;

/// Scores `net` on `split` in evaluation mode (dropout off, batch norm frozen).
pub fn score(net: &impl ModuleT, split: &Split) -> Score {
    let n = split.len();
    let (loss_sum, correct) = tch::no_grad(|| {
        let device = split.images.device();
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        for start in (0..n).step_by(EVAL_BATCH as usize) {
            let len = EVAL_BATCH.min(n - start);
            let xs = split.images.narrow(0, start, len);
            let ys = split.labels.narrow(0, start, len);
            let logits = net.forward_t(&xs, false); // [len, 10]
            loss_sum += logits.cross_entropy_for_logits(&ys).to_kind(Kind::Double) * len;
            correct += logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64);
        }
        // one host sync for the whole split
        (loss_sum.double_value(&[]), correct.int64_value(&[]))
    });
    Score {
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_that_always_answers_the_label_scores_one() {
        // logits that put all weight on class (pixel value * 9) — images hold the label
        let labels = Tensor::from_slice(&[0i64, 3, 9, 3]);
        let images = (labels.to_kind(Kind::Float) / 9.0)
            .view([4, 1, 1, 1])
            .repeat([1, 1, 28, 28]);
        let split = Split { images, labels };
        let net = tch::nn::func_t(|xs, _train| {
            let label = (xs.mean_dim(&[1i64, 2, 3][..], false, Kind::Float) * 9.0).round();
            label.to_kind(Kind::Int64).one_hot(10).to_kind(Kind::Float) * 50.0
        });
        let s = score(&net, &split);
        assert_eq!(s.accuracy, 1.0);
        assert!(s.loss < 1e-6, "{s:?}");
    }
}
