//! The desktop app (feature `gui`): eframe/egui over the engine.
//!
//! [`run`] opens the window, spawns the engine with the real models and a waker that repaints the
//! window when an event arrives, and hands both to [`App`]. Tests build [`App`] over an engine of
//! their own (a deterministic double) instead.

mod app;
mod export_ui;
mod hud;
pub mod image_input;
mod notices;
mod overlay;
mod playback;
pub mod prefs;
mod projects;
mod prompt;
mod screen_watch;
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

use std::path::{Path, PathBuf};

use crate::engine::{Engine, EngineConfig, ModelFactory, Waker};

/// A waker that repaints `ctx` whenever the engine sends an event: at once, or, while the video
/// overlay shows the frames as they are made, after the overlay has presented the newest
/// ([`overlay::paces`]).
pub fn waker(ctx: &egui::Context) -> Waker {
    let ctx = ctx.clone();
    Box::new(move || {
        if overlay::paces(&ctx) {
            ctx.request_repaint_after(overlay::PRESENT_FIRST);
        } else {
            repaint_once(&ctx);
        }
    })
}

/// Asks for one pass of `ctx` now. One, not egui's two for a zero-delay request (so frame-delayed
/// responses settle): each pass is a whole window's raster — tens of milliseconds under a software
/// renderer, during which the next video frame would wait. Widgets that must settle ask for their
/// own pass; a microsecond's delay is egui's one-pass request.
fn repaint_once(ctx: &egui::Context) {
    ctx.request_repaint_after(std::time::Duration::from_micros(1));
}

/// Opens (or creates) a project folder and starts an engine working in it. The app keeps one so
/// "Open project…" can switch folders; the error is a one-line reason for the user.
pub type EngineOpener = Box<dyn Fn(&Path) -> Result<Engine, String>>;

/// Where projects live by default: `projects/` in Spool's data folder (`project::data_dir`).
fn projects_dir() -> PathBuf {
    crate::project::data_dir().join("projects")
}

/// The project the app opens: the one asked for, else `$SPOOL_PROJECT`, else the default project,
/// so work survives a restart.
fn startup_project(asked: Option<&Path>) -> PathBuf {
    asked.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::var_os("SPOOL_PROJECT").map_or_else(|| projects_dir().join("default"), PathBuf::from)
    })
}

/// How the app's surfaces present: with vsync, unless `SPOOL_VSYNC=0` (for measuring on virtual
/// displays such as Xvfb, which have no vertical blank to wait for).
fn present_mode() -> egui_wgpu::wgpu::PresentMode {
    if std::env::var("SPOOL_VSYNC").is_ok_and(|v| v == "0") {
        egui_wgpu::wgpu::PresentMode::AutoNoVsync
    } else {
        egui_wgpu::wgpu::PresentMode::AutoVsync
    }
}

/// Native window options shared by the app and the demo.
pub fn native_options() -> eframe::NativeOptions {
    let mut wgpu_options = egui_wgpu::WgpuConfiguration::default();
    // One frame in flight: a new video frame reaches the screen on the next present, not two later.
    wgpu_options.surface.desired_maximum_frame_latency = Some(1);
    wgpu_options.surface.present_mode = present_mode();
    eframe::NativeOptions {
        wgpu_options,
        viewport: egui::ViewportBuilder::default()
            .with_title("Spool")
            .with_app_id("spool")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([1024.0, 700.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        multisampling: 0,
        // The UI is flat colours: dithering buys nothing visible and costs ~10% of a software
        // rasterizer's frame (lavapipe spends its time per covered pixel; BENCHMARKS.md).
        dithering: false,
        ..Default::default()
    }
}

/// Turns the helper thread ([`crate::beside`], a model thread too) off where the window needs the
/// core it would take: a software rasterizer draws on the core the model's threads leave free (on
/// 2 cores with the helper on, generation was no faster and frames reached the screen later:
/// BENCHMARKS.md, "The helper thread"). A GPU draws without it.
fn share_the_cores(cc: &eframe::CreationContext<'_>) {
    let software = cc
        .wgpu_render_state
        .as_ref()
        .is_none_or(|rs| rs.adapter.get_info().device_type == egui_wgpu::wgpu::DeviceType::Cpu);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let free = cores >= rayon::current_num_threads() + 2;
    let on = free || !software;
    crate::beside::set_enabled(on);
    tracing::debug!("helper thread {}", if on { "on" } else { "off" });
}

/// Opens the app; `make_factory` builds the model factory for each project the app opens (the
/// real models in `spool`, a stand-in in demos).
pub fn run_with(make_factory: impl Fn() -> ModelFactory + 'static, options: AppOptions) -> anyhow::Result<()> {
    eframe::run_native(
        "Spool",
        native_options(),
        Box::new(move |cc| {
            share_the_cores(cc);
            let ctx = cc.egui_ctx.clone();
            let opener: EngineOpener = Box::new(move |dir: &Path| {
                Engine::spawn(EngineConfig::new(dir.to_path_buf()), make_factory(), Some(waker(&ctx)))
                    .map_err(|e| e.to_string())
            });
            let first = startup_project(options.project.as_deref());
            let engine = match opener(&first) {
                Ok(e) => e,
                // Another Spool has the default project open: start a fresh one beside it.
                Err(_) if options.project.is_none() && std::env::var_os("SPOOL_PROJECT").is_none() => {
                    let stamp =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                    opener(&projects_dir().join(format!("untitled-{stamp}")))?
                }
                Err(e) => return Err(format!("could not open project {}: {e}", first.display()).into()),
            };
            Ok(Box::new(App::new(cc, engine, options).with_opener(opener)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window could not open: {e}"))
}

/// Opens the app with the shipped models, on `project` if given; `generate`: press Generate once
/// the model has loaded.
pub fn run(project: Option<PathBuf>, generate: bool) -> anyhow::Result<()> {
    let assets = crate::cli::models::assets_dir();
    let first_run = project.is_none();
    run_with(
        move || crate::cli::models::factory(assets.clone()),
        AppOptions {
            project,
            first_run,
            recent_file: Some(crate::project::recent::default_path()),
            prefs_file: Some(prefs::default_path()),
            generate_on_start: generate,
            ..AppOptions::default()
        },
    )
}
