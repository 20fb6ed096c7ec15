"""Writes the umT5 encoder parity fixtures: tests/fixtures/wan_umt5/{encoder,cases}.safetensors.

The Rust port of the umT5-XXL text encoder that Self-Forcing (SF, guandeh17/Self-Forcing @33593df)
runs (wan/modules/t5.py, called by utils/wan_wrapper.py `WanTextEncoder`) is tested against the
*reference* PyTorch code, imported from an SF checkout (`--sf`) and run in f32 on the CPU, as
WanTextEncoder runs it, with a tiny random config. Nothing of the reference is copied here: the
script only imports it, stubs what blocks a CPU import, and calls it.

Tiny config: `umt5_xxl(encoder_only=True)` with vocab 640, dim 32, dim_attn 32 = 4 heads x 8,
ffn 64, 2 layers, 32 buckets, shared_pos False (each layer its own relative position embedding, as
the real model), dropout 0; max_dist is the reference's fixed 128.

encoder.safetensors: the encoder's state_dict (the reference's own key names, those of Wan's
models_t5_umt5-xxl-enc-bf16.pth) in f16. Weights are random, rounded to f16 first so the reference
ran with exactly the stored values: norm weights 1 + 0.1 N, token embedding N(0, 1), linear layers
N(0, 1/fan_in) (q at half that scale: T5 does not scale scores by 1/sqrt(d)), position embeddings
N(0, 1), so that activations are O(1) and the relative bias matters (checked below: zeroing the
position embeddings changes the output by more than 10%).

cases.safetensors (f32):
  buckets [1023]: the reference's bidirectional bucket of relative position r = key - query for
    r = -511..511 (as computed by `_relative_position_bucket` on the 512 x 512 grid the forward
    builds for a 512-token run; checked to equal the same call on the 1-D range).
  per case c in {a (7 ids), b (300 ids: reaches the log buckets and the distance cap)}:
    {c}.ids [n] (the last id is 1, the tokenizer's EOS), {c}.out [n, 32] (mask all ones),
    {c}.padded.out [L, 32]: ids zero-padded (pad id 0) to L = 16 (a) or 512 (b) with the matching
    mask, rows from n on set to 0 as WanTextEncoder does.

Run:  python3 training/make_umt5_fixtures.py --sf /tmp/sf
      (checkout: git -C <SF mirror> archive HEAD | tar -x -C /tmp/sf)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sf_import import bare_packages, cuda_device_zero, stub_tokenizers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

# vocab 640: the tiny tokenizer fixture's 603 ids fit, so tests/wan_pipeline.rs can chain them
CFG = dict(vocab_size=640, dim=32, dim_attn=32, dim_ffn=64, num_heads=4, encoder_layers=2,
           decoder_layers=2, num_buckets=32, shared_pos=False, dropout=0.0)
CASES = {"a": dict(n=7, padded=16), "b": dict(n=300, padded=512)}
TABLE_LEN = 512  # the bucket table covers r in [-(TABLE_LEN - 1), TABLE_LEN - 1]
EOS, PAD = 1, 0
SEED_WEIGHTS, SEED_IDS = 0, 1


def import_t5(sf):
    """Imports SF's wan/modules/t5.py on a CPU-only torch."""
    bare_packages(sf)
    stub_tokenizers()  # t5.py imports it; the encoder does not use it
    with cuda_device_zero():
        import wan.modules.t5 as t5
    return t5


def random_weights(model):
    """f16-exact random values for every parameter, by name."""
    g = torch.Generator().manual_seed(SEED_WEIGHTS)
    state = {}
    for name, p in model.named_parameters():
        n = torch.randn(p.shape, generator=g)
        if name.endswith(("norm1.weight", "norm2.weight")) or name == "norm.weight":
            w = 1.0 + 0.1 * n
        elif name == "token_embedding.weight" or name.endswith("pos_embedding.embedding.weight"):
            w = n
        elif name.endswith(".weight") and p.dim() == 2:           # nn.Linear: N(0, 1/fan_in)
            w = n / p.shape[1] ** 0.5
            if name.endswith("attn.q.weight"):
                w = 0.5 * w
        else:
            raise ValueError(f"no init rule for {name} {tuple(p.shape)}")
        state[name] = w.half().float()
    return state


