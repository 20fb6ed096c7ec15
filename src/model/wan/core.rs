//! wan-causal's parts driven as the generation loop needs them, without the engine: prompt →
//! umT5 context → the DiT's prepared text; chunk after chunk of latent frames sampled from the
//! cache and committed; latents → video frames through the streaming TAEHV decoder.
//!
//! [`super::model::WanCausal`] drives it for the engine. Every part is parity-tested on its own;
//! `tests/wan_pipeline.rs` runs them together on the tiny fixtures.

use candle_core::{DType, Device, Tensor};

use super::cache::KvCache;
use super::config::{CachePolicy, WanConfig};
use super::dit::{TextCond, WanDit};
use super::files::WanFiles;
use super::sampler;
use super::taehv::{STREAM_CONTEXT, Taehv, TaehvStream};
use super::umt5::{UmT5, UmT5Config};
use super::umt5_tokenizer::UmT5Tokenizer;
use crate::model::{Conditioning, Frame, ModelError, Result};

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
        let (context, truncated) = self.encode(text)?;
        Ok(Prompt { text: self.dit.prepare_text(&context)?, truncated })
    }

    /// Tokenizes and encodes `text`: the umT5 context `[text_len, text_dim]` (zero rows past the
    /// prompt's tokens) and whether the prompt was cut to fit.
    pub fn encode(&self, text: &str) -> Result<(Tensor, bool)> {
        let rows = self.dit.config().text_len;
        let enc = self.tokenizer.encode(text, rows)?;
        Ok((self.encoder.encode_padded(&enc.ids, rows)?, enc.truncated))
    }

    /// Prepares a conditioning made of [`encode`](Self::encode)d contexts for the DiT: one, or a
    /// blend of several (their rows side by side, [`Conditioning::blend`]).
    pub fn prepare(&self, cond: &Conditioning) -> Result<TextCond> {
        let rows = self.dit.config().text_len;
        let n = cond.tokens.dim(0)?;
        if n == 0 || !n.is_multiple_of(rows) {
            return Err(ModelError::Invalid(format!(
                "wan-causal: a conditioning of {n} rows is not made of {rows}-row prompt contexts"
            )));
        }
        if n == rows {
            // One prompt: its bias is the same on every row, which softmax ignores.
            return self.dit.prepare_text(&cond.tokens);
        }
        let parts = (0..n / rows)
            .map(|p| self.dit.prepare_text(&cond.tokens.narrow(0, p * rows, rows)?))
            .collect::<Result<Vec<_>>>()?;
        TextCond::blend(&parts, &cond.bias)
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
        let x0 = self.sample(&prompt.text, steps, noise)?;
        self.commit(&prompt.text, &x0)?;
        Ok(x0)
    }

    /// Samples the next chunk from the cache without changing it: its latents `[16, 3, h, w]`.
    pub fn sample(&self, text: &TextCond, steps: usize, noise: impl FnMut(usize) -> Result<Tensor>) -> Result<Tensor> {
        sampler::sample_chunk(&self.dit, text, &self.cache, steps, noise)
    }

    /// Appends finished latents `[16, frames, h, w]` to the cache (the t = 0 pass under `text`).
    pub fn commit(&mut self, text: &TextCond, x0: &Tensor) -> Result<()> {
        sampler::commit_chunk(&self.dit, text, &mut self.cache, x0)
    }

    pub fn config(&self) -> &WanConfig {
        self.dit.config()
    }

    pub fn device(&self) -> &Device {
        self.dit.device()
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
            frames.extend(self.decode_latent(&latents.narrow(1, f, 1)?.squeeze(1)?)?);
        }
        Ok(frames)
    }

    /// Decodes the stream's next latent `[16, h, w]` to its video frames.
    pub fn decode_latent(&mut self, latent: &Tensor) -> Result<Vec<Frame>> {
        self.stream
            .decode_next(&self.decoder, latent)?
            .into_iter()
            .map(|pixels| {
                let (_, h, w) = pixels.dims3()?;
                let planar = pixels.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
                Ok(Frame { width: w as u32, height: h as u32, planar })
            })
            .collect()
    }

    /// Starts the decoder stream afresh and runs it over `previous` (a video's latents `[16, h, w]`
    /// up to a point: all of them, or at least the last [`STREAM_CONTEXT`]), so the next
    /// [`decode_latent`](Self::decode_latent) gives the frames an unbroken stream would.
    pub fn resume_decoding(&mut self, previous: &[Tensor]) -> Result<()> {
        self.stream.reset();
        for latent in &previous[previous.len().saturating_sub(STREAM_CONTEXT)..] {
            self.stream.decode_next(&self.decoder, latent)?;
        }
        Ok(())
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
