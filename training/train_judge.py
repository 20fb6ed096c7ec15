"""Train the evaluation judge: a small CNN that names the object class (122) and the background kind (9) of
a one-object frame of the procedural world. eval.py uses it for the class and background-kind marks; the
pixel judges (colour, motion, solid background colour) need no training.

    python3 training/train_judge.py --out RUN_DIR --minutes 5 [--ae assets/spool-tiny]

Half of each training batch goes through the shipped autoencoder first, so the judge reads frames as the
generator can draw them (soft), not only crisp renders. Writes RUN_DIR/judge.safetensors (f16) and
RUN_DIR/judge.json (its accuracy on fresh ground-truth clips: per frame and per clip, raw and through the
AE). Not shipped with the app: it lives in training/judge/.
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spool_tiny.data import BG_KINDS, World  # noqa: E402
from spool_tiny.model import load_safetensors  # noqa: E402


class Judge(nn.Module):
    def __init__(self, n_classes: int, n_bg: int = len(BG_KINDS)):
        super().__init__()
        ch = [3, 48, 96, 160, 224, 288]
        layers = []
        for a, b in zip(ch[:-1], ch[1:]):  # 128 -> 4
            layers += [nn.Conv2d(a, b, 3, 2, 1), nn.GroupNorm(8, b), nn.SiLU(), nn.Conv2d(b, b, 3, 1, 1),
                       nn.GroupNorm(8, b), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.cls = nn.Linear(2 * ch[-1], n_classes)
        self.bg = nn.Linear(2 * ch[-1], n_bg)

    def forward(self, x):
        """x [N,3,128,128] in [-1,1] -> (class logits, background-kind logits)"""
        h = self.body(x)
        h = torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1)
        return self.cls(h), self.bg(h)


def one_object_scenes(world, rng, n, split="eval"):
    """scenes of exactly one object, no pan; split "eval": any (class, colour, motion) pair (held-out pairs
    included), "train": the training pairs only"""
    out = []
    for _ in range(n):
        sc = world._sample_scene(rng, split)
        sc["objs"] = sc["objs"][:1]
        sc["bg"]["pan"] = 0
        world._place(rng, sc["objs"])
        out.append(sc)
    return out


def batch(world, ae, rng, clips, T, p_ae, split="eval"):
    b = world.sample(clips, T=T, split=split, seed=rng.getrandbits(31), p_switch=0.0,
                     scenes=one_object_scenes(world, rng, clips, split))
    x = b.video.flatten(0, 1)
    cls = b.labels["obj_class"][:, :, 0].flatten()
    vis = b.labels["obj_visible"][:, :, 0].flatten()
    bgk = b.labels["bg_kind"].flatten()
    if p_ae > 0:
        with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
            use = torch.rand(x.shape[0], device=x.device) < p_ae
            if use.any():
                x = x.clone()
                x[use] = ae.decode(ae.encode(x[use])).float()
    return x, cls, vis, bgk, b


@torch.no_grad()
def measure(judge, world, ae, seed, clips=256, T=24, split="eval"):
    """accuracy on fresh ground truth, raw and through the AE; per frame and per clip (majority vote)."""
    judge.eval()
    res = {}
    for name, p_ae in (("raw", 0.0), ("ae", 1.0)):
        rng = random.Random(seed)
        fc = fn = cc = bgc = 0
        for i in range(clips // 32):
            x, cls, vis, bgk, _ = batch(world, ae, rng, 32, T, p_ae, split)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
                lc, lb = judge(x)
            pc = lc.float().argmax(1)
            fc += ((pc == cls) & vis).sum().item(); fn += vis.sum().item()
            bgc += (lb.float().argmax(1) == bgk).float().view(32, T).mean(1).round().sum().item()
            pcv, visv, clsv = pc.view(32, T), vis.view(32, T), cls.view(32, T)
            for j in range(32):
                v = pcv[j][visv[j]]
                if v.numel():
                    cc += int(torch.mode(v).values.item() == clsv[j][visv[j]][0].item())
        res[name] = dict(class_frame=fc / max(fn, 1), class_clip=cc / clips, bg_kind_clip=bgc / clips, clips=clips)
    judge.train()
    return res


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--ae", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets",
                                                "spool-tiny"))
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--init", default=None, help="judge.safetensors to continue from")
    p.add_argument("--split", choices=["eval", "train"], default="eval",
                   help="eval: the evaluation judge (training/judge/); train: a teacher for train.py's "
                        "--class-judge, which must never be the evaluation judge")
    a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(a.seed)
    os.makedirs(a.out, exist_ok=True)
    world = World(dev)
    _, ae = load_safetensors(None, os.path.join(a.ae, "ae.safetensors"), dev)
    ae.requires_grad_(False)
    judge = Judge(world.n_classes).to(dev)
    if a.init:
        from safetensors.torch import load_file
        judge.load_state_dict({k: v.float() for k, v in load_file(a.init).items()})
    opt = torch.optim.AdamW(judge.parameters(), lr=a.lr, weight_decay=0.01)
    rng = random.Random(a.seed)
    t0, step = time.time(), 0
    budget = a.minutes * 60
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, (step + 1) / 100) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        x, cls, vis, bgk, _ = batch(world, ae, rng, a.clips, 4, 0.5, a.split)
        # light photometric noise so the judge does not key on exact render colours
        x = (x + 0.03 * torch.randn_like(x)).clamp(-1, 1)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            lc, lb = judge(x)
        loss = (F.cross_entropy(lc.float(), cls.clamp(min=0), reduction="none") * vis).sum() / vis.sum().clamp(min=1)
        loss = loss + F.cross_entropy(lb.float(), bgk)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            print(time.strftime("%H:%M:%S"), f"judge step {step} loss {loss.item():.4f}", flush=True)
    res = measure(judge, world, ae, seed=12345, split=a.split)
    res.update(steps=step, minutes=a.minutes, seed=a.seed, init=a.init, lr=a.lr, split=a.split,
               n_classes=world.n_classes,
               bg_kinds=BG_KINDS)
    print(json.dumps(res), flush=True)
    from safetensors.torch import save_file
    save_file({k: v.detach().half().cpu().contiguous() for k, v in judge.state_dict().items()},
              os.path.join(a.out, "judge.safetensors"))
    json.dump(res, open(os.path.join(a.out, "judge.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
