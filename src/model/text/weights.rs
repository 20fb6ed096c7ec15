//! Loading the converted MiniLM files: f32 tensors and int8 pairs dequantised at load.
//!
//! A quantised matrix `X.weight` is stored as `X.weight_q` (I8, `[out, in]`) and `X.weight_scale`
//! (F32, `[out]`); its value is `q * scale[row]`, one f32 multiply per element, the same as the
//! Python loader in `training/spool_tiny/text.py` (so both see bit-identical weights). Every error
//! names the file and the tensor.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors};

use crate::model::{ModelError, Result};

/// One stored tensor, copied out of its file.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// All tensors of one safetensors file.
pub(crate) struct Weights {
    file: String,
    tensors: HashMap<String, Raw>,
    device: Device,
}

/// An int8 matrix with one f32 scale per row, kept quantised (for lookups that need only a few rows).
pub(crate) struct QuantRows {
    pub q: Vec<i8>,
    pub scale: Vec<f32>,
    pub cols: usize,
}

impl QuantRows {
    pub fn rows(&self) -> usize {
        self.scale.len()
    }

    /// Dequantised row `r`, appended to `out`.
    pub fn push_row(&self, r: usize, out: &mut Vec<f32>) {
        let s = self.scale[r];
        out.extend(self.q[r * self.cols..(r + 1) * self.cols].iter().map(|&q| f32::from(q) * s));
    }
}

impl Weights {
    /// Reads a whole file; a missing, truncated or malformed file is an error naming it.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingWeights {
                path: file.clone(),
                hint: "the text encoder's weights ship in assets/minilm/ (made by training/convert_minilm.py)".into(),
            },
            _ => ModelError::BadWeights { file: file.clone(), reason: e.to_string() },
        })?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::BadWeights {
            file: file.clone(),
            reason: format!("not a complete safetensors file ({e}); the file is truncated or corrupt"),
        })?;
        let tensors = st
            .iter()
            .map(|(name, view)| {
                let raw = Raw { dtype: view.dtype(), shape: view.shape().to_vec(), data: view.data().to_vec() };
                (name.to_string(), raw)
            })
            .collect();
        Ok(Weights { file, tensors, device: device.clone() })
    }

    /// A view whose names start with `prefix.`.
    pub fn pp(&self, prefix: &str) -> Vb<'_> {
        Vb { weights: self, prefix: prefix.to_string() }
    }

    fn raw(&self, name: &str, shape: &[usize]) -> Result<&Raw> {
        let raw = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor { file: self.file.clone(), name: name.to_string() })?;
        if raw.shape != shape {
            return Err(ModelError::ShapeMismatch {
                file: self.file.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                got: raw.shape.clone(),
            });
        }
        Ok(raw)
    }

    fn bad_dtype(&self, name: &str, got: Dtype, expected: &str) -> ModelError {
        ModelError::BadWeights {
            file: self.file.clone(),
            reason: format!(
                "tensor `{name}` is {got:?}, expected {expected}: the file does not match this model version"
            ),
        }
    }

    /// A float tensor (F32, or F16/BF16 widened) as f32.
    fn float(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let raw = self.raw(name, shape)?;
        let dtype = match raw.dtype {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            d => return Err(self.bad_dtype(name, d, "F32")),
        };
        Ok(Tensor::from_raw_buffer(&raw.data, dtype, shape, &self.device)?.to_dtype(DType::F32)?)
    }

    fn f32_vec(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let raw = self.raw(name, shape)?;
        if raw.dtype != Dtype::F32 {
            return Err(self.bad_dtype(name, raw.dtype, "F32"));
        }
        Ok(raw.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// The int8 pair `name_q` / `name_scale` of a `[rows, cols]` matrix, still quantised.
    fn quant_rows(&self, name: &str, rows: usize, cols: usize) -> Result<QuantRows> {
        let qname = format!("{name}_q");
        let raw = self.raw(&qname, &[rows, cols])?;
        if raw.dtype != Dtype::I8 {
            return Err(self.bad_dtype(&qname, raw.dtype, "I8"));
        }
        let q = raw.data.iter().map(|&b| b as i8).collect();
        let scale = self.f32_vec(&format!("{name}_scale"), &[rows])?;
        Ok(QuantRows { q, scale, cols })
    }
}

/// A prefix into [`Weights`], in the manner of candle-nn's `VarBuilder`.
pub(crate) struct Vb<'a> {
    weights: &'a Weights,
    prefix: String,
}

impl Vb<'_> {
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        Vb { weights: self.weights, prefix: format!("{}.{name}", self.prefix) }
    }

    fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// A float tensor of the given shape, as f32.
    pub fn get(&self, shape: &[usize], name: &str) -> Result<Tensor> {
        self.weights.float(&self.path(name), shape)
    }

    /// An int8-quantised matrix (`{name}_q`, `{name}_scale`), dequantised to f32.
    pub fn get_dequantised(&self, shape: (usize, usize), name: &str) -> Result<Tensor> {
        let qr = self.get_quant_rows(shape, name)?;
        let mut v = Vec::with_capacity(shape.0 * shape.1);
        for r in 0..shape.0 {
            qr.push_row(r, &mut v);
        }
        Ok(Tensor::from_vec(v, shape, &self.weights.device)?)
    }

    /// An int8-quantised matrix kept quantised.
    pub fn get_quant_rows(&self, shape: (usize, usize), name: &str) -> Result<QuantRows> {
        self.weights.quant_rows(&self.path(name), shape.0, shape.1)
    }

    pub fn device(&self) -> &Device {
        &self.weights.device
    }
}
