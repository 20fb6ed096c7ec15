//! The causal Wan2.1 DiT, one chunk of latent frames per call, as Self-Forcing runs it.
//!
//! Per call: 2×2 patches of the chunk's latent frames → tokens; a timestep embedding shared by the
//! chunk's frames (one `t` per chunk, as the sampler uses it) → six modulation vectors per block;
//! each block is adaLN self-attention over [cached frames ; the chunk] with 3D RoPE, cross-attention
//! to the prompt (LayerNorm with affine, no modulation, no gate), and an adaLN GELU feed-forward;
//! q and k are RMS-normalised over the full width before the head split. The head maps tokens back
//! to 2×2×16 latent values.
//!
//! A forward pass never touches the cache: it returns the chunk's rotated keys and values for
//! every block, which the caller commits ([`KvCache::commit`]) after the t = 0 pass. Per-prompt
//! work (text embedding, each block's cross-attention keys/values) is [`WanDit::prepare_text`],
//! done once per conditioning. Layers and names follow the checkpoint's keys (Wan's own).

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};

use super::cache::{ChunkKv, KvCache};
use super::config::{PATCH, WanConfig};
use super::load::{Checkpoint, GENERATOR_DICTS};
use super::rope;
use crate::model::heads::{merge_heads, split_heads};
use crate::model::{ModelError, Result};

/// A linear layer in the model's compute dtype (bf16 on a GPU): input cast to it, output in it.
/// Activations between two layers stay in the compute dtype; the residual stream, the norms'
/// inputs and the modulation are f32 (as [`f32`] converts at each residual add).
struct Linear {
    /// `[out, in]` and `[out]` in the compute dtype.
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn load(w: &Checkpoint, name: &str, d_in: usize, d_out: usize, dtype: DType) -> Result<Linear> {
        let weight = w.tensor(&format!("{name}.weight"), &[d_out, d_in])?;
        Linear::new(weight, w.tensor(&format!("{name}.bias"), &[d_out])?, dtype)
    }

    fn new(w: Tensor, b: Tensor, dtype: DType) -> Result<Linear> {
        Ok(Linear { w: w.to_dtype(dtype)?, b: b.to_dtype(dtype)? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.to_dtype(self.w.dtype())?.matmul(&self.w.t()?)?.broadcast_add(&self.b)?)
    }
}

fn f32(x: &Tensor) -> Result<Tensor> {
    Ok(x.to_dtype(DType::F32)?)
}

/// Names the Wan model a checkpoint holds when it is not this one, from the patch embedding's
/// shape: a generic shape mismatch would not say what to download instead.
fn check_model_kind(w: &Checkpoint, cfg: &WanConfig) -> Result<()> {
    let Some(shape) = w.shape("patch_embedding.weight") else { return Ok(()) };
    let what = match (shape.first(), shape.get(1)) {
        (Some(5120), _) => "Wan2.1-14B (width 5120)",
        (_, Some(36)) => "an image-to-video Wan model (36 input channels)",
        (_, Some(48)) => "Wan2.2-TI2V-5B (48 latent channels)",
        _ => return Ok(()),
    };
    Err(ModelError::Invalid(format!(
        "{} holds {what}; wan-causal runs the causal Wan2.1-T2V-1.3B of Self-Forcing / LongLive (width {}): \
         point it at self_forcing_dmd.pt",
        w.file(),
        cfg.dim
    )))
}

/// Softmax attention with scale 1/√head_dim and no mask, `[heads, tokens, head_dim]` in and out,
/// all in the compute dtype (the softmax accumulates in f32 inside its kernel): the scores are
/// the largest tensors of a step, so every extra pass over them costs. `bias` (`[keys]`, the
/// compute dtype) is added to every query's scores: a blend's per-prompt weights.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let scale = 1.0 / (q.dim(D::Minus1)? as f64).sqrt();
    let mut scores = (q.matmul(&k.t()?)? * scale)?;
    if let Some(b) = bias {
        scores = scores.broadcast_add(b)?;
    }
    Ok(candle_nn::ops::softmax_last_dim(&scores)?.matmul(v)?)
}

/// q, k, v, o projections with RMS-normalised q and k (over the full width, before the head split).
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    norm_q: Tensor,
    norm_k: Tensor,
    heads: usize,
    eps: f32,
}

