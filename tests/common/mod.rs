//! A deterministic stand-in model for engine tests. It lives only here, never in the app.
//!
//! Its latent for a frame is `[position in cache, prompt value, noise sample]`, and its decoded
//! frame carries those three numbers in its three planes, so tests can read back exactly which
//! cache position, conditioning and noise made each frame.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use crossbeam_channel::RecvTimeoutError;
use spool::engine::{Engine, EngineConfig, Event, ModelFactory, ModelSpec};
use spool::model::{
    CommitConditioning, Conditioning, DetachedDecoder, EncodedPrompt, Frame, FrameNoise, Latent, LatentFrames,
    ModelError, ModelInfo, Result, Sampling, VideoModel,
};

/// What the double saw, shared with the test.
#[derive(Debug, Default)]
pub struct Log {
    pub encodes: Vec<String>,
    pub denoise_calls: u64,
    pub resets: u64,
    /// Positions committed, in order, across all resets.
    pub commits: Vec<u64>,
    pub recaches: Vec<u64>,
    /// The guidance scale of each denoise call.
    pub guidance: Vec<f32>,
    /// Whether each denoise call settles a prompt change (`Sampling::settling`).
    pub settling: Vec<bool>,
    /// Each decoded latent's cache position and the name of the thread that decoded it.
    pub decoded_on: Vec<(u64, String)>,
}

/// Knobs a test turns while the engine runs.
#[derive(Default)]
pub struct Control {
    /// Fail `denoise` at this cache position (u64::MAX = never).
    pub fail_at: AtomicU64,
    /// Panic instead of returning an error.
    pub panic: AtomicBool,
    /// Milliseconds each denoise call sleeps.
    pub delay_ms: AtomicU64,
    /// Fail the decode of the latent at this cache position (panic if `panic` is set).
    pub fail_decode_at: Mutex<Option<u64>>,
}

pub struct Double {
    info: ModelInfo,
    /// Offers its decoder apart from itself (loaded under the name "detached").
    detached: bool,
    cache: Vec<f32>,
    log: Arc<Mutex<Log>>,
    control: Arc<Control>,
}

/// Stable number for a prompt text.
pub fn prompt_value(text: &str) -> f32 {
    (text.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 1000) as f32
}

impl VideoModel for Double {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn encode_prompt(&mut self, text: &str) -> Result<EncodedPrompt> {
        self.log.lock().unwrap().encodes.push(text.to_string());
        let tokens = Tensor::new(&[[prompt_value(text)]], &Device::Cpu)?;
        let bias = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu)?;
        Ok(EncodedPrompt { cond: Conditioning::new(tokens, bias), truncated: text.len() > 64 })
    }

    fn reset(&mut self) -> Result<()> {
        self.cache.clear();
        self.log.lock().unwrap().resets += 1;
        Ok(())
    }

    fn encode_image(&mut self, frame: &Frame) -> Result<Latent> {
        let mean = frame.planar.iter().sum::<f32>() / frame.planar.len() as f32;
        Ok(Latent(Tensor::new(&[self.cache.len() as f32, -1.0, mean], &Device::Cpu)?))
    }

    fn denoise(&mut self, cond: &Conditioning, noise: &mut FrameNoise, sampling: Sampling) -> Result<Vec<Latent>> {
        {
            let mut log = self.log.lock().unwrap();
            log.denoise_calls += 1;
            log.guidance.push(sampling.guidance);
            log.settling.push(sampling.settling);
        }
        let pos = self.cache.len() as u64;
        std::thread::sleep(Duration::from_millis(self.control.delay_ms.load(Ordering::SeqCst)));
        if pos == self.control.fail_at.load(Ordering::SeqCst) {
            if self.control.panic.load(Ordering::SeqCst) {
                panic!("planted panic at {pos}");
            }
            return Err(ModelError::Invalid(format!("planted failure at {pos}")));
        }
        // The blend's effective value: softmax of the biases over the tokens.
        let w = candle_nn::ops::softmax(&cond.bias, 0)?.to_vec1::<f32>()?;
        let v = cond.tokens.flatten_all()?.to_vec1::<f32>()?;
        let value: f32 = w.iter().zip(&v).map(|(a, b)| a * b).sum();
        let n = noise.normal(&[self.info.chunk_frames], &Device::Cpu)?.to_vec1::<f32>()?;
        (0..self.info.chunk_frames)
            .map(|k| Ok(Latent(Tensor::new(&[(pos + k as u64) as f32, value, n[k]], &Device::Cpu)?)))
            .collect()
    }

    fn commit(&mut self, frames: &[Latent], _cond: CommitConditioning<'_>) -> Result<()> {
        for f in frames {
            let v = f.0.to_vec1::<f32>()?;
            let expected = self.cache.len() as f32;
            if v[0] != expected {
                return Err(ModelError::Invalid(format!("frame for position {} committed at {}", v[0], expected)));
            }
            self.cache.push(v[1]);
            self.log.lock().unwrap().commits.push(v[0] as u64);
        }
        Ok(())
    }

    fn recache(&mut self, _cond: &Conditioning) -> Result<()> {
        self.log.lock().unwrap().recaches.push(self.cache.len() as u64);
        Ok(())
    }

    fn decode(&mut self, latent: &Latent) -> Result<Vec<Frame>> {
        Decoder { log: self.log.clone(), control: self.control.clone() }.decode(latent)
    }

    fn detached_decoder(&self) -> Option<Arc<dyn DetachedDecoder>> {
        self.detached.then(|| Arc::new(Decoder { log: self.log.clone(), control: self.control.clone() }) as _)
    }

    fn cache_bytes(&self) -> usize {
        self.cache.len() * 4
    }
}

