"""CPU tests: parallel masked encoder == incremental cached encoder; shapes; export key names.

Run:  cd training && python3 -m pytest -q tests   (or python3 tests/test_model.py)
"""
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from spool_tiny.model import (AE_LAYOUTS, CFG, AutoEncoder, IncrementalEncoder, SpoolTiny,  # noqa: E402
                              ae_layout_of, element_rules, encoder_attention_mask, grow_decoder, grow_latent,
                              latent_to_tokens, load_safetensors, rollout, sample_frame, save_safetensors,
                              set_ae_layout, whiten_latent, widen_generator)


def _randomize(model, scale=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def test_rules_window():
    # element 20 sees: sinks 0,1 full; 19, 20 full; 9..18 pooled; nothing else
    s = 20
    full = [sp for sp in range(s + 1) if element_rules(s, sp)[0]]
    pooled = [sp for sp in range(s + 1) if element_rules(s, sp)[1]]
    assert full == [0, 1, 19, 20], full
    assert pooled == list(range(9, 19)), pooled
    # element 2: 0,1,2 full (1 is both previous and sink), nothing pooled
    assert [sp for sp in range(3) if element_rules(2, sp)[0]] == [0, 1, 2]
    assert not any(element_rules(2, sp)[1] for sp in range(3))
    m = encoder_attention_mask(4)
    assert m.shape == (4, 4 * 64, 4 * 80)


def test_parallel_equals_incremental():
    torch.manual_seed(0)
    model = SpoolTiny().eval()
    _randomize(model, 0.08)
    B, S, n = 2, 22, 7  # S elements > WINDOW + N_SINK so eviction is exercised
    lat = torch.randn(B, S - 1, 64, 16)
    txt = torch.randn(B, S, n, 384)
    bias = torch.zeros(B, S, n)
    bias[:, :, -2:] = -1e4  # padding
    bias[1, 10:, 0] = -0.7  # a weighted token, changing mid-clip
    with torch.no_grad():
        ctx = model.text_proj(txt)
        h_par = model.encoder(lat, ctx, bias)
        inc = IncrementalEncoder(model.encoder)
        hs = []
        for s in range(S):
            hs.append(inc.append(None if s == 0 else lat[:, s - 1], ctx[:, s], bias[:, s]))
            # bounded cache: sinks + at most WINDOW-N_SINK... elements
            assert len(inc.cache_elements()) <= CFG.n_sink + CFG.window - 1
        h_inc = torch.stack(hs, 1)
    err = (h_par - h_inc).abs().max().item()
    print("max abs err parallel vs incremental:", err, "scale", h_par.abs().max().item())
    assert err < 1e-4, err
    # the cache holds exactly what the rules need for the next element
    assert inc.cache_elements() == [0, 1] + list(range(S - CFG.window + 1, S))


def test_decoder_and_train_forward():
    torch.manual_seed(1)
    model = SpoolTiny()
    _randomize(model, 0.05, seed=3)
    B, T = 2, 5
    x_t = torch.randn(B, T, 64, 16)
    t = torch.rand(B, T)
    lat = torch.randn(B, T - 1, 64, 16)
    ctx = model.text_proj(torch.randn(B, T, 6, 384))
    bias = torch.zeros(B, T, 6)
    v = model.forward_train(x_t, t, lat, ctx, bias)
    assert v.shape == (B, T, 64, 16)
    # frame-by-frame decoder equals batched
    with torch.no_grad():
        h = model.encoder(lat, ctx, bias)
        v2 = model.decoder(x_t[:, 3], h[:, 3], t[:, 3], ctx[:, 3], bias[:, 3])
    assert (v2 - v[:, 3]).abs().max() < 1e-5
    # rollout runs
    with torch.no_grad():
        out = rollout(model, lambda f: (ctx[:, min(f, T - 1)], bias[:, min(f, T - 1)]), None, T=4, K=2)
    assert out.shape == (B, 4, 64, 16)


def test_autoencoder_shapes_and_export():
    ae = AutoEncoder()
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    z = ae.encode(x)
    assert z.shape == (2, 16, 8, 8)
    assert ae.decode(z).shape == (2, 3, 128, 128)
    model = SpoolTiny()
    with tempfile.TemporaryDirectory() as d:
        ae.latent_scale.fill_(0.5)
        save_safetensors(model, os.path.join(d, "model.safetensors"), os.path.join(d, "ae.safetensors"), ae=ae)
        from safetensors.torch import load_file
        sd = load_file(os.path.join(d, "model.safetensors"))
        sa = load_file(os.path.join(d, "ae.safetensors"))
        for k in ["text_proj.norm.weight", "text_proj.linear.weight", "encoder.in_proj.weight", "encoder.pos",
                  "encoder.bos", "encoder.blocks.5.attn.qkv.weight", "encoder.blocks.0.xattn.kv.bias",
                  "encoder.blocks.0.norm3.bias", "encoder.norm_out.weight", "decoder.cond_proj.weight",
                  "decoder.t_embed.fc2.weight", "decoder.blocks.2.ada.weight", "decoder.blocks.0.norm2.weight",
                  "decoder.ada_out.weight", "decoder.out_proj.weight", "decoder.pos"]:
            assert k in sd, k
        assert "decoder.blocks.0.norm1.weight" not in sd and "decoder.norm_out.weight" not in sd
        assert all(v.dtype == torch.float16 for v in sd.values())
        for k in ["enc.conv_in.weight", "enc.down.3.weight", "enc.res.conv2.bias", "enc.conv_out.weight",
                  "dec.conv_in.weight", "dec.up.2.weight", "dec.conv_out.weight", "ae.latent_scale"]:
            assert k in sa, k
        assert sa["ae.latent_scale"].shape == (1,)
        assert os.path.exists(os.path.join(d, "config.json"))
        m2, a2 = load_safetensors(os.path.join(d, "model.safetensors"), os.path.join(d, "ae.safetensors"))
        assert abs(a2.latent_scale.item() - 0.5) < 1e-6
        n = sum(p.numel() for p in model.parameters())
        na = sum(p.numel() for p in ae.parameters())
        print(f"generator params {n/1e6:.2f}M ({os.path.getsize(os.path.join(d, 'model.safetensors'))/2**20:.1f} MiB f16), "
              f"ae params {na/1e6:.2f}M")


def test_nonseparable_is_causal_and_guidance_one_is_plain():
    """the ablation variant: frame s's prediction ignores later frames (so teacher forcing == rollout), and
    guided_v at g = 1 is the plain decoder output."""
    from spool_tiny.model import NonSeparable, guided_v, SpoolTiny
    torch.manual_seed(0)
    m = NonSeparable().eval()
    _randomize(m, seed=3)
    B, T, n = 2, 14, 5
    xt, t = torch.randn(B, T, 64, 16), torch.rand(B, T)
    lat = torch.randn(B, T - 1, 64, 16)
    ctx, bias = torch.randn(B, n, CFG.d_model), torch.zeros(B, n)
    with torch.no_grad():
        full = m.forward_train(xt, t, lat, ctx, bias)
        xt2, lat2 = xt.clone(), lat.clone()
        xt2[:, 9:] += 1.0; lat2[:, 9:] += 1.0  # noisy and clean frames >= 9 change
        part = m.forward_train(xt2, t, lat2, ctx, bias)
    assert (full[:, :9] - part[:, :9]).abs().max() < 1e-5, "frames 0..8 must not see frames >= 9"
    assert (full[:, 9:] - part[:, 9:]).abs().max() > 1e-3
    s = SpoolTiny().eval()
    _randomize(s, seed=4)
    x, h = torch.randn(B, 64, 16), torch.randn(B, 64, CFG.d_model)
    tt = torch.full((B,), 0.5)
    unc = (torch.randn(B, 2, CFG.d_model), torch.zeros(B, 2))
    with torch.no_grad():
        plain = s.decoder(x, h, tt, ctx, bias)
        dec = lambda c, cb: s.decoder(x, h, tt, c, cb)  # noqa: E731
        assert torch.equal(guided_v(dec, ctx, bias, unc, 1.0), plain)
        vu = s.decoder(x, h, tt, *unc)
        g3 = guided_v(dec, ctx, bias, unc, 3.0)
    assert (g3 - (vu + 3.0 * (plain - vu))).abs().max() < 1e-6
    # paired: both texts as one batch of 2B when their shapes agree, the same v as two passes
    unc_n = (torch.randn(B, n, CFG.d_model), torch.full((B, n), -1e4))
    unc_n[1][:, 0] = 0.0
    with torch.no_grad():
        two = guided_v(dec, ctx, bias, unc_n, 3.0)
        pair = guided_v(lambda c, cb: s.decoder(x.repeat(2, 1, 1), h.repeat(2, 1, 1), tt.repeat(2), c, cb),
                        ctx, bias, unc_n, 3.0, paired=True)
    assert (pair - two).abs().max() < 1e-5 * two.abs().max()
    print("nonseparable causal, guidance ok")


def in_layout(name, fn):
    """run fn with the autoencoder layout `name`, then restore v1's"""
    try:
        set_ae_layout(AE_LAYOUTS[name])
        return fn()
    finally:
        set_ae_layout(AE_LAYOUTS["f16c16"])


def test_guidance_in_a_limited_interval():
    """a frame drawn from noise is guided only at steps with t >= guidance_min_t; a redraw at every step."""
    from spool_tiny.model import guided_v, sampling_times
    torch.manual_seed(0)
    s = SpoolTiny().eval()
    _randomize(s, seed=5)
    B, n, K = 2, 5, 4
    h = torch.randn(B, 64, CFG.d_model)
    ctx, bias = torch.randn(B, n, CFG.d_model), torch.zeros(B, n)
    unc = (torch.randn(B, 2, CFG.d_model), torch.zeros(B, 2))
    noise = torch.randn(K, B, 64, 16)
    ts = sampling_times(K)

    def by_hand(min_t, strength=1.0, source=None):
        x = noise[0] if source is None else (1 - strength) * source + strength * noise[0]
        for k, t in enumerate(t * strength for t in ts):
            dec = lambda c, cb: s.decoder(x, h, torch.full((B,), t), c, cb)  # noqa: E731
            x0 = x - t * guided_v(dec, ctx, bias, unc if t >= min_t else None, 3.0)
            if k + 1 < K:
                x = (1 - ts[k + 1] * strength) * x0 + ts[k + 1] * strength * noise[k + 1]
        return x0

    with torch.no_grad():
        run = lambda **kw: sample_frame(s, h, ctx, bias, K, noise=noise, uncond=unc, guidance=3.0, **kw)  # noqa
        assert ts[1] > 0.8 > ts[2], ts  # two guided steps of four
        part = run(guidance_min_t=0.8)
        assert (part - by_hand(0.8)).abs().max() < 1e-5
        assert (run() - by_hand(0.0)).abs().max() < 1e-5
        assert (part - by_hand(0.0)).abs().max() > 1e-3 and (part - by_hand(2.0)).abs().max() > 1e-3
        src = torch.randn(B, 64, 16)
        redraw = run(guidance_min_t=0.8, source=src, strength=0.5)
        assert (redraw - by_hand(0.0, 0.5, src)).abs().max() < 1e-5


def test_whiten_latent_is_exact():
    for layout in AE_LAYOUTS:
        in_layout(layout, check_whitening)


def test_patched_layout_round_trip():
    """an f8c4 AE: 16x16x4 conv latent folded 2x2 into 8x8x16; its file says its layout"""
    def check():
        torch.manual_seed(0)
        ae = AutoEncoder()
        x = torch.rand(2, 3, 128, 128) * 2 - 1
        with torch.no_grad():
            z = ae.encode(x)
            assert z.shape == (2, 16, 8, 8)
            with tempfile.TemporaryDirectory() as d:
                save_safetensors(SpoolTiny(), f"{d}/m.safetensors", f"{d}/a.safetensors", ae=ae)
                set_ae_layout(AE_LAYOUTS["f16c16"])  # loading must restore the file's layout
                _, ae2 = load_safetensors(None, f"{d}/a.safetensors")
            assert ae_layout_of(ae2.state_dict()) == AE_LAYOUTS["f8c4"] and CFG.ae_patch == 2
            assert (ae2.decode(z) - ae.decode(z)).abs().max() < 2e-2  # f16 file
    in_layout("f8c4", check)


def check_whitening():
    """whitening re-expresses the AE and the generator: same pictures, v maps by P, second moment = I"""
    torch.manual_seed(0)
    ae, m = AutoEncoder(), SpoolTiny()
    _randomize(m, seed=1)
    with torch.no_grad():
        last = ae.enc.proj if ae.enc.proj is not None else ae.enc.conv_out
        last.weight.mul_(torch.linspace(0.1, 3.0, CFG.latent_channels)[:, None, None, None])  # skewed
        ae.latent_scale.fill_(0.7)
        x = torch.rand(24, 3, 128, 128) * 2 - 1
        z = ae.encode(x)
        ae_w, m_w = AutoEncoder(), SpoolTiny()
        ae_w.load_state_dict(ae.state_dict()); m_w.load_state_dict(m.state_dict())
        P, _ = whiten_latent(ae_w, z, [m_w])
        zw = ae_w.encode(x)
        close = lambda a, b: (a - b).abs().max() <= 1e-4 * b.abs().max()  # f32, P may be ill-conditioned here
        assert close(zw, torch.einsum("ij,njhw->nihw", P, z))
        f = zw.permute(0, 2, 3, 1).reshape(-1, CFG.latent_channels)
        assert torch.allclose(f.T @ f / f.shape[0], torch.eye(CFG.latent_channels), atol=1e-3)
        assert close(ae_w.decode(zw, clamp=False), ae.decode(z, clamp=False))
        tok = latent_to_tokens(z).reshape(12, 2, 64, -1)
        xt, t = torch.randn_like(tok), torch.rand(12, 2)
        ctx, cb = torch.randn(12, 5, CFG.d_model), torch.zeros(12, 5)
        v = m.forward_train(xt, t, tok[:, :1], ctx, cb)
        vw = m_w.forward_train(xt @ P.T, t, tok[:, :1] @ P.T, ctx, cb)
        assert close(vw, v @ P.T)
        # with a floor, directions below floor x the mean eigenvalue are not blown up to 1: still exact
        ae_f = AutoEncoder(); ae_f.load_state_dict(ae.state_dict())
        whiten_latent(ae_f, z, [], floor=0.5)
        zf = ae_f.encode(x)
        assert close(ae_f.decode(zf, clamp=False), ae.decode(z, clamp=False))
        f = zf.permute(0, 2, 3, 1).reshape(-1, CFG.latent_channels)
        ev = torch.linalg.eigvalsh(f.T @ f / f.shape[0])
        assert ev.max() < 1 + 1e-3 and ev.min() < 0.9 and (ev > 1 - 1e-3).sum() >= 1, ev


def test_grown_latent_keeps_the_old_one():
    """--ae-grow: the grown AE's leading channels are the old latent and it decodes what the old one did; the
    widened generator gives the old velocity on them and zero on the new ones; whitening only the new channels
    leaves the old ones (and the pictures) as they were; the grown files load with their width"""
    def check():
        torch.manual_seed(0)
        old, m = AutoEncoder(), SpoolTiny()
        _randomize(m, seed=4)
        with torch.no_grad():
            old.latent_scale.fill_(0.7)
            x = torch.rand(6, 3, 128, 128) * 2 - 1
            z_old = old.encode(x)
            ae = grow_latent(old, 2)
            assert CFG.latent_channels == 24
            z = ae.encode(x)
            assert z.shape == (6, 24, 8, 8) and torch.equal(z[:, :16], z_old) and z[:, 16:].abs().max() > 0
            assert torch.allclose(ae.decode(z, clamp=False), old.decode(z_old, clamp=False), atol=1e-6)
            wide = SpoolTiny()
            wide.load_state_dict(widen_generator(m.state_dict(), 24))
            tok, tok_old = latent_to_tokens(z).reshape(3, 2, 64, 24), latent_to_tokens(z_old).reshape(3, 2, 64, 16)
            xt, t = torch.randn(3, 2, 64, 24), torch.rand(3, 2)
            ctx, cb = torch.randn(3, 5, CFG.d_model), torch.zeros(3, 5)
            v = wide.forward_train(xt, t, tok[:, :1], ctx, cb)
            assert torch.allclose(v[..., :16], m.forward_train(xt[..., :16], t, tok_old[:, :1], ctx, cb), atol=1e-5)
            assert torch.equal(v[..., 16:], torch.zeros_like(v[..., 16:]))
            whiten_latent(ae, z, [wide], keep=16)
            zw = ae.encode(x)
            assert torch.allclose(zw[:, :16], z_old, atol=1e-5)
            f = zw[:, 16:].permute(0, 2, 3, 1).reshape(-1, 8)
            assert torch.allclose(f.T @ f / f.shape[0], torch.eye(8), atol=1e-3)
            assert torch.allclose(ae.decode(zw, clamp=False), old.decode(z_old, clamp=False), atol=1e-5)
            with tempfile.TemporaryDirectory() as d:
                save_safetensors(wide, f"{d}/m.safetensors", f"{d}/a.safetensors", ae=ae)
                set_ae_layout(AE_LAYOUTS["f8c4"])  # loading must restore the files' width
                m2, ae2 = load_safetensors(f"{d}/m.safetensors", f"{d}/a.safetensors")
            assert CFG.latent_channels == 24 and m2.decoder.out_proj.out_features == 24
            assert (ae2.encode(x)[:, :16] - z_old).abs().max() < 2e-2  # f16 files
    in_layout("f8c4", check)


def test_grown_decoder_starts_as_the_shallow_one():
    torch.manual_seed(0)
    m = SpoolTiny()
    _randomize(m, seed=2)
    n = CFG.decoder_blocks
    try:
        CFG.decoder_blocks = n + 2
        deep = SpoolTiny()
        _randomize(deep, seed=3)  # whatever the new blocks held, growing must make them the identity
        assert grow_decoder(deep, m.state_dict()) == n
    finally:
        CFG.decoder_blocks = n
    x, t = torch.randn(2, 3, 64, CFG.latent_channels), torch.rand(2, 3)
    lat, ctx, cb = torch.randn(2, 2, 64, CFG.latent_channels), torch.randn(2, 7, CFG.d_model), torch.zeros(2, 7)
    with torch.no_grad():
        assert torch.equal(deep.forward_train(x, t, lat, ctx, cb), m.forward_train(x, t, lat, ctx, cb))
    bad = {k: v for k, v in m.state_dict().items() if k != "encoder.pos"}
    try:
        grow_decoder(deep, bad)
        raise AssertionError("a missing non-decoder key must be refused")
    except ValueError:
        pass


if __name__ == "__main__":
    test_rules_window()
    test_parallel_equals_incremental()
    test_decoder_and_train_forward()
    test_autoencoder_shapes_and_export()
    test_grown_latent_keeps_the_old_one()
    test_nonseparable_is_causal_and_guidance_one_is_plain()
    test_guidance_in_a_limited_interval()
    test_whiten_latent_is_exact()
    test_patched_layout_round_trip()
    test_grown_decoder_starts_as_the_shallow_one()
    print("ok")
