"""spool-tiny v1 in PyTorch, following training/SPEC.md exactly.

Parameter names of `SpoolTiny` and `AutoEncoder` are the safetensors keys of the SPEC.

Two implementations of the causal encoder's attention are provided:
  * `CausalEncoder.forward`        -- parallel, training-time: every element of a clip at once, with an
                                      additive mask over full-resolution and 2x2-pooled keys that encodes the
                                      MSC + sink + window + temporal-bias rules;
  * `IncrementalEncoder`           -- step-by-step, inference-time: per-block cache of full and pooled k/v for
                                      each element still needed, eviction, exactly as the app runs it.
tests/test_model.py checks that the two agree.

Conditioning convention (a clarification written into SPEC.md): encoder element s and the decoder steps of
latent frame s use the same conditioning -- the one active for frame s. Element 0 (BOS) uses frame 0's.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------------------
# constants of the contract
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Config:
    name: str = "spool-tiny"
    version: int = 1
    image_size: int = 128
    fps: int = 16
    latent_channels: int = 16
    latent_hw: int = 8
    tokens_per_frame: int = 64
    pooled_tokens_per_frame: int = 16
    d_model: int = 192
    heads: int = 4
    head_dim: int = 48
    mlp_ratio: int = 4
    encoder_blocks: int = 6
    decoder_blocks: int = 3
    text_dim: int = 384
    text_max_tokens: int = 32
    n_full: int = 2
    n_sink: int = 2
    window: int = 12
    temporal_bias_max_distance: int = 16
    alibi_slopes: tuple = (0.5, 0.25, 0.125, 0.0625)
    pooled_logit_bias: float = math.log(4.0)
    layernorm_eps: float = 1e-6
    time_embed_dim: int = 256
    time_scale: float = 1000.0
    sampler_shift: float = 3.0
    default_steps: int = 4
    data_version: str = "procedural-v1"
    # autoencoder layout: widths of the encoder's stages (one stride-2 conv between neighbours) and the
    # decoder's (one ×2 upsample between neighbours, then a final pixel shuffle ×2); ae_patch 2 makes
    # the convolutional latent 16×16×(C/4), folded 2×2 into the 8×8×C latent (AE_LAYOUTS)
    ae_enc_channels: tuple = (32, 48, 64, 96, 128)
    ae_dec_channels: tuple = (128, 96, 64, 32)
    ae_patch: int = 1


CFG = Config()

# train.py --ae-layout: "f16c16" is the v1 autoencoder (8×8×16, each latent pixel a 16×16-pixel patch);
# "f8c4" is a 16×16×4 latent (8×8-pixel patches, the layout image diffusion models use) folded 2×2 into the
# same 8×8×16 tokens, so the generator is unchanged but an object's shape is spread over more latent pixels
AE_LAYOUTS = {
    "f16c16": dict(ae_enc_channels=(32, 48, 64, 96, 128), ae_dec_channels=(128, 96, 64, 32), ae_patch=1,
                   latent_channels=16),
    "f8c4": dict(ae_enc_channels=(32, 48, 64, 96), ae_dec_channels=(96, 64, 48), ae_patch=2, latent_channels=16),
}
NEG = -1e4  # value used for "-inf" in ctx_bias (SPEC)
MASK_NEG = -1e9  # value used for disallowed keys in the parallel encoder mask


def layer_norm(dim: int, affine: bool = True) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=CFG.layernorm_eps, elementwise_affine=affine)


# ----------------------------------------------------------------------------------------------------------
# autoencoder
# ----------------------------------------------------------------------------------------------------------

class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, h):
        return h + self.conv2(F.silu(self.conv1(F.silu(h))))


def identity_1x1(ch: int) -> nn.Conv2d:
    conv = nn.Conv2d(ch, ch, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(ch)[:, :, None, None]); conv.bias.zero_()
    return conv


class Encoder2d(nn.Module):
    def __init__(self):
        super().__init__()
        chans, p = CFG.ae_enc_channels, CFG.ae_patch
        self.conv_in = nn.Conv2d(3, chans[0], 3, padding=1)
        self.down = nn.ModuleList(
            [nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1) for i in range(len(chans) - 1)])
        self.res = ResBlock(chans[-1])
        self.conv_out = nn.Conv2d(chans[-1], CFG.latent_channels // (p * p), 1)
        # patched layouts: a 1×1 map after the 2×2 fold, where --whiten's map is folded in
        self.proj = identity_1x1(CFG.latent_channels) if p > 1 else None

    def forward(self, x):
        h = F.silu(self.conv_in(x))
        for d in self.down:
            h = F.silu(d(h))
        h = self.res(h)
        z = self.conv_out(h)
        return z if self.proj is None else self.proj(F.pixel_unshuffle(z, CFG.ae_patch))


class Decoder2d(nn.Module):
    def __init__(self):
        super().__init__()
        chans, p = CFG.ae_dec_channels, CFG.ae_patch
        self.proj = identity_1x1(CFG.latent_channels) if p > 1 else None
        self.conv_in = nn.Conv2d(CFG.latent_channels // (p * p), chans[0], 3, padding=1)
        self.res = ResBlock(chans[0])
        self.up = nn.ModuleList([nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(len(chans) - 1)])
        self.conv_out = nn.Conv2d(chans[-1], 12, 3, padding=1)

    def forward(self, z, clamp: bool = True):
        if self.proj is not None:
            z = F.pixel_shuffle(self.proj(z), CFG.ae_patch)
        h = F.silu(self.conv_in(z))
        h = self.res(h)
        for u in self.up:
            h = F.silu(u(F.interpolate(h, scale_factor=2, mode="nearest")))
        x = F.pixel_shuffle(self.conv_out(h), 2)
        return x.clamp(-1, 1) if clamp else x


def ae_layout_of(sd: dict) -> dict:
    """The CFG autoencoder fields of an AE state dict (keys enc.*, dec.*), read from its tensor shapes."""
    n_down = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("enc.down."))
    n_up = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("dec.up."))
    enc = [sd["enc.conv_in.weight"].shape[0]] + [sd[f"enc.down.{i}.weight"].shape[0] for i in range(n_down)]
    dec = [sd["dec.conv_in.weight"].shape[0]] + [sd[f"dec.up.{i}.weight"].shape[0] for i in range(n_up)]
    patch, channels = 1, sd["enc.conv_out.weight"].shape[0]
    if "enc.proj.weight" in sd:
        channels = sd["enc.proj.weight"].shape[0]
        patch = int(round(math.sqrt(channels / sd["enc.conv_out.weight"].shape[0])))
    return dict(ae_enc_channels=tuple(enc), ae_dec_channels=tuple(dec), ae_patch=patch, latent_channels=channels)


def set_ae_layout(layout: dict):
    for k, v in layout.items():
        setattr(CFG, k, v)


def ae_from_state(sd: dict) -> "AutoEncoder":
    """An AutoEncoder in the layout of state dict `sd` (module keys, latent_scale as a buffer), loaded."""
    set_ae_layout(ae_layout_of(sd))
    ae = AutoEncoder()
    ae.load_state_dict(sd)
    return ae


@torch.no_grad()
def grow_latent(old: "AutoEncoder", extra: int) -> "AutoEncoder":
    """A copy of the patched autoencoder `old` with `extra` more convolutional latent channels (CFG.latent_channels
    grows by extra × ae_patch²). The old latent stays the leading channels, value for value (pixel_unshuffle puts
    conv channel c at c·p² … c·p² + p² − 1, so old channels come first), and the new AE decodes exactly what
    `old` did: the new encoder rows start small and random, the decoder reads them through zero weights. Training
    then puts what the old latent lost into the new channels; a generator trained on the old latent keeps its
    meaning (`widen_generator`)."""
    p = CFG.ae_patch
    if p == 1 or extra <= 0:
        raise ValueError("grow_latent needs a patched layout (f8c4) and at least one new channel")
    c_old = CFG.latent_channels
    k_old = c_old // (p * p)
    CFG.latent_channels = c_old + extra * p * p
    new = AutoEncoder().to(old.latent_scale.device)
    sd, osd = new.state_dict(), old.state_dict()
    for k, v in osd.items():
        if sd[k].shape == v.shape:
            sd[k].copy_(v)
    sd["enc.conv_out.weight"][:k_old] = osd["enc.conv_out.weight"]
    sd["enc.conv_out.weight"][k_old:] *= 0.1
    sd["enc.conv_out.bias"][:k_old] = osd["enc.conv_out.bias"]
    sd["enc.conv_out.bias"][k_old:] = 0
    for proj in ("enc.proj", "dec.proj"):  # block-diagonal: the old map, then the identity
        w = torch.eye(CFG.latent_channels)[:, :, None, None].to(sd[f"{proj}.weight"])
        w[:c_old, :c_old] = osd[f"{proj}.weight"]
        sd[f"{proj}.weight"].copy_(w)
        sd[f"{proj}.bias"].zero_()
        sd[f"{proj}.bias"][:c_old] = osd[f"{proj}.bias"]
    sd["dec.conv_in.weight"].zero_()
    sd["dec.conv_in.weight"][:, :k_old] = osd["dec.conv_in.weight"]
    new.load_state_dict(sd)
    return new


def widen_generator(sd: dict, channels: int) -> dict:
    """A generator state dict trained on a latent of fewer channels, for a `channels`-wide latent whose leading
    channels are the old ones (`grow_latent`): the in_proj layers ignore the new channels (zero columns) and
    out_proj predicts zero velocity for them (zero rows), so it computes what it did on the old channels."""
    out = dict(sd)
    for k in ("encoder.in_proj.weight", "decoder.in_proj.weight"):
        w = sd[k]
        out[k] = torch.cat([w, w.new_zeros(w.shape[0], channels - w.shape[1])], 1)
    for k in ("decoder.out_proj.weight", "decoder.out_proj.bias"):
        w = sd[k]
        out[k] = torch.cat([w, w.new_zeros(channels - w.shape[0], *w.shape[1:])], 0)
    return out


class AutoEncoder(nn.Module):
    """Keys: enc.*, dec.*, plus `ae.latent_scale` (a buffer here, written by save_safetensors)."""

    def __init__(self):
        super().__init__()
        self.enc = Encoder2d()
        self.dec = Decoder2d()
        self.register_buffer("latent_scale", torch.ones(()))

    def encode(self, x):
        """x [N,3,128,128] in [-1,1] -> scaled latent [N,16,8,8] (every layout)."""
        return self.enc(x) * self.latent_scale

    def decode(self, z, clamp: bool = True):
        """scaled latent [N,16,8,8] -> [N,3,128,128]."""
        return self.dec(z / self.latent_scale, clamp=clamp)


def latent_to_tokens(z):
    """[..., 16, 8, 8] -> [..., 64, 16] (token r*8+c holds the 16 channels at row r, column c)."""
    return z.flatten(-2).transpose(-1, -2)


def tokens_to_latent(tok):
    """[..., 64, 16] -> [..., 16, 8, 8]."""
    return tok.transpose(-1, -2).unflatten(-1, (CFG.latent_hw, CFG.latent_hw))


# ----------------------------------------------------------------------------------------------------------
# transformer pieces
# ----------------------------------------------------------------------------------------------------------

class TextProj(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = layer_norm(CFG.text_dim)
        self.linear = nn.Linear(CFG.text_dim, CFG.d_model)

    def forward(self, tokens):
        return self.linear(self.norm(tokens))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(CFG.d_model, CFG.mlp_ratio * CFG.d_model)
        self.fc2 = nn.Linear(CFG.mlp_ratio * CFG.d_model, CFG.d_model)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def split_heads(x):
    """[B, L, D] -> [B, H, L, hd]"""
    B, L, _ = x.shape
    return x.view(B, L, CFG.heads, CFG.head_dim).transpose(1, 2)


def merge_heads(x):
    B, H, L, hd = x.shape
    return x.transpose(1, 2).reshape(B, L, H * hd)


def attend(q, k, v, bias=None):
    """softmax(q k^T / sqrt(hd) + bias) v, scores and softmax in f32 when inputs are f32.
    q [B,H,Lq,hd], k/v [B,H,Lk,hd], bias broadcastable to [B,H,Lq,Lk]."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def pool_tokens(t):
    """2x2 average pool of the 8x8 token grid. t [..., 64, hd] -> [..., 16, hd] (row-major over 4x4)."""
    shp = t.shape[:-2]
    hd = t.shape[-1]
    g = t.reshape(*shp, 4, 2, 4, 2, hd)
    return g.mean(dim=(-4, -2)).reshape(*shp, 16, hd)


class SelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(CFG.d_model, 3 * CFG.d_model)
        self.out = nn.Linear(CFG.d_model, CFG.d_model)

    def qkv_heads(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return split_heads(q), split_heads(k), split_heads(v)

    def forward(self, x, bias=None):
        q, k, v = self.qkv_heads(x)
        return self.out(merge_heads(attend(q, k, v, bias)))


class CrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(CFG.d_model, CFG.d_model)
        self.kv = nn.Linear(CFG.d_model, 2 * CFG.d_model)
        self.out = nn.Linear(CFG.d_model, CFG.d_model)

    def forward(self, x, ctx, ctx_bias):
        """x [B, L, D]; ctx [B, n, D] (already text_proj'ed); ctx_bias [B, n]."""
        q = split_heads(self.q(x))
        k, v = self.kv(ctx).chunk(2, dim=-1)
        k, v = split_heads(k), split_heads(v)
        bias = ctx_bias[:, None, None, :].to(q.dtype)
        return self.out(merge_heads(attend(q, k, v, bias)))


# ----------------------------------------------------------------------------------------------------------
# causal encoder
# ----------------------------------------------------------------------------------------------------------

def element_rules(s: int, sp: int):
    """Which kinds of keys of element sp the queries of element s see: returns (full: bool, pooled: bool)."""
    if sp > s:
        return False, False
    full = (s - CFG.n_full < sp) or (sp < CFG.n_sink)
    pooled = (not full) and (s - CFG.window < sp <= s - CFG.n_full) and (sp >= CFG.n_sink)
    return full, pooled


def temporal_bias(dist):
    """-slope_h * min(dist, 16) for each head: returns [H] (dist a python int) ."""
    d = min(dist, CFG.temporal_bias_max_distance)
    return torch.tensor([-sl * d for sl in CFG.alibi_slopes], dtype=torch.float32)


_TEMPORAL_BIAS = {}


def temporal_bias_on(dist, device, dtype):
    """temporal_bias(dist) on `device`, made once per (distance, device, dtype): a CUDA graph capture of the
    incremental encoder (train.py GraphedRollout) cannot copy from the host."""
    key = (min(dist, CFG.temporal_bias_max_distance), str(device), dtype)
    if key not in _TEMPORAL_BIAS:
        _TEMPORAL_BIAS[key] = temporal_bias(dist).to(dtype).to(device)
    return _TEMPORAL_BIAS[key]


def encoder_attention_mask(S: int, device=None, dtype=torch.float32):
    """Parallel mask for S elements: [H, S*64, S*64 + S*16] additive bias.
    Key layout: all full-resolution tokens (element-major), then all pooled tokens (element-major)."""
    s = torch.arange(S)
    dist = (s[:, None] - s[None, :])  # [S, S] query s, key s'
    causal = dist >= 0
    full = causal & ((dist < CFG.n_full) | (s[None, :] < CFG.n_sink))
    pooled = causal & ~full & (dist < CFG.window) & (dist >= CFG.n_full) & (s[None, :] >= CFG.n_sink)
    slopes = torch.tensor(CFG.alibi_slopes, dtype=torch.float64)
    tb = -slopes[:, None, None] * dist.clamp(0, CFG.temporal_bias_max_distance)[None].double()  # [H,S,S]
    fb = torch.where(full[None], tb, torch.full_like(tb, MASK_NEG))
    pb = torch.where(pooled[None], tb + CFG.pooled_logit_bias, torch.full_like(tb, MASK_NEG))
    T, P = CFG.tokens_per_frame, CFG.pooled_tokens_per_frame
    fb = fb.repeat_interleave(T, 1).repeat_interleave(T, 2)
    pb = pb.repeat_interleave(T, 1).repeat_interleave(P, 2)
    return torch.cat([fb, pb], dim=2).to(device=device, dtype=dtype)


class EncoderBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = layer_norm(CFG.d_model)
        self.attn = SelfAttention()
        self.norm2 = layer_norm(CFG.d_model)
        self.xattn = CrossAttention()
        self.norm3 = layer_norm(CFG.d_model)
        self.mlp = MLP()

    def self_attn_parallel(self, x, S, mask):
        """x [B, S*64, D]"""
        B = x.shape[0]
        q, k, v = self.attn.qkv_heads(self.norm1(x))  # [B,H,S*64,hd]
        kp = pool_tokens(k.unflatten(2, (S, CFG.tokens_per_frame))).flatten(2, 3)
        vp = pool_tokens(v.unflatten(2, (S, CFG.tokens_per_frame))).flatten(2, 3)
        kk = torch.cat([k, kp], dim=2)
        vv = torch.cat([v, vp], dim=2)
        o = attend(q, kk, vv, mask[None])
        return self.attn.out(merge_heads(o))

    def rest(self, x, ctx, ctx_bias):
        """cross-attention + MLP for x [N, 64, D] with ctx [N, n, D]"""
        x = x + self.xattn(self.norm2(x), ctx, ctx_bias)
        x = x + self.mlp(self.norm3(x))
        return x


class CausalEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        D = CFG.d_model
        self.in_proj = nn.Linear(CFG.latent_channels, D)
        self.pos = nn.Parameter(torch.randn(CFG.tokens_per_frame, D) * 0.02)
        self.bos = nn.Parameter(torch.randn(CFG.tokens_per_frame, D) * 0.02)
        self.blocks = nn.ModuleList([EncoderBlock() for _ in range(CFG.encoder_blocks)])
        self.norm_out = layer_norm(D)
        self._mask_cache = {}

    def embed(self, lat_tokens):
        """lat_tokens [B, 64, 16] or None for BOS -> [B, 64, D]"""
        return self.in_proj(lat_tokens) + self.pos

    def mask(self, S, device, dtype):
        key = (S, str(device), dtype)
        if key not in self._mask_cache:
            self._mask_cache[key] = encoder_attention_mask(S, device, dtype)
        return self._mask_cache[key]

    def forward(self, lat_tokens, ctx, ctx_bias):
        """Parallel (training) forward.
        lat_tokens [B, S-1, 64, 16]: clean latent frames 0..S-2 (elements 1..S-1); element 0 is BOS.
        ctx [B, S, n, D] / ctx_bias [B, S, n]: conditioning of each element (= of the frame it conditions);
            or ctx [B, n, D] / ctx_bias [B, n] shared by all elements.
        Returns h [B, S, 64, D]: h[:, s] conditions latent frame s."""
        B, Sm1 = lat_tokens.shape[:2]
        S = Sm1 + 1
        D, T = CFG.d_model, CFG.tokens_per_frame
        e = self.embed(lat_tokens)
        bos = (self.bos + self.pos).to(e.dtype).expand(B, 1, T, D)
        x = torch.cat([bos, e], dim=1)  # [B,S,64,D]
        if ctx.dim() == 3:
            ctx = ctx[:, None].expand(B, S, *ctx.shape[1:])
            ctx_bias = ctx_bias[:, None].expand(B, S, ctx_bias.shape[-1])
        ctx = ctx.reshape(B * S, *ctx.shape[2:])
        ctx_bias = ctx_bias.reshape(B * S, -1)
        x = x.reshape(B, S * T, D)
        mdt = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
        mask = self.mask(S, x.device, mdt)
        for blk in self.blocks:
            x = x + blk.self_attn_parallel(x, S, mask)
            x = blk.rest(x.reshape(B * S, T, D), ctx, ctx_bias).reshape(B, S * T, D)
        return self.norm_out(x).reshape(B, S, T, D)


class IncrementalEncoder:
    """Inference-time causal encoder: one element at a time, with a bounded per-block cache.

    cache[block][s'] = dict(kf, vf, kp, vp) for each element s' still needed:
      kf/vf [B,H,64,hd] full resolution, kp/vp [B,H,16,hd] 2x2-pooled.
    After appending element s, elements that no later query can see are evicted:
      full-res of non-sink s' <= s+1-N_FULL are dropped (their pooled copies stay),
      non-sink s' <= s+1-WINDOW are dropped entirely.
    """

    def __init__(self, enc: CausalEncoder):
        self.enc = enc
        self.cache = [dict() for _ in enc.blocks]
        self.s = 0  # index of the next element

    @torch.no_grad()
    def append(self, lat_tokens, ctx, ctx_bias):
        """lat_tokens [B, 64, 16] (None for element 0 = BOS); ctx [B, n, D] projected; -> h [B, 64, D]."""
        enc, s = self.enc, self.s
        if s == 0:
            assert lat_tokens is None
            B = ctx.shape[0]
            x = (enc.bos + enc.pos)[None].expand(B, -1, -1)
        else:
            x = enc.embed(lat_tokens)
        for bi, blk in enumerate(enc.blocks):
            c = self.cache[bi]
            q, k, v = blk.attn.qkv_heads(blk.norm1(x))
            c[s] = dict(kf=k, vf=v, kp=pool_tokens(k), vp=pool_tokens(v))
            ks, vs, bs = [], [], []
            for sp in sorted(c.keys()):
                full, pooled = element_rules(s, sp)
                tb = temporal_bias_on(s - sp, q.device, q.dtype)  # [H]
                if full:
                    ks.append(c[sp]["kf"]); vs.append(c[sp]["vf"])
                    bs.append(tb[:, None].expand(-1, CFG.tokens_per_frame))
                elif pooled:
                    ks.append(c[sp]["kp"]); vs.append(c[sp]["vp"])
                    bs.append((tb + CFG.pooled_logit_bias)[:, None].expand(-1, CFG.pooled_tokens_per_frame))
            kk, vv = torch.cat(ks, 2), torch.cat(vs, 2)
            bias = torch.cat(bs, 1)[None, :, None, :]  # [1,H,1,Lk]
            x = x + blk.attn.out(merge_heads(attend(q, kk, vv, bias)))
            x = blk.rest(x, ctx, ctx_bias)
            # eviction (for the next query s+1)
            for sp in list(c.keys()):
                if sp < CFG.n_sink:
                    continue
                if sp <= s + 1 - CFG.window:
                    del c[sp]
                elif sp <= s + 1 - CFG.n_full and "kf" in c[sp]:
                    del c[sp]["kf"], c[sp]["vf"]
        self.s += 1
        return enc.norm_out(x)

    def cache_elements(self):
        return sorted(self.cache[0].keys())


# ----------------------------------------------------------------------------------------------------------
# diffusion decoder
# ----------------------------------------------------------------------------------------------------------

def timestep_embedding(t):
    """t [N] in [0,1] -> [N, 256]: cat(cos(1000 t f), sin(1000 t f)), f_i = exp(-ln(10000) i / 128)."""
    half = CFG.time_embed_dim // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = (t.float() * CFG.time_scale)[:, None] * f[None]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


class TimeEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(CFG.time_embed_dim, CFG.d_model)
        self.fc2 = nn.Linear(CFG.d_model, CFG.d_model)

    def forward(self, t):
        return self.fc2(F.silu(self.fc1(timestep_embedding(t).to(self.fc1.weight.dtype))))


class DecoderBlock(nn.Module):
    def __init__(self):
        super().__init__()
        D = CFG.d_model
        self.ada = nn.Linear(D, 6 * D)
        self.norm1 = layer_norm(D, affine=False)
        self.attn = SelfAttention()
        self.norm2 = layer_norm(D)
        self.xattn = CrossAttention()
        self.norm3 = layer_norm(D, affine=False)
        self.mlp = MLP()

    def forward(self, x, temb, ctx, ctx_bias):
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(F.silu(temb))[:, None].chunk(6, dim=-1)
        x = x + g1 * self.attn(self.norm1(x) * (1 + sc1) + sh1)
        x = x + self.xattn(self.norm2(x), ctx, ctx_bias)
        x = x + g2 * self.mlp(self.norm3(x) * (1 + sc2) + sh2)
        return x


class DiffusionDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        D = CFG.d_model
        self.in_proj = nn.Linear(CFG.latent_channels, D)
        self.cond_proj = nn.Linear(D, D)
        self.pos = nn.Parameter(torch.randn(CFG.tokens_per_frame, D) * 0.02)
        self.t_embed = TimeEmbed()
        self.blocks = nn.ModuleList([DecoderBlock() for _ in range(CFG.decoder_blocks)])
        self.norm_out = layer_norm(D, affine=False)
        self.ada_out = nn.Linear(D, 2 * D)
        self.out_proj = nn.Linear(D, CFG.latent_channels)

    def forward(self, x_t, h, t, ctx, ctx_bias):
        """x_t [N,64,16] noisy latent tokens, h [N,64,D] encoder output, t [N], ctx [N,n,D], ctx_bias [N,n]
        -> v [N,64,16]"""
        temb = self.t_embed(t)
        x = self.in_proj(x_t) + self.cond_proj(h) + self.pos
        for blk in self.blocks:
            x = blk(x, temb, ctx, ctx_bias)
        sh, sc = self.ada_out(F.silu(temb))[:, None].chunk(2, dim=-1)
        return self.out_proj(self.norm_out(x) * (1 + sc) + sh)


# ----------------------------------------------------------------------------------------------------------
# whole generator
# ----------------------------------------------------------------------------------------------------------

def init_adaln_zero(net: nn.Module, ada_blocks, zero: tuple):
    """Linear layers truncated-normal (std 0.02) with zero bias; the adaLN blocks' modulations and the
    `zero` layers start at zero (adaLN-zero: each block starts as the identity, the output as 0)."""
    for m in net.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
    for m in [blk.ada for blk in ada_blocks] + list(zero):
        nn.init.zeros_(m.weight); nn.init.zeros_(m.bias)


class SpoolTiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.text_proj = TextProj()
        self.encoder = CausalEncoder()
        self.decoder = DiffusionDecoder()
        self.reset_parameters()

    def reset_parameters(self):
        init_adaln_zero(self, self.decoder.blocks, (self.decoder.ada_out, self.decoder.out_proj))

    def forward_train(self, x_t, t, lat_ctx_in, ctx, ctx_bias, dec_ctx=None, dec_bias=None):
        """Teacher-forced parallel forward over a clip.
        x_t [B,T,64,16] noisy latents of frames 0..T-1, t [B,T] their noise levels,
        lat_ctx_in [B,T-1,64,16] (clean, possibly noise-augmented) latents of frames 0..T-2 for the encoder,
        ctx [B,T,n,D] projected text per frame (or [B,n,D]), ctx_bias likewise -> v [B,T,64,16].
        dec_ctx/dec_bias (same shapes): the decoder's text when it differs from the encoder's (caption
        dropout for classifier-free guidance drops the decoder's text only)."""
        B, T = x_t.shape[:2]
        h = self.encoder(lat_ctx_in, ctx, ctx_bias)  # [B,T,64,D]
        if dec_ctx is not None:
            ctx, ctx_bias = dec_ctx, dec_bias
        if ctx.dim() == 3:
            ctx = ctx[:, None].expand(B, T, *ctx.shape[1:])
            ctx_bias = ctx_bias[:, None].expand(B, T, ctx_bias.shape[-1])
        v = self.decoder(x_t.reshape(B * T, 64, -1), h.reshape(B * T, 64, -1), t.reshape(B * T),
                         ctx.reshape(B * T, *ctx.shape[2:]), ctx_bias.reshape(B * T, -1))
        return v.reshape(B, T, 64, -1)


class NonSeparable(nn.Module):
    """Ablation variant (not shipped): no encoder/decoder split. Every denoising step runs the whole causal
    network (encoder_blocks + decoder_blocks adaLN blocks, about SpoolTiny's size) on the noisy frame, whose
    queries see the clean history's keys/values under the encoder's MSC rules; those keys/values come from
    the same blocks run on the finished frames at t = 0 (computed once per frame, Ca2-VDM style)."""

    def __init__(self):
        super().__init__()
        D = CFG.d_model
        self.text_proj = TextProj()
        self.in_proj = nn.Linear(CFG.latent_channels, D)
        self.pos = nn.Parameter(torch.randn(CFG.tokens_per_frame, D) * 0.02)
        self.bos = nn.Parameter(torch.randn(CFG.tokens_per_frame, D) * 0.02)
        self.t_embed = TimeEmbed()
        self.blocks = nn.ModuleList([DecoderBlock() for _ in range(CFG.encoder_blocks + CFG.decoder_blocks)])
        self.norm_out = layer_norm(D, affine=False)
        self.ada_out = nn.Linear(D, 2 * D)
        self.out_proj = nn.Linear(D, CFG.latent_channels)
        self._masks = {}
        init_adaln_zero(self, self.blocks, (self.ada_out, self.out_proj))

    def masks(self, T, device, dtype):
        key = (T, str(device), dtype)
        if key not in self._masks:
            mc = encoder_attention_mask(T, device, dtype)  # clean element s sees the history as the encoder does
            f = torch.arange(T * CFG.tokens_per_frame, device=device) // CFG.tokens_per_frame
            own = torch.where(f[:, None] == f[None, :], 0.0, MASK_NEG).to(dtype)
            mn = torch.cat([mc, own[None].expand(CFG.heads, -1, -1)], dim=2)  # noisy frame s: history + itself
            self._masks[key] = (mc, mn)
        return self._masks[key]

    def forward_train(self, x_t, t, lat_ctx_in, ctx, ctx_bias, dec_ctx=None, dec_bias=None):
        """Same contract as SpoolTiny.forward_train. Noisy frame s sees clean elements 0..s (BOS, frames
        0..s-1) and itself, so one pass gives every frame's teacher-forced prediction."""
        B, T = x_t.shape[:2]
        D, L = CFG.d_model, CFG.tokens_per_frame
        if ctx.dim() == 3:
            ctx = ctx[:, None].expand(B, T, *ctx.shape[1:])
            ctx_bias = ctx_bias[:, None].expand(B, T, ctx_bias.shape[-1])
        if dec_ctx is None:
            dec_ctx, dec_bias = ctx, ctx_bias
        elif dec_ctx.dim() == 3:
            dec_ctx = dec_ctx[:, None].expand(B, T, *dec_ctx.shape[1:])
            dec_bias = dec_bias[:, None].expand(B, T, dec_bias.shape[-1])
        cc, cb = ctx.reshape(B * T, *ctx.shape[2:]), ctx_bias.reshape(B * T, -1)
        nc, nb = dec_ctx.reshape(B * T, *dec_ctx.shape[2:]), dec_bias.reshape(B * T, -1)
        e = self.in_proj(lat_ctx_in) + self.pos
        bos = (self.bos + self.pos).to(e.dtype).expand(B, 1, L, D)
        c = torch.cat([bos, e], dim=1).reshape(B * T, L, D)
        n = (self.in_proj(x_t) + self.pos).reshape(B * T, L, D)
        temb_c = self.t_embed(torch.zeros(B * T, device=x_t.device))
        temb_n = self.t_embed(t.reshape(B * T))
        mdt = torch.get_autocast_dtype(x_t.device.type) if torch.is_autocast_enabled(x_t.device.type) else n.dtype
        mc, mn = self.masks(T, x_t.device, mdt)
        for blk in self.blocks:
            sc_ = blk.ada(F.silu(temb_c))[:, None].chunk(6, dim=-1)
            sn_ = blk.ada(F.silu(temb_n))[:, None].chunk(6, dim=-1)
            hc = (blk.norm1(c) * (1 + sc_[1]) + sc_[0]).reshape(B, T * L, D)
            hn = (blk.norm1(n) * (1 + sn_[1]) + sn_[0]).reshape(B, T * L, D)
            qc, kc, vc = blk.attn.qkv_heads(hc)
            qn, kn, vn = blk.attn.qkv_heads(hn)
            kp = pool_tokens(kc.unflatten(2, (T, L))).flatten(2, 3)
            vp = pool_tokens(vc.unflatten(2, (T, L))).flatten(2, 3)
            kk, vv = torch.cat([kc, kp], 2), torch.cat([vc, vp], 2)
            oc = blk.attn.out(merge_heads(attend(qc, kk, vv, mc[None]))).reshape(B * T, L, D)
            on = blk.attn.out(merge_heads(attend(qn, torch.cat([kk, kn], 2), torch.cat([vv, vn], 2), mn[None])))
            c = c + sc_[2] * oc
            n = n + sn_[2] * on.reshape(B * T, L, D)
            c = c + blk.xattn(blk.norm2(c), cc, cb)
            n = n + blk.xattn(blk.norm2(n), nc, nb)
            c = c + sc_[5] * blk.mlp(blk.norm3(c) * (1 + sc_[4]) + sc_[3])
            n = n + sn_[5] * blk.mlp(blk.norm3(n) * (1 + sn_[4]) + sn_[3])
        sh, sc = self.ada_out(F.silu(temb_n))[:, None].chunk(2, dim=-1)
        return self.out_proj(self.norm_out(n) * (1 + sc) + sh).reshape(B, T, L, -1)


@torch.no_grad()
def rollout_nonseparable(model: NonSeparable, ctx, bias, T: int, K: int = 4, seed: int = 0, uncond=None,
                         guidance: float = 1.0):
    """Reference rollout of the ablation variant by recomputing the whole prefix each step (slow but
    simple; the app would cache the history's keys/values). ctx [B,n,D] projected, fixed for the clip."""
    dev = ctx.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    B = ctx.shape[0]
    ts = sampling_times(K)
    frames = torch.zeros(B, 0, CFG.tokens_per_frame, CFG.latent_channels, device=dev)
    for f in range(T):
        x = torch.randn(B, CFG.tokens_per_frame, CFG.latent_channels, generator=gen, device=dev)
        for k, tk in enumerate(ts):
            xt = torch.cat([torch.zeros_like(frames), x[:, None]], 1)
            tt = torch.zeros(B, f + 1, device=dev); tt[:, f] = tk
            # the clean history keeps the caption; only the noisy frame's text is swapped for the empty one
            v = guided_v(lambda c, cb: model.forward_train(xt, tt, frames, ctx, bias, c, cb)[:, f], ctx, bias,
                         uncond, guidance)
            x0 = x - tk * v
            if k + 1 < K:
                x = (1 - ts[k + 1]) * x0 + ts[k + 1] * torch.randn(x.shape, generator=gen, device=dev)
        frames = torch.cat([frames, x0[:, None]], 1)
    return frames


def sampling_times(K: int, shift: float = CFG.sampler_shift):
    u = [1.0 - k / K for k in range(K)]
    return [shift * x / (1.0 + (shift - 1.0) * x) for x in u]


def guided_v(predict, ctx, ctx_bias, uncond=None, guidance: float = 1.0, paired: bool = False):
    """Classifier-free guidance: v_u + g (v_c - v_u), with v = predict(text, text_bias) for the prompt's
    text and for the empty prompt's (uncond = (ctx [B,n',D], bias [B,n'])); everything else `predict`
    sees (x_t, t, the encoder output or history) is the same for both. g = 1 is one plain pass.
    paired: `predict` also takes both texts stacked on the batch axis ([2B,..], repeating its other inputs);
    then, where the two texts have one shape, both run as one pass (half the kernel launches: the sampler
    is launch-bound on a GPU)."""
    if uncond is None or guidance == 1.0:
        return predict(ctx, ctx_bias)
    if paired and uncond[0].shape == ctx.shape and uncond[1].shape == ctx_bias.shape:
        v, vu = predict(torch.cat([ctx, uncond[0]]), torch.cat([ctx_bias, uncond[1]])).chunk(2)
    else:
        v, vu = predict(ctx, ctx_bias), predict(*uncond)
    return vu + guidance * (v - vu)


def denoise_frame(model: SpoolTiny, h, ctx, ctx_bias, K: int, gen: torch.Generator | None = None,
                  noise=None, uncond=None, guidance: float = 1.0, source=None, strength: float = 1.0,
                  guidance_min_t: float = 0.0):
    """The app's sampler for one latent frame given encoder output h [B,64,D] (gradients flow if enabled).
    noise: optional K tensors [B,64,16] (a list or a [K,B,64,16] tensor). uncond/guidance: see guided_v.
    source/strength: SDEdit, the app's redraw — start from source [B,64,16] noised to `strength`, on the time
    grid scaled by it (strength 1: from noise alone, source unread).
    guidance_min_t: a frame drawn from noise (no source) is guided only at the steps with t >= it (SPEC.md,
    guidance in a limited interval); a redraw guides every step."""
    B = h.shape[0]
    ts = [t * strength for t in sampling_times(K)]
    def eps(k):
        if noise is not None:
            return noise[k]
        return torch.randn(B, 64, CFG.latent_channels, generator=gen, device=h.device, dtype=h.dtype)
    x = eps(0) if source is None else (1 - strength) * source + strength * eps(0)
    x0 = None
    for k, t in enumerate(ts):
        tt = torch.full((B,), t, device=h.device, dtype=h.dtype)
        def predict(c, cb):
            n = c.shape[0] // B  # 2 when guided_v pairs the texts
            return model.decoder(x.repeat(n, 1, 1), h.repeat(n, 1, 1), tt.repeat(n), c, cb)
        guided = source is not None or t >= guidance_min_t
        v = guided_v(predict, ctx, ctx_bias, uncond if guided else None, guidance, paired=True)
        x0 = x - t * v
        if k + 1 < K:
            x = (1 - ts[k + 1]) * x0 + ts[k + 1] * eps(k + 1)
    return x0


sample_frame = torch.no_grad()(denoise_frame)  # inference: the same sampler without autograd


@torch.no_grad()
def rollout(model: SpoolTiny, ctx_per_frame, bias_per_frame, T: int, K: int = 4, seed: int = 0,
            first_latents=None, uncond=None, guidance: float = 1.0, noise=None, guidance_min_t: float = 0.0):
    """Autoregressive generation of T latent frames with the incremental (cached) encoder.
    ctx_per_frame: callable f -> (ctx [B,n,D] projected, bias [B,n]) or a fixed tuple used for every frame.
    first_latents: optional [B,F,64,16] ground-truth prefix frames (teacher prefix).
    noise: optional [T,K,B,64,16], the sampler's noise (instead of `seed`'s).
    Returns latent tokens [B,T,64,16]."""
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev).manual_seed(seed) if noise is None else None
    inc = IncrementalEncoder(model.encoder)
    out = []
    prev = None
    for f in range(T):
        ctx, bias = ctx_per_frame(f) if callable(ctx_per_frame) else (ctx_per_frame, bias_per_frame)
        h = inc.append(prev, ctx, bias)
        if first_latents is not None and f < first_latents.shape[1]:
            x0 = first_latents[:, f]
        else:
            x0 = sample_frame(model, h, ctx, bias, K, gen, noise=None if noise is None else noise[f],
                              uncond=uncond, guidance=guidance, guidance_min_t=guidance_min_t)
        out.append(x0)
        prev = x0
    return torch.stack(out, 1)


