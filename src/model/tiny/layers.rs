//! The small building blocks spool-tiny is made of: linear, layer norm, conv, attention, MLP.
//!
//! They are plain structs with a `forward`, built from [`Weights`] under the checkpoint's key names.
//! Shapes here are unbatched: one frame's 64 tokens are a `(tokens, dim)` matrix, which is what the
//! CPU matmul handles best (a batch dimension of 1 would only add strides).

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::weights::Weights;
use crate::model::Result;

/// `y = x·Wᵀ + b`, with `W` stored transposed (`(in, out)`, contiguous) so the matmul reads it
/// row-major without a strided view.
pub struct Linear {
    wt: Tensor,
    b: Tensor,
}

impl Linear {
    pub fn load(w: &Weights, prefix: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let weight = w.get(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let b = w.get(&format!("{prefix}.bias"), &[d_out])?;
        Ok(Linear {
            wt: weight.t()?.contiguous()?,
            b,
        })
    }

    /// Multiplies output columns `from..from+len` (weights and bias) by `s`: used to fold the
    /// `1/sqrt(head_dim)` attention scale into the query projection once, at load.
    pub fn scale_outputs(&mut self, from: usize, len: usize, s: f64) -> Result<()> {
        let d_out = self.b.dim(0)?;
        let mut v = vec![1f32; d_out];
        v[from..from + len].iter_mut().for_each(|x| *x = s as f32);
        let sv = Tensor::from_vec(v, d_out, self.b.device())?;
        self.wt = self.wt.broadcast_mul(&sv)?.contiguous()?;
        self.b = self.b.mul(&sv)?;
        Ok(())
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.wt)?.broadcast_add(&self.b)?)
    }
}

/// Layer norm over the last dimension with a per-channel scale and shift.
///
/// A custom op rather than `candle_nn::ops::layer_norm`: that one computes the variance as
/// `E[x²] − E[x]²` in f32, which loses digits when a residual stream has a large mean; this one
/// takes two passes like PyTorch, so parity holds. The decoder's adaLN folds `(1 + scale)` and
/// `shift` into `alpha` and `beta`, so modulated norms cost the same single pass.
#[derive(Clone)]
pub struct Norm {
    alpha: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    /// A LayerNorm with weights (`prefix.weight`, `prefix.bias`).
    pub fn load(w: &Weights, prefix: &str, dim: usize, eps: f32) -> Result<Norm> {
        let alpha = w
            .get(&format!("{prefix}.weight"), &[dim])?
            .to_vec1::<f32>()?;
        let beta = w.get(&format!("{prefix}.bias"), &[dim])?.to_vec1::<f32>()?;
        Ok(Norm { alpha, beta, eps })
    }

    /// `norm(x)·alpha + beta` with the given per-channel vectors.
    pub fn new(alpha: Vec<f32>, beta: Vec<f32>, eps: f32) -> Norm {
        Norm { alpha, beta, eps }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.apply_op1_no_bwd(self)?)
    }
}

impl CustomOp1 for Norm {
    fn name(&self) -> &'static str {
        "spool-layer-norm"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = storage.as_slice::<f32>()?;
        let src = match layout.contiguous_offsets() {
            Some((a, b)) => &src[a..b],
            None => candle_core::bail!("layer norm input must be contiguous"),
        };
        let d = self.alpha.len();
        if layout.dims().last() != Some(&d) {
            candle_core::bail!("layer norm over {d} channels got shape {:?}", layout.dims());
        }
        let mut dst = vec![0f32; src.len()];
        for (s, o) in src.chunks_exact(d).zip(dst.chunks_exact_mut(d)) {
            let mean = s.iter().sum::<f32>() / d as f32;
            let var = s.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            for (((o, s), a), b) in o.iter_mut().zip(s).zip(&self.alpha).zip(&self.beta) {
                *o = (s - mean) * inv * a + b;
            }
        }
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// A 2-D convolution with bias, on `(1, c, h, w)` tensors.
pub struct Conv {
    w: Tensor,
    b: Tensor,
    stride: usize,
    pad: usize,
}

impl Conv {
    pub fn load(
        w: &Weights,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Result<Conv> {
        let weight = w.get(&format!("{prefix}.weight"), &[c_out, c_in, k, k])?;
        let b = w
            .get(&format!("{prefix}.bias"), &[c_out])?
            .reshape((1, c_out, 1, 1))?;
        Ok(Conv {
            w: weight,
            b,
            stride,
            pad,
        })
    }

    pub fn from_parts(w: Tensor, b: Tensor, stride: usize, pad: usize) -> Result<Conv> {
        let c_out = w.dim(0)?;
        Ok(Conv {
            w,
            b: b.reshape((1, c_out, 1, 1))?,
            stride,
            pad,
        })
    }

    pub fn weight(&self) -> &Tensor {
        &self.w
    }

    pub fn bias(&self) -> Result<Tensor> {
        Ok(self.b.flatten_all()?)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.conv2d(&self.w, self.pad, self.stride, 1, 1)?
            .broadcast_add(&self.b)?)
    }
}

/// `fc2(gelu_tanh(fc1(x)))`.
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    pub fn load(w: &Weights, prefix: &str, dim: usize, hidden: usize) -> Result<Mlp> {
        Ok(Mlp {
            fc1: Linear::load(w, &format!("{prefix}.fc1"), dim, hidden)?,
            fc2: Linear::load(w, &format!("{prefix}.fc2"), hidden, dim)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.gelu()?)
    }
}

/// Splits `(tokens, heads·head_dim)` into `(heads, tokens, head_dim)`, contiguous.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (n, d) = x.dims2()?;
    Ok(x.reshape((n, heads, d / heads))?
        .transpose(0, 1)?
        .contiguous()?)
}

/// Inverse of [`split_heads`].
pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (h, n, dh) = x.dims3()?;
    Ok(x.transpose(0, 1)?.reshape((n, h * dh))?)
}

/// Plain softmax attention for one frame: `q` `(H, n, dh)` (already scaled by `1/sqrt(dh)`),
/// `k_t` `(H, dh, m)` or a transposed view of `(H, m, dh)`, `v` `(H, m, dh)`, optional additive
/// logit bias broadcastable to `(H, n, m)`. Matmul-softmax beats candle's CPU flash attention ~3×
/// at these sizes (DESIGN.md §7).
pub fn attention(q: &Tensor, k_t: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let mut s = q.matmul(k_t)?;
    if let Some(b) = bias {
        s = s.broadcast_add(b)?;
    }
    let p = candle_nn::ops::softmax_last_dim(&s)?;
    Ok(p.matmul(v)?)
}
