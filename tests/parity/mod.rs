//! What the parity tests share: fixtures written by the PyTorch reference scripts
//! (`training/make_*_fixtures.py`) and the tolerance every comparison is held to,
//! `max |candle − reference| ≤ 1e-4 × rms(reference)` in f32.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use spool::model::wan::WanConfig;
use spool::model::wan::umt5::UmT5Config;

pub const TOLERANCE: f32 = 1e-4;

/// The tensors of one fixture file, by name.
pub struct Fixtures(HashMap<String, Tensor>);

impl Fixtures {
    pub fn load(path: &Path) -> Fixtures {
        let map = candle_core::safetensors::load(path, &Device::Cpu)
            .unwrap_or_else(|e| panic!("fixture file {}: {e}", path.display()));
        Fixtures(map)
    }

    /// Tensor `name` as f32.
    pub fn get(&self, name: &str) -> Tensor {
        self.0.get(name).unwrap_or_else(|| panic!("fixture `{name}` missing")).to_dtype(DType::F32).unwrap()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// Asserts the tolerance and returns `max_err / rms` for the report.
pub fn assert_close(name: &str, got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "{name}: shape");
    let g = got.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
    let w = want.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
    let rms = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
    let max = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let ratio = max / rms;
    println!("{name:<28} max abs err {max:.3e}  rms {rms:.3e}  ratio {ratio:.2e}");
    assert!(g.iter().all(|x| x.is_finite()), "{name}: non-finite output");
    assert!(ratio <= TOLERANCE, "{name}: max abs err {max:e} > {TOLERANCE:e} × rms {rms:e}");
    ratio
}

/// The wan-causal fixtures' tiny DiT (`training/make_wan_fixtures.py`): the 1.3B architecture at
/// width 64 on 8×12 latents (24 tokens per frame), 16 context rows of 32.
pub fn wan_dit_tiny() -> WanConfig {
    WanConfig {
        dim: 64,
        ffn_dim: 128,
        heads: 2,
        blocks: 2,
        freq_dim: 256,
        text_dim: 32,
        text_len: 16,
        latent_channels: 16,
        latent_h: 8,
        latent_w: 12,
        eps: 1e-6,
    }
}

/// The umT5 fixture's tiny encoder (`training/make_umt5_fixtures.py`): umT5-XXL's architecture at
/// width 32, with room for the tiny tokenizer fixture's ids.
pub fn umt5_tiny() -> UmT5Config {
    UmT5Config {
        vocab: 640,
        dim: 32,
        heads: 4,
        head_dim: 8,
        ffn_dim: 64,
        layers: 2,
        buckets: 32,
        max_distance: 128,
        eps: 1e-6,
    }
}

/// A wan-causal weights folder made of the tiny fixtures, as a user's download looks: the files
/// under their released names (links) and a `wan-causal.json` with the tiny numbers, so the app's
/// own loader (`--weights DIR`, the Settings folder) runs the whole wan path on the CPU.
pub fn wan_tiny_folder(dir: &Path) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (from, to) in [
        ("wan_tiny/dit_checkpoint.pt", "checkpoints/self_forcing_dmd.pt"),
        ("wan_umt5/encoder.pth", "models_t5_umt5-xxl-enc-bf16.pth"),
        ("wan_umt5_tok/tokenizer.json", "google/umt5-xxl/tokenizer.json"),
        ("wan_taehv/taew2_1_tiny.safetensors", "taew2_1.safetensors"),
    ] {
        let to = dir.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(fixtures.join(from), to).unwrap();
    }
    let config = spool::model::wan::WanModelConfig { dit: wan_dit_tiny(), text_encoder: umt5_tiny() };
    std::fs::write(dir.join(spool::model::wan::model::CONFIG_FILE), serde_json::to_string_pretty(&config).unwrap())
        .unwrap();
}