# ----------------------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------------------

def model_state_for_export(model: SpoolTiny):
    return {k: v for k, v in model.state_dict().items()}


def ae_state_for_export(ae: AutoEncoder):
    sd = {}
    for k, v in ae.state_dict().items():
        if k == "latent_scale":
            sd["ae.latent_scale"] = v.reshape(1)
        else:
            sd[k] = v
    return sd


def config_dict(extra: dict | None = None):
    d = asdict(CFG)
    d["alibi_slopes"] = list(CFG.alibi_slopes)
    d["files"] = {"model": "model.safetensors", "ae": "ae.safetensors"}
    if extra:
        d.update(extra)
    return d


def save_safetensors(model: SpoolTiny | None, path_model: str, path_ae: str, ae: AutoEncoder | None = None,
                     config_path: str | None = None, extra_config: dict | None = None,
                     dtype=torch.float16):
    """Write f16 safetensors with the SPEC key names (and config.json next to path_model unless given).
    `ae=None` writes a freshly initialised AutoEncoder (current torch RNG state), e.g. for parity fixtures;
    `model=None` writes no generator file (an autoencoder-only directory; the config still describes one)."""
    import os
    from safetensors.torch import save_file
    if ae is None:
        ae = AutoEncoder()
    if model is not None:
        sd = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model_state_for_export(model).items()}
        save_file(sd, path_model, metadata={"format": "pt", "spool": "spool-tiny-v1"})
    sda = {k: v.detach().to("cpu", dtype).contiguous() for k, v in ae_state_for_export(ae).items()}
    save_file(sda, path_ae, metadata={"format": "pt", "spool": "spool-tiny-ae-v1"})
    if config_path is None:
        config_path = os.path.join(os.path.dirname(os.path.abspath(path_model)), "config.json")
    with open(config_path, "w") as f:
        json.dump(config_dict(extra_config), f, indent=1)


