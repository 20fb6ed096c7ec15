//! Export of finished frames to MP4 (H.264), GIF or a PNG sequence.
//!
//! The format follows the output path ([`ExportFormat::from_path`]). Frames are consumed one at a time
//! ([`Exporter::push`], or [`export`] over an iterator), so raw pixels never pile up in memory however
//! long the clip; only the compressed H.264 samples are held until the end, because the MP4's index
//! (`moov`) has to be written before the media data for the file to stream ("fast start").
//!
//! Every format is written into a temporary file (or folder) beside the destination and renamed onto
//! the final name only after it is complete and synced: a crash, a full disk or a cancel never leaves
//! a truncated file under the name the user chose. The temporary output is removed on every error,
//! on cancel and when an [`Exporter`] is dropped unfinished.
//!
//! Nothing here runs on the UI thread by itself: the caller runs [`export`] on a worker thread and
//! reads progress through the callback, which also cancels by returning [`ControlFlow::Break`].

mod gif;
mod mp4;
mod png;
mod scale;
mod take;

pub use png::frame_file_name;
pub use take::{RangeError, export_stored, parse_range, select_frames, take_metadata};

use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::model::Frame;
use crate::staging::Staged;

/// The container/codec an export writes, chosen from the output path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// H.264 (yuv420p, limited range, BT.709) in an MP4 with `moov` before `mdat`.
    Mp4,
    /// Looping animated GIF with a per-frame NeuQuant palette.
    Gif,
    /// A folder of `frame_000000.png`, `frame_000001.png`, … with text metadata in each.
    PngSequence,
}

impl ExportFormat {
    /// Picks the format from the output path: `*.mp4` → MP4, `*.gif` → GIF, and a path ending in `/`,
    /// a path with no extension or an existing directory → PNG sequence. Other extensions are refused
    /// rather than guessed, so `clip.mov` or `clip.png` does not silently become something else.
    pub fn from_path(path: &Path) -> Result<ExportFormat, ExportError> {
        let text = path.as_os_str().to_string_lossy();
        if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
            return Ok(ExportFormat::PngSequence);
        }
        match path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()) {
            Some(ext) if ext == "mp4" => Ok(ExportFormat::Mp4),
            Some(ext) if ext == "gif" => Ok(ExportFormat::Gif),
            None => Ok(ExportFormat::PngSequence),
            Some(_) if path.is_dir() => Ok(ExportFormat::PngSequence),
            Some(ext) => Err(ExportError::UnsupportedFormat { path: path.to_path_buf(), extension: ext }),
        }
    }

    /// Short name for messages and UI (`mp4`, `gif`, `png`).
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Mp4 => "mp4",
            ExportFormat::Gif => "gif",
            ExportFormat::PngSequence => "png",
        }
    }
}

/// Export quality, 1 (smallest) ..= 100 (best). Default 80.
///
/// MP4: maps to a constant H.264 quantiser, 100 → QP 10, 80 → QP 17, 1 → QP 46. GIF: maps to the
/// NeuQuant sampling factor (100 → 1, the slowest and best palette; 80 → 7; 1 → 30). PNG is lossless
/// and ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quality(u8);

impl Quality {
    pub const DEFAULT: Quality = Quality(80);

