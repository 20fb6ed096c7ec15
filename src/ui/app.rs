//! The `App`: UI state only, plus the wiring from user actions to engine commands.
//!
//! Everything heavy happens on the engine thread. Each UI frame drains the engine's events into the
//! [`Session`] mirror (the engine wakes the UI with `request_repaint` when one arrives, so an idle
//! app draws nothing), then lays out the panels. The panels live in their own modules as further
//! `impl App` blocks; this file keeps the state, the commands and the frame loop.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use egui::{Key, KeyboardShortcut, Modifiers};
use raw_window_handle::{HasDisplayHandle as _, HasWindowHandle as _};

use super::notices::{Notice, Notices};
use super::overlay::{self, Overlay, Wanted};
use super::prefs::Prefs;
use super::screen_watch::OnScreen;
use super::session::{Report, Session};
use super::thumbs::Thumbs;
use super::undo::History;
use super::{theme, vocab};
use crate::engine::{
    Command, Engine, EngineError, EngineState, FrameCount, GenSettings, Keyframes, ModelSpec, RollingDurations,
    SwitchAnchor, TakeId,
};
use crate::model::Frame;
use crate::render::{FrameView, RenderCounters, ShownFrame, ViewOptions};
use crate::store::FrameId;
use crate::timeline::{Segment, Timeline, WeightedPrompt, check_prompt};

/// How many recent UI frames the benchmark figures (`SPOOL_UI_STATS`) cover.
const BENCH_WINDOW: usize = 600;

/// The models the settings offer, default first.
pub const MODELS: &[&str] = &["spool-tiny", "wan-causal"];

/// What the app starts with.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Loaded at start, unless the preferences remember another.
    pub model: ModelSpec,
    /// Fill the prompt editor with the first example and show the example list.
    pub first_run: bool,
    /// Press Generate as soon as the model has loaded (demos, screenshots).
    pub generate_on_start: bool,
    /// Project folder to open; `None`: `$SPOOL_PROJECT`, else the default project.
    pub project: Option<PathBuf>,
    /// The recent-projects list (`project::recent`); `None`: the app keeps none (tests, demos).
    pub recent_file: Option<PathBuf>,
    /// The remembered preferences ([`Prefs`]); `None`: none are kept (tests, demos).
    pub prefs_file: Option<PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            model: ModelSpec { name: MODELS[0].to_string(), weights: None },
            first_run: true,
            generate_on_start: false,
            project: None,
            recent_file: None,
            prefs_file: None,
        }
    }
}

/// User settings (model, seed, steps, guidance, switch redraw, keyframes, playback, view).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub model: String,
    pub weights: Option<PathBuf>,
    pub random_seed: bool,
    pub seed: u64,
    /// `None`: the model's default.
    pub steps: Option<u32>,
    /// Classifier-free guidance scale; `None`: the model's default.
    pub guidance: Option<f32>,
    /// How new takes redraw a hard prompt switch for the new prompt; `None`: they do not.
    pub switch_redraw: Option<SwitchAnchor>,
    /// Keyframes of new takes; `None`: none.
    pub keyframes: Option<Keyframes>,
    pub playback_fps: f32,
    /// Upscale on export: 1, 2 or 4.
    pub export_scale: u32,
    pub smooth: bool,
    pub checker: bool,
}

/// Playback of the current take.
#[derive(Debug, Clone)]
pub struct Playback {
    /// Index of the shown frame in the current take.
    pub playhead: u64,
    /// Playing at the playback rate (Space).
    pub playing: bool,
    /// Following the newest frame while generating.
    pub live: bool,
    pub looping: bool,
    /// Fractional frames accumulated since the last advance.
    acc: f64,
    last_time: Option<f64>,
}

/// A start image for image-to-video, already at the model's size.
pub struct StartImage {
    pub name: String,
    pub frame: Arc<Frame>,
    pub thumb: egui::TextureHandle,
}

/// Results of work done off the UI thread (dialogs, image decoding).
pub(crate) enum IoDone {
    StartImage(Result<(String, Frame), String>),
    WeightsFolder(PathBuf),
    OpenProject(PathBuf),
    SaveAs(PathBuf),
    ExportTo(PathBuf),
    Exported(Result<crate::export::ExportSummary, String>),
}

pub struct App {
    pub(crate) engine: Engine,
    pub(crate) session: Session,
    pub(crate) view: FrameView,
    pub(crate) prompt: String,
    /// The prompt timeline: the current take's, or the plan for the next Generate.
    pub(crate) draft: Timeline,
    /// SetTimeline commands sent whose echo has not come back (the draft is ahead of them).
    pub(crate) pending_echoes: u32,
    pub(crate) selected_segment: Option<usize>,
    /// Crossfade length for "apply from next frame".
    pub(crate) crossfade: u32,
    pub(crate) gen_frames: u32,
    pub(crate) forever: bool,
    pub(crate) extend_frames: u32,
    pub(crate) settings: Settings,
    pub(crate) play: Playback,
    pub(crate) history: History<EditState>,
    pub(crate) notices: Notices,
    pub(crate) start_image: Option<StartImage>,
    pub(crate) io_tx: Sender<IoDone>,
    io_rx: Receiver<IoDone>,
    pub(crate) thumbs: Thumbs,
    pub(crate) first_run: bool,
    pub(crate) prompt_error: Option<String>,
    pub(crate) settings_open: bool,
    /// Newest frame arrival → the pass that lays it out, for the readout.
    pub(crate) display_lag: RollingDurations,
    /// Newest frame arrival → its pixels shown, as the display system reports it, where it can.
    pub(crate) screen: Option<OnScreen>,
    /// Frame arrival → handed to the display system by the video overlay (benchmarks: the app's
    /// part of the time to screen; a compositor's schedule is the rest).
    overlay_handed: RollingDurations,
    /// The frame view in a window of its own, drawn as frames are decoded, where the display
    /// system allows one (`ui::overlay`).
    overlay: Option<Overlay>,
    shown_id: Option<FrameId>,
    shown_cache: Option<ShownFrame>,
    pub(crate) ctx: egui::Context,
    pub(crate) generate_on_start: bool,
    pub(crate) hud_rect: egui::Rect,
    /// Where the shown frame's picture was drawn last (window pixels), for `SPOOL_UI_STATS`.
    picture_px: Option<egui::Rect>,
    /// The visible rects of the two side panels' scroll areas (their content is clipped to them).
    scroll_viewports: [egui::Rect; 2],
    /// What the chosen weights folder holds of wan-causal's files, looked up when the folder is
    /// chosen or a model is loaded (not every frame: it reads the disk).
    pub(crate) weights_survey: Option<(PathBuf, Vec<crate::model::wan::files::FileStatus>)>,
    /// With `SPOOL_UI_STATS` set: print UI timings this often (benchmarks).
    stats_every: Option<(Duration, Instant)>,
    /// The running export, if any.
    pub(crate) export: Option<super::export_ui::ExportJob>,
    /// The Export dialog, while open.
    pub(crate) export_dialog: Option<super::export_ui::ExportDialog>,
    /// Where a running Save as copies the project to.
    pub(crate) saving_as: Option<PathBuf>,
    /// Recently opened or saved projects, if the app keeps the list.
    pub(crate) recent: Option<crate::project::recent::RecentProjects>,
    /// The preferences file and what it holds (`None`: none are kept).
    prefs: Option<PrefsKept>,
    /// Models asked for with `LoadModel`, oldest first, until the engine answers each (loaded or
    /// failed): the answer says which spec is loaded.
    pub(crate) model_requests: VecDeque<ModelSpec>,
    /// The spec of the model the engine has loaded, once it has.
    loaded_model: Option<ModelSpec>,
    /// Starts an engine in another project folder ("Open project…"); `None` in tests.
    pub(crate) opener: Option<super::EngineOpener>,
    /// CPU time of recent UI frames (layout and event handling), for the benchmark.
    ui_times: RollingDurations,
    /// eframe's CPU time per whole frame, for the benchmark.
    frame_cpu: RollingDurations,
    /// Time between UI frames while stats are on.
    show_intervals: RollingDurations,
    last_show: Option<Instant>,
}

