//! spool-tiny driven through the `VideoModel` interface, as the engine drives it: determinism,
//! resuming a take from its stored latents, prompt switches, image-to-video, argument errors.
//!
//! Uses the small parity-fixture checkpoint (`tests/fixtures/tiny/`, random weights of the contract's
//! structure) and the shipped text encoder (`assets/minilm/`).

use std::path::{Path, PathBuf};

use candle_core::Device;
use spool::model::tiny::SpoolTiny;
use spool::model::{Frame, FrameNoise, Latent, ModelError, VideoModel};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> SpoolTiny {
    SpoolTiny::load(&root().join("tests/fixtures/tiny"), &root().join("assets/minilm"), &Device::Cpu)
        .expect("spool-tiny loads")
}

fn values(l: &Latent) -> Vec<f32> {
    l.0.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Generates `n` frames from a reset cache: (latents, decoded frames).
fn generate(m: &mut SpoolTiny, prompt: &str, seed: u64, n: usize, steps: u32) -> (Vec<Latent>, Vec<Frame>) {
    let cond = m.encode_prompt(prompt).unwrap().cond;
    m.reset().unwrap();
    let (mut latents, mut frames) = (Vec::new(), Vec::new());
    for f in 0..n {
        let lat = m.denoise(&cond, &mut FrameNoise::new(seed, f as u64), steps).unwrap().remove(0);
        frames.push(m.decode(&lat).unwrap());
        m.commit(std::slice::from_ref(&lat), &cond).unwrap();
        latents.push(lat);
    }
    (latents, frames)
}

#[test]
fn info_describes_the_model() {
    let m = model();
    let info = m.info();
    assert_eq!((info.id.as_str(), info.width, info.height, info.chunk_frames), ("spool-tiny", 128, 128, 1));
    assert_eq!((info.default_steps, info.max_steps, info.max_prompt_tokens), (4, 8, 32));
    assert_eq!(info.device, "cpu");
}

#[test]
fn frames_are_deterministic_and_a_take_resumes_from_its_latents() {
    let mut m = model();
    let prompt = "a red circle moves left on a blue background";
    let (lat_a, frames_a) = generate(&mut m, prompt, 42, 4, 3);
    let (lat_b, frames_b) = generate(&mut m, prompt, 42, 4, 3);
    for (a, b) in lat_a.iter().zip(&lat_b) {
        assert_eq!(values(a), values(b), "same seed, same frames");
    }
    assert_eq!(frames_a, frames_b);
    for f in &frames_a {
        assert_eq!((f.width, f.height, f.planar.len()), (128, 128, 3 * 128 * 128));
        assert!(f.planar.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
    }
    assert_eq!(lat_a[0].0.dims(), [16, 8, 8]);
    let (lat_c, _) = generate(&mut m, prompt, 43, 1, 3);
    assert_ne!(values(&lat_a[0]), values(&lat_c[0]), "another seed, another frame");

    // Rebuild the cache from the stored latents and continue: frame 3 comes out bit-exactly.
    let cond = m.encode_prompt(prompt).unwrap().cond;
    m.reset().unwrap();
    m.commit(&lat_a[..3], &cond).unwrap();
    let again = m.denoise(&cond, &mut FrameNoise::new(42, 3), 3).unwrap().remove(0);
    assert_eq!(values(&again), values(&lat_a[3]));
}

#[test]
fn prompt_switch_recache_and_cache_size() {
    let mut m = model();
    let a = m.encode_prompt("a green square on a black background").unwrap();
    let b = m.encode_prompt("a yellow triangle bounces").unwrap();
    assert!(!a.truncated);
    let long = m.encode_prompt(&"many words ".repeat(40)).unwrap();
    assert!(long.truncated, "a prompt over 32 tokens is cut and says so");
    m.reset().unwrap();
    let mut sizes = Vec::new();
    for f in 0..16u64 {
        let cond = if f < 10 { &a.cond } else { &b.cond };
        if f == 10 {
            m.recache(cond).unwrap();
        }
        let lat = m.denoise(cond, &mut FrameNoise::new(1, f), 2).unwrap();
        m.commit(&lat, cond).unwrap();
        sizes.push(m.cache_bytes());
    }
    assert!(sizes[12..].iter().all(|&s| s == sizes[12]), "cache grows after the window is full: {sizes:?}");
    // A switch without re-cache re-encodes only the newest element; both paths give finite frames.
    let lat = m.denoise(&a.cond, &mut FrameNoise::new(1, 16), 2).unwrap();
    assert!(values(&lat[0]).iter().all(|v| v.is_finite()));
}

#[test]
fn image_to_video_starts_from_an_encoded_frame() {
    let mut m = model();
    let cond = m.encode_prompt("a blue circle").unwrap().cond;
    let rgb: Vec<u8> = (0..128 * 128).flat_map(|i| [(i % 128) as u8 * 2, (i / 128) as u8, 200]).collect();
    let image = Frame::from_rgb8(128, 128, &rgb);
    let z = m.encode_image(&image).unwrap();
    assert_eq!(z.0.dims(), [16, 8, 8]);
    m.reset().unwrap();
    m.commit(std::slice::from_ref(&z), &cond).unwrap();
    let next = m.denoise(&cond, &mut FrameNoise::new(5, 1), 4).unwrap();
    assert!(values(&next[0]).iter().all(|v| v.is_finite()));
    let small = Frame::from_rgb8(64, 64, &rgb[..64 * 64 * 3]);
    assert!(matches!(m.encode_image(&small), Err(ModelError::Invalid(_))));
}

#[test]
fn bad_arguments_are_errors() {
    let mut m = model();
    let cond = m.encode_prompt("x").unwrap().cond;
    for steps in [0, 9] {
        assert!(matches!(m.denoise(&cond, &mut FrameNoise::new(0, 0), steps), Err(ModelError::Invalid(_))));
    }
    let wrong = Latent(candle_core::Tensor::zeros((4, 8, 8), candle_core::DType::F32, &Device::Cpu).unwrap());
    assert!(matches!(m.decode(&wrong), Err(ModelError::Invalid(_))));
    assert!(matches!(m.commit(&[wrong], &cond), Err(ModelError::Invalid(_))));
    let missing = SpoolTiny::load(Path::new("/nonexistent/spool-tiny"), &root().join("assets/minilm"), &Device::Cpu);
    assert!(matches!(missing, Err(ModelError::MissingWeights { .. })));
}

#[test]
fn stage_benchmark_runs() {
    let cfg = spool::model::tiny::Config {
        d_model: 64,
        head_dim: 16,
        encoder_blocks: 1,
        decoder_blocks: 1,
        ..Default::default()
    };
    let t = spool::model::tiny::bench_random(&cfg, 2, 3, &Device::Cpu).unwrap();
    assert_eq!((t.steps, t.frames), (2, 3));
    for s in [t.median, t.fastest] {
        assert!(s.encoder_ms > 0.0 && s.decoder_step_ms > 0.0 && s.ae_decode_ms > 0.0);
        assert!(s.frame_ms >= s.encoder_ms + s.ae_decode_ms);
    }
    assert!(t.fastest.frame_ms <= t.median.frame_ms);
}
