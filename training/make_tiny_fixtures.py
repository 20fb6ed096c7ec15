"""Writes the parity fixtures the candle implementation is tested against (tests/tiny_parity.rs).

The reference is the PyTorch model of the contract, `training/spool_tiny/model.py` (imported from
`--model-dir`, by default this script's own directory; the fixtures in the repository were made from
the copy in the main checkout of 2026-11-25, whose sha256 is recorded in fixtures' metadata).

To keep the fixtures small (< 2 MB) the model is a reduced config of the same structure: width 64
(4 heads of 16), 2 encoder and 2 decoder blocks, and a narrower autoencoder; the cache rules (N_FULL,
N_SINK, WINDOW, ALiBi, pooling) are the SPEC's. Weights are random with realistic scales, stored in
f16, and the PyTorch side runs on those same f16-rounded weights in f32, so both sides compute with
identical numbers. Inputs are stored in f16 where they are f16-exact. Every input the Rust side needs (latents, text tokens, noise) is in the fixture,
so random generators never have to agree.

Output in tests/fixtures/tiny/: config.json, model.safetensors, ae.safetensors (the model directory
format the app loads) and fixtures.safetensors (inputs and expected outputs, f32); and in
tests/fixtures/tiny_ae_f8/ the same for an autoencoder of the 2×2-patched layout (AE_LAYOUTS "f8c4",
narrower): config.json, ae.safetensors, fixtures.safetensors.

Run:  python3 training/make_tiny_fixtures.py [--model-dir DIR_CONTAINING_spool_tiny] [--out DIR]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# The reduced config. Everything not listed keeps the SPEC value.
SMALL = dict(d_model=64, heads=4, head_dim=16, encoder_blocks=2, decoder_blocks=2)
AE_ENC = [8, 12, 16, 24, 32]
AE_DEC = [32, 24, 16, 8]
AE_F8 = dict(ae_enc_channels=(8, 12, 16, 24), ae_dec_channels=(24, 16, 12), ae_patch=2)
N_ELEMENTS = 16  # BOS + 15 frames: more than N_SINK + WINDOW, so eviction and pooling are exercised
STEPS = 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=HERE, help="directory that contains spool_tiny/model.py")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "tiny"))
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.model_dir))
    import spool_tiny.model as M  # noqa: E402
    from safetensors.torch import save_file  # noqa: E402

    model_py = os.path.join(os.path.abspath(args.model_dir), "spool_tiny", "model.py")
    with open(model_py, "rb") as f:
        model_sha = hashlib.sha256(f.read()).hexdigest()

    # The reference reads its numbers from the module-level CFG at construction and call time.
    for k, v in SMALL.items():
        setattr(M.CFG, k, v)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=gen) * std

    # ---------------------------------------------------------------- model with realistic random weights
    model = M.SpoolTiny().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(randn(*p.shape, std=0.02))
            elif p.dim() == 2 and name.endswith(".weight"):
                std = 1.0 / math.sqrt(p.shape[1])
                if ".ada" in name or "ada_out" in name:
                    std *= 0.5  # modulations of order 0.5, as after training
                p.copy_(randn(*p.shape, std=std))
            elif name.endswith(".weight"):  # LayerNorm
                p.copy_(1.0 + randn(*p.shape, std=0.1))
            else:  # pos, bos
                p.copy_(randn(*p.shape, std=0.5))
    def random_autoencoder(layout):
        M.set_ae_layout(layout)
        ae = M.AutoEncoder().eval()
        with torch.no_grad():
            for name, p in ae.named_parameters():
                if name.endswith(".bias"):
                    p.copy_(randn(*p.shape, std=0.02))
                else:
                    fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                    std = math.sqrt(2.0 / fan_in) * (0.5 if "conv_out" in name else 1.0)
                    p.copy_(randn(*p.shape, std=std))
            ae.latent_scale.fill_(0.8125)  # exact in f16
            for p in list(ae.parameters()) + list(ae.buffers()):
                p.copy_(p.half().float())
        return ae

    def autoencoder_fixtures(ae):
        x = randn(1, 3, 128, 128, std=0.5).clamp(-1, 1).half().float()
        z = randn(1, 16, 8, 8).half().float()
        with torch.no_grad():
            return {"ae_enc.x": x[0], "ae_enc.z": ae.encode(x)[0], "ae_dec.z": z[0], "ae_dec.x": ae.decode(z)[0]}

    ae = random_autoencoder(dict(ae_enc_channels=tuple(AE_ENC), ae_dec_channels=tuple(AE_DEC), ae_patch=1))

    # Round every weight to f16 and back: the file holds f16, both sides compute with these values.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())

    os.makedirs(args.out, exist_ok=True)
    extra = dict(fixture=dict(reference_sha256=model_sha, note="reduced config for parity tests"))
    M.save_safetensors(model, os.path.join(args.out, "model.safetensors"),
                       os.path.join(args.out, "ae.safetensors"), ae=ae,
                       config_path=os.path.join(args.out, "config.json"), extra_config=extra)

    fx = autoencoder_fixtures(ae)
    D = M.CFG.d_model
    with torch.no_grad():

        # ------------------------------------------------------------ conditionings
        def conditioning(n, pad, weighted):
            tok = randn(n, 384).half().float()
            bias = torch.zeros(n)
            if pad:
                bias[-pad:] = M.NEG
            for i in weighted:
                bias[i] = math.log(0.5)
            return tok, bias

        ta, ba = conditioning(7, 2, [1])
        tb, bb = conditioning(5, 0, [])
        fx["cond_a.tokens"], fx["cond_a.bias"] = ta, ba
        fx["cond_b.tokens"], fx["cond_b.bias"] = tb, bb
        ctx_a = model.text_proj(ta[None])
        ctx_b = model.text_proj(tb[None])
        fx["text.ctx_a"] = ctx_a[0]
        ba1, bb1 = ba[None], bb[None]

        # ------------------------------------------------------------ encoder steps with the cache
        lat = randn(N_ELEMENTS - 1, 64, 16).half().float()
        fx["enc.latents"] = lat
        switch = 10  # elements >= switch use conditioning b
        inc = M.IncrementalEncoder(model.encoder)
        hs = []
        for s in range(N_ELEMENTS):
            c, b = (ctx_a, ba1) if s < switch else (ctx_b, bb1)
            hs.append(inc.append(None if s == 0 else lat[None, s - 1], c, b)[0])
        fx["enc.h"] = torch.stack(hs)
        held = inc.cache_elements()
        fx["enc.cache_elements"] = torch.tensor(held, dtype=torch.float32)
        for bi, c in enumerate(inc.cache):
            for e in held:
                for key, t in c[e].items():
                    fx[f"enc.cache.{bi}.{e}.{key}"] = t[0]

        # ------------------------------------------------------------ LongLive re-cache under b of the
        # elements still held after element N-1: sinks, then the window the newest saw, at their
        # original positions (the step-by-step encoder with its element counter set per element).
        newest = N_ELEMENTS - 1
        first = max(M.CFG.n_sink, newest + 1 - M.CFG.window)
        rc = M.IncrementalEncoder(model.encoder)
        h = None
        for e in list(range(M.CFG.n_sink)) + list(range(first, newest + 1)):
            rc.s = e
            h = rc.append(None if e == 0 else lat[None, e - 1], ctx_b, bb1)
        fx["recache.h"] = h[0]

        # ------------------------------------------------------------ one decoder step
        x_t = randn(1, 64, 16)
        fx["dec.x_t"] = x_t[0]
        fx["dec.h"] = hs[5]
        for i, t in enumerate([1.0, 0.5]):
            tt = torch.full((1,), t)
            fx[f"dec.t{i}"] = tt
            fx[f"dec.v{i}"] = model.decoder(x_t, hs[5][None], tt, ctx_a, ba1)[0]
        fx["dec.temb_t1"] = model.decoder.t_embed(torch.full((1,), 0.5))[0]

        # ------------------------------------------------------------ 3-frame rollout, fixed noise;
        # frame 2 switches to conditioning b (its encoder element is encoded under b too).
        noise = randn(3, STEPS, 1, 64, 16)
        fx["roll.noise"] = noise[:, :, 0]
        inc = M.IncrementalEncoder(model.encoder)
        prev, outs = None, []
        for f in range(3):
            c, b = (ctx_a, ba1) if f < 2 else (ctx_b, bb1)
            h = inc.append(prev, c, b)
            x0 = M.sample_frame(model, h, c, b, STEPS, noise=[noise[f, k] for k in range(STEPS)])
            outs.append(x0[0])
            prev = x0
        fx["roll.latents"] = torch.stack(outs)

    meta = {"reference": "training/spool_tiny/model.py", "reference_sha256": model_sha,
            "steps": str(STEPS), "switch": "10", "tolerance": "max abs err <= 1e-4 * rms"}
    f16_inputs = {"ae_enc.x", "ae_dec.z", "cond_a.tokens", "cond_b.tokens", "enc.latents"}
    write_fixtures(fx, f16_inputs, args.out, meta, save_file)

    # ---------------------------------------------------------------- the 2×2-patched autoencoder layout
    # (its own generator, so the fixtures above do not depend on it)
    gen = torch.Generator().manual_seed(4321)
    ae8 = random_autoencoder(AE_F8)
    out8 = os.path.join(args.out, "..", "tiny_ae_f8")
    os.makedirs(out8, exist_ok=True)
    M.save_safetensors(None, os.path.join(out8, "model.safetensors"), os.path.join(out8, "ae.safetensors"),
                       ae=ae8, config_path=os.path.join(out8, "config.json"),
                       extra_config=dict(fixture=dict(reference_sha256=model_sha, note="f8c4 autoencoder only")))
    meta8 = {k: meta[k] for k in ("reference", "reference_sha256", "tolerance")}
    write_fixtures(autoencoder_fixtures(ae8), {"ae_enc.x", "ae_dec.z"}, out8, meta8, save_file)


def write_fixtures(fx, f16_inputs, out, meta, save_file):
    """Inputs that are f16-exact are stored as f16 (half the bytes, same values); expected outputs f32."""
    fx = {k: (v.half() if k in f16_inputs else v.float()).detach().contiguous() for k, v in fx.items()}
    save_file(fx, os.path.join(out, "fixtures.safetensors"), metadata=meta)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"wrote {len(fx)} fixture tensors to {out} ({total / 1e6:.2f} MB), reference sha256 {meta['reference_sha256'][:12]}")


if __name__ == "__main__":
    main()
