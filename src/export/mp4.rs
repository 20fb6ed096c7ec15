//! MP4 export: H.264 from Cisco's OpenH264 (built from bundled source by the `openh264` crate), muxed
//! by `muxide` with `moov` before `mdat` so the file streams and plays in browsers.
//!
//! - Colour: we convert RGB to yuv420p ourselves with the BT.709 matrix at limited ("TV") range and
//!   tag the stream the same way in the SPS VUI (primaries, transfer and matrix BT.709, full-range
//!   off), so players decode the colours we encoded instead of guessing.
//! - Size: yuv420p needs even dimensions. An odd width or height is padded by one column/row that
//!   repeats the edge pixels (no content is lost or resampled); the file is then one pixel larger.
//! - Profile: High (profile_idc 100), CAVLC entropy coding; the crate does not expose OpenH264's CABAC
//!   switch. No B-frames, so decode order equals presentation order.
//! - Rate: constant quantiser from [`Quality`](super::Quality), frame skipping off (every input frame
//!   becomes exactly one sample), an IDR every two seconds so editors can seek.
//! - Timing: frame `i` is presented at `i / fps` on muxide's 90 kHz media clock, which is exact for
//!   all common integer rates.
//! - Metadata: muxide only writes a title, date and chapters, so [`MoovPatcher`] appends our own
//!   `udta/meta/ilst` (iTunes-style `----` items per key, `©cmt`, `©too`, `©nam`) to `moov` as it
//!   streams past and shifts the chunk offsets to match.
//! - Memory: muxide keeps the compressed samples until `finish` (the index must precede the data);
//!   that is a few MB per minute at these sizes, while raw frames are never kept.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};

use image::RgbImage;
use muxide::api::{Muxer, MuxerBuilder, VideoCodec};
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level, Profile, QpRange,
    RateControlMode, UsageType, VuiConfig,
};
use openh264::formats::YUVSlices;

use super::{ExportError, NewSink, Sink, SinkSetup, io_error};

/// OpenH264's limit (level 5.2).
const MAX_LONG_SIDE: u32 = 3840;
const MAX_SHORT_SIDE: u32 = 2160;

/// Constant quantiser for a quality: 100 → 10, 80 → 17, 1 → 46.
pub(crate) fn quality_to_qp(quality: u8) -> u8 {
    let q = u32::from(quality.clamp(1, 100));
    (10 + ((100 - q) * 36 + 49) / 99) as u8
}

/// The lowest H.264 level whose frame size and macroblock rate fit, but at least 3.0, with that
/// level's maximum bitrate. OpenH264 raises the level to fit the bitrate it is given and otherwise
/// tags every stream 5.1, which some hardware decoders refuse for small clips.
pub(crate) fn level_for(width: u32, height: u32, fps: f32) -> (Level, u32) {
    let (wmb, hmb) = (width.div_ceil(16), height.div_ceil(16));
    let frame_mbs = wmb * hmb;
    let mb_rate = f64::from(frame_mbs) * f64::from(fps);
    // (MaxFS, MaxMBPS, MaxBR in kbit/s, level) from H.264 Table A-1.
    const TABLE: [(u32, f64, u32, Level); 8] = [
        (1_620, 40_500.0, 10_000, Level::Level_3_0),
        (3_600, 108_000.0, 14_000, Level::Level_3_1),
        (5_120, 216_000.0, 20_000, Level::Level_3_2),
        (8_192, 245_760.0, 20_000, Level::Level_4_0),
        (8_704, 522_240.0, 50_000, Level::Level_4_2),
        (22_080, 589_824.0, 135_000, Level::Level_5_0),
        (36_864, 983_040.0, 240_000, Level::Level_5_1),
        (36_864, 2_073_600.0, 240_000, Level::Level_5_2),
    ];
    for (max_fs, max_mbps, max_kbps, level) in TABLE {
        // A side may not exceed sqrt(8 · MaxFS) macroblocks.
        let max_side = f64::from(8 * max_fs).sqrt();
        if frame_mbs <= max_fs && mb_rate <= max_mbps && f64::from(wmb) <= max_side && f64::from(hmb) <= max_side {
            return (level, max_kbps * 1000);
        }
    }
    (Level::Level_5_2, 240_000_000)
}

