//! The takes panel: every generate, extend and branch as a list; click one to switch to it.
//! Extending a finished take and branching (rewind to the playhead and continue from there) both
//! keep the old take: the new one shares its frames (a fresh branch's first extend fills it). Takes
//! discarded by undo are not listed (their frames stay in the project; redo lists them again).

use super::app::App;
use super::theme;

impl App {
    pub(crate) fn takes_panel(&mut self, ui: &mut egui::Ui) {
        theme::section(ui, "Takes");
        if self.session.kept_takes().next().is_none() {
            ui.add(
                egui::Label::new(
                    egui::RichText::new("Each Generate and Extend makes a take; branches appear here too.")
                        .size(12.0)
                        .color(theme::TEXT_DIM),
                )
                .wrap(),
            );
            return;
        }
        let mut switch = None;
        for t in self.session.kept_takes().rev() {
            let current = self.session.current == Some(t.info.id);
            let parent = match t.info.parent {
                Some((p, keep)) if self.session.take(p).is_some_and(|p| p.frames.len() as u64 == keep) => {
                    format!(" · extends take {}", p.0 + 1)
                }
                Some((p, keep)) => format!(" · from take {} @ {}", p.0 + 1, keep),
                None => String::new(),
            };
            let prompt = t.info.timeline.segments.first().map_or(String::new(), super::playback::segment_label);
            let title = format!("Take {} · {} frames{}", t.info.id.0 + 1, t.frames.len(), parent);
            let text = egui::RichText::new(title).color(if current { theme::ACCENT } else { theme::TEXT });
            let r = ui
                .add(
                    egui::Button::selectable(current, text).truncate().min_size(egui::vec2(ui.available_width(), 24.0)),
                )
                .on_hover_text(format!("{prompt}\nseed {} · click to switch", t.info.settings.seed));
            if r.clicked() {
                switch = Some(t.info.id);
            }
        }
        if let Some(id) = switch {
            self.switch_take(id);
        }
    }
}
