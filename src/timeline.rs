//! The prompt timeline: which prompt (or weighted mix of prompts) conditions each frame; and how a
//! take's frames are redrawn along it (`SwitchAnchor` at switches, `Keyframes` against drift).
//!
//! A timeline is a list of segments sorted by start frame. Each segment holds one or more weighted
//! prompts and an optional blend length: over that many frames the conditioning crossfades from the
//! previous segment's mix into this one, instead of switching at once.
//!
//! File format (`--timeline FILE`), JSON:
//! ```json
//! { "segments": [
//!     { "start": 0,  "prompt": "a red circle moving left on a blue background" },
//!     { "start": 48, "prompt": "a green star spinning on a starfield", "blend": 8 },
//!     { "start": 96, "prompts": [ { "text": "a yellow heart", "weight": 0.7 },
//!                                 { "text": "a purple square", "weight": 0.3 } ] }
//! ] }
//! ```
//! A segment has either `prompt` (weight 1) or `prompts` (each with a positive `weight`); `blend`
//! defaults to 0. The first segment must start at frame 0 and starts must increase.

use serde::{Deserialize, Serialize};

/// Longest prompt text accepted, in bytes.
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;

/// A hard prompt switch anchored on a redraw: the last frame before the switch is redrawn under the
/// new prompt ([`VideoModel::redraw`](crate::model::VideoModel::redraw), SDEdit from noise level
/// `strength`), and the first `latents` latents after the switch are blended toward that redraw,
/// `k/latents` of it in the k-th (1-based), as the training clips crossfade a switch. Why: a model
/// that continues its history keeps the old object's class (spool-tiny: 0 of 16 class changes
/// within 8 frames without it), though it follows a change that its history already shows
/// (training/README.md, "Switch redraw"). A take's setting (`GenSettings`), stored with it, so a
/// rebuild replays the blend. Measured with spool-tiny (`eval.py --only switch`): 4 latents change
/// in about two frames, a near cut; 12 spread it (the largest frame-to-frame step under half the
/// change) and pause the motion for as long. `latents` 0: no blend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SwitchAnchor {
    pub strength: f32,
    pub latents: u32,
}

impl Default for SwitchAnchor {
    fn default() -> Self {
        SwitchAnchor { strength: 0.7, latents: 12 }
    }
}

impl SwitchAnchor {
    /// Longest blend accepted, in latents.
    pub const MAX_LATENTS: u32 = 256;

    /// Why this anchor cannot be used, if it cannot: `strength` in (0, 1], at most
    /// [`MAX_LATENTS`](Self::MAX_LATENTS) latents.
    pub fn check(&self) -> Result<(), String> {
        if !(self.strength > 0.0 && self.strength <= 1.0) {
            return Err(format!("a switch redraw's strength is in (0, 1], not {}", self.strength));
        }
        if self.latents > Self::MAX_LATENTS {
            return Err(format!(
                "a switch redraw blends over at most {} latents, not {}",
                Self::MAX_LATENTS,
                self.latents
            ));
        }
        Ok(())
    }
}

/// Keyframes against drift: every `every`-th latent (from the `every`-th on) is replaced, before it
/// is shown or committed, by the model's [`redraw`](crate::model::VideoModel::redraw) of itself
/// from noise level `strength`, its content kept in place. Why: a model that continues its own history drifts from the shapes
/// it draws from a clean start (spool-tiny: the class holds in 0.84 of frames 8–15 of its own
/// rollouts and 0.47 of frames 24–31, against 1.00 and 0.61 in the ground truth; with keyframes
/// every 4 at 0.5, 1.00 and 0.84, the motion kept; training/README.md, "Keyframes").
/// A take's setting (`GenSettings`), stored with it. Deterministic (its own noise stream).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Keyframes {
    pub every: u32,
    pub strength: f32,
}

impl Default for Keyframes {
    /// Every 3rd frame from noise 0.7: often and strong enough that spool-tiny's objects keep their
    /// colours over a long run (training/README.md, "Guidance in a limited interval shipped").
    fn default() -> Self {
        Keyframes { every: 3, strength: 0.7 }
    }
}

