//! Projects: a folder holding a versioned, readable manifest (takes tree, prompt timelines, seeds,
//! model) and the frame store, so reopening shows exactly what was generated and any take can be
//! extended from any frame.
//!
//! ```text
//! my-clip.spool/
//!   manifest.json   written atomically: temp file, fsync, rename, fsync of the folder
//!   store/          append-only pixel and latent logs (see `store`)
//!   lock            pid of the Spool process that has the project open
//! ```
//! Frames are referenced by store ids, never by paths, so a hand-edited manifest cannot point
//! outside the project. Frames made after the manifest was last written are found by their store
//! tags (take, index) and given back to their takes on open.
//!
//! "Save as" ([`Project::copy_to`]) copies the manifest and the store into a new folder, staged
//! beside it and renamed into place when complete (see `staging`).

pub mod data_file;
pub mod recent;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::staging::{STALE_AFTER, Staged, parent_of, process_alive, remove_stale};
use crate::store::{FrameId, FrameStore, Tag};
use crate::timeline::{Keyframes, SwitchAnchor, Timeline};

pub const FORMAT: &str = "spool-project";
pub const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("project {0} is open in another Spool process (pid {1}): close it there first")]
    Locked(String, u32),
    #[error("{path} is not a Spool project manifest: {reason}")]
    Corrupt { path: String, reason: String },
    #[error(
        "{path} was written by a newer Spool (project version {found}, this one reads up to {VERSION}): update Spool"
    )]
    Newer { path: String, found: u32 },
    #[error("cannot save the project as {path}: {reason}")]
    SaveAs { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

type Result<T> = std::result::Result<T, ProjectError>;

/// Where a take branched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRecord {
    pub take: u32,
    /// Frames of the parent the branch keeps.
    pub keep: u64,
}

/// One take as written in the manifest. `frames` are runs of consecutive store ids
/// (`[first id, count]`), compact however long the take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakeRecord {
    pub id: u32,
    #[serde(default)]
    pub parent: Option<ParentRecord>,
    pub seed: u64,
    #[serde(default)]
    pub steps: Option<u32>,
    /// Classifier-free guidance scale; absent (manifests from before guidance, or the model's
    /// default) means the model's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<f32>,
    /// The take's switch redraw; absent (manifests from before it was a take's setting, or a take
    /// made without it) means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_anchor: Option<SwitchAnchor>,
    /// The take's keyframes; absent (manifests from before them, or a take made without them) means
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframes: Option<Keyframes>,
    pub timeline: Timeline,
    #[serde(default)]
    pub frames: Vec<[u64; 2]>,
    /// Undone in the app (hidden from the takes list); its frames are kept, and a redo brings it
    /// back. Absent means kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discarded: bool,
}

impl TakeRecord {
    pub fn frame_ids(&self) -> impl Iterator<Item = FrameId> + '_ {
        self.frames.iter().flat_map(|[first, n]| (*first..first.saturating_add(*n)).map(FrameId))
    }

    pub fn len(&self) -> u64 {
        self.frames.iter().map(|[_, n]| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Run-length encodes frame ids.
    pub fn runs(ids: &[FrameId]) -> Vec<[u64; 2]> {
        let mut runs: Vec<[u64; 2]> = Vec::new();
        for id in ids {
            match runs.last_mut() {
                Some([first, n]) if *first + *n == id.0 => *n += 1,
                _ => runs.push([id.0, 1]),
            }
        }
        runs
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub id: String,
    #[serde(default)]
    pub weights: Option<String>,
    /// Content hash of the weight files (`ModelInfo::weights_hash`); absent in manifests from
    /// before it was recorded, and for models without weight files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub model: Option<ModelRecord>,
    #[serde(default)]
    pub current_take: Option<u32>,
    #[serde(default)]
    pub takes: Vec<TakeRecord>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest { format: FORMAT.into(), version: VERSION, model: None, current_take: None, takes: Vec::new() }
    }
}

/// Whether `dir` holds a project (a manifest).
pub fn is_project(dir: &Path) -> bool {
    dir.join("manifest.json").is_file()
}

/// Spool's per-user data folder: `$XDG_DATA_HOME/spool` (or `~/.local/share/spool`), else one in the
/// system's temp folder. The default project and the recent-projects list live there.
pub fn data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir)
        .join("spool")
}

/// An open project: holds the lock until dropped.
pub struct Project {
    dir: PathBuf,
    lock: PathBuf,
}

