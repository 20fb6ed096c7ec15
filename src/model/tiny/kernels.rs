//! CPU kernels for the elementwise and data-movement work around the matmuls.
//!
//! candle's matmuls (gemm) are fast, but its generic elementwise ops are not at these sizes: SiLU,
//! GELU, a broadcast bias add and softmax each take a separate strided pass with a libm `exp` per
//! element, and the CPU conv2d re-packs its input and kernel on every call. spool-tiny spends most of
//! a frame's time outside the matmuls that way. The ops here fuse what follows a matmul (bias,
//! activation, softmax with its logit bias) into one contiguous pass whose `exp` is branch-free so
//! the compiler vectorises it, and give the autoencoder a channels-last im2col so each conv is one
//! gemm. All are `CustomOp1`s on contiguous f32 CPU tensors; other devices are rejected at load time.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::model::Result;

/// `e^x` for f32 without branches, to ~2 ulp: `2^n · p(r)` with `r = x − n·ln 2` and a degree-7
/// polynomial for `e^r`. Inputs are clamped to (−87.3, 88), where the result stays a normal float.
/// No float→int conversion (Rust's saturating `as` would stop the loops from vectorising): `2^n` is
/// built from the bits of `n + 127 + 2²³`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer in float arithmetic.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    let scale = f32::from_bits((n + (127.0 + 8_388_608.0)).to_bits() << 23);
    p * scale
}

/// Runs `f` compiled for AVX2 when the CPU has it, so its loops get 8-wide vectors; the portable
/// build only assumes SSE2. Callers pass `#[inline(always)]` closures: a closure that is not inlined
/// into the AVX2 frame is compiled without the feature.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features `avx2` is compiled for.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// Sum with eight independent accumulators, so it vectorises (a single running sum is a serial
/// dependency the compiler may not reorder).
#[inline(always)]
pub fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder().iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for c in chunks {
        for i in 0..8 {
            acc[i] = acc[i].max(c[i]);
        }
    }
    acc.iter().fold(rest, |a, &b| a.max(b))
}

#[inline(always)]
fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// GELU with the tanh approximation; `tanh(u) = 1 − 2/(1 + e^{2u})`.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2/π)
    let u = C * (x + 0.044_715 * x * x * x);
    let t = 1.0 - 2.0 / (1.0 + exp(2.0 * u));
    0.5 * x * (1.0 + t)
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    Silu,
    Gelu,
}

impl Act {
    #[inline(always)]
    fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Silu => silu(x),
            Act::Gelu => gelu(x),
        }
    }
}

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let s = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&s[a..b]),
        None => candle_core::bail!("spool-tiny kernels need contiguous inputs"),
    }
}

/// Applies a fused `act(x + bias)` to the rows of a `(…, d)` tensor. An empty bias means none.
pub fn bias_act(x: &Tensor, bias: &[f32], act: Act) -> Result<Tensor> {
    Ok(x.apply_op1_no_bwd(&BiasAct { bias, act })?)
}

/// Elementwise activation.
pub fn act(x: &Tensor, act: Act) -> Result<Tensor> {
    bias_act(x, &[], act)
}

struct BiasAct<'a> {
    bias: &'a [f32],
    act: Act,
}

impl CustomOp1 for BiasAct<'_> {
    fn name(&self) -> &'static str {
        "spool-bias-act"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous(storage, layout)?;
        let mut dst = vec![0f32; src.len()];
        if !self.bias.is_empty() && layout.dims().last() != Some(&self.bias.len()) {
            candle_core::bail!("bias of {} for shape {:?}", self.bias.len(), layout.dims());
        }
        simd(
            #[inline(always)]
            || self.run(src, &mut dst),
        );
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

impl BiasAct<'_> {
    #[inline(always)]
    fn run(&self, src: &[f32], dst: &mut [f32]) {
        if self.bias.is_empty() {
            match self.act {
                Act::None => dst.copy_from_slice(src),
                Act::Silu => dst.iter_mut().zip(src).for_each(|(o, &x)| *o = silu(x)),
                Act::Gelu => dst.iter_mut().zip(src).for_each(|(o, &x)| *o = gelu(x)),
            }
        } else {
            let d = self.bias.len();
            for (o, s) in dst.chunks_exact_mut(d).zip(src.chunks_exact(d)) {
                match self.act {
                    Act::None => o.iter_mut().zip(s).zip(self.bias).for_each(|((o, x), b)| *o = x + b),
                    Act::Silu => o.iter_mut().zip(s).zip(self.bias).for_each(|((o, x), b)| *o = silu(x + b)),
                    Act::Gelu => o.iter_mut().zip(s).zip(self.bias).for_each(|((o, x), b)| *o = gelu(x + b)),
                }
            }
        }
    }
}

