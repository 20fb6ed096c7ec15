//! egui's own meshes (every widget, glyph and thumbnail) drawn through Spool's shader,
//! `shaders/ui_mesh.wgsl`, instead of egui-wgpu's.
//!
//! Why: egui-wgpu 0.37's fragment shader chooses per pixel between the texture sampler and a
//! software bilinear path (an option for kittest snapshots). A software rasterizer (lavapipe) runs
//! that branch for every pixel either way: 73% of the window's CPU time (BENCHMARKS.md, "Desktop
//! app"). eframe builds that renderer itself, so this module works beside it: an egui plugin
//! tessellates each pass's shapes (`output_hook`, before eframe sees them) and hands every run of
//! meshes between two paint callbacks back as one paint callback of its own, which draws them with
//! a shader that only samples. The rest stays egui-wgpu's: the textures (a run binds the bind groups
//! egui-wgpu made for them), the render pass, and the other paint callbacks (the frame view), which
//! keep their place in the painting order.
//!
//! A mesh whose texture egui-wgpu does not hold yet, or replaces whole in this pass, stays an egui
//! mesh for that pass: its bind group would be missing or stale.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use egui::emath::TSTransform;
use egui::epaint::{ClippedPrimitive, ClippedShape, Primitive, Vertex};
use egui_wgpu::wgpu;
use egui_wgpu::wgpu::util::DeviceExt as _;

use super::RenderCounters;

/// Draws egui's meshes through `ui_mesh.wgsl` from now on, in every pass of `ctx`.
pub fn install(ctx: &egui::Context, rs: &egui_wgpu::RenderState, counters: Arc<RenderCounters>) {
    rs.renderer.write().callback_resources.insert(MeshPipeline::new(rs));
    ctx.add_plugin(UiMeshes { rs: rs.clone(), counters });
}

struct UiMeshes {
    rs: egui_wgpu::RenderState,
    counters: Arc<RenderCounters>,
}

impl egui::Plugin for UiMeshes {
    fn debug_name(&self) -> &'static str {
        "spool-ui-meshes"
    }

    fn output_hook(&mut self, ctx: &egui::Context, output: &mut egui::FullOutput) {
        let primitives = ctx.tessellate(std::mem::take(&mut output.shapes), output.pixels_per_point);
        let replaced: Vec<egui::TextureId> = output
            .textures_delta
            .set
            .iter()
            .filter(|(_, deltas)| deltas.iter().any(|d| d.pos.is_none()))
            .map(|(id, _)| *id)
            .collect();
        let renderer = self.rs.renderer.read();
        let mut shapes = Vec::new();
        let mut run = MeshRun::default();
        for ClippedPrimitive { clip_rect, primitive } in primitives {
            let shape = match primitive {
                Primitive::Mesh(mesh) => {
                    let group = (!replaced.contains(&mesh.texture_id))
                        .then(|| renderer.texture(&mesh.texture_id))
                        .flatten()
                        .map(|t| t.bind_group.clone());
                    if let Some(group) = group {
                        run.push(clip_rect, &mesh, group);
                        continue;
                    }
                    egui::Shape::mesh(mesh)
                }
                Primitive::Callback(callback) => egui::Shape::Callback(callback),
            };
            run.flush(&self.rs.device, &self.counters, &mut shapes);
            shapes.push(ClippedShape { clip_rect, shape, transform_after_tessellation: TSTransform::IDENTITY });
        }
        run.flush(&self.rs.device, &self.counters, &mut shapes);
        output.shapes = shapes;
    }
}

/// One draw of a run: consecutive triangles of one mesh in the run's buffers, under the mesh's clip
/// rect and texture, all plain colour (`flat`) or all textured.
struct Draw {
    clip: egui::Rect,
    indices: Range<u32>,
    base_vertex: i32,
    group: wgpu::BindGroup,
    flat: bool,
}

/// Consecutive meshes gathered into one vertex and one index buffer.
#[derive(Default)]
struct MeshRun {
    vertices: Vec<Vertex>,
    indices: Vec<u32>,
    draws: Vec<Draw>,
    bounds: Option<egui::Rect>,
}

impl MeshRun {
    fn push(&mut self, clip: egui::Rect, mesh: &egui::Mesh, group: wgpu::BindGroup) {
        let base_vertex = self.vertices.len() as i32;
        self.vertices.extend_from_slice(&mesh.vertices);
        // egui paints plain colour as font-atlas triangles at `WHITE_UV`, a white texel: those draw
        // without the texture (bilinear sampling is most of a software rasterizer's cost per pixel).
        // Consecutive triangles of one kind make one draw, so the painting order stays.
        let atlas = mesh.texture_id == egui::TextureId::default();
        let flat = |t: &[u32]| atlas && t.iter().all(|&i| mesh.vertices[i as usize].uv == egui::epaint::WHITE_UV);
        for t in mesh.indices.chunks_exact(3) {
            let kind = flat(t);
            let start = self.indices.len() as u32;
            self.indices.extend_from_slice(t);
            match self.draws.last_mut() {
                Some(d) if d.indices.end == start && d.flat == kind && d.base_vertex == base_vertex => {
                    d.indices.end = start + 3;
                }
                _ => self.draws.push(Draw {
                    clip,
                    indices: start..start + 3,
                    base_vertex,
                    group: group.clone(),
                    flat: kind,
                }),
            }
        }
        self.bounds = Some(self.bounds.map_or(clip, |b| b.union(clip)));
    }

