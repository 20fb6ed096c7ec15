//! The frame view's render path: model frames onto the screen through wgpu.
//!
//! A frame arrives as planar f32 RGB in [-1, 1]. It is written with one upload into a storage buffer
//! that lives as long as the resolution does; a compute shader (`shaders/frame_pixels.wgsl`) turns
//! it into display pixels in an Rgba8Unorm texture that is also allocated once per resolution; a
//! fragment shader (`shaders/frame_view.wgsl`) draws that texture into the view with letterboxing,
//! nearest or smooth scaling and an optional checkerboard. All of it runs inside egui's own render
//! pass through an `egui_wgpu::CallbackTrait` paint callback, so there are no extra passes, no
//! texture re-creation per frame and no readbacks. [`TargetPainter`] draws the same view, with the
//! same resources and shaders, into a render target of its own (the app's video overlay).
//!
//! Adapters without compute shaders (WebGL-class GL) get the same texture filled by one CPU-side
//! conversion and `write_texture` instead. Without wgpu at all (a glow build) the UI falls back to an
//! egui-managed texture; see [`FrameView::paint`].
//!
//! This module draws what it is handed; it never talks to the engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use egui_wgpu::wgpu;
use egui_wgpu::wgpu::util::DeviceExt as _;

use crate::model::Frame;

mod ui_mesh;

pub use ui_mesh::install as install_ui_meshes;

/// Counters that tests and the HUD read to check the render path does what it promises.
#[derive(Debug, Default)]
pub struct RenderCounters {
    /// Frame uploads (one per new frame shown).
    pub uploads: AtomicU64,
    /// GPU texture allocations (one per resolution change).
    pub allocations: AtomicU64,
    /// Draws of the frame view.
    pub draws: AtomicU64,
    /// Draws of egui's triangles through `ui_mesh.wgsl` (`install_ui_meshes`).
    pub ui_meshes: AtomicU64,
}

impl RenderCounters {
    pub fn uploads(&self) -> u64 {
        self.uploads.load(Ordering::Relaxed)
    }
    pub fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }
    pub fn draws(&self) -> u64 {
        self.draws.load(Ordering::Relaxed)
    }
    pub fn ui_meshes(&self) -> u64 {
        self.ui_meshes.load(Ordering::Relaxed)
    }
}

/// How the frame is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ViewOptions {
    /// Bilinear filtering instead of nearest-neighbour.
    pub smooth: bool,
    /// Checkerboard behind the picture.
    pub checker: bool,
    /// Letterbox colour.
    pub background: egui::Color32,
}

impl Default for ViewOptions {
    fn default() -> Self {
        ViewOptions { smooth: false, checker: false, background: egui::Color32::from_gray(12) }
    }
}

/// A frame to show, with a key that changes whenever its pixels do (the frame store id).
#[derive(Clone)]
pub struct ShownFrame {
    pub key: u64,
    pub frame: Arc<Frame>,
}

/// Where the picture goes inside `view` so that it fits with its aspect ratio kept.
pub fn fit_rect(view: egui::Rect, width: u32, height: u32) -> egui::Rect {
    if width == 0 || height == 0 || view.width() <= 0.0 || view.height() <= 0.0 {
        return egui::Rect::from_center_size(view.center(), egui::Vec2::ZERO);
    }
    let aspect = width as f32 / height as f32;
    let size = if view.width() / view.height() > aspect {
        egui::vec2(view.height() * aspect, view.height())
    } else {
        egui::vec2(view.width(), view.width() / aspect)
    };
    egui::Rect::from_center_size(view.center(), size)
}

/// The parts of `view` around the picture `fit` (all of it when there is none): top and bottom,
/// then left and right of the picture.
fn letterbox(view: egui::Rect, fit: Option<egui::Rect>) -> Vec<egui::Rect> {
    let Some(fit) = fit else { return vec![view] };
    let (v, f) = (view, fit);
    [
        egui::Rect::from_min_max(v.min, egui::pos2(v.max.x, f.min.y)),
        egui::Rect::from_min_max(egui::pos2(v.min.x, f.max.y), v.max),
        egui::Rect::from_min_max(egui::pos2(v.min.x, f.min.y), egui::pos2(f.min.x, f.max.y)),
        egui::Rect::from_min_max(egui::pos2(f.max.x, f.min.y), egui::pos2(v.max.x, f.max.y)),
    ]
    .into_iter()
    .filter(|r| r.is_positive())
    .collect()
}