pub(crate) struct Mp4Sink {
    path: std::path::PathBuf,
    encoder: Encoder,
    muxer: Muxer<MoovPatcher<BufWriter<File>>>,
    /// Encoded (padded) size.
    width: usize,
    height: usize,
    fps: f64,
    /// I420 planes, reused for every frame.
    yuv: Vec<u8>,
    /// Annex-B output of one frame, reused.
    bitstream: Vec<u8>,
}

impl Mp4Sink {
    pub(super) fn create(setup: &SinkSetup<'_>) -> NewSink {
        let (w, h) = (setup.width + setup.width % 2, setup.height + setup.height % 2);
        if w.max(h) > MAX_LONG_SIDE || w.min(h) > MAX_SHORT_SIDE {
            return Err(ExportError::TooLarge { format: "H.264", width: w, height: h, max: "3840x2160" });
        }
        let fps = setup.options.fps;
        let qp = quality_to_qp(setup.options.quality.get());
        let (level, max_bitrate) = level_for(w, h, fps);
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::High)
            .level(level)
            .complexity(Complexity::High)
            // The QP is pinned by `qp` below. Buffer-based rate control honours that range exactly like
            // quality mode does (same bitstream) but, unlike it, does not print a warning to stderr
            // for running with frame skipping off. RC "off" would ignore the range (always QP 26).
            .rate_control_mode(RateControlMode::Bufferbased)
            .bitrate(BitRate::from_bps(max_bitrate))
            .qp(QpRange::new(qp, qp))
            .skip_frames(false)
            .max_frame_rate(FrameRate::from_hz(fps))
            .intra_frame_period(IntraFramePeriod::from_num_frames((fps * 2.0).round().max(1.0) as u32))
            .background_detection(false)
            .scene_change_detect(false)
            .vui(VuiConfig::bt709())
            // One thread: the export shares the CPU with generation, and single-slice encoding gains
            // nothing from OpenH264's threads.
            .num_threads(1);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| ExportError::Encode { index: 0, reason: e.to_string() })?;
        let file =
            OpenOptions::new().write(true).truncate(true).open(setup.temp).map_err(|e| io_error(setup.path, e))?;
        let writer = MoovPatcher::new(BufWriter::with_capacity(1 << 20, file), build_udta(&setup.options.metadata));
        let muxer = MuxerBuilder::new(writer)
            .video(VideoCodec::H264, w, h, f64::from(fps))
            .with_fast_start(true)
            .build()
            .map_err(|e| mux_error(setup.path, e))?;
        let (wu, hu) = (w as usize, h as usize);
        let sink = Mp4Sink {
            path: setup.path.to_path_buf(),
            encoder,
            muxer,
            width: wu,
            height: hu,
            fps: f64::from(fps),
            yuv: vec![0; wu * hu * 3 / 2],
            bitstream: Vec::new(),
        };
        Ok((Box::new(sink), (w, h)))
    }
}

impl Sink for Mp4Sink {
    fn push(&mut self, image: &RgbImage, index: usize) -> Result<(), ExportError> {
        let (w, h) = (self.width, self.height);
        let (y, uv) = self.yuv.split_at_mut(w * h);
        let (u, v) = uv.split_at_mut(w * h / 4);
        rgb_to_yuv420_bt709(image.as_raw(), image.width() as usize, image.height() as usize, w, h, y, u, v);
        let source = YUVSlices::new((&*y, &*u, &*v), (w, h), (w, w / 2, w / 2));
        let millis = (index as f64 * 1000.0 / self.fps).round() as u64;
        let encoded = self
            .encoder
            .encode_at(&source, openh264::Timestamp::from_millis(millis))
            .map_err(|e| ExportError::Encode { index, reason: e.to_string() })?;
        let frame_type = encoded.frame_type();
        self.bitstream.clear();
        encoded.write_vec(&mut self.bitstream);
        if self.bitstream.is_empty() || matches!(frame_type, FrameType::Skip | FrameType::Invalid) {
            // Frame skipping is off, so this would be an encoder bug; a missing sample would silently
            // shorten the clip, so refuse.
            return Err(ExportError::Encode {
                index,
                reason: format!("the encoder produced no picture ({frame_type:?})"),
            });
        }
        let pts = index as f64 / self.fps;
        self.muxer.write_video(pts, &self.bitstream, frame_type == FrameType::IDR).map_err(|e| mux_error(&self.path, e))
    }