@torch.no_grad()
def whiten_latent(ae: AutoEncoder, z: torch.Tensor, models=(), floor: float = 0.0, keep: int = 0):
    """Re-express the latent space in whitened coordinates z_w = P z, P = Λ^(-1/2) Uᵀ from the second moment
    E[z zᵀ] = U Λ Uᵀ of sample latents z [N,C,H,W] (uncentred, so no bias has to move). The AE's last
    encoder layer (1×1) and first decoder layer (v1: 3×3, zero padding: linear) absorb P and P⁻¹ exactly and
    latent_scale becomes 1; each generator in `models` absorbs them in its latent-facing linear layers
    (encoder/decoder in_proj take z: A P⁻¹; decoder out_proj gives v: P B), so it computes the same
    function of the same pictures. Why: the raw latent's spectrum is skewed (background colour in 3 directions
    with most of the variance, the object's shape in directions ~40× smaller), so N(0, I) noise drowns the
    shape first and the flow loss hardly weighs it; whitened, every direction has the same SNR at every t.
    floor: eigenvalues below floor × their mean are scaled as if they were that (directions the AE hardly
    uses stay small instead of being blown up to unit variance; 0 = exact whitening).
    keep: the leading `keep` channels stay as they are (× latent_scale) and only the others are whitened among
    themselves — a grown latent's new channels (`grow_latent`), where the old ones are a generator's already.
    Returns (P, the whitened channels' second-moment eigenvalues, largest first)."""
    f = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])[:, keep:].double()
    lam, U = torch.linalg.eigh(f.T @ f / f.shape[0])
    scale = lam.clamp(min=floor * lam.mean().item())
    P = torch.eye(z.shape[1], dtype=torch.float64, device=z.device)
    Pi = P.clone()
    P[keep:, keep:] = (U * scale.rsqrt()).T  # [C,C]
    Pi[keep:, keep:] = U * scale.sqrt()  # P⁻¹
    s = ae.latent_scale.double()
    # the layers next to the latent: 1×1 convs (the 2×2-patched layouts' proj, or v1's conv_out) and v1's
    # 3×3 dec.conv_in (zero padding: linear in z)
    enc_last = ae.enc.proj if ae.enc.proj is not None else ae.enc.conv_out
    dec_first = ae.dec.proj if ae.dec.proj is not None else ae.dec.conv_in
    w = enc_last.weight  # [C,in,1,1]
    enc_last.weight.copy_((P @ (s * w.double()[:, :, 0, 0]))[:, :, None, None].to(w.dtype))
    enc_last.bias.copy_((P @ (s * enc_last.bias.double())).to(w.dtype))
    wd = dec_first.weight  # [out,C,k,k]; decode feeds it z / latent_scale
    dec_first.weight.copy_((torch.einsum("oikl,ij->ojkl", wd.double(), Pi) / s).to(wd.dtype))
    ae.latent_scale.fill_(1.0)
    for m in models:
        for lin in (m.encoder.in_proj, m.decoder.in_proj):
            lin.weight.copy_((lin.weight.double() @ Pi).to(lin.weight.dtype))
        o = m.decoder.out_proj
        o.weight.copy_((P @ o.weight.double()).to(o.weight.dtype))
        o.bias.copy_((P @ o.bias.double()).to(o.bias.dtype))
    return P.float(), lam.flip(0).float()