/// The preferences file and the preferences last read from or written to it.
struct PrefsKept {
    path: PathBuf,
    saved: Prefs,
}

/// What undo and redo restore: the draft timeline, the current take and which takes are kept.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EditState {
    draft: Timeline,
    take: Option<TakeId>,
    kept: BTreeSet<TakeId>,
}

impl App {
    /// Builds the app over an engine the caller spawned (the real one, or a test double's). Sends
    /// `LoadModel` for `options.model`.
    pub fn new(cc: &eframe::CreationContext<'_>, engine: Engine, options: AppOptions) -> Self {
        let mut app = Self::with_context(&cc.egui_ctx, cc.wgpu_render_state.as_ref(), engine, options);
        if let (Ok(display), Ok(window)) = (cc.display_handle(), cc.window_handle()) {
            // SAFETY: the handles are the app's window's; eframe drops the app before the window.
            app.screen = unsafe { OnScreen::start(display.as_raw(), window.as_raw()) };
            if let Some(rs) = cc.wgpu_render_state.as_ref().filter(|_| app.view.is_gpu()) {
                let counters = app.view.counters().clone();
                // SAFETY: as above.
                app.overlay = unsafe { Overlay::start(&cc.egui_ctx, rs, display.as_raw(), window.as_raw(), counters) };
                app.tap_frames();
            }
        }
        app
    }

    pub fn with_context(
        ctx: &egui::Context,
        render_state: Option<&egui_wgpu::RenderState>,
        engine: Engine,
        options: AppOptions,
    ) -> Self {
        theme::apply(ctx);
        let (io_tx, io_rx) = crossbeam_channel::unbounded();
        let prompt = if options.first_run { vocab::EXAMPLES[0].to_string() } else { String::new() };
        let mut notices = Notices::default();
        let prefs = options.prefs_file.map(|path| {
            let (prefs, warning) = Prefs::load(&path);
            if let Some(w) = warning {
                notices.push(Notice::warning_text(&w));
            }
            (path, prefs)
        });
        // What the last launch left, else the defaults with the model asked for.
        let start = prefs.as_ref().and_then(|(_, p)| p.clone()).unwrap_or_else(|| Prefs {
            model: options.model.name.clone(),
            weights: options.model.weights.clone(),
            ..Prefs::default()
        });
        let model = start.model();
        let asked = engine.send(Command::LoadModel(model.clone())).is_ok();
        if !asked {
            notices.push(Notice::error("the engine is not running", "restart Spool"));
        }
        let recent = options.recent_file.as_deref().map(|path| {
            let (recent, warning) = crate::project::recent::RecentProjects::load(path);
            if let Some(w) = warning {
                notices.push(Notice::warning_text(&w));
            }
            recent
        });
        let mut app = App {
            engine,
            session: Session::default(),
            // SPOOL_CPU_VIEW=1 draws frames through an egui texture instead of the wgpu shaders (for
            // comparing the two paths).
            view: FrameView::new(render_state.filter(|_| std::env::var_os("SPOOL_CPU_VIEW").is_none())),
            draft: Timeline::single(if prompt.is_empty() { " ".to_string() } else { prompt.clone() }),
            prompt,
            pending_echoes: 0,
            selected_segment: None,
            crossfade: 0,
            gen_frames: 64,
            forever: false,
            extend_frames: 32,
            settings: Settings {
                model: start.model.clone(),
                weights: start.weights.clone(),
                random_seed: false,
                seed: 1,
                steps: None,
                guidance: None,
                switch_redraw: Some(SwitchAnchor::default()),
                keyframes: Some(Keyframes::default()),
                playback_fps: start.playback_fps,
                export_scale: start.export_scale,
                smooth: start.smooth,
                checker: start.checker,
            },
            play: Playback { playhead: 0, playing: false, live: true, looping: true, acc: 0.0, last_time: None },
            history: History::new(200),
            notices,
            start_image: None,
            io_tx,
            io_rx,
            thumbs: Thumbs::default(),
            first_run: options.first_run,
            prompt_error: None,
            settings_open: true,
            display_lag: RollingDurations::new(64),
            screen: None,
            overlay_handed: RollingDurations::new(64),
            overlay: None,
            shown_id: None,
            shown_cache: None,
            ctx: ctx.clone(),
            generate_on_start: options.generate_on_start,
            hud_rect: egui::Rect::NOTHING,
            picture_px: None,
            scroll_viewports: [egui::Rect::NOTHING; 2],
            weights_survey: None,
            opener: None,
            export: None,
            export_dialog: None,
            saving_as: None,
            recent,
            prefs: prefs.map(|(path, p)| PrefsKept { path, saved: p.unwrap_or_default() }),
            model_requests: if asked { VecDeque::from([model]) } else { VecDeque::new() },
            loaded_model: None,
            stats_every: std::env::var_os("SPOOL_UI_STATS").map(|_| (Duration::from_secs(5), Instant::now())),
            ui_times: RollingDurations::new(BENCH_WINDOW),
            frame_cpu: RollingDurations::new(BENCH_WINDOW),
            show_intervals: RollingDurations::new(BENCH_WINDOW),
            last_show: None,
        };
        // SPOOL_EGUI_SHADER=1 keeps egui-wgpu's own shader for the widgets (for comparing the two).
        if let Some(rs) = render_state.filter(|_| std::env::var_os("SPOOL_EGUI_SHADER").is_none()) {
            crate::render::install_ui_meshes(ctx, rs, app.view.counters().clone());
        }
        app.remember_project();
        app
    }

