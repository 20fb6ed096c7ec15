//! Reading safetensors weight files, shared by the models.
//!
//! A [`WeightsFile`] holds every tensor of one file as stored and hands each out by name, checked
//! against the shape the caller expects, so a file from another model version fails at load time
//! rather than deep inside a forward pass. Float tensors may be stored as f16, bf16, f32 or f64;
//! they come out as f32 on the file's device. Every error names the file and, where there is one,
//! the tensor. What a model builds on top (MiniLM's int8 rows, spool-tiny's random weights) lives
//! with that model.

use std::collections::HashMap;
use std::hash::Hasher as _;
use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors};

use crate::model::{ModelError, Result};

/// A content hash of a model's files (`sip128:` and 32 hex digits; SipHash-1-3 with fixed keys: fast,
/// and stable across builds), for telling whether a project's frames were made with these weights.
/// Each file's name (not its folder, so moving the assets keeps the hash) and length go in
/// before its bytes. Files are read in the order given.
pub fn content_hash<'a>(files: impl IntoIterator<Item = &'a Path>) -> Result<String> {
    let mut h = siphasher::sip128::SipHasher13::new();
    let mut buf = vec![0u8; 1 << 20];
    for path in files {
        let bad =
            |e: std::io::Error| ModelError::BadWeights { file: path.display().to_string(), reason: e.to_string() };
        let mut f = std::fs::File::open(path).map_err(bad)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        h.write(name.as_bytes());
        h.write_u64(f.metadata().map_err(bad)?.len());
        loop {
            let n = f.read(&mut buf).map_err(bad)?;
            if n == 0 {
                break;
            }
            h.write(&buf[..n]);
        }
    }
    use siphasher::sip128::Hasher128 as _;
    Ok(format!("sip128:{:032x}", h.finish128().as_u128()))
}

/// One stored tensor, copied out of its file.
pub(crate) struct RawTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

/// All tensors of one safetensors file, with the file's name for error messages.
pub(crate) struct WeightsFile {
    file: String,
    tensors: HashMap<String, RawTensor>,
    device: Device,
}

impl WeightsFile {
    /// Reads a whole file; a missing, truncated or malformed file is an error naming it. `hint`
    /// says where the file comes from, for the error when it is missing.
    pub fn open(path: &Path, device: &Device, hint: &str) -> Result<Self> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingWeights { path: file.clone(), hint: hint.to_string() },
            _ => ModelError::BadWeights { file: file.clone(), reason: e.to_string() },
        })?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| ModelError::BadWeights {
            file: file.clone(),
            reason: format!("not a complete safetensors file ({e}); the file is truncated or corrupt"),
        })?;
        let tensors = st
            .iter()
            .map(|(name, view)| {
                let raw = RawTensor { dtype: view.dtype(), shape: view.shape().to_vec(), data: view.data().to_vec() };
                (name.to_string(), raw)
            })
            .collect();
        Ok(WeightsFile { file, tensors, device: device.clone() })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The names of the stored tensors, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The stored shape of tensor `name`, if there is one.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|r| r.shape.as_slice())
    }

    /// The stored tensor `name`, checked to have `shape`. A scalar may be stored as shape `[]` or
    /// `[1]`; both match any shape of one element.
    pub fn raw(&self, name: &str, shape: &[usize]) -> Result<&RawTensor> {
        let raw = self
            .tensors
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor { file: self.file.clone(), name: name.to_string() })?;
        let scalar = |s: &[usize]| s.iter().product::<usize>() == 1;
        if raw.shape != shape && !(scalar(&raw.shape) && scalar(shape)) {
            return Err(ModelError::ShapeMismatch {
                file: self.file.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                got: raw.shape.clone(),
            });
        }
        Ok(raw)
    }

    /// The error for tensor `name` stored as `got` where `expected` was needed.
    pub fn dtype_error(&self, name: &str, got: Dtype, expected: &str) -> ModelError {
        ModelError::BadWeights {
            file: self.file.clone(),
            reason: format!(
                "tensor `{name}` is {got:?}, expected {expected}: the file does not match this model version"
            ),
        }
    }

    /// The float tensor `name` (F16, BF16, F32 or F64 on disk), checked to have `shape`, as f32 on
    /// the file's device.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let raw = self.raw(name, shape)?;
        let dtype = match raw.dtype {
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            Dtype::F32 => DType::F32,
            Dtype::F64 => DType::F64,
            d => return Err(self.dtype_error(name, d, "F16, BF16 or F32")),
        };
        Tensor::from_raw_buffer(&raw.data, dtype, shape, &self.device)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| ModelError::BadWeights { file: self.file.clone(), reason: format!("tensor `{name}`: {e}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_hash_follows_names_and_bytes_not_folders() {
        let dir = tempfile::tempdir().unwrap();
        let write = |sub: &str, name: &str, bytes: &[u8]| {
            let p = dir.path().join(sub).join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let a = [write("a", "model.safetensors", b"weights"), write("a", "config.json", b"{}")];
        let moved = [write("b", "model.safetensors", b"weights"), write("b", "config.json", b"{}")];
        let changed = [write("c", "model.safetensors", b"weightz"), write("c", "config.json", b"{}")];
        let renamed = [write("d", "other.safetensors", b"weights"), write("d", "config.json", b"{}")];
        let hash = |files: &[std::path::PathBuf]| content_hash(files.iter().map(|p| p.as_path())).unwrap();
        let h = hash(&a);
        assert!(h.starts_with("sip128:") && h.len() == 7 + 32, "{h}");
        assert_eq!(hash(&moved), h, "the same files elsewhere hash the same");
        assert_ne!(hash(&changed), h, "one byte changed");
        assert_ne!(hash(&renamed), h, "a file renamed");
        let missing = content_hash([dir.path().join("nope").as_path()]).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