    pub fn new(value: u8) -> Result<Quality, ExportError> {
        if (1..=100).contains(&value) {
            Ok(Quality(value))
        } else {
            Err(ExportError::InvalidOptions(format!("quality {value} is outside 1..=100")))
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Quality {
    fn default() -> Self {
        Quality::DEFAULT
    }
}

/// What to write and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// Playback rate in frames per second (the model's rate unless the user retimes the clip).
    pub fps: f32,
    /// Upscale factor: 1, 2 or 4 (Lanczos3), since small models render small frames.
    pub scale: u32,
    pub quality: Quality,
    /// Free-form key/value pairs (prompt timeline, seed, model id, weights hash, …). Written as MP4
    /// iTunes-style `----` items (plus a readable `©cmt` summary), PNG `tEXt`/`iTXt` chunks on every
    /// frame and a GIF comment extension. A key `title` also becomes the MP4 title. Keys should be
    /// short ASCII words; a structured value (the prompt timeline) is best given as one JSON string.
    pub metadata: Vec<(String, String)>,
    /// Replace an existing output. Without it an existing file is an error.
    pub force: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { fps: 16.0, scale: 1, quality: Quality::DEFAULT, metadata: Vec::new(), force: false }
    }
}

impl ExportOptions {
    /// Checks the options before any file is touched.
    pub fn validate(&self) -> Result<(), ExportError> {
        if !(self.fps.is_finite() && self.fps > 0.0 && self.fps <= 240.0) {
            return Err(ExportError::InvalidOptions(format!("frame rate {} fps is outside (0, 240]", self.fps)));
        }
        if ![1, 2, 4].contains(&self.scale) {
            return Err(ExportError::InvalidOptions(format!("scale {} is not 1, 2 or 4", self.scale)));
        }
        if let Some((k, _)) = self.metadata.iter().find(|(k, _)| k.is_empty()) {
            return Err(ExportError::InvalidOptions(format!("metadata key {k:?} is empty")));
        }
        Ok(())
    }
}

/// Progress of an export, reported after each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub frames_done: usize,
    /// Known when the frame source reports an exact length.
    pub frames_total: Option<usize>,
}

impl Progress {
    /// Fraction done in `[0, 1]` when the total is known.
    pub fn fraction(&self) -> Option<f32> {
        self.frames_total.filter(|&t| t > 0).map(|t| (self.frames_done as f32 / t as f32).min(1.0))
    }
}

/// What a finished export wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    pub path: PathBuf,
    pub format: ExportFormat,
    pub frames: usize,
    /// Size of the written frames: source size × scale, rounded up to even for MP4.
    pub width: u32,
    pub height: u32,
    /// Bytes written (all files for a PNG sequence).
    pub bytes: u64,
    /// Playback length, `frames / fps`.
    pub duration_secs: f64,
}

/// Why an export failed. Each message says what happened and what to do; the partial output has
/// always been removed by the time the error is returned.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "{path}: unsupported output format `.{extension}`; use a .mp4 or .gif file, or a folder (ending in `/`) for a PNG sequence"
    )]
    UnsupportedFormat { path: PathBuf, extension: String },
    #[error("{path} already exists: choose another name, or overwrite it (--force)")]
    AlreadyExists { path: PathBuf },
    #[error(
        "{path} is a folder holding files other than exported frames: choose a new or empty folder for the PNG sequence"
    )]
    FolderNotEmpty { path: PathBuf },
    #[error("invalid export options: {0}")]
    InvalidOptions(String),
    #[error(
        "cannot write into {dir}: {source}; check that the folder exists and is writable, or choose another destination"
    )]
    Unwritable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "not enough disk space to write {path}: free some space or export to another drive (nothing was left behind)"
    )]
    DiskFull {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {path} failed: {source} (nothing was left behind)")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("export to {path} cancelled after {frames} frames; nothing was written")]
    Cancelled { path: PathBuf, frames: usize },
    #[error("there are no frames to export")]
    NoFrames,
    #[error(
        "frame {index} is {got_width}x{got_height} but the clip is {width}x{height}: all frames of an export must have one size"
    )]
    FrameSizeMismatch { index: usize, width: u32, height: u32, got_width: u32, got_height: u32 },
    #[error("frame {index} is malformed: {reason}")]
    BadFrame { index: usize, reason: String },
    #[error("frame {index} could not be produced: {source}")]
    Source {
        index: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{format} cannot hold {width}x{height} frames (at most {max}); lower the scale factor")]
    TooLarge { format: &'static str, width: u32, height: u32, max: &'static str },
    #[error("H.264 encoding failed at frame {index}: {reason}")]
    Encode { index: usize, reason: String },
    #[error("MP4 writing failed: {0}")]
    Mux(String),
    #[error("GIF encoding failed: {0}")]
    Gif(String),
}

