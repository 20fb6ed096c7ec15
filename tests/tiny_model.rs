//! spool-tiny driven through the `VideoModel` interface, as the engine drives it: determinism,
//! resuming a take from its stored latents, prompt switches, image-to-video, argument errors,
//! classifier-free guidance.
//!
//! Uses the small parity-fixture checkpoint (`tests/fixtures/tiny/`, random weights of the contract's
//! structure) and the shipped text encoder (`assets/minilm/`).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use candle_core::{Device, Tensor};
use spool::model::tiny::{SpoolTiny, TinyModel, sampling_times};
use spool::model::{
    CommitConditioning, Conditioning, Frame, FrameNoise, Latent, ModelError, Place, Redraw, Sampling, VideoModel,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> SpoolTiny {
    SpoolTiny::load(&root().join("tests/fixtures/tiny"), &root().join("assets/minilm"), &Device::Cpu)
        .expect("spool-tiny loads")
}

fn values(l: &Latent) -> Vec<f32> {
    l.0.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Generates `n` frames from a reset cache: (latents, decoded frames).
fn generate(m: &mut SpoolTiny, prompt: &str, seed: u64, n: usize, steps: u32) -> (Vec<Latent>, Vec<Frame>) {
    let cond = m.encode_prompt(prompt).unwrap().cond;
    m.reset().unwrap();
    let (mut latents, mut frames) = (Vec::new(), Vec::new());
    for f in 0..n {
        let lat = m.denoise(&cond, &mut FrameNoise::new(seed, f as u64), Sampling::steps(steps)).unwrap().remove(0);
        frames.extend(m.decode(&lat).unwrap());
        m.commit(std::slice::from_ref(&lat), CommitConditioning::same(&cond)).unwrap();
        latents.push(lat);
    }
    (latents, frames)
}

#[test]
fn info_describes_the_model() {
    let m = model();
    let info = m.info();
    assert_eq!((info.id.as_str(), info.width, info.height, info.chunk_frames), ("spool-tiny", 128, 128, 1));
    assert_eq!((info.default_steps, info.max_steps, info.max_prompt_tokens), (4, 8, 32));
    assert_eq!(info.device, "cpu");
    assert!(info.weights_hash.as_ref().is_some_and(|h| h.starts_with("sip128:")), "{:?}", info.weights_hash);
}

#[test]
fn frames_are_deterministic_and_a_take_resumes_from_its_latents() {
    let mut m = model();
    let prompt = "a red circle moves left on a blue background";
    let (lat_a, frames_a) = generate(&mut m, prompt, 42, 4, 3);
    let (lat_b, frames_b) = generate(&mut m, prompt, 42, 4, 3);
    for (a, b) in lat_a.iter().zip(&lat_b) {
        assert_eq!(values(a), values(b), "same seed, same frames");
    }
    assert_eq!(frames_a, frames_b);
    for f in &frames_a {
        assert_eq!((f.width, f.height, f.planar.len()), (128, 128, 3 * 128 * 128));
        assert!(f.planar.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
    }
    assert_eq!(lat_a[0].0.dims(), [16, 8, 8]);
    let (lat_c, _) = generate(&mut m, prompt, 43, 1, 3);
    assert_ne!(values(&lat_a[0]), values(&lat_c[0]), "another seed, another frame");

    // Rebuild the cache from the stored latents and continue: frame 3 comes out bit-exactly.
    let cond = m.encode_prompt(prompt).unwrap().cond;
    m.reset().unwrap();
    m.commit(&lat_a[..3], CommitConditioning::same(&cond)).unwrap();
    let again = m.denoise(&cond, &mut FrameNoise::new(42, 3), Sampling::steps(3)).unwrap().remove(0);
    assert_eq!(values(&again), values(&lat_a[3]));
}

#[test]
fn prompt_switch_recache_and_cache_size() {
    let mut m = model();
    let a = m.encode_prompt("a green square on a black background").unwrap();
    let b = m.encode_prompt("a yellow triangle bounces").unwrap();
    assert!(!a.truncated);
    let long = m.encode_prompt(&"many words ".repeat(40)).unwrap();
    assert!(long.truncated, "a prompt over 32 tokens is cut and says so");
    m.reset().unwrap();
    let mut sizes = Vec::new();
    for f in 0..16u64 {
        let cond = if f < 10 { &a.cond } else { &b.cond };
        if f == 10 {
            m.recache(cond).unwrap();
        }
        let lat = m.denoise(cond, &mut FrameNoise::new(1, f), Sampling::steps(2)).unwrap();
        m.commit(&lat, CommitConditioning::same(cond)).unwrap();
        sizes.push(m.cache_bytes());
    }
    assert!(sizes[12..].iter().all(|&s| s == sizes[12]), "cache grows after the window is full: {sizes:?}");
    // A switch without re-cache re-encodes only the newest element; both paths give finite frames.
    let lat = m.denoise(&a.cond, &mut FrameNoise::new(1, 16), Sampling::steps(2)).unwrap();
    assert!(values(&lat[0]).iter().all(|v| v.is_finite()));
}

/// The switch redraw (SDEdit): at strength 1 it is a fresh frame 0 of the prompt from the same
/// noise, whatever the source and the cache hold; at a small strength it stays near the source;
/// it never touches the cache; an out-of-range strength is an error.
#[test]
fn a_redraw_is_frame_zero_at_full_strength_and_leaves_the_cache() {
    let mut m = model();
    let a = m.encode_prompt("a green square on a black background").unwrap().cond;
    let b = m.encode_prompt("a yellow triangle bounces").unwrap().cond;
    let (latents, _) = generate(&mut m, "a green square on a black background", 3, 5, 2);
    let source = &latents[4];
    let redraw = |m: &mut SpoolTiny, s: f32| {
        m.redraw(
            source,
            &b,
            &mut FrameNoise::new(9, 0),
            Sampling::steps(2),
            Redraw { strength: s, place: Place::Layout },
        )
    };
    let full = redraw(&mut m, 1.0).unwrap().expect("spool-tiny redraws");
    let near = redraw(&mut m, 0.02).unwrap().unwrap();
    // The cache is as it was: the next frame is the one a take without the redraws makes.
    let next = m.denoise(&a, &mut FrameNoise::new(3, 5), Sampling::steps(2)).unwrap().remove(0);
    let mut plain = model();
    generate(&mut plain, "a green square on a black background", 3, 5, 2);
    let want = plain.denoise(&a, &mut FrameNoise::new(3, 5), Sampling::steps(2)).unwrap().remove(0);
    assert_eq!(values(&next), values(&want), "a redraw leaves the cache alone");
    // Strength 1: frame 0 of prompt b from the redraw's noise stream.
    plain.reset().unwrap();
    let frame0 = plain.denoise(&b, &mut FrameNoise::new(9, 0), Sampling::steps(2)).unwrap().remove(0);
    let diff = |x: &Latent, y: &Latent| max_abs_diff(&values(x), &values(y));
    assert!(diff(&full, &frame0) < 1e-5, "strength 1 is frame 0: {}", diff(&full, &frame0));
    assert!(diff(&near, source) < diff(&full, source) / 4.0, "strength 0.02 stays near the source");
    for bad in [0.0, -0.5, 1.5, f32::NAN] {
        assert!(matches!(redraw(&mut m, bad), Err(ModelError::Invalid(_))), "strength {bad}");
    }
}

#[test]
fn image_to_video_starts_from_an_encoded_frame() {
    let mut m = model();
    let cond = m.encode_prompt("a blue circle").unwrap().cond;
    let rgb: Vec<u8> = (0..128 * 128).flat_map(|i| [(i % 128) as u8 * 2, (i / 128) as u8, 200]).collect();
    let image = Frame::from_rgb8(128, 128, &rgb);
    let z = m.encode_image(&image).unwrap();
    assert_eq!(z.0.dims(), [16, 8, 8]);
    m.reset().unwrap();
    m.commit(std::slice::from_ref(&z), CommitConditioning::same(&cond)).unwrap();
    let next = m.denoise(&cond, &mut FrameNoise::new(5, 1), Sampling::steps(4)).unwrap();
    assert!(values(&next[0]).iter().all(|v| v.is_finite()));
    let small = Frame::from_rgb8(64, 64, &rgb[..64 * 64 * 3]);
    assert!(matches!(m.encode_image(&small), Err(ModelError::Invalid(_))));
}

#[test]
fn bad_arguments_are_errors() {
    let mut m = model();
    let cond = m.encode_prompt("x").unwrap().cond;
    for steps in [0, 9] {
        assert!(matches!(
            m.denoise(&cond, &mut FrameNoise::new(0, 0), Sampling::steps(steps)),
            Err(ModelError::Invalid(_))
        ));
    }
    let wrong = Latent(candle_core::Tensor::zeros((4, 8, 8), candle_core::DType::F32, &Device::Cpu).unwrap());
    assert!(matches!(m.decode(&wrong), Err(ModelError::Invalid(_))));
    assert!(matches!(m.commit(&[wrong], CommitConditioning::same(&cond)), Err(ModelError::Invalid(_))));
    let missing = SpoolTiny::load(Path::new("/nonexistent/spool-tiny"), &root().join("assets/minilm"), &Device::Cpu);
    assert!(matches!(missing, Err(ModelError::MissingWeights { .. })));
}

#[test]
fn stage_benchmark_runs() {
    let cfg = spool::model::tiny::Config {
        d_model: 64,
        head_dim: 16,
        encoder_blocks: 1,
        decoder_blocks: 1,
        ..Default::default()
    };
    let t = spool::model::tiny::bench_random(&cfg, Sampling::steps(2), 3, &Device::Cpu).unwrap();
    assert_eq!((t.steps, t.frames), (2, 3));
    for s in [t.median, t.fastest] {
        assert!(s.encoder_ms > 0.0 && s.decoder_step_ms > 0.0 && s.ae_decode_ms > 0.0);
        assert!(s.frame_ms >= s.encoder_ms + s.ae_decode_ms);
    }
    assert!(t.fastest.frame_ms <= t.median.frame_ms);
}

/// Every tensor a noise source handed out, in order.
type Draws = Rc<RefCell<Vec<Tensor>>>;

/// Draws of a `FrameNoise`, recorded so a reference computation can replay them.
fn recording(seed: u64, frame: u64) -> (impl FnMut(&[usize]) -> spool::model::Result<Tensor>, Draws) {
    let mut noise = FrameNoise::new(seed, frame);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let draw = move |shape: &[usize]| {
        let t = noise.normal(shape, &Device::Cpu)?;
        log.borrow_mut().push(t.clone());
        Ok(t)
    };
    (draw, seen)
}

/// The SPEC sampler for the newest frame, written out from `TinyNet`'s public pieces with separate
/// decoder calls: `v = v_c` without guidance, `v = v_u + g·(v_c − v_u)` with `(g, empty prompt)` at
/// the steps with `t ≥ m.config().guidance_min_t`.
fn reference_denoise(
    m: &TinyModel,
    cond: &Conditioning,
    steps: u32,
    guidance: Option<(f32, &Conditioning)>,
    noise: &[Tensor],
) -> Tensor {
    let min_t = f64::from(m.config().guidance_min_t);
    let net = m.net();
    let base = net.decoder_base(m.newest_h().expect("the newest element is encoded")).unwrap();
    let cs = net.prepare_cond(cond).unwrap();
    let us = guidance.map(|(_, u)| net.prepare_cond(u).unwrap());
    let ts = sampling_times(steps as usize, m.config().sampler_shift);
    let mut draws = noise.iter();
    let mut x = draws.next().unwrap().clone();
    let mut x0 = x.clone();
    for (k, &t) in ts.iter().enumerate() {
        let tm = net.time_mod(t as f32).unwrap();
        let v_c = net.decoder_step(&x, &base, &tm, &cs).unwrap();
        let v = match (&us, guidance) {
            (Some(us), Some((g, _))) if t >= min_t => {
                let v_u = net.decoder_step(&x, &base, &tm, us).unwrap();
                let (c, u) = (
                    v_c.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    v_u.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                );
                let v: Vec<f32> = c.iter().zip(&u).map(|(c, u)| u + g * (c - u)).collect();
                Tensor::from_vec(v, v_c.dims(), &Device::Cpu).unwrap()
            }
            _ => v_c,
        };
        x0 = (&x - v.affine(t, 0.0).unwrap()).unwrap();
        if let Some(&tn) = ts.get(k + 1) {
            let eps = draws.next().unwrap();
            x = (x0.affine(1.0 - tn, 0.0).unwrap() + eps.affine(tn, 0.0).unwrap()).unwrap();
        }
    }
    assert!(draws.next().is_none(), "every draw was used");
    x0
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// The largest absolute difference between two value lists of one length.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max)
}

/// `max |got − want|` over the RMS of `want`.
fn err_over_rms(got: &[f32], want: &[f32]) -> f32 {
    let rms = (want.iter().map(|x| x * x).sum::<f32>() / want.len() as f32).sqrt();
    max_abs_diff(got, want) / rms
}

#[test]
fn guidance_one_is_the_unguided_sampler_bit_for_bit() {
    let mut m = model();
    let info = m.info().clone();
    assert_eq!(info.default_guidance, Some(1.0), "a config without guidance_scale means 1");
    let prompt = "a red circle moves left on a blue background";
    let cond = m.encode_prompt(prompt).unwrap().cond;
    // The same checkpoint without the empty prompt: it cannot run an unconditional pass at all.
    let mut plain = TinyModel::load(&root().join("tests/fixtures/tiny"), &Device::Cpu).unwrap();
    assert!(plain.unconditional().is_none());
    let guided = |g: f32| Sampling::guided(3, g);
    m.reset().unwrap();
    plain.reset();
    for f in 0..4u64 {
        let one = m.denoise(&cond, &mut FrameNoise::new(9, f), guided(1.0)).unwrap().remove(0);
        let (mut draw, seen) = recording(9, f);
        let x0 = plain.denoise_with(&cond, Sampling::steps(3), &mut draw).unwrap();
        assert_eq!(values(&one), flat(&plain.to_latent(&x0).unwrap().0), "frame {f}: guidance 1 = no guidance");
        // And both are the SPEC loop over single decoder calls, exactly.
        let want = reference_denoise(&plain, &cond, 3, None, &seen.borrow());
        assert_eq!(flat(&x0), flat(&want), "frame {f}: the unguided loop");
        assert_eq!(m.decode(&one).unwrap(), vec![plain.decode_frame(&plain.to_latent(&x0).unwrap()).unwrap()]);
        m.commit(std::slice::from_ref(&one), CommitConditioning::same(&cond)).unwrap();
        plain.commit_tokens(&x0, &cond).unwrap();
    }
    // Guidance 3 runs the second pass and changes the frame.
    let three = m.denoise(&cond, &mut FrameNoise::new(9, 4), guided(3.0)).unwrap().remove(0);
    let one = m.denoise(&cond, &mut FrameNoise::new(9, 4), guided(1.0)).unwrap().remove(0);
    let diff = max_abs_diff(&values(&three), &values(&one));
    assert!(diff > 1e-3, "guidance 3 left the frame unchanged (max diff {diff})");
    assert!(
        matches!(plain.denoise_with(&cond, guided(3.0), &mut |s| FrameNoise::new(0, 0).normal(s, &Device::Cpu)), Err(ModelError::Invalid(m)) if m.contains("set_unconditional"))
    );
}

#[test]
fn a_guided_step_is_the_unconditional_velocity_plus_g_times_the_difference() {
    let mut m = model();
    let empty = m.core().unconditional().expect("the empty prompt is prepared at load").clone();
    // MiniLM on "" is [CLS][SEP]: two tokens, bias 0, the same as encoding "" as a prompt.
    assert_eq!(empty.tokens.dims(), [2, 384]);
    assert_eq!(flat(&empty.bias), vec![0.0, 0.0]);
    assert_eq!(flat(&empty.tokens), flat(&m.encode_prompt("").unwrap().cond.tokens));
    let a = m.encode_prompt("a green square moving up on a black background").unwrap().cond;
    // With one model thread the two passes run side by side (the helper thread takes one), with
    // more as one batch: both are checked, whatever RAYON_NUM_THREADS the tests run with.
    let mut made: Vec<Vec<Vec<f32>>> = Vec::new();
    for threads in [1, 2] {
        m.reset().unwrap();
        let core = m.core_mut();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        made.push(Vec::new());
        pool.install(|| {
            assert_eq!(spool::beside::splits(), threads == 1);
            let mut worst = 0f32;
            for f in 0..3u64 {
                for steps in [1, 3] {
                    let (mut draw, seen) = recording(21, f);
                    let got = core.denoise_with(&a, Sampling::guided(steps, 3.0), &mut draw).unwrap();
                    made.last_mut().unwrap().push(flat(&got));
                    let want = reference_denoise(core, &a, steps, Some((3.0, &empty)), &seen.borrow());
                    let err = err_over_rms(&flat(&got), &flat(&want));
                    println!("{threads} threads, frame {f}, {steps} steps: max err / rms {err:.2e}");
                    worst = worst.max(err);
                }
                // The batched passes differ from separate calls by float rounding at most.
                assert!(worst <= 1e-5, "{threads} threads: guided sampling differs from v_u + 3(v_c − v_u): {worst:e}");
                let (mut draw, _) = recording(21, f);
                let x0 = core.denoise_with(&a, Sampling::steps(2), &mut draw).unwrap();
                core.commit_tokens(&x0, &a).unwrap();
            }
        });
    }
    // Side by side and as one batch: the same numbers, bit for bit.
    assert!(made[0] == made[1], "the passes side by side differ from the batch");
    let core = m.core_mut();
    for g in [0.0, 0.5, 10.5, f32::NAN] {
        let r = core.denoise_with(&a, Sampling::guided(2, g), &mut |s| FrameNoise::new(0, 0).normal(s, &Device::Cpu));
        assert!(matches!(r, Err(ModelError::Invalid(ref m)) if m.contains("guidance")), "guidance {g}: {r:?}");
    }
}

/// The fixture model copied to `dir`, loaded with `"key": value` added to its config.json.
fn fixture_with(dir: &Path, key: &str, value: &str) -> spool::model::Result<SpoolTiny> {
    let config = std::fs::read_to_string(root().join("tests/fixtures/tiny/config.json")).unwrap();
    for f in ["model.safetensors", "ae.safetensors"] {
        std::fs::copy(root().join("tests/fixtures/tiny").join(f), dir.join(f)).unwrap();
    }
    let text = config.replacen("\"default_steps\": 4,", &format!("\"default_steps\": 4, \"{key}\": {value},"), 1);
    assert_ne!(text, config);
    std::fs::write(dir.join("config.json"), text).unwrap();
    SpoolTiny::load(dir, &root().join("assets/minilm"), &Device::Cpu)
}

#[test]
fn guidance_scale_in_config_is_the_default_and_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    let with = |value: &str| fixture_with(dir.path(), "guidance_scale", value);
    let (a, b) = (with("2.5").unwrap(), with("1").unwrap());
    assert_eq!(a.info().default_guidance, Some(2.5));
    assert_eq!(b.info().default_guidance, Some(1.0));
    assert_ne!(a.info().weights_hash, b.info().weights_hash, "the config is hashed with the weights");
    for bad in ["0", "0.5", "10.5", "-3", "1e40"] {
        match with(bad) {
            Err(e @ ModelError::BadWeights { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("config.json") && msg.contains("guidance_scale"), "{bad}: {msg}");
            }
            Err(e) => panic!("{bad}: {e}"),
            Ok(_) => panic!("guidance_scale {bad} was accepted"),
        }
    }
}

#[test]
fn a_frame_from_noise_is_guided_from_guidance_min_t_up_and_a_redraw_or_a_settling_frame_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut limited = fixture_with(dir.path(), "guidance_min_t", "0.8").unwrap();
    let mut every = model();
    assert_eq!(every.core().config().guidance_min_t, 0.0, "absent means every step");
    let empty = limited.core().unconditional().expect("prepared at load").clone();
    let a = limited.encode_prompt("a green square moving up on a black background").unwrap().cond;
    limited.reset().unwrap();
    every.reset().unwrap();
    let (lim, all) = (limited.core_mut(), every.core_mut());
    let ts = sampling_times(4, lim.config().sampler_shift);
    assert!(ts[1] > 0.8 && ts[2] < 0.8, "two steps of four are guided: {ts:?}");
    let guided = Sampling::guided(4, 3.0);
    for f in 0..3u64 {
        let (mut draw, seen) = recording(5, f);
        let got = flat(&lim.denoise_with(&a, guided, &mut draw).unwrap());
        let want = flat(&reference_denoise(lim, &a, 4, Some((3.0, &empty)), &seen.borrow()));
        let err = err_over_rms(&got, &want);
        assert!(err <= 1e-5, "frame {f}: not v_c alone below t = 0.8 ({err:e})");
        let (mut draw, _) = recording(5, f);
        let full = flat(&all.denoise_with(&a, guided, &mut draw).unwrap());
        let diff = max_abs_diff(&got, &full);
        assert!(diff > 1e-4, "frame {f}: the same as guiding every step (max diff {diff})");
        // A frame that settles a prompt change is guided at every step.
        let (mut draw, _) = recording(5, f);
        let settling = flat(&lim.denoise_with(&a, Sampling { settling: true, ..guided }, &mut draw).unwrap());
        assert_eq!(settling, full, "frame {f}: settling, yet not guided at every step");
        let (mut draw, _) = recording(7, f);
        let x0 = lim.denoise_with(&a, Sampling::steps(2), &mut draw).unwrap();
        lim.commit_tokens(&x0, &a).unwrap();
        all.commit_tokens(&x0, &a).unwrap();
        // A redraw starts below the interval: it guides every step, as before.
        let redraw = |core: &mut TinyModel| {
            let (mut draw, _) = recording(11, f);
            flat(&core.redraw_with(&x0, &a, guided, 0.5, &mut draw).unwrap())
        };
        assert_eq!(redraw(lim), redraw(all), "frame {f}: a redraw is guided at every step");
    }
    for bad in ["-0.1", "1.5"] {
        let e = fixture_with(dir.path(), "guidance_min_t", bad).err().expect("out of range");
        assert!(e.to_string().contains("config.json") && e.to_string().contains("guidance_min_t"), "{bad}: {e}");
    }
}
