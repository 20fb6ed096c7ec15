//! The UI's mirror of the engine: what the engine has told us, folded from its events.
//!
//! The engine is the source of truth for takes, frames and timelines; this keeps just enough to draw
//! them without asking (frame ids per take, the newest frame, stats, per-frame times for the
//! sparkline). It holds no widgets and no egui types, so it is easy to test.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{EngineError, EngineState, Event, Finish, FrameEvent, Stats, TakeId, TakeInfo};
use crate::model::{Frame, ModelInfo};
use crate::store::{FrameId, Tag};
use crate::timeline::Timeline;

/// Per-frame generation times kept for the sparkline.
pub const SPARK_LEN: usize = 120;

/// A take as the UI knows it.
#[derive(Debug, Clone)]
pub struct TakeView {
    pub info: TakeInfo,
    pub frames: Vec<FrameId>,
}

/// Something the user should read: an engine error or warning.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Error(EngineError),
    Warning(String),
}

/// The newest frame of a take, kept so live display needs no store read.
#[derive(Clone)]
pub struct Newest {
    pub take: TakeId,
    pub index: u64,
    pub id: FrameId,
    pub frame: Arc<Frame>,
    pub decoded: Instant,
    pub received: Instant,
}

pub struct Session {
    pub state: EngineState,
    pub model: Option<ModelInfo>,
    pub takes: Vec<TakeView>,
    pub current: Option<TakeId>,
    pub stats: Stats,
    /// (take, done, target) of the running command.
    pub progress: Option<(TakeId, u64, Option<u64>)>,
    pub last_finish: Option<(TakeId, Finish)>,
    pub newest: Option<Newest>,
    /// Per-frame generation time of the most recent frames, oldest first.
    pub frame_times: VecDeque<Duration>,
    /// Arrival times of recent frames, for the generation fps over the last second or so.
    arrivals: VecDeque<Instant>,
    pub frames_received: u64,
    /// (bytes done, bytes in all) of a running Save as.
    pub save_progress: Option<(u64, u64)>,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            state: EngineState::NoModel,
            model: None,
            takes: Vec::new(),
            current: None,
            stats: Stats::default(),
            progress: None,
            last_finish: None,
            newest: None,
            frame_times: VecDeque::new(),
            arrivals: VecDeque::new(),
            frames_received: 0,
            save_progress: None,
        }
    }
}

