//! The playback and timeline strip along the bottom: transport (play/pause, step, live, loop, frame
//! counter, branch), the prompt timeline's segments, and a scrubbable strip of thumbnails. The
//! segment lane and the thumbnails share one frame axis, so a segment sits over the frames it made.

use super::app::App;
use super::theme;
use crate::timeline::Segment;

/// Thumbnails made per UI frame at most (the rest follow on the next frames).
const THUMB_BUDGET: usize = 6;
const LANE_H: f32 = 24.0;
const STRIP_H: f32 = 50.0;

/// Maps frames to x positions across a rect.
#[derive(Clone, Copy)]
struct Axis {
    rect: egui::Rect,
    len: f32,
}

impl Axis {
    fn x(&self, frame: f64) -> f32 {
        self.rect.left() + (frame as f32 / self.len) * self.rect.width()
    }
    fn frame(&self, x: f32) -> f64 {
        (((x - self.rect.left()) / self.rect.width()).clamp(0.0, 1.0) * self.len) as f64
    }
}

impl App {
    /// Frames the axis spans: the take, the segments planned beyond it and the target, with room to grow.
    fn axis_len(&self) -> u64 {
        let len = self.session.current_len();
        let last_seg = self.draft.segments.last().map_or(0, |s| s.start + 8);
        let target = match self.session.progress {
            Some((_, _, Some(t))) => t,
            _ => 0,
        };
        let planned = if self.session.current.is_none() && !self.forever { u64::from(self.gen_frames) } else { 0 };
        len.max(last_seg).max(target).max(planned).max(16)
    }

    pub(crate) fn timeline_strip(&mut self, ui: &mut egui::Ui) {
        self.thumbs.begin_frame();
        self.transport(ui);
        ui.add_space(4.0);
        let width = ui.available_width();
        let (lane_rect, _) = ui.allocate_exact_size(egui::vec2(width, LANE_H), egui::Sense::hover());
        ui.add_space(3.0);
        let (strip_rect, _) = ui.allocate_exact_size(egui::vec2(width, STRIP_H), egui::Sense::hover());
        let axis_len = self.axis_len() as f32;
        let lane = Axis { rect: lane_rect, len: axis_len };
        let strip = Axis { rect: strip_rect, len: axis_len };
        self.segment_lane(ui, lane);
        self.thumb_strip(ui, strip);
        // Playhead across both lanes.
        if self.session.current_len() > 0 {
            let x = strip.x(self.play.playhead as f64 + 0.5);
            let top = lane_rect.top();
            ui.painter().line_segment(
                [egui::pos2(x, top), egui::pos2(x, strip_rect.bottom())],
                egui::Stroke::new(2.0, theme::ACCENT),
            );
            ui.painter().circle_filled(egui::pos2(x, top), 3.5, theme::ACCENT);
        }
    }

