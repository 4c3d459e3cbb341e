//! The house's structure, checked: no import cycle among the library's
//! files, and the module graph in docs/architecture.md is the code's.
//!
//! An edge `a -> b` means a file of `src/` names an item of file `b` through
//! a `crate::`, `super::` or `self::` path (in a `use` or inline), with
//! re-exports followed to the file that defines the item. Comments, strings
//! and `#[cfg(test)]` modules are left out: they are not what the library is
//! built from. `mod x;` declarations are not edges: a parent that holds a
//! child is not a use of it.
//!
//! `BIPROP_UPDATE_DOCS=1 cargo test --release --test architecture` rewrites
//! the graph in docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

struct Source {
    /// Module path of each file, and the file of each module path.
    files: BTreeMap<ModPath, String>,
    /// The code of each file without comments, strings and test modules.
    code: BTreeMap<ModPath, String>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_path(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn read_source() -> Source {
    let mut files = BTreeMap::new();
    let mut code = BTreeMap::new();
    let mut stack = vec![root()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root()).unwrap();
                if rel == Path::new("main.rs") {
                    continue; // the binary: it uses the library, not `crate::`
                }
                let m = module_path(rel);
                let text = std::fs::read_to_string(&p).unwrap();
                code.insert(m.clone(), without_tests(&strip(&text)));
                files.insert(m, format!("src/{}", rel.display()));
            }
        }
    }
    Source { files, code }
}

