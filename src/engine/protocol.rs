//! The messages between the engine thread and whoever drives it (the GUI, the CLI, tests).

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::model::{Frame, ModelInfo};
use crate::store::FrameId;
use crate::timeline::{Keyframes, Segment, SwitchAnchor, Timeline};

/// Largest frame count one command may ask for.
pub const MAX_FRAMES: u64 = 10_000_000;

/// How many frames to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameCount {
    /// 1 ..= [`MAX_FRAMES`]; build it with [`FrameCount::new`].
    Count(NonZeroU64),
    /// Until stopped.
    Forever,
}

impl FrameCount {
    pub fn new(n: u64) -> Option<FrameCount> {
        (n <= MAX_FRAMES).then_some(()).and(NonZeroU64::new(n)).map(FrameCount::Count)
    }
}

/// Which model to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub name: String,
    /// Weights folder or file; `None` means the model's default location.
    pub weights: Option<PathBuf>,
}

/// Identifies a take: one generate, or one branch of an earlier take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct TakeId(pub u32);

/// Generation settings that stay with a take.
#[derive(Debug, Clone, PartialEq)]
pub struct GenSettings {
    pub seed: u64,
    /// Denoising steps; `None` uses the model's default.
    pub steps: Option<u32>,
    /// Classifier-free guidance scale (1 to 10; 1 = none); `None` uses the model's default. Only
    /// models with guidance accept a scale other than 1.
    pub guidance: Option<f32>,
    /// How a hard prompt switch is redrawn for the new prompt; `None`: it is not (the frames follow
    /// the new prompt only as far as the model does by itself).
    pub switch_anchor: Option<SwitchAnchor>,
    /// Keyframes against drift; `None`: none (the frames are the model's own).
    pub keyframes: Option<Keyframes>,
}

impl GenSettings {
    /// The defaults with `seed`: the model's steps and guidance, the default switch redraw and
    /// keyframes.
    pub fn seeded(seed: u64) -> Self {
        GenSettings {
            seed,
            steps: None,
            guidance: None,
            switch_anchor: Some(SwitchAnchor::default()),
            keyframes: Some(Keyframes::default()),
        }
    }
}

/// Commands into the engine.
#[derive(Debug, Clone)]
pub enum Command {
    /// Loads (or replaces) the model. Generation commands before a model is loaded are errors.
    LoadModel(ModelSpec),
    /// Starts a new take from frame 0 (or from a start image, which becomes frame 0).
    Generate {
        timeline: Timeline,
        frames: FrameCount,
        settings: GenSettings,
        start_image: Option<Arc<Frame>>,
    },
    /// Continues the current take by more frames, from the cache (rebuilt first if needed).
    Extend {
        frames: FrameCount,
    },
    /// Extends the current take as a new take: when nothing is running and the take has frames of
    /// its own ([`TakeInfo::extends_as_new_take`]), first a [`Branch`](Command::Branch) at its
    /// end (all its frames shared, the cache handed over), which becomes current, so the take
    /// stays as it was and the extension can be discarded on its own (undo). Otherwise (a running
    /// take, a fresh branch) as `Extend`.
    ExtendAsTake {
        frames: FrameCount,
    },
    /// Replaces the current take's prompt timeline; frames already made are kept as they are.
    SetTimeline(Timeline),
    /// Changes the prompt from frame `segment.start` on (later segments are dropped).
    ChangePrompt(Segment),
    Pause,
    Resume,
    /// Ends the running generation after the frame in progress; everything made so far is kept.
    Stop,
    /// Makes a new take holding the first `keep` frames of `take`; it becomes the current take and
    /// the old take is kept. Generation continues from there with `Extend`.
    Branch {
        take: TakeId,
        keep: u64,
    },
    /// Makes `take` current (its cache is rebuilt on the next `Extend`).
    SwitchTake(TakeId),
    /// Marks a take discarded (undo of the generate or branch that made it) or kept again (redo).
    /// Nothing is deleted. Discarding the take being generated stops it first.
    SetDiscarded {
        take: TakeId,
        discarded: bool,
    },
    /// Copies the project to a new project folder (see `Project::copy_to`), reporting
    /// [`Event::SaveAsProgress`] and then [`Event::SavedAs`]. Refused while a run is in progress
    /// (paused included), so no frame is made during the copy and none is missing from it. The
    /// engine stays in the original project; the caller opens the copy.
    SaveAs(PathBuf),
    /// Also sends each new frame to `tap` the moment it is decoded, for a presenter that shows it
    /// without waiting for the listener (the app's video overlay). Never blocks: a tap that is
    /// full misses the frame, a tap that is gone is dropped. Replaces any earlier tap.
    TapFrames(Sender<FrameEvent>),
    Shutdown,
}