impl Attention {
    fn load(w: &Checkpoint, prefix: &str, cfg: &WanConfig, dtype: DType) -> Result<Attention> {
        let d = cfg.dim;
        let lin = |n: &str| Linear::load(w, &format!("{prefix}.{n}"), d, d, dtype);
        Ok(Attention {
            q: lin("q")?,
            k: lin("k")?,
            v: lin("v")?,
            o: lin("o")?,
            norm_q: w.tensor(&format!("{prefix}.norm_q.weight"), &[d])?,
            norm_k: w.tensor(&format!("{prefix}.norm_k.weight"), &[d])?,
            heads: cfg.heads,
            eps: cfg.eps as f32,
        })
    }

    /// RMS norm of a projection, in f32 as the reference computes it, back in the compute dtype.
    fn rms(&self, y: &Tensor, weight: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(&f32(y)?, weight, self.eps)?.to_dtype(y.dtype())?)
    }

    fn query(&self, x: &Tensor) -> Result<Tensor> {
        split_heads(&self.rms(&self.q.forward(x)?, &self.norm_q)?, self.heads)
    }

    /// Keys (not yet rotated) and values of `x`, split into heads, in the compute dtype.
    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let k = self.rms(&self.k.forward(x)?, &self.norm_k)?;
        Ok((split_heads(&k, self.heads)?, split_heads(&self.v.forward(x)?, self.heads)?))
    }

    fn out(&self, heads: &Tensor) -> Result<Tensor> {
        self.o.forward(&merge_heads(heads)?)
    }
}

struct Block {
    /// `[6, dim]`: added to the timestep's projection, giving shift/scale/gate for self-attention
    /// (0, 1, 2) and for the feed-forward (3, 4, 5).
    modulation: Tensor,
    self_attn: Attention,
    norm3: (Tensor, Tensor),
    cross_attn: Attention,
    ffn_in: Linear,
    ffn_out: Linear,
}

/// A prompt prepared for the DiT: each block's cross-attention keys and values, and for a blend
/// of prompts the attention-logit bias of each key row.
pub struct TextCond {
    kv: Vec<(Tensor, Tensor)>,
    bias: Option<Tensor>,
}

