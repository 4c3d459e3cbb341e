//! The memory this process may still take: on Linux the smaller of the
//! kernel's `MemAvailable` and what the process's control groups (v2
//! `memory.max`, v1 `memory.limit_in_bytes`) leave it; elsewhere unknown.

/// Memory the process may still allocate, and where the figure comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Available {
    /// Bytes.
    pub bytes: u64,
    /// `MemAvailable` or `the cgroup limit`.
    pub source: &'static str,
}

/// The memory available to this process, or `None` where it cannot be read
/// (not Linux, no `/proc`): then no run is refused for memory.
pub fn available_memory() -> Option<Available> {
    #[cfg(target_os = "linux")]
    {
        linux::available()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Available;
    use std::path::{Path, PathBuf};

    /// Limits at or above this mean "no limit" (cgroup v1 writes
    /// `9223372036854771712`).
    const UNLIMITED: u64 = 1 << 62;

    pub(super) fn available() -> Option<Available> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
        let mem = meminfo
            .as_deref()
            .and_then(mem_available)
            .map(|b| Available {
                bytes: b,
                source: "MemAvailable",
            });
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|text| cgroup_room(&text, Path::new("/sys/fs/cgroup")))
            .map(|b| Available {
                bytes: b,
                source: "the cgroup limit",
            });
        match (mem, cgroup) {
            (Some(m), Some(c)) => Some(if c.bytes < m.bytes { c } else { m }),
            (m, c) => m.or(c),
        }
    }

    /// `MemAvailable` of `/proc/meminfo`, in bytes.
    pub(super) fn mem_available(meminfo: &str) -> Option<u64> {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix("MemAvailable:")?;
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
    }

    fn read_u64(path: &Path) -> Option<u64> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// `key value` from a `memory.stat` file.
    fn stat(dir: &Path, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// The room the process's control groups leave it (the smallest over
    /// its group and the groups above it): each limit less the group's use,
    /// its reclaimable page cache not counted as use. `root` is where the
    /// cgroup file systems are mounted.
    pub(super) fn cgroup_room(proc_cgroup: &str, root: &Path) -> Option<u64> {
        let mut best: Option<u64> = None;
        let mut take = |room: u64| best = Some(best.map_or(room, |b: u64| b.min(room)));
        for line in proc_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
            let rel = path.trim_start_matches('/');
            // v2: one unified hierarchy, "0::/path".
            if controllers.is_empty() {
                for dir in ancestors(&root.join(rel), root) {
                    let Some(max) = std::fs::read_to_string(dir.join("memory.max")).ok() else {
                        continue;
                    };
                    let Ok(max) = max.trim().parse::<u64>() else {
                        continue; // "max": no limit here
                    };
                    let used = read_u64(&dir.join("memory.current")).unwrap_or(0);
                    let cache = stat(&dir, "inactive_file").unwrap_or(0);
                    take(max.saturating_sub(used.saturating_sub(cache)));
                }
            } else if controllers.split(',').any(|c| c == "memory") {
                let base = root.join("memory");
                for dir in ancestors(&base.join(rel), &base) {
                    let Some(max) = read_u64(&dir.join("memory.limit_in_bytes")) else {
                        continue;
                    };
                    if max >= UNLIMITED {
                        continue;
                    }
                    let used = read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0);
                    let cache = stat(&dir, "total_inactive_file").unwrap_or(0);
                    take(max.saturating_sub(used.saturating_sub(cache)));
                }
            }
        }
        best
    }

    /// `dir` and its parents up to and including `root`.
    fn ancestors(dir: &Path, root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut at = Some(dir);
        while let Some(d) = at {
            out.push(d.to_path_buf());
            if d == root {
                break;
            }
            at = d.parent().filter(|p| p.starts_with(root));
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn meminfo_is_read_in_bytes() {
            let text = "MemTotal:       24000000 kB\nMemAvailable:   21000000 kB\n";
            assert_eq!(mem_available(text), Some(21_000_000 * 1024));
            assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
        }

        #[test]
        fn cgroup_limits_less_use_and_the_smallest_wins() {
            let root = tempfile::tempdir().unwrap();
            let r = root.path();
            let job = r.join("job/task");
            std::fs::create_dir_all(&job).unwrap();
            std::fs::write(r.join("memory.max"), "max\n").unwrap();
            std::fs::write(r.join("job/memory.max"), "8000\n").unwrap();
            std::fs::write(r.join("job/memory.current"), "3000\n").unwrap();
            std::fs::write(r.join("job/memory.stat"), "anon 1000\ninactive_file 1000\n").unwrap();
            std::fs::write(job.join("memory.max"), "max\n").unwrap();
            assert_eq!(cgroup_room("0::/job/task\n", r), Some(6000));
            std::fs::write(job.join("memory.max"), "4000\n").unwrap();
            std::fs::write(job.join("memory.current"), "500\n").unwrap();
            assert_eq!(cgroup_room("0::/job/task\n", r), Some(3500));
            assert_eq!(cgroup_room("0::/\n", r), None, "no limit at the root");
            // v1
            let v1 = r.join("memory/slurm");
            std::fs::create_dir_all(&v1).unwrap();
            std::fs::write(v1.join("memory.limit_in_bytes"), "2000\n").unwrap();
            std::fs::write(v1.join("memory.usage_in_bytes"), "500\n").unwrap();
            std::fs::write(
                r.join("memory/memory.limit_in_bytes"),
                "9223372036854771712\n",
            )
            .unwrap();
            assert_eq!(cgroup_room("4:memory:/slurm\n", r), Some(1500));
        }
    }
}