/// The code with comments, string and char literals blanked out.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident(b.get(i.wrapping_sub(1)))
        {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime.
            if b.get(i + 1) == Some(&'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The code without `#[cfg(test)]` items (a test module, a test helper).
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // The item ends at its `;` (a `use` or `mod x;`) or its closing brace.
        let semi = after.find(';');
        let brace = after.find('{');
        let end = match (semi, brace) {
            (Some(s), Some(b)) if s < b => s + 1,
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = after.len();
                for (k, ch) in after[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(s), None) => s + 1,
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The full paths a `use` tree names: `a::{b, c::{d, e}}` gives a::b,
/// a::c::d, a::c::e (an `as` rename keeps the path).
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn go(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head: Vec<String> = tree[..open]
                .split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let close = tree.rfind('}').expect("balanced use tree");
            let inner = &tree[open + 1..close];
            let mut p = prefix.to_vec();
            p.extend(head);
            let mut depth = 0;
            let mut start = 0;
            for (k, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&p, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            go(&p, &inner[start..], out);
        } else if !tree.is_empty() {
            let path = tree.split(" as ").next().unwrap();
            let mut p = prefix.to_vec();
            p.extend(path.split("::").map(|s| s.trim().to_string()));
            out.push(p);
        }
    }
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

struct Uses {
    /// Paths each file names, from its `use` items and inline paths.
    paths: BTreeMap<ModPath, Vec<Vec<String>>>,
    /// `pub use` re-exports: (file, name) -> the path it stands for.
    reexports: BTreeMap<(ModPath, String), Vec<String>>,
}

fn collect_uses(src: &Source) -> Uses {
    let mut paths: BTreeMap<ModPath, Vec<Vec<String>>> = BTreeMap::new();
    let mut reexports = BTreeMap::new();
    for (m, code) in &src.code {
        let mut rest = code.as_str();
        let mut inline = String::new();
        // `use` items (possibly `pub use`, `pub(crate) use`).
        while let Some(at) = find_word(rest, "use") {
            inline.push_str(&rest[..at]);
            let before = rest[..at].trim_end();
            let public = before.ends_with("pub") || before.ends_with(')');
            let end = rest[at..].find(';').map_or(rest.len(), |e| at + e);
            for p in expand_use(&rest[at + 3..end]) {
                if public {
                    if let Some(name) = p.last() {
                        if name != "self" && name != "*" {
                            reexports.insert((m.clone(), name.clone()), p.clone());
                        }
                    }
                }
                paths.entry(m.clone()).or_default().push(p);
            }
            rest = &rest[(end + 1).min(rest.len())..];
        }
        inline.push_str(rest);
        // Inline paths: crate::a::b, super::x, self::y.
        let bytes: Vec<char> = inline.chars().collect();
        let text: String = bytes.iter().collect();
        let children: Vec<String> = src
            .files
            .keys()
            .filter(|f| f.len() == m.len() + 1 && f.starts_with(m))
            .map(|f| format!("{}::", f[m.len()]))
            .collect();
        let starts = ["crate::", "super::", "self::"]
            .into_iter()
            .map(String::from)
            .chain(children);
        for start in starts {
            let start = start.as_str();
            let mut from = 0;
            while let Some(k) = text[from..].find(start) {
                let at = from + k;
                from = at + start.len();
                if at > 0 && ident(text[..at].chars().last().as_ref()) {
                    continue;
                }
                let seg: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let p: Vec<String> = seg
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                paths.entry(m.clone()).or_default().push(p);
            }
        }
    }
    Uses { paths, reexports }
}

/// The start of the keyword `w` as a whole word.
fn find_word(text: &str, w: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(k) = text[from..].find(w) {
        let at = from + k;
        let before = text[..at].chars().last();
        let after = text[at + w.len()..].chars().next();
        if !ident(before.as_ref()) && after.is_some_and(char::is_whitespace) {
            return Some(at);
        }
        from = at + w.len();
    }
    None
}

/// The file that defines what `path` (as written in module `m`) names.
fn resolve(
    src: &Source,
    uses: &Uses,
    m: &ModPath,
    path: &[String],
    depth: usize,
) -> Option<ModPath> {
    let first = path.first()?.as_str();
    let mut child = m.clone();
    child.push(first.to_string());
    let (mut at, mut rest): (ModPath, &[String]) = match first {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (m.clone(), &path[1..]),
        "super" => {
            let mut p = m.clone();
            p.pop();
            (p, &path[1..])
        }
        // A child module, named relative to its parent (`use dense::Dense`).
        _ if src.files.contains_key(&child) => (m.clone(), path),
        _ => return None, // an external crate, std, or a local name
    };
    while let Some(seg) = rest.first() {
        if seg == "super" {
            at.pop();
            rest = &rest[1..];
            continue;
        }
        let mut next = at.clone();
        next.push(seg.clone());
        if src.files.contains_key(&next) {
            at = next;
            rest = &rest[1..];
        } else {
            break;
        }
    }
    // Follow a re-export of the named item to where it is defined.
    if let (Some(name), true) = (rest.first(), depth < 8) {
        if let Some(target) = uses.reexports.get(&(at.clone(), name.clone())) {
            let mut full = target.clone();
            full.extend(rest[1..].iter().cloned());
            if let Some(t) = resolve(src, uses, &at, &full, depth + 1) {
                return Some(t);
            }
        }
    }
    Some(at)
}

fn edges(src: &Source) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let uses = collect_uses(src);
    let mut out: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for m in src.files.keys() {
        out.entry(m.clone()).or_default();
        for p in uses.paths.get(m).into_iter().flatten() {
            if let Some(t) = resolve(src, &uses, m, p, 0) {
                // A module's own re-export of a child is not a use of it.
                let reexport_of_child = t.starts_with(m) && t.len() > m.len();
                let only_mod_decl = p.len() == 2 && p[0] == "self";
                if t != *m && !(reexport_of_child && only_mod_decl) {
                    out.entry(m.clone()).or_default().insert(t);
                }
            }
        }
    }
    out
}

/// Strongly connected components of more than one file (Tarjan).
fn cycles(g: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct T<'a> {
        g: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on: BTreeSet<&'a ModPath>,
        next: usize,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a ModPath) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        for w in &t.g[v] {
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}

#[test]
fn no_file_of_the_library_imports_itself_in_a_circle() {
    let src = read_source();
    let g = edges(&src);
    let found = cycles(&g);
    let mut report = String::new();
    for comp in &found {
        report.push_str(&format!(
            "circle of {}: {}\n",
            comp.len(),
            comp.iter()
                .map(|m| src.files[m].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for a in comp {
            for b in &g[a] {
                if comp.contains(b) {
                    report.push_str(&format!("  {} -> {}\n", src.files[a], src.files[b]));
                }
            }
        }
    }
    assert!(found.is_empty(), "import cycles:\n{report}");
}

/// The checker sees a cycle where there is one, through a re-export too.
#[test]
fn the_checker_finds_a_planted_cycle() {
    let mut src = Source {
        files: BTreeMap::new(),
        code: BTreeMap::new(),
    };
    for (m, code) in [
        (vec![], "pub mod a; pub mod b;"),
        (
            vec!["a"],
            "mod inner; pub use inner::Thing; // crate::b is a comment\n",
        ),
        (vec!["a", "inner"], "pub struct Thing(crate::b::Other);"),
        (
            vec!["b"],
            "use crate::a::Thing; pub struct Other; const S: &str = \"crate::x\";",
        ),
    ] {
        let m: ModPath = m.into_iter().map(String::from).collect();
        src.files.insert(m.clone(), name(&m));
        src.code.insert(m, without_tests(&strip(code)));
    }
    let g = edges(&src);
    let found = cycles(&g);
    assert_eq!(found.len(), 1, "{g:?}");
    assert_eq!(
        found[0].iter().map(name).collect::<Vec<_>>(),
        ["a::inner", "b"],
        "the re-export leads to the defining file"
    );
}

/// The top-level modules of the library, one line each with the modules it
/// uses: the graph in docs/architecture.md.
fn module_graph(src: &Source) -> String {
    let g = edges(src);
    let top = |m: &ModPath| m.first().cloned().unwrap_or_else(|| "lib".into());
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, bs) in &g {
        let ta = top(a);
        let entry = uses.entry(ta.clone()).or_default();
        for b in bs {
            let tb = top(b);
            if tb != ta {
                entry.insert(tb);
            }
        }
    }
    uses.remove("lib");
    // Bottom up: a module after everything it uses.
    let mut order: Vec<String> = Vec::new();
    while order.len() < uses.len() {
        let before = order.len();
        for (m, bs) in &uses {
            if !order.contains(m)
                && bs
                    .iter()
                    .all(|b| order.contains(b) || !uses.contains_key(b))
            {
                order.push(m.clone());
            }
        }
        if order.len() == before {
            // A cycle among top-level modules: the test above names it.
            let rest: Vec<String> = uses
                .keys()
                .filter(|m| !order.contains(m))
                .cloned()
                .collect();
            order.extend(rest);
        }
    }
    let mut text = String::new();
    for m in order {
        let bs = &uses[&m];
        let list = if bs.is_empty() {
            "(nothing of the library)".to_string()
        } else {
            bs.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        text.push_str(&format!("{m}: {list}\n"));
    }
    text
}

#[test]
fn the_module_graph_in_the_docs_is_the_code_s() {
    let graph = module_graph(&read_source());
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let text = std::fs::read_to_string(&doc).unwrap_or_default();
    const START: &str = "<!-- module graph: tests/architecture.rs -->\n```text\n";
    const END: &str = "```\n<!-- end of module graph -->";
    let block = format!("{START}{graph}{END}");
    let current = text
        .find(START)
        .and_then(|a| text[a..].find(END).map(|b| &text[a..a + b + END.len()]));
    if std::env::var_os("BIPROP_UPDATE_DOCS").is_some() {
        let new = match current {
            Some(old) => text.replace(old, &block),
            None => format!("{text}\n{block}\n"),
        };
        std::fs::write(&doc, new).unwrap();
        return;
    }
    assert_eq!(
        current,
        Some(block.as_str()),
        "docs/architecture.md's module graph is not the code's; rerun with BIPROP_UPDATE_DOCS=1"
    );
}
