//! Where wan-causal's weights come from: the files users download, as they are.
//!
//! Two kinds of file: safetensors (`taew2_1.safetensors`, or any file with the reference's key
//! names), and zip-format `torch.save` files — a plain state dict (umT5's
//! `models_t5_umt5-xxl-enc-bf16.pth`) or a training checkpoint whose dicts hold the weights
//! (Self-Forcing's `self_forcing_dmd.pt`, LongLive's `.pt`: `generator_ema` — the EMA weights,
//! taken first, as Self-Forcing's inference does with `--use_ema` — and/or `generator`). Keys lose
//! the training wrappers' prefixes (`model.`, FSDP's `_fsdp_wrapped_module.`, torch.compile's
//! `_orig_mod.`). Tensors are read one at a time, checked for shape, and come out as f32; errors
//! name the file and the tensor.

use std::collections::HashMap;
use std::path::Path;

use candle_core::pickle::PthTensors;
use candle_core::{DType, Device, Tensor};

use crate::model::weights::WeightsFile;
use crate::model::{ModelError, Result};

/// The dicts of a training checkpoint that hold generator weights, in the order they are taken.
pub(crate) const GENERATOR_DICTS: &[&str] = &["generator_ema", "generator"];

enum Store {
    Safetensors(WeightsFile),
    Pth(PthTensors),
    /// Random values of every asked-for shape, for speed benchmarks at the real size without
    /// the real weights: matrices N(0, 1/fan-in), norm weights 1, other vectors 0.
    Random,
}

pub(crate) struct Checkpoint {
    file: String,
    store: Store,
    /// Wan key → the key as stored.
    names: HashMap<String, String>,
    device: Device,
}

/// A stored key without the training wrappers' prefixes.
fn wan_name(stored: &str) -> String {
    let s = stored.replace("_fsdp_wrapped_module.", "").replace("_orig_mod.", "");
    s.strip_prefix("model.").map(str::to_string).unwrap_or(s)
}

impl Checkpoint {
    /// Opens `path`: `.safetensors`, or else a PyTorch file whose weights are in the first of
    /// `dicts` it has, or at its top level. `hint` names the file for the errors ("the umT5
    /// text encoder (models_t5_umt5-xxl-enc-bf16.pth)").
    pub fn open(path: &Path, device: &Device, hint: &str, dicts: &[&str]) -> Result<Checkpoint> {
        let file = path.display().to_string();
        if path.extension().is_some_and(|e| e == "safetensors") {
            let w = WeightsFile::open(path, &Device::Cpu, hint)?;
            let names = w.names().map(|n| (wan_name(n), n.to_string())).collect();
            return Ok(Checkpoint { file, store: Store::Safetensors(w), names, device: device.clone() });
        }
        if !path.exists() {
            return Err(ModelError::MissingWeights { path: file, hint: hint.to_string() });
        }
        let bad = |reason: String| ModelError::BadWeights { file: file.clone(), reason };
        for key in dicts.iter().map(Some).chain([None]) {
            let pth = match PthTensors::new(path, key.copied()) {
                Ok(pth) => pth,
                Err(e) if key.is_some() && e.to_string().contains("not found") => continue,
                Err(e) => {
                    return Err(bad(format!(
                        "not a readable PyTorch checkpoint ({e}): it must be a zip-format torch.save file (torch 1.6 \
                         or later); re-download it if it is truncated"
                    )));
                }
            };
            if pth.tensor_infos().is_empty() {
                continue;
            }
            let names = pth.tensor_infos().keys().map(|n| (wan_name(n), n.clone())).collect();
            return Ok(Checkpoint { file, store: Store::Pth(pth), names, device: device.clone() });
        }
        let held = if dicts.is_empty() { String::new() } else { format!("neither {} nor ", dicts.join(" nor ")) };
        Err(bad(format!("holds no tensors: {held}a plain state dict; is it {hint}?")))
    }

    /// A source of random weights on `device` ([`Store::Random`]).
    pub fn random(device: &Device) -> Checkpoint {
        Checkpoint {
            file: "(random weights)".into(),
            store: Store::Random,
            names: HashMap::new(),
            device: device.clone(),
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// The shape of the tensor with Wan key `name`, if there is one.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let stored = self.names.get(name)?;
        match &self.store {
            Store::Safetensors(w) => w.shape(stored).map(<[usize]>::to_vec),
            Store::Pth(p) => p.tensor_infos().get(stored).map(|i| i.layout.dims().to_vec()),
            Store::Random => None,
        }
    }

    /// The tensor with Wan key `name`, checked to have `shape`, as f32 on the model's device.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let missing = || ModelError::MissingTensor { file: self.file.clone(), name: name.to_string() };
        let t = match &self.store {
            Store::Random => {
                return Ok(match shape {
                    [_] if name.contains("norm") => Tensor::ones(shape, DType::F32, &self.device)?,
                    [_] => Tensor::zeros(shape, DType::F32, &self.device)?,
                    _ => {
                        let fan_in: usize = shape[1..].iter().product();
                        Tensor::randn(0f32, (fan_in as f32).sqrt().recip(), shape, &self.device)?
                    }
                });
            }
            Store::Safetensors(w) => w.tensor(self.names.get(name).ok_or_else(missing)?, shape)?,
            Store::Pth(p) => {
                let stored = self.names.get(name).ok_or_else(missing)?;
                let bad = |e: candle_core::Error| ModelError::BadWeights {
                    file: self.file.clone(),
                    reason: format!("tensor `{stored}`: {e}; the file is truncated or corrupt"),
                };
                let t = p.get(stored).map_err(bad)?.ok_or_else(missing)?;
                if t.dims() != shape {
                    return Err(ModelError::ShapeMismatch {
                        file: self.file.clone(),
                        name: stored.clone(),
                        expected: shape.to_vec(),
                        got: t.dims().to_vec(),
                    });
                }
                t.to_dtype(DType::F32)?
            }
        };
        Ok(t.to_device(&self.device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::wan_name;

    #[test]
    fn training_prefixes_are_stripped() {
        assert_eq!(wan_name("model._fsdp_wrapped_module.blocks.0.ffn.0.weight"), "blocks.0.ffn.0.weight");
        assert_eq!(wan_name("_orig_mod.model.head.head.bias"), "head.head.bias");
        assert_eq!(wan_name("blocks.3.modulation"), "blocks.3.modulation");
    }
}
