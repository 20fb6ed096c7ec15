//! The headless command line: `spool generate`, `spool bench`.
//!
//! Every input rule is checked before any compute starts; a broken rule is a one-line error that
//! names the problem and the fix, with a non-zero exit code and nothing written.

pub mod args;
pub mod bench;
pub mod models;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{
    Command, Engine, EngineConfig, Event, Finish, FrameCount, GenSettings, ModelSpec, Stats, SwitchAnchor,
};
use crate::export::{ExportOptions, Exporter, Quality};
use crate::model::{Frame, ModelInfo};
use crate::timeline::Timeline;
use args::{GenerateArgs, ModelArgs};

/// An input error: printed as one line, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn input(msg: impl Into<String>) -> anyhow::Error {
    InputError(msg.into()).into()
}

/// Decodes a start image before any compute, so a bad file is an input error.
fn decode_image(path: &Path) -> Result<image::DynamicImage> {
    image::open(path)
        .map_err(|e| input(format!("cannot decode the start image {}: {e}; use a PNG or JPEG", path.display())))
}

/// Resizes and centre-crops an image to the model's frame size.
pub fn fit_image(img: &image::DynamicImage, width: u32, height: u32) -> Frame {
    let fitted = img.resize_to_fill(width, height, image::imageops::FilterType::CatmullRom).to_rgb8();
    Frame::from_rgb8(width, height, fitted.as_raw())
}

