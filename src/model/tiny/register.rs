//! Where a frame's content sits relative to another's, on the torus spool-tiny's frames live on
//! (an object leaving one edge shows at the other): the integer shift that best overlaps the two,
//! and the frame moved by it — or, on a ramp (a gradient, a sky) or a pattern (stripes, checkers),
//! only its object, cut out and pasted back. A keyframe uses it to redraw an object at the place the first-frame path draws it (the
//! caption's layout) and move it back to where the rollout had it.

use crate::model::Frame;

/// What a frame's background is, which says how its content is told from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backdrop {
    /// One colour (a plain background, a starfield): content is what differs from the median colour.
    Plain,
    /// A smooth ramp (a gradient, a day, night or sunset sky): content is what differs from the plane
    /// fitted to each channel ([`ramp`]).
    Ramp,
    /// Two colours and the blends between them in a pattern (stripes, checkers): content is what lies
    /// off the line through them in colour space.
    TwoTone,
}

/// A frame's content told from its backdrop: the map that registrations overlap.
pub struct Content {
    backdrop: Backdrop,
    map: Vec<f32>,
    /// On a ramp: the plane fitted to the frame, which the map is the distance from.
    plane: Option<Frame>,
    width: usize,
    height: usize,
}

impl Content {
    /// `frame`'s content against the backdrop it shows: plain when at least 70% of its pixels are
    /// within 0.1 of its median colour ([`quiet_share`]; ~0.8 with one object on a plain background;
    /// a black and white checkerboard reaches 0.5, and moved on the torus it shows its seam), else a
    /// ramp when half are within 0.1 of its fitted [`ramp`] (a sky or gradient with an object 0.57–0.94
    /// on the app's frames, clouds 0.17–0.31, stripes and checkerboards 0.26 at most), else two-tone.
    pub fn of(frame: &Frame) -> Content {
        let fg = foreground(frame);
        if quiet_share(&fg) >= 0.7 {
            return Content::with(frame, Backdrop::Plain, fg);
        }
        let on_ramp = Content::on_ramp(frame);
        if quiet_share(&on_ramp.map) >= 0.5 { on_ramp } else { Content::against(frame, Backdrop::TwoTone) }
    }

    /// `frame`'s content against `backdrop` (another frame's, to register the two).
    pub fn against(frame: &Frame, backdrop: Backdrop) -> Content {
        match backdrop {
            Backdrop::Plain => Content::with(frame, backdrop, foreground(frame)),
            Backdrop::Ramp => Content::on_ramp(frame),
            Backdrop::TwoTone => Content::with(frame, backdrop, off_line(frame)),
        }
    }

    /// Each pixel's distance from `frame`'s fitted [`ramp`], the plane kept.
    fn on_ramp(frame: &Frame) -> Content {
        let plane = ramp(frame);
        let map = distance(frame, &plane);
        Content { plane: Some(plane), ..Content::with(frame, Backdrop::Ramp, map) }
    }

    fn with(frame: &Frame, backdrop: Backdrop, map: Vec<f32>) -> Content {
        Content { backdrop, map, plane: None, width: frame.width as usize, height: frame.height as usize }
    }

    pub fn backdrop(&self) -> Backdrop {
        self.backdrop
    }

    /// `frame` (the frame this content was told from) without its object, and the object's matte
    /// ([`object`](Self::object)): what a keyframe needs to move only the object. On a ramp the
    /// object's region is filled from the fitted plane; on a two-tone pattern from the pattern itself,
    /// one period away ([`refill`]). `None` on a plain backdrop, where the whole frame moves on the
    /// torus without a seam, and on a pattern that repeats itself by no shift.
    pub fn cut(&self, frame: &Frame) -> Option<(Frame, Vec<f32>)> {
        if self.backdrop == Backdrop::Plain {
            return None;
        }
        let (region, matte) = self.object();
        Some((self.fill(frame, &region)?, matte))
    }

    /// `frame` (the frame this content was told from) with the pixels of `region` (weights > 0)
    /// taken from its backdrop: the median colour, the fitted plane, or the pattern ([`refill`]).
    pub fn fill(&self, frame: &Frame, region: &[f32]) -> Option<Frame> {
        match (&self.plane, self.backdrop) {
            (Some(plane), _) => Some(paste(frame, plane, region, 0, 0)),
            (None, Backdrop::Plain) => {
                let n = (frame.width * frame.height) as usize;
                let colour = median_colour(frame);
                let planar = (0..3 * n).map(|i| colour[i / n]).collect();
                Some(paste(frame, &Frame { planar, ..frame.clone() }, region, 0, 0))
            }
            (None, _) => refill(frame, region),
        }
    }

