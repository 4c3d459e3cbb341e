//! The statistics of a report: means and sample deviations over seeds,
//! standard errors of differences, orders of rules, and distances to the
//! paper. Numbers only; `markdown.rs` writes them out.

use super::runs::Group;
use crate::rules::RuleKind;

pub use crate::stats::mean_std;

/// A value as the tables print it, so that ranks tie where the printed
/// numbers do (FA and DFA with one hidden layer are the same rule).
pub(super) fn printed(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

/// The rules from the lowest value up, each with whether it ties (as
/// printed) with the one before.
pub(super) fn ranked(values: &[(RuleKind, f64)]) -> Vec<(RuleKind, f64, bool)> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    (0..v.len())
        .map(|i| {
            let tie = i > 0 && printed(v[i].1) == printed(v[i - 1].1);
            (v[i].0, v[i].1, tie)
        })
        .collect()
}

/// A pair of rules in our order the other way round from the paper's.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Reversal {
    /// The rule ahead in ours (lower error).
    pub ahead: RuleKind,
    /// The rule it passed.
    pub behind: RuleKind,
    /// How far ahead, in points.
    pub gap: f64,
    /// The fewer seeds of the two.
    pub seeds: usize,
    /// The standard error of the difference of the two means (from two
    /// seeds each on).
    pub se: Option<f64>,
}

/// Each pair of groups strictly the other way round from the paper's values
/// `(group, paper value)` (a tie on either side contradicts nothing).
pub(super) fn reversals(ranked: &[(&Group, f64)]) -> Vec<Reversal> {
    let mut out = Vec::new();
    for (a, pa) in ranked {
        let (ma, sa) = mean_std(&a.last);
        for (b, pb) in ranked {
            let (mb, sb) = mean_std(&b.last);
            if !(printed(ma) < printed(mb) && printed(*pa) > printed(*pb)) {
                continue;
            }
            let (na, nb) = (a.last.len(), b.last.len());
            out.push(Reversal {
                ahead: a.rule,
                behind: b.rule,
                gap: mb - ma,
                seeds: na.min(nb),
                se: (na >= 2 && nb >= 2)
                    .then(|| (sa * sa / na as f64 + sb * sb / nb as f64).sqrt()),
            });
        }
    }
    out
}

/// A cell's distance to the paper's number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Distance {
    /// Ours minus the paper's, in points.
    pub points: f64,
    /// The same in the cell's standard deviations over seeds (two seeds on,
    /// and a spread that is not zero).
    pub sd: Option<f64>,
    /// The cell's seeds.
    pub n: usize,
}

/// The distance of the mean of `v` to `paper`.
pub(super) fn distance(v: &[f64], paper: f64) -> Distance {
    let (m, s) = mean_std(v);
    let points = m - paper;
    Distance {
        points,
        sd: (v.len() >= 2 && s != 0.0).then(|| points / s),
        n: v.len(),
    }
}
