//! Wan's 3D rotary position embedding.
//!
//! A head's dimensions are pairs (2j, 2j+1) rotated as complex numbers (interleaved, candle's
//! `rope_i`); the pairs are split into a frame part, a height part and a width part
//! ([`WanConfig::rope_split`]), each with its own frequencies `θ_j = 10000^(−2j / (2·pairs))` of
//! that part. Frame positions are absolute latent-frame indices, so a key keeps the rotation it was
//! cached with however long the video grows; height and width count tokens from 0. Angles are
//! computed in f64 (as the reference does) and only the cos/sin tables are f32.

use candle_core::{Device, Tensor};

use super::config::{RopeSplit, WanConfig};
use crate::model::Result;

/// cos and sin tables, `[tokens, head_dim / 2]`, for `frames` latent frames from `first_frame`,
/// tokens in the order (frame, row, column).
pub fn tables(cfg: &WanConfig, first_frame: usize, frames: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let RopeSplit { frame, height, width } = cfg.rope_split();
    let (gh, gw) = cfg.grid();
    let freqs = |pairs: usize| -> Vec<f64> {
        let dim = (2 * pairs) as f64;
        (0..pairs).map(|j| 10000f64.powf(-((2 * j) as f64) / dim)).collect()
    };
    let (ff, fh, fw) = (freqs(frame), freqs(height), freqs(width));
    let pairs = frame + height + width;
    let tokens = frames * gh * gw;
    let (mut cos, mut sin) = (Vec::with_capacity(tokens * pairs), Vec::with_capacity(tokens * pairs));
    for f in first_frame..first_frame + frames {
        for r in 0..gh {
            for c in 0..gw {
                let parts = [(f, &ff), (r, &fh), (c, &fw)];
                for (pos, part) in parts {
                    for w in part.iter() {
                        let a = pos as f64 * w;
                        cos.push(a.cos() as f32);
                        sin.push(a.sin() as f32);
                    }
                }
            }
        }
    }
    Ok((Tensor::from_vec(cos, (tokens, pairs), device)?, Tensor::from_vec(sin, (tokens, pairs), device)?))
}

/// Rotates `x` laid out `[heads, tokens, head_dim]` by the tables of [`tables`], in f32 whatever
/// `x`'s dtype (bf16 tables would lose the angles' precision), returning `x`'s dtype.
pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let x32 = x.to_dtype(candle_core::DType::F32)?.unsqueeze(0)?.contiguous()?;
    Ok(candle_nn::rotary_emb::rope_i(&x32, cos, sin)?.squeeze(0)?.to_dtype(x.dtype())?)
}
