//! The causal encoder's bounded multi-scale key/value cache (MSC + sinks + rolling window).
//!
//! For every encoder block the cache is one preallocated pair of `(heads, L, head_dim)` tensors with
//! fixed slots, so appending a frame writes two small slices and never re-concatenates the history:
//!
//! ```text
//! [ sink 0 | sink 1 | ring 0 | ring 1 | pooled 0 | … | pooled W−N_FULL−1 ]
//!   64 tok   64 tok   64 tok   64 tok   16 tok         16 tok
//! ```
//!
//! - sink slots hold elements `s' < N_SINK` (BOS, frame 0) at full resolution forever;
//! - the full-resolution ring holds the last `N_FULL` elements (slot `s' mod N_FULL`);
//! - when an element leaves the ring it is 2×2-pooled into the pooled ring (slot
//!   `s' mod (WINDOW − N_FULL)`), overwriting an element that has left the window.
//!
//! Attention is over the whole buffer at once. Which slot holds which element is tracked here and
//! turned into one additive bias per frame: the ALiBi temporal term, `+ln 4` for pooled tokens, and a
//! large negative value for slots that are empty or hold an element the rules exclude. Softmax is a
//! set operation, so the slot order does not change the result. Memory is constant from the start.

use candle_core::{DType, Device, Tensor};

use super::config::Config;
use crate::model::Result;

/// Logit for slots the rules exclude: exp underflows to exactly 0, so they contribute nothing.
const MASKED: f32 = -1e30;

/// What appending element `s` does to each block's buffers, and the bias its queries use.
pub struct AppendPlan {
    /// Token offset where the new element's full-resolution k/v go.
    write_at: usize,
    /// `(ring offset, pooled offset)`: the element leaving the ring, to pool before it is overwritten.
    demote: Option<(usize, usize)>,
    /// `heads × L` additive logit bias.
    pub bias: Vec<f32>,
}

pub struct EncoderCache {
    heads: usize,
    head_dim: usize,
    hw: usize,
    tokens: usize,
    pooled_tokens: usize,
    n_sink: usize,
    n_full: usize,
    window: usize,
    max_dist: usize,
    slopes: Vec<f32>,
    pooled_bias: f32,
    len: usize,
    device: Device,
    blocks: usize,
    /// Per block `(k, v)`, each `(heads, len, head_dim)`; allocated on first use after a clear.
    kv: Vec<(Tensor, Tensor)>,
    sink: Vec<Option<usize>>,
    ring: Vec<Option<usize>>,
    pooled: Vec<Option<usize>>,
}

impl EncoderCache {
    pub fn new(cfg: &Config, device: &Device) -> EncoderCache {
        EncoderCache {
            heads: cfg.heads,
            head_dim: cfg.head_dim,
            hw: cfg.latent_hw,
            tokens: cfg.tokens_per_frame,
            pooled_tokens: cfg.pooled_tokens_per_frame,
            n_sink: cfg.n_sink,
            n_full: cfg.n_full,
            window: cfg.window,
            max_dist: cfg.temporal_bias_max_distance,
            slopes: cfg.alibi_slopes.clone(),
            pooled_bias: cfg.pooled_logit_bias,
            len: cfg.encoder_keys(),
            device: device.clone(),
            blocks: cfg.encoder_blocks,
            kv: Vec::new(),
            sink: vec![None; cfg.n_sink],
            ring: vec![None; cfg.n_full],
            pooled: vec![None; cfg.pooled_slots()],
        }
    }

    /// Forgets every element (the buffers are released too).
    pub fn clear(&mut self) {
        self.kv.clear();
        self.sink.iter_mut().for_each(|e| *e = None);
        self.ring.iter_mut().for_each(|e| *e = None);
        self.pooled.iter_mut().for_each(|e| *e = None);
    }

    /// An independent copy: the buffers are written in place, so a copy that shared them would
    /// change with the original.
    pub fn deep_copy(&self) -> Result<EncoderCache> {
        let kv = self.kv.iter().map(|(k, v)| Ok((k.copy()?, v.copy()?))).collect::<Result<Vec<_>>>()?;
        Ok(EncoderCache {
            kv,
            slopes: self.slopes.clone(),
            device: self.device.clone(),
            sink: self.sink.clone(),
            ring: self.ring.clone(),
            pooled: self.pooled.clone(),
            // The sizes and the bias are plain numbers, copied as they are.
            ..*self
        })
    }

    pub fn is_empty(&self) -> bool {
        self.sink.iter().chain(&self.ring).all(Option::is_none)
    }

    /// Bytes held by the k/v buffers.
    pub fn bytes(&self) -> usize {
        self.kv.iter().map(|(k, v)| (k.elem_count() + v.elem_count()) * 4).sum()
    }

    fn ring_off(&self, r: usize) -> usize {
        (self.n_sink + r) * self.tokens
    }

    fn pooled_off(&self, p: usize) -> usize {
        (self.n_sink + self.n_full) * self.tokens + p * self.pooled_tokens
    }

