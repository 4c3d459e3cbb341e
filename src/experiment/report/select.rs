//! Choosing a setting per cell on the validation split (`biprop report
//! --select lr`): the runs kept, and the choice made for each cell.

use super::runs::{setting_text, RunResult, PER_RUN};
use super::stats::mean_std;
use crate::config::RunConfig;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// The group a run's settings put it in (every setting but `key` and the
/// [`PER_RUN`] ones) and its value of `key`; `None`
/// when `key` is not one of its settings.
fn group_and_value(config: &RunConfig, key: &str) -> Option<(String, String)> {
    let mut t: toml::Table = config.to_toml().parse().expect("a config's TOML parses");
    let value = setting_text(&t.remove(key)?);
    for k in PER_RUN {
        t.remove(k);
    }
    Some((toml::to_string(&t).expect("a table serializes"), value))
}

/// How [`select`] chose one setting's value for one group of runs.
#[derive(Clone, Debug)]
pub struct Choice {
    /// What the runs share: data set, architecture, rule and any variant.
    pub group: String,
    /// The seeds every value was run with: the ones the choice compares on.
    pub seeds: Vec<u64>,
    /// Each value, and its mean best validation error (%) over `seeds`
    /// (infinite where a run diverged, `None` while one is unfinished).
    pub scores: Vec<(String, Option<f64>)>,
    /// The value kept; `None` while some run on `seeds` is unfinished.
    pub chosen: Option<String>,
}

/// For every group of runs that differ only in `key` and the seed, keeps the
/// runs of the value of `key` with the lowest mean best validation error,
/// compared on the seeds that every value was run with (so that a value run
/// with more seeds is not favoured or penalised); a value with a diverged
/// run there loses. A group whose comparison is still missing a run (an
/// unfinished one, or a value of `planned`, the cells of the sweep the runs
/// come from, with no run yet; without `planned`, a value that other groups
/// have) keeps no runs. Tuning on the validation split: test errors play no part.
pub fn select(
    runs: &[RunResult],
    key: &str,
    planned: &[RunConfig],
) -> Result<(Vec<RunResult>, Vec<Choice>)> {
    let mut groups: BTreeMap<String, Vec<(String, &RunResult)>> = BTreeMap::new();
    for r in runs {
        let Some((group, value)) = group_and_value(&r.config, key) else {
            return Err(Error::Config(format!(
                "--select {key}: not a setting of {}",
                r.dir.display()
            )));
        };
        groups.entry(group).or_default().push((value, r));
    }
    // The planned cells of each group, (value, seed): one without a
    // finished run leaves the group open.
    let mut planned_cells: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for c in planned {
        if let Some((group, value)) = group_and_value(c, key) {
            planned_cells
                .entry(group)
                .or_default()
                .push((value, c.seed));
        }
    }
    // Settings that differ between groups besides the data set, the
    // network and the rule (another swept key, such as the forward rate
    // beside a feedback rate) name the group too, or two groups would read
    // the same.
    let tables: Vec<toml::Table> = groups
        .keys()
        .map(|k| k.parse().expect("a serialized table parses"))
        .collect();
    let mut varying: Vec<&String> = tables.iter().flat_map(|t| t.keys()).collect();
    varying.sort();
    varying.dedup();
    varying.retain(|k| {
        !["dataset", "rule", "hidden", "net", "layers"].contains(&k.as_str())
            && tables.iter().any(|t| t.get(*k) != tables[0].get(*k))
    });
    let label_of = |r: &RunResult, table: &toml::Table| {
        let mut label = format!(
            "{} {} {}",
            r.config.dataset.name(),
            r.config.architecture(),
            r.config.rule.name()
        );
        for k in &varying {
            let v = table.get(*k).map_or("none".into(), setting_text);
            label.push_str(&format!(" {k}={v}"));
        }
        label
    };
    // Every value any group was run with: a group still missing one (a
    // sweep in progress) is not decided yet.
    let mut all_values: Vec<String> = Vec::new();
    for v in groups.values().flatten().map(|(v, _)| v) {
        if !all_values.contains(v) {
            all_values.push(v.clone());
        }
    }
    let mut kept = Vec::new();
    let mut choices = Vec::new();
    for ((group, members), table) in groups.iter().zip(&tables) {
        let planned_here = planned_cells.get(group).map_or(&[][..], Vec::as_slice);
        let unfinished_plan = planned_here.iter().any(|(v, seed)| {
            !members.iter().any(|(w, r)| {
                w == v
                    && r.config.seed == *seed
                    && (r.diverged() || r.epochs.len() >= r.config.epochs)
            })
        });
        let mut values: Vec<&String> = Vec::new();
        for v in members
            .iter()
            .map(|(v, _)| v)
            .chain(planned_here.iter().map(|(v, _)| v))
        {
            if !values.contains(&v) {
                values.push(v);
            }
        }
        values.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        });
        let seeds_of = |v: &String| -> Vec<u64> {
            members
                .iter()
                .filter(|(w, _)| w == v)
                .map(|(_, r)| r.config.seed)
                .collect()
        };
        // A planned value with no run yet has no seeds: it leaves the
        // group open, not the comparison of the others empty.
        let mut with_runs = values.iter().map(|v| seeds_of(v)).filter(|s| !s.is_empty());
        let mut common = with_runs.next().unwrap_or_default();
        for s in with_runs {
            common.retain(|x| s.contains(x));
        }
        common.sort_unstable();
        let scores: Vec<(String, Option<f64>)> = values
            .iter()
            .map(|v| {
                let on_common = members
                    .iter()
                    .filter(|(w, r)| w == *v && common.contains(&r.config.seed));
                let mut errs = Vec::new();
                for (_, r) in on_common {
                    if r.diverged() {
                        return ((*v).clone(), Some(f64::INFINITY));
                    }
                    if r.epochs.len() < r.config.epochs {
                        return ((*v).clone(), None);
                    }
                    errs.push(100.0 * r.best_val_error());
                }
                let (m, _) = mean_std(&errs);
                ((*v).clone(), if errs.is_empty() { None } else { Some(m) })
            })
            .collect();
        // Without the sweep's cells, a value another group ran stands in
        // for one still to come here; with them, each group's own cells
        // say (a grid of per-rule rates gives each rule its own values).
        let complete = !planned.is_empty() || all_values.iter().all(|v| values.contains(&v));
        let chosen = if !complete || unfinished_plan || scores.iter().any(|(_, s)| s.is_none()) {
            None
        } else {
            // A diverged value is never chosen, even where every one diverged.
            scores
                .iter()
                .filter(|(_, s)| s.is_some_and(f64::is_finite))
                .min_by(|a, b| a.1.unwrap().total_cmp(&b.1.unwrap()))
                .map(|(v, _)| v.clone())
        };
        if let Some(c) = &chosen {
            kept.extend(
                members
                    .iter()
                    .filter(|(v, _)| v == c)
                    .map(|(_, r)| (*r).clone()),
            );
        }
        choices.push(Choice {
            group: label_of(members[0].1, table),
            seeds: common,
            scores,
            chosen,
        });
    }
    if choices.iter().all(|c| c.scores.len() < 2) {
        return Err(Error::Config(format!(
            "--select {key}: no group of runs differs in {key}"
        )));
    }
    kept.sort_by(|a, b| a.dir.cmp(&b.dir));
    choices.sort_by(|a, b| a.group.cmp(&b.group));
    Ok((kept, choices))
}
