//! PNG sequence export: `frame_000000.png`, `frame_000001.png`, … in a folder, each carrying the
//! metadata as text chunks (so any single frame still says which prompt, seed and model made it).
//!
//! Pixels are encoded by `image`'s PNG encoder; we then insert the text chunks after `IHDR`
//! ourselves, because that encoder has no text API. ASCII text goes into `tEXt`; anything else into
//! `iTXt` (UTF-8), since `tEXt` is Latin-1 only. `Software` names Spool.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, RgbImage};

use super::{ExportError, NewSink, Sink, SinkSetup, io_error};

pub(crate) struct PngSink {
    path: PathBuf,
    dir: PathBuf,
    /// Text chunks, built once and spliced into every frame.
    text_chunks: Vec<u8>,
    bytes: u64,
    encoded: Vec<u8>,
}

impl PngSink {
    pub(super) fn create(setup: &SinkSetup<'_>) -> NewSink {
        let mut text_chunks = text_chunk("Software", concat!("Spool ", env!("CARGO_PKG_VERSION")));
        for (key, value) in &setup.options.metadata {
            text_chunks.extend(text_chunk(key, value));
        }
        let sink = PngSink {
            path: setup.path.to_path_buf(),
            dir: setup.temp.to_path_buf(),
            text_chunks,
            bytes: 0,
            encoded: Vec::new(),
        };
        Ok((Box::new(sink), (setup.width, setup.height)))
    }
}

/// The file name of frame `index` in a PNG sequence.
pub fn frame_file_name(index: usize) -> String {
    format!("frame_{index:06}.png")
}

impl Sink for PngSink {
    fn push(&mut self, image: &RgbImage, index: usize) -> Result<(), ExportError> {
        self.encoded.clear();
        PngEncoder::new_with_quality(&mut self.encoded, CompressionType::Fast, FilterType::Adaptive)
            .write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)
            .map_err(|e| ExportError::Io { path: self.path.clone(), source: std::io::Error::other(e) })?;
        // Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
        const AFTER_IHDR: usize = 8 + 25;
        debug_assert_eq!(&self.encoded[12..16], b"IHDR");
        let name = frame_file_name(index);
        let file_path = self.dir.join(&name);
        let final_path = self.path.join(&name);
        let write = || -> std::io::Result<()> {
            let mut file = File::create_new(&file_path)?;
            file.write_all(&self.encoded[..AFTER_IHDR])?;
            file.write_all(&self.text_chunks)?;
            file.write_all(&self.encoded[AFTER_IHDR..])?;
            file.sync_all()
        };
        write().map_err(|e| io_error(&final_path, e))?;
        self.bytes += (self.encoded.len() + self.text_chunks.len()) as u64;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<u64, ExportError> {
        Ok(self.bytes)
    }
}

/// A PNG keyword: 1–79 printable Latin-1 characters without leading, trailing or double spaces.
/// Anything else is replaced by `_` rather than refused, since metadata must not fail an export.
fn keyword(key: &str) -> Vec<u8> {
    let mut out: Vec<u8> = key
        .chars()
        .map(|c| match c {
            ' ' | '!'..='~' => c as u8,
            '\u{a1}'..='\u{ff}' => c as u32 as u8,
            _ => b'_',
        })
        .collect();
    out.truncate(79);
    let mut cleaned: Vec<u8> = Vec::with_capacity(out.len());
    for b in out {
        if b == b' ' && cleaned.last().is_none_or(|&l| l == b' ') {
            continue;
        }
        cleaned.push(b);
    }
    while cleaned.last() == Some(&b' ') {
        cleaned.pop();
    }
    if cleaned.is_empty() {
        cleaned.push(b'_');
    }
    cleaned
}

/// One `tEXt` (ASCII value) or `iTXt` (anything else, UTF-8) chunk.
pub(crate) fn text_chunk(key: &str, value: &str) -> Vec<u8> {
    let mut data = keyword(key);
    data.push(0);
    let kind: &[u8; 4] = if value.is_ascii() {
        data.extend_from_slice(value.as_bytes());
        b"tEXt"
    } else {
        // Not compressed, no language tag, no translated keyword.
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend_from_slice(value.as_bytes());
        b"iTXt"
    };
    let mut chunk = Vec::with_capacity(data.len() + 12);
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(&data);
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    chunk
}

/// CRC-32 (IEEE 802.3, as PNG uses), bitwise: the chunks are tiny and written once.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_reference() {
        // CRC of "IEND" is the well-known trailer value.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn keywords_are_sanitised() {
        assert_eq!(keyword("seed"), b"seed");
        assert_eq!(keyword("  a  b "), b"a b");
        assert_eq!(keyword("日本"), b"__");
        assert_eq!(keyword(&"k".repeat(100)).len(), 79);
    }

    #[test]
    fn utf8_values_use_itxt() {
        assert_eq!(&text_chunk("prompt", "a cat")[4..8], b"tEXt");
        assert_eq!(&text_chunk("prompt", "a café")[4..8], b"iTXt");
    }
}
