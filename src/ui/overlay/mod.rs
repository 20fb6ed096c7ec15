//! The video overlay: the frame view drawn in a window of its own over the app's frame view, by a
//! thread of its own, the moment each frame is decoded.
//!
//! Why: in the app's window a new frame waits for a whole UI pass (layout, tessellation, a raster
//! of the whole window and its present: tens of milliseconds under a software renderer) before it
//! reaches the screen. The overlay's thread takes frames straight from the engine
//! ([`Command::TapFrames`](crate::engine::Command::TapFrames)) and presents a surface the size of
//! the view only, with the frame view's own shaders ([`TargetPainter`]). BENCHMARKS.md, "The video
//! overlay", has the figures.
//!
//! The app decides in every pass where the overlay goes and whether it shows: only while a frame is
//! shown and nothing egui draws lies over the view (menus, tooltips, dialogs, notices); the app
//! does not paint its own frame view under it. In live mode the thread follows the take being made
//! by itself; otherwise it draws the frame the app hands it, so scrubbing and playback look the
//! same. The overlay is an X11 child window (`x11.rs`) or a Wayland subsurface (`wayland.rs`);
//! elsewhere there is none and the app's own frame view does everything, as it does whenever the
//! overlay is hidden.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use egui_wgpu::wgpu;
use raw_window_handle::{RawDisplayHandle, RawWindowHandle};

use super::screen_watch::{Damage, Presentation, Watch};
use crate::engine::{FrameEvent, TakeId};
use crate::render::{RenderCounters, ShownFrame, Target, TargetPainter, ViewOptions};

mod output;
mod wayland;
mod x11;

use output::{Job, NotDrawn, Output, SharedOut, SurfaceOut};

/// A frame's place: its take and its position in the take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub take: TakeId,
    pub index: u64,
}

/// What the app wants the overlay to show in this pass.
#[derive(Clone)]
pub struct Wanted {
    /// The frame view in the window's physical pixels: x, y, width, height.
    pub rect_px: [i32; 4],
    pub pixels_per_point: f32,
    pub options: ViewOptions,
    /// The frame the app's view shows now.
    pub at: At,
    pub frame: ShownFrame,
    /// Live mode: frames of this take are shown as the engine makes them.
    pub follow: Option<TakeId>,
}

/// Everything of a [`Wanted`] but the frame's pixels (which `at` names).
type WantedKey = ([i32; 4], f32, ViewOptions, At, Option<TakeId>);

impl Wanted {
    fn key(&self) -> WantedKey {
        (self.rect_px, self.pixels_per_point, self.options, self.at, self.follow)
    }
}

/// The frame view's rect in a window's physical pixels, rounded as egui rounds a paint callback's
/// viewport, so the overlay covers exactly what the app's view would paint.
pub fn rect_px(rect: egui::Rect, pixels_per_point: f32) -> [i32; 4] {
    let px = |v: f32| (v * pixels_per_point).round() as i32;
    let (x, y) = (px(rect.min.x), px(rect.min.y));
    [x, y, px(rect.max.x) - x, px(rect.max.y) - y]
}

/// Whether anything egui draws above the panels (a menu, popup, tooltip or window) covers part of
/// `rect`.
pub fn covered(ctx: &egui::Context, rect: egui::Rect) -> bool {
    ctx.memory(|m| {
        m.areas().visible_layer_ids().into_iter().any(|layer| {
            layer.order != egui::Order::Background && m.area_rect(layer.id).is_some_and(|r| r.intersects(rect))
        })
    })
}

enum Msg {
    Show(Wanted),
    Hide,
}

/// A frame's time from its decode, as the overlay's thread measured it.
#[derive(Debug, Clone, Copy)]
pub enum Lag {
    /// Its picture was handed to the display system (the present returned): the app's part.
    Handed(Duration),
    /// The display system reports it shown.
    Shown(Duration),
}

/// The overlay, as the app holds it: its window and the thread that draws into it.
pub struct Overlay {
    /// Closed first on drop: the thread ends and drops its surface before the window goes.
    msgs: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    tap: Sender<FrameEvent>,
    lags: Receiver<Lag>,
    /// Set by the thread when its surface cannot be drawn to any more.
    failed: Arc<AtomicBool>,
    /// What was last sent, so an unchanged pass sends nothing.
    last: Option<WantedKey>,
    window: Window,
    /// Set while it shows the frames of the take being made ([`paces`]).
    pacing: Arc<AtomicBool>,
}