    /// Lets "Open project…" switch project folders by starting a new engine there.
    pub fn with_opener(mut self, opener: super::EngineOpener) -> Self {
        self.opener = Some(opener);
        self
    }

    // ---- read access for tests and benchmarks -------------------------------------------------

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The project folder the app works in.
    pub fn project_dir(&self) -> &std::path::Path {
        self.engine.project()
    }

    pub fn render_counters(&self) -> &Arc<RenderCounters> {
        self.view.counters()
    }

    /// The timeline the editor shows.
    pub fn draft_timeline(&self) -> &Timeline {
        &self.draft
    }

    pub fn playback(&self) -> &Playback {
        &self.play
    }

    /// (take, index) of the frame the view shows.
    pub fn shown_frame(&self) -> Option<(TakeId, u64)> {
        let take = self.session.current_take()?;
        (!take.frames.is_empty()).then(|| (take.info.id, self.play.playhead.min(take.frames.len() as u64 - 1)))
    }

    pub fn notices(&self) -> &Notices {
        &self.notices
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    pub fn has_start_image(&self) -> bool {
        self.start_image.is_some()
    }

    /// Where the latency readout was drawn last frame (tests mask it: its numbers are timings).
    pub fn hud_rect(&self) -> egui::Rect {
        self.hud_rect
    }

    /// The visible rects of the side panels' scroll areas, for layout checks.
    pub fn scroll_viewports(&self) -> &[egui::Rect] {
        &self.scroll_viewports
    }

    /// Frames the next Generate asks for (`None`: until stopped).
    pub fn set_generate_frames(&mut self, n: Option<u32>) {
        self.forever = n.is_none();
        if let Some(n) = n {
            self.gen_frames = n.max(1);
        }
    }

    pub fn set_extend_frames(&mut self, n: u32) {
        self.extend_frames = n.max(1);
    }

    /// Chooses the weights folder (what the Folder… dialog does).
    pub fn set_weights_folder(&mut self, dir: PathBuf) {
        self.settings.weights = Some(dir);
        self.survey_weights();
    }

    /// Looks up what the chosen folder holds of wan-causal's files.
    fn survey_weights(&mut self) {
        self.weights_survey = self.settings.weights.as_ref().map(|d| (d.clone(), crate::model::wan::files::survey(d)));
    }

    // ---- commands -------------------------------------------------------------------------------

    /// Sends `cmd` to the engine; false (with a notice) when it could not.
    pub(crate) fn send(&mut self, cmd: Command) -> bool {
        if let Some(dest) = &self.saving_as {
            // The engine is copying the project; what it did now would land in the original, not
            // in the copy the app switches to.
            let text = format!("the project is being saved as {}", dest.display());
            self.notices.push(Notice::warning(&text, "wait for the copy to finish, then do that again"));
            return false;
        }
        if self.engine.send(cmd).is_err() {
            self.notices
                .push(Notice::error("the engine thread has stopped", "restart Spool; frames made so far are on disk"));
            return false;
        }
        true
    }

    /// The prompts of the editor as a segment's mix.
    fn editor_prompts(&self) -> Vec<WeightedPrompt> {
        vec![WeightedPrompt { text: self.prompt.trim().to_string(), weight: 1.0 }]
    }

    /// Checks the editor's prompt; on failure shows the reason under the editor.
    fn check_editor(&mut self) -> bool {
        match check_prompt(&self.prompt) {
            Ok(()) => {
                self.prompt_error = None;
                true
            }
            Err(e) => {
                self.prompt_error = Some(e.to_string());
                false
            }
        }
    }

    pub(crate) fn can_generate(&self) -> bool {
        self.session.model.is_some() && check_prompt(&self.prompt).is_ok()
    }

    /// Starts a new take from the draft timeline, with the editor's prompt as its first segment.
    pub(crate) fn generate(&mut self) {
        if !self.check_editor() {
            return;
        }
        if self.session.model.is_none() {
            self.notices.push(Notice::warning(
                "no model is loaded yet",
                "wait for it to load, or pick one under Settings and press Load",
            ));
            return;
        }
        let mut timeline = self.draft.clone();
        if timeline.segments.is_empty() {
            timeline = Timeline::single(self.prompt.trim());
        }
        timeline.segments[0].prompts[0].text = self.prompt.trim().to_string();
        timeline.segments[0].start = 0;
        if let Err(e) = timeline.validate() {
            self.notices.push(Notice::error(
                &format!("the prompt timeline is not valid: {e}"),
                "fix the segment in the timeline",
            ));
            return;
        }
        let seed = if self.settings.random_seed { rand::random::<u32>() as u64 } else { self.settings.seed };
        if self.settings.random_seed {
            // Show the seed that was used, so a good take can be made again.
            self.settings.seed = seed;
        }
        let frames = if self.forever {
            FrameCount::Forever
        } else {
            FrameCount::new(u64::from(self.gen_frames.max(1))).unwrap_or(FrameCount::Forever)
        };
        let start_image = self.start_image.as_ref().map(|s| s.frame.clone());
        self.record_edit();
        self.draft = timeline.clone();
        self.first_run = false;
        self.play.live = true;
        self.play.playing = false;
        self.play.playhead = 0;
        self.send(Command::Generate {
            timeline,
            frames,
            settings: GenSettings {
                seed,
                steps: self.settings.steps,
                guidance: self.settings.guidance,
                switch_anchor: self.settings.switch_redraw,
                keyframes: self.settings.keyframes,
            },
            start_image,
        });
    }

    pub(crate) fn extend(&mut self) {
        if self.session.current.is_none() {
            self.notices.push(Notice::warning("there is no take to extend yet", "press Generate first"));
            return;
        }
        let n = FrameCount::new(u64::from(self.extend_frames.max(1))).unwrap_or(FrameCount::Forever);
        // An extension that makes a new take is an edit (undo discards the take); lengthening a
        // running take or filling a fresh branch is not one of its own.
        if !self.session.busy()
            && self.session.current_take().is_some_and(|t| t.info.extends_as_new_take(t.frames.len() as u64))
        {
            self.record_edit();
        }
        self.play.live = true;
        self.play.playing = false;
        self.send(Command::ExtendAsTake { frames: n });
    }

    pub(crate) fn toggle_pause(&mut self) {
        match self.session.state {
            EngineState::Paused => {
                self.send(Command::Resume);
            }
            EngineState::Generating | EngineState::Rebuilding => {
                self.send(Command::Pause);
            }
            _ => {}
        }
    }

    pub(crate) fn stop(&mut self) {
        self.send(Command::Stop);
    }

    /// The frame a prompt change made now would apply from.
    pub(crate) fn next_frame(&self) -> u64 {
        self.session.current_len()
    }

    /// Whether the editor's prompt differs from what conditions the next frame.
    pub(crate) fn prompt_differs(&self) -> bool {
        let Some(t) = self.session.current_timeline() else { return false };
        let mix = t.mix_at(self.next_frame());
        !(mix.len() == 1 && mix[0].1 == self.prompt.trim())
    }

    /// Changes the prompt of the current take from the next frame on (mid-stream change).
    pub(crate) fn apply_prompt(&mut self) {
        if self.session.current.is_none() || !self.check_editor() {
            return;
        }
        self.record_edit();
        let seg = Segment { start: self.next_frame(), prompts: self.editor_prompts(), blend: self.crossfade };
        self.draft.change_from(seg.clone());
        self.send(Command::ChangePrompt(seg));
    }

    /// Branches the current take at the playhead (keeping frames 0..=playhead).
    pub(crate) fn branch_here(&mut self) {
        let Some(take) = self.session.current_take() else { return };
        if take.frames.is_empty() {
            return;
        }
        let keep = (self.play.playhead + 1).min(take.frames.len() as u64);
        let id = take.info.id;
        self.record_edit();
        self.play.live = true;
        self.send(Command::Branch { take: id, keep });
    }

    pub(crate) fn switch_take(&mut self, id: TakeId) {
        if self.session.current == Some(id) {
            return;
        }
        self.record_edit();
        self.show_take(id);
    }

    /// Makes `id` the current take (no undo record: switch_take and undo/redo record).
    fn show_take(&mut self, id: TakeId) {
        self.play.live = false;
        self.play.playing = false;
        self.play.playhead = 0;
        self.send(Command::SwitchTake(id));
    }

    /// Applies an edit to the draft timeline, recording it for undo and sending it to the engine
    /// when a take exists and the result is valid.
    pub(crate) fn edit_timeline(&mut self, record: bool, edit: impl FnOnce(&mut Timeline)) {
        let before = self.draft.clone();
        edit(&mut self.draft);
        if self.draft == before {
            return;
        }
        if record {
            let state = self.edit_state(before);
            self.history.record(&state);
        }
        self.push_timeline();
    }

    /// Sends the draft to the engine (for the current take) if it is valid.
    pub(crate) fn push_timeline(&mut self) {
        if let Some(take) = self.session.current_take() {
            if take.info.timeline != self.draft && self.draft.validate().is_ok() {
                self.pending_echoes += 1;
                let t = self.draft.clone();
                self.send(Command::SetTimeline(t));
            }
        } else {
            self.mirror_prompt();
        }
    }

    /// Without a take, the editor shows the draft's first prompt.
    fn mirror_prompt(&mut self) {
        if self.draft.validate().is_ok()
            && let Some(p) = self.draft.segments.first().and_then(|s| s.prompts.first())
            && p.text.trim() != self.prompt.trim()
            && !p.text.trim().is_empty()
        {
            self.prompt = p.text.clone();
        }
    }

    /// The state undo/redo would come back to, with `draft` as the timeline.
    fn edit_state(&self, draft: Timeline) -> EditState {
        let kept = self.session.kept_takes().map(|t| t.info.id).collect();
        EditState { draft, take: self.session.current, kept }
    }

    /// Records the present state before an edit, a generate, an extend, a branch or a take switch.
    pub(crate) fn record_edit(&mut self) {
        let state = self.edit_state(self.draft.clone());
        self.history.record(&state);
    }

    pub(crate) fn undo(&mut self) {
        let now = self.edit_state(self.draft.clone());
        if let Some(prev) = self.history.undo(&now) {
            self.restore(prev);
        }
    }

    pub(crate) fn redo(&mut self) {
        let now = self.edit_state(self.draft.clone());
        if let Some(next) = self.history.redo(&now) {
            self.restore(next);
        }
    }

    /// Brings back a recorded state: takes made after it are discarded (their frames stay in the
    /// project), takes it had are kept again, its take becomes current and its timeline the draft.
    fn restore(&mut self, target: EditState) {
        let changes: Vec<(TakeId, bool)> = self
            .session
            .takes
            .iter()
            .map(|t| (t.info.id, t.info.discarded, !target.kept.contains(&t.info.id)))
            .filter(|&(_, is, should)| is != should)
            .map(|(id, _, discard)| (id, discard))
            .collect();
        for (take, discarded) in changes {
            self.send(Command::SetDiscarded { take, discarded });
        }
        self.draft = target.draft;
        self.clamp_selection();
        match target.take {
            Some(id) => {
                if self.session.current != Some(id) {
                    self.show_take(id);
                }
                self.push_timeline();
            }
            // Back before the first take: only the editor follows.
            None => self.mirror_prompt(),
        }
    }

    fn clamp_selection(&mut self) {
        if let Some(i) = self.selected_segment
            && i >= self.draft.segments.len()
        {
            self.selected_segment = None;
        }
    }

    pub(crate) fn load_model(&mut self) {
        let spec = ModelSpec { name: self.settings.model.clone(), weights: self.settings.weights.clone() };
        // Files may have been downloaded into the folder meanwhile.
        self.survey_weights();
        self.notices.clear_errors();
        if self.send(Command::LoadModel(spec.clone())) {
            self.model_requests.push_back(spec);
        }
    }

    /// Writes the preferences when they changed (not while a pointer button is down: a drag
    /// writes once, when it ends). The model remembered is the one loaded, not one only picked.
    fn remember_prefs(&mut self, ctx: &egui::Context) {
        let Some(kept) = &mut self.prefs else { return };
        let model = self.loaded_model.clone().unwrap_or_else(|| kept.saved.model());
        let now = Prefs::of(&self.settings, &model);
        if now == kept.saved || ctx.input(|i| i.pointer.any_down()) {
            return;
        }
        if let Err(e) = now.save(&kept.path) {
            self.notices.push(Notice::warning(
                &format!("the preferences could not be saved: {e}"),
                "nothing to do: they hold for this session, and the next launch starts from the last saved",
            ));
        }
        // Also after a failure, so a full disk is not retried every frame.
        kept.saved = now;
    }

    /// Decodes an image file off the UI thread and sizes it for the loaded model.
    pub(crate) fn load_start_image(&mut self, path: PathBuf) {
        let size = self.session.model.as_ref().map(|m| (m.width, m.height));
        let tx = self.io_tx.clone();
        let ctx = self.ctx.clone();
        std::thread::spawn(move || {
            let result = super::image_input::load(&path, size);
            let _ = tx.send(IoDone::StartImage(result));
            ctx.request_repaint();
        });
    }

    pub(crate) fn pick_start_image(&mut self) {
        let tx = self.io_tx.clone();
        let ctx = self.ctx.clone();
        let size = self.session.model.as_ref().map(|m| (m.width, m.height));
        // rfd's dialog blocks until closed: run it beside the UI so the window keeps drawing.
        std::thread::spawn(move || {
            let picked = rfd::FileDialog::new()
                .set_title("Start image")
                .add_filter("Images", &["png", "jpg", "jpeg", "webp", "bmp", "gif"])
                .pick_file();
            if let Some(path) = picked {
                let result = super::image_input::load(&path, size);
                let _ = tx.send(IoDone::StartImage(result));
                ctx.request_repaint();
            }
        });
    }

    /// Shows the new project's first frames, not the old project's playhead.
    pub(crate) fn reset_view(&mut self) {
        self.shown_cache = None;
        self.selected_segment = None;
        self.pending_echoes = 0;
        self.play.playhead = 0;
        self.play.live = true;
    }

    pub(crate) fn save_project(&mut self) {
        match self.engine.store().flush() {
            Ok(()) => self.notices.push(Notice::info(
                &format!("project saved in {}", self.engine.store().dir().display()),
                "Spool also saves every frame and edit as it goes",
            )),
            Err(e) => self
                .notices
                .push(Notice::error(&format!("saving failed: {e}"), "check the disk has room, then save again")),
        }
    }

    pub(crate) fn pick_weights_folder(&mut self) {
        let tx = self.io_tx.clone();
        let ctx = self.ctx.clone();
        std::thread::spawn(move || {
            if let Some(path) = rfd::FileDialog::new().set_title("Model weights folder").pick_folder() {
                let _ = tx.send(IoDone::WeightsFolder(path));
                ctx.request_repaint();
            }
        });
    }

    // ---- the frame loop ---------------------------------------------------------------------------

    /// Drains engine events and finished background work. Called once per UI frame.
    pub(crate) fn pump(&mut self) {
        if let Some(screen) = &mut self.screen {
            screen.poll();
        }
        while let Ok(event) = self.engine.events().try_recv() {
            let timeline_echo = matches!(&event, crate::engine::Event::TimelineChanged { take, .. } if Some(*take) == self.session.current);
            let switched = matches!(&event, crate::engine::Event::CurrentTake(_));
            let loaded = matches!(&event, crate::engine::Event::ModelLoaded(_));
            let opened = matches!(&event, crate::engine::Event::ProjectOpened { .. });
            let saved_as = match &event {
                crate::engine::Event::SavedAs { path, result } => Some((path.clone(), result.clone())),
                _ => None,
            };
            if self.stats_every.is_some() && matches!(&event, crate::engine::Event::Finished { .. }) {
                self.print_ui_stats();
            }
            if loaded {
                self.loaded_model = self.model_requests.pop_front();
            }
            if let Some(report) = self.session.apply(event) {
                if matches!(report, Report::Error(EngineError::Load { .. })) {
                    self.model_requests.pop_front();
                }
                match report {
                    Report::Error(e) => self.notices.push(Notice::from_engine(&e)),
                    Report::Warning(w) => self.notices.push(Notice::warning_text(&w)),
                }
            }
            if opened {
                let tags = self.engine.store().tags();
                self.session.rebuild_frames(&tags);
                if let Some(t) = self.session.current_timeline() {
                    self.draft = t.clone();
                    self.first_run = false;
                }
                if self.session.current_len() > 0 {
                    // An opened project shows where it was left, not a live stream.
                    self.play.live = false;
                    self.play.playhead = self.session.current_len() - 1;
                }
            }
            if timeline_echo {
                if self.pending_echoes > 0 {
                    self.pending_echoes -= 1;
                } else if let Some(t) = self.session.current_timeline() {
                    self.draft = t.clone();
                    self.clamp_selection();
                }
            }
            if switched {
                if let Some(t) = self.session.current_timeline() {
                    self.draft = t.clone();
                }
                self.pending_echoes = 0;
                self.clamp_selection();
                let len = self.session.current_len();
                self.play.playhead =
                    if self.play.live { len.saturating_sub(1) } else { self.play.playhead.min(len.saturating_sub(1)) };
            }
            if let Some((path, result)) = saved_as {
                self.save_as_finished(path, result);
            }
            if loaded {
                self.notices.clear_errors();
                if std::mem::take(&mut self.generate_on_start) {
                    self.generate();
                }
                if let (Some(m), Some(s)) = (&self.session.model, self.settings.steps) {
                    self.settings.steps = Some(s.clamp(1, m.max_steps));
                }
                if self.session.model.as_ref().is_some_and(|m| m.default_guidance.is_none()) {
                    self.settings.guidance = None;
                }
            }
        }
        while let Ok(done) = self.io_rx.try_recv() {
            match done {
                IoDone::StartImage(Ok((name, frame))) => {
                    let thumb = self.ctx.load_texture(
                        "start-image",
                        egui::ColorImage::from_rgb([frame.width as usize, frame.height as usize], &frame.to_rgb8()),
                        egui::TextureOptions::LINEAR,
                    );
                    self.start_image = Some(StartImage { name, frame: Arc::new(frame), thumb });
                }
                IoDone::StartImage(Err(e)) => {
                    self.notices.push(Notice::error(&e, "use a PNG, JPEG, WebP, BMP or GIF image"));
                }
                IoDone::WeightsFolder(p) => self.set_weights_folder(p),
                IoDone::OpenProject(p) => {
                    self.open_project(&p);
                }
                IoDone::SaveAs(p) => self.save_as(p),
                IoDone::ExportTo(p) => self.export_to(p),
                IoDone::Exported(r) => self.export_finished(r),
            }
        }
        // Keep a start image at the model's size (the model may have changed since it was loaded).
        if let (Some(img), Some(m)) = (&self.start_image, &self.session.model)
            && (img.frame.width, img.frame.height) != (m.width, m.height)
        {
            let resized = super::image_input::resize_frame(&img.frame, m.width, m.height);
            if let Some(img) = &mut self.start_image {
                img.frame = Arc::new(resized);
            }
        }
    }

    /// Keyboard shortcuts. Taken before any widget runs so a focused text field cannot swallow them.
    fn shortcuts(&mut self, ctx: &egui::Context) {
        if self.saving_as.is_some() {
            // The window is disabled while the project is copied; so are its keys.
            return;
        }
        let cmd = |m: Modifiers, k: Key| KeyboardShortcut::new(m, k);
        let typing = ctx.egui_wants_keyboard_input();
        let (apply, gen_, export, extend, redo, undo, save, stop) = ctx.input_mut(|i| {
            (
                i.consume_shortcut(&cmd(Modifiers::COMMAND | Modifiers::SHIFT, Key::Enter)),
                i.consume_shortcut(&cmd(Modifiers::COMMAND, Key::Enter)),
                i.consume_shortcut(&cmd(Modifiers::COMMAND | Modifiers::SHIFT, Key::E)),
                i.consume_shortcut(&cmd(Modifiers::COMMAND, Key::E)),
                // While typing, undo/redo belong to the text field.
                !typing && i.consume_shortcut(&cmd(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z)),
                !typing && i.consume_shortcut(&cmd(Modifiers::COMMAND, Key::Z)),
                i.consume_shortcut(&cmd(Modifiers::COMMAND, Key::S)),
                i.consume_key(Modifiers::NONE, Key::Escape),
            )
        });
        if apply && self.prompt_differs() {
            self.apply_prompt();
        }
        if gen_ {
            self.generate();
        }
        if export && self.session.current_len() > 0 && self.export.is_none() {
            self.open_export_dialog();
        }
        if extend {
            self.extend();
        }
        if redo {
            self.redo();
        }
        if undo {
            self.undo();
        }
        if save {
            self.save_project();
        }
        if stop {
            self.stop();
        }
        if typing {
            return;
        }
        let (space, left, right, home, end) = ctx.input_mut(|i| {
            (
                i.consume_key(Modifiers::NONE, Key::Space),
                i.consume_key(Modifiers::NONE, Key::ArrowLeft),
                i.consume_key(Modifiers::NONE, Key::ArrowRight),
                i.consume_key(Modifiers::NONE, Key::Home),
                i.consume_key(Modifiers::NONE, Key::End),
            )
        });
        if space {
            self.toggle_play();
        }
        if left {
            self.step_frames(-1);
        }
        if right {
            self.step_frames(1);
        }
        if home {
            self.seek(0);
        }
        if end {
            self.seek(u64::MAX);
        }
    }

    pub(crate) fn toggle_play(&mut self) {
        let len = self.session.current_len();
        if self.play.playing {
            self.play.playing = false;
        } else if len > 0 {
            if self.play.playhead + 1 >= len && !self.session.busy() {
                self.play.playhead = 0;
            }
            self.play.playing = true;
            self.play.live = false;
            self.play.acc = 0.0;
            self.play.last_time = None;
        }
    }

    pub(crate) fn step_frames(&mut self, delta: i64) {
        let len = self.session.current_len();
        if len == 0 {
            return;
        }
        self.play.playing = false;
        self.play.live = false;
        self.play.playhead = (self.play.playhead as i64 + delta).clamp(0, len as i64 - 1) as u64;
    }

    pub(crate) fn seek(&mut self, frame: u64) {
        let len = self.session.current_len();
        self.play.live = false;
        self.play.playhead = frame.min(len.saturating_sub(1));
    }

    pub(crate) fn go_live(&mut self) {
        self.play.live = true;
        self.play.playing = false;
        self.play.playhead = self.session.current_len().saturating_sub(1);
    }

    /// Advances playback and live-follow; asks for the next repaint only while playing.
    fn advance(&mut self, ctx: &egui::Context) {
        let len = self.session.current_len();
        let now = ctx.input(|i| i.time);
        if self.play.live {
            self.play.playhead = len.saturating_sub(1);
        } else if self.play.playing && len > 0 {
            let fps = f64::from(self.settings.playback_fps.clamp(1.0, 120.0));
            if let Some(t) = self.play.last_time {
                self.play.acc += (now - t) * fps;
            }
            let steps = self.play.acc.floor() as u64;
            self.play.acc -= steps as f64;
            let mut head = self.play.playhead + steps;
            if head >= len {
                match (self.play.looping, self.session.busy()) {
                    (true, false) => head %= len,
                    // Caught up with generation: wait at the newest frame.
                    (_, true) => head = len - 1,
                    // The end of a finished take: stop there (Space plays it again from the start).
                    (false, false) => {
                        head = len - 1;
                        self.play.playing = false;
                    }
                }
            }
            self.play.playhead = head;
            ctx.request_repaint_after(Duration::from_secs_f64(((1.0 - self.play.acc) / fps).max(0.001)));
        }
        self.play.last_time = Some(now);
        if len > 0 {
            self.play.playhead = self.play.playhead.min(len - 1);
        }
    }

    /// The frame to show now: the newest one (no store read) or one read back from the store.
    pub(crate) fn frame_to_show(&mut self) -> Option<ShownFrame> {
        let take = self.session.current_take()?;
        let id = *take.frames.get(self.play.playhead as usize)?;
        if let Some(c) = &self.shown_cache
            && c.key == id.0
        {
            return Some(c.clone());
        }
        let frame = match &self.session.newest {
            Some(n) if n.id == id => n.frame.clone(),
            _ => match self.engine.store().frame(id) {
                Ok(f) => f,
                Err(e) => {
                    self.notices.push(Notice::error(
                        &format!("frame {} could not be read back: {e}", self.play.playhead),
                        "the take's other frames are unaffected",
                    ));
                    return None;
                }
            },
        };
        let shown = ShownFrame { key: id.0, frame };
        self.shown_cache = Some(shown.clone());
        Some(shown)
    }

    /// Sends the engine's frames to the overlay too, if there is one.
    pub(crate) fn tap_frames(&mut self) {
        if let Some(o) = &self.overlay {
            self.send(Command::TapFrames(o.tap()));
        }
    }

    /// Records arrival → first paint for the newest frame; `overlaid`: the overlay shows it, and
    /// its own screen watch reports when.
    pub(crate) fn note_shown(&mut self, key: u64, overlaid: bool) {
        if self.shown_id.map(|i| i.0) == Some(key) {
            return;
        }
        self.shown_id = Some(FrameId(key));
        if let Some(n) = &self.session.newest
            && n.id.0 == key
        {
            self.display_lag.push(n.decoded.elapsed());
            if let Some(screen) = &mut self.screen
                && !overlaid
            {
                screen.laid_out(n.decoded);
            }
        }
    }

    pub(crate) fn view_options(&self) -> ViewOptions {
        ViewOptions { smooth: self.settings.smooth, checker: self.settings.checker, background: theme::VIEW_BG }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if let Some(f) = dropped.into_iter().next() {
            self.load_start_image(f.path().to_path_buf());
        }
    }

    /// Lays out the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let started = Instant::now();
        if self.stats_every.is_some() {
            if let Some(prev) = self.last_show {
                self.show_intervals.push(started - prev);
            }
            self.last_show = Some(started);
        }
        self.show_inner(ui);
        self.ui_times.push(started.elapsed());
        if self.stats_every.is_some() && std::env::var_os("SPOOL_CONTINUOUS").is_some() {
            // Benchmark mode: draw as fast as the renderer allows.
            ui.ctx().request_repaint();
        }
        if self.stats_every.is_some_and(|(every, last)| last.elapsed() >= every) {
            self.print_ui_stats();
            self.stats_every = self.stats_every.map(|(every, _)| (every, Instant::now()));
        }
    }

