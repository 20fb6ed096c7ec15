//! Video models the engine drives.
//!
//! A model is driven, it never drives: the engine calls [`VideoModel`] in the order of the generation
//! loop (DESIGN.md §2): encode the prompt, denoise the next chunk from the cache, commit the finished
//! frames to the cache (their keys/values are computed once and shared by every later step), decode
//! to pixels. Nothing here knows about threads, the UI or rendering.

pub(crate) mod heads;
pub mod text;
pub mod tiny;
pub mod wan;
pub mod weights;

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Errors a model reports. Each names what was wrong and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("weights file {path} is missing: {hint}")]
    MissingWeights { path: String, hint: String },
    #[error("weights file {file} has no tensor `{name}`: the file does not belong to this model version")]
    MissingTensor { file: String, name: String },
    #[error(
        "tensor `{name}` in {file} has shape {got:?}, expected {expected:?}: the file does not match this model version"
    )]
    ShapeMismatch { file: String, name: String, expected: Vec<usize>, got: Vec<usize> },
    #[error("weights file {file} is unreadable: {reason}")]
    BadWeights { file: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// What the engine and UI need to know about a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Stable id, e.g. `spool-tiny`.
    pub id: String,
    pub width: u32,
    pub height: u32,
    /// Playback rate the model was trained for.
    pub fps: f32,
    /// Latent frames produced by one [`VideoModel::denoise`] call (and committed together).
    pub chunk_frames: usize,
    /// Video frames each latent decodes to.
    pub latent_frames: LatentFrames,
    pub default_steps: u32,
    pub max_steps: u32,
    /// Classifier-free guidance scale used when a take does not set one; `None`: the model has no
    /// guidance (it samples as if the scale were 1, and the engine refuses any other scale).
    pub default_guidance: Option<f32>,
    /// Text-encoder token limit; longer prompts are truncated with a warning.
    pub max_prompt_tokens: usize,
    /// The model has a [`VideoModel::redraw`], so a take's switch redraw and keyframes do something.
    pub redraws: bool,
    /// Compute device, for display (`cpu`, `cuda:0`).
    pub device: String,
    /// Content hash of the files the model was loaded from ([`weights::content_hash`]), computed
    /// once at load; `None` for models without weight files. Projects record it.
    pub weights_hash: Option<String>,
}

/// How many video frames each latent decodes to: `first` for a take's latent 0, `later` for every
/// other (wan-causal's TAEHV: 1 then 4; spool-tiny: 1 and 1). The engine counts a take in video
/// frames and the model's cache in latents; this maps one to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatentFrames {
    pub first: u32,
    pub later: u32,
}

impl LatentFrames {
    /// One video frame per latent.
    pub const ONE: LatentFrames = LatentFrames { first: 1, later: 1 };

    /// Video frames decoded from latent `k`.
    pub fn of(&self, k: u64) -> u64 {
        u64::from(if k == 0 { self.first } else { self.later })
    }

    /// Video frames decoded from the first `latents` latents.
    pub fn before(&self, latents: u64) -> u64 {
        match latents {
            0 => 0,
            n => u64::from(self.first) + (n - 1) * u64::from(self.later),
        }
    }

    /// Latents whose frames all lie within the first `frames` video frames.
    pub fn latents_within(&self, frames: u64) -> u64 {
        match frames.checked_sub(u64::from(self.first)) {
            None => 0,
            Some(rest) => 1 + rest / u64::from(self.later.max(1)),
        }
    }

    /// The last video frame at or before `frame` where a chunk of `chunk` latents starts: where a
    /// take cut at `frame` can be continued exactly (wan-causal: 0, 9, 21, 33, …).
    pub fn chunk_start_at_or_before(&self, chunk: usize, frame: u64) -> u64 {
        let chunk = chunk.max(1) as u64;
        self.before(self.latents_within(frame) / chunk * chunk)
    }
}

