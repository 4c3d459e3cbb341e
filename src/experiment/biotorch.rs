//! biotorch's published LeNet numbers (jsalbert/biotorch, `Benchmarks.md`:
//! top-1 test error, %, of the model picked on its validation split), to
//! print beside runs of its protocols.

use crate::config::RunConfig;
use crate::data::DatasetKind;
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

/// Whether biotorch's numbers for the LeNet `p` (those of `p`'s data set)
/// were measured on `p` itself (its `biotorch-` networks) rather than on a
/// LeNet that differs from it (`lenet-mnist`, `lenet-cifar`: its models of
/// July 2021).
fn measured_on(p: Preset) -> bool {
    match p {
        Preset::LenetMnist | Preset::LenetCifar => false,
        Preset::BiotorchLenetMnist | Preset::BiotorchLenetCifar => true,
    }
}

/// Whether `c` trains biotorch's LeNet benchmark: one of its LeNets (the
/// preset, or layers that write it out; also the July 2021 `lenet-*`,
/// whose reports say that biotorch's numbers were measured on another
/// network, [`is_its_network`]) on the data set it was made for, SGD with
/// momentum 0.9, cross-entropy, Xavier initialization, and the data set's
/// batch, weight decay and rate schedule (MNIST: batch 64, decay 1e-3, the
/// rate divided by 10 after epochs 50 and 75; CIFAR-10: 128, 1e-4, after
/// 100, 150 and 200). The epoch count and the rate are not checked: short
/// runs are compared and say so, and biotorch gives no MNIST rates.
pub fn is_protocol(c: &RunConfig) -> bool {
    let Some(data) = c.preset().map(Preset::dataset) else {
        return false;
    };
    let (batch, decay, milestones): (usize, f32, &[usize]) = match data {
        DatasetKind::Mnist => (64, 1e-3, &[50, 75]),
        _ => (128, 1e-4, &[100, 150, 200]),
    };
    c.dataset == data
        && c.optimizer == OptimizerKind::Sgd
        && c.momentum == 0.9
        && c.output == Output::SoftmaxCe
        && c.init == crate::rules::InitScheme::Xavier
        && c.batch_size == batch
        && c.weight_decay == decay
        && c.lr_milestones == milestones
        && c.lr_gamma == 0.1
}

/// biotorch's test error (%) for `rule` on the preset named `net`, if it
/// publishes one: its MNIST number for `biotorch-lenet-mnist` and
/// `lenet-mnist`, its CIFAR-10 number for the `-cifar` ones.
pub fn published(net: &str, rule: RuleKind) -> Option<f64> {
    let (_, mnist, cifar) = LENET.iter().find(|(r, _, _)| *r == rule)?;
    match Preset::named(net)?.dataset() {
        DatasetKind::Mnist => Some(*mnist),
        DatasetKind::Cifar10 => Some(*cifar),
        DatasetKind::Idx => None,
    }
}

/// Whether biotorch's published numbers were measured on the preset named
/// `net` itself (its `biotorch-` networks).
pub fn is_its_network(net: &str) -> bool {
    Preset::named(net).is_some_and(measured_on)
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
        assert_eq!(
            published("biotorch-lenet-cifar", RuleKind::Fa),
            published("lenet-cifar", RuleKind::Fa)
        );
        assert!(is_its_network("biotorch-lenet-mnist"));
        assert!(!is_its_network("lenet-mnist"));
        assert!(!is_its_network("biotorch-resnet"));
    }

    /// The presets of the benchmark are its protocol; a change of any
    /// setting it fixes is not.
    #[test]
    fn the_benchmark_presets_are_its_protocol() {
        for file in [
            "experiments/conv-mnist.toml",
            "experiments/conv-cifar.toml",
            "experiments/conv-mnist-biotorch-net.toml",
            "experiments/conv-cifar-biotorch-net.toml",
        ] {
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
                // The MNIST network fits CIFAR-10's images too.
                let mut off = cell.config.clone();
                off.dataset = match off.dataset {
                    DatasetKind::Mnist => DatasetKind::Cifar10,
                    _ => DatasetKind::Mnist,
                };
                assert!(!is_protocol(&off));
            }
        }
        assert!(!is_protocol(&RunConfig::default()));
    }
}
