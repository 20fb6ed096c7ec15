//! Where a frame's content sits relative to another's, on the torus spool-tiny's frames live on
//! (an object leaving one edge shows at the other): the integer shift that best overlaps the two,
//! and the frame moved by it. A keyframe uses it to redraw an object at the place the first-frame
//! path draws it (the caption's layout) and move it back to where the rollout had it.

use crate::model::Frame;

/// What a frame's background is, which says how its content is told from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backdrop {
    /// One colour (a plain background, a starfield): content is what differs from the median colour.
    Plain,
    /// Two colours and the blends between them (stripes, checkers, a gradient, a sunset): content is
    /// what lies off the line through them in colour space.
    TwoTone,
}

/// A frame's content told from its backdrop: the map that registrations overlap.
pub struct Content {
    backdrop: Backdrop,
    map: Vec<f32>,
    width: usize,
    height: usize,
}

impl Content {
    /// `frame`'s content against the backdrop it shows: plain when at least 70% of its pixels are
    /// within 0.1 of its median colour ([`plain_share`]; ~0.8 with one object on a plain background;
    /// a black and white checkerboard reaches 0.5, and moved on the torus it shows its seam).
    pub fn of(frame: &Frame) -> Content {
        let fg = foreground(frame);
        if plain_share(&fg) >= 0.7 {
            Content::with(frame, Backdrop::Plain, fg)
        } else {
            Content::against(frame, Backdrop::TwoTone)
        }
    }

    /// `frame`'s content against `backdrop` (another frame's, to register the two).
    pub fn against(frame: &Frame, backdrop: Backdrop) -> Content {
        let map = match backdrop {
            Backdrop::Plain => foreground(frame),
            Backdrop::TwoTone => off_line(frame),
        };
        Content::with(frame, backdrop, map)
    }

    fn with(frame: &Frame, backdrop: Backdrop, map: Vec<f32>) -> Content {
        Content { backdrop, map, width: frame.width as usize, height: frame.height as usize }
    }

    pub fn backdrop(&self) -> Backdrop {
        self.backdrop
    }

    /// Whether it shows an object: at least 0.5% of the pixels clearly off the backdrop (a 9×9 block
    /// of 128×128).
    fn shows(&self) -> bool {
        self.map.iter().filter(|v| **v > 0.3).count() * 200 >= self.map.len()
    }
}

/// Each channel's median.
fn median_colour(frame: &Frame) -> [f32; 3] {
    let n = (frame.width * frame.height) as usize;
    std::array::from_fn(|c| {
        let mut sorted = frame.planar[c * n..(c + 1) * n].to_vec();
        *sorted.select_nth_unstable_by(n / 2, f32::total_cmp).1
    })
}

/// Each pixel's distance from the frame's median colour (summed over the channels): the content,
/// with a solid background at zero.
fn foreground(frame: &Frame) -> Vec<f32> {
    let n = (frame.width * frame.height) as usize;
    let median = median_colour(frame);
    let mut out = vec![0f32; n];
    for (c, m) in median.iter().enumerate() {
        for (o, v) in out.iter_mut().zip(&frame.planar[c * n..(c + 1) * n]) {
            *o += (v - m).abs();
        }
    }
    out
}

/// Each pixel's distance from the line in colour space through the mean colour along the colours'
/// main axis: on a two-tone backdrop the background (both tones and every blend of them) is near
/// zero and an object of another colour is not. The backdrop's spread outweighs a small object's, so
/// the axis is the backdrop's; the mean of two tones lies between them (a median need not: it is
/// taken per channel).
fn off_line(frame: &Frame) -> Vec<f32> {
    let n = (frame.width * frame.height) as usize;
    let m: [f32; 3] = std::array::from_fn(|c| frame.planar[c * n..(c + 1) * n].iter().sum::<f32>() / n as f32);
    let px = |i: usize| -> [f32; 3] { std::array::from_fn(|c| frame.planar[c * n + i] - m[c]) };
    let mut cov = [[0f32; 3]; 3];
    for i in 0..n {
        let d = px(i);
        for (row, a) in cov.iter_mut().zip(d) {
            for (v, b) in row.iter_mut().zip(d) {
                *v += a * b;
            }
        }
    }
    // The main axis by power iteration (the covariance is symmetric and positive semi-definite).
    let mut axis = [1f32; 3];
    for _ in 0..32 {
        let next: [f32; 3] = std::array::from_fn(|r| (0..3).map(|c| cov[r][c] * axis[c]).sum());
        let norm = next.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm < 1e-12 {
            break;
        }
        axis = next.map(|v| v / norm);
    }
    (0..n)
        .map(|i| {
            let d = px(i);
            let along: f32 = d.iter().zip(axis).map(|(a, b)| a * b).sum();
            d.iter().zip(axis).map(|(a, b)| (a - along * b).powi(2)).sum::<f32>().sqrt()
        })
        .collect()
}

