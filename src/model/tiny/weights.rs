//! Named tensors for spool-tiny: from a safetensors file, or random ones of the same shapes.
//!
//! Every lookup states the shape the [`Config`](super::Config) expects, so a file from another model
//! version fails at load time with an error naming the file and the tensor, not with a shape error
//! deep inside a forward pass. Tensors on disk may be f16, bf16, f32 or f64; the shared loader
//! (`crate::model::weights`) widens each to f32 once, as it is looked up, because f16 compute on CPU
//! is 2–2.5× slower than f32 (DESIGN.md §7).
//!
//! The random source exists for benchmarks and tests: it hands out tensors of exactly the shapes the
//! model asks for, scaled so activations stay in a realistic range, deterministically from a seed.

use std::path::Path;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::model::Result;
use crate::model::weights::WeightsFile;

enum Source {
    File(WeightsFile),
    Random { seed: u64, device: Device },
}

/// A set of named f32 tensors: a safetensors file (read by the shared [`WeightsFile`], whose errors
/// name the file and the tensor) or random ones.
pub struct Weights {
    source: Source,
}

impl Weights {
    /// Reads a whole safetensors file. A missing file, a truncated or corrupt one and a tensor of an
    /// unsupported dtype are errors that name the file (and the tensor).
    pub fn load(path: &Path, device: &Device) -> Result<Weights> {
        let file = WeightsFile::open(
            path,
            device,
            "spool-tiny's weights come from the training run (training/SPEC.md) and live in assets/spool-tiny/",
        )?;
        Ok(Weights { source: Source::File(file) })
    }

    /// Random weights of whatever shapes are asked for (benchmarks, tests). A random lookup never
    /// fails, so `_label` never appears in an error.
    pub fn random(_label: &str, seed: u64, device: &Device) -> Weights {
        Weights { source: Source::Random { seed, device: device.clone() } }
    }

    /// The tensor `name`, checked to have `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        match &self.source {
            Source::File(file) => file.tensor(name, shape),
            Source::Random { seed, device } => random_tensor(name, shape, *seed, device),
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
