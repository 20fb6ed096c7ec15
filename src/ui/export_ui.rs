//! Export from the app: the current take to MP4, GIF or a PNG sequence (format from the file name
//! chosen in the save dialog), on a worker thread with progress and Cancel in the status bar. The
//! UI and the engine never wait on it; frames are read back from the frame store one at a time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::app::{App, IoDone};
use super::notices::Notice;
use super::theme;
use crate::export::{ExportOptions, Progress};

/// A running export.
pub(crate) struct ExportJob {
    pub path: PathBuf,
    pub done: Arc<AtomicUsize>,
    pub total: usize,
    pub cancel: Arc<AtomicBool>,
}

impl App {
    pub(crate) fn pick_export(&mut self) {
        let Some(take) = self.session.current_take() else { return };
        let name = format!("take-{}.mp4", take.info.id.0 + 1);
        let tx = self.io_tx.clone();
        let ctx = self.ctx.clone();
        std::thread::spawn(move || {
            let picked = rfd::FileDialog::new()
                .set_title("Export take")
                .set_file_name(name)
                .add_filter("MP4 video", &["mp4"])
                .add_filter("Animated GIF", &["gif"])
                .save_file();
            if let Some(path) = picked {
                let _ = tx.send(IoDone::ExportTo(path));
                ctx.request_repaint();
            }
        });
    }

    /// Exports the current take to `path` (`.mp4`, `.gif`, or a folder for PNGs) on a worker thread.
    pub fn export_to(&mut self, path: PathBuf) {
        if self.export.is_some() {
            self.notices.push(Notice::warning("an export is already running", "wait for it or cancel it first"));
            return;
        }
        let Some(take) = self.session.current_take() else {
            self.notices.push(Notice::warning("there is no take to export", "generate one first"));
            return;
        };
        if take.frames.is_empty() {
            self.notices.push(Notice::warning("the take has no frames yet", "wait for the first frame"));
            return;
        }
        let ids = take.frames.clone();
        let mut metadata = vec![
            ("timeline".to_string(), take.info.timeline.to_json()),
            ("seed".to_string(), take.info.settings.seed.to_string()),
        ];
        if let Some(m) = &self.session.model {
            metadata.push(("model".to_string(), m.id.clone()));
        }
        if let Some(p) = take.info.timeline.segments.first().and_then(|s| s.prompts.first()) {
            metadata.push(("title".to_string(), p.text.clone()));
        }
        let options = ExportOptions {
            fps: self.settings.playback_fps,
            scale: self.settings.export_scale,
            metadata,
            // The save dialog has already asked before replacing a file.
            force: true,
            ..Default::default()
        };
        let done = Arc::new(AtomicUsize::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        self.export =
            Some(ExportJob { path: path.clone(), done: done.clone(), total: ids.len(), cancel: cancel.clone() });
        let store = self.engine.store().clone();
        let tx = self.io_tx.clone();
        let ctx = self.ctx.clone();
        std::thread::Builder::new()
            .name("spool-export".into())
            .spawn(move || {
                let frames = ids.into_iter().map(|id| {
                    store
                        .frame(id)
                        .map_err(|e| e.to_string())
                        .and_then(|f| crate::export::ExportFrame::into_rgb_image(&*f))
                });
                let mut last_repaint = Instant::now();
                let result = crate::export::export(frames, &path, &options, |p: Progress| {
                    done.store(p.frames_done, Ordering::Relaxed);
                    // A few repaints a second are enough for a progress bar.
                    if last_repaint.elapsed().as_millis() > 100 {
                        last_repaint = Instant::now();
                        ctx.request_repaint();
                    }
                    if cancel.load(Ordering::Relaxed) {
                        std::ops::ControlFlow::Break(())
                    } else {
                        std::ops::ControlFlow::Continue(())
                    }
                });
                let _ = tx.send(IoDone::Exported(result.map_err(|e| e.to_string())));
                ctx.request_repaint();
            })
            .expect("spawning the export thread");
    }

    /// Progress and Cancel for a running export, in the status bar.
    pub(crate) fn export_status(&mut self, ui: &mut egui::Ui) {
        let Some(job) = &self.export else { return };
        let done = job.done.load(Ordering::Relaxed);
        let name = job.path.file_name().map_or_else(|| job.path.display().to_string(), |n| n.to_string_lossy().into());
        ui.add(
            egui::ProgressBar::new(done as f32 / job.total.max(1) as f32)
                .desired_width(120.0)
                .desired_height(12.0)
                .fill(theme::ACCENT_DIM),
        );
        ui.label(egui::RichText::new(format!("Exporting {name}: {done}/{}", job.total)).size(11.0).color(theme::TEXT));
        if ui.small_button("Cancel export").clicked() {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn export_finished(&mut self, result: Result<crate::export::ExportSummary, String>) {
        self.export = None;
        match result {
            Ok(s) => self.notices.push(Notice::info(
                &format!(
                    "exported {} frames ({:.1} s, {}×{}) to {}",
                    s.frames,
                    s.duration_secs,
                    s.width,
                    s.height,
                    s.path.display()
                ),
                "open it in any player",
            )),
            Err(e) => self.notices.push(Notice::error(&e, "pick another place or format and export again")),
        }
    }

    /// Whether an export is running (tests).
    pub fn exporting(&self) -> bool {
        self.export.is_some()
    }
}