/// While the overlay shows the frames of the take being made, the window's pass for an engine event
/// waits for the overlay to present the new frame (the thread asks for the pass then), or this long
/// at most. Under a software renderer both draw on the same cores (the rasterizer's threads, the
/// display server), and a window's pass — tens of milliseconds there — that the new frame meets
/// holds it up by as much (BENCHMARKS.md, "The video overlay, paced").
pub const PRESENT_FIRST: Duration = Duration::from_millis(33);

/// Whether the window's passes for engine events now wait for the overlay ([`PRESENT_FIRST`]). The
/// flag lives in `ctx`'s data: the engine's waker is made before the app and its overlay.
pub fn paces(ctx: &egui::Context) -> bool {
    pacing(ctx).load(Ordering::Relaxed)
}

/// The flag behind [`paces`] (made on first use).
fn pacing(ctx: &egui::Context) -> Arc<AtomicBool> {
    ctx.data_mut(|d| d.get_temp_mut_or_default::<Arc<AtomicBool>>(egui::Id::unique("spool-overlay-pacing")).clone())
}

/// The overlay's own piece of the display: an X11 child window or a Wayland subsurface.
enum Window {
    X11(x11::ChildWindow),
    /// Boxed: its proxies are many times the child window's size.
    Wayland(Box<wayland::Subsurface>),
}

impl Window {
    /// Shows it at `[x, y, width, height]` in the app window's physical pixels (`ppp` per point), or
    /// hides it, before the app's next present.
    fn set(&mut self, at: Option<([i32; 4], f32)>) {
        match self {
            Window::X11(w) => w.set(at.map(|(rect, _)| rect)),
            Window::Wayland(w) => w.set(at),
        }
    }
}

