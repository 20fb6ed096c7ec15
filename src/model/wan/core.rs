//! wan-causal's parts driven as the generation loop needs them, without the engine: prompt →
//! umT5 context → the DiT's prepared text; chunk after chunk of latent frames sampled from the
//! cache and committed; latents → video frames through the streaming TAEHV decoder.
//!
//! The engine's side (one latent = 4 video frames, branch points on chunk boundaries, the decoder
//! stream across rewinds) is not wired yet; this is what it will drive. Every part is
//! parity-tested on its own; `tests/wan_pipeline.rs` runs them together on the tiny fixtures.

use candle_core::{DType, Device, Tensor};

use super::cache::KvCache;
use super::config::{CachePolicy, WanConfig};
use super::dit::{TextCond, WanDit};
use super::files::WanFiles;
use super::sampler;
use super::taehv::{Taehv, TaehvStream};
use super::umt5::{UmT5, UmT5Config};
use super::umt5_tokenizer::UmT5Tokenizer;
use crate::model::{Frame, ModelError, Result};

/// Latent frames sampled together (Self-Forcing's `num_frame_per_block`).
pub const CHUNK_FRAMES: usize = 3;

/// A prompt made ready for the DiT.
pub struct Prompt {
    pub text: TextCond,
    /// Whether the tokenizer cut it to the encoder's length.
    pub truncated: bool,
}

pub struct WanCore {
    tokenizer: UmT5Tokenizer,
    encoder: UmT5,
    dit: WanDit,
    decoder: Taehv,
    cache: KvCache,
    stream: TaehvStream,
}

impl WanCore {
    /// Loads every part from `files`: the DiT of `dit` in `dtype`, the text encoder of `text`.
    pub fn load(
        files: &WanFiles,
        dit: &WanConfig,
        text: &UmT5Config,
        policy: CachePolicy,
        device: &Device,
        dtype: DType,
    ) -> Result<WanCore> {
        policy.validate(CHUNK_FRAMES)?;
        if text.dim != dit.text_dim {
            return Err(ModelError::Invalid(format!(
                "wan-causal: the text encoder is {} wide but the DiT reads {}-wide context: the files belong to \
                 different models",
                text.dim, dit.text_dim
            )));
        }
        let tokenizer = UmT5Tokenizer::load(&files.tokenizer)?;
        if tokenizer.vocab_size() > text.vocab {
            return Err(ModelError::BadWeights {
                file: files.tokenizer.display().to_string(),
                reason: format!(
                    "{} tokens, more than the text encoder's {} embeddings: it is not this encoder's tokenizer",
                    tokenizer.vocab_size(),
                    text.vocab
                ),
            });
        }
        Ok(WanCore {
            tokenizer,
            encoder: UmT5::load(&files.text_encoder, text, device)?,
            dit: WanDit::load(&files.generator, dit, device, dtype)?,
            decoder: Taehv::load(&files.decoder, device)?,
            cache: KvCache::new(policy, dit.frame_tokens()),
            stream: TaehvStream::new(),
        })
    }

    /// Tokenizes and encodes `text` (at most the DiT's context rows) and prepares it for the DiT.
    pub fn prompt(&self, text: &str) -> Result<Prompt> {
        let rows = self.dit.config().text_len;
        let enc = self.tokenizer.encode(text, rows)?;
        let context = self.encoder.encode_padded(&enc.ids, rows)?;
        Ok(Prompt { text: self.dit.prepare_text(&context)?, truncated: enc.truncated })
    }

    /// Samples the next chunk of [`CHUNK_FRAMES`] latent frames in `steps` steps under `prompt`,
    /// commits it, and returns its latents `[16, 3, h, w]`. `noise(k)` is as
    /// [`sampler::sample_chunk`] takes it.
    pub fn next_chunk(
        &mut self,
        prompt: &Prompt,
        steps: usize,
        noise: impl FnMut(usize) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let x0 = sampler::sample_chunk(&self.dit, &prompt.text, &self.cache, steps, noise)?;
        sampler::commit_chunk(&self.dit, &prompt.text, &mut self.cache, &x0)?;
        Ok(x0)
    }

    /// The shape of one chunk's latents (and of its noise).
    pub fn chunk_shape(&self) -> [usize; 4] {
        let c = self.dit.config();
        [c.latent_channels, CHUNK_FRAMES, c.latent_h, c.latent_w]
    }

    /// Decodes a chunk's latents to video frames, in order through the decoder's stream: the very
    /// first latent gives 1 frame, every later one 4.
    pub fn decode(&mut self, latents: &Tensor) -> Result<Vec<Frame>> {
        let mut frames = Vec::new();
        for f in 0..latents.dim(1)? {
            for pixels in self.stream.decode_next(&self.decoder, &latents.narrow(1, f, 1)?.squeeze(1)?)? {
                let (_, h, w) = pixels.dims3()?;
                frames.push(Frame {
                    width: w as u32,
                    height: h as u32,
                    planar: pixels.flatten_all()?.to_vec1::<f32>()?,
                });
            }
        }
        Ok(frames)
    }

    /// Bytes the DiT's cache holds.
    pub fn cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Starts a new video: empty cache, fresh decoder stream.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.stream.reset();
    }
}
