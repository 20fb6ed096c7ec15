//! all-MiniLM-L6-v2: a 6-layer, 384-wide BERT encoder (post-LayerNorm, GELU with erf, absolute
//! position embeddings), run on one unpadded sequence.
//!
//! Tensor names are BERT's (`embeddings.*`, `encoder.layer.{i}.*`); linear weights and the word
//! embeddings are int8 (see [`super::weights`]). The word embeddings stay quantised in memory and
//! only the rows of a prompt's tokens are dequantised; everything else is f32.

use candle_core::{D, Device, Module, Tensor};
use serde::Deserialize;

use super::weights::{QuantRows, Vb};
use crate::model::{ModelError, Result};

/// The hyper-parameters in `config.json` (BERT's names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    /// Token limit of a prompt, [CLS] and [SEP] included.
    pub max_tokens: usize,
}

impl Config {
    /// all-MiniLM-L6-v2 with Spool's 32-token limit.
    pub fn minilm_l6() -> Self {
        Config {
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            vocab_size: 30522,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            max_tokens: 32,
        }
    }
}

/// LayerNorm in two passes (mean, then the centred variance), which stays accurate when the mean
/// is large next to the spread.
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn load(vb: &Vb, size: usize, eps: f64) -> Result<Self> {
        Ok(LayerNorm { weight: vb.get(&[size], "weight")?, bias: vb.get(&[size], "bias")?, eps })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let var = x.sqr()?.mean_keepdim(D::Minus1)?;
        x.broadcast_div(&(var + self.eps)?.sqrt()?)?.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)
    }
}

/// `X.weight` (int8, dequantised) and `X.bias` (f32); the weight is kept transposed, `(in, out)`.
#[derive(Debug, Clone)]
struct Linear {
    weight_t: Tensor,
    bias: Tensor,
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight_t)?.broadcast_add(&self.bias)
    }
}

fn linear(vb: &Vb, in_dim: usize, out_dim: usize) -> Result<Linear> {
    let weight = vb.get_dequantised((out_dim, in_dim), "weight")?;
    let bias = vb.get(&[out_dim], "bias")?;
    Ok(Linear { weight_t: weight.t()?.contiguous()?, bias })
}

struct Embeddings {
    word: QuantRows,
    position: Tensor,
    token_type0: Tensor,
    layer_norm: LayerNorm,
}

impl Embeddings {
    fn load(vb: &Vb, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        let word = vb.pp("word_embeddings").get_quant_rows((cfg.vocab_size, h), "weight")?;
        let position = vb.pp("position_embeddings").get(&[cfg.max_position_embeddings, h], "weight")?;
        let token_type = vb.pp("token_type_embeddings").get(&[cfg.type_vocab_size, h], "weight")?;
        Ok(Embeddings {
            word,
            position,
            token_type0: token_type.narrow(0, 0, 1)?,
            layer_norm: LayerNorm::load(&vb.pp("LayerNorm"), h, cfg.layer_norm_eps)?,
        })
    }

    /// `(n, hidden)`: word + position + token type 0, normalised.
    fn forward(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        let mut rows = Vec::with_capacity(ids.len() * self.word.cols);
        for &id in ids {
            let id = id as usize;
            if id >= self.word.rows() {
                return Err(ModelError::Invalid(format!("token id {id} is outside the vocabulary")));
            }
            self.word.push_row(id, &mut rows);
        }
        let n = ids.len();
        let words = Tensor::from_vec(rows, (n, self.word.cols), device)?;
        let x = (words + self.position.narrow(0, 0, n)?)?.broadcast_add(&self.token_type0)?;
        Ok(self.layer_norm.forward(&x)?)
    }
}

struct SelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl SelfAttention {
    fn load(vb: &Vb, cfg: &Config) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(SelfAttention {
            query: linear(&vb.pp("query"), h, h)?,
            key: linear(&vb.pp("key"), h, h)?,
            value: linear(&vb.pp("value"), h, h)?,
            num_heads: cfg.num_attention_heads,
            head_dim: h / cfg.num_attention_heads,
        })
    }

    /// `(n, hidden)` → `(n, hidden)`: every token attends to every token.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let heads = |t: Tensor| t.reshape((n, self.num_heads, self.head_dim))?.transpose(0, 1)?.contiguous();
        let q = heads(self.query.forward(x)?)?;
        let k = heads(self.key.forward(x)?)?;
        let v = heads(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? / (self.head_dim as f64).sqrt())?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        probs.matmul(&v)?.transpose(0, 1)?.reshape((n, self.num_heads * self.head_dim))
    }
}

/// `encoder.layer.{i}`: post-norm attention block then post-norm MLP block.
struct Layer {
    attention: SelfAttention,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Layer {
    fn load(vb: &Vb, cfg: &Config) -> Result<Self> {
        let (h, m, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let att = vb.pp("attention");
        Ok(Layer {
            attention: SelfAttention::load(&att.pp("self"), cfg)?,
            attention_output: linear(&att.pp("output").pp("dense"), h, h)?,
            attention_norm: LayerNorm::load(&att.pp("output").pp("LayerNorm"), h, eps)?,
            intermediate: linear(&vb.pp("intermediate").pp("dense"), h, m)?,
            output: linear(&vb.pp("output").pp("dense"), m, h)?,
            output_norm: LayerNorm::load(&vb.pp("output").pp("LayerNorm"), h, eps)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let a = self.attention_output.forward(&self.attention.forward(x)?)?;
        let x = self.attention_norm.forward(&(a + x)?)?;
        let m = self.output.forward(&self.intermediate.forward(&x)?.gelu_erf()?)?;
        self.output_norm.forward(&(m + x)?)
    }
}

/// The encoder: embeddings and `num_hidden_layers` layers; no pooler.
pub struct MiniLm {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    config: Config,
    device: Device,
}

impl MiniLm {
    /// From the two files' views: `emb` over `embeddings.*`, `enc` over `encoder.layer`.
    pub(crate) fn load(emb: &Vb, enc: &Vb, config: &Config) -> Result<Self> {
        let layers = (0..config.num_hidden_layers).map(|i| Layer::load(&enc.pp(i), config)).collect::<Result<_>>()?;
        Ok(MiniLm {
            embeddings: Embeddings::load(emb, config)?,
            layers,
            config: config.clone(),
            device: emb.device().clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Last layer's states `(n, hidden)` of the token ids (token type 0, no padding).
    pub fn forward(&self, ids: &[u32]) -> Result<Tensor> {
        if ids.is_empty() || ids.len() > self.config.max_position_embeddings {
            return Err(ModelError::Invalid(format!(
                "the text encoder takes 1 to {} tokens, got {}",
                self.config.max_position_embeddings,
                ids.len()
            )));
        }
        let mut x = self.embeddings.forward(ids, &self.device)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        Ok(x)
    }
}
