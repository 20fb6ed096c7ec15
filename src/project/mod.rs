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

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{FrameId, FrameStore, Tag};
use crate::timeline::Timeline;

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
    pub timeline: Timeline,
    #[serde(default)]
    pub frames: Vec<[u64; 2]>,
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
        let tmp = self.dir.join("manifest.json.tmp");
        let io = |source| ProjectError::Io { path: path.display().to_string(), source };
        let json = serde_json::to_string_pretty(m).expect("a manifest always serialises");
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(json.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)
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
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u32>().ok());
                match holder {
                    // Our own pid counts too: another engine in this process has the project.
                    Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
                        return Err(ProjectError::Locked(dir.display().to_string(), pid));
                    }
                    // Stale (its process is gone) or unreadable: take it over.
                    _ => std::fs::remove_file(&path).map_err(io)?,
                }
            }
            Err(source) => return Err(ProjectError::Io { path: path.display().to_string(), source }),
        }
    }
    Err(ProjectError::Locked(dir.display().to_string(), 0))
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
    }
}