    fn show_inner(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.pump();
        self.shortcuts(&ctx);
        self.handle_dropped_files(&ctx);
        self.advance(&ctx);
        self.notices.expire(Instant::now());
        if self.saving_as.is_some() {
            ui.disable();
        }
        if self.session.current.is_none() {
            // Before the first take the first segment is the editor's prompt.
            if let Some(p) = self.draft.segments.first_mut().and_then(|s| s.prompts.first_mut()) {
                p.text = self.prompt.clone();
            }
        }

        egui::Panel::top("top-bar").frame(theme::panel_frame().inner_margin(egui::Margin::symmetric(12, 6))).show(
            ui,
            |ui| {
                self.top_bar(ui);
            },
        );
        egui::Panel::bottom("status-bar")
            .frame(egui::Frame::new().inner_margin(egui::Margin::symmetric(12, 3)))
            .show(ui, |ui| self.status_bar(ui));
        egui::Panel::bottom("timeline").frame(theme::panel_frame()).show(ui, |ui| {
            self.timeline_strip(ui);
        });
        egui::Panel::left("controls").frame(theme::panel_frame()).default_size(300.0).size_range(280.0..=480.0).show(
            ui,
            |ui| {
                let out = egui::ScrollArea::vertical().id_salt("controls-scroll").show(ui, |ui| {
                    self.prompt_panel(ui);
                    self.segment_editor(ui);
                });
                self.scroll_viewports[0] = out.inner_rect;
            },
        );
        egui::Panel::right("side").frame(theme::panel_frame()).default_size(280.0).size_range(260.0..=440.0).show(
            ui,
            |ui| {
                // The readout stays in view; takes and settings scroll beneath it.
                self.hud(ui);
                ui.add_space(8.0);
                let out = egui::ScrollArea::vertical().id_salt("side-scroll").show(ui, |ui| {
                    self.takes_panel(ui);
                    ui.add_space(8.0);
                    self.settings_panel(ui);
                });
                self.scroll_viewports[1] = out.inner_rect;
            },
        );
        egui::CentralPanel::default().frame(egui::Frame::new().inner_margin(egui::Margin::same(10))).show(ui, |ui| {
            self.frame_area(ui);
        });
        self.export_dialog_ui(ui);
        self.remember_prefs(&ctx);
    }

