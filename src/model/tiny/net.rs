//! spool-tiny's transformer: `text_proj`, the causal encoder (once per frame, with the MSC cache) and
//! the adaLN diffusion decoder (once per denoising step). SCD split (DESIGN.md §3): the encoder does
//! the temporal reasoning and its output `h_s` is all the decoder sees of the past, so the per-step
//! cost is only the light decoder.
//!
//! [`TinyNet`] knows nothing about text encoders or sampling: it takes projected conditionings and
//! tensors, so parity tests drive it directly. Work that depends only on the conditioning (text
//! projection, every block's cross-attention keys/values) is done once in [`TinyNet::prepare_cond`];
//! work that depends only on the timestep (time embedding, every adaLN modulation) once in
//! [`TinyNet::time_mod`]. The caller keeps both.

use candle_core::{DType, Device, Tensor};

use super::cache::EncoderCache;
use super::config::Config;
use super::kernels::{Act, act, bias_act, softmax_bias};
use super::layers::{Linear, Mlp, Norm, attention};
use super::weights::Weights;
use crate::model::heads::{merge_heads, split_heads};
use crate::model::{Conditioning, ModelError, Result};

/// `qkv` and `out` of a self-attention; the query columns are pre-scaled by `1/sqrt(head_dim)`.
struct SelfAttn {
    qkv: Linear,
    out: Linear,
}

impl SelfAttn {
    fn load(w: &Weights, prefix: &str, cfg: &Config) -> Result<SelfAttn> {
        let d = cfg.d_model;
        let mut qkv = Linear::load(w, &format!("{prefix}.qkv"), d, 3 * d)?;
        qkv.scale_outputs(0, d, 1.0 / (cfg.head_dim as f64).sqrt())?;
        Ok(SelfAttn { qkv, out: Linear::load(w, &format!("{prefix}.out"), d, d)? })
    }

    /// `(3, heads, tokens, head_dim)`, contiguous: q, k, v.
    fn qkv(&self, x: &Tensor, heads: usize) -> Result<Tensor> {
        let (n, d) = x.dims2()?;
        let qkv = self.qkv.forward(x)?.reshape((n, 3, heads, d / heads))?;
        Ok(qkv.permute((1, 2, 0, 3))?.contiguous()?)
    }

    /// Self-attention within each of `batch` frames stacked as `(batch·tokens, D)` rows (full
    /// attention, no bias), through the output projection: `(batch·tokens, D)`.
    fn forward_frames(&self, x: &Tensor, heads: usize, batch: usize) -> Result<Tensor> {
        let (rows, d) = x.dims2()?;
        let (n, dh) = (rows / batch, d / heads);
        let qkv = self.qkv.forward(x)?.reshape((batch, n, 3, heads, dh))?;
        // (3, batch·heads, tokens, head_dim): every (frame, head) pair is one attention matrix.
        let qkv = qkv.permute((2, 0, 3, 1, 4))?.contiguous()?.reshape((3, batch * heads, n, dh))?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let o = attention(&q, &k.t()?, &v, &[])?;
        let o = o.reshape((batch, heads, n, dh))?.transpose(1, 2)?.reshape((rows, d))?;
        self.out.forward(&o)
    }
}

/// Cross-attention to the projected text tokens; `q` pre-scaled.
///
/// The text side is fixed for a conditioning, so the projections fold into it once per conditioning:
/// per head, `q_h·k_hᵀ = x·(W_q,h·K_hᵀ) + b_q,h·K_hᵀ` and `Σ_h p_h·V_h·W_o,h = [p_0 … p_H]·[V_h·W_o,h]`.
/// A frame's cross-attention is then two matmuls, `(tokens, D)·(D, H·n)` and `(tokens, H·n)·(H·n, D)`,
/// with a per-head softmax between them: fewer FLOPs than projecting the queries and far fewer small
/// per-head matmuls, which at 64 tokens cost more in dispatch than in arithmetic.
struct CrossAttn {
    q: Linear,
    kv: Linear,
    out: Linear,
}

