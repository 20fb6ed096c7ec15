//! The recently opened or saved projects, newest first: a small JSON file in Spool's data folder
//! (`recent.json`, see [`data_file`]). The list is a convenience: a missing file is an empty list,
//! and an unreadable one is set aside with a warning, never an error that stops the app.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ProjectError, data_file};

/// How many projects the list keeps.
pub const MAX: usize = 10;
const FORMAT: &str = "spool-recent";

#[derive(Serialize, Deserialize)]
struct RecentFile {
    format: String,
    projects: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecentProjects {
    path: PathBuf,
    projects: Vec<PathBuf>,
}

/// Where the app keeps its list.
pub fn default_path() -> PathBuf {
    super::data_dir().join("recent.json")
}

impl RecentProjects {
    /// Reads the list in `path`. A missing file is an empty list. An unreadable or corrupt one is
    /// an empty list too, plus a warning for the user (see [`data_file::load`]).
    pub fn load(path: &Path) -> (RecentProjects, Option<String>) {
        let (projects, warning) = data_file::load(path, "the recent-projects list", "the list starts afresh", |text| {
            match serde_json::from_str::<RecentFile>(text) {
                Ok(f) if f.format == FORMAT => Ok(f.projects),
                Ok(_) => Err(format!("\"format\" is not \"{FORMAT}\"")),
                Err(e) => Err(e.to_string()),
            }
        });
        let mut projects = projects.unwrap_or_default();
        projects.truncate(MAX);
        (RecentProjects { path: path.to_path_buf(), projects }, warning)
    }

    /// The projects, newest first. Some may no longer exist (moved, deleted, on an unplugged drive).
    pub fn projects(&self) -> &[PathBuf] {
        &self.projects
    }

    /// Puts `dir` first (as an absolute path), drops the oldest beyond [`MAX`] and writes the list.
    pub fn record(&mut self, dir: &Path) -> Result<(), ProjectError> {
        let io = |source| ProjectError::Io { path: self.path.display().to_string(), source };
        let dir = std::path::absolute(dir).map_err(io)?;
        self.projects.retain(|p| *p != dir);
        self.projects.insert(0, dir);
        self.projects.truncate(MAX);
        let json = serde_json::to_string_pretty(&RecentFile { format: FORMAT.into(), projects: self.projects.clone() })
            .expect("a list of paths always serialises");
        data_file::save(&self.path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_without_duplicates_and_at_most_max() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spool/recent.json");
        let (mut r, warning) = RecentProjects::load(&file);
        assert!(r.projects().is_empty() && warning.is_none(), "a missing file is an empty list, quietly");
        for i in 0..MAX + 3 {
            r.record(&dir.path().join(format!("p{i}.spool"))).unwrap();
        }
        r.record(&dir.path().join("p5.spool")).unwrap();
        let (back, warning) = RecentProjects::load(&file);
        assert!(warning.is_none());
        assert_eq!(back, r, "the list survives a reload");
        let names: Vec<String> =
            back.projects().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names.len(), MAX);
        assert_eq!(names[..3], ["p5.spool", "p12.spool", "p11.spool"]);
        assert!(!names.contains(&"p0.spool".to_string()), "the oldest went: {names:?}");
    }

    #[test]
    fn a_corrupt_file_is_set_aside_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("recent.json");
        std::fs::write(&file, "{ not json").unwrap();
        let (mut r, warning) = RecentProjects::load(&file);
        let warning = warning.expect("a warning");
        assert!(warning.contains("could not be read") && warning.contains("recent.json.bad"), "{warning}");
        assert!(r.projects().is_empty());
        assert_eq!(std::fs::read_to_string(dir.path().join("recent.json.bad")).unwrap(), "{ not json");
        r.record(&dir.path().join("a.spool")).unwrap();
        assert_eq!(RecentProjects::load(&file).0.projects(), [dir.path().join("a.spool")]);
    }
}
