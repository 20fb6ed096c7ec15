//! TAEHV's decoder for Wan 2.1 (`taew2_1`, madebyollin/taehv), streaming: Wan latents to RGB frames.
//!
//! A small 2-D conv net that keeps a little state across time instead of 3-D convolutions. Per
//! latent `[16, h, w]`: `Clamp` (3·tanh(x/3)), conv3×3 16→n0, ReLU, then three stages, each three
//! MemBlocks (ReLU(conv(cat[x, past]) + x), `past` = the block's input at the previous time step of
//! its stage, zeros at the start), nearest upsampling ×2, TGrow (a 1×1 conv n→n·s whose s row
//! groups are s consecutive time steps; s = 1, 2, 2) and a conv3×3 to the next width without bias;
//! finally ReLU and a conv3×3 to RGB. So one latent makes 4 frames of `[3, 8h, 8w]`. Widths are read
//! from the file's shapes (the real one: 256, 128, 64, 64); the time strides are fixed, as the
//! reference fixes them for this checkpoint (`decoder_time_upscale = (False, True, True)`).
//!
//! Streaming is the reference's `StreamingTAEHV.decode`: one latent in, every frame it makes out,
//! each time step carried depth-first through the stages, so only one frame per stage is alive.
//! The reference drops the first 3 raw frames of a stream (`frames_to_trim`, to align with Wan's
//! VAE); so does [`TaehvStream`]: latent 0 gives 1 frame, every later latent 4 (1 + 4k frames, as
//! the Wan VAE gives). The reference's frames are clamped to [0, 1]; Spool's are in [−1, 1], so each
//! is mapped by ×2 − 1 here, as Self-Forcing's demo wrapper does.
//!
//! Layers and names follow the reference's decoder `nn.Sequential` (keys `decoder.{index}.…`; the
//! encoder's are ignored). Parity: `tests/wan_taehv.rs`, `training/make_taehv_fixtures.py`.

use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig};

use super::load::Checkpoint;
use crate::model::{ModelError, Result};

/// Channels of a Wan 2.1 latent.
pub const LATENT_CHANNELS: usize = 16;
/// Output pixels per latent cell, each way (three ×2 upsamplings).
pub const SPATIAL_UPSCALE: usize = 8;
/// Frames per latent once the stream has started.
pub const FRAMES_PER_LATENT: usize = 4;
/// Raw frames dropped at the start of a stream (the reference's `frames_to_trim` = 4 − 1).
pub const FRAMES_TO_TRIM: usize = FRAMES_PER_LATENT - 1;

/// Latents a stream must be given again to continue exactly after a jump ([`TaehvStream::reset`]
/// and decoding them): the state carried to the next latent is each MemBlock's previous input,
/// and the deepest of those (stage 2's last block) depends on the latents 7 back and no further
/// (3 steps per stage of 3 blocks, one latent per step in stages 0 and 1, two in stage 2).
pub const STREAM_CONTEXT: usize = 8;

/// Time steps each stage's TGrow makes of one (the product is [`FRAMES_PER_LATENT`]).
const TIME_STRIDES: [usize; 3] = [1, 2, 2];
const BLOCKS_PER_STAGE: usize = 3;
/// Indices in the reference's Sequential: 0 Clamp, 1 conv, 2 ReLU; stage s from `STAGES[s]`:
/// MemBlock ×3, Upsample, TGrow, conv; then 21 ReLU, 22 conv.
const CONV_IN: usize = 1;
const STAGES: [usize; 3] = [3, 9, 15];
const CONV_OUT: usize = 22;

const PADDED: Conv2dConfig = Conv2dConfig { padding: 1, stride: 1, dilation: 1, groups: 1, cudnn_fwd_algo: None };

/// The stored shape of `name`, or the missing-tensor error naming the file.
fn shape_of(w: &Checkpoint, name: &str) -> Result<Vec<usize>> {
    w.shape(name).ok_or_else(|| ModelError::MissingTensor { file: w.file().to_string(), name: name.to_string() })
}

/// The output width of the 3×3 conv `decoder.{i}` (its weight's first dimension).
fn width_of(w: &Checkpoint, i: usize) -> Result<usize> {
    let name = format!("decoder.{i}.weight");
    match shape_of(w, &name)?.as_slice() {
        &[n, _, 3, 3] => Ok(n),
        got => Err(ModelError::Invalid(format!(
            "tensor `{name}` in {} has shape {got:?}, expected a 3×3 conv [out, in, 3, 3]: \
             the file is not a TAEHV decoder (taew2_1)",
            w.file()
        ))),
    }
}

