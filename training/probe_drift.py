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
sees it: the keyframe experiment of training/README.md "Keyframes".

    python3 training/probe_drift.py WEIGHTS_DIR [--n 32] [--T 48] [--sampler renoise|euler] [--guidance G] [--hist-noise S] [--reencode] [--refresh E:S]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval import cnn, probe_kit  # noqa: E402


def one_object_clips(world, n, T, seed):
    """n training clips without a switch whose one object is visible in frame 0"""
    vids, caps, cls, s = [], [], [], seed
    while len(vids) < n:
        b = world.sample(32, T=T, split="train", seed=s, p_switch=0.0)
        lab = b.labels
        for i in range(32):
            if lab["obj_visible"][i, 0, 0] and lab["obj_class"][i, 0, 0] >= 0 and lab["obj_class"][i, 0, 1] < 0:
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


def sdedit(M, model, x, h0, ctx, bias, K, s, gnr, uncond, guidance):
    """the app's sampler from x noised to level s, on the schedule scaled by s, with encoder output h0"""
    ts = [t * s for t in M.sampling_times(K)]
    x = (1 - s) * x + s * torch.randn(x.shape, generator=gnr)
    B = x.shape[0]
    for k, t in enumerate(ts):
        tt = torch.full((B,), t)
        v = M.guided_v(lambda c, cb: model.decoder(x, h0, tt, c, cb), ctx, bias, uncond, guidance)
        x0 = x - t * v
        if k + 1 < K:
            x = (1 - ts[k + 1]) * x0 + ts[k + 1] * torch.randn(x.shape, generator=gnr)
    return x0


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
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    world, judge, gen = probe_kit(a.weights, a.guidance, a.seed)
    M, model, g = gen.M, gen.model, gen.g
    video, caps, cls = one_object_clips(world, a.n, a.T, 3000 + a.seed)
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
        inc = M.IncrementalEncoder(model.encoder)
        prev, frames = None, []
        every, strength = (int(a.refresh.split(":")[0]), float(a.refresh.split(":")[1])) if a.refresh else (0, 0)
        for f in range(T):
            hf = inc.append(prev, ctx, bias)
            if f == 0:
                h0 = hf
            x = lat[:, 0] if f == 0 else sample(hf, ctx, bias, unc)
            if f > 0 and every and f % every == 0:
                x = sdedit(M, model, x, h0, ctx, bias, gen.K, strength, gnr, unc, g)
            frames.append(x)
            if f > 0 and a.reencode:
                x = M.latent_to_tokens(gen.ae.encode(gen.ae.decode(M.tokens_to_latent(x))))
            prev = x + a.hist_noise * torch.randn(x.shape, generator=gnr) if f > 0 else x
        roll = judged(torch.stack(frames, 1))
    print(f"{B} one-object clips, {T} frames, guidance {g}, sampler {a.sampler}, history noise {a.hist_noise}, "
          f"re-encoded {a.reencode}, refresh {a.refresh}")
    for name, hits in (("truth", truth), ("teacher", teacher), ("rollout", roll)):
        print(f"{name:8s}" + " ".join(f"{hits[:, w:w + 8].mean().item():.2f}" for w in range(0, T, 8)), flush=True)


if __name__ == "__main__":
    main()
