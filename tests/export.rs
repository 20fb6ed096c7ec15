//! Export round trips and failure modes.
//!
//! MP4 files are checked with the real ffprobe/ffmpeg (a test-only dependency that the test script
//! installs): stream properties, exact frame count and rate, `moov` before `mdat`, metadata, and a
//! decode back to yuv420p compared with our own BT.709 conversion of the source frames. GIFs are
//! decoded back with the `gif` crate, PNGs with `image` plus a hand-rolled chunk reader. Failure
//! tests check that nothing is left behind: existing output, cancel, a full filesystem (a tiny
//! tmpfs; needs root, as CI is), an unwritable destination.

use std::fs;
use std::ops::ControlFlow;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

mod common;

use common::{Mount, is_root};
use image::{Rgb, RgbImage};
use spool::export::{ExportError, ExportFormat, ExportOptions, Exporter, Quality, cancel_flag, export};

const FPS: f32 = 16.0;

/// Moving structured frames: two gradients, a moving bright disc, a moving dark bar, a checker
/// patch with fine detail, and a slow hue drift.
fn make_frame(w: u32, h: u32, i: usize) -> RgbImage {
    let t = i as f64;
    let (wf, hf) = (f64::from(w), f64::from(h));
    let (cx, cy) = (wf * (0.3 + 0.4 * (t / 20.0).sin().abs()), hf * (0.5 + 0.25 * (t / 9.0).cos()));
    let bar_x = ((t * 3.0) as u32) % w;
    RgbImage::from_fn(w, h, |x, y| {
        let (xf, yf) = (f64::from(x), f64::from(y));
        let mut r = 40.0 + 180.0 * xf / wf;
        let mut g = 30.0 + 200.0 * yf / hf;
        let mut b = 128.0 + 90.0 * ((xf - yf) / 17.0 + t / 6.0).sin();
        if (xf - cx).hypot(yf - cy) < wf.min(hf) / 5.0 {
            (r, g, b) = (250.0, 230.0, 60.0);
        }
        if x.abs_diff(bar_x) < 4 {
            (r, g, b) = (20.0, 20.0, 90.0);
        }
        if x < w / 4 && y < h / 4 && ((x / 2) + (y / 2)) % 2 == 0 {
            (r, g, b) = (230.0, 230.0, 230.0);
        }
        Rgb([r as u8, g as u8, b as u8])
    })
}

fn frames(w: u32, h: u32, n: usize) -> Vec<RgbImage> {
    (0..n).map(|i| make_frame(w, h, i)).collect()
}

fn ok_frames(v: Vec<RgbImage>) -> impl Iterator<Item = Result<RgbImage, std::io::Error>> {
    v.into_iter().map(Ok)
}

fn no_progress(_: spool::export::Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn metadata() -> Vec<(String, String)> {
    vec![
        ("prompt".into(), r#"[{"t":0,"text":"a café at dusk"},{"t":2.5,"text":"rain"}]"#.into()),
        ("seed".into(), "42".into()),
        ("model".into(), "spool-tiny".into()),
    ]
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn require_ffmpeg() {
    for tool in ["ffprobe", "ffmpeg"] {
        let found = Command::new(tool).arg("-version").output().is_ok_and(|o| o.status.success());
        assert!(found, "`{tool}` was not found: the MP4 tests need ffmpeg (e.g. `apt-get install -y ffmpeg`)");
    }
}

fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Top-level MP4 boxes, checking that they tile the file exactly.
fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        assert!(at + 8 <= bytes.len(), "truncated box header at {at}");
        let mut size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let name = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        if size == 1 {
            size = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        } else if size == 0 {
            size = (bytes.len() - at) as u64;
        }
        assert!(size >= 8 && at as u64 + size <= bytes.len() as u64, "box {name} at {at} overruns the file");
        names.push(name);
        at += size as usize;
    }
    names
}

/// The test's own BT.709 limited-range conversion (kept independent of the exporter's code).
fn expected_planes(img: &RgbImage, w: usize, h: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let px = |x: usize, y: usize| {
        let p = img.get_pixel(x.min(sw - 1) as u32, y.min(sh - 1) as u32).0;
        (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]))
    };
    let luma = |(r, g, b): (f64, f64, f64)| 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let mut y = Vec::with_capacity(w * h);
    for j in 0..h {
        for i in 0..w {
            y.push(16.0 + 219.0 / 255.0 * luma(px(i, j)));
        }
    }
    let (mut u, mut v) = (Vec::new(), Vec::new());
    for j in 0..h / 2 {
        for i in 0..w / 2 {
            let mut acc = (0.0, 0.0, 0.0);
            for (di, dj) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = px(2 * i + di, 2 * j + dj);
                acc = (acc.0 + p.0 / 4.0, acc.1 + p.1 / 4.0, acc.2 + p.2 / 4.0);
            }
            let l = luma(acc);
            u.push(128.0 + 224.0 / 255.0 * (acc.2 - l) / 1.8556);
            v.push(128.0 + 224.0 / 255.0 * (acc.0 - l) / 1.5748);
        }
    }
    (y, u, v)
}

