//! The frame store: every finished frame's pixels and latent, durable on disk as they arrive, with a
//! bounded in-memory cache so memory stays flat however long the take.
//!
//! Layout: two append-only logs in the store folder, `pixels.log` (PNG-compressed RGB) and
//! `latents.log` (f32 tensors; an empty payload for a frame that carries no latent: where one
//! latent decodes to several video frames, only the first of them carries it). Each record is `magic, frame id, take, index in take, payload
//! length, crc32, payload`, so a log cut short by a crash is read up to its last whole record (the
//! torn tail is dropped), and frames made after the project manifest was last written can be given
//! back to their takes.
//! Appends happen on a writer thread so neither the engine nor the UI waits on the disk; reads come
//! from the cache, or from disk once the writer has the frame there.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use crossbeam_channel::{Receiver, Sender};

use crate::model::{Frame, Latent};

const MAGIC: u32 = 0x5350_4652; // "SPFR"
const HEADER: usize = 4 + 8 + 4 + 8 + 4 + 4;
/// How long an appended record may sit in the OS cache before it is fsynced.
const SYNC_EVERY: Duration = Duration::from_millis(500);

/// Identifies one stored frame; ids are unique within a store and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct FrameId(pub u64);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("frame store {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("frame {0:?} is not in the store")]
    Missing(FrameId),
    #[error("frame {id:?} in {path} is corrupt: {reason}")]
    Corrupt { id: FrameId, path: String, reason: String },
    #[error("the frame store's writer stopped: {0}")]
    WriterGone(String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// Which take a frame was made for, and its position there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    pub take: u32,
    pub index: u64,
}

#[derive(Clone, Copy)]
struct Loc {
    offset: u64,
    len: u32,
}

#[derive(Default)]
struct Index {
    pixels: HashMap<FrameId, Loc>,
    latents: HashMap<FrameId, Loc>,
    /// Tags of the frames whose latents are on disk.
    tags: HashMap<FrameId, Tag>,
    /// Last write error, reported on the next call.
    error: Option<String>,
}

/// A bounded FIFO cache of recently used frames.
struct Recent<T> {
    cap: usize,
    order: VecDeque<FrameId>,
    items: HashMap<FrameId, T>,
}

impl<T: Clone> Recent<T> {
    fn new(cap: usize) -> Self {
        Recent { cap: cap.max(1), order: VecDeque::new(), items: HashMap::new() }
    }
    fn get(&self, id: FrameId) -> Option<T> {
        self.items.get(&id).cloned()
    }
    fn put(&mut self, id: FrameId, v: T) {
        if self.items.insert(id, v).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.items.remove(&old);
            }
        }
    }
}

enum Job {
    Put { id: FrameId, tag: Tag, frame: Arc<Frame>, latent: Option<LatentData> },
    Flush(Sender<()>),
}

/// A latent as plain data (shape and f32 values), so it can cross threads and be written.
#[derive(Debug, Clone, PartialEq)]
pub struct LatentData {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl LatentData {
    pub fn from_latent(l: &Latent) -> candle_core::Result<Self> {
        Ok(LatentData { shape: l.0.dims().to_vec(), values: l.0.flatten_all()?.to_vec1::<f32>()? })
    }
    pub fn to_latent(&self, device: &Device) -> candle_core::Result<Latent> {
        Ok(Latent(Tensor::from_vec(self.values.clone(), self.shape.as_slice(), device)?))
    }
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.shape.len() * 4 + self.values.len() * 4);
        out.push(self.shape.len() as u8);
        for d in &self.shape {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        for v in &self.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
    fn decode(bytes: &[u8]) -> Option<Self> {
        let n = *bytes.first()? as usize;
        let dims = bytes.get(1..1 + 4 * n)?;
        let shape: Vec<usize> =
            dims.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) as usize).collect();
        let data = &bytes[1 + 4 * n..];
        if data.len() != shape.iter().product::<usize>() * 4 {
            return None;
        }
        let values = data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        Some(LatentData { shape, values })
    }
}

/// Handle to a store folder. Cheap to share behind an `Arc`.
pub struct FrameStore {
    dir: PathBuf,
    index: Arc<Mutex<Index>>,
    frames: Mutex<Recent<Arc<Frame>>>,
    latents: Mutex<Recent<Option<LatentData>>>,
    next_id: Mutex<u64>,
    jobs: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    pixels_read: File,
    latents_read: File,
}

