//! How a prompt's words ask spool-tiny's objects to change their look over time.
//!
//! spool-tiny learnt its motions from a caption grammar (`training/spool_tiny/data.py`, `MOTIONS`):
//! three of them change how an object looks rather than where it is: spin, zoom (grow, shrink) and
//! fade. Keyframes redraw an object with its first frame's look, which would undo those, so the
//! prompt's words decide what a keyframe may do ([`Look`]). The words are the grammar's, by stem, so
//! inflections and a few free synonyms ("whirling", "enlarging") read the same.

use crate::model::Look;

/// Word stems of a spin.
const TURNING: &[&str] = &["spin", "rotat", "twirl", "whirl"];
/// Two-word spins ("turning around").
const TURNING_AROUND: &[&str] = &["turn", "turns", "turning"];
/// Word stems of a growth, a shrink or a fade.
const CHANGING: &[&str] = &[
    "grow",
    "expand",
    "enlarg",
    "zoom",
    "bigger",
    "larger",
    "shrink",
    "smaller",
    "fad",
    "appear",
    "disappear",
    "vanish",
    "materializ",
    "materialis",
    "dissolv",
];

/// What `prompt` asks of its objects' look: [`Look::Changing`] if it names a growth, shrink or fade,
/// else [`Look::Turning`] if it names a spin, else [`Look::Same`].
pub fn of(prompt: &str) -> Look {
    let lower = prompt.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).collect();
    let named = |stems: &[&str]| words.iter().any(|w| stems.iter().any(|s| w.starts_with(s)));
    let turns_around = words.windows(2).any(|p| TURNING_AROUND.contains(&p[0]) && p[1] == "around");
    if named(CHANGING) {
        Look::Changing
    } else if named(TURNING) || turns_around {
        Look::Turning
    } else {
        Look::Same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_s_motions_read_as_their_look() {
        for (prompt, look) in [
            ("an orange square moving right on a black background", Look::Same),
            ("a frog sitting still on a pink background", Look::Same),
            ("a ball bouncing up and down on a white background", Look::Same),
            ("a moon going round in circles, the camera pans left", Look::Same),
            ("a pink ring spinning on blue and green stripes", Look::Turning),
            ("A white arrow ROTATES on a purple background", Look::Turning),
            ("a heart turning around on a starfield", Look::Turning),
            ("a red heart growing on a black background", Look::Changing),
            ("a blue square gets smaller on a grey backdrop", Look::Changing),
            ("a green triangle fading out on a black background", Look::Changing),
            ("a star slowly appearing on a night sky", Look::Changing),
            ("a car vanishes on a yellow background", Look::Changing),
            // A spin that also grows changes its look: nothing holds it.
            ("a star spinning and growing", Look::Changing),
        ] {
            assert_eq!(of(prompt), look, "{prompt}");
        }
    }

    #[test]
    fn words_that_merely_contain_a_stem_do_not_count() {
        // "turn" without "around"; a stem inside a word ("returning").
        assert_eq!(of("a star returning to the left, the background turns blue"), Look::Same);
        assert_eq!(of(""), Look::Same);
    }
}
