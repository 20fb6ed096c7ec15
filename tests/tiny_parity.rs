//! spool-tiny in candle against the PyTorch reference (`training/spool_tiny/model.py`).
//!
//! The fixtures in `tests/fixtures/tiny/` come from `training/make_tiny_fixtures.py`: a reduced config
//! of the same structure with random f16 weights, its inputs and the reference's outputs; those in
//! `tests/fixtures/tiny_ae_f8/` an autoencoder of the 2×2-patched layout. Every comparison requires
//! `max |candle − reference| ≤ 1e-4 × rms(reference)` in f32.

mod parity;

use std::path::{Path, PathBuf};

use candle_core::{Device, IndexOp, Tensor};
use parity::{Fixtures, assert_close};
use spool::model::tiny::{AutoEncoder, Config, EncoderCache, TinyModel, Weights};
use spool::model::{Conditioning, ModelError};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny")
}

fn fixtures(dir: &Path) -> Fixtures {
    Fixtures::load(&dir.join("fixtures.safetensors"))
}

fn cond(fx: &Fixtures, which: &str) -> Conditioning {
    Conditioning::new(fx.get(&format!("cond_{which}.tokens")), fx.get(&format!("cond_{which}.bias")))
}

fn model() -> TinyModel {
    TinyModel::load(&fixture_dir(), &Device::Cpu).expect("fixture model loads")
}

fn check_autoencoder(label: &str, ae: &AutoEncoder, fx: &Fixtures) {
    let z = ae.encode(&fx.get("ae_enc.x")).unwrap();
    assert_close(&format!("{label} encode"), &z, &fx.get("ae_enc.z"));
    let x = ae.decode(&fx.get("ae_dec.z")).unwrap();
    assert_close(&format!("{label} decode"), &x, &fx.get("ae_dec.x"));
}

#[test]
fn autoencoder_matches_reference() {
    check_autoencoder("ae", model().autoencoder(), &fixtures(&fixture_dir()));
}

#[test]
fn patched_autoencoder_matches_reference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_ae_f8");
    let cfg = Config::load(&dir.join("config.json")).expect("f8 config");
    assert_eq!(cfg.ae_patch, 2, "the fixture is the 2×2-patched layout");
    let ae = AutoEncoder::new(&cfg, &Weights::load(&dir.join("ae.safetensors"), &Device::Cpu).unwrap()).unwrap();
    check_autoencoder("ae f8c4", &ae, &fixtures(&dir));
}

/// With one model thread the shipped autoencoder's large convs run as two gemms, one on the helper
/// thread (`spool::beside`); on the helper itself they run whole. Both give the same numbers, bit
/// for bit.
#[test]
fn the_autoencoder_split_over_two_threads_is_exact() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/spool-tiny");
    let cfg = Config::load(&dir.join("config.json")).expect("shipped config");
    let ae = AutoEncoder::new(&cfg, &Weights::load(&dir.join("ae.safetensors"), &Device::Cpu).unwrap()).unwrap();
    let x = Tensor::randn(0f32, 0.5, (3, 128, 128), &Device::Cpu).unwrap().clamp(-1f32, 1f32).unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (z, z_whole) = one_thread.install(|| {
        assert!(spool::beside::splits());
        (ae.encode(&x).unwrap(), spool::beside::join(|| ae.encode(&x).unwrap(), || ()).0)
    });
    assert_eq!(flat(&z), flat(&z_whole), "encode");
    let (y, y_whole) =
        one_thread.install(|| (ae.decode(&z).unwrap(), spool::beside::join(|| ae.decode(&z).unwrap(), || ()).0));
    assert_eq!(flat(&y), flat(&y_whole), "decode");
}

#[test]
fn text_proj_matches_reference() {
    let fx = fixtures(&fixture_dir());
    let m = model();
    let cs = m.net().prepare_cond(&cond(&fx, "a")).unwrap();
    assert_close("text_proj", &cs.ctx, &fx.get("text.ctx_a"));
}

