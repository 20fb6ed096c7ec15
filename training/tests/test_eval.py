"""eval.py's own measures (CPU)."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import eval as E  # noqa: E402
from spool_tiny.data import World  # noqa: E402


def test_mix_stats_are_the_training_clips_frame_stats_in_seeded_batches():
    world = World("cpu")
    s = E.mix_stats(world, 5, seed=11, batch=2)
    assert s.shape == (5 * 24, 3)
    assert torch.equal(s, E.mix_stats(world, 5, seed=11, batch=2))
    first = world.sample(2, T=24, split="train", seed=11, p_switch=0.3).video.flatten(0, 1).float()
    assert torch.allclose(s[:48], E.frame_stats(first), atol=1e-6)
    # each batch is its own draw: the same clips are not counted twice
    assert not torch.allclose(s[:48], s[48:96])
    # contrast is a standard deviation, detail a mean |Laplacian|: both >= 0
    assert (s[:, 1:] >= 0).all()
