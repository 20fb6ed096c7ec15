//! The small building blocks of spool-tiny's transformer: linear, layer norm, attention, MLP.
//!
//! They are plain structs with a `forward`, built from [`Weights`] under the checkpoint's key names.
//! Shapes here are unbatched: one frame's 64 tokens are a `(tokens, dim)` matrix, which is what the
//! CPU matmul handles best (a batch dimension of 1 would only add strides).

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use super::kernels::{Act, bias_act, simd, softmax_bias, sum};
use super::weights::Weights;
use crate::model::Result;

/// `y = x·Wᵀ + b`, with `W` stored transposed (`(in, out)`, contiguous) so the matmul reads it
/// row-major without a strided view.
pub struct Linear {
    wt: Tensor,
    b: Vec<f32>,
}

impl Linear {
    pub fn load(w: &Weights, prefix: &str, d_in: usize, d_out: usize) -> Result<Linear> {
        let weight = w.get(&format!("{prefix}.weight"), &[d_out, d_in])?;
        let b = w.get(&format!("{prefix}.bias"), &[d_out])?.to_vec1::<f32>()?;
        Ok(Linear { wt: weight.t()?.contiguous()?, b })
    }

    /// Multiplies output columns `from..from+len` (weights and bias) by `s`: used to fold the
    /// `1/sqrt(head_dim)` attention scale into the query projection once, at load.
    pub fn scale_outputs(&mut self, from: usize, len: usize, s: f64) -> Result<()> {
        let d_out = self.b.len();
        let mut v = vec![1f32; d_out];
        v[from..from + len].iter_mut().for_each(|x| *x = s as f32);
        self.b.iter_mut().zip(&v).for_each(|(b, s)| *b *= s);
        let sv = Tensor::from_vec(v, d_out, self.wt.device())?;
        self.wt = self.wt.broadcast_mul(&sv)?.contiguous()?;
        Ok(())
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, Act::None)
    }

    /// `Wᵀ`, `(in, out)`.
    pub fn weight_t(&self) -> &Tensor {
        &self.wt
    }

    pub fn bias(&self) -> &[f32] {
        &self.b
    }

    /// `act(x·Wᵀ + b)`, the bias and activation in one pass after the matmul.
    pub fn forward_act(&self, x: &Tensor, act: Act) -> Result<Tensor> {
        bias_act(&x.matmul(&self.wt)?, &self.b, act)
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
        let alpha = w.get(&format!("{prefix}.weight"), &[dim])?.to_vec1::<f32>()?;
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

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
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
        simd(
            #[inline(always)]
            || {
                for (s, o) in src.chunks_exact(d).zip(dst.chunks_exact_mut(d)) {
                    let mean = sum(s) / d as f32;
                    // Centred values first (kept in the output row), then their mean square.
                    o.iter_mut().zip(s).for_each(|(o, x)| *o = x - mean);
                    let mut sq = [0f32; 8];
                    let chunks = o.chunks_exact(8);
                    let rest: f32 = chunks.remainder().iter().map(|v| v * v).sum();
                    for c in chunks {
                        for i in 0..8 {
                            sq[i] += c[i] * c[i];
                        }
                    }
                    let var = (sq.iter().sum::<f32>() + rest) / d as f32;
                    let inv = 1.0 / (var + self.eps).sqrt();
                    o.iter_mut().zip(&self.alpha).zip(&self.beta).for_each(|((o, a), b)| *o = *o * inv * a + b);
                }
            },
        );
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
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
        self.fc2.forward(&self.fc1.forward_act(x, Act::Gelu)?)
    }
}

/// Plain softmax attention for one frame: `q` `(H, n, dh)` (already scaled by `1/sqrt(dh)`),
/// `k_t` `(H, dh, m)` or a transposed view of `(H, m, dh)`, `v` `(H, m, dh)`, and an additive logit
/// bias of `H·m` values (one row per head) or none. Matmul-softmax beats candle's CPU flash attention ~3× at
/// these sizes (DESIGN.md §7).
pub fn attention(q: &Tensor, k_t: &Tensor, v: &Tensor, bias: &[f32]) -> Result<Tensor> {
    let p = softmax_bias(&q.matmul(k_t)?, bias, q.dim(1)?)?;
    Ok(p.matmul(v)?)
}