/// The frame view. Cheap to keep in the app; the GPU side lives in egui_wgpu's callback resources.
pub struct FrameView {
    counters: Arc<RenderCounters>,
    gpu: bool,
    /// Fallback when there is no wgpu render state: an egui-managed texture updated in place.
    fallback: Option<(u64, egui::TextureHandle)>,
}

impl FrameView {
    /// Sets up the GPU side when a wgpu render state exists.
    pub fn new(render_state: Option<&egui_wgpu::RenderState>) -> Self {
        let counters = Arc::new(RenderCounters::default());
        let gpu = if let Some(rs) = render_state {
            let resources = GpuResources::new(Target::of(rs), counters.clone());
            rs.renderer.write().callback_resources.insert(resources);
            true
        } else {
            false
        };
        FrameView { counters, gpu, fallback: None }
    }

    pub fn counters(&self) -> &Arc<RenderCounters> {
        &self.counters
    }

    /// True when frames go through the wgpu shaders (false: the egui-texture fallback).
    pub fn is_gpu(&self) -> bool {
        self.gpu
    }

    /// Paints `frame` into `rect`. With no frame, only the background (and checker) is drawn.
    pub fn paint(&mut self, ui: &mut egui::Ui, rect: egui::Rect, frame: Option<&ShownFrame>, options: ViewOptions) {
        if self.gpu {
            let callback = ViewCallback { frame: frame.cloned(), options, rect };
            ui.painter().add(egui_wgpu::Callback::new_paint_callback(rect, callback));
            return;
        }
        ui.painter().rect_filled(rect, 0.0, options.background);
        let Some(f) = frame else { return };
        let image = egui::ColorImage::from_rgb([f.frame.width as usize, f.frame.height as usize], &f.frame.to_rgb8());
        let filter = if options.smooth { egui::TextureOptions::LINEAR } else { egui::TextureOptions::NEAREST };
        match &mut self.fallback {
            Some((key, _)) if *key == f.key => {}
            Some((key, tex)) => {
                // `set` reuses the texture when the size is unchanged.
                tex.set(image, filter);
                *key = f.key;
                self.counters.uploads.fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let tex = ui.ctx().load_texture("frame-view", image, filter);
                self.fallback = Some((f.key, tex));
                self.counters.allocations.fetch_add(1, Ordering::Relaxed);
                self.counters.uploads.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some((_, tex)) = &self.fallback {
            let fit = fit_rect(rect, f.frame.width, f.frame.height);
            ui.painter().image(
                tex.id(),
                fit,
                egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                egui::Color32::WHITE,
            );
            self.counters.draws.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Per-draw data handed to the GPU side.
struct ViewCallback {
    frame: Option<ShownFrame>,
    options: ViewOptions,
    rect: egui::Rect,
}

/// `View` in `frame_view.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ViewUniform {
    image: [f32; 4],
    view: [f32; 4],
    background: [f32; 4],
}

/// Everything allocated for one resolution.
struct Sized {
    width: u32,
    height: u32,
    planar: wgpu::Buffer,
    compute_group: Option<wgpu::BindGroup>,
    nearest_group: wgpu::BindGroup,
    linear_group: wgpu::BindGroup,
    texture: wgpu::Texture,
}

struct GpuResources {
    counters: Arc<RenderCounters>,
    compute: Option<(wgpu::ComputePipeline, wgpu::BindGroupLayout)>,
    /// `[letterbox, picture][checker]`.
    draw: [[wgpu::RenderPipeline; 2]; 2],
    draw_layout: wgpu::BindGroupLayout,
    uniform: wgpu::Buffer,
    nearest: wgpu::Sampler,
    linear: wgpu::Sampler,
    sized: Option<Sized>,
    /// An empty 1×1 texture bound while there is no frame yet.
    empty_groups: (wgpu::BindGroup, wgpu::BindGroup),
    shown: Option<u64>,
    /// Whether a frame is in the texture (false: draw the background only).
    has_frame: bool,
}

const PIXEL_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// What pipelines are built for: a device of an adapter, drawing into targets of one format.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub adapter: &'a wgpu::Adapter,
    pub device: &'a wgpu::Device,
    pub format: wgpu::TextureFormat,
}

impl<'a> Target<'a> {
    /// egui's render pass.
    pub fn of(rs: &'a egui_wgpu::RenderState) -> Self {
        Target { adapter: &rs.adapter, device: &rs.device, format: rs.target_format }
    }
}

impl GpuResources {
    fn new(target: Target<'_>, counters: Arc<RenderCounters>) -> Self {
        let device = target.device;
        let compute_ok =
            target.adapter.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
                && device.limits().max_storage_textures_per_shader_stage > 0
                && device.limits().max_storage_buffers_per_shader_stage > 0;
        let compute = compute_ok.then(|| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("spool frame_pixels"),
                source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/frame_pixels.wgsl").into()),
            });
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("spool frame_pixels"),
                entries: &[
                    wgpu::BindGroupLayoutEntry {
                        binding: 0,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage { read_only: true },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    },
                    wgpu::BindGroupLayoutEntry {
                        binding: 1,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Uniform,
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    },
                    wgpu::BindGroupLayoutEntry {
                        binding: 2,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::StorageTexture {
                            access: wgpu::StorageTextureAccess::WriteOnly,
                            format: PIXEL_FORMAT,
                            view_dimension: wgpu::TextureViewDimension::D2,
                        },
                        count: None,
                    },
                ],
            });
            let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("spool frame_pixels"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("spool frame_pixels"),
                layout: Some(&pl),
                module: &module,
                entry_point: Some("to_pixels"),
                compilation_options: Default::default(),
                cache: None,
            });
            (pipeline, layout)
        });

        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("spool frame_view"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/frame_view.wgsl").into()),
        });
        let draw_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("spool frame_view"),
            entries: &sampled_texture_entries(None),
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("spool frame_view"),
            bind_group_layouts: &[Some(&draw_layout)],
            immediate_size: 0,
        });
        // [letterbox, picture] × [checker off, on]: `frame_view.wgsl`'s pipeline constants.
        let pipeline = |entry: &str, checker: bool| {
            pass_pipeline(target, &pl, &module, &[], entry, &[("checker", f64::from(u8::from(checker)))], None)
        };
        let draw = ["fs_letterbox", "fs_picture"].map(|entry| [false, true].map(|checker| pipeline(entry, checker)));
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("spool frame_view uniform"),
            contents: bytemuck::bytes_of(&ViewUniform::zeroed_default()),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let sampler = |filter: wgpu::FilterMode| {
            device.create_sampler(&wgpu::SamplerDescriptor {
                label: Some("spool frame_view"),
                address_mode_u: wgpu::AddressMode::ClampToEdge,
                address_mode_v: wgpu::AddressMode::ClampToEdge,
                mag_filter: filter,
                min_filter: filter,
                ..Default::default()
            })
        };
        let nearest = sampler(wgpu::FilterMode::Nearest);
        let linear = sampler(wgpu::FilterMode::Linear);
        let empty = device.create_texture(&texture_desc(1, 1, false));
        let empty_view = empty.create_view(&Default::default());
        let group = |s: &wgpu::Sampler| draw_group(device, &draw_layout, &empty_view, s, &uniform);
        let empty_groups = (group(&nearest), group(&linear));
        GpuResources {
            counters,
            compute,
            draw,
            draw_layout,
            uniform,
            nearest,
            linear,
            sized: None,
            empty_groups,
            shown: None,
            has_frame: false,
        }
    }

    /// Makes sure the buffers and texture fit `w × h`; reallocates only on a resolution change.
    fn ensure_size(&mut self, device: &wgpu::Device, w: u32, h: u32) {
        if self.sized.as_ref().is_some_and(|s| s.width == w && s.height == h) {
            return;
        }
        self.counters.allocations.fetch_add(1, Ordering::Relaxed);
        let texture = device.create_texture(&texture_desc(w, h, self.compute.is_some()));
        let view = texture.create_view(&Default::default());
        let planar = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("spool planar frame"),
            size: u64::from(w) * u64::from(h) * 3 * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let dims = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("spool frame dims"),
            contents: bytemuck::cast_slice(&[w, h, w * h, 0u32]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let compute_group = self.compute.as_ref().map(|(_, layout)| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("spool frame_pixels"),
                layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: planar.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: dims.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&view) },
                ],
            })
        });
        let nearest_group = draw_group(device, &self.draw_layout, &view, &self.nearest, &self.uniform);
        let linear_group = draw_group(device, &self.draw_layout, &view, &self.linear, &self.uniform);
        // The bind groups keep `dims` and the texture view alive.
        self.sized = Some(Sized { width: w, height: h, planar, compute_group, nearest_group, linear_group, texture });
        self.shown = None;
    }

    /// One upload of a new frame, then (GPU path) one compute dispatch into the texture.
    fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        f: &ShownFrame,
    ) {
        let (w, h) = (f.frame.width, f.frame.height);
        if w == 0 || h == 0 || f.frame.planar.len() != (w * h * 3) as usize {
            return;
        }
        self.ensure_size(device, w, h);
        let sized = self.sized.as_ref().expect("ensured above");
        if let (Some((pipeline, _)), Some(group)) = (&self.compute, &sized.compute_group) {
            queue.write_buffer(&sized.planar, 0, bytemuck::cast_slice(&f.frame.planar));
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("spool frame_pixels"),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(w.div_ceil(8), h.div_ceil(8), 1);
        } else {
            let rgb = f.frame.to_rgb8();
            let rgba: Vec<u8> = rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
            queue.write_texture(
                wgpu::TexelCopyTextureInfo {
                    texture: &sized.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d::ZERO,
                    aspect: wgpu::TextureAspect::All,
                },
                &rgba,
                wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(4 * w), rows_per_image: Some(h) },
                wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
            );
        }
        self.counters.uploads.fetch_add(1, Ordering::Relaxed);
        self.shown = Some(f.key);
        self.has_frame = true;
    }
}

