//! Judging a network on a split: loss and accuracy, per-class figures and the confusion
//! matrix, computed in large batches without gradients.

use serde::Serialize;
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

/// Examples per forward pass when evaluating, without gradients: enough to keep the cores
/// busy, and few enough that the CNN's largest activation (26 MB) stays under the 32 MiB
/// that glibc serves from memory it keeps; at 1,000 the test set's scoring mapped and
/// zeroed about 2 GB of fresh pages every epoch.
pub(crate) const EVAL_BATCH: i64 = 256;

/// Scores `net` on `split` in evaluation mode (dropout off, batch norm frozen).
pub fn score(net: &impl ModuleT, split: &Split) -> Score {
    let mut sums = Sums::new(split.pixels.device());
    // each batch made into floats as it is taken: the split never is, whole
    let images = |start, len| split.images(start, len);
    in_batches(net, split.len(), images, |start, logits| {
        let labels = split.labels.narrow(0, start, logits.size()[0]);
        sums.add(&logits.cross_entropy_for_logits(&labels), &logits, &labels);
    });
    // one host sync for the whole split
    let (loss, accuracy) = sums.means();
    Score { loss, accuracy }
}

/// Runs `net` over `images` in evaluation mode and returns the logits, `[n, 10]`.
pub fn logits(net: &impl ModuleT, images: &Tensor) -> Tensor {
    let mut parts = Vec::new();
    let batch = |start, len| images.narrow(0, start, len);
    in_batches(net, images.size()[0], batch, |_, logits| parts.push(logits));
    Tensor::cat(&parts, 0)
}

/// Runs `net` over `n` images in batches of [`EVAL_BATCH`] without gradients, in
/// evaluation mode: `batch(start, len)` gives a batch's images (`[len, C, S, S]`), and
/// `take` gets its first index and logits (`[len, classes]`).
fn in_batches(
    net: &impl ModuleT,
    n: i64,
    batch: impl Fn(i64, i64) -> Tensor,
    mut take: impl FnMut(i64, Tensor),
) {
    tch::no_grad(|| {
        for start in (0..n).step_by(EVAL_BATCH as usize) {
            let len = EVAL_BATCH.min(n - start);
            take(start, net.forward_t(&batch(start, len), false));
        }
    });
}

/// Running sums of a loss and of right answers over batches, kept on the device so that
/// a GPU rarely waits for the host: an epoch's training figures as it goes, or a
/// split's score.
pub(crate) struct Sums {
    /// The loss times the batch size, summed, in double.
    loss: Tensor,
    correct: Tensor,
    /// Images counted.
    pub seen: i64,
}

impl Sums {
    /// No batch yet, on `device`.
    pub(crate) fn new(device: tch::Device) -> Sums {
        Sums::from(0.0, 0, 0, device)
    }

    /// Sums that go on from `loss_sum`, `correct` and `seen` (a checkpoint's).
    pub(crate) fn from(loss_sum: f64, correct: i64, seen: i64, device: tch::Device) -> Sums {
        Sums {
            loss: Tensor::from(loss_sum).to_device(device),
            correct: Tensor::from(correct).to_device(device),
            seen,
        }
    }

    /// Adds a batch: its mean `loss`, its `logits` (`[b, 10]`) and `labels` (`[b]`).
    pub(crate) fn add(&mut self, loss: &Tensor, logits: &Tensor, labels: &Tensor) {
        let b = labels.size()[0];
        self.seen += b;
        tch::no_grad(|| {
            self.loss += loss.to_kind(Kind::Double) * b;
            self.correct += logits.argmax(-1, false).eq_tensor(labels).sum(Kind::Int64);
        });
    }

    /// The summed loss and right answers (a host sync).
    pub(crate) fn totals(&self) -> (f64, i64) {
        (self.loss.double_value(&[]), self.correct.int64_value(&[]))
    }

    /// The mean loss and the accuracy so far (a host sync).
    pub(crate) fn means(&self) -> (f64, f64) {
        let (loss, correct) = self.totals();
        let seen = self.seen.max(1) as f64;
        (loss / seen, correct as f64 / seen)
    }
}