fn conv3x3(w: &Checkpoint, prefix: &str, c_in: usize, c_out: usize, bias: bool) -> Result<Conv2d> {
    let weight = w.tensor(&format!("{prefix}.weight"), &[c_out, c_in, 3, 3])?;
    let bias = if bias { Some(w.tensor(&format!("{prefix}.bias"), &[c_out])?) } else { None };
    Ok(Conv2d::new(weight, bias, PADDED))
}

/// Three 3×3 convs (ReLU between) over [x ; past], added to x (the reference's skip is the
/// identity: in and out widths are equal).
struct MemBlock {
    convs: [Conv2d; 3],
}

impl MemBlock {
    fn load(w: &Checkpoint, i: usize, n: usize) -> Result<MemBlock> {
        let c = |j: usize, c_in: usize| conv3x3(w, &format!("decoder.{i}.conv.{j}"), c_in, n, true);
        Ok(MemBlock { convs: [c(0, 2 * n)?, c(2, n)?, c(4, n)?] })
    }

    fn forward(&self, x: &Tensor, past: &Tensor) -> Result<Tensor> {
        let y = self.convs[0].forward(&Tensor::cat(&[x, past], 1)?)?.relu()?;
        let y = self.convs[1].forward(&y)?.relu()?;
        Ok((self.convs[2].forward(&y)? + x)?.relu()?)
    }
}

struct Stage {
    blocks: [MemBlock; BLOCKS_PER_STAGE],
    /// TGrow's 1×1 conv as `[stride·width, width]`: row group t is time step t.
    grow: Tensor,
    stride: usize,
    /// 3×3 to the next width, no bias.
    conv: Conv2d,
}

pub struct Taehv {
    conv_in: Conv2d,
    stages: Vec<Stage>,
    conv_out: Conv2d,
    widths: [usize; 4],
    device: Device,
}

