//! GIF export with the `gif` crate: one NeuQuant palette per frame (a clip's colours drift as the
//! prompt changes, so a palette fitted to each frame beats one global palette, and it needs no look
//! at future frames), looping forever, metadata in a comment extension.
//!
//! Frame delays are in GIF's 10 ms units, rounded cumulatively so the total length stays exact
//! (16 fps gives 6, 6, 7, 6, … hundredths). Browsers treat delays under 2 hundredths as 10, so rates
//! above 50 fps are shown at 50 fps.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;

use gif::{AnyExtension, DisposalMethod, Encoder, EncodingError, Frame, Repeat};
use image::RgbImage;

use super::{ExportError, NewSink, Sink, SinkSetup, io_error};

/// NeuQuant sampling factor for a quality: 100 → 1 (every pixel), 80 → 7, 1 → 30.
pub(crate) fn quality_to_speed(quality: u8) -> i32 {
    let q = i32::from(quality.clamp(1, 100));
    1 + ((100 - q) * 29 + 49) / 99
}

/// The delay of frame `index` in hundredths of a second.
pub(crate) fn frame_delay(index: usize, fps: f32) -> u16 {
    let at = |i: usize| (i as f64 * 100.0 / f64::from(fps)).round() as i64;
    (at(index + 1) - at(index)).clamp(2, i64::from(u16::MAX)) as u16
}

pub(crate) struct GifSink {
    path: std::path::PathBuf,
    encoder: Encoder<BufWriter<File>>,
    width: u16,
    height: u16,
    fps: f32,
    speed: i32,
}

impl GifSink {
    pub(super) fn create(setup: &SinkSetup<'_>) -> NewSink {
        let too_large =
            || ExportError::TooLarge { format: "GIF", width: setup.width, height: setup.height, max: "65535x65535" };
        let width = u16::try_from(setup.width).map_err(|_| too_large())?;
        let height = u16::try_from(setup.height).map_err(|_| too_large())?;
        let file =
            OpenOptions::new().write(true).truncate(true).open(setup.temp).map_err(|e| io_error(setup.path, e))?;
        let fail = |e| gif_error(setup.path, e);
        let mut encoder = Encoder::new(BufWriter::with_capacity(1 << 20, file), width, height, &[]).map_err(fail)?;
        encoder.set_repeat(Repeat::Infinite).map_err(fail)?;
        if !setup.options.metadata.is_empty() {
            let text: Vec<String> = setup.options.metadata.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let text = text.join("\n");
            encoder.write_raw_extension(AnyExtension(0xFE), &[text.as_bytes()]).map_err(fail)?;
        }
        let sink = GifSink {
            path: setup.path.to_path_buf(),
            encoder,
            width,
            height,
            fps: setup.options.fps,
            speed: quality_to_speed(setup.options.quality.get()),
        };
        Ok((Box::new(sink), (setup.width, setup.height)))
    }
}

fn gif_error(path: &std::path::Path, e: EncodingError) -> ExportError {
    match e {
        EncodingError::Io(e) => io_error(path, e),
        other => ExportError::Gif(other.to_string()),
    }
}

impl Sink for GifSink {
    fn push(&mut self, image: &RgbImage, index: usize) -> Result<(), ExportError> {
        let mut frame = Frame::from_rgb_speed(self.width, self.height, image.as_raw(), self.speed);
        frame.delay = frame_delay(index, self.fps);
        // Every frame covers the whole canvas with no transparency, so nothing needs disposing.
        frame.dispose = DisposalMethod::Keep;
        self.encoder.write_frame(&frame).map_err(|e| gif_error(&self.path, e))
    }

    fn finish(self: Box<Self>) -> Result<u64, ExportError> {
        let GifSink { path, encoder, .. } = *self;
        // `into_inner` writes the trailer.
        let writer = encoder.into_inner().map_err(|e| gif_error(&path, e))?;
        let file = writer.into_inner().map_err(|e| io_error(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_error(&path, e))?;
        file.metadata().map(|m| m.len()).map_err(|e| io_error(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_sum_to_the_clip_length() {
        let total: u32 = (0..16).map(|i| u32::from(frame_delay(i, 16.0))).sum();
        assert_eq!(total, 100);
        assert_eq!(frame_delay(0, 10.0), 10);
        assert_eq!(frame_delay(3, 100.0), 2);
    }

    #[test]
    fn speed_mapping() {
        assert_eq!(quality_to_speed(100), 1);
        assert_eq!(quality_to_speed(1), 30);
        assert_eq!(quality_to_speed(80), 7);
    }
}
