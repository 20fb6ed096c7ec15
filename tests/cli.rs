//! The CLI's input rules (each broken rule is a one-line error naming the problem and the fix,
//! a non-zero exit code, found before any compute, and nothing written) and what `bench --append` records.

mod parity;

use std::path::Path;
use std::process::Command;

fn spool(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spool"))
        .args(args)
        .current_dir(cwd)
        .env("SPOOL_ASSETS", cwd.join("no-assets"))
        .output()
        .expect("spool runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs with `args` (an output `out` is appended unless given) and checks the error.
fn rejects(args: &[&str], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<&str> = args.to_vec();
    if !args.contains(&"-o") {
        all.extend(["-o", "out"]);
    }
    let (code, err) = spool(&all, dir.path());
    assert_ne!(code, 0, "{args:?} should fail");
    assert_eq!(err.trim_end().lines().count(), 1, "one line for {args:?}, got:\n{err}");
    for word in expect {
        assert!(err.contains(word), "{args:?}: expected {word:?} in {err:?}");
    }
    assert!(!dir.path().join("out").exists(), "{args:?} wrote its output");
}

#[test]
fn frame_counts_out_of_range_are_refused() {
    rejects(&["generate", "--prompt", "a red circle", "--frames", "0"], &["0 frames", "1 to 10000000"]);
    rejects(&["generate", "--prompt", "a red circle", "--frames", "-3"], &["negative"]);
    rejects(&["generate", "--prompt", "a red circle", "--frames=-3"], &["negative"]);
    rejects(&["generate", "--prompt", "a red circle", "--frames", "ten"], &["not a whole number"]);
    rejects(&["generate", "--prompt", "a red circle", "--frames", "10000001"], &["more than 10000000", "--forever"]);
    rejects(&["generate", "--prompt", "a red circle", "--frames", "99999999999999999999999"], &["more than"]);
    rejects(&["generate", "--prompt", "a red circle"], &["--frames N", "--forever"]);
    rejects(&["generate", "--prompt", "a red circle", "--frames", "3", "--forever"], &["--forever"]);
}

#[test]
fn bad_prompts_steps_and_models_are_refused() {
    rejects(&["generate", "--prompt", "", "--frames", "3"], &["prompt is empty"]);
    rejects(&["generate", "--prompt", "   ", "--frames", "3"], &["prompt is empty"]);
    let long = "x".repeat(64 * 1024 + 1);
    rejects(&["generate", "--prompt", &long, "--frames", "3"], &["64 KiB"]);
    rejects(&["generate", "--prompt", "a", "--frames", "3", "--steps", "0"], &["0 denoising steps"]);
    rejects(&["generate", "--prompt", "a", "--frames", "3", "--model", "nope"], &["unknown model", "spool-tiny"]);
    rejects(&["generate", "--prompt", "a", "--frames", "3", "--prompt-at", "five:b"], &["frame number"]);
    rejects(&["generate", "--prompt", "a", "--frames", "3", "--prompt-at", "4:"], &["prompt is empty"]);
}

#[test]
fn wan_causal_says_what_its_folder_lacks() {
    rejects(&["generate", "--prompt", "a", "--frames", "3", "--model", "wan-causal"], &["--weights DIR"]);
    let weights = tempfile::tempdir().unwrap();
    std::fs::write(weights.path().join("self_forcing_dmd.pt"), b"x").unwrap();
    let w = weights.path().to_str().unwrap();
    rejects(
        &["generate", "--prompt", "a", "--frames", "3", "--model", "wan-causal", "--weights", w],
        &["lacks the umT5 text encoder", "tokenizer.json", "taew2_1", "found generator checkpoint", "Download"],
    );
}

#[test]
fn wan_causal_generates_a_real_file_from_a_weights_folder() {
    let weights = tempfile::tempdir().unwrap();
    parity::wan_tiny_folder(weights.path());
    let w = weights.path().to_str().unwrap();
    let base = ["generate", "--model", "wan-causal", "--weights", w, "--prompt", "a red fox runs", "--frames", "10"];
    // What it cannot do yet is refused before anything runs.
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("in.png");
    image::RgbImage::new(96, 64).save(&png).unwrap();
    rejects(&[&base[..], &["--image", png.to_str().unwrap()]].concat(), &["cannot start from an image", "spool-tiny"]);
    rejects(&[&base[..], &["--steps", "5"]].concat(), &["1 to 4 steps", "--steps 4 or fewer"]);
    rejects(&[&base[..], &["--guidance", "3"]].concat(), &["no classifier-free guidance", "drop --guidance"]);
    // 10 frames asked: the engine ends on a latent's last frame (13), the file holds 10.
    let (code, err) = spool(&[&base[..], &["-o", "frames"]].concat(), dir.path());
    assert_eq!(code, 0, "{err}");
    let mut names: Vec<_> = std::fs::read_dir(dir.path().join("frames")).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert_eq!(names.len(), 10, "{names:?}");
    let first = image::open(&names[0]).unwrap().to_rgb8();
    let last = image::open(&names[9]).unwrap().to_rgb8();
    assert_eq!(first.dimensions(), (96, 64));
    assert_ne!(first.as_raw(), last.as_raw(), "the video moves");
}

#[test]
fn missing_or_bad_files_are_refused() {
    rejects(&["generate", "--prompt", "a", "--frames", "3", "--weights", "/no/such/weights"], &["does not exist"]);
    rejects(&["generate", "--prompt", "a", "--frames", "3", "--image", "/no/such.png"], &["does not exist"]);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not an image").unwrap();
    rejects(
        &["generate", "--prompt", "a", "--frames", "3", "--image", bad.to_str().unwrap()],
        &["cannot decode", "bad.png"],
    );
    let tl = dir.path().join("t.json");
    std::fs::write(&tl, r#"{"segments":[{"start":3,"prompt":"x"}]}"#).unwrap();
    rejects(&["generate", "--timeline", tl.to_str().unwrap(), "--frames", "3"], &["frame 0"]);
    std::fs::write(&tl, "{").unwrap();
    rejects(&["generate", "--timeline", tl.to_str().unwrap(), "--frames", "3"], &["not valid JSON"]);
}

#[test]
fn outputs_that_exist_or_cannot_be_written_are_refused() {
    rejects(&["generate", "--prompt", "a", "--frames", "3", "-o", "/proc/spool-out"], &["cannot write"]);
    rejects(&["generate", "--prompt", "a", "--frames", "3", "-o", "no/such/dir/out"], &["does not exist"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/keep.txt"), b"mine").unwrap();
    for force in [false, true] {
        let mut args = vec!["generate", "--prompt", "a", "--frames", "3", "-o", "out"];
        if force {
            args.push("--force");
        }
        let (code, err) = spool(&args, dir.path());
        assert_ne!(code, 0);
        assert!(err.contains("holding files other than exported frames"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("out/keep.txt")).unwrap(), b"mine", "the user's file is untouched");
    }
    std::fs::write(dir.path().join("clip.mp4"), b"old").unwrap();
    let (code, err) = spool(&["generate", "--prompt", "a", "--frames", "3", "-o", "clip.mp4"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("already exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("clip.mp4")).unwrap(), b"old");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "no temporary files are left: {names:?}");
    rejects(&["generate", "--prompt", "a", "--frames", "3", "-o", "clip.mov"], &["unsupported output format", ".mp4"]);
    rejects(&["generate", "--prompt", "a", "--frames", "3", "-o", "out", "--scale", "3"], &["not 1, 2 or 4"]);
    rejects(&["generate", "--prompt", "a", "--frames", "3", "-o", "out", "--fps", "0"], &["frame rate"]);
    for k in ["0:0.5", "4:1.5", "4", "four:0.5"] {
        rejects(&["generate", "--prompt", "a", "--frames", "3", "-o", "out", "--keyframes", k], &["EVERY:STRENGTH"]);
    }
}

#[test]
fn export_refuses_what_is_not_a_project() {
    let dir = tempfile::tempdir().unwrap();
    rejects(&["export", "/no/such.spool", "-o", "out.mp4"], &["does not exist"]);
    std::fs::create_dir(dir.path().join("empty.spool")).unwrap();
    let (code, err) = spool(&["export", "empty.spool", "-o", "out.mp4"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("no manifest.json"), "{err}");
    assert!(!dir.path().join("out.mp4").exists());
    let (code, err) = spool(&["open", "empty.spool"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("not a Spool project"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path().join("empty.spool")).unwrap().count(), 0, "nothing was created");
}

#[test]
fn guidance_out_of_range_is_refused() {
    let base = ["generate", "--prompt", "a", "--frames", "3", "--guidance"];
    let with = |g: &'static str| [&base[..], &[g]].concat();
    rejects(&with("0"), &["guidance scale 0 is out of range", "from 1 to 10"]);
    rejects(&with("nan"), &["guidance scale NaN is out of range", "from 1 to 10"]);
    rejects(&with("11"), &["guidance scale 11 is out of range", "from 1 to 10"]);
    rejects(&with("-2"), &["guidance scale -2 is out of range"]);
    rejects(&with("inf"), &["out of range"]);
    rejects(&with("strong"), &["not a guidance scale", "--guidance 3"]);
    // `spool bench` takes the same flag with the same rule.
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = spool(&["bench", "--frames", "2", "--runs", "1", "--guidance", "0.5"], dir.path());
    assert_ne!(code, 0);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("guidance scale 0.5 is out of range"), "{err}");
    // The flag is documented.
    let out = Command::new(env!("CARGO_BIN_EXE_spool")).args(["generate", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--guidance <G>") && help.contains("Classifier-free guidance"), "{help}");
}

#[test]
fn bench_flags_that_need_another_say_which() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = spool(&["bench", "--no-snapshots"], dir.path());
    assert_ne!(code, 0);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("required arguments were not provided: --branch"), "{err}");
    let (code, err) = spool(&["bench", "--branch", "--export"], dir.path());
    assert_ne!(code, 0);
    assert!(err.contains("'--branch' cannot be used with '--export'"), "{err}");
}

#[test]
fn generate_on_opening_is_for_the_app_only() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = spool(&["--generate", "generate", "-o", "out"], dir.path());
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("'generate' cannot be used with '--generate'"), "{err}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn bench_rows_name_the_weights_they_measured() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let weights = root.join("assets/spool-tiny");
    let out = Command::new(env!("CARGO_BIN_EXE_spool"))
        .args(["bench", "--frames", "64", "--runs", "1", "--append", "rows.md", "--weights"])
        .arg(&weights)
        .current_dir(dir.path())
        .env("SPOOL_ASSETS", root.join("assets"))
        .output()
        .expect("spool runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = std::fs::read_to_string(dir.path().join("rows.md")).unwrap();
    assert!(rows.lines().any(|l| l.contains("| steady_fps |")), "{rows}");
    let named = format!("--weights {}", weights.display());
    assert!(rows.lines().all(|l| l.contains(&named)), "every row names the weights:\n{rows}");
}

/// The frames (RGB bytes) `spool generate --frames 8 -o OUT ARGS…` writes with the shipped model.
fn generated(dir: &Path, out: &str, args: &[&str]) -> Vec<Vec<u8>> {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let base = ["generate", "--frames", "8", "-o", out];
    let status = Command::new(env!("CARGO_BIN_EXE_spool"))
        .args([&base[..], args].concat())
        .current_dir(dir)
        .env("SPOOL_ASSETS", &assets)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("spool runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let mut names: Vec<_> = std::fs::read_dir(dir.join(out)).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    names.iter().map(|n| image::open(n).unwrap().to_rgb8().into_raw()).collect()
}

/// `--no-switch-redraw` turns the switch redraw off: with the shipped model, the frames before a
/// prompt switch are the same either way and the frames after it differ.
#[test]
fn no_switch_redraw_keeps_the_models_own_frames_after_a_switch() {
    let dir = tempfile::tempdir().unwrap();
    let args = |extra: &[&'static str]| {
        let switch =
            ["--prompt", "a red circle on a blue background", "--prompt-at", "4:a yellow star on a black background"];
        [&switch[..], extra].concat()
    };
    let (with, without) =
        (generated(dir.path(), "a", &args(&[])), generated(dir.path(), "b", &args(&["--no-switch-redraw"])));
    assert_eq!(with.len(), 8);
    assert_eq!(with[..4], without[..4], "the frames before the switch at 4");
    assert!((4..8).all(|i| with[i] != without[i]), "the redraw changes every frame after the switch");
}

/// Keyframes are on by default (every 3rd frame from noise 0.7), `--keyframes 4:0.5` sets them and
/// `--no-keyframes` turns them off: the frames before the first keyframe are the same, the keyframe
/// differs.
#[test]
fn keyframes_are_on_by_default_and_set_or_turned_off_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = ["--prompt", "a green square moving right on a black background"];
    let run = |out: &str, extra: &[&'static str]| generated(dir.path(), out, &[&prompt[..], extra].concat());
    let (default, every4, none) = (run("a", &[]), run("b", &["--keyframes", "4:0.5"]), run("c", &["--no-keyframes"]));
    assert_eq!(default[..3], none[..3], "before the first keyframe");
    assert_eq!(every4[..4], none[..4], "before the first keyframe");
    assert!(default[3] != none[3], "frame 3 is the default's first keyframe");
    assert!(every4[4] != none[4], "frame 4 is a keyframe with --keyframes 4:…");
    assert_eq!(default, run("d", &["--keyframes", "3:0.7"]), "the default is 3:0.7");
}
