//! `biprop bench`: its tables, for MLPs and named networks, and the
//! settings it refuses.

mod common;

use common::{assert_clean_failure, biprop, stderr};

/// `biprop bench` prints one table row per cell, for thread counts and for
/// concurrent jobs, with figures that parse and are positive.
#[test]
fn bench_prints_a_row_per_cell() {
    let dir = tempfile::tempdir().unwrap();
    let o = biprop(
        &[
            "bench",
            "--rule",
            "bp",
            "--rule",
            "dfa",
            "--hidden",
            "32",
            "--threads",
            "1",
            "--jobs",
            "2",
            "--seconds",
            "0.05",
            "--passes",
            "2",
            "-q",
        ],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    let rows = [table_rows(&out, "bp"), table_rows(&out, "dfa")].concat();
    let labels: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[2])).collect();
    assert_eq!(
        labels,
        [
            ("bp", "1"),
            ("bp", "2 jobs x 1"),
            ("dfa", "1"),
            ("dfa", "2 jobs x 1")
        ]
    );
    for r in &rows {
        assert_eq!(r[1], "1x32");
        for v in &r[3..6] {
            assert!(v.parse::<f64>().unwrap() > 0.0, "{r:?}");
        }
    }
    assert!(out.contains("2 one-thread jobs at once (summed): FMA peak"));
}

/// `biprop bench --net` steps the named network (no MLP rows unless asked
/// for) and prints its FLOPs layer by layer, each row adding up to its total.
#[test]
fn bench_steps_a_named_network_and_counts_its_layers() {
    let dir = tempfile::tempdir().unwrap();
    let o = biprop(
        &[
            "bench",
            "--net",
            "lenet-mnist",
            "--rule",
            "bp",
            "--rule",
            "bfa",
            "--threads",
            "1",
            "--seconds",
            "0.05",
            "-q",
        ],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    let steps: Vec<Vec<&str>> = [table_rows(&out, "bp"), table_rows(&out, "bfa")]
        .concat()
        .into_iter()
        .filter(|r| r[1] == "lenet-mnist")
        .collect();
    assert_eq!(steps.len(), 2, "{out}");
    assert!(!out.contains("| 1x800 |"), "{out}");
    assert!(out.contains("lenet-mnist on 1x28x28: MFLOP of one training sample"));
    assert!(
        out.contains("layer 1 (conv 6 5x5 pad 2) -> 6x28x28"),
        "{out}"
    );
    let totals: Vec<f64> = ["bp", "bfa", "forward only"]
        .iter()
        .map(|rule| {
            let line = out
                .lines()
                .find(|l| l.starts_with(&format!("| {rule} |")) && l.matches('|').count() == 8)
                .unwrap_or_else(|| panic!("no layer row for {rule}: {out}"));
            let v: Vec<f64> = line
                .split('|')
                .map(str::trim)
                .filter_map(|c| c.parse().ok())
                .collect();
            assert_eq!(v.len(), 6, "{line}");
            let summed: f64 = v[..5].iter().sum();
            assert!((summed - v[5]).abs() < 0.03, "{line}");
            v[5]
        })
        .collect();
    // BFA does BP's work and its feedback network's; evaluation a third of BP.
    assert!(
        totals[1] > totals[0] && totals[0] > 2.0 * totals[2],
        "{totals:?}"
    );
}

/// The cheapest benchmark of one cell: BP on 784-16-10, one thread.
const TINY_BENCH: [&str; 10] = [
    "bench",
    "--rule",
    "bp",
    "--hidden",
    "16",
    "--threads",
    "1",
    "--seconds",
    "0.02",
    "-q",
];

/// The cells of the markdown table rows of `out` that start with `| {first}`.
fn table_rows<'a>(out: &'a str, first: &str) -> Vec<Vec<&'a str>> {
    out.lines()
        .filter(|l| l.starts_with(&format!("| {first}")))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect()
}