impl ViewUniform {
    fn zeroed_default() -> Self {
        bytemuck::Zeroable::zeroed()
    }
}

/// A fragment shader's texture (binding 0), filtering sampler (1) and uniform buffer (2), the uniform
/// at least `uniform_size` bytes when given.
fn sampled_texture_entries(uniform_size: Option<std::num::NonZeroU64>) -> [wgpu::BindGroupLayoutEntry; 3] {
    let entry =
        |binding, ty| wgpu::BindGroupLayoutEntry { binding, visibility: wgpu::ShaderStages::FRAGMENT, ty, count: None };
    [
        entry(
            0,
            wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
        ),
        entry(1, wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering)),
        entry(
            2,
            wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: uniform_size,
            },
        ),
    ]
}

/// A pipeline that draws into `target`'s format with no depth and no MSAA (eframe and kittest both
/// render egui with `multisampling: 0`; the overlay's surface has one sample too). The shader's `srgb_target` constant is set for
/// the target; `constants` adds the rest.
fn pass_pipeline(
    target: Target<'_>,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    buffers: &[Option<wgpu::VertexBufferLayout<'_>>],
    entry: &str,
    constants: &[(&str, f64)],
    blend: Option<wgpu::BlendState>,
) -> wgpu::RenderPipeline {
    let mut all = vec![("srgb_target", f64::from(u8::from(target.format.is_srgb())))];
    all.extend_from_slice(constants);
    target.device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(entry),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers,
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &all, ..Default::default() },
            targets: &[Some(wgpu::ColorTargetState {
                format: target.format,
                blend,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    })
}

