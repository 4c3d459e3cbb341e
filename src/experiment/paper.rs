//! The paper's published numbers (test error, %), to print beside ours.

// 3.14 is BFA's published error on 1x800, not an approximation of pi.
#![allow(clippy::approx_constant)]

use crate::config::{format_hidden, parse_hidden};
use crate::data::DatasetKind;
use crate::rules::RuleKind;

/// The rules of the paper's columns, in order: a table's values are looked
/// up by rule here, so rules the paper did not run have no value.
const COLUMNS: [RuleKind; 5] = [
    RuleKind::Bp,
    RuleKind::Fa,
    RuleKind::Dfa,
    RuleKind::Bfa,
    RuleKind::Bdfa,
];

/// Table 1 (MNIST): architectures, then the [`COLUMNS`] rules.
const TABLE1: [(&str, [f64; 5]); 6] = [
    ("1x400", [1.95, 3.75, 3.75, 2.90, 3.24]),
    ("1x800", [1.92, 4.49, 4.49, 3.14, 3.43]),
    ("2x400", [1.71, 4.25, 3.70, 2.89, 3.28]),
    ("2x800", [1.74, 4.53, 4.21, 2.92, 3.40]),
    ("3x400", [1.83, 5.46, 3.62, 2.84, 3.33]),
    ("3x800", [1.80, 5.48, 4.30, 2.95, 3.37]),
];

/// Table 2 (CIFAR-10).
const TABLE2: [(&str, [f64; 5]); 4] = [
    ("1x400", [46.78, 48.38, 48.48, 48.34, 48.00]),
    ("1x800", [45.22, 48.08, 48.04, 48.01, 47.36]),
    ("2x400", [46.22, 49.50, 48.52, 48.38, 47.98]),
    ("2x800", [44.97, 48.88, 48.86, 48.55, 48.46]),
];

/// The paper's table for `dataset`: 1 (MNIST), 2 (CIFAR-10), or none.
pub fn table(dataset: DatasetKind) -> Option<u8> {
    match dataset {
        DatasetKind::Mnist => Some(1),
        DatasetKind::Cifar10 => Some(2),
        DatasetKind::Idx => None,
    }
}

/// The paper's test error (%) for `rule` on `hidden` (any form `--hidden`
/// takes: `2x800`, `800,800`, `800`), if it has one.
pub fn published(dataset: DatasetKind, hidden: &str, rule: RuleKind) -> Option<f64> {
    let table: &[(&str, [f64; 5])] = match table(dataset)? {
        1 => &TABLE1,
        _ => &TABLE2,
    };
    let arch = format_hidden(&parse_hidden(hidden).ok()?);
    let col = COLUMNS.iter().position(|&r| r == rule)?;
    table.iter().find(|(a, _)| *a == arch).map(|(_, v)| v[col])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(
            published(DatasetKind::Mnist, "800", RuleKind::Bfa),
            Some(3.14)
        );
        assert_eq!(
            published(DatasetKind::Mnist, "3x400", RuleKind::Dfa),
            Some(3.62)
        );
        assert_eq!(
            published(DatasetKind::Cifar10, "2x800", RuleKind::Bdfa),
            Some(48.46)
        );
        assert_eq!(published(DatasetKind::Cifar10, "3x800", RuleKind::Bp), None);
        // Every form --hidden takes names the same architecture.
        assert_eq!(
            published(DatasetKind::Mnist, "400,400,400", RuleKind::Dfa),
            Some(3.62)
        );
        assert_eq!(published(DatasetKind::Idx, "800", RuleKind::Bp), None);
        // Rules beyond the paper's have no published value, whatever their position.
        for rule in RuleKind::ALL.into_iter().filter(|r| !COLUMNS.contains(r)) {
            assert_eq!(published(DatasetKind::Mnist, "800", rule), None, "{rule}");
        }
        assert_eq!(table(DatasetKind::Idx), None);
    }

    #[test]
    fn dataset_names_are_the_command_line_names() {
        use clap::ValueEnum;
        for kind in DatasetKind::value_variants() {
            let cli = kind.to_possible_value().expect("a value");
            assert_eq!(kind.name(), cli.get_name());
        }
    }
}