/// Softmax over the last dimension of a `(…, keys)` tensor after adding a logit bias: `bias` holds
/// `P` rows of `keys` values (or is empty), and row `r` of the input uses bias row `(r / div) % P`.
/// Attention logits `(heads, n, keys)` with one bias row per head use `div = n`; the folded
/// cross-attention's `(tokens, heads, n)` uses `div = 1`.
pub fn softmax_bias(scores: &Tensor, bias: &[f32], div: usize) -> Result<Tensor> {
    Ok(scores.apply_op1_no_bwd(&SoftmaxBias { bias, div })?)
}

struct SoftmaxBias<'a> {
    bias: &'a [f32],
    div: usize,
}

impl CustomOp1 for SoftmaxBias<'_> {
    fn name(&self) -> &'static str {
        "spool-softmax-bias"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous(storage, layout)?;
        let l = *layout.dims().last().unwrap_or(&0);
        if l == 0 || !self.bias.len().is_multiple_of(l) || self.div == 0 {
            candle_core::bail!("softmax-bias: {} bias values for shape {:?}", self.bias.len(), layout.dims());
        }
        let rows = self.bias.len() / l;
        let zero = vec![0f32; l];
        let mut dst = vec![0f32; src.len()];
        simd(
            #[inline(always)]
            || {
                for (i, (o, s)) in dst.chunks_exact_mut(l).zip(src.chunks_exact(l)).enumerate() {
                    let b = match rows {
                        0 => &zero[..],
                        _ => {
                            let r = (i / self.div) % rows;
                            &self.bias[r * l..(r + 1) * l]
                        }
                    };
                    o.iter_mut().zip(s.iter().zip(b)).for_each(|(o, (x, b))| *o = x + b);
                    let m = max(o);
                    o.iter_mut().for_each(|o| *o = exp(*o - m));
                    let inv = 1.0 / sum(o);
                    o.iter_mut().for_each(|o| *o *= inv);
                }
            },
        );
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// Channels-last im2col: `(H, W, C)` → `(Ho·Wo, k·k·C)`, column `(ky·k + kx)·C + c`, zero padding.
pub fn im2col(x: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    Ok(x.apply_op1_no_bwd(&Im2Col { k, stride, pad })?)
}

struct Im2Col {
    k: usize,
    stride: usize,
    pad: usize,
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "spool-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous(storage, layout)?;
        let (h, w, c) = match layout.dims() {
            [h, w, c] => (*h, *w, *c),
            d => candle_core::bail!("im2col wants (H, W, C), got {d:?}"),
        };
        let (k, s, p) = (self.k, self.stride, self.pad);
        let ho = (h + 2 * p - k) / s + 1;
        let wo = (w + 2 * p - k) / s + 1;
        let row = k * k * c;
        // Written once, front to back: for one output pixel and kernel row the `k` taps read `k`
        // neighbouring input pixels, one contiguous run of `k·c` values (less where the padding
        // clips it). No zeroed buffer first, and one copy per run rather than per tap.
        let mut dst = Vec::with_capacity(ho * wo * row);
        for oy in 0..ho {
            for ox in 0..wo {
                let x0 = (ox * s) as isize - p as isize;
                // The taps `lo..hi` land inside the row; the others read the zero padding.
                let lo = (-x0).clamp(0, k as isize) as usize;
                let hi = (w as isize - x0).clamp(lo as isize, k as isize) as usize;
                for ky in 0..k {
                    let iy = (oy * s + ky).wrapping_sub(p);
                    if iy >= h {
                        dst.resize(dst.len() + k * c, 0.0);
                        continue;
                    }
                    let start = ((iy * w) as isize + x0) as usize;
                    dst.resize(dst.len() + lo * c, 0.0);
                    dst.extend_from_slice(&src[start.wrapping_add(lo) * c..start.wrapping_add(hi) * c]);
                    dst.resize(dst.len() + (k - hi) * c, 0.0);
                }
            }
        }
        Ok((CpuStorage::F32(dst), Shape::from((ho * wo, row))))
    }
}

/// Interleaves the four output phases of an "upsample ×2 then conv" computed as a 2×2 conv with
/// padding 1 (see `ae.rs`), adding the bias and applying SiLU: `y` is `((h+1)·(w+1), 4·c)` with phase
/// `(a, b)` in columns `(2a+b)·c..`, output `(2h, 2w, c)` with pixel `(2y+a, 2x+b)` from row
/// `(y+a)·(w+1) + x+b`.
pub fn interleave_phases(y: &Tensor, h: usize, w: usize, bias: &[f32], act: Act) -> Result<Tensor> {
    Ok(y.apply_op1_no_bwd(&Phases { h, w, bias, act })?)
}