impl Overlay {
    /// An overlay over the app's window, where the display system allows one (X11) and
    /// `SPOOL_OVERLAY` is not `0`; the view's draws and uploads count into `counters`.
    ///
    /// # Safety
    /// The handles must be those of the app's live window, which outlives the returned value.
    pub unsafe fn start(
        ctx: &egui::Context,
        rs: &egui_wgpu::RenderState,
        display: RawDisplayHandle,
        parent: RawWindowHandle,
        counters: Arc<RenderCounters>,
    ) -> Option<Self> {
        if std::env::var("SPOOL_OVERLAY").is_ok_and(|v| v == "0") {
            return None;
        }
        let (exposed_tx, exposed) = crossbeam_channel::bounded(1);
        let (window, child): (Window, RawWindowHandle) = match (display, parent) {
            (RawDisplayHandle::Wayland(d), RawWindowHandle::Wayland(w)) => {
                // SAFETY: the caller's guarantee.
                let sub = unsafe { wayland::Subsurface::create(d.display, w.surface) }
                    .map_err(|e| tracing::info!("no video overlay: {e}"))
                    .ok()?;
                let child = RawWindowHandle::Wayland(raw_window_handle::WaylandWindowHandle::new(sub.surface()));
                // A compositor keeps a surface's pixels: nothing is ever exposed.
                drop(exposed_tx);
                (Window::Wayland(Box::new(sub)), child)
            }
            (_, RawWindowHandle::Xlib(_) | RawWindowHandle::Xcb(_)) => {
                let parent = match parent {
                    RawWindowHandle::Xlib(h) => u32::try_from(h.window).ok()?,
                    RawWindowHandle::Xcb(h) => h.window.get(),
                    _ => return None,
                };
                let [r, g, b, _] = super::theme::VIEW_BG.to_array();
                let background = u32::from_be_bytes([0, r, g, b]);
                let window = x11::ChildWindow::create(parent, background, move || {
                    let _ = exposed_tx.try_send(());
                })
                .map_err(|e| tracing::info!("no video overlay: {e}"))
                .ok()?;
                let child = match display {
                    RawDisplayHandle::Xcb(_) => RawWindowHandle::Xcb(raw_window_handle::XcbWindowHandle::new(
                        std::num::NonZeroU32::new(window.id())?,
                    )),
                    _ => RawWindowHandle::Xlib(raw_window_handle::XlibWindowHandle::new(window.id().into())),
                };
                (Window::X11(window), child)
            }
            _ => return None,
        };
        let watch: Option<Box<dyn Watch + Send>> = match (&window, child) {
            (Window::X11(w), _) => Damage::start(w.id()).map(|d| Box::new(d) as _),
            (Window::Wayland(_), RawWindowHandle::Wayland(w)) => match display {
                // SAFETY: the display is the app's (the caller's guarantee); the surface is ours and
                // outlives the watch, which the presenter thread drops before `window` goes.
                RawDisplayHandle::Wayland(d) => {
                    unsafe { Presentation::start(d.display, w.surface) }.map(|p| Box::new(p) as _)
                }
                _ => None,
            },
            _ => None,
        };
        let output = match Self::shared(&window, &rs.adapter) {
            Some(image) => Output::Shared(SharedOut { image, sized: None }),
            // SAFETY: the caller's guarantee.
            None => Output::Surface(unsafe { Self::surface(rs, display, child, &window) }?),
        };
        // A device of its own: wgpu fails a surface configure when another thread submits on the
        // device meanwhile, and egui's pass after the window's failed configure draws for the new
        // size on the old surface (a validation error, fatal). On its own device nothing of the
        // overlay's ever meets the window's.
        // The window's device's features and limits: the adapter has them, and the painter needs them.
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("spool overlay"),
            required_features: rs.device.features(),
            required_limits: rs.device.limits(),
            ..Default::default()
        };
        let made = match ready(rs.adapter.request_device(&descriptor)) {
            Some(made) => made.map_err(|e| e.to_string()),
            None => Err("the device was not made at once".to_string()),
        };
        let (device, queue) = made.map_err(|e| tracing::info!("no video overlay: {e}")).ok()?;
        let failed = Arc::new(AtomicBool::new(false));
        // An error on the overlay's own device stops the overlay, not the app: the window's view
        // takes over.
        let stops = failed.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            tracing::warn!("the video overlay stops (wgpu: {e}); frames show in the window itself");
            stops.store(true, Ordering::Relaxed);
        }));
        let (msgs, msgs_rx) = crossbeam_channel::unbounded();
        // A few frames at most wait for the thread; it draws the newest.
        let (tap, frames) = crossbeam_channel::bounded(4);
        let (lags_tx, lags) = crossbeam_channel::unbounded();
        let pacing = pacing(ctx);
        let shared = matches!(output, Output::Shared(_));
        let target = Target { adapter: &rs.adapter, device: &device, format: output.format() };
        let presenter = Presenter {
            ctx: ctx.clone(),
            painter: TargetPainter::new(target, queue.clone(), counters),
            output,
            device,
            queue,
            wanted: None,
            shown: None,
            dirty: false,
            full: true,
            dims: None,
            drawn: None,
            watch,
            lags: lags_tx,
            failed: failed.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("video-overlay".into())
            .spawn(move || presenter.run(msgs_rx, frames, exposed))
            .ok()?;
        let via = if shared { "memory shared with the X server" } else { "its wgpu surface" };
        tracing::info!("video overlay on: frames go to the screen from a thread of their own, through {via}");
        Some(Overlay { msgs: Some(msgs), thread: Some(thread), tap, lags, failed, last: None, window, pacing })
    }

    /// Memory shared with the X server for the pictures, where that is the fast way: on X11 under
    /// a software rasterizer (`output.rs`), unless `SPOOL_OVERLAY_SHM=0`.
    fn shared(window: &Window, adapter: &wgpu::Adapter) -> Option<x11::SharedImage> {
        let Window::X11(w) = window else { return None };
        if adapter.get_info().device_type != wgpu::DeviceType::Cpu
            || std::env::var("SPOOL_OVERLAY_SHM").is_ok_and(|v| v == "0")
        {
            return None;
        }
        w.shared_image().map_err(|e| tracing::info!("the video overlay presents through wgpu: {e}")).ok()
    }

    /// A wgpu surface on the overlay's window `child`.
    ///
    /// # Safety
    /// As [`Overlay::start`]'s.
    unsafe fn surface(
        rs: &egui_wgpu::RenderState,
        display: RawDisplayHandle,
        child: RawWindowHandle,
        window: &Window,
    ) -> Option<SurfaceOut> {
        let target =
            wgpu::SurfaceTargetUnsafe::RawHandle { raw_display_handle: Some(display), raw_window_handle: child };
        // SAFETY: the display is the app's, which outlives the overlay (the caller's guarantee);
        // the window is ours and outlives the surface (the thread drops it before `window` goes).
        let surface = unsafe { rs.instance.create_surface_unsafe(target) }
            .map_err(|e| tracing::info!("no video overlay: {e}"))
            .ok()?;
        let caps = surface.get_capabilities(&rs.adapter);
        if !caps.formats.contains(&rs.target_format) {
            tracing::info!("no video overlay: its surface cannot take {:?}", rs.target_format);
            return None;
        }
        let present_mode = match window {
            // A compositor shows a surface's newest buffer at its next repaint, so waiting for its
            // frame callback (FIFO) buys nothing, and it would block: a compositor sends none while
            // the subsurface is hidden or not yet placed, and the wait holds the device's queue that
            // the window's own pass needs to place it.
            Window::Wayland(_) if caps.present_modes.contains(&wgpu::PresentMode::Mailbox) => {
                wgpu::PresentMode::Mailbox
            }
            Window::Wayland(_) => wgpu::PresentMode::AutoNoVsync,
            Window::X11(_) => super::present_mode(),
        };
        Some(SurfaceOut { surface, format: rs.target_format, present_mode, configured: None })
    }

    /// Where the engine sends its frames (`Command::TapFrames`).
    pub fn tap(&self) -> Sender<FrameEvent> {
        self.tap.clone()
    }

    /// Shows what the app wants this pass, or hides the overlay (`None`); true when the overlay
    /// shows the view, and the app must then not paint its own under it.
    pub fn update(&mut self, wanted: Option<Wanted>) -> bool {
        let failed = self.failed.load(Ordering::Relaxed);
        self.pacing.store(!failed && wanted.as_ref().is_some_and(|w| w.follow.is_some()), Ordering::Relaxed);
        if failed {
            self.last = None;
            self.window.set(None);
            return false;
        }
        let Some(msgs) = &self.msgs else { return false };
        match wanted {
            Some(w) => {
                if self.last != Some(w.key()) {
                    self.last = Some(w.key());
                    self.window.set(Some((w.rect_px, w.pixels_per_point)));
                    let _ = msgs.send(Msg::Show(w));
                }
                true
            }
            None => {
                if self.last.take().is_some() {
                    self.window.set(None);
                    let _ = msgs.send(Msg::Hide);
                }
                false
            }
        }
    }

    /// The times of the frames the overlay handed over or showed since the last call.
    pub fn lags(&self) -> impl Iterator<Item = Lag> + '_ {
        self.lags.try_iter()
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        self.pacing.store(false, Ordering::Relaxed);
        self.msgs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The value of a future that is ready at once (wgpu's native error scopes are).
fn ready<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Whether a frame at `new` replaces the one shown (`shown`). The engine's frames count only for
/// the followed take; the app's always do, except one older than the engine already brought of
/// the take being followed (the app's passes lag the engine).
fn replaces(shown: Option<At>, new: At, follow: Option<TakeId>, from_engine: bool) -> bool {
    if shown == Some(new) {
        return false;
    }
    let behind = shown.is_some_and(|s| s.take == new.take && s.index > new.index);
    let followed = follow == Some(new.take);
    if from_engine { followed && !behind } else { !(followed && behind) }
}

/// The overlay's thread: everything it draws with and what it has drawn.
struct Presenter {
    output: Output,
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// The app's, for the window's pass after each engine frame ([`PRESENT_FIRST`]).
    ctx: egui::Context,
    painter: TargetPainter,
    /// The app's latest wish; `None`: hidden.
    wanted: Option<Wanted>,
    /// The frame drawn (or to draw), and when it was decoded if the engine brought it.
    shown: Option<(At, ShownFrame, Option<Instant>)>,
    dirty: bool,
    /// The whole view must be drawn and shown next (not the picture alone): exposed, or its look
    /// changed.
    full: bool,
    /// The size of the frame last drawn (another size moves the letterbox).
    dims: Option<(u32, u32)>,
    /// When the last picture was presented.
    drawn: Option<Instant>,
    watch: Option<Box<dyn Watch + Send>>,
    lags: Sender<Lag>,
    failed: Arc<AtomicBool>,
}

/// How often the thread asks the screen watch, for a second after a draw (reports come within a
/// few milliseconds; the wait ends at the next message).
const REPORT_WAIT: Duration = Duration::from_millis(100);

/// How soon a draw that could not be made is tried again.
const RETRY: Duration = Duration::from_millis(5);

impl Presenter {
    fn run(mut self, msgs: Receiver<Msg>, frames: Receiver<FrameEvent>, exposed: Receiver<()>) {
        let mut exposed = exposed;
        loop {
            let wait = if self.dirty && self.wanted.is_some() {
                RETRY
            } else if self.watch.is_some() && self.drawn.is_some_and(|t| t.elapsed() < REPORT_WAIT * 10) {
                REPORT_WAIT
            } else {
                Duration::from_secs(3600)
            };
            let mut expose_gone = false;
            crossbeam_channel::select! {
                recv(msgs) -> m => match m {
                    Ok(m) => self.take_msg(m),
                    Err(_) => return,
                },
                recv(frames) -> e => if let Ok(e) = e { self.offer_engine(e) },
                recv(exposed) -> e => match e {
                    Ok(()) => (self.dirty, self.full) = (true, true),
                    Err(_) => expose_gone = true,
                },
                default(wait) => {}
            }
            if expose_gone {
                exposed = crossbeam_channel::never();
            }
            // Whatever else is waiting, then one draw.
            for m in msgs.try_iter() {
                self.take_msg(m);
            }
            for e in frames.try_iter() {
                self.offer_engine(e);
            }
            if exposed.try_iter().count() > 0 {
                (self.dirty, self.full) = (true, true);
            }
            if self.dirty && self.wanted.is_some() {
                self.draw();
            }
            if let Some(watch) = &mut self.watch {
                for lag in watch.shown() {
                    let _ = self.lags.send(Lag::Shown(lag));
                }
            }
        }
    }

    /// The overlay stops; the app's own frame view takes over (`Overlay::update`).
    fn fail(&mut self, why: &dyn std::fmt::Display) {
        tracing::warn!("the video overlay stops ({why}); frames show in the window itself");
        self.failed.store(true, Ordering::Relaxed);
        self.wanted = None;
    }

    fn take_msg(&mut self, m: Msg) {
        match m {
            Msg::Show(w) => {
                if replaces(self.shown.as_ref().map(|s| s.0), w.at, w.follow, false) {
                    self.shown = Some((w.at, w.frame.clone(), None));
                    self.dirty = true;
                }
                // Shown again, moved, resized or drawn otherwise: a new picture. The app's pass
                // that catches up with a frame already drawn asks for nothing.
                let look = |w: &Wanted| (w.rect_px, w.pixels_per_point, w.options);
                if self.wanted.as_ref().map(look) != Some(look(&w)) {
                    (self.dirty, self.full) = (true, true);
                }
                self.wanted = Some(w);
            }
            Msg::Hide => self.wanted = None,
        }
    }

    fn offer_engine(&mut self, e: FrameEvent) {
        let Some(w) = &self.wanted else { return };
        let at = At { take: e.take, index: e.index };
        if replaces(self.shown.as_ref().map(|s| s.0), at, w.follow, true) {
            let frame = ShownFrame { key: e.id.0, frame: e.frame };
            self.shown = Some((at, frame, Some(e.timing.decoded)));
            self.dirty = true;
        }
    }

    fn draw(&mut self) {
        // Once stopped it stays stopped (a Show already queued would otherwise bring it back).
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        let (Some(w), Some((_, frame, decoded))) = (&self.wanted, &mut self.shown) else { return };
        let size = [w.rect_px[2].max(1) as u32, w.rect_px[3].max(1) as u32];
        let painter = &mut self.painter;
        let paint = |view: &wgpu::TextureView, parts| {
            painter.paint(view, size, w.pixels_per_point, Some(frame), w.options, parts)
        };
        let dims = (frame.frame.width, frame.frame.height);
        let full = self.full || self.dims != Some(dims);
        let watch = &mut self.watch;
        let arrival = *decoded;
        let laid_out = || {
            if let (Some(watch), Some(decoded)) = (watch, arrival) {
                watch.laid_out(decoded);
            }
        };
        let job = Job { device: &self.device, queue: &self.queue, size, full };
        match self.output.draw(job, paint, laid_out) {
            Ok(()) => {
                self.full = false;
                self.dims = Some(dims);
            }
            // Still dirty: tried again in a moment (`RETRY`).
            Err(NotDrawn::Retry) => return,
            Err(NotDrawn::Later) => return self.dirty = false,
            Err(NotDrawn::Failed(why)) => return self.fail(&why),
        }
        // A frame's arrival is timed once: drawing it again (moved, exposed) is not an arrival.
        if let Some(decoded) = decoded.take() {
            let _ = self.lags.send(Lag::Handed(decoded.elapsed()));
            super::repaint_once(&self.ctx);
        }
        self.drawn = Some(Instant::now());
        self.dirty = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_wake_waits_for_the_overlay_only_while_it_paces() {
        let ctx = egui::Context::default();
        let delays = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = delays.clone();
        ctx.set_repaint_observer(move |info| seen.lock().unwrap().push(info.delay));
        let wake = crate::ui::waker(&ctx);
        let next = || {
            delays.lock().unwrap().clear();
            wake();
            delays.lock().unwrap().clone()
        };
        assert_eq!(next(), [Duration::from_micros(1)], "no overlay: a pass at once");
        pacing(&ctx).store(true, Ordering::Relaxed);
        assert!(paces(&ctx));
        assert_eq!(next(), [PRESENT_FIRST], "the overlay presents first and asks for the pass");
        pacing(&ctx).store(false, Ordering::Relaxed);
        assert_eq!(next(), [Duration::from_micros(1)]);
    }

    #[test]
    fn live_frames_only_move_forward_and_only_on_the_followed_take() {
        let at = |take: u32, index: u64| At { take: TakeId(take), index };
        let (t0, t1) = (Some(TakeId(0)), Some(TakeId(1)));
        // The engine's frames: the followed take's newer ones.
        assert!(replaces(None, at(0, 0), t0, true));
        assert!(replaces(Some(at(0, 3)), at(0, 4), t0, true));
        assert!(!replaces(Some(at(0, 4)), at(0, 3), t0, true), "never back");
        assert!(!replaces(Some(at(0, 4)), at(0, 4), t0, true), "the same frame is not drawn again");
        assert!(!replaces(Some(at(0, 4)), at(1, 5), t0, true), "another take's (a branch being made)");
        assert!(!replaces(Some(at(0, 4)), at(0, 5), None, true), "nothing is followed while scrubbing");
        // The app's frames: whatever its view shows, except one the engine has already passed.
        assert!(!replaces(Some(at(0, 7)), at(0, 5), t0, false), "a lagging pass does not step back");
        assert!(replaces(Some(at(0, 7)), at(0, 5), None, false), "scrubbing back does");
        assert!(replaces(Some(at(0, 7)), at(1, 0), t1, false), "a new take, followed from its start");
        assert!(replaces(Some(at(1, 2)), at(0, 9), t0, false), "switching back to a take");
    }

    #[test]
    fn only_layers_above_the_panels_that_overlap_the_view_cover_it() {
        let ctx = egui::Context::default();
        let view = egui::Rect::from_min_max(egui::pos2(300.0, 40.0), egui::pos2(900.0, 600.0));
        let pass = |dialog: Option<egui::Pos2>| {
            let input = egui::RawInput {
                screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1200.0, 800.0))),
                ..Default::default()
            };
            let mut out = ctx.run_ui(input, |ui| {
                egui::CentralPanel::default().show(ui, |ui| ui.label("the panels are not above the view"));
                if let Some(at) = dialog {
                    egui::Window::new("Export").fixed_pos(at).show(ui.ctx(), |ui| ui.label("a dialog"));
                }
            });
            out.textures_delta.clear();
        };
        // A window's first pass only sizes it; it is shown from the next.
        for _ in 0..3 {
            pass(None);
        }
        assert!(!covered(&ctx, view));
        for _ in 0..3 {
            pass(Some(egui::pos2(20.0, 650.0)));
        }
        assert!(!covered(&ctx, view), "a window beside the view");
        for _ in 0..3 {
            pass(Some(egui::pos2(500.0, 300.0)));
        }
        assert!(covered(&ctx, view), "a window over it");
        for _ in 0..3 {
            pass(None);
        }
        assert!(!covered(&ctx, view), "closed again");
    }

    #[test]
    fn the_overlay_covers_the_pixels_the_view_would_paint() {
        let rect = egui::Rect::from_min_max(egui::pos2(310.4, 47.0), egui::pos2(967.8, 621.0));
        assert_eq!(rect_px(rect, 1.0), [310, 47, 658, 574]);
        assert_eq!(rect_px(rect, 2.0), [621, 94, 1315, 1148]);
        let view = egui::epaint::ViewportInPixels::from_points(&rect, 1.5, [4000, 4000]);
        assert_eq!(rect_px(rect, 1.5), [view.left_px, view.top_px, view.width_px, view.height_px]);
    }
}
