//! Thumbnails for the timeline strip: small egui textures made from frames, kept in a bounded cache.
//!
//! A thumbnail is made once per frame id (frames never change), at most a few per UI frame so
//! scrolling a long take never stalls the UI; the rest follow on the next frames.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::model::Frame;
use crate::store::FrameId;

/// Thumbnails kept.
const CAPACITY: usize = 512;
/// Longest side of a thumbnail, in pixels.
const MAX_SIDE: u32 = 64;

#[derive(Default)]
pub struct Thumbs {
    map: HashMap<FrameId, egui::TextureHandle>,
    order: VecDeque<FrameId>,
    /// Thumbnails made during the current UI frame.
    made_this_frame: usize,
}

impl Thumbs {
    pub fn begin_frame(&mut self) {
        self.made_this_frame = 0;
    }

    /// The thumbnail for `id`, making it with `load` if the per-frame budget allows.
    pub fn get(
        &mut self,
        ctx: &egui::Context,
        id: FrameId,
        budget: usize,
        load: impl FnOnce() -> Option<Arc<Frame>>,
    ) -> Option<egui::TextureId> {
        if let Some(t) = self.map.get(&id) {
            return Some(t.id());
        }
        if self.made_this_frame >= budget {
            return None;
        }
        self.made_this_frame += 1;
        let frame = load()?;
        let image = downscale(&frame);
        let tex = ctx.load_texture(format!("thumb-{}", id.0), image, egui::TextureOptions::LINEAR);
        let tid = tex.id();
        self.map.insert(id, tex);
        self.order.push_back(id);
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        Some(tid)
    }

    /// Whether a thumbnail was skipped for lack of budget (so another frame should be drawn).
    pub fn starved(&self, budget: usize) -> bool {
        self.made_this_frame >= budget
    }
}

/// Box-filters a frame down so its longest side is at most [`MAX_SIDE`].
fn downscale(f: &Frame) -> egui::ColorImage {
    let rgb = f.to_rgb8();
    let (w, h) = (f.width.max(1), f.height.max(1));
    let k = w.max(h).div_ceil(MAX_SIDE).max(1);
    let (tw, th) = (w.div_ceil(k), h.div_ceil(k));
    let mut out = Vec::with_capacity((tw * th * 3) as usize);
    for ty in 0..th {
        for tx in 0..tw {
            let mut acc = [0u32; 3];
            let mut n = 0u32;
            for y in ty * k..((ty + 1) * k).min(h) {
                for x in tx * k..((tx + 1) * k).min(w) {
                    let i = ((y * w + x) * 3) as usize;
                    for c in 0..3 {
                        acc[c] += u32::from(rgb[i + c]);
                    }
                    n += 1;
                }
            }
            out.extend(acc.iter().map(|v| (v / n.max(1)) as u8));
        }
    }
    egui::ColorImage::from_rgb([tw as usize, th as usize], &out)
}
