//! wan-causal in candle: the Self-Forcing family's causal Wan2.1-T2V-1.3B, for users with a GPU.
//!
//! Built in stages (ARCHITECTURE.md, `src/model/wan/`); each part is parity-tested on the CPU
//! against its PyTorch reference run with a tiny random configuration (`tests/wan_*.rs`, fixtures
//! from `training/make_wan_fixtures.py`, `make_umt5_fixtures.py`, `make_umt5_tokenizer_fixture.py`,
//! `make_taehv_fixtures.py`):
//! - [`config`]: the DiT's numbers (the 1.3B model's and any tiny one's), the cache policy.
//! - [`rope`]: the 3D rotary embedding (frame / height / width pairs, absolute frame positions).
//! - [`cache`]: per-block keys/values of committed frames: sinks + a window, constant memory.
//! - [`dit`]: the causal DiT, one chunk of latent frames per call, reading the cache, never writing
//!   it; weights from safetensors or the released training checkpoints (`load`), or random ones
//!   for benchmarks; matmuls in a chosen compute dtype (bf16 on a GPU).
//! - [`sampler`]: the 4-step flow sampler (re-noising between steps) and the t = 0 commit pass.
//! - [`umt5_tokenizer`] and [`umt5`]: the prompt → umT5-XXL token embeddings, the DiT's context.
//! - [`taehv`]: the streaming TAEHV decoder, latents → video frames (1, then 4 per latent).
//! - [`files`]: finding those files in the folder a user points at.
//! - [`core`]: all of them driven together: prompt → chunks over the cache → video frames.
//! - [`model`]: [`WanCausal`], the `VideoModel` the engine drives, loaded from a weights folder.
//!
//! Not yet here: a fused attention kernel for the GPU (BENCHMARKS.md "wan-causal DiT on the
//! GPU"), LongLive's re-cache at a prompt switch, starting from an image.

pub mod cache;
pub mod config;
pub mod core;
pub mod dit;
pub mod files;
mod load;
pub mod model;
pub mod rope;
pub mod sampler;
pub mod taehv;
pub mod umt5;
pub mod umt5_tokenizer;

pub use cache::KvCache;
pub use config::{CachePolicy, WanConfig};
pub use dit::{TextCond, WanDit};
pub use model::{WanCausal, WanModelConfig};
