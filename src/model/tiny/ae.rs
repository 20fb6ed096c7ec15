//! spool-tiny's per-frame autoencoder: 3×128×128 pixels ⇄ 16×8×8 latents (training/SPEC.md).
//!
//! The decoder's "nearest ×2 upsample, then 3×3 conv" stages are computed without the upsample: each
//! of the four output phases `(a, b)` (output pixel `(2y+a, 2x+b)`) only ever reads a 2×2 neighbourhood
//! of the low-resolution input, so one 2×2 conv with `4·c_out` outputs over the input (padding 1)
//! gives all phases, which are then interleaved. Same result, 16 multiply-adds per low-res pixel and
//! channel pair instead of 36: the upsampling stages are most of the decoder's cost.

use candle_core::Tensor;

use super::config::Config;
use super::layers::Conv;
use super::weights::Weights;
use crate::model::Result;

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
        let y = self.conv1.forward(&candle_nn::ops::silu(h)?)?;
        let y = self.conv2.forward(&candle_nn::ops::silu(&y)?)?;
        Ok((h + y)?)
    }
}

/// Nearest ×2 upsample followed by a 3×3 conv (padding 1), as one 2×2 conv over the input.
struct UpConv {
    phases: Conv,
    c_out: usize,
}

impl UpConv {
    fn load(w: &Weights, prefix: &str, c_in: usize, c_out: usize) -> Result<UpConv> {
        let conv = Conv::load(w, prefix, c_in, c_out, 3, 1, 1)?;
        // Along each axis, output phase 0 reads input rows (y−1, y) with taps (k0, k1+k2), phase 1
        // reads (y, y+1) with taps (k0+k1, k2). A 2×2 conv with padding 1 at output index o reads input
        // rows (o−1, o): phase 0 is its output row y, phase 1 its output row y+1.
        let k = conv.weight();
        let taps = |axis: usize, phase: usize| -> Result<Tensor> {
            let t = |i: usize| k.narrow(axis, i, 1);
            let (first, second) = if phase == 0 {
                (t(0)?, (t(1)? + t(2)?)?)
            } else {
                ((t(0)? + t(1)?)?, t(2)?)
            };
            Ok(Tensor::cat(&[first, second], axis)?)
        };
        let mut kernels = Vec::with_capacity(4);
        for a in 0..2 {
            for b in 0..2 {
                // Rows first (axis 2) gives (c_out, c_in, 2, 3); then columns (axis 3) of that.
                let rows = taps(2, a)?;
                let t = |i: usize| rows.narrow(3, i, 1);
                let (first, second) = if b == 0 {
                    (t(0)?, (t(1)? + t(2)?)?)
                } else {
                    ((t(0)? + t(1)?)?, t(2)?)
                };
                kernels.push(Tensor::cat(&[first, second], 3)?);
            }
        }
        let weight = Tensor::cat(&kernels, 0)?.contiguous()?;
        let bias = conv.bias()?;
        let bias = Tensor::cat(&[&bias, &bias, &bias, &bias], 0)?;
        Ok(UpConv {
            phases: Conv::from_parts(weight, bias, 1, 1)?,
            c_out,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let y = self.phases.forward(x)?; // (1, 4·c_out, h+1, w+1)
        let phase = |a: usize, b: usize| -> Result<Tensor> {
            Ok(y.narrow(1, (a * 2 + b) * self.c_out, self.c_out)?
                .narrow(2, a, h)?
                .narrow(3, b, w)?)
        };
        let row =
            |a: usize| -> Result<Tensor> { Ok(Tensor::stack(&[phase(a, 0)?, phase(a, 1)?], 4)?) };
        // (1, c, h, 2, w, 2) → (1, c, 2h, 2w): output (2y+a, 2x+b).
        let out = Tensor::stack(&[row(0)?, row(1)?], 3)?;
        Ok(out.reshape((1, self.c_out, 2 * h, 2 * w))?)
    }
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
    latent_scale: f32,
    channels: usize,
}

impl AutoEncoder {
    pub fn new(cfg: &Config, w: &Weights) -> Result<AutoEncoder> {
        let e = &cfg.ae_enc_channels;
        let d = &cfg.ae_dec_channels;
        let lc = cfg.latent_channels;
        let down = (0..4)
            .map(|i| Conv::load(w, &format!("enc.down.{i}"), e[i], e[i + 1], 4, 2, 1))
            .collect::<Result<_>>()?;
        let up = (0..3)
            .map(|i| UpConv::load(w, &format!("dec.up.{i}"), d[i], d[i + 1]))
            .collect::<Result<_>>()?;
        Ok(AutoEncoder {
            enc_in: Conv::load(w, "enc.conv_in", 3, e[0], 3, 1, 1)?,
            down,
            enc_res: Res::load(w, "enc.res", e[4])?,
            enc_out: Conv::load(w, "enc.conv_out", e[4], lc, 1, 1, 0)?,
            dec_in: Conv::load(w, "dec.conv_in", lc, d[0], 3, 1, 1)?,
            dec_res: Res::load(w, "dec.res", d[0])?,
            up,
            dec_out: Conv::load(w, "dec.conv_out", d[3], 12, 3, 1, 1)?,
            latent_scale: w.scalar("ae.latent_scale")?,
            channels: lc,
        })
    }

    /// Pixels `(3, H, W)` in [-1, 1] → scaled latent `(C, H/16, W/16)`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let silu = candle_nn::ops::silu;
        let mut h = silu(&self.enc_in.forward(&x.unsqueeze(0)?)?)?;
        for d in &self.down {
            h = silu(&d.forward(&h)?)?;
        }
        let h = self.enc_res.forward(&h)?;
        let z = self
            .enc_out
            .forward(&h)?
            .affine(f64::from(self.latent_scale), 0.0)?;
        Ok(z.squeeze(0)?)
    }

    /// Scaled latent `(C, h, w)` → pixels `(3, 16h, 16w)`, clamped to [-1, 1].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let silu = candle_nn::ops::silu;
        let z = (z.unsqueeze(0)? / f64::from(self.latent_scale))?;
        let h = silu(&self.dec_in.forward(&z)?)?;
        let mut h = self.dec_res.forward(&h)?;
        for u in &self.up {
            h = silu(&u.forward(&h)?)?;
        }
        let y = self.dec_out.forward(&h)?; // (1, 12, H/2, W/2)
        let (_, _, hh, ww) = y.dims4()?;
        // Pixel shuffle ×2: channel c·4 + i·2 + j → output channel c, row offset i, column offset j.
        let y = y
            .reshape((3, 2, 2, hh, ww))?
            .permute((0, 3, 1, 4, 2))?
            .reshape((3, 2 * hh, 2 * ww))?;
        Ok(y.clamp(-1f32, 1f32)?)
    }

    pub fn latent_channels(&self) -> usize {
        self.channels
    }
}
