"""Evaluate spool-tiny against the procedural world's ground truth, by driving the app's own binary.

    cargo build --release --no-default-features
    python3 training/eval.py --spool target/release/spool --n 512 --gt 256 --out .dev/eval
    python3 training/eval.py --backend torch --weights DIR --variant nonsep --n 64 --only adherence   # ablations

Seven parts, each written to OUT/results.json (and strips OUT/*.png):

1. **detectors** -- the judges run on ground-truth clips of the renderer (--gt clips, same scene mix as 2) and
   must score >= 95% per attribute before their verdicts on generated clips mean anything.
2. **adherence** -- --n one-object scenes, half with a held-out (class, colour) / (emoji, motion) pair worded as
   in training, half worded with eval-only words and templates (data.py's split); 3 in 4 on a solid
   background, 1 in 4 on another background kind. Per clip (majority over frames):
     * class    -- the trained CNN judge (train_judge.py, training/judge/) names the captioned class;
     * colour   -- tinted objects on solid backgrounds: the palette colour nearest the median foreground pixel;
     * motion   -- solid backgrounds, linear motions and "still": the foreground centroid over frames 0..11
                   moves >= 6 px the captioned way on each captioned axis and little on the other;
     * bg       -- solid: the palette colour nearest the median pixel; other kinds: the CNN's background kind.
   `motion_wrong_label` runs the motion judge against the opposite direction (a chance reference).
3. **long run** -- --long prompts rolled out for --long-frames frames; every frame's statistics (mean, contrast,
   detail) against the range of ground-truth frames (--range-clips clips of the training mix and each prompt's
   own scene, whose rendering must itself be in range: `gt_in_range`; through the autoencoder, the ceiling:
   `gt_ae_in_range`, `gt_ae_contrast`), per window of 100 frames (the drift curve), plus whether
   the background stays right, the object stays present (any foreground) and the judge still reads its class
   (`cls`; the same judge on the prompt's own ground truth: `gt_class`).
4. **switch** -- --switch clips change one thing at frame 12 (background colour, object colour or class):
   frames until the new content is detected (and stays for 3 frames), and the largest frame-to-frame change
   around the switch as a fraction of the whole change (a hard cut is 1.0; `over_half` lists the clips above 0.5).
5. **two objects** -- --two two-object clips on solid backgrounds, --two-frames long: per object (told by its
   colour) the judge's class with only that object left, presence and the captioned motion, per 32-frame window,
   against the same measures on the scenes' ground-truth renders (`part_two`).
6. **patterns** -- --patterns one-object clips on stripes and checkerboards (a straight motion, training
   wordings), --patterns-frames long: the judge's class per 40-frame window and the background kind it reads,
   against its ground-truth renders (`part_patterns`).
7. **changing** -- --changing one-object clips that grow, shrink or fade on solid backgrounds (training wordings),
   --changing-frames long: per 40-frame window the judge's class and the share of frames whose statistics
   (mean, contrast, detail: noise raises the detail) lie in the range of the clips' own ground-truth renders,
   against the same measures on those renders (`part_changing`).
"""
import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spool_tiny.data import BG_KINDS, COLOURS, MOTIONS, World, save_strip  # noqa: E402
from spool_tiny.text import TextEncoder  # noqa: E402

CHANGING = ("zoom-in", "zoom-out", "fade-in", "fade-out")  # the motions that change an object's look
JUDGED_MOTIONS = ["still", "left", "right", "up", "down", "up-left", "up-right", "down-left", "down-right"]
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up", "up-left": "down-right",
            "down-right": "up-left", "up-right": "down-left", "down-left": "up-right", "still": "left"}
WANT = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "up-left": (-1, -1),
        "up-right": (1, -1), "down-left": (-1, 1), "down-right": (1, 1), "still": (0, 0)}
HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------------------------
# judges
# ----------------------------------------------------------------------------------------------------------

def nearest_colour(rgb, palette, exclude=None):
    """rgb [..., 3] -> palette index"""
    d = ((rgb[..., None, :] - palette) ** 2).sum(-1)
    if exclude is not None:
        d = d.clone()
        d[..., exclude] = 1e9
    return d.argmin(-1)


def load_judge(path, n_classes):
    from safetensors.torch import load_file
    from train_judge import Judge
    j = Judge(n_classes)
    j.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    return j.eval()


@torch.no_grad()
def cnn(judge, video):
    """video [T,3,H,W] -> (class per frame [T], background kind per frame [T])"""
    lc, lb = judge(video.float())
    return lc.argmax(1), lb.argmax(1)


