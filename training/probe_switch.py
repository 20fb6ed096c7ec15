"""Diagnosis (CPU): why is a class switch never followed? On ground-truth class-switch clips of the training data
(object 0 changes class in place at frame c; the new sprite crossfades in over frames c..c+3), the model rolls
the clip out as the app does (its sampler, guidance, the caption switching at c), but with the ground truth as a
teacher prefix up to frame c + k for several k:

- k = 0: the model must start the crossfade itself (what the eval's switch part measures);
- k = 2 / 4: the crossfade is 40% / 80% done in the history it is handed;
- k = 5: the new class is whole in the history.

For each k, the evaluation judge reads frames c+6 .. c+8 of the rollout: the share that shows the new class, and
the share that shows the old one. If k = 4 still ends on the old class, the model cannot keep a new class in
place at all (it draws the old one back from the older history); if it follows from k = 2 on, it only never
starts.

    python3 training/probe_switch.py WEIGHTS_DIR [--n 48] [--k 0 2 4 5]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval import cnn, probe_kit  # noqa: E402


def class_switch_clips(world, n, T, seed):
    """n training clips whose one switch changes object 0's class and nothing else"""
    out, s = [], seed
    while len(out) < n:
        b = world.sample(64, T=T, split="train", seed=s, p_switch=1.0)
        lab, c = b.labels, b.labels["switch_frame"]
        for i in range(64):
            ci = int(c[i])
            old, new = int(lab["obj_class"][i, 0, 0]), int(lab["obj_class"][i, T - 1, 0])
            same = bool(lab["bg_c1"][i, 0] == lab["bg_c1"][i, T - 1]) \
                and bool(lab["obj_colour"][i, 0, 0] == lab["obj_colour"][i, T - 1, 0])
            if 0 <= ci <= T - 9 and old >= 0 and new >= 0 and old != new and same and lab["obj_class"][i, 0, 1] < 0:
                out.append((b.video[i], b.captions[i], b.caption_idx[i], ci, old, new))
        s += 1
    return out[:n]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("--n", type=int, default=48)
    p.add_argument("--k", type=int, nargs="+", default=[0, 2, 4, 5])
    p.add_argument("--T", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    world, judge, gen = probe_kit(a.weights, seed=a.seed)
    M, model = gen.M, gen.model
    clips = class_switch_clips(world, a.n, a.T, 1000 + a.seed)
    unc = gen.condition([""])
    with torch.no_grad():  # per clip, whatever k: its captions' conditioning and its ground-truth latents
        prep = [(gen.condition(caps), M.latent_to_tokens(gen.ae.encode(video)).reshape(1, a.T, 64, -1))
                for video, caps, *_ in clips]
    print(f"{len(clips)} class-switch clips, guidance {gen.g}")
    for k in a.k:
        new_share, old_share = [], []
        for j, ((_, _, cidx, c, old, new), ((ctx, bias), lat)) in enumerate(zip(clips, prep)):
            with torch.no_grad():
                per = lambda f: (ctx[cidx[f]][None], bias[cidx[f]][None])  # noqa: E731
                out = M.rollout(model, per, None, c + 9, gen.K, seed=a.seed + j, first_latents=lat[:, :c + k],
                                uncond=unc, guidance=gen.g)
                frames = torch.cat([gen.ae.decode(M.tokens_to_latent(out[:, t])) for t in range(c + 6, c + 9)])
            cls, _ = cnn(judge, frames)
            new_share.append((cls == new).float().mean().item())
            old_share.append((cls == old).float().mean().item())
        print(f"teacher prefix to c+{k}: frames c+6..c+8 show the new class {sum(new_share) / len(clips):.3f}, "
              f"the old class {sum(old_share) / len(clips):.3f}", flush=True)


if __name__ == "__main__":
    main()
