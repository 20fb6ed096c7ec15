//! The desktop app driven through its accessibility tree (egui_kittest), rendered through wgpu
//! (Mesa lavapipe where there is no GPU), over deterministic stand-in models: the engine test
//! double (`common`) and a procedural model that draws the prompt (`demo`).
//!
//! Snapshot references live in tests/snapshots/; `UPDATE_SNAPSHOTS=1 cargo test --test gui`
//! rewrites them (the committed ones are recompressed losslessly, e.g. `oxipng -o 6`, which halves
//! them; the comparison reads pixels, not bytes). The latency readout shows wall-clock timings, so snapshots mask it.

mod common;
mod demo;
mod parity;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use egui_kittest::wgpu::WgpuTestRenderer;
use egui_kittest::{Harness, SnapshotOptions};
use egui_wgpu::wgpu;
use spool::engine::{Engine, EngineConfig, EngineState, Keyframes, ModelFactory, ModelSpec, SwitchAnchor, TakeId};
use spool::ui::{App, AppOptions};

struct Gui {
    h: Harness<'static, Window>,
    _dir: tempfile::TempDir,
}

/// The app as its window shows it: eframe clears the window to the app's clear colour before egui
/// paints (the panels have no fill of their own), egui_kittest clears to transparent, so the
/// snapshots get the clear colour painted first.
struct Window(App);

impl eframe::App for Window {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let [r, g, b, a] = eframe::App::clear_color(&self.0, ui.visuals());
        let clear = egui::Rgba::from_rgba_premultiplied(r, g, b, a);
        ui.painter().rect_filled(ui.ctx().content_rect(), 0.0, clear);
        self.0.ui(ui, frame);
    }
}

fn options(model: &str) -> AppOptions {
    AppOptions { model: ModelSpec { name: model.into(), weights: None }, ..Default::default() }
}

fn gui_with(factory: ModelFactory, opts: AppOptions, size: egui::Vec2, ppp: f32) -> Gui {
    gui_in(tempfile::tempdir().unwrap(), factory, opts, size, ppp)
}

/// The app working in the project folder `dir/project`.
fn gui_in(dir: tempfile::TempDir, factory: ModelFactory, opts: AppOptions, size: egui::Vec2, ppp: f32) -> Gui {
    gui_on(dir, factory, opts, size, ppp, None)
}

/// As `gui_in`, rendering into a `target` format of its own (`None`: kittest's, the plain
/// Rgba8Unorm a window gets from eframe).
fn gui_on(
    dir: tempfile::TempDir,
    factory: ModelFactory,
    opts: AppOptions,
    size: egui::Vec2,
    ppp: f32,
    target: Option<wgpu::TextureFormat>,
) -> Gui {
    let store = dir.path().join("project");
    let builder = Harness::builder().with_size(size).with_pixels_per_point(ppp);
    let builder = match target {
        None => builder.wgpu(),
        Some(format) => builder.renderer(WgpuTestRenderer::from_render_state(render_state_for(format))),
    };
    let h = builder.build_eframe(move |cc| {
        let engine = Engine::spawn(EngineConfig::new(store), factory, Some(spool::ui::waker(&cc.egui_ctx))).unwrap();
        Window(App::new(cc, engine, opts))
    });
    let mut g = Gui { h, _dir: dir };
    g.until("the model loads", |a| a.session().model.is_some() || !a.notices().items().is_empty());
    g
}

/// The procedural demo model (64×64, `delay` ms per frame) at 1024×700.
fn demo_gui(delay_ms: u64) -> (Gui, Arc<AtomicU64>) {
    let delay = Arc::new(AtomicU64::new(delay_ms));
    let g = gui_with(demo::factory(64, delay.clone()), options("spool-tiny"), egui::vec2(1024.0, 700.0), 1.0);
    (g, delay)
}

/// The engine's test double (2×2 frames, chunk of 2), `delay` ms per chunk.
fn double_gui(delay_ms: u64) -> (Gui, Arc<common::Control>) {
    let log = Arc::new(Mutex::new(common::Log::default()));
    let control = Arc::new(common::Control { fail_at: AtomicU64::new(u64::MAX), ..Default::default() });
    control.delay_ms.store(delay_ms, Ordering::SeqCst);
    let g = gui_with(common::factory(2, log, control.clone()), options("spool-tiny"), egui::vec2(1024.0, 700.0), 1.0);
    (g, control)
}

impl Gui {
    fn app(&self) -> &App {
        &self.h.state().0
    }

    fn app_mut(&mut self) -> &mut App {
        &mut self.h.state_mut().0
    }

    /// Steps the UI until `cond` holds; panics after 15 s.
    #[track_caller]
    fn until(&mut self, what: &str, cond: impl Fn(&App) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            self.h.step();
            if cond(&self.h.state().0) {
                self.h.step();
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(4));
        }
    }

    /// Clicks a widget the way a user would: scrolled into view first.
    fn click(&mut self, label: &str) {
        self.h.get_by_label(label).scroll_to_me();
        // Scrolling starts on the next frame and animates: wait until the widget stops moving.
        self.h.run_steps(3);
        let mut last = self.h.get_by_label(label).rect();
        for _ in 0..60 {
            self.h.step();
            let now = self.h.get_by_label(label).rect();
            if now == last {
                break;
            }
            last = now;
        }
        self.h.get_by_label(label).click();
        self.h.step();
        self.h.step();
    }

    /// Replaces the prompt editor's text the way a user does: focus, select all, type.
    fn type_prompt(&mut self, text: &str) {
        self.h.get_by_label("PROMPT").focus();
        self.h.step();
        self.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        self.h.step();
        self.h.get_by_label("PROMPT").type_text(text);
        self.h.step();
        self.h.step();
    }

    /// Settles the UI for a snapshot with the timing readout masked.
    fn snapshot(&mut self, name: &str) {
        self.h.remove_cursor();
        self.h.run_steps(3);
        let hud = self.app().hud_rect();
        self.h.mask(hud);
        self.h.snapshot_options(name, &SnapshotOptions::new().threshold(1.2).max_failed_pixels(64));
    }
}

/// The frame view's pixel at its centre, from a real render.
fn frame_view_centre(g: &mut Gui) -> [u8; 4] {
    let rect = g.h.get_by_label("Frame view").rect();
    let ppp = g.h.ctx.pixels_per_point();
    let img = g.h.render().expect("render");
    let p = rect.center() * ppp;
    img.get_pixel(p.x as u32, p.y as u32).0
}

#[test]
fn type_prompt_generate_frames_arrive_and_readout_shows_numbers() {
    let (mut g, _) = demo_gui(2);
    g.app_mut().set_generate_frames(Some(12));
    g.type_prompt("a yellow square moving right on a blue background");
    assert_eq!(g.app().prompt(), "a yellow square moving right on a blue background");
    g.click("Generate");
    g.until("12 frames arrive", |a| a.session().current_len() == 12 && a.session().state == EngineState::Idle);

    // The frame view shows the newest frame: live mode follows it.
    assert_eq!(g.app().shown_frame(), Some((TakeId(0), 11)));
    let before = g.app().render_counters().uploads();
    let px = frame_view_centre(&mut g);
    // The demo draws the yellow square over a blue background; the view's centre is in the picture.
    assert!(px[2] > 120 || (px[0] > 150 && px[1] > 150), "frame view centre is not the picture: {px:?}");
    assert!(g.app().render_counters().uploads() > before, "showing a new frame uploads it");
    assert_eq!(g.app().render_counters().allocations(), 1, "the frame texture is allocated once per resolution");

    // Stepping back shows an older frame read from the store, with one more upload and no new texture.
    g.h.key_press(egui::Key::ArrowLeft);
    g.h.run_steps(2);
    assert_eq!(g.app().shown_frame(), Some((TakeId(0), 10)));
    let uploads = g.app().render_counters().uploads();
    let _ = g.h.render().unwrap();
    assert_eq!(g.app().render_counters().uploads(), uploads + 1);
    assert_eq!(g.app().render_counters().allocations(), 1);

    // The readout shows numbers.
    for name in ["First frame", "Per frame", "Gen / play", "Cache"] {
        // Label text is the node's value in AccessKit.
        let labels: Vec<String> =
            g.h.query_all_by_label_contains(name).map(|n| n.accesskit_node().value().unwrap_or_default()).collect();
        assert!(
            labels.iter().any(|l| l.chars().any(|c| c.is_ascii_digit()) && l.len() > name.len() + 1),
            "{name}: {labels:?}"
        );
    }
    let per_frame: Vec<String> =
        g.h.query_all_by_label_contains("Per frame").map(|n| n.accesskit_node().value().unwrap_or_default()).collect();
    assert!(per_frame.iter().any(|l| l.matches("ms").count() == 2), "p50 and p95 in ms: {per_frame:?}");
    g.h.check_accessibility();
}

