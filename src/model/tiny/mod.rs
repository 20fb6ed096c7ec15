//! spool-tiny in candle: the embedded default model (training/SPEC.md is the contract).
//!
//! - [`ae`]: the per-frame autoencoder, 3×128×128 ⇄ 16×8×8.
//! - [`net`]: `text_proj`, the causal encoder (one pass per frame, MSC cache) and the adaLN diffusion
//!   decoder (one pass per denoising step).
//! - [`cache`]: the encoder's bounded cache: sinks, a full-resolution ring, a 2×2-pooled ring, ALiBi.
//! - [`kernels`]: fused CPU kernels around the matmuls (bias + activation, softmax with logit bias,
//!   channels-last im2col), vectorised, with AVX2 picked at run time.
//! - [`TinyModel`]: all of it driven as the generation loop needs (DESIGN.md §2), independent of any
//!   text encoder; [`SpoolTiny`] adds the text encoder and implements [`VideoModel`].
//!
//! Generation, one frame `s` at a time: the encoder output `h_s` of element `s` (BOS for `s = 0`,
//! frame `s−1` otherwise) conditions the decoder, which denoises frame `s` in K steps without touching
//! the cache (Ca2-VDM cache sharing, SCD split); the finished latent is then committed as element
//! `s+1`, whose keys/values are computed once in that pass. Element `s` is encoded under the
//! conditioning of frame `s` (SPEC clarification): [`TinyModel::denoise_with`] re-encodes only the
//! newest element if it was committed under another conditioning.
//!
//! Classifier-free guidance (scale `g ≠ 1`): every denoising step runs the decoder twice on the same
//! `x_t`, `h_s` and `t`, under the frame's conditioning (`v_c`) and under the empty prompt's (`v_u`,
//! prepared once at load), and uses `v = v_u + g·(v_c − v_u)`. When the model has one thread (a
//! 2-core machine) and the helper thread is on, the two passes run side by side, the empty
//! prompt's on the helper ([`crate::beside`]): 5.0 ms a step against 7.3 for one batch of both on
//! one thread, the same numbers. Otherwise they run as one batch ([`TinyNet::decoder_steps`]),
//! spread over the model's threads. The encoder and its cache never see the empty prompt. `g = 1` runs the
//! single conditional pass, exactly as without guidance. A frame drawn from noise is guided only at
//! the steps whose noise level is at least the config's `guidance_min_t` (guidance in a limited
//! interval): guidance at the low-noise steps fades a rollout's objects a little more every frame
//! (training/README.md, "Guidance in a limited interval"). A redraw (SDEdit) starts below that
//! interval and is there to pull a frame towards its prompt, so all of its steps are guided; so is
//! a frame that settles a prompt change (`Sampling::settling`): guidance only at high noise lets
//! the old content linger there and then give way at once, a cut.
//!
//! Per-conditioning work (text projection, every cross-attention's keys/values) is done once per
//! conditioning and kept for the last few; per-timestep work (time embedding, adaLN modulations)
//! once per distinct `t`. A LongLive re-cache ([`TinyModel::recache`]) re-encodes the sinks and the
//! window from the latents kept for that purpose.
//!
//! Computation is f32 on the CPU; tensors on disk may be f16. [`bench_random`] times the stages with
//! random weights of the contract's shapes (`examples/tiny_bench.rs`).

pub mod ae;
pub mod cache;
pub mod config;
pub mod kernels;
mod layers;
mod look;
pub mod net;
pub mod register;
mod weights;

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, TensorId};

pub use ae::AutoEncoder;
pub use cache::EncoderCache;
pub use config::Config;
pub use net::{CondState, TimeMod, TinyNet, sampling_times};
pub use weights::Weights;

use crate::model::text::{self, TextEncoder};
use crate::model::{
    CacheSnapshot, CommitConditioning, Conditioning, DetachedDecoder, EncodedPrompt, Frame, FrameNoise, Latent,
    LatentFrames, Look, ModelError, ModelInfo, Place, Redraw, Result, Sampling, VideoModel, check_guidance,
};

/// Conditionings kept prepared at once: the current prompt, the previous one (a switch back is
/// common), blends in between.
const COND_SLOTS: usize = 4;

/// A prepared conditioning and what identifies it.
struct CondEntry {
    id: u64,
    tensor_ids: (TensorId, TensorId),
    tokens: Vec<f32>,
    bias: Vec<f32>,
    state: Arc<CondState>,
}

/// Prepared conditionings, most recently used last. Lookup is by tensor identity first (the engine
/// passes the same `Conditioning` every frame) and by value otherwise, so an equal conditioning
/// built anew is not prepared twice.
#[derive(Default)]
struct CondCache {
    entries: Vec<CondEntry>,
    next_id: u64,
}

impl CondCache {
    fn get(&mut self, net: &TinyNet, cond: &Conditioning) -> Result<(u64, Arc<CondState>)> {
        let ids = (cond.tokens.id(), cond.bias.id());
        let pos = match self.entries.iter().position(|e| e.tensor_ids == ids) {
            Some(p) => Some(p),
            None => {
                let tokens = cond.tokens.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                let bias = cond.bias.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                let found = self.entries.iter().position(|e| e.tokens == tokens && e.bias == bias);
                match found {
                    Some(p) => {
                        self.entries[p].tensor_ids = ids;
                        Some(p)
                    }
                    None => {
                        let state = Arc::new(net.prepare_cond(cond)?);
                        self.next_id += 1;
                        if self.entries.len() == COND_SLOTS {
                            self.entries.remove(0);
                        }
                        self.entries.push(CondEntry { id: self.next_id, tensor_ids: ids, tokens, bias, state });
                        None
                    }
                }
            }
        };
        if let Some(p) = pos {
            let e = self.entries.remove(p);
            self.entries.push(e);
        }
        let e = self.entries.last().expect("just pushed");
        Ok((e.id, e.state.clone()))
    }
}

/// The newest element's encoder output and what the decoder derives from it once per frame.
#[derive(Clone)]
struct Newest {
    h: Tensor,
    /// `decoder.cond_proj(h) + decoder.pos`.
    base: Tensor,
    cond: u64,
}

/// The generation state of a [`CacheSnapshot`].
struct TinyState {
    cache: EncoderCache,
    next: usize,
    newest: Option<Newest>,
    sink_inputs: Vec<Option<Tensor>>,
    recent_inputs: VecDeque<(usize, Tensor)>,
}

