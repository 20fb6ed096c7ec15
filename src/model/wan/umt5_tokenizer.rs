//! The umT5 tokenizer of wan-causal: prompt text → token ids, exactly as Wan's `HuggingfaceTokenizer`
//! (Self-Forcing's wan/modules/tokenizers.py) makes them for `google/umt5-xxl`, called the way
//! utils/wan_wrapper.py `WanTextEncoder` calls it (`seq_len=512`, `clean='whitespace'`,
//! `add_special_tokens=True`, truncation to 512).
//!
//! Steps, in the reference's order:
//! 1. clean (`whitespace_clean(basic_clean(text))`): ftfy (see the deviations), then HTML entities
//!    unescaped twice with Python's `html.unescape` rules (the WHATWG table of 2231 names from the
//!    `entities` crate, checked equal to Python's `html.entities.html5`; names without `;`
//!    matched by longest prefix; numeric references with Python's replacements for invalid code
//!    points), strip, every run of Unicode whitespace (`regex`'s `\s`, = `char::is_whitespace`)
//!    made one space, strip (Python's `str.strip`, which also strips U+001C..U+001F);
//! 2. the file's own pipeline, run by the `tokenizers` crate (the Rust core of the Python library
//!    transformers uses, so the same code): added special tokens (`</s>`, `<pad>`, `<unk>`,
//!    `<extra_id_N>`) split out of the raw text, the Precompiled (SentencePiece charsmap)
//!    normaliser, Metaspace, Unigram (Viterbi over the scored vocabulary, unknown runs fused into
//!    one `<unk>`). That is what transformers 4.x runs (Wan asks for >= 4.49). transformers 5
//!    replaces the file's pre-tokeniser with its own (WhitespaceSplit + Metaspace); that changes
//!    the ids only around special-token strings typed into a prompt (`a </s> b`: 4.x has a `▁`
//!    piece before `</s>`, 5 does not);
//! 3. truncation as transformers does it: at most `max_len - 1` pieces, then the post-processor
//!    appends `</s>` (id 1). Padding (id 0 up to 512) is left to the encoder, which runs only the
//!    real tokens and zero-pads its output.
//!
//! Parity: `tests/wan_umt5_tokenizer.rs` against the reference run on a tiny tokenizer of the same
//! make (`training/make_umt5_tokenizer_fixture.py`).
//!
//! Deviations from the reference, all in ftfy's `fix_text` (which Wan runs first):
//! - Followed: its fixes that change ordinary typed or pasted text and that the umT5 normaliser
//!   does not do itself: curly quotes made straight (`‘ ’ ‚ ‛ ʼ` → `'`, `“ ” „ ‟` → `"`), its control
//!   characters removed (C0 but tab, newline, form feed and return; DEL; U+206A..U+206F; BOM;
//!   U+FFF9..U+FFFC), NFC.
//! - Not followed: mojibake repair (`cafÃ©` stays as typed, Wan reads `café`), Windows-1252
//!   decoding of C1 controls, removal of terminal escapes, and ftfy's own repeated HTML
//!   unescaping, which only matters for text escaped three or more times or for escaped curly
//!   quotes and controls (`&rsquo;` stays `’`, Wan gets `'`). Its width, ligature and line-break
//!   fixes are skipped too; the normaliser and the whitespace cleaning make them moot. Ordinary
//!   prompts get the reference's ids exactly.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use tokenizers::models::ModelWrapper;
use tokenizers::{NormalizedString, PostProcessor, Tokenizer, TruncationDirection};

use crate::model::{ModelError, Result};

/// What `load` expects, for error messages.
const EXPECTED: &str =
    "the SentencePiece Unigram tokenizer.json of google/umt5-xxl (Wan2.1's google/umt5-xxl/tokenizer.json)";

/// Token ids of one prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The real tokens, ending in `</s>`: at most `max_len` ids (no padding).
    pub ids: Vec<u32>,
    /// Whether pieces were dropped to fit `max_len`.
    pub truncated: bool,
}

/// umT5 tokenizer over a Hugging Face `tokenizer.json` (SentencePiece Unigram).
pub struct UmT5Tokenizer {
    inner: Tokenizer,
    /// Tokens the post-processor adds to one sequence (1: `</s>`).
    n_special: usize,
}

impl fmt::Debug for UmT5Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UmT5Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("n_special", &self.n_special)
            .finish()
    }
}