    fn finish(self: Box<Self>) -> Result<u64, ExportError> {
        let Mp4Sink { path, mut muxer, .. } = *self;
        let stats = muxer.finish_in_place_with_stats().map_err(|e| mux_error(&path, e))?;
        let patcher = muxer.into_writer();
        if !patcher.patched() {
            return Err(ExportError::Mux("the MP4 index was not found where expected; metadata not written".into()));
        }
        let file = patcher.into_inner().into_inner().map_err(|e| io_error(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_error(&path, e))?;
        Ok(file.metadata().map(|m| m.len()).unwrap_or(stats.bytes_written))
    }
}

fn mux_error(path: &std::path::Path, e: muxide::api::MuxerError) -> ExportError {
    match e {
        muxide::api::MuxerError::Io(e) => io_error(path, e),
        other => ExportError::Mux(other.to_string()),
    }
}

/// RGB (interleaved, `src_w × src_h`) to I420 at `dst_w × dst_h` (≥ source; the extra column/row
/// repeats the edge), BT.709 matrix, limited range: Y in 16..=235, Cb/Cr in 16..=240. Chroma is the
/// average of each 2×2 block.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rgb_to_yuv420_bt709(
    rgb: &[u8],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    y_out: &mut [u8],
    u_out: &mut [u8],
    v_out: &mut [u8],
) {
    const KR: f32 = 0.2126;
    const KB: f32 = 0.0722;
    const KG: f32 = 1.0 - KR - KB;
    // Scale factors from full-range 0..255 to the limited excursions (219 for luma, 224 for chroma).
    const YS: f32 = 219.0 / 255.0;
    const CS: f32 = 224.0 / 255.0;
    let px = |x: usize, y: usize| {
        let i = (y.min(src_h - 1) * src_w + x.min(src_w - 1)) * 3;
        (f32::from(rgb[i]), f32::from(rgb[i + 1]), f32::from(rgb[i + 2]))
    };
    for y in 0..dst_h {
        let row = &mut y_out[y * dst_w..(y + 1) * dst_w];
        for (x, out) in row.iter_mut().enumerate() {
            let (r, g, b) = px(x, y);
            *out = (16.0 + YS * (KR * r + KG * g + KB * b) + 0.5) as u8;
        }
    }
    let cw = dst_w / 2;
    for cy in 0..dst_h / 2 {
        for cx in 0..cw {
            let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = px(2 * cx + dx, 2 * cy + dy);
                r += p.0;
                g += p.1;
                b += p.2;
            }
            let (r, g, b) = (r * 0.25, g * 0.25, b * 0.25);
            let luma = KR * r + KG * g + KB * b;
            let cb = 128.0 + CS * (b - luma) / (2.0 * (1.0 - KB));
            let cr = 128.0 + CS * (r - luma) / (2.0 * (1.0 - KR));
            u_out[cy * cw + cx] = (cb + 0.5).clamp(0.0, 255.0) as u8;
            v_out[cy * cw + cx] = (cr + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
}

fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&((8 + payload.len()) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

/// A `data` atom holding UTF-8 text (well-known type 1, default locale).
fn text_data(value: &str) -> Vec<u8> {
    let mut payload = vec![0, 0, 0, 1, 0, 0, 0, 0];
    payload.extend_from_slice(value.as_bytes());
    mp4_box(b"data", &payload)
}

/// `moov/udta`: a QuickTime/iTunes `meta` (handler `mdir`) whose `ilst` holds the encoder name, an
/// optional title, a readable comment listing every key, and one freeform `----` item per key
/// (ffmpeg and exiftool show those under the key's own name).
pub(crate) fn build_udta(metadata: &[(String, String)]) -> Vec<u8> {
    let mut ilst = Vec::new();
    ilst.extend(mp4_box(b"\xa9too", &text_data(concat!("Spool ", env!("CARGO_PKG_VERSION")))));
    if let Some((_, title)) = metadata.iter().find(|(k, _)| k == "title") {
        ilst.extend(mp4_box(b"\xa9nam", &text_data(title)));
    }
    if !metadata.is_empty() {
        let comment: Vec<String> = metadata.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        ilst.extend(mp4_box(b"\xa9cmt", &text_data(&comment.join("\n"))));
    }
    for (key, value) in metadata {
        let mut item = Vec::new();
        let full_box_string = |kind: &[u8; 4], s: &str| {
            let mut p = vec![0, 0, 0, 0];
            p.extend_from_slice(s.as_bytes());
            mp4_box(kind, &p)
        };
        item.extend(full_box_string(b"mean", "org.spool"));
        item.extend(full_box_string(b"name", key));
        item.extend(text_data(value));
        ilst.extend(mp4_box(b"----", &item));
    }
    let mut hdlr = vec![0u8; 8]; // version/flags, pre_defined
    hdlr.extend_from_slice(b"mdir");
    hdlr.extend_from_slice(b"appl");
    hdlr.extend_from_slice(&[0; 8]); // reserved
    hdlr.push(0); // empty name
    let mut meta = vec![0u8; 4]; // full box: version/flags
    meta.extend(mp4_box(b"hdlr", &hdlr));
    meta.extend(mp4_box(b"ilst", &ilst));
    mp4_box(b"udta", &mp4_box(b"meta", &meta))
}

/// A writer that lets top-level boxes stream through, except `moov`, which it holds until complete,
/// appends `udta` to, and re-emits with every chunk offset (`stco`/`co64`) moved by the inserted
/// length (with fast start the media data follows `moov`, so it shifts by exactly that much).
pub(crate) struct MoovPatcher<W: Write> {
    inner: W,
    udta: Vec<u8>,
    pending: Vec<u8>,
    passthrough: bool,
    patched: bool,
}

impl<W: Write> MoovPatcher<W> {
    pub(crate) fn new(inner: W, udta: Vec<u8>) -> Self {
        MoovPatcher { inner, udta, pending: Vec::new(), passthrough: false, patched: false }
    }

    pub(crate) fn patched(&self) -> bool {
        self.patched
    }

    pub(crate) fn into_inner(self) -> W {
        self.inner
    }

    fn drain(&mut self) -> io::Result<()> {
        while self.pending.len() >= 8 {
            let size = u32::from_be_bytes(self.pending[0..4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = self.pending[4..8].try_into().unwrap();
            if size < 8 || &kind == b"mdat" {
                // Media data (or a 64-bit/to-end box): everything from here on is passed unchanged.
                self.inner.write_all(&self.pending)?;
                self.pending.clear();
                self.passthrough = true;
                return Ok(());
            }
            if self.pending.len() < size {
                return Ok(());
            }
            let mut boxed: Vec<u8> = self.pending.drain(..size).collect();
            if &kind == b"moov" && !self.patched {
                let delta = self.udta.len() as u64;
                shift_chunk_offsets(&mut boxed[8..], delta)?;
                boxed.extend_from_slice(&self.udta);
                let new_size = u32::try_from(boxed.len()).map_err(|_| io::Error::other("moov too large"))?;
                boxed[0..4].copy_from_slice(&new_size.to_be_bytes());
                self.patched = true;
            }
            self.inner.write_all(&boxed)?;
        }
        Ok(())
    }
}

/// Adds `delta` to every chunk offset inside a run of boxes (recursing through the containers that
/// lead to `stbl`).
fn shift_chunk_offsets(mut buf: &mut [u8], delta: u64) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed moov box");
    while buf.len() >= 8 {
        let size = u32::from_be_bytes(buf[0..4].try_into().unwrap()) as usize;
        if size < 8 || size > buf.len() {
            return Err(bad());
        }
        let (this, rest) = std::mem::take(&mut buf).split_at_mut(size);
        let kind: [u8; 4] = this[4..8].try_into().unwrap();
        let body = &mut this[8..];
        match &kind {
            b"trak" | b"mdia" | b"minf" | b"stbl" => shift_chunk_offsets(body, delta)?,
            b"stco" | b"co64" => {
                let wide = &kind == b"co64";
                let entry = if wide { 8 } else { 4 };
                let count = u32::from_be_bytes(body.get(4..8).ok_or_else(bad)?.try_into().unwrap()) as usize;
                let entries = body.get_mut(8..8 + count * entry).ok_or_else(bad)?;
                for e in entries.chunks_exact_mut(entry) {
                    if wide {
                        let v = u64::from_be_bytes(e.try_into().unwrap()) + delta;
                        e.copy_from_slice(&v.to_be_bytes());
                    } else {
                        let v = u64::from(u32::from_be_bytes(e.try_into().unwrap())) + delta;
                        let v = u32::try_from(v).map_err(|_| io::Error::other("MP4 larger than 4 GiB"))?;
                        e.copy_from_slice(&v.to_be_bytes());
                    }
                }
            }
            _ => {}
        }
        buf = rest;
    }
    Ok(())
}

impl<W: Write> Write for MoovPatcher<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.passthrough {
            return self.inner.write(buf);
        }
        self.pending.extend_from_slice(buf);
        self.drain()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_mapping() {
        assert_eq!(quality_to_qp(100), 10);
        assert_eq!(quality_to_qp(80), 17);
        assert_eq!(quality_to_qp(1), 46);
    }

    #[test]
    fn levels() {
        assert!(matches!(level_for(128, 128, 16.0), (Level::Level_3_0, 10_000_000)));
        assert!(matches!(level_for(832, 480, 16.0), (Level::Level_3_0, _)));
        assert!(matches!(level_for(1664, 960, 16.0), (Level::Level_4_0, _)));
        assert!(matches!(level_for(3328, 1920, 16.0), (Level::Level_5_1, _)));
        assert!(matches!(level_for(1920, 1080, 60.0), (Level::Level_4_2, _)));
    }

    #[test]
    fn yuv_of_primaries() {
        // White, black and pure red at limited range BT.709.
        let rgb = [255, 255, 255, 0, 0, 0, 255, 0, 0, 255, 0, 0];
        let (mut y, mut u, mut v) = ([0u8; 4], [0u8; 1], [0u8; 1]);
        rgb_to_yuv420_bt709(&rgb, 2, 2, 2, 2, &mut y, &mut u, &mut v);
        assert_eq!(y, [235, 16, 63, 63]);
        let (mut y, mut u, mut v) = ([0u8; 4], [0u8; 1], [0u8; 1]);
        rgb_to_yuv420_bt709(&[255, 0, 0].repeat(4), 2, 2, 2, 2, &mut y, &mut u, &mut v);
        assert_eq!((u[0], v[0]), (102, 240));
    }

    #[test]
    fn odd_sizes_repeat_the_edge() {
        // 1x1 source into a 2x2 frame: all four luma samples equal.
        let (mut y, mut u, mut v) = ([0u8; 4], [0u8; 1], [0u8; 1]);
        rgb_to_yuv420_bt709(&[10, 200, 30], 1, 1, 2, 2, &mut y, &mut u, &mut v);
        assert!(y.iter().all(|&s| s == y[0]));
    }

    #[test]
    fn patcher_shifts_offsets_and_appends_udta() {
        // ftyp, moov{trak{mdia{minf{stbl{stco[1 entry]}}}}}, mdat.
        let stco = mp4_box(b"stco", &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 100]);
        let moov = mp4_box(b"moov", &mp4_box(b"trak", &mp4_box(b"mdia", &mp4_box(b"minf", &mp4_box(b"stbl", &stco)))));
        let mut file = mp4_box(b"ftyp", b"isom");
        file.extend(&moov);
        file.extend(mp4_box(b"mdat", b"abcd"));
        let udta = build_udta(&[("seed".into(), "7".into())]);
        let mut p = MoovPatcher::new(Vec::new(), udta.clone());
        for chunk in file.chunks(3) {
            p.write_all(chunk).unwrap();
        }
        assert!(p.patched());
        let out = p.into_inner();
        assert_eq!(out.len(), file.len() + udta.len());
        let at = out.windows(4).position(|w| w == b"stco").unwrap();
        let offset = u32::from_be_bytes(out[at + 12..at + 16].try_into().unwrap());
        assert_eq!(offset as usize, 100 + udta.len());
        assert!(out.ends_with(&mp4_box(b"mdat", b"abcd")));
    }
}
