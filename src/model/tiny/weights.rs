//! Named tensors for spool-tiny: from a safetensors file, or random ones of the same shapes.
//!
//! Every lookup states the shape the [`Config`](super::Config) expects, so a file from another model
//! version fails at load time with an error naming the file and the tensor, not with a shape error
//! deep inside a forward pass. Tensors on disk may be f16, bf16, f32 or f64; they are widened to f32
//! once here, because f16 compute on CPU is 2–2.5× slower than f32 (DESIGN.md §7).
//!
//! The random source exists for benchmarks and tests: it hands out tensors of exactly the shapes the
//! model asks for, scaled so activations stay in a realistic range, deterministically from a seed.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::model::{ModelError, Result};

enum Source {
    File(HashMap<String, Tensor>),
    Random { seed: u64 },
}

/// A set of named f32 tensors, with the name of the file they came from for error messages.
pub struct Weights {
    file: String,
    source: Source,
    device: Device,
}

impl Weights {
    /// Reads a whole safetensors file. A missing file, a truncated or corrupt one and a tensor of an
    /// unsupported dtype are errors that name the file (and the tensor).
    pub fn load(path: &Path, device: &Device) -> Result<Weights> {
        let file = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModelError::MissingWeights {
                    path: file,
                    hint: "spool-tiny's weights come from the training run (training/SPEC.md) and live in \
                           assets/spool-tiny/"
                        .into(),
                });
            }
            Err(e) => {
                return Err(ModelError::BadWeights { file, reason: e.to_string() });
            }
        };
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| ModelError::BadWeights { file: file.clone(), reason: e.to_string() })?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let dtype = match view.dtype() {
                safetensors::Dtype::F16 => DType::F16,
                safetensors::Dtype::BF16 => DType::BF16,
                safetensors::Dtype::F32 => DType::F32,
                safetensors::Dtype::F64 => DType::F64,
                other => {
                    return Err(ModelError::BadWeights {
                        file,
                        reason: format!("tensor `{name}` has dtype {other:?}; expected f16, bf16 or f32"),
                    });
                }
            };
            let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), device)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(|e| ModelError::BadWeights { file: file.clone(), reason: format!("tensor `{name}`: {e}") })?;
            tensors.insert(name, t);
        }
        Ok(Weights { file, source: Source::File(tensors), device: device.clone() })
    }

    /// Random weights of whatever shapes are asked for (benchmarks, tests).
    pub fn random(label: &str, seed: u64, device: &Device) -> Weights {
        Weights { file: label.to_string(), source: Source::Random { seed }, device: device.clone() }
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        match &self.source {
            Source::File(map) => {
                let t = map
                    .get(name)
                    .ok_or_else(|| ModelError::MissingTensor { file: self.file.clone(), name: name.into() })?;
                // A scalar may be stored as shape [] or [1]; both mean the same thing.
                let same = t.dims() == shape || (t.elem_count() == 1 && shape.iter().product::<usize>() == 1);
                if !same {
                    return Err(ModelError::ShapeMismatch {
                        file: self.file.clone(),
                        name: name.into(),
                        expected: shape.to_vec(),
                        got: t.dims().to_vec(),
                    });
                }
                Ok(t.reshape(shape)?)
            }
            Source::Random { seed } => random_tensor(name, shape, *seed, &self.device),
        }
    }

    /// A scalar tensor's value.
    pub fn scalar(&self, name: &str) -> Result<f32> {
        Ok(self.get(name, &[1])?.to_vec1::<f32>()?[0])
    }
}

/// Deterministic per-name random tensor with a scale that suits the tensor's role: linear and conv
/// weights get a fan-in scaling (conv weights with a SiLU gain so a deep stack keeps its variance),
/// norm weights sit near one, biases near zero, embeddings around unit scale.
fn random_tensor(name: &str, shape: &[usize], seed: u64, device: &Device) -> Result<Tensor> {
    // FNV-1a of the name, so each tensor is the same whatever order the model asks for them in.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ h);
    let n: usize = shape.iter().product();
    let (mean, std) = if name.ends_with("latent_scale") {
        (1.0, 0.0)
    } else if name.ends_with(".bias") {
        (0.0, 0.02)
    } else if name.ends_with(".weight") && shape.len() == 4 {
        (0.0, (2.0 / (shape[1] * shape[2] * shape[3]) as f32).sqrt())
    } else if name.ends_with(".weight") && shape.len() == 2 {
        (0.0, 1.0 / (shape[1] as f32).sqrt())
    } else if name.ends_with(".weight") {
        (1.0, 0.1)
    } else {
        (0.0, 0.5)
    };
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let z: f32 = StandardNormal.sample(&mut rng);
            mean + std * z
        })
        .collect();
    Ok(Tensor::from_vec(v, shape, device)?)
}
