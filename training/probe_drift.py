"""Diagnosis (CPU): where does a rolled-out object lose its class? On one-object ground-truth clips of the
training data (no switch), the evaluation judge reads every frame of

- `truth`: the ground truth through the autoencoder (the ceiling);
- `teacher`: each frame sampled as the app samples it, but from the ground-truth history (teacher forcing:
  one frame's error, never compounded);
- `rollout`: the app's rollout from the ground-truth frame 0 (errors compound over frames);

per window of 8 frames: the share of frames that show the clip's class. If `teacher` holds and `rollout`
falls, the loss is exposure (the model's own history); if `teacher` falls too, the model cannot draw the
class from a clean history either. --sampler euler swaps the app's sampler (x0 prediction, fresh noise between
steps) for a deterministic Euler flow step, to see whether the fresh noise is what wanders off the shape.

--refresh E:S redraws every E-th rolled-out frame as a frame 0 (BOS history) from noise S before the encoder
sees it (--registered: moved first so its content sits where frame 0 has it, and moved back): the keyframe
experiment of training/README.md "Keyframes"; --moving keeps to straight motions on solid backgrounds, where
the motion kept is measured.

    python3 training/probe_drift.py WEIGHTS_DIR [--n 32] [--T 48] [--sampler renoise|euler] [--guidance G] [--hist-noise S] [--reencode] [--refresh E:S [--registered]] [--moving]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval import cnn, pixel_measures, probe_kit  # noqa: E402


def one_object_clips(world, n, T, seed, moving=False):
    """n training clips without a switch whose one object is visible in frame 0 (moving: and moves in a straight
    line on a solid background, where the motion can be measured)"""
    from spool_tiny.data import BG_KINDS, MOTIONS, STRAIGHT
    vids, caps, cls, s = [], [], [], seed
    while len(vids) < n:
        b = world.sample(32, T=T, split="train", seed=s, p_switch=0.0)
        lab = b.labels
        for i in range(32):
            ok = lab["obj_visible"][i, 0, 0] and lab["obj_class"][i, 0, 0] >= 0 and lab["obj_class"][i, 0, 1] < 0
            if moving:
                ok = ok and BG_KINDS[int(lab["bg_kind"][i, 0])] == "solid" and \
                    MOTIONS[int(lab["obj_motion"][i, 0, 0])][0] in STRAIGHT
            if ok:
                vids.append(b.video[i]); caps.append(b.captions[i][0]); cls.append(int(lab["obj_class"][i, 0, 0]))
        s += 1
    return torch.stack(vids[:n]), caps[:n], torch.tensor(cls[:n])


def euler_frame(M, model, h, ctx, bias, K, gen, uncond, guidance):
    """the deterministic Euler flow sampler on the same time grid as the app's"""
    ts = M.sampling_times(K) + [0.0]
    x = torch.randn(h.shape[0], 64, M.CFG.latent_channels, generator=gen)
    for k in range(K):
        tt = torch.full((h.shape[0],), ts[k])
        v = M.guided_v(lambda c, cb: model.decoder(x, h, tt, c, cb), ctx, bias, uncond, guidance)
        x = x + (ts[k + 1] - ts[k]) * v
    return x


