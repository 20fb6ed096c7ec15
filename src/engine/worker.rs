//! The engine thread: owns the model, the takes and the generation loop.
//!
//! The loop handles every pending command before each chunk, so pause and stop take effect within
//! one generation step. Model failures (errors or panics) become [`Event::Error`]; the worker then
//! forgets the cache position (it is rebuilt before the next chunk) and keeps serving commands.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::protocol::*;
use super::snapshots::Snapshots;
use super::stats::RunStats;
use super::{EngineConfig, ModelFactory, Waker};
use crate::model::{
    CommitConditioning, Conditioning, EncodedPrompt, FrameNoise, Latent, ModelInfo, Place, Redraw, Sampling, VideoModel,
};
use crate::project::{Manifest, ModelRecord, ParentRecord, Project, Recovery, TakeRecord};
use crate::store::{FrameId, FrameStore, LatentData};
use crate::timeline::{Segment, Timeline};

/// A take's frames and the latents of a chunk's frames that were made but not asked for yet.
struct Take {
    info: TakeInfo,
    frames: Vec<FrameId>,
}

/// The running command.
struct Run {
    take: TakeId,
    /// Length of the take at which the run ends; `None` runs until stopped.
    target: Option<u64>,
    command_at: Instant,
    stats: RunStats,
}

/// What the model's cache holds: the first `committed` latents of `take`, of which those past the
/// take's `frames` video frames are `surplus` (made as part of a chunk but not emitted yet). The
/// model's decoder has decoded the latent just before the surplus.
struct CachePos {
    take: TakeId,
    frames: u64,
    committed: u64,
    surplus: Vec<Latent>,
    /// Frames of the first surplus latent that the take already has (a crash cut the take inside
    /// that latent's frames): it is decoded again and only the rest are emitted.
    shown: usize,
    /// False once the take's timeline was edited before the frames committed: the cache then is
    /// no longer what a rebuild would make, and no snapshot is taken of it.
    exact: bool,
}

/// The redraw a [`SwitchAnchor`](super::SwitchAnchor) blends toward, kept for the latents after
/// its switch: made for `take`'s hard switch at latent `latent` under the prompt mix `mix`. `None`
/// is kept too (a model without a redraw), so the source latent is read once per switch either way.
struct SwitchRedraw {
    take: TakeId,
    latent: u64,
    mix: crate::timeline::Mix,
    redraw: Option<Latent>,
}

/// The noise stream of a switch redraw: apart from the streams of the frames (their latent index).
const REDRAW_STREAM: u64 = 1 << 63;

/// The noise stream of a keyframe (apart from the frames' and the switch redraws').
const KEYFRAME_STREAM: u64 = 1 << 62;

struct Loaded {
    model: Box<dyn VideoModel>,
    info: ModelInfo,
    /// What the manifest records of this model once it has made a frame here.
    record: ModelRecord,
    prompts: HashMap<String, EncodedPrompt>,
}

/// How long a finished frame may wait before the manifest that lists it is written. Frames are on
/// disk sooner (the store); this bounds what recovery has to reattach after a crash.
const SAVE_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Worker {
    factory: ModelFactory,
    config: EngineConfig,
    project: Project,
    /// When the manifest was last written; `None` when it is up to date.
    unsaved_since: Option<Instant>,
    store: Arc<FrameStore>,
    events: Sender<Event>,
    waker: Option<Waker>,
    loaded: Option<Loaded>,
    /// The model (and weights) that made the project's newest frames, as the manifest records it.
    /// Loading another model does not change it; its first frame here does.
    made_by: Option<ModelRecord>,
    takes: Vec<Take>,
    current: Option<TakeId>,
    cache: Option<CachePos>,
    /// The newest switch redraw (see [`Worker::anchor_chunk`]).
    redraw: Option<SwitchRedraw>,
    snapshots: Snapshots,
    run: Option<Run>,
    paused: bool,
    /// False once the receiving side is gone: the worker then shuts down.
    listener: bool,
    /// [`Command::TapFrames`].
    tap: Option<Sender<FrameEvent>>,
}

