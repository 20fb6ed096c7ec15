//! The umT5-XXL text encoder: a prompt's token ids → one 4096-wide embedding per token, the
//! DiT's `context`.
//!
//! Follows Self-Forcing's `wan/modules/t5.py` (`umt5_xxl(encoder_only=True)`: `T5Encoder`,
//! `T5SelfAttention`, `T5Attention`, `T5RelativeEmbedding`, `T5LayerNorm`, `T5FeedForward`) as
//! `utils/wan_wrapper.py` `WanTextEncoder` runs it: f32, ids and mask padded to 512, rows past the
//! real tokens set to 0. Each layer is pre-norm: `x += o(attention(norm1(x)))`, then
//! `x += fc2(fc1(h) · gelu_tanh(gate(h)))` with `h = norm2(x)`; a final norm ends the stack. The
//! norms are T5's (RMS, no mean, no bias). Attention has no biases and does not scale scores by
//! 1/√head_dim; instead every layer adds its own relative position bias (umT5: `shared_pos` off),
//! a `[buckets, heads]` table indexed by the bucket of `key − query` ([`relative_bucket`]).
//! Layer names are the checkpoint's (`models_t5_umt5-xxl-enc-bf16.pth`). The tokenizer is not here.
//!
//! Deviations from the reference:
//! - [`UmT5::encode`] runs only the real tokens. The reference runs all 512 rows and masks padded
//!   keys by adding `f32::MIN` to their scores, which gives them softmax weight exactly 0; since the
//!   position bias depends only on `key − query`, its real rows equal ours (to rounding), and its
//!   padded rows are discarded (set to 0, as [`UmT5::encode_padded`] returns them).
//! - Weights are held in f32 whatever the file stores (the release is bf16); the reference's
//!   `WanTextEncoder` also builds the model in f32.

use std::path::Path;

use candle_core::{Device, Module, Tensor};
use candle_nn::Linear;

use super::load::Checkpoint;
use crate::model::heads::{merge_heads, split_heads};
use crate::model::{ModelError, Result};

/// The encoder's shape. The attention width is `heads × head_dim` (equal to `dim` in umT5-XXL, not
/// required here).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UmT5Config {
    /// Token embedding rows (256384).
    pub vocab: usize,
    /// Model width (4096).
    pub dim: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Feed-forward hidden width (10240).
    pub ffn_dim: usize,
    pub layers: usize,
    /// Relative position buckets, both directions together (32).
    pub buckets: usize,
    /// Distance where the logarithmic buckets would reach the last one (128, the reference's fixed
    /// `max_dist`); farther distances share it.
    pub max_distance: usize,
    /// RMS norm epsilon (1e-6).
    pub eps: f64,
}

impl UmT5Config {
    /// umT5-XXL as Wan2.1 uses it (the reference's `umt5_xxl`).
    pub fn umt5_xxl() -> UmT5Config {
        UmT5Config {
            vocab: 256384,
            dim: 4096,
            heads: 64,
            head_dim: 64,
            ffn_dim: 10240,
            layers: 24,
            buckets: 32,
            max_distance: 128,
            eps: 1e-6,
        }
    }

    pub fn attn_dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Checks what the forward pass relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(ModelError::Invalid(format!("umT5 config: {what}")));
        let sizes = [
            ("vocab", self.vocab),
            ("dim", self.dim),
            ("heads", self.heads),
            ("head_dim", self.head_dim),
            ("ffn_dim", self.ffn_dim),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{name} is 0"));
        }
        // Each direction gets half the buckets, half of those for exact small distances: at least
        // one exact bucket per direction, and a log scale that grows past it.
        if self.buckets < 4 {
            return bad(format!("{} buckets: at least 4 are needed (two per direction)", self.buckets));
        }
        if self.max_distance <= self.buckets / 4 {
            return bad(format!(
                "max_distance {} must exceed the exact distances ({}) of {} buckets",
                self.max_distance,
                self.buckets / 4,
                self.buckets
            ));
        }
        if !self.eps.is_finite() || self.eps < 0.0 {
            return bad(format!("eps {} is not a finite non-negative number", self.eps));
        }
        Ok(())
    }
}