impl TextCond {
    /// A blend: every part's keys and values side by side, each row's scores shifted by its
    /// `bias` (`[rows of all parts]`, `ln` of the part's weight: [`crate::model::Conditioning`]),
    /// so cross-attention mixes the prompts in proportion to their weights.
    pub fn blend(parts: &[TextCond], bias: &Tensor) -> Result<TextCond> {
        let first = parts.first().ok_or_else(|| ModelError::Invalid("a prompt blend needs a prompt".into()))?;
        let kv = (0..first.kv.len())
            .map(|b| {
                let ks: Vec<&Tensor> = parts.iter().map(|p| &p.kv[b].0).collect();
                let vs: Vec<&Tensor> = parts.iter().map(|p| &p.kv[b].1).collect();
                Ok((Tensor::cat(&ks, 1)?, Tensor::cat(&vs, 1)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = kv[0].0.dim(1)?;
        if bias.dims() != [rows] {
            return Err(ModelError::Invalid(format!(
                "wan-causal: a blend of {rows} prompt rows got a bias of shape {:?}",
                bias.dims()
            )));
        }
        let bias = bias.to_device(kv[0].0.device())?.to_dtype(kv[0].0.dtype())?;
        Ok(TextCond { kv, bias: Some(bias) })
    }
}

pub struct WanDit {
    cfg: WanConfig,
    device: Device,
    /// The patch embedding's Conv3d (kernel = stride = 1×2×2) as a matmul over patches flattened
    /// (channel, row, column), the order of the kernel's own flattening.
    patch: Linear,
    text_in: Linear,
    text_out: Linear,
    time_in: Linear,
    time_out: Linear,
    time_projection: Linear,
    blocks: Vec<Block>,
    /// `[2, dim]`: added to the (unprojected) time embedding: the head's shift and scale.
    head_modulation: Tensor,
    head: Linear,
    /// Affine-free LayerNorm as candle's fused op: weight 1, bias 0.
    ones: Tensor,
    zeros: Tensor,
}

impl WanDit {
    /// Loads the DiT from a safetensors file with Wan's key names or a Self-Forcing / LongLive
    /// training checkpoint ([`super::load`]). `dtype` is the compute dtype (f32 on the CPU, bf16 on
    /// a GPU) of the matmuls, of the activations between layers, of attention and of the kept
    /// keys/values; the residual stream, the norms and the modulation are f32.
    pub fn load(path: &Path, cfg: &WanConfig, device: &Device, dtype: DType) -> Result<WanDit> {
        let hint = "the wan-causal generator checkpoint (self_forcing_dmd.pt, or a safetensors file with Wan's names)";
        let w = Checkpoint::open(path, device, hint, GENERATOR_DICTS)?;
        check_model_kind(&w, cfg)?;
        WanDit::build(&w, cfg, device, dtype)
    }

    /// A DiT of `cfg`'s shape with random weights, for speed benchmarks (`examples/wan_bench.rs`).
    pub fn random(cfg: &WanConfig, device: &Device, dtype: DType) -> Result<WanDit> {
        WanDit::build(&Checkpoint::random(device), cfg, device, dtype)
    }

    fn build(w: &Checkpoint, cfg: &WanConfig, device: &Device, dtype: DType) -> Result<WanDit> {
        cfg.validate()?;
        if !matches!(dtype, DType::F32 | DType::BF16 | DType::F16) {
            return Err(ModelError::Invalid(format!("wan-causal computes in f32, bf16 or f16, not {dtype:?}")));
        }
        let d = cfg.dim;
        let patch_w = w.tensor("patch_embedding.weight", &[d, cfg.latent_channels, 1, PATCH, PATCH])?;
        let patch =
            Linear::new(patch_w.reshape((d, cfg.patch_values()))?, w.tensor("patch_embedding.bias", &[d])?, dtype)?;
        let blocks = (0..cfg.blocks)
            .map(|i| {
                let p = format!("blocks.{i}");
                Ok(Block {
                    modulation: w.tensor(&format!("{p}.modulation"), &[1, 6, d])?.squeeze(0)?,
                    self_attn: Attention::load(w, &format!("{p}.self_attn"), cfg, dtype)?,
                    norm3: (w.tensor(&format!("{p}.norm3.weight"), &[d])?, w.tensor(&format!("{p}.norm3.bias"), &[d])?),
                    cross_attn: Attention::load(w, &format!("{p}.cross_attn"), cfg, dtype)?,
                    ffn_in: Linear::load(w, &format!("{p}.ffn.0"), d, cfg.ffn_dim, dtype)?,
                    ffn_out: Linear::load(w, &format!("{p}.ffn.2"), cfg.ffn_dim, d, dtype)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(WanDit {
            patch,
            text_in: Linear::load(w, "text_embedding.0", cfg.text_dim, d, dtype)?,
            text_out: Linear::load(w, "text_embedding.2", d, d, dtype)?,
            time_in: Linear::load(w, "time_embedding.0", cfg.freq_dim, d, dtype)?,
            time_out: Linear::load(w, "time_embedding.2", d, d, dtype)?,
            time_projection: Linear::load(w, "time_projection.1", d, 6 * d, dtype)?,
            blocks,
            head_modulation: w.tensor("head.modulation", &[1, 2, d])?.squeeze(0)?,
            head: Linear::load(w, "head.head", d, cfg.patch_values(), dtype)?,
            ones: Tensor::ones(d, DType::F32, device)?,
            zeros: Tensor::zeros(d, DType::F32, device)?,
            cfg: cfg.clone(),
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &WanConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Embeds a prompt's token embeddings `[tokens ≤ text_len, text_dim]` (zero-padded to
    /// `text_len` rows, as the reference does) and computes every block's cross-attention keys and
    /// values.
    pub fn prepare_text(&self, context: &Tensor) -> Result<TextCond> {
        let (n, width) = context.dims2()?;
        if n > self.cfg.text_len || width != self.cfg.text_dim {
            return Err(ModelError::Invalid(format!(
                "wan-causal: prompt embeddings of shape [{n}, {width}] do not fit [≤ {}, {}]",
                self.cfg.text_len, self.cfg.text_dim
            )));
        }
        let ctx = context.to_dtype(DType::F32)?.pad_with_zeros(0, 0, self.cfg.text_len - n)?;
        let ctx = self.text_out.forward(&self.text_in.forward(&ctx)?.gelu()?)?;
        let kv = self.blocks.iter().map(|b| b.cross_attn.keys_values(&ctx)).collect::<Result<Vec<_>>>()?;
        Ok(TextCond { kv, bias: None })
    }

    /// One pass over a chunk of latent frames `x` `[channels, frames, h, w]` at time `t` (0..1000,
    /// the same for every frame), starting at absolute latent frame `first_frame` and attending to
    /// what `cache` holds. Returns the flow prediction (same shape as `x`) and the chunk's keys and
    /// values for [`KvCache::commit`].
    pub fn forward(
        &self,
        x: &Tensor,
        t: f32,
        text: &TextCond,
        cache: &KvCache,
        first_frame: usize,
    ) -> Result<(Tensor, ChunkKv)> {
        let cfg = &self.cfg;
        let (c, frames, h, w) = x.dims4()?;
        if (c, h, w) != (cfg.latent_channels, cfg.latent_h, cfg.latent_w) {
            return Err(ModelError::Invalid(format!(
                "wan-causal: a latent chunk of shape [{c}, {frames}, {h}, {w}] does not match the model's [{}, F, {}, {}]",
                cfg.latent_channels, cfg.latent_h, cfg.latent_w
            )));
        }
        let (gh, gw) = cfg.grid();
        let patches = x
            .to_dtype(DType::F32)?
            .reshape(vec![c, frames, gh, PATCH, gw, PATCH])?
            .permute([1, 2, 4, 0, 3, 5])?
            .reshape((frames * gh * gw, cfg.patch_values()))?;
        let mut x = f32(&self.patch.forward(&patches)?)?;

        let e = f32(&self.time_out.forward(&self.time_in.forward(&self.sinusoid(t)?)?.silu()?)?)?;
        let e0 = f32(&self.time_projection.forward(&e.silu()?)?)?.reshape((6, cfg.dim))?;
        let (cos, sin) = rope::tables(cfg, first_frame, frames, &self.device)?;
        let eps = cfg.eps as f32;
        let norm = |x: &Tensor| candle_nn::ops::layer_norm(x, &self.ones, &self.zeros, eps);
        let modulate = |x: &Tensor, shift: &Tensor, scale: &Tensor| -> Result<Tensor> {
            Ok(norm(x)?.broadcast_mul(&(scale + 1.0)?)?.broadcast_add(shift)?)
        };

        let mut chunk_kv = Vec::with_capacity(self.blocks.len());
        for (i, (b, (ck, cv))) in self.blocks.iter().zip(&text.kv).enumerate() {
            let m = (&b.modulation + &e0)?;
            let m = |j: usize| m.narrow(0, j, 1);
            // self-attention over [cache ; chunk]
            let y = modulate(&x, &m(0)?, &m(1)?)?;
            let q = rope::apply(&b.self_attn.query(&y)?, &cos, &sin)?;
            let (k, v) = b.self_attn.keys_values(&y)?;
            let k = rope::apply(&k, &cos, &sin)?;
            let attn = match cache.attended(i, frames)? {
                Some((pk, pv)) => attend(&q, &Tensor::cat(&[&pk, &k], 1)?, &Tensor::cat(&[&pv, &v], 1)?, None)?,
                None => attend(&q, &k, &v, None)?,
            };
            x = (x + f32(&b.self_attn.out(&attn)?)?.broadcast_mul(&m(2)?)?)?;
            chunk_kv.push((k, v));
            // cross-attention to the prompt
            let y = candle_nn::ops::layer_norm(&x, &b.norm3.0, &b.norm3.1, eps)?;
            let attn = attend(&b.cross_attn.query(&y)?, ck, cv, text.bias.as_ref())?;
            x = (&x + f32(&b.cross_attn.out(&attn)?)?)?;
            // feed-forward
            let y = b.ffn_out.forward(&b.ffn_in.forward(&modulate(&x, &m(3)?, &m(4)?)?)?.gelu()?)?;
            x = (x + f32(&y)?.broadcast_mul(&m(5)?)?)?;
        }

        let hm = self.head_modulation.broadcast_add(&e)?;
        let out = f32(&self.head.forward(&modulate(&x, &hm.narrow(0, 0, 1)?, &hm.narrow(0, 1, 1)?)?)?)?;
        // head channels are ordered (row, column, channel) within the patch
        let v = out
            .reshape(vec![frames, gh, gw, PATCH, PATCH, c])?
            .permute([5, 0, 1, 3, 2, 4])?
            .reshape((c, frames, h, w))?;
        Ok((v, chunk_kv))
    }

    /// `[1, freq_dim]`: cos then sin of `t·10000^(−j/half)`, computed in f64 as the reference does.
    fn sinusoid(&self, t: f32) -> Result<Tensor> {
        let half = self.cfg.freq_dim / 2;
        let angles: Vec<f64> = (0..half).map(|j| t as f64 * 10000f64.powf(-(j as f64) / half as f64)).collect();
        let emb: Vec<f32> =
            angles.iter().map(|a| a.cos() as f32).chain(angles.iter().map(|a| a.sin() as f32)).collect();
        Ok(Tensor::from_vec(emb, (1, 2 * half), &self.device)?)
    }
}
