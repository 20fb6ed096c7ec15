//! Command-line arguments and the input rules they must pass before any compute starts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::engine::{FrameCount, Keyframes, MAX_FRAMES};
use crate::timeline::{MAX_PROMPT_BYTES, Segment, check_prompt};

#[derive(Debug, Parser)]
#[command(
    name = "spool",
    version,
    about = "Real-time autoregressive text-to-video. With no subcommand, opens the app.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// Open the app and press Generate (the example prompt) as soon as the model has loaded.
    #[arg(long)]
    pub generate: bool,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Generate a clip headlessly and write it to a folder of PNG frames.
    Generate(GenerateArgs),
    /// Run the fixed benchmark workload and print one JSON line per figure.
    Bench(BenchArgs),
    /// Export a take of a saved project to MP4, GIF or a PNG folder.
    Export(ExportArgs),
    /// Open a saved project in the app.
    Open(OpenArgs),
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The project folder (`NAME.spool`).
    #[arg(value_parser = parse_existing_path)]
    pub project: PathBuf,
}

/// Model selection shared by the commands that load one.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model: spool-tiny (default, runs on a CPU) or wan-causal.
    #[arg(long, default_value = "spool-tiny", value_parser = parse_model)]
    pub model: String,
    /// Weights folder or file (default: the model's own location).
    #[arg(long, value_name = "PATH", value_parser = parse_existing_path)]
    pub weights: Option<PathBuf>,
    /// Denoising steps per frame (default: the model's).
    #[arg(long, value_parser = parse_steps)]
    pub steps: Option<u32>,
    /// Classifier-free guidance scale, 1 to 10 (default: the model's; 1 = no guidance). Higher
    /// follows the prompt more closely; above 1 each denoising step runs the decoder twice.
    #[arg(long, value_name = "G", value_parser = parse_guidance, allow_hyphen_values = true)]
    pub guidance: Option<f32>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to generate, e.g. "a red circle moving left on a blue background".
    #[arg(long, value_parser = parse_prompt, required_unless_present = "timeline")]
    pub prompt: Option<String>,
    /// Number of frames, 1 to 10,000,000.
    #[arg(long, value_name = "N", value_parser = parse_frames, allow_hyphen_values = true, conflicts_with = "forever")]
    pub frames: Option<FrameCount>,
    /// Run until Ctrl+C; what was written is kept.
    #[arg(long)]
    pub forever: bool,
    /// Random seed (same seed and settings give the same frames).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Start image for image-to-video (any size; it is resized and centre-cropped).
    #[arg(long, value_name = "START.png", value_parser = parse_existing_path)]
    pub image: Option<PathBuf>,
    /// Change the prompt at a frame: FRAME:"prompt" (repeatable).
    #[arg(long = "prompt-at", value_name = "FRAME:PROMPT", value_parser = parse_prompt_at)]
    pub prompt_at: Vec<Segment>,
    /// Prompt timeline as JSON (see the README for the format).
    #[arg(long, value_name = "FILE", value_parser = parse_existing_path, conflicts_with = "prompt")]
    pub timeline: Option<PathBuf>,
    /// At a prompt switch, keep the model's own frames: no redraw for the new prompt. (By default the
    /// frame before a switch is redrawn for the new prompt and the next 12 frames blend into it, so a
    /// new object shows; without it spool-tiny keeps the old object.)
    #[arg(long)]
    pub no_switch_redraw: bool,
    /// Keyframes against drift (default 3:0.7): every EVERY-th frame is redrawn by the model for the
    /// prompt from noise STRENGTH, its object kept where it is, so moving objects keep their shapes
    /// (a spinning one is redrawn where it stands; a growing, shrinking or fading one is left to change,
    /// then held as it settled).
    #[arg(long, value_name = "EVERY:STRENGTH", value_parser = parse_keyframes)]
    pub keyframes: Option<Keyframes>,
    /// No keyframes: every frame is the model's own continuation.
    #[arg(long, conflicts_with = "keyframes")]
    pub no_keyframes: bool,
    /// Output: clip.mp4 (H.264), clip.gif, or a folder (dir/) of PNG frames.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Replace an existing output.
    #[arg(long)]
    pub force: bool,
    /// Upscale the output by 2 or 4 (Lanczos), since small models render small frames.
    #[arg(long, default_value_t = 1, value_parser = parse_scale)]
    pub scale: u32,
    /// Encoding quality, 1 to 100.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Playback rate of the output (default: the model's).
    #[arg(long, value_parser = parse_fps)]
    pub fps: Option<f32>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The project folder (`NAME.spool`).
    #[arg(value_parser = parse_existing_path)]
    pub project: PathBuf,
    /// Output: clip.mp4, clip.gif or a folder (dir/) of PNG frames.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Take to export (default: the project's current take).
    #[arg(long)]
    pub take: Option<u32>,
    /// Frames A..B of the take (B excluded).
    #[arg(long, value_name = "A..B", value_parser = crate::export::parse_range)]
    pub range: Option<(u64, u64)>,
    #[arg(long, default_value_t = 1, value_parser = parse_scale)]
    pub scale: u32,
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    #[arg(long, default_value_t = 16.0, value_parser = parse_fps)]
    pub fps: f32,
    #[arg(long)]
    pub force: bool,
}