impl CrossAttn {
    fn load(w: &Weights, prefix: &str, cfg: &Config) -> Result<CrossAttn> {
        let d = cfg.d_model;
        let mut q = Linear::load(w, &format!("{prefix}.q"), d, d)?;
        q.scale_outputs(0, d, 1.0 / (cfg.head_dim as f64).sqrt())?;
        Ok(CrossAttn {
            q,
            kv: Linear::load(w, &format!("{prefix}.kv"), d, 2 * d)?,
            out: Linear::load(w, &format!("{prefix}.out"), d, d)?,
        })
    }

    /// The folded text side of one conditioning (`ctx` projected, `(n, D)`; `bias` its `n` logit biases).
    fn context(&self, ctx: &Tensor, bias: &[f32], heads: usize) -> Result<TextKv> {
        let (n, d) = ctx.dims2()?;
        let dh = d / heads;
        let kv = self.kv.forward(ctx)?;
        // (H, dh, n) keys and (H, n, dh) values.
        let k_t = kv.narrow(1, 0, d)?.reshape((n, heads, dh))?.permute((1, 2, 0))?.contiguous()?;
        let v = split_heads(&kv.narrow(1, d, d)?.contiguous()?, heads)?;
        // Scores: W_q (D, H, dh) → (H, D, dh) · K_hᵀ → (H, D, n) → (D, H·n).
        let wq = self.q.weight_t().reshape((d, heads, dh))?.permute((1, 0, 2))?.contiguous()?;
        let scores = wq.matmul(&k_t)?.permute((1, 0, 2))?.contiguous()?.reshape((d, heads * n))?;
        // The query bias becomes a per-head logit offset, added to the conditioning's own bias.
        let bq = Tensor::from_slice(self.q.bias(), (heads, 1, dh), ctx.device())?;
        let offset = bq.matmul(&k_t)?.flatten_all()?.to_vec1::<f32>()?;
        let logit_bias = offset.iter().enumerate().map(|(i, o)| o + bias[i % n]).collect();
        // Values through the output projection: V_h (n, dh) · W_o rows of head h (dh, D) → (H·n, D).
        let wo = self.out.weight_t().reshape((heads, dh, d))?;
        let values = v.matmul(&wo)?.reshape((heads * n, d))?.contiguous()?;
        Ok(TextKv { scores, values, logit_bias, n })
    }

    fn forward(&self, x: &Tensor, kv: &TextKv) -> Result<Tensor> {
        let (t, _) = x.dims2()?;
        let heads = kv.logit_bias.len() / kv.n;
        let s = x.matmul(&kv.scores)?.reshape((t, heads, kv.n))?;
        let p = softmax_bias(&s, &kv.logit_bias, 1)?.reshape((t, heads * kv.n))?;
        // `values` already went through the output projection: only its bias is left.
        bias_act(&p.matmul(&kv.values)?, self.out.bias(), Act::None)
    }
}

/// One block's cross-attention, folded with one conditioning (see [`CrossAttn`]).
struct TextKv {
    /// `(D, H·n)`.
    scores: Tensor,
    /// `(H·n, D)`.
    values: Tensor,
    /// `H·n` logit biases: the conditioning's bias plus the query-bias term.
    logit_bias: Vec<f32>,
    n: usize,
}

/// Everything that depends only on a conditioning, computed once per conditioning.
pub struct CondState {
    /// `text_proj` output, `(n, d_model)`.
    pub ctx: Tensor,
    enc: Vec<TextKv>,
    dec: Vec<TextKv>,
}

struct BlockMod {
    norm1: Norm,
    gate1: Tensor,
    norm3: Norm,
    gate2: Tensor,
}

/// Everything that depends only on the timestep: the adaLN modulations of every decoder block, with
/// `(1 + scale)` and `shift` folded into the norms.
pub struct TimeMod {
    blocks: Vec<BlockMod>,
    out: Norm,
}

struct EncoderBlock {
    norm1: Norm,
    attn: SelfAttn,
    norm2: Norm,
    xattn: CrossAttn,
    norm3: Norm,
    mlp: Mlp,
}

