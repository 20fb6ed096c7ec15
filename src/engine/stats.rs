//! Rolling latency figures for one run of frames (DESIGN.md §6), and the rolling window of durations
//! they (and the app's own readout) are computed from.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::protocol::{FrameTiming, Stats};

/// How many recent frames the rolling percentiles cover.
const WINDOW: usize = 64;

/// The newest `cap` durations, for rolling percentiles.
#[derive(Debug, Clone)]
pub struct RollingDurations {
    cap: usize,
    values: VecDeque<Duration>,
}

impl RollingDurations {
    pub fn new(cap: usize) -> Self {
        RollingDurations { cap, values: VecDeque::with_capacity(cap + 1) }
    }

    /// Adds `d`, dropping the oldest value once the window is full.
    pub fn push(&mut self, d: Duration) {
        self.values.push_back(d);
        if self.values.len() > self.cap {
            self.values.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values at quantiles `ps` (each in 0..=1, nearest rank) from one sort; `None` while empty.
    pub fn quantiles<const N: usize>(&self, ps: [f64; N]) -> Option<[Duration; N]> {
        let mut sorted: Vec<Duration> = self.values.iter().copied().collect();
        sorted.sort_unstable();
        let last = sorted.len().checked_sub(1)?;
        Some(ps.map(|p| sorted[(last as f64 * p).round() as usize]))
    }
}

/// Accumulates the timings of one run.
#[derive(Debug)]
pub struct RunStats {
    first: Option<FrameTiming>,
    /// When the first chunk finished decoding: steady fps counts from here.
    steady_from: Option<(Instant, u64)>,
    last_decoded: Option<Instant>,
    recent: RollingDurations,
    frames: u64,
    first_chunk: usize,
}

impl RunStats {
    pub fn new(chunk_frames: usize) -> Self {
        RunStats {
            first: None,
            steady_from: None,
            last_decoded: None,
            recent: RollingDurations::new(WINDOW),
            frames: 0,
            first_chunk: chunk_frames.max(1),
        }
    }

    /// Frames recorded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn record(&mut self, timing: &FrameTiming) {
        self.frames += 1;
        self.first.get_or_insert(*timing);
        if self.frames == self.first_chunk as u64 {
            self.steady_from = Some((timing.decoded, self.frames));
        }
        self.last_decoded = Some(timing.decoded);
        self.recent.push(timing.generation());
    }

    pub fn snapshot(&self, cache_bytes: usize) -> Stats {
        let [p50, p95] = self.recent.quantiles([0.5, 0.95]).map_or([None; 2], |q| q.map(Some));
        let steady_fps = match (self.steady_from, self.last_decoded) {
            (Some((t0, n0)), Some(t1)) if self.frames > n0 && t1 > t0 => {
                Some((self.frames - n0) as f64 / (t1 - t0).as_secs_f64())
            }
            _ => None,
        };
        Stats {
            first_frame: self.first.map(|t| t.decoded - t.command),
            first_frame_no_text: self.first.map(|t| t.decoded - t.text_ready),
            frame_p50: p50,
            frame_p95: p95,
            steady_fps,
            frames: self.frames,
            cache_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_keeps_the_newest_values() {
        let ms = Duration::from_millis;
        let mut w = RollingDurations::new(3);
        assert_eq!(w.quantiles([0.5]), None);
        for v in [90, 1, 2, 3] {
            w.push(ms(v));
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.quantiles([0.0, 0.5, 1.0]), Some([ms(1), ms(2), ms(3)]), "90 was dropped");
    }

    #[test]
    fn figures_follow_the_timings() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = RunStats::new(1);
        for i in 0..10u64 {
            let start = t0 + ms(100 + i * 50);
            s.record(&FrameTiming {
                command: t0,
                text_ready: t0 + ms(20),
                denoise_start: start,
                denoise_end: start + ms(30),
                decoded: start + ms(40 + i),
            });
        }
        let st = s.snapshot(7);
        assert_eq!(st.first_frame, Some(ms(140)));
        assert_eq!(st.first_frame_no_text, Some(ms(120)));
        assert_eq!(st.frame_p50, Some(ms(45)));
        assert_eq!(st.frame_p95, Some(ms(49)));
        let fps = st.steady_fps.unwrap();
        assert!((fps - 9.0 / 0.459).abs() < 1e-6, "{fps}");
        assert_eq!((st.frames, st.cache_bytes), (10, 7));
    }
}
