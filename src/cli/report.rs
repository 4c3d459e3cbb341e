//! `biprop report`, `plot` and `download`: reading finished runs, and fetching data.

use anyhow::Result;
use std::path::PathBuf;

pub(super) fn report(dir: PathBuf, csv: Option<PathBuf>, select: Option<String>) -> Result<()> {
    use crate::experiment::report;
    let mut runs = report::collect(&dir)?;
    let mut ignore = Vec::new();
    if let Some(key) = &select {
        // The sweep's cells, where it left them: a value still to run keeps
        // its cell undecided.
        let planned = crate::experiment::sweep::Sweep::planned_in(&dir)?;
        if planned.is_some() {
            eprintln!(
                "--select {key}: waiting for every cell of {}",
                dir.join(crate::experiment::sweep::PLAN_FILE).display()
            );
        }
        let (kept, choices) = report::select(&runs, key, &planned.unwrap_or_default())?;
        say!("{}", report::choices_markdown(key, &choices));
        runs = kept;
        ignore.push(key.as_str());
    }
    let groups = report::group_ignoring(&runs, &ignore);
    say!("{}", report::markdown(&groups).trim_end());
    if let Some(path) = csv {
        crate::fsutil::write_atomic(&path, report::csv_text(&groups).as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Plots every run in `dir` into `out` (default `dir/plots`).
pub(super) fn plot(dir: PathBuf, out: Option<PathBuf>) -> Result<()> {
    let out = out.unwrap_or_else(|| dir.join("plots"));
    for f in crate::experiment::plot::plot_dir(&dir, &out)? {
        say!("wrote {}", f.display());
    }
    Ok(())
}

/// Makes sure MNIST is in the cache.
pub(super) fn download(cache: Option<PathBuf>) -> Result<()> {
    let cache = match cache {
        Some(c) => c,
        None => crate::data::download::cache_dir()?,
    };
    let dir = crate::data::download::ensure_mnist(&cache)?;
    say!("MNIST is in {}", dir.display());
    Ok(())
}
