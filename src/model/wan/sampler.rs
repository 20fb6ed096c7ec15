//! The few-step sampler the DMD-distilled generator was trained for (Self-Forcing's inference).
//!
//! A chunk starts from pure noise at t = 1000; each step predicts the flow `v`, takes the clean
//! estimate `x0 = x_t − σ·v` (σ = t / 1000, in f64 as the reference does) and, unless it is the last
//! step, re-noises that estimate to the next time with fresh noise: `x = (1 − σ')·x0 + σ'·ε`. The
//! times are the scheduler's (shift 5) at the training steps 1000, 750, 500, 250; fewer steps exit
//! early along the same list, as the generator was trained to. There is no guidance.

use candle_core::{DType, Tensor};

use super::cache::KvCache;
use super::dit::{TextCond, WanDit};
use crate::model::{ModelError, Result};

/// The timesteps of the four steps (f32, as the reference passes them).
pub const STEP_TIMES: [f32; 4] = [1000.0, 937.5, 833.333_3, 625.0];

fn sigma(t: f32) -> f64 {
    f64::from(t) / 1000.0
}

/// `x0 = x_t − σ(t)·v`, computed in f64.
pub fn clean_estimate(x: &Tensor, v: &Tensor, t: f32) -> Result<Tensor> {
    let (x, v) = (x.to_dtype(DType::F64)?, v.to_dtype(DType::F64)?);
    Ok((x - (v * sigma(t))?)?.to_dtype(DType::F32)?)
}

/// `(1 − σ(t))·x0 + σ(t)·ε`.
pub fn renoise(x0: &Tensor, eps: &Tensor, t: f32) -> Result<Tensor> {
    let s = sigma(t);
    Ok(((x0 * (1.0 - s))? + (eps * s)?)?)
}

/// Samples the chunk that starts at the cache's next frame in `steps` steps (1–4). `noise(0)` is
/// the starting noise, `noise(k)` the fresh noise re-noising after step k; each has the chunk's
/// latent shape. Returns the clean latents; the caller commits them.
pub fn sample_chunk(
    dit: &WanDit,
    text: &TextCond,
    cache: &KvCache,
    steps: usize,
    mut noise: impl FnMut(usize) -> Result<Tensor>,
) -> Result<Tensor> {
    if !(1..=STEP_TIMES.len()).contains(&steps) {
        return Err(ModelError::Invalid(format!("wan-causal samples in 1 to {} steps, not {steps}", STEP_TIMES.len())));
    }
    let first = cache.next_frame();
    let times = &STEP_TIMES[..steps];
    let mut x = noise(0)?;
    for (k, pair) in times.windows(2).enumerate() {
        let (v, _) = dit.forward(&x, pair[0], text, cache, first)?;
        x = renoise(&clean_estimate(&x, &v, pair[0])?, &noise(k + 1)?, pair[1])?;
    }
    let t = times[steps - 1];
    let (v, _) = dit.forward(&x, t, text, cache, first)?;
    clean_estimate(&x, &v, t)
}

/// Runs the finished chunk `x0` at t = 0 and stores its keys and values.
pub fn commit_chunk(dit: &WanDit, text: &TextCond, cache: &mut KvCache, x0: &Tensor) -> Result<()> {
    let first = cache.next_frame();
    let (_, kv) = dit.forward(x0, 0.0, text, cache, first)?;
    cache.commit(first, kv)
}