/// Failure inside a step, carrying the frame it happened at.
type StepResult<T> = Result<T, EngineError>;

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        factory: ModelFactory,
        config: EngineConfig,
        project: Project,
        manifest: Manifest,
        recovery: Recovery,
        store: Arc<FrameStore>,
        events: Sender<Event>,
        waker: Option<Waker>,
    ) -> Self {
        let takes = manifest.takes.iter().map(take_from_record).collect();
        let snapshot_budget = config.snapshot_budget;
        let mut w = Worker {
            factory,
            config,
            project,
            unsaved_since: None,
            store,
            events,
            waker,
            loaded: None,
            made_by: manifest.model.clone(),
            takes,
            current: manifest.current_take.map(TakeId),
            cache: None,
            redraw: None,
            snapshots: Snapshots::new(snapshot_budget),
            run: None,
            paused: false,
            listener: true,
            tap: None,
        };
        if !recovery.notes.is_empty() {
            // Make the repair durable before anything else happens.
            w.save();
        }
        let takes = w.takes.iter().map(|t| t.info.clone()).collect();
        w.emit(Event::ProjectOpened { takes, current: w.current, recovered: recovery.notes });
        w
    }

    pub(super) fn run_loop(mut self, commands: Receiver<Command>) {
        self.emit(Event::State(EngineState::NoModel));
        while self.listener {
            let busy = self.run.is_some() && !self.paused;
            let cmd = if busy {
                match commands.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match commands.recv() {
                    Ok(c) => Some(c),
                    Err(_) => break,
                }
            };
            match cmd {
                Some(Command::Shutdown) => break,
                Some(c) => self.handle(c),
                None => self.step_guarded(),
            }
            if self.unsaved_since.is_some_and(|t| t.elapsed() >= SAVE_EVERY) {
                self.save();
            }
        }
        if let Err(e) = self.store.flush() {
            tracing::error!("frame store flush at shutdown failed: {e}");
        }
        self.save();
        tracing::debug!("engine thread exits");
    }

    /// Sends an event and wakes the listener.
    fn emit(&mut self, e: Event) {
        self.post(e);
        if let Some(w) = &self.waker {
            w();
        }
    }

    /// Sends an event without waking the listener: it is read with the next one that does. Each
    /// wake costs the app a whole window redraw, which a software renderer pays for in tens of
    /// milliseconds; a frame's events share one wake so the next frame finds the window idle.
    fn post(&mut self, e: Event) {
        if self.events.send(e).is_err() {
            self.listener = false;
        }
    }

    fn fail(&mut self, e: EngineError) {
        tracing::warn!("engine error: {e}");
        self.emit(Event::Error(e));
    }

    fn state(&self) -> EngineState {
        match (&self.loaded, &self.run) {
            (None, _) => EngineState::NoModel,
            (Some(_), None) => EngineState::Idle,
            (Some(_), Some(_)) if self.paused => EngineState::Paused,
            (Some(_), Some(_)) => EngineState::Generating,
        }
    }

    fn handle(&mut self, cmd: Command) {
        // Commands that change the takes, timelines, current take or model: write them at once.
        // (Frames are saved by the loop's timer and when a run finishes.)
        let structural = !matches!(cmd, Command::Pause | Command::Resume | Command::Stop | Command::Extend { .. });
        if let Err(e) = self.try_handle(cmd) {
            self.fail(e);
        }
        if structural {
            self.save();
        }
    }

    /// Writes the manifest (the takes tree, timelines, settings and frame lists).
    fn save(&mut self) {
        let manifest = Manifest {
            model: self.made_by.clone(),
            current_take: self.current.map(|t| t.0),
            takes: self.takes.iter().map(take_record).collect(),
            ..Manifest::default()
        };
        self.unsaved_since = None;
        if let Err(e) = self.project.write_manifest(&manifest) {
            self.fail(EngineError::Store(format!("saving the project: {e}")));
        }
    }

    fn try_handle(&mut self, cmd: Command) -> StepResult<()> {
        match cmd {
            Command::LoadModel(spec) => self.load(spec),
            Command::Generate { timeline, frames, settings, start_image } => {
                self.generate(timeline, frames, settings, start_image)
            }
            Command::Extend { frames } => self.extend(frames),
            Command::ExtendAsTake { frames } => {
                if self.loaded.is_none() {
                    return Err(EngineError::NoModel);
                }
                if let (None, Some(id)) = (&self.run, self.current) {
                    let take = self.take(id)?;
                    let len = take.frames.len() as u64;
                    if take.info.extends_as_new_take(len) {
                        self.branch(id, len)?;
                    }
                }
                self.extend(frames)
            }
            Command::SetTimeline(t) => {
                t.validate().map_err(|e| EngineError::InvalidCommand(e.to_string()))?;
                let take = self.current_take_mut()?;
                let changed_at = take.info.timeline.first_difference(&t);
                take.info.timeline = t;
                let id = take.info.id;
                self.check_exact(id, changed_at);
                self.timeline_changed()
            }
            Command::ChangePrompt(seg) => self.change_prompt(seg),
            Command::Pause => {
                if self.run.is_some() && !self.paused {
                    self.paused = true;
                    self.emit(Event::State(EngineState::Paused));
                }
                Ok(())
            }
            Command::Resume => {
                if self.run.is_some() && self.paused {
                    self.paused = false;
                    self.emit(Event::State(EngineState::Generating));
                }
                Ok(())
            }
            Command::Stop => {
                self.finish(Finish::Stopped);
                Ok(())
            }
            Command::Branch { take, keep } => self.branch(take, keep),
            Command::SwitchTake(id) => {
                self.take(id)?;
                self.finish(Finish::Stopped);
                self.current = Some(id);
                self.emit(Event::CurrentTake(id));
                Ok(())
            }
            Command::SetDiscarded { take, discarded } => {
                self.take(take)?;
                if self.run.as_ref().is_some_and(|r| r.take == take) {
                    self.finish(Finish::Stopped);
                }
                self.takes[take.0 as usize].info.discarded = discarded;
                self.emit(Event::TakeDiscarded { take, discarded });
                Ok(())
            }
            Command::SaveAs(path) => {
                let result = self.save_as(&path);
                self.emit(Event::SavedAs { path, result });
                Ok(())
            }
            Command::TapFrames(tap) => {
                self.tap = Some(tap);
                Ok(())
            }
            Command::Shutdown => unreachable!("handled by the loop"),
        }
    }

    /// Copies the project to `dest` on this thread: commands wait meanwhile, so no frame is made
    /// that the copy would miss.
    fn save_as(&mut self, dest: &std::path::Path) -> Result<(), String> {
        if self.run.is_some() {
            return Err("generation is running: stop it first (Esc); the frames made so far are kept".into());
        }
        self.save();
        let (events, waker) = (&self.events, &self.waker);
        let mut last = Instant::now();
        let result = self.project.copy_to(&self.store, dest, |done, total| {
            // A few updates a second are enough for a progress bar.
            if done == total || last.elapsed() >= Duration::from_millis(100) {
                last = Instant::now();
                let _ = events.send(Event::SaveAsProgress { done, total });
                if let Some(w) = waker {
                    w();
                }
            }
        });
        result.map_err(|e| {
            tracing::warn!("save as {} failed: {e}", dest.display());
            e.to_string()
        })
    }

    fn load(&mut self, spec: ModelSpec) -> StepResult<()> {
        self.finish(Finish::Stopped);
        self.emit(Event::State(EngineState::Loading));
        let made = catch_unwind(AssertUnwindSafe(|| (self.factory)(&spec)))
            .unwrap_or_else(|p| Err(format!("the model panicked while loading: {}", panic_text(&p))));
        match made {
            Ok(model) => {
                let info = model.info().clone();
                let record =
                    ModelRecord { id: info.id.clone(), weights: None, weights_hash: info.weights_hash.clone() };
                if let Some(w) = self.made_by.as_ref().and_then(|made_by| weights_differ(made_by, &record)) {
                    self.emit(Event::Warning(w));
                }
                self.loaded = Some(Loaded { model, info: info.clone(), record, prompts: HashMap::new() });
                self.cache = None;
                self.redraw = None;
                self.snapshots.clear();
                self.emit(Event::ModelLoaded(info));
                self.emit(Event::State(EngineState::Idle));
                Ok(())
            }
            Err(reason) => {
                let state = self.state();
                self.emit(Event::State(state));
                Err(EngineError::Load { name: spec.name, reason })
            }
        }
    }

    fn generate(
        &mut self,
        timeline: Timeline,
        frames: FrameCount,
        settings: GenSettings,
        start_image: Option<Arc<crate::model::Frame>>,
    ) -> StepResult<()> {
        let command_at = Instant::now();
        timeline.validate().map_err(|e| EngineError::InvalidCommand(e.to_string()))?;
        let info = &self.loaded.as_ref().ok_or(EngineError::NoModel)?.info;
        check_steps(settings.steps, info)?;
        check_guidance(settings.guidance, info)?;
        if let Some(img) = &start_image
            && (img.width, img.height) != (info.width, info.height)
        {
            return Err(EngineError::InvalidCommand(format!(
                "the start image is {}×{}; the model needs {}×{} (resize it first)",
                img.width, img.height, info.width, info.height
            )));
        }
        self.finish(Finish::Stopped);
        let id = TakeId(self.takes.len() as u32);
        let info = TakeInfo { id, parent: None, len: 0, timeline, settings, discarded: false };
        self.takes.push(Take { info: info.clone(), frames: Vec::new() });
        self.current = Some(id);
        self.emit(Event::TakeCreated(info));
        self.emit(Event::CurrentTake(id));
        self.start_run(id, frames, command_at);
        self.cache = None;
        if let Some(img) = start_image {
            self.start_from_image(id, &img)?;
        }
        Ok(())
    }

    /// Encodes the start image as latent 0, commits it and emits its frames.
    fn start_from_image(&mut self, take: TakeId, img: &crate::model::Frame) -> StepResult<()> {
        let (_, text_ready) = self.conditioning(take, 0)?;
        let gen_err = |e: crate::model::ModelError| EngineError::Generation { frame: 0, reason: e.to_string() };
        let loaded = self.loaded.as_mut().expect("checked by generate");
        let t0 = Instant::now();
        loaded.model.reset().map_err(gen_err)?;
        let latent = loaded.model.encode_image(img).map_err(gen_err)?;
        self.commit_chunk(take, 0, 0, std::slice::from_ref(&latent))?;
        let t1 = Instant::now();
        self.cache = Some(CachePos { take, frames: 0, committed: 1, surplus: Vec::new(), shown: 0, exact: true });
        self.emit_latent(take, latent, 0, text_ready, t0, t1)?;
        self.finish_if_done();
        Ok(())
    }

    fn extend(&mut self, frames: FrameCount) -> StepResult<()> {
        let command_at = Instant::now();
        if self.loaded.is_none() {
            return Err(EngineError::NoModel);
        }
        let id = self.current.ok_or(EngineError::NoTake)?;
        if let Some(run) = &mut self.run {
            // Extending a running take lengthens the run.
            run.target = match (run.target, frames) {
                (Some(t), FrameCount::Count(n)) => Some(t + n.get()),
                _ => None,
            };
            return Ok(());
        }
        self.start_run(id, frames, command_at);
        Ok(())
    }

    fn start_run(&mut self, take: TakeId, frames: FrameCount, command_at: Instant) {
        let len = self.takes[take.0 as usize].frames.len() as u64;
        let target = match frames {
            FrameCount::Count(n) => Some(len + n.get()),
            FrameCount::Forever => None,
        };
        // Steady fps counts from the end of the run's first chunk.
        let first_chunk = self.loaded.as_ref().map_or(1, |l| {
            let per = l.info.latent_frames;
            let chunk = l.info.chunk_frames as u64;
            if len == 0 { per.before(chunk) } else { chunk * u64::from(per.later) }
        });
        self.run = Some(Run { take, target, command_at, stats: RunStats::new(first_chunk as usize) });
        self.paused = false;
        self.emit(Event::State(EngineState::Generating));
    }

    fn change_prompt(&mut self, mut seg: Segment) -> StepResult<()> {
        crate::timeline::Timeline { segments: vec![Segment { start: 0, ..seg.clone() }] }
            .validate()
            .map_err(|e| EngineError::InvalidCommand(e.to_string()))?;
        let len = self.current_take_mut()?.frames.len() as u64;
        // A chunk's latents are sampled together: frames of the chunk under way keep its prompt.
        let next = self.loaded.as_ref().map_or(len, |l| {
            let (per, chunk) = (l.info.latent_frames, l.info.chunk_frames.max(1) as u64);
            per.before(per.latents_within(len).div_ceil(chunk) * chunk).max(len)
        });
        let clamped = seg.start < next;
        if clamped {
            seg.start = next;
        }
        self.current_take_mut()?.info.timeline.change_from(seg);
        if clamped {
            let made = if next > len { "already made or in the chunk under way" } else { "already made" };
            let msg = format!("frames before {next} are {made}: the new prompt applies from frame {next}");
            self.emit(Event::Warning(msg));
        }
        self.timeline_changed()
    }

    fn branch(&mut self, from: TakeId, keep: u64) -> StepResult<()> {
        let len = self.take(from)?.frames.len() as u64;
        if keep > len {
            return Err(EngineError::BadBranch { take: from, keep, len });
        }
        let keep = self.chunk_start(from, keep)?;
        let parent = self.take(from)?;
        let frames = parent.frames[..keep as usize].to_vec();
        let mut info = parent.info.clone();
        self.finish(Finish::Stopped);
        let id = TakeId(self.takes.len() as u32);
        info.id = id;
        info.parent = Some((from, keep));
        info.discarded = false;
        info.len = keep;
        self.takes.push(Take { info: info.clone(), frames });
        // A branch at the cache's end holds the same frames under the same recipe: the cache (and a
        // switch redraw made for them) serve it as they are, with no rebuild.
        if let Some(pos) = self.cache.as_mut().filter(|p| p.take == from && p.frames == keep) {
            pos.take = id;
            if let Some(r) = self.redraw.as_mut().filter(|r| r.take == from) {
                r.take = id;
            }
        }
        self.current = Some(id);
        self.emit(Event::TakeCreated(info));
        self.emit(Event::CurrentTake(id));
        Ok(())
    }

    /// Where a branch of `take` that keeps `keep` frames can start: `keep` itself at the take's
    /// end or on a chunk boundary, else the chunk boundary before it (a chunk's latents are
    /// committed together, so a cut inside one would not continue as it was made). A warning says
    /// so when it moves.
    fn chunk_start(&mut self, take: TakeId, keep: u64) -> StepResult<u64> {
        let len = self.take(take)?.frames.len() as u64;
        let Some(loaded) = self.loaded.as_ref() else { return Ok(keep) };
        let (per, chunk) = (loaded.info.latent_frames, loaded.info.chunk_frames.max(1));
        let at = if keep == len { keep } else { per.chunk_start_at_or_before(chunk, keep) };
        if at != keep {
            let chunk_starts: Vec<String> = (0..4).map(|c| per.before(c * chunk as u64).to_string()).collect();
            let kept = match at {
                0 => "no frames".to_string(),
                n => format!("frames 0 to {}", n - 1),
            };
            let msg = format!(
                "the branch keeps {kept}, not up to frame {}: {} continues a take exactly only from the start of a \
                 chunk (frames {}, …)",
                keep - 1,
                loaded.info.id,
                chunk_starts.join(", ")
            );
            self.emit(Event::Warning(msg));
        }
        Ok(at)
    }

    fn take(&self, id: TakeId) -> StepResult<&Take> {
        self.takes.get(id.0 as usize).ok_or(EngineError::UnknownTake(id))
    }

    fn current_take_mut(&mut self) -> StepResult<&mut Take> {
        let id = self.current.ok_or(EngineError::NoTake)?;
        Ok(&mut self.takes[id.0 as usize])
    }

    /// Marks the cache inexact when `take`'s timeline changed at `changed_at`, before the frame
    /// its last commit was conditioned on (a change there is picked up by the next denoise).
    fn check_exact(&mut self, take: TakeId, changed_at: Option<u64>) {
        let Some(per) = self.loaded.as_ref().map(|l| l.info.latent_frames) else { return };
        if let (Some(pos), Some(at)) = (self.cache.as_mut(), changed_at)
            && pos.take == take
            && at < per.before(pos.committed)
        {
            pos.exact = false;
        }
    }

    fn timeline_changed(&mut self) -> StepResult<()> {
        let take = self.current_take_mut()?;
        let e = Event::TimelineChanged { take: take.info.id, timeline: take.info.timeline.clone() };
        self.emit(e);
        Ok(())
    }

    /// Ends the running command, if any.
    fn finish(&mut self, how: Finish) {
        if let Some(run) = self.run.take() {
            self.paused = false;
            let len = self.takes[run.take.0 as usize].frames.len() as u64;
            self.save();
            self.emit(Event::Finished { take: run.take, len, how });
            let state = self.state();
            self.emit(Event::State(state));
        }
    }

    /// One generation step, with model panics turned into errors.
    fn step_guarded(&mut self) {
        let result = catch_unwind(AssertUnwindSafe(|| self.step()));
        let err = match result {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(p) => {
                let frame = self.run.as_ref().map_or(0, |r| self.takes[r.take.0 as usize].frames.len() as u64);
                EngineError::Generation { frame, reason: format!("the model panicked: {}", panic_text(&p)) }
            }
        };
        // The model's cache may be half-updated: rebuild it before the next chunk.
        self.cache = None;
        self.fail(err);
        self.finish(Finish::Failed);
    }

    /// Emits the next latent's frames of the running take: one left over from the last chunk, or
    /// the first of a new chunk.
    fn step(&mut self) -> StepResult<()> {
        let run = self.run.as_ref().expect("step runs only with a run");
        let take = run.take;
        let len = self.takes[take.0 as usize].frames.len() as u64;
        if run.target.is_some_and(|t| len >= t) {
            self.finish(Finish::Completed);
            return Ok(());
        }
        self.position_cache(take, len)?;
        let (cond, text_ready) = self.conditioning(take, len)?;
        let pos = self.cache.as_mut().expect("positioned above");
        if !pos.surplus.is_empty() {
            let latent = pos.surplus.remove(0);
            let shown = std::mem::take(&mut pos.shown);
            let now = Instant::now();
            self.emit_latent(take, latent, shown, text_ready, now, now)?;
            self.finish_if_done();
            return Ok(());
        }
        let start = pos.committed;
        let t0 = Instant::now();
        let latents = self.denoise_chunk(take, start, len, &cond)?;
        let t1 = Instant::now();
        let Some(first) = latents.first().cloned() else {
            let reason = "the model made no frames".to_string();
            return Err(EngineError::Generation { frame: len, reason });
        };
        // The first latent's frames go out before the chunk's commit pass, so a run's first frame
        // does not wait for it. Later ones, with a decoder apart from the model (spool-tiny's), are
        // decoded on the helper thread during the commit pass (when it is on): the decode is then
        // off the path from one frame to the next.
        let made = self.run.as_ref().map_or(0, |r| r.stats.frames());
        let beside = made > 0 && crate::beside::enabled();
        let after = match self.loaded.as_ref().and_then(|l| l.model.detached_decoder()).filter(|_| beside) {
            None => {
                self.emit_latent(take, first, 0, text_ready, t0, t1)?;
                self.commit_chunk(take, start, len, &latents)?
            }
            Some(decoder) => {
                let (frames, after) =
                    crate::beside::join(|| decoder.decode(&first), || self.commit_chunk(take, start, len, &latents));
                // Decoded is when the frames can go out: after the commit too.
                self.emit_frames(take, &first, frames, 0, [text_ready, t0, t1, Instant::now()])?;
                after?
            }
        };
        self.keep_snapshot(take, start + latents.len() as u64, after);
        let pos = self.cache.as_mut().expect("positioned above");
        pos.committed += latents.len() as u64;
        pos.surplus.extend(latents.into_iter().skip(1));
        // The cache grew after the frames went out. The figure rides with the next wake (the next
        // frame's, or the run's end).
        let cache_bytes = self.loaded.as_ref().map_or(0, |l| l.model.cache_bytes());
        if let Some(stats) = self.run.as_ref().map(|r| r.stats.snapshot(cache_bytes)) {
            self.post(Event::Stats(stats));
        }
        self.finish_if_done();
        Ok(())
    }

    /// Ends the run once its take has the frames asked for.
    fn finish_if_done(&mut self) {
        let Some(run) = &self.run else { return };
        if run.target.is_some_and(|t| self.takes[run.take.0 as usize].frames.len() as u64 >= t) {
            self.finish(Finish::Completed);
        }
    }

    /// Denoises the chunk of `take` that starts at latent `start`, video frame `frame`, under
    /// `cond` (that frame's conditioning): a re-cache first at a hard prompt switch, then the noise
    /// of (seed, `start`), then the switch anchor's blend ([`anchor_chunk`](Self::anchor_chunk)).
    fn denoise_chunk(&mut self, take: TakeId, start: u64, frame: u64, cond: &Conditioning) -> StepResult<Vec<Latent>> {
        let info = &self.takes[take.0 as usize].info;
        let seed = info.settings.seed;
        let switch = self.config.recache_on_switch && frame > 0 && info.timeline.is_hard_switch(frame);
        let gen_err = |e: crate::model::ModelError| EngineError::Generation { frame, reason: e.to_string() };
        let sampling = Sampling { settling: self.settling(take, frame), ..self.sampling(take)? };
        let loaded = self.loaded.as_mut().ok_or(EngineError::NoModel)?;
        if switch {
            loaded.model.recache(cond).map_err(gen_err)?;
        }
        let noise = &mut FrameNoise::new(seed, start);
        let latents = loaded.model.denoise(cond, noise, sampling).map_err(gen_err)?;
        let latents = self.keyframe_chunk(take, start, frame, latents)?;
        self.anchor_chunk(take, start, frame, latents)
    }

    /// [`Keyframes`](super::Keyframes): each latent of the chunk (latent `start`, video frame `frame`
    /// on) whose index is a positive multiple of `every` becomes the model's redraw of itself under
    /// its own conditioning, its content kept in place, unless the prompt changed within the frames
    /// a switch blends over (a keyframe redraws for the new prompt at once: a cut); a latent the
    /// model does not redraw stays as it is.
    fn keyframe_chunk(
        &mut self,
        take: TakeId,
        start: u64,
        frame: u64,
        mut latents: Vec<Latent>,
    ) -> StepResult<Vec<Latent>> {
        let settings = &self.takes[take.0 as usize].info.settings;
        let Some(keys) = settings.keyframes.filter(|k| k.every > 0) else { return Ok(latents) };
        let seed = settings.seed;
        let per = self.loaded.as_ref().ok_or(EngineError::NoModel)?.info.latent_frames;
        let sampling = self.sampling(take)?;
        let every = u64::from(keys.every);
        let mut first = frame;
        for j in 0..latents.len() {
            let l = start + j as u64;
            if l > 0 && l.is_multiple_of(every) && !self.settling(take, first) {
                let (cond, _) = self.conditioning(take, first)?;
                // The latents one and two keyframe intervals before (this chunk's, already final,
                // or stored).
                let latent = |back: u64| match back.checked_sub(start) {
                    Some(i) => Ok(latents[i as usize].clone()),
                    None => Ok::<_, EngineError>(self.stored_latents(take, &[per.before(back)])?.remove(0)),
                };
                let earlier = latent(l - every)?;
                let before_that = l.checked_sub(2 * every).map(latent).transpose()?;
                let noise = &mut FrameNoise::new(seed, l | KEYFRAME_STREAM);
                let loaded = self.loaded.as_mut().ok_or(EngineError::NoModel)?;
                let place = Place::Kept { earlier: Some(&earlier), before_that: before_that.as_ref() };
                let how = Redraw { strength: keys.strength, place };
                let key = loaded.model.redraw(&latents[j], &cond, noise, sampling, how).map_err(|e| {
                    EngineError::Generation { frame: first, reason: format!("drawing a keyframe: {e}") }
                })?;
                if let Some(k) = key {
                    latents[j] = k;
                }
            }
            first += per.of(l);
        }
        Ok(latents)
    }

    /// Whether video frame `frame` of `take` is within the frames a prompt change blends over (the
    /// switch anchor's window, its default when the anchor is off): its prompt mix differs from the
    /// one that many frames before.
    fn settling(&self, take: TakeId, frame: u64) -> bool {
        let info = &self.takes[take.0 as usize].info;
        let window = u64::from(info.settings.switch_anchor.unwrap_or_default().latents);
        info.timeline.mix_at(frame) != info.timeline.mix_at(frame.saturating_sub(window))
    }

    /// The sampler settings of `take` with the loaded model's defaults filled in.
    fn sampling(&self, take: TakeId) -> StepResult<Sampling> {
        let settings = &self.takes[take.0 as usize].info.settings;
        let info = &self.loaded.as_ref().ok_or(EngineError::NoModel)?.info;
        Ok(Sampling::guided(
            settings.steps.unwrap_or(info.default_steps),
            settings.guidance.or(info.default_guidance).unwrap_or(1.0),
        ))
    }

    /// [`SwitchAnchor`](super::SwitchAnchor): each latent of the chunk (latent `start`, video frame
    /// `frame` on) that is the k-th (1-based) of the `latents` after a hard prompt switch becomes
    /// `(1 − k/latents)·itself + k/latents·redraw`, the redraw being the model's
    /// [`redraw`](crate::model::VideoModel::redraw) of the stored latent before the switch under the
    /// switch's prompt. Deterministic (its noise stream is the switch's), so a rebuild that makes a
    /// chunk again makes the same blend; a model without a redraw leaves the chunk as it is.
    fn anchor_chunk(
        &mut self,
        take: TakeId,
        start: u64,
        frame: u64,
        mut latents: Vec<Latent>,
    ) -> StepResult<Vec<Latent>> {
        let settings = &self.takes[take.0 as usize].info.settings;
        let Some(anchor) = settings.switch_anchor.filter(|a| a.latents > 0) else { return Ok(latents) };
        let per = self.loaded.as_ref().ok_or(EngineError::NoModel)?.info.latent_frames;
        let window = u64::from(anchor.latents);
        // The first video frame of latent `l`, for the latents around this chunk.
        let first_frame = |l: u64| {
            if l >= start {
                frame + (start..l).map(|i| per.of(i)).sum::<u64>()
            } else {
                frame - (l..start).map(|i| per.of(i)).sum::<u64>()
            }
        };
        for (j, latent) in latents.iter_mut().enumerate() {
            let l = start + j as u64;
            let timeline = &self.takes[take.0 as usize].info.timeline;
            let Some(ls) =
                (l.saturating_sub(window - 1).max(1)..=l).rev().find(|&ls| timeline.is_hard_switch(first_frame(ls)))
            else {
                continue;
            };
            let Some(redraw) = self.switch_redraw(take, ls, first_frame(ls), first_frame(ls - 1), anchor.strength)?
            else {
                return Ok(latents);
            };
            let alpha = (l - ls + 1) as f64 / window as f64;
            let blend = |x: &Latent| -> candle_core::Result<Latent> {
                let r = redraw.0.to_device(x.0.device())?;
                Ok(Latent((x.0.affine(1.0 - alpha, 0.0)? + r.affine(alpha, 0.0)?)?))
            };
            *latent =
                blend(latent).map_err(|e| EngineError::Generation { frame: first_frame(l), reason: e.to_string() })?;
        }
        Ok(latents)
    }

    /// The redraw for `take`'s hard switch at latent `latent` (video frame `frame`) of the stored
    /// latent at video frame `source`, made once per switch and prompt; `None` if the model has none.
    fn switch_redraw(
        &mut self,
        take: TakeId,
        latent: u64,
        frame: u64,
        source: u64,
        strength: f32,
    ) -> StepResult<Option<Latent>> {
        let mix = self.takes[take.0 as usize].info.timeline.mix_at(frame);
        if let Some(r) = &self.redraw
            && r.take == take
            && r.latent == latent
            && r.mix == mix
        {
            return Ok(r.redraw.clone());
        }
        let (cond, _) = self.conditioning(take, frame)?;
        let source = self.stored_latents(take, &[source])?.remove(0);
        let sampling = self.sampling(take)?;
        let noise = &mut FrameNoise::new(self.takes[take.0 as usize].info.settings.seed, latent | REDRAW_STREAM);
        let loaded = self.loaded.as_mut().ok_or(EngineError::NoModel)?;
        let redraw = loaded
            .model
            .redraw(&source, &cond, noise, sampling, Redraw { strength, place: Place::Layout })
            .map_err(|e| EngineError::Generation { frame, reason: format!("redrawing for the prompt switch: {e}") })?;
        self.redraw = Some(SwitchRedraw { take, latent, mix, redraw: redraw.clone() });
        Ok(redraw)
    }

    /// Commits a chunk of `take` that starts at latent `start`, video frame `frame`, offering the
    /// model the chunk's own conditioning and that of the frame after it
    /// ([`CommitConditioning`]). Returns the video frame after the chunk.
    fn commit_chunk(&mut self, take: TakeId, start: u64, frame: u64, latents: &[Latent]) -> StepResult<u64> {
        let per = self.loaded.as_ref().ok_or(EngineError::NoModel)?.info.latent_frames;
        let after = frame + (start..start + latents.len() as u64).map(|k| per.of(k)).sum::<u64>();
        let (own, _) = self.conditioning(take, frame)?;
        let (next, _) = self.conditioning(take, after)?;
        let loaded = self.loaded.as_mut().ok_or(EngineError::NoModel)?;
        let cond = CommitConditioning { own: &own, next: &next };
        loaded.model.commit(latents, cond).map_err(|e| EngineError::Generation { frame, reason: e.to_string() })?;
        Ok(after)
    }

    /// Keeps a copy of the cache, now holding `committed` latents of `take` (frame `next` comes
    /// next), every `snapshot_every` latents: when the cache is what a rebuild would make and the
    /// take already holds the frames before `next` (with one latent per chunk it does once the
    /// chunk's frame is out).
    fn keep_snapshot(&mut self, take: TakeId, committed: u64, next: u64) {
        let every = u64::from(self.config.snapshot_every);
        let t = &self.takes[take.0 as usize];
        if every == 0
            || !committed.is_multiple_of(every)
            || (t.frames.len() as u64) < next
            || self.cache.as_ref().is_some_and(|p| !p.exact)
        {
            return;
        }
        let frames = &t.frames[..next as usize];
        if self.snapshots.has(committed, frames, &t.info.timeline) {
            return;
        }
        let Some(loaded) = self.loaded.as_ref() else { return };
        match loaded.model.snapshot() {
            Ok(Some(state)) => self.snapshots.insert(committed, frames.to_vec(), t.info.timeline.clone(), state),
            Ok(None) => {}
            Err(e) => tracing::warn!("no cache snapshot at frame {next}: {e}"),
        }
    }

    /// Decodes `latent` to the next frames of `take`, then stores and emits them; only the first
    /// of them carries the latent in the store. The caller ends the run when it is done.
    fn emit_latent(
        &mut self,
        take: TakeId,
        latent: Latent,
        shown: usize,
        text_ready: Instant,
        denoise_start: Instant,
        denoise_end: Instant,
    ) -> StepResult<()> {
        let loaded = self.loaded.as_mut().ok_or(EngineError::NoModel)?;
        let frames = loaded.model.decode(&latent);
        self.emit_frames(take, &latent, frames, shown, [text_ready, denoise_start, denoise_end, Instant::now()])
    }

    /// Stores and emits `frames`, decoded from `latent` (or the decode's error), as the next frames
    /// of `take` after the first `shown` of them (the take has those already). `at`: when the text
    /// was ready, the denoise started and ended, and the frames were decoded.
    fn emit_frames(
        &mut self,
        take: TakeId,
        latent: &Latent,
        frames: crate::model::Result<Vec<crate::model::Frame>>,
        shown: usize,
        at: [Instant; 4],
    ) -> StepResult<()> {
        let [text_ready, denoise_start, denoise_end, decoded] = at;
        let first = self.takes[take.0 as usize].frames.len() as u64;
        let gen_err = |e: String| EngineError::Generation { frame: first, reason: e };
        let frames = frames.map_err(|e| gen_err(e.to_string()))?;
        if frames.is_empty() {
            return Err(gen_err("the model decoded a latent to no frames".into()));
        }
        let loaded = self.loaded.as_ref().ok_or(EngineError::NoModel)?;
        let cache_bytes = loaded.model.cache_bytes();
        if self.made_by.as_ref() != Some(&loaded.record) {
            self.made_by = Some(loaded.record.clone());
        }
        // The latent's first frame carries it; when that one is already in the take, none does.
        let mut data = match shown {
            0 => Some(LatentData::from_latent(latent).map_err(|e| gen_err(e.to_string()))?),
            _ => None,
        };
        for frame in frames.into_iter().skip(shown) {
            let frame = Arc::new(frame);
            let t = &mut self.takes[take.0 as usize];
            let index = t.frames.len() as u64;
            let tag = crate::store::Tag { take: take.0, index };
            let id = self.store.put(frame.clone(), data.take(), tag).map_err(|e| EngineError::Store(e.to_string()))?;
            t.frames.push(id);
            t.info.len = t.frames.len() as u64;
            if let Some(pos) = self.cache.as_mut().filter(|p| p.take == take) {
                pos.frames = index + 1;
            }
            self.unsaved_since.get_or_insert_with(Instant::now);
            let run = self.run.as_mut().expect("frames are made only in a run");
            let timing = FrameTiming { command: run.command_at, text_ready, denoise_start, denoise_end, decoded };
            run.stats.record(&timing);
            let stats = run.stats.snapshot(cache_bytes);
            let target = run.target;
            let event = FrameEvent { take, index, id, frame, timing };
            if let Some(tap) = &self.tap
                && let Err(crossbeam_channel::TrySendError::Disconnected(_)) = tap.try_send(event.clone())
            {
                self.tap = None;
            }
            self.post(Event::Frame(event));
            self.post(Event::Progress { take, done: index + 1, target });
            self.emit(Event::Stats(stats));
        }
        Ok(())
    }

    /// The video frames among the first `len` of `take` that carry a latent (the first frame each
    /// latent decoded to), in order.
    fn latent_frames(&self, take: TakeId, len: u64) -> StepResult<Vec<u64>> {
        let mut starts = Vec::new();
        for (i, id) in self.takes[take.0 as usize].frames[..len as usize].iter().enumerate() {
            if self.store.carries_latent(*id).map_err(|e| EngineError::Store(e.to_string()))? {
                starts.push(i as u64);
            }
        }
        Ok(starts)
    }

    /// The stored latents of `take`'s video frames `frames` (each the first frame of its latent).
    fn stored_latents(&self, take: TakeId, frames: &[u64]) -> StepResult<Vec<Latent>> {
        let store_err = |e: crate::store::StoreError| EngineError::Store(e.to_string());
        frames
            .iter()
            .map(|&f| {
                let id = self.takes[take.0 as usize].frames[f as usize];
                let data = self.store.latent(id).map_err(store_err)?;
                let data = data.ok_or_else(|| EngineError::Store(format!("frame {f} lost its latent")))?;
                // Stored latents come back on the CPU; models move them to their own device.
                data.to_latent(&candle_core::Device::Cpu)
                    .map_err(|e| EngineError::Store(format!("frame {f}'s latent: {e}")))
            })
            .collect()
    }

    /// Makes the model's cache hold the first `len` frames of `take`, exactly as when they were
    /// made: the nearest snapshot the take can use restored (else `reset`), then chunk by chunk a
    /// re-cache at each hard switch and the commit of the stored latents. A take that ends inside
    /// a chunk gets that chunk made again from its start (same cache, prompt and noise: the same
    /// latents), because a chunk's latents are committed together; those past the take become
    /// surplus. The decoder is then set up to continue.
    fn position_cache(&mut self, take: TakeId, len: u64) -> StepResult<()> {
        if self.cache.as_ref().is_some_and(|p| p.take == take && p.frames == len) {
            return Ok(());
        }
        // Snapshots taken while rebuilding are exact: the cache is rebuilt from the recipe.
        self.cache = None;
        let starts = self.latent_frames(take, len)?;
        let n = starts.len() as u64;
        let chunk = self.loaded.as_ref().ok_or(EngineError::NoModel)?.info.chunk_frames.max(1) as u64;
        let whole = n / chunk * chunk;
        let rebuild_err =
            |reason: String| EngineError::Generation { frame: len, reason: format!("rebuilding the cache: {reason}") };
        let t = &self.takes[take.0 as usize];
        let model = &mut self.loaded.as_mut().expect("checked").model;
        let first = match self.snapshots.best(&t.frames[..len as usize], &t.info.timeline, &starts, whole) {
            Some((committed, snapshot)) => {
                model.restore(snapshot).map_err(|e| rebuild_err(e.to_string()))?;
                committed
            }
            None => {
                model.reset().map_err(|e| rebuild_err(e.to_string()))?;
                0
            }
        };
        let rebuilding = first < n;
        if rebuilding {
            self.emit(Event::State(EngineState::Rebuilding));
        }
        // Latents are read a chunk at a time; only the last few stay, for the decoder.
        let context = self.loaded.as_ref().expect("checked").model.decoder_context();
        // One more than the decoder's context: the last may have to be decoded again (below).
        let mut recent = std::collections::VecDeque::with_capacity(context + 1 + chunk as usize);
        let mut keep_recent = |latents: &[Latent]| {
            recent.extend(latents.iter().cloned());
            while recent.len() > context + 1 {
                recent.pop_front();
            }
        };
        keep_recent(
            &self.stored_latents(take, &starts[first.saturating_sub(context as u64 + 1) as usize..first as usize])?,
        );
        for start in (first..whole).step_by(chunk as usize) {
            let frame = starts[start as usize];
            if frame > 0
                && self.config.recache_on_switch
                && self.takes[take.0 as usize].info.timeline.is_hard_switch(frame)
            {
                let (cond, _) = self.conditioning(take, frame)?;
                let loaded = self.loaded.as_mut().expect("checked");
                loaded.model.recache(&cond).map_err(|e| rebuild_err(e.to_string()))?;
            }
            let latents = self.stored_latents(take, &starts[start as usize..(start + chunk) as usize])?;
            let after = self.commit_chunk(take, start, frame, &latents)?;
            self.keep_snapshot(take, start + chunk, after);
            keep_recent(&latents);
        }
        let mut surplus = Vec::new();
        let mut committed = whole;
        if whole < n {
            let frame = starts[whole as usize];
            let (cond, _) = self.conditioning(take, frame)?;
            let latents = self.denoise_chunk(take, whole, frame, &cond)?;
            let after = self.commit_chunk(take, whole, frame, &latents)?;
            self.keep_snapshot(take, whole + latents.len() as u64, after);
            committed += latents.len() as u64;
            surplus = latents.into_iter().skip((n - whole) as usize).collect();
            // The decoder continues from what was shown: the stored latents.
            keep_recent(&self.stored_latents(take, &starts[whole as usize..])?);
        }
        // A crash between the store writes of one latent's frames leaves the take inside that
        // latent: it goes back to the surplus and only the frames the take lacks are emitted.
        let per = self.loaded.as_ref().expect("checked").info.latent_frames;
        let mut shown = 0;
        if let Some(last) = n.checked_sub(1)
            && len - starts[last as usize] < per.of(last)
        {
            shown = (len - starts[last as usize]) as usize;
            surplus.insert(0, recent.pop_back().expect("the last latent was kept"));
        }
        let recent: Vec<Latent> = recent.into_iter().rev().take(context).rev().collect();
        let loaded = self.loaded.as_mut().expect("checked");
        loaded.model.resume_decoding(&recent).map_err(|e| rebuild_err(e.to_string()))?;
        self.cache = Some(CachePos { take, frames: len, committed, surplus, shown, exact: true });
        if rebuilding {
            self.emit(Event::State(EngineState::Generating));
        }
        Ok(())
    }

    /// The conditioning of frame `frame` of `take`, encoding prompts not seen before.
    fn conditioning(&mut self, take: TakeId, frame: u64) -> StepResult<(Conditioning, Instant)> {
        let mix = self.takes[take.0 as usize].info.timeline.mix_at(frame);
        let loaded = self.loaded.as_mut().ok_or(EngineError::NoModel)?;
        let mut warnings = Vec::new();
        for (_, text) in &mix {
            if !loaded.prompts.contains_key(text) {
                let enc = loaded
                    .model
                    .encode_prompt(text)
                    .map_err(|e| EngineError::Generation { frame, reason: format!("encoding the prompt: {e}") })?;
                if enc.truncated {
                    warnings.push(format!(
                        "the prompt \"{}\" is longer than the text encoder's {} tokens: the rest is ignored",
                        ellipsize(text, 60),
                        loaded.info.max_prompt_tokens
                    ));
                }
                if loaded.prompts.len() >= 256 {
                    loaded.prompts.clear();
                }
                loaded.prompts.insert(text.clone(), enc);
            }
        }
        let parts: Vec<(f32, &Conditioning)> = mix.iter().map(|(w, t)| (*w, &loaded.prompts[t].cond)).collect();
        let cond = Conditioning::blend(&parts).map_err(|e| EngineError::Generation { frame, reason: e.to_string() })?;
        let ready = Instant::now();
        for w in warnings {
            self.emit(Event::Warning(w));
        }
        Ok((cond, ready))
    }
}