#[test]
fn pause_resume_stop_extend_branch_and_switch_through_the_ui() {
    let (mut g, control) = double_gui(15);
    g.app_mut().set_generate_frames(None);
    g.click("Generate");
    g.until("frames arrive", |a| a.session().current_len() >= 4);

    g.click("Pause");
    g.until("paused", |a| a.session().state == EngineState::Paused);
    let len = g.app().session().current_len();
    std::thread::sleep(Duration::from_millis(80));
    g.h.run_steps(3);
    assert!(g.app().session().current_len() <= len + 2, "at most the chunk in progress lands after pause");
    let len = g.app().session().current_len();
    std::thread::sleep(Duration::from_millis(60));
    g.h.run_steps(2);
    assert_eq!(g.app().session().current_len(), len, "no frames while paused");

    g.click("Resume");
    g.until("generating again", |a| a.session().current_len() >= len + 2);
    g.click("Stop");
    g.until("stopped", |a| a.session().state == EngineState::Idle);
    let stopped_at = g.app().session().current_len();

    control.delay_ms.store(0, Ordering::SeqCst);
    g.app_mut().set_extend_frames(5);
    g.click("Extend");
    g.until("extended by 5", |a| a.session().current_len() == stopped_at + 5 && a.session().state == EngineState::Idle);
    // The extension is a take of its own; the take it extends stays as it was.
    assert_eq!(g.app().session().current, Some(TakeId(1)));
    assert_eq!(g.app().session().take(TakeId(0)).map(|t| t.frames.len() as u64), Some(stopped_at));
    assert!(g.h.query_by_label_contains("Take 2 · ").is_some_and(|n| {
        n.accesskit_node().label().is_some_and(|l| l.contains(&format!("{} frames · extends take 1", stopped_at + 5)))
    }));
    // Undo takes the extension back, redo brings it again.
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    g.until("the extension undone", |a| {
        a.session().current == Some(TakeId(0)) && a.session().kept_takes().count() == 1
    });
    assert_eq!(g.app().session().current_len(), stopped_at);
    g.h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z);
    g.until("the extension redone", |a| {
        a.session().current == Some(TakeId(1)) && a.session().kept_takes().count() == 2
    });
    assert_eq!(g.app().session().current_len(), stopped_at + 5);
    g.h.key_press(egui::Key::End);
    g.h.run_steps(2);

    // Rewind three frames with the arrow keys, then branch there.
    g.h.key_press(egui::Key::ArrowLeft);
    g.h.key_press(egui::Key::ArrowLeft);
    g.h.key_press(egui::Key::ArrowLeft);
    g.h.run_steps(4);
    let head = g.app().playback().playhead;
    assert_eq!(head, stopped_at + 5 - 4);
    g.click(&format!("Branch from frame {head}"));
    g.until("a branch exists", |a| a.session().takes.len() == 3 && a.session().current == Some(TakeId(2)));
    // The double makes frames in chunks of 2: the branch starts at the chunk that holds the
    // playhead, and says so.
    let kept = (head + 1) - (head + 1) % 2;
    assert_eq!(g.app().session().current_len(), kept, "the branch keeps frames up to the playhead's chunk");
    if kept != head + 1 {
        let said = format!("keeps frames 0 to {}, not up to frame {head}", kept - 1);
        assert!(g.h.query_by_label_contains(&said).is_some(), "the snap is reported");
    }
    assert!(
        g.h.query_by_label_contains(&format!("Take 3 · {kept} frames · from take 2 @ {kept}")).is_some(),
        "the takes panel lists the branch"
    );

    // Continue the branch (it has no frames of its own yet: no new take), then switch back to
    // the extension.
    g.click("Extend");
    g.until("the branch grows", |a| a.session().current_len() == kept + 5 && a.session().state == EngineState::Idle);
    assert_eq!((g.app().session().current, g.app().session().takes.len()), (Some(TakeId(2)), 3));
    g.h.get_by_label_contains("Take 2 · ").click();
    g.until("take 2 is current", |a| a.session().current == Some(TakeId(1)));
    assert_eq!(g.app().session().current_len(), stopped_at + 5);
}

#[test]
fn a_prompt_change_mid_stream_lands_in_the_timeline() {
    let (mut g, _) = demo_gui(60);
    g.app_mut().set_generate_frames(None);
    g.type_prompt("a red circle moving left on a blue background");
    g.click("Generate");
    g.until("frames arrive", |a| a.session().current_len() >= 3);
    g.type_prompt("a green star spinning on a night sky");
    let apply = g.h.get_by_label_contains("Apply from frame");
    let label = apply.accesskit_node().label().unwrap_or_default();
    let asked_at: u64 = label.trim_start_matches("Apply from frame ").parse().unwrap();
    apply.click();
    g.until("the timeline has the change", |a| a.session().current_timeline().is_some_and(|t| t.segments.len() == 2));
    let t = g.app().session().current_timeline().unwrap().clone();
    assert_eq!(t.segments[1].prompts[0].text, "a green star spinning on a night sky");
    assert!(t.segments[1].start >= asked_at, "applies from the next frame, never to frames already made");
    // The engine may finish a frame between the click and the command's arrival; it then applies
    // the change from the frame after (and says so).
    assert!(t.segments[1].start <= asked_at + 3, "applies from the next frame: {} vs {asked_at}", t.segments[1].start);
    assert_eq!(g.app().draft_timeline(), &t, "the editor's timeline follows the take's");
    let label = format!("Segment 2 at frame {}: a green star spinning on a night sky", t.segments[1].start);
    assert!(g.h.query_by_label(&label).is_some(), "the strip shows the new segment");
    g.until("frames under the new prompt", |a| a.session().current_len() > t.segments[1].start + 2);
    g.click("Stop");
    g.until("stopped", Gui::idle_app);
}

impl Gui {
    fn idle_app(a: &App) -> bool {
        a.session().state == EngineState::Idle
    }
}

#[test]
fn timeline_segments_edit_and_undo_redo() {
    let (mut g, _) = demo_gui(0);
    assert_eq!(g.app().draft_timeline().segments.len(), 1);
    g.click("+ Segment");
    assert_eq!(g.app().draft_timeline().segments.len(), 2);
    let start = g.app().draft_timeline().segments[1].start;
    assert!(g.h.query_by_label_contains("Segment 2 at frame").is_some());
    // The segment editor is open on the new segment: make it a crossfade, then delete it.
    assert!(g.h.query_by_label("Delete segment").is_some());
    g.click("+ Mix in a prompt");
    assert_eq!(g.app().draft_timeline().segments[1].prompts.len(), 2, "a weighted mix");
    g.click("Delete segment");
    assert_eq!(g.app().draft_timeline().segments.len(), 1);

    // Undo brings back the mix, then the plain segment; redo goes forward again.
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    g.h.run_steps(2);
    assert_eq!(g.app().draft_timeline().segments.len(), 2);
    assert_eq!(g.app().draft_timeline().segments[1].prompts.len(), 2);
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    g.h.run_steps(2);
    assert_eq!(g.app().draft_timeline().segments[1].prompts.len(), 1);
    assert_eq!(g.app().draft_timeline().segments[1].start, start);
    g.h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z);
    g.h.run_steps(2);
    assert_eq!(g.app().draft_timeline().segments[1].prompts.len(), 2);

    // The planned timeline goes with Generate: its second segment conditions the take.
    g.app_mut().set_generate_frames(Some(start as u32 + 4));
    g.click("Generate");
    g.until("done", |a| a.session().current_len() == start + 4 && a.session().state == EngineState::Idle);
    assert_eq!(g.app().session().current_timeline().unwrap().segments.len(), 2);
}

impl Gui {
    /// Drags with the primary button from `from` to `to`, through a point between, the way a
    /// pointer moves.
    fn drag(&mut self, from: egui::Pos2, to: egui::Pos2) {
        self.h.hover_at(from);
        self.h.step();
        self.h.drag_at(from);
        self.h.step();
        for t in [0.3, 0.7, 1.0] {
            self.h.hover_at(from + (to - from) * t);
            self.h.step();
        }
        self.h.drop_at(to);
        self.h.step();
        self.h.step();
    }