impl Taehv {
    /// Loads the decoder from a TAEHV safetensors file (`taew2_1.safetensors`) with the
    /// reference's key names. A file for another latent space (Wan 2.2's 48 channels, Hunyuan
    /// 1.5's 32) is refused by the first conv's input channels; Hunyuan 1's `taehv` has the same
    /// shapes as `taew2_1` and cannot be told apart here (the reference goes by file name).
    pub fn load(path: &Path, device: &Device) -> Result<Taehv> {
        let w = Checkpoint::open(
            path,
            device,
            "the TAEHV decoder for Wan 2.1: taew2_1.safetensors (or .pth) from github.com/madebyollin/taehv",
            &[],
        )?;
        let first = format!("decoder.{CONV_IN}.weight");
        let latent_in = shape_of(&w, &first)?.get(1).copied().unwrap_or(0);
        if latent_in != LATENT_CHANNELS {
            return Err(ModelError::Invalid(format!(
                "{}: tensor `{first}` takes {latent_in} latent channels, not Wan 2.1's {LATENT_CHANNELS}: \
                 this file is not taew2_1 (taew2_2 is Wan 2.2's, 48 channels; taehv1_5 Hunyuan 1.5's, 32)",
                w.file()
            )));
        }
        let widths = [
            width_of(&w, CONV_IN)?,
            width_of(&w, STAGES[0] + 5)?,
            width_of(&w, STAGES[1] + 5)?,
            width_of(&w, STAGES[2] + 5)?,
        ];
        let stages = (0..STAGES.len())
            .map(|s| {
                let (base, n, stride) = (STAGES[s], widths[s], TIME_STRIDES[s]);
                // A checkpoint trained with more time upscaling at this TGrow holds more rows: the
                // reference (`patch_tgrow_layers`) keeps the last stride·n, and so do we.
                let name = format!("decoder.{}.conv.weight", base + 4);
                let rows = shape_of(&w, &name)?.first().copied().unwrap_or(0).max(stride * n);
                let grow = w.tensor(&name, &[rows, n, 1, 1])?.narrow(0, rows - stride * n, stride * n)?;
                Ok(Stage {
                    blocks: [
                        MemBlock::load(&w, base, n)?,
                        MemBlock::load(&w, base + 1, n)?,
                        MemBlock::load(&w, base + 2, n)?,
                    ],
                    grow: grow.reshape((stride * n, n))?,
                    stride,
                    conv: conv3x3(&w, &format!("decoder.{}", base + 5), n, widths[s + 1], false)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Taehv {
            conv_in: conv3x3(&w, &format!("decoder.{CONV_IN}"), LATENT_CHANNELS, widths[0], true)?,
            stages,
            conv_out: conv3x3(&w, &format!("decoder.{CONV_OUT}"), widths[3], 3, true)?,
            widths,
            device: device.clone(),
        })
    }

    /// The widths of the three stages and of the last conv (taew2_1: 256, 128, 64, 64).
    pub fn widths(&self) -> [usize; 4] {
        self.widths
    }
}

/// A decoding stream: what carries over from one latent to the next. One per video; [`reset`]
/// starts a new one.
///
/// [`reset`]: TaehvStream::reset
#[derive(Default)]
pub struct TaehvStream {
    /// Each MemBlock's input at the previous time step of its stage; `None` before the first (the
    /// reference's zeros).
    past: [[Option<Tensor>; BLOCKS_PER_STAGE]; 3],
    /// Raw frames made so far; the first [`FRAMES_TO_TRIM`] are dropped.
    raw_frames: usize,
    /// The latent size this stream decodes, fixed by its first latent.
    size: Option<(usize, usize)>,
}

impl TaehvStream {
    pub fn new() -> TaehvStream {
        TaehvStream::default()
    }

    pub fn reset(&mut self) {
        *self = TaehvStream::default();
    }

    /// Decodes the next latent `[16, h, w]` of the stream: 1 frame for the first latent, 4 for
    /// every later one (what the reference's `StreamingTAEHV.decode` returns for them), each
    /// `[3, 8h, 8w]` in [−1, 1] (f32, on the decoder's device).
    pub fn decode_next(&mut self, dec: &Taehv, latent: &Tensor) -> Result<Vec<Tensor>> {
        let &[c, h, w] = latent.dims() else {
            return Err(ModelError::Invalid(format!(
                "TAEHV: a latent must be [16, h, w], got shape {:?}",
                latent.dims()
            )));
        };
        if c != LATENT_CHANNELS {
            return Err(ModelError::Invalid(format!("TAEHV: a latent must have 16 channels, got [{c}, {h}, {w}]")));
        }
        match self.size {
            Some(size) if size != (h, w) => {
                return Err(ModelError::Invalid(format!(
                    "TAEHV: this stream decodes {}×{} latents, got {h}×{w}; reset it to change size",
                    size.0, size.1
                )));
            }
            _ => self.size = Some((h, w)),
        }
        let x = latent.to_device(&dec.device)?.to_dtype(DType::F32)?.unsqueeze(0)?;
        // Clamp: squashes outliers smoothly into (−3, 3)
        let x = ((x / 3.0)?.tanh()? * 3.0)?;
        let x = dec.conv_in.forward(&x)?.relu()?;
        let mut frames = Vec::with_capacity(FRAMES_PER_LATENT);
        self.stage(dec, 0, x, &mut frames)?;
        Ok(frames)
    }

    /// Carries one time step `[1, width, h, w]` through stage `s` and everything after it, in
    /// time order (the reference's depth-first work queue).
    fn stage(&mut self, dec: &Taehv, s: usize, mut x: Tensor, frames: &mut Vec<Tensor>) -> Result<()> {
        let Some(stage) = dec.stages.get(s) else {
            return self.emit(dec, &x, frames);
        };
        for (block, past) in stage.blocks.iter().zip(&mut self.past[s]) {
            let prev = match past.take() {
                Some(p) => p,
                None => x.zeros_like()?,
            };
            let y = block.forward(&x, &prev)?;
            *past = Some(x);
            x = y;
        }
        // TGrow before the upsampling (the reference has it after): a 1×1 conv commutes with
        // nearest upsampling, and costs 4× less at the lower resolution.
        let (_, n, h, w) = x.dims4()?;
        let grown = stage.grow.matmul(&x.reshape((n, h * w))?)?;
        for t in 0..stage.stride {
            let xt = grown.narrow(0, t * n, n)?.reshape((1, n, h, w))?.upsample_nearest2d(2 * h, 2 * w)?;
            self.stage(dec, s + 1, stage.conv.forward(&xt)?, frames)?;
        }
        Ok(())
    }

    /// The last ReLU and conv to RGB, [0, 1] (the reference's clamp) → [−1, 1]. They hold no state,
    /// so a dropped frame skips them.
    fn emit(&mut self, dec: &Taehv, x: &Tensor, frames: &mut Vec<Tensor>) -> Result<()> {
        self.raw_frames += 1;
        if self.raw_frames <= FRAMES_TO_TRIM {
            return Ok(());
        }
        let rgb = dec.conv_out.forward(&x.relu()?)?.clamp(0f32, 1f32)?;
        frames.push(rgb.affine(2.0, -1.0)?.squeeze(0)?);
        Ok(())
    }
}