/// Sorts an I/O error into what the user can act on.
pub(crate) fn io_error(path: &Path, source: io::Error) -> ExportError {
    use io::ErrorKind as K;
    match source.kind() {
        K::StorageFull | K::QuotaExceeded | K::FileTooLarge => ExportError::DiskFull { path: path.into(), source },
        K::PermissionDenied | K::ReadOnlyFilesystem => {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
            ExportError::Unwritable { dir, source }
        }
        _ => ExportError::Io { path: path.into(), source },
    }
}

/// Something that can be turned into an 8-bit RGB frame.
pub trait ExportFrame {
    fn into_rgb_image(self) -> Result<RgbImage, String>;
}

impl ExportFrame for RgbImage {
    fn into_rgb_image(self) -> Result<RgbImage, String> {
        Ok(self)
    }
}

impl ExportFrame for &Frame {
    fn into_rgb_image(self) -> Result<RgbImage, String> {
        let n = self.width as usize * self.height as usize;
        if self.width == 0 || self.height == 0 || self.planar.len() != 3 * n {
            return Err(format!(
                "{}x{} frame has {} values, expected {}",
                self.width,
                self.height,
                self.planar.len(),
                3 * n
            ));
        }
        RgbImage::from_raw(self.width, self.height, self.to_rgb8()).ok_or_else(|| "bad pixel buffer".to_string())
    }
}

impl ExportFrame for Frame {
    fn into_rgb_image(self) -> Result<RgbImage, String> {
        (&self).into_rgb_image()
    }
}

/// A format's encoder, fed frames already scaled to the output size. `Send` so an [`Exporter`]
/// can be created on one thread and driven from a worker.
trait Sink: Send {
    fn push(&mut self, image: &RgbImage, index: usize) -> Result<(), ExportError>;
    /// Completes and syncs the temporary output; returns the bytes written.
    fn finish(self: Box<Self>) -> Result<u64, ExportError>;
}

/// A created sink and the frame size it writes (which may differ from the requested size, e.g. MP4
/// pads odd sizes to even).
type NewSink = Result<(Box<dyn Sink>, (u32, u32)), ExportError>;

/// Everything a sink needs to know when it is created (at the first frame, once the size is known).
struct SinkSetup<'a> {
    /// The final path, for messages: the user never sees the temporary name.
    path: &'a Path,
    temp: &'a Path,
    width: u32,
    height: u32,
    options: &'a ExportOptions,
}

fn is_frame_file_name(name: &str) -> bool {
    name.strip_prefix("frame_")
        .and_then(|rest| rest.strip_suffix(".png"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks the destination and creates the temporary output beside it (see `staging`).
fn stage(dest: &Path, format: ExportFormat, force: bool) -> Result<Staged, ExportError> {
    let is_dir = format == ExportFormat::PngSequence;
    if dest.file_name().is_none() {
        return Err(ExportError::InvalidOptions(format!("{} does not name a file or folder to write", dest.display())));
    }
    let parent = crate::staging::parent_of(dest);
    let mut replace = false;
    match fs::symlink_metadata(dest) {
        Ok(meta) if is_dir && meta.is_dir() => {
            // Only ever replace a folder that holds nothing but frames of an earlier export, even
            // with force: `-o ~/Documents/ --force` must not wipe the user's documents.
            let mut empty = true;
            for entry in fs::read_dir(dest).map_err(|e| io_error(dest, e))? {
                let entry = entry.map_err(|e| io_error(dest, e))?;
                empty = false;
                let frame = entry.file_name().to_str().is_some_and(is_frame_file_name)
                    && entry.file_type().is_ok_and(|t| t.is_file());
                if !frame {
                    return Err(ExportError::FolderNotEmpty { path: dest.into() });
                }
            }
            if !empty && !force {
                return Err(ExportError::AlreadyExists { path: dest.into() });
            }
            replace = true;
        }
        Ok(meta) if meta.is_dir() => {
            return Err(ExportError::InvalidOptions(format!(
                "{} is a folder; give a file name ending in .{}",
                dest.display(),
                format.name()
            )));
        }
        Ok(_) if is_dir => {
            return Err(ExportError::AlreadyExists { path: dest.into() });
        }
        Ok(_) if !force => return Err(ExportError::AlreadyExists { path: dest.into() }),
        Ok(_) => replace = true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(dest, e)),
    }
    if !parent.is_dir() {
        return Err(ExportError::Unwritable {
            dir: parent,
            source: io::Error::new(io::ErrorKind::NotFound, "the folder does not exist"),
        });
    }
    // Exports that a crash cut short left their temporaries here.
    crate::staging::remove_stale(&parent, crate::staging::STALE_AFTER);
    Staged::new(dest, is_dir, replace).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::NotFound => {
            ExportError::Unwritable { dir: parent.clone(), source: e }
        }
        _ => io_error(dest, e),
    })
}

