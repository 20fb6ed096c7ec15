//! What spool-tiny knows: the words of its training captions, and prompts it does well.
//!
//! spool-tiny was trained on a small procedural world (shapes, letters, digits and emoji in 12
//! colours, 16 motions, 9 kinds of background). Its text encoder reads free wording, but prompts
//! built from these words land best, so the prompt editor completes them and points out words
//! outside the list. The list follows the caption grammar of the training data
//! (`training/spool_tiny/data.py`, data version `procedural-v1`); update both together.

/// Every word of the training captions' grammar, sorted (binary-searchable).
pub const WORDS: &[&str] = &[
    "a",
    "across",
    "against",
    "airplane",
    "alien",
    "an",
    "and",
    "appearing",
    "appears",
    "apple",
    "aqua",
    "around",
    "arrow",
    "away",
    "azure",
    "backdrop",
    "background",
    "ball",
    "balloon",
    "banana",
    "bar",
    "basketball",
    "bee",
    "bell",
    "bicycle",
    "bigger",
    "bike",
    "bird",
    "black",
    "block",
    "blue",
    "boat",
    "bolt",
    "bounces",
    "bouncing",
    "box",
    "bright",
    "brown",
    "bulb",
    "bunch",
    "burger",
    "bus",
    "butterfly",
    "cactus",
    "camera",
    "car",
    "carrot",
    "cat",
    "checkerboard",
    "checkered",
    "cherries",
    "chocolate",
    "circle",
    "circles",
    "circling",
    "clear",
    "cloud",
    "clouds",
    "cloudy",
    "cobalt",
    "cone",
    "cookie",
    "crab",
    "cream",
    "crescent",
    "crimson",
    "cross",
    "crown",
    "cyan",
    "daytime",
    "deep",
    "diagonally",
    "diamond",
    "digit",
    "disappearing",
    "disappears",
    "disc",
    "does",
    "dog",
    "donut",
    "dot",
    "doughnut",
    "down",
    "drifting",
    "drifts",
    "drop",
    "droplet",
    "earth",
    "elephant",
    "ellipse",
    "emerald",
    "expanding",
    "expands",
    "face",
    "fades",
    "fading",
    "falling",
    "falls",
    "field",
    "fire",
    "fish",
    "five-pointed",
    "flame",
    "floating",
    "floats",
    "flying",
    "football",
    "frog",
    "from",
    "front",
    "fruit",
    "gem",
    "gets",
    "getting",
    "ghost",
    "gift",
    "globe",
    "goes",
    "going",
    "golden",
    "gradient",
    "grapes",
    "gray",
    "green",
    "grey",
    "growing",
    "grows",
    "guitar",
    "half",
    "hamburger",
    "heading",
    "heads",
    "heart",
    "helicopter",
    "hexagon",
    "hoop",
    "hopping",
    "hops",
    "house",
    "ice",
    "in",
    "ivory",
    "jet",
    "jewel",
    "key",
    "kitten",
    "leaf",
    "left",
    "letter",
    "light",
    "lightning",
    "lion",
    "mandarin",
    "maple",
    "materializing",
    "melon",
    "moon",
    "move",
    "moves",
    "moving",
    "mushroom",
    "night",
    "not",
    "number",
    "octagon",
    "octopus",
    "of",
    "on",
    "orange",
    "orbiting",
    "orbits",
    "out",
    "outer",
    "oval",
    "pair",
    "panda",
    "panning",
    "pans",
    "penguin",
    "pentagon",
    "pink",
    "pizza",
    "plain",
    "plane",
    "planet",
    "plus",
    "present",
    "puppy",
    "purple",
    "rainbow",
    "rectangle",
    "red",
    "resting",
    "rests",
    "rhombus",
    "right",
    "ring",
    "rises",
    "rising",
    "robot",
    "rocket",
    "rose",
    "rotates",
    "rotating",
    "round",
    "sailboat",
    "saucer",
    "scarlet",
    "semicircle",
    "shrinking",
    "shrinks",
    "sign",
    "silver",
    "sinking",
    "sinks",
    "sits",
    "sitting",
    "skull",
    "sky",
    "slice",
    "slides",
    "sliding",
    "slowly",
    "smaller",
    "smiley",
    "smiling",
    "snail",
    "snake",
    "snowflake",
    "soccer",
    "solid",
    "space",
    "spinning",
    "spins",
    "square",
    "standing",
    "star",
    "starfield",
    "starry",
    "stars",
    "stays",
    "still",
    "strawberry",
    "striped",
    "stripes",
    "sun",
    "sunflower",
    "sunset",
    "tangerine",
    "the",
    "tiger",
    "to",
    "tortoise",
    "tree",
    "triangle",
    "turning",
    "turquoise",
    "turtle",
    "twirling",
    "twirls",
    "ufo",
    "umbrella",
    "unicorn",
    "up",
    "upward",
    "vanishes",
    "vanishing",
    "violet",
    "water",
    "watermelon",
    "white",
    "with",
    "yellow",
    "zooming",
];