fn psnr(expected: &[f64], got: &[u8]) -> f64 {
    assert_eq!(expected.len(), got.len());
    let mse = expected.iter().zip(got).map(|(e, &g)| (e - f64::from(g)).powi(2)).sum::<f64>() / expected.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-10)).log10()
}

/// Decodes an MP4 to raw yuv420p planes with ffmpeg.
fn decode_yuv(path: &Path) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg decode failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn mp4_streams_probes_and_decodes_back() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    let (w, h, n) = (128u32, 128u32, 48usize);
    let src = frames(w, h, n);
    let options = ExportOptions { fps: FPS, metadata: metadata(), ..Default::default() };
    let summary = export(ok_frames(src.clone()), &path, &options, no_progress).unwrap();
    assert_eq!((summary.format, summary.frames, summary.width, summary.height), (ExportFormat::Mp4, n, w, h));
    assert_eq!(dir_entries(dir.path()), ["clip.mp4"], "no temporary file may remain");

    let bytes = fs::read(&path).unwrap();
    assert_eq!(summary.bytes, bytes.len() as u64);
    let boxes = top_level_boxes(&bytes);
    let moov = boxes.iter().position(|b| b == "moov").expect("no moov box");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("no mdat box");
    assert!(moov < mdat, "moov must precede mdat for fast start, got {boxes:?}");

    let probe = ffprobe(&path);
    let streams = probe["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    let s = &streams[0];
    println!(
        "ffprobe: codec {} profile {} level {} pix_fmt {} range {} space {} primaries {} transfer {}",
        s["codec_name"],
        s["profile"],
        s["level"],
        s["pix_fmt"],
        s["color_range"],
        s["color_space"],
        s["color_primaries"],
        s["color_transfer"]
    );
    assert_eq!(s["codec_name"], "h264");
    let profile = s["profile"].as_str().unwrap();
    assert!(profile == "High" || profile == "Main", "profile {profile} is neither High nor Main");
    assert_eq!(s["level"], 30, "128x128 at 16 fps fits level 3.0");
    assert_eq!(s["pix_fmt"], "yuv420p");
    assert_eq!((s["width"].as_u64(), s["height"].as_u64()), (Some(128), Some(128)));
    assert_eq!(s["nb_read_frames"], n.to_string(), "decoded frame count");
    assert_eq!(s["nb_frames"], n.to_string(), "container frame count");
    assert_eq!(s["r_frame_rate"], "16/1");
    assert_eq!(s["avg_frame_rate"], "16/1");
    assert_eq!(s["color_range"], "tv");
    assert_eq!(s["color_space"], "bt709");
    let duration: f64 = s["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - n as f64 / f64::from(FPS)).abs() < 1e-3, "duration {duration}");

    let tags = &probe["format"]["tags"];
    assert_eq!(tags["seed"], "42", "tags: {tags}");
    assert_eq!(tags["model"], "spool-tiny");
    assert_eq!(tags["prompt"], metadata()[0].1.as_str());
    assert!(tags["encoder"].as_str().unwrap().starts_with("Spool"), "tags: {tags}");

    let yuv = decode_yuv(&path);
    let frame_len = (w * h * 3 / 2) as usize;
    assert_eq!(yuv.len(), frame_len * n, "ffmpeg decoded a different number of frames");
    let (mut worst_y, mut sum_y, mut worst_c) = (f64::INFINITY, 0.0, f64::INFINITY);
    for (i, img) in src.iter().enumerate() {
        let f = &yuv[i * frame_len..(i + 1) * frame_len];
        let (ey, eu, ev) = expected_planes(img, w as usize, h as usize);
        let (yp, rest) = f.split_at((w * h) as usize);
        let (up, vp) = rest.split_at(rest.len() / 2);
        let py = psnr(&ey, yp);
        worst_y = worst_y.min(py);
        sum_y += py;
        worst_c = worst_c.min(psnr(&eu, up)).min(psnr(&ev, vp));
    }
    println!("luma PSNR: mean {:.2} dB, worst {worst_y:.2} dB; chroma worst {worst_c:.2} dB", sum_y / n as f64);
    assert!(worst_y >= 35.0, "luma PSNR {worst_y:.2} dB < 35 dB at default quality");
    assert!(worst_c >= 35.0, "chroma PSNR {worst_c:.2} dB < 35 dB: colour conversion or tagging is off");
}

#[test]
fn mp4_quality_changes_size_and_fidelity() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    let src = frames(96, 64, 16);
    let mut sizes = Vec::new();
    for q in [20u8, 95] {
        let path = dir.path().join(format!("q{q}.mp4"));
        let options = ExportOptions { quality: Quality::new(q).unwrap(), ..Default::default() };
        sizes.push(export(ok_frames(src.clone()), &path, &options, no_progress).unwrap().bytes);
    }
    println!("sizes at quality 20 and 95: {sizes:?}");
    assert!(sizes[0] * 2 < sizes[1], "quality does not reach the encoder: {sizes:?}");
}