def register(P, C):
    """per clip, the torus shift s (rows, columns) for which P's content, moved back by s, best overlaps C's
    (circular cross-correlation of each picture's distance from its median colour)"""
    fg = lambda x: (x - x.flatten(2).median(2).values[:, :, None, None]).abs().sum(1)  # noqa: E731
    a, b = fg(P), fg(C)
    corr = torch.fft.irfft2(torch.fft.rfft2(a) * torch.fft.rfft2(b).conj(), s=a.shape[-2:])
    i = corr.flatten(1).argmax(1)
    return [(int(k) // a.shape[-1], int(k) % a.shape[-1]) for k in i]


def roll_each(x, shifts, sign):
    return torch.stack([torch.roll(x[b], (sign * dy, sign * dx), (-2, -1)) for b, (dy, dx) in enumerate(shifts)])


def motion_kept(truth_px, roll_px, world):
    """mean over solid-background clips whose truth moves > 0.5 px a frame: the rollout's mean centroid step
    projected on the truth's, as a share of it (1: the same motion, 0: still)"""
    out = []
    for tv, rv in zip(truth_px, roll_px):
        vs = []
        for v in (tv, rv):
            _, _, fg, present, cx, cy = pixel_measures(v, world.palette.cpu())
            # steps between frames that show the whole object: one split across an edge (the torus) has its
            # centroid in the wrong place
            whole = present & ~(fg[:, 0].any(-1) | fg[:, -1].any(-1) | fg[:, :, 0].any(-1) | fg[:, :, -1].any(-1))
            d = torch.stack([cx.diff(), cy.diff()], 1)[whole[1:] & whole[:-1]]
            vs.append(d.mean(0) if len(d) else torch.zeros(2))
        if vs[0].norm() > 0.5:
            out.append(float((vs[1] @ vs[0]) / (vs[0] @ vs[0])))
    return sum(out) / max(1, len(out)), len(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--T", type=int, default=48)
    p.add_argument("--sampler", choices=["renoise", "euler"], default="renoise")
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--hist-noise", type=float, default=0.0,
                   help="Gaussian noise of this std added to each rolled-out frame before the encoder sees it")
    p.add_argument("--reencode", action="store_true",
                   help="each rolled-out frame goes through the autoencoder (decode, encode) before the encoder sees it")
    p.add_argument("--refresh", default=None, metavar="EVERY:STRENGTH",
                   help="every EVERY-th rolled-out frame is redrawn as a frame 0 (BOS history) from noise STRENGTH")
    p.add_argument("--moving", action="store_true", help="only straight motions on solid backgrounds")
    p.add_argument("--registered", action="store_true",
                   help="--refresh moves the frame so its content sits where frame 0 has it, redraws, and moves it back")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    world, judge, gen = probe_kit(a.weights, a.guidance, a.seed)
    M, model, g = gen.M, gen.model, gen.g
    video, caps, cls = one_object_clips(world, a.n, a.T, 3000 + a.seed, a.moving)
    B, T = a.n, a.T
    gnr = torch.Generator().manual_seed(a.seed)
    if a.sampler == "euler":
        sample = lambda h, c, b, unc: euler_frame(M, model, h, c, b, gen.K, gnr, unc, g)  # noqa: E731
    else:
        sample = lambda h, c, b, unc: M.sample_frame(model, h, c, b, gen.K, gnr, uncond=unc, guidance=g)  # noqa: E731

    def judged(lat):  # [B,T,64,16] -> [B,T] class hits
        out = []
        for t in range(lat.shape[1]):
            out.append(cnn(judge, gen.ae.decode(M.tokens_to_latent(lat[:, t])))[0] == cls)
        return torch.stack(out, 1).float()

    with torch.no_grad():
        ctx, bias = gen.condition(caps + [""])
        unc = (ctx[-1:].expand(B, -1, -1), bias[-1:].expand(B, -1))
        ctx, bias = ctx[:B], bias[:B]
        lat = torch.stack([M.latent_to_tokens(gen.ae.encode(video[:, t])) for t in range(T)], 1)
        truth = judged(lat)
        h = model.encoder(lat[:, :T - 1], ctx, bias)  # [B,T,64,D]: frame f's encoder output from frames < f
        rep = lambda x: x[:, None].expand(B, T, *x.shape[1:]).flatten(0, 1)  # noqa: E731
        teach = sample(h.flatten(0, 1), rep(ctx), rep(bias), (rep(unc[0]), rep(unc[1]))).view(B, T, 64, -1)
        teacher = judged(teach)
        ref = gen.ae.decode(M.tokens_to_latent(lat[:, 0]))  # frame 0: the caption's layout
        inc = M.IncrementalEncoder(model.encoder)
        prev, frames = None, []
        every, strength = (int(a.refresh.split(":")[0]), float(a.refresh.split(":")[1])) if a.refresh else (0, 0)
        for f in range(T):
            hf = inc.append(prev, ctx, bias)
            if f == 0:
                h0 = hf
            x = lat[:, 0] if f == 0 else sample(hf, ctx, bias, unc)
            if f > 0 and every and f % every == 0:
                if a.registered:
                    P = gen.ae.decode(M.tokens_to_latent(x))
                    sh = register(P, ref)
                    x = M.latent_to_tokens(gen.ae.encode(roll_each(P, sh, -1)))
                x = M.sample_frame(model, h0, ctx, bias, gen.K, gnr, uncond=unc, guidance=g, source=x, strength=strength)
                if a.registered:
                    x = M.latent_to_tokens(gen.ae.encode(roll_each(gen.ae.decode(M.tokens_to_latent(x)), sh, 1)))
            frames.append(x)
            if f > 0 and a.reencode:
                x = M.latent_to_tokens(gen.ae.encode(gen.ae.decode(M.tokens_to_latent(x))))
            prev = x + a.hist_noise * torch.randn(x.shape, generator=gnr) if f > 0 else x
        roll_lat = torch.stack(frames, 1)
        roll = judged(roll_lat)
        px = lambda L: [torch.stack([gen.ae.decode(M.tokens_to_latent(L[b:b + 1, t]))[0] for t in range(T)])  # noqa: E731
                        for b in range(B)]
        kept, n_moving = motion_kept(px(lat), px(roll_lat), world)
    print(f"{B} one-object clips, {T} frames, guidance {g}, sampler {a.sampler}, history noise {a.hist_noise}, "
          f"re-encoded {a.reencode}, refresh {a.refresh}, registered {a.registered}")
    for name, hits in (("truth", truth), ("teacher", teacher), ("rollout", roll)):
        print(f"{name:8s}" + " ".join(f"{hits[:, w:w + 8].mean().item():.2f}" for w in range(0, T, 8)), flush=True)
    print(f"motion kept by the rollout: {kept:.2f} of the truth's ({n_moving} moving clips on solid backgrounds)")


if __name__ == "__main__":
    main()