    /// Updates the slot bookkeeping for appending element `s` (or re-encoding it, when `s` is the
    /// newest element already held) and returns what each block must do and the bias.
    pub fn plan(&mut self, s: usize) -> Result<AppendPlan> {
        if self.kv.is_empty() {
            let shape = (self.heads, self.len, self.head_dim);
            for _ in 0..self.blocks {
                let k = Tensor::zeros(shape, DType::F32, &self.device)?;
                let v = Tensor::zeros(shape, DType::F32, &self.device)?;
                self.kv.push((k, v));
            }
        }
        let mut demote = None;
        let write_at = if s < self.n_sink {
            self.sink[s] = Some(s);
            s * self.tokens
        } else {
            let r = s % self.n_full;
            if let Some(e) = self.ring[r].filter(|&e| e < s && !self.pooled.is_empty()) {
                let p = e % self.pooled.len();
                // Never replace a newer pooled element with an older one (only possible when the window
                // is shorter than 2·N_FULL); the older one is out of reach first anyway.
                if self.pooled[p].is_none_or(|old| old < e) {
                    self.pooled[p] = Some(e);
                    demote = Some((self.ring_off(r), self.pooled_off(p)));
                }
            }
            self.ring[r] = Some(s);
            self.ring_off(r)
        };
        let bias = self.bias(s);
        Ok(AppendPlan { write_at, demote, bias })
    }

    /// `heads × L` bias for the queries of element `s`, from the current bookkeeping.
    fn bias(&self, s: usize) -> Vec<f32> {
        // One value per slot for a unit slope: (distance term multiplier, extra, visible).
        let mut slots: Vec<(f32, f32, usize)> = Vec::with_capacity(self.n_sink + self.n_full + self.pooled.len());
        let dist = |e: usize| (s - e).min(self.max_dist) as f32;
        for e in &self.sink {
            slots.push(match e {
                Some(e) if *e <= s => (dist(*e), 0.0, self.tokens),
                _ => (0.0, MASKED, self.tokens),
            });
        }
        for e in &self.ring {
            slots.push(match e {
                Some(e) if *e <= s && s - e < self.n_full => (dist(*e), 0.0, self.tokens),
                _ => (0.0, MASKED, self.tokens),
            });
        }
        for e in &self.pooled {
            slots.push(match e {
                Some(e) if *e <= s && s - e >= self.n_full && s - e < self.window && *e >= self.n_sink => {
                    (dist(*e), self.pooled_bias, self.pooled_tokens)
                }
                _ => (0.0, MASKED, self.pooled_tokens),
            });
        }
        let mut v = Vec::with_capacity(self.heads * self.len);
        for slope in &self.slopes {
            for &(d, extra, n) in &slots {
                // The temporal term is rounded to f32 before the pooled offset is added, as the
                // reference computes it.
                let b = if extra == MASKED { MASKED } else { -(*slope * d) + extra };
                v.extend(std::iter::repeat_n(b, n));
            }
        }
        v
    }

    /// Writes block `block`'s k/v `(heads, tokens, head_dim)` for the planned element, pooling the
    /// element that leaves the full-resolution ring first.
    pub fn store(&self, block: usize, plan: &AppendPlan, k: &Tensor, v: &Tensor) -> Result<()> {
        let (kb, vb) = &self.kv[block];
        if let Some((from, to)) = plan.demote {
            for buf in [kb, vb] {
                let pooled = self.pool(&buf.narrow(1, from, self.tokens)?)?;
                buf.slice_set(&pooled, 1, to)?;
            }
        }
        kb.slice_set(k, 1, plan.write_at)?;
        vb.slice_set(v, 1, plan.write_at)?;
        Ok(())
    }

    /// The whole `(k, v)` buffers of a block, `(heads, L, head_dim)`.
    pub fn kv(&self, block: usize) -> (&Tensor, &Tensor) {
        let (k, v) = &self.kv[block];
        (k, v)
    }

    /// 2×2 average pooling of one element's `(heads, 64, dh)` keys or values over the 8×8 grid:
    /// pooled token `r*4 + c` is the mean of tokens `(2r+i)*8 + 2c+j`.
    fn pool(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.hw / 2;
        let x = x.contiguous()?.reshape((self.heads, g, 2, g, 2, self.head_dim))?;
        let x = x.sum_keepdim(4)?.sum_keepdim(2)?.affine(0.25, 0.0)?;
        Ok(x.reshape((self.heads, self.pooled_tokens, self.head_dim))?.contiguous()?)
    }

    /// Element `e`'s full-resolution `(k, v)` if the cache holds them (tests compare these).
    pub fn full_kv(&self, block: usize, e: usize) -> Result<Option<(Tensor, Tensor)>> {
        let off = if e < self.n_sink {
            (self.sink[e] == Some(e)).then_some(e * self.tokens)
        } else {
            let r = e % self.n_full;
            (self.ring[r] == Some(e)).then(|| self.ring_off(r))
        };
        self.slot(block, off, self.tokens)
    }

    /// Element `e`'s pooled `(k, v)` if the cache holds them. An element still in the full-resolution
    /// ring is pooled when it leaves it; here its pooled form is computed on the spot.
    pub fn pooled_kv(&self, block: usize, e: usize) -> Result<Option<(Tensor, Tensor)>> {
        if self.pooled.is_empty() {
            return Ok(None);
        }
        if e >= self.n_sink
            && let Some((k, v)) = self.full_kv(block, e)?
        {
            return Ok(Some((self.pool(&k)?, self.pool(&v)?)));
        }
        let p = e % self.pooled.len();
        let off = (self.pooled[p] == Some(e)).then(|| self.pooled_off(p));
        self.slot(block, off, self.pooled_tokens)
    }

    fn slot(&self, block: usize, off: Option<usize>, n: usize) -> Result<Option<(Tensor, Tensor)>> {
        match (off, self.kv.get(block)) {
            (Some(o), Some((k, v))) => Ok(Some((k.narrow(1, o, n)?, v.narrow(1, o, n)?))),
            _ => Ok(None),
        }
    }
}
