//! The layout of a report: Markdown tables like the paper's, the ranking
//! and distance sections, and CSV.

use super::runs::Group;
use super::select::Choice;
use super::stats::{self, mean_std, Distance, Reversal};
use crate::data::DatasetKind;
use crate::experiment::{biotorch, paper};
use crate::rules::RuleKind;

/// `mean ± std (n=N)`, and how many runs diverged or are unfinished.
fn cell(v: &[f64], diverged: usize, unfinished: usize) -> String {
    let mut div = String::new();
    if diverged > 0 {
        div.push_str(&format!(", {diverged} diverged"));
    }
    if unfinished > 0 {
        div.push_str(&format!(", {unfinished} unfinished"));
    }
    if v.is_empty() {
        return match (diverged, unfinished) {
            (d, 0) => format!("diverged (all {d})"),
            (0, u) => format!("unfinished ({u})"),
            (d, u) => format!("none finished ({d} diverged, {u} unfinished)"),
        };
    }
    let (m, s) = mean_std(v);
    if m.is_nan() {
        // No validation set (val_size = 0): there is no best-validation epoch.
        return format!("n/a (n={}{div})", v.len());
    }
    if v.len() == 1 {
        // One run has no spread; a printed "± 0.00" would read as a measured one.
        return format!("{m:.2} (n=1{div})");
    }
    format!("{m:.2} ± {s:.2} (n={}{div})", v.len())
}

/// `12.3° · 4.5 min`: a group's mean update angle and wall time per run.
fn angle_and_time(g: &Group) -> String {
    if g.seeds.is_empty() {
        return "—".into();
    }
    let (angle, _) = mean_std(&g.angle);
    let (secs, _) = mean_std(&g.seconds);
    let angle = if g.rule == RuleKind::Bp {
        "0°".to_string()
    } else if angle.is_finite() {
        let mut a = match g.angle_epoch {
            Some(e) => format!("{angle:.1}° (from epoch {e})"),
            None => format!("{angle:.1}°"),
        };
        // A dead layer has no angle: the mean would hide it.
        if let Some((n, of)) = g.angle_layers {
            a.push_str(&format!(
                " (over {n} of {of} layers: the others' updates were zero)"
            ));
        }
        a
    } else {
        "n/a".into()
    };
    format!("{angle} · {:.1} min", secs / 60.0)
}

/// The Markdown report: for each data set, one table of last-epoch test
/// error and one at the best validation epoch, with the paper's numbers,
/// and one of alignment angles and wall time.
pub fn markdown(groups: &[Group]) -> String {
    let mut out = String::new();
    let tables: Vec<(DatasetKind, &str)> = {
        let mut d: Vec<_> = groups
            .iter()
            .map(|g| (g.dataset, g.variant.as_str()))
            .collect();
        d.dedup();
        d
    };
    for (ds, variant) in tables {
        let gs: Vec<&Group> = groups
            .iter()
            .filter(|g| g.dataset == ds && g.variant == variant)
            .collect();
        let variant = if variant.is_empty() {
            String::new()
        } else {
            format!(" ({variant})")
        };
        let rules: Vec<RuleKind> = RuleKind::ALL
            .into_iter()
            .filter(|r| gs.iter().any(|g| g.rule == *r))
            .collect();
        let mut archs: Vec<&str> = Vec::new();
        for g in &gs {
            if !archs.contains(&g.hidden.as_str()) {
                archs.push(&g.hidden);
            }
        }
        let seeds = gs.iter().map(|g| g.seeds.len()).max().unwrap_or(0);
        let fewest = gs.iter().map(|g| g.seeds.len()).min().unwrap_or(0);
        let seeds = if fewest == seeds {
            format!("{seeds}")
        } else {
            format!("{fewest} to {seeds}")
        };
        let epochs = gs
            .iter()
            .map(|g| g.epochs)
            .filter(|&e| e != usize::MAX)
            .min()
            .unwrap_or(0);
        for (title, pick) in [
            ("test error (%) at the last epoch", 0),
            ("test error (%) at the epoch of best validation error", 1),
            ("alignment and time", 2),
        ] {
            let paper_runs = gs.iter().any(|g| g.paper_protocol);
            let biotorch_runs = gs.iter().any(|g| g.biotorch_protocol);
            let not_its = not_biotorch_network(&gs);
            let paper = match (pick, paper::table(ds)) {
                (2, _) => "angle (°) between each rule's update and BP's gradient at the last epoch, mean over hidden layers · wall minutes per run".into(),
                (0, _) if biotorch_runs => "(biotorch's published values are beside the next table: it reports the test error at the epoch of best validation error)".into(),
                (1, _) if biotorch_runs => format!("(biotorch: its published LeNet value beside, jsalbert/biotorch Benchmarks.md{not_its})"),
                (_, Some(t)) if paper_runs => {
                    format!("(paper: its Table {t} value, 300 epochs, 5 runs)")
                }
                (_, Some(_)) => "(not the paper's protocol: no paper values beside)".into(),
                (_, None) => "(no paper value for this data set)".into(),
            };
            out.push_str(&format!(
                "### {}{variant} — {title}\n\nmean ± std over {seeds} seed(s) (n per cell), {epochs} epochs; {paper}\n\n{}",
                ds.name().to_uppercase(),
                cell_settings(&gs, &rules, &archs),
            ));
            out.push_str(&rules_header(&rules));
            for a in &archs {
                out.push_str(&format!("| {a} |"));
                for r in &rules {
                    let text = match gs.iter().find(|g| g.hidden == *a && g.rule == *r) {
                        Some(g) if pick == 2 => angle_and_time(g),
                        Some(g) => {
                            let v = if pick == 0 { &g.last } else { &g.best_val };
                            let ours = cell(v, g.diverged.len(), g.unfinished.len());
                            // biotorch's number is of the best validation epoch.
                            let beside = Reference::Paper.value(g).or_else(|| {
                                (pick == 1).then(|| Reference::Biotorch.value(g)).flatten()
                            });
                            match beside {
                                Some(p) => format!("{ours} ({p:.2})"),
                                None => ours,
                            }
                        }
                        None => "—".into(),
                    };
                    out.push_str(&format!(" {text} |"));
                }
                out.push('\n');
            }
            out.push('\n');
        }
        if gs.iter().any(|g| g.paper_protocol) {
            out.push_str(&ranking_table(ds, &variant, &gs, &archs));
            let to_paper = Reference::Paper;
            out.push_str(&distance_table(ds, &variant, &gs, &rules, &archs, to_paper));
        }
        if gs.iter().any(|g| g.biotorch_protocol) {
            let to_biotorch = Reference::Biotorch;
            out.push_str(&distance_table(
                ds,
                &variant,
                &gs,
                &rules,
                &archs,
                to_biotorch,
            ));
        }
    }
    out
}

