//! The project actions of the top bar: Open project…, Recent and Save as….
//!
//! Switching projects starts a new engine in the other folder; the old one flushes its frames and
//! shuts down, so nothing is lost. Save as is refused while generating (stop first; the frames made
//! so far are kept and copied): the engine then copies the project on its own thread, so no frame
//! can be made that the copy would miss, and the whole window is disabled until the copy is done.
//! Every project the app opens or saves goes first in the recent list.

use std::path::{Path, PathBuf};

use super::app::{App, IoDone};
use super::notices::{Notice, Notices};
use super::session::Session;
use super::theme;
use super::thumbs::Thumbs;
use super::undo::History;
use crate::engine::Command;

impl App {
    /// Puts the open project first in the recent list, when the app keeps one.
    pub(crate) fn remember_project(&mut self) {
        let dir = self.engine.project().to_path_buf();
        let Some(recent) = &mut self.recent else { return };
        if let Err(e) = recent.record(&dir) {
            tracing::warn!("the recent-projects list could not be written: {e}");
            self.notices.push(Notice::warning(
                &format!("the recent-projects list could not be written: {e}"),
                "nothing to do; the project itself is saved",
            ));
        }
    }

    /// The recent projects, newest first (empty when the app keeps no list).
    pub fn recent_projects(&self) -> &[PathBuf] {
        self.recent.as_ref().map_or(&[], |r| r.projects())
    }

    pub(crate) fn pick_project(&mut self) {
        let tx = self.io_tx.clone();
        let ctx = self.ctx.clone();
        std::thread::spawn(move || {
            if let Some(path) = rfd::FileDialog::new()
                .set_title("Open a project folder (an empty folder starts a new project)")
                .pick_folder()
            {
                let _ = tx.send(IoDone::OpenProject(path));
                ctx.request_repaint();
            }
        });
    }

    /// Switches to another project folder; returns whether it did. On failure the current project
    /// stays open and the error is shown.
    pub(crate) fn open_project(&mut self, dir: &Path) -> bool {
        let Some(opener) = &self.opener else { return false };
        match opener(dir) {
            Ok(engine) => {
                self.engine = engine;
                self.tap_frames();
                self.session = Session::default();
                self.thumbs = Thumbs::default();
                self.history = History::new(200);
                self.reset_view();
                self.export_dialog = None;
                self.notices = Notices::default();
                self.remember_project();
                // The old engine answers no more loads.
                self.model_requests.clear();
                self.load_model();
                true
            }
            Err(e) => {
                self.notices.push(Notice::error(
                    &format!("could not open project {}: {e}", dir.display()),
                    "pick another folder; the current project stays open",
                ));
                false
            }
        }
    }

