//! The text encoder: all-MiniLM-L6-v2, frozen, from the app's own converted weights.
//!
//! A prompt becomes the last layer's token states, `(n, 384)` f32 with `n ≤ 32` tokens including
//! `[CLS]` and `[SEP]` (no pooling, no normalisation; training/SPEC.md "Text conditioning"). Longer
//! prompts are cut to 32 tokens and [`TextEncoder::encode`] says so.
//!
//! Files, in `assets/minilm/` (written by `training/convert_minilm.py`):
//! - `config.json`: BERT hyper-parameters and the token limit ([`Config`]);
//! - `vocab.txt`: the WordPiece vocabulary ([`tokenizer`]);
//! - `embeddings.safetensors`, `encoder.safetensors`: BERT's tensors under BERT's names, linear
//!   weights and word embeddings as int8 per output channel (`X.weight_q` + `X.weight_scale`),
//!   dequantised at load (the word embeddings row by row as tokens need them).
//!
//! The same tokenizer and forward, in PyTorch, live in `training/spool_tiny/text.py`;
//! `tests/text_parity.rs` checks the two agree.

mod minilm;
pub mod tokenizer;
mod unicode_tables;
mod weights;

use std::path::Path;

use candle_core::{Device, Tensor};

pub use minilm::{Config, MiniLm};
pub use tokenizer::{Encoding, Tokenizer};

use crate::model::{ModelError, Result};
use weights::Vb;

/// Token limit of a prompt, `[CLS]` and `[SEP]` included.
pub const MAX_TOKENS: usize = 32;
/// Width of a text token.
pub const DIM: usize = 384;

const CONFIG_FILE: &str = "config.json";
const VOCAB_FILE: &str = "vocab.txt";
const EMBEDDINGS_FILE: &str = "embeddings.safetensors";
const ENCODER_FILE: &str = "encoder.safetensors";

/// Tokenizer plus encoder, loaded once and shared for every prompt.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    model: MiniLm,
}

fn read_config(path: &Path) -> Result<Config> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::MissingWeights {
            path: file.clone(),
            hint: "the text encoder's files ship in assets/minilm/".into(),
        },
        _ => ModelError::BadWeights { file: file.clone(), reason: e.to_string() },
    })?;
    let config: Config = serde_json::from_str(&text)
        .map_err(|e| ModelError::BadWeights { file: file.clone(), reason: format!("invalid config: {e}") })?;
    let want = Config::minilm_l6();
    let mismatch = |what: &str, got: usize, expected: usize| ModelError::BadWeights {
        file: file.clone(),
        reason: format!("{what} is {got}, this build expects {expected}"),
    };
    if config.hidden_size != DIM {
        return Err(mismatch("hidden_size", config.hidden_size, DIM));
    }
    if config.max_tokens != MAX_TOKENS {
        return Err(mismatch("max_tokens", config.max_tokens, MAX_TOKENS));
    }
    if config.num_attention_heads == 0 || !config.hidden_size.is_multiple_of(config.num_attention_heads) {
        return Err(mismatch("num_attention_heads", config.num_attention_heads, want.num_attention_heads));
    }
    if config.max_position_embeddings < MAX_TOKENS {
        return Err(mismatch("max_position_embeddings", config.max_position_embeddings, want.max_position_embeddings));
    }
    Ok(config)
}

impl TextEncoder {
    /// The files [`TextEncoder::load`] reads from `dir`.
    pub fn files(dir: &Path) -> [std::path::PathBuf; 4] {
        [CONFIG_FILE, VOCAB_FILE, EMBEDDINGS_FILE, ENCODER_FILE].map(|f| dir.join(f))
    }

    /// Loads `config.json`, `vocab.txt`, `embeddings.safetensors` and `encoder.safetensors` from
    /// `dir`. A missing, truncated or mismatched file is an error naming the file (and the tensor).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ModelError> {
        let config = read_config(&dir.join(CONFIG_FILE))?;
        let vocab_path = dir.join(VOCAB_FILE);
        let tokenizer = Tokenizer::from_file(&vocab_path, config.max_tokens)?;
        if tokenizer.vocab_size() != config.vocab_size {
            return Err(ModelError::BadWeights {
                file: vocab_path.display().to_string(),
                reason: format!("{} tokens, config.json says {}", tokenizer.vocab_size(), config.vocab_size),
            });
        }
        let emb = weights::load(&dir.join(EMBEDDINGS_FILE), device)?;
        let enc = weights::load(&dir.join(ENCODER_FILE), device)?;
        let model = MiniLm::load(&Vb::new(&emb, "embeddings"), &Vb::new(&enc, "encoder").pp("layer"), &config)?;
        Ok(TextEncoder { tokenizer, model })
    }

    /// The prompt's token states `(n, 384)` f32, `n ≤ 32`, and whether it was truncated.
    pub fn encode(&self, text: &str) -> Result<(Tensor, bool), ModelError> {
        let Encoding { ids, truncated } = self.tokenizer.encode(text);
        Ok((self.model.forward(&ids)?, truncated))
    }

    /// The token ids [`encode`](Self::encode) runs on.
    pub fn tokenize(&self, text: &str) -> Encoding {
        self.tokenizer.encode(text)
    }

    /// Token states of given ids (`[CLS] … [SEP]`), for tests and tools.
    pub fn encode_ids(&self, ids: &[u32]) -> Result<Tensor, ModelError> {
        self.model.forward(ids)
    }

    pub fn config(&self) -> &Config {
        self.model.config()
    }
}

// The engine may load the encoder on one thread and use it on another.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<TextEncoder>();
};