fn texture_desc(w: u32, h: u32, storage: bool) -> wgpu::TextureDescriptor<'static> {
    let mut usage = wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST;
    if storage {
        usage |= wgpu::TextureUsages::STORAGE_BINDING;
    }
    wgpu::TextureDescriptor {
        label: Some("spool frame pixels"),
        size: wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: PIXEL_FORMAT,
        usage,
        view_formats: &[],
    }
}

fn draw_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    view: &wgpu::TextureView,
    sampler: &wgpu::Sampler,
    uniform: &wgpu::Buffer,
) -> wgpu::BindGroup {
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("spool frame_view"),
        layout,
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(view) },
            wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::Sampler(sampler) },
            wgpu::BindGroupEntry { binding: 2, resource: uniform.as_entire_binding() },
        ],
    })
}

impl GpuResources {
    /// Uploads `frame` if it is not the one in the texture and sets the uniform for drawing into
    /// `rect` (points; `ppp` physical pixels per point).
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        frame: Option<&ShownFrame>,
        rect: egui::Rect,
        ppp: f32,
        options: ViewOptions,
    ) {
        match frame {
            Some(f) if self.shown != Some(f.key) => self.upload(device, queue, encoder, f),
            Some(_) => {}
            None => self.has_frame = false,
        }
        let (iw, ih) = self.sized.as_ref().map_or((1, 1), |s| (s.width, s.height));
        let fit = if self.has_frame { fit_rect(rect, iw, ih) } else { egui::Rect::NOTHING };
        let r = rect;
        let uv = |p: egui::Pos2| [(p.x - r.min.x) / r.width().max(1e-3), (p.y - r.min.y) / r.height().max(1e-3)];
        let (lo, hi) = if self.has_frame { (uv(fit.min), uv(fit.max)) } else { ([2.0, 2.0], [3.0, 3.0]) };
        let u = ViewUniform {
            image: [lo[0], lo[1], hi[0], hi[1]],
            view: [r.width() * ppp, r.height() * ppp, 12.0 * ppp, 0.0],
            background: options.background.to_normalized_gamma_f32(),
        };
        queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&u));
    }

    /// Draws the prepared view (`parts` of it) into `pass`, whose viewport is `rect`, clipped to
    /// `clip`; returns the picture's pixels on the target, `[x, y, width, height]`, if it drew one.
    fn draw(
        &self,
        pass: &mut wgpu::RenderPass<'_>,
        rect: egui::Rect,
        options: ViewOptions,
        clip: &Clip,
        parts: Parts,
    ) -> Option<[u32; 4]> {
        let group = match (&self.sized, self.has_frame, options.smooth) {
            (Some(s), true, false) => &s.nearest_group,
            (Some(s), true, true) => &s.linear_group,
            (_, _, false) => &self.empty_groups.0,
            (_, _, true) => &self.empty_groups.1,
        };
        let fit = self.sized.as_ref().filter(|_| self.has_frame).map(|s| fit_rect(rect, s.width, s.height));
        let checker = usize::from(options.checker);
        pass.set_bind_group(0, group, &[]);
        // Each part under its own scissor (within the clip): one triangle covers the view, and
        // only the part's pixels run its shader.
        let mut draw = |pipeline: &wgpu::RenderPipeline, part: egui::Rect| {
            let px = clip.scissor(pass, part)?;
            pass.set_pipeline(pipeline);
            pass.draw(0..3, 0..1);
            Some(px)
        };
        if parts == Parts::All {
            for bar in letterbox(rect, fit) {
                draw(&self.draw[0][checker], bar);
            }
        }
        let picture = fit.and_then(|fit| draw(&self.draw[1][checker], fit));
        self.counters.draws.fetch_add(1, Ordering::Relaxed);
        picture
    }
}