/// What opening a project found and mended.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recovery {
    /// One line per repair, for the user.
    pub notes: Vec<String>,
}

impl Project {
    /// Opens the project folder `dir` (creating an empty project if there is none), takes its lock,
    /// opens the frame store and reconciles the manifest with it. Nothing the user wrote is
    /// overwritten by a failed open.
    pub fn open(dir: &Path, memory_frames: usize) -> Result<(Project, Manifest, FrameStore, Recovery)> {
        let io = |source| ProjectError::Io { path: dir.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = take_lock(dir)?;
        // A crash can leave a half-written "save as" copy beside the project, or a manifest
        // temporary in it.
        for folder in [dir.to_path_buf(), parent_of(dir)] {
            remove_stale(&folder, STALE_AFTER);
        }
        let project = Project { dir: dir.to_path_buf(), lock };
        let manifest = project.read_manifest()?;
        let store = FrameStore::open(&dir.join("store"), memory_frames)?;
        let (manifest, recovery) = reconcile(manifest, &store);
        Ok((project, manifest, store, recovery))
    }

    /// Opens a project that must already exist (for export and `spool open`).
    pub fn open_existing(dir: &Path, memory_frames: usize) -> Result<(Project, Manifest, FrameStore, Recovery)> {
        if !is_project(dir) {
            return Err(ProjectError::Corrupt {
                path: dir.display().to_string(),
                reason: "there is no manifest.json in it: give the project's .spool folder".into(),
            });
        }
        Self::open(dir, memory_frames)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }

    fn read_manifest(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(source) => return Err(ProjectError::Io { path: path.display().to_string(), source }),
        };
        parse_manifest(&text).map_err(|e| match e {
            ParseError::Newer(found) => ProjectError::Newer { path: path.display().to_string(), found },
            ParseError::Bad(reason) => ProjectError::Corrupt { path: path.display().to_string(), reason },
        })
    }

    /// Writes the manifest atomically: a crash leaves either the old or the new one, whole.
    pub fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let path = self.manifest_path();
        let json = serde_json::to_string_pretty(m).expect("a manifest always serialises");
        crate::staging::write_atomic(&path, json.as_bytes())
            .map_err(|source| ProjectError::Io { path: path.display().to_string(), source })
    }

    /// Copies the project (its manifest as last written, and every stored frame; not the lock) to a
    /// new project folder `dest`. The copy is staged in a hidden folder beside `dest`, synced, and
    /// renamed onto it only when whole: on any failure nothing is left at `dest`. `dest` may be new,
    /// an empty folder or another project that is not open anywhere; never anything else, and never
    /// inside this project. `progress` gets (bytes copied, bytes in all) as the copy goes.
    ///
    /// The caller writes the manifest first and makes no frames meanwhile (the engine does this on
    /// its own thread, between commands).
    pub fn copy_to(&self, store: &FrameStore, dest: &Path, mut progress: impl FnMut(u64, u64)) -> Result<()> {
        let refuse = |reason: &str| ProjectError::SaveAs { path: dest.display().to_string(), reason: reason.into() };
        let replace = check_copy_destination(&self.dir, dest).map_err(|r| refuse(&r))?;
        store.flush()?;
        let failed =
            |e: io::Error| refuse(&format!("{e} (nothing was left there): free some space or choose another folder"));
        let mut files = Vec::new();
        if self.manifest_path().is_file() {
            files.push(PathBuf::from("manifest.json"));
        }
        for entry in fs::read_dir(store.dir()).map_err(failed)? {
            let entry = entry.map_err(failed)?;
            if entry.file_type().map_err(failed)?.is_file() {
                files.push(Path::new("store").join(entry.file_name()));
            }
        }
        let mut sizes = Vec::with_capacity(files.len());
        for f in &files {
            sizes.push(fs::metadata(self.dir.join(f)).map_err(failed)?.len());
        }
        let total = sizes.iter().sum();
        let mut staged = Staged::new(dest, true, replace).map_err(failed)?;
        let mut done = 0;
        progress(0, total);
        fs::create_dir(staged.temp().join("store")).map_err(failed)?;
        for f in &files {
            copy_file(&self.dir.join(f), &staged.temp().join(f), &mut |n| {
                done += n;
                progress(done, total);
            })
            .map_err(failed)?;
        }
        for d in [staged.temp().join("store"), staged.temp().to_path_buf()] {
            File::open(&d).and_then(|d| d.sync_all()).map_err(failed)?;
        }
        staged.commit().map_err(failed)
    }
}