/// Classifier-free guidance of one sampling: its scale, and the lowest noise level it applies at.
#[derive(Clone, Copy)]
struct Guide {
    scale: f32,
    min_t: f32,
}

/// The empty prompt's conditioning, for classifier-free guidance, and its prepared form.
struct Unconditional {
    cond: Conditioning,
    state: Arc<CondState>,
}

/// spool-tiny without a text encoder: weights, autoencoder, cache and the sampler.
pub struct TinyModel {
    cfg: Config,
    device: Device,
    net: TinyNet,
    ae: Arc<AutoEncoder>,
    cache: EncoderCache,
    /// Index of the next element to append; 0 means the BOS element is not encoded yet.
    next: usize,
    newest: Option<Newest>,
    /// Latent tokens of the sink elements (`None` for BOS) and of the last `window` elements, for
    /// re-encoding them under another conditioning.
    sink_inputs: Vec<Option<Tensor>>,
    recent_inputs: VecDeque<(usize, Tensor)>,
    conds: CondCache,
    /// The decoder's conditioning for the unconditional pass of guided sampling (set once).
    uncond: Option<Unconditional>,
    time_mods: HashMap<u32, Arc<TimeMod>>,
    /// The decoder input of a clip's first frame (its BOS element encoded) under the conditioning
    /// last redrawn with, by that conditioning's id: every keyframe of a prompt starts from it.
    bos: Option<(u64, Tensor)>,
}

impl TinyModel {
    /// Loads `config.json` and the two safetensors files it names from `model_dir`.
    pub fn load(model_dir: &Path, device: &Device) -> Result<TinyModel> {
        let cfg = Config::load(&model_dir.join("config.json"))?;
        let model = Weights::load(&model_dir.join(&cfg.files.model), device)?;
        let ae = Weights::load(&model_dir.join(&cfg.files.ae), device)?;
        TinyModel::from_weights(&cfg, &model, &ae, device)
    }

    /// Random weights of the config's shapes (benchmarks, tests).
    pub fn random(cfg: &Config, seed: u64, device: &Device) -> Result<TinyModel> {
        let model = Weights::random("random:model", seed, device);
        let ae = Weights::random("random:ae", seed.wrapping_add(1), device);
        TinyModel::from_weights(cfg, &model, &ae, device)
    }

