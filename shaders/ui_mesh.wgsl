// egui's meshes (src/render/ui_mesh.rs): every widget, glyph and thumbnail of the window.
//
// Vertex colours are sRGB-encoded and premultiplied; egui's textures are plain Rgba8Unorm holding
// the same encoding, so the product is already what a gamma framebuffer stores.

// True when the render target is an sRGB format (the hardware then encodes, so we decode first). A
// pipeline constant, not a uniform: a software rasterizer runs a uniform's branch for every pixel.
override srgb_target: bool = false;

struct Locals {
    // The screen in points (egui's vertex positions are in points).
    screen_size: vec2<f32>,
    _pad: vec2<f32>,
};

@group(0) @binding(0) var<uniform> locals: Locals;
@group(1) @binding(0) var tex: texture_2d<f32>;
@group(1) @binding(1) var tex_sampler: sampler;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
    @location(1) color: vec4<f32>,
};

@vertex
fn vs_main(@location(0) pos: vec2<f32>, @location(1) uv: vec2<f32>, @location(2) color: u32) -> VsOut {
    var out: VsOut;
    out.position = vec4<f32>(
        2.0 * pos.x / locals.screen_size.x - 1.0,
        1.0 - 2.0 * pos.y / locals.screen_size.y,
        0.0,
        1.0,
    );
    out.uv = uv;
    // egui packs RGBA with red in the lowest byte.
    out.color = unpack4x8unorm(color);
    return out;
}

fn linear_from_gamma(srgb: vec3<f32>) -> vec3<f32> {
    let lower = srgb / vec3<f32>(12.92);
    let higher = pow((srgb + vec3<f32>(0.055)) / vec3<f32>(1.055), vec3<f32>(2.4));
    return select(higher, lower, srgb < vec3<f32>(0.04045));
}

fn encode(c: vec4<f32>) -> vec4<f32> {
    if srgb_target {
        return vec4<f32>(linear_from_gamma(c.rgb), c.a);
    }
    return c;
}

@fragment
fn fs_textured(in: VsOut) -> @location(0) vec4<f32> {
    return encode(in.color * textureSample(tex, tex_sampler, in.uv));
}

// Triangles at egui's `WHITE_UV` (a white texel of the font atlas): plain colour.
@fragment
fn fs_flat(in: VsOut) -> @location(0) vec4<f32> {
    return encode(in.color);
}