    /// The separate objects of the frame: the connected parts (8-neighbour, on the torus) of its
    /// [`object`](Self::object) region, each as its pixels' indices, largest first; parts of fewer
    /// than [`MIN_PART_PX`] pixels are left out.
    pub fn parts(&self) -> Vec<Vec<usize>> {
        self.parts_in(&self.object().0)
    }

    /// [`parts`](Self::parts) of a region already taken from [`object`](Self::object).
    pub fn parts_in(&self, region: &[f32]) -> Vec<Vec<usize>> {
        let (w, h) = (self.width, self.height);
        let mut seen: Vec<bool> = region.iter().map(|r| *r == 0.0).collect();
        let mut parts = Vec::new();
        for start in 0..w * h {
            if seen[start] {
                continue;
            }
            seen[start] = true;
            let (mut part, mut next) = (Vec::new(), vec![start]);
            while let Some(i) = next.pop() {
                part.push(i);
                let (y, x) = ((i / w) as i64, (i % w) as i64);
                for (dy, dx) in (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (dy, dx))) {
                    let j = (y + dy).rem_euclid(h as i64) as usize * w + (x + dx).rem_euclid(w as i64) as usize;
                    if !seen[j] {
                        seen[j] = true;
                        next.push(j);
                    }
                }
            }
            if part.len() >= MIN_PART_PX {
                parts.push(part);
            }
        }
        parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        parts
    }

    /// Each of `parts` (from [`parts`](Self::parts)) as [`pair`] compares them: the object's colour
    /// in `frame`, the frame this content was told from — its pixels' mean where they are clearly off
    /// the backdrop (> 0.3; the part's grown rim is backdrop), or over the whole part if none are —
    /// and its size in pixels.
    pub fn colours(&self, frame: &Frame, parts: &[Vec<usize>]) -> Vec<([f32; 3], usize)> {
        let n = (frame.width * frame.height) as usize;
        let colour = |part: &[usize]| -> [f32; 3] {
            let clear: Vec<usize> = part.iter().copied().filter(|&i| self.map[i] > 0.3).collect();
            let pixels = if clear.is_empty() { part } else { &clear };
            std::array::from_fn(|c| {
                pixels.iter().map(|&i| frame.planar[c * n + i]).sum::<f32>() / pixels.len().max(1) as f32
            })
        };
        parts.iter().map(|p| (colour(p), p.len())).collect()
    }

    /// This content at `pixels` only (zero elsewhere): one object's, to register it alone.
    pub fn only(&self, pixels: &[usize]) -> Content {
        let mut map = vec![0f32; self.map.len()];
        pixels.iter().for_each(|&i| map[i] = self.map[i]);
        Content { backdrop: self.backdrop, map, plane: None, width: self.width, height: self.height }
    }

    /// The frame's object, as two weights per pixel: its region (1 where the object may be: pixels
    /// clearly off the backdrop, > 0.3, with specks of up to 2 × 2 pixels dropped — a night sky's
    /// stars — and grown by 2 pixels over its soft rim; 0 elsewhere) and its matte (how much each
    /// pixel is the object: 1 at 0.3 off the backdrop or more, falling to 0 on it, within the
    /// region), so a pasted object carries no rim of the backdrop where it came from.
    pub fn object(&self) -> (Vec<f32>, Vec<f32>) {
        let (w, h) = (self.width, self.height);
        let clear: Vec<bool> = self.map.iter().map(|v| *v > 0.3).collect();
        let region = grow(&grow(&grow(&shrink(&clear, w, h), w, h), w, h), w, h);
        let matte = self.map.iter().zip(&region).map(|(d, r)| if *r { (d / 0.3).min(1.0) } else { 0.0 }).collect();
        (region.into_iter().map(f32::from).collect(), matte)
    }

    /// How much object it shows: its pixels' distances from the backdrop summed over the object's
    /// region ([`Content::object`]), which grows with the object's size and its opacity alike; `None`
    /// when it shows none ([`Content::shows`]).
    pub fn amount(&self) -> Option<f32> {
        self.shows().then(|| self.map.iter().zip(self.object().0).map(|(d, r)| d * r).sum())
    }

    /// Whether it shows an object: at least 0.5% of the pixels clearly off the backdrop (a 9×9 block
    /// of 128×128).
    fn shows(&self) -> bool {
        self.map.iter().filter(|v| **v > 0.3).count() * 200 >= self.map.len()
    }
}

