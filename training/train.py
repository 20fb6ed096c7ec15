"""Train spool-tiny: phase 1 the autoencoder, phase 2 the generator (AE frozen). Resumable, time-budgeted.

    python3 training/train.py --out RUN_DIR --ae-minutes 4.5 --gen-minutes 18 [--batch 64 --T 24]

Writes into RUN_DIR:
  ckpt.pt                       full f32 state (AE, generator, EMA, optimizer, phase, step, elapsed) -- resumable
  export/model.safetensors      f16 EMA generator, SPEC key names
  export/ae.safetensors         f16 autoencoder + ae.latent_scale
  export/config.json
  export/ema_f32_0/1.safetensors, export/ae_f32.safetensors   f32 weights (sharded < 16 MiB)
  samples/*.png                 rollouts (rows: prompts, columns: every 2nd frame), recon strips
  log.txt
See training/README.md for the exact runs.
"""
import argparse
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spool_tiny.data import DATA_VERSION, Planner, World, save_strip  # noqa: E402
from spool_tiny import model as M  # noqa: E402
from spool_tiny.model import (AutoEncoder, NonSeparable, SpoolTiny, latent_to_tokens, load_safetensors,  # noqa: E402
                              rollout, rollout_nonseparable, save_safetensors, tokens_to_latent)

SAMPLE_PROMPTS = [
    "a red circle moving left on a blue background",
    "blue backdrop, a yellow star spins",
    "a green triangle bouncing on a starry night sky",
    "a white letter A moving right on a black background",
    "a cat moving up against a clear daytime sky",
    "a purple heart growing on a yellow and white checkered background",
]
SWITCH_PROMPTS = ("a white square moving right on a black background",
                  "a white square moving right on a red background")


def log(msg, f=None):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if f is not None:
        f.write(line + "\n"); f.flush()


def lr_at(frac, step, base, warmup):
    w = min(1.0, (step + 1) / warmup)
    return base * w * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def get_text_encoder(minilm_dir, device):
    try:
        from spool_tiny.text import TextEncoder
        return TextEncoder(minilm_dir, device)
    except Exception as e:  # fallback documented in README
        print("TextEncoder from spool_tiny.text failed:", repr(e), "-- using transformers BertModel", flush=True)
        raise


class GraphedRollout:
    """--p-rollout-ctx's rollouts: the EMA model's own frames from a ground-truth prefix of r frames
    (M.rollout with the app's sampler, the clip's caption per frame), replayed from one CUDA graph per r.
    Eager, a rollout is thousands of small kernel launches (at --T 24 ~22 encoder appends and 88 decoder
    passes) and the GPU idles between them: 450 ms a step on the H100 against 214 ms for the rest of the
    step (training/README.md, "Runs 27-28"). A graph is captured on an r's first use from static inputs;
    the EMA weights are updated in place, so every replay reads the current ones. The first replay is
    checked against the eager warm-up run on the same inputs; a mismatch or a failed capture logs why and
    falls back to eager for the rest of the run. On the CPU it is always eager."""

    def __init__(self, model, K, guidance, logf=None):
        self.model, self.K, self.g, self.logf = model, K, guidance, logf
        self.graphs, self.static, self.eager = {}, None, False

    def run(self, x0, ctx, cb, unc_ctx, unc_bias, noise, r, n):
        k = x0.shape[0]
        return rollout(self.model, lambda f: (ctx[:, f], cb[:, f]), None, n, self.K, first_latents=x0[:, :r],
                       uncond=(unc_ctx.expand(k, *unc_ctx.shape), unc_bias.expand(k, *unc_bias.shape)),
                       guidance=self.g, noise=noise[:n])

    def __call__(self, x0, ctx, cb, unc_ctx, unc_bias, r, n):
        """x0 [k,T,64,16] the clips' ground truth (frames < r are the prefix); ctx [k,T,m,D] / cb [k,T,m] each
        frame's projected caption; unc_ctx [m,D] / unc_bias [m] the empty prompt's. -> frames 0..n-1 [k,n,64,16]"""
        k, T = x0.shape[:2]
        noise = torch.randn(T - 1, self.K, k, 64, x0.shape[-1], device=x0.device)
        args = (x0, ctx, cb, unc_ctx, unc_bias, noise)
        if x0.device.type != "cuda" or self.eager:
            return self.run(*args, r, n)
        if self.static is None or any(s.shape != a.shape or s.dtype != a.dtype for s, a in zip(self.static, args)):
            self.static, self.graphs = [a.clone() for a in args], {}
        for s, a in zip(self.static, args):
            s.copy_(a)
        if (r, n) not in self.graphs:
            try:
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    ref = self.run(*self.static, r, n)  # warm-up: also fills temporal_bias_on's device copies
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    out = self.run(*self.static, r, n)
                graph.replay()
                err = (out.float() - ref.float()).abs().max().item()
                if not err <= 1e-3 * ref.float().pow(2).mean().sqrt().item():
                    raise RuntimeError(f"graph replay differs from the eager rollout by {err:.3g}")
                self.graphs[r, n] = (graph, out)
                log(f"rollout graph for frames {r}..{n - 1} captured (replay vs eager max |diff| {err:.2g})", self.logf)
            except Exception as e:
                log(f"rollout graph for frames {r}..{n - 1} failed ({e!r:.300}); eager rollouts from here on", self.logf)
                self.eager, self.graphs = True, {}
                return self.run(*args, r, n)
        graph, out = self.graphs[r, n]
        graph.replay()
        return out.clone()


