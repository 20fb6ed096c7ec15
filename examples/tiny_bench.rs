//! Per-stage timings of spool-tiny with random weights of the SPEC's shapes.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release --example tiny_bench -- [steps] [frames]`

use candle_core::Device;
use spool::model::tiny::{Config, bench_random};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let steps: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let frames: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(32);
    let t = bench_random(&Config::default(), steps, frames, &Device::Cpu)?;
    println!(
        "spool-tiny random weights, {} steps, {} frames (median): encoder {:.2} ms, decoder step {:.2} ms, \
         AE decode {:.2} ms, frame {:.2} ms = {:.1} fps (fastest frame {:.2} ms); cache {:.2} MiB",
        t.steps,
        t.frames,
        t.encoder_ms,
        t.decoder_step_ms,
        t.ae_decode_ms,
        t.frame_ms,
        t.fps(),
        t.frame_ms_min,
        t.cache_bytes as f64 / (1 << 20) as f64
    );
    Ok(())
}
