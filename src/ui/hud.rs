//! The live latency readout: compact, always visible above the frame view.
//!
//! Time to first frame, per-frame generation time (rolling p50/p95 from the engine), generation fps
//! against playback fps, frames buffered ahead of the playhead, cache memory, model and device, how
//! long a frame takes from decode to the screen, and a sparkline of recent per-frame times.

use std::time::{Duration, Instant};

use super::app::App;
use super::theme;

fn ms(d: Option<Duration>) -> String {
    d.map_or("–".to_string(), |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
}

fn bytes(n: usize) -> String {
    match n {
        0 => "0".to_string(),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n if n < 1 << 30 => format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)),
        n => format!("{:.2} GiB", n as f64 / (1024.0 * 1024.0 * 1024.0)),
    }
}

/// The readout's value column: wider than any figure it shows ("9999 ms · 9999 ms").
const VALUE_WIDTH: f32 = 130.0;

impl App {
    pub(crate) fn hud(&mut self, ui: &mut egui::Ui) {
        let s = &self.session.stats;
        let gen_fps = self.session.arrival_fps(Instant::now()).or(s.steady_fps);
        let ahead = self.session.current_len().saturating_sub(self.play.playhead + 1);
        // Where the window is watched, the time to its pixels on screen; else to the pass that draws it.
        let shown = self.screen.as_ref().and_then(|s| Some((s.lag.quantiles([0.5])?, s.meaning())));
        let (lag, lag_tip) = match shown {
            Some(([p50], meaning)) => (Some(p50), meaning),
            None => (
                self.display_lag.quantiles([0.5]).map(|[p50]| p50),
                "Frame decoded to the window pass that draws it, median (the renderer then takes that pass's raster time)",
            ),
        };
        let model = self.session.model.as_ref().map_or("no model".to_string(), |m| format!("{} · {}", m.id, m.device));
        let play_fps = self.settings.playback_fps;
        let realtime = gen_fps.map(|g| g >= f64::from(play_fps));
        let gen_color = realtime.map_or(theme::TEXT, |r| if r { theme::OK } else { theme::WARN });
        let rows: Vec<(&str, String, egui::Color32, &str)> = vec![
            ("First frame", ms(s.first_frame), theme::TEXT, "Command to first frame decoded, text encoding included"),
            (
                "Per frame",
                format!("{} · {}", ms(s.frame_p50), ms(s.frame_p95)),
                theme::TEXT,
                "Generation time per frame, rolling median and 95th percentile",
            ),
            (
                "Gen / play",
                format!("{} / {play_fps:.0} fps", gen_fps.map_or("–".to_string(), |f| format!("{f:.1}"))),
                gen_color,
                "Frames generated per second against the playback rate: green keeps up in real time",
            ),
            ("Ahead", format!("{ahead} frames"), theme::TEXT, "Frames made but not yet played"),
            ("Cache", bytes(s.cache_bytes), theme::TEXT, "Memory held by the model's cache"),
            ("To screen", ms(lag), theme::TEXT, lag_tip),
        ];
        let card = theme::card().show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(egui::RichText::new("LIVE READOUT").size(11.0).color(theme::TEXT_DIM).strong());
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.add(egui::Label::new(egui::RichText::new(model).size(11.0).color(theme::TEXT_DIM)).truncate());
                });
            });
            egui::Grid::new("hud-grid").num_columns(2).spacing(egui::vec2(10.0, 2.0)).show(ui, |ui| {
                for (name, value, color, help) in rows {
                    ui.label(egui::RichText::new(name).size(12.0).color(theme::TEXT_DIM)).on_hover_text(help);
                    // A value column of one width: egui's grid asks for two more passes whenever a
                    // column's width changes (a figure gaining a digit), each a whole window's raster.
                    let r = ui
                        .scope(|ui| {
                            ui.set_min_width(VALUE_WIDTH);
                            // One label per figure that also carries its name, so screen readers (and
                            // tests) read "First frame 142 ms", not a bare number.
                            ui.label(egui::RichText::new(&value).monospace().color(color))
                        })
                        .inner;
                    let full = format!("{name} {value}");
                    r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &full));
                    ui.end_row();
                }
            });
            ui.add_space(4.0);
            let w = ui.available_width();
            self.sparkline(ui, egui::vec2(w, 30.0));
        });
        self.hud_rect = card.response.rect;
    }

    fn sparkline(&self, ui: &mut egui::Ui, size: egui::Vec2) {
        let (rect, r) = ui.allocate_exact_size(size, egui::Sense::hover());
        let p = ui.painter();
        p.rect_filled(rect, 3.0, egui::Color32::from_rgb(16, 18, 23));
        let times: Vec<f32> = self.session.frame_times.iter().map(|d| d.as_secs_f32() * 1000.0).collect();
        if times.len() >= 2 {
            let max = times.iter().copied().fold(1.0f32, f32::max) * 1.15;
            let n = super::session::SPARK_LEN as f32;
            let pts: Vec<egui::Pos2> = times
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let x = rect.right() - (times.len() - 1 - i) as f32 * rect.width() / (n - 1.0);
                    egui::pos2(x, rect.bottom() - 2.0 - (t / max) * (rect.height() - 4.0))
                })
                .collect();
            // The time one frame may take to keep up with playback.
            let budget = 1000.0 / self.settings.playback_fps.max(1.0);
            if budget < max {
                let y = rect.bottom() - 2.0 - (budget / max) * (rect.height() - 4.0);
                p.line_segment(
                    [egui::pos2(rect.left(), y), egui::pos2(rect.right(), y)],
                    egui::Stroke::new(1.0, theme::OK.gamma_multiply(0.5)),
                );
            }
            p.add(egui::Shape::line(pts, egui::Stroke::new(1.5, theme::ACCENT)));
        }
        let last = self.session.frame_times.back().map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0));
        r.on_hover_text(format!(
            "Per-frame generation time, last {} frames{}; the green line is the playback budget",
            self.session.frame_times.len(),
            last.map_or(String::new(), |l| format!(" (latest {l})"))
        ));
    }
}
