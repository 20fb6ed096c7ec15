"""Writes the TAEHV (taew2_1) parity fixtures: tests/fixtures/wan_taehv/{taew2_1_tiny,decode}.safetensors.

The Rust decoder (src/model/wan/taehv.rs) is tested against the reference, madebyollin/taehv's
`taehv.py` (imported from `--taehv`, a checkout; nothing of it is copied here), run in f32 on the
CPU. Wan 2.1's tiny autoencoder `taew2_1` is the reference's default configuration (16 latent
channels, patch 1, time upscale (False, True, True), space upscale x2 x3), so the script builds
`TAEHV(checkpoint_path=None)` and then rebuilds its own decoder Sequential layer by layer at small
widths (`shrink`): every Conv2d, MemBlock and TGrow is re-made with the reference's classes at the
width of its stage, everything else is kept. The result has the reference's layer types, order,
strides and key names; only the widths differ, and the Rust side reads widths from the shapes.

Widths [12, 8, 6, 4] instead of [256, 128, 64, 64]: all different, so a width taken from the wrong
tensor fails. Weights are random with scales that keep activations O(1), rounded to f16 first (the
reference runs on exactly the stored values) and stored f16 under the reference's keys
(`decoder.{index}.…`; no encoder). `decoder.7.conv.weight` (the first TGrow, stride 1: n0 rows) is
stored with 2·n0 rows, as a checkpoint trained with time upscaling at that layer has them; the
reference's `patch_tgrow_layers` (called here, as TAEHV.__init__ calls it on a checkpoint) keeps
the LAST n0 rows whenever a stored TGrow has more rows than the built layer.

Input: 4 latents [16, 4, 6], 1.5·N(0, 1) rounded to f16 (large enough that Clamp's tanh bends).
Decoded the streaming way (`StreamingTAEHV.decode(latent)` once per latent, then `decode()` until
it returns None): 1 + 4 + 4 + 4 = 13 frames [3, 32, 48] in [0, 1]. The whole-sequence decode
(`decode_video`, parallel and sequential) is checked here to agree with the stream (printed; asserted
≤ 1e-5); to stay under 400 KB only its last latent's 4 frames are stored.

decode.safetensors (f32):
  latents [4, 16, 4, 6]; stream.frames [13, 3, 32, 48] (every emitted frame, in order);
  stream.counts [4] (frames emitted per latent: 1, 4, 4, 4);
  whole.last [4, 3, 32, 48] (decode_video(parallel=True) frames 9..12, the last latent's);
  whole.max_diff [1] (max |decode_video − stream| over all 13 frames).

Run:  python3 training/make_taehv_fixtures.py --taehv /tmp/taehv
      (checkout: git -C <taehv mirror> archive HEAD | tar -x -C /tmp/taehv; tqdm is stubbed if absent)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import types

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))

WIDTHS = [12, 8, 6, 4]        # the real taew2_1: [256, 128, 64, 64]
LATENTS, LAT_C, LAT_H, LAT_W = 4, 16, 4, 6
EXTRA_ROWS_LAYER = 7          # decoder.7 = TGrow(n0, 1)
SEED_WEIGHTS, SEED_LATENTS = 0, 1


def import_reference(path):
    sys.dont_write_bytecode = True  # leave the checkout as extracted
    sys.path.insert(0, path)
    try:
        import tqdm.auto  # noqa: F401
    except ImportError:
        # taehv.py only wraps iterables in tqdm (and calls update/close on one): a no-op stand-in.
        class Tqdm:
            def __init__(self, iterable=None, **_):
                self.iterable = iterable

            def __iter__(self):
                return iter(self.iterable)

            def update(self, n=1):
                pass

            def close(self):
                pass
        pkg, auto = types.ModuleType("tqdm"), types.ModuleType("tqdm.auto")
        auto.tqdm = Tqdm
        pkg.auto = auto
        sys.modules["tqdm"], sys.modules["tqdm.auto"] = pkg, auto
    import taehv
    return taehv


def shrink(th, decoder, widths):
    """The reference's decoder Sequential with every layer of stage k (k = TGrow layers before it)
    re-made at width widths[k]; the latent input (16) and the RGB output (3) keep theirs."""
    layers, stage, width = [], 0, None
    for layer in decoder:
        if isinstance(layer, th.MemBlock):
            assert layer.conv[0].in_channels == 2 * layer.conv[-1].out_channels  # n_in == n_out
            layers.append(th.MemBlock(widths[stage], widths[stage]))
        elif isinstance(layer, th.TGrow):
            layers.append(th.TGrow(widths[stage], layer.stride))
            stage += 1
        elif isinstance(layer, nn.Conv2d):
            c_in = layer.in_channels if width is None else width
            c_out = layer.out_channels if layer.out_channels == 3 else widths[stage]
            layers.append(nn.Conv2d(c_in, c_out, layer.kernel_size, stride=layer.stride,
                                    padding=layer.padding, bias=layer.bias is not None))
            width = c_out
        else:
            layers.append(layer)  # Clamp, ReLU, Upsample: no weights
    small = nn.Sequential(*layers)
    # same layer types, order and strides as the reference's own decoder
    assert [type(a) for a in small] == [type(b) for b in decoder]
    assert [a.stride for a in small if isinstance(a, th.TGrow)] == \
           [b.stride for b in decoder if isinstance(b, th.TGrow)]
    return small


def random_decoder_weights(th, model, extra_rows_layer):
    """f16-exact random weights for every decoder parameter; He scale before a ReLU, smaller on a
    MemBlock's last conv (it is added to the block's input)."""
    g = torch.Generator().manual_seed(SEED_WEIGHTS)
    state = {}
    for i, layer in enumerate(model.decoder):
        for name, p in layer.named_parameters():
            key = f"decoder.{i}.{name}"
            shape = list(p.shape)
            if isinstance(layer, th.TGrow) and i == extra_rows_layer:
                shape[0] *= 2  # as stored by a checkpoint trained with time upscale here
            n = torch.randn(shape, generator=g)
            fan_in = shape[1] * shape[2] * shape[3] if len(shape) == 4 else None
            if name.endswith("bias"):
                w = 0.1 * n
                if shape[0] == 3:      # the RGB output: centred in [0, 1]
                    w = 0.5 + w
            elif isinstance(layer, th.MemBlock) and name == "conv.4.weight":
                w = 0.5 * n / fan_in ** 0.5
            elif isinstance(layer, th.TGrow):
                w = n / fan_in ** 0.5
            elif shape[0] == 3:        # final conv: output spread ~0.25 around 0.5, some clamped
                w = 0.12 * n / fan_in ** 0.5
            else:
                w = (2.0 / fan_in) ** 0.5 * n
            state[key] = w.half().float()
    return state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--taehv", required=True, help="an extracted madebyollin/taehv checkout")
    ap.add_argument("--out", default=os.path.normpath(
        os.path.join(HERE, "..", "tests", "fixtures", "wan_taehv")))
    args = ap.parse_args()
    torch.set_num_threads(1)  # reductions in a fixed order: byte-identical re-runs
    th = import_reference(os.path.abspath(args.taehv))
    from safetensors.torch import save_file

    model = th.TAEHV(checkpoint_path=None)  # the defaults are taew2_1's: latent 16, patch 1
    assert model.latent_channels == 16 and model.patch_size == 1
    assert model.t_upscale == 4 and model.frames_to_trim == 3
    model.decoder = shrink(th, model.decoder, WIDTHS)
    model.eval()

    stored = random_decoder_weights(th, model, EXTRA_ROWS_LAYER)
    # Load the way TAEHV.__init__ loads a checkpoint: patch_tgrow_layers, then a strict load.
    sd = model.state_dict()
    sd.update({k: v.clone() for k, v in stored.items()})
    model.load_state_dict(model.patch_tgrow_layers(sd))
    key = f"decoder.{EXTRA_ROWS_LAYER}.conv.weight"
    n0 = WIDTHS[0]
    assert stored[key].shape[0] == 2 * n0 and model.state_dict()[key].shape[0] == n0
    assert torch.equal(model.state_dict()[key], stored[key][-n0:])  # the last rows are kept
    assert not torch.equal(stored[key][:n0], stored[key][-n0:])

    g = torch.Generator().manual_seed(SEED_LATENTS)
    latents = (1.5 * torch.randn(LATENTS, LAT_C, LAT_H, LAT_W, generator=g)).half().float()

    # activation scales, for the record (hooks on the whole-sequence pass)
    stats = {}

    def record(i):
        def hook(module, inputs, output):  # returns None: the output is left as it is
            stats.setdefault(i, output.detach().pow(2).mean().sqrt().item())
        return hook
    hooks = [layer.register_forward_hook(record(i)) for i, layer in enumerate(model.decoder)]
    with torch.no_grad():
        whole = model.decode_video(latents[None], parallel=True, show_progress_bar=False)[0]
        whole_seq = model.decode_video(latents[None], parallel=False, show_progress_bar=False)[0]
    for h in hooks:
        h.remove()
    print("rms after each decoder layer:", " ".join(f"{i}:{v:.2f}" for i, v in sorted(stats.items())))

    # streaming, one latent per call, as StreamingTAEHV's docstring (decode-only usage) drives it
    stream = th.StreamingTAEHV(model)
    frames, counts = [], []
    with torch.no_grad():
        for t in range(LATENTS):
            frame = stream.decode(latents[t][None, None])
            n = 0
            while frame is not None:
                frames.append(frame[0, 0])
                n += 1
                frame = stream.decode()
            counts.append(n)
    frames = torch.stack(frames)
    assert counts == [1, 4, 4, 4], counts
    assert frames.shape == (13, 3, 8 * LAT_H, 8 * LAT_W) and whole.shape == frames.shape
    max_diff = (whole - frames).abs().max().item()
    print(f"decode_video(parallel) vs stream: max |diff| {max_diff:.3e}; "
          f"sequential vs stream: {(whole_seq - frames).abs().max().item():.3e}")
    assert max_diff <= 1e-5 and (whole_seq - frames).abs().max().item() <= 1e-5

    # the output must use the clamp a little, and depend on the past
    pre = frames[(frames > 0) & (frames < 1)]
    print(f"frames: mean {frames.mean():.3f} std {frames.std():.3f}, "
          f"clamped {1 - pre.numel() / frames.numel():.1%}")
    with torch.no_grad():  # latent 1 after a zero latent instead of latent 0
        other = th.StreamingTAEHV(model)
        other.decode(torch.zeros_like(latents[0])[None, None])
        first = other.decode(latents[1][None, None])
    print(f"latent 1's first frame after another latent 0 differs by max "
          f"{(first[0, 0] - frames[1]).abs().max():.3f}")

    os.makedirs(args.out, exist_ok=True)
    # one key: safetensors' metadata map is unordered, so several would make re-runs differ in bytes
    meta = {"info": json.dumps(dict(reference="madebyollin/taehv taehv.py", widths=list(WIDTHS)), sort_keys=True)}
    save_file({k: v.half().contiguous() for k, v in stored.items()},
              os.path.join(args.out, "taew2_1_tiny.safetensors"), metadata=meta)
    out = {
        "latents": latents,
        "stream.frames": frames,
        "stream.counts": torch.tensor(counts, dtype=torch.float32),
        "whole.last": whole[-4:],
        "whole.max_diff": torch.tensor([max_diff]),
    }
    save_file({k: v.float().contiguous() for k, v in out.items()},
              os.path.join(args.out, "decode.safetensors"), metadata=meta)
    total = 0
    for f in ("taew2_1_tiny.safetensors", "decode.safetensors"):
        size = os.path.getsize(os.path.join(args.out, f))
        total += size
        print(f"wrote {os.path.join(args.out, f)}: {size} bytes")
    assert total <= 400_000, total


if __name__ == "__main__":
    main()