#[test]
fn encoder_steps_and_cache_match_reference() {
    let fx = fixtures(&fixture_dir());
    let m = model();
    let net = m.net();
    let cfg = m.config().clone();
    let (a, b) = (net.prepare_cond(&cond(&fx, "a")).unwrap(), net.prepare_cond(&cond(&fx, "b")).unwrap());
    let lat = fx.get("enc.latents");
    let hs = fx.get("enc.h");
    let n = hs.dim(0).unwrap();
    assert!(n > cfg.n_sink + cfg.window, "the fixture must make the window evict");
    let mut cache = EncoderCache::new(&cfg, &Device::Cpu);
    for s in 0..n {
        let cond = if s < 10 { &a } else { &b };
        let input = (s > 0).then(|| lat.i(s - 1).unwrap());
        let h = net.encode_element(&mut cache, s, input.as_ref(), cond).unwrap();
        assert_close(&format!("encoder h[{s}]"), &h, &hs.i(s).unwrap());
    }
    let held: Vec<usize> = fx.get("enc.cache_elements").to_vec1::<f32>().unwrap().iter().map(|&e| e as usize).collect();
    let mut compared = 0;
    for block in 0..cfg.encoder_blocks {
        for &e in &held {
            let key = |k: &str| format!("enc.cache.{block}.{e}.{k}");
            if fx.has(&key("kf")) {
                let (k, v) = cache
                    .full_kv(block, e)
                    .unwrap()
                    .unwrap_or_else(|| panic!("block {block}: element {e} full k/v not held"));
                assert_close(&key("kf"), &k, &fx.get(&key("kf")));
                assert_close(&key("vf"), &v, &fx.get(&key("vf")));
                compared += 2;
            }
            // Sinks are only ever seen at full resolution, so the cache does not pool them.
            if e >= cfg.n_sink && fx.has(&key("kp")) {
                let (k, v) = cache
                    .pooled_kv(block, e)
                    .unwrap()
                    .unwrap_or_else(|| panic!("block {block}: element {e} pooled k/v not held"));
                assert_close(&key("kp"), &k, &fx.get(&key("kp")));
                assert_close(&key("vp"), &v, &fx.get(&key("vp")));
                compared += 2;
            }
        }
    }
    assert!(compared >= 2 * cfg.encoder_blocks * (cfg.window - 1), "compared only {compared} cached tensors");
}

#[test]
fn decoder_step_matches_reference() {
    let fx = fixtures(&fixture_dir());
    let m = model();
    let net = m.net();
    let cond = net.prepare_cond(&cond(&fx, "a")).unwrap();
    let base = net.decoder_base(&fx.get("dec.h")).unwrap();
    for i in 0..2 {
        let t = fx.get(&format!("dec.t{i}")).to_vec1::<f32>().unwrap()[0];
        let tm = net.time_mod(t).unwrap();
        let v = net.decoder_step(&fx.get("dec.x_t"), &base, &tm, &cond).unwrap();
        assert_close(&format!("decoder v (t = {t})"), &v, &fx.get(&format!("dec.v{i}")));
    }
}

/// Three frames through the model as the engine drives it: denoise, commit (under the conditioning
/// current at commit time), with a prompt switch at frame 2, which re-encodes the newest element
/// under the new prompt as the contract says.
#[test]
fn rollout_matches_reference() {
    let fx = fixtures(&fixture_dir());
    let mut m = model();
    let (a, b) = (cond(&fx, "a"), cond(&fx, "b"));
    let noise = fx.get("roll.noise");
    let want = fx.get("roll.latents");
    m.reset();
    for f in 0..3 {
        let cond = if f < 2 { &a } else { &b };
        let mut k = 0;
        let mut draw = |shape: &[usize]| -> spool::model::Result<Tensor> {
            let t = noise.i((f, k)).unwrap();
            assert_eq!(t.dims(), shape);
            k += 1;
            Ok(t)
        };
        let x0 = m.denoise_with(cond, spool::model::Sampling::steps(4), &mut draw).unwrap();
        assert_close(&format!("rollout frame {f}"), &x0, &want.i(f).unwrap());
        m.commit_tokens(&x0, cond).unwrap();
    }
}

