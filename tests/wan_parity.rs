//! wan-causal's DiT, cache and sampler in candle against the Self-Forcing reference.
//!
//! The fixtures in `tests/fixtures/wan_tiny/` come from `training/make_wan_fixtures.py`: the
//! reference's `CausalWanModel` at a tiny width with random f16 weights, run on the CPU in f32 as
//! Self-Forcing's inference runs it, chunk by chunk (3 latent frames), 4 steps each, then the t = 0
//! pass that writes the cache. Run `a` attends to everything (Self-Forcing, 3 chunks); run `b`
//! keeps 3 sink frames in a 12-frame window (LongLive, 6 chunks: frames are evicted and positions
//! pass the window). Every comparison: `max |candle − reference| ≤ 1e-4 × rms(reference)` in f32.

mod parity;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use parity::{Fixtures, assert_close, wan_dit_tiny};
use spool::model::wan::sampler::{self, STEP_TIMES};
use spool::model::wan::{CachePolicy, KvCache, TextCond, WanConfig, WanDit};

const CHUNK: usize = 3;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan_tiny")
}

struct Run {
    name: &'static str,
    policy: CachePolicy,
    chunks: usize,
}

impl Run {
    /// The fixture prefix of chunk `c`: run b's first three chunks are run a's (nothing is evicted
    /// before chunk 4), stored once under `a`.
    fn chunk(&self, c: usize) -> String {
        let name = if self.name == "b" && c < 3 { "a" } else { self.name };
        format!("{name}.c{c}")
    }
}

const RUNS: [Run; 2] = [
    Run { name: "a", policy: CachePolicy::SELF_FORCING, chunks: 3 },
    Run { name: "b", policy: CachePolicy::LONG_LIVE, chunks: 6 },
];

fn setup() -> (WanDit, TextCond, Fixtures) {
    setup_in(DType::F32)
}

fn setup_in(dtype: DType) -> (WanDit, TextCond, Fixtures) {
    let fx = Fixtures::load(&dir().join("rollout.safetensors"));
    let dit =
        WanDit::load(&dir().join("dit.safetensors"), &wan_dit_tiny(), &Device::Cpu, dtype).expect("fixture DiT loads");
    let text = dit.prepare_text(&fx.get("context")).unwrap();
    (dit, text, fx)
}

/// The stored frames and every block's keys/values against the reference's buffer, which holds
/// the same frames in the same order (sinks, then the rest oldest first) as `[tokens, heads, dim]`.
fn check_cache(label: &str, cache: &KvCache, fx: &Fixtures, blocks: usize) {
    let want: Vec<usize> =
        fx.get(&format!("{label}.cache.frames")).to_vec1::<f32>().unwrap().iter().map(|&f| f as usize).collect();
    assert_eq!(cache.frames(), want.as_slice(), "{label}: stored frames");
    for i in 0..blocks {
        let (k, v) = cache.block(i).expect("committed");
        let layout = |x: &Tensor| x.transpose(0, 1).unwrap();
        assert_close(&format!("{label} block {i} k"), &layout(k), &fx.get(&format!("{label}.cache.b{i}.k")));
        assert_close(&format!("{label} block {i} v"), &layout(v), &fx.get(&format!("{label}.cache.b{i}.v")));
    }
}

#[test]
fn config_matches_the_fixture_and_the_timesteps_are_the_references() {
    let fx = Fixtures::load(&dir().join("rollout.safetensors"));
    let times = fx.get("timesteps").to_vec1::<f32>().unwrap();
    assert_eq!(times, STEP_TIMES.to_vec(), "the sampler's timesteps");
    let sigmas = fx.get("sigmas").to_vec1::<f32>().unwrap();
    for (s, t) in sigmas.iter().zip(STEP_TIMES) {
        // σ = t / 1000 to within the f32 rounding of the reference's own schedule
        assert!((f64::from(*s) - f64::from(t) / 1000.0).abs() < 1e-6, "σ {s} for t {t}");
    }
}