def majority(flags):
    return float(sum(flags) * 2 >= len(flags)) if len(flags) else 0.0


def pixel_measures(video, palette):
    """solid-background measures per frame: background palette index, foreground mask and centroid."""
    T = video.shape[0]
    px = video.permute(0, 2, 3, 1)
    med = px.reshape(T, -1, 3).median(dim=1).values
    bg_idx = nearest_colour(med, palette)
    fg = (px - med[:, None, None, :]).abs().sum(-1) > 0.5
    area = fg.sum((1, 2))
    ys, xs = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    cx = (fg * xs).sum((1, 2)) / area.clamp(min=1)
    cy = (fg * ys).sum((1, 2)) / area.clamp(min=1)
    return px, bg_idx, fg, area >= 20, cx, cy


def object_colour(px, fg, bg_idx, t, palette):
    """palette index nearest the median foreground pixel of frame t, the background's colour excluded"""
    return int(nearest_colour(px[t][fg[t]].median(dim=0).values, palette, exclude=int(bg_idx[t])))


def motion_ok(name, present, cx, cy):
    pres = [t for t in range(min(len(present), 12)) if present[t]]
    if len(pres) < 8:  # the object must be there for most of frames 0..11
        return 0.0
    dx = float(cx[pres[-1]] - cx[pres[0]]); dy = float(cy[pres[-1]] - cy[pres[0]])
    want = WANT[name]
    main = max(abs(dx), abs(dy))
    ok = True
    for d, w in ((dx, want[0]), (dy, want[1])):
        if w == 0:
            ok &= abs(d) < (6 if name == "still" else max(6, 0.5 * main))
        else:
            ok &= d * w >= 6
    return float(ok)


def judge_clip(video, sc, world, judge):
    """video [T,3,H,W] in [-1,1]; sc = one-object scene. Returns {attribute: 0/1 or None (not judged)}."""
    o, bg = sc["objs"][0], sc["bg"]
    kind = BG_KINDS[bg["kind"]]
    pal = world.palette.cpu()
    cls, bgk = cnn(judge, video)
    r = dict(cls=None, colour=None, motion=None, motion_wrong_label=None, bg=None, present=None)
    if kind == "solid":
        px, bg_idx, fg, present, cx, cy = pixel_measures(video, pal)
        r["bg"] = majority([int(i) == bg["c1"] for i in bg_idx])
        r["present"] = present.float().mean().item()
        frames = [t for t in range(len(present)) if present[t]]
        r["cls"] = majority([int(cls[t]) == o["cls"] for t in frames])
        if world.tint[o["cls"]]:
            r["colour"] = majority([object_colour(px, fg, bg_idx, t, pal) == o["col"] for t in frames])
        name = MOTIONS[o["mot"]][0]
        if name in JUDGED_MOTIONS:
            r["motion"] = motion_ok(name, present, cx, cy)
            r["motion_wrong_label"] = motion_ok(OPPOSITE[name], present, cx, cy)
    else:
        r["bg"] = majority([int(k) == bg["kind"] for k in bgk])
        r["cls"] = majority([int(c) == o["cls"] for c in cls])
    return r


def summarise(rows):
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = dict(score=round(sum(vals) / len(vals), 4), clips=len(vals)) if vals else None
    return out


# ----------------------------------------------------------------------------------------------------------
# scenes and generation
# ----------------------------------------------------------------------------------------------------------