def run(model, ids, length):
    """As WanTextEncoder.forward does for one prompt: ids + mask padded to `length`, rows beyond the
    real length set to 0."""
    n = len(ids)
    padded = torch.full((1, length), PAD, dtype=torch.long)
    padded[0, :n] = ids
    mask = torch.zeros((1, length), dtype=torch.long)
    mask[0, :n] = 1
    seq_lens = mask.gt(0).sum(dim=1).long()
    with torch.no_grad():
        context = model(padded, mask)
    for u, v in zip(context, seq_lens):
        u[v:] = 0.0
    return context[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", required=True, help="an extracted Self-Forcing checkout")
    ap.add_argument("--out", default=os.path.normpath(
        os.path.join(HERE, "..", "tests", "fixtures", "wan_umt5")))
    args = ap.parse_args()
    torch.set_num_threads(1)  # one thread: reductions in a fixed order, byte-identical re-runs
    t5 = import_t5(os.path.abspath(args.sf))
    from safetensors.torch import save_file

    # The real constructor with the tiny numbers, f32 on the CPU as WanTextEncoder builds it.
    model = t5.umt5_xxl(encoder_only=True, return_tokenizer=False, dtype=torch.float32,
                        device=torch.device("cpu"), **CFG).eval().requires_grad_(False)
    state = random_weights(model)
    model.load_state_dict(state)

    out = {}
    # --- bucket table ---------------------------------------------------------------------------
    pe = model.blocks[0].pos_embedding
    assert pe.bidirectional and pe.max_dist == 128 and pe.num_buckets == CFG["num_buckets"]
    # The forward's own grid (rel_pos = key - query), read off its first row and column.
    grid = torch.arange(TABLE_LEN).unsqueeze(0) - torch.arange(TABLE_LEN).unsqueeze(1)
    gb = pe._relative_position_bucket(grid)
    table = torch.cat((gb[:, 0].flip(0)[:-1], gb[0, :]))  # r = -(L-1) .. L-1
    r = torch.arange(-(TABLE_LEN - 1), TABLE_LEN)
    assert torch.equal(gb, table[grid + TABLE_LEN - 1]), "bucket depends on more than r"
    assert torch.equal(pe._relative_position_bucket(r), table), "1-D and 2-D bucket tables differ"
    out["buckets"] = table.float()

    # --- cases ----------------------------------------------------------------------------------
    g = torch.Generator().manual_seed(SEED_IDS)
    for c, spec in CASES.items():
        n, length = spec["n"], spec["padded"]
        ids = torch.randint(2, CFG["vocab_size"], (n,), generator=g)
        ids[-1] = EOS
        plain = run(model, ids, n)
        padded = run(model, ids, length)
        out[f"{c}.ids"] = ids.float()
        out[f"{c}.out"] = plain
        out[f"{c}.padded.out"] = padded
        rms = plain.pow(2).mean().sqrt().item()
        pad_diff = (padded[:n] - plain).abs().max().item()
        assert pad_diff <= 1e-5 * rms, f"{c}: padded run's real rows differ by {pad_diff}"
        print(f"{c}: n {n}, padded {length}, rms {rms:.3f}, padded-vs-plain max diff {pad_diff:.2e}")

    # The relative bias must matter, or the fixture would not catch a wrong bucket.
    zeroed = {k: (torch.zeros_like(v) if k.endswith("pos_embedding.embedding.weight") else v)
              for k, v in state.items()}
    model.load_state_dict(zeroed)
    for c in CASES:
        ids = out[f"{c}.ids"].long()
        ref = out[f"{c}.out"]
        change = (run(model, ids, len(ids)) - ref).pow(2).mean().sqrt().item() / ref.pow(2).mean().sqrt().item()
        print(f"{c}: zeroing the position embeddings changes the output by {100 * change:.0f}% (rms)")
        assert change > 0.1, f"{c}: the relative bias hardly matters ({change:.3f})"

    os.makedirs(args.out, exist_ok=True)
    # one key: safetensors' metadata map is unordered, so several would make re-runs differ in bytes
    meta = {"info": json.dumps(dict(source="training/make_umt5_fixtures.py",
                                    reference="guandeh17/Self-Forcing@33593df", config=CFG), sort_keys=True)}
    save_file({k: v.half().contiguous() for k, v in state.items()},
              os.path.join(args.out, "encoder.safetensors"), metadata=meta)
    save_file({k: v.contiguous() for k, v in out.items()},
              os.path.join(args.out, "cases.safetensors"), metadata=meta)
    # the same weights as the release ships them (models_t5_umt5-xxl-enc-bf16.pth): a plain
    # state dict saved by torch.save, zip format
    torch.save({k: v.half().contiguous() for k, v in state.items()}, os.path.join(args.out, "encoder.pth"))
    for f in ("encoder.safetensors", "cases.safetensors", "encoder.pth"):
        print(f, os.path.getsize(os.path.join(args.out, f)), "bytes")


if __name__ == "__main__":
    main()