/// Prompts spool-tiny does well, for the first-run examples. The first fills the editor.
pub const EXAMPLES: &[&str] = &[
    "a red circle moving left on a blue background",
    "a yellow star spinning on a starfield",
    "a green heart bouncing against a night sky",
    "a white letter A drifting to the right on a purple to pink gradient",
    "an orange fish moving in a circle on a cloudy blue sky",
    "a cyan square growing on black and white stripes",
];

/// Whether `word` (any case) is in [`WORDS`].
pub fn knows(word: &str) -> bool {
    let w = word.to_lowercase();
    WORDS.binary_search(&w.as_str()).is_ok() || is_symbol(&w)
}

/// Single letters and digits are objects too ("letter A", "digit 7").
fn is_symbol(w: &str) -> bool {
    w.chars().count() == 1 && w.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Up to `n` known words that start with `prefix` (case-insensitive), shortest first; nothing for a
/// prefix of fewer than two letters or one that is already a whole word with no longer completions.
pub fn complete(prefix: &str, n: usize) -> Vec<&'static str> {
    let p = prefix.to_lowercase();
    if p.chars().count() < 2 {
        return Vec::new();
    }
    let start = WORDS.partition_point(|w| *w < p.as_str());
    let mut out: Vec<&'static str> =
        WORDS[start..].iter().take_while(|w| w.starts_with(p.as_str())).filter(|w| **w != p).copied().collect();
    out.sort_by_key(|w| (w.len(), *w));
    out.truncate(n);
    out
}

/// The word being typed just before char index `cursor`: (its start as a char index, the text).
pub fn word_before(text: &str, cursor: usize) -> (usize, String) {
    let chars: Vec<char> = text.chars().take(cursor).collect();
    let start = chars.iter().rposition(|c| !(c.is_alphanumeric() || *c == '-')).map_or(0, |i| i + 1);
    (start, chars[start..].iter().collect())
}

/// Words of `text` that spool-tiny's captions never use (each once, in order).
pub fn unknown_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !(c.is_alphanumeric() || c == '-')).filter(|w| !w.is_empty()) {
        let lw = w.to_lowercase();
        if !knows(&lw) && !out.contains(&lw) {
            out.push(lw);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_examples_use_known_words() {
        assert!(WORDS.windows(2).all(|p| p[0] < p[1]), "WORDS must stay sorted");
        for e in EXAMPLES {
            assert!(unknown_words(e).is_empty(), "{e}: {:?}", unknown_words(e));
        }
    }

    #[test]
    fn completes_prefixes() {
        assert_eq!(complete("sta", 3), vec!["star", "stars", "stays"]);
        assert!(complete("s", 5).is_empty());
        assert!(complete("zzz", 5).is_empty());
        assert_eq!(word_before("a red ci", 8), (6, "ci".to_string()));
        assert_eq!(unknown_words("a red zebra moving left"), vec!["zebra".to_string()]);
    }
}
