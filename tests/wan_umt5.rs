//! wan-causal's umT5 text encoder in candle against the Self-Forcing reference.
//!
//! The fixtures in `tests/fixtures/wan_umt5/` come from `training/make_umt5_fixtures.py`: the
//! reference's `umt5_xxl(encoder_only=True)` at a tiny width (vocab 640, dim 32, 4 heads × 8, ffn
//! 64, 2 layers, 32 buckets, a position bias per layer) with random f16 weights, run on the CPU in
//! f32 as `WanTextEncoder` runs it. Case `a` has 7 ids, case `b` 300 (past every log bucket and the
//! distance cap), each run as is and padded with a mask (to 16 and 512 rows; rows past the real
//! ones zeroed). Every comparison: `max |candle − reference| ≤ 1e-4 × rms(reference)` in f32.

mod parity;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use parity::{Fixtures, assert_close, umt5_tiny};
use spool::model::wan::umt5::{UmT5, UmT5Config, relative_bucket};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan_umt5")
}

fn setup() -> (UmT5, Fixtures) {
    let model =
        UmT5::load(&dir().join("encoder.safetensors"), &umt5_tiny(), &Device::Cpu).expect("fixture encoder loads");
    (model, Fixtures::load(&dir().join("cases.safetensors")))
}

fn ids(fx: &Fixtures, case: &str) -> Vec<u32> {
    fx.get(&format!("{case}.ids")).to_vec1::<f32>().unwrap().iter().map(|&x| x as u32).collect()
}

#[test]
fn the_bucket_table_is_the_references() {
    let fx = Fixtures::load(&dir().join("cases.safetensors"));
    let want = fx.get("buckets").to_vec1::<f32>().unwrap();
    let half = (want.len() / 2) as i64;
    for (i, &w) in want.iter().enumerate() {
        let r = i as i64 - half;
        assert_eq!(relative_bucket(r, 32, 128), w as usize, "bucket of r = {r}");
    }
    // the table reaches the last bucket of each direction, so the cap is covered
    assert_eq!((want[0], want[want.len() - 1]), (15.0, 31.0));
}

#[test]
fn the_released_pth_layout_loads_the_same_weights() {
    // the release is a plain torch.save state dict (models_t5_umt5-xxl-enc-bf16.pth)
    let (model, fx) = setup();
    let pth = UmT5::load(&dir().join("encoder.pth"), &umt5_tiny(), &Device::Cpu).expect("the .pth loads");
    let ids = ids(&fx, "a");
    let diff = (pth.encode(&ids).unwrap() - model.encode(&ids).unwrap()).unwrap();
    assert_eq!(diff.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
}

#[test]
fn unpadded_outputs_match_the_reference() {
    let (model, fx) = setup();
    for case in ["a", "b"] {
        let got = model.encode(&ids(&fx, case)).unwrap();
        assert_close(&format!("{case} ({} ids)", got.dim(0).unwrap()), &got, &fx.get(&format!("{case}.out")));
    }
}

#[test]
fn padded_outputs_match_the_references_masked_run() {
    let (model, fx) = setup();
    for case in ["a", "b"] {
        let ids = ids(&fx, case);
        let want = fx.get(&format!("{case}.padded.out"));
        let len = want.dim(0).unwrap();
        let got = model.encode_padded(&ids, len).unwrap();
        let n = ids.len();
        assert_close(
            &format!("{case} padded {len}, real rows"),
            &got.narrow(0, 0, n).unwrap(),
            &want.narrow(0, 0, n).unwrap(),
        );
        let zeros = got.narrow(0, n, len - n).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(zeros, 0.0, "{case}: rows past the real tokens are zero");
        assert_close(&format!("{case} padded {len}, all rows"), &got, &want);
    }
}

#[test]
fn bad_ids_are_refused_with_what_to_do() {
    let (model, _) = setup();
    let err = model.encode(&[5, 640, 1]).unwrap_err().to_string();
    assert!(err.contains("token id 640") && err.contains("position 1") && err.contains("vocabulary of 640"), "{err}");
    let err = model.encode(&[]).unwrap_err().to_string();
    assert!(err.contains("no token ids"), "{err}");
    let err = model.encode_padded(&[5; 17], 16).unwrap_err().to_string();
    assert!(err.contains("17 token ids do not fit 16 rows") && err.contains("truncate"), "{err}");
    // exactly `len` ids fit, with no zero rows
    assert_eq!(model.encode_padded(&[5; 16], 16).unwrap().dims(), &[16, 32]);
}

#[test]
fn a_missing_or_mismatched_tensor_names_the_file_and_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tensors = candle_core::safetensors::load(dir().join("encoder.safetensors"), &Device::Cpu).unwrap();
    tensors.remove("blocks.1.pos_embedding.embedding.weight").expect("the fixture has per-layer position tables");
    let path = tmp.path().join("no_pos.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = UmT5::load(&path, &umt5_tiny(), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("blocks.1.pos_embedding.embedding.weight") && err.contains("no_pos.safetensors"), "{err}");

    let err = UmT5::load(&dir().join("encoder.safetensors"), &UmT5Config { ffn_dim: 96, ..umt5_tiny() }, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("blocks.0.ffn.gate.0.weight") && err.contains("encoder.safetensors"), "{err}");
    let err = UmT5::load(&dir().join("missing.safetensors"), &umt5_tiny(), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("missing.safetensors") && err.contains("umT5"), "{err}");
}

#[test]
fn the_position_bias_matters_in_every_layer() {
    // Guards the fixture itself: with a layer's position table zeroed the output moves well past
    // the tolerance, so the parity tests above would catch a wrong bucket or a missing layer's bias.
    let (_, fx) = setup();
    let ids = ids(&fx, "b");
    let want = fx.get("b.out");
    let rms = want.sqr().unwrap().mean_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap();
    for layer in 0..2 {
        let tmp = tempfile::tempdir().unwrap();
        let mut tensors = candle_core::safetensors::load(dir().join("encoder.safetensors"), &Device::Cpu).unwrap();
        let name = format!("blocks.{layer}.pos_embedding.embedding.weight");
        let zeroed = tensors[&name].zeros_like().unwrap();
        tensors.insert(name, zeroed);
        let path = tmp.path().join("zeroed.safetensors");
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let got = UmT5::load(&path, &umt5_tiny(), &Device::Cpu).unwrap().encode(&ids).unwrap();
        let diff: Tensor = (got - &want).unwrap().abs().unwrap();
        let max = diff.max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(max > 100.0 * 1e-4 * rms, "layer {layer}: zeroing its position bias moves the output only {max}");
    }
}
