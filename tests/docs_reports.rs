//! The report blocks of the results pages are `biprop report` of the runs
//! committed beside them, and stay so: a page marks each block with the
//! command that makes it,
//!
//! ```text
//! <!-- biprop report docs/results/table1 -->
//! ...
//! <!-- end of biprop report -->
//! ```
//!
//! and this test runs every such command from the repository root and fails
//! where a block differs from its output (new runs committed, a report
//! changed). `BIPROP_UPDATE_DOCS=1 cargo test --release --test docs_reports`
//! rewrites the blocks instead.

use std::path::{Path, PathBuf};
use std::process::Command;

const START: &str = "<!-- biprop ";
const END: &str = "<!-- end of biprop report -->";

/// One marked block: the byte range of its body and the command's arguments
/// after `biprop`.
type Block = (std::ops::Range<usize>, Vec<String>);

/// Every block of `text`, in page order.
fn blocks(text: &str) -> Result<Vec<Block>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(START) {
        let at = from + at;
        let line_end = text[at..]
            .find('\n')
            .map(|i| at + i)
            .ok_or("a marker on the last line")?;
        let line = &text[at..line_end];
        let args = line
            .strip_prefix(START)
            .and_then(|l| l.strip_suffix("-->"))
            .ok_or_else(|| format!("a malformed marker: {line}"))?;
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        if args.first().map(String::as_str) != Some("report") {
            return Err(format!("a marker that is not `biprop report`: {line}"));
        }
        let body = line_end + 1;
        let end = text[body..]
            .find(END)
            .map(|i| body + i)
            .ok_or_else(|| format!("no `{END}` after {line}"))?;
        if text[body..end].contains(START) {
            return Err(format!("a marker inside the block of {line}"));
        }
        out.push((body..end, args));
        from = end + END.len();
    }
    Ok(out)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn report(args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_biprop"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("biprop runs");
    assert!(
        out.status.success(),
        "biprop {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 report")
}

fn pages() -> Vec<PathBuf> {
    let dir = root().join("docs/results");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("docs/results")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

/// The page's number of blocks and those that differ from their command's
/// output (rewritten in place with `update`).
fn check_page(page: &Path, update: bool) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(page).expect("page");
    let blocks = blocks(&text).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let count = blocks.len();
    let mut stale = Vec::new();
    let mut fixed = text.clone();
    // From the last block back, so earlier ranges stay valid while rewriting.
    for (range, args) in blocks.into_iter().rev() {
        let now = report(&args);
        if text[range.clone()] != now {
            stale.push(format!("{}: biprop {}", page.display(), args.join(" ")));
            fixed.replace_range(range, &now);
        }
    }
    if update && fixed != text {
        std::fs::write(page, fixed).expect("rewrite page");
    }
    (count, stale)
}

#[test]
fn the_report_blocks_of_the_results_pages_are_the_reports_of_their_runs() {
    let update = std::env::var_os("BIPROP_UPDATE_DOCS").is_some_and(|v| v == "1");
    let (mut marked, mut stale) = (0, Vec::new());
    for page in pages() {
        let (n, s) = check_page(&page, update);
        marked += n;
        stale.extend(s);
    }
    assert!(marked > 0, "no results page marks a report block");
    assert!(
        update || stale.is_empty(),
        "report blocks that differ from their command's output (rerun with BIPROP_UPDATE_DOCS=1 to rewrite them, then read the diff):\n{}",
        stale.join("\n")
    );
}

#[test]
fn markers_are_parsed_or_refused() {
    let page = "a\n<!-- biprop report x -->\nold\n<!-- end of biprop report -->\nb\n";
    let b = blocks(page).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(&page[b[0].0.clone()], "old\n");
    assert_eq!(b[0].1, ["report", "x"]);
    for bad in [
        "<!-- biprop report x -->\nno end\n",
        "<!-- biprop train x -->\nx\n<!-- end of biprop report -->\n",
        "<!-- biprop report x\n",
        "<!-- biprop report x -->\n<!-- biprop report y -->\n<!-- end of biprop report -->\n",
    ] {
        assert!(blocks(bad).is_err(), "{bad}");
    }
}
