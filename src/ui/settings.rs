//! Settings: model (and a weights folder, with what it holds of wan-causal's files), seed (fixed or random), denoising steps, guidance (for
//! models that have it), the switch redraw and keyframes (for models that have them), resolution, playback rate and how the frame view scales.

use super::app::{App, MODELS};
use super::theme;
use crate::engine::{Keyframes, SwitchAnchor};

impl App {
    pub(crate) fn settings_panel(&mut self, ui: &mut egui::Ui) {
        let header =
            egui::CollapsingHeader::new(egui::RichText::new("SETTINGS").size(11.0).color(theme::TEXT_DIM).strong())
                .id_salt("settings")
                .open(Some(self.settings_open))
                .show(ui, |ui| self.settings_body(ui));
        if header.header_response.clicked() {
            self.settings_open = !self.settings_open;
        }
    }

    fn settings_body(&mut self, ui: &mut egui::Ui) {
        egui::Grid::new("settings-grid").num_columns(2).spacing(egui::vec2(10.0, 8.0)).show(ui, |ui| {
            let model_label = ui.label("Model");
            let combo = egui::ComboBox::from_id_salt("model-combo")
                .selected_text(self.settings.model.clone())
                .width(130.0)
                .show_ui(ui, |ui| {
                    for m in MODELS {
                        ui.selectable_value(&mut self.settings.model, m.to_string(), *m);
                    }
                });
            let _ = combo.response.labelled_by(model_label.id);
            ui.end_row();

            ui.label("Weights");
            ui.horizontal(|ui| {
                let name = self.settings.weights.as_ref().map_or("built-in".to_string(), |p| {
                    p.file_name().map_or(p.display().to_string(), |n| n.to_string_lossy().into_owned())
                });
                if ui.button("Folder…").on_hover_text("Point at a folder of model weights").clicked() {
                    self.pick_weights_folder();
                }
                ui.add(egui::Label::new(egui::RichText::new(name).size(12.0).color(theme::TEXT_DIM)).truncate());
            });
            ui.end_row();

            if self.settings.model == "wan-causal" {
                ui.label("");
                ui.vertical(|ui| self.wan_files(ui));
                ui.end_row();
            }

            ui.label("");
            ui.horizontal(|ui| {
                let loaded = self.session.model.as_ref().map(|m| m.id.clone());
                let differs =
                    loaded.as_deref() != Some(self.settings.model.as_str()) || self.settings.weights.is_some();
                if ui
                    .add_enabled(!self.session.busy(), egui::Button::new("Load model"))
                    .on_hover_text("Load the chosen model")
                    .clicked()
                {
                    self.load_model();
                }
                if differs && loaded.is_some() {
                    ui.label(egui::RichText::new("not loaded").size(11.0).color(theme::WARN));
                }
                if self.settings.weights.is_some()
                    && ui.small_button("Built-in").on_hover_text("Use the default weights").clicked()
                {
                    self.settings.weights = None;
                }
            });
            ui.end_row();

            let label = ui.label("Seed");
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.settings.random_seed, false, "Fixed");
                ui.selectable_value(&mut self.settings.random_seed, true, "Random");
                ui.add_enabled(
                    !self.settings.random_seed,
                    egui::DragValue::new(&mut self.settings.seed).range(0..=u32::MAX as u64),
                )
                .labelled_by(label.id)
                .on_hover_text("Same seed and settings make the same frames");
            });
            ui.end_row();

            let label = ui.label("Steps");
            ui.horizontal(|ui| {
                let (default, max) =
                    self.session.model.as_ref().map_or((2, 4), |m| (m.default_steps, m.max_steps.max(1)));
                let mut auto = self.settings.steps.is_none();
                if ui.checkbox(&mut auto, "Default").on_hover_text(format!("The model's default: {default}")).changed()
                {
                    self.settings.steps = if auto { None } else { Some(default) };
                }
                let mut steps = self.settings.steps.unwrap_or(default);
                ui.spacing_mut().slider_width = 70.0;
                let r = ui
                    .add_enabled(!auto, egui::Slider::new(&mut steps, 1..=max))
                    .labelled_by(label.id)
                    .on_hover_text("Denoising steps per frame: more is slower and usually cleaner");
                if r.changed() {
                    self.settings.steps = Some(steps);
                }
            });
            ui.end_row();

