"""Self-Forcing's own causal Wan2.1-1.3B DiT at the real size with random weights, timed chunk by
chunk as examples/wan_bench.rs times Spool's port: the PyTorch side of the speed ratio (BENCHMARKS.md).

On the device machine (its torch, CUDA), with an extracted SF checkout carried as `.sf`:
    python3 training/wan_reference_bench.py --sf .sf --chunks 10 [--policy sf|longlive]
Each chunk: 4 denoising forwards (t = 1000, 937.5, 833.33, 625) and the t = 0 pass that writes the
cache, bf16 throughout as SF's inference runs (`pipeline.to(dtype=torch.bfloat16)`), SF's own attention
(flash-attn if installed, else SDPA); the cross-attention's flash call is SDPA when flash-attn is absent.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_wan_fixtures import CFG as TINY, import_reference  # noqa: E402

REAL = dict(model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=16, dim=1536, ffn_dim=8960,
            freq_dim=256, text_dim=4096, out_dim=16, num_heads=12, num_layers=30, qk_norm=True,
            cross_attn_norm=True, eps=1e-6)
CHUNK = 3
STEPS = [1000.0, 937.5, 833.3333129882812, 625.0]
POLICIES = {"sf": (-1, 0, 21), "longlive": (12, 3, 12)}  # local_attn_size, sink_size, cache frames


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", required=True)
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--policy", choices=POLICIES, default="sf")
    ap.add_argument("--tiny", action="store_true", help="the parity fixtures' tiny config on the CPU (a smoke run)")
    a = ap.parse_args()
    cm, _, _ = import_reference(os.path.abspath(a.sf), f32_attention=a.tiny)
    local, sink, frames = POLICIES[a.policy]
    cfg, (lat_h, lat_w) = (TINY, (8, 12)) if a.tiny else (REAL, (60, 104))
    frame_seqlen = (lat_h // 2) * (lat_w // 2)
    heads, head_dim = cfg["num_heads"], cfg["dim"] // cfg["num_heads"]
    dev, dt = (torch.device("cpu"), torch.float32) if a.tiny else (torch.device("cuda"), torch.bfloat16)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    t0 = time.time()
    model = cm.CausalWanModel(**cfg, local_attn_size=local, sink_size=sink).to(dev, dt).eval()
    model.num_frame_per_block = CHUNK
    cap = frames * frame_seqlen
    for blk in model.blocks:
        blk.self_attn.max_attention_size = cap
    kv = [dict(k=torch.zeros([1, cap, heads, head_dim], device=dev, dtype=dt),
               v=torch.zeros([1, cap, heads, head_dim], device=dev, dtype=dt),
               global_end_index=torch.tensor([0], dtype=torch.long, device=dev),
               local_end_index=torch.tensor([0], dtype=torch.long, device=dev)) for _ in model.blocks]
    ca = [dict(k=None, v=None, is_init=False) for _ in model.blocks]
    context = [torch.randn(cfg["text_len"], cfg["text_dim"], device=dev, dtype=dt)]
    sync()
    print(f"SF CausalWanModel, random weights, {dt}, {dev}, policy {a.policy}, built in {time.time() - t0:.1f} s")
    print("chunk | 4 steps (ms) | commit (ms) | chunk (ms) | video fps")
    with torch.no_grad():
        for c in range(a.chunks):
            if a.policy == "sf" and (c + 1) * CHUNK > frames:
                print(f"SF's global cache holds {frames} latent frames: stopping at chunk {c}")
                break
            start = c * CHUNK * frame_seqlen
            sync()
            t0 = time.time()
            for t in STEPS:
                x = [torch.randn(16, CHUNK, lat_h, lat_w, device=dev, dtype=dt)]
                ts = torch.full([1, CHUNK], t, device=dev)
                model(x, ts, context, cap, kv_cache=kv, crossattn_cache=ca, current_start=start)
            sync()
            steps = time.time() - t0
            model(x, torch.zeros([1, CHUNK], device=dev), context, cap, kv_cache=kv, crossattn_cache=ca,
                  current_start=start)
            sync()
            total = time.time() - t0
            n = 4 * CHUNK - 3 if c == 0 else 4 * CHUNK
            print(f"{c:5} | {steps * 1e3:12.1f} | {(total - steps) * 1e3:11.1f} | {total * 1e3:10.1f} | {n / total:9.1f}")
    if dev.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
