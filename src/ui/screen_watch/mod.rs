//! When the window's pixels reach the screen, as the display system reports it.
//!
//! The app cannot tell from its side: eframe lays a frame out, the renderer records and submits it,
//! and the driver presents it afterwards (a software driver copies the whole picture to the display
//! server inside `present`), with no callback once that is done. The display system can: on Wayland
//! the compositor reports when each commit was shown (`wayland.rs`, presentation-time); on X11 the
//! server reports each change of the window's pixels (`x11.rs`, DAMAGE). Elsewhere, or without
//! those extensions, there is no watch, and the readout's "To screen" falls back to the time to the
//! pass that lays the frame out (its tooltip says which).

use std::time::{Duration, Instant};

use raw_window_handle::{RawDisplayHandle, RawWindowHandle};

use crate::engine::RollingDurations;

mod wayland;
mod x11;

pub(super) use wayland::Presentation;
pub(super) use x11::Damage;

/// One display system's report of frames reaching the screen.
pub(super) trait Watch {
    /// A pass is laying out a frame decoded at `decoded`.
    fn laid_out(&mut self, decoded: Instant);
    /// Decode → on screen of the frames shown since the last call.
    fn shown(&mut self) -> Vec<Duration>;
    /// What "on screen" means here, for the readout's tooltip.
    fn meaning(&self) -> &'static str;
}

/// The watch and the frames' decode → screen times.
pub struct OnScreen {
    watch: Box<dyn Watch>,
    /// Decode → on screen, recent frames.
    pub lag: RollingDurations,
}

impl OnScreen {
    /// Watches the app's window, if its display system can report when pixels are shown.
    ///
    /// # Safety
    /// The handles must be those of the app's live window, which outlives the returned value.
    pub unsafe fn start(display: RawDisplayHandle, window: RawWindowHandle) -> Option<Self> {
        let watch: Box<dyn Watch> = match (display, window) {
            #[cfg(target_os = "linux")]
            (RawDisplayHandle::Wayland(d), RawWindowHandle::Wayland(w)) => {
                // SAFETY: the caller's guarantee.
                Box::new(unsafe { wayland::Presentation::start(d.display, w.surface) }?)
            }
            #[cfg(target_os = "linux")]
            (_, RawWindowHandle::Xlib(w)) => Box::new(x11::Damage::start(u32::try_from(w.window).ok()?)?),
            #[cfg(target_os = "linux")]
            (_, RawWindowHandle::Xcb(w)) => Box::new(x11::Damage::start(w.window.get())?),
            _ => return None,
        };
        Some(Self { watch, lag: RollingDurations::new(64) })
    }

    /// A frame decoded at `decoded` is being laid out now.
    pub fn laid_out(&mut self, decoded: Instant) {
        self.watch.laid_out(decoded);
    }

    /// What the figures measure, in a phrase for the readout.
    pub fn meaning(&self) -> &'static str {
        self.watch.meaning()
    }

    /// Takes in the frames shown so far.
    pub fn poll(&mut self) {
        for d in self.watch.shown() {
            self.lag.push(d);
        }
    }
}
