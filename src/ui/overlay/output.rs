//! Where the overlay's pictures go: a wgpu surface on its window, or, under a software rasterizer
//! on X11, memory shared with the X server. Mesa's X11 present sends a software rasterizer's every
//! pixel through the socket unless the server has DRI3 (Xvfb has not), and at 1920×1080 that send
//! and the server's copy of it were most of a frame's way to the screen (BENCHMARKS.md, "The video
//! overlay in shared memory"); there the picture is drawn into a texture, read back (on a software
//! device that is a copy in main memory) and put into the window from shared memory instead.

use egui_wgpu::wgpu;

use crate::render::Parts;

use super::x11::SharedImage;

/// Why a picture was not drawn.
pub(super) enum NotDrawn {
    /// Try again in a moment (the window was resized under us).
    Retry,
    /// Draw it with the next frame or exposure.
    Later,
    /// The overlay cannot draw any more.
    Failed(String),
}

/// One draw: the device and queue, the picture's size in pixels, and whether the whole view must
/// reach the screen (new look, exposed) or the picture alone may (the letterbox there is unchanged).
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    pub device: &'a wgpu::Device,
    pub queue: &'a wgpu::Queue,
    pub size: [u32; 2],
    pub full: bool,
}

pub(super) enum Output {
    Surface(SurfaceOut),
    Shared(SharedOut),
}

/// A wgpu surface on the overlay's window.
pub(super) struct SurfaceOut {
    pub surface: wgpu::Surface<'static>,
    pub format: wgpu::TextureFormat,
    pub present_mode: wgpu::PresentMode,
    pub configured: Option<[u32; 2]>,
}

/// A texture of the overlay's size, read back into [`SharedImage`] (the texture, its read-back
/// buffer and the buffer's row length in bytes, made once per size).
pub(super) struct SharedOut {
    pub image: SharedImage,
    pub sized: Option<([u32; 2], wgpu::Texture, wgpu::Buffer, u32)>,
}

/// The texture format of a [`SharedOut`]: the bytes an X server's 32-bit pixels hold.
pub(super) const SHARED_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Bgra8Unorm;

impl Output {
    /// The texture format the painter draws in.
    pub fn format(&self) -> wgpu::TextureFormat {
        match self {
            Output::Surface(s) => s.format,
            Output::Shared(_) => SHARED_FORMAT,
        }
    }

    /// Draws `job`'s picture with `paint` (the parts it is asked for; it returns the picture's
    /// pixels) and shows it; `laid_out` runs once the picture is on its way (for the screen watch).
    pub fn draw(
        &mut self,
        job: Job<'_>,
        paint: impl FnOnce(&wgpu::TextureView, Parts) -> Option<[u32; 4]>,
        laid_out: impl FnOnce(),
    ) -> Result<(), NotDrawn> {
        match self {
            Output::Surface(s) => s.draw(
                job,
                |view| {
                    paint(view, Parts::All);
                },
                laid_out,
            ),
            Output::Shared(s) => s.draw(job, paint, laid_out).map_err(NotDrawn::Failed),
        }
    }
}

impl SurfaceOut {
    fn draw(
        &mut self,
        Job { device, queue, size, .. }: Job<'_>,
        paint: impl FnOnce(&wgpu::TextureView),
        laid_out: impl FnOnce(),
    ) -> Result<(), NotDrawn> {
        if self.configured != Some(size) {
            let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
            self.surface.configure(
                device,
                &wgpu::SurfaceConfiguration {
                    usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
                    format: self.format,
                    width: size[0],
                    height: size[1],
                    present_mode: self.present_mode,
                    // One frame in flight, as the app's own surface.
                    desired_maximum_frame_latency: 1,
                    alpha_mode: wgpu::CompositeAlphaMode::Auto,
                    view_formats: vec![],
                    color_space: wgpu::SurfaceColorSpace::Auto,
                },
            );
            match super::ready(scope.pop()) {
                Some(None) => self.configured = Some(size),
                Some(Some(e)) => return Err(NotDrawn::Failed(e.to_string())),
                None => return Err(NotDrawn::Failed("no answer from the device".into())),
            }
        }
        let texture = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t) => t,
            wgpu::CurrentSurfaceTexture::Suboptimal(t) => {
                self.configured = None;
                t
            }
            // Configured again and drawn in a moment (the window was resized under us).
            wgpu::CurrentSurfaceTexture::Outdated => {
                self.configured = None;
                return Err(NotDrawn::Retry);
            }
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => {
                return Err(NotDrawn::Later);
            }
            other => return Err(NotDrawn::Failed(format!("{other:?}"))),
        };
        paint(&texture.texture.create_view(&Default::default()));
        laid_out();
        queue.present(texture);
        Ok(())
    }
}