    /// Hands the gathered meshes on as one paint callback and starts a new run.
    fn flush(&mut self, device: &wgpu::Device, counters: &Arc<RenderCounters>, shapes: &mut Vec<ClippedShape>) {
        let run = std::mem::take(self);
        let Some(bounds) = run.bounds else { return };
        let buffer = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage })
        };
        let callback = RunCallback {
            vertices: buffer("spool ui vertices", bytemuck::cast_slice(&run.vertices), wgpu::BufferUsages::VERTEX),
            indices: buffer("spool ui indices", bytemuck::cast_slice(&run.indices), wgpu::BufferUsages::INDEX),
            draws: run.draws,
            counters: counters.clone(),
        };
        shapes.push(ClippedShape {
            clip_rect: bounds,
            shape: egui::Shape::Callback(egui_wgpu::Callback::new_paint_callback(bounds, callback)),
            transform_after_tessellation: TSTransform::IDENTITY,
        });
    }
}

struct RunCallback {
    vertices: wgpu::Buffer,
    indices: wgpu::Buffer,
    draws: Vec<Draw>,
    counters: Arc<RenderCounters>,
}

impl egui_wgpu::CallbackTrait for RunCallback {
    fn prepare(
        &self,
        _device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(p) = resources.get::<MeshPipeline>() {
            let [w, h] = screen.size_in_pixels;
            let ppp = screen.pixels_per_point;
            queue.write_buffer(&p.locals, 0, bytemuck::cast_slice(&[w as f32 / ppp, h as f32 / ppp, 0.0, 0.0]));
        }
        Vec::new()
    }

    fn paint(
        &self,
        info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(p) = resources.get::<MeshPipeline>() else { return };
        let [w, h] = info.screen_size_px;
        // egui-wgpu set the viewport to this callback's rect; vertices are in screen points.
        pass.set_viewport(0.0, 0.0, w as f32, h as f32, 0.0, 1.0);
        pass.set_bind_group(0, &p.locals_group, &[]);
        pass.set_vertex_buffer(0, self.vertices.slice(..));
        pass.set_index_buffer(self.indices.slice(..), wgpu::IndexFormat::Uint32);
        let clip = super::Clip::of(&info);
        for d in &self.draws {
            if clip.scissor(pass, d.clip).is_none() {
                continue;
            }
            pass.set_pipeline(if d.flat { &p.flat } else { &p.textured });
            pass.set_bind_group(1, &d.group, &[]);
            pass.draw_indexed(d.indices.clone(), d.base_vertex, 0..1);
        }
        self.counters.ui_meshes.fetch_add(self.draws.len() as u64, Ordering::Relaxed);
    }
}

/// The pipelines and the screen-size uniform, kept in egui-wgpu's callback resources.
struct MeshPipeline {
    textured: wgpu::RenderPipeline,
    flat: wgpu::RenderPipeline,
    locals: wgpu::Buffer,
    locals_group: wgpu::BindGroup,
}

impl MeshPipeline {
    fn new(rs: &egui_wgpu::RenderState) -> Self {
        let device = &rs.device;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("spool ui_mesh"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/ui_mesh.wgsl").into()),
        });
        let locals_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("spool ui_mesh locals"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::VERTEX,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: std::num::NonZeroU64::new(16),
                },
                count: None,
            }],
        });
        // The same entries as egui-wgpu's texture layout (its third, a 16-byte flags uniform, is read
        // only by its software filtering path): wgpu treats layouts with equal entries as one, so the
        // bind groups egui-wgpu made for its textures bind here.
        let texture_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("spool ui_mesh texture"),
            entries: &super::sampled_texture_entries(std::num::NonZeroU64::new(16)),
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("spool ui_mesh"),
            bind_group_layouts: &[Some(&locals_layout), Some(&texture_layout)],
            immediate_size: 0,
        });
        // egui's premultiplied-alpha blending.
        let blend = wgpu::BlendState {
            color: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::One,
                dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
                operation: wgpu::BlendOperation::Add,
            },
            alpha: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::OneMinusDstAlpha,
                dst_factor: wgpu::BlendFactor::One,
                operation: wgpu::BlendOperation::Add,
            },
        };
        let vertices = [Some(wgpu::VertexBufferLayout {
            array_stride: std::mem::size_of::<Vertex>() as u64,
            step_mode: wgpu::VertexStepMode::Vertex,
            attributes: &wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x2, 2 => Uint32],
        })];
        let pipeline =
            |entry| super::pass_pipeline(super::Target::of(rs), &layout, &module, &vertices, entry, &[], Some(blend));
        let locals = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("spool ui_mesh locals"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let locals_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("spool ui_mesh locals"),
            layout: &locals_layout,
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: locals.as_entire_binding() }],
        });
        MeshPipeline { textured: pipeline("fs_textured"), flat: pipeline("fs_flat"), locals, locals_group }
    }
}