            // Only models with classifier-free guidance get the row.
            if let Some(default) = self.session.model.as_ref().and_then(|m| m.default_guidance) {
                let label = ui.label("Guidance");
                ui.horizontal(|ui| {
                    let mut auto = self.settings.guidance.is_none();
                    if ui
                        .checkbox(&mut auto, "Default")
                        .on_hover_text(format!("The model's default: {default}"))
                        .changed()
                    {
                        self.settings.guidance = if auto { None } else { Some(default) };
                    }
                    let mut g = self.settings.guidance.unwrap_or(default);
                    let range = crate::model::GUIDANCE_RANGE;
                    let r = ui
                        .add_enabled(!auto, egui::DragValue::new(&mut g).range(range).speed(0.05).fixed_decimals(1))
                        .on_hover_text(
                            "Classifier-free guidance: how closely frames follow the prompt. 1 is off; higher \
                             follows the prompt more strongly but can look harsher, and above 1 each step \
                             costs two decoder passes",
                        );
                    let r = r.labelled_by(label.id);
                    if r.changed() {
                        self.settings.guidance = Some(g);
                    }
                });
                ui.end_row();
            }

            // Only models that can redraw a frame get the rows.
            if self.session.model.as_ref().is_some_and(|m| m.redraws) {
                ui.label("Switches");
                ui.horizontal(|ui| {
                    let mut on = self.settings.switch_redraw.is_some();
                    let r = ui.checkbox(&mut on, "Redraw").on_hover_text(
                        "At a prompt switch, redraw the last frame for the new prompt and blend into it, so the \
                         new object appears (without it the model keeps the old object's shape and changes \
                         only colours and background). The motion pauses while it blends. Applies to new takes",
                    );
                    if r.changed() {
                        self.settings.switch_redraw = on.then(SwitchAnchor::default);
                    }
                    if let Some(anchor) = &mut self.settings.switch_redraw {
                        ui.add(egui::DragValue::new(&mut anchor.latents).range(1..=48).suffix(" f"))
                            .on_hover_text("Frames the switch blends over: fewer is quicker but closer to a cut");
                    }
                });
                ui.end_row();

                ui.label("Keyframes");
                ui.horizontal(|ui| {
                    let mut on = self.settings.keyframes.is_some();
                    let r = ui.checkbox(&mut on, "Redraw").on_hover_text(
                        "Every few frames, redraw the frame for the prompt where its object is, so moving \
                         objects keep their shapes over long takes (without it they soften into blobs \
                         within a hundred frames or so). A spinning object is redrawn where it stands; \
                         a growing, shrinking or fading one is left to change, then held once it settles. Applies to new takes",
                    );
                    if r.changed() {
                        self.settings.keyframes = on.then(Keyframes::default);
                    }
                    if let Some(keys) = &mut self.settings.keyframes {
                        ui.add(egui::DragValue::new(&mut keys.every).range(1..=64).prefix("every ").suffix(" f"))
                            .on_hover_text("Frames between keyframes: fewer holds shapes tighter and costs more");
                    }
                });
                ui.end_row();
            }

            ui.label("Resolution");
            let res = self
                .session
                .model
                .as_ref()
                .map_or("–".to_string(), |m| format!("{}×{} (the model's)", m.width, m.height));
            ui.label(egui::RichText::new(res).color(theme::TEXT_DIM));
            ui.end_row();

            let label = ui.label("Playback");
            ui.add(egui::DragValue::new(&mut self.settings.playback_fps).range(1.0..=60.0).speed(0.2).suffix(" fps"))
                .labelled_by(label.id)
                .on_hover_text("Frame rate of playback");
            ui.end_row();

            ui.label("Export");
            ui.horizontal(|ui| {
                for k in [1u32, 2, 4] {
                    ui.selectable_value(&mut self.settings.export_scale, k, format!("×{k}"))
                        .on_hover_text(format!("Export at {k}× the model's size (Lanczos)"));
                }
            });
            ui.end_row();

            ui.label("View");
            ui.horizontal(|ui| {
                ui.checkbox(&mut self.settings.smooth, "Smooth")
                    .on_hover_text("Bilinear scaling instead of sharp pixels");
                ui.checkbox(&mut self.settings.checker, "Checker").on_hover_text("Checkerboard behind the frame");
            });
            ui.end_row();
        });
    }

    /// What the chosen folder holds of wan-causal's files: each one found (where) or missing
    /// (its names and where it is published).
    fn wan_files(&self, ui: &mut egui::Ui) {
        let small = |ui: &mut egui::Ui, text: String, color| {
            ui.add(egui::Label::new(egui::RichText::new(text).size(11.0).color(color)).wrap());
        };
        let Some((dir, files)) =
            self.weights_survey.as_ref().filter(|(d, _)| Some(d) == self.settings.weights.as_ref())
        else {
            small(
                ui,
                "wan-causal's weights are not shipped: choose the folder you downloaded them into".into(),
                theme::WARN,
            );
            return;
        };
        for f in files {
            match &f.found {
                Some(path) => {
                    let rel = path.strip_prefix(dir).unwrap_or(path).display();
                    small(ui, format!("found {}: {rel}", f.what), theme::TEXT_DIM);
                }
                None => {
                    small(ui, format!("missing {}: {} from {}", f.what, f.names.join(" or "), f.source), theme::WARN)
                }
            }
        }
    }
}
