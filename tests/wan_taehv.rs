//! The TAEHV decoder for Wan 2.1 (`taew2_1`) in candle against madebyollin/taehv's reference.
//!
//! The fixtures in `tests/fixtures/wan_taehv/` come from `training/make_taehv_fixtures.py`: the
//! reference's own decoder Sequential at widths [12, 8, 6, 4] with random f16 weights (the first
//! TGrow stored with twice its rows, as `patch_tgrow_layers` accepts), fed 4 latents [16, 4, 6]
//! one per call through `StreamingTAEHV.decode`: 1 + 4 + 4 + 4 frames [3, 32, 48] in [0, 1]. Spool's
//! frames are in [−1, 1] (×2 − 1); they are mapped back for the comparison. Every comparison:
//! `max |candle − reference| ≤ 1e-4 × rms(reference)` in f32.

mod parity;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use parity::{Fixtures, assert_close};
use spool::model::wan::taehv::{Taehv, TaehvStream};

const LATENTS: usize = 4;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan_taehv")
}

fn weights() -> PathBuf {
    dir().join("taew2_1_tiny.safetensors")
}

fn setup() -> (Taehv, Fixtures) {
    let dec = Taehv::load(&weights(), &Device::Cpu).expect("fixture decoder loads");
    (dec, Fixtures::load(&dir().join("decode.safetensors")))
}

fn latent(fx: &Fixtures, t: usize) -> Tensor {
    fx.get("latents").get(t).unwrap()
}

/// Spool's [−1, 1] frame in the reference's [0, 1].
fn unit(frame: &Tensor) -> Tensor {
    frame.affine(0.5, 0.5).unwrap()
}

/// Decodes the fixture's latents one call each; the frames of every call.
fn decode_all(dec: &Taehv, fx: &Fixtures) -> Vec<Vec<Tensor>> {
    let mut stream = TaehvStream::new();
    (0..LATENTS).map(|t| stream.decode_next(dec, &latent(fx, t)).unwrap()).collect()
}

#[test]
fn widths_come_from_the_file() {
    let (dec, _) = setup();
    assert_eq!(dec.widths(), [12, 8, 6, 4]);
}

#[test]
fn streaming_matches_the_reference_frame_by_frame() {
    let (dec, fx) = setup();
    let want = fx.get("stream.frames");
    let counts: Vec<usize> = fx.get("stream.counts").to_vec1::<f32>().unwrap().iter().map(|&c| c as usize).collect();
    assert_eq!(counts, [1, 4, 4, 4], "the reference's frames per call");
    let mut worst = 0f32;
    let mut i = 0;
    for (t, frames) in decode_all(&dec, &fx).iter().enumerate() {
        assert_eq!(frames.len(), counts[t], "frames of latent {t}");
        for frame in frames {
            assert_eq!(frame.dims(), [3, 32, 48]);
            worst = worst.max(assert_close(&format!("latent {t} frame {i}"), &unit(frame), &want.get(i).unwrap()));
            i += 1;
        }
    }
    assert_eq!(i, 13);
    println!("worst ratio {worst:.2e}");
}

#[test]
fn the_last_latent_matches_the_whole_sequence_decode() {
    let (dec, fx) = setup();
    // the reference's two paths agree (checked by the script; recorded)
    let diff = fx.get("whole.max_diff").to_vec1::<f32>().unwrap()[0];
    assert!(diff <= 1e-5, "reference: decode_video vs streaming differ by {diff}");
    let last = decode_all(&dec, &fx).pop().unwrap();
    let got = Tensor::stack(&last.iter().map(unit).collect::<Vec<_>>(), 0).unwrap();
    assert_close("decode_video frames 9..12", &got, &fx.get("whole.last"));
}

