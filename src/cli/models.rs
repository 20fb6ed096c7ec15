//! Which models exist and where their weights are: the wiring between model names and the
//! implementations in `model/`.

use std::path::{Path, PathBuf};

use crate::engine::{ModelFactory, ModelSpec};

/// The folder holding the shipped weights: `$SPOOL_ASSETS`, else an `assets/` folder beside the
/// executable or one of its parents (a checkout's `target/…/spool`), else the source tree's.
pub fn assets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPOOL_ASSETS") {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            let candidate = dir.join("assets");
            if candidate.join("spool-tiny").is_dir() {
                return candidate;
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets")
}

/// Builds the factory the engine uses to load models by name.
pub fn factory(assets: PathBuf) -> ModelFactory {
    Box::new(move |spec: &ModelSpec| load(&assets, spec))
}

/// Why wan-causal cannot be loaded: the files first (so a user can get them ready), then the
/// state of the port (its parts exist, the app cannot run it yet; README "Models").
pub(crate) fn wan_unavailable(weights: Option<&Path>) -> String {
    let files = match weights {
        None => "it needs --weights DIR, the folder with its downloaded files".to_string(),
        Some(dir) => match crate::model::wan::files::find(dir) {
            Ok(_) => format!("all of its files are in {}", dir.display()),
            Err(e) => return format!("{e}; wan-causal cannot run in this version yet either: use --model spool-tiny"),
        },
    };
    format!("wan-causal cannot run in this version yet ({files}): use --model spool-tiny")
}

fn load(assets: &Path, spec: &ModelSpec) -> Result<Box<dyn crate::model::VideoModel>, String> {
    match spec.name.as_str() {
        "spool-tiny" => {
            let dir = spec.weights.clone().unwrap_or_else(|| assets.join("spool-tiny"));
            let model = crate::model::tiny::SpoolTiny::load(&dir, &assets.join("minilm"), &candle_core::Device::Cpu)
                .map_err(|e| format!("cannot load spool-tiny from {}: {e}", dir.display()))?;
            Ok(Box::new(model))
        }
        "wan-causal" => Err(wan_unavailable(spec.weights.as_deref())),
        other => Err(format!("unknown model \"{other}\": choose one of {}", super::args::MODEL_NAMES.join(", "))),
    }
}
