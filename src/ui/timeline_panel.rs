//! The editor of the selected prompt-timeline segment: its start frame, crossfade length and
//! weighted prompt mix. Every change goes through `App::edit_timeline`, so it can be undone and
//! reaches the engine (for the current take) as soon as the timeline is valid again.

use super::app::App;
use super::theme;
use crate::timeline::WeightedPrompt;

impl App {
    pub(crate) fn segment_editor(&mut self, ui: &mut egui::Ui) {
        let Some(i) = self.selected_segment else {
            ui.add_space(8.0);
            theme::section(ui, "Prompt timeline");
            ui.add(
                egui::Label::new(
                    egui::RichText::new(format!(
                        "{} segment{}. Click a segment in the strip below to edit it; “+ Segment” adds one.",
                        self.draft.segments.len(),
                        if self.draft.segments.len() == 1 { "" } else { "s" }
                    ))
                    .size(12.0)
                    .color(theme::TEXT_DIM),
                )
                .wrap(),
            );
            return;
        };
        if i >= self.draft.segments.len() {
            self.selected_segment = None;
            return;
        }
        ui.add_space(8.0);
        theme::card().show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new(format!("Segment {}", i + 1)).strong().color(theme::segment_color(i)));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.small_button("Close").on_hover_text("Close the segment editor").clicked() {
                        self.selected_segment = None;
                    }
                    let del = ui
                        .add_enabled(i > 0, egui::Button::new("Delete segment").small())
                        .on_hover_text("Remove this segment; the one before it continues")
                        .on_disabled_hover_text("The first segment starts the take; edit it instead");
                    if del.clicked() {
                        self.edit_timeline(true, |t| {
                            t.segments.remove(i);
                        });
                        self.selected_segment = None;
                    }
                });
            });
            if self.selected_segment.is_none() {
                return;
            }
            let seg = self.draft.segments[i].clone();
            ui.horizontal(|ui| {
                let lo = if i == 0 { 0 } else { self.draft.segments[i - 1].start + 1 };
                let hi = self.draft.segments.get(i + 1).map_or(u64::MAX / 2, |s| s.start - 1);
                let mut start = seg.start;
                ui.add_enabled(i > 0, egui::DragValue::new(&mut start).range(lo..=hi).prefix("from frame "))
                    .on_hover_text("First frame this segment conditions");
                let mut blend = seg.blend;
                ui.add_enabled(
                    i > 0,
                    egui::DragValue::new(&mut blend).range(0..=512).prefix("crossfade ").suffix(" f"),
                )
                .on_hover_text("Frames over which the previous prompt blends into this one");
                if start != seg.start || blend != seg.blend {
                    self.edit_timeline(true, |t| {
                        t.segments[i].start = start;
                        t.segments[i].blend = blend;
                    });
                }
            });
            let mut remove = None;
            let many = seg.prompts.len() > 1;
            for (k, p) in seg.prompts.iter().enumerate() {
                let mut text = p.text.clone();
                let mut weight = p.weight;
                ui.horizontal(|ui| {
                    let w = if many { ui.available_width() - 118.0 } else { ui.available_width() };
                    let r = ui.add(
                        egui::TextEdit::singleline(&mut text)
                            .id_salt(("segment-prompt", i, k))
                            .hint_text("prompt for this segment")
                            .desired_width(w.max(80.0)),
                    );
                    if r.gained_focus() {
                        self.record_edit();
                    }
                    if many {
                        ui.add(egui::DragValue::new(&mut weight).range(0.05..=10.0).speed(0.02).prefix("×"))
                            .on_hover_text("Weight of this prompt in the mix");
                        if ui.small_button("Remove").on_hover_text("Remove this prompt from the mix").clicked() {
                            remove = Some(k);
                        }
                    }
                });
                if text != p.text || weight != p.weight {
                    self.edit_timeline(false, |t| {
                        t.segments[i].prompts[k] = WeightedPrompt { text, weight };
                    });
                }
            }
            if let Some(k) = remove {
                self.edit_timeline(true, |t| {
                    t.segments[i].prompts.remove(k);
                });
            }
            if let Err(e) = self.draft.validate() {
                ui.add(egui::Label::new(egui::RichText::new(e.to_string()).color(theme::ERROR).size(12.0)).wrap());
            }
            ui.horizontal(|ui| {
                let add =
                    ui.button("+ Mix in a prompt").on_hover_text("Blend a second prompt into this segment by weight");
                if add.clicked() {
                    let text = if self.prompt.trim().is_empty() {
                        "a blue square".to_string()
                    } else {
                        self.prompt.trim().to_string()
                    };
                    self.edit_timeline(true, |t| t.segments[i].prompts.push(WeightedPrompt { text, weight: 0.5 }));
                }
                if ui
                    .button("Use editor prompt")
                    .on_hover_text("Set this segment to the prompt in the editor")
                    .clicked()
                    && !self.prompt.trim().is_empty()
                {
                    let text = self.prompt.trim().to_string();
                    self.edit_timeline(true, |t| t.segments[i].prompts = vec![WeightedPrompt { text, weight: 1.0 }]);
                }
            });
        });
    }
}