/// One class's figures, one class against the rest.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ClassFigures {
    pub class: String,
    /// Of the images predicted as this class, the fraction that are.
    pub precision: f64,
    /// Of the images of this class, the fraction predicted as it (the class's accuracy).
    pub recall: f64,
    /// Of all images, the fraction this class is right about: in it and predicted so, or
    /// outside it and predicted outside.
    pub accuracy: f64,
    /// Images of this class.
    pub support: u64,
}

/// A pair of classes the network mixes up.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Confusion {
    pub truth: String,
    pub predicted: String,
    pub count: u64,
}

/// Everything `evaluate` reports about a network on a split.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Report {
    pub loss: f64,
    pub accuracy: f64,
    pub per_class: Vec<ClassFigures>,
    /// `confusion[truth][predicted]`: image counts.
    pub confusion: Vec<Vec<u64>>,
    /// The most frequent mistakes, most frequent first.
    pub most_confused: Vec<Confusion>,
}

impl Report {
    /// Builds the report from logits `[n, classes]` and labels `[n]`, the classes named
    /// by `classes`.
    pub(crate) fn from_logits(logits: &Tensor, labels: &Tensor, classes: &[String]) -> Report {
        let k = classes.len();
        let n = labels.size()[0].max(1) as f64;
        let loss = logits.cross_entropy_for_logits(labels).double_value(&[]);
        let predicted = logits.argmax(-1, false);
        // confusion[t][p] counted as a histogram of t * k + p
        let counts = (labels * k as i64 + &predicted)
            .bincount::<Tensor>(None, (k * k) as i64)
            .to_device(tch::Device::Cpu);
        let counts = Vec::<i64>::try_from(&counts).unwrap_or_default();
        let confusion: Vec<Vec<u64>> = counts
            .chunks(k.max(1))
            .map(|row| row.iter().map(|&c| c as u64).collect())
            .collect();
        Self::from_confusion(loss, confusion, n, classes)
    }

    fn from_confusion(loss: f64, confusion: Vec<Vec<u64>>, n: f64, classes: &[String]) -> Report {
        let k = classes.len().min(confusion.len());
        let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
        let per_class = (0..k)
            .map(|c| {
                let tp = confusion[c][c] as f64;
                let support: u64 = confusion[c].iter().sum();
                let predicted: u64 = confusion.iter().map(|row| row[c]).sum();
                let false_pos = predicted as f64 - tp;
                let false_neg = support as f64 - tp;
                ClassFigures {
                    class: classes[c].clone(),
                    precision: tp / (predicted.max(1) as f64),
                    recall: tp / (support.max(1) as f64),
                    accuracy: (n - false_pos - false_neg) / n,
                    support,
                }
            })
            .collect();
        let mut most_confused: Vec<Confusion> = (0..k)
            .flat_map(|t| (0..k).map(move |p| (t, p)))
            .filter(|&(t, p)| t != p)
            .map(|(t, p)| Confusion {
                truth: classes[t].clone(),
                predicted: classes[p].clone(),
                count: confusion[t][p],
            })
            .filter(|c| c.count > 0)
            .collect();
        most_confused.sort_by_key(|c| std::cmp::Reverse(c.count));
        most_confused.truncate(5);
        Report {
            loss,
            accuracy: correct as f64 / n,
            per_class,
            confusion,
            most_confused,
        }
    }

