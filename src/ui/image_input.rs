//! Start images for image-to-video: decoded and sized off the UI thread.
//!
//! The engine wants a frame at exactly the model's size; the picture is centre-cropped to the
//! model's aspect ratio and then resized, so nothing is stretched.

use std::path::Path;

use image::imageops::FilterType;

use crate::model::Frame;

/// Reads and sizes an image file. `size` is the model's (width, height) when known.
pub fn load(path: &Path, size: Option<(u32, u32)>) -> Result<(String, Frame), String> {
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let bytes = std::fs::read(path).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    decode(&name, &bytes, size)
}

/// Decodes image bytes and sizes them.
pub fn decode(name: &str, bytes: &[u8], size: Option<(u32, u32)>) -> Result<(String, Frame), String> {
    let img = image::load_from_memory(bytes).map_err(|e| format!("{name} is not an image Spool can read ({e})"))?;
    let rgb = img.to_rgb8();
    let (w, h) = size.unwrap_or((rgb.width(), rgb.height()));
    Ok((name.to_string(), fit(&rgb, w, h)))
}

/// Resizes a frame to `w × h` (centre crop, then resample).
pub fn resize_frame(frame: &Frame, w: u32, h: u32) -> Frame {
    let rgb =
        image::RgbImage::from_raw(frame.width, frame.height, frame.to_rgb8()).expect("a frame's bytes fit its size");
    fit(&rgb, w, h)
}

fn fit(rgb: &image::RgbImage, w: u32, h: u32) -> Frame {
    let (sw, sh) = (rgb.width().max(1), rgb.height().max(1));
    let target = w as f64 / h.max(1) as f64;
    let (cw, ch) = if sw as f64 / sh as f64 > target {
        (((sh as f64) * target).round().max(1.0) as u32, sh)
    } else {
        (sw, ((sw as f64) / target).round().max(1.0) as u32)
    };
    let crop = image::imageops::crop_imm(rgb, (sw - cw) / 2, (sh - ch) / 2, cw, ch).to_image();
    let out = if (cw, ch) == (w, h) { crop } else { image::imageops::resize(&crop, w, h, FilterType::Triangle) };
    Frame::from_rgb8(w, h, out.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_to_aspect_then_resizes() {
        let mut img = image::RgbImage::new(40, 20);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = if (10..30).contains(&x) { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) };
        }
        let f = fit(&img, 8, 8);
        assert_eq!((f.width, f.height), (8, 8));
        // The centre square is all red: the blue sides were cropped, not squeezed in.
        let rgb = f.to_rgb8();
        assert!(rgb.chunks(3).all(|p| p[0] > 200 && p[2] < 60), "{rgb:?}");
    }
}
