"""CPU tests of train.py's history augmentations, on the shipped weights.

Run:  cd training && python3 -m pytest -q tests   (or python3 tests/test_train.py)
"""
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from spool_tiny.model import latent_to_tokens, load_safetensors  # noqa: E402
from train import Trainer, parse_args  # noqa: E402

ASSETS = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "spool-tiny")


def test_rollout_history():
    """--p-rollout-ctx: the last clips' history is the EMA model's own rollout from a ground-truth prefix of at
    least 4 frames (so it differs from the ground truth at the last history frame); the other clips and the
    prefix are untouched; --rollout-horizon stops the rollout early and drops the loss past it"""
    with tempfile.TemporaryDirectory() as out:
        tr = Trainer(parse_args(["--out", out, "--init-assets", ASSETS, "--p-rollout-ctx", "0.5",
                                 "--p-self-ctx", "0.5", "--no-preflight"]))
        B, T = 4, 8
        b = tr.world.sample(B, T=T, split="train", seed=3)
        with torch.no_grad():
            x0 = latent_to_tokens(tr.ae.encode(b.video.flatten(0, 1))).reshape(B, T, 64, -1)
            tok, bias = tr.encode_text([c[0] for c in b.captions] + [""])
            ctx_all = tr.model.text_proj(tok)
            ctx = ctx_all[:B, None].expand(B, T, *ctx_all.shape[1:])
            cb = bias[:B, None].expand(B, T, bias.shape[-1])
            hist = x0[:, :T - 1] + 1.0  # marks what rollout_history keeps
            w = torch.ones(B, T)
            out_hist = tr.rollout_history(x0, hist, ctx, cb, ctx_all[-1], bias[-1], w)
            assert out_hist.shape == hist.shape
            assert torch.equal(out_hist[:2], hist[:2])  # own_history's clips
            assert torch.equal(out_hist[2:, :4], x0[2:, :4])  # the ground-truth prefix
            assert (out_hist[2:, -1] - x0[2:, -2]).abs().mean() > 0.05  # drawn, not copied
            assert torch.isfinite(out_hist).all() and (w == 1).all()  # to the clip's end: every target kept
            # --rollout-horizon 1: one own frame at r, the history after it as it was, no loss past r + 1
            tr.a.rollout_horizon = 1
            w = torch.ones(B, T)
            out_hist = tr.rollout_history(x0, hist, ctx, cb, ctx_all[-1], bias[-1], w)
        drawn = ((out_hist[2:] - hist[2:]).abs().amax((0, 2, 3)) > 0).nonzero()[:, 0].tolist()
        r = drawn[-1]
        assert drawn == list(range(r + 1)) and 4 <= r <= T - 2, drawn  # prefix (x0, not hist) and frame r
        assert torch.equal(out_hist[2:, :r], x0[2:, :r]) and torch.equal(out_hist[2:, r + 1:], hist[2:, r + 1:])
        assert (w[:2] == 1).all() and (w[2:, :r + 2] == 1).all() and (w[2:, r + 2:] == 0).all()


def test_frame0_off_layout():
    """--offlayout-tmax: a frame 0 off the caption's layout is trained at noise levels scaled into [0, tmax], the
    other frames as sampled; without it (tmax 1) such a frame 0 has no loss at all"""
    with tempfile.TemporaryDirectory() as out:
        tr = Trainer(parse_args(["--out", out, "--init-assets", ASSETS, "--offlayout-tmax", "0.6", "--no-preflight"]))
        t = torch.rand(4, 3) * 0.5 + 0.5
        off = torch.tensor([True, False, True, False])
        t2, w0 = tr.frame0_noise(t, off)
        assert torch.allclose(t2[:, 0], torch.where(off, 0.6 * t[:, 0], t[:, 0])) and torch.equal(t2[:, 1:], t[:, 1:])
        assert (t2[off, 0] <= 0.6).all() and (w0 == tr.a.frame0_weight).all() and w0.shape == (4,)
        tr.a.offlayout_tmax = 1.0
        t3, w0 = tr.frame0_noise(t, off)
        assert torch.equal(t3, t) and torch.equal(w0, tr.a.frame0_weight * (~off).float())


if __name__ == "__main__":
    test_rollout_history()
    test_frame0_off_layout()
    print("ok")