    /// The report as a person reads it: totals, per-class table, confusion matrix and
    /// the most frequent mistakes.
    pub fn to_text(&self) -> String {
        // the matrix's columns by name cut to six characters, or by number where two
        // would read alike
        let mut short: Vec<String> = self
            .per_class
            .iter()
            .map(|c| short_name(&c.class))
            .collect();
        let numbered = (1..short.len()).any(|i| short[..i].contains(&short[i]));
        if numbered {
            short = (0..short.len()).map(|i| format!("#{i}")).collect();
        }
        let number_width = if numbered { 4 } else { 0 };
        let width = (self.per_class.iter())
            .map(|c| c.class.chars().count() + number_width)
            .fold(12, usize::max);
        let mut out = format!(
            "test loss {:.4}  test accuracy {:.4}\n\n{:<width$} {:>9} {:>7} {:>9} {:>7}\n",
            self.loss, self.accuracy, "class", "precision", "recall", "accuracy", "images"
        );
        for c in &self.per_class {
            out += &format!(
                "{:<width$} {:>9.4} {:>7.4} {:>9.4} {:>7}\n",
                c.class, c.precision, c.recall, c.accuracy, c.support
            );
        }
        out += "\nconfusion matrix (rows: true class, columns: predicted)\n";
        out += &format!("{:<width$}", "");
        for name in &short {
            out += &format!(" {name:>6}");
        }
        out += "\n";
        for (i, (c, row)) in self.per_class.iter().zip(&self.confusion).enumerate() {
            let name = match numbered {
                true => format!("#{i} {}", c.class),
                false => c.class.clone(),
            };
            out += &format!("{name:<width$}");
            for count in row {
                out += &format!(" {count:>6}");
            }
            out += "\n";
        }
        out += "\nmost often confused\n";
        for c in &self.most_confused {
            out += &format!("  {} → {}: {}\n", c.truth, c.predicted, c.count);
        }
        out
    }
}

/// A class name cut to six characters, for a matrix's column heading.
fn short_name(class: &str) -> String {
    class.chars().take(6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_that_always_answers_the_label_scores_one() {
        // logits that put all weight on class (pixel byte / 25) — images hold the label
        let labels = Tensor::from_slice(&[0i64, 3, 9, 3]);
        let pixels = (&labels * 25)
            .to_kind(Kind::Uint8)
            .view([4, 1, 1, 1])
            .repeat([1, 1, 28, 28]);
        let split = Split { pixels, labels };
        let net = tch::nn::func_t(|xs, _train| {
            let label = (xs.mean_dim(&[1i64, 2, 3][..], false, Kind::Float) * 255.0 / 25.0).round();
            label.to_kind(Kind::Int64).one_hot(10).to_kind(Kind::Float) * 50.0
        });
        let s = score(&net, &split);
        assert_eq!(s.accuracy, 1.0);
        assert!(s.loss < 1e-6, "{s:?}");
    }

    #[test]
    fn report_counts_confusions_and_per_class_figures() {
        // truth 0,0,0,1 ; predicted 0,1,1,1
        let labels = Tensor::from_slice(&[0i64, 0, 0, 1]);
        let predicted = Tensor::from_slice(&[0i64, 1, 1, 1]);
        let logits = predicted.one_hot(10).to_kind(Kind::Float) * 20.0;
        let r = Report::from_logits(
            &logits,
            &labels,
            &crate::data::Input::fashion_mnist().classes,
        );
        assert_eq!(r.confusion[0][0], 1);
        assert_eq!(r.confusion[0][1], 2);
        assert_eq!(r.confusion[1][1], 1);
        assert_eq!(r.confusion.iter().flatten().sum::<u64>(), 4);
        assert_eq!(r.accuracy, 0.5);
        let t_shirt = &r.per_class[0];
        assert_eq!(
            (t_shirt.precision, t_shirt.recall, t_shirt.support),
            (1.0, 1.0 / 3.0, 3)
        );
        assert_eq!(t_shirt.accuracy, 0.5); // right about images 0 and 3
        let trouser = &r.per_class[1];
        assert_eq!((trouser.precision, trouser.recall), (1.0 / 3.0, 1.0));
        assert_eq!(
            r.most_confused,
            vec![Confusion {
                truth: "T-shirt/top".into(),
                predicted: "Trouser".into(),
                count: 2
            }]
        );
        let text = r.to_text();
        assert!(text.contains("T-shirt/top → Trouser: 2"), "{text}");
        assert!(text.contains(" T-shir Trouse Pullov"), "{text}");
    }

    #[test]
    fn classes_that_read_alike_cut_to_six_characters_head_the_matrix_by_number() {
        let classes = ["sneaker_black", "sneaker_white"].map(String::from);
        let labels = Tensor::from_slice(&[0i64, 1]);
        let logits = labels.one_hot(2).to_kind(Kind::Float) * 20.0;
        let text = Report::from_logits(&logits, &labels, &classes).to_text();
        assert!(text.contains("     #0     #1\n"), "{text}");
        assert!(text.contains("#1 sneaker_white"), "{text}");
    }
}