/// The part of the render target a draw may touch, in points, and the target's scale and size.
struct Clip {
    rect: egui::Rect,
    pixels_per_point: f32,
    target_px: [u32; 2],
}

impl Clip {
    /// A paint callback's clip.
    fn of(info: &egui::PaintCallbackInfo) -> Self {
        Clip { rect: info.clip_rect, pixels_per_point: info.pixels_per_point, target_px: info.screen_size_px }
    }

    /// Sets the scissor to `part` (points) within the clip and returns its pixels, `[x, y, width,
    /// height]`; `None` (and no scissor set) when none of it is on the target.
    fn scissor(&self, pass: &mut wgpu::RenderPass<'_>, part: egui::Rect) -> Option<[u32; 4]> {
        let s = egui::epaint::ViewportInPixels::from_points(
            &part.intersect(self.rect),
            self.pixels_per_point,
            self.target_px,
        );
        let px = (s.width_px > 0 && s.height_px > 0).then_some([
            s.left_px as u32,
            s.top_px as u32,
            s.width_px as u32,
            s.height_px as u32,
        ])?;
        pass.set_scissor_rect(px[0], px[1], px[2], px[3]);
        Some(px)
    }
}

impl egui_wgpu::CallbackTrait for ViewCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &egui_wgpu::ScreenDescriptor,
        encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(res) = resources.get_mut::<GpuResources>() {
            let ppp = screen.pixels_per_point;
            res.prepare(device, queue, encoder, self.frame.as_ref(), self.rect, ppp, self.options);
        }
        Vec::new()
    }

    fn paint(
        &self,
        info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        if let Some(res) = resources.get::<GpuResources>() {
            res.draw(pass, self.rect, self.options, &Clip::of(&info), Parts::All);
        }
    }
}

