//! Small JSON files in Spool's data folder (the recent-projects list, the app's preferences): a
//! missing file is quietly nothing, an unreadable one is set aside as `….bad` with a warning for
//! the user (never an error that stops the app), and writes are atomic.

use std::path::Path;

use super::ProjectError;

/// Reads `path` through `parse` (which says what is wrong with a text it refuses). Missing: `None`.
/// Unreadable or refused: `None` plus a warning naming `what` and saying what happens instead
/// (`instead`); the file is renamed to `….bad` so the next write loses nothing of it.
pub fn load<T>(
    path: &Path,
    what: &str,
    instead: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> (Option<T>, Option<String>) {
    let problem = match std::fs::read_to_string(path) {
        Ok(text) => match parse(&text) {
            Ok(v) => return (Some(v), None),
            Err(e) => e,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, None),
        Err(e) => e.to_string(),
    };
    let mut aside = path.as_os_str().to_owned();
    aside.push(".bad");
    let kept = match std::fs::rename(path, &aside) {
        Ok(()) => format!("it was kept as {}", Path::new(&aside).display()),
        Err(_) => "it will be replaced".to_string(),
    };
    let warning = format!("{what} {} could not be read ({problem}); {kept}: nothing to do, {instead}", path.display());
    tracing::warn!("{warning}");
    (None, Some(warning))
}

/// Writes `json` to `path` atomically, making its folder first.
pub fn save(path: &Path, json: &str) -> Result<(), ProjectError> {
    let io = |source| ProjectError::Io { path: path.display().to_string(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    crate::staging::write_atomic(path, json.as_bytes()).map_err(io)
}