#[test]
fn frames_are_in_minus_one_to_one() {
    let (dec, fx) = setup();
    let frames: Vec<Tensor> = decode_all(&dec, &fx).into_iter().flatten().collect();
    let all = Tensor::stack(&frames, 0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (lo, hi) = all.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    // the fixture's weights clamp a few percent of values at each end
    assert_eq!((lo, hi), (-1.0, 1.0));
}

#[test]
fn reset_starts_a_new_stream() {
    let (dec, fx) = setup();
    let mut stream = TaehvStream::new();
    let first = stream.decode_next(&dec, &latent(&fx, 0)).unwrap();
    let second = stream.decode_next(&dec, &latent(&fx, 1)).unwrap();
    assert_eq!((first.len(), second.len()), (1, 4));
    // latent 0 again without a reset is a later latent: 4 frames
    assert_eq!(stream.decode_next(&dec, &latent(&fx, 0)).unwrap().len(), 4);
    stream.reset();
    let again = stream.decode_next(&dec, &latent(&fx, 0)).unwrap();
    assert_eq!(again.len(), 1);
    let same = (&again[0] - &first[0]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(same, 0.0, "the first frame after a reset is the first frame of a new stream");
    // and the state was really cleared: the next latent decodes as in the first stream
    let next = stream.decode_next(&dec, &latent(&fx, 1)).unwrap();
    for (a, b) in next.iter().zip(&second) {
        assert_eq!((a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    }
}

/// The fixture's weights as stored (f16), to write variants of the file.
fn stored() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(weights(), &Device::Cpu).unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, tensors: &HashMap<String, Tensor>) -> PathBuf {
    let path = dir.path().join(name);
    candle_core::safetensors::save(tensors, &path).unwrap();
    path
}

#[test]
fn a_tgrow_with_extra_rows_keeps_its_last_rows() {
    const KEY: &str = "decoder.7.conv.weight";
    let (dec, fx) = setup();
    let mut w = stored();
    assert_eq!(w[KEY].dims(), [24, 12, 1, 1], "the fixture stores the first TGrow with 2·n0 rows");
    let tmp = tempfile::tempdir().unwrap();

    // the last 12 rows alone (the layer as built) decode the same frames, bit for bit
    let full = w[KEY].clone();
    w.insert(KEY.into(), full.narrow(0, 12, 12).unwrap());
    let exact = Taehv::load(&write(&tmp, "exact.safetensors", &w), &Device::Cpu).unwrap();
    let ours = decode_all(&dec, &fx).concat();
    for (a, b) in decode_all(&exact, &fx).concat().iter().zip(&ours) {
        assert_eq!((a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    }

    // the first 12 rows are another layer: the frames differ
    w.insert(KEY.into(), full.narrow(0, 0, 12).unwrap());
    let first_rows = Taehv::load(&write(&tmp, "first.safetensors", &w), &Device::Cpu).unwrap();
    let other = decode_all(&first_rows, &fx).concat();
    let diff = (&other[12] - &ours[12]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff > 1e-2, "the rows kept matter ({diff})");

    // fewer rows than the layer needs: refused, naming the tensor
    w.insert(KEY.into(), full.narrow(0, 0, 6).unwrap());
    let err = Taehv::load(&write(&tmp, "short.safetensors", &w), &Device::Cpu).err().expect("refused").to_string();
    assert!(err.contains(KEY) && err.contains("short.safetensors"), "{err}");
}

#[test]
fn a_file_for_another_latent_space_is_a_clear_error() {
    let mut w = stored();
    // Wan 2.2's taew2_2 takes 48 latent channels (patch 2); its first conv is the tell
    w.insert("decoder.1.weight".into(), Tensor::zeros((12, 48, 3, 3), candle_core::DType::F16, &Device::Cpu).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let err = Taehv::load(&write(&tmp, "taew2_2.safetensors", &w), &Device::Cpu).err().expect("refused").to_string();
    println!("{err}");
    for part in ["taew2_2.safetensors", "decoder.1.weight", "48", "not taew2_1"] {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
}

#[test]
fn missing_files_and_tensors_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Taehv::load(&tmp.path().join("taew2_1.safetensors"), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("taew2_1.safetensors") && err.contains("madebyollin/taehv"), "{err}");
    let mut w = stored();
    w.remove("decoder.16.conv.2.weight");
    let err = Taehv::load(&write(&tmp, "partial.safetensors", &w), &Device::Cpu).err().unwrap().to_string();
    assert!(err.contains("decoder.16.conv.2.weight") && err.contains("partial.safetensors"), "{err}");
}

#[test]
fn bad_latents_are_refused() {
    let (dec, fx) = setup();
    let mut stream = TaehvStream::new();
    let wrong_channels = Tensor::zeros((48, 4, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(stream.decode_next(&dec, &wrong_channels).is_err());
    stream.decode_next(&dec, &latent(&fx, 0)).unwrap();
    let other_size = Tensor::zeros((16, 4, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
    let err = stream.decode_next(&dec, &other_size).err().unwrap().to_string();
    assert!(err.contains("reset"), "{err}");
}
