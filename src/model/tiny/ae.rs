//! spool-tiny's per-frame autoencoder: 3×128×128 pixels ⇄ 16×8×8 latents (training/SPEC.md).
//!
//! Two layouts, told apart by config.json (`ae_enc_channels`, `ae_dec_channels`, `ae_patch`): v1
//! convolves straight down to the 8×8×16 latent; the 2×2-patched one ("f8c4" in training) stops at
//! 16×16×4 and folds each 2×2 block into one latent pixel's 16 channels, then a 1×1 map.
//!
//! The decoder's "nearest ×2 upsample, then 3×3 conv" stages are computed without the upsample: each
//! of the four output phases `(a, b)` (output pixel `(2y+a, 2x+b)`) only ever reads a 2×2 neighbourhood
//! of the low-resolution input, so one 2×2 conv with `4·c_out` outputs over the input (padding 1)
//! gives all phases, which are then interleaved. Same result, 16 multiply-adds per low-res pixel and
//! channel pair instead of 36: the upsampling stages are most of the decoder's cost.
//!
//! Activations are channels-last `(H, W, C)` inside the autoencoder, so every conv is one im2col
//! (contiguous copies of `C` values per tap) and one gemm, with bias and SiLU fused into the pass that
//! follows; the weights are re-laid out as `(k·k·C_in, C_out)` matrices once, at load.

use candle_core::{DType, Device, Tensor};

use super::config::Config;
use super::kernels::{
    Act, act, bias_act, depth_to_space, im2col, interleave_phases, shuffle_to_planar, space_to_depth,
};
use super::weights::Weights;
use crate::model::{DetachedDecoder, Frame, Latent, ModelError, Result};

/// Multiply-adds from which a conv's gemm is worth two threads (one join costs tens of
/// microseconds; the autoencoder's largest convs are 25–100 M).
const SPLIT_MACS: usize = 4 << 20;

/// A conv with bias on channels-last tensors, as im2col + gemm.
struct Conv {
    /// `(k·k·c_in, c_out)`, row `(ky·k + kx)·c_in + c`.
    w: Tensor,
    b: Vec<f32>,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Conv {
    #[allow(clippy::too_many_arguments)]
    fn load(w: &Weights, prefix: &str, c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize) -> Result<Conv> {
        let weight = w.get(&format!("{prefix}.weight"), &[c_out, c_in, k, k])?;
        let b = w.get(&format!("{prefix}.bias"), &[c_out])?.to_vec1::<f32>()?;
        Conv::from_torch(&weight, b, stride, pad)
    }

    /// From a PyTorch-layout kernel `(c_out, c_in, k, k)`.
    fn from_torch(weight: &Tensor, b: Vec<f32>, stride: usize, pad: usize) -> Result<Conv> {
        let (c_out, c_in, k, _) = weight.dims4()?;
        let w = weight.permute((2, 3, 1, 0))?.contiguous()?.reshape((k * k * c_in, c_out))?;
        Ok(Conv { w, b, k, stride, pad })
    }

    /// `(H, W, C_in)` → `(Ho·Wo, C_out)` before the bias. A large one is split by output rows into
    /// two gemms, one on the helper thread, where that pays ([`crate::beside::splits`]).
    fn matmul(&self, x: &Tensor) -> Result<(Tensor, usize, usize)> {
        let (h, w, c) = x.dims3()?;
        let ho = (h + 2 * self.pad - self.k) / self.stride + 1;
        let wo = (w + 2 * self.pad - self.k) / self.stride + 1;
        let col = if self.k == 1 && self.stride == 1 && self.pad == 0 {
            x.reshape((h * w, c))?
        } else {
            im2col(x, self.k, self.stride, self.pad)?
        };
        let (m, k) = col.dims2()?;
        if m * k * self.w.dim(1)? < SPLIT_MACS || !crate::beside::splits() {
            return Ok((col.matmul(&self.w)?, ho, wo));
        }
        let half = m / 2;
        let (top, bottom) = crate::beside::join(
            || col.narrow(0, 0, half)?.matmul(&self.w),
            || col.narrow(0, half, m - half)?.matmul(&self.w),
        );
        Ok((Tensor::cat(&[top?, bottom?], 0)?, ho, wo))
    }

    /// `act(conv(x) + b)`, channels-last.
    fn forward(&self, x: &Tensor, a: Act) -> Result<Tensor> {
        let (y, ho, wo) = self.matmul(x)?;
        Ok(bias_act(&y, &self.b, a)?.reshape((ho, wo, self.b.len()))?)
    }
}

/// `h + conv2(silu(conv1(silu(h))))`.
struct Res {
    conv1: Conv,
    conv2: Conv,
}

impl Res {
    fn load(w: &Weights, prefix: &str, ch: usize) -> Result<Res> {
        Ok(Res {
            conv1: Conv::load(w, &format!("{prefix}.conv1"), ch, ch, 3, 1, 1)?,
            conv2: Conv::load(w, &format!("{prefix}.conv2"), ch, ch, 3, 1, 1)?,
        })
    }