fn take_from_record(r: &TakeRecord) -> Take {
    let frames: Vec<FrameId> = r.frame_ids().collect();
    let info = TakeInfo {
        id: TakeId(r.id),
        parent: r.parent.map(|p| (TakeId(p.take), p.keep)),
        len: frames.len() as u64,
        timeline: r.timeline.clone(),
        settings: GenSettings {
            seed: r.seed,
            steps: r.steps,
            guidance: r.guidance,
            switch_anchor: r.switch_anchor,
            keyframes: r.keyframes,
        },
        discarded: r.discarded,
    };
    Take { info, frames }
}

fn take_record(t: &Take) -> TakeRecord {
    TakeRecord {
        id: t.info.id.0,
        parent: t.info.parent.map(|(take, keep)| ParentRecord { take: take.0, keep }),
        seed: t.info.settings.seed,
        steps: t.info.settings.steps,
        guidance: t.info.settings.guidance,
        switch_anchor: t.info.settings.switch_anchor,
        keyframes: t.info.settings.keyframes,
        timeline: t.info.timeline.clone(),
        frames: TakeRecord::runs(&t.frames),
        discarded: t.info.discarded,
    }
}

/// A warning when the project's frames were made by another model, or by the same model with
/// other weights (both hashes known and different). Frames already made stay as they are; only
/// new ones (extending, regenerating) may differ.
fn weights_differ(made_by: &ModelRecord, loaded: &ModelRecord) -> Option<String> {
    let short = |h: &str| h.trim_start_matches("sip128:").chars().take(12).collect::<String>();
    if made_by.id != loaded.id {
        Some(format!(
            "this project's frames were made by {}, and {} is loaded; new frames will not match them: load {} to continue its takes as they were",
            made_by.id, loaded.id, made_by.id
        ))
    } else if let (Some(was), Some(now)) = (&made_by.weights_hash, &loaded.weights_hash)
        && was != now
    {
        Some(format!(
            "this project's frames were made with other {} weights (hash {} there, {} loaded), so extended or regenerated frames may differ from the stored ones; the stored frames are unchanged: load the original weights to continue exactly",
            loaded.id,
            short(was),
            short(now)
        ))
    } else {
        None
    }
}

fn check_steps(steps: Option<u32>, info: &ModelInfo) -> StepResult<()> {
    match steps {
        Some(s) if s == 0 || s > info.max_steps => Err(EngineError::InvalidCommand(format!(
            "{} denoising steps asked for; {} takes 1 to {}",
            s, info.id, info.max_steps
        ))),
        _ => Ok(()),
    }
}

/// A take's guidance scale must be in range, and other than 1 only for a model that has guidance.
fn check_guidance(guidance: Option<f32>, info: &ModelInfo) -> StepResult<()> {
    let Some(g) = guidance else { return Ok(()) };
    crate::model::check_guidance(g).map_err(|e| EngineError::InvalidCommand(format!("guidance scale {e}")))?;
    if info.default_guidance.is_none() && g != 1.0 {
        return Err(EngineError::InvalidCommand(format!(
            "{} has no classifier-free guidance: leave the guidance at the model's default",
            info.id
        )));
    }
    Ok(())
}

fn ellipsize(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
