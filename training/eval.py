"""Judge spool-tiny rollouts against the procedural world's ground truth (CPU is fine).

    python3 training/eval.py --weights assets/spool-tiny --n 32 --T 24 --K 4 [--out .dev/eval]

Scenes judged: one tinted object (shape / letter / digit) on a solid background, with a linear motion or
still, so that a simple pixel judge is reliable:
  * bg      -- per frame, the palette colour nearest to the median pixel equals the caption's background;
  * present -- the foreground (pixels far from the background colour) covers >= 20 pixels;
  * colour  -- the palette colour nearest to the median foreground pixel (background colour excluded)
               equals the caption's object colour (frames with an object);
  * motion  -- the object is present in >= 8 of frames 0..11 and its foreground centroid moves >= 6 px the
               captioned way along each captioned axis and little along the other (still: < 6 px on both);
               `motion_wrong_label` is the same judge against the opposite direction (a chance reference);
  * single  -- the largest 8-connected foreground component holds >= 80% of the foreground (no fragments).
The same judge runs on the ground-truth clips of the same scenes ("gt" column) as a calibration.
Splits: "eval" = held-out (class, colour) pairs, half of them also worded with eval-only wordings
(data.py documents the split); "train" = training combinations and wordings.
A prompt-switch test changes only the background colour at frame T/2 and judges the 4 frames before the
switch (old colour) and the last 4 frames (new colour).
"""
import argparse
import json
import os
import random
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spool_tiny.data import BG_KINDS, COLOURS, MOTIONS, World, save_strip  # noqa: E402
from spool_tiny.model import load_safetensors, rollout, tokens_to_latent  # noqa: E402
from spool_tiny.text import TextEncoder  # noqa: E402

JUDGED_MOTIONS = ["still", "left", "right", "up", "down", "up-left", "up-right", "down-left", "down-right"]


def nearest_colour(rgb, palette, exclude=None):
    """rgb [..., 3] -> palette index"""
    d = ((rgb[..., None, :] - palette) ** 2).sum(-1)
    if exclude is not None:
        d = d.clone()
        d[..., exclude] = 1e9
    return d.argmin(-1)


def components_largest_fraction(mask):
    """mask [N,H,W] bool -> fraction of foreground in the largest 8-connected component, per frame."""
    N, H, W = mask.shape
    lab = torch.arange(1, H * W + 1, dtype=torch.float32).view(1, H, W).expand(N, H, W).clone()
    lab = lab * mask
    for _ in range(H * 2):
        new = F.max_pool2d(lab[:, None], 3, 1, 1)[:, 0] * mask
        if torch.equal(new, lab):
            break
        lab = new
    out = torch.zeros(N)
    for i in range(N):
        l = lab[i][mask[i]].long()
        if l.numel() == 0:
            continue
        out[i] = torch.bincount(l).max().float() / l.numel()
    return out


def judge(video, bg_col, obj_col, motion, palette):
    """video [T,3,H,W] in [-1,1]; returns dict of per-clip scores in [0,1] (motion: 0/1)."""
    T = video.shape[0]
    px = video.permute(0, 2, 3, 1)  # T,H,W,3
    med = px.reshape(T, -1, 3).median(dim=1).values
    bg_idx = nearest_colour(med, palette)
    bg_ok = (bg_idx == bg_col).float()
    fg = ((px - med[:, None, None, :]).abs().sum(-1) > 0.5)
    area = fg.sum((1, 2))
    present = area >= 20
    cols = []
    for t in range(T):
        if present[t]:
            m = px[t][fg[t]].median(dim=0).values
            cols.append(int(nearest_colour(m, palette, exclude=int(bg_idx[t])) == obj_col))
    ys, xs = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    cx = (fg * xs).sum((1, 2)) / area.clamp(min=1)
    cy = (fg * ys).sum((1, 2)) / area.clamp(min=1)
    pres = [t for t in range(min(T, 12)) if present[t]]

    def motion_ok(name):
        if len(pres) < 8:  # the object must be there for most of frames 0..11
            return 0.0
        dx = float(cx[pres[-1]] - cx[pres[0]]); dy = float(cy[pres[-1]] - cy[pres[0]])
        want = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "up-left": (-1, -1),
                "up-right": (1, -1), "down-left": (-1, 1), "down-right": (1, 1), "still": (0, 0)}[name]
        main = max(abs(dx), abs(dy))
        ok = True
        for d, w in ((dx, want[0]), (dy, want[1])):
            if w == 0:
                ok &= abs(d) < (6 if name == "still" else max(6, 0.5 * main))
            else:
                ok &= d * w >= 6
        return float(ok)
    name = MOTIONS[motion][0]
    # control: the same judge with a wrong label (opposite direction; "still" -> "left"), a chance reference
    opposite = {"left": "right", "right": "left", "up": "down", "down": "up", "up-left": "down-right",
                "down-right": "up-left", "up-right": "down-left", "down-left": "up-right", "still": "left"}[name]
    mot_ok, mot_ctrl = motion_ok(name), motion_ok(opposite)
    single = components_largest_fraction(fg[present]) if present.any() else torch.zeros(1)
    return dict(bg=bg_ok.mean().item(), bg_frame0=bg_ok[0].item(), present=present.float().mean().item(),
                colour=(sum(cols) / len(cols)) if cols else 0.0, motion=mot_ok, motion_wrong_label=mot_ctrl,
                single=(single >= 0.8).float().mean().item() if present.any() else 0.0)