    /// Where frame `frame` (its middle) sits on the strip, on a frame axis of `axis_len` frames.
    fn strip_at(&self, frame: f32, axis_len: f32) -> egui::Pos2 {
        let r = self.h.get_by_label("Scrub frames").rect();
        egui::pos2(r.left() + (frame + 0.5) / axis_len * r.width(), r.center().y)
    }

    /// The first `role` widget whose value satisfies `pred` (for fields without a label).
    fn by_value(&self, role: Role, pred: impl Fn(&str) -> bool) -> egui_kittest::Node<'_> {
        self.h
            .root()
            .children_recursive()
            .find(|n| {
                let ak = n.accesskit_node();
                ak.role() == role && pred(&ak.value().unwrap_or_default())
            })
            .unwrap_or_else(|| panic!("a {role:?} with that value"))
    }
}

#[test]
fn segments_move_by_drag_and_by_their_frame_field_and_their_text_edits() {
    let (mut g, _) = demo_gui(0);
    g.type_prompt("a red circle moving left on a blue background");
    g.generate(40);
    g.click("+ Segment");
    let take_start = |a: &App| a.session().current_timeline().map(|t| t.segments[1].start);
    assert_eq!(g.app().draft_timeline().segments[1].start, 40, "a new segment at the playhead's next frame");

    // The editor's "from frame" field moves it; the take's timeline follows.
    g.by_value(Role::SpinButton, |v| v.starts_with("from frame ")).set_value_accesskit(30.0);
    g.h.run_steps(2);
    assert_eq!(g.app().draft_timeline().segments[1].start, 30);
    g.until("the take's timeline follows", |a| take_start(a) == Some(30));

    // Dragging it along the lane moves it to the frame under the pointer (the lane shares the
    // strip's axis: 40 frames, the segments' 30 + 8 inside it).
    let seg = g.h.get_by_label_contains("Segment 2 at frame 30").rect();
    let to = egui::pos2(
        g.strip_at(20.0, 40.0).x - 0.5 * g.h.get_by_label("Scrub frames").rect().width() / 40.0,
        seg.center().y,
    );
    g.drag(egui::pos2(seg.left() + 4.0, seg.center().y), to);
    assert_eq!(g.app().draft_timeline().segments[1].start, 20);
    g.until("the take's timeline follows the drag", |a| take_start(a) == Some(20));
    assert!(g.h.query_by_label_contains("Segment 2 at frame 20").is_some());
    // One undo takes the whole drag back.
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    g.until("the drag is undone", |a| take_start(a) == Some(30) && a.draft_timeline().segments[1].start == 30);

    // Its prompt is edited in place.
    let old = "a red circle moving left on a blue background";
    g.by_value(Role::TextInput, |v| v == old).focus();
    g.h.step();
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    g.by_value(Role::TextInput, |v| v == old).type_text("a green star spinning on a night sky");
    g.h.run_steps(2);
    assert_eq!(g.app().draft_timeline().segments[1].prompts[0].text, "a green star spinning on a night sky");
    g.until("the take's timeline has the new text", |a| {
        a.session()
            .current_timeline()
            .is_some_and(|t| t.segments[1].prompts[0].text == "a green star spinning on a night sky")
    });
    assert_eq!(g.app().prompt(), "a red circle moving left on a blue background", "the editor's prompt is its own");
}

#[test]
fn the_strip_scrubs_and_playback_loops_at_the_chosen_rate() {
    let (mut g, _) = demo_gui(0);
    g.generate(40);
    let take = g.app().session().current;

    // A click on the strip shows that frame; a drag scrubs through to where it ends.
    let at10 = g.strip_at(10.0, 40.0);
    g.h.hover_at(at10);
    g.h.step();
    g.h.drag_at(at10);
    g.h.step();
    g.h.drop_at(at10);
    g.h.run_steps(2);
    assert_eq!(g.app().shown_frame(), take.map(|t| (t, 10)));
    let at30 = g.strip_at(30.0, 40.0);
    g.drag(at10, at30);
    assert_eq!(g.app().shown_frame(), take.map(|t| (t, 30)));
    assert!(!g.app().playback().playing && !g.app().playback().live);

    // Playback at 60 fps with Loop on (the default) wraps round to frame 0.
    g.h.get_by_role_and_label(Role::SpinButton, "Playback").set_value_accesskit(60.0);
    g.h.run_steps(2);
    assert_eq!(g.app().settings().playback_fps, 60.0);
    assert!(g.app().playback().looping);
    let at36 = g.strip_at(36.0, 40.0);
    g.drag(at36, at36);
    g.h.key_press(egui::Key::Space);
    g.until("playback wraps round", |a| a.playback().playing && a.playback().playhead < 36);
    g.h.key_press(egui::Key::Space);
    g.h.step();
    assert!(!g.app().playback().playing);

    // With Loop off it stops on the last frame.
    g.click("Loop");
    assert!(!g.app().playback().looping);
    g.drag(at36, at36);
    g.h.key_press(egui::Key::Space);
    g.until("playback stops at the end", |a| !a.playback().playing && a.playback().playhead == 39);
}

/// Distinct colours among `points` of the rendered window.
fn colours_at(g: &mut Gui, points: impl Iterator<Item = egui::Pos2>) -> usize {
    let ppp = g.h.ctx.pixels_per_point();
    let img = g.h.render().expect("render");
    let set: std::collections::BTreeSet<[u8; 4]> =
        points.map(|p| img.get_pixel((p.x * ppp) as u32, (p.y * ppp) as u32).0).collect();
    set.len()
}

#[test]
fn smooth_scaling_and_the_checker_change_the_frame_view() {
    let (mut g, _) = demo_gui(0);
    g.type_prompt("a yellow square standing still on a blue background");
    g.generate(2);
    g.h.remove_cursor();
    let view = g.h.get_by_label("Frame view").rect();
    // The square frame is fitted to the view's width: bars above and below it.
    assert!(view.height() > view.width() + 20.0, "{view:?}");
    let row = move || (0..view.width() as i32).map(move |x| egui::pos2(view.left() + x as f32 + 0.5, view.center().y));
    let bar = move || {
        (0..8).flat_map(move |y| {
            (0..40).map(move |x| egui::pos2(view.center().x + x as f32, view.top() + 2.0 + y as f32))
        })
    };
    let sharp = colours_at(&mut g, row());
    assert_eq!(colours_at(&mut g, bar()), 1, "a plain letterbox");

    g.click("Smooth");
    g.h.remove_cursor();
    assert!(g.app().settings().smooth);
    let smooth = colours_at(&mut g, row());
    assert!(smooth > sharp + 4, "bilinear scaling blends the square's edges: {smooth} colours against {sharp}");

    g.click("Checker");
    g.h.remove_cursor();
    assert!(g.app().settings().checker);
    assert!(colours_at(&mut g, bar()) >= 2, "the checkerboard shows in the letterbox");
}

#[test]
fn seed_and_steps_settings_go_with_each_take_and_ctrl_s_saves_every_frame() {
    let (mut g, _) = demo_gui(0);
    // A fixed seed typed in goes with the take.
    g.h.get_by_role_and_label(Role::SpinButton, "Seed").set_value_accesskit(1234.0);
    g.h.run_steps(2);
    g.generate(3);
    assert_eq!(g.app().session().takes[0].info.settings.seed, 1234);

    // Random: each take gets a new seed, shown in the field so a good one can be kept.
    g.click("Random");
    assert!(g.app().settings().random_seed);
    assert!(g.h.get_by_role_and_label(Role::SpinButton, "Seed").accesskit_node().is_disabled());
    let mut seeds = Vec::new();
    for n in 2..=3 {
        g.generate(3);
        let used = g.app().session().takes[n - 1].info.settings.seed;
        assert_eq!(g.app().settings().seed, used, "the field shows the seed used");
        seeds.push(used);
    }
    assert_ne!(seeds[0], seeds[1], "a new seed for each take");

    // Steps: off the model's default, to one step; the take records it.
    g.h.get_all_by_label("Default").next().expect("the steps' Default box").click_accesskit();
    g.h.run_steps(2);
    g.h.get_by_role_and_label(Role::Slider, "Steps").set_value_accesskit(1.0);
    g.h.run_steps(2);
    assert_eq!(g.app().settings().steps, Some(1));
    g.click("Fixed");
    g.generate(3);
    let s = &g.app().session().takes[3].info.settings;
    assert_eq!((s.seed, s.steps), (seeds[1], Some(1)), "Fixed keeps the last seed shown");

    // Ctrl+S: every frame made is on disk (a copy of the store's logs reads them all back).
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    g.h.run_steps(2);
    assert!(g.h.query_by_label_contains("Project saved in").is_some(), "the save is told in place");
    let store = g.app().project_dir().join("store");
    let copy = tempfile::tempdir().unwrap();
    for log in ["pixels.log", "latents.log"] {
        std::fs::copy(store.join(log), copy.path().join(log)).unwrap();
    }
    let read = spool::store::FrameStore::open(copy.path(), 4).unwrap();
    assert_eq!(read.stored_frames(), 12, "four takes of three frames");
}

