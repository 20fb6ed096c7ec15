//! wan-causal's parts run together on the tiny fixtures: prompt → tokenizer → umT5 → DiT chunks
//! over the cache → TAEHV frames. Each part's numbers are checked against its reference in its own
//! test file; this checks that they compose: shapes, frame counts, determinism, prompt effect.

mod parity;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use parity::{umt5_tiny, wan_dit_tiny};
use spool::model::wan::CachePolicy;
use spool::model::wan::core::{CHUNK_FRAMES, WanCore};
use spool::model::wan::files::WanFiles;
use spool::model::wan::umt5::UmT5Config;
use spool::model::{Conditioning, Frame, FrameNoise};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn files() -> WanFiles {
    let f = fixtures();
    WanFiles {
        generator: f.join("wan_tiny/dit_checkpoint.pt"),
        text_encoder: f.join("wan_umt5/encoder.pth"),
        tokenizer: f.join("wan_umt5_tok/tokenizer.json"),
        decoder: f.join("wan_taehv/taew2_1_tiny.safetensors"),
    }
}

/// `chunks` chunks of `prompt` from an empty cache, decoded.
fn video(core: &mut WanCore, prompt: &str, chunks: u64) -> Vec<Frame> {
    core.reset();
    let prompt = core.prompt(prompt).unwrap();
    let shape = core.chunk_shape();
    let mut frames = Vec::new();
    for c in 0..chunks {
        let mut noise = FrameNoise::new(7, c);
        let x0 = core.next_chunk(&prompt, 4, |_| noise.normal(&shape, &Device::Cpu)).unwrap();
        frames.extend(core.decode(&x0).unwrap());
    }
    frames
}

#[test]
fn a_prompt_becomes_video_frames_through_every_part() {
    let mut core =
        WanCore::load(&files(), &wan_dit_tiny(), &umt5_tiny(), CachePolicy::LONG_LIVE, &Device::Cpu, DType::F32)
            .expect("the fixtures load as one model");
    let a = video(&mut core, "a red fox runs across the snow", 5);
    // the first latent gives 1 frame, every later one 4
    assert_eq!(a.len(), 1 + 4 * (5 * CHUNK_FRAMES - 1));
    for f in &a {
        assert_eq!((f.width, f.height), (96, 64));
        assert!(f.planar.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
    }
    assert!(a.windows(2).all(|w| w[0] != w[1]), "the video moves");
    // 5 chunks = 15 latent frames: the window (12) is full and the cache stays that size
    let per_frame = 2 * 2 * 24 * 64 * 4;
    assert_eq!(core.cache_bytes(), 12 * per_frame);
    assert_eq!(video(&mut core, "a red fox runs across the snow", 5), a, "same prompt and noise, same video");
    assert_ne!(video(&mut core, "a blue whale under the sea", 1)[0], a[0], "the prompt changes the picture");
}

#[test]
fn parts_that_do_not_belong_together_are_refused() {
    let narrow = UmT5Config { dim: 48, ..umt5_tiny() };
    let err = WanCore::load(&files(), &wan_dit_tiny(), &narrow, CachePolicy::LONG_LIVE, &Device::Cpu, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("48 wide") && err.contains("32-wide"), "{err}");
    let small = UmT5Config { vocab: 100, ..umt5_tiny() };
    let err = WanCore::load(&files(), &wan_dit_tiny(), &small, CachePolicy::LONG_LIVE, &Device::Cpu, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tokenizer.json") && err.contains("not this encoder's tokenizer"), "{err}");
}

#[test]
fn a_blend_weighs_its_prompts_in_cross_attention() {
    let core = WanCore::load(&files(), &wan_dit_tiny(), &umt5_tiny(), CachePolicy::LONG_LIVE, &Device::Cpu, DType::F32)
        .unwrap();
    let cond = |text: &str| {
        let (tokens, _) = core.encode(text).unwrap();
        let bias = Tensor::zeros(tokens.dim(0).unwrap(), DType::F32, &Device::Cpu).unwrap();
        Conditioning::new(tokens, bias)
    };
    let (fox, whale) = (cond("a red fox runs across the snow"), cond("a blue whale under the sea"));
    let shape = core.chunk_shape();
    let chunk = |c: &Conditioning| {
        let mut noise = FrameNoise::new(3, 0);
        let x0 = core.sample(&core.prepare(c).unwrap(), 4, |_| noise.normal(&shape, &Device::Cpu)).unwrap();
        x0.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let (a, b) = (chunk(&fox), chunk(&whale));
    let mostly_fox = chunk(&Conditioning::blend(&[(0.999, &fox), (0.001, &whale)]).unwrap());
    let half = chunk(&Conditioning::blend(&[(0.5, &fox), (0.5, &whale)]).unwrap());
    let apart = dist(&a, &b);
    assert!(apart > 0.1, "the prompts differ: {apart}");
    assert!(dist(&mostly_fox, &a) < 0.01 * apart, "a 99.9% fox blend is the fox: {}", dist(&mostly_fox, &a));
    assert!(dist(&half, &a) > 0.1 * apart && dist(&half, &b) > 0.1 * apart, "an even blend is neither");
}
