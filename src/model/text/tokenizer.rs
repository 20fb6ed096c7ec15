//! BERT uncased WordPiece tokenizer (the one all-MiniLM-L6-v2 was trained with).
//!
//! Same steps, in the same order, as `training/spool_tiny/text.py` and the reference BertTokenizer:
//! 1. clean: drop NUL, U+FFFD and every character of category Cc, Cf, Cs or Co except tab, newline
//!    and return (unassigned code points are kept); whitespace (space, tab, newline, return, Zs)
//!    becomes a plain space;
//! 2. put spaces around CJK ideographs so each is a word of its own;
//! 3. strip accents: canonical decomposition (NFD), then drop the Mn marks (from generated tables,
//!    see `training/gen_unicode_tables.py`; Hangul syllables decompose to their jamo);
//! 4. lowercase, character by character;
//! 5. split on whitespace and on punctuation (ASCII punctuation and Unicode P*; each punctuation
//!    character is a word of its own);
//! 6. WordPiece each word: greedy longest match from the left, continuations prefixed `##`; a word
//!    longer than 100 characters, or one that cannot be covered, is a single `[UNK]`;
//! 7. `[CLS] pieces [SEP]`, keeping at most [`MAX_TOKENS`](super::MAX_TOKENS) tokens in all.

use std::collections::HashMap;
use std::path::Path;

use super::unicode_tables::{Class, RANGES, STRIPPED};
use crate::model::{ModelError, Result};

const MAX_CHARS_PER_WORD: usize = 100;

/// Token ids of one prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    /// `[CLS] … [SEP]`, at most the tokenizer's `max_tokens` ids.
    pub ids: Vec<u32>,
    /// Whether word pieces were dropped to fit.
    pub truncated: bool,
}

/// WordPiece tokenizer over a BERT `vocab.txt` (one token per line, id = line number).
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    max_tokens: usize,
    unk: u32,
    cls: u32,
    sep: u32,
}

fn class(c: char) -> Option<Class> {
    let cp = c as u32;
    let i = RANGES.partition_point(|&(_, last, _)| last < cp);
    match RANGES.get(i) {
        Some(&(first, _, k)) if first <= cp => Some(k),
        _ => None,
    }
}

fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && class(c) == Some(Class::Control)
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r') || class(c) == Some(Class::Space)
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || class(c) == Some(Class::Punctuation)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

/// Pushes `c` accent-stripped (NFD without Mn marks) and lowercased.
fn push_stripped_lower(c: char, out: &mut String) {
    const S_BASE: u32 = 0xAC00;
    const L_BASE: u32 = 0x1100;
    const V_BASE: u32 = 0x1161;
    const T_BASE: u32 = 0x11A7;
    const T_COUNT: u32 = 28;
    const N_COUNT: u32 = 21 * T_COUNT;
    const S_COUNT: u32 = 19 * N_COUNT;
    let cp = c as u32;
    if class(c) == Some(Class::Mark) {
        return;
    }
    if (S_BASE..S_BASE + S_COUNT).contains(&cp) {
        // Hangul syllable: conjoining jamo L V (T), by the Unicode algorithm.
        let s = cp - S_BASE;
        let jamo = [L_BASE + s / N_COUNT, V_BASE + (s % N_COUNT) / T_COUNT, T_BASE + s % T_COUNT];
        let n = if s.is_multiple_of(T_COUNT) { 2 } else { 3 };
        out.extend(jamo[..n].iter().filter_map(|&j| char::from_u32(j)));
        return;
    }
    match STRIPPED.binary_search_by_key(&cp, |&(k, _)| k) {
        Ok(i) => STRIPPED[i].1.chars().for_each(|d| out.extend(d.to_lowercase())),
        Err(_) => out.extend(c.to_lowercase()),
    }
}

