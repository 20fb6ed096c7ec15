//! wan-causal in candle: the Self-Forcing family's causal Wan2.1-T2V-1.3B, for users with a GPU.
//!
//! Built in stages (ARCHITECTURE.md "wan-causal"); each is parity-tested on the CPU against the
//! PyTorch reference run with a tiny random configuration (`tests/wan_parity.rs`,
//! `training/make_wan_fixtures.py`):
//! - [`config`]: the DiT's numbers (the 1.3B model's and any tiny one's), the cache policy.
//! - [`rope`]: the 3D rotary embedding (frame / height / width pairs, absolute frame positions).
//! - [`cache`]: per-block keys/values of committed frames: sinks + a window, constant memory.
//! - [`dit`]: the causal DiT, one chunk of latent frames per call, reading the cache, never writing it.
//! - [`sampler`]: the 4-step flow sampler (re-noising between steps) and the t = 0 commit pass.
//!
//! Not yet here: the umT5-XXL text encoder, the latent decoder, the loader for the released
//! `.pt` checkpoints and the `VideoModel` wiring; the app says wan-causal is not available.

pub mod cache;
pub mod config;
pub mod dit;
pub mod rope;
pub mod sampler;

pub use cache::KvCache;
pub use config::{CachePolicy, WanConfig};
pub use dit::{TextCond, WanDit};