#[test]
fn undo_and_redo_take_back_generate_branch_and_switch() {
    let (mut g, _) = demo_gui(0);
    let undo = |g: &mut Gui| g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    let redo = |g: &mut Gui| g.h.key_press_modifiers(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::Z);
    let discarded = |a: &App, id: u32| a.session().take(TakeId(id)).is_some_and(|t| t.info.discarded);
    g.app_mut().set_generate_frames(Some(6));
    g.click("Generate");
    g.until("take 1 is made", |a| a.session().current_len() == 6 && Gui::idle_app(a));
    g.h.key_press(egui::Key::ArrowLeft);
    g.h.key_press(egui::Key::ArrowLeft);
    g.h.run_steps(3);
    let head = g.app().playback().playhead;
    g.click(&format!("Branch from frame {head}"));
    g.until("the branch is current", |a| a.session().current == Some(TakeId(1)));

    // Undo the branch: back on take 1, the branch gone from the list but its frames kept.
    undo(&mut g);
    g.until("the branch is undone", |a| discarded(a, 1) && a.session().current == Some(TakeId(0)));
    assert!(g.h.query_by_label_contains("Take 2 · ").is_none(), "the takes panel hides the undone branch");
    assert_eq!(g.app().session().take(TakeId(1)).unwrap().frames.len() as u64, head + 1);
    // Undo the generate: no take is shown; the editor keeps the prompt.
    undo(&mut g);
    g.until("the generate is undone", |a| discarded(a, 0) && a.session().current.is_none());
    assert!(g.h.query_by_label_contains("Take 1 · ").is_none());
    assert_eq!(g.app().session().current_len(), 0);
    // Redo both: the takes come back in order, the branch current again.
    redo(&mut g);
    g.until("take 1 is back", |a| !discarded(a, 0) && a.session().current == Some(TakeId(0)));
    redo(&mut g);
    g.until("the branch is back", |a| !discarded(a, 1) && a.session().current == Some(TakeId(1)));
    assert!(g.h.query_by_label_contains("Take 2 · ").is_some());

    // A switch is undone too.
    g.h.get_by_label_contains("Take 1 · ").click();
    g.until("take 1 is current", |a| a.session().current == Some(TakeId(0)));
    undo(&mut g);
    g.until("back on the branch", |a| a.session().current == Some(TakeId(1)));
    assert_eq!(g.app().session().current_len(), head + 1);
}

#[test]
fn keyboard_shortcuts_generate_stop_play_and_step() {
    let (mut g, _) = demo_gui(10);
    g.app_mut().set_generate_frames(None);
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    g.until("generating", |a| a.session().current_len() >= 10);
    g.h.key_press(egui::Key::Escape);
    g.until("stopped", Gui::idle_app);
    let len = g.app().session().current_len();
    g.h.key_press(egui::Key::Home);
    g.h.run_steps(2);
    assert_eq!(g.app().playback().playhead, 0);
    g.h.key_press(egui::Key::ArrowRight);
    g.h.run_steps(2);
    assert_eq!(g.app().playback().playhead, 1);
    g.h.key_press(egui::Key::Space);
    g.h.run_steps(2);
    assert!(g.app().playback().playing);
    // The harness's clock advances a fixed step per frame, so playback at 16 fps moves on every few
    // steps (looping over the take).
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        g.h.step();
        seen.insert(g.app().playback().playhead);
    }
    assert!(seen.len() >= 3.min(len as usize), "playback advances: {seen:?}");
    g.h.key_press(egui::Key::Space);
    g.h.run_steps(2);
    assert!(!g.app().playback().playing);
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::E);
    g.until("extended", |a| a.session().current_len() > len);
}

#[test]
fn completion_offers_the_words_spool_tiny_knows() {
    let (mut g, _) = demo_gui(0);
    g.type_prompt("a red ci");
    assert!(g.h.query_by_label("circle").is_some(), "“circle” is suggested");
    g.h.key_press(egui::Key::Tab);
    g.h.run_steps(2);
    assert_eq!(g.app().prompt(), "a red circle ");
    g.type_prompt("a zebra on a blue background");
    assert!(g.h.query_by_label_contains("has not seen: zebra").is_some());
}

#[test]
fn errors_show_in_place_with_the_fix_and_nothing_is_lost() {
    let delay = Arc::new(AtomicU64::new(0));
    let mut g = gui_with(demo::factory(64, delay), options("broken"), egui::vec2(1024.0, 700.0), 1.0);
    g.until("the load error shows", |a| !a.notices().items().is_empty());
    assert!(g.h.query_by_label_contains("load model broken").is_some());
    assert!(g.h.query_by_label_contains("hoose a weights folder under Settings").is_some(), "the fix is shown");
    assert!(g.h.query_by_label("Generate").is_some());
    g.snapshot("error_notice");

    // Pick spool-tiny and load it: the error goes, the prompt is untouched.
    let prompt = g.app().prompt().to_string();
    g.h.get_by_role(Role::ComboBox).click();
    g.h.run_steps(2);
    g.h.get_by_label("spool-tiny").click();
    g.h.run_steps(2);
    assert_eq!(g.app().settings().model, "spool-tiny");
    g.click("Load model");
    g.until("loaded", |a| a.session().model.is_some());
    assert!(g.app().notices().items().is_empty());
    assert_eq!(g.app().prompt(), prompt);

    // An empty prompt is refused before the engine.
    g.app_mut().set_generate_frames(Some(3));
    g.type_prompt("   ");
    assert!(g.h.get_by_label("Generate").accesskit_node().is_disabled(), "Generate waits for a prompt");
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    g.h.run_steps(2);
    assert!(g.app().session().takes.is_empty(), "an empty prompt is refused before the engine");
    assert!(g.h.query_by_label_contains("the prompt is empty: give a description").is_some(), "the fix is shown");
}

#[test]
fn a_model_failure_mid_run_is_shown_with_the_fix_and_the_frames_stay() {
    let (mut g, control) = double_gui(0);
    // The double makes two frames a step and fails the step at cache position 6: frames 0..6 exist.
    control.fail_at.store(6, Ordering::SeqCst);
    g.app_mut().set_generate_frames(Some(12));
    g.type_prompt("a red circle moving left on a blue background");
    g.click("Generate");
    g.until("the failure shows", |a| a.notices().has_errors() && Gui::idle_app(a));
    assert_eq!(g.app().session().current_len(), 6, "the frames made before the failure stay");
    assert!(g.h.query_by_label_contains("Generation failed at frame 6 (planted failure at 6)").is_some());
    assert!(g.h.query_by_label_contains("Fix: Frames 0 to 5 are kept: Extend goes on from frame 6").is_some());
    assert_eq!(g.app().prompt(), "a red circle moving left on a blue background", "the prompt is untouched");
    g.h.key_press(egui::Key::End);
    g.h.run_steps(2);
    assert_eq!(g.app().playback().playhead, 5, "the last frame made can be shown");

    // The model recovers: Extend goes on from frame 6 (as a new take, the failed one kept).
    control.fail_at.store(u64::MAX, Ordering::SeqCst);
    g.app_mut().set_extend_frames(4);
    g.click("Extend");
    g.until("extended", |a| a.session().current_len() == 10 && Gui::idle_app(a));
    assert_eq!(g.app().session().take(TakeId(0)).map(|t| t.frames.len()), Some(6));
}