/// The fewest pixels a part of a frame's content must have to count as an object of its own
/// ([`Content::parts`]): a 6 × 6 block, where the region around the smallest object the model draws
/// (~8 × 8 pixels, grown by 2) has ~140.
const MIN_PART_PX: usize = 36;

/// Which of a reference frame's objects each of a frame's is, from their (mean colour, size in
/// pixels) ([`Content::colours`]; at most as many of the first as of the second,
/// at most four): the one-to-one pairing with the least total difference in colour (summed over the
/// channels) plus half the log ratio of their sizes. `out[i]` is the reference object of `parts[i]`;
/// a reference object left out is one the frame does not show as a part of its own.
pub fn pair(parts: &[([f32; 3], usize)], reference_parts: &[([f32; 3], usize)]) -> Vec<usize> {
    assert!(
        parts.len() <= reference_parts.len() && reference_parts.len() <= 4,
        "at most four reference parts, no fewer"
    );
    let cost = |(a, m): ([f32; 3], usize), (b, n): ([f32; 3], usize)| -> f32 {
        (0..3).map(|c| (a[c] - b[c]).abs()).sum::<f32>() + 0.5 * (m as f32 / n as f32).ln().abs()
    };
    let mut best = (f32::INFINITY, Vec::new());
    let mut order: Vec<usize> = (0..reference_parts.len()).collect();
    permutations(&mut order, 0, &mut |o| {
        let total: f32 = parts.iter().zip(o).map(|(p, &j)| cost(*p, reference_parts[j])).sum();
        if total < best.0 {
            best = (total, o[..parts.len()].to_vec());
        }
    });
    best.1
}

/// Whether `frame` shows `colour` anywhere: at least 20 pixels within 0.5 of it (summed over the
/// channels; two of the palette's colours lie ≥ 0.8 apart).
pub fn shows_colour(frame: &Frame, colour: [f32; 3]) -> bool {
    let n = (frame.width * frame.height) as usize;
    (0..n).filter(|&i| (0..3).map(|c| (frame.planar[c * n + i] - colour[c]).abs()).sum::<f32>() < 0.5).nth(19).is_some()
}

/// Calls `visit` with every order of `items[k..]` (by swaps; `items[..k]` stay).
fn permutations(items: &mut [usize], k: usize, visit: &mut impl FnMut(&[usize])) {
    if k == items.len() {
        return visit(items);
    }
    for i in k..items.len() {
        items.swap(k, i);
        permutations(items, k + 1, visit);
        items.swap(k, i);
    }
}

/// Each channel's median.
fn median_colour(frame: &Frame) -> [f32; 3] {
    let n = (frame.width * frame.height) as usize;
    std::array::from_fn(|c| median(frame.planar[c * n..(c + 1) * n].to_vec()))
}

