//! The umT5 tokenizer (`spool::model::wan::umt5_tokenizer`) against Wan's own tokenizer code, run by
//! `training/make_umt5_tokenizer_fixture.py` on a tiny tokenizer of umT5's make
//! (`tests/fixtures/wan_umt5_tok/`): the same ids for every prompt at max_len 512 (truncation
//! included), the same cleaning (HTML unescaping, whitespace), the documented ftfy deviations, and
//! clear errors for a missing file and for tokenizer.json files of another kind.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use spool::model::ModelError;
use spool::model::wan::umt5_tokenizer::{UmT5Tokenizer, clean};

#[derive(Deserialize)]
struct Case {
    prompt: String,
    ids: Vec<u32>,
    truncated: bool,
}

#[derive(Deserialize)]
struct Deviation {
    prompt: String,
    ids_wan: Vec<u32>,
    ids: Vec<u32>,
}

#[derive(Deserialize)]
struct Expected {
    max_len: usize,
    cases: Vec<Case>,
    ftfy_deviations: Vec<Deviation>,
    clean_cases: Vec<(String, String)>,
}

const EOS: u32 = 1;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wan_umt5_tok")
}

fn expected() -> Expected {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap()).unwrap()
}

fn tokenizer() -> UmT5Tokenizer {
    UmT5Tokenizer::load(&fixtures().join("tokenizer.json")).expect("the fixture tokenizer loads")
}

/// Every case's ids; the failures listed together.
fn check_cases(tok: &UmT5Tokenizer, exp: &Expected) {
    let mut bad = Vec::new();
    for c in &exp.cases {
        let got = tok.encode(&c.prompt, exp.max_len).unwrap();
        if got.ids != c.ids || got.truncated != c.truncated {
            bad.push(format!(
                "{:?}\n  want {:?} (truncated {})\n  got  {:?} (truncated {})",
                c.prompt, c.ids, c.truncated, got.ids, got.truncated
            ));
        }
    }
    assert!(bad.is_empty(), "{} of {} prompts differ:\n{}", bad.len(), exp.cases.len(), bad.join("\n"));
}

#[test]
fn ids_match_reference() {
    let exp = expected();
    assert_eq!(exp.max_len, 512);
    assert!(exp.cases.len() >= 20);
    let tok = tokenizer();
    assert_eq!(tok.vocab_size(), 500, "400 pieces + 100 extra ids");
    check_cases(&tok, &exp);
}

#[test]
fn truncation_at_max_len() {
    let exp = expected();
    let tok = tokenizer();
    let long: Vec<&Case> = exp.cases.iter().filter(|c| c.truncated).collect();
    assert!(long.len() >= 2, "the fixture has prompts longer than 512 tokens");
    for c in &long {
        let got = tok.encode(&c.prompt, 512).unwrap();
        assert_eq!(got.ids.len(), 512);
        assert_eq!(got.ids.last(), Some(&EOS));
        assert!(got.truncated);
    }
    // 511 pieces + </s> fit exactly.
    let exact = exp.cases.iter().find(|c| c.ids.len() == 512 && !c.truncated).expect("a 512-token case");
    let got = tok.encode(&exact.prompt, 512).unwrap();
    assert_eq!((got.ids.len(), got.truncated), (512, false));
    // Shorter limits keep the first pieces and the end token, as transformers truncates.
    let c = exp.cases.iter().find(|c| c.ids.len() > 20 && !c.truncated).unwrap();
    let got = tok.encode(&c.prompt, 10).unwrap();
    let mut want = c.ids[..9].to_vec();
    want.push(EOS);
    assert_eq!((got.ids, got.truncated), (want, true));
    let got = tok.encode(&c.prompt, c.ids.len()).unwrap();
    assert_eq!((got.ids, got.truncated), (c.ids.clone(), false));
    assert_eq!(tok.encode(&c.prompt, 1).unwrap().ids, vec![EOS]);
    assert_eq!(
        tok.encode("", 1).unwrap(),
        spool::model::wan::umt5_tokenizer::Encoded { ids: vec![EOS], truncated: false }
    );
    assert!(tok.encode("a", 0).is_err(), "no room for </s>");
}

