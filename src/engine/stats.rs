//! Rolling latency figures for one run of frames (DESIGN.md §6).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::protocol::{FrameTiming, Stats};

/// How many recent frames the rolling percentiles cover.
const WINDOW: usize = 64;

/// Accumulates the timings of one run.
#[derive(Debug, Default)]
pub struct RunStats {
    first: Option<FrameTiming>,
    /// When the first chunk finished decoding: steady fps counts from here.
    steady_from: Option<(Instant, u64)>,
    last_decoded: Option<Instant>,
    recent: VecDeque<Duration>,
    frames: u64,
    first_chunk: usize,
}

impl RunStats {
    pub fn new(chunk_frames: usize) -> Self {
        RunStats { first_chunk: chunk_frames.max(1), ..Default::default() }
    }

    pub fn record(&mut self, timing: &FrameTiming) {
        self.frames += 1;
        self.first.get_or_insert(*timing);
        if self.frames == self.first_chunk as u64 {
            self.steady_from = Some((timing.decoded, self.frames));
        }
        self.last_decoded = Some(timing.decoded);
        self.recent.push_back(timing.generation());
        if self.recent.len() > WINDOW {
            self.recent.pop_front();
        }
    }

    pub fn snapshot(&self, cache_bytes: usize) -> Stats {
        let mut sorted: Vec<Duration> = self.recent.iter().copied().collect();
        sorted.sort();
        let pct = |p: f64| -> Option<Duration> {
            (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * p).round() as usize])
        };
        let steady_fps = match (self.steady_from, self.last_decoded) {
            (Some((t0, n0)), Some(t1)) if self.frames > n0 && t1 > t0 => {
                Some((self.frames - n0) as f64 / (t1 - t0).as_secs_f64())
            }
            _ => None,
        };
        Stats {
            first_frame: self.first.map(|t| t.decoded - t.command),
            first_frame_no_text: self.first.map(|t| t.decoded - t.text_ready),
            frame_p50: pct(0.5),
            frame_p95: pct(0.95),
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