/// The bidirectional T5 bucket of relative position `r = key − query`, as the reference computes
/// it: keys after the query use the upper half of the buckets; within a half, distances below a
/// quarter of `buckets` have a bucket each, longer ones share logarithmically wider buckets up to
/// `max_distance`, and the last bucket takes everything farther. The logarithm is taken in f32 and
/// truncated, as the reference does (an f64 logarithm gives the same table for every |r| < 512,
/// checked against the fixture's).
pub fn relative_bucket(r: i64, buckets: usize, max_distance: usize) -> usize {
    let half = buckets / 2;
    let exact = half / 2;
    let base = if r > 0 { half } else { 0 };
    let d = r.unsigned_abs() as usize;
    if d < exact {
        return base + d;
    }
    // The reference's scale `math.log(max_dist / max_exact)` is a Python double, applied to f32.
    let scale = (max_distance as f64 / exact as f64).ln() as f32;
    let log = (d as f32 / exact as f32).ln() / scale * (half - exact) as f32;
    base + (exact + log as usize).min(half - 1)
}

struct Block {
    norm1: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// `[buckets, heads]`: this layer's relative position bias per bucket.
    pos: Tensor,
    norm2: Tensor,
    gate: Linear,
    fc1: Linear,
    fc2: Linear,
}

pub struct UmT5 {
    cfg: UmT5Config,
    device: Device,
    /// `[vocab, dim]`.
    embedding: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
}

