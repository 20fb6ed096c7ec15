//! Wayland: the presentation-time protocol. Each pass that lays out a new frame asks the compositor
//! for feedback on the window's next commit (the one the renderer makes at the end of that pass), and
//! the compositor answers with the time that content was shown, on its own clock. No thread and no
//! matching: the answer names the pass. The objects live on an event queue of our own on the app's
//! display connection; winit's loop reads the socket, and each pass dispatches what reached our queue.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use wayland_backend::client::{Backend, ObjectId};
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::wl_registry::WlRegistry;
use wayland_client::protocol::wl_surface::WlSurface;
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle};
use wayland_protocols::wp::presentation_time::client::wp_presentation::{self, WpPresentation};
use wayland_protocols::wp::presentation_time::client::wp_presentation_feedback::{self, WpPresentationFeedback};

use super::Watch;

/// Presentation feedback for the window's surface.
pub struct Presentation {
    queue: EventQueue<Shown>,
    presentation: WpPresentation,
    surface: WlSurface,
    shown: Shown,
}

/// What the compositor has answered so far.
#[derive(Default)]
struct Shown {
    /// The compositor's presentation clock (`clock_gettime` id), sent once after binding.
    clock: Option<libc::clockid_t>,
    /// Decode → shown of the frames presented since the last look.
    lags: Vec<Duration>,
}

impl Presentation {
    /// Asks for feedback on `surface` of `display`; `None` where the compositor lacks the protocol.
    ///
    /// # Safety
    /// `display` must be the app's live `wl_display` and `surface` a live `wl_surface` on it (the
    /// window's, or the video overlay's), both alive as long as the returned value (eframe drops the
    /// app before its window; the overlay drops its watch before its surface).
    pub unsafe fn start(display: NonNull<c_void>, surface: NonNull<c_void>) -> Option<Self> {
        let start = || -> Result<_, Box<dyn std::error::Error>> {
            // SAFETY: the caller's guarantee; the backend does not take the display over.
            let conn = Connection::from_backend(unsafe { Backend::from_foreign_display(display.as_ptr().cast()) });
            let (globals, mut queue) = registry_queue_init::<Shown>(&conn)?;
            let presentation: WpPresentation = globals.bind(&queue.handle(), 1..=1, ())?;
            // SAFETY: the caller's guarantee; `from_ptr` checks the object's interface.
            let id = unsafe { ObjectId::from_ptr(WlSurface::interface(), surface.as_ptr().cast()) }?;
            let surface = WlSurface::from_id(&conn, id)?;
            let mut shown = Shown::default();
            queue.roundtrip(&mut shown)?;
            Ok(Self { queue, presentation, surface, shown })
        };
        start().map_err(|e| tracing::debug!("no presentation feedback: {e}")).ok()
    }
}

impl Drop for Presentation {
    fn drop(&mut self) {
        self.presentation.destroy();
    }
}

impl Watch for Presentation {
    fn laid_out(&mut self, decoded: Instant) {
        self.presentation.feedback(&self.surface, &self.queue.handle(), decoded);
    }

    fn shown(&mut self) -> Vec<Duration> {
        if let Err(e) = self.queue.dispatch_pending(&mut self.shown) {
            tracing::debug!("presentation feedback: {e}");
        }
        std::mem::take(&mut self.shown.lags)
    }

    fn meaning(&self) -> &'static str {
        "Frame decoded to the compositor showing it (its presentation time), median"
    }
}

/// `time` on `clock` as an `Instant`: both clocks read now, and the difference carried over.
fn instant_of(clock: libc::clockid_t, time: Duration) -> Option<Instant> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write; an unknown clock id is an error return.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    let at = Instant::now();
    let now = Duration::new(u64::try_from(now.tv_sec).ok()?, u32::try_from(now.tv_nsec).ok()?);
    match now.checked_sub(time) {
        Some(ago) => at.checked_sub(ago),
        None => at.checked_add(time - now),
    }
}

impl Dispatch<WlRegistry, GlobalListContents> for Shown {
    fn event(
        _: &mut Self,
        _: &WlRegistry,
        _: <WlRegistry as Proxy>::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<WpPresentation, ()> for Shown {
    fn event(
        state: &mut Self,
        _: &WpPresentation,
        event: wp_presentation::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wp_presentation::Event::ClockId { clk_id } = event {
            state.clock = libc::clockid_t::try_from(clk_id).ok();
        }
    }
}

/// Each feedback carries the decode time of the frame its pass laid out.
impl Dispatch<WpPresentationFeedback, Instant> for Shown {
    fn event(
        state: &mut Self,
        _: &WpPresentationFeedback,
        event: wp_presentation_feedback::Event,
        decoded: &Instant,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // `discarded`: the commit was replaced before it was shown; a later feedback covers it.
        if let wp_presentation_feedback::Event::Presented { tv_sec_hi, tv_sec_lo, tv_nsec, .. } = event {
            let time = Duration::new(u64::from(tv_sec_hi) << 32 | u64::from(tv_sec_lo), tv_nsec);
            if let Some(at) = state.clock.and_then(|clock| instant_of(clock, time)) {
                state.lags.push(at.saturating_duration_since(*decoded));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_on_the_monotonic_clock_maps_to_the_instant_it_names() {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid timespec to write.
        assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) }, 0);
        let before = Instant::now();
        let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        let ago = instant_of(libc::CLOCK_MONOTONIC, now - Duration::from_millis(30)).unwrap();
        let ahead = instant_of(libc::CLOCK_MONOTONIC, now + Duration::from_millis(30)).unwrap();
        let near = |a: Instant, b: Instant| a.max(b) - a.min(b) < Duration::from_millis(5);
        assert!(near(ago + Duration::from_millis(30), before), "a past presentation lands 30 ms back");
        assert!(near(ahead, before + Duration::from_millis(30)), "and a future one 30 ms ahead");
        assert!(instant_of(-12345, now).is_none(), "an unknown clock is no time");
    }
}