def decoder_depth(sd: dict) -> int:
    """number of decoder blocks in a generator state dict"""
    return 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("decoder.blocks."))


def grow_decoder(model: "SpoolTiny", sd: dict):
    """Load a generator state dict whose decoder has fewer blocks than `model`'s: the extra blocks (appended
    after the loaded ones) start as the identity (adaLN-zero gates and a zero cross-attention output), so
    the grown model computes exactly what the loaded one did and training adds capacity from there."""
    n = decoder_depth(sd)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    extra = [k for k in missing if not (k.startswith("decoder.blocks.") and int(k.split(".")[2]) >= n)]
    if extra or unexpected:
        raise ValueError(f"cannot grow: missing {extra[:4]}, unexpected {unexpected[:4]}")
    with torch.no_grad():
        for blk in model.decoder.blocks[n:]:
            for m in (blk.ada, blk.xattn.out):
                m.weight.zero_(); m.bias.zero_()
    return n


def load_safetensors(path_model: str | None = None, path_ae: str | None = None, device="cpu"):
    from safetensors.torch import load_file
    model = ae = None
    if path_model:
        sd = {k: v.float() for k, v in load_file(path_model).items()}
        CFG.decoder_blocks = decoder_depth(sd)  # the file says how deep its decoder is (config.json agrees)
        CFG.latent_channels = sd["decoder.out_proj.weight"].shape[0]  # and how wide its latent is
        model = SpoolTiny()
        model.load_state_dict(sd)
        model.to(device)
    if path_ae:
        sd = {k: v.float() for k, v in load_file(path_ae).items()}
        sd["latent_scale"] = sd.pop("ae.latent_scale").reshape(())
        ae = ae_from_state(sd).to(device)  # the file says which layout it is
    return model, ae
