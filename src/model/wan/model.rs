//! wan-causal as the engine drives it: [`WanCausal`] implements [`VideoModel`] over [`WanCore`].
//!
//! A denoise is one chunk of [`CHUNK_FRAMES`] latent frames; each latent decodes to 4 video frames
//! (the take's first to 1) through TAEHV's stream, which the engine sets up again after a jump
//! ([`VideoModel::resume_decoding`]). A prompt is its umT5 context (`[text_len, text_dim]`, zero
//! rows past its tokens); a blend puts several side by side and the DiT's cross-attention weighs
//! them by the conditioning's bias. Prepared prompts (each block's cross-attention keys/values)
//! are kept for the few conditionings in use.
//!
//! The folder a user points at is searched by [`files::find`]; the numbers are the released
//! model's unless the folder holds a `wan-causal.json` ([`WanModelConfig`]), which is how the tiny
//! test fixtures run through the same path on the CPU.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, TensorId};

use super::config::{CachePolicy, WanConfig};
use super::core::{CHUNK_FRAMES, WanCore};
use super::dit::TextCond;
use super::files::{self, WanFiles};
use super::sampler::STEP_TIMES;
use super::taehv::{FRAMES_PER_LATENT, SPATIAL_UPSCALE, STREAM_CONTEXT};
use super::umt5::UmT5Config;
use crate::model::{
    CommitConditioning, Conditioning, EncodedPrompt, Frame, FrameNoise, Latent, LatentFrames, ModelError, ModelInfo,
    Result, Sampling, VideoModel,
};

/// The file in a weights folder that overrides the released model's numbers.
pub const CONFIG_FILE: &str = "wan-causal.json";

/// The numbers of the DiT and the text encoder in a weights folder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanModelConfig {
    pub dit: WanConfig,
    pub text_encoder: UmT5Config,
}

impl WanModelConfig {
    /// Self-Forcing's Wan2.1-T2V-1.3B at 832×480 with umT5-XXL.
    pub fn released() -> WanModelConfig {
        WanModelConfig { dit: WanConfig::wan2_1_1_3b(), text_encoder: UmT5Config::umt5_xxl() }
    }

    /// `dir/wan-causal.json` if there is one, else [`released`](Self::released).
    pub fn in_folder(dir: &Path) -> Result<WanModelConfig> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WanModelConfig::released()),
            Err(e) => return Err(ModelError::BadWeights { file: path.display().to_string(), reason: e.to_string() }),
        };
        serde_json::from_str(&text).map_err(|e| ModelError::BadWeights {
            file: path.display().to_string(),
            reason: format!("{e}: remove the file to run the released model"),
        })
    }
}

/// Conditionings kept prepared: the current prompt, the next one and a blend between them.
const PREPARED: usize = 4;

pub struct WanCausal {
    core: WanCore,
    info: ModelInfo,
    /// Prepared conditionings by the ids of their tensors (the engine keeps each prompt's
    /// conditioning, so the same prompt comes back as the same tensors), newest last.
    prepared: Vec<((TensorId, TensorId), Arc<TextCond>)>,
}

impl WanCausal {
    /// Loads wan-causal from the folder a user chose: its files ([`files::find`]) and numbers
    /// ([`WanModelConfig::in_folder`]). On a GPU the DiT computes in bf16, on the CPU in f32.
    pub fn load_dir(dir: &Path, device: &Device) -> Result<WanCausal> {
        let files = files::find(dir)?;
        let config = WanModelConfig::in_folder(dir)?;
        let config_file = dir.join(CONFIG_FILE);
        let extra = config_file.exists().then_some(config_file);
        WanCausal::load(&files, &config, extra.as_deref(), device)
    }