impl Session {
    /// Folds one event in; returns what the user should be told, if anything.
    pub fn apply(&mut self, event: Event) -> Option<Report> {
        match event {
            Event::ProjectOpened { takes, current, recovered } => {
                self.takes = takes.into_iter().map(|info| TakeView { info, frames: Vec::new() }).collect();
                // A discarded take is never the one shown, even if the engine still points at it.
                self.current = current.filter(|id| self.take(*id).is_some_and(|t| !t.info.discarded));
                if !recovered.is_empty() {
                    return Some(Report::Warning(format!(
                        "the project was repaired while opening: {}: nothing more to do",
                        recovered.join("; ")
                    )));
                }
            }
            Event::State(s) => self.state = s,
            Event::ModelLoaded(info) => self.model = Some(info),
            Event::TakeCreated(info) => {
                let frames = match info.parent {
                    Some((parent, keep)) => self
                        .take(parent)
                        .map(|p| p.frames[..(keep as usize).min(p.frames.len())].to_vec())
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                let id = info.id;
                let view = TakeView { info, frames };
                match self.takes.iter_mut().find(|t| t.info.id == id) {
                    Some(t) => *t = view,
                    None => self.takes.push(view),
                }
            }
            Event::CurrentTake(id) => self.current = Some(id),
            Event::TakeDiscarded { take, discarded } => {
                if let Some(t) = self.take_mut(take) {
                    t.info.discarded = discarded;
                }
                if discarded && self.current == Some(take) {
                    self.current = None;
                }
            }
            Event::TimelineChanged { take, timeline } => {
                if let Some(t) = self.take_mut(take) {
                    t.info.timeline = timeline;
                }
            }
            Event::Frame(f) => self.frame(f),
            Event::Progress { take, done, target } => self.progress = Some((take, done, target)),
            Event::Stats(s) => self.stats = s,
            Event::Finished { take, len, how } => {
                if let Some(t) = self.take_mut(take) {
                    t.info.len = len;
                }
                self.last_finish = Some((take, how));
                self.progress = None;
            }
            Event::SaveAsProgress { done, total } => self.save_progress = Some((done, total)),
            // The app acts on the result (it switches to the copy, or shows why not).
            Event::SavedAs { .. } => self.save_progress = None,
            Event::Warning(w) => return Some(Report::Warning(w)),
            Event::Error(e) => return Some(Report::Error(e)),
        }
        None
    }

    fn frame(&mut self, f: FrameEvent) {
        let now = Instant::now();
        self.frames_received += 1;
        self.frame_times.push_back(f.timing.generation());
        if self.frame_times.len() > SPARK_LEN {
            self.frame_times.pop_front();
        }
        self.arrivals.push_back(now);
        while self.arrivals.len() > 2 && now - self.arrivals[0] > Duration::from_secs(2) {
            self.arrivals.pop_front();
        }
        if let Some(t) = self.take_mut(f.take) {
            let i = f.index as usize;
            if i < t.frames.len() {
                t.frames[i] = f.id;
                t.frames.truncate(i + 1);
            } else {
                t.frames.push(f.id);
            }
            t.info.len = t.frames.len() as u64;
        }
        self.newest = Some(Newest {
            take: f.take,
            index: f.index,
            id: f.id,
            frame: f.frame,
            decoded: f.timing.decoded,
            received: now,
        });
    }

    /// Fills in the frame ids of takes opened from a project, from the store's tags: a take holds
    /// its parent's first `keep` frames, then the frames made for it (the latest at each index).
    pub fn rebuild_frames(&mut self, tags: &[(FrameId, Tag)]) {
        let mut own: std::collections::HashMap<u32, std::collections::BTreeMap<u64, FrameId>> = Default::default();
        for (id, tag) in tags {
            let slot = own.entry(tag.take).or_default().entry(tag.index).or_insert(*id);
            if id.0 > slot.0 {
                *slot = *id;
            }
        }
        // Parents always have lower ids than their branches, so one pass in id order suffices.
        let mut order: Vec<usize> = (0..self.takes.len()).collect();
        order.sort_by_key(|&i| self.takes[i].info.id);
        for i in order {
            let info = self.takes[i].info.clone();
            let mut frames = match info.parent {
                Some((p, keep)) => {
                    self.take(p).map(|t| t.frames[..(keep as usize).min(t.frames.len())].to_vec()).unwrap_or_default()
                }
                None => Vec::new(),
            };
            if let Some(mine) = own.get(&info.id.0) {
                for (&index, &id) in mine {
                    if index as usize == frames.len() {
                        frames.push(id);
                    } else if (index as usize) < frames.len() {
                        frames[index as usize] = id;
                    }
                }
            }
            frames.truncate(info.len as usize);
            self.takes[i].frames = frames;
        }
    }

    /// The takes the app lists: all but those undo discarded.
    pub fn kept_takes(&self) -> impl DoubleEndedIterator<Item = &TakeView> {
        self.takes.iter().filter(|t| !t.info.discarded)
    }

    pub fn take(&self, id: TakeId) -> Option<&TakeView> {
        self.takes.iter().find(|t| t.info.id == id)
    }

    fn take_mut(&mut self, id: TakeId) -> Option<&mut TakeView> {
        self.takes.iter_mut().find(|t| t.info.id == id)
    }

    pub fn current_take(&self) -> Option<&TakeView> {
        self.current.and_then(|id| self.take(id))
    }

    pub fn current_timeline(&self) -> Option<&Timeline> {
        self.current_take().map(|t| &t.info.timeline)
    }

    /// Frames in the current take.
    pub fn current_len(&self) -> u64 {
        self.current_take().map_or(0, |t| t.frames.len() as u64)
    }

    /// True while a command is making frames (or rebuilding the cache to make them).
    pub fn busy(&self) -> bool {
        matches!(self.state, EngineState::Generating | EngineState::Rebuilding | EngineState::Paused)
    }

    /// Frames per second actually arriving, over the last two seconds; `None` when idle.
    pub fn arrival_fps(&self, now: Instant) -> Option<f64> {
        let (first, last) = (self.arrivals.front()?, self.arrivals.back()?);
        if self.arrivals.len() < 2 || now.duration_since(*last) > Duration::from_secs(2) {
            return None;
        }
        let span = last.duration_since(*first).as_secs_f64();
        (span > 0.0).then(|| (self.arrivals.len() - 1) as f64 / span)
    }
}
