//! Staged writes: everything Spool writes under a name the user sees (exports, project copies, the
//! manifest, the recent-projects list) is first written to a hidden temporary file or folder beside
//! it and renamed onto the name only when complete and synced, so a crash or a full disk never
//! leaves a half-written file there.
//!
//! The temporary name is `.NAME.spool-partial-PID-N` (`PID` the writing process, `N` a counter), and
//! `….old` while an existing folder is moved aside to be replaced. A hard crash can leave one
//! behind: [`remove_stale`] removes those whose process is gone, and nothing else.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What marks a temporary name as ours.
const MARK: &str = ".spool-partial-";
/// Suffix of an existing folder moved aside while it is replaced.
const ASIDE: &str = ".old";
/// A partial older than this whose process is gone is stale. Well above the time between the
/// temporary being created and its process writing to it, so a slow writer is never mistaken.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether process `pid` is running (Linux: `/proc/PID` exists). Our own pid counts as running.
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A hidden temporary file or folder beside `dest`, removed on drop unless committed.
#[derive(Debug)]
pub struct Staged {
    dest: PathBuf,
    temp: PathBuf,
    is_dir: bool,
    /// An existing destination may be replaced.
    replace: bool,
    committed: bool,
}

impl Staged {
    /// Creates the temporary (an empty file, or a folder with `is_dir`) in `dest`'s folder, so the
    /// final rename stays on one filesystem and is atomic. `replace`: an existing `dest` may be
    /// replaced by [`Staged::commit`]; the caller has checked that it may.
    pub fn new(dest: &Path, is_dir: bool, replace: bool) -> io::Result<Staged> {
        let name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{} does not name a file or folder", dest.display()))
        })?;
        let unique = format!("{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let temp = parent_of(dest).join(format!(".{}{MARK}{unique}", name.to_string_lossy()));
        if is_dir {
            fs::create_dir(&temp)?;
        } else {
            File::create_new(&temp)?;
        }
        Ok(Staged { dest: dest.to_path_buf(), temp, is_dir, replace, committed: false })
    }

    pub fn temp(&self) -> &Path {
        &self.temp
    }

    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Moves the complete temporary onto the destination. Without `replace`, a destination that
    /// appeared meanwhile is kept and the error is `AlreadyExists`. A folder being replaced is moved
    /// aside first and deleted once the new one is in place, so a failure leaves one or the other.
    pub fn commit(&mut self) -> io::Result<()> {
        let dest = &self.dest;
        let exists = fs::symlink_metadata(dest).is_ok();
        if exists && !self.replace {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} already exists", dest.display())));
        }
        // rename(2) replaces a file, or an empty folder, but not a folder with something in it.
        if exists && self.is_dir && fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
            let mut aside = self.temp.clone().into_os_string();
            aside.push(ASIDE);
            let aside = PathBuf::from(aside);
            fs::rename(dest, &aside)?;
            if let Err(e) = fs::rename(&self.temp, dest) {
                let _ = fs::rename(&aside, dest);
                return Err(e);
            }
            let _ = fs::remove_dir_all(&aside);
        } else {
            fs::rename(&self.temp, dest)?;
        }
        self.committed = true;
        // Make the rename itself durable. Some filesystems refuse to sync a folder; the data is
        // already synced, so that is not worth failing for.
        let _ = File::open(parent_of(dest)).and_then(|d| d.sync_all());
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = if self.is_dir { fs::remove_dir_all(&self.temp) } else { fs::remove_file(&self.temp) };
        }
    }
}

/// The folder `path` is in (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` atomically: a crash leaves the old file or the new one, whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut staged = Staged::new(path, false, true)?;
    let mut f = fs::OpenOptions::new().write(true).open(staged.temp())?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    staged.commit()
}

/// The pid in a temporary name of ours (`.NAME.spool-partial-PID-N`, optionally `.old`), or `None`
/// for any other name.
fn partial_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(MARK)?;
    if at == 0 {
        return None;
    }
    let tail = &rest[at + MARK.len()..];
    let tail = tail.strip_suffix(ASIDE).unwrap_or(tail);
    let (pid, n) = tail.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n)).then(|| pid.parse().ok()).flatten()
}

/// Removes, in `dir`, temporaries of ours left by processes that are gone and last changed more
/// than `older_than` ago; returns what it removed. Anything else, including a name that merely
/// looks similar, is left alone; failures are logged, never raised (this is housekeeping).
pub fn remove_stale(dir: &Path, older_than: Duration) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(partial_pid) else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta.modified().ok().and_then(|m| m.elapsed().ok()).is_some_and(|age| age > older_than);
        if !old || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let result = if meta.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        match result {
            Ok(()) => {
                tracing::info!("removed {}, left unfinished by process {pid}, which is gone", path.display());
                removed.push(path);
            }
            Err(e) => tracing::warn!("could not remove the stale partial {}: {e}", path.display()),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_temporary_names_are_recognised() {
        assert_eq!(partial_pid(".clip.mp4.spool-partial-12-3"), Some(12));
        assert_eq!(partial_pid(".frames.spool-partial-12-3.old"), Some(12));
        assert_eq!(partial_pid(".a.spool.spool-partial-7-0"), Some(7));
        for foreign in [
            "clip.mp4.spool-partial-12-3",
            "..spool-partial-12-3",
            ".clip.spool-partial-12",
            ".clip.spool-partial-x-3",
            ".clip.spool-partial-12-3.bak",
            ".clip.spool-partial-12-3-4",
            ".bashrc",
            "manifest.json",
        ] {
            assert_eq!(partial_pid(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn a_staged_file_is_invisible_until_committed_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        let staged = Staged::new(&dest, false, false).unwrap();
        assert!(staged.temp().exists() && !dest.exists());
        drop(staged);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "dropping removes the temporary");

        write_atomic(&dest, b"one").unwrap();
        write_atomic(&dest, b"two").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary is left");
    }
}