/// Writes one export, frame by frame. Dropping it unfinished removes everything it wrote.
///
/// ```no_run
/// # use spool::export::*;
/// # fn frames() -> Vec<spool::model::Frame> { vec![] }
/// let mut ex = Exporter::new("clip.mp4", ExportOptions { fps: 16.0, ..Default::default() })?;
/// for f in frames() {
///     ex.push(f)?;
/// }
/// let summary = ex.finish()?;
/// # Ok::<(), ExportError>(())
/// ```
pub struct Exporter {
    format: ExportFormat,
    options: ExportOptions,
    // Declared before `staging` so an unfinished encoder is dropped (and closes its file) before
    // the temporary output is deleted.
    sink: Option<Box<dyn Sink>>,
    staging: Staged,
    /// Source frame size, fixed by the first frame.
    source_size: Option<(u32, u32)>,
    output_size: (u32, u32),
    frames: usize,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("path", &self.staging.dest())
            .field("format", &self.format)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// Validates the options, checks the destination and creates the temporary output, so an
    /// unwritable folder or an existing file is reported before any frame is produced.
    pub fn new(path: impl AsRef<Path>, options: ExportOptions) -> Result<Exporter, ExportError> {
        let path = path.as_ref();
        options.validate()?;
        let format = ExportFormat::from_path(path)?;
        let staging = stage(path, format, options.force)?;
        Ok(Exporter { format, options, sink: None, staging, source_size: None, output_size: (0, 0), frames: 0 })
    }

    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// Sets the playback rate, for callers that learn it after creating the exporter (the model's
    /// rate is known once it has loaded). Only before the first frame.
    pub fn set_fps(&mut self, fps: f32) -> Result<(), ExportError> {
        if self.frames > 0 {
            return Err(ExportError::InvalidOptions("the frame rate is fixed once frames are written".into()));
        }
        let options = ExportOptions { fps, ..self.options.clone() };
        options.validate()?;
        self.options = options;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        self.staging.dest()
    }

    pub fn frames_written(&self) -> usize {
        self.frames
    }

    /// Encodes one frame. After an error the exporter is unusable; drop it (that removes the partial
    /// output).
    pub fn push(&mut self, frame: impl ExportFrame) -> Result<(), ExportError> {
        let index = self.frames;
        let image = frame.into_rgb_image().map_err(|reason| ExportError::BadFrame { index, reason })?;
        let (w, h) = image.dimensions();
        match self.source_size {
            Some((sw, sh)) if (sw, sh) != (w, h) => {
                return Err(ExportError::FrameSizeMismatch {
                    index,
                    width: sw,
                    height: sh,
                    got_width: w,
                    got_height: h,
                });
            }
            Some(_) => {}
            None => {
                let (ow, oh) = (w * self.options.scale, h * self.options.scale);
                let setup = SinkSetup {
                    path: self.staging.dest(),
                    temp: self.staging.temp(),
                    width: ow,
                    height: oh,
                    options: &self.options,
                };
                let (sink, size): (Box<dyn Sink>, (u32, u32)) = match self.format {
                    ExportFormat::Mp4 => mp4::Mp4Sink::create(&setup)?,
                    ExportFormat::Gif => gif::GifSink::create(&setup)?,
                    ExportFormat::PngSequence => png::PngSink::create(&setup)?,
                };
                // Only now: if creating the sink failed, the next push tries again instead of
                // finding a size but no sink.
                self.sink = Some(sink);
                self.output_size = size;
                self.source_size = Some((w, h));
            }
        }
        let scaled;
        let image = if self.options.scale == 1 {
            &image
        } else {
            scaled = scale::upscale(&image, self.options.scale);
            &scaled
        };
        let sink = self.sink.as_mut().expect("sink is created with the first frame");
        sink.push(image, index)?;
        self.frames += 1;
        Ok(())
    }