    fn transport(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let len = self.session.current_len();
            let has = len > 0;
            if ui.add_enabled(has, egui::Button::new("⏮")).on_hover_text("First frame (Home)").clicked() {
                self.seek(0);
            }
            if ui.add_enabled(has, egui::Button::new("◀")).on_hover_text("Previous frame (←)").clicked() {
                self.step_frames(-1);
            }
            let play_label = if self.play.playing { "⏸ Pause playback" } else { "⏵ Play" };
            if ui
                .add_enabled(has, egui::Button::new(play_label))
                .on_hover_text("Play or pause at the playback rate (Space)")
                .clicked()
            {
                self.toggle_play();
            }
            if ui.add_enabled(has, egui::Button::new("▶")).on_hover_text("Next frame (→)").clicked() {
                self.step_frames(1);
            }
            if ui.add_enabled(has, egui::Button::new("⏭")).on_hover_text("Last frame (End)").clicked() {
                self.seek(u64::MAX);
            }
            let live = ui
                .add(egui::Button::selectable(self.play.live, "⏺ Live"))
                .on_hover_text("Follow the newest frame as it is made");
            if live.clicked() {
                if self.play.live {
                    self.play.live = false;
                } else {
                    self.go_live();
                }
            }
            ui.toggle_value(&mut self.play.looping, "Loop").on_hover_text("Loop playback");
            let counter = if has { format!("{} / {}", self.play.playhead, len - 1) } else { "– / –".to_string() };
            ui.label(egui::RichText::new(counter).monospace().color(theme::TEXT)).on_hover_text("Frame / last frame");
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let add = ui
                    .add(egui::Button::new("+ Segment"))
                    .on_hover_text("Add a prompt segment at the playhead (or after the last one)");
                if add.clicked() {
                    self.add_segment();
                }
                let b = ui
                    .add_enabled(has, egui::Button::new(format!("Branch from frame {}", self.play.playhead)))
                    .on_hover_text(
                        "Rewind to this frame and branch: a new take keeps frames up to here, the old take stays",
                    )
                    .on_disabled_hover_text("Generate a take first");
                if b.clicked() {
                    self.branch_here();
                }
            });
        });
    }

    /// A new segment at the playhead, or a few frames past the last segment, with the editor's prompt.
    pub(crate) fn add_segment(&mut self) {
        let last = self.draft.segments.last().map_or(0, |s| s.start);
        let at_head = self.play.playhead + 1;
        let start = if self.session.current_len() > 0
            && at_head > last
            && !self.draft.segments.iter().any(|s| s.start == at_head)
        {
            at_head
        } else {
            last + 16
        };
        let text = if self.prompt.trim().is_empty() {
            "a white star on a night sky".to_string()
        } else {
            self.prompt.trim().to_string()
        };
        self.edit_timeline(true, |t| t.set_segment(Segment::new(start, text)));
        self.selected_segment = self.draft.segments.iter().position(|s| s.start == start);
    }

    fn segment_lane(&mut self, ui: &mut egui::Ui, axis: Axis) {
        let painter = ui.painter().clone();
        painter.rect_filled(axis.rect, 4.0, theme::CARD);
        let n = self.draft.segments.len();
        let mut select = None;
        let mut drag: Option<(usize, f64)> = None;
        let mut drag_start = None;
        let mut drag_end = false;
        for i in 0..n {
            let seg = &self.draft.segments[i];
            let end = self.draft.segments.get(i + 1).map_or(axis.len as f64, |s| s.start as f64);
            let x0 = axis.x(seg.start as f64);
            let x1 = axis.x(end).max(x0 + 4.0);
            let rect = egui::Rect::from_x_y_ranges(x0..=x1 - 1.0, axis.rect.y_range()).intersect(axis.rect);
            let color = theme::segment_color(i);
            let selected = self.selected_segment == Some(i);
            let id = ui.scope_id().with(("segment", i));
            let sense = if i == 0 { egui::Sense::click() } else { egui::Sense::click_and_drag() };
            let r = ui.interact(rect, id, sense);
            let label = segment_label(seg);
            let info_label = format!("Segment {} at frame {}: {}", i + 1, seg.start, label);
            r.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, &info_label));
            let fill = if selected || r.hovered() { color.gamma_multiply(0.75) } else { color.gamma_multiply(0.45) };
            painter.rect_filled(rect, 4.0, fill);
            if seg.blend > 0 {
                let bx = axis.x(seg.start as f64 + f64::from(seg.blend)).min(rect.right());
                let blend_rect = egui::Rect::from_x_y_ranges(rect.left()..=bx, rect.y_range());
                painter.rect_filled(blend_rect, 4.0, color.gamma_multiply(0.25));
            }
            if selected {
                painter.rect_stroke(rect, 4.0, egui::Stroke::new(1.5, egui::Color32::WHITE), egui::StrokeKind::Inside);
            }
            let text_rect = rect.shrink2(egui::vec2(6.0, 2.0));
            if text_rect.width() > 16.0 {
                let galley =
                    painter.layout(label, egui::FontId::proportional(11.5), egui::Color32::WHITE, f32::INFINITY);
                let clip = painter.with_clip_rect(text_rect.intersect(painter.clip_rect()));
                clip.galley(
                    egui::pos2(text_rect.left(), text_rect.center().y - galley.size().y / 2.0),
                    galley,
                    egui::Color32::WHITE,
                );
            }
            if r.clicked() {
                select = Some(i);
            }
            if r.drag_started() {
                drag_start = Some(i);
            }
            if r.dragged()
                && let Some(p) = r.interact_pointer_pos()
            {
                drag = Some((i, axis.frame(p.x)));
            }
            if r.drag_stopped() {
                drag_end = true;
            }
            r.on_hover_text(format!("{info_label}\nClick to edit; drag to move"));
        }
        if let Some(i) = drag_start {
            self.record_edit();
            self.selected_segment = Some(i);
        }
        if let Some((i, f)) = drag {
            let lo = self.draft.segments[i - 1].start + 1;
            let hi = self.draft.segments.get(i + 1).map_or(u64::MAX, |s| s.start - 1);
            self.draft.segments[i].start = (f.round() as u64).clamp(lo, hi);
        }
        if drag_end {
            self.push_timeline();
        }
        if let Some(i) = select {
            self.selected_segment = if self.selected_segment == Some(i) { None } else { Some(i) };
        }
    }

    fn thumb_strip(&mut self, ui: &mut egui::Ui, axis: Axis) {
        let painter = ui.painter().clone();
        painter.rect_filled(axis.rect, 4.0, egui::Color32::from_rgb(16, 18, 23));
        let id = ui.scope_id().with("scrub");
        let r = ui.interact(axis.rect, id, egui::Sense::click_and_drag());
        let len = self.session.current_len();
        let playhead = self.play.playhead;
        r.widget_info(|| egui::WidgetInfo::slider(len > 0, playhead as f64, "Scrub frames"));
        if len > 0
            && (r.clicked() || r.dragged())
            && let Some(p) = r.interact_pointer_pos()
        {
            let f = axis.frame(p.x).floor() as u64;
            self.play.playing = false;
            self.seek(f);
        }
        if len == 0 {
            painter.text(
                axis.rect.center(),
                egui::Align2::CENTER_CENTER,
                "Frames appear here as they are made",
                egui::FontId::proportional(12.0),
                theme::TEXT_DIM,
            );
            return;
        }
        // Made frames: a band, then thumbnails at evenly spaced frames across it.
        let made = egui::Rect::from_x_y_ranges(axis.rect.left()..=axis.x(len as f64), axis.rect.y_range());
        painter.rect_filled(made, 4.0, theme::CARD);
        let thumb_h = axis.rect.height() - 6.0;
        let aspect = self.session.model.as_ref().map_or(1.0, |m| m.width as f32 / m.height.max(1) as f32);
        let thumb_w = (thumb_h * aspect).max(8.0);
        let cells = ((made.width() / (thumb_w + 2.0)).floor() as u64).clamp(1, len);
        let frames = self.session.current_take().map(|t| t.frames.clone()).unwrap_or_default();
        let store = self.engine.store().clone();
        let newest = self.session.newest.clone();
        let ctx = ui.ctx().clone();
        for k in 0..cells {
            let f = (k * len / cells) as usize;
            let Some(&fid) = frames.get(f) else { continue };
            // Each thumbnail sits centred in its share of the made frames.
            let cell_w = made.width() / cells as f32;
            let cx = made.left() + (k as f32 + 0.5) * cell_w;
            let w = thumb_w.min(cell_w - 2.0).max(4.0);
            let rect = egui::Rect::from_center_size(egui::pos2(cx, axis.rect.center().y), egui::vec2(w, thumb_h));
            let tex = self.thumbs.get(&ctx, fid, THUMB_BUDGET, || match &newest {
                Some(n) if n.id == fid => Some(n.frame.clone()),
                _ => store.frame(fid).ok(),
            });
            match tex {
                Some(t) => {
                    painter.image(
                        t,
                        rect,
                        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                        egui::Color32::WHITE,
                    );
                }
                None => {
                    painter.rect_filled(rect, 2.0, theme::WIDGET);
                }
            }
        }
        if self.thumbs.starved(THUMB_BUDGET) {
            ui.ctx().request_repaint();
        }
        // Newest frame tick.
        let nx = axis.x(len as f64);
        painter.line_segment(
            [egui::pos2(nx, axis.rect.top()), egui::pos2(nx, axis.rect.bottom())],
            egui::Stroke::new(1.0, theme::TEXT_DIM),
        );
    }
}

/// A segment's prompts as one short line: "a red circle" or "70% a heart + 30% a square".
pub(crate) fn segment_label(seg: &Segment) -> String {
    if seg.prompts.len() == 1 {
        return seg.prompts[0].text.clone();
    }
    let total: f32 = seg.prompts.iter().map(|p| p.weight).sum::<f32>().max(1e-6);
    seg.prompts.iter().map(|p| format!("{:.0}% {}", 100.0 * p.weight / total, p.text)).collect::<Vec<_>>().join(" + ")
}