#[test]
fn teacher_forced_steps_and_cache_match_reference() {
    let (dit, text, fx) = setup();
    let cfg = wan_dit_tiny();
    for run in RUNS {
        let mut cache = KvCache::new(run.policy, cfg.frame_tokens());
        for c in 0..run.chunks {
            let first = cache.next_frame();
            assert_eq!(first, c * CHUNK);
            let chunk = run.chunk(c);
            for (k, &t) in STEP_TIMES.iter().enumerate() {
                let p = format!("{chunk}.s{k}");
                let x = fx.get(&format!("{p}.x"));
                let (v, _) = dit.forward(&x, t, &text, &cache, first).unwrap();
                assert_close(&format!("{p} v"), &v, &fx.get(&format!("{p}.v")));
                // the reference's own v through the conversion and re-noising gives its next input
                let x0 = sampler::clean_estimate(&x, &fx.get(&format!("{p}.v")), t).unwrap();
                match STEP_TIMES.get(k + 1) {
                    Some(&next) => {
                        let x = sampler::renoise(&x0, &fx.get(&format!("{p}.eps")), next).unwrap();
                        assert_close(&format!("{p} renoised"), &x, &fx.get(&format!("{chunk}.s{}.x", k + 1)));
                    }
                    None => _ = assert_close(&format!("{p} x0"), &x0, &fx.get(&format!("{p}.x0"))),
                }
            }
            let x0 = fx.get(&format!("{chunk}.s3.x0"));
            sampler::commit_chunk(&dit, &text, &mut cache, &x0).unwrap();
            let label = format!("{}.c{c}", run.name);
            if fx.has(&format!("{label}.cache.frames")) {
                check_cache(&label, &cache, &fx, cfg.blocks);
            }
        }
    }
}

#[test]
fn free_running_rollout_matches_reference() {
    let (dit, text, fx) = setup();
    let cfg = wan_dit_tiny();
    for run in RUNS {
        let mut cache = KvCache::new(run.policy, cfg.frame_tokens());
        for c in 0..run.chunks {
            let p = run.chunk(c);
            let noise = |k: usize| {
                Ok(if k == 0 { fx.get(&format!("{p}.s0.x")) } else { fx.get(&format!("{p}.s{}.eps", k - 1)) })
            };
            let x0 = sampler::sample_chunk(&dit, &text, &cache, STEP_TIMES.len(), noise).unwrap();
            assert_close(&format!("{p} rollout x0"), &x0, &fx.get(&format!("{p}.s3.x0")));
            sampler::commit_chunk(&dit, &text, &mut cache, &x0).unwrap();
        }
    }
}

#[test]
fn cache_memory_is_flat_once_the_window_is_full() {
    let (dit, text, fx) = setup();
    let cfg = wan_dit_tiny();
    let mut cache = KvCache::new(CachePolicy::LONG_LIVE, cfg.frame_tokens());
    let mut bytes = Vec::new();
    for c in 0..8 {
        // any clean chunk will do: the cache's size does not depend on the values
        let x0 = fx.get(&format!("{}.s3.x0", RUNS[1].chunk(c % 6)));
        sampler::commit_chunk(&dit, &text, &mut cache, &x0).unwrap();
        bytes.push(cache.bytes());
    }
    let per_frame = 2 * cfg.blocks * cfg.frame_tokens() * cfg.dim * 4;
    assert_eq!(bytes[0], 3 * per_frame);
    assert_eq!(bytes[3], 12 * per_frame, "the window fills after 4 chunks: {bytes:?}");
    assert!(bytes[3..].iter().all(|&b| b == bytes[3]), "flat once full: {bytes:?}");
    assert_eq!(cache.frames()[..3], [0, 1, 2], "sinks stay");
    assert_eq!(cache.frames()[3..], (15..24).collect::<Vec<_>>()[..], "the newest frames follow");
}

#[test]
fn out_of_order_commits_and_bad_shapes_are_clear_errors() {
    let (dit, text, fx) = setup();
    let mut cache = KvCache::new(CachePolicy::LONG_LIVE, wan_dit_tiny().frame_tokens());
    let x0 = fx.get("a.c0.s3.x0");
    let (_, kv) = dit.forward(&x0, 0.0, &text, &cache, 3).unwrap();
    let err = cache.commit(3, kv).unwrap_err().to_string();
    assert!(err.contains("starting at latent frame 3") && err.contains("in order"), "{err}");
    let wrong = Tensor::zeros((16, 3, 8, 10), DType::F32, &Device::Cpu).unwrap();
    let err = dit.forward(&wrong, 0.0, &text, &cache, 0).err().unwrap().to_string();
    assert!(err.contains("[16, 3, 8, 10]") && err.contains("[16, F, 8, 12]"), "{err}");
    let err = sampler::sample_chunk(&dit, &text, &cache, 5, |_| Ok(x0.clone())).err().unwrap().to_string();
    assert!(err.contains("1 to 4 steps"), "{err}");
    let long = Tensor::zeros((17, 32), DType::F32, &Device::Cpu).unwrap();
    let err = dit.prepare_text(&long).err().unwrap().to_string();
    assert!(err.contains("[17, 32]"), "{err}");
}

