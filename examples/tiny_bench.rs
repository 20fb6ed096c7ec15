//! Per-stage timings of spool-tiny with random weights of the SPEC's shapes.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release --example tiny_bench -- [steps] [frames] [guidance]`

use candle_core::Device;
use spool::model::Sampling;
use spool::model::tiny::{Config, Stages, bench_random};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let steps: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let frames: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let guidance: f32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let t = bench_random(&Config::default(), Sampling::guided(steps, guidance), frames, &Device::Cpu)?;
    let line = |what: &str, s: &Stages| {
        println!(
            "{what:<8} encoder {:6.2} ms | decoder step {:6.2} ms | AE decode {:6.2} ms | frame {:6.2} ms = {:5.1} fps",
            s.encoder_ms,
            s.decoder_step_ms,
            s.ae_decode_ms,
            s.frame_ms,
            s.fps()
        )
    };
    println!(
        "spool-tiny, random weights, {} steps, guidance {}, {} frames, {} rayon threads, cache {:.2} MiB",
        t.steps,
        t.guidance,
        t.frames,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into()),
        t.cache_bytes as f64 / (1 << 20) as f64
    );
    line("median", &t.median);
    line("fastest", &t.fastest);
    Ok(())
}