#[test]
fn mp4_odd_sizes_are_padded_and_scale_applies() {
    require_ffmpeg();
    let dir = tempfile::tempdir().unwrap();
    for (scale, expect) in [(1u32, (46u64, 34u64)), (2, (90, 66))] {
        let path = dir.path().join(format!("odd{scale}.mp4"));
        let options = ExportOptions { scale, ..Default::default() };
        let summary = export(ok_frames(frames(45, 33, 8)), &path, &options, no_progress).unwrap();
        assert_eq!((u64::from(summary.width), u64::from(summary.height)), expect);
        let probe = ffprobe(&path);
        let s = &probe["streams"][0];
        assert_eq!((s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap()), expect);
        assert_eq!(s["nb_read_frames"], "8");
    }
    // The 2x upscale is a real resample: its decoded luma must match a Lanczos upscale of the source
    // closely, not just have the right size.
    let yuv = decode_yuv(&dir.path().join("odd2.mp4"));
    let src = image::imageops::resize(&make_frame(45, 33, 0), 90, 66, image::imageops::FilterType::Lanczos3);
    let (ey, _, _) = expected_planes(&src, 90, 66);
    let p = psnr(&ey, &yuv[..90 * 66]);
    assert!(p >= 35.0, "upscaled frame PSNR {p:.2}");
}

#[test]
fn gif_loops_with_cap_and_timing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.gif");
    let src = frames(128, 128, 64);
    let options = ExportOptions { fps: FPS, metadata: metadata(), ..Default::default() };
    let summary = export(ok_frames(src.clone()), &path, &options, no_progress).unwrap();
    let size = fs::metadata(&path).unwrap().len();
    println!("64 frames 128x128 GIF: {size} bytes");
    assert!(size <= 1_500_000, "GIF is {size} bytes, over the 1.5 MB cap");
    assert_eq!(summary.bytes, size);

    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts.read_info(fs::File::open(&path).unwrap()).unwrap();
    assert_eq!((dec.width(), dec.height()), (128, 128));
    assert_eq!(dec.repeat(), gif::Repeat::Infinite);
    let (mut count, mut total_delay, mut worst) = (0usize, 0u32, f64::INFINITY);
    while let Some(frame) = dec.read_next_frame().unwrap() {
        total_delay += u32::from(frame.delay);
        assert_eq!((frame.width, frame.height), (128, 128));
        // Palette fidelity: compare the decoded RGB with the source.
        let expected: Vec<f64> = src[count].as_raw().iter().map(|&v| f64::from(v)).collect();
        let got: Vec<u8> = frame.buffer.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        worst = worst.min(psnr(&expected, &got));
        count += 1;
    }
    println!("GIF RGB PSNR worst {worst:.2} dB, total delay {total_delay} cs");
    assert_eq!(count, 64);
    assert_eq!(total_delay, 400, "64 frames at 16 fps must last 4 s");
    assert!(worst >= 28.0, "GIF palette too coarse: {worst:.2} dB");
}