fn parse_scale(s: &str) -> Result<u32, String> {
    match s.trim() {
        "1" => Ok(1),
        "2" => Ok(2),
        "4" => Ok(4),
        _ => Err(format!("scale \"{s}\" is not 1, 2 or 4")),
    }
}

fn parse_keyframes(s: &str) -> Result<Keyframes, String> {
    let bad =
        || format!("\"{s}\" is not EVERY:STRENGTH: use a frame interval ≥ 1 and a strength in (0, 1], e.g. 4:0.5");
    let (every, strength) = s.split_once(':').ok_or_else(bad)?;
    let every: u32 = every.trim().parse().map_err(|_| bad())?;
    let strength: f32 = strength.trim().parse().map_err(|_| bad())?;
    let keys = Keyframes { every, strength };
    keys.check().map_err(|_| bad())?;
    Ok(keys)
}

fn parse_fps(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(f) if f.is_finite() && f > 0.0 && f <= 240.0 => Ok(f),
        _ => Err(format!("\"{s}\" is not a frame rate: use a number from 1 to 240, e.g. --fps 16")),
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Frames per run (≥ 64 so steady fps is meaningful).
    #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    pub frames: u64,
    /// Repeated runs; figures are medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub runs: u32,
    /// Append a row per figure to this markdown file (e.g. BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    pub append: Option<PathBuf>,
    /// Benchmark export (MP4 and GIF encoding) instead of generation.
    #[arg(long)]
    pub export: bool,
    /// Benchmark rewinding instead: generate --frames frames, then branch keeping 96% and half of
    /// them and time each branch's first new frame (the cache is put back where the take stood).
    #[arg(long, conflicts_with = "export")]
    pub branch: bool,
    /// With --branch: rebuild the cache from frame 0 instead of from the nearest cache snapshot.
    #[arg(long, requires = "branch")]
    pub no_snapshots: bool,
}

pub const MODEL_NAMES: &[&str] = &["spool-tiny", "wan-causal"];

fn parse_model(s: &str) -> Result<String, String> {
    if MODEL_NAMES.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(format!("unknown model \"{s}\": choose one of {}", MODEL_NAMES.join(", ")))
    }
}

fn parse_frames(s: &str) -> Result<FrameCount, String> {
    let t = s.trim();
    if t.starts_with('-') && t[1..].chars().all(|c| c.is_ascii_digit()) && t.len() > 1 {
        return Err(format!("{t} is negative: give a frame count from 1 to {MAX_FRAMES}, or --forever"));
    }
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("\"{s}\" is not a whole number: give a frame count from 1 to {MAX_FRAMES}, or --forever"));
    }
    let n: u64 = t.parse().unwrap_or(u64::MAX);
    if n == 0 {
        return Err(format!("0 frames asked for: give a frame count from 1 to {MAX_FRAMES}"));
    }
    FrameCount::new(n).ok_or_else(|| format!("{t} is more than {MAX_FRAMES} frames: ask for fewer, or use --forever"))
}

fn parse_steps(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("0 denoising steps: use at least 1 (spool-tiny takes 1 to 8, wan-causal 1 to 4)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("\"{s}\" is not a whole number of steps: use e.g. --steps 4")),
    }
}

fn parse_guidance(s: &str) -> Result<f32, String> {
    let g: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a guidance scale: use a number from 1 to 10, e.g. --guidance 3"))?;
    crate::model::check_guidance(g).map_err(|e| format!("guidance scale {e}"))?;
    Ok(g)
}

fn parse_prompt(s: &str) -> Result<String, String> {
    check_prompt(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

fn parse_prompt_at(s: &str) -> Result<Segment, String> {
    let (frame, prompt) = s
        .split_once(':')
        .ok_or_else(|| format!("\"{}\" is not FRAME:PROMPT: write e.g. --prompt-at 48:\"a green star\"", short(s)))?;
    let frame: u64 = frame
        .trim()
        .parse()
        .map_err(|_| format!("\"{}\" does not start with a frame number: write e.g. 48:\"a green star\"", short(s)))?;
    let prompt = prompt.trim().trim_matches('"');
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(format!("the prompt at frame {frame} is longer than 64 KiB: shorten it"));
    }
    check_prompt(prompt).map_err(|e| format!("at frame {frame}: {e}"))?;
    Ok(Segment::new(frame, prompt))
}

fn parse_existing_path(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.exists() { Ok(p) } else { Err(format!("{s} does not exist: check the path")) }
}

fn short(s: &str) -> String {
    if s.len() > 40 {
        format!("{}…", &s[..s.char_indices().nth(40).map_or(s.len(), |(i, _)| i)])
    } else {
        s.to_string()
    }
}