/// The ranking section of one table: per architecture, the rules of the
/// paper's protocol ordered by mean last-epoch error beside the paper's values
/// of the same rules (rows with fewer than two such rules are left out), and
/// each pair the other way round with how far apart the pair is against its
/// spread over seeds. Empty for a data set the paper has no table for, and
/// when no row has two rules to rank (a sweep of one rule).
fn ranking_table(ds: DatasetKind, variant: &str, gs: &[&Group], archs: &[&str]) -> String {
    let Some(t) = paper::table(ds) else {
        return String::new();
    };
    let mut out = format!(
        "### {}{variant} — ranking of the rules\n\ntest error (%) at the last epoch, mean over the seeds present, lowest first; the paper's Table {t} values of the same rules beside; same order: no two rules the other way round, else each such pair, how far apart, and that distance in standard errors of the difference (from 2 seeds of each on; within 2: not separated by these seeds)\n\n| model | ours | paper | same order |\n|---|---|---|---|\n",
        ds.name().to_uppercase()
    );
    let mut rows = 0;
    for a in archs {
        // Only rules with a paper value, so both sides rank the same rules.
        let ranked: Vec<(&Group, f64)> = gs
            .iter()
            .filter(|g| g.hidden == *a && !g.last.is_empty())
            .filter_map(|g| Some((*g, Reference::Paper.value(g)?)))
            .collect();
        if ranked.len() < 2 {
            continue;
        }
        rows += 1;
        let ours: Vec<_> = ranked
            .iter()
            .map(|(g, _)| (g.rule, mean_std(&g.last).0))
            .collect();
        let theirs: Vec<_> = ranked.iter().map(|(g, p)| (g.rule, *p)).collect();
        let found: Vec<String> = stats::reversals(&ranked).iter().map(reversal).collect();
        let order = match found {
            r if r.is_empty() => "yes".to_string(),
            r => format!("no: {}", r.join("; ")),
        };
        out.push_str(&format!(
            "| {a} | {} | {} | {order} |\n",
            ranking(&ours),
            ranking(&theirs),
        ));
    }
    if rows == 0 {
        return String::new();
    }
    out.push('\n');
    out
}