/// PNG chunks (type, data) of a file, checking CRC-framing only by length.
fn png_text(bytes: &[u8]) -> Vec<(String, String)> {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let mut at = 8;
    let mut out = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        let key_end = data.iter().position(|&b| b == 0).unwrap_or(0);
        match kind {
            b"tEXt" => out.push((
                String::from_utf8_lossy(&data[..key_end]).into(),
                String::from_utf8_lossy(&data[key_end + 1..]).into(),
            )),
            b"iTXt" => {
                // keyword\0 flag method lang\0 translated\0 text
                let rest = &data[key_end + 3..];
                let lang_end = rest.iter().position(|&b| b == 0).unwrap();
                let rest = &rest[lang_end + 1..];
                let tr_end = rest.iter().position(|&b| b == 0).unwrap();
                out.push((
                    String::from_utf8_lossy(&data[..key_end]).into(),
                    String::from_utf8(rest[tr_end + 1..].to_vec()).unwrap(),
                ));
            }
            _ => {}
        }
        at += 12 + len;
    }
    out
}

#[test]
fn png_sequence_is_lossless_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frames/");
    let src = frames(64, 48, 5);
    let options = ExportOptions { metadata: metadata(), ..Default::default() };
    let summary = export(ok_frames(src.clone()), &out, &options, no_progress).unwrap();
    assert_eq!(summary.format, ExportFormat::PngSequence);
    assert_eq!(dir_entries(dir.path()), ["frames"]);
    let names = dir_entries(&out);
    assert_eq!(names, (0..5).map(|i| format!("frame_{i:06}.png")).collect::<Vec<_>>());
    for (i, name) in names.iter().enumerate() {
        let bytes = fs::read(out.join(name)).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert!(img == src[i], "frame {i} is not lossless");
        let text = png_text(&bytes);
        for (k, v) in metadata() {
            assert!(text.contains(&(k.clone(), v.clone())), "frame {i} lacks {k}: {text:?}");
        }
        assert!(text.iter().any(|(k, v)| k == "Software" && v.starts_with("Spool")));
    }
    // Re-exporting into the same folder needs force, and with force replaces the old frames.
    let err = export(ok_frames(frames(64, 48, 2)), &out, &options, no_progress).unwrap_err();
    assert!(matches!(err, ExportError::AlreadyExists { .. }), "{err}");
    let forced = ExportOptions { force: true, ..options.clone() };
    export(ok_frames(frames(64, 48, 2)), &out, &forced, no_progress).unwrap();
    assert_eq!(dir_entries(&out).len(), 2);
    assert_eq!(dir_entries(dir.path()), ["frames"]);
    // A folder with other files is never wiped, even with force.
    fs::write(out.join("notes.txt"), "mine").unwrap();
    let err = export(ok_frames(frames(64, 48, 2)), &out, &forced, no_progress).unwrap_err();
    assert!(matches!(err, ExportError::FolderNotEmpty { .. }), "{err}");
    assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn existing_output_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["clip.mp4", "clip.gif"] {
        let path = dir.path().join(name);
        fs::write(&path, b"precious").unwrap();
        let err = export(ok_frames(frames(32, 32, 3)), &path, &ExportOptions::default(), no_progress).unwrap_err();
        assert!(matches!(err, ExportError::AlreadyExists { .. }), "{err}");
        assert!(err.to_string().contains("--force"), "message should say how to overwrite: {err}");
        assert_eq!(fs::read(&path).unwrap(), b"precious");
        let forced = ExportOptions { force: true, ..Default::default() };
        export(ok_frames(frames(32, 32, 3)), &path, &forced, no_progress).unwrap();
        assert_ne!(fs::read(&path).unwrap(), b"precious");
    }
    assert_eq!(dir_entries(dir.path()), ["clip.gif", "clip.mp4"]);
}