/// The double's decoder, which has no state: its own `decode` and, for a "detached" double, the one
/// it offers apart from itself.
struct Decoder {
    log: Arc<Mutex<Log>>,
    control: Arc<Control>,
}

impl DetachedDecoder for Decoder {
    fn decode(&self, latent: &Latent) -> Result<Vec<Frame>> {
        let v = latent.0.to_vec1::<f32>()?;
        let thread = std::thread::current().name().unwrap_or("").to_string();
        self.log.lock().unwrap().decoded_on.push((v[0] as u64, thread));
        if *self.control.fail_decode_at.lock().unwrap() == Some(v[0] as u64) {
            if self.control.panic.load(Ordering::SeqCst) {
                panic!("planted decode panic at {}", v[0]);
            }
            return Err(ModelError::Invalid(format!("planted decode failure at {}", v[0])));
        }
        let planar = (0..3).flat_map(|c| std::iter::repeat_n(v[c], 4)).collect();
        Ok(vec![Frame { width: 2, height: 2, planar }])
    }
}

/// The three numbers a double's frame carries.
pub fn read(frame: &Frame) -> (u64, f32, f32) {
    (frame.planar[0] as u64, frame.planar[4], frame.planar[8])
}

pub struct Harness {
    pub engine: Engine,
    pub log: Arc<Mutex<Log>>,
    pub control: Arc<Control>,
    pub dir: tempfile::TempDir,
}

/// Default guidance scale of a double loaded under the name "guided"; other doubles have no guidance.
pub const GUIDED_DEFAULT: f32 = 1.5;

/// A factory making doubles with `chunk` frames per step; the name "broken" fails to load, and
/// the name "guided" makes a double that accepts a guidance scale (it only logs it) and offers
/// the switch redraw setting (its redraw draws nothing: the default `None`), and the name
/// "detached" one that offers its decoder apart from itself (as spool-tiny does). The weights
/// path, if any, only sets the weights hash.
pub fn factory(chunk: usize, log: Arc<Mutex<Log>>, control: Arc<Control>) -> ModelFactory {
    Box::new(move |spec: &ModelSpec| {
        if spec.name == "broken" {
            return Err("planted load failure".to_string());
        }
        let info = ModelInfo {
            id: spec.name.clone(),
            width: 2,
            height: 2,
            fps: 16.0,
            chunk_frames: chunk,
            latent_frames: LatentFrames::ONE,
            default_steps: 2,
            max_steps: 4,
            default_guidance: (spec.name == "guided").then_some(GUIDED_DEFAULT),
            max_prompt_tokens: 16,
            redraws: spec.name == "guided",
            device: "cpu".into(),
            // Stands for the weight files' content: the same weights path, the same hash.
            weights_hash: spec.weights.as_ref().map(|w| format!("test:{}", w.display())),
        };
        let detached = spec.name == "detached";
        Ok(Box::new(Double { info, detached, cache: Vec::new(), log: log.clone(), control: control.clone() })
            as Box<dyn VideoModel>)
    })
}

impl Harness {
    /// An engine with a double loaded.
    pub fn new(chunk: usize) -> Harness {
        Harness::with_waker(chunk, None)
    }

    /// An engine with a double loaded, which calls `waker` as the app's would repaint.
    pub fn with_waker(chunk: usize, waker: Option<spool::engine::Waker>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let control = Arc::new(Control { fail_at: AtomicU64::new(u64::MAX), ..Default::default() });
        let engine = Engine::spawn(
            EngineConfig::new(dir.path().join("project")),
            factory(chunk, log.clone(), control.clone()),
            waker,
        )
        .unwrap();
        let h = Harness { engine, log, control, dir };
        h.load("double");
        h
    }

    pub fn load(&self, name: &str) {
        self.engine.send(spool::engine::Command::LoadModel(ModelSpec { name: name.into(), weights: None })).unwrap();
        self.until(|e| matches!(e, Event::ModelLoaded(_) | Event::Error(_)));
    }

    /// Collects events until `stop` matches one (included). Panics after 10 s.
    pub fn until(&self, mut stop: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        loop {
            match self.engine.events().recv_deadline(deadline) {
                Ok(e) => {
                    let done = stop(&e);
                    out.push(e);
                    if done {
                        return out;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("timed out waiting; events so far: {out:#?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("engine gone; events so far: {out:#?}"),
            }
        }
    }

    /// Events that arrive within `d` (for checking that nothing more comes).
    pub fn quiet_for(&self, d: Duration) -> Vec<Event> {
        let deadline = Instant::now() + d;
        let mut out = Vec::new();
        while let Ok(e) = self.engine.events().recv_deadline(deadline) {
            out.push(e);
        }
        out
    }
}

/// Frames among events: (take, index, position, prompt value, noise).
pub fn frames(events: &[Event]) -> Vec<(u32, u64, u64, f32, f32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(f) => {
                let (pos, value, noise) = read(&f.frame);
                Some((f.take.0, f.index, pos, value, noise))
            }
            _ => None,
        })
        .collect()
}

/// Whether the tests run as root (needed to mount a tmpfs; CI runs as root).
pub fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A tmpfs mounted for a test, unmounted however the test ends.
pub struct Mount(pub std::path::PathBuf);

impl Mount {
    /// Mounts a tmpfs with `options` (e.g. `size=64k`, `ro,size=64k`) on the new folder `at`.
    /// Needs root.
    pub fn tmpfs(at: &std::path::Path, options: &str) -> Mount {
        std::fs::create_dir(at).unwrap();
        let status =
            std::process::Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(at).status().unwrap();
        assert!(status.success(), "running as root but `mount -t tmpfs -o {options}` failed");
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