/// A session working folder for the frame store, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Result<Scratch> {
        let base = std::env::temp_dir().join(format!("spool-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&base)?;
        Ok(Scratch(base))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Starts an engine and loads the model, waiting until it is ready.
pub fn start_engine(config: EngineConfig, model: &ModelArgs) -> Result<(Engine, ModelInfo)> {
    let engine = Engine::spawn(config, models::factory(models::assets_dir()), None)?;
    engine.send(Command::LoadModel(ModelSpec { name: model.model.clone(), weights: model.weights.clone() }))?;
    loop {
        match engine.events().recv()? {
            Event::ModelLoaded(info) => {
                if let Some(s) = model.steps
                    && s > info.max_steps
                {
                    return Err(input(format!(
                        "{s} denoising steps asked for; {} takes 1 to {}",
                        info.id, info.max_steps
                    )));
                }
                if let Some(g) = model.guidance
                    && g != 1.0
                    && info.default_guidance.is_none()
                {
                    return Err(input(format!("{} has no classifier-free guidance: leave out --guidance", info.id)));
                }
                return Ok((engine, info));
            }
            Event::Error(e) => return Err(input(e.to_string())),
            _ => {}
        }
    }
}

pub fn generate(args: GenerateArgs) -> Result<()> {
    // Input rules first: nothing below runs a model until all of them pass.
    let frames = match (args.frames, args.forever) {
        (Some(f), false) => f,
        (None, true) => FrameCount::Forever,
        (None, false) => return Err(input("say how many frames: --frames N (1 to 10,000,000) or --forever")),
        (Some(_), true) => unreachable!("clap rejects --frames with --forever"),
    };
    let mut timeline = match (&args.prompt, &args.timeline) {
        (Some(p), None) => Timeline::single(p.clone()),
        (None, Some(file)) => {
            let json = std::fs::read_to_string(file)
                .map_err(|e| input(format!("cannot read timeline {}: {e}", file.display())))?;
            Timeline::from_json(&json).map_err(|e| input(format!("{}: {e}", file.display())))?
        }
        _ => unreachable!("clap requires exactly one of --prompt and --timeline"),
    };
    for seg in &args.prompt_at {
        if seg.start == 0 && args.prompt.is_some() {
            return Err(input("--prompt-at 0:… would replace --prompt: give the first prompt with --prompt"));
        }
        timeline.set_segment(seg.clone());
    }
    timeline.validate().map_err(|e| input(e.to_string()))?;
    if args.model.model == "wan-causal" {
        // Its files are the user's download: say what the folder lacks before anything runs.
        let dir = args.model.weights.as_deref().ok_or_else(|| input(models::wan_needs_weights()))?;
        crate::model::wan::files::find(dir).map_err(|e| input(e.to_string()))?;
        if args.image.is_some() {
            return Err(input("wan-causal cannot start from an image yet: drop --image, or use --model spool-tiny"));
        }
        // Checked again by the engine; said here so that nothing waits on loading gigabytes first.
        let max_steps = crate::model::wan::sampler::STEP_TIMES.len() as u32;
        if args.model.steps.is_some_and(|s| s > max_steps) {
            return Err(input(format!(
                "wan-causal samples in 1 to {max_steps} steps (its distilled schedule): use --steps {max_steps} or fewer"
            )));
        }
        if args.model.guidance.is_some_and(|g| g != 1.0) {
            return Err(input(
                "wan-causal has no classifier-free guidance (it is distilled without it): drop --guidance",
            ));
        }
    }
    let image = args.image.as_deref().map(decode_image).transpose()?;
    let metadata = vec![
        ("timeline".to_string(), timeline.to_json()),
        ("seed".to_string(), args.seed.to_string()),
        ("model".to_string(), args.model.model.clone()),
    ];
    // Checks the destination (free, or ours to replace with --force; writable) and stages a hidden
    // temporary output beside it, renamed onto the final name only when the clip is complete.
    let quality = Quality::new(args.quality).map_err(|e| input(e.to_string()))?;
    let options = ExportOptions { fps: 16.0, scale: args.scale, quality, metadata, force: args.force };
    let mut output = Exporter::new(&args.output, options).map_err(|e| input(e.to_string()))?;
    let scratch = Scratch::new()?;
    let config = EngineConfig::new(scratch.path().to_path_buf());
    let (engine, info) = start_engine(config, &args.model)?;
    output.set_fps(args.fps.unwrap_or(info.fps)).map_err(|e| input(e.to_string()))?;
    let start_image = image.map(|img| Arc::new(fit_image(&img, info.width, info.height)));

    engine_stopper(&engine)?;
    engine.send(Command::Generate {
        timeline,
        frames,
        settings: GenSettings {
            steps: args.model.steps,
            guidance: args.model.guidance,
            switch_anchor: (!args.no_switch_redraw).then(SwitchAnchor::default),
            keyframes: (!args.no_keyframes).then(|| args.keyframes.unwrap_or_default()),
            ..GenSettings::seeded(args.seed)
        },
        start_image,
    })?;
    let bar = progress_bar(frames);
    let mut stats = Stats::default();
    let mut failure = None;
    loop {
        match engine.events().recv()? {
            // A model whose latents decode to several frames (wan-causal) may end a run a few
            // frames past the count asked for; the file holds exactly that count.
            Event::Frame(f) if !matches!(frames, FrameCount::Count(n) if output.frames_written() as u64 >= n.get()) => {
                output.push(f.frame.as_ref())?;
                bar.set_position(output.frames_written() as u64);
            }
            Event::Stats(s) => stats = s,
            Event::Warning(w) => bar.suspend(|| eprintln!("warning: {w}")),
            Event::Error(e) => failure = Some(e),
            Event::Finished { how, .. } => {
                bar.finish_and_clear();
                if how == Finish::Stopped {
                    eprintln!("stopped: keeping the {} frames made", output.frames_written());
                }
                break;
            }
            _ => {}
        }
    }
    // What was made is kept, also when generation stopped or failed part-way.
    let done = output.finish()?;
    println!(
        "wrote {} frames ({}×{}, {} fps, {}) to {}",
        done.frames,
        done.width,
        done.height,
        args.fps.unwrap_or(info.fps),
        done.format.name(),
        done.path.display()
    );
    println!("{}", summary(&stats));
    match failure {
        Some(e) => bail!("generation stopped early: {e}"),
        None => Ok(()),
    }
}

/// Checks that `dir` holds a project before the app opens it (the app would start a new one).
pub fn check_project(dir: &Path) -> Result<()> {
    if crate::project::is_project(dir) {
        Ok(())
    } else {
        Err(input(format!("{} is not a Spool project (no manifest.json in it): give a project folder", dir.display())))
    }
}

/// `spool export PROJECT -o FILE`: writes a take (or a range of it) of a saved project.
pub fn export(args: args::ExportArgs) -> Result<()> {
    let quality = Quality::new(args.quality).map_err(|e| input(e.to_string()))?;
    let (_project, manifest, store, _) =
        crate::project::Project::open_existing(&args.project, 64).map_err(|e| input(e.to_string()))?;
    let take_id = args.take.or(manifest.current_take).unwrap_or(0);
    let take = manifest.takes.get(take_id as usize).ok_or_else(|| {
        input(format!("{} has no take {take_id}: it has {} takes", args.project.display(), manifest.takes.len()))
    })?;
    let ids: Vec<_> = take.frame_ids().collect();
    let ids = crate::export::select_frames(&ids, args.range).map_err(|e| input(format!("take {take_id}: {e}")))?;
    let model = manifest.model.as_ref();
    let metadata = crate::export::take_metadata(
        &take.timeline,
        take.seed,
        model.map(|m| m.id.as_str()),
        model.and_then(|m| m.weights_hash.as_deref()),
    );
    let options = ExportOptions { fps: args.fps, scale: args.scale, quality, metadata, force: args.force };
    let bar = ProgressBar::new(ids.len() as u64);
    let done = crate::export::export_stored(&store, ids, &args.output, &options, |p| {
        bar.set_position(p.frames_done as u64);
        std::ops::ControlFlow::Continue(())
    })
    .map_err(|e| match e {
        crate::export::ExportError::AlreadyExists { .. }
        | crate::export::ExportError::FolderNotEmpty { .. }
        | crate::export::ExportError::UnsupportedFormat { .. } => input(e.to_string()),
        e => e.into(),
    })?;
    bar.finish_and_clear();
    println!(
        "wrote {} frames ({}×{}, {}) to {}",
        done.frames,
        done.width,
        done.height,
        done.format.name(),
        done.path.display()
    );
    Ok(())
}

/// Makes Ctrl+C stop the engine cleanly (frames written so far are kept).
fn engine_stopper(engine: &Engine) -> Result<()> {
    let tx = engine.commander();
    ctrlc::set_handler(move || {
        let _ = tx.send(Command::Stop);
    })
    .context("installing the Ctrl+C handler")
}

fn progress_bar(frames: FrameCount) -> ProgressBar {
    let bar = match frames {
        FrameCount::Count(n) => ProgressBar::new(n.get()),
        FrameCount::Forever => ProgressBar::new_spinner(),
    };
    let template = match frames {
        FrameCount::Count(_) => "{bar:40} {pos}/{len} frames  {per_sec}  eta {eta}",
        FrameCount::Forever => "{spinner} {pos} frames  {per_sec}  (Ctrl+C stops)",
    };
    bar.set_style(ProgressStyle::with_template(template).expect("static template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("–".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
}

/// The closing latency summary.
pub fn summary(s: &Stats) -> String {
    format!(
        "first frame {} (without text encoding {}), per frame p50 {} p95 {}, steady {}, cache {:.1} MiB",
        ms(s.first_frame),
        ms(s.first_frame_no_text),
        ms(s.frame_p50),
        ms(s.frame_p95),
        s.steady_fps.map_or("–".into(), |f| format!("{f:.1} fps")),
        s.cache_bytes as f64 / 1048576.0
    )
}