def test_decoder_only_fine_tune_keeps_the_latent():
    """--ae-decoder-only: a few steps change the decoder and nothing the generator depends on (encoder,
    latent_scale, generator weights), and the export carries the new decoder with them unchanged"""
    from safetensors.torch import load_file
    with tempfile.TemporaryDirectory() as out:
        tr = Trainer(parse_args(["--out", out, "--init-assets", ASSETS, "--ae-decoder-only", "--ae-batch", "8",
                                 "--ae-minutes", "0.05", "--ae-edge-weight", "1", "--no-preflight"]))
        enc0 = {k: v.clone() for k, v in tr.ae.enc.state_dict().items()}
        dec0 = {k: v.clone() for k, v in tr.ae.dec.state_dict().items()}
        scale0 = tr.ae.latent_scale.clone()
        # the generator's own measures and strips at export are not what this tests (and slow on a CPU)
        tr.samples = tr.val_loss = tr.class_probe = lambda *a, **k: None
        tr.run()
        assert tr.state["phase"] == "done" and tr.state["ae_step"] > 0 and tr.state["gen_step"] == 0
        assert all(torch.equal(v, tr.ae.enc.state_dict()[k]) for k, v in enc0.items())
        assert any(not torch.equal(v, tr.ae.dec.state_dict()[k]) for k, v in dec0.items())
        assert torch.equal(scale0, tr.ae.latent_scale)
        shipped, new = load_file(os.path.join(ASSETS, "model.safetensors")), load_file(
            os.path.join(out, "export", "model.safetensors"))
        assert shipped.keys() == new.keys() and all(torch.equal(shipped[k], new[k]) for k in shipped)
        ae_old, ae_new = load_file(os.path.join(ASSETS, "ae.safetensors")), load_file(
            os.path.join(out, "export", "ae.safetensors"))
        assert all(torch.equal(ae_old[k], ae_new[k]) for k in ae_old if not k.startswith("dec."))
        assert any(not torch.equal(ae_old[k], ae_new[k]) for k in ae_old if k.startswith("dec."))


def test_grown_latent_run_keeps_the_generator_on_the_old_channels():
    """--ae-grow: the shipped AE grown by one conv channel trains a few steps held to the shipped latent by its
    anchor; the export is 20 channels wide, its generator the shipped one on the old channels (before any
    generator step) and the resumed run picks up the grown width from its checkpoint"""
    from safetensors.torch import load_file
    from spool_tiny import model as M
    with tempfile.TemporaryDirectory() as out:
        args = ["--out", out, "--init-assets", ASSETS, "--ae-grow", "1", "--ae-batch", "8", "--ae-minutes", "0.05",
                "--gen-minutes", "0", "--no-preflight", "--export-every", "100000"]
        tr = Trainer(parse_args(args))
        assert tr.state["phase"] == "ae" and M.CFG.latent_channels == 20 and tr.anchor is not None
        tr.samples = tr.val_loss = tr.class_probe = lambda *a, **k: None
        tr.run()
        assert tr.state["ae_step"] > 0 and tr.state["gen_step"] == 0 and tr.anchor is None
        x = tr.world.sample(2, T=2, split="eval", seed=5).video.flatten(0, 1)
        _, shipped_ae = load_safetensors(None, os.path.join(ASSETS, "ae.safetensors"))
        M.set_ae_layout(M.ae_layout_of(tr.ae.state_dict()))
        with torch.no_grad():
            z_old, z = shipped_ae.encode(x), tr.ae.encode(x)
        assert z.shape[1] == 20 and (z[:, :16] - z_old).pow(2).mean() < 0.05 * z_old.pow(2).mean()
        shipped, new = load_file(os.path.join(ASSETS, "model.safetensors")), load_file(
            os.path.join(out, "export", "model.safetensors"))
        assert torch.equal(new["decoder.out_proj.weight"][:16], shipped["decoder.out_proj.weight"])
        assert not new["decoder.out_proj.weight"][16:].any()
        assert torch.equal(new["encoder.in_proj.weight"][:, :16], shipped["encoder.in_proj.weight"])
        M.set_ae_layout(M.AE_LAYOUTS["f16c16"])
        resumed = Trainer(parse_args(args))
        assert M.CFG.latent_channels == 20 and resumed.model.decoder.out_proj.out_features == 20
    M.set_ae_layout(M.AE_LAYOUTS["f16c16"])