struct Phases<'a> {
    h: usize,
    w: usize,
    bias: &'a [f32],
    act: Act,
}

impl CustomOp1 for Phases<'_> {
    fn name(&self) -> &'static str {
        "spool-phases"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous(storage, layout)?;
        let (h, w, c) = (self.h, self.w, self.bias.len());
        if layout.dims() != [(h + 1) * (w + 1), 4 * c] {
            candle_core::bail!("phases: shape {:?} for {h}×{w}×{c}", layout.dims());
        }
        let mut dst = vec![0f32; 4 * h * w * c];
        simd(
            #[inline(always)]
            || {
                for y in 0..h {
                    for a in 0..2 {
                        for x in 0..w {
                            for b in 0..2 {
                                let from = ((y + a) * (w + 1) + x + b) * 4 * c + (2 * a + b) * c;
                                let to = ((2 * y + a) * 2 * w + 2 * x + b) * c;
                                let (o, s) = (&mut dst[to..to + c], &src[from..from + c]);
                                o.iter_mut().zip(s).zip(self.bias).for_each(|((o, x), bb)| *o = self.act.apply(x + bb));
                            }
                        }
                    }
                }
            },
        );
        Ok((CpuStorage::F32(dst), Shape::from((2 * h, 2 * w, c))))
    }
}

/// Channels-last space-to-depth (PyTorch's `pixel_unshuffle` order): `(H, W, C)` → `(H/r, W/r, C·r²)`,
/// output channel `c·r² + i·r + j` taken from pixel `(y·r + i, x·r + j)`.
pub fn space_to_depth(x: &Tensor, r: usize) -> Result<Tensor> {
    let (h, w, c) = x.dims3()?;
    Ok(x.reshape((h / r, r, w / r, r, c))?.permute((0, 2, 4, 1, 3))?.contiguous()?.reshape((
        h / r,
        w / r,
        c * r * r,
    ))?)
}

/// The inverse of [`space_to_depth`] (PyTorch's `pixel_shuffle`): `(H, W, C·r²)` → `(H·r, W·r, C)`.
pub fn depth_to_space(x: &Tensor, r: usize) -> Result<Tensor> {
    let (h, w, cr) = x.dims3()?;
    let c = cr / (r * r);
    Ok(x.reshape((h, w, c, r, r))?.permute((0, 3, 1, 4, 2))?.contiguous()?.reshape((h * r, w * r, c))?)
}

/// The autoencoder's last step: channels-last `(h·w, 12)` conv output plus bias → pixel shuffle ×2
/// (channel `c·4 + i·2 + j` → output channel c, row offset i, column offset j) → planar
/// `(3, 2h, 2w)`, clamped to [-1, 1].
pub fn shuffle_to_planar(y: &Tensor, h: usize, w: usize, bias: &[f32]) -> Result<Tensor> {
    Ok(y.apply_op1_no_bwd(&Shuffle { h, w, bias })?)
}

struct Shuffle<'a> {
    h: usize,
    w: usize,
    bias: &'a [f32],
}

impl CustomOp1 for Shuffle<'_> {
    fn name(&self) -> &'static str {
        "spool-pixel-shuffle"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous(storage, layout)?;
        let (h, w) = (self.h, self.w);
        if layout.dims() != [h * w, 12] || self.bias.len() != 12 {
            candle_core::bail!("pixel shuffle: shape {:?} for {h}×{w}×12", layout.dims());
        }
        let (oh, ow) = (2 * h, 2 * w);
        let mut dst = vec![0f32; 3 * oh * ow];
        for y in 0..h {
            for x in 0..w {
                let s = &src[(y * w + x) * 12..(y * w + x + 1) * 12];
                for (ch, (v, b)) in s.iter().zip(self.bias).enumerate() {
                    let (c, i, j) = (ch / 4, (ch / 2) % 2, ch % 2);
                    dst[c * oh * ow + (2 * y + i) * ow + 2 * x + j] = (v + b).clamp(-1.0, 1.0);
                }
            }
        }
        Ok((CpuStorage::F32(dst), Shape::from((3, oh, ow))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 5e-7, "relative error {worst:e}");
        assert_eq!(exp(-1000.0), exp(-87.3));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn activations_match_their_definitions() {
        for i in -400..400 {
            let x = i as f32 * 0.025;
            let silu_ref = x / (1.0 + (-x).exp());
            let t = (0.797_884_6f32 * (x + 0.044_715 * x * x * x)).tanh();
            let gelu_ref = 0.5 * x * (1.0 + t);
            assert!((silu(x) - silu_ref).abs() < 1e-6 * (1.0 + x.abs()), "silu({x})");
            assert!((gelu(x) - gelu_ref).abs() < 1e-6 * (1.0 + x.abs()), "gelu({x})");
        }
    }
}
