//! A sweep's finished cells carried in and out of a project: `--export`
//! copies their small files (never checkpoints) where a project commits
//! them, `--import` marks finished the cells whose committed files hold a
//! finished run of the same settings, so no cell ever runs twice.

use super::sweep::{finished_run_of, Sweep, RESULT_FILES};
use crate::error::{Error, Result};
use std::path::Path;

impl Sweep {
    /// Copies the result files of every finished cell into `dest/<id>/`;
    /// returns how many cells it copied.
    pub fn export_finished(&self, dest: &Path) -> Result<usize> {
        let mut n = 0;
        for cell in self.cells()? {
            if !self.is_done(&cell) {
                continue;
            }
            let to = dest.join(&cell.id);
            std::fs::create_dir_all(&to).map_err(|e| Error::io(&to, e))?;
            for f in RESULT_FILES {
                let from = self.run_dir(&cell).join(f);
                std::fs::copy(&from, to.join(f)).map_err(|e| Error::io(&from, e))?;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Seeds the sweep folder from result files saved by
    /// [`Sweep::export_finished`]: every unfinished cell whose `src/<id>/`
    /// holds a finished run of exactly the cell's settings (the thread count
    /// aside) is marked finished with those files, so it never runs twice.
    /// A saved run of other settings is an error naming it, as it would be
    /// silently reported as this cell, and so is a `src` that is not a
    /// folder. Returns how many cells it seeded.
    pub fn import_finished(&self, src: &Path) -> Result<usize> {
        // A mistyped folder would import nothing and rerun every cell.
        if !src.is_dir() {
            return Err(Error::Missing(format!(
                "--import {}: no such folder (a sweep's --export writes one)",
                src.display()
            )));
        }
        let mut n = 0;
        for cell in self.cells()? {
            let from = src.join(&cell.id);
            if self.is_done(&cell) {
                continue;
            }
            match finished_run_of(&from, &cell)? {
                None => continue,
                Some(true) => {}
                Some(false) => {
                    return Err(Error::format(
                        from.join("config.toml"),
                        format!(
                            "is not a run of cell {} ({}) of this sweep: its settings differ",
                            cell.index, cell.id
                        ),
                    ))
                }
            }
            let to = self.run_dir(&cell);
            std::fs::create_dir_all(&to).map_err(|e| Error::io(&to, e))?;
            // The done file last: a copy cut short leaves the cell unfinished.
            for f in RESULT_FILES {
                let bytes = std::fs::read(from.join(f)).map_err(|e| Error::io(from.join(f), e))?;
                crate::fsutil::write_atomic(&to.join(f), &bytes)?;
            }
            n += 1;
        }
        Ok(n)
    }
}