/// `--gemm` reaches the step rows: each row names the backend its trainer ran
/// its products on, and the header names the same one.
#[test]
fn bench_gemm_reaches_the_step_rows() {
    let dir = tempfile::tempdir().unwrap();
    for backend in ["faer", "gemm"] {
        let o = biprop(
            &[&TINY_BENCH[..], &["--gemm", backend]].concat(),
            dir.path(),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}{out}", stderr(&o));
        let rows = table_rows(&out, "bp");
        assert_eq!(rows.len(), 1, "{out}");
        assert_eq!(rows[0].last(), Some(&backend), "{out}");
        assert!(
            out.contains(&format!("GEMM backend of the step rows: {backend} ")),
            "{out}"
        );
    }
}

/// `--breakdown` times the products inside the step: BP on 784-16-10 makes
/// exactly its five products, and they and the rest add up to the step.
#[test]
fn bench_breakdown_lists_the_products_of_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let o = biprop(&TINY_BENCH, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).contains("Inside the step"));
    let o = biprop(&[&TINY_BENCH[..], &["--breakdown"]].concat(), dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    let inside = &out[out.find("Inside the step").expect("a breakdown")..];
    let rows = table_rows(inside, "bp");
    let mut products: Vec<(&str, &str)> = rows.iter().map(|r| (r[3], r[4])).collect();
    let (whole, outside) = (products.pop().unwrap(), products.pop().unwrap());
    assert_eq!((whole.0, outside.0), ("whole step", "outside the products"));
    products.sort();
    assert_eq!(
        products,
        [
            ("10x128x16 (+=)", "TN"),
            ("128x10x16", "NN"),
            ("128x16x10", "NT"),
            ("128x784x16", "NT"),
            ("16x128x784 (+=)", "TN"),
        ],
        "{out}"
    );
    let share = |r: &Vec<&str>| r[8].trim_end_matches('%').parse::<f64>().unwrap();
    let summed: f64 = rows[..rows.len() - 1].iter().map(share).sum();
    assert!(
        (summed - 100.0).abs() < 0.5,
        "shares add to {summed}: {out}"
    );
}

#[test]
fn bench_rejects_a_batch_it_cannot_time() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["0", "20000"] {
        let o = biprop(&["bench", "--batch-size", bad, "-q"], dir.path());
        assert_clean_failure(&o, "--batch-size must be in 1..=10000");
    }
}

/// `biprop bench --layers` steps a described network on random images of
/// `--image`, names it in its rows and counts its layers' FLOPs; a network
/// that does not fit the image, a malformed image and an --image without
/// --layers are refused.
#[test]
fn bench_steps_a_described_network_on_its_image() {
    let dir = tempfile::tempdir().unwrap();
    let layers = "conv 4 3x3, relu, maxpool 2, flatten, dense 10";
    let o = biprop(
        &[
            "bench",
            "--layers",
            layers,
            "--image",
            "3x12x12",
            "--rule",
            "dfa",
            "--threads",
            "1",
            "--seconds",
            "0.05",
            "-q",
        ],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    let rows: Vec<Vec<&str>> = table_rows(&out, "dfa")
        .into_iter()
        .filter(|r| r[1] == layers)
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(!out.contains("| 1x800 |"), "{out}");
    assert!(
        out.contains(&format!(
            "{layers} on 3x12x12: MFLOP of one training sample"
        )),
        "{out}"
    );
    assert!(out.contains("layer 1 (conv 4 3x3) -> 4x10x10"), "{out}");
    // The default image is MNIST's: 28x28 under a 3x3 convolution is 26x26.
    let o = biprop(
        &[
            "bench",
            "--layers",
            layers,
            "--rule",
            "bp",
            "--threads",
            "1",
            "--seconds",
            "0",
            "-q",
        ],
        dir.path(),
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    assert!(out.contains("layer 1 (conv 4 3x3) -> 4x26x26"), "{out}");
    let too_small = ["bench", "--layers", "conv 4 5x5", "--image", "1x3x3", "-q"];
    assert_clean_failure(&biprop(&too_small, dir.path()), "conv 4 5x5");
    assert_clean_failure(
        &biprop(
            &["bench", "--layers", layers, "--image", "3x0x12"],
            dir.path(),
        ),
        "CxHxW",
    );
    assert_clean_failure(
        &biprop(&["bench", "--image", "3x32x32", "-q"], dir.path()),
        "--image sets the input of --layers",
    );
}