/// The conditionings a chunk of finished frames may be committed under ([`VideoModel::commit`]).
#[derive(Debug, Clone, Copy)]
pub struct CommitConditioning<'a> {
    /// The conditioning the frames were sampled under (the chunk's first frame's).
    pub own: &'a Conditioning,
    /// The conditioning of the frame after them.
    pub next: &'a Conditioning,
}

impl<'a> CommitConditioning<'a> {
    /// One conditioning for both: frames whose prompt does not change after them.
    pub fn same(cond: &'a Conditioning) -> CommitConditioning<'a> {
        CommitConditioning { own: cond, next: cond }
    }
}

/// Classifier-free guidance scales a model may be asked for: 1 (none) to 10.
pub const GUIDANCE_RANGE: std::ops::RangeInclusive<f32> = 1.0..=10.0;

/// Checks a guidance scale: finite and within [`GUIDANCE_RANGE`]. The error reads after "guidance
/// scale …", e.g. "11 is out of range: use a number from 1 to 10 (1 = no guidance)".
pub fn check_guidance(g: f32) -> std::result::Result<(), String> {
    if g.is_finite() && GUIDANCE_RANGE.contains(&g) {
        Ok(())
    } else {
        Err(format!(
            "{g} is out of range: use a number from {} to {} (1 = no guidance)",
            GUIDANCE_RANGE.start(),
            GUIDANCE_RANGE.end()
        ))
    }
}

/// How one [`VideoModel::denoise`] call samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Denoising steps, 1 to [`ModelInfo::max_steps`].
    pub steps: u32,
    /// Classifier-free guidance scale (1 = none: one conditional pass per step). Models without
    /// guidance ignore it.
    pub guidance: f32,
    /// The frame is within the frames a prompt change blends over (the engine's switch anchor
    /// window): a model that guides only part of its steps guides all of them here, so the new
    /// prompt's content arrives as fast as ever, without a cut.
    pub settling: bool,
}

impl Sampling {
    /// `steps` steps without guidance.
    pub fn steps(steps: u32) -> Sampling {
        Sampling::guided(steps, 1.0)
    }

    /// `steps` steps with guidance scale `guidance`, not settling a prompt change.
    pub fn guided(steps: u32, guidance: f32) -> Sampling {
        Sampling { steps, guidance, settling: false }
    }
}

/// Text conditioning: a set of token embeddings with a per-token additive attention-logit bias.
///
/// A single prompt has bias 0 on every token. Blending prompts concatenates their tokens with bias
/// `ln(w)` so cross-attention mixes them in proportion to their weights, whatever their lengths.
#[derive(Debug, Clone)]
pub struct Conditioning {
    /// `(n, dim)` f32.
    pub tokens: Tensor,
    /// `(n,)` f32.
    pub bias: Tensor,
    /// What the prompt asks of its objects' look over time, as the model reads its words.
    pub look: Look,
}

/// What a prompt asks of its objects' look over time. Keyframes hold an object to its first frame's
/// look, so they follow this: a spin is redrawn where it stands, a growth or a fade is left alone
/// until it settles.
/// Ordered by how much the look changes: a blend takes the most any of its prompts asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Look {
    /// The look stays: objects stand still or move as a whole (slide, bounce, orbit, a pan).
    #[default]
    Same,
    /// Objects turn where they stand (spin): their outline changes, their place does not.
    Turning,
    /// Objects grow, shrink or fade: their look itself changes.
    Changing,
}

impl Conditioning {
    /// A prompt's conditioning whose objects keep their look ([`Look::Same`]).
    pub fn new(tokens: Tensor, bias: Tensor) -> Conditioning {
        Conditioning { tokens, bias, look: Look::Same }
    }

