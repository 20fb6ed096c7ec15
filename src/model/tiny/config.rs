//! spool-tiny's numbers, read from `assets/spool-tiny/config.json`.
//!
//! The field names are those the training code writes (`training/spool_tiny/model.py`, `config_dict`);
//! every field has the SPEC value as its default, so a config that omits a number means the contract's
//! number. [`Config::validate`] rejects a config this implementation cannot run, at load time.

use std::path::Path;

use serde::Deserialize;

use crate::model::{ModelError, Result};

/// The file names a model directory holds (`files` in config.json).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct Files {
    pub model: String,
    pub ae: String,
}

impl Default for Files {
    fn default() -> Self {
        Files { model: "model.safetensors".into(), ae: "ae.safetensors".into() }
    }
}

/// Everything the candle implementation needs to know about a spool-tiny checkpoint.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    pub name: String,
    pub version: u32,
    pub image_size: usize,
    pub fps: f32,
    pub latent_channels: usize,
    /// Side of the latent grid (8): a frame is `latent_hw²` tokens.
    pub latent_hw: usize,
    pub tokens_per_frame: usize,
    pub pooled_tokens_per_frame: usize,
    pub d_model: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub mlp_ratio: usize,
    pub encoder_blocks: usize,
    pub decoder_blocks: usize,
    pub text_dim: usize,
    pub text_max_tokens: usize,
    /// Elements seen at full resolution, the current one included.
    pub n_full: usize,
    /// Elements at the start kept at full resolution forever (BOS and frame 0).
    pub n_sink: usize,
    /// Elements seen at all (full or pooled), the current one included.
    pub window: usize,
    pub temporal_bias_max_distance: usize,
    pub alibi_slopes: Vec<f32>,
    pub pooled_logit_bias: f32,
    pub layernorm_eps: f32,
    pub time_embed_dim: usize,
    pub time_scale: f32,
    pub sampler_shift: f32,
    pub default_steps: u32,
    pub max_steps: u32,
    /// Classifier-free guidance scale used by default (1 = none). Absent from checkpoints trained
    /// without caption dropout, which means 1.
    pub guidance_scale: f32,
    /// The lowest noise level at which a frame drawn from noise is guided (0, also when absent:
    /// every step). The shipped config sets 0.6, the last of four steps unguided: guidance at low
    /// noise fades a rollout's objects (training/README.md, "Guidance in a limited interval
    /// shipped").
    pub guidance_min_t: f32,
    pub data_version: String,
    /// Autoencoder widths: the encoder's stages (a stride-2 conv between neighbours) and the
    /// decoder's (a ×2 upsample between neighbours, then a final ×2 pixel shuffle). The SPEC's v1
    /// widths are the defaults; parity fixtures use narrower ones, the "f8c4" layout fewer stages.
    pub ae_enc_channels: Vec<usize>,
    pub ae_dec_channels: Vec<usize>,
    /// 1: the convolutional latent is the latent. 2: it has `latent_hw·2` sides and a quarter of the
    /// channels, folded 2×2 into the latent (space-to-depth, PyTorch's `pixel_unshuffle` order)
    /// and followed by a 1×1 map (`enc.proj`; `dec.proj` before the unfold).
    pub ae_patch: usize,
    pub files: Files,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "spool-tiny".into(),
            version: 1,
            image_size: 128,
            fps: 16.0,
            latent_channels: 16,
            latent_hw: 8,
            tokens_per_frame: 64,
            pooled_tokens_per_frame: 16,
            d_model: 192,
            heads: 4,
            head_dim: 48,
            mlp_ratio: 4,
            encoder_blocks: 6,
            decoder_blocks: 3,
            text_dim: 384,
            text_max_tokens: 32,
            n_full: 2,
            n_sink: 2,
            window: 12,
            temporal_bias_max_distance: 16,
            alibi_slopes: vec![0.5, 0.25, 0.125, 0.0625],
            pooled_logit_bias: 4f32.ln(),
            layernorm_eps: 1e-6,
            time_embed_dim: 256,
            time_scale: 1000.0,
            sampler_shift: 3.0,
            default_steps: 4,
            max_steps: 8,
            guidance_scale: 1.0,
            guidance_min_t: 0.0,
            data_version: String::new(),
            ae_enc_channels: vec![32, 48, 64, 96, 128],
            ae_dec_channels: vec![128, 96, 64, 32],
            ae_patch: 1,
            files: Files::default(),
        }
    }
}