    fn forward(&self, h: &Tensor) -> Result<Tensor> {
        let y = self.conv1.forward(&act(h, Act::Silu)?, Act::Silu)?;
        let y = self.conv2.forward(&y, Act::None)?;
        Ok((h + y)?)
    }
}

/// Nearest ×2 upsample followed by a 3×3 conv (padding 1) and SiLU, as one 2×2 conv over the input.
struct UpConv {
    phases: Conv,
    bias: Vec<f32>,
}

impl UpConv {
    fn load(w: &Weights, prefix: &str, c_in: usize, c_out: usize) -> Result<UpConv> {
        let k = w.get(&format!("{prefix}.weight"), &[c_out, c_in, 3, 3])?;
        let bias = w.get(&format!("{prefix}.bias"), &[c_out])?.to_vec1::<f32>()?;
        // Along each axis, output phase 0 reads input rows (y−1, y) with taps (k0, k1+k2), phase 1
        // reads (y, y+1) with taps (k0+k1, k2). A 2×2 conv with padding 1 at output index o reads input
        // rows (o−1, o): phase 0 is its output row y, phase 1 its output row y+1.
        let fold = |t: &Tensor, axis: usize, phase: usize| -> Result<Tensor> {
            let tap = |i: usize| t.narrow(axis, i, 1);
            let (first, second) =
                if phase == 0 { (tap(0)?, (tap(1)? + tap(2)?)?) } else { ((tap(0)? + tap(1)?)?, tap(2)?) };
            Ok(Tensor::cat(&[first, second], axis)?)
        };
        let mut kernels = Vec::with_capacity(4);
        for a in 0..2 {
            for b in 0..2 {
                kernels.push(fold(&fold(&k, 2, a)?, 3, b)?);
            }
        }
        let phases = Conv::from_torch(&Tensor::cat(&kernels, 0)?, Vec::new(), 1, 1)?;
        Ok(UpConv { phases, bias })
    }

    /// `(h, w, c_in)` → `(2h, 2w, c_out)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (h, w, _) = x.dims3()?;
        let (y, _, _) = self.phases.matmul(x)?; // ((h+1)(w+1), 4·c_out)
        interleave_phases(&y, h, w, &self.bias, Act::Silu)
    }
}

/// The 2×2 fold of the patched layout and the 1×1 maps next to it (`enc.proj`, `dec.proj`).
struct Patch {
    size: usize,
    enc_proj: Conv,
    dec_proj: Conv,
}

/// The autoencoder, `enc.*` / `dec.*` / `ae.latent_scale`.
pub struct AutoEncoder {
    enc_in: Conv,
    down: Vec<Conv>,
    enc_res: Res,
    enc_out: Conv,
    dec_in: Conv,
    dec_res: Res,
    up: Vec<UpConv>,
    dec_out: Conv,
    patch: Option<Patch>,
    latent_scale: f32,
    /// The model's latent: `(channels, side)` of a `(C, side, side)` tensor.
    latent: (usize, usize),
}