/// `frame` with the pixels of `region` (weights > 0) taken from the pattern around them. spool-tiny's
/// patterns repeat along a row, a column or a diagonal: stripes along their own direction at any
/// distance, checkerboards by a cell diagonally or by two along an axis. So the shift `v` (one of
/// those four directions, 6 to 64 pixels) by which the frame outside the region best matches itself
/// is the pattern's period, and each region pixel takes the pixel `m·v` away (m = ±1, ±2, … ±8, the
/// nearest first) that lies in the frame and outside the region. `None` when no shift matches the
/// frame outside the region to within [`PERIOD_FIT`] per pixel on average, or a pixel finds no source.
fn refill(frame: &Frame, region: &[f32]) -> Option<Frame> {
    let (w, h) = (frame.width as i64, frame.height as i64);
    let n = (w * h) as usize;
    let hole: Vec<bool> = region.iter().map(|r| *r > 0.0).collect();
    // Within the frame, not across its edges: a pattern need not fit the torus a whole number of
    // times (three checkerboard cells across 128 pixels).
    let at = |y: i64, x: i64| ((0..h).contains(&y) && (0..w).contains(&x)).then(|| (y * w + x) as usize);
    let mut best: Option<(f32, i64, i64)> = None;
    for d in 6..=64i64 {
        for (dy, dx) in [(d, 0), (0, d), (d, d), (d, -d)] {
            let (mut sum, mut count) = (0f32, 0usize);
            // Every other row and column (the answer is the same, for a quarter of the reads); a
            // shift must be judged on at least a quarter of them.
            for y in (0..h).step_by(2) {
                for x in (0..w).step_by(2) {
                    let (Some(i), Some(j)) = (at(y, x), at(y + dy, x + dx)) else { continue };
                    if hole[i] || hole[j] {
                        continue;
                    }
                    sum += (0..3).map(|c| (frame.planar[c * n + i] - frame.planar[c * n + j]).abs()).sum::<f32>();
                    count += 1;
                }
            }
            let fit = sum / count.max(1) as f32;
            if count * 16 >= n && best.is_none_or(|(b, _, _)| fit < b) {
                best = Some((fit, dy, dx));
            }
        }
    }
    let (fit, dy, dx) = best?;
    if fit > PERIOD_FIT {
        return None;
    }
    let mut out = frame.clone();
    for i in (0..n).filter(|&i| hole[i]) {
        let (y, x) = ((i as i64) / w, (i as i64) % w);
        let source = (1..=8i64).flat_map(|m| [m, -m]).filter_map(|m| at(y + m * dy, x + m * dx)).find(|&j| !hole[j])?;
        for c in 0..3 {
            out.planar[c * n + i] = frame.planar[c * n + source];
        }
    }
    Some(out)
}

/// How closely a pattern must repeat itself for [`refill`]: the mean distance (summed over the
/// channels, in [-1, 1] units) between the frame and itself moved by one period, outside the object.
const PERIOD_FIT: f32 = 0.3;

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

/// Each pixel's distance from the line in colour space through the backdrop's mean colour along its
/// colours' main axis: on a two-tone backdrop the background (both tones and every blend of them) is
/// near zero and an object of another colour is not. The line is fitted to the whole frame first,
/// then twice more to the pixels within 0.3 of it: an object of a tenth of the frame tilts the first
/// fit enough to put much of a tone off the line.
fn off_line(frame: &Frame) -> Vec<f32> {
    let n = (frame.width * frame.height) as usize;
    let px = |i: usize| -> [f32; 3] { std::array::from_fn(|c| frame.planar[c * n + i]) };
    let mut off: Vec<f32> = Vec::new();
    for round in 0..3 {
        let kept: Vec<[f32; 3]> = (0..n).filter(|&i| round == 0 || off[i] < 0.3).map(px).collect();
        if kept.len() * 4 < n {
            // Too little of the frame near any line: not a two-tone backdrop; keep the fit made.
            break;
        }
        let (m, axis) = main_axis(&kept);
        off = (0..n)
            .map(|i| {
                let p = px(i);
                let d: [f32; 3] = std::array::from_fn(|c| p[c] - m[c]);
                let along: f32 = d.iter().zip(axis).map(|(a, b)| a * b).sum();
                d.iter().zip(axis).map(|(a, b)| (a - along * b).powi(2)).sum::<f32>().sqrt()
            })
            .collect();
    }
    off
}

/// The mean of `colours` and the unit direction along which they spread most (the backdrop's spread
/// outweighs a small object's, so on a two-tone frame it runs from one tone to the other; the mean of
/// two tones lies between them, which a per-channel median need not).
fn main_axis(colours: &[[f32; 3]]) -> ([f32; 3], [f32; 3]) {
    let count = colours.len().max(1) as f32;
    let m: [f32; 3] = std::array::from_fn(|c| colours.iter().map(|p| p[c]).sum::<f32>() / count);
    let mut cov = [[0f32; 3]; 3];
    for p in colours {
        let d: [f32; 3] = std::array::from_fn(|c| p[c] - m[c]);
        for (row, a) in cov.iter_mut().zip(d) {
            for (v, b) in row.iter_mut().zip(d) {
                *v += a * b;
            }
        }
    }
    // Power iteration (the covariance is symmetric and positive semi-definite).
    let mut axis = [1f32; 3];
    for _ in 0..32 {
        let next: [f32; 3] = std::array::from_fn(|r| (0..3).map(|c| cov[r][c] * axis[c]).sum());
        let norm = next.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm < 1e-12 {
            break;
        }
        axis = next.map(|v| v / norm);
    }
    (m, axis)
}

