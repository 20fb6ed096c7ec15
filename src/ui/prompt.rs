//! The prompt editor and the generation controls: Generate, apply a prompt change mid-stream,
//! Extend, Pause/Resume, Stop, the start image and the first-run examples.
//!
//! For spool-tiny the editor completes the words its training captions use (Tab takes the first
//! suggestion) and points out words it has never seen, since its world is small.

use egui::{Key, Modifiers};

use super::app::App;
use super::{theme, vocab};
use crate::engine::EngineState;

/// Suggestions shown under the editor.
const SUGGESTIONS: usize = 5;

impl App {
    fn completes(&self) -> bool {
        self.session.model.as_ref().map_or(self.settings.model.as_str(), |m| m.id.as_str()) == "spool-tiny"
    }

    pub(crate) fn prompt_panel(&mut self, ui: &mut egui::Ui) {
        let label = ui.label(egui::RichText::new("PROMPT").size(11.0).color(theme::TEXT_DIM).strong());
        let edit_id = egui::Id::unique("prompt-editor");

        // The word before the cursor, from last frame's cursor (the editor has not run yet).
        let cursor = egui::TextEdit::load_state(ui.ctx(), edit_id)
            .and_then(|s| s.cursor.char_range())
            .map_or(self.prompt.chars().count(), |r| r.primary.index.0);
        let (word_start, word) = vocab::word_before(&self.prompt, cursor);
        let suggestions = if self.completes() { vocab::complete(&word, SUGGESTIONS) } else { Vec::new() };
        let focused = ui.ctx().memory(|m| m.has_focus(edit_id));
        // Tab accepts the first suggestion; take it before the editor sees it.
        let mut accept = None;
        if focused && !suggestions.is_empty() && ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Tab)) {
            accept = Some(suggestions[0]);
        }

        let output = egui::TextEdit::multiline(&mut self.prompt)
            .id(edit_id)
            .hint_text("Describe a scene, e.g. a red circle moving left on a blue background")
            .desired_rows(3)
            .desired_width(f32::INFINITY)
            .margin(egui::Margin::symmetric(8, 6))
            .show(ui);
        let response = output.response.response.labelled_by(label.id);
        if response.changed() {
            self.prompt_error = None;
        }

        if !suggestions.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.label(egui::RichText::new("Tab").size(11.0).color(theme::TEXT_DIM));
                for s in &suggestions {
                    let b = ui.add(egui::Button::new(egui::RichText::new(*s).size(12.0)).small().corner_radius(10));
                    if b.on_hover_text(format!("Complete “{word}” to “{s}”")).clicked() {
                        accept = Some(s);
                    }
                }
            });
        }
        if let Some(s) = accept {
            self.complete_word(ui.ctx(), edit_id, word_start, &word, s);
        }
        if self.completes() {
            let unknown = vocab::unknown_words(&self.prompt);
            if !unknown.is_empty() {
                let list = unknown.iter().take(4).cloned().collect::<Vec<_>>().join(", ");
                ui.add(
                    egui::Label::new(
                        egui::RichText::new(format!("spool-tiny has not seen: {list} (it will read them loosely)"))
                            .size(11.5)
                            .color(theme::WARN),
                    )
                    .wrap(),
                );
            }
        }
        if let Some(e) = &self.prompt_error {
            ui.add(egui::Label::new(egui::RichText::new(e).color(theme::ERROR)).wrap());
        }

        ui.add_space(4.0);
        self.generate_controls(ui);
        ui.add_space(6.0);
        self.start_image_ui(ui);
        if self.first_run || self.session.takes.is_empty() {
            ui.add_space(6.0);
            self.examples_ui(ui);
        }
    }

    /// Replaces the partial word before the cursor with `word` and puts the cursor after it.
    fn complete_word(&mut self, ctx: &egui::Context, id: egui::Id, start: usize, typed: &str, word: &str) {
        let chars: Vec<char> = self.prompt.chars().collect();
        let end = (start + typed.chars().count()).min(chars.len());
        let before: String = chars[..start].iter().collect();
        let after: String = chars[end..].iter().collect();
        let sep = if after.starts_with(' ') { "" } else { " " };
        self.prompt = format!("{before}{word}{sep}{after}");
        let cursor = start + word.chars().count() + sep.chars().count();
        if let Some(mut state) = egui::TextEdit::load_state(ctx, id) {
            state.cursor.set_char_range(Some(egui::text::CCursorRange::one(egui::text::CCursor::new(cursor))));
            state.store(ctx, id);
        }
        ctx.memory_mut(|m| m.request_focus(id));
    }

    fn generate_controls(&mut self, ui: &mut egui::Ui) {
        let busy = self.session.busy();
        let has_take = self.session.current.is_some();
        ui.horizontal(|ui| {
            let gen_ = ui
                .add_enabled(self.can_generate(), theme::primary("Generate").min_size(egui::vec2(104.0, 30.0)))
                .on_hover_text("Start a new take from this prompt (Ctrl+Enter)")
                .on_disabled_hover_text(if self.session.model.is_none() {
                    "Waiting for a model: see Settings"
                } else {
                    "Type a prompt first"
                });
            if gen_.clicked() {
                self.generate();
            }
            ui.add_enabled_ui(!self.forever, |ui| {
                ui.add(egui::DragValue::new(&mut self.gen_frames).range(1..=100_000).suffix(" frames").speed(1.0))
                    .on_hover_text("Frames to generate");
            });
            ui.checkbox(&mut self.forever, "∞").on_hover_text("Keep generating until stopped");
        });
        ui.horizontal(|ui| {
            let n = self.next_frame();
            let can_apply = has_take && self.prompt_differs() && !self.prompt.trim().is_empty();
            let apply = ui
                .add_enabled(
                    can_apply,
                    egui::Button::new(if has_take {
                        format!("Apply from frame {n}")
                    } else {
                        "Apply mid-stream".to_string()
                    })
                    .min_size(egui::vec2(104.0, 26.0)),
                )
                .on_hover_text(
                    "Change the prompt of this take from its next frame; frames already made stay (Ctrl+Shift+Enter)",
                )
                .on_disabled_hover_text(if has_take { "Edit the prompt first" } else { "Generate a take first" });
            if apply.clicked() {
                self.apply_prompt();
            }
            ui.add(egui::DragValue::new(&mut self.crossfade).range(0..=256).prefix("crossfade ").suffix(" f"))
                .on_hover_text("Blend into the new prompt over this many frames (0: switch at once)");
        });
        ui.horizontal(|ui| {
            let ext = ui
                .add_enabled(has_take, egui::Button::new("Extend").min_size(egui::vec2(104.0, 26.0)))
                .on_hover_text(
                    "Continue from the take's cache as a new take: the take stays as it is and undo takes the \
                     extension back (a take being generated, or a fresh branch, just grows) (Ctrl+E)",
                )
                .on_disabled_hover_text("Generate a take first");
            if ext.clicked() {
                self.extend();
            }
            ui.add(egui::DragValue::new(&mut self.extend_frames).range(1..=100_000).prefix("by ").suffix(" frames"))
                .on_hover_text("Frames to add");
        });
        ui.horizontal(|ui| {
            let paused = self.session.state == EngineState::Paused;
            let label = if paused { "Resume" } else { "Pause" };
            let p = ui
                .add_enabled(busy, egui::Button::new(label).min_size(egui::vec2(104.0, 26.0)))
                .on_hover_text("Pause or resume generation; the cache is kept");
            if p.clicked() {
                self.toggle_pause();
            }
            let s = ui
                .add_enabled(busy, egui::Button::new("Stop").min_size(egui::vec2(70.0, 26.0)))
                .on_hover_text("Stop after the frame in progress; every frame made is kept (Esc)");
            if s.clicked() {
                self.stop();
            }
        });
    }

    fn start_image_ui(&mut self, ui: &mut egui::Ui) {
        theme::section(ui, "Start image");
        let mut clear = false;
        ui.horizontal(|ui| {
            if let Some(img) = &self.start_image {
                ui.add(egui::Image::new((img.thumb.id(), egui::vec2(40.0, 40.0))).corner_radius(4));
                ui.vertical(|ui| {
                    ui.add(egui::Label::new(egui::RichText::new(&img.name).size(12.0)).truncate());
                    ui.label(
                        egui::RichText::new(format!(
                            "frame 0 of the next take · {}×{}",
                            img.frame.width, img.frame.height
                        ))
                        .size(11.0)
                        .color(theme::TEXT_DIM),
                    );
                });
                clear = ui.small_button("Clear").on_hover_text("Generate from the prompt alone").clicked();
            } else {
                if ui.button("Open image…").on_hover_text("Image-to-video: the image becomes frame 0").clicked() {
                    self.pick_start_image();
                }
                ui.label(egui::RichText::new("or drop one on the window").size(11.5).color(theme::TEXT_DIM));
            }
        });
        if clear {
            self.start_image = None;
        }
    }

    fn examples_ui(&mut self, ui: &mut egui::Ui) {
        theme::section(ui, "Try one");
        let mut pick = None;
        for e in vocab::EXAMPLES {
            let b = egui::Button::new(egui::RichText::new(*e).size(12.0).color(theme::TEXT))
                .wrap()
                .frame_when_inactive(false);
            if ui.add(b).on_hover_text("Use this prompt").clicked() {
                pick = Some(*e);
            }
        }
        if let Some(e) = pick {
            self.prompt = e.to_string();
            self.prompt_error = None;
        }
    }
}
