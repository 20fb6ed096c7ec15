//! The DiT's self-attention cache: each block's keys (rotated) and values of committed frames.
//!
//! Spool's contract (ARCHITECTURE.md "Invariants"): denoising steps read the cache and attend to
//! it plus their own chunk's keys/values, never storing; the commit pass (the finished chunk at
//! t = 0) stores. This is what the reference's in-place buffer amounts to: every step rewrites the
//! chunk's slots and the t = 0 pass leaves the clean ones. Eviction follows [`CachePolicy`]:
//! the first `sink_frames` frames stay forever, the rest is a window of the newest frames, so the
//! memory is constant once the window is full. Keys keep the rotation of their absolute frame
//! index; the order of frames inside the store does not matter to attention.

use candle_core::Tensor;

use super::config::CachePolicy;
use crate::model::{ModelError, Result};

/// One block's stored keys and values, `[heads, tokens, head_dim]` each, frames in the order of
/// [`KvCache::frames`].
#[derive(Debug, Clone)]
struct BlockKv {
    k: Tensor,
    v: Tensor,
}

/// Keys and values of one chunk for every block, as a forward pass produces them.
pub type ChunkKv = Vec<(Tensor, Tensor)>;

#[derive(Debug, Clone)]
pub struct KvCache {
    policy: CachePolicy,
    frame_tokens: usize,
    blocks: Vec<BlockKv>,
    /// Absolute latent-frame index of each stored frame: sinks first, then the rest oldest first.
    frames: Vec<usize>,
    /// Latent frames committed so far (the next chunk's first frame).
    committed: usize,
}

impl KvCache {
    pub fn new(policy: CachePolicy, frame_tokens: usize) -> KvCache {
        KvCache { policy, frame_tokens, blocks: Vec::new(), frames: Vec::new(), committed: 0 }
    }

    pub fn policy(&self) -> CachePolicy {
        self.policy
    }

    /// The absolute index of the next latent frame: where the next chunk starts.
    pub fn next_frame(&self) -> usize {
        self.committed
    }

    /// Absolute indices of the stored frames, in storage order.
    pub fn frames(&self) -> &[usize] {
        &self.frames
    }

    pub fn clear(&mut self) {
        self.blocks.clear();
        self.frames.clear();
        self.committed = 0;
    }

    /// Bytes held by the stored keys and values.
    pub fn bytes(&self) -> usize {
        self.blocks.iter().map(|b| (b.k.elem_count() + b.v.elem_count()) * b.k.dtype().size_in_bytes()).sum()
    }

    /// Block `block`'s stored keys and values (`None` before the first commit).
    pub fn block(&self, block: usize) -> Option<(&Tensor, &Tensor)> {
        self.blocks.get(block).map(|b| (&b.k, &b.v))
    }

    /// What a chunk of `chunk_frames` frames attends to in block `block` besides itself: the sinks
    /// and the newest [`CachePolicy::recent_attended`] other frames.
    pub fn attended(&self, block: usize, chunk_frames: usize) -> Result<Option<(Tensor, Tensor)>> {
        let Some(b) = self.blocks.get(block) else { return Ok(None) };
        let sinks = self.stored_sinks();
        let recent = (self.frames.len() - sinks).min(self.policy.recent_attended(chunk_frames));
        let skip = self.frames.len() - sinks - recent;
        if skip == 0 {
            return Ok(Some((b.k.clone(), b.v.clone())));
        }
        let t = self.frame_tokens;
        let pick = |x: &Tensor| -> Result<Tensor> {
            let head = x.narrow(1, 0, sinks * t)?;
            let tail = x.narrow(1, (sinks + skip) * t, recent * t)?;
            Ok(Tensor::cat(&[&head, &tail], 1)?)
        };
        Ok(Some((pick(&b.k)?, pick(&b.v)?)))
    }

    /// Stores a finished chunk that starts at absolute frame `first_frame` (it must follow the
    /// last committed frame), then evicts the oldest non-sink frames beyond the window.
    pub fn commit(&mut self, first_frame: usize, chunk: ChunkKv) -> Result<()> {
        if first_frame != self.committed {
            return Err(ModelError::Invalid(format!(
                "wan-causal cache: a chunk starting at latent frame {first_frame} cannot follow frame {}: commit \
                 chunks in order, or reset and rebuild the cache",
                self.committed
            )));
        }
        if !self.blocks.is_empty() && chunk.len() != self.blocks.len() {
            return Err(ModelError::Invalid(format!(
                "wan-causal cache: a chunk for {} blocks does not fit a cache of {}",
                chunk.len(),
                self.blocks.len()
            )));
        }
        let t = self.frame_tokens;
        let new_frames = chunk.first().map(|(k, _)| k.dim(1)).transpose()?.unwrap_or(0) / t;
        let mut frames = self.frames.clone();
        frames.extend(first_frame..first_frame + new_frames);
        let sinks = frames.iter().take_while(|&&f| f < self.policy.sink_frames).count();
        let drop = frames.len().saturating_sub(self.policy.kept_frames());
        frames.drain(sinks..sinks + drop);
        let join = |old: Option<&Tensor>, new: Tensor| -> Result<Tensor> {
            let joined = match old {
                Some(old) => Tensor::cat(&[old, &new], 1)?,
                None => new,
            };
            if drop == 0 {
                return Ok(joined);
            }
            let rest = joined.dim(1)? - (sinks + drop) * t;
            Ok(Tensor::cat(&[&joined.narrow(1, 0, sinks * t)?, &joined.narrow(1, (sinks + drop) * t, rest)?], 1)?)
        };
        let mut blocks = Vec::with_capacity(chunk.len());
        for (i, (k, v)) in chunk.into_iter().enumerate() {
            let old = self.blocks.get(i);
            blocks.push(BlockKv { k: join(old.map(|b| &b.k), k)?, v: join(old.map(|b| &b.v), v)? });
        }
        self.blocks = blocks;
        self.frames = frames;
        self.committed += new_frames;
        Ok(())
    }

    /// Stored frames that are sinks (fewer than `sink_frames` at the very start).
    fn stored_sinks(&self) -> usize {
        self.frames.iter().take_while(|&&f| f < self.policy.sink_frames).count()
    }
}