    /// The frame view with notices over its top edge.
    fn frame_area(&mut self, ui: &mut egui::Ui) {
        let rect = ui.available_rect_before_wrap();
        let response = ui.allocate_rect(rect, egui::Sense::click());
        let shown = self.frame_to_show();
        let options = self.view_options();
        let overlaid = self.place_overlay(ui.ctx(), rect, shown.as_ref(), options);
        if !overlaid {
            // The view paints its whole rect (letterbox included): nothing is drawn under it.
            self.view.paint(ui, rect, shown.as_ref(), options);
        }
        let fit = shown.as_ref().map(|s| crate::render::fit_rect(rect, s.frame.width, s.frame.height));
        if let (Some(s), Some(fit)) = (&shown, fit) {
            self.note_shown(s.key, overlaid);
            self.picture_px = Some(fit * ui.ctx().pixels_per_point());
        }
        if let Some(fit) = fit.filter(|_| !overlaid) {
            let (take, index) = self.shown_frame().unwrap_or((TakeId(0), 0));
            let tag = format!("take {} · frame {}", take.0 + 1, index);
            ui.painter().text(
                fit.left_bottom() + egui::vec2(8.0, -8.0),
                egui::Align2::LEFT_BOTTOM,
                tag,
                egui::FontId::monospace(11.0),
                egui::Color32::from_white_alpha(170),
            );
        } else {
            let msg = match self.session.state {
                EngineState::Loading => "Loading the model…",
                EngineState::NoModel if self.notices.has_errors() => "No model is loaded: see the message above",
                EngineState::NoModel => "Loading the model…",
                _ => "Type a prompt and press Generate (Ctrl+Enter)",
            };
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                msg,
                egui::FontId::proportional(15.0),
                theme::TEXT_DIM,
            );
        }
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "Frame view"));
        // Notices sit on the view's top edge, never covering the controls.
        let notice_rect = rect.shrink2(egui::vec2(12.0, 10.0));
        let mut child =
            ui.new_child(egui::UiBuilder::new().max_rect(notice_rect).layout(egui::Layout::top_down(egui::Align::Min)));
        self.notices_ui(&mut child);
    }

    /// Shows the overlay over the frame view at `rect`, or hides it; true when it shows the view
    /// (while a frame is shown and nothing is drawn over the view). The frame's tag is not drawn
    /// then: the transport's counter has the frame.
    fn place_overlay(
        &mut self,
        ctx: &egui::Context,
        rect: egui::Rect,
        shown: Option<&ShownFrame>,
        options: ViewOptions,
    ) -> bool {
        let clear = self.notices.items().is_empty() && self.saving_as.is_none() && !overlay::covered(ctx, rect);
        let wanted = match (shown, self.shown_frame()) {
            (Some(frame), Some((take, index))) if clear => {
                let pixels_per_point = ctx.pixels_per_point();
                Some(Wanted {
                    rect_px: overlay::rect_px(rect, pixels_per_point),
                    pixels_per_point,
                    options,
                    at: overlay::At { take, index },
                    frame: frame.clone(),
                    follow: self.play.live.then_some(take),
                })
            }
            _ => None,
        };
        let Some(o) = &mut self.overlay else { return false };
        let overlaid = o.update(wanted);
        for lag in o.lags() {
            match lag {
                overlay::Lag::Handed(d) => self.overlay_handed.push(d),
                overlay::Lag::Shown(d) => {
                    if let Some(screen) = &mut self.screen {
                        screen.lag.push(d);
                    }
                }
            }
        }
        overlaid
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new("◎ Spool").size(17.0).strong().color(theme::ACCENT));
            ui.add_space(6.0);
            let model = match &self.session.model {
                Some(m) => format!("{} · {} · {}×{}", m.id, m.device, m.width, m.height),
                None if self.session.state == EngineState::Loading => format!("{} · loading…", self.settings.model),
                None => "no model".to_string(),
            };
            ui.label(egui::RichText::new(model).color(theme::TEXT_DIM));
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let can_export = self.session.current_len() > 0 && self.export.is_none();
                let export = ui
                    .add_enabled(can_export, egui::Button::new("Export…"))
                    .on_hover_text("Export the current take to MP4, GIF or PNGs (Ctrl+Shift+E)")
                    .on_disabled_hover_text(if self.export.is_some() {
                        "An export is running"
                    } else {
                        "Generate a take first"
                    });
                if export.clicked() {
                    self.open_export_dialog();
                }
                let save_as = ui
                    .add_enabled(self.can_save_as(), egui::Button::new("Save as…"))
                    .on_hover_text("Copy the project to a new NAME.spool folder and continue in the copy")
                    .on_disabled_hover_text("Stop generating first; a copy is made when nothing is being generated");
                if save_as.clicked() {
                    self.pick_save_as();
                }
                if ui
                    .button("Save project")
                    .on_hover_text("Write everything to disk now (Ctrl+S); Spool also saves as it goes")
                    .clicked()
                {
                    self.save_project();
                }
                self.recent_menu(ui);
                let open = ui
                    .add_enabled(self.opener.is_some(), egui::Button::new("Open project…"))
                    .on_hover_text("Open a project folder, or pick an empty folder to start a new project");
                if open.clicked() {
                    self.pick_project();
                }
                ui.separator();
                let redo = ui
                    .add_enabled(self.history.can_redo(), egui::Button::new("Redo"))
                    .on_hover_text("Redo (Ctrl+Shift+Z): timeline edits, generate, branch and take switches");
                if redo.clicked() {
                    self.redo();
                }
                let undo = ui
                    .add_enabled(self.history.can_undo(), egui::Button::new("Undo"))
                    .on_hover_text("Undo (Ctrl+Z): timeline edits, generate, extend, branch and take switches; an undone take keeps its frames in the project");
                if undo.clicked() {
                    self.undo();
                }
                ui.separator();
                self.state_badge(ui);
            });
        });
    }

    fn state_badge(&self, ui: &mut egui::Ui) {
        let (text, color) = match self.session.state {
            EngineState::NoModel => ("No model".to_string(), theme::TEXT_DIM),
            EngineState::Loading => ("Loading".to_string(), theme::WARN),
            EngineState::Idle => ("Ready".to_string(), theme::OK),
            EngineState::Rebuilding => ("Rebuilding cache".to_string(), theme::WARN),
            EngineState::Paused => ("Paused".to_string(), theme::WARN),
            EngineState::Generating => match self.session.progress {
                Some((_, done, Some(t))) => (format!("Generating {done}/{t}"), theme::ACCENT),
                Some((_, done, None)) => (format!("Generating {done}/∞"), theme::ACCENT),
                None => ("Generating".to_string(), theme::ACCENT),
            },
        };
        ui.label(egui::RichText::new(text).color(color).strong());
        let (dot, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
        ui.painter().circle_filled(dot.center(), 4.0, color);
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let small = |s: &str| egui::RichText::new(s.to_string()).size(11.0).color(theme::TEXT_DIM);
            let take = self
                .session
                .current_take()
                .map_or("no take yet".to_string(), |t| format!("take {} · {} frames", t.info.id.0 + 1, t.frames.len()));
            ui.label(small(&take));
            self.save_as_status(ui);
            self.export_status(ui);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                // The hint gives way (truncates) when the bar is busy, e.g. with export progress.
                ui.add(
                    egui::Label::new(small(
                        "Ctrl+Enter generate · Ctrl+Shift+Enter apply prompt · Ctrl+E extend · Esc stop · Space play · Ctrl+Z undo",
                    ))
                    .truncate(),
                );
            });
        });
    }
}