impl UmT5Tokenizer {
    /// Reads `path`, a `tokenizer.json`; anything but a Unigram one is refused.
    pub fn load(path: &Path) -> Result<UmT5Tokenizer> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingWeights { path: file.clone(), hint: EXPECTED.into() },
            _ => ModelError::BadWeights { file: file.clone(), reason: format!("{e}; expected {EXPECTED}") },
        })?;
        let bad = |reason: String| ModelError::BadWeights { file: file.clone(), reason };
        // `FromStr` rather than `from_bytes`: its deserialiser is compiled once in the tokenizers
        // crate (which candle-core already builds), not instantiated again here (~9 s of build).
        let mut inner: Tokenizer =
            text.parse().map_err(|e| bad(format!("not a Hugging Face tokenizer.json ({e}); expected {EXPECTED}")))?;
        let kind = match inner.get_model() {
            ModelWrapper::Unigram(_) => None,
            ModelWrapper::BPE(_) => Some("BPE"),
            ModelWrapper::WordPiece(_) => Some("WordPiece"),
            ModelWrapper::WordLevel(_) => Some("WordLevel"),
        };
        if let Some(kind) = kind {
            return Err(bad(format!("a {kind} tokenizer, expected {EXPECTED}")));
        }
        // Truncation and padding are applied here, per call, as transformers sets them.
        inner.with_truncation(None).map_err(|e| bad(e.to_string()))?;
        inner.with_padding(None);
        let n_special = inner.get_post_processor().map_or(0, |p| p.added_tokens(false));
        let tok = UmT5Tokenizer { inner, n_special };
        // umT5's post-processor appends `</s>` and nothing else; the encoder relies on it.
        let eos = tok.inner.token_to_id("</s>");
        if n_special != 1 || eos.is_none() || tok.encode("", 1).ok().map(|e| e.ids) != eos.map(|id| vec![id]) {
            return Err(bad(format!(
                "its post-processor does not append `</s>` (and only that) to a sequence; expected {EXPECTED}"
            )));
        }
        Ok(tok)
    }

    /// Vocabulary size, added tokens included (256384 for umT5).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text`: at most `max_len` (512 for wan-causal), `</s>` last.
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Encoded> {
        let keep = max_len.checked_sub(self.n_special).ok_or_else(|| {
            ModelError::Invalid(format!("umT5 tokenizer: max_len {max_len} leaves no room for the end token"))
        })?;
        let err = |e: tokenizers::Error| ModelError::Invalid(format!("umT5 tokenizer: {e}"));
        let cleaned = clean(text);
        let mut enc = self.inner.encode(cleaned.as_str(), false).map_err(err)?;
        let truncated = enc.len() > keep;
        enc.truncate(keep, 0, TruncationDirection::Right);
        let enc = self.inner.post_process(enc, None, true).map_err(err)?;
        Ok(Encoded { ids: enc.get_ids().to_vec(), truncated })
    }
}

/// Wan's `whitespace_clean(basic_clean(text))`, with the ftfy subset of the module doc.
pub fn clean(text: &str) -> String {
    let fixed = ftfy_subset(text);
    let once = html_unescape(&fixed);
    let twice = html_unescape(&once);
    let mut out = String::with_capacity(twice.len());
    let mut in_space = false;
    for c in py_strip(&twice).chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    py_strip(&out).to_string()
}

/// Python's `str.isspace`: Unicode whitespace plus the information separators U+001C..U+001F
/// (which the ftfy subset has already removed; kept to mirror the reference).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// ftfy's `uncurl_quotes`, `remove_control_chars` and NFC (the followed part of `fix_text`).
fn ftfy_subset(text: &str) -> String {
    let s: String = text
        .chars()
        .filter_map(|c| match c {
            '\u{2bc}' | '\u{2018}'..='\u{201b}' => Some('\''),
            '\u{201c}'..='\u{201f}' => Some('"'),
            '\0'..='\u{8}'
            | '\u{b}'
            | '\u{e}'..='\u{1f}'
            | '\u{7f}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffc}' => None,
            c => Some(c),
        })
        .collect();
    let mut n = NormalizedString::from(s.as_str());
    n.nfc();
    n.get().to_string()
}

/// The HTML5 named character references, keyed without the `&` (`amp;` and `amp` both).
fn html5() -> &'static HashMap<&'static str, &'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        entities::ENTITIES.iter().map(|e| (e.entity.strip_prefix('&').unwrap_or(e.entity), e.characters)).collect()
    })
}