def judged_scenes(world, n, split, seed):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        sc = world._sample_scene(rng, split, force_held=(split == "eval"))
        if BG_KINDS[sc["bg"]["kind"]] != "solid" or sc["bg"]["pan"]:
            continue
        o = sc["objs"][0]
        if not world.tint[o["cls"]] or MOTIONS[o["mot"]][0] not in JUDGED_MOTIONS:
            continue
        sc["objs"] = [o]
        world._place(rng, sc["objs"])
        out.append(sc)
    return out


@torch.no_grad()
def generate(model, ae, text, caps_per_frame, T, K, seed):
    """caps_per_frame: list over clips of callables f -> caption string."""
    B = len(caps_per_frame)
    cache = {}

    def cond(f):
        caps = [c(f) for c in caps_per_frame]
        key = tuple(caps)
        if key not in cache:
            tok, mask = text.encode(caps)
            cache[key] = (model.text_proj(tok.float()), torch.where(mask, 0.0, -1e4).float())
        return cache[key]
    lat = rollout(model, cond, None, T=T, K=K, seed=seed)
    vid = torch.cat([ae.decode(tokens_to_latent(lat[:, t])) for t in range(T)])
    return vid.view(T, B, 3, 128, 128).transpose(0, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", default="assets/spool-tiny")
    p.add_argument("--minilm", default="assets/minilm")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--T", type=int, default=24)
    p.add_argument("--K", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=".dev/eval")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    model, ae = load_safetensors(os.path.join(a.weights, "model.safetensors"), os.path.join(a.weights, "ae.safetensors"))
    model.eval(); ae.eval()
    text = TextEncoder(a.minilm, "cpu")
    world = World("cpu")
    world.fits = lambda cap: not text.tokenize([cap])[2][0]
    pal = world.palette
    results = {}
    for split in ("eval", "train"):
        scenes = judged_scenes(world, a.n, split, seed=a.seed + (0 if split == "eval" else 1))
        batch = world.sample(len(scenes), T=a.T, split=split, seed=a.seed + 7, scenes=scenes)
        caps = [c[0] for c in batch.captions]
        gen = generate(model, ae, text, [(lambda f, c=c: c) for c in caps], a.T, a.K, a.seed)
        rows = {"gen": [], "gt": []}
        for i, sc in enumerate(scenes):
            o = sc["objs"][0]
            for name, v in (("gen", gen[i]), ("gt", batch.video[i])):
                rows[name].append(judge(v, sc["bg"]["c1"], o["col"], o["mot"], pal))
        torch.save(dict(gen=gen.half(), gt=batch.video.half(), captions=caps, scenes=scenes),
                   os.path.join(a.out, f"clips_{split}.pt"))
        res = {k: {m: sum(r[m] for r in rs) / len(rs) for m in rs[0]} for k, rs in rows.items()}
        results[split] = res
        save_strip(torch.cat([gen[:6], batch.video[:6]]), os.path.join(a.out, f"judge_{split}.png"), max_cols=12)
        with open(os.path.join(a.out, f"captions_{split}.txt"), "w") as f:
            f.write("\n".join(caps[:6]) + "\n")
        print(split, json.dumps(res), flush=True)
    # prompt switch: background colour change at frame 12 (solid backgrounds)
    scenes = judged_scenes(world, a.n // 2, "train", seed=a.seed + 2)
    rng = random.Random(a.seed + 3)
    pairs = []
    for sc in scenes:
        b2 = dict(sc["bg"])
        b2["c1"] = rng.choice([c for c in range(len(COLOURS)) if c not in (sc["bg"]["c1"], sc["objs"][0]["col"])])
        sc2 = {"bg": b2, "objs": sc["objs"]}
        pairs.append((world.caption(rng, sc), world.caption(rng, sc2), sc["bg"]["c1"], b2["c1"]))
    c = a.T // 2
    gen = generate(model, ae, text, [(lambda f, p=pr: p[0] if f < c else p[1]) for pr in pairs], a.T, a.K, a.seed)
    before = after = 0.0
    for i, (_, _, c1, c2) in enumerate(pairs):
        px = gen[i].permute(0, 2, 3, 1)
        med = px.reshape(a.T, -1, 3).median(dim=1).values
        idx = nearest_colour(med, pal)
        before += (idx[c - 4:c] == c1).float().mean().item()
        after += (idx[a.T - 4:] == c2).float().mean().item()
    results["switch_bg"] = {"before": before / len(pairs), "after": after / len(pairs)}
    save_strip(gen[:6], os.path.join(a.out, "judge_switch.png"), max_cols=12)
    with open(os.path.join(a.out, "captions_switch.txt"), "w") as f:
        f.write("\n".join(f"{p[0]}  ->  {p[1]}" for p in pairs[:6]) + "\n")
    print("switch_bg", json.dumps(results["switch_bg"]))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
