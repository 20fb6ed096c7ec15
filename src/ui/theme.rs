//! Spool's look: a dark, low-glare theme that keeps the picture the brightest thing on screen, one
//! warm accent for the actions that make frames, and a small type scale for a clear hierarchy.

use egui::{Color32, CornerRadius, FontFamily, FontId, Margin, Stroke, TextStyle, Visuals};

/// The window's clear colour, which every panel shows through.
pub const PANEL: Color32 = Color32::from_rgb(21, 24, 30);
/// Raised surfaces inside panels (cards, the HUD).
pub const CARD: Color32 = Color32::from_rgb(28, 32, 40);
/// Inputs and inactive widgets.
pub const WIDGET: Color32 = Color32::from_rgb(36, 41, 51);
pub const WIDGET_HOVER: Color32 = Color32::from_rgb(48, 54, 67);
pub const LINE: Color32 = Color32::from_rgb(44, 49, 60);
pub const TEXT: Color32 = Color32::from_rgb(214, 219, 228);
pub const TEXT_DIM: Color32 = Color32::from_rgb(138, 146, 160);
/// The accent: the actions that make frames, the playhead, live state.
pub const ACCENT: Color32 = Color32::from_rgb(255, 150, 66);
pub const ACCENT_DIM: Color32 = Color32::from_rgb(120, 72, 36);
/// Text on accent fills.
pub const ON_ACCENT: Color32 = Color32::from_rgb(26, 18, 10);
pub const OK: Color32 = Color32::from_rgb(94, 201, 140);
pub const WARN: Color32 = Color32::from_rgb(240, 196, 84);
pub const ERROR: Color32 = Color32::from_rgb(244, 102, 102);
/// Segment colours in the prompt timeline, cycled.
pub const SEGMENTS: [Color32; 5] = [
    Color32::from_rgb(74, 144, 226),
    Color32::from_rgb(155, 109, 230),
    Color32::from_rgb(64, 181, 173),
    Color32::from_rgb(222, 104, 160),
    Color32::from_rgb(130, 170, 80),
];

/// The frame view's letterbox.
pub const VIEW_BG: Color32 = Color32::from_rgb(8, 9, 12);

pub fn segment_color(i: usize) -> Color32 {
    SEGMENTS[i % SEGMENTS.len()]
}

/// Installs the theme on a context.
pub fn apply(ctx: &egui::Context) {
    ctx.set_theme(egui::Theme::Dark);
    ctx.set_visuals_of(egui::Theme::Dark, visuals());
    ctx.style_mut_of(egui::Theme::Dark, |style| {
        style.text_styles = [
            (TextStyle::Heading, FontId::new(16.0, FontFamily::Proportional)),
            (TextStyle::Body, FontId::new(13.5, FontFamily::Proportional)),
            (TextStyle::Button, FontId::new(13.5, FontFamily::Proportional)),
            (TextStyle::Small, FontId::new(11.0, FontFamily::Proportional)),
            (TextStyle::Monospace, FontId::new(12.5, FontFamily::Monospace)),
        ]
        .into();
        let s = &mut style.spacing;
        s.item_spacing = egui::vec2(8.0, 6.0);
        s.button_padding = egui::vec2(10.0, 4.0);
        s.interact_size = egui::vec2(36.0, 24.0);
        s.window_margin = Margin::same(12);
        s.slider_width = 120.0;
        s.combo_width = 140.0;
    });
}

fn visuals() -> Visuals {
    let mut v = Visuals::dark();
    v.panel_fill = PANEL;
    v.window_fill = CARD;
    v.extreme_bg_color = Color32::from_rgb(16, 18, 23);
    v.faint_bg_color = CARD;
    v.text_edit_bg_color = Some(Color32::from_rgb(16, 18, 23));
    v.override_text_color = None;
    v.hyperlink_color = ACCENT;
    v.warn_fg_color = WARN;
    v.error_fg_color = ERROR;
    v.window_stroke = Stroke::new(1.0, LINE);
    v.window_corner_radius = CornerRadius::same(8);
    v.selection.bg_fill = ACCENT_DIM;
    v.selection.stroke = Stroke::new(1.0, ACCENT);
    let r = CornerRadius::same(5);
    let w = &mut v.widgets;
    w.noninteractive.bg_fill = PANEL;
    w.noninteractive.weak_bg_fill = PANEL;
    w.noninteractive.bg_stroke = Stroke::new(1.0, LINE);
    w.noninteractive.fg_stroke = Stroke::new(1.0, TEXT);
    w.noninteractive.corner_radius = r;
    w.inactive.bg_fill = WIDGET;
    w.inactive.weak_bg_fill = WIDGET;
    w.inactive.bg_stroke = Stroke::NONE;
    w.inactive.fg_stroke = Stroke::new(1.0, TEXT);
    w.inactive.corner_radius = r;
    w.hovered.bg_fill = WIDGET_HOVER;
    w.hovered.weak_bg_fill = WIDGET_HOVER;
    w.hovered.bg_stroke = Stroke::new(1.0, Color32::from_rgb(80, 88, 104));
    w.hovered.fg_stroke = Stroke::new(1.5, Color32::WHITE);
    w.hovered.corner_radius = r;
    w.active.bg_fill = Color32::from_rgb(58, 65, 80);
    w.active.weak_bg_fill = Color32::from_rgb(58, 65, 80);
    w.active.bg_stroke = Stroke::new(1.0, ACCENT);
    w.active.fg_stroke = Stroke::new(1.5, Color32::WHITE);
    w.active.corner_radius = r;
    w.open.corner_radius = r;
    v
}

/// The primary action's button: accent fill, dark text.
pub fn primary(text: &str) -> egui::Button<'static> {
    egui::Button::new(egui::RichText::new(text.to_string()).color(ON_ACCENT).strong()).fill(ACCENT)
}

/// A section title inside a panel.
pub fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(2.0);
    ui.label(egui::RichText::new(title.to_uppercase()).size(11.0).color(TEXT_DIM).strong());
}

/// A panel frame with the theme's padding.
pub fn panel_frame() -> egui::Frame {
    // No fill: panels sit on the window's clear colour (`PANEL`). A software rasterizer (lavapipe)
    // pays for every covered pixel, ~25 ms per full 1280×800 layer; drawing the backdrop as panel
    // fills cost two such layers per frame (BENCHMARKS.md, "Desktop app").
    egui::Frame::new().inner_margin(Margin::symmetric(12, 10))
}

/// A raised card.
pub fn card() -> egui::Frame {
    egui::Frame::new().fill(CARD).corner_radius(CornerRadius::same(6)).inner_margin(Margin::same(8))
}