/// Python's `html.unescape`.
fn html_unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let used = char_ref(after, &mut out);
        if used == 0 {
            out.push('&');
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// One reference after an `&` (Python's `_charref` pattern and `_replace_charref`): pushes its
/// replacement and returns the bytes it took, or 0 when `s` does not start one.
fn char_ref(s: &str, out: &mut String) -> usize {
    let b = s.as_bytes();
    if b.first() == Some(&b'#') {
        // `#[0-9]+;?` or `#[xX][0-9a-fA-F]+;?`
        let (start, radix) = match b.get(1) {
            Some(d) if d.is_ascii_digit() => (1, 10),
            Some(b'x' | b'X') if b.get(2).is_some_and(u8::is_ascii_hexdigit) => (2, 16),
            _ => return 0,
        };
        let digits = b[start..].iter().take_while(|&&d| (d as char).is_digit(radix)).count();
        let num = b[start..start + digits].iter().fold(0u64, |n, &d| {
            n.saturating_mul(radix as u64).saturating_add((d as char).to_digit(radix).unwrap_or(0) as u64)
        });
        push_numeric(num, out);
        let end = start + digits;
        return end + usize::from(b.get(end) == Some(&b';'));
    }
    // `[^\t\n\f <&#;]{1,32};?`
    let mut end = 0;
    for (n, c) in s.char_indices().take(32) {
        if matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        end = n + c.len_utf8();
    }
    if end == 0 {
        return 0;
    }
    if s.as_bytes().get(end) == Some(&b';') {
        end += 1;
    }
    let name = &s[..end];
    let table = html5();
    if let Some(v) = table.get(name) {
        out.push_str(v);
        return end;
    }
    // The longest prefix of at least two characters that is a name (those without `;`).
    let cuts: Vec<usize> = name.char_indices().map(|(i, _)| i).skip(2).collect();
    for &cut in cuts.iter().rev() {
        if let Some(v) = table.get(&name[..cut]) {
            out.push_str(v);
            out.push_str(&name[cut..]);
            return end;
        }
    }
    out.push('&');
    out.push_str(name);
    end
}

/// A numeric reference's replacement, as Python's `html.unescape` makes it.
fn push_numeric(num: u64, out: &mut String) {
    // `_invalid_charrefs`: NUL, CR and the C1 range read as Windows-1252.
    const C1: [char; 32] = [
        '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{2c6}',
        '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}', '\u{90}', '\u{2018}', '\u{2019}',
        '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}',
        '\u{153}', '\u{9d}', '\u{17e}', '\u{178}',
    ];
    let c = match num {
        0 => '\u{fffd}',
        0x0d => '\r',
        0x80..=0x9f => C1[(num - 0x80) as usize],
        0xd800..=0xdfff => '\u{fffd}',
        n if n > 0x10ffff => '\u{fffd}',
        // `_invalid_codepoints`: dropped.
        0x1..=0x8 | 0xb | 0xe..=0x1f | 0x7f | 0xfdd0..=0xfdef => return,
        n if n & 0xfffe == 0xfffe => return,
        n => match char::from_u32(n as u32) {
            Some(c) => c,
            None => return,
        },
    };
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_table_is_consistent() {
        // The table was checked equal to Python's html.entities.html5 (by code points); here:
        // every name's characters are its code points, and both spellings of `amp` exist.
        for e in entities::ENTITIES.iter() {
            let cps: Vec<u32> = e.characters.chars().map(|c| c as u32).collect();
            let want = match e.codepoints {
                entities::Codepoints::Single(a) => vec![a],
                entities::Codepoints::Double(a, b) => vec![a, b],
            };
            assert_eq!(cps, want, "{}", e.entity);
        }
        assert_eq!(html5().len(), 2231);
        assert_eq!(html5().get("amp"), Some(&"&"));
        assert_eq!(html5().get("amp;"), Some(&"&"));
    }

    #[test]
    fn unescape_basics() {
        assert_eq!(html_unescape("a &amp; b"), "a & b");
        assert_eq!(html_unescape("&amp;lt;"), "&lt;");
        assert_eq!(html_unescape("&notanentity;"), "¬anentity;");
        assert_eq!(html_unescape("&#x263A;&#65"), "☺A");
        assert_eq!(html_unescape("&#150;&#0;&#1;&#xD800;&#1114112;"), "\u{2013}\u{fffd}\u{fffd}\u{fffd}");
        assert_eq!(html_unescape("& &# &#x &;"), "& &# &#x &;");
    }

    #[test]
    fn cleaning() {
        assert_eq!(clean("  a \t b\n\u{3000}c  "), "a b c");
        assert_eq!(clean("\u{201c}it\u{2019}s\u{201d}"), "\"it's\"");
        assert_eq!(clean("\u{1c} x \u{1f}"), "x");
        assert_eq!(clean("e\u{301}"), "\u{e9}");
        assert_eq!(clean(""), "");
    }
}