    pub fn from_weights(cfg: &Config, model: &Weights, ae: &Weights, device: &Device) -> Result<TinyModel> {
        cfg.validate().map_err(|e| ModelError::Invalid(format!("spool-tiny config: {e}")))?;
        if !device.is_cpu() {
            return Err(ModelError::Invalid(
                "spool-tiny runs on the CPU (its fused kernels are CPU code): use the cpu device".into(),
            ));
        }
        Ok(TinyModel {
            cfg: cfg.clone(),
            device: device.clone(),
            net: TinyNet::new(cfg, model, device)?,
            ae: Arc::new(AutoEncoder::new(cfg, ae)?),
            cache: EncoderCache::new(cfg, device),
            next: 0,
            newest: None,
            sink_inputs: vec![None; cfg.n_sink],
            recent_inputs: VecDeque::new(),
            conds: CondCache::default(),
            uncond: None,
            time_mods: HashMap::new(),
            bos: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn net(&self) -> &TinyNet {
        &self.net
    }

    pub fn autoencoder(&self) -> &AutoEncoder {
        &self.ae
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The encoder cache (tests inspect it).
    pub fn cache(&self) -> &EncoderCache {
        &self.cache
    }

    /// The newest element's encoder output `h`, `(tokens, d_model)`, if any.
    pub fn newest_h(&self) -> Option<&Tensor> {
        self.newest.as_ref().map(|n| &n.h)
    }

    /// Elements appended so far (BOS included).
    pub fn elements(&self) -> usize {
        self.next
    }

    /// A copy of everything `commit`, `recache` and `reset` change (the prepared prompts and
    /// time embeddings are caches of pure functions and stay out).
    pub fn snapshot(&self) -> Result<CacheSnapshot> {
        let state = TinyState {
            cache: self.cache.deep_copy()?,
            next: self.next,
            newest: self.newest.clone(),
            sink_inputs: self.sink_inputs.clone(),
            recent_inputs: self.recent_inputs.clone(),
        };
        Ok(CacheSnapshot::new(state, self.cache_bytes()))
    }

    /// Puts back a [`snapshot`](Self::snapshot) of this model. Tensors other than the cache
    /// buffers are never written in place, so sharing them with the snapshot is safe.
    pub fn restore(&mut self, snapshot: &CacheSnapshot) -> Result<()> {
        let s = snapshot
            .state::<TinyState>()
            .ok_or_else(|| ModelError::Invalid("the cache snapshot is not spool-tiny's".into()))?;
        self.cache = s.cache.deep_copy()?;
        self.next = s.next;
        self.newest = s.newest.clone();
        self.sink_inputs = s.sink_inputs.clone();
        self.recent_inputs = s.recent_inputs.clone();
        Ok(())
    }

    /// Empties the cache; the next denoise produces frame 0.
    pub fn reset(&mut self) {
        self.cache.clear();
        self.next = 0;
        self.newest = None;
        self.sink_inputs.iter_mut().for_each(|x| *x = None);
        self.recent_inputs.clear();
    }

    /// Sets the conditioning of the unconditional decoder pass of guided sampling: the empty
    /// prompt's (`[CLS][SEP]` through the text encoder, bias 0), which the training's caption
    /// dropout used. Prepared here, once, and kept apart from the prompt cache.
    pub fn set_unconditional(&mut self, cond: &Conditioning) -> Result<()> {
        let state = Arc::new(self.net.prepare_cond(cond)?);
        self.uncond = Some(Unconditional { cond: cond.clone(), state });
        Ok(())
    }

    /// The unconditional pass's conditioning, if set.
    pub fn unconditional(&self) -> Option<&Conditioning> {
        self.uncond.as_ref().map(|u| &u.cond)
    }

    /// The prepared form of a conditioning (computed once per conditioning).
    pub fn prepare(&mut self, cond: &Conditioning) -> Result<Arc<CondState>> {
        Ok(self.conds.get(&self.net, cond)?.1)
    }

    fn time_mod(&mut self, t: f32) -> Result<Arc<TimeMod>> {
        if let Some(m) = self.time_mods.get(&t.to_bits()) {
            return Ok(m.clone());
        }
        if self.time_mods.len() >= 64 {
            self.time_mods.clear();
        }
        let m = Arc::new(self.net.time_mod(t)?);
        self.time_mods.insert(t.to_bits(), m.clone());
        Ok(m)
    }

    /// Latent `(C, hw, hw)` → tokens `(hw², C)` on the model's device.
    fn to_tokens(&self, latent: &Latent) -> Result<Tensor> {
        let (c, hw) = (self.cfg.latent_channels, self.cfg.latent_hw);
        Ok(self.ae.latent(latent)?.reshape((c, hw * hw))?.t()?.contiguous()?)
    }

    /// Tokens `(hw², C)` → latent `(C, hw, hw)`.
    pub fn to_latent(&self, tokens: &Tensor) -> Result<Latent> {
        let (c, hw) = (self.cfg.latent_channels, self.cfg.latent_hw);
        Ok(Latent(tokens.t()?.contiguous()?.reshape((c, hw, hw))?))
    }

    /// Encodes element `self.next` and makes it the newest.
    fn append(&mut self, tokens: Option<Tensor>, cond: (u64, &CondState)) -> Result<()> {
        let s = self.next;
        let h = self.net.encode_element(&mut self.cache, s, tokens.as_ref(), cond.1)?;
        self.newest = Some(Newest { base: self.net.decoder_base(&h)?, h, cond: cond.0 });
        if s < self.cfg.n_sink {
            self.sink_inputs[s] = tokens.clone();
        }
        if let Some(t) = tokens {
            self.recent_inputs.push_back((s, t));
            if self.recent_inputs.len() > self.cfg.window {
                self.recent_inputs.pop_front();
            }
        }
        self.next += 1;
        Ok(())
    }

    /// The stored input of element `e` (`None` for BOS).
    fn input(&self, e: usize) -> Result<Option<Tensor>> {
        if e == 0 {
            return Ok(None);
        }
        if let Some(Some(t)) = self.sink_inputs.get(e) {
            return Ok(Some(t.clone()));
        }
        match self.recent_inputs.iter().find(|(i, _)| *i == e) {
            Some((_, t)) => Ok(Some(t.clone())),
            None => Err(ModelError::Invalid(format!("element {e} is no longer held for re-encoding"))),
        }
    }

    /// Makes sure the newest element exists and was encoded under `cond`: encodes BOS after a reset,
    /// re-encodes the newest element after a prompt change.
    fn ensure_newest(&mut self, cond: &Conditioning) -> Result<Arc<CondState>> {
        let (id, cs) = self.conds.get(&self.net, cond)?;
        match &self.newest {
            None => self.append(None, (id, &cs))?,
            Some(n) if n.cond != id => {
                let e = self.next - 1;
                let input = self.input(e)?;
                let h = self.net.encode_element(&mut self.cache, e, input.as_ref(), &cs)?;
                self.newest = Some(Newest { base: self.net.decoder_base(&h)?, h, cond: id });
            }
            Some(_) => {}
        }
        Ok(cs)
    }

    /// Denoises the next frame in `sampling.steps` steps and returns its latent tokens `(hw², C)`.
    /// `noise` is called for each fresh Gaussian tensor (first `ε_0`, then one per re-noising), with
    /// the shape `[hw², C]`. The cache is not changed, except that the newest element is
    /// (re-)encoded under `cond` if needed. With `sampling.guidance = g ≠ 1` the velocity of each
    /// step at a noise level of at least `guidance_min_t` (of every step while `sampling.settling`)
    /// is `v_u + g·(v_c − v_u)` (see the module docs); that needs
    /// [`set_unconditional`](Self::set_unconditional).
    pub fn denoise_with(
        &mut self,
        cond: &Conditioning,
        sampling: Sampling,
        noise: &mut dyn FnMut(&[usize]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let Sampling { steps, guidance, settling } = self.checked(sampling)?;
        let cs = self.ensure_newest(cond)?;
        let base = self.newest.as_ref().expect("ensured").base.clone();
        let ts = sampling_times(steps as usize, self.cfg.sampler_shift);
        let x = noise(&self.frame_shape())?.to_device(&self.device)?;
        let min_t = if settling { 0.0 } else { self.cfg.guidance_min_t };
        self.sample(x, &ts, &base, &cs, Guide { scale: guidance, min_t }, noise)
    }

    /// SDEdit at a prompt switch: the frame `tokens` `(hw², C)` redrawn under `cond` as the first
    /// frame of a clip (the encoder sees BOS only, so nothing of the old prompt's history holds it),
    /// from noise level `strength` in (0, 1]: `x = (1 − s)·tokens + s·ε`, then the sampler's own
    /// schedule scaled by `s`. The layout and colours up to that noise level stay; what the new
    /// prompt names is drawn. The cache is not touched. `strength` 1 is a fresh frame 0.
    pub fn redraw_with(
        &mut self,
        tokens: &Tensor,
        cond: &Conditioning,
        sampling: Sampling,
        strength: f64,
        noise: &mut dyn FnMut(&[usize]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let Sampling { steps, guidance, .. } = self.checked(sampling)?;
        if !(strength > 0.0 && strength <= 1.0) {
            return Err(ModelError::Invalid(format!("a redraw's strength is in (0, 1], not {strength}")));
        }
        let (id, cs) = self.conds.get(&self.net, cond)?;
        let base = match &self.bos {
            Some((made_for, base)) if *made_for == id => base.clone(),
            _ => {
                let mut bos = EncoderCache::new(&self.cfg, &self.device);
                let h = self.net.encode_element(&mut bos, 0, None, &cs)?;
                let base = self.net.decoder_base(&h)?;
                self.bos = Some((id, base.clone()));
                base
            }
        };
        let ts: Vec<f64> =
            sampling_times(steps as usize, self.cfg.sampler_shift).iter().map(|t| t * strength).collect();
        let eps = noise(&self.frame_shape())?.to_device(&self.device)?;
        let x = (tokens.to_device(&self.device)?.affine(1.0 - strength, 0.0)? + eps.affine(strength, 0.0)?)?;
        // A redraw starts below any guidance interval: every step is guided (module docs).
        self.sample(x, &ts, &base, &cs, Guide { scale: guidance, min_t: 0.0 }, noise)
    }

    /// `sampling` if its steps (1 to the config's maximum) and guidance scale are in range.
    fn checked(&self, sampling: Sampling) -> Result<Sampling> {
        if sampling.steps == 0 || sampling.steps > self.cfg.max_steps {
            return Err(ModelError::Invalid(format!(
                "spool-tiny takes 1 to {} steps, not {}",
                self.cfg.max_steps, sampling.steps
            )));
        }
        check_guidance(sampling.guidance).map_err(|e| ModelError::Invalid(format!("guidance scale {e}")))?;
        Ok(sampling)
    }

    /// The shape of one frame's latent tokens.
    fn frame_shape(&self) -> [usize; 2] {
        [self.cfg.tokens_per_frame, self.cfg.latent_channels]
    }

    /// The SPEC sampler from `x` at `ts[0]` down the times `ts` (x0 prediction, fresh noise between
    /// steps) on the decoder input `base`; guidance `g ≠ 1` (at the steps from `min_t` up) needs
    /// [`set_unconditional`](Self::set_unconditional).
    fn sample(
        &mut self,
        mut x: Tensor,
        ts: &[f64],
        base: &Tensor,
        cs: &CondState,
        guiding: Guide,
        noise: &mut dyn FnMut(&[usize]) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let Guide { scale: guidance, min_t } = guiding;
        let uncond = match &self.uncond {
            _ if guidance == 1.0 => None,
            Some(u) => Some(u.state.clone()),
            None => {
                return Err(ModelError::Invalid(
                    "guided sampling needs the empty prompt's conditioning: call set_unconditional first".into(),
                ));
            }
        };
        let shape = self.frame_shape();
        let mut x0 = x.clone();
        for k in 0..ts.len() {
            let t = ts[k] as f32;
            let tm = self.time_mod(t)?;
            let v = match uncond.as_ref().filter(|_| t >= min_t) {
                None => self.net.decoder_step(&x, base, &tm, cs)?,
                Some(us) if crate::beside::splits() => {
                    let net = &self.net;
                    let (v_u, v_c) = crate::beside::join(
                        || net.decoder_step(&x, base, &tm, us),
                        || net.decoder_step(&x, base, &tm, cs),
                    );
                    guide(&v_c?, &v_u?, guidance)?
                }
                Some(us) => {
                    let v = self.net.decoder_steps(&x, base, &tm, &[cs, us])?;
                    guide(&v[0], &v[1], guidance)?
                }
            };
            x0 = (&x - v.affine(f64::from(t), 0.0)?)?;
            if let Some(&tn) = ts.get(k + 1) {
                let eps = noise(&shape)?.to_device(&self.device)?;
                x = (x0.affine(1.0 - tn, 0.0)? + eps.affine(tn, 0.0)?)?;
            }
        }
        Ok(x0)
    }

    /// Appends a finished frame's latent tokens `(hw², C)` as the next element, encoded under
    /// `cond` (the conditioning of the frame it will condition).
    pub fn commit_tokens(&mut self, tokens: &Tensor, cond: &Conditioning) -> Result<()> {
        let (id, cs) = self.conds.get(&self.net, cond)?;
        if self.newest.is_none() {
            // Image-to-video commits frame 0 right after a reset: BOS comes first.
            self.append(None, (id, &cs))?;
        }
        self.append(Some(tokens.contiguous()?), (id, &cs))
    }

    /// Appends a finished latent `(C, hw, hw)`.
    pub fn commit(&mut self, latent: &Latent, cond: &Conditioning) -> Result<()> {
        let tokens = self.to_tokens(latent)?;
        self.commit_tokens(&tokens, cond)
    }

    /// LongLive re-cache: re-encodes every element still held (sinks and the window the newest
    /// element sees) under `cond`, at their original positions, so the next frames continue from the
    /// same latents with the new prompt throughout the cache.
    pub fn recache(&mut self, cond: &Conditioning) -> Result<()> {
        if self.newest.is_none() {
            return Ok(());
        }
        let (id, cs) = self.conds.get(&self.net, cond)?;
        let newest = self.next - 1;
        let first_recent = (newest + 1).saturating_sub(self.cfg.window).max(self.cfg.n_sink);
        let elements: Vec<usize> = (0..self.cfg.n_sink.min(self.next)).chain(first_recent..=newest).collect();
        let inputs = elements.iter().map(|&e| self.input(e)).collect::<Result<Vec<_>>>()?;
        self.cache.clear();
        let mut h = None;
        for (&e, input) in elements.iter().zip(&inputs) {
            h = Some(self.net.encode_element(&mut self.cache, e, input.as_ref(), &cs)?);
        }
        let h = h.expect("at least BOS");
        self.newest = Some(Newest { base: self.net.decoder_base(&h)?, h, cond: id });
        Ok(())
    }

    /// Pixels `(3, H, W)` → latent.
    pub fn encode_pixels(&self, pixels: &Tensor) -> Result<Latent> {
        Ok(Latent(self.ae.encode(&pixels.to_device(&self.device)?)?))
    }

    pub fn encode_frame(&self, frame: &Frame) -> Result<Latent> {
        let n = self.cfg.image_size as u32;
        if frame.width != n || frame.height != n || frame.planar.len() != (3 * n * n) as usize {
            return Err(ModelError::Invalid(format!(
                "spool-tiny encodes {n}×{n} images, got {}×{}",
                frame.width, frame.height
            )));
        }
        let x = Tensor::from_slice(&frame.planar, (3, n as usize, n as usize), &self.device)?;
        self.encode_pixels(&x)
    }

    pub fn decode_frame(&self, latent: &Latent) -> Result<Frame> {
        self.ae.decode_frame(latent)
    }

    /// Bytes held for generation state: the encoder cache, stored inputs, the newest output.
    pub fn cache_bytes(&self) -> usize {
        let t = |x: &Tensor| x.elem_count() * 4;
        self.cache.bytes()
            + self.sink_inputs.iter().flatten().map(t).sum::<usize>()
            + self.recent_inputs.iter().map(|(_, x)| t(x)).sum::<usize>()
            + self.newest.as_ref().map_or(0, |n| t(&n.h) + t(&n.base))
    }
}

/// Classifier-free guidance: `v_u + g·(v_c − v_u)`, elementwise in f32 in that order.
pub fn guide(v_c: &Tensor, v_u: &Tensor, g: f32) -> Result<Tensor> {
    Ok((v_u + (v_c - v_u)?.affine(f64::from(g), 0.0)?)?)
}

/// spool-tiny as the engine drives it: [`TinyModel`] plus the MiniLM text encoder.
pub struct SpoolTiny {
    core: TinyModel,
    text: TextEncoder,
    info: ModelInfo,
    /// The newest keyframe reference: a fresh first frame for a conditioning and sampling.
    reference: Option<Reference>,
    /// How much object the last few keyframes' latents show, by their values: a changing look's
    /// keyframe asks again for the two before it, and each answer costs an autoencoder decode.
    amounts: Vec<(Vec<f32>, Option<f32>)>,
}

/// The most a keeping-place redraw may change the frame (mean absolute difference, pixels in
/// [-1, 1]): a clean-up changed 0.013–0.073 on the prompts measured (plain and two-tone), a two-tone
/// frame that had lost its object (a band or smear standing still) 0.14–0.34, and a checkerboard
/// taken for a plain backdrop and moved 0.56 — each a cut.
const MAX_KEYFRAME_CHANGE: f32 = 0.1;
/// On a two-tone backdrop (stripes, checkers) an object stands still when it moved at most `STILL_PX`
/// pixels each way since the frame a keyframe interval before (a moving one goes 8 or more in 4
/// frames) and sits at its layout spot (within `NEAR_PX` of where a fresh first frame has it; a still
/// object sits up to ~6 px off it).
const STILL_PX: u32 = 2;
const NEAR_PX: u32 = 6;
/// A growing, shrinking or fading object has settled when how much of it shows
/// ([`register::Content::amount`]) changed by at most this share since the frame a keyframe interval
/// before: the data's growth and shrink change it by 27–59% in four frames, a growing star of the
/// model's by 10–35% until it stops, then by 1–5% (training/README.md, "Keyframes" 9).
const SETTLED_CHANGE: f32 = 0.05;

/// How a keeping-place redraw moves a frame's objects to their layout spots and back.
enum Objects {
    /// The whole frame rolled on the torus by `(dy, dx)` and back.
    Rolled(i64, i64),
    /// Objects cut out of the frame (`bare` is the frame without them) and moved one by one.
    Cut { bare: Frame, objects: Vec<Moved> },
}

/// One object of [`Objects::Cut`].
struct Moved {
    /// How much each pixel is the object, in the frame it comes from.
    matte: Vec<f32>,
    /// Where it is from its layout spot.
    dy: i64,
    dx: i64,
    /// With several objects, the pixels it covers at its layout spot (grown by [`PART_MARGIN_PX`]):
    /// only the redrawn content there is pasted back as this object.
    area: Option<Vec<bool>>,
    /// An object the rollout lost, taken from the keyframe reference (at its layout spot) rather
    /// than from the frame.
    lost: bool,
}

/// How far a redrawn object may reach beyond the pixels it was placed on and still be pasted back.
const PART_MARGIN_PX: usize = 3;

impl Objects {
    /// Several objects of `frame` each paired with one of the reference's (`fresh`, the keyframe
    /// reference; `reference`, its content told from the same backdrop; `reference_parts`, that
    /// content's objects; [`register::pair`]) and registered alone. A reference object that the
    /// frame no longer shows at all (not a part, not its colour anywhere) is lost: it is drawn back
    /// at its layout spot, from the reference. `None`
    /// unless the reference shows two to four objects and the frame at most as many, each paired
    /// or lost, and every paired one registers: with an object broken in pieces or two run together
    /// the whole content registers as one (training/README.md, "Keyframes" 7).
    fn apart(
        frame: &Frame,
        content: &register::Content,
        fresh: &Frame,
        reference: &register::Content,
        reference_parts: &[Vec<usize>],
    ) -> Option<Objects> {
        if !(2..=4).contains(&reference_parts.len()) {
            return None;
        }
        let (region, matte) = content.object();
        let parts = content.parts_in(&region);
        if parts.is_empty() || parts.len() > reference_parts.len() {
            return None;
        }
        let theirs = reference.colours(fresh, reference_parts);
        let pairs = register::pair(&content.colours(frame, &parts), &theirs);
        let lost: Vec<usize> = (0..reference_parts.len())
            .filter(|j| !pairs.contains(j) && !register::shows_colour(frame, theirs[*j].0))
            .collect();
        if parts.len() + lost.len() != reference_parts.len() {
            return None;
        }
        let (w, h) = (frame.width as usize, frame.height as usize);
        // Where an object lands when placed (its pixels moved by −shift), grown by the margin.
        let area = |pixels: &[usize], dy: i64, dx: i64| {
            let mut area = vec![false; w * h];
            for &i in pixels {
                let y = ((i / w) as i64 - dy).rem_euclid(h as i64) as usize;
                let x = ((i % w) as i64 - dx).rem_euclid(w as i64) as usize;
                area[y * w + x] = true;
            }
            (0..PART_MARGIN_PX).fold(area, |a, _| register::grow(&a, w, h))
        };
        let only = |matte: &[f32], pixels: &[usize]| {
            let mut own = vec![0f32; matte.len()];
            pixels.iter().for_each(|&i| own[i] = matte[i]);
            own
        };
        let bare = content.fill(frame, &region)?;
        let mut objects = Vec::with_capacity(reference_parts.len());
        for (part, j) in parts.iter().zip(pairs) {
            let (dy, dx) = register::torus_shift(&content.only(part), &reference.only(&reference_parts[j]))?;
            let (dy, dx) = (i64::from(dy), i64::from(dx));
            objects.push(Moved { matte: only(&matte, part), dy, dx, area: Some(area(part, dy, dx)), lost: false });
        }
        let (_, reference_matte) = reference.object();
        for j in lost {
            let part = &reference_parts[j];
            objects.push(Moved {
                matte: only(&reference_matte, part),
                dy: 0,
                dx: 0,
                area: Some(area(part, 0, 0)),
                lost: true,
            });
        }
        Some(Objects::Cut { bare, objects })
    }

    /// `frame` with its objects at their layout spots (a lost one from `fresh`).
    fn placed(&self, frame: &Frame, fresh: &Frame) -> Frame {
        match self {
            Objects::Rolled(dy, dx) => register::roll(frame, -dy, -dx),
            Objects::Cut { bare, objects } => objects.iter().fold(bare.clone(), |out, o| {
                register::paste(&out, if o.lost { fresh } else { frame }, &o.matte, -o.dy, -o.dx)
            }),
        }
    }

    /// The redrawn frame's objects moved back to where the frame had them (told from `backdrop`).
    fn back(&self, drawn: &Frame, backdrop: register::Backdrop) -> Frame {
        match self {
            Objects::Rolled(dy, dx) => register::roll(drawn, *dy, *dx),
            Objects::Cut { bare, objects } => {
                let (_, matte) = register::Content::against(drawn, backdrop).object();
                objects.iter().fold(bare.clone(), |out, o| match &o.area {
                    None => register::paste(&out, drawn, &matte, o.dy, o.dx),
                    Some(area) => {
                        let own: Vec<f32> = matte.iter().zip(area).map(|(m, a)| if *a { *m } else { 0.0 }).collect();
                        register::paste(&out, drawn, &own, o.dy, o.dx)
                    }
                })
            }
        }
    }
}

/// A fresh first frame for `cond` sampled with `sampling` from [`Reference::NOISE`]: where the
/// first-frame path lays the prompt out, which a keeping-place redraw registers against (its content
/// against either backdrop, made once).
struct Reference {
    tokens: Vec<f32>,
    bias: Vec<f32>,
    sampling: Sampling,
    frame: Frame,
    plain: register::Content,
    ramp: register::Content,
    two_tone: register::Content,
    /// The separate objects of `plain` and of `ramp` ([`register::Content::parts`]).
    plain_parts: Vec<Vec<usize>>,
    ramp_parts: Vec<Vec<usize>>,
}

impl Reference {
    /// Its own noise, so the reference depends on the prompt and sampling alone (a take rebuilt
    /// or made again gets the same one).
    const NOISE: (u64, u64) = (0x5EED, u64::MAX);

    /// Its content told from `backdrop`.
    fn content(&self, backdrop: register::Backdrop) -> &register::Content {
        match backdrop {
            register::Backdrop::Plain => &self.plain,
            register::Backdrop::Ramp => &self.ramp,
            register::Backdrop::TwoTone => &self.two_tone,
        }
    }

    /// The separate objects of its content told from `backdrop`; none counted on a two-tone one
    /// (keyframes there register the frame as one).
    fn parts(&self, backdrop: register::Backdrop) -> &[Vec<usize>] {
        match backdrop {
            register::Backdrop::Plain => &self.plain_parts,
            register::Backdrop::Ramp => &self.ramp_parts,
            register::Backdrop::TwoTone => &[],
        }
    }

    fn matches(&self, cond: &Conditioning, sampling: Sampling) -> Result<bool> {
        Ok(self.sampling == sampling
            && self.tokens == cond.tokens.flatten_all()?.to_vec1::<f32>()?
            && self.bias == cond.bias.to_vec1::<f32>()?)
    }
}

impl SpoolTiny {
    /// Loads the model from `model_dir` (`config.json`, `model.safetensors`, `ae.safetensors`) and
    /// the text encoder from `text_dir` (`assets/minilm/`). spool-tiny runs on the CPU.
    pub fn load(model_dir: &Path, text_dir: &Path, device: &Device) -> Result<SpoolTiny> {
        let mut core = TinyModel::load(model_dir, device)?;
        let cfg = core.config().clone();
        if cfg.text_dim != text::DIM || cfg.text_max_tokens != text::MAX_TOKENS {
            return Err(ModelError::Invalid(format!(
                "spool-tiny expects {}×{} text tokens, the text encoder gives {}×{}",
                cfg.text_max_tokens,
                cfg.text_dim,
                text::MAX_TOKENS,
                text::DIM
            )));
        }
        let text = TextEncoder::load(text_dir, device)?;
        // The empty prompt, `[CLS][SEP]`, as the training's caption dropout fed the decoder.
        let (tokens, _) = text.encode("")?;
        let bias = Tensor::zeros(tokens.dim(0)?, DType::F32, tokens.device())?;
        core.set_unconditional(&Conditioning::new(tokens, bias))?;
        let model_files = ["config.json", cfg.files.model.as_str(), cfg.files.ae.as_str()].map(|f| model_dir.join(f));
        let text_files = TextEncoder::files(text_dir);
        let weights_hash =
            crate::model::weights::content_hash(model_files.iter().chain(&text_files).map(|p| p.as_path()))?;
        let info = ModelInfo {
            id: "spool-tiny".into(),
            width: cfg.image_size as u32,
            height: cfg.image_size as u32,
            fps: cfg.fps,
            chunk_frames: 1,
            latent_frames: LatentFrames::ONE,
            default_steps: cfg.default_steps,
            max_steps: cfg.max_steps,
            default_guidance: Some(cfg.guidance_scale),
            max_prompt_tokens: cfg.text_max_tokens,
            redraws: true,
            device: "cpu".into(),
            weights_hash: Some(weights_hash),
        };
        Ok(SpoolTiny { core, text, info, reference: None, amounts: Vec::new() })
    }

    pub fn core(&self) -> &TinyModel {
        &self.core
    }

    pub fn core_mut(&mut self) -> &mut TinyModel {
        &mut self.core
    }
}

impl VideoModel for SpoolTiny {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode_prompt(&mut self, text: &str) -> Result<EncodedPrompt> {
        let (tokens, truncated) = self.text.encode(text)?;
        let bias = Tensor::zeros(tokens.dim(0)?, DType::F32, tokens.device())?;
        let cond = Conditioning { look: look::of(text), ..Conditioning::new(tokens, bias) };
        Ok(EncodedPrompt { cond, truncated })
    }

    fn reset(&mut self) -> Result<()> {
        self.core.reset();
        Ok(())
    }

    fn encode_image(&mut self, frame: &Frame) -> Result<Latent> {
        self.core.encode_frame(frame)
    }

    /// The SPEC sampler for one frame, with classifier-free guidance when `sampling.guidance ≠ 1`.
    /// The newest element is (re-)encoded under `cond` first if needed (BOS after a reset, or a
    /// prompt that changed since the last commit); otherwise the cache is only read.
    fn denoise(&mut self, cond: &Conditioning, noise: &mut FrameNoise, sampling: Sampling) -> Result<Vec<Latent>> {
        let device = self.core.device().clone();
        let x0 = self.core.denoise_with(cond, sampling, &mut |shape| noise.normal(shape, &device))?;
        Ok(vec![self.core.to_latent(&x0)?])
    }

    /// Appends each frame as an encoder element under the conditioning of the frame that follows
    /// (the SPEC's convention; `denoise` re-encodes the newest element if the next frame's
    /// conditioning turns out different).
    fn commit(&mut self, frames: &[Latent], cond: CommitConditioning<'_>) -> Result<()> {
        frames.iter().try_for_each(|f| self.core.commit(f, cond.next))
    }

    fn recache(&mut self, cond: &Conditioning) -> Result<()> {
        self.core.recache(cond)
    }

    /// SDEdit through the first-frame path (BOS history), which draws the prompt's object where the
    /// caption lays out a clip's start. With [`Place::Kept`] the frame is first moved so that its
    /// content sits where a fresh first frame has it ([`register::torus_shift`]; the fresh frame is
    /// kept per prompt), redrawn there and moved back, so the object keeps its place and motion
    /// (training/README.md, "Keyframes": a redraw where the frame is pulls the object back to the
    /// caption's layout and stops it). On a ramp (a gradient, a sky) or a pattern (stripes, checkers)
    /// only the object moves, cut out of it and pasted back ([`register::Content::cut`]); on a
    /// pattern an object that stands still at its layout spot is redrawn where it is ([`STILL_PX`]).
    /// Several objects on a plain backdrop or a ramp are each cut out and moved on their own
    /// ([`Objects::apart`]). The prompt's [`Look`] comes first: a spinning
    /// object is redrawn where it stands, and a growing, shrinking or fading one not at all while its
    /// look changes (it is meant to); once that has settled each keyframe is the one before it
    /// ([`SETTLED_CHANGE`]).
    fn redraw(
        &mut self,
        source: &Latent,
        cond: &Conditioning,
        noise: &mut FrameNoise,
        sampling: Sampling,
        how: Redraw<'_>,
    ) -> Result<Option<Latent>> {
        let device = self.core.device().clone();
        let draw = &mut |shape: &[usize]| noise.normal(shape, &device);
        let core = &mut self.core;
        let tokens = core.to_tokens(source)?;
        let strength = f64::from(how.strength);
        let Place::Kept { earlier, before_that } = how.place else {
            let x0 = core.redraw_with(&tokens, cond, sampling, strength, draw)?;
            return Ok(Some(core.to_latent(&x0)?));
        };
        if cond.look == Look::Changing {
            // A growth, shrink or fade: a redraw with the first frame's look would undo it. Once it
            // has settled the model's own frames break up (a grown star into coloured noise), so
            // from then on each keyframe is the one before it: the settled look, held.
            let (Some(earlier), Some(before_that)) = (earlier, before_that) else { return Ok(None) };
            let seen = &mut self.amounts;
            let mut amount = |l: &Latent| -> Result<Option<f32>> {
                let key = l.0.flatten_all()?.to_vec1::<f32>()?;
                if let Some((_, a)) = seen.iter().find(|(k, _)| *k == key) {
                    return Ok(*a);
                }
                let a = register::Content::of(&core.decode_frame(l)?).amount();
                if seen.len() == 3 {
                    seen.remove(0);
                }
                seen.push((key, a));
                Ok(a)
            };
            let [before, then, now] = [amount(before_that)?, amount(earlier)?, amount(source)?];
            // Settled over two intervals: a change the model pauses for one interval goes on.
            let settled = |a: Option<f32>, b: Option<f32>| {
                a.zip(b).is_some_and(|(a, b)| (a - b).abs() <= SETTLED_CHANGE * a.max(b))
            };
            let held = settled(now, then) && settled(then, before);
            return Ok(held.then(|| earlier.clone()));
        }
        let frame = core.decode_frame(source)?;
        let content = register::Content::of(&frame);
        if !self.reference.as_ref().map(|r| r.matches(cond, sampling)).transpose()?.unwrap_or(false) {
            // Strength 1: a fresh first frame (the tokens are not read), the caption's layout.
            let (seed, stream) = Reference::NOISE;
            let own = &mut FrameNoise::new(seed, stream);
            let fresh = core.redraw_with(&tokens, cond, sampling, 1.0, &mut |shape| own.normal(shape, &device))?;
            let fresh = core.decode_frame(&core.to_latent(&fresh)?)?;
            let (plain, ramp) = (
                register::Content::against(&fresh, register::Backdrop::Plain),
                register::Content::against(&fresh, register::Backdrop::Ramp),
            );
            self.reference = Some(Reference {
                tokens: cond.tokens.flatten_all()?.to_vec1::<f32>()?,
                bias: cond.bias.to_vec1::<f32>()?,
                sampling,
                plain_parts: plain.parts(),
                ramp_parts: ramp.parts(),
                plain,
                ramp,
                two_tone: register::Content::against(&fresh, register::Backdrop::TwoTone),
                frame: fresh,
            });
        }
        let fresh = self.reference.as_ref().expect("made above");
        let reference = fresh.content(content.backdrop());
        let Some(shift) = register::torus_shift(&content, reference) else { return Ok(None) };
        // On a pattern an object that stood still at its layout spot is redrawn where it is, as it is:
        // cut out and pasted back it keeps its class less well (training/README.md, "Keyframes" 6).
        let still = content.backdrop() == register::Backdrop::TwoTone
            && match earlier.filter(|_| register::within(shift, &frame, NEAR_PX)) {
                Some(earlier) => {
                    let earlier = register::Content::against(&core.decode_frame(earlier)?, register::Backdrop::TwoTone);
                    register::torus_shift(&content, &earlier).is_some_and(|m| register::within(m, &frame, STILL_PX))
                }
                None => false,
            };
        // A spinning object stands where it is; registered on its first frame's outline it seems to
        // move a little, and keyframes that followed would walk it across the frame.
        let (dy, dx) = if cond.look == Look::Turning || still { (0, 0) } else { shift };
        let (dy, dx) = (i64::from(dy), i64::from(dx));
        // Several objects on a plain backdrop or a ramp each move to their own layout spot and back:
        // one shift for the frame would drag a still object along with a moving one.
        let apart = match content.backdrop() {
            register::Backdrop::TwoTone => None,
            _ if cond.look == Look::Turning => None,
            backdrop => Objects::apart(&frame, &content, &fresh.frame, reference, fresh.parts(backdrop)),
        };
        // On a ramp or a pattern only the object moves to its layout spot and back (cut out, its
        // place filled with the backdrop): the backdrop moved on the torus would show its seam. On a
        // plain backdrop the whole frame moves.
        let moves = match (apart, content.backdrop()) {
            (Some(apart), _) => apart,
            (None, register::Backdrop::Plain) => Objects::Rolled(dy, dx),
            (None, register::Backdrop::TwoTone) if still => Objects::Rolled(dy, dx),
            (None, _) => match content.cut(&frame) {
                Some((bare, matte)) => {
                    Objects::Cut { bare, objects: vec![Moved { matte, dy, dx, area: None, lost: false }] }
                }
                // A pattern that does not repeat itself: nothing to fill the object's place with.
                None => return Ok(None),
            },
        };
        let placed = core.encode_frame(&moves.placed(&frame, &fresh.frame))?;
        // The sampler's steps over the noise levels the redraw spans, not over all of them (a
        // keyframe costs one in every few frames its time).
        let steps = ((sampling.steps as f32 * how.strength).ceil() as u32).max(1);
        let redrawn =
            core.redraw_with(&core.to_tokens(&placed)?, cond, Sampling { steps, ..sampling }, strength, draw)?;
        let drawn = core.decode_frame(&core.to_latent(&redrawn)?)?;
        let back = moves.back(&drawn, content.backdrop());
        if register::change(&frame, &back) > MAX_KEYFRAME_CHANGE {
            // The frame had lost its object (a smear or a band that stands still), or its backdrop
            // was taken for another kind: the redraw would change it at once, a cut.
            return Ok(None);
        }
        Ok(Some(core.encode_frame(&back)?))
    }

    fn decode(&mut self, latent: &Latent) -> Result<Vec<Frame>> {
        Ok(vec![self.core.decode_frame(latent)?])
    }

    fn detached_decoder(&self) -> Option<Arc<dyn DetachedDecoder>> {
        Some(self.core.ae.clone())
    }

    fn cache_bytes(&self) -> usize {
        self.core.cache_bytes()
    }

    fn snapshot(&self) -> Result<Option<CacheSnapshot>> {
        self.core.snapshot().map(Some)
    }

    fn restore(&mut self, snapshot: &CacheSnapshot) -> Result<()> {
        self.core.restore(snapshot)
    }
}

/// Times of one frame's stages, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stages {
    /// One encoder pass (the commit of a frame, cache full).
    pub encoder_ms: f64,
    /// One decoder step (denoise time / steps).
    pub decoder_step_ms: f64,
    /// One autoencoder decode to 128×128 pixels.
    pub ae_decode_ms: f64,
    /// Denoise + decode + commit of one frame.
    pub frame_ms: f64,
}

impl Stages {
    pub fn fps(&self) -> f64 {
        1000.0 / self.frame_ms
    }
}

/// Per-stage times of spool-tiny on this machine, from [`bench_random`]: medians, and the fastest
/// of each stage (on a shared machine, closer to what the model costs alone).
#[derive(Debug, Clone, PartialEq)]
pub struct StageTimes {
    pub steps: u32,
    /// Guidance scale (1: one decoder pass per step, otherwise two as one batch).
    pub guidance: f32,
    pub frames: usize,
    pub median: Stages,
    pub fastest: Stages,
    pub cache_bytes: usize,
}

/// Times the generation loop with random weights of the config's shapes on `device`: `frames` frames
/// (the first `window + 2` warm the cache up and are not counted) sampled as `sampling` says (a
/// random two-token conditioning stands in for the empty prompt).
pub fn bench_random(cfg: &Config, sampling: Sampling, frames: usize, device: &Device) -> Result<StageTimes> {
    let steps = sampling.steps;
    let mut m = TinyModel::random(cfg, 7, device)?;
    let random_cond = |n: usize| -> Result<Conditioning> {
        let tokens = Tensor::randn(0f32, 1.0, (n, cfg.text_dim), device)?;
        Ok(Conditioning::new(tokens, Tensor::zeros(n, DType::F32, device)?))
    };
    let cond = random_cond(12)?;
    m.set_unconditional(&random_cond(2)?)?;
    let mut noise = crate::model::FrameNoise::new(1, 0);
    let dev = device.clone();
    let mut draw = move |shape: &[usize]| noise.normal(shape, &dev);
    let warm = cfg.window + 2;
    let mut runs: [Vec<f64>; 4] = Default::default();
    m.reset();
    for i in 0..frames + warm {
        let t0 = Instant::now();
        let x0 = m.denoise_with(&cond, sampling, &mut draw)?;
        let t1 = Instant::now();
        let latent = m.to_latent(&x0)?;
        let _pixels = m.decode_frame(&latent)?;
        let t2 = Instant::now();
        m.commit_tokens(&x0, &cond)?;
        let t3 = Instant::now();
        if i >= warm {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
            for (v, x) in runs.iter_mut().zip([ms(t2, t3), ms(t0, t1) / f64::from(steps), ms(t1, t2), ms(t0, t3)]) {
                v.push(x);
            }
        }
    }
    let pick = |f: &dyn Fn(&mut Vec<f64>) -> f64| {
        let mut r = runs.clone();
        let [a, b, c, d] = &mut r;
        Stages { encoder_ms: f(a), decoder_step_ms: f(b), ae_decode_ms: f(c), frame_ms: f(d) }
    };
    let median = pick(&|v| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    });
    let fastest = pick(&|v| v.iter().copied().fold(f64::INFINITY, f64::min));
    Ok(StageTimes { steps, guidance: sampling.guidance, frames, median, fastest, cache_bytes: m.cache_bytes() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 64×64 frame with a 10×10 block of each `(colour, row, column)`.
    fn blocks(objects: &[([f32; 3], usize, usize)]) -> Frame {
        let n = 64 * 64;
        let mut planar = vec![0.1f32; 3 * n];
        for (colour, row, column) in objects {
            for y in *row..row + 10 {
                for x in *column..column + 10 {
                    (0..3).for_each(|c| planar[c * n + y * 64 + x] = colour[c]);
                }
            }
        }
        Frame { width: 64, height: 64, planar }
    }

    #[test]
    fn several_objects_move_on_their_own_and_a_lost_one_is_drawn_back_at_its_layout_spot() {
        let (red, blue) = ([0.9, -0.6, 0.1], [0.1, 0.1, 0.8]);
        let fresh = blocks(&[(red, 10, 10), (blue, 40, 40)]);
        let reference = register::Content::against(&fresh, register::Backdrop::Plain);
        let theirs = reference.parts();
        let keyframe = |frame: &Frame| {
            let moves =
                Objects::apart(frame, &register::Content::of(frame), &fresh, &reference, &theirs).expect("moved apart");
            (moves.placed(frame, &fresh), moves.back(&fresh, register::Backdrop::Plain))
        };
        // Each moved its own way: each placed at its layout spot, and back where it was.
        let moved = blocks(&[(red, 10, 30), (blue, 50, 40)]);
        assert!(keyframe(&moved) == (fresh.clone(), moved.clone()));
        // The blue one lost: drawn back from the reference at its layout spot, and left there.
        let (placed, back) = keyframe(&blocks(&[(red, 10, 30)]));
        assert!(placed == fresh);
        assert!(back == blocks(&[(red, 10, 30), (blue, 40, 40)]));
        // Run together (one part, both colours shown): registered as one, not apart.
        let together = blocks(&[(red, 10, 30), (blue, 20, 30)]);
        assert!(Objects::apart(&together, &register::Content::of(&together), &fresh, &reference, &theirs).is_none());
    }
}