def eval_scenes(world, n, seed):
    """n one-object scenes with a judged motion: even i a held-out pair (train wording), odd i eval wording."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        held = len(out) % 2 == 0
        sc = world._sample_scene(rng, "eval", force_held=held)
        o = sc["objs"][0]
        if MOTIONS[o["mot"]][0] not in JUDGED_MOTIONS or sc["bg"]["pan"]:
            continue
        solid = BG_KINDS[sc["bg"]["kind"]] == "solid"
        if solid != (len(out) % 4 != 3):  # 3 in 4 solid
            continue
        sc["objs"] = [o]
        world._place(rng, sc["objs"])
        sc["held_pair"] = world._held_pair(o["cls"], o["col"], o["mot"])
        sc["eval_wording"] = not held
        sc["caption"] = world.caption_fit(rng, sc, ev=not held)
        out.append(sc)
    return out


def ground_truth(world, scenes, T, seed):
    vids = []
    for i in range(0, len(scenes), 32):
        b = world.sample(len(scenes[i:i + 32]), T=T, split="eval", seed=seed + i, p_switch=0.0,
                         scenes=scenes[i:i + 32])
        vids.append(b.video.cpu())
    return torch.cat(vids)


def read_pngs(folder):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    arr = np.stack([np.asarray(Image.open(os.path.join(folder, f)).convert("RGB")) for f in files])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


class RustGen:
    """`spool generate` per clip (the app's own model code, CPU)."""

    def __init__(self, spool, weights, extra):
        self.spool, self.weights, self.extra = spool, weights, extra
        self.tmp = tempfile.mkdtemp(prefix="spool-eval-")
        self.seconds = 0.0
        self.frames = 0

    def clip(self, caption, T, seed, prompt_at=()):
        out = os.path.join(self.tmp, "clip/")
        cmd = [self.spool, "generate", "--prompt", caption, "--frames", str(T), "--seed", str(seed), "-o", out,
               "--force"] + (["--weights", self.weights] if self.weights else []) + self.extra
        for f, p in prompt_at:
            cmd += ["--prompt-at", f"{f}:{p}"]
        t0 = time.time()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.seconds += time.time() - t0
        self.frames += T
        return read_pngs(out)


class TorchGen:
    """the PyTorch reference (for the ablation variants, which the app does not run)."""

    def __init__(self, weights, variant, guidance, K, text):
        from safetensors.torch import load_file
        from spool_tiny import model as M
        cfg = json.load(open(os.path.join(weights, "config.json")))
        M.CFG.n_full = cfg["n_full"]
        # the export's own shape (runs 14-15 are wider, run 13's sibling arm deeper)
        M.CFG.d_model, M.CFG.head_dim = cfg["d_model"], cfg["head_dim"]
        M.CFG.decoder_blocks = cfg["decoder_blocks"]
        Net = M.NonSeparable if variant == "nonsep" else M.SpoolTiny
        self.M, self.variant, self.K = M, variant, K
        self.g = guidance if guidance is not None else cfg.get("guidance_scale", 1.0)
        self.g_min_t = cfg.get("guidance_min_t", 0.0)
        self.model = Net()
        self.model.load_state_dict({k: v.float() for k, v in load_file(os.path.join(weights, "model.safetensors")).items()})
        self.model.eval()
        _, self.ae = M.load_safetensors(None, os.path.join(weights, "ae.safetensors"))
        self.text = text

    @torch.no_grad()
    def condition(self, captions):
        """the model's text conditioning of each caption: (ctx [N,n,D], bias [N,n])"""
        tok, mask = self.text.encode(list(captions))
        return self.model.text_proj(tok.float()), torch.where(mask, 0.0, -1e4).float()

    @torch.no_grad()
    def batch(self, captions, T, seed):
        ctx, bias = self.condition(list(captions) + [""])
        B = len(captions)
        unc = (ctx[-1:].expand(B, -1, -1), bias[-1:].expand(B, -1))
        if self.variant == "nonsep":
            lat = self.M.rollout_nonseparable(self.model, ctx[:B], bias[:B], T, self.K, seed, unc, self.g)
        else:
            lat = self.M.rollout(self.model, ctx[:B], bias[:B], T, self.K, seed, uncond=unc, guidance=self.g,
                                 guidance_min_t=self.g_min_t)
        vid = torch.cat([self.ae.decode(self.M.tokens_to_latent(lat[:, t])) for t in range(T)])
        return vid.view(T, B, 3, 128, 128).transpose(0, 1)


def probe_kit(weights, guidance=None, seed=0):
    """What the CPU diagnoses (probe_*.py) share, seeded: the procedural world with the text encoder's word
    check, the evaluation judge, and the PyTorch generator of `weights` (guidance None: the export's)."""
    torch.manual_seed(seed)
    world = World("cpu")
    text = TextEncoder(os.path.join(HERE, "..", "assets", "minilm"), "cpu")
    world.fits = text.fits
    judge = load_judge(os.path.join(HERE, "judge", "judge.safetensors"), world.n_classes)
    return world, judge, TorchGen(weights, "scd", guidance, 4, text)


# ----------------------------------------------------------------------------------------------------------
# parts
# ----------------------------------------------------------------------------------------------------------

def frame_stats(v):
    """v [N,3,H,W] -> [N,3]: mean, contrast (std), detail (mean |Laplacian| of luma)"""
    y = v.mean(1, keepdim=True)
    lap = F.conv2d(y, torch.tensor([[[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]], dtype=v.dtype, device=v.device), padding=1)
    return torch.stack([v.mean((1, 2, 3)), v.std((1, 2, 3)), lap[:, :, 1:-1, 1:-1].abs().mean((1, 2, 3))], 1)


def mix_stats(world, clips, seed, batch=64):
    """frame_stats of `clips` 24-frame clips of the training mix rendered by `world`, [clips*24, 3].
    The range's edges are its 0.5% / 99.5% quantiles, and frame contrast has a clumpy lower tail (a clip's frames
    fall together; departing or fading objects leave flat frames), so they need thousands of clips: over 16
    samples of 128 clips the lower contrast edge ranged 0.00-0.23, over four of 4,096 clips 0.103-0.133
    (training/README.md, "The long run's range")."""
    return torch.cat([frame_stats(world.sample(min(batch, clips - i), T=24, split="train", seed=seed + 7919 * i,
                                               p_switch=0.3).video.flatten(0, 1).float()).cpu()
                      for i in range(0, clips, batch)])


def part_long(world, gen, judge, a, res):
    rng = random.Random(a.seed + 5)
    scenes = [s for s in eval_scenes(world, 64, a.seed + 7) if BG_KINDS[s["bg"]["kind"]] == "solid"][:a.long]
    # The range: ground-truth frames of the training mix plus each prompt's own scene rendered for 96 frames (a
    # perfect rendering of the prompt belongs in it, whatever the mix's sample).
    gt = [world.sample(1, T=96, split="eval", seed=a.seed + 8, p_switch=0.0, scenes=[sc]).video[0].cpu()
          for sc in scenes]
    own = [frame_stats(v) for v in gt]
    renderer = World("cuda") if torch.cuda.is_available() else world  # thousands of clips: on the GPU if any
    st = torch.cat([mix_stats(renderer, a.range_clips, a.seed + 6)] + own)
    lo, hi = st.quantile(0.005, 0), st.quantile(0.995, 0)
    gt_in = [round(((s >= lo) & (s <= hi)).all(1).float().mean().item(), 3) for s in own]
    # The ceiling: each prompt's ground truth through the autoencoder (no generator can beat its decoder).
    from spool_tiny.model import load_safetensors
    _, ae = load_safetensors(None, os.path.join(a.weights or os.path.join(HERE, "..", "assets", "spool-tiny"),
                                                "ae.safetensors"))
    with torch.no_grad():
        ae_st = [frame_stats(ae.decode(ae.encode(v)).float().clamp(-1, 1)) for v in gt]
    gt_ae_in = [round(((s >= lo) & (s <= hi)).all(1).float().mean().item(), 3) for s in ae_st]
    # "present" counts any foreground, a smear too: the judge's class per frame says whether it is still the object
    gt_cls = [round((cnn(judge, v)[0] == sc["objs"][0]["cls"]).float().mean().item(), 3) for v, sc in zip(gt, scenes)]
    curves, clips = [], []
    for i, sc in enumerate(scenes):
        cap = world.caption_fit(rng, sc, ev=False)
        v = gen.clip(cap, a.long_frames, seed=1000 + i)
        s = frame_stats(v)
        inr = ((s >= lo) & (s <= hi)).all(1).float()
        _, bg_idx, _, present, _, _ = pixel_measures(v, world.palette.cpu())
        bg_ok = (bg_idx == sc["bg"]["c1"]).float()
        cls_ok = (cnn(judge, v)[0] == sc["objs"][0]["cls"]).float()
        W = 100
        curves.append([dict(frames=f"{w}-{w + W - 1}", in_range=round(inr[w:w + W].mean().item(), 3),
                            mean=round(s[w:w + W, 0].mean().item(), 3), contrast=round(s[w:w + W, 1].mean().item(), 3),
                            detail=round(s[w:w + W, 2].mean().item(), 4), bg=round(bg_ok[w:w + W].mean().item(), 3),
                            present=round(present[w:w + W].float().mean().item(), 3),
                            cls=round(cls_ok[w:w + W].mean().item(), 3))
                       for w in range(0, len(v), W)])
        clips.append(v[:: max(1, len(v) // 12)][:12])
        print(f"long {i}: {cap!r}: in-range {inr.mean():.3f} (its ground truth {gt_in[i]:.3f}, through the AE "
              f"{gt_ae_in[i]:.3f}), contrast {s[:, 1].mean():.3f} (ground truth {own[i][:, 1].mean():.3f}, through the "
              f"AE {ae_st[i][:, 1].mean():.3f}), bg "
              f"{bg_ok.mean():.3f}, present {present.float().mean():.3f}, class {cls_ok.mean():.3f} (its ground truth "
              f"{gt_cls[i]:.3f})", flush=True)
    save_strip(torch.stack(clips), os.path.join(a.out, "long_run.png"), max_cols=12)
    res["long_run"] = dict(frames=a.long_frames, prompts=len(scenes),
                           range_clips=a.range_clips,
                           gt_range=dict(lo=[round(x, 4) for x in lo.tolist()], hi=[round(x, 4) for x in hi.tolist()]),
                           gt_in_range=gt_in, gt_ae_in_range=gt_ae_in, gt_class=gt_cls,
                           gt_ae_contrast=[round(st[:, 1].mean().item(), 4) for st in ae_st],
                           curve=[dict(frames=curves[0][w]["frames"],
                                       **{k: round(sum(c[w][k] for c in curves) / len(curves), 4)
                                          for k in curves[0][w] if k != "frames"})
                                  for w in range(len(curves[0]))])


def rendered_and_generated(world, gen, scenes, T, gt_seed, clip_seed, name):
    """T frames of each (scene, caption): its ground-truth render (seed gt_seed + i) and the clip generated from its
    caption (seed clip_seed + i)."""
    gt = [world.sample(1, T=T, split="eval", seed=gt_seed + i, p_switch=0.0, scenes=[copy.deepcopy(sc)]).video[0].cpu()
          for i, (sc, _) in enumerate(scenes)]
    clips = []
    for i, (sc, cap) in enumerate(scenes):
        clips.append(gen.clip(cap, T, seed=clip_seed + i))
        print(f"{name} {i}: {cap!r}", flush=True)
    return gt, clips


def part_two(world, gen, judge, a, res):
    """--two two-object clips on solid backgrounds (eval split, training wordings, both objects tinted in colours
    >= 0.8 apart and from the background, judged motions), --two-frames long. Per object, told by its palette
    colour (pixels within 0.5): the judge's class on the frame with only that object left (the rest painted the
    background colour), presence (>= 20 such pixels) and its captioned motion over each 16-frame window (the
    colour's centroid on the torus moves >= 4 px the captioned way on each captioned axis and < 4 px on the
    other; "still": < 4 px both ways); per 32-frame window, generated clips and their ground-truth renders."""
    rng = random.Random(a.seed + 11)
    pal = world.palette.cpu()
    far = lambda i, j: (pal[i] - pal[j]).abs().sum() >= 0.8
    scenes = []
    while len(scenes) < a.two:
        sc = world._sample_scene(rng, "eval")
        if len(sc["objs"]) != 2 or BG_KINDS[sc["bg"]["kind"]] != "solid" or sc["bg"]["pan"]:
            continue
        o1, o2 = sc["objs"]
        if min(o1["col"], o2["col"]) < 0 or not (far(o1["col"], o2["col"]) and far(o1["col"], sc["bg"]["c1"])
                                                and far(o2["col"], sc["bg"]["c1"])):
            continue
        if any(MOTIONS[o["mot"]][0] not in JUDGED_MOTIONS for o in (o1, o2)):
            continue
        scenes.append((sc, world.caption_fit(rng, sc, ev=False)))
    T, W = a.two_frames, 32
    ys, xs = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")

    def centre(m, grid):  # the circular mean: an object across an edge stays one
        ang = grid / 128 * 2 * np.pi
        return torch.atan2((m * ang.sin()).sum(), (m * ang.cos()).sum()).item() / (2 * np.pi) * 128

    def measure(videos):
        acc = {k: np.zeros((T // W, 2)) for k in ("cls", "present", "motion")}
        for v, (sc, _) in zip(videos, scenes):
            px = v.permute(0, 2, 3, 1)
            bg = pal[sc["bg"]["c1"]]
            for o in sc["objs"]:
                m = ((px - pal[o["col"]]).abs().sum(-1) < 0.5).float()
                near = F.max_pool2d(m[:, None], 5, 1, 2)[:, 0] > 0
                alone = torch.where(near[..., None], px, bg).permute(0, 3, 1, 2)
                cls = (cnn(judge, alone)[0] == o["cls"]).float().numpy()
                pres = (m.sum((1, 2)) >= 20).float().numpy()
                cy = [centre(m[t], ys) for t in range(T)]
                cx = [centre(m[t], xs) for t in range(T)]
                for t in range(T):
                    acc["cls"][t // W] += (cls[t], 1)
                    acc["present"][t // W] += (pres[t], 1)
                want = WANT[MOTIONS[o["mot"]][0]]
                for t0 in range(0, T - 15, 16):
                    t1 = t0 + 15
                    ok = bool(pres[t0] and pres[t1])
                    for d, w in zip(((cx[t1] - cx[t0] + 64) % 128 - 64, (cy[t1] - cy[t0] + 64) % 128 - 64), want):
                        ok = ok and (d * w >= 4 if w else abs(d) < 4)
                    acc["motion"][t0 // W] += (float(ok), 1)
        return {k: [round(x / max(n, 1), 3) for x, n in v] for k, v in acc.items()}

    gt, clips = rendered_and_generated(world, gen, scenes, T, a.seed + 12, 500, "two")
    save_strip(torch.stack([v[::8][:12] for v in clips[:8]]), os.path.join(a.out, "two_objects.png"), max_cols=12)
    res["two_objects"] = dict(clips=len(scenes), frames=T, windows=[f"{w}-{w + W - 1}" for w in range(0, T, W)],
                              generated=measure(clips), ground_truth=measure(gt))
    print("two objects:", json.dumps(res["two_objects"]), flush=True)


def part_patterns(world, gen, judge, a, res):
    """--patterns one-object clips on stripes and checkerboards (eval split, training wordings, a straight motion:
    the object must move across the pattern), --patterns-frames long: the judge's class per 40-frame window and the
    background kind it reads, on the generated clips and on the scenes' ground-truth renders."""
    rng = random.Random(a.seed + 13)
    scenes = []
    while len(scenes) < a.patterns:
        sc = world._sample_scene(rng, "eval")
        if len(sc["objs"]) != 1 or BG_KINDS[sc["bg"]["kind"]] not in ("stripes", "checkers") or sc["bg"]["pan"]:
            continue
        if MOTIONS[sc["objs"][0]["mot"]][0] not in JUDGED_MOTIONS or MOTIONS[sc["objs"][0]["mot"]][0] == "still":
            continue
        scenes.append((sc, world.caption_fit(rng, sc, ev=False)))
    T, W = a.patterns_frames, 40

    def measure(videos):
        cls, kind = [], np.zeros(2)
        for v, (sc, _) in zip(videos, scenes):
            c, b = cnn(judge, v)
            cls.append((c == sc["objs"][0]["cls"]).float().numpy())
            kind += ((b == sc["bg"]["kind"]).float().sum().item(), len(b))
        return dict(cls=per_window(cls, W), bg_kind=round(kind[0] / max(kind[1], 1), 3))

    gt, clips = rendered_and_generated(world, gen, scenes, T, a.seed + 14, 700, "patterns")
    save_strip(torch.stack([v[::T // 12][:12] for v in clips[:8]]), os.path.join(a.out, "patterns.png"), max_cols=12)
    res["patterns"] = dict(clips=len(scenes), frames=T, windows=[f"{w}-{w + W - 1}" for w in range(0, T // W * W, W)],
                           kinds={k: sum(BG_KINDS[sc["bg"]["kind"]] == k for sc, _ in scenes)
                                  for k in ("stripes", "checkers")},
                           generated=measure(clips), ground_truth=measure(gt))
    print("patterns:", json.dumps(res["patterns"]), flush=True)


def per_window(per_frame, W):
    """Per-frame 0/1 arrays of equal length (one per clip) -> their mean over all clips per W-frame window."""
    n = len(per_frame[0]) // W
    return [round(float(np.mean([f[w * W:(w + 1) * W] for f in per_frame])), 3) for w in range(n)]


def part_changing(world, gen, judge, a, res):
    """--changing one-object clips that grow, shrink or fade (eval split, training wordings, solid backgrounds),
    --changing-frames long: per 40-frame window the judge's class and the share of frames whose statistics lie in
    the range of the clips' own ground-truth renders (0.5%-99.5% quantiles), on the generated clips and on the
    renders."""
    rng = random.Random(a.seed + 15)
    scenes = []
    while len(scenes) < a.changing:
        sc = world._sample_scene(rng, "eval")
        if len(sc["objs"]) != 1 or BG_KINDS[sc["bg"]["kind"]] != "solid" or sc["bg"]["pan"]:
            continue
        if MOTIONS[sc["objs"][0]["mot"]][0] not in CHANGING:
            continue
        scenes.append((sc, world.caption_fit(rng, sc, ev=False)))
    T, W = a.changing_frames, 40
    gt, clips = rendered_and_generated(world, gen, scenes, T, a.seed + 16, 900, "changing")
    st = torch.cat([frame_stats(v) for v in gt])
    lo, hi = st.quantile(0.005, 0), st.quantile(0.995, 0)

    def measure(videos):
        cls = [(cnn(judge, v)[0] == sc["objs"][0]["cls"]).float().numpy() for v, (sc, _) in zip(videos, scenes)]
        inr = [((s >= lo) & (s <= hi)).all(1).float().numpy() for s in map(frame_stats, videos)]
        return dict(cls=per_window(cls, W), in_range=per_window(inr, W))

    save_strip(torch.stack([v[::T // 12][:12] for v in clips[:8]]), os.path.join(a.out, "changing.png"), max_cols=12)
    res["changing"] = dict(clips=len(scenes), frames=T, windows=[f"{w}-{w + W - 1}" for w in range(0, T // W * W, W)],
                           motions={m: sum(MOTIONS[sc["objs"][0]["mot"]][0] == m for sc, _ in scenes) for m in CHANGING},
                           generated=measure(clips), ground_truth=measure(gt))
    print("changing:", json.dumps(res["changing"]), flush=True)


def part_switch(world, gen, judge, a, res):
    rng = random.Random(a.seed + 9)
    base = [s for s in eval_scenes(world, 4 * a.switch, a.seed + 10)
            if BG_KINDS[s["bg"]["kind"]] == "solid" and world.tint[s["objs"][0]["cls"]]][:a.switch]
    pal = world.palette.cpu()
    rows, strips, c = [], [], 12
    for i, sc in enumerate(base):
        o = dict(sc["objs"][0]); bg = dict(sc["bg"])
        kind = ["bg", "colour", "class"][i % 3]
        if kind == "bg":
            bg["c1"] = rng.choice([k for k in range(len(COLOURS)) if k not in (bg["c1"], o["col"])])
        elif kind == "colour":
            o["col"] = rng.choice([k for k in range(len(COLOURS)) if k not in (bg["c1"], o["col"])])
        else:
            o["cls"] = rng.choice([k for k in range(world.n_classes) if world.tint[k] and k != o["cls"]])
        sc2 = dict(bg=bg, objs=[o])
        cap1, cap2 = world.caption_fit(rng, sc, ev=False), world.caption_fit(rng, sc2, ev=False)
        v = gen.clip(cap1, a.T, seed=2000 + i, prompt_at=[(c, cap2)])
        px, bg_idx, fg, present, _, _ = pixel_measures(v, pal)
        cls, _ = cnn(judge, v)

        def new(t):
            if kind == "bg":
                return int(bg_idx[t]) == bg["c1"]
            if not present[t]:
                return False
            if kind == "colour":
                return object_colour(px, fg, bg_idx, t, pal) == o["col"]
            return int(cls[t]) == o["cls"]
        det = next((t - c for t in range(c, a.T - 2) if new(t) and new(t + 1) and new(t + 2)), None)
        step = (v[1:] - v[:-1]).abs().mean((1, 2, 3))
        total = (v[-1] - v[c - 1]).abs().mean().item()
        ratio = step[c - 1:c + 8].max().item() / max(total, 1e-6)
        rows.append(dict(kind=kind, detected_after=det, max_step_ratio=round(ratio, 3), from_=cap1, to=cap2))
        strips.append(v)
    ok = [r["detected_after"] is not None and r["detected_after"] <= 8 for r in rows]
    by = {k: sum(o for o, r in zip(ok, rows) if r["kind"] == k) / max(1, sum(r["kind"] == k for r in rows))
          for k in ("bg", "colour", "class")}
    dets = [r["detected_after"] for r in rows if r["detected_after"] is not None]
    res["switch"] = dict(clips=len(rows), detected_within_8=round(sum(ok) / len(ok), 4), by_kind=by,
                         median_frames_to_detect=float(np.median(dets)) if dets else None,
                         max_step_ratio_median=float(np.median([r["max_step_ratio"] for r in rows])),
                         max_step_ratio_max=max(r["max_step_ratio"] for r in rows),
                         over_half=[dict(kind=r["kind"], ratio=r["max_step_ratio"])
                                    for r in rows if r["max_step_ratio"] > 0.5],
                         rows=rows[:12])
    save_strip(torch.stack(strips[:6]), os.path.join(a.out, "switch.png"), max_cols=12)


def part_adherence(world, gen, judge, a, res):
    scenes = eval_scenes(world, max(a.n, a.gt), a.seed)
    # --gt 0: generated clips only (another seed's share of a larger adherence sample)
    gt = ground_truth(world, scenes[:a.gt], a.T, a.seed + 1) if a.gt else None
    if gt is not None:
        det = [judge_clip(gt[i], scenes[i], world, judge) for i in range(len(gt))]
        res["detectors_on_ground_truth"] = summarise(det)
        print("detectors on ground truth:", json.dumps(res["detectors_on_ground_truth"]), flush=True)
    if a.only == "detectors":
        return
    rows, vids, shown = [], [], []
    if isinstance(gen, TorchGen):
        for i in range(0, a.n, a.batch):
            vids += list(gen.batch([s["caption"] for s in scenes[i:i + a.batch]], a.T, a.seed + i))
            print(f"generated {len(vids)}/{a.n}", flush=True)
    for i in range(a.n):
        v = vids[i] if vids else gen.clip(scenes[i]["caption"], a.T, seed=a.seed + i)
        r = judge_clip(v, scenes[i], world, judge)
        r.update(held_pair=scenes[i]["held_pair"], eval_wording=scenes[i]["eval_wording"], caption=scenes[i]["caption"])
        rows.append(r)
        if i < 8:
            shown.append(v)
        if (i + 1) % 64 == 0:
            print(f"{i + 1}/{a.n}", json.dumps(summarise([{k: r[k] for k in ('cls', 'colour', 'motion', 'bg')} for r in rows])), flush=True)
    keys = ("cls", "colour", "motion", "motion_wrong_label", "bg", "present")
    res["adherence"] = dict(all=summarise([{k: r[k] for k in keys} for r in rows]),
                            held_out_pairs=summarise([{k: r[k] for k in keys} for r in rows if not r["eval_wording"]]),
                            eval_wording=summarise([{k: r[k] for k in keys} for r in rows if r["eval_wording"]]))
    res["clips"] = rows  # per clip, for breakdowns (by class, wording, template) after the fact
    save_strip(torch.cat([torch.stack(shown)] + ([] if gt is None else [gt[:8]])), os.path.join(a.out, "adherence.png"),
               max_cols=12)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["rust", "torch"], default="rust")
    p.add_argument("--spool", default="target/release/spool")
    p.add_argument("--weights", default=None, help="weights folder (default: the app's assets/spool-tiny)")
    p.add_argument("--variant", choices=["scd", "fullres", "nonsep"], default="scd", help="torch backend only")
    p.add_argument("--guidance", type=float, default=None, help="default: the model's config")
    p.add_argument("--judge", default=os.path.join(HERE, "judge", "judge.safetensors"))
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--gt", type=int, default=256)
    p.add_argument("--T", type=int, default=24)
    p.add_argument("--K", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--long", type=int, default=4)
    p.add_argument("--long-frames", type=int, default=1000)
    p.add_argument("--range-clips", type=int, default=16384,
                   help="training clips whose frame statistics give the long run's range (about 3 min on a GPU, 25 on "
                        "2 CPU cores; fewer for a quick look, with a noisier lower contrast edge)")
    p.add_argument("--switch", type=int, default=48)
    p.add_argument("--two", type=int, default=24)
    p.add_argument("--two-frames", type=int, default=96)
    p.add_argument("--patterns", type=int, default=24)
    p.add_argument("--patterns-frames", type=int, default=160)
    p.add_argument("--changing", type=int, default=24)
    p.add_argument("--changing-frames", type=int, default=160)
    p.add_argument("--only", choices=["all", "detectors", "adherence", "long", "switch", "two", "patterns",
                                       "changing"],
                   default="all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--app-arg", action="append", default=[],
                   help="passed on to `spool generate` (repeatable), e.g. --app-arg=--no-switch-redraw")
    p.add_argument("--out", default=".dev/eval")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    world = World("cpu")
    judge = load_judge(a.judge, world.n_classes)
    text = TextEncoder(os.path.join(HERE, "..", "assets", "minilm"), "cpu")
    world.fits = text.fits
    if a.backend == "torch":
        gen = TorchGen(a.weights, a.variant, a.guidance, a.K, text)
    else:
        extra = ["--steps", str(a.K)] + (["--guidance", str(a.guidance)] if a.guidance is not None else []) + a.app_arg
        gen = RustGen(a.spool, a.weights, extra)
    res = dict(args=vars(a))
    t0 = time.time()
    if a.only in ("all", "detectors", "adherence"):
        part_adherence(world, gen, judge, a, res)
    if a.only in ("all", "long") and a.backend == "rust":
        part_long(world, gen, judge, a, res)
    if a.only in ("all", "switch") and a.backend == "rust":
        part_switch(world, gen, judge, a, res)
    if a.only in ("all", "two") and a.backend == "rust":
        part_two(world, gen, judge, a, res)
    if a.only in ("all", "patterns") and a.backend == "rust":
        part_patterns(world, gen, judge, a, res)
    if a.only in ("all", "changing") and a.backend == "rust":
        part_changing(world, gen, judge, a, res)
    res["seconds"] = round(time.time() - t0, 1)
    if isinstance(gen, RustGen) and gen.frames:
        res["rust_frames_per_second_incl_process_start"] = round(gen.frames / gen.seconds, 2)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k not in ("args", "clips")}, indent=1)[:6000])


if __name__ == "__main__":
    main()
