// Turns a model frame (planar f32 RGB in [-1, 1], `3 × height × width`) into display pixels.
//
// One invocation per pixel. The storage texture is Rgba8Unorm holding sRGB-encoded values: the model's
// output is already in sRGB space (0 ↦ mid grey), so the mapping is linear, exactly as the CPU path
// (`Frame::to_rgb8`) does it. The hardware rounds to the nearest byte when it stores.

struct Dims {
    // width, height, pixels per plane, unused
    size: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> planar: array<f32>;
@group(0) @binding(1) var<uniform> dims: Dims;
@group(0) @binding(2) var pixels: texture_storage_2d<rgba8unorm, write>;

@compute @workgroup_size(8, 8, 1)
fn to_pixels(@builtin(global_invocation_id) id: vec3<u32>) {
    let w = dims.size.x;
    let h = dims.size.y;
    if (id.x >= w || id.y >= h) {
        return;
    }
    let n = dims.size.z;
    let i = id.y * w + id.x;
    let rgb = vec3<f32>(planar[i], planar[n + i], planar[2u * n + i]);
    let v = clamp(rgb * 0.5 + vec3<f32>(0.5), vec3<f32>(0.0), vec3<f32>(1.0));
    textureStore(pixels, vec2<i32>(i32(id.x), i32(id.y)), vec4<f32>(v, 1.0));
}
