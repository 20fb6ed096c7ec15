//! The engine: a background thread that owns the model, the takes and the generation loop.
//!
//! Callers talk to it only through channels: [`Command`]s in, [`Event`]s out. The engine never
//! imports the UI; a caller that wants to be woken when an event arrives passes a [`Waker`]
//! (the GUI passes `egui::Context::request_repaint`). Dropping the [`Engine`] handle shuts the
//! thread down cleanly, flushing the frame store.

pub mod protocol;
mod snapshots;
mod stats;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

pub use crate::timeline::{Keyframes, SwitchAnchor};
pub use protocol::*;
pub use stats::RollingDurations;

use crate::model::VideoModel;
use crate::project::{Project, ProjectError};
use crate::store::FrameStore;

/// Builds a model from a spec; the error is a one-line reason shown to the user.
pub type ModelFactory = Box<dyn Fn(&ModelSpec) -> Result<Box<dyn VideoModel>, String> + Send>;

/// Called after each event is sent, from the engine thread.
pub type Waker = Box<dyn Fn() + Send>;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The project folder the engine works in (created if missing); see `project`.
    pub project: PathBuf,
    /// Decoded frames kept in memory; older ones are read back from disk.
    pub memory_frames: usize,
    /// Re-encode the cached window under the new prompt at a hard prompt switch (LongLive).
    pub recache_on_switch: bool,
    /// Keep a copy of the model's cache every this many latents (0: none), so a rewind or branch
    /// resumes from the nearest copy instead of rebuilding the take from its start. Models whose
    /// cache is too large to copy keep none whatever this says.
    pub snapshot_every: u32,
    /// Memory the copies may take together; the least recently used go first.
    pub snapshot_budget: usize,
}

impl EngineConfig {
    pub fn new(project: PathBuf) -> Self {
        EngineConfig {
            project,
            memory_frames: 256,
            recache_on_switch: true,
            // spool-tiny's cache is ~3.8 MiB: one copy per 2 s of video, ~1,000 frames' worth.
            snapshot_every: 32,
            snapshot_budget: 128 << 20,
        }
    }
}

/// Handle to the engine thread.
pub struct Engine {
    project: PathBuf,
    commands: Sender<Command>,
    events: Receiver<Event>,
    store: Arc<FrameStore>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Opens the project (taking its lock, recovering frames made after its last save) and starts
    /// the engine thread. The first event is [`Event::ProjectOpened`]. No model is loaded until
    /// [`Command::LoadModel`].
    pub fn spawn(config: EngineConfig, factory: ModelFactory, waker: Option<Waker>) -> Result<Engine, ProjectError> {
        let (project, manifest, store, recovery) = Project::open(&config.project, config.memory_frames)?;
        let dir = config.project.clone();
        let store = Arc::new(store);
        let (cmd_tx, cmd_rx) = crossbeam_channel::unbounded();
        let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
        let worker = worker::Worker::new(factory, config, project, manifest, recovery, store.clone(), ev_tx, waker);
        let thread = std::thread::Builder::new()
            .name("spool-engine".into())
            .spawn(move || worker.run_loop(cmd_rx))
            .map_err(|source| ProjectError::Io { path: "engine thread".into(), source })?;
        Ok(Engine { project: dir, commands: cmd_tx, events: ev_rx, store, thread: Some(thread) })
    }

    /// Sends a command. Fails only if the engine thread is gone.
    pub fn send(&self, cmd: Command) -> Result<(), EngineGone> {
        self.commands.send(cmd).map_err(|_| EngineGone)
    }

    /// A sender for commands from elsewhere (a Ctrl+C handler, another thread).
    pub fn commander(&self) -> Sender<Command> {
        self.commands.clone()
    }

    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// The project folder the engine works in.
    pub fn project(&self) -> &std::path::Path {
        &self.project
    }

    /// The frame store, for reading stored frames (scrubbing, export).
    pub fn store(&self) -> &Arc<FrameStore> {
        &self.store
    }
}

/// The engine thread has exited.
#[derive(Debug, thiserror::Error)]
#[error("the engine thread has stopped")]
pub struct EngineGone;

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