impl AutoEncoder {
    /// Builds the layout `cfg` describes. `cfg` must have passed [`Config::validate`] (as every
    /// [`Config::load`] does): at least one width each, sizes consistent.
    pub fn new(cfg: &Config, w: &Weights) -> Result<AutoEncoder> {
        let (e, d) = (&cfg.ae_enc_channels, &cfg.ae_dec_channels);
        let (e_last, d_last) = (e[e.len() - 1], d[d.len() - 1]);
        let lc = cfg.latent_channels;
        let conv_lc = lc / (cfg.ae_patch * cfg.ae_patch);
        let down = (0..e.len() - 1)
            .map(|i| Conv::load(w, &format!("enc.down.{i}"), e[i], e[i + 1], 4, 2, 1))
            .collect::<Result<_>>()?;
        let up =
            (0..d.len() - 1).map(|i| UpConv::load(w, &format!("dec.up.{i}"), d[i], d[i + 1])).collect::<Result<_>>()?;
        let patch = if cfg.ae_patch > 1 {
            Some(Patch {
                size: cfg.ae_patch,
                enc_proj: Conv::load(w, "enc.proj", lc, lc, 1, 1, 0)?,
                dec_proj: Conv::load(w, "dec.proj", lc, lc, 1, 1, 0)?,
            })
        } else {
            None
        };
        Ok(AutoEncoder {
            enc_in: Conv::load(w, "enc.conv_in", 3, e[0], 3, 1, 1)?,
            down,
            enc_res: Res::load(w, "enc.res", e_last)?,
            enc_out: Conv::load(w, "enc.conv_out", e_last, conv_lc, 1, 1, 0)?,
            dec_in: Conv::load(w, "dec.conv_in", conv_lc, d[0], 3, 1, 1)?,
            dec_res: Res::load(w, "dec.res", d[0])?,
            up,
            dec_out: Conv::load(w, "dec.conv_out", d_last, 12, 3, 1, 1)?,
            patch,
            latent_scale: w.scalar("ae.latent_scale")?,
            latent: (lc, cfg.latent_hw),
        })
    }

    /// A model latent as the model reads it: checked to be `(C, side, side)`, in f32 on the
    /// autoencoder's device.
    pub fn latent(&self, latent: &Latent) -> Result<Tensor> {
        let (c, hw) = self.latent;
        if latent.0.dims() != [c, hw, hw] {
            return Err(ModelError::Invalid(format!(
                "a spool-tiny latent is ({c}, {hw}, {hw}), got {:?}",
                latent.0.dims()
            )));
        }
        Ok(latent.0.to_device(self.dec_in.w.device())?.to_dtype(DType::F32)?)
    }

    /// A model latent → its frame.
    pub fn decode_frame(&self, latent: &Latent) -> Result<Frame> {
        let x = self.decode(&self.latent(latent)?)?;
        let (_, h, w) = x.dims3()?;
        let planar = x.flatten_all()?.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
        Ok(Frame { width: w as u32, height: h as u32, planar })
    }

    /// Pixels `(3, H, W)` in [-1, 1] → scaled latent `(C, H/16, W/16)`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.enc_in.forward(&x.permute((1, 2, 0))?.contiguous()?, Act::Silu)?;
        for d in &self.down {
            h = d.forward(&h, Act::Silu)?;
        }
        let h = self.enc_res.forward(&h)?;
        let mut z = self.enc_out.forward(&h, Act::None)?; // (h, w, C / patch²)
        if let Some(p) = &self.patch {
            z = p.enc_proj.forward(&space_to_depth(&z, p.size)?, Act::None)?;
        }
        Ok(z.permute((2, 0, 1))?.affine(f64::from(self.latent_scale), 0.0)?)
    }

    /// Scaled latent `(C, h, w)` → pixels `(3, 16h, 16w)`, clamped to [-1, 1].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let mut z = (z.permute((1, 2, 0))? / f64::from(self.latent_scale))?.contiguous()?;
        if let Some(p) = &self.patch {
            z = depth_to_space(&p.dec_proj.forward(&z, Act::None)?, p.size)?;
        }
        let h = self.dec_in.forward(&z, Act::Silu)?;
        let mut h = self.dec_res.forward(&h)?;
        for u in &self.up {
            h = u.forward(&h)?;
        }
        let (hh, ww, _) = h.dims3()?;
        let (y, _, _) = self.dec_out.matmul(&h)?; // (hh·ww, 12)
        shuffle_to_planar(&y, hh, ww, &self.dec_out.b)
    }
}

/// The autoencoder holds no state, so the engine decodes frames with it beside the commit pass.
impl DetachedDecoder for AutoEncoder {
    fn decode(&self, latent: &Latent) -> Result<Vec<Frame>> {
        Ok(vec![self.decode_frame(latent)?])
    }
}