#[test]
fn ftfy_deviations_are_as_documented() {
    let exp = expected();
    let tok = tokenizer();
    assert!(!exp.ftfy_deviations.is_empty());
    for d in &exp.ftfy_deviations {
        let got = tok.encode(&d.prompt, 512).unwrap().ids;
        assert_eq!(got, d.ids, "{:?}", d.prompt);
        assert_ne!(got, d.ids_wan, "{:?} is not a deviation", d.prompt);
    }
}

#[test]
fn cleaning_matches_python() {
    let exp = expected();
    assert!(exp.clean_cases.len() > 200);
    let bad: Vec<String> = exp
        .clean_cases
        .iter()
        .filter(|(text, want)| clean(text) != *want)
        .map(|(text, want)| format!("{text:?}: want {want:?}, got {:?}", clean(text)))
        .collect();
    assert!(bad.is_empty(), "{} cleaning cases differ:\n{}", bad.len(), bad.join("\n"));
}

/// The converter that made google/umt5-xxl's tokenizer.json wrote Metaspace in its older form
/// (`add_prefix_space: true`, no `prepend_scheme`); that form gives the same ids.
#[test]
fn legacy_metaspace_form_gives_the_same_ids() {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("tokenizer.json")).unwrap()).unwrap();
    let legacy = serde_json::json!({"type": "Metaspace", "replacement": "\u{2581}", "add_prefix_space": true});
    assert_eq!(json["pre_tokenizer"]["type"], "Metaspace");
    json["pre_tokenizer"] = legacy.clone();
    json["decoder"] = legacy;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    check_cases(&UmT5Tokenizer::load(&path).unwrap(), &expected());
}

fn load_err(path: &Path) -> (ModelError, String) {
    let err = UmT5Tokenizer::load(path).expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "names the file: {msg}");
    assert!(msg.contains("google/umt5-xxl"), "says what is expected: {msg}");
    (err, msg)
}

#[test]
fn missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (err, _) = load_err(&dir.path().join("tokenizer.json"));
    assert!(matches!(err, ModelError::MissingWeights { .. }), "{err:?}");
    let (err, _) = load_err(dir.path());
    assert!(matches!(err, ModelError::BadWeights { .. }), "a folder: {err:?}");
}

/// MiniLM's vocabulary (assets/minilm/vocab.txt) as a WordPiece tokenizer.json, a Unigram one that
/// does not append `</s>`, and files that are not tokenizer.json at all.
#[test]
fn other_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let vocab: serde_json::Map<String, serde_json::Value> =
        std::fs::read_to_string(root.join("assets/minilm/vocab.txt"))
            .unwrap()
            .lines()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i.into()))
            .collect();
    let wordpiece = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    });
    let path = dir.path().join("tokenizer.json");
    std::fs::write(&path, serde_json::to_string(&wordpiece).unwrap()).unwrap();
    let (err, msg) = load_err(&path);
    assert!(matches!(err, ModelError::BadWeights { .. }) && msg.contains("WordPiece"), "{msg}");

    // A Unigram file that does not append `</s>`.
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("tokenizer.json")).unwrap()).unwrap();
    json["post_processor"] = serde_json::Value::Null;
    let path = dir.path().join("no_eos.json");
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    let (err, msg) = load_err(&path);
    assert!(matches!(err, ModelError::BadWeights { .. }) && msg.contains("`</s>`"), "{msg}");

    let (err, msg) = load_err(&fixtures().join("expected.json"));
    assert!(matches!(err, ModelError::BadWeights { .. }) && msg.contains("not a Hugging Face tokenizer.json"), "{msg}");
    let path = dir.path().join("empty.json");
    std::fs::write(&path, "").unwrap();
    let (err, _) = load_err(&path);
    assert!(matches!(err, ModelError::BadWeights { .. }), "{err:?}");
}
