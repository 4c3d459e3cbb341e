//! The textual forms of settings: hidden widths (`2x800`), layer
//! descriptions, and TOML tables merged and read with the key at fault named.

use crate::error::{Error, Result};
use crate::layers::spec;
use serde::Deserialize;
use std::path::Path;

/// Parses hidden-layer widths: `800`, `800,400`, `2x800`, or `""`/`none` for no hidden layer.
pub fn parse_hidden(s: &str) -> std::result::Result<Vec<usize>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let width = |w: &str| -> std::result::Result<usize, String> {
        match w.trim().parse::<usize>() {
            Ok(0) => Err(format!("layer width must be positive in {s:?}")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "invalid hidden layers {s:?}: expected widths like 800,800 or 2x800"
            )),
        }
    };
    if let Some((count, w)) = s.split_once(['x', 'X']) {
        let count: usize = count.trim().parse().map_err(|_| {
            format!("invalid hidden layers {s:?}: expected COUNTxWIDTH, e.g. 2x800")
        })?;
        return Ok(vec![width(w)?; count]);
    }
    s.split(',').map(width).collect()
}

pub(super) fn de_hidden<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Hidden {
        List(Vec<usize>),
        Text(String),
    }
    match Hidden::deserialize(d)? {
        Hidden::List(v) if v.contains(&0) => {
            Err(serde::de::Error::custom("hidden widths must be positive"))
        }
        Hidden::List(v) => Ok(v),
        Hidden::Text(s) => parse_hidden(&s).map_err(serde::de::Error::custom),
    }
}

pub(super) fn de_layers<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Layers {
        Text(String),
        List(Vec<String>),
    }
    let text = match Option::<Layers>::deserialize(d)? {
        None => return Ok(None),
        Some(Layers::Text(t)) => t,
        Some(Layers::List(items)) => items.join(", "),
    };
    let items = spec::parse(&text).map_err(serde::de::Error::custom)?;
    Ok(Some(spec::describe(&items)))
}

/// Writes hidden widths the paper's way: `1x800`, `2x800`, `800,400`, `none`.
pub fn format_hidden(h: &[usize]) -> String {
    match h {
        [] => "none".into(),
        [w, rest @ ..] if rest.iter().all(|x| x == w) => format!("{}x{w}", h.len()),
        _ => h
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Writes `over`'s keys into `base`, replacing what was there: the one way
/// settings from several sources are combined (file, then sweep cell or flags).
pub fn merge_into(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        base.insert(k.clone(), v.clone());
    }
}

/// Deserializes a table; an error names the key at fault (`epochs: invalid
/// type ...`), as the merged table has no source text to point into.
pub fn deserialize_named<T: serde::de::DeserializeOwned>(table: toml::Table) -> Result<T> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().message().trim().to_string();
        Error::Config(if path == "." {
            msg
        } else {
            format!("{path}: {msg}")
        })
    })
}

/// Reads a TOML file as a table of settings (not yet checked).
pub fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.parse::<toml::Table>()
        .map_err(|e| Error::format(path, e.to_string()))
}
