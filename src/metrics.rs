//! Diagnostics that explain why a rule works: how far its updates, its
//! hidden errors and its feedback matrices are from backpropagation's (the
//! paper's section 4.3), and how large its weights have grown.

use crate::rules::ErrorPath;
use crate::tensor::Matrix;
use crate::train::Trainer;
use serde::Serialize;

/// The angle in degrees between two equally long vectors; NaN when either is zero.
///
/// Computed as `2 atan2(|a/|a| - b/|b||, |a/|a| + b/|b||)`, which stays exact
/// near 0 and 180 degrees where `acos` of the cosine loses half its digits.
pub fn angle_degrees(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "angle between vectors of different lengths"
    );
    let norm = |v: &[f32]| {
        v.iter()
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt()
    };
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return f64::NAN;
    }
    let (mut diff, mut sum) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (u, v) = (x as f64 / na, y as f64 / nb);
        diff += (u - v) * (u - v);
        sum += (u + v) * (u + v);
    }
    (2.0 * diff.sqrt().atan2(sum.sqrt())).to_degrees()
}

/// Angles of one probe, per hidden layer `i` (the output of `forward.{i}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Alignment {
    /// Angle between the rule's update of `forward.{i}.weight` and BP's gradient.
    pub update: Vec<f64>,
    /// Angle between the rule's hidden error at layer `i` and BP's.
    pub delta: Vec<f64>,
    /// Angle between the matrix that carries the error into layer `i` and
    /// `forward.{i+1}.weight` (the rules whose error path is a stand-in for
    /// it, compared in the stand-in layout; NaN for the others).
    pub feedback: Vec<f64>,
    /// How many probe samples have an output error that is not exactly
    /// zero. BP's gradient comes from these alone, so every angle is
    /// measured on them; at zero every angle is NaN. A softmax whose
    /// logits differ by more than about 104 is one-hot in float32, so a
    /// rule that grows large logits (DFA on a LeNet) can leave a probe
    /// batch with only its misclassified samples, or none, to measure on.
    pub samples: usize,
}

impl Alignment {
    /// Named values for the metrics files: `align_update_{i}`,
    /// `align_delta_{i}`, `align_feedback_{i}`, then `align_samples`.
    pub fn named(&self) -> Vec<(String, f64)> {
        let values = [&self.update, &self.delta, &self.feedback];
        let samples = [self.samples as f64];
        Self::names(self.update.len())
            .into_iter()
            .zip(values.into_iter().flatten().chain(&samples).copied())
            .collect()
    }

    /// The names [`Alignment::named`] gives a network of `hidden` hidden
    /// layers, in its order.
    /// A network without hidden layers has no angles, and no count either.
    pub fn names(hidden: usize) -> Vec<String> {
        let mut names: Vec<String> = ["update", "delta", "feedback"]
            .iter()
            .flat_map(|kind| (0..hidden).map(move |i| format!("align_{kind}_{i}")))
            .collect();
        if hidden > 0 {
            names.push("align_samples".into());
        }
        names
    }
}

/// The Euclidean (Frobenius) norm of every weight tensor of `t`'s network
/// and rule, named `norm_{tensor}` after its checkpoint name
/// (`norm_forward.0.weight`, `norm_feedback.1.weight`; biases left out).
///
/// Why record them: a rule whose updates are not a gradient can grow its
/// weights without bound while its angles look steady, and that growth is
/// what makes a loss explode (KP's kernels on CIFAR-10, DRTP's linear layer).
/// The feedback ones show how far a learned feedback matrix has moved from
/// its initial scale.
pub fn weight_norms(t: &Trainer) -> Vec<(String, f64)> {
    t.net
        .named_tensors("forward")
        .into_iter()
        .chain(t.rule.feedback_tensors())
        .filter(|x| x.name.ends_with(".weight"))
        .map(|x| {
            let sq: f64 = x.data.iter().map(|&v| (v as f64) * (v as f64)).sum();
            (format!("norm_{}", x.name), sq.sqrt())
        })
        .collect()
}

/// Buffers for alignment probes, allocated once per run.
#[derive(Debug)]
pub struct AlignmentProbe {
    bp_deltas: Vec<Matrix>,
    grad_rule: Vec<Matrix>,
    grad_bp: Vec<Matrix>,
    /// Scratch for gradient products in another column order.
    product: Vec<Matrix>,
}

impl AlignmentProbe {
    /// Buffers for `t`'s network and batch size.
    pub fn new(t: &Trainer) -> Self {
        let net = &t.net;
        let rows = t.max_rows();
        let hidden = net.hidden_layers();
        let grads = || {
            net.layers[..hidden]
                .iter()
                .map(|l| Matrix::zeros(l.weight.rows(), l.weight.cols()))
                .collect::<Vec<_>>()
        };
        Self {
            bp_deltas: net.sizes()[1..]
                .iter()
                .map(|&n| Matrix::zeros(rows, n))
                .collect(),
            grad_rule: grads(),
            grad_bp: grads(),
            product: grads(),
        }
    }

    /// Measures the alignment of `t`'s rule on the batch already loaded in
    /// `t` (`rows` samples), with the current weights. Nothing is updated.
    pub fn measure(&mut self, t: &mut Trainer, rows: usize) -> Alignment {
        t.compute_errors(rows);
        let hidden = t.net.hidden_layers();
        self.bp_deltas[hidden].copy_from(&t.deltas()[hidden]);
        // BP's errors on the same forward pass (its buffers are scratch here).
        t.backprop_into(&mut self.bp_deltas, rows);
        let net = &t.net;
        let (acts, deltas) = (t.activations(), t.deltas());
        let classes = deltas[hidden].cols();
        let mut out = Alignment {
            samples: deltas[hidden]
                .rows_slice(rows)
                .chunks(classes)
                .filter(|e| e.iter().any(|&v| v != 0.0))
                .count(),
            ..Alignment::default()
        };
        for i in 0..hidden {
            let (layer, ws) = (&net.layers[i], &acts.workspaces[i]);
            let product = &mut self.product[i];
            let (rule, bp) = (&mut self.grad_rule[i], &mut self.grad_bp[i]);
            layer.weight_grad_into(&acts[i], ws, &deltas[i], rows, rule, product);
            layer.weight_grad_into(&acts[i], ws, &self.bp_deltas[i], rows, bp, product);
            out.update.push(angle_degrees(
                self.grad_rule[i].as_slice(),
                self.grad_bp[i].as_slice(),
            ));
            out.delta.push(angle_degrees(
                deltas[i].rows_slice(rows),
                self.bp_deltas[i].rows_slice(rows),
            ));
            out.feedback.push(match t.rule.error_path(i) {
                ErrorPath::StandIn(b) => {
                    let w = net.layers[i + 1].weight_as_stand_in();
                    angle_degrees(b.as_slice(), w.as_slice())
                }
                _ => f64::NAN,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles() {
        assert!((angle_degrees(&[1.0, 0.0], &[0.0, 2.0]) - 90.0).abs() < 1e-12);
        assert!(angle_degrees(&[1.0, 1.0], &[2.0, 2.0]).abs() < 1e-6);
        assert!((angle_degrees(&[1.0, 0.0], &[-1.0, 0.0]) - 180.0).abs() < 1e-12);
        assert!((angle_degrees(&[1.0, 0.0], &[1.0, 1.0]) - 45.0).abs() < 1e-9);
        assert!(angle_degrees(&[0.0, 0.0], &[1.0, 1.0]).is_nan());
    }
}