/// What [`TargetPainter::paint`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// The whole view: letterbox and picture.
    All,
    /// Only the picture, over a target that holds the rest from an earlier `All`.
    Picture,
}

/// The frame view drawn onto a render target of its own (the app's video overlay, a window over
/// the frame view): the same resources and shaders as [`FrameView`], one submit per frame.
pub struct TargetPainter {
    res: GpuResources,
    device: wgpu::Device,
    queue: wgpu::Queue,
}

impl TargetPainter {
    /// For `target`, whose device's `queue` it submits to; counts into `counters`.
    pub fn new(target: Target<'_>, queue: wgpu::Queue, counters: Arc<RenderCounters>) -> Self {
        TargetPainter { res: GpuResources::new(target, counters), device: target.device.clone(), queue }
    }

    /// Draws `parts` of the view (letterbox and `frame`) into `target`, `size_px` physical pixels
    /// at `ppp` pixels per point, and submits it; returns the picture's pixels, `[x, y, width,
    /// height]`, if it drew one. [`Parts::Picture`] leaves the rest of `target` as it was.
    pub fn paint(
        &mut self,
        target: &wgpu::TextureView,
        size_px: [u32; 2],
        ppp: f32,
        frame: Option<&ShownFrame>,
        options: ViewOptions,
        parts: Parts,
    ) -> Option<[u32; 4]> {
        let rect =
            egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(size_px[0] as f32 / ppp, size_px[1] as f32 / ppp));
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("spool frame view target") });
        self.res.prepare(&self.device, &self.queue, &mut encoder, frame, rect, ppp, options);
        let picture = {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("spool frame view target"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: target,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: match parts {
                            Parts::All => wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                            Parts::Picture => wgpu::LoadOp::Load,
                        },
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            let clip = Clip { rect, pixels_per_point: ppp, target_px: size_px };
            self.res.draw(&mut pass, rect, options, &clip, parts)
        };
        self.queue.submit([encoder.finish()]);
        picture
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_centres() {
        let view = egui::Rect::from_min_size(egui::pos2(10.0, 20.0), egui::vec2(400.0, 200.0));
        let r = fit_rect(view, 128, 128);
        assert_eq!(r.size(), egui::vec2(200.0, 200.0));
        assert_eq!(r.center(), view.center());
        let r = fit_rect(view, 832, 480);
        assert!((r.width() / r.height() - 832.0 / 480.0).abs() < 1e-3);
        assert!(r.height() <= 200.0 && r.width() <= 400.0);
    }

    #[test]
    fn letterbox_and_picture_tile_the_view() {
        let view = egui::Rect::from_min_size(egui::pos2(310.0, 47.0), egui::vec2(657.4, 574.0));
        for (w, h) in [(128, 128), (832, 480), (64, 200)] {
            let fit = fit_rect(view, w, h);
            let bars = letterbox(view, Some(fit));
            assert_eq!(bars.len(), 2, "{w}×{h}: bars on two sides only");
            let area: f32 = bars.iter().map(|b| b.area()).sum::<f32>() + fit.area();
            assert!((area - view.area()).abs() < 1e-2 * view.area().sqrt(), "{w}×{h}: {area} vs {}", view.area());
            for (i, a) in bars.iter().enumerate() {
                assert!(!a.intersect(fit).is_positive(), "a bar overlaps the picture");
                for b in &bars[i + 1..] {
                    assert!(!a.intersect(*b).is_positive(), "bars overlap");
                }
            }
        }
        assert_eq!(letterbox(view, None), vec![view], "no picture: the whole view is letterbox");
    }
}
