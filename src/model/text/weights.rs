//! Loading the converted MiniLM files: f32 tensors and int8 pairs dequantised at load.
//!
//! A quantised matrix `X.weight` is stored as `X.weight_q` (I8, `[out, in]`) and `X.weight_scale`
//! (F32, `[out]`); its value is `q * scale[row]`, one f32 multiply per element, the same as the
//! Python loader in `training/spool_tiny/text.py` (so both see bit-identical weights). The file
//! itself is read by the shared [`WeightsFile`]; every error names the file and the tensor.

use std::path::Path;

use candle_core::{Device, Tensor};
use safetensors::Dtype;

use crate::model::Result;
use crate::model::weights::WeightsFile;

/// Reads one of the text encoder's safetensors files.
pub(crate) fn load(path: &Path, device: &Device) -> Result<WeightsFile> {
    WeightsFile::open(
        path,
        device,
        "the text encoder's weights ship in assets/minilm/ (made by training/convert_minilm.py)",
    )
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

    /// The int8 pair `name_q` / `name_scale` of a `[rows, cols]` matrix in `w`.
    fn load(w: &WeightsFile, name: &str, rows: usize, cols: usize) -> Result<QuantRows> {
        let qname = format!("{name}_q");
        let raw = w.raw(&qname, &[rows, cols])?;
        if raw.dtype != Dtype::I8 {
            return Err(w.dtype_error(&qname, raw.dtype, "I8"));
        }
        let q = raw.data.iter().map(|&b| b as i8).collect();
        let sname = format!("{name}_scale");
        let raw = w.raw(&sname, &[rows])?;
        if raw.dtype != Dtype::F32 {
            return Err(w.dtype_error(&sname, raw.dtype, "F32"));
        }
        let scale = raw.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(QuantRows { q, scale, cols })
    }
}

/// A prefix into a [`WeightsFile`], in the manner of candle-nn's `VarBuilder`.
pub(crate) struct Vb<'a> {
    weights: &'a WeightsFile,
    prefix: String,
}

impl<'a> Vb<'a> {
    /// A view of `weights` whose names start with `prefix.`.
    pub fn new(weights: &'a WeightsFile, prefix: &str) -> Self {
        Vb { weights, prefix: prefix.to_string() }
    }

    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        Vb { weights: self.weights, prefix: format!("{}.{name}", self.prefix) }
    }

    fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// A float tensor of the given shape, as f32.
    pub fn get(&self, shape: &[usize], name: &str) -> Result<Tensor> {
        self.weights.tensor(&self.path(name), shape)
    }

    /// An int8-quantised matrix (`{name}_q`, `{name}_scale`), dequantised to f32.
    pub fn get_dequantised(&self, shape: (usize, usize), name: &str) -> Result<Tensor> {
        let qr = self.get_quant_rows(shape, name)?;
        let mut v = Vec::with_capacity(shape.0 * shape.1);
        for r in 0..shape.0 {
            qr.push_row(r, &mut v);
        }
        Ok(Tensor::from_vec(v, shape, self.weights.device())?)
    }

    /// An int8-quantised matrix kept quantised.
    pub fn get_quant_rows(&self, shape: (usize, usize), name: &str) -> Result<QuantRows> {
        QuantRows::load(self.weights, &self.path(name), shape.0, shape.1)
    }

    pub fn device(&self) -> &Device {
        self.weights.device()
    }
}