#[test]
fn recache_matches_reference() {
    let fx = fixtures(&fixture_dir());
    let mut m = model();
    let (a, b) = (cond(&fx, "a"), cond(&fx, "b"));
    let lat = fx.get("enc.latents");
    let hs = fx.get("enc.h");
    m.reset();
    for e in 1..hs.dim(0).unwrap() {
        // Element e is committed under the conditioning the reference used for it.
        m.commit_tokens(&lat.i(e - 1).unwrap(), if e < 10 { &a } else { &b }).unwrap();
    }
    let newest = hs.dim(0).unwrap() - 1;
    assert_close("h before re-cache", m.newest_h().unwrap(), &hs.i(newest).unwrap());
    let before = m.cache_bytes();
    m.recache(&b).unwrap();
    assert_close("h after re-cache", m.newest_h().unwrap(), &fx.get("recache.h"));
    assert_eq!(m.cache_bytes(), before, "re-cache keeps the cache size");
}

#[test]
fn cache_memory_is_flat_once_the_window_is_full() {
    let fx = fixtures(&fixture_dir());
    let mut m = model();
    let a = cond(&fx, "a");
    let lat = fx.get("enc.latents");
    let window = m.config().window;
    let mut sizes = Vec::new();
    for e in 0..window + 8 {
        m.commit_tokens(&lat.i(e % lat.dim(0).unwrap()).unwrap(), &a).unwrap();
        sizes.push(m.cache_bytes());
    }
    let full = &sizes[window..];
    assert!(full.iter().all(|&s| s == full[0]), "cache bytes keep growing: {sizes:?}");
}

fn copy_fixture_model(dir: &Path) {
    for f in ["config.json", "model.safetensors", "ae.safetensors"] {
        std::fs::copy(fixture_dir().join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn load_errors_name_the_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture_model(dir.path());
    let load = || TinyModel::load(dir.path(), &Device::Cpu).map(|_| ());

    std::fs::remove_file(dir.path().join("ae.safetensors")).unwrap();
    match load() {
        Err(ModelError::MissingWeights { path, .. }) => {
            assert!(path.ends_with("ae.safetensors"), "{path}")
        }
        other => panic!("missing file: {other:?}"),
    }

    copy_fixture_model(dir.path());
    let bytes = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    match load() {
        Err(ModelError::BadWeights { file, .. }) => {
            assert!(file.ends_with("model.safetensors"), "{file}")
        }
        other => panic!("truncated file: {other:?}"),
    }

    let edit_config = |from: &str, to: &str| {
        copy_fixture_model(dir.path());
        let p = dir.path().join("config.json");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "config.json has no `{from}`");
        std::fs::write(&p, text.replace(from, to)).unwrap();
    };
    edit_config("\"mlp_ratio\": 4", "\"mlp_ratio\": 2");
    match load() {
        Err(ModelError::ShapeMismatch { file, name, expected, got }) => {
            assert!(file.ends_with("model.safetensors") && name.contains("mlp.fc1"), "{file} {name}");
            assert_ne!(expected, got);
        }
        other => panic!("mismatched shapes: {other:?}"),
    }
    edit_config("\"encoder_blocks\": 2", "\"encoder_blocks\": 3");
    match load() {
        Err(ModelError::MissingTensor { file, name }) => {
            assert!(file.ends_with("model.safetensors") && name.starts_with("encoder.blocks.2."), "{file} {name}")
        }
        other => panic!("missing tensor: {other:?}"),
    }
    edit_config("\"version\": 1", "\"version\": 2");
    match load() {
        Err(ModelError::BadWeights { file, reason }) => {
            assert!(file.ends_with("config.json") && reason.contains("v2"), "{file}: {reason}")
        }
        other => panic!("wrong version: {other:?}"),
    }
}
