//! Errors, warnings and notes shown in place over the frame view: non-modal, each with the fix,
//! nothing lost when one appears. Errors stay until dismissed (or until the cause is fixed, e.g. a
//! model loads); warnings and notes fade after a while.

use std::time::{Duration, Instant};

use super::app::App;
use super::theme;
use crate::engine::EngineError;

/// How long warnings and notes stay.
const FADE_AFTER: Duration = Duration::from_secs(12);
/// At most this many notices are kept; the oldest go first.
const MAX: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub level: Level,
    /// What happened.
    pub text: String,
    /// What to do about it.
    pub fix: Option<String>,
    /// Offer to open the settings (model problems).
    pub settings_action: bool,
    pub at: Instant,
}

impl Notice {
    fn new(level: Level, text: &str, fix: Option<&str>) -> Self {
        Notice {
            level,
            text: text.to_string(),
            fix: fix.map(str::to_string),
            settings_action: false,
            at: Instant::now(),
        }
    }
    pub fn error(text: &str, fix: &str) -> Self {
        Self::new(Level::Error, text, Some(fix))
    }
    pub fn warning(text: &str, fix: &str) -> Self {
        Self::new(Level::Warning, text, Some(fix))
    }
    pub fn info(text: &str, fix: &str) -> Self {
        Self::new(Level::Info, text, Some(fix))
    }
    /// A warning whose text already says what to do after its last colon (engine warnings).
    pub fn warning_text(text: &str) -> Self {
        let (t, f) = split_fix(text);
        Self::new(Level::Warning, t, f)
    }
    /// An error whose text already says what to do after its last colon.
    pub fn error_text(text: &str) -> Self {
        let (t, f) = split_fix(text);
        Self::new(Level::Error, t, f)
    }
    pub fn from_engine(e: &EngineError) -> Self {
        let mut n = match e {
            // The reason is the model's; the fix is what the app can do about it.
            EngineError::Generation { frame: 0, reason } => Self::error(
                &format!("generation failed at frame 0 ({reason})"),
                "no frame was made: check the prompt and Settings, then Generate again",
            ),
            EngineError::Generation { frame, reason } => Self::error(
                &format!("generation failed at frame {frame} ({reason})"),
                &format!("frames 0 to {} are kept: Extend goes on from frame {frame}", frame - 1),
            ),
            _ => Self::error_text(&e.to_string()),
        };
        n.settings_action = matches!(e, EngineError::Load { .. } | EngineError::NoModel);
        n
    }
}

/// Engine messages read "what happened: what to do"; split at the last ": " when there is one.
fn split_fix(text: &str) -> (&str, Option<&str>) {
    match text.rfind(": ") {
        Some(i) if i > 0 && i + 2 < text.len() => (&text[..i], Some(&text[i + 2..])),
        _ => (text, None),
    }
}

#[derive(Debug, Default)]
pub struct Notices {
    items: Vec<Notice>,
}

impl Notices {
    pub fn push(&mut self, n: Notice) {
        // The same message twice in a row is shown once (refreshed).
        self.items.retain(|m| !(m.text == n.text && m.level == n.level));
        self.items.push(n);
        while self.items.len() > MAX {
            self.items.remove(0);
        }
    }
    pub fn items(&self) -> &[Notice] {
        &self.items
    }
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|n| n.level == Level::Error)
    }
    pub fn clear_errors(&mut self) {
        self.items.retain(|n| n.level != Level::Error);
    }
    pub fn expire(&mut self, now: Instant) {
        self.items.retain(|n| n.level == Level::Error || now.duration_since(n.at) < FADE_AFTER);
    }
    fn remove(&mut self, i: usize) {
        if i < self.items.len() {
            self.items.remove(i);
        }
    }
    fn next_expiry(&self, now: Instant) -> Option<Duration> {
        self.items
            .iter()
            .filter(|n| n.level != Level::Error)
            .map(|n| FADE_AFTER.saturating_sub(now.duration_since(n.at)))
            .min()
    }
}

impl App {
    pub(crate) fn notices_ui(&mut self, ui: &mut egui::Ui) {
        let mut dismiss = None;
        let mut open_settings = false;
        let width = ui.available_width().min(560.0);
        for (i, n) in self.notices.items().iter().enumerate() {
            let color = match n.level {
                Level::Error => theme::ERROR,
                Level::Warning => theme::WARN,
                Level::Info => theme::TEXT_DIM,
            };
            let title = match n.level {
                Level::Error => "Error",
                Level::Warning => "Warning",
                Level::Info => "Note",
            };
            egui::Frame::new()
                .fill(egui::Color32::from_rgba_unmultiplied(22, 25, 32, 240))
                .stroke(egui::Stroke::new(1.0, color.gamma_multiply(0.7)))
                .corner_radius(6)
                .inner_margin(egui::Margin::symmetric(10, 7))
                .show(ui, |ui| {
                    ui.set_width(width - 22.0);
                    ui.horizontal(|ui| {
                        ui.label(egui::RichText::new(title).color(color).strong());
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            if ui.small_button("Dismiss").on_hover_text("Dismiss this message").clicked() {
                                dismiss = Some(i);
                            }
                            if n.settings_action && ui.small_button("Open settings").clicked() {
                                open_settings = true;
                            }
                        });
                    });
                    ui.add(egui::Label::new(egui::RichText::new(capitalise(&n.text)).color(theme::TEXT)).wrap());
                    if let Some(fix) = &n.fix {
                        ui.add(
                            egui::Label::new(egui::RichText::new(format!("Fix: {}", capitalise(fix))).color(color))
                                .wrap(),
                        );
                    }
                });
            ui.add_space(4.0);
        }
        if let Some(i) = dismiss {
            self.notices.remove(i);
        }
        if open_settings {
            self.settings_open = true;
        }
        if let Some(d) = self.notices.next_expiry(Instant::now()) {
            ui.ctx().request_repaint_after(d);
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_messages_split_into_problem_and_fix() {
        let n = Notice::from_engine(&EngineError::NoTake);
        assert_eq!(n.text, "there is no take yet");
        assert_eq!(n.fix.as_deref(), Some("generate first"));
        let mut ns = Notices::default();
        for i in 0..6 {
            ns.push(Notice::warning(&format!("w{i}"), "x"));
        }
        assert_eq!(ns.items().len(), MAX);
        ns.expire(Instant::now() + FADE_AFTER * 2);
        assert!(ns.items().is_empty());
    }
}