impl Config {
    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Config> {
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModelError::MissingWeights {
                    path: file,
                    hint: "a spool-tiny model directory holds config.json next to its safetensors files".into(),
                });
            }
            Err(e) => {
                return Err(ModelError::BadWeights { file, reason: e.to_string() });
            }
        };
        let cfg: Config = serde_json::from_str(&text).map_err(|e| ModelError::BadWeights {
            file: file.clone(),
            reason: format!("not a spool-tiny config: {e}"),
        })?;
        cfg.validate().map_err(|reason| ModelError::BadWeights { file, reason })?;
        Ok(cfg)
    }

    /// Checks that the numbers are ones this implementation runs: the model family and version, and
    /// the relations between sizes that the code relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.name != "spool-tiny" || self.version != 1 {
            return Err(format!("it describes {} v{}; this build runs spool-tiny v1", self.name, self.version));
        }
        // Checked products: absurd numbers fail validation instead of overflowing.
        let scale = |widths: usize, extra: usize| {
            let stages = u32::try_from(widths.checked_sub(1)?).ok()?;
            2usize.checked_pow(stages)?.checked_mul(extra)?.checked_mul(self.ae_patch)?.checked_mul(self.latent_hw)
        };
        let patch_area = self.ae_patch.checked_mul(self.ae_patch).filter(|&a| a > 0);
        let checks: [(bool, &str); 14] = [
            (self.heads * self.head_dim == self.d_model, "heads × head_dim must equal d_model"),
            (self.latent_hw.is_multiple_of(2), "latent_hw must be even (2×2 pooling)"),
            (self.tokens_per_frame == self.latent_hw * self.latent_hw, "tokens_per_frame must be latent_hw²"),
            (self.pooled_tokens_per_frame * 4 == self.tokens_per_frame, "pooled_tokens_per_frame must be a quarter"),
            (self.alibi_slopes.len() == self.heads, "alibi_slopes needs one slope per head"),
            (self.n_full >= 1 && self.window >= self.n_full, "need 1 ≤ n_full ≤ window"),
            (self.time_embed_dim.is_multiple_of(2), "time_embed_dim must be even"),
            (matches!(self.ae_patch, 1 | 2), "ae_patch must be 1 or 2"),
            (
                patch_area.is_some_and(|a| self.latent_channels.is_multiple_of(a)),
                "latent_channels must be a multiple of ae_patch²",
            ),
            (
                scale(self.ae_enc_channels.len(), 1) == Some(self.image_size),
                "image_size must be latent_hw × ae_patch × 2^(len(ae_enc_channels) − 1)",
            ),
            (
                scale(self.ae_dec_channels.len(), 2) == Some(self.image_size),
                "image_size must be latent_hw × ae_patch × 2^len(ae_dec_channels)",
            ),
            (self.max_steps >= 1 && self.default_steps >= 1, "steps must be at least 1"),
            (self.encoder_blocks >= 1 && self.decoder_blocks >= 1, "needs at least one block each"),
            ((0.0..=1.0).contains(&self.guidance_min_t), "guidance_min_t must be a noise level, 0 to 1"),
        ];
        if let Some((_, msg)) = checks.iter().find(|(ok, _)| !ok) {
            return Err((*msg).to_string());
        }
        crate::model::check_guidance(self.guidance_scale).map_err(|e| format!("guidance_scale {e}"))
    }

    /// Tokens attended by one query in the encoder: the full-resolution elements (sinks and the
    /// recent ones) and the pooled ring.
    pub fn encoder_keys(&self) -> usize {
        (self.n_sink + self.n_full) * self.tokens_per_frame + self.pooled_slots() * self.pooled_tokens_per_frame
    }

    /// Elements seen pooled at once: the window minus those seen at full resolution.
    pub fn pooled_slots(&self) -> usize {
        self.window - self.n_full
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    fn autoencoder_layouts_validate() {
        let f8c4 = Config {
            ae_enc_channels: vec![32, 48, 64, 96],
            ae_dec_channels: vec![96, 64, 48],
            ae_patch: 2,
            ..Config::default()
        };
        assert_eq!(Config::default().validate(), Ok(()));
        assert_eq!(f8c4.validate(), Ok(()));
        let v1_widths_patched = Config { ae_patch: 2, ..Config::default() };
        assert!(v1_widths_patched.validate().unwrap_err().contains("image_size"));
        for patch in [0, 3, usize::MAX] {
            let bad = Config { ae_patch: patch, ..f8c4.clone() };
            assert!(bad.validate().is_err(), "ae_patch {patch} must be refused, not overflow");
        }
        let many = Config { ae_enc_channels: vec![8; 70], ..Config::default() };
        assert!(many.validate().is_err());
    }
}
