//! The app's remembered preferences (`prefs.json` in Spool's data folder, see
//! [`data_file`](crate::project::data_file)): the model last loaded and its weights folder, the
//! playback rate, the export scale and the view options, so the next launch opens as the last one
//! was left. Choices that make a take's frames (seed, steps, guidance, redraw, keyframes) are not
//! here: they go with each take in its project.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::app::{MODELS, Settings};
use crate::engine::ModelSpec;
use crate::project::{ProjectError, data_file};

const FORMAT: &str = "spool-prefs";
const EXPORT_SCALES: [u32; 3] = [1, 2, 4];

/// Where the app keeps its preferences.
pub fn default_path() -> PathBuf {
    crate::project::data_dir().join("prefs.json")
}

/// What is remembered. Fields a file lacks take their defaults (files from older versions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    pub model: String,
    pub weights: Option<PathBuf>,
    pub playback_fps: f32,
    pub export_scale: u32,
    pub smooth: bool,
    pub checker: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            model: MODELS[0].to_string(),
            weights: None,
            playback_fps: 16.0,
            export_scale: 2,
            smooth: false,
            checker: false,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PrefsFile {
    format: String,
    #[serde(flatten)]
    prefs: Prefs,
}

impl Prefs {
    /// Reads `path`: `None` when there is none yet; a corrupt file is set aside with a warning.
    /// Values out of range are brought into range, and a model this build does not have is
    /// replaced by the default with a warning.
    pub fn load(path: &Path) -> (Option<Prefs>, Option<String>) {
        let (prefs, warning) =
            data_file::load(
                path,
                "the saved preferences",
                "the defaults are used",
                |text| match serde_json::from_str::<PrefsFile>(text) {
                    Ok(f) if f.format == FORMAT => Ok(f.prefs),
                    Ok(_) => Err(format!("\"format\" is not \"{FORMAT}\"")),
                    Err(e) => Err(e.to_string()),
                },
            );
        let Some(mut p) = prefs else { return (None, warning) };
        p.playback_fps = if p.playback_fps.is_finite() { p.playback_fps.clamp(1.0, 60.0) } else { 16.0 };
        if !EXPORT_SCALES.contains(&p.export_scale) {
            p.export_scale = Prefs::default().export_scale;
        }
        let unknown = (!MODELS.contains(&p.model.as_str())).then(|| {
            let w = format!(
                "the saved preferences name model \"{}\", which this Spool does not have: {} is loaded instead",
                p.model, MODELS[0]
            );
            p.model = MODELS[0].to_string();
            p.weights = None;
            w
        });
        (Some(p), warning.or(unknown))
    }

    pub fn save(&self, path: &Path) -> Result<(), ProjectError> {
        let json = serde_json::to_string_pretty(&PrefsFile { format: FORMAT.into(), prefs: self.clone() })
            .expect("plain values always serialise");
        data_file::save(path, &json)
    }

    /// The preferences of `settings`, with `model` the model last loaded.
    pub fn of(settings: &Settings, model: &ModelSpec) -> Prefs {
        Prefs {
            model: model.name.clone(),
            weights: model.weights.clone(),
            playback_fps: settings.playback_fps,
            export_scale: settings.export_scale,
            smooth: settings.smooth,
            checker: settings.checker,
        }
    }

    pub fn model(&self) -> ModelSpec {
        ModelSpec { name: self.model.clone(), weights: self.weights.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_ranges_and_unknown_models() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("spool/prefs.json");
        assert_eq!(Prefs::load(&file), (None, None), "no file yet: nothing, quietly");
        let p = Prefs {
            model: "wan-causal".into(),
            weights: Some("/models/wan".into()),
            playback_fps: 24.0,
            export_scale: 4,
            smooth: true,
            checker: true,
        };
        p.save(&file).unwrap();
        assert_eq!(Prefs::load(&file), (Some(p), None));

        std::fs::write(&file, r#"{"format":"spool-prefs","model":"sora","playback_fps":500,"export_scale":3}"#)
            .unwrap();
        let (back, warning) = Prefs::load(&file);
        let back = back.unwrap();
        assert_eq!((back.model.as_str(), back.playback_fps, back.export_scale), ("spool-tiny", 60.0, 2));
        assert!(warning.unwrap().contains("model \"sora\", which this Spool does not have"));

        std::fs::write(&file, "{ not json").unwrap();
        let (back, warning) = Prefs::load(&file);
        assert!(back.is_none() && warning.unwrap().contains("prefs.json.bad"));
    }
}