    /// Completes the file, syncs it and renames it onto the destination.
    pub fn finish(mut self) -> Result<ExportSummary, ExportError> {
        let sink = self.sink.take().ok_or(ExportError::NoFrames)?;
        let bytes = sink.finish()?;
        let dest = self.staging.dest().to_path_buf();
        self.staging.commit().map_err(|e| match e.kind() {
            // Someone created it while we were encoding: it is kept.
            io::ErrorKind::AlreadyExists => ExportError::AlreadyExists { path: dest.clone() },
            _ => io_error(&dest, e),
        })?;
        Ok(ExportSummary {
            path: dest,
            format: self.format,
            frames: self.frames,
            width: self.output_size.0,
            height: self.output_size.1,
            bytes,
            duration_secs: self.frames as f64 / f64::from(self.options.fps),
        })
    }
}

/// Exports a whole clip from a frame source, reporting progress after each frame.
///
/// `progress` returning [`ControlFlow::Break`] cancels: the partial output is removed and
/// [`ExportError::Cancelled`] returned. It is also called once before the first frame, so a cancel
/// requested before the export starts does no work. See [`cancel_flag`] to drive it from an
/// [`AtomicBool`].
pub fn export<I, F, E>(
    frames: I,
    path: impl AsRef<Path>,
    options: &ExportOptions,
    mut progress: impl FnMut(Progress) -> ControlFlow<()>,
) -> Result<ExportSummary, ExportError>
where
    I: IntoIterator<Item = Result<F, E>>,
    F: ExportFrame,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut exporter = Exporter::new(path, options.clone())?;
    let frames = frames.into_iter();
    let frames_total = match frames.size_hint() {
        (lo, Some(hi)) if lo == hi => Some(lo),
        _ => None,
    };
    let cancelled =
        |ex: &Exporter| ExportError::Cancelled { path: ex.path().to_path_buf(), frames: ex.frames_written() };
    if progress(Progress { frames_done: 0, frames_total }).is_break() {
        return Err(cancelled(&exporter));
    }
    for (index, frame) in frames.enumerate() {
        let frame = frame.map_err(|e| ExportError::Source { index, source: e.into() })?;
        exporter.push(frame)?;
        if progress(Progress { frames_done: index + 1, frames_total }).is_break() {
            return Err(cancelled(&exporter));
        }
    }
    exporter.finish()
}