#[test]
fn a_missing_or_mismatched_tensor_names_the_file_and_tensor() {
    let err = WanDit::load(
        &dir().join("dit.safetensors"),
        &WanConfig { ffn_dim: 96, ..wan_dit_tiny() },
        &Device::Cpu,
        DType::F32,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("blocks.0.ffn.0.weight") && err.contains("dit.safetensors"), "{err}");
    let err = WanDit::load(&dir().join("missing.safetensors"), &wan_dit_tiny(), &Device::Cpu, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("missing.safetensors") && err.contains("wan-causal"), "{err}");
}

#[test]
fn a_training_checkpoint_loads_its_ema_weights() {
    // the fixture's checkpoint holds the same f16 values under the training wrapper's prefixes
    let (dit, text, fx) = setup();
    let ckpt = WanDit::load(&dir().join("dit_checkpoint.pt"), &wan_dit_tiny(), &Device::Cpu, DType::F32)
        .expect("checkpoint loads");
    let ckpt_text = ckpt.prepare_text(&fx.get("context")).unwrap();
    let cache = KvCache::new(CachePolicy::SELF_FORCING, wan_dit_tiny().frame_tokens());
    let x = fx.get("a.c0.s0.x");
    let (want, _) = dit.forward(&x, STEP_TIMES[0], &text, &cache, 0).unwrap();
    let (got, _) = ckpt.forward(&x, STEP_TIMES[0], &ckpt_text, &cache, 0).unwrap();
    let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(diff, 0.0, "the checkpoint's generator_ema holds the fixture's weights");
}

#[test]
fn unusable_checkpoints_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("self_forcing_dmd.pt");
    std::fs::write(&garbage, b"not a zip file").unwrap();
    let err = WanDit::load(&garbage, &wan_dit_tiny(), &Device::Cpu, DType::F32).err().unwrap().to_string();
    assert!(err.contains("self_forcing_dmd.pt") && err.contains("zip-format"), "{err}");

    // a 14B checkpoint is named as such, not reported as a shape mismatch
    let wide = Tensor::zeros((5120, 16, 1, 2, 2), DType::F16, &Device::Cpu).unwrap();
    let path = tmp.path().join("wan14b.safetensors");
    candle_core::safetensors::save(&[("model.patch_embedding.weight".to_string(), wide)].into_iter().collect(), &path)
        .unwrap();
    let err = WanDit::load(&path, &wan_dit_tiny(), &Device::Cpu, DType::F32).err().unwrap().to_string();
    assert!(err.contains("14B") && err.contains("self_forcing_dmd.pt"), "{err}");
}

#[test]
fn bf16_compute_stays_within_the_reduced_precision_bound() {
    // matmuls and kept keys/values in bf16, the rest f32: every teacher-forced step of the
    // evicting run has cosine similarity ≥ 0.999 with the f32 reference
    let (dit, text, fx) = setup_in(DType::BF16);
    let run = &RUNS[1];
    let mut cache = KvCache::new(run.policy, wan_dit_tiny().frame_tokens());
    let mut worst = 1f64;
    for c in 0..run.chunks {
        let chunk = run.chunk(c);
        for (k, &t) in STEP_TIMES.iter().enumerate() {
            let p = format!("{chunk}.s{k}");
            let (v, _) = dit.forward(&fx.get(&format!("{p}.x")), t, &text, &cache, c * CHUNK).unwrap();
            let (a, b) = (v.flatten_all().unwrap(), fx.get(&format!("{p}.v")).flatten_all().unwrap());
            let dot =
                |x: &Tensor, y: &Tensor| f64::from((x * y).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap());
            worst = worst.min(dot(&a, &b) / (dot(&a, &a) * dot(&b, &b)).sqrt());
        }
        sampler::commit_chunk(&dit, &text, &mut cache, &fx.get(&format!("{chunk}.s3.x0"))).unwrap();
    }
    println!("bf16 worst cosine {worst:.6}");
    assert!(worst >= 0.999, "bf16 cosine {worst}");
    let (k, _) = cache.block(0).unwrap();
    assert_eq!(k.dtype(), DType::BF16, "kept keys are in the compute dtype");
}