#[test]
fn cancel_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["c.mp4", "c.gif", "c/"] {
        let path = dir.path().join(name);
        let err = export(ok_frames(frames(64, 64, 20)), &path, &ExportOptions::default(), |p| {
            if p.frames_done >= 5 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap_err();
        assert!(matches!(err, ExportError::Cancelled { frames: 5, .. }), "{err}");
        assert!(dir_entries(dir.path()).is_empty(), "{name}: left {:?}", dir_entries(dir.path()));
    }
    // A cancel raised before the export starts does no work.
    let flag = AtomicBool::new(true);
    let err =
        export(ok_frames(frames(8, 8, 3)), dir.path().join("d.mp4"), &ExportOptions::default(), cancel_flag(&flag))
            .unwrap_err();
    assert!(matches!(err, ExportError::Cancelled { frames: 0, .. }), "{err}");
    // Dropping an unfinished exporter is a cancel too.
    let mut ex = Exporter::new(dir.path().join("e.gif"), ExportOptions::default()).unwrap();
    ex.push(make_frame(16, 16, 0)).unwrap();
    drop(ex);
    assert!(dir_entries(dir.path()).is_empty(), "left {:?}", dir_entries(dir.path()));
}

#[test]
fn bad_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.mp4");
    let err = export(std::iter::empty::<Result<RgbImage, std::io::Error>>(), &path, &Default::default(), no_progress)
        .unwrap_err();
    assert!(matches!(err, ExportError::NoFrames), "{err}");
    let mixed = vec![make_frame(32, 32, 0), make_frame(32, 30, 1)];
    let err = export(ok_frames(mixed), &path, &Default::default(), no_progress).unwrap_err();
    assert!(matches!(err, ExportError::FrameSizeMismatch { index: 1, .. }), "{err}");
    let failing = vec![Ok(make_frame(32, 32, 0)), Err(std::io::Error::other("model crashed"))].into_iter();
    let err = export(failing, &path, &Default::default(), no_progress).unwrap_err();
    assert!(matches!(err, ExportError::Source { index: 1, .. }), "{err}");
    assert!(err.to_string().contains("model crashed"));
    let err =
        export(ok_frames(frames(8, 8, 1)), dir.path().join("x.webm"), &Default::default(), no_progress).unwrap_err();
    assert!(matches!(err, ExportError::UnsupportedFormat { .. }), "{err}");
    assert!(dir_entries(dir.path()).is_empty(), "left {:?}", dir_entries(dir.path()));
    // Beyond H.264's 3840x2160 after scaling: refused at the first frame, before any resampling.
    let big = ExportOptions { scale: 4, ..Default::default() };
    let mut ex = Exporter::new(dir.path().join("big.mp4"), big).unwrap();
    let err = ex.push(RgbImage::new(1000, 600)).unwrap_err();
    assert!(matches!(err, ExportError::TooLarge { .. }), "{err}");
    drop(ex);
    assert!(dir_entries(dir.path()).is_empty(), "left {:?}", dir_entries(dir.path()));
    // A destination folder that does not exist is reported before any frame is produced.
    let err = Exporter::new(dir.path().join("missing/x.mp4"), Default::default()).err().unwrap();
    assert!(matches!(err, ExportError::Unwritable { .. }), "{err}");
}

#[test]
fn accepts_model_frames() {
    let dir = tempfile::tempdir().unwrap();
    let img = make_frame(16, 8, 3);
    let frame = spool::model::Frame::from_rgb8(16, 8, img.as_raw());
    let out = dir.path().join("f/");
    export(vec![Ok::<_, std::io::Error>(frame)], &out, &Default::default(), no_progress).unwrap();
    let back = image::open(out.join("frame_000000.png")).unwrap().to_rgb8();
    assert!(back == img);
}

#[test]
fn full_disk_leaves_no_file() {
    if !is_root() {
        eprintln!("SKIPPED full_disk_leaves_no_file: mounting a tiny tmpfs needs root (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("tiny");
    let _mount = Mount::tmpfs(&mnt, "size=64k");
    for name in ["full.mp4", "full.gif", "full/"] {
        let path = mnt.join(name);
        let err = export(ok_frames(frames(128, 128, 96)), &path, &ExportOptions::default(), no_progress).unwrap_err();
        println!("{name}: {err}");
        assert!(matches!(err, ExportError::DiskFull { .. }), "{name}: expected DiskFull, got {err:?}");
        assert!(err.to_string().contains("space"), "{err}");
        assert!(dir_entries(&mnt).is_empty(), "{name}: left {:?}", dir_entries(&mnt));
    }
}

#[test]
fn read_only_destination_is_reported() {
    if !is_root() {
        eprintln!("SKIPPED read_only_destination_is_reported: mounting a read-only tmpfs needs root (CI runs as root)");
        return;
    }
    // Root ignores permission bits, so only a read-only filesystem really refuses a write here.
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("ro");
    let _mount = Mount::tmpfs(&mnt, "ro,size=64k");
    let err = Exporter::new(mnt.join("clip.mp4"), ExportOptions::default()).err().unwrap();
    assert!(matches!(err, ExportError::Unwritable { .. }), "{err:?}");
    assert!(err.to_string().contains("choose another destination"), "{err}");
}
