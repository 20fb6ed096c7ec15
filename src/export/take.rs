//! Export of a stored take, or of frames A..B of it: the one path both `spool export` and the
//! app's Export dialog take, so a range means the same and is checked the same in both.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use super::{ExportError, ExportFrame, ExportOptions, ExportSummary, Progress, export};
use crate::model::Frame;
use crate::store::{FrameId, FrameStore};
use crate::timeline::Timeline;

/// Why a frame range cannot be exported. Each message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("\"{0}\" is not a frame range: write A..B (B excluded), e.g. 0..48")]
    Syntax(String),
    #[error("frames {a}..{b} is an empty range: B must be larger than A")]
    Empty { a: u64, b: u64 },
    #[error("frames {a}..{b} are outside the take, which has frames 0..{len}: choose A..B with B at most {len}")]
    Outside { a: u64, b: u64, len: u64 },
    #[error("the take has no frames yet: generate some first")]
    NoFrames,
}

/// Parses `A..B` (B excluded), as given to `--range` or typed in the Export dialog.
pub fn parse_range(s: &str) -> Result<(u64, u64), RangeError> {
    let syntax = || RangeError::Syntax(s.trim().to_string());
    let (a, b) = s.split_once("..").ok_or_else(syntax)?;
    let a: u64 = a.trim().parse().map_err(|_| syntax())?;
    let b: u64 = b.trim().parse().map_err(|_| syntax())?;
    if a >= b {
        return Err(RangeError::Empty { a, b });
    }
    Ok((a, b))
}

/// The frames of a take to export: all of them, or frames A..B, checked against its length.
pub fn select_frames(frames: &[FrameId], range: Option<(u64, u64)>) -> Result<&[FrameId], RangeError> {
    let len = frames.len() as u64;
    if len == 0 {
        return Err(RangeError::NoFrames);
    }
    match range {
        None => Ok(frames),
        Some((a, b)) if a >= b => Err(RangeError::Empty { a, b }),
        Some((a, b)) if b > len => Err(RangeError::Outside { a, b, len }),
        Some((a, b)) => Ok(&frames[a as usize..b as usize]),
    }
}

/// What an exported take says about itself: its prompt timeline, seed, the model and its weights'
/// hash where known, and its first prompt as the title.
pub fn take_metadata(
    timeline: &Timeline,
    seed: u64,
    model: Option<&str>,
    weights_hash: Option<&str>,
) -> Vec<(String, String)> {
    let mut m = vec![("timeline".to_string(), timeline.to_json()), ("seed".to_string(), seed.to_string())];
    m.extend(model.map(|id| ("model".to_string(), id.to_string())));
    m.extend(weights_hash.map(|h| ("weights_hash".to_string(), h.to_string())));
    m.extend(timeline.segments.first().and_then(|s| s.prompts.first()).map(|p| ("title".to_string(), p.text.clone())));
    m
}

impl ExportFrame for Arc<Frame> {
    fn into_rgb_image(self) -> Result<image::RgbImage, String> {
        (&*self).into_rgb_image()
    }
}

/// Exports the stored frames `ids` to `path`, reading them back one at a time (see [`export`]).
pub fn export_stored(
    store: &FrameStore,
    ids: &[FrameId],
    path: &Path,
    options: &ExportOptions,
    progress: impl FnMut(Progress) -> ControlFlow<()>,
) -> Result<ExportSummary, ExportError> {
    export(ids.iter().map(|id| store.frame(*id)), path, options, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_and_checked_against_the_take() {
        assert_eq!(parse_range("2..7"), Ok((2, 7)));
        assert_eq!(parse_range(" 0 .. 48 "), Ok((0, 48)));
        assert_eq!(parse_range("7..2"), Err(RangeError::Empty { a: 7, b: 2 }));
        assert!(matches!(parse_range("2-7"), Err(RangeError::Syntax(_))));
        assert!(matches!(parse_range("..7"), Err(RangeError::Syntax(_))));

        let ids: Vec<FrameId> = (10..20).map(FrameId).collect();
        assert_eq!(select_frames(&ids, None).unwrap().len(), 10);
        assert_eq!(select_frames(&ids, Some((2, 7))).unwrap(), &ids[2..7]);
        assert_eq!(select_frames(&ids, Some((0, 10))).unwrap(), &ids[..]);
        let outside = select_frames(&ids, Some((4, 11))).unwrap_err();
        assert_eq!(outside, RangeError::Outside { a: 4, b: 11, len: 10 });
        assert!(outside.to_string().contains("B at most 10"), "{outside}");
        assert_eq!(select_frames(&[], None), Err(RangeError::NoFrames));
    }
}