impl FrameStore {
    /// Opens (creating if needed) the store in `dir`, keeping at most `memory_frames` decoded frames
    /// in memory. Frames already on disk are indexed; a torn record at a log's end is cut off.
    pub fn open(dir: &Path, memory_frames: usize) -> Result<FrameStore> {
        let io = |source| StoreError::Io { path: dir.display().to_string(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut index = Index::default();
        let (pixels, pix_max) = open_log(&dir.join("pixels.log"), &mut index.pixels, &mut HashMap::new())?;
        let (latents, lat_max) = open_log(&dir.join("latents.log"), &mut index.latents, &mut index.tags)?;
        let next = pix_max.max(lat_max).map_or(0, |m| m + 1);
        let pixels_read = pixels.try_clone().map_err(io)?;
        let latents_read = latents.try_clone().map_err(io)?;
        let index = Arc::new(Mutex::new(index));
        let (tx, rx) = crossbeam_channel::unbounded();
        let writer = {
            let index = index.clone();
            std::thread::Builder::new()
                .name("spool-store".into())
                .spawn(move || write_loop(rx, pixels, latents, index))
                .map_err(io)?
        };
        Ok(FrameStore {
            dir: dir.to_path_buf(),
            index,
            frames: Mutex::new(Recent::new(memory_frames)),
            latents: Mutex::new(Recent::new(memory_frames * 4)),
            next_id: Mutex::new(next),
            jobs: Some(tx),
            writer: Some(writer),
            pixels_read,
            latents_read,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a finished frame, with the latent it was decoded from if it is the first frame of
    /// that latent, and returns its id; the disk write happens on the writer thread.
    pub fn put(&self, frame: Arc<Frame>, latent: Option<LatentData>, tag: Tag) -> Result<FrameId> {
        self.check_writer()?;
        let id = {
            let mut next = self.next_id.lock().unwrap();
            *next += 1;
            FrameId(*next - 1)
        };
        self.frames.lock().unwrap().put(id, frame.clone());
        self.latents.lock().unwrap().put(id, latent.clone());
        self.send(Job::Put { id, tag, frame, latent })?;
        Ok(id)
    }

    /// Blocks until every frame put so far is on disk and fsynced.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(Job::Flush(tx))?;
        rx.recv().map_err(|e| StoreError::WriterGone(e.to_string()))?;
        self.check_writer()
    }

    pub fn frame(&self, id: FrameId) -> Result<Arc<Frame>> {
        if let Some(f) = self.frames.lock().unwrap().get(id) {
            return Ok(f);
        }
        let bytes = self.read(id, &self.pixels_read, |i| &i.pixels, "pixels.log")?;
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .map_err(|e| self.corrupt(id, "pixels.log", e.to_string()))?
            .to_rgb8();
        let frame = Arc::new(Frame::from_rgb8(img.width(), img.height(), img.as_raw()));
        self.frames.lock().unwrap().put(id, frame.clone());
        Ok(frame)
    }

    /// The latent a frame carries: `None` for a frame decoded from the latent of an earlier one.
    pub fn latent(&self, id: FrameId) -> Result<Option<LatentData>> {
        if let Some(l) = self.latents.lock().unwrap().get(id) {
            return Ok(l);
        }
        let bytes = self.read(id, &self.latents_read, |i| &i.latents, "latents.log")?;
        let l = match bytes.is_empty() {
            true => None,
            false => Some(
                LatentData::decode(&bytes)
                    .ok_or_else(|| self.corrupt(id, "latents.log", "bad latent record".into()))?,
            ),
        };
        self.latents.lock().unwrap().put(id, l.clone());
        Ok(l)
    }

    /// Whether a frame carries a latent ([`FrameStore::latent`]), without reading it.
    pub fn carries_latent(&self, id: FrameId) -> Result<bool> {
        if let Some(l) = self.latents.lock().unwrap().get(id) {
            return Ok(l.is_some());
        }
        Ok(self.loc(id, |i| &i.latents)?.len > 0)
    }

    /// Number of frames whose pixels are on disk.
    pub fn stored_frames(&self) -> usize {
        self.index.lock().unwrap().pixels.len()
    }

    /// Every frame with both pixels and latent on disk, with its tag, in id order.
    pub fn tags(&self) -> Vec<(FrameId, Tag)> {
        let idx = self.index.lock().unwrap();
        let mut v: Vec<(FrameId, Tag)> =
            idx.tags.iter().filter(|(id, _)| idx.pixels.contains_key(id)).map(|(id, t)| (*id, *t)).collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    fn read(
        &self,
        id: FrameId,
        file: &File,
        map: impl Fn(&Index) -> &HashMap<FrameId, Loc>,
        name: &str,
    ) -> Result<Vec<u8>> {
        let loc = self.loc(id, map)?;
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset)
            .map_err(|source| StoreError::Io { path: self.dir.join(name).display().to_string(), source })?;
        Ok(buf)
    }

    /// Where a frame's record is in one log.
    fn loc(&self, id: FrameId, map: impl Fn(&Index) -> &HashMap<FrameId, Loc>) -> Result<Loc> {
        let mut loc = map(&self.index.lock().unwrap()).get(&id).copied();
        if loc.is_none() && id.0 < *self.next_id.lock().unwrap() {
            // Put but not yet written: wait for the writer.
            self.flush()?;
            loc = map(&self.index.lock().unwrap()).get(&id).copied();
        }
        loc.ok_or(StoreError::Missing(id))
    }

    fn corrupt(&self, id: FrameId, name: &str, reason: String) -> StoreError {
        StoreError::Corrupt { id, path: self.dir.join(name).display().to_string(), reason }
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .as_ref()
            .expect("jobs sender lives until drop")
            .send(job)
            .map_err(|e| StoreError::WriterGone(e.to_string()))
    }

    fn check_writer(&self) -> Result<()> {
        match self.index.lock().unwrap().error.take() {
            Some(e) => Err(StoreError::WriterGone(e)),
            None => Ok(()),
        }
    }
}

impl Drop for FrameStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain what is queued, sync and exit.
        self.jobs.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Opens a log for appending and indexes its whole records, cutting a torn tail.
fn open_log(
    path: &Path,
    map: &mut HashMap<FrameId, Loc>,
    tags: &mut HashMap<FrameId, Tag>,
) -> Result<(File, Option<u64>)> {
    let io = |source| StoreError::Io { path: path.display().to_string(), source };
    let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.read_to_end(&mut bytes).map_err(io)?;
    let mut pos = 0usize;
    let mut max = None;
    while let Some((id, tag, len, crc)) = parse_header(&bytes[pos..]) {
        let start = pos + HEADER;
        let Some(payload) = bytes.get(start..start + len as usize) else { break };
        if crc32fast::hash(payload) != crc {
            break;
        }
        map.insert(id, Loc { offset: start as u64, len });
        tags.insert(id, tag);
        max = max.max(Some(id.0));
        pos = start + len as usize;
    }
    if pos < bytes.len() {
        tracing::warn!("{}: dropping {} bytes of a torn record at the end", path.display(), bytes.len() - pos);
        file.set_len(pos as u64).map_err(io)?;
    }
    Ok((file, max))
}

fn parse_header(b: &[u8]) -> Option<(FrameId, Tag, u32, u32)> {
    let h = b.get(..HEADER)?;
    let u32_at = |i: usize| h[i..i + 4].try_into().ok().map(u32::from_le_bytes);
    let u64_at = |i: usize| h[i..i + 8].try_into().ok().map(u64::from_le_bytes);
    if u32_at(0)? != MAGIC {
        return None;
    }
    let tag = Tag { take: u32_at(12)?, index: u64_at(16)? };
    Some((FrameId(u64_at(4)?), tag, u32_at(24)?, u32_at(28)?))
}

fn append(file: &mut File, id: FrameId, tag: Tag, payload: &[u8]) -> io::Result<Loc> {
    let offset = file.seek(SeekFrom::End(0))?;
    let mut rec = Vec::with_capacity(HEADER + payload.len());
    rec.extend_from_slice(&MAGIC.to_le_bytes());
    rec.extend_from_slice(&id.0.to_le_bytes());
    rec.extend_from_slice(&tag.take.to_le_bytes());
    rec.extend_from_slice(&tag.index.to_le_bytes());
    rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    rec.extend_from_slice(payload);
    file.write_all(&rec)?;
    Ok(Loc { offset: offset + HEADER as u64, len: payload.len() as u32 })
}

/// Encodes RGB8 pixels as PNG with fast compression (the store favours write speed).
pub fn encode_png(frame: &Frame) -> Vec<u8> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&frame.to_rgb8(), frame.width, frame.height, image::ExtendedColorType::Rgb8)
        .expect("encoding PNG into memory cannot fail");
    out
}

fn write_loop(jobs: Receiver<Job>, mut pixels: File, mut latents: File, index: Arc<Mutex<Index>>) {
    let mut last_sync = Instant::now();
    let mut dirty = false;
    let sync = |pixels: &File, latents: &File| pixels.sync_data().and_then(|_| latents.sync_data());
    loop {
        let job = if dirty {
            jobs.recv_timeout(SYNC_EVERY.saturating_sub(last_sync.elapsed()))
        } else {
            jobs.recv().map_err(|_| crossbeam_channel::RecvTimeoutError::Disconnected)
        };
        let result = match job {
            Ok(Job::Put { id, tag, frame, latent }) => {
                let written = append(&mut pixels, id, tag, &encode_png(&frame)).and_then(|p| {
                    let payload = latent.as_ref().map_or_else(Vec::new, LatentData::encode);
                    append(&mut latents, id, tag, &payload).map(|l| (p, l))
                });
                written.map(|(p, l)| {
                    let mut idx = index.lock().unwrap();
                    idx.pixels.insert(id, p);
                    idx.latents.insert(id, l);
                    idx.tags.insert(id, tag);
                    dirty = true;
                })
            }
            Ok(Job::Flush(done)) => {
                let r = sync(&pixels, &latents);
                dirty = false;
                last_sync = Instant::now();
                let _ = done.send(());
                r
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                dirty = false;
                last_sync = Instant::now();
                sync(&pixels, &latents)
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if let Err(e) = sync(&pixels, &latents) {
                    tracing::error!("frame store: final sync failed: {e}");
                }
                return;
            }
        };
        if let Err(e) = result {
            tracing::error!("frame store write failed: {e}");
            index.lock().unwrap().error = Some(e.to_string());
        }
        if dirty && last_sync.elapsed() >= SYNC_EVERY {
            dirty = false;
            last_sync = Instant::now();
            if let Err(e) = sync(&pixels, &latents) {
                index.lock().unwrap().error = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: u8) -> Arc<Frame> {
        Arc::new(Frame::from_rgb8(4, 2, &[v; 24]))
    }

    fn lat(v: f32) -> LatentData {
        LatentData { shape: vec![2, 3], values: vec![v; 6] }
    }

    #[test]
    fn round_trips_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<FrameId> = {
            let store = FrameStore::open(dir.path(), 2).unwrap();
            let ids: Vec<_> = (0..5)
                .map(|i| store.put(frame(i * 10), Some(lat(i as f32)), Tag { take: 0, index: u64::from(i) }).unwrap())
                .collect();
            // Evicted from memory, read back from disk.
            assert_eq!(store.frame(ids[0]).unwrap().to_rgb8(), vec![0u8; 24]);
            assert_eq!(store.latent(ids[1]).unwrap(), Some(lat(1.0)));
            ids
        };
        let store = FrameStore::open(dir.path(), 2).unwrap();
        assert_eq!(store.stored_frames(), 5);
        assert_eq!(store.frame(ids[4]).unwrap().to_rgb8(), vec![40u8; 24]);
        let next = store.put(frame(1), None, Tag { take: 1, index: 0 }).unwrap();
        assert_eq!(store.latent(next).unwrap(), None);
        assert_eq!(store.tags()[4], (FrameId(4), Tag { take: 0, index: 4 }));
        assert_eq!(next, FrameId(5), "ids are never reused after reopening");
    }

    #[test]
    fn torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FrameStore::open(dir.path(), 4).unwrap();
            for i in 0..3 {
                store.put(frame(i), Some(lat(0.5)), Tag { take: 0, index: u64::from(i) }).unwrap();
            }
        }
        let log = dir.path().join("pixels.log");
        let len = std::fs::metadata(&log).unwrap().len();
        OpenOptions::new().write(true).open(&log).unwrap().set_len(len - 5).unwrap();
        let store = FrameStore::open(dir.path(), 4).unwrap();
        assert_eq!(store.stored_frames(), 2);
        assert!(matches!(store.frame(FrameId(2)), Err(StoreError::Missing(_))));
        assert_eq!(store.latent(FrameId(2)).unwrap(), Some(lat(0.5)));
    }
}
