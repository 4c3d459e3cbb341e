//! The generated blocks of the results pages are the output of the
//! commands that make them, run on the runs committed beside them, and stay
//! so: a page marks each block with its command,
//!
//! ```text
//! <!-- biprop report docs/results/table1 -->
//! ...
//! <!-- end of biprop report -->
//! <!-- python3 docs/results/table2_claims.py docs/results/table2 -->
//! ...
//! <!-- end of python3 -->
//! ```
//!
//! and this test runs every such command from the repository root and fails
//! where a block differs from its output (new runs committed, a report or a
//! script changed). Only `biprop report` and the Python scripts kept in
//! docs/results (standard library only) can be marked.
//! `BIPROP_UPDATE_DOCS=1 cargo test --release --test docs_reports` rewrites
//! the blocks instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The program a block is the output of.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Program {
    Biprop,
    Python,
}

impl Program {
    fn start(self) -> &'static str {
        match self {
            Program::Biprop => "<!-- biprop ",
            Program::Python => "<!-- python3 ",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Program::Biprop => "biprop",
            Program::Python => "python3",
        }
    }

    fn end(self) -> &'static str {
        match self {
            Program::Biprop => "<!-- end of biprop report -->",
            Program::Python => "<!-- end of python3 -->",
        }
    }

    /// Refuses commands this test must not run: only `biprop report`, and
    /// only Python scripts kept in docs/results.
    fn check(self, args: &[String]) -> Result<(), String> {
        let ok = match self {
            Program::Biprop => args.first().map(String::as_str) == Some("report"),
            Program::Python => args.first().is_some_and(|a| {
                a.starts_with("docs/results/") && a.ends_with(".py") && !a.contains("..")
            }),
        };
        ok.then_some(()).ok_or_else(|| {
            format!(
                "a marker that is neither `biprop report` nor a script of docs/results: {}",
                args.join(" ")
            )
        })
    }
}

const PROGRAMS: [Program; 2] = [Program::Biprop, Program::Python];

/// One marked block: the byte range of its body, its program and the
/// command's arguments after the program's name.
type Block = (std::ops::Range<usize>, Program, Vec<String>);

/// Every block of `text`, in page order.
fn blocks(text: &str) -> Result<Vec<Block>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some((at, program)) = PROGRAMS
        .iter()
        .filter_map(|&p| text[from..].find(p.start()).map(|i| (from + i, p)))
        .min_by_key(|&(i, _)| i)
    {
        let line_end = text[at..]
            .find('\n')
            .map(|i| at + i)
            .ok_or("a marker on the last line")?;
        let line = &text[at..line_end];
        let args = line
            .strip_prefix(program.start())
            .and_then(|l| l.strip_suffix("-->"))
            .ok_or_else(|| format!("a malformed marker: {line}"))?;
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        program.check(&args)?;
        let body = line_end + 1;
        let end = text[body..]
            .find(program.end())
            .map(|i| body + i)
            .ok_or_else(|| format!("no `{}` after {line}", program.end()))?;
        if PROGRAMS.iter().any(|p| text[body..end].contains(p.start())) {
            return Err(format!("a marker inside the block of {line}"));
        }
        out.push((body..end, program, args));
        from = end + program.end().len();
    }
    Ok(out)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn output(program: Program, args: &[String]) -> String {
    let mut cmd = match program {
        Program::Biprop => Command::new(env!("CARGO_BIN_EXE_biprop")),
        Program::Python => Command::new("python3"),
    };
    let name = program.name();
    let out = cmd
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{name} {} does not start: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{name} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
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
    for (range, program, args) in blocks.into_iter().rev() {
        let now = output(program, &args);
        if text[range.clone()] != now {
            stale.push(format!(
                "{}: {program:?} {}",
                page.display(),
                args.join(" ")
            ));
            fixed.replace_range(range, &now);
        }
    }
    if update && fixed != text {
        std::fs::write(page, fixed).expect("rewrite page");
    }
    (count, stale)
}

#[test]
fn the_generated_blocks_of_the_results_pages_are_their_commands_output() {
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
        "generated blocks that differ from their command's output (rerun with BIPROP_UPDATE_DOCS=1 to rewrite them, then read the diff):\n{}",
        stale.join("\n")
    );
}

#[test]
fn markers_are_parsed_or_refused() {
    let page = "a\n<!-- biprop report x -->\nold\n<!-- end of biprop report -->\nb\n";
    let b = blocks(page).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(&page[b[0].0.clone()], "old\n");
    assert_eq!(b[0].1, Program::Biprop);
    assert_eq!(b[0].2, ["report", "x"]);
    let page = "<!-- python3 docs/results/s.py d -->\nt\n<!-- end of python3 -->\n";
    let b = blocks(page).unwrap();
    assert_eq!(
        (b[0].1, b[0].2.clone()),
        (
            Program::Python,
            vec!["docs/results/s.py".into(), "d".into()]
        )
    );
    for bad in [
        "<!-- biprop report x -->\nno end\n",
        "<!-- biprop train x -->\nx\n<!-- end of biprop report -->\n",
        "<!-- biprop report x\n",
        "<!-- biprop report x -->\n<!-- biprop report y -->\n<!-- end of biprop report -->\n",
        "<!-- python3 -c print(1) -->\nx\n<!-- end of python3 -->\n",
        "<!-- python3 docs/results/../../x.py -->\nx\n<!-- end of python3 -->\n",
        "<!-- python3 docs/results/s.py -->\nx\n<!-- end of biprop report -->\n",
        "<!-- biprop report x -->\n<!-- python3 docs/results/s.py -->\n<!-- end of biprop report -->\n",
    ] {
        assert!(blocks(bad).is_err(), "{bad}");
    }
}