/// Copies `from` to a new file `to` and syncs it, reporting bytes as they are written.
fn copy_file(from: &Path, to: &Path, progress: &mut impl FnMut(u64)) -> io::Result<()> {
    let mut src = File::open(from)?;
    let mut dst = File::create_new(to)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])?;
        progress(n as u64);
    }
    dst.sync_all()
}

/// Whether a project copy may go to `dest` (`Ok(true)`: something there is replaced), or why not.
fn check_copy_destination(src: &Path, dest: &Path) -> std::result::Result<bool, String> {
    let parent = parent_of(dest);
    let (Ok(src), Ok(parent), Some(name)) = (fs::canonicalize(src), fs::canonicalize(&parent), dest.file_name()) else {
        return Err("its folder does not exist: choose an existing folder".into());
    };
    let resolved = parent.join(name);
    if resolved.starts_with(&src) {
        return Err("that is the open project or a folder inside it: choose a place outside the project".into());
    }
    if src.starts_with(&resolved) {
        return Err("it holds the open project: choose another name".into());
    }
    // The lock comes first: a project just opened elsewhere may not have written its manifest yet.
    if let Some(pid) = lock_holder(dest) {
        return Err(format!("that project is open in another Spool process (pid {pid}): close it there first"));
    }
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{e}: choose another name")),
        Ok(m) if m.is_dir() && is_project(dest) => Ok(true),
        Ok(m) if m.is_dir() && fs::read_dir(dest).is_ok_and(|mut d| d.next().is_none()) => Ok(true),
        Ok(_) => Err(
            "something that is not a Spool project is there, and Spool only replaces a project: choose another name"
                .into(),
        ),
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

enum ParseError {
    Newer(u32),
    Bad(String),
}

fn parse_manifest(text: &str) -> std::result::Result<Manifest, ParseError> {
    // Read the version first, so a newer format is reported as such, not as corruption.
    let head: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError::Bad(e.to_string()))?;
    if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(ParseError::Bad(format!("\"format\" is not \"{FORMAT}\"")));
    }
    match head.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v > u64::from(VERSION) => return Err(ParseError::Newer(v.min(u64::from(u32::MAX)) as u32)),
        Some(_) => {}
        None => return Err(ParseError::Bad("no \"version\"".into())),
    }
    let m: Manifest = serde_json::from_value(head).map_err(|e| ParseError::Bad(e.to_string()))?;
    for (i, t) in m.takes.iter().enumerate() {
        if t.id as usize != i {
            return Err(ParseError::Bad(format!("take {} is listed at position {i}", t.id)));
        }
        t.timeline.validate().map_err(|e| ParseError::Bad(format!("take {}: {e}", t.id)))?;
        if let Some(g) = t.guidance {
            crate::model::check_guidance(g).map_err(|e| ParseError::Bad(format!("take {}: guidance {e}", t.id)))?;
        }
        if let Some(a) = t.switch_anchor {
            a.check().map_err(|e| ParseError::Bad(format!("take {}: {e}", t.id)))?;
        }
        if let Some(k) = t.keyframes {
            k.check().map_err(|e| ParseError::Bad(format!("take {}: {e}", t.id)))?;
        }
        if let Some(p) = t.parent
            && p.take >= t.id
        {
            return Err(ParseError::Bad(format!("take {} has parent {}, which is not an earlier take", t.id, p.take)));
        }
    }
    if let Some(c) = m.current_take
        && c as usize >= m.takes.len()
    {
        return Err(ParseError::Bad(format!("current take {c} does not exist")));
    }
    Ok(m)
}

/// Makes the manifest agree with the store: cuts takes at frames the store lacks, and appends
/// frames the store has (by their tags) that were made after the manifest was written.
fn reconcile(mut m: Manifest, store: &FrameStore) -> (Manifest, Recovery) {
    let mut rec = Recovery::default();
    let tags = store.tags();
    let on_disk: std::collections::HashSet<FrameId> = tags.iter().map(|(id, _)| *id).collect();
    for t in &mut m.takes {
        let ids: Vec<FrameId> = t.frame_ids().collect();
        let whole = ids.iter().take_while(|id| on_disk.contains(id)).count();
        let mut kept = ids[..whole].to_vec();
        if whole < ids.len() {
            rec.notes.push(format!(
                "take {}: frames from {whole} on are missing from the frame store and were dropped ({} frames)",
                t.id,
                ids.len() - whole
            ));
        }
        // Frames this take made after the manifest was written, in order, while contiguous.
        let mut extra = 0;
        for (id, tag) in &tags {
            // Ids grow with time, so a take's unsaved frames come in index order.
            if *tag == (Tag { take: t.id, index: kept.len() as u64 }) {
                kept.push(*id);
                extra += 1;
            }
        }
        if extra > 0 {
            rec.notes.push(format!("take {}: recovered {extra} frames made after the last save", t.id));
        }
        t.frames = TakeRecord::runs(&kept);
    }
    (m, rec)
}

