//! Copies of the model's cache at points of takes, so that a rewind, a branch or a take switch
//! resumes from the nearest copy instead of committing every frame from the take's start again.
//!
//! A copy is keyed by what made the cache: the video frames before it (their ids, so a branch that
//! shares a prefix with its parent finds the parent's copies) and the timeline up to the frame that
//! follows them (commits are conditioned on it). Copies are only taken of a cache that is exactly
//! what a rebuild would make, so restoring one is the same as replaying the frames before it.

use crate::model::CacheSnapshot;
use crate::store::FrameId;
use crate::timeline::Timeline;

struct Entry {
    /// Latents committed to the copied cache.
    committed: u64,
    /// The take's video frames those latents decoded to; the next frame is `frames.len()`.
    frames: Vec<FrameId>,
    /// The take's timeline when the copy was taken; only its part up to `frames.len()` counts.
    timeline: Timeline,
    state: CacheSnapshot,
    /// When the copy was last taken or used, for evicting the least recently used.
    used: u64,
}

impl Entry {
    /// Whether a take of `frames` under `timeline` begins with this copy's frames and timeline.
    fn made_by(&self, frames: &[FrameId], timeline: &Timeline) -> bool {
        let next = self.frames.len();
        next <= frames.len()
            && frames[..next] == self.frames[..]
            && timeline.first_difference(&self.timeline).is_none_or(|d| d > next as u64)
    }
}

/// The copies kept, within a memory budget.
pub(super) struct Snapshots {
    entries: Vec<Entry>,
    budget: usize,
    clock: u64,
}

impl Snapshots {
    pub(super) fn new(budget: usize) -> Self {
        Snapshots { entries: Vec::new(), budget, clock: 0 }
    }

    /// Forgets every copy (another model is loaded: they belong to the old one).
    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Whether a copy of the cache after `committed` latents of a take of `frames` (the frames
    /// those latents made) under `timeline` is kept; it counts as used.
    pub(super) fn has(&mut self, committed: u64, frames: &[FrameId], timeline: &Timeline) -> bool {
        let now = self.tick();
        let found = self
            .entries
            .iter_mut()
            .find(|e| e.committed == committed && e.frames.len() == frames.len() && e.made_by(frames, timeline));
        found.map(|e| e.used = now).is_some()
    }

    /// Keeps a copy, evicting the least recently used ones to stay within the budget.
    pub(super) fn insert(&mut self, committed: u64, frames: Vec<FrameId>, timeline: Timeline, state: CacheSnapshot) {
        if state.bytes() > self.budget {
            return;
        }
        while self.bytes() + state.bytes() > self.budget {
            let oldest = self.entries.iter().enumerate().min_by_key(|(_, e)| e.used).map(|(i, _)| i);
            self.entries.swap_remove(oldest.expect("over budget means not empty"));
        }
        let used = self.tick();
        self.entries.push(Entry { committed, frames, timeline, state, used });
    }

    /// The copy with the most latents that a take of `frames` under `timeline` can resume from,
    /// among those with at most `max_committed` latents; `starts` are the video frames where the
    /// take's latents start. Returns its latent count and the copy, which counts as used.
    pub(super) fn best(
        &mut self,
        frames: &[FrameId],
        timeline: &Timeline,
        starts: &[u64],
        max_committed: u64,
    ) -> Option<(u64, &CacheSnapshot)> {
        let now = self.tick();
        let e = self
            .entries
            .iter_mut()
            .filter(|e| {
                // The take's latent `committed` starts where the copy's next frame is.
                let aligned = starts.get(e.committed as usize).is_none_or(|&f| f == e.frames.len() as u64);
                e.committed > 0 && e.committed <= max_committed && aligned && e.made_by(frames, timeline)
            })
            .max_by_key(|e| e.committed)?;
        e.used = now;
        Some((e.committed, &e.state))
    }

    /// Memory held by the copies.
    fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.state.bytes()).sum()
    }
}