impl SharedOut {
    /// Only the picture is drawn, read back and put unless `full` (the texture keeps the letterbox
    /// of the last full draw, the window its pixels): under a software rasterizer the raster is
    /// most of the cost, and the letterbox a third of the view at 1920×1080.
    fn draw(
        &mut self,
        Job { device, queue, size, full }: Job<'_>,
        paint: impl FnOnce(&wgpu::TextureView, Parts) -> Option<[u32; 4]>,
        laid_out: impl FnOnce(),
    ) -> Result<(), String> {
        let [w, h] = size;
        let (width, height) =
            (u16::try_from(w).map_err(|e| e.to_string())?, u16::try_from(h).map_err(|e| e.to_string())?);
        let resized = self.sized.as_ref().map(|s| s.0) != Some(size);
        if resized {
            let row = (w * 4).next_multiple_of(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
            let bytes = row as usize * h as usize;
            if self.image.len() < bytes {
                self.image = self.image.grown(bytes)?;
            }
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("spool overlay picture"),
                size: wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: SHARED_FORMAT,
                usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
                view_formats: &[],
            });
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("spool overlay read-back"),
                size: bytes as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.sized = Some((size, texture, buffer, row));
        }
        let (_, texture, buffer, row) = self.sized.as_ref().expect("made above");
        // Timed from before the paint: each put is finished before the next begins, so no earlier
        // picture's update can come after this, and the screen watch takes an update within a
        // millisecond of the layout for an earlier one's (a put alone takes less).
        laid_out();
        let parts = if full || resized { Parts::All } else { Parts::Picture };
        let picture = paint(&texture.create_view(&Default::default()), parts);
        let [x, y, rw, rh] = match (parts, picture) {
            (Parts::Picture, Some(p)) => p,
            _ => [0, 0, w, h],
        };
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("spool overlay read-back") });
        // The region lands where it sits in the whole image, so the put reads it in place.
        let (start, end) = (u64::from(y * row), u64::from((y + rh) * row));
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo { origin: wgpu::Origin3d { x, y, z: 0 }, ..texture.as_image_copy() },
            wgpu::TexelCopyBufferInfo {
                buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: start + u64::from(x * 4),
                    bytes_per_row: Some(*row),
                    rows_per_image: None,
                },
            },
            wgpu::Extent3d { width: rw, height: rh, depth_or_array_layers: 1 },
        );
        let index = queue.submit([encoder.finish()]);
        let (done, mapped) = crossbeam_channel::bounded(1);
        let slice = buffer.slice(start..end);
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = done.send(r);
        });
        let copied = (|| {
            device
                .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })
                .map_err(|e| e.to_string())?;
            mapped.try_recv().map_err(|_| "the read-back was not mapped".to_string())?.map_err(|e| e.to_string())?;
            let pixels = slice.get_mapped_range().map_err(|e| e.to_string())?;
            self.image.bytes()[start as usize..end as usize].copy_from_slice(&pixels);
            Ok::<_, String>(())
        })();
        // On every path, so the next draw finds the buffer unmapped.
        buffer.unmap();
        copied?;
        self.image.put([x, y, rw, rh], [width, height], (*row / 4) as u16)
    }
}