struct DecoderBlock {
    ada: Linear,
    attn: SelfAttn,
    norm2: Norm,
    xattn: CrossAttn,
    mlp: Mlp,
}

/// The spool-tiny transformer (no autoencoder, no text encoder).
pub struct TinyNet {
    cfg: Config,
    device: Device,
    text_norm: Norm,
    text_linear: Linear,
    enc_in: Linear,
    enc_pos: Tensor,
    /// `encoder.bos + encoder.pos`, the embedded BOS element.
    enc_bos: Tensor,
    enc_blocks: Vec<EncoderBlock>,
    enc_norm_out: Norm,
    dec_in: Linear,
    dec_cond: Linear,
    dec_pos: Tensor,
    t_fc1: Linear,
    t_fc2: Linear,
    dec_blocks: Vec<DecoderBlock>,
    ada_out: Linear,
    out_proj: Linear,
    /// `f_i = exp(-ln(10000)·i/half)`, rounded like the reference computes it in f32.
    freqs: Vec<f32>,
}

impl TinyNet {
    pub fn new(cfg: &Config, w: &Weights, device: &Device) -> Result<TinyNet> {
        let d = cfg.d_model;
        let t = cfg.tokens_per_frame;
        let eps = cfg.layernorm_eps;
        let hidden = cfg.mlp_ratio * d;
        let enc_blocks = (0..cfg.encoder_blocks)
            .map(|i| {
                let p = format!("encoder.blocks.{i}");
                Ok(EncoderBlock {
                    norm1: Norm::load(w, &format!("{p}.norm1"), d, eps)?,
                    attn: SelfAttn::load(w, &format!("{p}.attn"), cfg)?,
                    norm2: Norm::load(w, &format!("{p}.norm2"), d, eps)?,
                    xattn: CrossAttn::load(w, &format!("{p}.xattn"), cfg)?,
                    norm3: Norm::load(w, &format!("{p}.norm3"), d, eps)?,
                    mlp: Mlp::load(w, &format!("{p}.mlp"), d, hidden)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dec_blocks = (0..cfg.decoder_blocks)
            .map(|i| {
                let p = format!("decoder.blocks.{i}");
                Ok(DecoderBlock {
                    ada: Linear::load(w, &format!("{p}.ada"), d, 6 * d)?,
                    attn: SelfAttn::load(w, &format!("{p}.attn"), cfg)?,
                    norm2: Norm::load(w, &format!("{p}.norm2"), d, eps)?,
                    xattn: CrossAttn::load(w, &format!("{p}.xattn"), cfg)?,
                    mlp: Mlp::load(w, &format!("{p}.mlp"), d, hidden)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let enc_pos = w.get("encoder.pos", &[t, d])?;
        let enc_bos = (w.get("encoder.bos", &[t, d])? + &enc_pos)?;
        let half = cfg.time_embed_dim / 2;
        let c = -(10000f64.ln() as f32);
        let freqs = (0..half).map(|i| ((c * i as f32) / half as f32).exp()).collect();
        Ok(TinyNet {
            cfg: cfg.clone(),
            device: device.clone(),
            text_norm: Norm::load(w, "text_proj.norm", cfg.text_dim, eps)?,
            text_linear: Linear::load(w, "text_proj.linear", cfg.text_dim, d)?,
            enc_in: Linear::load(w, "encoder.in_proj", cfg.latent_channels, d)?,
            enc_pos,
            enc_bos,
            enc_blocks,
            enc_norm_out: Norm::load(w, "encoder.norm_out", d, eps)?,
            dec_in: Linear::load(w, "decoder.in_proj", cfg.latent_channels, d)?,
            dec_cond: Linear::load(w, "decoder.cond_proj", d, d)?,
            dec_pos: w.get("decoder.pos", &[t, d])?,
            t_fc1: Linear::load(w, "decoder.t_embed.fc1", cfg.time_embed_dim, d)?,
            t_fc2: Linear::load(w, "decoder.t_embed.fc2", d, d)?,
            dec_blocks,
            ada_out: Linear::load(w, "decoder.ada_out", d, 2 * d)?,
            out_proj: Linear::load(w, "decoder.out_proj", d, cfg.latent_channels)?,
            freqs,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// `text_proj` and every cross-attention's keys/values for one conditioning.
    pub fn prepare_cond(&self, cond: &Conditioning) -> Result<CondState> {
        let tokens = cond.tokens.to_device(&self.device)?.to_dtype(DType::F32)?;
        let bias = cond.bias.to_device(&self.device)?.to_dtype(DType::F32)?;
        let n = match tokens.dims() {
            [n, d] if *d == self.cfg.text_dim && *n > 0 => *n,
            dims => {
                return Err(ModelError::Invalid(format!(
                    "a conditioning must be (n ≥ 1, {}) text tokens, got {dims:?}",
                    self.cfg.text_dim
                )));
            }
        };
        if bias.dims() != [n] {
            return Err(ModelError::Invalid(format!("conditioning bias is {:?}, expected [{n}]", bias.dims())));
        }
        let ctx = self.text_linear.forward(&self.text_norm.forward(&tokens.contiguous()?)?)?;
        let h = self.cfg.heads;
        let bias = bias.to_vec1::<f32>()?;
        let enc = self.enc_blocks.iter().map(|b| b.xattn.context(&ctx, &bias, h)).collect::<Result<_>>()?;
        let dec = self.dec_blocks.iter().map(|b| b.xattn.context(&ctx, &bias, h)).collect::<Result<_>>()?;
        Ok(CondState { ctx, enc, dec })
    }

    /// Sinusoidal embedding of `t ∈ [0, 1]` (`cat(cos, sin)` of `t·1000·f_i`), in f32 like the reference.
    pub fn timestep_embedding(&self, t: f32) -> Result<Tensor> {
        let a: Vec<f32> = self.freqs.iter().map(|f| (t * self.cfg.time_scale) * f).collect();
        let v: Vec<f32> = a.iter().map(|x| x.cos()).chain(a.iter().map(|x| x.sin())).collect();
        Ok(Tensor::from_vec(v, (1, self.cfg.time_embed_dim), &self.device)?)
    }

    /// The adaLN modulations of every decoder block and of the output norm at time `t`.
    pub fn time_mod(&self, t: f32) -> Result<TimeMod> {
        let d = self.cfg.d_model;
        let eps = self.cfg.layernorm_eps;
        let hidden = self.t_fc1.forward_act(&self.timestep_embedding(t)?, Act::Silu)?;
        let temb = self.t_fc2.forward(&hidden)?;
        let st = act(&temb, Act::Silu)?;
        let gate = |v: &[f32]| Tensor::from_slice(v, d, &self.device);
        let norm =
            |shift: &[f32], scale: &[f32]| Norm::new(scale.iter().map(|s| 1.0 + s).collect(), shift.to_vec(), eps);
        let blocks = self
            .dec_blocks
            .iter()
            .map(|b| {
                let m = b.ada.forward(&st)?.flatten_all()?.to_vec1::<f32>()?;
                let c: Vec<&[f32]> = m.chunks_exact(d).collect();
                Ok(BlockMod {
                    norm1: norm(c[0], c[1]),
                    gate1: gate(c[2])?,
                    norm3: norm(c[3], c[4]),
                    gate2: gate(c[5])?,
                })
            })
            .collect::<Result<_>>()?;
        let m = self.ada_out.forward(&st)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(TimeMod { blocks, out: norm(&m[..d], &m[d..]) })
    }

    /// Runs element `s` through the encoder, appending its keys/values to `cache`, and returns its
    /// output `h_s` `(tokens, d_model)`. `latent` is the element's clean latent tokens
    /// `(tokens, latent_channels)`, or `None` for the BOS element.
    pub fn encode_element(
        &self,
        cache: &mut EncoderCache,
        s: usize,
        latent: Option<&Tensor>,
        cond: &CondState,
    ) -> Result<Tensor> {
        let heads = self.cfg.heads;
        let mut x = match latent {
            None => self.enc_bos.clone(),
            Some(l) => self.enc_in.forward(l)?.add(&self.enc_pos)?,
        };
        let plan = cache.plan(s)?;
        for (bi, (blk, text)) in self.enc_blocks.iter().zip(&cond.enc).enumerate() {
            let qkv = blk.attn.qkv(&blk.norm1.forward(&x)?, heads)?;
            let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
            cache.store(bi, &plan, &k, &v)?;
            let (kb, vb) = cache.kv(bi);
            let o = attention(&q, &kb.t()?, vb, &plan.bias)?;
            x = (x + blk.attn.out.forward(&merge_heads(&o)?)?)?;
            x = (&x + blk.xattn.forward(&blk.norm2.forward(&x)?, text)?)?;
            x = (&x + blk.mlp.forward(&blk.norm3.forward(&x)?)?)?;
        }
        self.enc_norm_out.forward(&x)
    }

    /// The part of the decoder input that is the same for every step of a frame:
    /// `cond_proj(h) + pos`.
    pub fn decoder_base(&self, h: &Tensor) -> Result<Tensor> {
        Ok(self.dec_cond.forward(h)?.add(&self.dec_pos)?)
    }

    /// One denoising step: velocity `v` `(tokens, latent_channels)` for noisy latent tokens `x_t`.
    pub fn decoder_step(&self, x_t: &Tensor, base: &Tensor, tm: &TimeMod, cond: &CondState) -> Result<Tensor> {
        Ok(self.decoder_steps(x_t, base, tm, &[cond])?.remove(0))
    }

    /// The decoder for the same `x_t`, `base` and `t` under each of `conds`
    /// (classifier-free guidance: the prompt and the empty prompt), run as one batch: the rows of
    /// all passes go through each linear layer together, the self-attention is one batched matmul
    /// over (pass, head), and only the cross-attention runs per conditioning. The passes are equal
    /// until the first cross-attention, so that prefix is computed once. Returns one velocity per
    /// conditioning; one conditioning is the plain step.
    pub fn decoder_steps(
        &self,
        x_t: &Tensor,
        base: &Tensor,
        tm: &TimeMod,
        conds: &[&CondState],
    ) -> Result<Vec<Tensor>> {
        let b = conds.len();
        if b == 0 {
            return Ok(Vec::new());
        }
        let heads = self.cfg.heads;
        let n = x_t.dim(0)?;
        let mut x = self.dec_in.forward(x_t)?.add(base)?;
        let mut rows = 1;
        for (bi, (blk, m)) in self.dec_blocks.iter().zip(&tm.blocks).enumerate() {
            let attn = blk.attn.forward_frames(&m.norm1.forward(&x)?, heads, rows)?;
            x = (&x + attn.broadcast_mul(&m.gate1)?)?;
            if rows == 1 && b > 1 {
                x = Tensor::cat(&vec![&x; b], 0)?;
                rows = b;
            }
            let xn = blk.norm2.forward(&x)?;
            let mut parts = conds
                .iter()
                .enumerate()
                .map(|(i, c)| blk.xattn.forward(&xn.narrow(0, i * n, n)?, &c.dec[bi]))
                .collect::<Result<Vec<_>>>()?;
            let text = if b == 1 { parts.remove(0) } else { Tensor::cat(&parts, 0)? };
            x = (&x + text)?;
            x = (&x + blk.mlp.forward(&m.norm3.forward(&x)?)?.broadcast_mul(&m.gate2)?)?;
        }
        let v = self.out_proj.forward(&tm.out.forward(&x)?)?;
        (0..b).map(|i| Ok(v.narrow(0, i * n, n)?)).collect()
    }
}

/// The sampler's times: `u_k = 1 − k/K` shifted by `S`: `t = S·u / (1 + (S − 1)·u)` (computed in
/// f64 like the reference's Python floats).
pub fn sampling_times(steps: usize, shift: f32) -> Vec<f64> {
    let s = f64::from(shift);
    (0..steps)
        .map(|k| {
            let u = 1.0 - k as f64 / steps as f64;
            s * u / (1.0 + (s - 1.0) * u)
        })
        .collect()
}