impl Keyframes {
    /// Why these keyframes cannot be used, if they cannot: every ≥ 1 frame, `strength` in (0, 1].
    pub fn check(&self) -> Result<(), String> {
        if self.every == 0 || !(self.strength > 0.0 && self.strength <= 1.0) {
            return Err(format!(
                "keyframes come every 1 or more frames with a strength in (0, 1], not every {} at {}",
                self.every, self.strength
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TimelineError {
    #[error("the prompt is empty: give a description such as \"a red circle moving left on a blue background\"")]
    EmptyPrompt,
    #[error("a prompt is {0} bytes long; the limit is 64 KiB: shorten it")]
    PromptTooLong(usize),
    #[error("prompt weight {0} is not a positive number: use weights > 0")]
    BadWeight(f32),
    #[error("the timeline has no segments: add one starting at frame 0")]
    Empty,
    #[error("the first segment starts at frame {0}: the timeline must start at frame 0")]
    FirstNotAtZero(u64),
    #[error("segment starts must increase, but frame {0} comes after frame {1}")]
    Unsorted(u64, u64),
    #[error("timeline file is not valid JSON for a timeline: {0}")]
    Parse(String),
}

/// One prompt with its weight in a mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedPrompt {
    pub text: String,
    #[serde(default = "one")]
    pub weight: f32,
}

fn one() -> f32 {
    1.0
}

/// A timeline segment. On disk either `prompt` or `prompts` is given (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "SegmentFile", into = "SegmentFile")]
pub struct Segment {
    pub start: u64,
    pub prompts: Vec<WeightedPrompt>,
    /// Frames over which the previous mix crossfades into this one (0 = hard switch).
    pub blend: u32,
}

#[derive(Serialize, Deserialize)]
struct SegmentFile {
    start: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    prompts: Vec<WeightedPrompt>,
    #[serde(default, skip_serializing_if = "is_zero")]
    blend: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl From<SegmentFile> for Segment {
    fn from(f: SegmentFile) -> Self {
        let mut prompts = f.prompts;
        if let Some(text) = f.prompt {
            prompts.insert(0, WeightedPrompt { text, weight: 1.0 });
        }
        Segment { start: f.start, prompts, blend: f.blend }
    }
}

impl From<Segment> for SegmentFile {
    fn from(s: Segment) -> Self {
        match s.prompts.as_slice() {
            [only] if only.weight == 1.0 => {
                SegmentFile { start: s.start, prompt: Some(only.text.clone()), prompts: Vec::new(), blend: s.blend }
            }
            _ => SegmentFile { start: s.start, prompt: None, prompts: s.prompts, blend: s.blend },
        }
    }
}

impl Segment {
    /// A single-prompt segment.
    pub fn new(start: u64, text: impl Into<String>) -> Self {
        Segment { start, prompts: vec![WeightedPrompt { text: text.into(), weight: 1.0 }], blend: 0 }
    }
}

/// The conditioning recipe for one frame: prompts with normalised weights summing to 1.
pub type Mix = Vec<(f32, String)>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub segments: Vec<Segment>,
}

/// Checks one prompt text.
pub fn check_prompt(text: &str) -> Result<(), TimelineError> {
    if text.len() > MAX_PROMPT_BYTES {
        return Err(TimelineError::PromptTooLong(text.len()));
    }
    if text.trim().is_empty() {
        return Err(TimelineError::EmptyPrompt);
    }
    Ok(())
}

impl Timeline {
    /// A timeline holding one prompt from frame 0.
    pub fn single(text: impl Into<String>) -> Self {
        Timeline { segments: vec![Segment::new(0, text)] }
    }

    /// Parses and validates the JSON file format.
    pub fn from_json(json: &str) -> Result<Self, TimelineError> {
        let t: Timeline = serde_json::from_str(json).map_err(|e| TimelineError::Parse(e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a timeline always serialises")
    }

    pub fn validate(&self) -> Result<(), TimelineError> {
        let first = self.segments.first().ok_or(TimelineError::Empty)?;
        if first.start != 0 {
            return Err(TimelineError::FirstNotAtZero(first.start));
        }
        for pair in self.segments.windows(2) {
            if pair[1].start <= pair[0].start {
                return Err(TimelineError::Unsorted(pair[1].start, pair[0].start));
            }
        }
        for seg in &self.segments {
            if seg.prompts.is_empty() {
                return Err(TimelineError::EmptyPrompt);
            }
            for p in &seg.prompts {
                check_prompt(&p.text)?;
                if !(p.weight.is_finite() && p.weight > 0.0) {
                    return Err(TimelineError::BadWeight(p.weight));
                }
            }
        }
        Ok(())
    }

    /// Inserts (or replaces) the segment starting at `segment.start`, keeping starts sorted.
    pub fn set_segment(&mut self, segment: Segment) {
        match self.segments.binary_search_by_key(&segment.start, |s| s.start) {
            Ok(i) => self.segments[i] = segment,
            Err(i) => self.segments.insert(i, segment),
        }
    }

    /// Removes everything from frame `frame` on and starts a new segment there.
    pub fn change_from(&mut self, segment: Segment) {
        self.segments.retain(|s| s.start < segment.start);
        self.segments.push(segment);
    }

    fn segment_index(&self, frame: u64) -> usize {
        self.segments.partition_point(|s| s.start <= frame).saturating_sub(1)
    }

    fn own_mix(seg: &Segment) -> Mix {
        let total: f32 = seg.prompts.iter().map(|p| p.weight).sum();
        seg.prompts.iter().map(|p| (p.weight / total, p.text.clone())).collect()
    }

    /// The prompts and weights conditioning frame `frame`.
    pub fn mix_at(&self, frame: u64) -> Mix {
        let i = self.segment_index(frame);
        let seg = &self.segments[i];
        let own = Self::own_mix(seg);
        let into = frame - seg.start;
        if i == 0 || seg.blend == 0 || into >= u64::from(seg.blend) {
            return own;
        }
        // Crossfade: the previous segment's mix as it stood when this one began.
        let alpha = (into + 1) as f32 / (seg.blend + 1) as f32;
        let prev = self.mix_at(seg.start - 1);
        let mut mix: Mix = prev.into_iter().map(|(w, t)| (w * (1.0 - alpha), t)).collect();
        for (w, t) in own {
            match mix.iter_mut().find(|(_, pt)| *pt == t) {
                Some(entry) => entry.0 += w * alpha,
                None => mix.push((w * alpha, t)),
            }
        }
        mix
    }

    /// The first frame whose conditioning may differ between `self` and `other` (the earliest
    /// start among segments that differ); `None` when the timelines are the same.
    pub fn first_difference(&self, other: &Timeline) -> Option<u64> {
        let (a, b) = (&self.segments, &other.segments);
        let differ = a.iter().zip(b).find(|(x, y)| x != y).map(|(x, y)| x.start.min(y.start));
        differ.or_else(|| a.get(b.len()).or_else(|| b.get(a.len())).map(|s| s.start))
    }

    /// The first frame of the segment in force at `frame`, for detecting switches.
    pub fn is_hard_switch(&self, frame: u64) -> bool {
        frame > 0
            && self.segments.iter().any(|s| s.start == frame && s.blend == 0)
            && self.mix_at(frame) != self.mix_at(frame - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_is_the_earliest_segment_that_changed() {
        let mut a = Timeline::single("a red circle");
        a.set_segment(Segment::new(10, "a blue star"));
        assert_eq!(a.first_difference(&a.clone()), None);
        let mut edited = a.clone();
        edited.set_segment(Segment::new(10, "a green star"));
        assert_eq!(a.first_difference(&edited), Some(10));
        let mut moved = a.clone();
        moved.segments[1].start = 6;
        assert_eq!(a.first_difference(&moved), Some(6));
        let mut longer = a.clone();
        longer.set_segment(Segment::new(30, "a heart"));
        assert_eq!(a.first_difference(&longer), Some(30));
        assert_eq!(longer.first_difference(&a), Some(30));
        let mut blended = a.clone();
        blended.segments[1].blend = 4;
        assert_eq!(blended.first_difference(&a), Some(10));
    }

    #[test]
    fn parses_documented_format() {
        let json = r#"{ "segments": [
            { "start": 0, "prompt": "a red circle" },
            { "start": 4, "prompt": "a green star", "blend": 3 },
            { "start": 20, "prompts": [ { "text": "a", "weight": 3 }, { "text": "b", "weight": 1 } ] } ] }"#;
        let t = Timeline::from_json(json).unwrap();
        assert_eq!(t.mix_at(0), vec![(1.0, "a red circle".to_string())]);
        assert_eq!(t.mix_at(3), vec![(1.0, "a red circle".to_string())]);
        let m = t.mix_at(4);
        assert_eq!(m.len(), 2);
        assert!((m[0].0 - 0.75).abs() < 1e-6 && (m[1].0 - 0.25).abs() < 1e-6);
        assert_eq!(t.mix_at(7), vec![(1.0, "a green star".to_string())]);
        assert_eq!(t.mix_at(25), vec![(0.75, "a".to_string()), (0.25, "b".to_string())]);
        let back = Timeline::from_json(&t.to_json()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn rejects_bad_timelines() {
        assert_eq!(Timeline::from_json(r#"{"segments":[]}"#), Err(TimelineError::Empty));
        assert_eq!(
            Timeline::from_json(r#"{"segments":[{"start":2,"prompt":"x"}]}"#),
            Err(TimelineError::FirstNotAtZero(2))
        );
        assert_eq!(
            Timeline::from_json(r#"{"segments":[{"start":0,"prompt":"x"},{"start":0,"prompt":"y"}]}"#),
            Err(TimelineError::Unsorted(0, 0))
        );
        assert_eq!(Timeline::from_json(r#"{"segments":[{"start":0,"prompt":"  "}]}"#), Err(TimelineError::EmptyPrompt));
        assert!(matches!(
            Timeline::from_json(r#"{"segments":[{"start":0,"prompts":[{"text":"x","weight":-1}]}]}"#),
            Err(TimelineError::BadWeight(_))
        ));
        assert!(matches!(Timeline::from_json("nope"), Err(TimelineError::Parse(_))));
    }

    #[test]
    fn change_from_drops_later_segments() {
        let mut t = Timeline::single("a");
        t.set_segment(Segment::new(10, "b"));
        t.set_segment(Segment::new(20, "c"));
        t.change_from(Segment::new(15, "d"));
        let starts: Vec<u64> = t.segments.iter().map(|s| s.start).collect();
        assert_eq!(starts, vec![0, 10, 15]);
        assert!(t.is_hard_switch(15));
        assert!(!t.is_hard_switch(16));
    }
}
