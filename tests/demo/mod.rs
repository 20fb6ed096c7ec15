//! A procedural stand-in model that draws what the prompt says (a coloured shape moving on a
//! coloured background), for GUI tests, screenshots and the `gui_demo` example while the real
//! spool-tiny is not built in. Deterministic: frames depend only on the prompt mix, the frame's
//! position and the seed. It lives in tests/ and examples/ only, never in the app.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use candle_core::{Device, Tensor};
use spool::engine::{ModelFactory, ModelSpec};
use spool::model::{
    CommitConditioning, Conditioning, EncodedPrompt, Frame, FrameNoise, Latent, LatentFrames, ModelError, ModelInfo,
    Result, Sampling, VideoModel,
};

/// Parameters a prompt maps to: background rgb, object rgb, motion, shape.
const DIM: usize = 8;

const COLOURS: &[(&str, [f32; 3])] = &[
    ("red", [0.86, 0.16, 0.16]),
    ("orange", [0.96, 0.55, 0.08]),
    ("yellow", [0.96, 0.86, 0.16]),
    ("green", [0.16, 0.67, 0.24]),
    ("blue", [0.16, 0.31, 0.86]),
    ("purple", [0.51, 0.2, 0.71]),
    ("pink", [0.96, 0.47, 0.71]),
    ("white", [0.94, 0.94, 0.94]),
    ("black", [0.08, 0.08, 0.08]),
    ("gray", [0.5, 0.5, 0.5]),
    ("brown", [0.51, 0.31, 0.16]),
    ("cyan", [0.16, 0.82, 0.86]),
];
const MOTIONS: &[&str] = &["still", "left", "right", "up", "down", "bounc", "circl", "spin", "grow", "shrink"];
const SHAPES: &[&str] = &["circle", "square", "star", "heart", "triangle", "ring", "diamond"];

fn params(text: &str) -> [f32; DIM] {
    let t = text.to_lowercase();
    let mut found: Vec<(usize, [f32; 3])> = COLOURS.iter().filter_map(|(n, c)| t.find(n).map(|i| (i, *c))).collect();
    found.sort_by_key(|(i, _)| *i);
    let obj = found.first().map_or([0.94, 0.94, 0.94], |f| f.1);
    let mut bg = found.get(1).map_or([0.05, 0.07, 0.16], |f| f.1);
    if t.contains("star") && t.contains("starfield") || t.contains("night") || t.contains("space") {
        bg = [0.03, 0.04, 0.1];
    }
    let motion = MOTIONS.iter().position(|m| t.contains(m)).unwrap_or(0) as f32;
    let shape = SHAPES.iter().position(|s| t.contains(s)).unwrap_or(0) as f32;
    [bg[0], bg[1], bg[2], obj[0], obj[1], obj[2], motion, shape]
}

pub struct Demo {
    info: ModelInfo,
    cache: Vec<f32>,
    delay: Arc<AtomicU64>,
}

impl VideoModel for Demo {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode_prompt(&mut self, text: &str) -> Result<EncodedPrompt> {
        let p = params(text);
        let tokens = Tensor::from_vec(p.to_vec(), (1, DIM), &Device::Cpu)?;
        let bias = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu)?;
        Ok(EncodedPrompt { cond: Conditioning::new(tokens, bias), truncated: false })
    }

    fn reset(&mut self) -> Result<()> {
        self.cache.clear();
        Ok(())
    }

    fn encode_image(&mut self, frame: &Frame) -> Result<Latent> {
        let n = (frame.width * frame.height) as usize;
        let mean = |c: usize| frame.planar[c * n..(c + 1) * n].iter().sum::<f32>() / n as f32 * 0.5 + 0.5;
        // A flat picture of the image's mean colour: the object takes the background's colour.
        let (r, g, b) = (mean(0), mean(1), mean(2));
        let mut v = vec![self.cache.len() as f32, r, g, b, r, g, b, 0.0, 0.0, 0.0];
        v.truncate(DIM + 2);
        Ok(Latent(Tensor::new(v.as_slice(), &Device::Cpu)?))
    }

    fn denoise(&mut self, cond: &Conditioning, noise: &mut FrameNoise, _sampling: Sampling) -> Result<Vec<Latent>> {
        let delay = Duration::from_millis(self.delay.load(Ordering::Relaxed));
        if std::env::var_os("DEMO_BURN").is_some() {
            // Keep a core busy for the frame's time, like a real model would.
            let start = std::time::Instant::now();
            let mut x = 0u64;
            while start.elapsed() < delay {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        } else {
            std::thread::sleep(delay);
        }
        let w = candle_nn::ops::softmax(&cond.bias, 0)?.to_vec1::<f32>()?;
        let rows = cond.tokens.to_vec2::<f32>()?;
        let mut mix = [0f32; DIM];
        for (wi, row) in w.iter().zip(&rows) {
            for (m, v) in mix.iter_mut().zip(row) {
                *m += wi * v;
            }
        }
        // Motion and shape are categories: take the heaviest prompt's.
        let top = w.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
        mix[6] = rows[top][6];
        mix[7] = rows[top][7];
        let n = noise.normal(&[1], &Device::Cpu)?.to_vec1::<f32>()?;
        let mut v = vec![self.cache.len() as f32];
        v.extend_from_slice(&mix);
        v.push(n[0]);
        Ok(vec![Latent(Tensor::new(v.as_slice(), &Device::Cpu)?)])
    }

    fn commit(&mut self, frames: &[Latent], _cond: CommitConditioning<'_>) -> Result<()> {
        for f in frames {
            let v = f.0.to_vec1::<f32>()?;
            if v[0] as usize != self.cache.len() {
                return Err(ModelError::Invalid(format!("frame {} committed at {}", v[0], self.cache.len())));
            }
            self.cache.push(v[0]);
        }
        Ok(())
    }

    fn decode(&mut self, latent: &Latent) -> Result<Vec<Frame>> {
        let v = latent.0.to_vec1::<f32>()?;
        Ok(vec![render(v[0], &v[1..DIM + 1], self.info.width, self.info.height)])
    }

    fn cache_bytes(&self) -> usize {
        self.cache.len() * 4 * 1024
    }
}