#[test]
fn wan_causal_settings_show_what_the_folder_holds_and_the_model_generates() {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut g = gui_with(spool::cli::models::factory(assets), options("wan-causal"), egui::vec2(1024.0, 700.0), 1.0);
    // No folder chosen yet: the load fails and Settings says what to do.
    assert!(g.h.query_by_label_contains("wan-causal needs its downloaded files").is_some());
    assert!(g.h.query_by_label_contains("choose the folder you downloaded them into").is_some());
    // A folder with only the generator: each missing file is named with where to get it.
    let partial = tempfile::tempdir().unwrap();
    std::fs::write(partial.path().join("self_forcing_dmd.pt"), b"x").unwrap();
    g.app_mut().set_weights_folder(partial.path().to_path_buf());
    g.h.run_steps(2);
    assert!(g.h.query_by_label_contains("found generator checkpoint: self_forcing_dmd.pt").is_some());
    assert!(g.h.query_by_label_contains("missing umT5 tokenizer: tokenizer.json from google/umt5-xxl/").is_some());
    assert!(g.h.query_by_label_contains("missing TAEHV decoder: taew2_1.safetensors or taew2_1.pth").is_some());
    // A complete folder (the tiny fixtures): everything found, and it loads and generates.
    let full = tempfile::tempdir().unwrap();
    parity::wan_tiny_folder(full.path());
    g.app_mut().set_weights_folder(full.path().to_path_buf());
    g.h.run_steps(2);
    assert!(g.h.query_by_label_contains("missing").is_none(), "nothing is missing");
    assert!(g.h.query_by_label_contains("found umT5 tokenizer: google/umt5-xxl/tokenizer.json").is_some());
    g.click("Load model");
    g.until("wan-causal loads", |a| a.session().model.as_ref().is_some_and(|m| m.id == "wan-causal"));
    // 5 frames: latent 0 gives 1, latent 1 gives 4.
    g.app_mut().set_generate_frames(Some(5));
    g.click("Generate");
    g.until("the take is made", |a| a.session().current_len() == 5 && Gui::idle_app(a));
}

#[test]
fn the_model_its_weights_folder_and_the_view_are_remembered_across_launches() {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let data = tempfile::tempdir().unwrap();
    let prefs = data.path().join("spool/prefs.json");
    let launch = |model: &str| {
        let opts = AppOptions { prefs_file: Some(prefs.clone()), ..options(model) };
        gui_with(spool::cli::models::factory(assets.clone()), opts, egui::vec2(1024.0, 700.0), 1.0)
    };
    let wan = tempfile::tempdir().unwrap();
    parity::wan_tiny_folder(wan.path());

    let mut g = launch("spool-tiny");
    g.until("spool-tiny loads", |a| a.session().model.as_ref().is_some_and(|m| m.id == "spool-tiny"));
    assert!(!prefs.exists(), "nothing changed, nothing written");
    // Picking a model is not enough: it is remembered once it has loaded.
    g.h.get_by_role(Role::ComboBox).click();
    g.h.run_steps(2);
    g.h.get_by_label("wan-causal").click();
    g.app_mut().set_weights_folder(wan.path().to_path_buf());
    g.h.run_steps(2);
    assert!(!prefs.exists());
    g.click("Load model");
    g.until("wan-causal loads", |a| a.session().model.as_ref().is_some_and(|m| m.id == "wan-causal"));
    g.click("Smooth");
    g.h.get_by_role_and_label(Role::SpinButton, "Playback").set_value_accesskit(24.0);
    g.h.run_steps(2);
    drop(g);

    // The next launch loads wan-causal from that folder, with the view as it was left.
    let mut g = launch("spool-tiny");
    assert_eq!(g.app().settings().model, "wan-causal");
    assert_eq!(g.app().settings().weights.as_deref(), Some(wan.path()));
    assert!(g.app().settings().smooth);
    assert_eq!(g.app().settings().playback_fps, 24.0);
    g.until("wan-causal loads again", |a| a.session().model.as_ref().is_some_and(|m| m.id == "wan-causal"));
    drop(g);

    // A folder that has gone since: the load fails in place with the fix; the rest is kept.
    drop(wan);
    let mut g = launch("spool-tiny");
    g.until("the load error shows", |a| a.notices().has_errors());
    assert!(g.h.query_by_label_contains("load model wan-causal").is_some());
    assert!(g.app().settings().smooth);
    // A corrupt file is set aside with a warning; the app starts on the defaults.
    drop(g);
    std::fs::write(&prefs, "{ not json").unwrap();
    let mut g = launch("spool-tiny");
    g.until("spool-tiny loads", |a| a.session().model.as_ref().is_some_and(|m| m.id == "spool-tiny"));
    assert!(g.h.query_by_label_contains("saved preferences").is_some(), "the warning shows in place");
    assert!(prefs.with_extension("json.bad").exists());
}

/// A file dropped on the window.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn start_image_by_drag_and_drop() {
    let (mut g, _) = demo_gui(0);
    let path = g._dir.path().join("start.png");
    image::RgbImage::from_pixel(96, 48, image::Rgb([250, 20, 20])).save(&path).unwrap();
    g.h.input_mut().dropped_files.push(Arc::new(Dropped(path)));
    g.until("the image loads", App::has_start_image);
    assert!(g.h.query_by_label_contains("start.png").is_some());
    g.app_mut().set_generate_frames(Some(2));
    g.click("Generate");
    g.until("two frames", |a| a.session().current_len() == 2 && a.session().state == EngineState::Idle);
    g.h.key_press(egui::Key::Home);
    g.h.run_steps(2);
    let px = frame_view_centre(&mut g);
    assert!(px[0] > 200 && px[1] < 80, "frame 0 is the start image: {px:?}");
}

#[test]
fn reopening_the_project_brings_back_takes_and_frames() {
    let (mut g, _) = demo_gui(0);
    g.app_mut().set_generate_frames(Some(6));
    g.type_prompt("a green square moving up on a white background");
    g.click("Generate");
    g.until("6 frames", |a| a.session().current_len() == 6 && a.session().state == EngineState::Idle);
    g.h.key_press(egui::Key::Home);
    g.h.run_steps(2);
    g.click("Branch from frame 0");
    g.click("Extend");
    g.until("the branch has 33 frames", |a| a.session().current_len() == 33 && a.session().state == EngineState::Idle);
    let before: Vec<(u32, usize)> = g.app().session().takes.iter().map(|t| (t.info.id.0, t.frames.len())).collect();
    let Gui { h, _dir: dir } = g;
    drop(h); // closes the engine, which flushes the project

    let delay = Arc::new(AtomicU64::new(0));
    let mut g = gui_in(dir, demo::factory(64, delay), options("spool-tiny"), egui::vec2(1024.0, 700.0), 1.0);
    g.until("the project's takes are back", |a| a.session().takes.len() == 2);
    let after: Vec<(u32, usize)> = g.app().session().takes.iter().map(|t| (t.info.id.0, t.frames.len())).collect();
    assert_eq!(after, before, "every take comes back with all its frames");
    assert_eq!(g.app().session().current, Some(TakeId(1)));
    g.h.key_press(egui::Key::Home);
    g.h.run_steps(2);
    let px = frame_view_centre(&mut g);
    assert!(px[0] > 200 && px[1] > 200 && px[2] > 200, "frame 0 is read back from disk: {px:?}");
}

#[test]
fn idle_app_does_not_repaint() {
    let (mut g, _) = demo_gui(0);
    // With the model loaded and nothing running, the UI settles: no busy polling.
    g.h.try_run().expect("an idle app stops asking for repaints");
}

// ---- layout: no clipped or overlapping widgets ---------------------------------------------------

/// Widgets and text the layout check looks at.
fn laid_out(role: Role) -> bool {
    matches!(
        role,
        Role::Label
            | Role::Button
            | Role::CheckBox
            | Role::TextInput
            | Role::MultilineTextInput
            | Role::Slider
            | Role::SpinButton
            | Role::ComboBox
            | Role::Switch
            | Role::RadioButton
            | Role::Link
    )
}

