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

impl App {
    pub(crate) fn hud(&mut self, ui: &mut egui::Ui) {
        let s = &self.session.stats;
        let gen_fps = self.session.arrival_fps(Instant::now()).or(s.steady_fps);
        let ahead = self.session.current_len().saturating_sub(self.play.playhead + 1);
        let lag = {
            let mut v: Vec<Duration> = self.display_lag.iter().copied().collect();
            v.sort();
            v.get(v.len() / 2).copied()
        };
        let model = self.session.model.as_ref().map_or("no model".to_string(), |m| format!("{} · {}", m.id, m.device));
        let play_fps = self.settings.playback_fps;
        let realtime = gen_fps.map(|g| g >= f64::from(play_fps));
        let items: Vec<(&str, String, Option<egui::Color32>)> = vec![
            ("First frame", ms(s.first_frame), None),
            ("Frame p50", ms(s.frame_p50), None),
            ("p95", ms(s.frame_p95), None),
            (
                "Gen",
                gen_fps.map_or("–".to_string(), |f| format!("{f:.1} fps")),
                realtime.map(|r| if r { theme::OK } else { theme::WARN }),
            ),
            ("Play", format!("{play_fps:.0} fps"), None),
            ("Ahead", format!("{ahead} f"), None),
            ("Cache", bytes(s.cache_bytes), None),
            ("To screen", ms(lag), None),
            ("", model, None),
        ];
        let spark_w = 132.0;
        let card = theme::card().show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                let text_w = (ui.available_width() - spark_w - 12.0).max(120.0);
                ui.allocate_ui_with_layout(egui::vec2(text_w, 0.0), egui::Layout::left_to_right(egui::Align::Center).with_main_wrap(true), |ui| {
                    ui.spacing_mut().item_spacing = egui::vec2(14.0, 2.0);
                    for (name, value, color) in items {
                        let mut job = egui::text::LayoutJob::default();
                        if !name.is_empty() {
                            job.append(name, 0.0, egui::TextFormat::simple(egui::FontId::proportional(11.0), theme::TEXT_DIM));
                            job.append(" ", 0.0, egui::TextFormat::simple(egui::FontId::proportional(11.0), theme::TEXT_DIM));
                        }
                        job.append(&value, 0.0, egui::TextFormat::simple(egui::FontId::monospace(12.0), color.unwrap_or(theme::TEXT)));
                        ui.label(job);
                    }
                });
                self.sparkline(ui, egui::vec2(spark_w, 30.0));
            });
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
                p.line_segment([egui::pos2(rect.left(), y), egui::pos2(rect.right(), y)], egui::Stroke::new(1.0, theme::OK.gamma_multiply(0.5)));
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
