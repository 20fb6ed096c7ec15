//! Finding wan-causal's files in the folder a user points at (`--weights DIR`, the app's folder
//! picker).
//!
//! The files keep the names they are published under, and downloads nest them (the umT5
//! tokenizer sits in `Wan2.1-T2V-1.3B/google/umt5-xxl/`), so the folder is searched three levels
//! down, shallowest match first, folders in name order. A folder that lacks something is an error
//! that lists what is missing, where it is published, and what was found.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use crate::model::{ModelError, Result};

/// Where each of wan-causal's files was found.
#[derive(Debug, Clone, PartialEq)]
pub struct WanFiles {
    /// The DiT: Self-Forcing's (or LongLive's) generator checkpoint.
    pub generator: PathBuf,
    pub text_encoder: PathBuf,
    pub tokenizer: PathBuf,
    pub decoder: PathBuf,
}

struct Wanted {
    what: &'static str,
    /// File names, preferred first.
    names: &'static [&'static str],
    source: &'static str,
}

const WANTED: [Wanted; 4] = [
    Wanted {
        what: "generator checkpoint",
        names: &["self_forcing_dmd.pt", "longlive_base.pt"],
        source: "checkpoints/self_forcing_dmd.pt of gdhe17/Self-Forcing",
    },
    Wanted { what: "umT5 text encoder", names: &["models_t5_umt5-xxl-enc-bf16.pth"], source: "Wan-AI/Wan2.1-T2V-1.3B" },
    Wanted { what: "umT5 tokenizer", names: &["tokenizer.json"], source: "google/umt5-xxl/ in Wan-AI/Wan2.1-T2V-1.3B" },
    Wanted {
        what: "TAEHV decoder",
        names: &["taew2_1.safetensors", "taew2_1.pth"],
        source: "safetensors/ in madebyollin/taehv",
    },
];

/// Folder levels searched below the chosen folder.
const DEPTH: usize = 3;

/// One file wan-causal needs, and where it was found in a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStatus {
    /// What it is ("umT5 tokenizer").
    pub what: &'static str,
    /// The names it may have, preferred first.
    pub names: &'static [&'static str],
    /// Where it is published.
    pub source: &'static str,
    /// Where it is, if found.
    pub found: Option<PathBuf>,
}

/// Looks for each of wan-causal's files under `dir` (for the app's Settings, which shows what a
/// chosen folder has and lacks); an unreadable or missing folder has none of them.
pub fn survey(dir: &Path) -> Vec<FileStatus> {
    let files = files_under(dir);
    WANTED
        .iter()
        .map(|w| FileStatus {
            what: w.what,
            names: w.names,
            source: w.source,
            found: w
                .names
                .iter()
                .find_map(|name| files.iter().find(|f| f.file_name().is_some_and(|n| n == *name)).cloned()),
        })
        .collect()
}

/// Finds every file wan-causal needs under `dir`.
pub fn find(dir: &Path) -> Result<WanFiles> {
    if !dir.is_dir() {
        return Err(ModelError::MissingWeights {
            path: dir.display().to_string(),
            hint: "choose the folder that holds wan-causal's downloaded files".into(),
        });
    }
    let status = survey(dir);
    if let [Some(generator), Some(text_encoder), Some(tokenizer), Some(decoder)] =
        status.iter().map(|s| s.found.as_ref()).collect::<Vec<_>>().as_slice()
    {
        return Ok(WanFiles {
            generator: (*generator).clone(),
            text_encoder: (*text_encoder).clone(),
            tokenizer: (*tokenizer).clone(),
            decoder: (*decoder).clone(),
        });
    }
    let mut missing = Vec::new();
    let mut have = Vec::new();
    for s in &status {
        match &s.found {
            Some(path) => have.push(format!("{} {}", s.what, path.strip_prefix(dir).unwrap_or(path).display())),
            None => missing.push(format!("the {} ({}, from {})", s.what, s.names.join(" or "), s.source)),
        }
    }
    let have = if have.is_empty() { "nothing it uses".to_string() } else { have.join(", ") };
    let missing = match missing.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => missing.concat(),
    };
    Err(ModelError::Invalid(format!(
        "wan-causal: {} lacks {missing}; found {have}. Download the missing files into that folder (subfolders are searched \
         {DEPTH} levels down)",
        dir.display(),
    )))
}

/// The files under `dir`, at most [`DEPTH`] levels down, shallowest first, hidden entries skipped.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut queue = VecDeque::from([(dir.to_path_buf(), 0)]);
    while let Some((d, depth)) = queue.pop_front() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        let mut entries: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                if depth < DEPTH {
                    queue.push_back((path, depth + 1));
                }
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, rel: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn a_download_tree_is_found_shallowest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        touch(root, "checkpoints/self_forcing_dmd.pt");
        touch(root, "Wan2.1-T2V-1.3B/models_t5_umt5-xxl-enc-bf16.pth");
        touch(root, "Wan2.1-T2V-1.3B/google/umt5-xxl/tokenizer.json");
        touch(root, "taew2_1.safetensors");
        touch(root, "old/deeper/still/taew2_1.safetensors");
        let f = find(root).unwrap();
        assert_eq!(f.generator, root.join("checkpoints/self_forcing_dmd.pt"));
        assert_eq!(f.tokenizer, root.join("Wan2.1-T2V-1.3B/google/umt5-xxl/tokenizer.json"));
        assert_eq!(f.decoder, root.join("taew2_1.safetensors"));
    }

    #[test]
    fn what_is_missing_is_named_with_where_to_get_it() {
        let tmp = tempfile::tempdir().unwrap();
        touch(tmp.path(), "self_forcing_dmd.pt");
        touch(tmp.path(), "taew2_1.pth");
        let err = find(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("umT5 text encoder (models_t5_umt5-xxl-enc-bf16.pth"), "{err}");
        assert!(err.contains("umT5 tokenizer (tokenizer.json, from google/umt5-xxl/"), "{err}");
        assert!(err.contains("found generator checkpoint self_forcing_dmd.pt, TAEHV decoder taew2_1.pth"), "{err}");
        let err = find(&tmp.path().join("nope")).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("choose the folder"), "{err}");
    }
}