/// Every visible widget and text lies inside the window (or its scroll area) and none overlaps
/// another.
fn assert_clean_layout(g: &Gui, size: egui::Vec2) {
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, size).expand(0.5);
    // (name, rect, the panel it is in)
    let mut widgets = Vec::new();
    for node in g.h.root().children_recursive() {
        let ak = node.accesskit_node();
        if !laid_out(ak.role()) || ak.is_hidden() || ak.bounding_box().is_none() {
            continue;
        }
        let pane = std::iter::successors(ak.parent(), |p| p.parent()).find(|p| p.role() == Role::Pane).map(|p| p.id());
        widgets.push((
            format!("{:?} {:?}", ak.role(), ak.label().or_else(|| ak.value()).unwrap_or_default()),
            node.rect(),
            pane,
        ));
    }
    // Widgets inside a scroll area may be scrolled partly or wholly out of view: they are clipped on
    // purpose, so only their visible part counts. AccessKit carries no clip rects, so the app reports
    // its scroll viewports, and a panel holding a widget inside a viewport is that viewport's panel.
    let viewports = g.app().scroll_viewports();
    let viewport_of = |pane| {
        viewports.iter().copied().find(|v| {
            widgets
                .iter()
                .any(|(_, r, p): &(String, egui::Rect, _)| *p == pane && pane.is_some() && v.contains(r.center()))
        })
    };
    let mut rects: Vec<(String, egui::Rect)> = Vec::new();
    for (name, r, pane) in &widgets {
        let r = match viewport_of(*pane) {
            Some(v) => r.intersect(v),
            None => *r,
        };
        if !r.is_positive() {
            continue;
        }
        assert!(window.contains_rect(r), "{name} at {r:?} is outside the {size:?} window");
        rects.push((name.clone(), r));
    }
    assert!(rects.len() > 20, "the walk found the widgets ({})", rects.len());
    for (i, (a, ra)) in rects.iter().enumerate() {
        for (b, rb) in &rects[i + 1..] {
            let overlap = ra.intersect(*rb);
            assert!(!(overlap.width() > 1.0 && overlap.height() > 1.0), "{a} at {ra:?} overlaps {b} at {rb:?}");
        }
    }
}

#[test]
fn layout_1024x700_first_run() {
    let (mut g, _) = demo_gui(0);
    g.h.run_steps(3);
    assert_clean_layout(&g, egui::vec2(1024.0, 700.0));
    g.h.check_accessibility();
    g.snapshot("first_run_1024x700");
}

#[test]
fn layout_1024x700_after_generating() {
    let (mut g, _) = demo_gui(0);
    g.app_mut().set_generate_frames(Some(24));
    g.type_prompt("a yellow star spinning on a starfield");
    g.click("Generate");
    g.until("24 frames", |a| a.session().current_len() == 24 && a.session().state == EngineState::Idle);
    g.click("+ Segment");
    assert_clean_layout(&g, egui::vec2(1024.0, 700.0));
    g.snapshot("generated_1024x700");
}

/// Generating and paused, mid-take: a slow stand-in model (one frame per 500 ms) makes both states
/// hold long enough to check and snapshot, at a frame count that does not depend on timing.
#[test]
fn layout_1024x700_generating_and_paused() {
    let (mut g, delay) = demo_gui(0);
    delay.store(500, Ordering::SeqCst);
    g.app_mut().set_generate_frames(None);
    g.type_prompt("a red heart bouncing on a sunset gradient");
    g.click("Generate");
    g.until("4 frames", |a| a.session().current_len() == 4);
    assert_eq!(g.app().session().state, EngineState::Generating);
    assert_clean_layout(&g, egui::vec2(1024.0, 700.0));
    g.snapshot("generating_1024x700");
    assert_eq!(g.app().session().current_len(), 4, "the snapshot shows four frames");
    g.click("Pause");
    g.until("paused", |a| a.session().state == EngineState::Paused);
    assert_eq!(g.app().session().current_len(), 5, "the frame in progress finished");
    assert_clean_layout(&g, egui::vec2(1024.0, 700.0));
    g.snapshot("paused_1024x700");
    delay.store(0, Ordering::SeqCst);
    g.click("Stop");
    g.until("stopped", Gui::idle_app);
}

/// kittest's render state with a renderer for another target format.
fn render_state_for(format: wgpu::TextureFormat) -> egui_wgpu::RenderState {
    let options = egui_wgpu::RendererOptions::PREDICTABLE;
    let plain = egui_kittest::wgpu::create_render_state(egui_kittest::wgpu::default_wgpu_setup(), options);
    let renderer = egui_wgpu::Renderer::new(&plain.device, format, options);
    egui_wgpu::RenderState { target_format: format, renderer: Arc::new(egui::mutex::RwLock::new(renderer)), ..plain }
}

/// The window's own shaders (the widgets' `ui_mesh.wgsl`, the frame view's) decode colours before an
/// sRGB target encodes them, so the window looks the same on one as on the plain target.
#[test]
fn an_srgb_render_target_shows_the_same_window() {
    let render = |target| {
        let delay = Arc::new(AtomicU64::new(0));
        let size = egui::vec2(1024.0, 700.0);
        let mut g =
            gui_on(tempfile::tempdir().unwrap(), demo::factory(64, delay), options("spool-tiny"), size, 1.0, target);
        g.app_mut().set_generate_frames(Some(8));
        g.click("Generate");
        g.until("8 frames", |a| a.session().current_len() == 8 && a.session().state == EngineState::Idle);
        g.h.remove_cursor();
        g.h.run_steps(3);
        let before = g.app().render_counters().ui_meshes();
        let img = g.h.render().unwrap();
        assert!(g.app().render_counters().ui_meshes() > before, "the widgets are drawn through ui_mesh.wgsl");
        (img, g.app().hud_rect(), g.h.get_by_label("Frame view").rect())
    };
    let (plain, hud, view) = render(None);
    let (srgb, _, _) = render(Some(wgpu::TextureFormat::Rgba8UnormSrgb));
    let diff = |x: u32, y: u32| {
        let (a, b) = (plain.get_pixel(x, y).0, srgb.get_pixel(x, y).0);
        (0..3).map(|c| a[c].abs_diff(b[c])).max().unwrap()
    };
    // Opaque colour comes out the same: the picture, its letterbox, the panels' backdrop (the bottom of
    // the controls panel, left of the view, holds nothing).
    let panel = egui::pos2(view.min.x - 150.0, view.max.y - 8.0);
    for (what, p) in [("picture", view.center()), ("letterbox", view.min + egui::vec2(4.0, 4.0)), ("panel", panel)] {
        assert!(diff(p.x as u32, p.y as u32) <= 1, "the {what} differs at {p:?}");
    }
    // Translucent fills and anti-aliased edges blend in linear light on an sRGB target, so they
    // differ (egui's own shader gives the same); colour not decoded would be off nearly everywhere.
    // The readout shows timings: left out.
    let (mut off, mut total) = (0u32, 0u32);
    for (x, y, _) in plain.enumerate_pixels() {
        if !hud.contains(egui::pos2(x as f32, y as f32)) {
            total += 1;
            off += u32::from(diff(x, y) > 2);
        }
    }
    let share = f64::from(off) / f64::from(total);
    eprintln!("pixels more than 2 levels off on an sRGB target: {off} of {total} ({share:.4})");
    assert!(share < 0.15, "{off} of {total} pixels differ by more than 2 levels");
}

