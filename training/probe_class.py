"""Diagnosis (CPU): where does frame 0 lose the object's class? On one-object ground-truth frames, per noise level t:

- the frame-0 flow loss with the frame's caption, with the same caption naming another class of the same kind
  (same wording otherwise), and with the empty prompt — over the whole frame and over the object's tokens only:
  how much the class word is worth to the model at each t;
- the evaluation judge on the one-step prediction x0_hat = x_t - t v, decoded by the AE, with the true caption
  (does the prediction show the true class?) and with the swapped one (does it follow the text's class or the
  picture's?).

    python3 training/probe_class.py WEIGHTS_DIR [--n 96] [--t 0.1 0.3 0.5 0.7 0.9]
"""
import argparse
import copy
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval import TorchGen, load_judge  # noqa: E402
from spool_tiny import model as M  # noqa: E402
from spool_tiny.data import World  # noqa: E402
from spool_tiny.text import TextEncoder  # noqa: E402
from train_judge import one_object_scenes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def swapped(world, scene, rng):
    """the scene with its object's class replaced by another of the same kind and tint (so the caption's other
    words stay valid)"""
    o = scene["objs"][0]
    kind, tint = world.classes[o["cls"]]["kind"], world.tint[o["cls"]]
    pool = [i for i, c in enumerate(world.classes) if c["kind"] == kind and world.tint[i] == tint and i != o["cls"]]
    s = copy.deepcopy(scene)
    s["objs"][0]["cls"] = rng.choice(pool)
    return s


@torch.no_grad()
def main():
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("--n", type=int, default=96)
    p.add_argument("--t", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    a = p.parse_args()
    world = World()
    text = TextEncoder(os.path.join(HERE, "..", "assets", "minilm"), "cpu")
    gen = TorchGen(a.weights, "scd", None, 4, text)
    m, ae = gen.model, gen.ae
    judge = load_judge(os.path.join(HERE, "judge", "judge.safetensors"), world.n_classes)
    scenes = one_object_scenes(world, random.Random(31), a.n, "train")
    rng = random.Random(5)
    other = [swapped(world, s, rng) for s in scenes]
    # the same wording for both: each pair of captions from the same RNG state
    caps = [world.caption(random.Random(1000 + i), s) for i, s in enumerate(scenes)]
    caps_sw = [world.caption(random.Random(1000 + i), s) for i, s in enumerate(other)]
    b = world.sample(a.n, T=1, split="train", seed=31, p_switch=0.0, scenes=scenes)
    seen = b.labels["obj_visible"][:, 0, 0]
    cls = b.labels["obj_class"][:, 0, 0]
    cls_sw = torch.tensor([s["objs"][0]["cls"] for s in other])
    obj_tok = (b.obj_cover[:, 0].reshape(a.n, 64) > 0.05).float()  # the object's latent tokens
    x0 = M.latent_to_tokens(ae.encode(b.video[:, 0]))
    print(f"{int(seen.sum())} of {a.n} frames show their object; e.g. {caps[0]!r} -> {caps_sw[0]!r}")

    tok, mask = text.encode(caps + caps_sw + [""])
    ctx_all, bias_all = m.text_proj(tok.float()), torch.where(mask, 0.0, -1e4).float()
    n = a.n
    conds = {"true": (ctx_all[:n], bias_all[:n]), "swap": (ctx_all[n:2 * n], bias_all[n:2 * n]),
             "empty": (ctx_all[-1:].expand(n, -1, -1), bias_all[-1:].expand(n, -1))}
    h = {k: M.IncrementalEncoder(m.encoder).append(None, c, cb) for k, (c, cb) in conds.items()}
    gen_ = torch.Generator().manual_seed(7)
    eps = torch.randn(x0.shape, generator=gen_)

    def judged(x):
        return judge(ae.decode(M.tokens_to_latent(x)).float())[0].argmax(1)

    print("t    | loss true / swap / empty (frame) | object tokens true / swap / empty | "
          "judge of x0_hat: true caption->true class | swapped caption->true, ->swapped class")
    for t in a.t:
        xt = (1 - t) * x0 + t * eps
        tt = torch.full((n,), t)
        row, x0h = {}, {}
        for k, (c, cb) in conds.items():
            v = m.decoder(xt, h[k], tt, c, cb)
            err = (v - (eps - x0)).pow(2).mean(2)  # [n, 64]
            row[k] = (err.mean().item(), ((err * obj_tok).sum() / obj_tok.sum()).item())
            x0h[k] = xt - t * v
        jt, js = judged(x0h["true"]), judged(x0h["swap"])
        acc = lambda pred, want: (pred == want)[seen].float().mean().item()  # noqa: E731
        print(f"{t:.2f} | {row['true'][0]:.4f} / {row['swap'][0]:.4f} / {row['empty'][0]:.4f} | "
              f"{row['true'][1]:.4f} / {row['swap'][1]:.4f} / {row['empty'][1]:.4f} | "
              f"{acc(jt, cls):.3f} | {acc(js, cls):.3f}, {acc(js, cls_sw):.3f}", flush=True)


if __name__ == "__main__":
    main()