class Trainer:
    def __init__(self, args):
        self.a = args
        self.dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        torch.manual_seed(args.seed)
        random.seed(args.seed)
        self.world = World(self.dev, use_sprites=not args.no_sprites)
        os.makedirs(os.path.join(args.out, "export"), exist_ok=True)
        self.ckpt_path = os.path.join(args.out, "ckpt.pt")
        ck = torch.load(self.ckpt_path, map_location=self.dev) if os.path.exists(self.ckpt_path) else None
        # the checkpoint's AE says how wide the latent is (a grown one is wider than any --ae-layout)
        M.set_ae_layout(M.AE_LAYOUTS[args.ae_layout] if ck is None else M.ae_layout_of(ck["ae"]))
        self.use_ae(AutoEncoder())  # a checkpoint or --init/--init-assets replace it with theirs, in their layout
        if args.variant == "fullres":  # ablation: every history element at full resolution (no MSC pooling)
            M.CFG.n_full = M.CFG.window
        M.CFG.decoder_blocks = args.decoder_blocks
        M.CFG.d_model, M.CFG.head_dim = args.d_model, args.d_model // M.CFG.heads  # heads (ALiBi slopes) stay 4
        self.Net = NonSeparable if args.variant == "nonsep" else SpoolTiny
        self.new_generator(self.Net().state_dict())
        self.state = dict(phase="ae", ae_step=0, ae_elapsed=0.0, gen_step=0, gen_elapsed=0.0, ae_loss=None,
                          gen_loss=None)
        os.makedirs(os.path.join(args.out, "samples"), exist_ok=True)
        self.logf = open(os.path.join(args.out, "log.txt"), "a")
        self.anchor = None  # --ae-grow: the shipped AE, whose latent the grown one keeps in its leading channels
        if ck is not None:
            self.use_ae(M.ae_from_state(ck["ae"])); self.model.load_state_dict(ck["model"])
            self.ema.load_state_dict(ck["ema"]); self.opt_ae.load_state_dict(ck["opt_ae"])
            self.opt.load_state_dict(ck["opt"]); self.state.update(ck["state"])
            log(f"resumed {self.state}", self.logf)
        use_judge = args.class_weight > 0 or args.sample_class_weight > 0
        self.class_judge = self.load_class_judge(args.class_judge) if use_judge else None
        self.text = get_text_encoder(args.minilm, self.dev)
        self.world.fits = self.text.fits
        self.empty_tokens = self.text.tokenizer.batch([""])[:2]  # (ids, mask), next to a Planner's captions
        self.planner = None
        if args.plan_workers:
            self.planner = Planner(args.plan_workers, not args.no_sprites, os.path.join(args.minilm, "vocab.txt"))
        if args.init and self.state["ae_step"] == 0 and self.state["gen_step"] == 0:
            self.load_init(args.init)
        if args.init_assets and self.state["ae_step"] == 0 and self.state["gen_step"] == 0:
            self.load_init_assets(args.init_assets)
            if args.ae_decoder_only:
                self.state["phase"] = "ae"
                self.state["ae_eval_mse_before"] = self.recon_eval(save=False)
                log(f"decoder-only fine-tune of {args.init_assets}'s AE: eval recon mse before "
                    f"{self.state['ae_eval_mse_before']:.5f}", self.logf)
            if args.whiten:
                self.whiten([self.model, self.ema])
            if args.ae_grow:
                self.grow(args.ae_grow)
        elif args.ae_grow and self.state["phase"] == "ae":
            self.anchor = self.load_anchor()
        if args.init_gen and self.state["ae_step"] == 0 and self.state["gen_step"] == 0:
            self.load_generator(args.init_gen, new_latent=True)
        self.rng = random.Random(args.seed * 1000 + self.state["ae_step"] + self.state["gen_step"])
        self.train_fn = self.model.forward_train
        self.ema_fn = self.ema.forward_train
        self.rollout_graphs = GraphedRollout(self.ema, args.sample_steps, args.guidance, self.logf)
        if args.compile and self.dev.type == "cuda":
            if args.variant != "nonsep":
                for net in (self.model, self.ema):  # masks made outside the compiled graphs
                    for S in (1, args.T):
                        net.encoder.mask(S, torch.device("cuda", torch.cuda.current_device()), torch.bfloat16)
            # static shapes: one graph for the clips and one for --img-batch's single frames
            self.train_fn = torch.compile(self.model.forward_train, dynamic=False)
            self.ema_fn = torch.compile(self.ema.forward_train, dynamic=False)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        self.last_export = time.time()
        self.ce_log = {}  # latest teacher cross-entropies, for the log
        self.probe = None  # class_probe's judge and fixed frames, made at its first call
        self.prof, self.prof_t = None, 0.0  # --profile: seconds per phase of a step (GPU synchronised)

    def new_generator(self, sd):
        """model, EMA and optimizer afresh (at the current CFG), both nets holding state dict `sd`"""
        self.model = self.Net().to(self.dev)
        self.model.load_state_dict(sd)
        self.ema = self.Net().to(self.dev)
        self.ema.load_state_dict(sd)
        self.ema.requires_grad_(False)
        a = self.a
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)

    def grow(self, extra):
        """--ae-grow: the shipped AE with `extra` more conv latent channels (M.grow_latent) and the shipped
        generator widened to it (M.widen_generator: the same function of the old channels); the AE phase then
        trains the grown AE with the shipped one as its anchor, and the generator continues on the wider latent."""
        self.anchor = self.ae.requires_grad_(False).eval()
        c_old = M.CFG.latent_channels
        grown = M.grow_latent(self.anchor, extra)
        self.new_generator(M.widen_generator(self.model.state_dict(), M.CFG.latent_channels))
        self.use_ae(grown)
        self.state.update(phase="ae", grown_from=c_old)
        log(f"latent grown from {c_old} to {M.CFG.latent_channels} channels ({extra} more conv channels); "
            "the AE phase trains the new ones", self.logf)

    def load_anchor(self):
        """the shipped AE of --init-assets (on a resumed --ae-grow run), leaving the grown layout in CFG"""
        old = load_safetensors(None, os.path.join(self.a.init_assets, "ae.safetensors"))[1]
        M.set_ae_layout(M.ae_layout_of(self.ae.state_dict()))  # the grown AE of the checkpoint
        return old.to(self.dev).requires_grad_(False).eval()

    def load_class_judge(self, path):
        """The teacher for --class-weight: a judge from `train_judge.py --split train`, never the evaluation
        judge (the class mark would then measure how well the generator fools its own teacher)."""
        import hashlib
        from safetensors.torch import load_file
        from train_judge import Judge
        if not path:
            sys.exit("--class-weight needs --class-judge: train one with `train_judge.py --split train`")
        eval_judge = os.path.join(os.path.dirname(os.path.abspath(__file__)), "judge", "judge.safetensors")
        digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
        if os.path.exists(eval_judge) and digest(path) == digest(eval_judge):
            sys.exit(f"--class-judge {path} is the evaluation judge: train a separate one with "
                     "`train_judge.py --split train --seed N`")
        j = Judge(self.world.n_classes).to(self.dev)
        j.load_state_dict({k: v.float() for k, v in load_file(path).items()})
        j.requires_grad_(False)
        log(f"class loss: weight {self.a.class_weight} (one-step), {self.a.sample_class_weight} (sampled) "
            f"through judge {path}", self.logf)
        return j.eval()

    def use_ae(self, ae):
        """train and use `ae` (any layout), with a fresh optimizer; with --ae-decoder-only only its decoder
        learns (the encoder, hence the latent the generator was trained on, stays as it is)"""
        self.ae = ae.to(self.dev)
        self.ae.enc.requires_grad_(not self.a.ae_decoder_only)
        params = self.ae.dec.parameters() if self.a.ae_decoder_only else self.ae.parameters()
        self.opt_ae = torch.optim.AdamW(params, lr=self.a.ae_lr, betas=(0.9, 0.99), weight_decay=0.0)

    def load_init(self, d):
        """start from exported f32 weights (ema_f32_*.safetensors, ae_f32.safetensors) of an earlier run."""
        from safetensors.torch import load_file
        sa = load_file(os.path.join(d, "ae_f32.safetensors"))
        sa["latent_scale"] = sa["latent_scale"].reshape(())
        self.use_ae(M.ae_from_state(sa))
        sd = {}
        for i in (0, 1):
            p = os.path.join(d, f"ema_f32_{i}.safetensors")
            if os.path.exists(p):
                sd.update(load_file(p))
        if sd:
            self.model.load_state_dict(sd); self.ema.load_state_dict(sd)
        self.state["phase"] = "gen"
        log(f"initialised from {d} (generator weights: {bool(sd)}); AE phase skipped", self.logf)

    def load_init_assets(self, d):
        """start from shipped (f16) weights: the AE (in its file's layout) always, the generator unless
        --fresh-gen."""
        self.use_ae(load_safetensors(None, os.path.join(d, "ae.safetensors"))[1])
        if not self.a.fresh_gen:
            self.load_generator(d)
        self.state["phase"] = "gen"
        log(f"initialised from assets {d} (generator: {not self.a.fresh_gen}); AE phase skipped", self.logf)

    def load_generator(self, d, new_latent=False):
        """the generator of d/model.safetensors (f16); --init-gen takes only this, and the AE phase still
        runs: a new autoencoder under a generator that already knows text, motion and the cache. With
        new_latent the layers that read or write the latent start afresh (in_proj as at init, out_proj at
        zero: v = 0 and no gradient into the body until out_proj has learned the new latent), so the first
        steps do not push garbage gradients through the body trained on the old one."""
        from safetensors.torch import load_file
        gen = {k: v.float() for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
        n = M.grow_decoder(self.model, gen)  # --decoder-blocks deeper than the file: identity blocks added
        if new_latent:
            with torch.no_grad():
                for lin in (self.model.encoder.in_proj, self.model.decoder.in_proj):
                    torch.nn.init.trunc_normal_(lin.weight, std=0.02); lin.bias.zero_()
                self.model.decoder.out_proj.weight.zero_(); self.model.decoder.out_proj.bias.zero_()
        self.ema.load_state_dict(self.model.state_dict())
        if n != M.CFG.decoder_blocks:
            log(f"decoder grown from {n} to {M.CFG.decoder_blocks} blocks (new ones start as the identity)",
                self.logf)
        log(f"generator from {d}" + (" (latent in/out layers reset for the new AE)" if new_latent else ""), self.logf)

    @torch.no_grad()
    def whiten(self, generators, keep=0):
        """--whiten: re-express the AE's latent (and `generators`: those trained on this latent) in whitened
        coordinates (model.whiten_latent), from 2,048 fresh training frames. The AE's pictures and the
        generators' function are unchanged; the noise and the loss now treat every latent direction alike."""
        zs = [self.ae.encode(self.world.sample(64, T=4, split="train", seed=20_000 + i, p_switch=0.3)
                             .video.flatten(0, 1)).float() for i in range(8)]
        _, lam = M.whiten_latent(self.ae, torch.cat(zs), generators, self.a.whiten_floor, keep=keep)
        floor = self.a.whiten_floor * lam.mean().item()
        log(f"whitened the latent: second-moment eigenvalues {[round(v, 3) for v in lam.tolist()]} -> 1"
            f" (those below {floor:.3f} scaled as if they were that)", self.logf)

    # ------------------------------------------------------------------------------------------------------
    def save_ckpt(self):
        tmp = self.ckpt_path + ".tmp"
        torch.save(dict(ae=self.ae.state_dict(), model=self.model.state_dict(), ema=self.ema.state_dict(),
                        opt_ae=self.opt_ae.state_dict(), opt=self.opt.state_dict(), state=self.state), tmp)
        os.replace(tmp, self.ckpt_path)

    def export(self, tag):
        from safetensors.torch import save_file
        if self.state["phase"] != "ae":
            self.val_loss()
            self.class_probe()
        final = os.path.join(self.a.out, "export")
        ex = os.path.join(self.a.out, "export_tmp")
        os.makedirs(ex, exist_ok=True)
        extra = dict(data_version=DATA_VERSION, ae_steps=self.state["ae_step"], gen_steps=self.state["gen_step"],
                     ae_loss=self.state["ae_loss"], gen_loss=self.state["gen_loss"], seed=self.a.seed,
                     n_classes=self.world.n_classes, trained_with="training/train.py",
                     guidance_scale=self.a.guidance, variant=self.a.variant,
                     val_loss=self.state.get("val_loss"))
        if self.a.guidance_min_t:
            extra["guidance_min_t"] = self.a.guidance_min_t
        save_safetensors(self.ema, os.path.join(ex, "model.safetensors"), os.path.join(ex, "ae.safetensors"),
                         ae=self.ae, extra_config=extra)
        sd = {k: v.detach().float().cpu().contiguous() for k, v in self.ema.state_dict().items()}
        keys = sorted(sd)
        half = len(keys) // 2
        save_file({k: sd[k] for k in keys[:half]}, os.path.join(ex, "ema_f32_0.safetensors"))
        save_file({k: sd[k] for k in keys[half:]}, os.path.join(ex, "ema_f32_1.safetensors"))
        sa = {k: v.detach().float().cpu().contiguous() for k, v in self.ae.state_dict().items()}
        sa["latent_scale"] = sa["latent_scale"].reshape(1)
        save_file(sa, os.path.join(ex, "ae_f32.safetensors"))
        for fn in os.listdir(ex):  # per-file atomic, so a copy taken mid-export is never torn
            os.replace(os.path.join(ex, fn), os.path.join(final, fn))
        self.save_ckpt()
        log(f"exported ({tag}) {self.state}", self.logf)

    # ------------------------------------------------------------------------------------------------------
    def encode_text(self, captions_flat, tokens=None):
        """MiniLM states and attention bias of the captions; `tokens` (ids, mask), when a Planner already
        tokenised them, saves the training process that work."""
        with torch.no_grad():
            tok, mask = self.text.encode(captions_flat) if tokens is None else self.text.encode_ids(*tokens)
        bias = torch.where(mask, 0.0, -1e4).float()
        return tok.float(), bias

    # ------------------------------------------------------------------------------------------------------
    def ae_phase(self):
        a = self.a
        budget = a.ae_minutes * 60
        t_last = time.time()
        n0 = self.state["ae_step"]
        while self.state["ae_elapsed"] < budget:
            t0 = time.time()
            if self.state["ae_step"] % 2 == 0:  # one render feeds two steps (halves of 2*ae_batch frames)
                b = self.world.sample(a.ae_batch // 4, T=8, split="train", seed=self.rng.getrandbits(31),
                                      p_switch=0.3)
                frames = b.video.flatten(0, 1)
                frames = frames[torch.randperm(frames.shape[0], device=frames.device)]
                x = frames[:a.ae_batch]
            else:
                x = frames[a.ae_batch:]
            lr = lr_at(self.state["ae_elapsed"] / budget, self.state["ae_step"], a.ae_lr, 100)
            for g in self.opt_ae.param_groups:
                g["lr"] = lr
            with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
                z = self.ae.enc(x)
                zn = z + a.ae_latent_noise * z.detach().float().std() * torch.randn_like(z)
                xr = self.ae.dec(zn, clamp=False)
            xr = xr.float()
            loss = F.l1_loss(xr, x) + F.mse_loss(xr, x) + 1e-4 * z.float().pow(2).mean()
            if self.anchor is not None:  # the grown AE's leading channels stay the latent the generator knows
                with torch.no_grad(), torch.autocast(self.dev.type, dtype=torch.bfloat16,
                                                     enabled=self.dev.type == "cuda"):
                    zr = self.anchor.encode(x).float()
                zs = z.float() * self.ae.latent_scale
                loss = loss + a.ae_anchor_weight * F.mse_loss(zs[:, :zr.shape[1]], zr)
            if a.ae_edge_weight:  # edges and small shapes: L1 of the pictures' horizontal and vertical steps
                loss = loss + a.ae_edge_weight * sum(
                    F.l1_loss(xr.diff(dim=d), x.diff(dim=d)) for d in (2, 3))
            self.opt_ae.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.ae.parameters(), 1.0)
            self.opt_ae.step()
            self.state["ae_step"] += 1
            self.state["ae_elapsed"] += time.time() - t0
            if self.state["ae_step"] % 50 == 0:
                l = loss.item()
                self.state["ae_loss"] = l
                dt = time.time() - t_last
                log(f"ae step {self.state['ae_step']} loss {l:.4f} lr {lr:.2e} "
                    f"{(self.state['ae_step'] - n0) / max(dt, 1e-9):.2f} steps/s "
                    f"elapsed {self.state['ae_elapsed']:.0f}s", self.logf)
                t_last = time.time(); n0 = self.state["ae_step"]
            if time.time() - self.last_export > a.export_every:
                self.save_ckpt(); self.last_export = time.time()
        if a.ae_decoder_only:  # the latent and its scale are the generator's: left as they are
            rec = self.recon_eval()
            log(f"AE decoder done: eval recon mse {self.state['ae_eval_mse_before']:.5f} -> {rec:.5f}", self.logf)
            self.state["ae_eval_mse"] = rec
            self.state["phase"] = "done"
            self.export("decoder-done")
            self.samples("final")
            return
        if self.anchor is not None:  # the old channels keep their scale; the new ones are whitened among themselves
            keep = self.state["grown_from"]
            rec = self.recon_eval()
            self.whiten([self.model, self.ema], keep=keep)
            log(f"AE grown: eval recon mse {rec:.5f}", self.logf)
            self.state.update(ae_eval_mse=rec, phase="gen")
            self.anchor = None
            self.export("ae-done")
            return
        # latent scale: std of raw latents over fresh data
        with torch.no_grad(), torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            zs = []
            for i in range(8):
                b = self.world.sample(64, T=4, split="train", seed=10_000 + i, p_switch=0.3)
                zs.append(self.ae.enc(b.video.flatten(0, 1)).float())
            z = torch.cat(zs)
            std = z.std().item()
            self.ae.latent_scale.fill_(1.0 / std)
        rec = self.recon_eval()
        log(f"AE done: raw latent std {std:.4f} mean {z.mean().item():.4f} -> latent_scale {1 / std:.4f}; "
            f"eval recon mse {rec:.5f}", self.logf)
        self.state["ae_eval_mse"] = rec
        if self.a.whiten:
            self.whiten([])  # the generator has not been trained on this AE's latent: nothing to re-express
        self.state["phase"] = "gen"
        self.export("ae-done")

    @torch.no_grad()
    def recon_eval(self, save=True):
        """the AE's reconstruction MSE on 64 held-out frames (fixed seed); the strip to samples/ae_recon.png"""
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            b = self.world.sample(8, T=8, split="eval", seed=777)
            xr = self.ae.decode(self.ae.encode(b.video.flatten(0, 1))).float()
        if save:
            save_strip(torch.cat([b.video[:4], xr.view_as(b.video)[:4]], 0),
                       os.path.join(self.a.out, "samples", "ae_recon.png"))
        return F.mse_loss(xr, b.video.flatten(0, 1)).item()

    # ------------------------------------------------------------------------------------------------------
    def sample_t(self, B, T):
        u = torch.rand(B, T, device=self.dev)
        s = self.a.t_shift
        t = s * u / (1 + (s - 1) * u)
        near1 = torch.rand(B, T, device=self.dev) < self.a.p_full_noise
        t = torch.where(near1, 1.0 - 0.02 * torch.rand(B, T, device=self.dev), t)
        return t

    def mark(self, phase):
        """--profile: charge the time since the last mark to `phase` (after the GPU has finished it)."""
        if self.prof is None:
            return
        if self.dev.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.prof[phase] = self.prof.get(phase, 0.0) + now - self.prof_t
        self.prof_t = now

    def profile(self, n):
        """--profile N: N generator steps (after 3 warm-up steps), then the seconds each phase took per step."""
        for i in range(n + 3):
            if i == 3:
                self.prof, self.prof_t = {}, time.perf_counter()
            self.mark("other")
            loss, _ = self.gen_step()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.mark("backward+step")
        per = {k: v / n for k, v in self.prof.items()}
        log("profile per step: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in per.items())
            + f"; total {sum(per.values()) * 1e3:.1f} ms", self.logf)

    def gen_step(self, train=True, seed=None):
        """One training batch: the clip loss, plus (training only, --img-batch) a batch of single frames, i.e.
        frame 0 alone, the frame whose layout and object identity come from the caption alone."""
        a = self.a

        def jobs(seed=None):  # World.plan arguments of one step: the clips, then (training) the single frames
            seed = self.rng.getrandbits(31) if seed is None else seed
            j = [(a.batch, a.T, "train", seed, a.p_switch, None, a.p_wrap, a.p_lag if train else 0.0,
                  a.p_reentry if train else 0.0, a.class_share if train else None)]
            img = (a.img_batch, 1, "train", seed ^ 0x5A5A5A, 0.0, None, 0.0, 0.0, 0.0, None, a.p_shift)
            return j + [img] if train and a.img_batch else j
        if seed is None and self.planner is not None:
            plans = self.planner.next(jobs)
        else:
            plans = [self.world.plan(*j) for j in jobs(seed)]
        self.mark("plan")
        loss, err = self.clip_loss(self.world.render_plan(plans[0]), train)
        if len(plans) > 1:
            b1 = self.world.render_plan(plans[1])
            self.mark("render")
            loss = loss + a.img_weight * self.clip_loss(b1, train)[0]
            if a.sample_class_weight > 0:
                loss = loss + self.sample_class_loss(b1)
        return loss, err

    def clip_loss(self, b, train):
        """Flow-matching loss of a rendered batch b (teacher forcing). Returns (weighted loss, plain error per
        frame [B,T]); the plain error is what val_loss and the log report, whatever the weighting."""
        a = self.a
        B, T = b.video.shape[:2]
        self.mark("render")
        with torch.no_grad(), torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            z = self.ae.encode(b.video.flatten(0, 1)).float()
        self.mark("ae encode")
        x0 = latent_to_tokens(z).reshape(B, T, 64, M.CFG.latent_channels)
        flat, offs = [], []
        for caps in b.captions:
            offs.append(len(flat)); flat.extend(caps)
        flat.append("")  # the empty prompt: the decoder's text when the caption is dropped (CFG)
        pre = None
        if b.cap_tokens is not None:
            pre = tuple(np.concatenate([x, e]) for x, e in zip(b.cap_tokens, self.empty_tokens))
        tok, bias = self.encode_text(flat, pre)
        self.mark("text")
        idx = torch.tensor(offs, device=self.dev)[:, None] + b.caption_idx  # [B,T]
        t, w0 = self.frame0_noise(self.sample_t(B, T), b.labels["wrapped"])
        eps = torch.randn_like(x0)
        xt = (1 - t[..., None, None]) * x0 + t[..., None, None] * eps
        target = eps - x0
        sig = torch.rand(B, 1, 1, 1, device=self.dev) * a.ctx_noise
        sig = sig * (torch.rand(B, 1, 1, 1, device=self.dev) < a.p_ctx_noise) * float(train)
        lat_in = x0[:, :T - 1]
        w = torch.ones(B, T, device=self.dev)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            ctx_all = (self.model if train else self.ema).text_proj(tok)  # [U,32,D]
            ctx = ctx_all[idx]
            cb = bias[idx]
            if train and a.p_self_ctx > 0 and T > 1:
                lat_in = self.own_history(x0, lat_in, ctx.detach(), cb)
            if train and a.p_rollout_ctx > 0 and T > 5:
                lat_in = self.rollout_history(x0, lat_in, ctx.detach(), cb, ctx_all[-1].detach(), bias[-1], w)
            lat_in = lat_in + sig * torch.randn_like(lat_in)
            drop = (torch.rand(B, device=self.dev) < (a.p_uncond if train else 0.0))[:, None, None, None]
            dctx = torch.where(drop, ctx_all[-1].expand_as(ctx), ctx)
            dcb = torch.where(drop[..., 0], bias[-1].expand_as(cb), cb)
            v = self.train_fn(xt, t, lat_in, ctx, cb, dctx, dcb)
        self.mark("forward")
        err_tok = (v.float() - target).pow(2).mean(dim=3)  # [B,T,64]
        extra = self.class_loss(xt, t, v, b) if train and a.class_weight > 0 else 0.0
        # object tokens weigh 1 + obj_weight x coverage: they are a few of the 64 tokens, but the class is there
        wt = 1 + a.obj_weight * b.obj_cover.reshape(B, T, 64)
        err_w = (err_tok * wt).sum(2) / wt.sum(2)
        w[:, 0] = w0
        w[b.labels["gap"]] = 0.0  # a re-entry clip's frames without its objects are history only (data.py)
        if train and a.switch_weight != 1.0:
            # the frames that carry a switch (its crossfade, late by up to 4 frames) are few of a clip's frames,
            # and a class change is a few object tokens of each: the flow loss barely asks for it (run 26)
            sf, f = b.labels["switch_frame"][:, None], torch.arange(T, device=self.dev)[None]
            w = torch.where((sf >= 0) & (f >= sf) & (f < sf + 8), w * a.switch_weight, w)
        loss = (err_w * w).sum(1).mean() / (a.frame0_weight + T - 1) + extra
        return loss, err_tok.mean(2)

    def frame0_noise(self, t, off):
        """Frame 0's noise levels and loss weights, given t [B,T] and which clips start off the caption's layout
        (off [B]: wrap clips, shifted frames; data.py). Frame 0 (layout from the caption alone) is trained on
        purpose; one off that layout only at noise levels up to --offlayout-tmax (t scaled into [0, tmax]), where
        the layout is already there to clean up, or (tmax 1) not at all."""
        a = self.a
        if a.offlayout_tmax >= 1:
            return t, a.frame0_weight * (~off).float()
        t = torch.cat([torch.where(off, t[:, 0] * a.offlayout_tmax, t[:, 0])[:, None], t[:, 1:]], 1)
        return t, torch.full_like(t[:, 0], a.frame0_weight)

    def class_loss(self, xt, t, v, b):
        """--class-weight × the teacher judge's cross-entropy on frame 0's one-step prediction
        x0_hat = x_t - t v, decoded by the (frozen) AE, on frames with exactly one visible object: the
        gradient asks the decoder to draw the caption's class, which the flow loss alone has not taught
        (training/README.md, run 3). Frame 0 only: later frames copy their history."""
        a, rows = self.a, self.one_object_rows(b)
        if rows.numel() == 0:
            return 0.0
        x0 = xt[rows, 0] - t[rows, 0, None, None] * v[rows, 0].float()
        return a.class_weight * self.judge_ce(x0, b.labels["obj_class"][rows, 0, 0], "ce1")

    def one_object_rows(self, b):
        """clips of b whose frame 0 shows exactly one object, at most --class-frames of them"""
        lab = b.labels
        one = lab["obj_visible"][:, 0, 0] & (lab["obj_class"][:, 0, 0] >= 0) & (lab["obj_class"][:, 0, 1] < 0)
        return one.nonzero()[:, 0][:self.a.class_frames]

    def judge_ce(self, x0, cls, name):
        """the teacher judge's cross-entropy on latent frames x0 [N,64,16], decoded by the frozen AE; the
        last value is kept (detached, no sync) for the log under `name`"""
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            logits, _ = self.class_judge(self.ae.decode(tokens_to_latent(x0), clamp=False))
        ce = F.cross_entropy(logits.float(), cls)
        self.ce_log[name] = ce.detach()
        return ce

    def sample_class_loss(self, b):
        """--sample-class-weight × the teacher judge's cross-entropy on frame 0 *as the app samples it*: the
        training model runs the app's sampler (K = --sample-steps, fresh noise between steps, guidance
        --guidance) from pure noise with gradients through every step, on single frames with exactly one
        visible object. Unlike the one-step term it rewards the chain that is shipped, where the shape
        must be chosen at high noise (training/README.md, run 4)."""
        a, rows = self.a, self.one_object_rows(b)
        n = rows.numel()
        if n == 0:
            return 0.0
        x0 = self.sample_frame0(self.model, [b.captions[i][0] for i in rows.tolist()], M.denoise_frame)
        return a.sample_class_weight * self.judge_ce(x0.float(), b.labels["obj_class"][rows, 0, 0], "ceK")

    def prompt_ctx(self, net, captions):
        """(ctx, bias, uncond) of `captions` for `net`'s sampler: the projected text, and the empty prompt's
        for classifier-free guidance"""
        n = len(captions)
        tok, bias = self.encode_text(list(captions) + [""])
        ctx_all = net.text_proj(tok)
        return ctx_all[:n], bias[:n], (ctx_all[n:].expand(n, -1, -1), bias[n:].expand(n, -1))

    def sample_frame0(self, net, captions, sampler, gen=None):
        """frame 0 of each caption sampled from noise as the app samples it (K = --sample-steps, guidance
        --guidance): the encoder sees BOS only. `sampler`: M.denoise_frame (autograd) or M.sample_frame."""
        n = len(captions)
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            ctx, cb, unc = self.prompt_ctx(net, captions)
            h = net.encoder(torch.zeros(n, 0, 64, M.CFG.latent_channels, device=self.dev), ctx, cb)[:, 0]
            return sampler(net, h.float(), ctx, cb, self.a.sample_steps, gen, uncond=unc, guidance=self.a.guidance)

    @torch.no_grad()
    def class_probe(self, n=128):
        """Diagnosis only, never in the loss: the *evaluation* judge's class accuracy on n fixed one-object
        frames of training pairs, through the AE alone, on frame 0 generated from their captions by the
        EMA model, and on 16-frame clips rolled out from them (per frame, and per clip by majority). A live
        signal for the one mark the flow loss does not show (runs 3-8);
        the full evaluation (eval.py) stays the measure."""
        from eval import load_judge
        from train_judge import one_object_scenes
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "judge", "judge.safetensors")
        if not os.path.exists(path):
            return
        with torch.random.fork_rng(devices=[self.dev] if self.dev.type == "cuda" else []):  # training RNG untouched
            if self.probe is None:  # the same judge and frames at every export
                self.probe = (load_judge(path, self.world.n_classes).to(self.dev),
                              self.world.sample(n, T=1, split="train", seed=31, p_switch=0.0,
                                                scenes=one_object_scenes(self.world, random.Random(31), n, "train")))
            judge, b = self.probe
            seen = b.labels["obj_visible"][:, 0, 0]  # a fading object may not be there yet at frame 0
            cls = b.labels["obj_class"][:, 0, 0]
            right = lambda x: (judge(x.float())[0].argmax(1) == cls)[seen].float().mean().item()  # noqa: E731
            msg = f"class probe (eval judge, {int(seen.sum())} one-object frames): AE " \
                  f"{right(self.ae.decode(self.ae.encode(b.video[:, 0]))):.3f}"
            if hasattr(self.ema, "encoder"):  # the SCD split (nonsep has no separate encoder to start from)
                gen = torch.Generator(device=self.dev).manual_seed(7)
                x0 = self.sample_frame0(self.ema, [c[0] for c in b.captions], M.sample_frame, gen)
                msg += f", frame 0 sampled {right(self.ae.decode(tokens_to_latent(x0.float()))):.3f}"
                # the clip mark is lost after frame 0 (run 18): the same captions rolled out as the app does,
                # each frame judged; a clip counts when most of its frames show the class (eval.py's majority)
                T = 16
                ctx, cb, unc = self.prompt_ctx(self.ema, [c[0] for c in b.captions])
                lat = rollout(self.ema, ctx, cb, T=T, K=self.a.sample_steps, seed=7, uncond=unc,
                              guidance=self.a.guidance)
                vid = self.ae.decode(tokens_to_latent(lat.flatten(0, 1).float()))
                hit = (judge(vid)[0].argmax(1).view(-1, T) == cls[:, None]).float()[seen]
                msg += f", {T}-frame rollout: frames {hit.mean().item():.3f}, clips " \
                       f"{(hit.mean(1) >= 0.5).float().mean().item():.3f}"
        log(msg, self.logf)

    @torch.no_grad()
    def own_history(self, x0, hist, ctx, cb):
        """Encoder inputs that look like the model's own output (Self-Forcing's point, made cheap): for a
        share p_self_ctx of the clips, frames 0..T-2 are replaced by the EMA model's one-step reconstruction
        x0_hat = x_s - s v from a fresh noise level s ~ U(self_ctx_min, self_ctx_max). They carry the model's
        own softening (the blur that makes objects fade over long rollouts) but stay aligned with the ground
        truth, so the clean next frame remains the right target: the model learns to restore, not copy.
        The first round(p_self_ctx x B) clips get it (the clips of a batch are independent draws), so the EMA
        pass runs only on them and keeps one static shape for torch.compile. `hist`: the clips' history so far
        (x0's first T-1 frames)."""
        a = self.a
        B, T = x0.shape[:2]
        k = round(a.p_self_ctx * B)
        if k == 0:
            return hist
        xk = x0[:k]
        s = a.self_ctx_min + (a.self_ctx_max - a.self_ctx_min) * torch.rand(k, T, device=self.dev)
        xs = (1 - s[..., None, None]) * xk + s[..., None, None] * torch.randn_like(xk)
        v = self.ema_fn(xs, s, xk[:, :T - 1], ctx[:k], cb[:k])
        x0_hat = (xs - s[..., None, None] * v.float())[:, :T - 1]
        return torch.cat([x0_hat, hist[k:]], 0)

    @torch.no_grad()
    def rollout_history(self, x0, hist, ctx, cb, unc_ctx, unc_bias, w):
        """Encoder inputs the model drew itself over several frames (Self-Forcing's point, at full price):
        for the last round(p_rollout_ctx x B) clips of the batch, the history from a random frame r
        (4 <= r <= T-2) on is the EMA model's rollout from the ground-truth prefix 0..r-1, with the app's
        sampler (K = --sample-steps, guidance --guidance, the clip's caption per frame); the targets stay the
        ground truth. One-step reconstructions (own_history) carry one frame's softening; a rollout carries
        what compounds over frames, the smear of a long run (training/README.md "Runs 27-28"), and the
        lesson is to draw the caption's object cleanly again from it. The first clips are own_history's, so
        the two never share a clip while p_self_ctx + p_rollout_ctx <= 1 (checked in parse_args).
        --rollout-horizon H: the rollout stops after H own frames (frames r .. r+H-1); the targets past them,
        whose history would mix own and ground-truth frames, get weight 0 in `w` [B,T] (run 29: over a whole
        clip the own frames drift from the ground truth, the targets stop matching them, and the model learns
        to hedge: objects fade)."""
        a = self.a
        B, T = x0.shape[:2]
        k = round(a.p_rollout_ctx * B)
        if k == 0:
            return hist
        r = int(torch.randint(4, T - 1, ()))
        n = min(r + a.rollout_horizon, T - 1) if a.rollout_horizon else T - 1
        self.mark("forward")
        lat = self.rollout_graphs(x0[B - k:], ctx[B - k:], cb[B - k:], unc_ctx, unc_bias, r, n)
        self.mark("rollout")
        w[B - k:, n + 1:] = 0.0
        own = torch.cat([lat.to(hist.dtype), hist[B - k:, n:]], 1)
        return torch.cat([hist[:B - k], own], 0)

    @torch.no_grad()
    def val_loss(self, n=8):
        """teacher-forced flow-matching loss of the EMA weights on n fixed batches (same data, t and noise for
        every run and variant), so runs and ablation variants compare on one number. Returns (all, frames>=12)."""
        fn, self.train_fn = self.train_fn, self.ema.forward_train
        cpu_state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state() if self.dev.type == "cuda" else None
        torch.manual_seed(4242)
        tot, late = 0.0, 0.0
        for i in range(n):
            _, err = self.gen_step(train=False, seed=90_000 + i)
            tot += err.mean().item(); late += err[:, 12:].mean().item()
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state)
        self.train_fn = fn
        self.state["val_loss"] = tot / n; self.state["val_loss_late"] = late / n
        log(f"val loss {tot / n:.4f} (frames 12+: {late / n:.4f})", self.logf)
        return tot / n, late / n

    def read_budget(self, budget):
        """<out>/budget.json {"gen_minutes": x} changes the generator's time budget while running
        (the cosine schedule follows); {"gen_minutes": 0} stops with a final export."""
        import json
        p = os.path.join(self.a.out, "budget.json")
        if os.path.exists(p):
            try:
                nb = float(json.load(open(p))["gen_minutes"]) * 60
                if abs(nb - budget) > 1:
                    log(f"budget.json: gen budget {budget:.0f}s -> {nb:.0f}s", self.logf)
                    self.a.gen_minutes = nb / 60
                return nb
            except Exception as e:
                log(f"budget.json unreadable: {e!r}", self.logf)
        return budget

    def gen_phase(self):
        a = self.a
        self.ae.requires_grad_(False)  # frozen from here; the class loss's gradient passes through it into v
        budget = a.gen_minutes * 60
        t_last = time.time()
        n0 = self.state["gen_step"]
        acc, acc0, accn = 0.0, 0.0, 0
        while self.state["gen_elapsed"] < budget:
            if self.state["gen_step"] % 50 == 0:
                budget = self.read_budget(budget)
            t0 = time.time()
            lr = lr_at(self.state["gen_elapsed"] / budget, self.state["gen_step"], a.lr, a.warmup)
            for g in self.opt.param_groups:
                g["lr"] = lr
            if self.a.compile and self.state["gen_step"] < n0 + 3:
                try:  # a compile failure falls back to eager instead of ending the run
                    loss, err = self.gen_step()
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                except Exception as e:
                    log(f"compiled step failed ({e!r:.300}); falling back to eager", self.logf)
                    self.a.compile = False
                    self.train_fn, self.ema_fn = self.model.forward_train, self.ema.forward_train
                    self.opt.zero_grad(set_to_none=True)
                    loss, err = self.gen_step()
                    loss.backward()
            else:
                loss, err = self.gen_step()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            step = self.state["gen_step"] = self.state["gen_step"] + 1
            d = min(a.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                    pe.lerp_(pm, 1 - d)
            self.state["gen_elapsed"] += time.time() - t0
            acc += err.mean().item() if step % 10 == 0 else 0.0
            if step % 10 == 0:
                acc0 += err[:, 0].mean().item(); accn += 1
            if step % 100 == 0:
                dt = time.time() - t_last
                self.state["gen_loss"] = acc / max(accn, 1)
                log(f"gen step {step} loss {acc / max(accn, 1):.4f} (frame0 {acc0 / max(accn, 1):.4f}) "
                    f"gn {gn.item():.3f} lr {lr:.2e} {(step - n0) / max(dt, 1e-9):.2f} steps/s "
                    + "".join(f"{k} {v.item():.3f} " for k, v in self.ce_log.items()) +
                    f"elapsed {self.state['gen_elapsed']:.0f}s mem {torch.cuda.max_memory_allocated() / 2**30 if self.dev.type == 'cuda' else 0:.1f}GiB",
                    self.logf)
                t_last = time.time(); n0 = step; acc = acc0 = 0.0; accn = 0
            if time.time() - self.last_export > a.export_every:
                self.export(f"gen step {step}")
                self.samples(f"step{step:06d}")
                self.last_export = time.time()
        self.state["phase"] = "done"
        self.export("final")
        self.samples("final")

    # ------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def samples(self, tag, T=24, K=4):
        m = self.ema.eval()
        prompts = SAMPLE_PROMPTS + list(SWITCH_PROMPTS) + [""]
        tok, bias = self.encode_text(prompts)
        ctx = m.text_proj(tok)
        n = len(SAMPLE_PROMPTS)

        def cond(f):
            c = ctx[:n + 1].clone(); bb = bias[:n + 1].clone()
            if f >= 12:
                c[n] = ctx[n + 1]; bb[n] = bias[n + 1]
            return c, bb
        unc = (ctx[-1:].expand(n + 1, -1, -1), bias[-1:].expand(n + 1, -1))
        if self.a.variant == "nonsep":
            lat = rollout_nonseparable(m, ctx[:n + 1], bias[:n + 1], T, K, 0, unc, self.a.guidance)
        else:
            lat = rollout(m, cond, None, T=T, K=K, seed=0, uncond=unc, guidance=self.a.guidance)  # [n+1,T,64,16]
        vid = self.ae.decode(tokens_to_latent(lat.flatten(0, 1))).view(n + 1, T, 3, 128, 128)
        path = os.path.join(self.a.out, "samples", f"rollout_{tag}.png")
        save_strip(vid, path, max_cols=12)
        save_strip(vid, os.path.join(self.a.out, "samples", "rollout_latest.png"), max_cols=12)
        log(f"samples -> {path}", self.logf)

    def preflight(self):
        """one generator forward/backward, one rollout and one export, before spending time on the AE."""
        loss, _ = self.gen_step()
        loss.backward()
        self.opt.zero_grad(set_to_none=True)
        self.samples("preflight", T=14, K=2)
        log(f"preflight ok: gen loss {loss.item():.4f}", self.logf)

    def run(self):
        log(f"args {vars(self.a)} device {self.dev} "
            f"{torch.cuda.get_device_name() if self.dev.type == 'cuda' else ''}", self.logf)
        if self.state["phase"] == "ae" and self.state["ae_step"] == 0 and not self.a.no_preflight:
            self.preflight()
        if self.state["phase"] == "ae":
            self.ae_phase()
        if self.state["phase"] == "gen" and self.a.profile:
            self.ae.requires_grad_(False)
            self.profile(self.a.profile)
        elif self.state["phase"] == "gen":
            self.gen_phase()
        log("done", self.logf)


def parse_args(argv=None):
    """train.py's arguments (sys.argv's by default), checked"""
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=".dev/run")
    p.add_argument("--minilm", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "minilm"))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ae-minutes", type=float, default=4.5)
    p.add_argument("--gen-minutes", type=float, default=18.0)
    p.add_argument("--ae-batch", type=int, default=256)
    p.add_argument("--ae-lr", type=float, default=1e-3)
    p.add_argument("--ae-latent-noise", type=float, default=0.1)
    p.add_argument("--ae-edge-weight", type=float, default=0.0,
                   help="weight of an L1 loss on the pictures' horizontal/vertical differences (sharper edges)")
    p.add_argument("--ae-decoder-only", action="store_true",
                   help="with --init-assets: fine-tune only the AE's decoder for --ae-minutes, then export "
                        "(the encoder, latent_scale and the generator unchanged)")
    p.add_argument("--ae-grow", type=int, default=0,
                   help="with --init-assets (a patched AE): this many more conv latent channels, trained in the AE "
                        "phase with the shipped latent kept in the leading ones; the generator is widened to them")
    p.add_argument("--ae-anchor-weight", type=float, default=1.0,
                   help="--ae-grow: weight of the MSE between the grown latent's leading channels and the shipped one")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--T", type=int, default=24)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--t-shift", type=float, default=3.0)
    p.add_argument("--p-full-noise", type=float, default=0.2)
    p.add_argument("--ctx-noise", type=float, default=0.25)
    p.add_argument("--p-ctx-noise", type=float, default=0.6)
    p.add_argument("--p-switch", type=float, default=0.3)
    p.add_argument("--p-lag", type=float, default=0.0,
                   help="share of switch clips whose picture follows the caption switch 1-4 frames late (data.py)")
    p.add_argument("--p-reentry", type=float, default=0.0,
                   help="share of clips without a switch that lose their objects for 1-3 frames "
                        "(procedural-v8, data.py)")
    p.add_argument("--class-share", type=float, default=None,
                   help="share of training switches that change the object's class in place (default: one in five)")
    p.add_argument("--p-shift", type=float, default=0.0,
                   help="share of --img-batch's single frames moved off the caption's layout (procedural-v9)")
    p.add_argument("--offlayout-tmax", type=float, default=1.0,
                   help="frames 0 off the caption's layout (wrap clips, --p-shift) are trained at noise levels up "
                        "to this (1: not trained at all)")
    p.add_argument("--p-wrap", type=float, default=0.0,
                   help="share of clips without a switch that are wrap clips (procedural-v6, data.py)")
    p.add_argument("--frame0-weight", type=float, default=4.0)
    p.add_argument("--switch-weight", type=float, default=1.0,
                   help="loss weight of the 8 frames from a prompt switch on (its crossfade, late or not)")
    p.add_argument("--obj-weight", type=float, default=0.0,
                   help="extra loss weight of a latent token per unit of object coverage (0 = plain mean)")
    p.add_argument("--img-batch", type=int, default=0, help="extra single-frame (frame 0) clips per step")
    p.add_argument("--img-weight", type=float, default=0.5, help="weight of the single-frame loss")
    p.add_argument("--class-weight", type=float, default=0.0,
                   help="teacher judge's class cross-entropy on frame 0's decoded one-step prediction")
    p.add_argument("--class-judge", default=None, help="judge.safetensors from train_judge.py --split train")
    p.add_argument("--class-frames", type=int, default=256, help="at most this many frames per batch")
    p.add_argument("--sample-class-weight", type=float, default=0.0,
                   help="teacher judge's class cross-entropy on frame 0 sampled as the app does (needs --img-batch)")
    p.add_argument("--sample-steps", type=int, default=4,
                   help="sampler steps of --sample-class-weight, the class probe and --p-rollout-ctx")
    p.add_argument("--p-self-ctx", type=float, default=0.0,
                   help="share of clips whose encoder history is the EMA model's own one-step reconstruction")
    p.add_argument("--p-rollout-ctx", type=float, default=0.0,
                   help="share of clips whose encoder history, from a random frame on, is the EMA model's own "
                        "rollout with the app's sampler")
    p.add_argument("--rollout-horizon", type=int, default=0,
                   help="--p-rollout-ctx: own frames per rollout (0 = to the clip's end); later targets get no loss")
    p.add_argument("--self-ctx-min", type=float, default=0.1)
    p.add_argument("--self-ctx-max", type=float, default=0.6)
    p.add_argument("--export-every", type=float, default=120)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--plan-workers", type=int, default=0,
                   help="processes that plan the next batches (scenes, captions) while the GPU trains; 0 = inline")
    p.add_argument("--no-sprites", action="store_true")
    p.add_argument("--profile", type=int, default=0,
                   help="N: time N generator steps phase by phase (GPU synchronised), log it and stop (no export)")
    p.add_argument("--no-preflight", action="store_true")
    p.add_argument("--variant", choices=["scd", "fullres", "nonsep"], default="scd",
                   help="scd = the shipped design; fullres / nonsep = ablation variants (not shipped)")
    p.add_argument("--whiten", action="store_true",
                   help="whiten the AE latent once it is loaded (--init-assets) or trained (AE and generator re-expressed exactly)")
    p.add_argument("--whiten-floor", type=float, default=0.02,
                   help="--whiten scales eigenvalues below this x their mean as if they were that")
    p.add_argument("--decoder-blocks", type=int, default=3,
                   help="decoder depth; with --init-assets of a shallower model the extra blocks start as the identity")
    p.add_argument("--d-model", type=int, default=192,
                   help="generator width (4 heads of d/4); another width than the file's needs --fresh-gen")
    p.add_argument("--ae-layout", choices=sorted(M.AE_LAYOUTS), default="f16c16",
                   help="the autoencoder trained in phase 1 (model.AE_LAYOUTS); with --init-assets the file's")
    p.add_argument("--init-gen", default=None,
                   help="dir with a model.safetensors: start the generator from it, train a new AE first")
    p.add_argument("--init-assets", default=None, help="dir with f16 model/ae safetensors (e.g. assets/spool-tiny)")
    p.add_argument("--fresh-gen", action="store_true", help="with --init-assets: take only the AE")
    p.add_argument("--p-uncond", type=float, default=0.15, help="decoder caption dropout for CFG")
    p.add_argument("--guidance", type=float, default=3.0, help="CFG scale for samples and --sample-class-weight; written to config.json")
    p.add_argument("--guidance-min-t", type=float, default=0.0,
                   help="written to config.json as guidance_min_t when > 0: the app guides a frame drawn from noise only "
                        "at the steps with t >= it (SPEC.md, Sampling)")
    p.add_argument("--init", default=None, help="dir with ema_f32_*/ae_f32 safetensors to start from")
    args = p.parse_args(argv)
    starts = [f for f, v in (("--init", args.init), ("--init-assets", args.init_assets), ("--init-gen", args.init_gen))
              if v]
    if len(starts) > 1:
        p.error(f"{' and '.join(starts)} both say where to start: give one (--init-gen trains a new AE first)")
    if args.d_model % 4 or args.d_model < 32:
        p.error(f"--d-model {args.d_model}: give a multiple of 4 heads, at least 32")
    if args.d_model != 192 and (args.init or args.init_gen or (args.init_assets and not args.fresh_gen)):
        p.error(f"--d-model {args.d_model} starts a new generator: with --init-assets add --fresh-gen "
                "(only the AE is taken); --init and --init-gen load a 192-wide one")
    if args.whiten and (args.init or args.variant == "nonsep"):
        p.error("--whiten works with --init-assets or a trained AE phase, and for the scd/fullres variants only")
    if args.ae_decoder_only and (not args.init_assets or args.fresh_gen or args.whiten):
        p.error("--ae-decoder-only fine-tunes the decoder of shipped weights: give --init-assets DIR "
                "(without --fresh-gen or --whiten, which would change the generator or its latent)")
    if args.ae_grow and (not args.init_assets or args.fresh_gen or args.whiten or args.ae_decoder_only):
        p.error("--ae-grow widens shipped weights: give --init-assets DIR (without --fresh-gen, --whiten or "
                "--ae-decoder-only)")
    if args.p_self_ctx + args.p_rollout_ctx > 1:
        p.error("--p-self-ctx and --p-rollout-ctx take separate clips of a batch: together at most 1")
    if args.sample_class_weight > 0 and not args.img_batch:
        p.error("--sample-class-weight samples frame 0 of the --img-batch frames: give --img-batch N")
    return args


def main():
    Trainer(parse_args()).run()


if __name__ == "__main__":
    main()