    /// Loads wan-causal from `files` with `config`; `config_file` (if the numbers came from one) is
    /// hashed with the weights. The cache policy follows the generator: LongLive's checkpoint
    /// attends to a window of 12 latent frames, Self-Forcing's to 21.
    pub fn load(
        files: &WanFiles,
        config: &WanModelConfig,
        config_file: Option<&Path>,
        device: &Device,
    ) -> Result<WanCausal> {
        let longlive = files.generator.file_name().is_some_and(|n| n.to_string_lossy().starts_with("longlive"));
        let policy = if longlive { CachePolicy::LONG_LIVE } else { CachePolicy::SELF_FORCING };
        let dtype = if device.is_cpu() { DType::F32 } else { DType::BF16 };
        let core = WanCore::load(files, &config.dit, &config.text_encoder, policy, device, dtype)?;
        let hashed = [&files.generator, &files.text_encoder, &files.tokenizer, &files.decoder];
        let weights_hash =
            crate::model::weights::content_hash(hashed.into_iter().map(|p| p.as_path()).chain(config_file))?;
        let dit = &config.dit;
        let info = ModelInfo {
            id: "wan-causal".into(),
            width: (dit.latent_w * SPATIAL_UPSCALE) as u32,
            height: (dit.latent_h * SPATIAL_UPSCALE) as u32,
            fps: 16.0,
            chunk_frames: CHUNK_FRAMES,
            latent_frames: LatentFrames { first: 1, later: FRAMES_PER_LATENT as u32 },
            default_steps: STEP_TIMES.len() as u32,
            max_steps: STEP_TIMES.len() as u32,
            default_guidance: None,
            max_prompt_tokens: dit.text_len,
            redraws: false,
            device: if device.is_cpu() { "cpu".into() } else { "cuda:0".into() },
            weights_hash: Some(weights_hash),
        };
        Ok(WanCausal { core, info, prepared: Vec::new() })
    }

    /// `cond` prepared for the DiT, from the kept ones when it was prepared lately.
    fn prepared(&mut self, cond: &Conditioning) -> Result<Arc<TextCond>> {
        let key = (cond.tokens.id(), cond.bias.id());
        if let Some(i) = self.prepared.iter().position(|(k, _)| *k == key) {
            let entry = self.prepared.remove(i);
            self.prepared.push(entry);
        } else {
            if self.prepared.len() == PREPARED {
                self.prepared.remove(0);
            }
            self.prepared.push((key, Arc::new(self.core.prepare(cond)?)));
        }
        Ok(self.prepared.last().expect("just pushed").1.clone())
    }

    fn on_device(&self, latent: &Latent) -> Result<Tensor> {
        Ok(latent.0.to_device(self.core.device())?)
    }
}

impl VideoModel for WanCausal {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode_prompt(&mut self, text: &str) -> Result<EncodedPrompt> {
        let (tokens, truncated) = self.core.encode(text)?;
        let bias = Tensor::zeros(tokens.dim(0)?, DType::F32, tokens.device())?;
        Ok(EncodedPrompt { cond: Conditioning::new(tokens, bias), truncated })
    }

    fn reset(&mut self) -> Result<()> {
        self.core.reset();
        Ok(())
    }

    fn encode_image(&mut self, _frame: &Frame) -> Result<Latent> {
        Err(ModelError::Invalid(
            "wan-causal cannot start from an image yet (that needs Wan's VAE encoder): generate from a prompt, or use \
             spool-tiny for a start image"
                .into(),
        ))
    }

    /// One chunk of [`CHUNK_FRAMES`] latents; `noise` gives the starting noise and then each
    /// step's re-noising, in that order. The model has no guidance (`sampling.guidance` is 1).
    fn denoise(&mut self, cond: &Conditioning, noise: &mut FrameNoise, sampling: Sampling) -> Result<Vec<Latent>> {
        let text = self.prepared(cond)?;
        let shape = self.core.chunk_shape();
        let device = self.core.device().clone();
        let x0 = self.core.sample(&text, sampling.steps as usize, |_| noise.normal(&shape, &device))?;
        (0..x0.dim(1)?).map(|f| Ok(Latent(x0.narrow(1, f, 1)?.squeeze(1)?.contiguous()?))).collect()
    }

    /// The t = 0 pass under the prompt the chunk was sampled with, as Self-Forcing does: a prompt
    /// change never reaches frames already committed (until a re-cache), so a rebuilt take
    /// continues exactly as it was made.
    fn commit(&mut self, frames: &[Latent], cond: CommitConditioning<'_>) -> Result<()> {
        let text = self.prepared(cond.own)?;
        let latents = frames.iter().map(|l| self.on_device(l)).collect::<Result<Vec<_>>>()?;
        self.core.commit(&text, &Tensor::stack(&latents, 1)?)
    }

    fn decode(&mut self, latent: &Latent) -> Result<Vec<Frame>> {
        let latent = self.on_device(latent)?;
        self.core.decode_latent(&latent)
    }

    fn decoder_context(&self) -> usize {
        STREAM_CONTEXT
    }

    fn resume_decoding(&mut self, previous: &[Latent]) -> Result<()> {
        let previous = previous.iter().map(|l| self.on_device(l)).collect::<Result<Vec<_>>>()?;
        self.core.resume_decoding(&previous)
    }

    fn cache_bytes(&self) -> usize {
        self.core.cache_bytes()
    }
}