/// Creates `dir/lock` holding our pid; a lock left by a process that no longer runs is taken over.
fn take_lock(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("lock");
    let io = |source| ProjectError::Io { path: path.display().to_string(), source };
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                write!(f, "{}", std::process::id()).map_err(io)?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match lock_holder(dir) {
                Some(pid) => return Err(ProjectError::Locked(dir.display().to_string(), pid)),
                // Stale (its process is gone) or unreadable: take it over.
                None => std::fs::remove_file(&path).map_err(io)?,
            },
            Err(source) => return Err(ProjectError::Io { path: path.display().to_string(), source }),
        }
    }
    Err(ProjectError::Locked(dir.display().to_string(), 0))
}

/// The running process that has the project in `dir` open, if any. Our own pid counts too: another
/// engine in this process has the project.
fn lock_holder(dir: &Path) -> Option<u32> {
    let pid = fs::read_to_string(dir.join("lock")).ok()?.trim().parse::<u32>().ok()?;
    process_alive(pid).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_compress_consecutive_ids() {
        let ids: Vec<FrameId> = [0, 1, 2, 7, 8, 3].into_iter().map(FrameId).collect();
        let runs = TakeRecord::runs(&ids);
        assert_eq!(runs, vec![[0, 3], [7, 2], [3, 1]]);
        let t = TakeRecord {
            id: 0,
            parent: None,
            seed: 0,
            steps: None,
            guidance: None,
            switch_anchor: None,
            keyframes: None,
            discarded: false,
            timeline: Timeline::single("a"),
            frames: runs,
        };
        assert_eq!(t.frame_ids().collect::<Vec<_>>(), ids);
        assert_eq!(t.len(), 6);
    }

    #[test]
    fn bad_manifests_are_clear_errors() {
        let bad = |text: &str| match parse_manifest(text) {
            Err(ParseError::Bad(r)) => r,
            Err(ParseError::Newer(v)) => format!("newer {v}"),
            Ok(_) => "ok".into(),
        };
        assert!(bad("{").contains("EOF"));
        assert!(bad(r#"{"format":"x","version":1}"#).contains("format"));
        assert_eq!(bad(r#"{"format":"spool-project","version":9}"#), "newer 9");
        assert!(bad(r#"{"format":"spool-project"}"#).contains("version"));
        let take = |id: u32, parent: &str| {
            format!(
                r#"{{"id":{id},"seed":1,"timeline":{{"segments":[{{"start":0,"prompt":"a"}}]}},"parent":{parent}}}"#
            )
        };
        let m = format!(r#"{{"format":"spool-project","version":1,"takes":[{}]}}"#, take(1, "null"));
        assert!(bad(&m).contains("position"));
        let m = format!(r#"{{"format":"spool-project","version":1,"takes":[{}]}}"#, take(0, r#"{"take":0,"keep":1}"#));
        assert!(bad(&m).contains("not an earlier take"));
        let m = r#"{"format":"spool-project","version":1,"current_take":3}"#;
        assert!(bad(m).contains("does not exist"));
        // A take with one more field, `key: value`.
        let with = |key: &str, value: &str| {
            let t = format!(
                r#"{{"id":0,"seed":1,"timeline":{{"segments":[{{"start":0,"prompt":"a"}}]}},"{key}":{value}}}"#
            );
            bad(&format!(r#"{{"format":"spool-project","version":1,"takes":[{t}]}}"#))
        };
        assert_eq!(with("switch_anchor", r#"{"strength":0.7,"latents":12}"#), "ok");
        assert!(with("switch_anchor", r#"{"strength":1.5,"latents":12}"#).contains("strength is in (0, 1]"));
        assert!(with("switch_anchor", r#"{"strength":0.7,"latents":9999}"#).contains("at most 256 latents"));
        assert_eq!(with("keyframes", r#"{"every":4,"strength":0.5}"#), "ok");
        assert!(with("keyframes", r#"{"every":0,"strength":0.5}"#).contains("every 1 or more frames"));
    }
}