/// Draws frame `t` of a scene.
fn render(t: f32, p: &[f32], w: u32, h: u32) -> Frame {
    let (bg, obj) = ([p[0], p[1], p[2]], [p[3], p[4], p[5]]);
    let motion = p[6].round() as usize;
    let shape = p[7].round() as usize;
    let phase = t * 0.08;
    let (mut cx, mut cy, mut r, mut angle) = (0.5f32, 0.5f32, 0.2f32, 0.0f32);
    let wrap = |x: f32| x.rem_euclid(1.2) - 0.1;
    match MOTIONS.get(motion).copied().unwrap_or("still") {
        "left" => cx = wrap(0.8 - t * 0.02),
        "right" => cx = wrap(0.2 + t * 0.02),
        "up" => cy = wrap(0.8 - t * 0.02),
        "down" => cy = wrap(0.2 + t * 0.02),
        "bounc" => cy = 0.7 - (phase * 2.0).sin().abs() * 0.4,
        "circl" => {
            cx = 0.5 + 0.25 * phase.cos();
            cy = 0.5 + 0.25 * phase.sin();
        }
        "spin" => angle = phase * 2.0,
        "grow" => r = 0.1 + (t * 0.004).min(0.25),
        "shrink" => r = (0.35 - t * 0.004).max(0.05),
        _ => {}
    }
    let n = (w * h) as usize;
    let mut planar = vec![0f32; n * 3];
    for y in 0..h {
        for x in 0..w {
            let u = (x as f32 + 0.5) / w as f32 - cx;
            let v = (y as f32 + 0.5) / h as f32 - cy;
            let (s, c) = angle.sin_cos();
            let (u, v) = (u * c - v * s, u * s + v * c);
            let inside = match SHAPES.get(shape).copied().unwrap_or("circle") {
                "square" => u.abs().max(v.abs()) < r * 0.85,
                "ring" => {
                    let d = (u * u + v * v).sqrt();
                    d < r && d > r * 0.6
                }
                "diamond" => u.abs() + v.abs() < r,
                "triangle" => v < r * 0.7 && v > -r && u.abs() < (r * 0.7 - v) * 0.6,
                "star" => {
                    let a = v.atan2(u);
                    (u * u + v * v).sqrt() < r * (0.6 + 0.4 * (a * 5.0).cos().abs())
                }
                "heart" => {
                    let (x, y) = (u / r, -v / r + 0.25);
                    (x * x + y * y - 0.5).powi(3) - x * x * y.powi(3) < 0.0
                }
                _ => u * u + v * v < r * r,
            };
            // A soft vignette so the background is not flat.
            let shade = 1.0 - 0.25 * ((x as f32 / w as f32 - 0.5).powi(2) + (y as f32 / h as f32 - 0.5).powi(2));
            let col = if inside { obj } else { [bg[0] * shade, bg[1] * shade, bg[2] * shade] };
            let i = (y * w + x) as usize;
            for ch in 0..3 {
                planar[ch * n + i] = col[ch] * 2.0 - 1.0;
            }
        }
    }
    Frame { width: w, height: h, planar }
}

/// A factory of demo models of `size`×`size` pixels; each denoise sleeps `delay` ms (shared, so a
/// test can change it). The model takes the requested name, so "spool-tiny" gets completion.
pub fn factory(size: u32, delay: Arc<AtomicU64>) -> ModelFactory {
    Box::new(move |spec: &ModelSpec| {
        if spec.name == "broken" || spec.name == "wan-causal" {
            return Err(format!("{} weights were not found: choose a weights folder under Settings", spec.name));
        }
        let info = ModelInfo {
            id: spec.name.clone(),
            width: size,
            height: size,
            fps: 16.0,
            chunk_frames: 1,
            latent_frames: LatentFrames::ONE,
            default_steps: 2,
            max_steps: 4,
            default_guidance: None,
            max_prompt_tokens: 64,
            redraws: false,
            device: "cpu".into(),
            weights_hash: None,
        };
        Ok(Box::new(Demo { info, cache: Vec::new(), delay: delay.clone() }) as Box<dyn VideoModel>)
    })
}