    /// Weighted mix of conditionings; weights need not sum to one (they are normalised).
    pub fn blend(parts: &[(f32, &Conditioning)]) -> Result<Conditioning> {
        let total: f32 = parts.iter().map(|(w, _)| w.max(0.0)).sum();
        if parts.is_empty() || total <= 0.0 {
            return Err(ModelError::Invalid("a prompt blend needs at least one positive weight".into()));
        }
        if let [(_, only)] = parts {
            return Ok((*only).clone());
        }
        let mut tokens = Vec::new();
        let mut bias = Vec::new();
        let mut look = Look::Same;
        for (w, c) in parts.iter().filter(|(w, _)| *w > 0.0) {
            tokens.push(c.tokens.clone());
            bias.push((&c.bias + f64::from((w / total).ln()))?);
            look = look.max(c.look);
        }
        Ok(Conditioning { tokens: Tensor::cat(&tokens, 0)?, bias: Tensor::cat(&bias, 0)?, look })
    }
}

/// An encoded prompt and whether the text encoder had to cut it.
#[derive(Debug, Clone)]
pub struct EncodedPrompt {
    pub cond: Conditioning,
    pub truncated: bool,
}

/// One frame's latent, in the model's own layout.
#[derive(Debug, Clone)]
pub struct Latent(pub Tensor);

/// Decoded pixels of one frame: planar RGB, f32 in [-1, 1], `3 × height × width`.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub planar: Vec<f32>,
}

impl Frame {
    /// Interleaved sRGB bytes, `height × width × 3`.
    pub fn to_rgb8(&self) -> Vec<u8> {
        let n = (self.width * self.height) as usize;
        let mut out = vec![0u8; n * 3];
        for c in 0..3 {
            for (i, v) in self.planar[c * n..(c + 1) * n].iter().enumerate() {
                out[i * 3 + c] = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
            }
        }
        out
    }

    /// From interleaved RGB bytes.
    pub fn from_rgb8(width: u32, height: u32, rgb: &[u8]) -> Frame {
        let n = (width * height) as usize;
        let mut planar = vec![0f32; n * 3];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                planar[c * n + i] = f32::from(px[c]) / 127.5 - 1.0;
            }
        }
        Frame { width, height, planar }
    }
}

/// Reproducible Gaussian noise for a run of frames: seeded from `(seed, first frame index)`, so the
/// same take regenerates bit-exactly from any frame.
pub struct FrameNoise {
    rng: ChaCha8Rng,
}

impl FrameNoise {
    pub fn new(seed: u64, frame_index: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(frame_index);
        FrameNoise { rng }
    }

    /// Standard-normal f32 tensor of the given shape.
    pub fn normal(&mut self, shape: &[usize], device: &Device) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut self.rng)).collect();
        Ok(Tensor::from_vec(v, shape, device)?.to_dtype(DType::F32)?)
    }
}

/// How [`VideoModel::redraw`] redraws a frame: from noise level `strength` in (0, 1] (1: from
/// noise alone), and where its content goes.
#[derive(Debug, Clone, Copy)]
pub struct Redraw<'a> {
    pub strength: f32,
    pub place: Place<'a>,
}

/// Where a redraw puts the frame's content.
#[derive(Debug, Clone, Copy)]
pub enum Place<'a> {
    /// Where the model lays out a clip's first frame (a prompt switch: the new prompt's layout).
    Layout,
    /// Where the frame has it (a keyframe). `earlier` and `before_that` are the same take's frames
    /// one and two keyframe intervals before, when there are: they tell a still object from a
    /// moving one, and a settled growth from one under way.
    Kept { earlier: Option<&'a Latent>, before_that: Option<&'a Latent> },
}

/// A copy of a model's generation state (its cache), taken by [`VideoModel::snapshot`] and put back
/// by [`VideoModel::restore`]. Opaque to the engine, which only keeps it and counts its bytes.
pub struct CacheSnapshot {
    bytes: usize,
    state: Box<dyn std::any::Any + Send>,
}

