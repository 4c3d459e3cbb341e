//! biotorch's published LeNet numbers (jsalbert/biotorch, `Benchmarks.md`:
//! top-1 test error, %, of the model picked on its validation split), to
//! print beside runs of its protocols.

use crate::config::RunConfig;
use crate::layers::spec::Preset;
use crate::loss::Output;
use crate::optim::OptimizerKind;
use crate::rules::RuleKind;

/// LeNet on MNIST (`le_net_mnist`), then on CIFAR-10 with SGD
/// (`le_net_cifar`), for the rules biotorch runs.
const LENET: [(RuleKind, f64, f64); 6] = [
    (RuleKind::Bp, 0.91, 14.23),
    (RuleKind::Fa, 1.7, 46.69),
    (RuleKind::Dfa, 1.61, 54.21),
    (RuleKind::Usf, 0.94, 16.22),
    (RuleKind::Brsf, 0.91, 16.02),
    (RuleKind::Frsf, 0.97, 16.86),
];

/// Whether `c` trains biotorch's LeNet benchmark: its network, SGD with
/// momentum 0.9, cross-entropy, Xavier initialization, and the data set's
/// batch, weight decay and rate schedule (MNIST: batch 64, decay 1e-3, the
/// rate divided by 10 after epochs 50 and 75; CIFAR-10: 128, 1e-4, after
/// 100, 150 and 200). The epoch count and the rate are not checked: short
/// runs are compared and say so, and biotorch gives no MNIST rates.
pub fn is_protocol(c: &RunConfig) -> bool {
    let (batch, decay, milestones): (usize, f32, &[usize]) = match c.net {
        Some(Preset::LenetMnist) => (64, 1e-3, &[50, 75]),
        Some(Preset::LenetCifar) => (128, 1e-4, &[100, 150, 200]),
        None => return false,
    };
    c.layers.is_none()
        && c.optimizer == OptimizerKind::Sgd
        && c.momentum == 0.9
        && c.output == Output::SoftmaxCe
        && c.init == crate::rules::InitScheme::Xavier
        && c.batch_size == batch
        && c.weight_decay == decay
        && c.lr_milestones == milestones
        && c.lr_gamma == 0.1
}

/// biotorch's test error (%) for `rule` on the preset named `net`
/// (`lenet-mnist`, `lenet-cifar`), if it publishes one.
pub fn published(net: &str, rule: RuleKind) -> Option<f64> {
    let (_, mnist, cifar) = LENET.iter().find(|(r, _, _)| *r == rule)?;
    match net {
        "lenet-mnist" => Some(*mnist),
        "lenet-cifar" => Some(*cifar),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(published("lenet-mnist", RuleKind::Dfa), Some(1.61));
        assert_eq!(published("lenet-cifar", RuleKind::Usf), Some(16.22));
        assert_eq!(published("lenet-cifar", RuleKind::Bfa), None);
        assert_eq!(published("1x800", RuleKind::Bp), None);
    }

    /// The presets of the benchmark are its protocol; a change of any
    /// setting it fixes is not.
    #[test]
    fn the_benchmark_presets_are_its_protocol() {
        for file in ["experiments/conv-mnist.toml", "experiments/conv-cifar.toml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let sweep = crate::experiment::sweep::Sweep::from_file(&path).expect(file);
            let cells = sweep.cells().expect(file);
            assert!(!cells.is_empty());
            for cell in &cells {
                assert!(is_protocol(&cell.config), "{file}: {:?}", cell.config);
                let mut off = cell.config.clone();
                off.weight_decay *= 10.0;
                assert!(!is_protocol(&off));
                let mut off = cell.config.clone();
                off.lr_milestones.pop();
                assert!(!is_protocol(&off));
            }
        }
        assert!(!is_protocol(&RunConfig::default()));
    }
}