/// A progress callback that ignores progress and cancels once `flag` is set (e.g. by a Cancel button
/// on the UI thread).
pub fn cancel_flag(flag: &AtomicBool) -> impl FnMut(Progress) -> ControlFlow<()> + '_ {
    move |_| {
        if flag.load(Ordering::Relaxed) { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

/// One export benchmark measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    pub name: String,
    pub format: ExportFormat,
    pub frames: usize,
    pub width: u32,
    pub height: u32,
    /// Wall time of the export alone (frames are generated beforehand).
    pub elapsed: Duration,
    pub bytes: u64,
}

impl BenchResult {
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A moving test picture with real structure (gradients, a moving disc, stripes), so encoders do
/// representative work; flat frames would flatter every codec.
pub fn synthetic_frame(width: u32, height: u32, index: usize) -> RgbImage {
    let t = index as f32;
    let (wf, hf) = (width as f32, height as f32);
    let cx = wf * (0.5 + 0.3 * (t * 0.11).sin());
    let cy = hf * (0.5 + 0.3 * (t * 0.07).cos());
    let radius = wf.min(hf) * 0.2;
    RgbImage::from_fn(width, height, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let gx = xf / wf;
        let gy = yf / hf;
        let mut r = 255.0 * gx;
        let mut g = 255.0 * gy;
        let mut b = 128.0 + 100.0 * ((xf + yf + 3.0 * t) * 0.08).sin();
        let d = ((xf - cx).powi(2) + (yf - cy).powi(2)).sqrt();
        if d < radius {
            r = 240.0;
            g = 200.0 * (1.0 - d / radius);
            b = 40.0;
        }
        if ((xf * 0.05 + t * 0.2).floor() as i32) % 7 == 0 {
            g = 255.0 - g;
        }
        image::Rgb([r as u8, g as u8, b as u8])
    })
}

/// Times the reference exports: 256 frames at 128×128 and 81 frames at 832×480 to MP4 (default
/// options, 16 fps), plus 64 frames at 128×128 to GIF. Files go to `dir` (a temporary folder is
/// best) and are removed afterwards.
pub fn bench_export(dir: &Path) -> Result<Vec<BenchResult>, ExportError> {
    let cases: [(&str, &str, usize, u32, u32); 3] = [
        ("mp4 256x128x128", "bench-small.mp4", 256, 128, 128),
        ("mp4 81x832x480", "bench-large.mp4", 81, 832, 480),
        ("gif 64x128x128", "bench-small.gif", 64, 128, 128),
    ];
    let mut results = Vec::new();
    for (name, file, n, w, h) in cases {
        let frames: Vec<RgbImage> = (0..n).map(|i| synthetic_frame(w, h, i)).collect();
        let path = dir.join(file);
        let options = ExportOptions { force: true, ..ExportOptions::default() };
        let start = Instant::now();
        let summary =
            export(frames.into_iter().map(Ok::<_, io::Error>), &path, &options, |_| ControlFlow::Continue(()))?;
        let elapsed = start.elapsed();
        let _ = fs::remove_file(&path);
        results.push(BenchResult {
            name: name.to_string(),
            format: summary.format,
            frames: summary.frames,
            width: summary.width,
            height: summary.height,
            elapsed,
            bytes: summary.bytes,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_path() {
        assert_eq!(ExportFormat::from_path(Path::new("a/clip.mp4")).unwrap(), ExportFormat::Mp4);
        assert_eq!(ExportFormat::from_path(Path::new("clip.MP4")).unwrap(), ExportFormat::Mp4);
        assert_eq!(ExportFormat::from_path(Path::new("clip.gif")).unwrap(), ExportFormat::Gif);
        assert_eq!(ExportFormat::from_path(Path::new("frames/")).unwrap(), ExportFormat::PngSequence);
        assert_eq!(ExportFormat::from_path(Path::new("frames")).unwrap(), ExportFormat::PngSequence);
        assert_eq!(ExportFormat::from_path(Path::new("frames.v2/")).unwrap(), ExportFormat::PngSequence);
        assert!(matches!(
            ExportFormat::from_path(Path::new("clip.mov")),
            Err(ExportError::UnsupportedFormat { extension, .. }) if extension == "mov"
        ));
    }

    #[test]
    fn options_are_validated() {
        let ok = ExportOptions::default();
        assert!(ok.validate().is_ok());
        assert!(ExportOptions { scale: 3, ..ok.clone() }.validate().is_err());
        assert!(ExportOptions { fps: 0.0, ..ok.clone() }.validate().is_err());
        assert!(ExportOptions { fps: f32::NAN, ..ok.clone() }.validate().is_err());
        assert!(Quality::new(0).is_err() && Quality::new(101).is_err() && Quality::new(1).is_ok());
    }

    #[test]
    fn exporter_can_move_to_a_worker_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Exporter>();
    }

    #[test]
    fn frame_file_names() {
        assert!(is_frame_file_name("frame_000000.png"));
        assert!(!is_frame_file_name("frame_.png"));
        assert!(!is_frame_file_name("notes.txt"));
    }

    #[test]
    fn io_errors_are_classified() {
        let p = Path::new("/x/clip.mp4");
        assert!(matches!(io_error(p, io::Error::from_raw_os_error(28)), ExportError::DiskFull { .. }));
        assert!(matches!(
            io_error(p, io::Error::from(io::ErrorKind::PermissionDenied)),
            ExportError::Unwritable { .. }
        ));
    }
}