/// The share of a content map's pixels within 0.1 (summed over the channels, in [-1, 1] units) of
/// the backdrop it was told from: near 1 minus the objects' area where the backdrop is the one
/// assumed ([`foreground`] on a plain background, the distance from the fitted [`ramp`] on a ramp), low elsewhere. Moving a
/// frame on the torus is only harmless where the background is plain: a gradient or stripes would
/// show their seam.
fn quiet_share(map: &[f32]) -> f32 {
    map.iter().filter(|v| **v < 0.1).count() as f32 / map.len() as f32
}

/// Each channel of `frame` fitted by a plane `a + b·x + c·y` (x, y in [-1, 1]). Every gradient and
/// sky of spool-tiny's world is such a plane (a vertical blend of two colours; the night sky's stars
/// lie off it). The start is robust, so a large or bright object does not tilt it: each channel's
/// slope along y from its rows' medians and along x from its columns' medians (Theil–Sen: the median
/// of the pairwise slopes); then twice least squares over the pixels the fit explains to within 0.1
/// (the backdrop without its objects).
fn ramp(frame: &Frame) -> Frame {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let n = w * h;
    let coord = |i: usize| (spread(i % w, w), spread(i / w, h));
    let plane = |coef: &[[f32; 3]; 3]| -> Frame {
        let mut planar = vec![0f32; 3 * n];
        for (ch, [a, b, c]) in coef.iter().enumerate() {
            for (i, v) in planar[ch * n..(ch + 1) * n].iter_mut().enumerate() {
                let (x, y) = coord(i);
                *v = a + b * x + c * y;
            }
        }
        Frame { width: frame.width, height: frame.height, planar }
    };
    let mut coef: [[f32; 3]; 3] = std::array::from_fn(|ch| {
        let values = &frame.planar[ch * n..(ch + 1) * n];
        let rows: Vec<f32> = (0..h).map(|y| median(values[y * w..(y + 1) * w].to_vec())).collect();
        let cols: Vec<f32> = (0..w).map(|x| median((0..h).map(|y| values[y * w + x]).collect())).collect();
        let (b, c) = (theil_sen(&cols), theil_sen(&rows));
        let a = median((0..n).map(coord).zip(values).map(|((x, y), v)| v - b * x - c * y).collect());
        [a, b, c]
    });
    for _ in 0..2 {
        let off = distance(frame, &plane(&coef));
        // Normal equations over the kept pixels, solved by Cramer's rule (3 × 3); too few pixels
        // kept (a singular system) keeps the fit as it is.
        let (mut m, mut rhs) = ([[0f64; 3]; 3], [[0f64; 3]; 3]);
        for i in (0..n).filter(|&i| off[i] < 0.1) {
            let (x, y) = coord(i);
            let basis = [1.0, f64::from(x), f64::from(y)];
            for r in 0..3 {
                for c in 0..3 {
                    m[r][c] += basis[r] * basis[c];
                }
                for (ch, row) in rhs.iter_mut().enumerate() {
                    row[r] += basis[r] * f64::from(frame.planar[ch * n + i]);
                }
            }
        }
        let det = |a: &[[f64; 3]; 3]| {
            a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
        };
        let d = det(&m);
        if d.abs() < 1e-6 {
            break;
        }
        coef = std::array::from_fn(|ch| {
            std::array::from_fn(|k| {
                let mut mk = m;
                for (row, v) in mk.iter_mut().zip(rhs[ch]) {
                    row[k] = v;
                }
                (det(&mk) / d) as f32
            })
        });
    }
    plane(&coef)
}

/// Position `i` of `len` spread over [-1, 1] (a pixel's coordinate in a plane fit).
fn spread(i: usize, len: usize) -> f32 {
    i as f32 / (len - 1).max(1) as f32 * 2.0 - 1.0
}

