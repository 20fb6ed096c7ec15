//! wan-causal's DiT at the real size with random weights: time per chunk as the cache fills and
//! then slides, and the cache's memory. The numbers DESIGN.md §5 sets targets for (per-chunk DiT
//! time, first chunk, steady video fps); the text encoder and the latent decoder are timed apart.
//!
//! GPU (the build of `scripts/build-cuda`): `wan_bench [--chunks N] [--policy sf|longlive] [--dtype bf16|f32]`
//! CPU, tiny width (a smoke run): `cargo run --release --example wan_bench -- --cpu --tiny`

use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Tensor};
use spool::model::wan::sampler::{self, STEP_TIMES};
use spool::model::wan::{CachePolicy, KvCache, WanConfig, WanDit};

/// Latent frames per chunk, as Self-Forcing generates them.
const CHUNK: usize = 3;

struct Args {
    cpu: bool,
    tiny: bool,
    chunks: usize,
    policy: CachePolicy,
    dtype: DType,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args { cpu: false, tiny: false, chunks: 10, policy: CachePolicy::SELF_FORCING, dtype: DType::BF16 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--cpu" => a.cpu = true,
            "--tiny" => a.tiny = true,
            "--chunks" => a.chunks = value()?.parse()?,
            "--policy" => {
                a.policy = match value()?.as_str() {
                    "sf" => CachePolicy::SELF_FORCING,
                    "longlive" => CachePolicy::LONG_LIVE,
                    p => bail!("--policy {p}: use sf or longlive"),
                }
            }
            "--dtype" => {
                a.dtype = match value()?.as_str() {
                    "bf16" => DType::BF16,
                    "f32" => DType::F32,
                    d => bail!("--dtype {d}: use bf16 or f32"),
                }
            }
            other => bail!("unknown argument {other}: see the header of examples/wan_bench.rs"),
        }
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let device = if a.cpu { Device::Cpu } else { Device::new_cuda(0).context("no CUDA device (try --cpu)")? };
    let cfg = if a.tiny {
        WanConfig {
            dim: 64,
            ffn_dim: 128,
            heads: 2,
            blocks: 2,
            text_dim: 32,
            text_len: 16,
            latent_h: 8,
            latent_w: 12,
            ..WanConfig::wan2_1_1_3b()
        }
    } else {
        WanConfig::wan2_1_1_3b()
    };
    let sync = |d: &Device| d.synchronize().context("synchronize");

    let t0 = Instant::now();
    let dit = WanDit::random(&cfg, &device, a.dtype)?;
    sync(&device)?;
    println!(
        "wan-causal DiT, random weights, {} blocks × {} wide, {:?}, {:?}, latent {}×{} ({} tokens/frame), built in {:.1} s",
        cfg.blocks,
        cfg.dim,
        a.dtype,
        device.location(),
        cfg.latent_h,
        cfg.latent_w,
        cfg.frame_tokens(),
        t0.elapsed().as_secs_f64()
    );

    let context = Tensor::randn(0f32, 1.0, (cfg.text_len, cfg.text_dim), &device)?;
    let t0 = Instant::now();
    let text = dit.prepare_text(&context)?;
    sync(&device)?;
    println!(
        "prompt prepared (text embedding + {} cross-attention K/V): {:.1} ms",
        cfg.blocks,
        t0.elapsed().as_secs_f64() * 1e3
    );

    let shape = (cfg.latent_channels, CHUNK, cfg.latent_h, cfg.latent_w);
    let mut cache = KvCache::new(a.policy, cfg.frame_tokens());
    println!("chunk | attended frames | 4 steps (ms) | commit (ms) | chunk (ms) | video fps | cache (MiB)");
    let mut steady = Vec::new();
    for c in 0..a.chunks {
        let attended = cache.frames().len().min(a.policy.sink_frames + a.policy.recent_attended(CHUNK)) + CHUNK;
        sync(&device)?;
        let t0 = Instant::now();
        let x0 = sampler::sample_chunk(&dit, &text, &cache, STEP_TIMES.len(), |_| {
            Ok(Tensor::randn(0f32, 1.0, shape, &device)?)
        })?;
        sync(&device)?;
        let steps = t0.elapsed().as_secs_f64();
        sampler::commit_chunk(&dit, &text, &mut cache, &x0)?;
        sync(&device)?;
        let total = t0.elapsed().as_secs_f64();
        // every latent after the first decodes to 4 video frames
        let frames = if c == 0 { 4 * CHUNK - 3 } else { 4 * CHUNK };
        println!(
            "{c:5} | {attended:15} | {:12.1} | {:11.1} | {:10.1} | {:9.1} | {:11.1}",
            steps * 1e3,
            (total - steps) * 1e3,
            total * 1e3,
            frames as f64 / total,
            cache.bytes() as f64 / (1 << 20) as f64
        );
        if attended == a.policy.window_frames {
            steady.push(total);
        }
    }
    if let Some(best) = steady.iter().copied().reduce(f64::min) {
        println!("window full: fastest chunk {:.1} ms = {:.1} video fps (DiT only)", best * 1e3, 12.0 / best);
    }
    Ok(())
}