impl CacheSnapshot {
    pub fn new<T: std::any::Any + Send>(state: T, bytes: usize) -> Self {
        CacheSnapshot { bytes, state: Box::new(state) }
    }

    /// Memory the copy holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The state, if it is of type `T` (the model that took it).
    pub fn state<T: std::any::Any>(&self) -> Option<&T> {
        self.state.downcast_ref()
    }
}

/// Decodes latents to video frames on any thread: see [`VideoModel::detached_decoder`]. Its frames
/// are exactly those of the model's own [`decode`](VideoModel::decode).
pub trait DetachedDecoder: Send + Sync {
    fn decode(&self, latent: &Latent) -> Result<Vec<Frame>>;
}

/// The interface every model family implements (spool-tiny, wan-causal, the tests' double).
///
/// The cache lives inside the model: [`reset`](Self::reset) empties it, [`commit`](Self::commit)
/// appends finished frames. Rebuilding a take's cache is `reset` followed by `commit` of its stored
/// latents in order, so any take can be resumed from any frame.
pub trait VideoModel: Send {
    fn info(&self) -> &ModelInfo;

    /// Encodes a prompt once; the engine keeps the result for as long as the prompt is in use.
    fn encode_prompt(&mut self, text: &str) -> Result<EncodedPrompt>;

    /// Empties the cache: the next [`denoise`](Self::denoise) produces frame 0.
    fn reset(&mut self) -> Result<()>;

    /// Encodes a start image (already resized to the model's size) to a frame latent, for
    /// image-to-video: the engine commits it as frame 0.
    fn encode_image(&mut self, frame: &Frame) -> Result<Latent>;

    /// Denoises the next `chunk_frames` frames from the cache in `sampling.steps` steps, conditioned
    /// on `cond`, with classifier-free guidance `sampling.guidance` if the model has it (1 = none;
    /// guidance only changes how each step's prediction is formed, never the cache). Every step
    /// reads the same cache. The cache is not extended; a model whose newest cache
    /// entry depends on the upcoming prompt may refresh that one entry when `cond` differs from
    /// the conditioning it was committed under (a prompt change that arrived after the commit).
    fn denoise(&mut self, cond: &Conditioning, noise: &mut FrameNoise, sampling: Sampling) -> Result<Vec<Latent>>;