/// The share of a frame's pixels within 0.1 (summed over the channels, in [-1, 1] units) of its
/// median colour, from its [`foreground`] map: near 1 minus the objects' area on a plain background,
/// low on a gradient or a pattern. Moving a frame on the torus is only harmless where the background
/// is plain: a gradient or stripes would show their seam.
fn plain_share(fg: &[f32]) -> f32 {
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
/// from `reference`'s: [`roll`]ing `frame` by `(−dy, −dx)` best overlaps the two. Coarse to fine:
/// every shift on 4×4 blocks, then ±3 pixels around the best. Both must be of one size and told from
/// one backdrop. `None` when either shows no content against a two-tone backdrop (an object of the
/// backdrop's own colours cannot be told from it).
pub fn torus_shift(frame: &Content, reference: &Content) -> Option<(u32, u32)> {
    let (w, h) = (frame.width, frame.height);
    assert_eq!((w, h), (reference.width, reference.height), "frames of one size");
    assert_eq!(frame.backdrop, reference.backdrop, "content told from one backdrop");
    if frame.backdrop == Backdrop::TwoTone && !(frame.shows() && reference.shows()) {
        return None;
    }
    let (a, b) = (&frame.map, &reference.map);
    const K: usize = 4;
    let (pa, pb, pw, ph) = (pooled(a, w, h, K), pooled(b, w, h, K), w / K, h / K);
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
            let s = overlap(a, b, w, h, dy, dx);
            if s > fine.0 {
                fine = (s, dy, dx);
            }
        }
    }
    Some((fine.1 as u32, fine.2 as u32))
}

/// Whether a shift from [`torus_shift`] of a `frame`-sized torus moves by at most `px` pixels on
/// each axis, either way.
pub fn within(shift: (u32, u32), frame: &Frame, px: u32) -> bool {
    let near = |d: u32, size: u32| (d % size).min(size - d % size) <= px;
    near(shift.0, frame.height) && near(shift.1, frame.width)
}

/// The mean absolute difference of two frames' pixels (both of one size).
pub fn change(a: &Frame, b: &Frame) -> f32 {
    a.planar.iter().zip(&b.planar).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.planar.len().max(1) as f32
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
        assert!(plain_share(&foreground(&scene())) > 0.9);
        let (w, h) = (64usize, 64usize);
        let ramp: Vec<f32> = (0..3 * w * h).map(|i| ((i % (w * h)) / w) as f32 / h as f32 * 2.0 - 1.0).collect();
        let ramp = Frame { width: w as u32, height: h as u32, planar: ramp };
        assert!(plain_share(&foreground(&ramp)) < 0.2);
        assert_eq!(Content::of(&ramp).backdrop(), Backdrop::TwoTone);
        assert_eq!(Content::of(&scene()).backdrop(), Backdrop::Plain);
    }

    /// Diagonal stripes of two colours (period 16) with a red 10×10 block at (row 20, column 30).
    fn striped(block: Option<(usize, usize)>) -> Frame {
        let (w, h) = (64usize, 64usize);
        let (blue, green) = ([-0.8f32, -0.5, 0.8], [-0.7f32, 0.6, -0.6]);
        let mut planar = vec![0f32; 3 * w * h];
        for y in 0..h {
            for x in 0..w {
                let tone = if (x + y) % 16 < 8 { blue } else { green };
                let red = block.is_some_and(|(by, bx)| (by..by + 10).contains(&y) && (bx..bx + 10).contains(&x));
                for c in 0..3 {
                    planar[c * w * h + y * w + x] = if red { [0.9, -0.8, -0.8][c] } else { tone[c] };
                }
            }
        }
        Frame { width: w as u32, height: h as u32, planar }
    }

    #[test]
    fn an_object_on_stripes_is_found_where_it_went_not_the_stripes() {
        let reference = striped(Some((20, 30)));
        let against = Content::of(&reference);
        assert_eq!(against.backdrop(), Backdrop::TwoTone);
        // The stripes stay; the object moves (by a shift that also lines the stripes up with themselves
        // for the first case, so a registration on the stripes would be wrong).
        for (dy, dx) in [(8i64, 8i64), (5, 0), (0, 3), (30, -25)] {
            let moved = striped(Some(((20 + dy) as usize, (30 + dx) as usize)));
            let shift = torus_shift(&Content::against(&moved, Backdrop::TwoTone), &against).expect("content");
            assert_eq!(shift, (dy.rem_euclid(64) as u32, dx.rem_euclid(64) as u32), "moved by ({dy}, {dx})");
            assert_eq!(within(shift, &moved, 3), dy.abs().max(dx.abs()) <= 3, "moved by ({dy}, {dx})");
        }
        // No object against the backdrop: nothing to register.
        assert_eq!(torus_shift(&Content::against(&striped(None), Backdrop::TwoTone), &against), None);
    }

    #[test]
    fn a_moved_frame_is_found_where_it_went_across_the_edges_too() {
        let reference = scene();
        for (dy, dx) in [(0i64, 0i64), (5, 3), (-7, 13), (50, -30), (31, 62)] {
            let moved = roll(&reference, dy, dx);
            let (sy, sx) = torus_shift(&Content::of(&moved), &Content::of(&reference)).expect("content");
            assert_eq!((i64::from(sy), i64::from(sx)), (dy.rem_euclid(64), dx.rem_euclid(64)), "moved by ({dy}, {dx})");
            assert_eq!(roll(&moved, -i64::from(sy), -i64::from(sx)), reference, "moving it back restores it");
        }
    }
}
