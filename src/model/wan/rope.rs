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
/// tokens in the order (frame, row, column). Each axis's angles depend on that axis alone, so one
/// small table per axis is computed and the token table is their broadcast side by side.
pub fn tables(cfg: &WanConfig, first_frame: usize, frames: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let RopeSplit { frame, height, width } = cfg.rope_split();
    let (gh, gw) = cfg.grid();
    // `[positions, pairs]` of one axis: trig(pos · 10000^(−2j / (2·pairs)))
    let axis = |positions: std::ops::Range<usize>, pairs: usize, trig: fn(f64) -> f64| -> Result<Tensor> {
        let n = positions.len();
        let dim = (2 * pairs) as f64;
        let v: Vec<f32> = positions
            .flat_map(|pos| (0..pairs).map(move |j| trig(pos as f64 * 10000f64.powf(-((2 * j) as f64) / dim)) as f32))
            .collect();
        Ok(Tensor::from_vec(v, (n, pairs), device)?)
    };
    let table = |trig: fn(f64) -> f64| -> Result<Tensor> {
        let grid = |t: Tensor, shape: (usize, usize, usize, usize), pairs: usize| {
            t.reshape(shape)?.broadcast_as((frames, gh, gw, pairs))
        };
        let f = grid(axis(first_frame..first_frame + frames, frame, trig)?, (frames, 1, 1, frame), frame)?;
        let h = grid(axis(0..gh, height, trig)?, (1, gh, 1, height), height)?;
        let w = grid(axis(0..gw, width, trig)?, (1, 1, gw, width), width)?;
        Ok(Tensor::cat(&[&f, &h, &w], 3)?.reshape((frames * gh * gw, frame + height + width))?)
    };
    Ok((table(f64::cos)?, table(f64::sin)?))
}

/// Rotates `x` laid out `[heads, tokens, head_dim]` by the tables of [`tables`], in f32 whatever
/// `x`'s dtype (bf16 tables would lose the angles' precision), returning `x`'s dtype.
pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let x32 = x.to_dtype(candle_core::DType::F32)?.unsqueeze(0)?.contiguous()?;
    Ok(candle_nn::rotary_emb::rope_i(&x32, cos, sin)?.squeeze(0)?.to_dtype(x.dtype())?)
}
