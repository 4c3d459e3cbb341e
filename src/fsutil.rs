//! Small file-system helpers.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder and
/// a rename, so that a reader (or a crash) never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Makes a write past the file-size limit (`ulimit -f`) fail with an
/// error (`EFBIG`) that is reported as any other, instead of the SIGXFSZ
/// that kills the process by default, mid-epoch and without a word. The
/// Rust runtime ignores SIGPIPE the same way; Python ignores both. Call it
/// once, first thing in `main`.
pub fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler
    // and touches no memory; it is done before any thread starts.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The PID in the name of a temp file of [`write_atomic`] (`.NAME.tmpPID`).
fn is_temp_name(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (stem, pid) = rest.rsplit_once(".tmp")?;
    if stem.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes from `dir` the temp files that [`write_atomic`] leaves behind
/// when its process is killed between writing and renaming (a checkpoint's
/// temp file is as large as the checkpoint, and every kill would leave one
/// more). Call it only where no other process writes into `dir`: a run
/// holds its folder alone. Returns how many it removed.
pub fn remove_stale_temps(dir: &Path) -> Result<usize> {
    // This process's own temp file is one it is writing (or will
    // overwrite): not stale.
    remove_temps(dir, |_, pid| pid != std::process::id())
}

/// Removes from `dir` every temp file of [`write_atomic`] for the file
/// `name`, whichever process left it. Call it only while no process can be
/// writing `name` (holding a lock that every writer of it takes). Returns
/// how many it removed.
pub fn remove_temps_of(dir: &Path, name: &str) -> Result<usize> {
    let prefix = format!(".{name}.tmp");
    remove_temps(dir, |file, _| file.starts_with(&prefix))
}

/// Removes the temp files of [`write_atomic`] in `dir` for which
/// `stale(file name, writer's PID)` holds; how many it removed.
fn remove_temps(dir: &Path, stale: impl Fn(&str, u32) -> bool) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(file) = name.to_str() else { continue };
        let Some(pid) = is_temp_name(file) else {
            continue;
        };
        if !stale(file, pid) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognized_strictly() {
        assert_eq!(is_temp_name(".checkpoint.safetensors.tmp123"), Some(123));
        assert_eq!(is_temp_name(".metrics.csv.tmp7"), Some(7));
        for other in [
            "checkpoint.safetensors",
            ".tmp12",
            ".metrics.csv.tmp",
            ".metrics.csv.tmp12x",
            "metrics.csv.tmp12",
            ".hidden",
        ] {
            assert_eq!(is_temp_name(other), None, "{other}");
        }
    }

    #[test]
    fn the_temps_of_one_file_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let own = format!(".sweep.toml.tmp{}", std::process::id());
        for name in [
            own.as_str(),
            ".sweep.toml.tmp1",
            ".sweep.toml",
            ".sweep.toml.tmp",
            ".metrics.csv.tmp1",
            "sweep.toml",
        ] {
            std::fs::write(d.join(name), b"x").unwrap();
        }
        assert_eq!(remove_temps_of(d, "sweep.toml").unwrap(), 2);
        for gone in [own.as_str(), ".sweep.toml.tmp1"] {
            assert!(!d.join(gone).exists(), "{gone}");
        }
        for kept in [
            ".sweep.toml",
            ".sweep.toml.tmp",
            ".metrics.csv.tmp1",
            "sweep.toml",
        ] {
            assert!(d.join(kept).exists(), "{kept}");
        }
        assert_eq!(remove_temps_of(&d.join("absent"), "sweep.toml").unwrap(), 0);
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let own = format!(".metrics.csv.tmp{}", std::process::id());
        let other = std::process::id().wrapping_add(1);
        let stale = format!(".checkpoint.safetensors.tmp{other}");
        for f in [
            "checkpoint.safetensors",
            "metrics.csv",
            ".keep",
            &own,
            &stale,
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(d).unwrap(), 1);
        assert!(!d.join(&stale).exists());
        for f in ["checkpoint.safetensors", "metrics.csv", ".keep", &own] {
            assert!(d.join(f).exists(), "{f}");
        }
        assert_eq!(remove_stale_temps(&d.join("absent")).unwrap(), 0);
    }
}
