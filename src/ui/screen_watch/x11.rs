//! X11: the X DAMAGE extension reports each change of the window's pixels as the server makes it;
//! a thread of our own, on its own connection, timestamps those reports. The report says nothing
//! of which pass drew it: a frame is on screen at the first report after the pass that laid it out
//! ([`ScreenLag`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Watch;

/// Timestamps every change of the window's pixels on a thread of its own.
pub struct Damage {
    /// The watch thread's timestamps, oldest first.
    updates: crossbeam_channel::Receiver<Instant>,
    pending: ScreenLag,
}

impl Damage {
    /// Watches X11 window `window`; `None` where the server cannot be reached or lacks DAMAGE.
    pub fn start(window: u32) -> Option<Self> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::Event;
        use x11rb::protocol::damage::{ConnectionExt as _, ReportLevel};

        let connect = || -> Result<_, Box<dyn std::error::Error>> {
            let (conn, _) = x11rb::connect(None)?;
            conn.damage_query_version(1, 1)?.reply()?;
            let id = conn.generate_id()?;
            // Raw rectangles: one report per drawing request, nothing accumulated server-side.
            conn.damage_create(id, window, ReportLevel::RAW_RECTANGLES)?.check()?;
            Ok(conn)
        };
        let conn = connect().map_err(|e| tracing::debug!("no screen watch: {e}")).ok()?;
        let (tx, updates) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name("screen-watch".into())
            .spawn(move || {
                while let Ok(event) = conn.wait_for_event() {
                    if matches!(event, Event::DamageNotify(_)) && tx.send(Instant::now()).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Self { updates, pending: ScreenLag::default() })
    }
}

impl Watch for Damage {
    fn laid_out(&mut self, decoded: Instant) {
        self.pending.laid_out(Instant::now(), decoded);
    }

    fn shown(&mut self) -> Vec<Duration> {
        self.updates.try_iter().flat_map(|at| self.pending.updated(at)).collect()
    }

    fn meaning(&self) -> &'static str {
        "Frame decoded to its pixels on the X server, median"
    }
}

/// Frames laid out but not yet seen on screen, matched to the screen's updates.
#[derive(Default)]
struct ScreenLag {
    /// (laid out at, decoded at), oldest first.
    pending: VecDeque<(Instant, Instant)>,
}

/// A frame whose pass never reached the screen (a hidden window) is dropped after this.
const GIVE_UP: Duration = Duration::from_secs(1);

/// No pass reaches the screen sooner than this after its layout began (the app's own CPU work for a
/// pass — layout, tessellation, recording — takes longer): a report that soon is the previous pass's,
/// timestamped late by a watch thread that was waiting for a core.
const MIN_PASS: Duration = Duration::from_millis(1);

impl ScreenLag {
    /// A frame decoded at `decoded` was laid out at `laid_out`.
    fn laid_out(&mut self, laid_out: Instant, decoded: Instant) {
        self.pending.retain(|(at, _)| laid_out.duration_since(*at) < GIVE_UP);
        self.pending.push_back((laid_out, decoded));
    }

    /// The screen changed at `at`: every frame laid out before that pass is on screen; their
    /// decode → screen times.
    fn updated(&mut self, at: Instant) -> Vec<Duration> {
        let mut shown = Vec::new();
        while let Some(&(laid_out, decoded)) = self.pending.front() {
            if laid_out + MIN_PASS > at {
                break;
            }
            shown.push(at - decoded);
            self.pending.pop_front();
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_on_screen_at_the_first_update_after_its_layout() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut lag = ScreenLag::default();
        assert!(lag.updated(at(1)).is_empty());
        lag.laid_out(at(3), at(2)); // decoded at 2, laid out at 3
        assert!(lag.updated(at(2)).is_empty(), "an update before the layout is an earlier pass's");
        assert!(lag.updated(at(3)).is_empty(), "and so is one within a pass's least time of it");
        lag.laid_out(at(5), at(4));
        assert_eq!(lag.updated(at(4)), vec![Duration::from_millis(2)]);
        assert_eq!(lag.updated(at(20)), vec![Duration::from_millis(16)]);
        assert!(lag.updated(at(30)).is_empty());
        // Never shown (hidden window): dropped once a later frame comes a second on.
        lag.laid_out(at(40), at(39));
        lag.laid_out(at(1100), at(1099));
        assert_eq!(lag.updated(at(1110)), vec![Duration::from_millis(11)]);
    }
}
