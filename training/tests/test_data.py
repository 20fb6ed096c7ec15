"""CPU tests of the procedural world: shapes, ranges, labels, the held-out split."""
import os
import random
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from spool_tiny.data import EVAL_ONLY_PHRASES, EVAL_ONLY_WORDS, Planner, World  # noqa: E402
from spool_tiny.text import WordPieceTokenizer  # noqa: E402


def test_batch_and_split():
    w = World("cpu")
    assert w.n_classes >= 100
    b = w.sample(6, T=14, split="train", seed=3, p_switch=1.0)
    assert b.video.shape == (6, 14, 3, 128, 128)
    assert b.video.min() >= -1 and b.video.max() <= 1
    assert b.caption_idx.shape == (6, 14)
    for caps, sw, idx in zip(b.captions, b.labels["switch_frame"], b.caption_idx):
        assert len(caps) == 2 and sw >= 3
        assert idx[sw - 1] == 0 and idx[sw] == 1
        for c in caps:
            words = set(c.replace(",", " ").split())
            assert not (words & EVAL_ONLY_WORDS), c
            assert not any(p in c for p in EVAL_ONLY_PHRASES), c
    # train never draws a held-out (class, colour/motion) pair
    import random
    rng = random.Random(0)
    for _ in range(200):
        sc = w._sample_scene(rng, "train")
        for o in sc["objs"]:
            assert not w._held_pair(o["cls"], o["col"], o["mot"])
    for _ in range(50):
        sc = w._sample_scene(rng, "eval", force_held=True)
        o = sc["objs"][0]
        assert w._held_pair(o["cls"], o["col"], o["mot"])
    for k in ("obj_class", "obj_colour", "obj_motion", "obj_visible", "bg_kind", "bg_c1"):
        assert k in b.labels


def test_planner_matches_inline_planning():
    """plans from the worker processes equal inline plans, in the order the seeds were drawn"""
    import random
    import numpy as np
    vocab = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "minilm", "vocab.txt")
    w = World("cpu")
    w.fits = WordPieceTokenizer(vocab).fits
    rng = random.Random(5)
    jobs = lambda: [(3, 12, "train", rng.getrandbits(31), 0.5), (4, 1, "train", rng.getrandbits(31), 0.0)]
    planner = Planner(2, True, vocab, depth=2)
    got = [planner.next(jobs) for _ in range(3)]
    rng = random.Random(5)
    want = [[w.plan(*j) for j in jobs()] for _ in range(3)]
    tk = WordPieceTokenizer(vocab)
    for g, e in zip(sum(got, []), sum(want, [])):
        ids, mask = g.pop("cap_tokens")  # the planner also tokenises the captions
        want_ids, want_mask, _ = tk.batch([c for caps in e["caps"] for c in caps])
        assert np.array_equal(ids, want_ids) and np.array_equal(mask, want_mask)
        assert g.keys() == e.keys()
        for k in e:
            if isinstance(e[k], np.ndarray):
                assert np.array_equal(g[k], e[k]), k
            elif k == "lab":
                assert all(np.array_equal(g[k][n], e[k][n]) for n in e[k]), k
            else:
                assert g[k] == e[k], k
    b = w.render_plan(got[0][0])
    assert b.video.shape == (3, 12, 3, 128, 128) and len(b.captions) == 3


def test_tokenizer_fast_path_is_exact():
    """the ASCII fast path and the per-word cache of WordPieceTokenizer.encode give the full BERT pipeline's ids"""
    tk = WordPieceTokenizer(os.path.join(os.path.dirname(__file__), "..", "..", "assets", "minilm", "vocab.txt"))

    def full(text):
        pieces = [i for w in tk.words(text) for i in tk.wordpiece(w)]
        room = tk.max_tokens - 2
        return [tk.cls] + pieces[:room] + [tk.sep], len(pieces) > room
    rng = random.Random(0)
    texts = ["".join(chr(rng.randrange(0, 128)) for _ in range(rng.randrange(0, 80))) for _ in range(3000)]
    w = World()
    w.fits = tk.fits
    texts += [c for cs in w.plan(256, 24, "train", 1, 0.3)["caps"] for c in cs]
    texts += ["a RED\tcircle,\x0bmoves\x7f left", "UPPER-case's", "naïve café", "emoji 🐱 cat", ""]
    bad = [t for t in texts if tk.encode(t) != full(t)]
    assert not bad, bad[:3]


def test_text_encoder_runs_only_the_real_tokens():
    """encode() stops at the longest caption's length: the states equal the full 32-token pass's"""
    import torch
    from spool_tiny.text import TextEncoder
    enc = TextEncoder(os.path.join(os.path.dirname(__file__), "..", "..", "assets", "minilm"), "cpu")
    texts = ["a red fox", "a helicopter on a field of stars, the camera panning to the left", ""]
    ids, mask, _ = enc.tokenize(texts)
    full = enc.forward_ids(ids, mask) * mask[..., None]
    out, m = enc.encode(texts)
    assert out.shape == full.shape and torch.equal(m, mask)
    assert (out - full).abs().max().item() <= 1e-6 * full.abs().max().item()


def test_app_vocabulary_holds_every_training_word():
    """the app's completion list (src/ui/vocab.rs WORDS) holds every word of the training captions, so
    a caption-grammar change that forgets the list fails here"""
    import re
    src = open(os.path.join(os.path.dirname(__file__), "..", "..", "src", "ui", "vocab.rs")).read()
    words = set(re.findall(r'^    "([^"]+)",$', src.split("pub const EXAMPLES")[0], re.M))
    w = World("cpu")
    seen = set()
    for seed in range(200):
        for caps in w.plan(8, T=24, split="train", seed=seed, p_switch=0.3)["caps"]:
            for c in caps:
                seen.update(x for x in re.findall(r"[a-z0-9-]+", c.lower()) if len(x) > 1)
    assert seen - words == set(), sorted(seen - words)


if __name__ == "__main__":
    test_batch_and_split()
    test_planner_matches_inline_planning()
    test_tokenizer_fast_path_is_exact()
    test_text_encoder_runs_only_the_real_tokens()
    test_app_vocabulary_holds_every_training_word()
    print("ok")