impl App {
    /// For benchmarks: the UI thread's frame times and the frame-to-screen lag so far.
    fn print_ui_stats(&self) {
        if let Some(r) = self.picture_px.map(|r| r.round()) {
            // ImageMagick's geometry, for scripts/gui-screenshot.
            eprintln!("picture at {}x{}+{}+{} (window pixels)", r.width(), r.height(), r.left(), r.top());
        }
        if let Some([p50, p95]) = self.ui_times.quantiles([0.5, 0.95]) {
            let n = self.ui_times.len();
            eprintln!("ui frame time over {n} frames: p50 {:.1} ms, p95 {:.1} ms", ms(p50), ms(p95));
        }
        if let Some([p50, p05]) = self.show_intervals.quantiles([0.5, 0.05]) {
            eprintln!("time between ui frames: p50 {:.1} ms, p05 {:.1} ms", ms(p50), ms(p05));
        }
        if let Some([p50, p95]) = self.frame_cpu.quantiles([0.5, 0.95]) {
            let n = self.frame_cpu.len();
            eprintln!("whole-frame cpu over {n} frames: p50 {:.1} ms, p95 {:.1} ms", ms(p50), ms(p95));
        }
        if let Some([p50, p95]) = self.display_lag.quantiles([0.5, 0.95]) {
            eprintln!(
                "frame decoded -> laid out over {} frames: p50 {:.1} ms, p95 {:.1} ms; generation {:?} fps",
                self.display_lag.len(),
                ms(p50),
                ms(p95),
                self.session.stats.steady_fps.map(|f| (f * 10.0).round() / 10.0)
            );
        }
        if let Some([p50, p95]) = self.screen.as_ref().and_then(|s| s.lag.quantiles([0.5, 0.95])) {
            eprintln!("frame decoded -> on screen (display server) p50 {:.1} ms, p95 {:.1} ms", ms(p50), ms(p95));
        }
        if let Some([p50, p95]) = self.overlay_handed.quantiles([0.5, 0.95]) {
            eprintln!(
                "frame decoded -> handed to the display server (overlay) p50 {:.1} ms, p95 {:.1} ms",
                ms(p50),
                ms(p95)
            );
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl eframe::App for App {
    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        egui::Rgba::from(theme::PANEL).to_array()
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        // eframe's whole-frame CPU time of the previous frame (layout, tessellation, render submit).
        if let Some(cpu) = frame.info().cpu_usage {
            self.frame_cpu.push(Duration::from_secs_f32(cpu));
        }
        self.show(ui);
    }
}