impl UmT5 {
    /// Loads the encoder from a safetensors file with the reference's key names.
    pub fn load(path: &Path, cfg: &UmT5Config, device: &Device) -> Result<UmT5> {
        cfg.validate()?;
        let w = Checkpoint::open(
            path,
            device,
            "the umT5-XXL text encoder weights (Wan2.1's models_t5_umt5-xxl-enc-bf16.pth, or safetensors with its names)",
            &[],
        )?;
        let (d, a, f) = (cfg.dim, cfg.attn_dim(), cfg.ffn_dim);
        let linear = |name: &str, d_in: usize, d_out: usize| -> Result<Linear> {
            Ok(Linear::new(w.tensor(&format!("{name}.weight"), &[d_out, d_in])?, None))
        };
        let blocks = (0..cfg.layers)
            .map(|i| {
                let p = format!("blocks.{i}");
                Ok(Block {
                    norm1: w.tensor(&format!("{p}.norm1.weight"), &[d])?,
                    q: linear(&format!("{p}.attn.q"), d, a)?,
                    k: linear(&format!("{p}.attn.k"), d, a)?,
                    v: linear(&format!("{p}.attn.v"), d, a)?,
                    o: linear(&format!("{p}.attn.o"), a, d)?,
                    pos: w.tensor(&format!("{p}.pos_embedding.embedding.weight"), &[cfg.buckets, cfg.heads])?,
                    norm2: w.tensor(&format!("{p}.norm2.weight"), &[d])?,
                    gate: linear(&format!("{p}.ffn.gate.0"), d, f)?,
                    fc1: linear(&format!("{p}.ffn.fc1"), d, f)?,
                    fc2: linear(&format!("{p}.ffn.fc2"), f, d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(UmT5 {
            embedding: w.tensor("token_embedding.weight", &[cfg.vocab, d])?,
            blocks,
            norm: w.tensor("norm.weight", &[d])?,
            cfg: cfg.clone(),
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &UmT5Config {
        &self.cfg
    }

    /// Embeds a prompt's token ids (EOS included, no padding): `[ids.len(), dim]`, equal to the
    /// real rows of the reference's padded, masked run.
    pub fn encode(&self, ids: &[u32]) -> Result<Tensor> {
        let cfg = &self.cfg;
        if ids.is_empty() {
            return Err(ModelError::Invalid(
                "umT5 text encoder: no token ids to encode; a tokenized prompt has at least the end-of-sequence token"
                    .into(),
            ));
        }
        if let Some((i, id)) = ids.iter().enumerate().find(|(_, id)| **id as usize >= cfg.vocab) {
            return Err(ModelError::Invalid(format!(
                "umT5 text encoder: token id {id} (position {i}) is outside its vocabulary of {}: \
                 the tokenizer does not belong to these encoder weights",
                cfg.vocab
            )));
        }
        let n = ids.len();
        let eps = cfg.eps as f32;
        let bucket = self.bucket_index(n)?;
        let mut x = self.embedding.index_select(&Tensor::new(ids, &self.device)?, 0)?;
        for b in &self.blocks {
            let h = candle_nn::ops::rms_norm(&x, &b.norm1, eps)?;
            let q = split_heads(&b.q.forward(&h)?, cfg.heads)?;
            let k = split_heads(&b.k.forward(&h)?, cfg.heads)?;
            let v = split_heads(&b.v.forward(&h)?, cfg.heads)?;
            // [n·n, heads] looked up per (query, key), → [heads, n, n]; no 1/√d scaling (T5).
            let bias = b.pos.index_select(&bucket, 0)?.t()?.reshape((cfg.heads, n, n))?;
            let scores = (q.matmul(&k.t()?)? + bias)?;
            let attn = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?;
            x = (x + b.o.forward(&merge_heads(&attn)?)?)?;
            let h = candle_nn::ops::rms_norm(&x, &b.norm2, eps)?;
            x = (&x + b.fc2.forward(&(b.fc1.forward(&h)? * b.gate.forward(&h)?.gelu()?)?)?)?;
        }
        Ok(candle_nn::ops::rms_norm(&x, &self.norm, eps)?)
    }

    /// What the DiT gets: [`UmT5::encode`]'s rows followed by zero rows, `[len, dim]` (len = 512 for
    /// wan-causal, the tokenizer's `max_length`).
    pub fn encode_padded(&self, ids: &[u32], len: usize) -> Result<Tensor> {
        if ids.len() > len {
            return Err(ModelError::Invalid(format!(
                "umT5 text encoder: {} token ids do not fit {len} rows: truncate the prompt to {len} tokens",
                ids.len()
            )));
        }
        Ok(self.encode(ids)?.pad_with_zeros(0, 0, len - ids.len())?)
    }

    /// `[n·n]` bucket of every (query, key) pair, query-major; the same for every layer.
    fn bucket_index(&self, n: usize) -> Result<Tensor> {
        let (buckets, max) = (self.cfg.buckets, self.cfg.max_distance);
        // one bucket per distance r = key − query ∈ [−(n−1), n−1], at r + n − 1
        let by_r: Vec<u32> =
            (0..2 * n - 1).map(|i| relative_bucket(i as i64 - (n as i64 - 1), buckets, max) as u32).collect();
        let index: Vec<u32> = (0..n).flat_map(|q| by_r[n - 1 - q..2 * n - 1 - q].iter().copied()).collect();
        Ok(Tensor::from_vec(index, n * n, &self.device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_config_is_valid_and_bad_ones_are_named() {
        UmT5Config::umt5_xxl().validate().unwrap();
        let bad = |f: fn(&mut UmT5Config)| {
            let mut c = UmT5Config::umt5_xxl();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(bad(|c| c.heads = 0).contains("heads is 0"));
        assert!(bad(|c| c.buckets = 2).contains("at least 4"));
        assert!(bad(|c| c.max_distance = 8).contains("max_distance 8"));
    }

    #[test]
    fn buckets_split_by_direction() {
        let b = |r| relative_bucket(r, 32, 128);
        assert_eq!((b(0), b(-1), b(1), b(-7), b(7)), (0, 1, 17, 7, 23));
        assert_eq!((b(-10_000), b(10_000)), (15, 31), "far distances share the last bucket");
    }
}
