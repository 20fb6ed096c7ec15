//! The desktop app (feature `gui`): eframe/egui over the engine.
//!
//! [`run`] opens the window, spawns the engine with the real models and a waker that repaints the
//! window when an event arrives, and hands both to [`App`]. Tests build [`App`] over an engine of
//! their own (a deterministic double) instead.

mod app;
mod hud;
pub mod image_input;
mod notices;
mod playback;
mod prompt;
pub mod session;
mod settings;
mod takes;
pub mod theme;
mod thumbs;
mod timeline_panel;
pub mod undo;
pub mod vocab;

pub use app::{App, AppOptions, Playback, Settings};
pub use notices::{Level, Notice, Notices};

use crate::engine::{Engine, EngineConfig, ModelFactory, Waker};

/// A waker that repaints `ctx` whenever the engine sends an event.
pub fn waker(ctx: &egui::Context) -> Waker {
    let ctx = ctx.clone();
    Box::new(move || ctx.request_repaint())
}

/// The session's working folder (the frame store): `$SPOOL_SESSION_DIR`, else a fresh folder under
/// the system's temp dir.
fn session_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("SPOOL_SESSION_DIR") {
        return d.into();
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    std::env::temp_dir().join(format!("spool-session-{}-{stamp}", std::process::id()))
}

/// Native window options shared by the app and the demo.
pub fn native_options() -> eframe::NativeOptions {
    eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Spool")
            .with_app_id("spool")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([1024.0, 700.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        multisampling: 0,
        ..Default::default()
    }
}

/// Opens the app with the given model factory (the real one in `spool`, a double in demos).
pub fn run_with(factory: ModelFactory, options: AppOptions) -> anyhow::Result<()> {
    let store_dir = session_dir();
    eframe::run_native(
        "Spool",
        native_options(),
        Box::new(move |cc| {
            let engine = Engine::spawn(EngineConfig::new(store_dir), factory, Some(waker(&cc.egui_ctx)))
                .map_err(|e| format!("could not open the session folder: {e}"))?;
            Ok(Box::new(App::new(cc, engine, options)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window could not open: {e}"))
}

/// Opens the app with the shipped models.
pub fn run() -> anyhow::Result<()> {
    run_with(crate::cli::models::factory(crate::cli::models::assets_dir()), AppOptions::default())
}