/// The median of `values` (the upper one of an even count).
fn median(mut values: Vec<f32>) -> f32 {
    let mid = values.len() / 2;
    *values.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// The Theil–Sen slope of `values` against their positions spread over [-1, 1]: the median of the
/// slopes between every two of them, which outliers (the rows an object covers) do not move.
fn theil_sen(values: &[f32]) -> f32 {
    let len = values.len();
    let slopes: Vec<f32> = (0..len)
        .flat_map(|i| (i + 1..len).map(move |j| (i, j)))
        .map(|(i, j)| (values[j] - values[i]) / (spread(j, len) - spread(i, len)))
        .collect();
    if slopes.is_empty() { 0.0 } else { median(slopes) }
}

/// Each pixel's distance between two frames of one size (summed over the channels).
fn distance(a: &Frame, b: &Frame) -> Vec<f32> {
    let n = (a.width * a.height) as usize;
    (0..n).map(|i| (0..3).map(|c| (a.planar[c * n + i] - b.planar[c * n + i]).abs()).sum()).collect()
}

/// `mask` with each pixel set when any of its 3 × 3 neighbours is (on the torus).
pub fn grow(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    neighbours(mask, w, h, true)
}

/// `mask` with each pixel set only when all of its 3 × 3 neighbours are (on the torus).
fn shrink(mask: &[bool], w: usize, h: usize) -> Vec<bool> {
    neighbours(mask, w, h, false)
}

fn neighbours(mask: &[bool], w: usize, h: usize, any: bool) -> Vec<bool> {
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as i64, (i / w) as i64);
            let mut around = (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (dy, dx))).map(|(dy, dx)| {
                mask[(y + dy).rem_euclid(h as i64) as usize * w + (x + dx).rem_euclid(w as i64) as usize]
            });
            if any { around.any(|v| v) } else { around.all(|v| v) }
        })
        .collect()
}