/// The overlay's painter drawing the picture alone (`Parts::Picture`) over its earlier full draw
/// leaves exactly what a full draw of the new frame would: the letterbox stays, and the rect it
/// reports is the picture's.
#[test]
fn painting_the_picture_alone_matches_a_full_paint() {
    use spool::render::{Parts, ShownFrame, Target, TargetPainter, ViewOptions};
    let rs = render_state_for(wgpu::TextureFormat::Bgra8Unorm);
    let (device, queue) = (&rs.device, &rs.queue);
    let counters = Arc::new(spool::render::RenderCounters::default());
    let target = Target { adapter: &rs.adapter, device, format: wgpu::TextureFormat::Bgra8Unorm };
    let mut painter = TargetPainter::new(target, queue.clone(), counters);
    let size = [300u32, 200];
    let texture = || {
        device.create_texture(&wgpu::TextureDescriptor {
            label: None,
            size: wgpu::Extent3d { width: size[0], height: size[1], depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Bgra8Unorm,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        })
    };
    let read = |t: &wgpu::Texture| -> Vec<u8> {
        let row = size[0] * 4; // 1200: not a multiple of 256, so padded rows
        let padded = row.next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: u64::from(padded * size[1]),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&Default::default());
        encoder.copy_texture_to_buffer(
            t.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(padded), rows_per_image: None },
            },
            wgpu::Extent3d { width: size[0], height: size[1], depth_or_array_layers: 1 },
        );
        queue.submit([encoder.finish()]);
        buffer.slice(..).map_async(wgpu::MapMode::Read, |r| r.unwrap());
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        let data = buffer.slice(..).get_mapped_range().unwrap();
        data.chunks(padded as usize).flat_map(|r| r[..row as usize].to_vec()).collect()
    };
    let frame = |key: u64, rgb: [u8; 3]| {
        let px: Vec<u8> = (0..64 * 64).flat_map(|i| if i % 7 == 0 { [255, 255, 255] } else { rgb }).collect();
        ShownFrame { key, frame: Arc::new(spool::model::Frame::from_rgb8(64, 64, &px)) }
    };
    let options = ViewOptions { checker: true, ..ViewOptions::default() };
    let (a, b) = (frame(1, [200, 30, 30]), frame(2, [30, 30, 200]));

    let partial = texture();
    let view = partial.create_view(&Default::default());
    let whole = painter.paint(&view, size, 1.0, Some(&a), options, Parts::All);
    let picture = painter.paint(&view, size, 1.0, Some(&b), options, Parts::Picture);
    assert_eq!(picture, Some([50, 0, 200, 200]), "the square picture centred in 300×200");
    assert_eq!(whole, picture);
    let full = texture();
    painter.paint(&full.create_view(&Default::default()), size, 1.0, Some(&b), options, Parts::All);
    let (got, want) = (read(&partial), read(&full));
    assert!(got == want, "the picture drawn alone over the full draw equals a full draw");
    // And the picture did change: frame b is blue where a was red.
    let centre = ((100 * size[0] + 150) * 4) as usize;
    assert!(got[centre] > 150 && got[centre + 2] < 80, "blue in BGRA: {:?}", &got[centre..centre + 4]);
}

#[test]
fn layout_4k_at_2x() {
    let delay = Arc::new(AtomicU64::new(0));
    let mut g = gui_with(demo::factory(128, delay), options("spool-tiny"), egui::vec2(1920.0, 1080.0), 2.0);
    g.app_mut().set_generate_frames(Some(16));
    g.click("Generate");
    g.until("16 frames", |a| a.session().current_len() == 16 && a.session().state == EngineState::Idle);
    assert_clean_layout(&g, egui::vec2(1920.0, 1080.0));
    let img = g.h.render().unwrap();
    assert_eq!((img.width(), img.height()), (3840, 2160), "3840×2160 pixels at 2×");
    g.snapshot("generated_3840x2160_2x");
}

#[test]
fn export_the_current_take_off_the_ui_thread() {
    let (mut g, _) = demo_gui(0);
    g.app_mut().set_generate_frames(Some(8));
    g.click("Generate");
    g.until("8 frames", |a| a.session().current_len() == 8 && a.session().state == EngineState::Idle);
    let out = g._dir.path().join("clip.gif");
    g.app_mut().export_to(out.clone());
    g.until("the export finishes", |a| !a.exporting());
    let n = &g.app().notices().items()[0];
    assert!(n.text.contains("exported 8 frames"), "{n:?}");
    let gif = std::fs::read(&out).unwrap();
    assert_eq!(&gif[..6], b"GIF89a");
}

/// The Guidance setting is offered only by models that have guidance, starts at the model's
/// default, and what it is set to goes with the take to the model.
#[test]
fn guidance_setting_is_offered_by_models_with_guidance_and_goes_with_the_take() {
    let (g, _) = demo_gui(0);
    assert!(g.h.query_by_role_and_label(Role::SpinButton, "Guidance").is_none(), "the demo model has no guidance");
    drop(g);

    let log = Arc::new(Mutex::new(common::Log::default()));
    let control = Arc::new(common::Control { fail_at: AtomicU64::new(u64::MAX), ..Default::default() });
    let factory = common::factory(1, log.clone(), control);
    let mut g = gui_with(factory, options("guided"), egui::vec2(1024.0, 700.0), 1.0);
    assert_eq!(g.app().settings().guidance, None, "the model's default");
    let value = |g: &Gui| g.h.get_by_role_and_label(Role::SpinButton, "Guidance").accesskit_node().numeric_value();
    assert_eq!(value(&g), Some(f64::from(common::GUIDED_DEFAULT)));
    // Its "Default" box is the second (Steps has the first).
    g.h.get_all_by_label("Default").nth(1).expect("a Default box for guidance").click_accesskit();
    g.h.run_steps(2);
    assert_eq!(g.app().settings().guidance, Some(common::GUIDED_DEFAULT));
    g.h.get_by_role_and_label(Role::SpinButton, "Guidance").set_value_accesskit(3.5);
    g.h.run_steps(2);
    assert_eq!(g.app().settings().guidance, Some(3.5));
    g.h.get_by_role_and_label(Role::SpinButton, "Guidance").set_value_accesskit(40.0);
    g.h.run_steps(2);
    assert_eq!(g.app().settings().guidance, Some(10.0), "kept in range");
    g.h.get_by_role_and_label(Role::SpinButton, "Guidance").set_value_accesskit(3.5);
    g.h.run_steps(2);

    g.app_mut().set_generate_frames(Some(2));
    g.click("Generate");
    g.until("two frames", |a| a.session().current_len() == 2 && a.session().state == EngineState::Idle);
    assert_eq!(g.app().session().takes[0].info.settings.guidance, Some(3.5));
    assert_eq!(log.lock().unwrap().guidance, vec![3.5, 3.5]);
}

/// The switch redraw and keyframes are offered by models that can redraw, on by default, and what
/// they are set to goes with each new take.
#[test]
fn redraw_settings_are_offered_by_models_that_redraw_and_go_with_the_take() {
    let (g, _) = demo_gui(0);
    assert!(g.h.query_by_label("Redraw").is_none(), "the demo model has no redraw");
    drop(g);

    let (log, control) = (Arc::new(Mutex::new(common::Log::default())), Arc::new(common::Control::default()));
    control.fail_at.store(u64::MAX, Ordering::SeqCst);
    let mut g = gui_with(common::factory(1, log, control), options("guided"), egui::vec2(1024.0, 700.0), 1.0);
    assert_eq!(g.app().settings().switch_redraw, Some(SwitchAnchor::default()), "on by default");
    assert_eq!(g.app().settings().keyframes, Some(Keyframes::default()), "on by default");
    g.app_mut().set_generate_frames(Some(2));
    // The first "Redraw" box is the switches', the second the keyframes'. Each click flips one.
    let (on, keys) = (Some(SwitchAnchor::default()), Some(Keyframes::default()));
    for (take, which, want) in [(0, 0, (None, keys)), (1, 0, (on, keys)), (2, 1, (on, None))] {
        g.h.get_all_by_label("Redraw").nth(which).expect("a Redraw box").click_accesskit();
        g.h.run_steps(2);
        g.click("Generate");
        g.until("a take of two frames", |a| {
            a.session().takes.len() == take + 1 && a.session().current_len() == 2 && Gui::idle_app(a)
        });
        let s = &g.app().session().takes[take].info.settings;
        assert_eq!((s.switch_anchor, s.keyframes), want, "take {take}");
    }
}

// ---- projects: recent list, save as ---------------------------------------------------------------

/// The demo model's app in `dir/project`, able to open and save other projects (each in a new
/// engine, as the real app does), keeping its recent-projects list in `dir/data/recent.json`.
fn project_gui(dir: tempfile::TempDir, project: &str) -> Gui {
    let store = dir.path().join(project);
    let opts = AppOptions { recent_file: Some(dir.path().join("data/recent.json")), ..options("spool-tiny") };
    let h = Harness::builder().with_size(egui::vec2(1024.0, 700.0)).wgpu().build_eframe(move |cc| {
        let ctx = cc.egui_ctx.clone();
        let opener: spool::ui::EngineOpener = Box::new(move |dir: &std::path::Path| {
            let factory = demo::factory(64, Arc::new(AtomicU64::new(0)));
            Engine::spawn(EngineConfig::new(dir.to_path_buf()), factory, Some(spool::ui::waker(&ctx)))
                .map_err(|e| e.to_string())
        });
        let engine = opener(&store).unwrap();
        Window(App::new(cc, engine, opts).with_opener(opener))
    });
    let mut g = Gui { h, _dir: dir };
    g.until("the model loads", |a| a.session().model.is_some());
    g
}