/// `settings by cell: BP lr=0.01; FA lr=0.001` and a blank line: what a
/// table's cells do not share (a rate tuned for each rule), a rule's
/// settings once where every network of the table has them, else for each
/// network. Empty when the cells share every setting.
fn cell_settings(gs: &[&Group], rules: &[RuleKind], archs: &[&str]) -> String {
    let mut parts = Vec::new();
    for r in rules {
        let of_rule: Vec<&&Group> = gs.iter().filter(|g| g.rule == *r).collect();
        let Some(first) = of_rule.first() else {
            continue;
        };
        let name = r.name().to_uppercase();
        if of_rule
            .iter()
            .all(|g| g.cell_settings == first.cell_settings)
        {
            if !first.cell_settings.is_empty() {
                parts.push(format!("{name} {}", first.cell_settings));
            }
            continue;
        }
        for a in archs {
            if let Some(g) = of_rule.iter().find(|g| g.hidden == *a) {
                if !g.cell_settings.is_empty() {
                    parts.push(format!("{name} on {a} {}", g.cell_settings));
                }
            }
        }
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("settings by cell: {}\n\n", parts.join("; "))
}

/// `| model | BP | FA |` and its separator row: the head of every table
/// whose columns are rules.
fn rules_header(rules: &[RuleKind]) -> String {
    let mut out = String::from("| model |");
    for r in rules {
        out.push_str(&format!(" {} |", r.name().to_uppercase()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(rules.len()));
    out.push('\n');
    out
}

/// Whose published numbers a distance table measures against.
#[derive(Clone, Copy)]
enum Reference {
    /// The paper's Table 1 or 2, at the last epoch.
    Paper,
    /// biotorch's LeNet benchmark, at the epoch of best validation error.
    Biotorch,
}

impl Reference {
    /// Its published test error (%) for `g`'s cell, where `g`'s runs train
    /// its protocol: the one lookup behind every table and the CSV.
    fn value(self, g: &Group) -> Option<f64> {
        match self {
            Reference::Paper if g.paper_protocol => paper::published(g.dataset, &g.hidden, g.rule),
            Reference::Biotorch if g.biotorch_protocol => biotorch::published(&g.hidden, g.rule),
            _ => None,
        }
    }

    /// Our values that its number is measured against.
    fn ours(self, g: &Group) -> &[f64] {
        match self {
            Reference::Paper => &g.last,
            Reference::Biotorch => &g.best_val,
        }
    }
}

/// A caption's note, where some of `gs` train biotorch's protocol on a
/// LeNet that is not the one its numbers were measured on; else empty.
fn not_biotorch_network(gs: &[&Group]) -> String {
    let mut others: Vec<&str> = gs
        .iter()
        .filter(|g| g.biotorch_protocol && !biotorch::is_its_network(&g.hidden))
        .map(|g| g.hidden.as_str())
        .collect();
    others.sort_unstable();
    others.dedup();
    if others.is_empty() {
        return String::new();
    }
    let quoted = |names: &[&str]| names.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>();
    let its: Vec<&str> = crate::layers::spec::Preset::all()
        .iter()
        .map(|p| p.name())
        .filter(|n| biotorch::is_its_network(n))
        .collect();
    format!(
        "; biotorch's numbers were measured on its benchmark networks ({}), which differ \
         from {} (docs/networks.md, \"Presets\")",
        quoted(&its).join(", "),
        quoted(&others).join(" and ")
    )
}

/// The distance of each cell to a published number (the paper's at the
/// last epoch, biotorch's at the best validation epoch): in points, and in
/// the cell's own standard deviations over seeds once it has two seeds,
/// with those beyond two marked (the test of a reproduction). Empty when
/// no cell has a published number.
fn distance_table(
    ds: DatasetKind,
    variant: &str,
    gs: &[&Group],
    rules: &[RuleKind],
    archs: &[&str],
    reference: Reference,
) -> String {
    let what = match (reference, paper::table(ds)) {
        (Reference::Paper, None) => return String::new(),
        (Reference::Paper, Some(t)) => format!(
            "distance to the paper\n\ntest error at the last epoch, ours minus the paper's Table {t} value"
        ),
        (Reference::Biotorch, _) => "distance to biotorch\n\ntest error at the epoch of best validation error, ours minus biotorch's published value".into(),
    };
    let note = match reference {
        Reference::Biotorch => not_biotorch_network(gs),
        Reference::Paper => String::new(),
    };
    let mut out = format!(
        "### {}{variant} — {what}, in points and in standard deviations of the cell over its seeds (from 2 seeds on); **beyond 2 sd** marked{note}\n\n",
        ds.name().to_uppercase()
    );
    out.push_str(&rules_header(rules));
    let mut any = false;
    for a in archs {
        out.push_str(&format!("| {a} |"));
        for r in rules {
            let g = gs.iter().find(|g| g.hidden == *a && g.rule == *r);
            let text = match g.and_then(|g| Some((reference.value(g)?, reference.ours(g)))) {
                // Runs without a validation split have no best epoch.
                Some((_, v)) if !v.is_empty() && v.iter().all(|x| x.is_nan()) => {
                    any = true;
                    "n/a (no validation split)".into()
                }
                Some((p, v)) if !v.is_empty() => {
                    any = true;
                    distance(v, p)
                }
                _ => "—".into(),
            };
            out.push_str(&format!(" {text} |"));
        }
        out.push('\n');
    }
    out.push('\n');
    if any {
        out
    } else {
        String::new()
    }
}

/// The groups as CSV: one row per data set, architecture and rule.
pub fn csv_text(groups: &[Group]) -> String {
    let mut out = String::from(
        "dataset,variant,hidden,rule,runs,diverged,unfinished,epochs,test_error_last_mean,test_error_last_std,test_error_best_val_mean,test_error_best_val_std,paper,biotorch\n",
    );
    for g in groups {
        let (lm, ls) = mean_std(&g.last);
        let (bm, bs) = mean_std(&g.best_val);
        let [p, b] = [Reference::Paper, Reference::Biotorch]
            .map(|r| r.value(g).map_or(String::new(), |v| v.to_string()));
        out.push_str(&format!(
            "{:?},\"{}\",{},{},{},{},{},{},{lm},{ls},{bm},{bs},{p},{b}\n",
            g.dataset,
            g.variant,
            g.hidden,
            g.rule,
            g.last.len(),
            g.diverged.len(),
            g.unfinished.len(),
            if g.epochs == usize::MAX { 0 } else { g.epochs }
        ));
    }
    out
}

/// The choices of [`select`] as a Markdown table.
pub fn choices_markdown(key: &str, choices: &[Choice]) -> String {
    let mut out = format!(
        "### {key} chosen on the validation split\n\nmean best validation error (%) over the seeds that every value was run with\n\n| runs | seeds | "
    );
    let values: Vec<&String> = {
        let mut v: Vec<&String> = choices
            .iter()
            .flat_map(|c| c.scores.iter().map(|s| &s.0))
            .collect();
        v.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        });
        v.dedup();
        v
    };
    for v in &values {
        out.push_str(&format!("{key}={v} | "));
    }
    out.push_str("chosen |\n|---|---|");
    out.push_str(&"---|".repeat(values.len() + 1));
    out.push('\n');
    for c in choices {
        let seeds: Vec<String> = c.seeds.iter().map(u64::to_string).collect();
        out.push_str(&format!("| {} | {} |", c.group, seeds.join(", ")));
        for v in &values {
            let text = match c.scores.iter().find(|s| &s.0 == *v) {
                None => "not run".into(),
                Some((_, None)) => "unfinished".into(),
                Some((_, Some(x))) if x.is_infinite() => "diverged".into(),
                Some((_, Some(x))) => format!("{x:.2}"),
            };
            out.push_str(&format!(" {text} |"));
        }
        let every_value_diverged = !c.scores.is_empty()
            && c.scores
                .iter()
                .all(|(_, s)| s.is_some_and(f64::is_infinite));
        let chosen = match c.chosen.as_deref() {
            Some(v) => v,
            None if every_value_diverged => "none: every value diverged",
            None => "(waiting for runs)",
        };
        out.push_str(&format!(" {chosen} |\n"));
    }
    out
}

/// `BP 1.88 < DFA 3.71 = FA 3.71`: the rules from the lowest value up.
fn ranking(values: &[(RuleKind, f64)]) -> String {
    let mut out = String::new();
    for (i, (r, x, tie)) in stats::ranked(values).into_iter().enumerate() {
        if i > 0 {
            out.push_str(if tie { " = " } else { " < " });
        }
        out.push_str(&format!("{} {x:.2}", r.name().to_uppercase()));
    }
    out
}

/// `BFA before BP by 0.10 (1 seed)`, `BFA before BP by 0.10 = 0.7 se`, or
/// with `**3.1 se**` where the seeds separate the pair.
fn reversal(r: &Reversal) -> String {
    let (ra, rb, gap) = (
        r.ahead.name().to_uppercase(),
        r.behind.name().to_uppercase(),
        r.gap,
    );
    match r.se {
        None => format!("{ra} before {rb} by {gap:.2} ({} seed)", r.seeds),
        Some(0.0) => format!("{ra} before {rb} by {gap:.2}, no spread"),
        Some(se) if gap / se > 2.0 => {
            format!("{ra} before {rb} by {gap:.2} = **{:.1} se**", gap / se)
        }
        Some(se) => format!("{ra} before {rb} by {gap:.2} = {:.1} se", gap / se),
    }
}

/// `+0.09 (n=1)`, `-0.21 = -1.3 sd (n=3)`, `+1.05 = **+5.2 sd** (n=2)`.
fn distance(v: &[f64], paper: f64) -> String {
    let Distance { points: d, sd, n } = stats::distance(v, paper);
    match sd {
        None if n < 2 => format!("{d:+.2} (n={n})"),
        None => format!("{d:+.2}, sd 0 (n={n})"),
        Some(z) if z.abs() > 2.0 => format!("{d:+.2} = **{z:+.1} sd** (n={n})"),
        Some(z) => format!("{d:+.2} = {z:+.1} sd (n={n})"),
    }
}
