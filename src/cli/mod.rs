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

use crate::engine::{Command, Engine, EngineConfig, Event, Finish, FrameCount, GenSettings, ModelSpec, Stats};
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

/// Where the frames go, checked before anything is generated.
struct Output {
    dir: PathBuf,
}

impl Output {
    /// Checks that `path` can take the clip: free (or `force` and ours to replace) and writable.
    fn check(path: &Path, force: bool) -> Result<Output> {
        if path.exists() {
            if !force {
                return Err(input(format!(
                    "{} already exists: pass --force to replace it, or choose another output",
                    path.display()
                )));
            }
            if path.is_dir() && !holds_only_frames(path) {
                return Err(input(format!(
                    "{} is a folder holding other files than frames: refusing to replace it; choose an empty or new folder",
                    path.display()
                )));
            }
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(input(format!("cannot write {}: folder {} does not exist", path.display(), parent.display())));
        }
        let probe = parent.join(format!(".spool-write-test-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .map_err(|e| input(format!("cannot write to {}: {e}; choose a writable output", parent.display())))?;
        let _ = std::fs::remove_file(&probe);
        Ok(Output { dir: path.to_path_buf() })
    }

    /// Creates (or empties) the folder; called only once everything else has been checked.
    fn create(&self) -> Result<()> {
        if self.dir.is_file() {
            std::fs::remove_file(&self.dir)?;
        } else if self.dir.is_dir() {
            std::fs::remove_dir_all(&self.dir)?;
        }
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))
    }

    fn write(&self, index: u64, frame: &Frame) -> Result<()> {
        let path = self.dir.join(format!("frame_{index:06}.png"));
        image::save_buffer(&path, &frame.to_rgb8(), frame.width, frame.height, image::ExtendedColorType::Rgb8)
            .with_context(|| format!("writing {}", path.display()))
    }
}

fn holds_only_frames(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().all(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("frame_") && name.ends_with(".png")
        })
    })
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
pub fn start_engine(store: &Path, model: &ModelArgs) -> Result<(Engine, ModelInfo)> {
    let engine = Engine::spawn(EngineConfig::new(store.to_path_buf()), models::factory(models::assets_dir()), None)?;
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
    let image = args.image.as_deref().map(decode_image).transpose()?;
    let output = Output::check(&args.output, args.force)?;
    let scratch = Scratch::new()?;
    let (engine, info) = start_engine(scratch.path(), &args.model)?;
    let start_image = image.map(|img| Arc::new(fit_image(&img, info.width, info.height)));

    // Everything checked: write.
    output.create()?;
    engine_stopper(&engine)?;
    engine.send(Command::Generate {
        timeline,
        frames,
        settings: GenSettings { seed: args.seed, steps: args.model.steps },
        start_image,
    })?;
    let bar = progress_bar(frames);
    let mut stats = Stats::default();
    let mut written = 0u64;
    loop {
        match engine.events().recv()? {
            Event::Frame(f) => {
                output.write(f.index, &f.frame)?;
                written += 1;
                bar.set_position(written);
            }
            Event::Stats(s) => stats = s,
            Event::Warning(w) => bar.suspend(|| eprintln!("warning: {w}")),
            Event::Error(e) => {
                bar.abandon();
                bail!("{e} ({written} frames were written to {})", output.dir.display());
            }
            Event::Finished { how, .. } => {
                bar.finish_and_clear();
                if how == Finish::Stopped {
                    eprintln!("stopped: {written} frames kept in {}", output.dir.display());
                }
                break;
            }
            _ => {}
        }
    }
    println!("wrote {written} frames ({}×{}, {} fps) to {}", info.width, info.height, info.fps, output.dir.display());
    println!("{}", summary(&stats));
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