/// When each stage of a frame happened. `command` is when the engine received the command that
/// caused the frame; the UI adds when it first showed it.
#[derive(Debug, Clone, Copy)]
pub struct FrameTiming {
    pub command: Instant,
    /// Text conditioning ready (equal to `command` when it was cached).
    pub text_ready: Instant,
    pub denoise_start: Instant,
    pub denoise_end: Instant,
    pub decoded: Instant,
}

impl FrameTiming {
    /// Time spent making this frame: denoising, cache update and decoding (its chunk's share).
    pub fn generation(&self) -> Duration {
        self.decoded - self.denoise_start
    }
}

/// One decoded frame, sent as soon as it exists.
#[derive(Debug, Clone)]
pub struct FrameEvent {
    pub take: TakeId,
    /// Position in the take, from 0.
    pub index: u64,
    pub id: FrameId,
    pub frame: Arc<Frame>,
    pub timing: FrameTiming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineState {
    /// No model loaded yet.
    NoModel,
    Loading,
    Idle,
    /// Re-running the cache over a stored take before continuing it.
    Rebuilding,
    Generating,
    Paused,
}

/// Why a run of frames ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Completed,
    Stopped,
    Failed,
}

/// Figures for the live latency readout and benchmarks (DESIGN.md §6).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Command → first frame decoded, text encoding included.
    pub first_frame: Option<Duration>,
    /// Text ready → first frame decoded.
    pub first_frame_no_text: Option<Duration>,
    /// Rolling per-frame generation time.
    pub frame_p50: Option<Duration>,
    pub frame_p95: Option<Duration>,
    /// Frames per second over the run after the first chunk.
    pub steady_fps: Option<f64>,
    pub frames: u64,
    pub cache_bytes: usize,
}

/// A take as the UI sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TakeInfo {
    pub id: TakeId,
    /// Take and frame count it was branched from.
    pub parent: Option<(TakeId, u64)>,
    pub len: u64,
    pub timeline: Timeline,
    pub settings: GenSettings,
    /// Set by [`Command::SetDiscarded`]: the app hides the take; its frames stay in the project.
    pub discarded: bool,
}

impl TakeInfo {
    /// Whether [`Command::ExtendAsTake`] of this take, holding `len` frames and not running, makes
    /// a new take: when it has frames of its own. A fresh branch (nothing past its branch point)
    /// is continued instead: rewinding and generating on is one take.
    pub fn extends_as_new_take(&self, len: u64) -> bool {
        len > self.parent.map_or(0, |(_, keep)| keep)
    }
}

/// Errors the engine reports; it keeps accepting commands after each.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum EngineError {
    #[error("no model is loaded: load one first (spool-tiny is the default)")]
    NoModel,
    #[error("could not load model {name}: {reason}")]
    Load { name: String, reason: String },
    #[error("there is no take yet: generate first")]
    NoTake,
    #[error("take {0:?} does not exist")]
    UnknownTake(TakeId),
    #[error("take {take:?} has {len} frames; cannot keep {keep}")]
    BadBranch { take: TakeId, keep: u64, len: u64 },
    #[error("{0}")]
    InvalidCommand(String),
    #[error("generation failed at frame {frame}: {reason}")]
    Generation { frame: u64, reason: String },
    #[error("frame store: {0}")]
    Store(String),
}

/// Events out of the engine.
#[derive(Debug, Clone)]
pub enum Event {
    /// The project is open: its takes (empty for a new project), the current take, and one line
    /// per repair made while opening it (e.g. frames recovered after a crash).
    ProjectOpened {
        takes: Vec<TakeInfo>,
        current: Option<TakeId>,
        recovered: Vec<String>,
    },
    State(EngineState),
    ModelLoaded(ModelInfo),
    /// A new take exists (generate or branch).
    TakeCreated(TakeInfo),
    /// The current take changed (switch, branch, generate).
    CurrentTake(TakeId),
    /// A take was discarded or kept again ([`Command::SetDiscarded`]).
    TakeDiscarded {
        take: TakeId,
        discarded: bool,
    },
    /// A take's timeline changed.
    TimelineChanged {
        take: TakeId,
        timeline: Timeline,
    },
    Frame(FrameEvent),
    /// Progress of the running command: frames done and target (None when running forever).
    Progress {
        take: TakeId,
        done: u64,
        target: Option<u64>,
    },
    Stats(Stats),
    /// A run of frames ended.
    Finished {
        take: TakeId,
        len: u64,
        how: Finish,
    },
    /// Bytes of a `SaveAs` copy done, of `total`.
    SaveAsProgress {
        done: u64,
        total: u64,
    },
    /// A `SaveAs` ended: the copy at `path` is complete, or it was refused or failed (nothing was
    /// left at `path`), with the reason.
    SavedAs {
        path: PathBuf,
        result: Result<(), String>,
    },
    /// Something worth telling that did not stop anything (e.g. a prompt was truncated).
    Warning(String),
    Error(EngineError),
}
