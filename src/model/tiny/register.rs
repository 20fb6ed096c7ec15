//! Where a frame's content sits relative to another's, on the torus spool-tiny's frames live on
//! (an object leaving one edge shows at the other): the integer shift that best overlaps the two,
//! and the frame moved by it. A keyframe uses it to redraw an object at the place the first-frame
//! path draws it (the caption's layout) and move it back to where the rollout had it.

use crate::model::Frame;

/// Each pixel's distance from the frame's median colour (summed over the channels): the content,
/// with a solid background at zero.
fn foreground(frame: &Frame) -> Vec<f32> {
    let n = (frame.width * frame.height) as usize;
    let mut out = vec![0f32; n];
    for c in 0..3 {
        let plane = &frame.planar[c * n..(c + 1) * n];
        let mut sorted = plane.to_vec();
        let mid = n / 2;
        let (_, median, _) = sorted.select_nth_unstable_by(mid, f32::total_cmp);
        let median = *median;
        for (o, v) in out.iter_mut().zip(plane) {
            *o += (v - median).abs();
        }
    }
    out
}

/// The share of `frame`'s pixels within 0.1 (summed over the channels, in [-1, 1] units) of its
/// median colour: near 1 minus the objects' area on a plain background, low on a gradient or a
/// pattern. Moving a frame on the torus is only harmless where the background is plain: a gradient
/// or stripes would show their seam.
pub fn plain_share(frame: &Frame) -> f32 {
    let fg = foreground(frame);
    fg.iter().filter(|v| **v < 0.1).count() as f32 / fg.len() as f32
}

/// `map` (`w × h`) averaged over `k × k` blocks.
fn pooled(map: &[f32], w: usize, h: usize, k: usize) -> Vec<f32> {
    let (pw, ph) = (w / k, h / k);
    let mut out = vec![0f32; pw * ph];
    for y in 0..ph * k {
        for x in 0..pw * k {
            out[(y / k) * pw + x / k] += map[y * w + x];
        }
    }
    out
}

/// Σ a[(y + dy, x + dx)]·b[(y, x)] over the torus.
fn overlap(a: &[f32], b: &[f32], w: usize, h: usize, dy: usize, dx: usize) -> f32 {
    let mut s = 0f32;
    for y in 0..h {
        let (ra, rb) = (((y + dy) % h) * w, y * w);
        for x in 0..w {
            s += a[ra + (x + dx) % w] * b[rb + x];
        }
    }
    s
}

/// The shift `(dy, dx)` (rows, columns, each in `0..size`) by which `frame`'s content is moved
/// from `reference`'s: [`roll`]ing `frame` by `(−dy, −dx)` best overlaps the two. Coarse to fine: every
/// shift on 4×4 blocks, then ±3 pixels around the best. Both frames must have one size.
pub fn torus_shift(frame: &Frame, reference: &Frame) -> (u32, u32) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    assert_eq!((w, h), (reference.width as usize, reference.height as usize), "frames of one size");
    let (a, b) = (foreground(frame), foreground(reference));
    const K: usize = 4;
    let (pa, pb, pw, ph) = (pooled(&a, w, h, K), pooled(&b, w, h, K), w / K, h / K);
    let mut best = (f32::NEG_INFINITY, 0, 0);
    for dy in 0..ph {
        for dx in 0..pw {
            let s = overlap(&pa, &pb, pw, ph, dy, dx);
            if s > best.0 {
                best = (s, dy * K, dx * K);
            }
        }
    }
    let (_, cy, cx) = best;
    let mut fine = (f32::NEG_INFINITY, cy, cx);
    for oy in -3i64..=3 {
        for ox in -3i64..=3 {
            let dy = (cy as i64 + oy).rem_euclid(h as i64) as usize;
            let dx = (cx as i64 + ox).rem_euclid(w as i64) as usize;
            let s = overlap(&a, &b, w, h, dy, dx);
            if s > fine.0 {
                fine = (s, dy, dx);
            }
        }
    }
    (fine.1 as u32, fine.2 as u32)
}

/// `frame` moved by `(dy, dx)` on the torus: the pixel at (y, x) goes to (y + dy, x + dx).
pub fn roll(frame: &Frame, dy: i64, dx: i64) -> Frame {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let n = w * h;
    let mut planar = vec![0f32; frame.planar.len()];
    for c in 0..3 {
        for y in 0..h {
            let ty = (y as i64 + dy).rem_euclid(h as i64) as usize;
            for x in 0..w {
                let tx = (x as i64 + dx).rem_euclid(w as i64) as usize;
                planar[c * n + ty * w + tx] = frame.planar[c * n + y * w + x];
            }
        }
    }
    Frame { width: frame.width, height: frame.height, planar }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 64×64 frame with a red 12×9 block at (row 10, column 20) and a smaller blue one.
    fn scene() -> Frame {
        let (w, h) = (64usize, 64usize);
        let mut planar = vec![0.1f32; 3 * w * h];
        for y in 10..22 {
            for x in 20..29 {
                planar[y * w + x] = 0.9;
                planar[w * h + y * w + x] = -0.6;
            }
        }
        for y in 30..34 {
            for x in 40..44 {
                planar[2 * w * h + y * w + x] = 0.8;
            }
        }
        Frame { width: w as u32, height: h as u32, planar }
    }

    #[test]
    fn a_plain_background_is_told_from_a_gradient() {
        assert!(plain_share(&scene()) > 0.9);
        let (w, h) = (64usize, 64usize);
        let ramp: Vec<f32> = (0..3 * w * h).map(|i| ((i % (w * h)) / w) as f32 / h as f32 * 2.0 - 1.0).collect();
        assert!(plain_share(&Frame { width: w as u32, height: h as u32, planar: ramp }) < 0.2);
    }

    #[test]
    fn a_moved_frame_is_found_where_it_went_across_the_edges_too() {
        let reference = scene();
        for (dy, dx) in [(0i64, 0i64), (5, 3), (-7, 13), (50, -30), (31, 62)] {
            let moved = roll(&reference, dy, dx);
            let (sy, sx) = torus_shift(&moved, &reference);
            assert_eq!((i64::from(sy), i64::from(sx)), (dy.rem_euclid(64), dx.rem_euclid(64)), "moved by ({dy}, {dx})");
            assert_eq!(roll(&moved, -i64::from(sy), -i64::from(sx)), reference, "moving it back restores it");
        }
    }
}