    /// Appends finished frames to the cache, computing their keys/values once, under the
    /// conditioning its architecture asks for: `cond.own`, the one they were sampled under
    /// (wan-causal, as Self-Forcing's commit pass), or `cond.next`, that of the frame that follows
    /// them (spool-tiny's SPEC: what their cache entries will condition). Latents may arrive on the
    /// CPU (when a stored take is rebuilt); the model moves them to its device.
    fn commit(&mut self, frames: &[Latent], cond: CommitConditioning<'_>) -> Result<()>;

    /// Re-encodes the cached window under a new prompt (LongLive re-cache) so a prompt switch is
    /// clean. Models whose cache does not depend on the prompt keep the default.
    fn recache(&mut self, _cond: &Conditioning) -> Result<()> {
        Ok(())
    }

    /// The frame `source` redrawn under `cond` as if it began a clip, from noise level
    /// `how.strength` (SDEdit), its content placed as `how.place` says. The engine blends
    /// the first latents after a hard prompt switch toward such a redraw, so the switch shows what
    /// the new prompt names (`SwitchAnchor`), and replaces every n-th latent of a take by one of
    /// itself, so the objects keep their shapes (`Keyframes`). `None` (the default): the model has
    /// no such redraw, and does neither; or this frame is not one it can redraw as asked (then the
    /// frame stays as it is).
    fn redraw(
        &mut self,
        _source: &Latent,
        _cond: &Conditioning,
        _noise: &mut FrameNoise,
        _sampling: Sampling,
        _how: Redraw<'_>,
    ) -> Result<Option<Latent>> {
        Ok(None)
    }

    /// Decodes one latent to its video frames ([`ModelInfo::latent_frames`]). Latents are decoded
    /// in order: a streaming decoder (wan-causal's) carries state from one to the next, reset by
    /// [`reset`](Self::reset) and set up after a jump by [`resume_decoding`](Self::resume_decoding).
    fn decode(&mut self, latent: &Latent) -> Result<Vec<Frame>>;

    /// A decoder apart from the model, for one that keeps no state and reads nothing
    /// [`commit`](Self::commit) changes (spool-tiny's autoencoder): the engine runs it on another
    /// thread while the model commits the frame it decodes. `None` (the default): frames are
    /// decoded in order by [`decode`](Self::decode) on the engine's thread.
    fn detached_decoder(&self) -> Option<Arc<dyn DetachedDecoder>> {
        None
    }

    /// Latents a streaming decoder must see again to continue exactly after a jump; 0 (the default)
    /// for a decoder without state.
    fn decoder_context(&self) -> usize {
        0
    }

    /// Restarts the decoder so that the next [`decode`](Self::decode) continues a take after
    /// `previous`: its last latents, oldest first, at most [`decoder_context`](Self::decoder_context)
    /// of them (all of them when the take is that short). Their frames are not returned.
    fn resume_decoding(&mut self, _previous: &[Latent]) -> Result<()> {
        Ok(())
    }

    /// Bytes currently held by the cache.
    fn cache_bytes(&self) -> usize;

    /// A copy of the cache as it stands, so the engine can come back to this point of a take
    /// without committing every frame before it again. `None` (the default) for models whose cache
    /// is too large to keep copies of (wan-causal's is gigabytes of GPU memory).
    fn snapshot(&self) -> Result<Option<CacheSnapshot>> {
        Ok(None)
    }

    /// Makes the cache exactly what it was when `snapshot` was taken by this model; the snapshot
    /// stays usable. The decoder is set up separately ([`resume_decoding`](Self::resume_decoding)).
    fn restore(&mut self, _snapshot: &CacheSnapshot) -> Result<()> {
        Err(ModelError::Invalid("this model keeps no cache snapshots".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Conditioning, LatentFrames, Look};
    use candle_core::{Device, Tensor};

    #[test]
    fn a_blend_takes_the_most_changing_look_of_its_weighted_prompts() {
        let part = |look| {
            let tokens = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
            let bias = Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap();
            Conditioning { look, ..Conditioning::new(tokens, bias) }
        };
        let (same, turning, changing) = (part(Look::Same), part(Look::Turning), part(Look::Changing));
        let look = |parts: &[(f32, &Conditioning)]| Conditioning::blend(parts).unwrap().look;
        assert_eq!(look(&[(0.5, &same), (0.5, &turning)]), Look::Turning);
        assert_eq!(look(&[(0.9, &turning), (0.1, &changing), (1.0, &same)]), Look::Changing);
        // A prompt at weight 0 is not in the blend.
        assert_eq!(look(&[(1.0, &same), (0.0, &changing)]), Look::Same);
    }

    #[test]
    fn latent_frames_map_video_frames_to_chunk_starts() {
        let wan = LatentFrames { first: 1, later: 4 };
        assert_eq!((0..5).map(|n| wan.before(n)).collect::<Vec<_>>(), vec![0, 1, 5, 9, 13]);
        assert_eq!([0, 1, 4, 5, 8, 9].map(|f| wan.latents_within(f)), [0, 1, 1, 2, 2, 3]);
        let starts: Vec<u64> = [0, 8, 9, 20, 21, 32, 33].iter().map(|&f| wan.chunk_start_at_or_before(3, f)).collect();
        assert_eq!(starts, vec![0, 0, 9, 9, 21, 21, 33]);
        assert_eq!(LatentFrames::ONE.chunk_start_at_or_before(1, 7), 7);
        assert_eq!(LatentFrames::ONE.chunk_start_at_or_before(3, 7), 6);
    }
}