impl Gui {
    fn generate(&mut self, frames: u32) {
        let before = self.app().session().takes.len();
        self.app_mut().set_generate_frames(Some(frames));
        self.click("Generate");
        self.until("the take is made", |a| {
            a.session().takes.len() == before + 1 && a.session().current_len() == u64::from(frames) && Gui::idle_app(a)
        });
    }

    fn restart_in(self, project: &str) -> Gui {
        let Gui { h, _dir: dir } = self;
        drop(h); // closes the engine, which flushes the project
        project_gui(dir, project)
    }

    fn recent_names(&self) -> Vec<String> {
        self.app().recent_projects().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect()
    }
}

#[test]
fn recent_projects_survive_a_restart_and_open_from_the_menu() {
    let mut g = project_gui(tempfile::tempdir().unwrap(), "a.spool");
    g.generate(3);
    let g = g.restart_in("gone.spool");
    let gone = g.app().project_dir().to_path_buf();
    let mut g = g.restart_in("b.spool");
    std::fs::remove_dir_all(&gone).unwrap();
    assert_eq!(g.recent_names(), ["b.spool", "gone.spool", "a.spool"], "newest first, kept across restarts");

    // The menu lists the other projects; one whose folder is gone is there but greyed out.
    g.click("Recent");
    assert!(g.h.get_by_label("gone.spool").accesskit_node().is_disabled(), "a missing project is greyed");
    assert!(!g.h.get_by_label("a.spool").accesskit_node().is_disabled());
    assert!(g.h.query_by_label("b.spool").is_none(), "the open project is not offered");
    g.h.get_by_label("a.spool").click();
    g.until("project a is open with its take", |a| a.session().takes.len() == 1 && a.session().current_len() == 3);
    assert!(g.app().project_dir().ends_with("a.spool"));
    assert_eq!(g.recent_names()[0], "a.spool", "opening puts it first");
    let file = g._dir.path().join("data/recent.json");
    let on_disk = std::fs::read_to_string(&file).unwrap();
    assert!(on_disk.find("a.spool").unwrap() < on_disk.find("b.spool").unwrap(), "{on_disk}");
}

#[test]
fn a_corrupt_recent_list_is_set_aside_with_a_warning_and_the_app_works() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/recent.json"), "[ this is not json").unwrap();
    let mut g = project_gui(dir, "p.spool");
    let n = &g.app().notices().items()[0];
    assert_eq!(n.level, spool::ui::Level::Warning);
    assert!(n.text.contains("recent-projects list") && n.text.contains("could not be read"), "{n:?}");
    assert_eq!(g.recent_names(), ["p.spool"], "the list starts afresh with the open project");
    let bad = std::fs::read_to_string(g._dir.path().join("data/recent.json.bad")).unwrap();
    assert_eq!(bad, "[ this is not json", "the bad file is kept, not lost");
    g.generate(2);
}

#[test]
fn save_as_switches_to_a_copy_with_the_same_takes() {
    let mut g = project_gui(tempfile::tempdir().unwrap(), "orig.spool");
    g.generate(6);
    g.h.key_press(egui::Key::Home);
    g.h.run_steps(2);
    g.click("Branch from frame 0");
    g.click("Extend");
    g.until("the branch has 33 frames", |a| a.session().current_len() == 33 && Gui::idle_app(a));
    let before: Vec<(u32, usize)> = g.app().session().takes.iter().map(|t| (t.info.id.0, t.frames.len())).collect();

    // Refused while generating (an extension, a third take), with the reason; nothing is copied.
    g.app_mut().set_extend_frames(10_000);
    g.click("Extend");
    g.until("generating", |a| a.session().busy());
    assert!(g.h.get_by_label("Save as…").accesskit_node().is_disabled());
    let copy = g._dir.path().join("copy");
    g.app_mut().save_as(copy.clone());
    assert!(!g.app().saving_as());
    assert!(g.app().notices().items().iter().any(|n| n.text == "generation is running"), "{:?}", g.app().notices());
    g.click("Stop");
    g.until("stopped", Gui::idle_app);
    let before_copy: Vec<(u32, usize)> =
        g.app().session().takes.iter().map(|t| (t.info.id.0, t.frames.len())).collect();
    assert_eq!(before_copy[0], before[0]);

    // A name that is a file is refused in place; the original stays open.
    let file = g._dir.path().join("taken.spool");
    std::fs::write(&file, "not a project").unwrap();
    g.app_mut().save_as(file.clone());
    g.until("the refusal shows", |a| !a.saving_as() && a.notices().has_errors());
    assert!(g.h.query_by_label_contains("not a Spool project").is_some(), "the reason shows in place");
    assert!(g.app().project_dir().ends_with("orig.spool"));

    // Saved as "copy": ".spool" is added, the app switches to the copy, and the takes are the same.
    g.app_mut().save_as(copy);
    g.until("the copy is open with its takes", |a| {
        a.project_dir().ends_with("copy.spool") && a.session().takes.len() == 3 && a.session().model.is_some()
    });
    let after: Vec<(u32, usize)> = g.app().session().takes.iter().map(|t| (t.info.id.0, t.frames.len())).collect();
    assert_eq!(after, before_copy);
    assert!(g.h.query_by_label_contains("Saved the project as").is_some(), "the switch is told in place");
    assert_eq!(g.recent_names()[..2], ["copy.spool", "orig.spool"]);
    let names: Vec<String> =
        std::fs::read_dir(g._dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(!names.iter().any(|n| n.contains("partial")), "{names:?}");
    // The copy works: it extends.
    g.app_mut().set_extend_frames(2);
    g.click("Extend");
    g.until("extended", |a| a.session().current_len() == before_copy[2].1 as u64 + 2 && Gui::idle_app(a));
}

#[test]
fn export_dialog_writes_the_chosen_take_and_frame_range() {
    let (mut g, _) = demo_gui(0);
    g.app_mut().set_generate_frames(Some(8));
    g.click("Generate");
    g.until("8 frames", |a| a.session().current_len() == 8 && Gui::idle_app(a));
    g.h.key_press(egui::Key::Home);
    g.h.run_steps(2);
    g.click("Branch from frame 0");
    g.until("take 2 is current", |a| a.session().current == Some(TakeId(1)));
    g.click("×1"); // export at the frames' own size, so the PNGs compare exactly
    let wanted: Vec<spool::store::FrameId> = g.app().session().takes[0].frames[2..7].to_vec();

    g.click("Export…");
    g.h.get_by_role_and_label(Role::ComboBox, "Take").click();
    g.h.run_steps(2);
    g.h.get_by_label("Take 1 (8 frames)").click();
    g.h.run_steps(2);
    g.h.get_by_label("Frames").focus();
    g.h.get_by_label("Frames").type_text("5..40");
    g.h.run_steps(2);
    assert!(g.h.query_by_label_contains("outside the take, which has frames 0..8").is_some(), "checked as typed");
    assert!(g.h.get_by_label("Export to file…").accesskit_node().is_disabled());
    g.snapshot("export_dialog_1024x700");
    g.h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    g.h.get_by_label("Frames").type_text("2..7");
    g.h.run_steps(2);
    assert!(g.h.query_by_label_contains("5 frames,").is_some());
    assert!(!g.h.get_by_label("Export to file…").accesskit_node().is_disabled());

    // The file dialog's answer: a PNG folder.
    let out = g._dir.path().join("range/");
    g.app_mut().export_to(out.clone());
    g.until("the export finishes", |a| !a.exporting());
    assert!(g.h.query_by_label("Export to file…").is_none(), "the dialog closed");
    let n = &g.app().notices().items()[0];
    assert!(n.text.contains("exported 5 frames"), "{n:?}");
    let mut files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    files.sort();
    assert_eq!(files, (0..5).map(spool::export::frame_file_name).collect::<Vec<_>>(), "exactly frames 2..7");

    // They are take 1's frames 2..7, in order.
    let Gui { h, _dir: dir } = g;
    drop(h);
    let (_project, _, store, _) = spool::project::Project::open_existing(&dir.path().join("project"), 8).unwrap();
    for (i, id) in wanted.iter().enumerate() {
        let png = image::open(out.join(spool::export::frame_file_name(i))).unwrap().to_rgb8();
        assert!(png.as_raw() == &store.frame(*id).unwrap().to_rgb8(), "exported frame {i} is take 1's frame {}", i + 2);
    }
}