/// Steps 1–4: cleaned, CJK-spaced, accent-stripped, lowercased text.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\0' || c == '\u{FFFD}' || is_control(c) {
            continue;
        }
        if is_whitespace(c) {
            out.push(' ');
        } else if is_cjk(c) {
            out.push(' ');
            push_stripped_lower(c, &mut out);
            out.push(' ');
        } else {
            push_stripped_lower(c, &mut out);
        }
    }
    out
}

/// Step 5: words and punctuation marks of normalised text.
pub fn split_words(normalized: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in normalized.char_indices() {
        if c.is_whitespace() || is_punctuation(c) {
            if let Some(s) = start.take() {
                words.push(&normalized[s..i]);
            }
            if !c.is_whitespace() {
                words.push(&normalized[i..i + c.len_utf8()]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        words.push(&normalized[s..]);
    }
    words
}

impl Tokenizer {
    /// Reads `vocab.txt`; it must hold `[UNK]`, `[CLS]` and `[SEP]`.
    pub fn from_file(path: &Path, max_tokens: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingWeights {
                path: path.display().to_string(),
                hint: "the text encoder's vocabulary ships in assets/minilm/".into(),
            },
            _ => ModelError::BadWeights { file: path.display().to_string(), reason: e.to_string() },
        })?;
        Self::from_vocab(&text, max_tokens)
            .map_err(|reason| ModelError::BadWeights { file: path.display().to_string(), reason })
    }

    /// From the text of a `vocab.txt`.
    pub fn from_vocab(text: &str, max_tokens: usize) -> std::result::Result<Self, String> {
        let mut vocab = HashMap::new();
        let body = text.strip_suffix('\n').unwrap_or(text);
        for (i, tok) in body.split('\n').enumerate() {
            let tok = tok.strip_suffix('\r').unwrap_or(tok);
            vocab.entry(tok.to_string()).or_insert(i as u32);
        }
        let id = |t: &str| vocab.get(t).copied().ok_or_else(|| format!("the vocabulary has no {t} token"));
        let (unk, cls, sep) = (id("[UNK]")?, id("[CLS]")?, id("[SEP]")?);
        if max_tokens < 2 {
            return Err("max_tokens must leave room for [CLS] and [SEP]".into());
        }
        Ok(Tokenizer { vocab, max_tokens, unk, cls, sep })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The id of a vocabulary entry.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// Step 6: the WordPiece ids of one word, appended to `out`.
    fn wordpiece(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<(usize, char)> = word.char_indices().collect();
        if chars.len() > MAX_CHARS_PER_WORD {
            out.push(self.unk);
            return;
        }
        let first = out.len();
        let mut piece = String::with_capacity(word.len() + 2);
        let mut start = 0;
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                let (a, b) = (chars[start].0, chars.get(end).map_or(word.len(), |c| c.0));
                piece.clear();
                if start > 0 {
                    piece.push_str("##");
                }
                piece.push_str(&word[a..b]);
                if let Some(&id) = self.vocab.get(piece.as_str()) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => out.push(id),
                None => {
                    out.truncate(first);
                    out.push(self.unk);
                    return;
                }
            }
            start = end;
        }
    }

    /// `[CLS] pieces [SEP]`, cut to `max_tokens` ids in all.
    pub fn encode(&self, text: &str) -> Encoding {
        let normalized = normalize(text);
        let mut pieces = Vec::new();
        for w in split_words(&normalized) {
            self.wordpiece(w, &mut pieces);
        }
        let room = self.max_tokens - 2;
        let truncated = pieces.len() > room;
        pieces.truncate(room);
        let mut ids = Vec::with_capacity(pieces.len() + 2);
        ids.push(self.cls);
        ids.extend(pieces);
        ids.push(self.sep);
        Encoding { ids, truncated }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small vocabulary: ids are line numbers.
    fn tok(max_tokens: usize) -> Tokenizer {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\ncafe\nnaive\nun\n##aff\n##able\n,\n!\n.\n'\ns\nfox\n\
                     a\nred\n北\n京\n-\n$\n##s\nrun\n";
        Tokenizer::from_vocab(vocab, max_tokens).unwrap()
    }

    fn ids(t: &Tokenizer, text: &str) -> Vec<u32> {
        t.encode(text).ids
    }

    #[test]
    fn strips_accents_and_lowercases() {
        assert_eq!(normalize("Café NAÏVE Ångström"), "cafe naive angstrom");
        let t = tok(32);
        assert_eq!(ids(&t, "Café naïve"), vec![2, 5, 6, 3]);
        assert_eq!(ids(&t, "CAFÉ"), ids(&t, "cafe"));
    }

    #[test]
    fn splits_punctuation() {
        let t = tok(32);
        // "fox's" -> fox ' s ; "red-fox!" -> red - fox !
        assert_eq!(ids(&t, "fox's"), vec![2, 15, 13, 14, 3]);
        assert_eq!(ids(&t, "red-fox!"), vec![2, 17, 20, 15, 11, 3]);
        // ASCII symbols that are not Unicode punctuation still split ($ is Sc).
        assert_eq!(split_words("a$b"), vec!["a", "$", "b"]);
        // Unicode punctuation: em dash and guillemets split, too.
        assert_eq!(split_words("a—b «c»"), vec!["a", "—", "b", "«", "c", "»"]);
    }

    #[test]
    fn wordpiece_and_unknown_words() {
        let t = tok(32);
        assert_eq!(ids(&t, "unaffable"), vec![2, 7, 8, 9, 3]);
        assert_eq!(ids(&t, "runs"), vec![2, 23, 22, 3]);
        // No piece covers "xyz": the whole word is one [UNK], neighbours are unaffected.
        assert_eq!(ids(&t, "the xyz fox"), vec![2, 4, 1, 15, 3]);
        // Partly covered words are one [UNK] too, not a prefix plus [UNK].
        assert_eq!(ids(&t, "unaffz"), vec![2, 1, 3]);
        let long = "a".repeat(101);
        assert_eq!(ids(&t, &long), vec![2, 1, 3]);
    }

    #[test]
    fn cjk_and_control_characters() {
        let t = tok(32);
        assert_eq!(ids(&t, "北京"), vec![2, 18, 19, 3]);
        // Zero-width space is Cf (dropped), no-break space is Zs (a space), tab and newline split.
        assert_eq!(normalize("a\u{200B}b\u{00A0}c\td\ne\0"), "ab c d e");
        assert_eq!(ids(&t, ""), vec![2, 3]);
        assert_eq!(ids(&t, "  \n "), vec![2, 3]);
    }

    #[test]
    fn truncates_long_input() {
        let t = tok(8);
        let e = t.encode("the fox the fox the fox");
        assert_eq!((e.ids.len(), e.truncated), (8, false));
        let e = t.encode("the fox the fox the fox the");
        assert_eq!(e.ids.len(), 8);
        assert!(e.truncated);
        assert_eq!(e.ids, vec![2, 4, 15, 4, 15, 4, 15, 3]);
    }

    #[test]
    fn tables_are_sorted_and_disjoint() {
        use super::super::unicode_tables::{RANGES, STRIPPED};
        assert!(RANGES.iter().all(|&(a, b, _)| a <= b));
        assert!(RANGES.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(STRIPPED.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn hangul_decomposes_to_jamo() {
        // 한 = U+D55C -> U+1112 U+1161 U+11AB; 가 = U+AC00 -> U+1100 U+1161 (no final).
        assert_eq!(normalize("한가"), "\u{1112}\u{1161}\u{11AB}\u{1100}\u{1161}");
    }

    #[test]
    fn vocab_needs_special_tokens() {
        assert!(Tokenizer::from_vocab("[PAD]\n[UNK]\n[CLS]\n", 32).unwrap_err().contains("[SEP]"));
    }
}
