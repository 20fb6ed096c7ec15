//! Export from the app: the Export dialog picks a take and, optionally, frames A..B of it (checked
//! as `spool export --take --range` checks them: both go through `export::select_frames` and
//! `export::export_stored`); the save dialog's file name picks the format (MP4, GIF or a PNG
//! folder). The export runs on a worker thread with progress and Cancel in the status bar; the UI
//! and the engine never wait on it, and frames are read back from the store one at a time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::app::{App, IoDone};
use super::notices::Notice;
use super::session::TakeView;
use super::theme;
use crate::engine::TakeId;
use crate::export::{ExportOptions, Progress};
use crate::store::FrameId;

/// A running export.
pub(crate) struct ExportJob {
    pub path: PathBuf,
    pub done: Arc<AtomicUsize>,
    pub total: usize,
    pub cancel: Arc<AtomicBool>,
}

/// What the Export dialog has chosen.
pub(crate) struct ExportDialog {
    pub take: TakeId,
    /// `A..B`, or empty for the whole take.
    pub range: String,
}

impl App {
    /// Opens the Export dialog on the current take.
    pub(crate) fn open_export_dialog(&mut self) {
        if let Some(take) = self.session.current {
            self.export_dialog = Some(ExportDialog { take, range: String::new() });
        }
    }

    /// The take and frames the dialog has chosen (the whole current take without the dialog), or
    /// what is wrong with the choice.
    fn export_choice(&self) -> Result<(&TakeView, &[FrameId]), String> {
        let (id, range) = match &self.export_dialog {
            Some(d) => (Some(d.take), d.range.trim()),
            None => (self.session.current, ""),
        };
        let take = id.and_then(|id| self.session.take(id)).ok_or("there is no take to export: generate one first")?;
        let range =
            if range.is_empty() { None } else { Some(crate::export::parse_range(range).map_err(|e| e.to_string())?) };
        let ids = crate::export::select_frames(&take.frames, range).map_err(|e| e.to_string())?;
        Ok((take, ids))
    }

    /// Asks where to write the chosen frames (a save dialog beside the UI thread).
    pub(crate) fn pick_export(&mut self) {
        let Ok((take, ids)) = self.export_choice() else { return };
        let first = take.frames.iter().position(|id| Some(id) == ids.first()).unwrap_or(0);
        let name = if ids.len() == take.frames.len() {
            format!("take-{}.mp4", take.info.id.0 + 1)
        } else {
            format!("take-{}-frames-{first}-{}.mp4", take.info.id.0 + 1, first + ids.len())
        };
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

    /// Exports what the Export dialog has chosen (the whole current take without it) to `path`
    /// (`.mp4`, `.gif`, or a folder for PNGs) on a worker thread, and closes the dialog.
    pub fn export_to(&mut self, path: PathBuf) {
        if self.export.is_some() {
            self.notices.push(Notice::warning("an export is already running", "wait for it or cancel it first"));
            return;
        }
        let (take, ids) = match self.export_choice() {
            Ok(choice) => choice,
            Err(e) => {
                self.notices.push(Notice::error_text(&e));
                return;
            }
        };
        let ids = ids.to_vec();
        let model = self.session.model.as_ref();
        let metadata = crate::export::take_metadata(
            &take.info.timeline,
            take.info.settings.seed,
            model.map(|m| m.id.as_str()),
            model.and_then(|m| m.weights_hash.as_deref()),
        );
        let options = ExportOptions {
            fps: self.settings.playback_fps,
            scale: self.settings.export_scale,
            metadata,
            // The save dialog has already asked before replacing a file.
            force: true,
            ..Default::default()
        };
        self.export_dialog = None;
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
                let mut last_repaint = Instant::now();
                let result = crate::export::export_stored(&store, &ids, &path, &options, |p: Progress| {
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

    /// The Export dialog: take, frames, and the button that asks for the file.
    pub(crate) fn export_dialog_ui(&mut self, ui: &mut egui::Ui) {
        let Some(dialog) = &self.export_dialog else { return };
        let mut take = dialog.take;
        let mut range = dialog.range.clone();
        let (mut export, mut close) = (false, false);
        let fps = self.settings.playback_fps;
        let choice = self.export_choice().map(|(_, ids)| ids.len());
        egui::Window::new("Export")
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ui.ctx(), |ui| {
                egui::Grid::new("export-grid").num_columns(2).spacing(egui::vec2(10.0, 8.0)).show(ui, |ui| {
                    let label = ui.label("Take");
                    let name = |t: &TakeView| format!("Take {} ({} frames)", t.info.id.0 + 1, t.frames.len());
                    let selected = self.session.take(take).map_or_else(String::new, name);
                    let combo = egui::ComboBox::from_id_salt("export-take")
                        .selected_text(selected)
                        .width(170.0)
                        .show_ui(ui, |ui| {
                            for t in self.session.kept_takes() {
                                ui.selectable_value(&mut take, t.info.id, name(t));
                            }
                        });
                    let _ = combo.response.labelled_by(label.id);
                    ui.end_row();

                    let label = ui.label("Frames");
                    ui.add(egui::TextEdit::singleline(&mut range).hint_text("all, or A..B").desired_width(170.0))
                        .labelled_by(label.id)
                        .on_hover_text("Frames A..B of the take (B not included), e.g. 0..48; empty for all");
                    ui.end_row();
                });
                let (text, color) = match &choice {
                    Ok(n) => (format!("{n} frames, {:.1} s at {fps} fps", *n as f32 / fps), theme::TEXT_DIM),
                    Err(e) => (e.clone(), theme::ERROR),
                };
                ui.add(egui::Label::new(egui::RichText::new(text).size(12.0).color(color)).wrap());
                ui.horizontal(|ui| {
                    let ready = choice.is_ok() && self.export.is_none();
                    export = ui
                        .add_enabled(ready, egui::Button::new("Export to file…"))
                        .on_hover_text("Choose the file: .mp4, .gif, or a folder for PNG frames")
                        .clicked();
                    close = ui.button("Cancel").clicked();
                });
            });
        if let Some(d) = &mut self.export_dialog {
            d.take = take;
            d.range = range;
        }
        if close {
            self.export_dialog = None;
        } else if export {
            self.pick_export();
        }
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
