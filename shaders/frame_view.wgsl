// Draws the frame texture into the frame view: fit with letterbox, nearest or smooth scaling, and an
// optional checkerboard behind the picture (it shows in the letterbox and through any transparency).
//
// egui sets the viewport to the paint callback's rect, so one triangle that covers clip space covers
// exactly the view; `uv` runs 0..1 across it. The picture and each letterbox bar are drawn with a
// scissor rect of their own (src/render/mod.rs), so every pixel runs one short shader: a software
// rasterizer pays per pixel for every instruction and every branch.

struct View {
    // Picture rectangle inside the view, in view uv (0..1): min.xy, max.xy.
    image: vec4<f32>,
    // View size in physical pixels (for a checker of constant on-screen size), checker cell in pixels.
    view: vec4<f32>,
    // Letterbox colour (sRGB-encoded, like everything egui paints).
    background: vec4<f32>,
}

@group(0) @binding(0) var frame_tex: texture_2d<f32>;
@group(0) @binding(1) var frame_sampler: sampler;
@group(0) @binding(2) var<uniform> view: View;

// Pipeline constants, not uniforms: a software rasterizer runs a uniform's branch for every pixel.
// True when the render target is an sRGB format (the hardware then encodes, so we decode first).
override srgb_target: bool = false;
// The checkerboard instead of the letterbox colour.
override checker: bool = false;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
}

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VsOut {
    // (0,0), (2,0), (0,2): one triangle covering the viewport.
    let uv = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    var out: VsOut;
    out.position = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    out.uv = uv;
    return out;
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let lo = c / 12.92;
    let hi = pow((c + vec3<f32>(0.055)) / 1.055, vec3<f32>(2.4));
    return select(hi, lo, c <= vec3<f32>(0.04045));
}

fn encode(rgb: vec3<f32>) -> vec4<f32> {
    if (srgb_target) {
        return vec4<f32>(srgb_to_linear(rgb), 1.0);
    }
    return vec4<f32>(rgb, 1.0);
}

fn back(uv: vec2<f32>) -> vec3<f32> {
    if (checker) {
        let cell = floor(uv * view.view.xy / max(view.view.z, 1.0));
        let odd = (i32(cell.x) + i32(cell.y)) & 1;
        return select(vec3<f32>(0.16), vec3<f32>(0.22), odd == 1);
    }
    return view.background.rgb;
}

@fragment
fn fs_letterbox(in: VsOut) -> @location(0) vec4<f32> {
    return encode(back(in.uv));
}

@fragment
fn fs_picture(in: VsOut) -> @location(0) vec4<f32> {
    let lo = view.image.xy;
    let hi = view.image.zw;
    let t = clamp((in.uv - lo) / max(hi - lo, vec2<f32>(1e-6)), vec2<f32>(0.0), vec2<f32>(1.0));
    let picture = textureSampleLevel(frame_tex, frame_sampler, t, 0.0);
    return encode(mix(back(in.uv), picture.rgb, picture.a));
}