    /// The Recent menu: the other projects of the list; those whose folder is gone are greyed.
    pub(crate) fn recent_menu(&mut self, ui: &mut egui::Ui) {
        let current = std::path::absolute(self.engine.project()).ok();
        let mut open = None;
        let enabled = self.opener.is_some() && self.recent.is_some();
        let menu = ui.add_enabled_ui(enabled, |ui| {
            ui.menu_button("Recent", |ui| {
                let others: Vec<&PathBuf> =
                    self.recent_projects().iter().filter(|p| Some(*p) != current.as_ref()).collect();
                if others.is_empty() {
                    ui.label(egui::RichText::new("No other recent projects").color(theme::TEXT_DIM));
                }
                for p in others {
                    let name = p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into());
                    let there = crate::project::is_project(p);
                    let button = ui
                        .add_enabled(there, egui::Button::new(name))
                        .on_hover_text(p.display().to_string())
                        .on_disabled_hover_text(format!("{} no longer holds a project", p.display()));
                    if button.clicked() {
                        open = Some(p.clone());
                        ui.close();
                    }
                }
            })
        });
        menu.inner.response.on_hover_text("Open a project you opened or saved recently");
        if let Some(p) = open {
            self.open_project(&p);
        }
    }

    /// Why Save as cannot start now, as (problem, fix).
    fn save_as_refusal(&self) -> Option<(&'static str, &'static str)> {
        if self.opener.is_none() {
            Some(("this window cannot switch projects", "use `spool open` on the copy instead"))
        } else if self.saving_as.is_some() {
            Some(("the project is already being saved as a copy", "wait for that copy to finish"))
        } else if self.session.busy() {
            Some(("generation is running", "stop it first (Esc); the frames made so far are kept and copied"))
        } else {
            None
        }
    }

    pub(crate) fn can_save_as(&self) -> bool {
        self.save_as_refusal().is_none()
    }

    /// Asks where to save the copy (a save dialog beside the UI thread).
    pub(crate) fn pick_save_as(&mut self) {
        if let Some((problem, fix)) = self.save_as_refusal() {
            self.notices.push(Notice::warning(problem, fix));
            return;
        }
        let here = self.engine.project();
        let stem = here.file_stem().map_or("project".into(), |s| s.to_string_lossy().into_owned());
        let mut dialog = rfd::FileDialog::new()
            .set_title("Save the project as (a NAME.spool folder)")
            .set_file_name(format!("{stem}-copy.spool"));
        if let Some(parent) = here.parent() {
            dialog = dialog.set_directory(parent);
        }
        let tx = self.io_tx.clone();
        let ctx = self.ctx.clone();
        std::thread::spawn(move || {
            if let Some(path) = dialog.save_file() {
                let _ = tx.send(IoDone::SaveAs(path));
                ctx.request_repaint();
            }
        });
    }

    /// Copies the project to `dest` (`.spool` is added to a name without it), then switches to the
    /// copy. The engine copies on its thread; progress shows in the status bar.
    pub fn save_as(&mut self, dest: PathBuf) {
        if let Some((problem, fix)) = self.save_as_refusal() {
            self.notices.push(Notice::warning(problem, fix));
            return;
        }
        let dest = if dest.extension().is_some_and(|e| e == "spool") { dest } else { with_spool_extension(dest) };
        self.send(Command::SaveAs(dest.clone()));
        self.saving_as = Some(dest);
    }

    /// Whether a Save as is running (tests).
    pub fn saving_as(&self) -> bool {
        self.saving_as.is_some()
    }

    pub(crate) fn save_as_finished(&mut self, path: PathBuf, result: Result<(), String>) {
        self.saving_as = None;
        match result {
            Ok(()) => {
                if self.open_project(&path) {
                    self.notices.push(Notice::info(
                        &format!("saved the project as {}; the copy is now open", path.display()),
                        "the original stays where it was, unchanged",
                    ));
                }
            }
            Err(e) => self.notices.push(Notice::error_text(&e)),
        }
    }

    /// Progress of a running Save as, in the status bar.
    pub(crate) fn save_as_status(&self, ui: &mut egui::Ui) {
        let Some(dest) = &self.saving_as else { return };
        let (done, total) = self.session.save_progress.unwrap_or((0, 0));
        let name = dest.file_name().map_or_else(|| dest.display().to_string(), |n| n.to_string_lossy().into());
        ui.add(
            egui::ProgressBar::new(if total == 0 { 0.0 } else { done as f32 / total as f32 })
                .desired_width(120.0)
                .desired_height(12.0)
                .fill(theme::ACCENT_DIM),
        );
        let mib = |b: u64| b as f64 / 1_048_576.0;
        ui.label(
            egui::RichText::new(format!("Saving as {name}: {:.1} of {:.1} MiB", mib(done), mib(total)))
                .size(11.0)
                .color(theme::TEXT),
        );
    }
}

fn with_spool_extension(path: PathBuf) -> PathBuf {
    let mut s = path.into_os_string();
    s.push(".spool");
    PathBuf::from(s)
}
