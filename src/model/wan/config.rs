//! wan-causal's numbers: the causal Wan2.1 DiT as the Self-Forcing family runs it.
//!
//! The 1.3B values are those of the reference's `CausalWanModel` (Wan's `t2v-1.3B` config); every
//! derived number (RoPE split, tokens per frame) comes from here, so a tiny configuration of the
//! same architecture (the parity fixtures) runs the same code. [`WanConfig::validate`] rejects a
//! configuration this implementation cannot run.

use crate::model::{ModelError, Result};

/// The DiT's shape and the latent it works on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanConfig {
    /// Model width (1536).
    pub dim: usize,
    /// Feed-forward hidden width (8960).
    pub ffn_dim: usize,
    pub heads: usize,
    pub blocks: usize,
    /// Width of the sinusoidal timestep embedding (256).
    pub freq_dim: usize,
    /// Width of the text encoder's token embeddings (umT5-XXL: 4096).
    pub text_dim: usize,
    /// Context rows the text embedding always has: shorter prompts are zero-padded, and the padding
    /// rows are attended to (the reference passes no context mask).
    pub text_len: usize,
    /// Latent channels in and out (16).
    pub latent_channels: usize,
    /// Latent frame size (60×104 for 832×480 video); the patch is 2×2, so each side must be even.
    pub latent_h: usize,
    pub latent_w: usize,
    pub eps: f64,
}

/// Patch size in the latent's height and width (the temporal patch is 1).
pub const PATCH: usize = 2;

/// Pairs of the RoPE split: (frame, height, width) pairs of a head's dimensions. The reference
/// gives height and width a third of the pairs each (rounded down) and the frame axis the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RopeSplit {
    pub frame: usize,
    pub height: usize,
    pub width: usize,
}

impl WanConfig {
    /// Wan2.1-T2V-1.3B at 832×480 (what Self-Forcing's `self_forcing_dmd.pt` holds).
    pub fn wan2_1_1_3b() -> WanConfig {
        WanConfig {
            dim: 1536,
            ffn_dim: 8960,
            heads: 12,
            blocks: 30,
            freq_dim: 256,
            text_dim: 4096,
            text_len: 512,
            latent_channels: 16,
            latent_h: 60,
            latent_w: 104,
            eps: 1e-6,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.dim / self.heads
    }

    /// Token grid of one latent frame (height, width).
    pub fn grid(&self) -> (usize, usize) {
        (self.latent_h / PATCH, self.latent_w / PATCH)
    }

    /// Tokens of one latent frame (1560 at the real size).
    pub fn frame_tokens(&self) -> usize {
        let (h, w) = self.grid();
        h * w
    }

    /// Values per token of the patch embedding's input and of the head's output.
    pub fn patch_values(&self) -> usize {
        self.latent_channels * PATCH * PATCH
    }

    pub fn rope_split(&self) -> RopeSplit {
        let pairs = self.head_dim() / 2;
        RopeSplit { frame: pairs - 2 * (pairs / 3), height: pairs / 3, width: pairs / 3 }
    }

    /// Checks what the forward pass relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(ModelError::Invalid(format!("wan-causal config: {what}")));
        if self.heads == 0 || !self.dim.is_multiple_of(self.heads) {
            return bad(format!("dim {} is not a multiple of heads {}", self.dim, self.heads));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!("head dim {} is odd: RoPE needs pairs", self.head_dim()));
        }
        if !self.latent_h.is_multiple_of(PATCH)
            || !self.latent_w.is_multiple_of(PATCH)
            || self.latent_h == 0
            || self.latent_w == 0
        {
            return bad(format!(
                "latent {}×{} is not a positive multiple of the 2×2 patch",
                self.latent_h, self.latent_w
            ));
        }
        if !self.freq_dim.is_multiple_of(2) {
            return bad(format!("freq_dim {} is odd: the embedding is cos and sin halves", self.freq_dim));
        }
        Ok(())
    }
}

/// Which committed frames a chunk attends to: the first `sink_frames` forever, then the most
/// recent ones, so that sinks + recent + the chunk itself make `window_frames` (LongLive: 3 and
/// 12). Self-Forcing attends to everything up to 21 latent frames, which is the same rule with a
/// window of 21 while no more than 21 frames exist; past that the sinks keep the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    pub sink_frames: usize,
    pub window_frames: usize,
}

impl CachePolicy {
    /// Self-Forcing's global attention (21 latent frames = 81 video frames), then 3 sinks.
    pub const SELF_FORCING: CachePolicy = CachePolicy { sink_frames: 3, window_frames: 21 };
    /// LongLive's local attention with frame sinks.
    pub const LONG_LIVE: CachePolicy = CachePolicy { sink_frames: 3, window_frames: 12 };

    /// Committed frames kept after a commit: the whole window, as the reference's buffer holds them
    /// (a LongLive re-cache after a prompt switch re-encodes exactly these); a chunk attends to the
    /// sinks and the newest [`CachePolicy::recent_attended`] of the rest.
    pub fn kept_frames(&self) -> usize {
        self.window_frames
    }

    /// Recent (non-sink) committed frames a chunk of `chunk_frames` frames attends to.
    pub fn recent_attended(&self, chunk_frames: usize) -> usize {
        self.window_frames.saturating_sub(self.sink_frames + chunk_frames)
    }

    pub fn validate(&self, chunk_frames: usize) -> Result<()> {
        if self.recent_attended(chunk_frames) == 0 {
            return Err(ModelError::Invalid(format!(
                "wan-causal cache: a window of {} frames leaves no room for recent frames beside {} sinks and a \
                 chunk of {chunk_frames}: use a larger window",
                self.window_frames, self.sink_frames
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_config_has_the_references_derived_numbers() {
        let c = WanConfig::wan2_1_1_3b();
        c.validate().unwrap();
        assert_eq!(c.head_dim(), 128);
        assert_eq!(c.frame_tokens(), 1560);
        assert_eq!(c.rope_split(), RopeSplit { frame: 22, height: 21, width: 21 });
        assert_eq!(CachePolicy::LONG_LIVE.recent_attended(3), 6);
        CachePolicy::SELF_FORCING.validate(3).unwrap();
        let err = CachePolicy { sink_frames: 3, window_frames: 6 }.validate(3).unwrap_err().to_string();
        assert!(err.contains("larger window"), "{err}");
        let odd = WanConfig { latent_w: 103, ..WanConfig::wan2_1_1_3b() };
        assert!(odd.validate().unwrap_err().to_string().contains("103"));
    }
}
