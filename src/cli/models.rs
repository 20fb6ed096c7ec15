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

/// wan-causal's weights are not shipped: the user downloads them and names the folder.
pub(crate) fn wan_needs_weights() -> String {
    "wan-causal needs its downloaded files: --weights DIR (in the app: Settings, weights folder)".into()
}

fn load(assets: &Path, spec: &ModelSpec) -> Result<Box<dyn crate::model::VideoModel>, String> {
    match spec.name.as_str() {
        "spool-tiny" => {
            let dir = spec.weights.clone().unwrap_or_else(|| assets.join("spool-tiny"));
            let model = crate::model::tiny::SpoolTiny::load(&dir, &assets.join("minilm"), &candle_core::Device::Cpu)
                .map_err(|e| format!("cannot load spool-tiny from {}: {e}", dir.display()))?;
            Ok(Box::new(model))
        }
        "wan-causal" => {
            let dir = spec.weights.as_deref().ok_or_else(wan_needs_weights)?;
            let device = candle_core::Device::cuda_if_available(0).map_err(|e| e.to_string())?;
            let model = crate::model::wan::WanCausal::load_dir(dir, &device)
                .map_err(|e| format!("cannot load wan-causal from {}: {e}", dir.display()))?;
            Ok(Box::new(model))
        }
        other => Err(format!("unknown model \"{other}\": choose one of {}", super::args::MODEL_NAMES.join(", "))),
    }
}