/// `onto` with the pixels of `from` blended over it by `weight` (0: `onto`'s, 1: `from`'s), moved
/// by `(dy, dx)` on the torus (all of one size): an object cut from one frame and pasted into another.
pub fn paste(onto: &Frame, from: &Frame, weight: &[f32], dy: i64, dx: i64) -> Frame {
    let (w, h) = (onto.width as usize, onto.height as usize);
    let n = w * h;
    let mut out = onto.clone();
    for (i, &a) in weight.iter().enumerate().filter(|(_, a)| **a > 0.0) {
        let ty = ((i / w) as i64 + dy).rem_euclid(h as i64) as usize;
        let tx = ((i % w) as i64 + dx).rem_euclid(w as i64) as usize;
        for c in 0..3 {
            let (o, f) = (&mut out.planar[c * n + ty * w + tx], from.planar[c * n + i]);
            // A full weight copies exactly (a moved frame moved back is the frame).
            *o = if a >= 1.0 { f } else { *o + a * (f - *o) };
        }
    }
    out
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
/// one backdrop. `None` when either shows no content against a ramp or a two-tone backdrop (an
/// object of the backdrop's own colours cannot be told from it).
pub fn torus_shift(frame: &Content, reference: &Content) -> Option<(u32, u32)> {
    let (w, h) = (frame.width, frame.height);
    assert_eq!((w, h), (reference.width, reference.height), "frames of one size");
    assert_eq!(frame.backdrop, reference.backdrop, "content told from one backdrop");
    if frame.backdrop != Backdrop::Plain && !(frame.shows() && reference.shows()) {
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
    paste(frame, frame, &vec![1.0; (frame.width * frame.height) as usize], dy, dx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 64×64 frame with a red 12×9 block at (row 10, column 20) and a smaller blue one.
    fn scene() -> Frame {
        blocks((10, 20), (30, 40))
    }

    /// A grey 64×64 frame with a red 12×9 block and a blue 4×4 one at these (row, column) corners.
    fn blocks(red: (usize, usize), blue: (usize, usize)) -> Frame {
        let (w, h) = (64usize, 64usize);
        let mut planar = vec![0.1f32; 3 * w * h];
        for y in red.0..red.0 + 12 {
            for x in red.1..red.1 + 9 {
                planar[y * w + x] = 0.9;
                planar[w * h + y * w + x] = -0.6;
            }
        }
        for y in blue.0..blue.0 + 4 {
            for x in blue.1..blue.1 + 4 {
                planar[2 * w * h + y * w + x] = 0.8;
            }
        }
        Frame { width: w as u32, height: h as u32, planar }
    }

    #[test]
    fn separate_objects_are_found_paired_with_their_moved_selves_and_registered_alone() {
        let frame = blocks((10, 20), (30, 40));
        let content = Content::of(&frame);
        let parts = content.parts();
        assert_eq!(parts.len(), 2, "two objects");
        assert!(parts[0].contains(&(15 * 64 + 24)) && parts[1].contains(&(31 * 64 + 41)), "the red block first");
        // Each moved its own way, the red one across the bottom and right edges.
        let reference = blocks((40, 50), (30, 10));
        let reference = (reference.clone(), Content::against(&reference, Backdrop::Plain));
        let mut theirs = reference.1.parts();
        theirs.reverse();
        let (ours, theirs_colours) = (content.colours(&frame, &parts), reference.1.colours(&reference.0, &theirs));
        let red = ours[0].0;
        assert!(
            red.iter().zip([0.9, -0.6, 0.1]).all(|(a, b)| (a - b).abs() < 1e-5),
            "the red block's own colour, not its rim's"
        );
        assert_eq!(pair(&ours, &theirs_colours), vec![1, 0], "paired by colour and size");
        assert_eq!(pair(&ours[1..], &theirs_colours), vec![0]);
        let shift = |i: usize, j: usize| torus_shift(&content.only(&parts[i]), &reference.1.only(&theirs[j]));
        assert_eq!(shift(0, 1), Some((34, 34)), "the red block, 30 px up and left of the reference's");
        assert_eq!(shift(1, 0), Some((0, 30)), "the blue block, 30 px right");
        // The frame without them is the backdrop.
        let (region, _) = content.object();
        assert!(content.fill(&frame, &region).unwrap().planar.iter().all(|v| (v - 0.1).abs() < 1e-6));
    }

    #[test]
    fn how_much_object_shows_grows_with_its_size_and_its_opacity() {
        let grey = Frame { width: 64, height: 64, planar: vec![0.1; 3 * 64 * 64] };
        assert_eq!(Content::of(&grey).amount(), None, "no object");
        let amount = |f: &Frame| Content::of(f).amount().expect("an object");
        let one = amount(&scene());
        // The blue block moved: the same amount.
        assert!((amount(&blocks((10, 20), (50, 5))) - one).abs() < 1e-3 * one);
        // Half as opaque: each pixel half as far from the backdrop.
        let mut faded = scene();
        faded.planar.iter_mut().for_each(|v| *v = 0.1 + (*v - 0.1) * 0.5);
        assert!((amount(&faded) / one - 0.5).abs() < 0.01, "faded to half: {} of {one}", amount(&faded));
        // A second red block: more object.
        let mut more = scene();
        for y in 40..52 {
            for x in 5..14 {
                more.planar[y * 64 + x] = 0.9;
                more.planar[64 * 64 + y * 64 + x] = -0.6;
            }
        }
        assert!(amount(&more) > 1.8 * one, "{} against {one}", amount(&more));
    }

    #[test]
    fn a_plain_background_is_told_from_a_gradient() {
        assert!(quiet_share(&foreground(&scene())) > 0.9);
        let (w, h) = (64usize, 64usize);
        let ramp: Vec<f32> = (0..3 * w * h).map(|i| ((i % (w * h)) / w) as f32 / h as f32 * 2.0 - 1.0).collect();
        let ramp = Frame { width: w as u32, height: h as u32, planar: ramp };
        assert!(quiet_share(&foreground(&ramp)) < 0.2);
        assert_eq!(Content::of(&ramp).backdrop(), Backdrop::Ramp);
        assert_eq!(Content::of(&scene()).backdrop(), Backdrop::Plain);
        assert_eq!(Content::of(&striped(Some((20, 30)))).backdrop(), Backdrop::TwoTone);
    }

    /// A vertical blend from dark blue (top) to orange (bottom), 64×64, with a red 16×14 block at
    /// (row, column) and a white 2×2 speck (a star) at (50, 50).
    fn sky(block: Option<(usize, usize)>) -> Frame {
        let (w, h) = (64usize, 64usize);
        let (top, bottom) = ([-0.9f32, -0.8, -0.5], [0.9f32, 0.2, -0.6]);
        let mut planar = vec![0f32; 3 * w * h];
        for y in 0..h {
            for x in 0..w {
                let u = y as f32 / (h - 1) as f32;
                let red = block.is_some_and(|(by, bx)| (by..by + 16).contains(&y) && (bx..bx + 14).contains(&x));
                let speck = (50..52).contains(&y) && (50..52).contains(&x);
                for c in 0..3 {
                    planar[c * w * h + y * w + x] = match () {
                        _ if red => [0.9, -0.9, -0.9][c],
                        _ if speck => 1.0,
                        _ => top[c] * (1.0 - u) + bottom[c] * u,
                    };
                }
            }
        }
        Frame { width: w as u32, height: h as u32, planar }
    }

    #[test]
    fn an_object_on_a_ramp_is_cut_out_and_moved_leaving_the_ramp_where_it_was() {
        let (at, to) = ((10usize, 20usize), (30usize, 40usize));
        let frame = sky(Some(at));
        assert_eq!(Content::of(&frame).backdrop(), Backdrop::Ramp);
        // The fit is the blend itself: the bright block (5% of the frame) does not tilt it.
        let content = Content::of(&frame);
        let fitted = content.plane.as_ref().expect("a ramp keeps its plane");
        let bare = sky(None);
        let off = distance(fitted, &bare).into_iter().enumerate().filter(|(i, _)| !(50..52).contains(&(i / 64)));
        assert!(off.map(|(_, d)| d).fold(0f32, f32::max) < 0.01, "the ramp fitted under the block");
        // The object: the block and a 2-pixel rim, not the speck; the rim is no part of the matte.
        let (region, matte) = content.object();
        let inside = |i: usize, (y0, x0): (usize, usize), pad: usize| {
            (y0.saturating_sub(pad)..y0 + 16 + pad).contains(&(i / 64))
                && (x0.saturating_sub(pad)..x0 + 14 + pad).contains(&(i % 64))
        };
        for i in 0..64 * 64 {
            assert_eq!(region[i], f32::from(inside(i, at, 2)), "region at ({}, {})", i / 64, i % 64);
            assert!((matte[i] - f32::from(inside(i, at, 0))).abs() < 0.05, "matte at ({}, {})", i / 64, i % 64);
        }
        // Cut out (its place filled by the ramp) and pasted 20 rows down, 20 columns right.
        let base = paste(&frame, fitted, &region, 0, 0);
        let (dy, dx) = ((to.0 - at.0) as i64, (to.1 - at.1) as i64);
        let moved = paste(&base, &frame, &matte, dy, dx);
        let err = distance(&moved, &sky(Some(to)));
        assert!(err.iter().all(|e| *e < 0.05), "moved: off by up to {}", err.iter().fold(0f32, |a, b| a.max(*b)));
        let found = torus_shift(&Content::against(&moved, Backdrop::Ramp), &Content::of(&frame)).expect("content");
        assert_eq!(found, (dy as u32, dx as u32));
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
    fn an_object_on_stripes_is_cut_out_and_moved_the_stripes_filled_in_where_it_was() {
        let (at, to) = ((20usize, 30usize), (40usize, 12usize));
        let frame = striped(Some(at));
        let content = Content::of(&frame);
        assert_eq!(content.backdrop(), Backdrop::TwoTone);
        let (bare, matte) = content.cut(&frame).expect("stripes repeat themselves");
        let err = distance(&bare, &striped(None));
        assert!(
            err.iter().all(|e| *e < 1e-6),
            "the stripes filled in: off by up to {}",
            err.iter().fold(0f32, |a, b| a.max(*b))
        );
        let moved = paste(&bare, &frame, &matte, (to.0 - at.0) as i64, to.1 as i64 - at.1 as i64);
        let err = distance(&moved, &striped(Some(to)));
        assert!(err.iter().all(|e| *e < 0.05), "moved: off by up to {}", err.iter().fold(0f32, |a, b| a.max(*b)));
        // A backdrop that repeats itself by no shift (noise in two tones) has nothing to fill with.
        let mut noise = striped(None);
        let n = 64 * 64;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in 0..n {
            // xorshift64: no shift of the frame lines these tones up with themselves.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let tone = state.is_multiple_of(3);
            for c in 0..3 {
                noise.planar[c * n + i] = if tone { [-0.8, -0.5, 0.8][c] } else { [-0.7, 0.6, -0.6][c] };
            }
        }
        let noisy = paste(&noise, &frame, &matte, 0, 0);
        assert!(Content::against(&noisy, Backdrop::TwoTone).cut(&noisy).is_none(), "no period in noise");
        // A plain backdrop is not cut: the whole frame moves there.
        assert!(Content::of(&scene()).cut(&scene()).is_none());
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
