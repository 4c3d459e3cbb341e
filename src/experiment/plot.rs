//! Plots: learning curves (test error per epoch, one line per rule, mean
//! with a ±1 std band over seeds) and alignment-angle curves per hidden
//! layer, as PNG and SVG.

use super::report::RunResult;
use crate::error::{Error, Result};
use crate::rules::RuleKind;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One curve: per x, the mean and the band's low and high ends.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Color index (one per rule).
    pub color: usize,
    /// `(x, mean, low, high)`.
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// One color per rule of [`RuleKind::ALL`] (the tab10 colors, then black),
/// so that no two rules of a plot share one.
fn palette(i: usize) -> RGBColor {
    const C: [RGBColor; RuleKind::ALL.len()] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 0),
    ];
    C[i % C.len()]
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    series: &[Series],
) -> std::result::Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x1, mut y0, mut y1) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, _, lo, hi) in pts {
        x1 = x1.max(x);
        if lo.is_finite() {
            y0 = y0.min(lo);
        }
        if hi.is_finite() {
            y1 = y1.max(hi);
        }
    }
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x1, (y0 - pad)..(y1 + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    for s in series {
        let c = palette(s.color);
        let fin: Vec<_> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .copied()
            .collect();
        if fin.len() > 1 {
            let band: Vec<(f64, f64)> = fin
                .iter()
                .map(|p| (p.0, p.3))
                .chain(fin.iter().rev().map(|p| (p.0, p.2)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(band, c.mix(0.18))))
                .map_err(e)?;
        }
        chart
            .draw_series(LineSeries::new(
                fin.iter().map(|p| (p.0, p.1)),
                c.stroke_width(2),
            ))
            .map_err(e)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

/// Writes `stem.png` and `stem.svg`.
pub fn write_chart(
    stem: &Path,
    title: &str,
    y_label: &str,
    series: &[Series],
) -> Result<Vec<PathBuf>> {
    crate::images::register_fonts();
    // Appended, not `with_extension`: a stem may hold a dot (`lr-0.1`).
    let with = |ext: &str| {
        let mut name = stem.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    let (png, svg) = (with(".png"), with(".svg"));
    draw(
        BitMapBackend::new(&png, (900, 560)).into_drawing_area(),
        title,
        y_label,
        series,
    )
    .map_err(|m| Error::io(&png, std::io::Error::other(m)))?;
    draw(
        SVGBackend::new(&svg, (900, 560)).into_drawing_area(),
        title,
        y_label,
        series,
    )
    .map_err(|m| Error::io(&svg, std::io::Error::other(m)))?;
    Ok(vec![png, svg])
}

/// Per epoch, mean ± std over runs of `column` scaled by `scale`.
fn curve(runs: &[&RunResult], column: &str, scale: f64) -> Vec<(f64, f64, f64, f64)> {
    let n = runs.iter().map(|r| r.epochs.len()).max().unwrap_or(0);
    (0..n)
        .filter_map(|e| {
            let vals: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.epochs.get(e).and_then(|row| row.get(column)).copied())
                .filter(|v| v.is_finite())
                .map(|v| v * scale)
                .collect();
            if vals.is_empty() {
                return None;
            }
            let (m, s) = super::report::mean_std(&vals);
            Some(((e + 1) as f64, m, m - s, m + s))
        })
        .collect()
}

/// Writes every plot for the runs under `dir` into `out`; returns the files.
pub fn plot_dir(dir: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    let runs = super::report::collect(dir)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    // Runs that differ in a setting are plotted apart, as the report tables them.
    let variants = super::report::variants(&runs);
    let key_of = |i: usize| {
        let r = &runs[i];
        (
            r.config.dataset.name().to_string(),
            r.config.architecture(),
            variants[i].table.clone(),
        )
    };
    let mut keys: Vec<(String, String, String)> = Vec::new();
    for i in 0..runs.len() {
        let k = key_of(i);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut files = Vec::new();
    for (ds, hidden, variant) in keys {
        let at = |rule: RuleKind| -> Vec<usize> {
            (0..runs.len())
                .filter(|&i| key_of(i) == (ds.clone(), hidden.clone(), variant.clone()))
                .filter(|&i| runs[i].config.rule == rule)
                .collect()
        };
        let of = |rule: RuleKind| -> Vec<&RunResult> {
            at(rule).into_iter().map(|i| &runs[i]).collect()
        };
        // A setting of the rule's own (its tuned rate) goes into its label.
        let label = |rule: RuleKind, n: usize| {
            let cell = at(rule)
                .first()
                .map_or(String::new(), |&i| variants[i].cell.clone());
            let name = rule.name().to_uppercase();
            match (n, cell.is_empty()) {
                (0, true) => name,
                (0, false) => format!("{name} {cell}"),
                (n, true) => format!("{name} (n={n})"),
                (n, false) => format!("{name} (n={n}) {cell}"),
            }
        };
        // File names and titles carry the variant: `_feedback_scale-sender`.
        let suffix: String = variant
            .split(", ")
            .filter(|v| !v.is_empty())
            .map(|v| file_safe(&format!("_{}", v.replace('=', "-"))))
            .collect();
        let title_variant = if variant.is_empty() {
            String::new()
        } else {
            format!(" ({variant})")
        };
        let mut series = Vec::new();
        for (ci, rule) in RuleKind::ALL.into_iter().enumerate() {
            let rs = of(rule);
            if !rs.is_empty() {
                series.push(Series {
                    label: label(rule, rs.len()),
                    color: ci,
                    points: curve(&rs, "test_error", 100.0),
                });
            }
        }
        // A described network's name is its layers: keep it a file name.
        let file_hidden = file_safe(&hidden);
        let stem = out.join(format!("test_error_{ds}_{file_hidden}{suffix}"));
        files.extend(write_chart(
            &stem,
            &format!("{ds} {hidden}{title_variant}: test error"),
            "test error (%)",
            &series,
        )?);
        let layers = runs
            .iter()
            .find(|r| r.config.architecture() == hidden)
            .map_or(0, |r| r.config.hidden_layer_count());
        // One line per rule that recorded `column`, labelled without n.
        let per_rule = |column: &str, with_bp: bool| -> Vec<Series> {
            RuleKind::ALL
                .into_iter()
                .enumerate()
                .filter(|&(_, rule)| with_bp || rule != RuleKind::Bp)
                .filter_map(|(ci, rule)| {
                    let pts = curve(&of(rule), column, 1.0);
                    (!pts.is_empty()).then(|| Series {
                        label: label(rule, 0),
                        color: ci,
                        points: pts,
                    })
                })
                .collect()
        };
        for i in 0..layers {
            let series = per_rule(&format!("align_update_{i}"), false);
            if !series.is_empty() {
                let stem = out.join(format!("alignment_{ds}_{file_hidden}{suffix}_layer{i}"));
                let title = format!(
                    "{ds} {hidden}{title_variant}: angle between update and BP gradient, hidden layer {}",
                    i + 1
                );
                files.extend(write_chart(&stem, &title, "angle (degrees)", &series)?);
            }
        }
        // Weight norms, where the runs recorded them (runs from before the
        // norm columns have none): every parametric layer, BP too.
        for i in 0..=layers {
            let series = per_rule(&format!("norm_forward.{i}.weight"), true);
            if !series.is_empty() {
                let stem = out.join(format!("weight_norm_{ds}_{file_hidden}{suffix}_layer{i}"));
                let title = format!("{ds} {hidden}{title_variant}: norm of forward.{i}.weight");
                files.extend(write_chart(&stem, &title, "Euclidean norm", &series)?);
            }
        }
    }
    Ok(files)
}

/// `s` with every character but ASCII letters, digits, `-`, `_` and `.`
/// replaced by `_`: a part of a file name on any system.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
