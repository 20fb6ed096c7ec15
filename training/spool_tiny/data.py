"""Procedural video world for spool-tiny, rendered on the GPU in torch (data version: DATA_VERSION).

    world = World(device="cuda")
    batch = world.sample(B=64, T=24, split="train", seed=123)
    batch.video        [B, T, 3, 128, 128] float in [-1, 1]
    batch.captions     list of B lists of 1 or 2 strings (caption 0, and caption 1 after a prompt switch)
    batch.caption_idx  [B, T] long: which caption is active at each frame
    batch.labels       dict of tensors (see `Batch`)

Scene: a background + 1-3 objects. Object classes: the atlas (`atlas_v1.npz`, made by make_atlas.py):
16 SDF shapes, 26 letters, 10 digits (all tinted with a named colour), and ~70 emoji (their own colours).
12 named colours; 9 background kinds; 16 object motions + 2 camera pans. 16 fps, 24-frame clips by default.

Prompt switches: with probability `p_switch` a clip changes caption at frame c (background, object colour,
object motion, object class in place (procedural-v6, split "train"), or a whole new scene); the picture
crossfades over the next 4 frames (weights 0.2..0.8).

The frame is a torus for the objects (procedural-v6): the part of an object beyond one edge shows at the
opposite edge, so an object moving left keeps moving left for ever without leaving the picture. In v5 a
straight-moving object left the frame and came back only after a gap, a 24-frame clip that starts with it in
the middle almost never got that far, and a long rollout emptied for good once its object had left
(training/README.md "Runs 22-23").
Wrap clips (procedural-v6, `p_wrap`, training only): a wrap clip starts each straight-moving object further
along its path, so that it crosses an edge inside the clip; its frame 0 is off the layout the caption implies
(`labels["wrapped"]`, which train.py keeps out of the frame-0 loss, or trains at low noise only:
`--offlayout-tmax`).
Shifted frames (`p_shift`, training only, procedural-v9): a clip (in practice a single frame 0) whose whole
layout is moved by a random offset on the torus, also marked `wrapped`. Trained at low noise levels only, they
teach the first-frame path (the encoder seeing BOS only) to clean up an object wherever it is, which the app's
keyframes redraw from (training/README.md "Keyframes"), while the caption keeps choosing the layout at the
high noise levels where a fresh frame 0 is laid out.
Late switches (`p_lag`, training only, procedural-v7): in that share of switch clips the picture follows the
caption switch 1-4 frames late: the caption changes at frame c, the crossfade starts at c + d. Teacher forcing
alone asks only the frame at the caption switch to start the crossfade, from a history that has not started it;
a rollout that misses that one frame never sees such a history again and ignores the new prompt
(training/README.md "Runs 22-23"). A late switch asks for the crossfade's first step from an unchanged history
a few frames after the caption changed, so a model that has not started yet still starts, smoothly. (Run 25
trained an earlier design that kept the targets on time and lagged only the history; it taught a catch-up jump:
half its background switches took more than half the change in one frame, "Runs 24-26".)
Re-entry clips (`p_reentry`, training only, procedural-v8): that share of the clips without a switch loses its
objects for 1-3 frames from a random frame (they keep moving, unseen) and brings them back over the next four
frames with the crossfade's weights (0.2..0.8), the caption naming them throughout. The frames without the
objects are left out of the loss (`labels["gap"]`): they are there as history only, so the lesson is "draw what
the caption names when the history has lost it", smoothly, never "lose it". Run 25 showed that histories which
lag their targets hold objects through 1,000-frame rollouts, but its lag was the whole picture's, and it also
taught background jumps ("Runs 24-26").

Held-out split (fixed; `split="eval"` draws only from it, `split="train"` never does):
  * (class, colour) pairs with (class_index * 7 + colour_index * 3) % 11 == 0 (tinted classes);
  * (class, motion) pairs of emoji with (class_index * 5 + motion_index) % 11 == 0;
  * eval-only wordings: the colour synonyms "scarlet", "azure", "emerald"; class synonyms "disc", "hoop",
    "rhombus"; motion phrases in EVAL_ONLY_PHRASES; and caption template 5 ("{bg} with {objects}").
  An eval clip has a held-out combination for object 0 (p=0.5) or is worded with eval-only wordings.
"""
from __future__ import annotations

import collections
import json
import math
import multiprocessing
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

DATA_VERSION = "procedural-v9"
H = W = 128
LATENT_HW = 8  # the autoencoder's latent grid (model.CFG.latent_hw); obj_cover is per latent token

COLOURS = [  # name, rgb, synonyms (first = canonical)
    ("red", (220, 40, 40), ["red", "crimson", "scarlet", "cherry red", "ruby", "bright red"]),
    ("orange", (245, 140, 20), ["orange", "tangerine", "pumpkin orange", "amber"]),
    ("yellow", (245, 220, 40), ["yellow", "golden", "lemon yellow", "sunny yellow", "gold"]),
    ("green", (40, 170, 60), ["green", "emerald", "grass green", "leafy green", "jade", "lime green"]),
    ("blue", (40, 80, 220), ["blue", "cobalt", "azure", "royal blue", "sapphire", "deep blue"]),
    ("purple", (130, 50, 180), ["purple", "violet", "plum", "lilac", "mauve"]),
    ("pink", (245, 120, 180), ["pink", "rose", "hot pink", "bubblegum pink", "rosy"]),
    ("white", (240, 240, 240), ["white", "ivory", "snow white", "pearly white", "milky white"]),
    ("black", (20, 20, 20), ["black", "jet black", "ebony", "coal black", "pitch black"]),
    ("gray", (128, 128, 128), ["gray", "grey", "silver", "slate gray", "ash gray"]),
    ("brown", (130, 80, 40), ["brown", "chocolate", "chestnut", "coffee brown", "tan"]),
    ("cyan", (40, 210, 220), ["cyan", "turquoise", "aqua", "teal", "aquamarine"]),
]
EVAL_ONLY_WORDS = {"scarlet", "azure", "emerald", "disc", "hoop", "rhombus"}
# procedural-v5: more wordings, drawn for split "train" only (so every eval caption, and the random stream
# of every eval draw, is what it was): more names for each hue (COLOURS order) and background-first sentence
# shapes, so that an unseen colour word or word order lands on its meaning rather than on trained tokens.
MORE_COLOUR_WORDS = [
    ["vermilion", "cardinal red", "tomato red", "strawberry red"],
    ["apricot", "carrot orange", "saffron", "burnt orange"],
    ["canary yellow", "mustard", "butter yellow", "topaz"],
    ["olive green", "mint green", "forest green", "pine green"],
    ["navy", "sky blue", "cerulean", "ultramarine"],
    ["lavender", "amethyst", "grape", "orchid"],
    ["salmon pink", "fuchsia", "blush pink", "magenta"],
    ["cream", "chalk white", "alabaster", "frost white"],
    ["onyx", "midnight black", "charcoal", "inky black"],
    ["pewter", "graphite", "smoke gray", "steel gray"],
    ["mocha", "cinnamon", "walnut", "caramel"],
    ["electric cyan", "seafoam", "light teal", "ice cyan"],
]
MORE_TEMPLATES = ["{bg} behind {objs}", "{bg} showing {objs}", "in front of {bg}, {objs}", "on {bg}, {objs}"]
P_MORE_TEMPLATE = 0.3
# the straight motions' unit directions in frame coordinates (y grows downwards)
STRAIGHT = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "up-left": (-0.7071, -0.7071),
            "up-right": (0.7071, -0.7071), "down-left": (-0.7071, 0.7071), "down-right": (0.7071, 0.7071)}

# motion id -> (participle phrases, present phrases)
MOTIONS = [
    ("still", ["standing still", "resting", "sitting still", "not moving"],
     ["stays still", "rests", "sits still", "does not move"]),
    ("left", ["moving left", "drifting to the left", "sliding left", "heading left", "moving to the left"],
     ["moves left", "drifts to the left", "slides left", "heads left"]),
    ("right", ["moving right", "drifting to the right", "sliding right", "heading right", "moving to the right"],
     ["moves right", "drifts to the right", "slides right", "heads right"]),
    ("up", ["moving up", "rising", "floating upward", "going up"], ["moves up", "rises", "floats upward", "goes up"]),
    ("down", ["moving down", "falling", "sinking", "going down"], ["moves down", "falls", "sinks", "goes down"]),
    ("up-left", ["moving up and to the left", "drifting diagonally up and left"],
     ["moves up and to the left", "drifts diagonally up and left"]),
    ("up-right", ["moving up and to the right", "drifting diagonally up and right"],
     ["moves up and to the right", "drifts diagonally up and right"]),
    ("down-left", ["moving down and to the left", "drifting diagonally down and left"],
     ["moves down and to the left", "drifts diagonally down and left"]),
    ("down-right", ["moving down and to the right", "drifting diagonally down and right"],
     ["moves down and to the right", "drifts diagonally down and right"]),
    ("bounce", ["bouncing", "hopping up and down", "bouncing up and down"], ["bounces", "hops up and down"]),
    ("orbit", ["orbiting", "circling", "moving in a circle", "going round in circles"],
     ["orbits", "circles", "moves in a circle"]),
    ("zoom-in", ["growing", "getting bigger", "zooming in", "expanding"], ["grows", "gets bigger", "expands"]),
    ("zoom-out", ["shrinking", "getting smaller", "zooming out"], ["shrinks", "gets smaller"]),
    ("spin", ["spinning", "rotating", "twirling", "turning around"], ["spins", "rotates", "twirls"]),
    ("fade-in", ["fading in", "slowly appearing", "materializing"], ["fades in", "slowly appears"]),
    ("fade-out", ["fading out", "disappearing", "vanishing", "fading away"], ["fades out", "disappears", "vanishes"]),
]
PAN_LEFT, PAN_RIGHT = 16, 17
PAN_PHRASES = {PAN_LEFT: ["the camera pans left", "the camera panning to the left", "panning left"],
               PAN_RIGHT: ["the camera pans right", "the camera panning to the right", "panning right"]}
MOTION_NAMES = [m[0] for m in MOTIONS] + ["pan-left", "pan-right"]
EVAL_ONLY_PHRASES = {"heading left", "heads left", "heading right", "heads right", "going up", "goes up",
                     "going down", "goes down", "twirling", "twirls", "vanishing", "vanishes",
                     "going round in circles", "materializing", "panning left"}

# procedural-v2: extra training wordings for classes (by atlas id), so the model leans on MiniLM's meaning
# rather than on exact tokens; eval-only words stay unseen.
EXTRA_NAMES = {
    "circle": ["round shape", "circular shape"], "square": ["square shape", "cube"],
    "triangle": ["triangular shape", "pyramid"], "star": ["star shape"], "heart": ["love heart", "heart shape"],
    "ring": ["circle outline"], "cross": ["x shape"], "diamond": ["lozenge", "diamond shape"],
    "hexagon": ["six-sided shape"], "pentagon": ["five-sided shape"], "octagon": ["eight-sided shape", "stop sign"],
    "oval": ["egg shape"], "rectangle": ["long box", "brick"],
    "semicircle": ["half disk", "dome"], "arrow": ["arrow sign", "pointer"],
    "cat": ["kitty"], "dog": ["doggy"], "bird": ["little bird"], "car": ["automobile"], "house": ["home"],
    "rocket": ["spaceship"], "tree": ["green tree"], "sun": ["shining sun"],
}

BG_KINDS = ["solid", "gradient", "stripes", "checkers", "starfield", "clouds", "day", "night", "sunset"]
TEMPLATES_TRAIN = [0, 1, 2, 3, 4]
TEMPLATE_EVAL = 5


# the plan entries World.render draws from, in its argument order (bgA, bgB, wB, pan, ox, oy, os_, oth, oa,
# then ocls and otint)
RENDER_KEYS = ("bgA", "bgB", "wB", "pan", "ox", "oy", "os_", "oth", "oa", "ocls", "otint")


def _crossfade(T, c):
    """[T] weights of the new picture over a crossfade that starts at frame c: 0 before, 0.2..0.8 over c..c+3,
    then 1"""
    return np.clip((np.arange(T) - c + 1) / 5.0, 0, 1)


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


@dataclass
class Batch:
    video: torch.Tensor  # [B,T,3,H,W] in [-1,1]
    captions: list  # B lists of 1-2 strings
    caption_idx: torch.Tensor  # [B,T]
    labels: dict  # obj_class/obj_colour/obj_motion [B,T,3] (-1 none; colour -1 for emoji), obj_visible,
                  # obj_x/obj_y [B,T,3] (normalized -1..1), bg_kind/bg_c1/bg_c2 [B,T], switch_frame [B],
                  # wrapped [B] (a wrap clip), gap [B,T] (a re-entry clip's frames without its objects;
                  # see the module doc)
    obj_cover: torch.Tensor  # [B,T,8,8] share of each latent token's 16x16 pixels covered by objects (0..1)
    cap_tokens: tuple | None = None  # (ids, mask) of the flattened captions, when a Planner tokenised them


class World:
    def __init__(self, device="cpu", atlas_path=None, use_sprites=True):
        self.device = torch.device(device)
        atlas_path = atlas_path or os.path.join(os.path.dirname(__file__), "atlas_v1.npz")
        z = np.load(atlas_path)
        self.classes = json.loads(str(z["classes"]))
        rgba = torch.from_numpy(z["rgba"]).float() / 255.0
        if not use_sprites:
            keep = [i for i, c in enumerate(self.classes) if c["kind"] == "shape"]
            rgba = rgba[keep]
            self.classes = [self.classes[i] for i in keep]
        # premultiply rgb by alpha for clean bilinear sampling
        rgba[:, :3] *= rgba[:, 3:4]
        self.atlas = rgba.to(self.device)
        for c in self.classes:  # procedural-v2: more training wordings per class (train-only, see EXTRA_NAMES)
            c["names"] = list(c["names"]) + [n for n in EXTRA_NAMES.get(c["id"], []) if n not in c["names"]]
            if c["kind"] == "letter":
                ch = c["id"][-1]
                c["names"] += [f"capital letter {ch}", f"uppercase {ch}", f"the character {ch}"]
            elif c["kind"] == "digit":
                ch = c["id"][-1]
                c["names"] += [f"numeral {ch}", f"figure {ch}"]
        self.tint = [c["tint"] for c in self.classes]
        self.palette = torch.tensor([c[1] for c in COLOURS], dtype=torch.float32, device=self.device) / 127.5 - 1
        self.palette_np = self.palette.cpu().numpy()  # for plan(), which never touches the device
        self.n_classes = len(self.classes)
        px = (torch.arange(W, dtype=torch.float32, device=self.device) + 0.5) / W * 2 - 1  # pixel centres
        py = (torch.arange(H, dtype=torch.float32, device=self.device) + 0.5) / H * 2 - 1
        self.pixel_xy = torch.stack(torch.meshgrid(px, py, indexing="xy"), -1)  # [H,W,2] (x, y) in -1..1
        self.fits = None  # optional caption-length check (set by train.py from the tokenizer)

    # ------------------------------------------------------------------------------------------------------
    # scene sampling (python, per clip)
    # ------------------------------------------------------------------------------------------------------
    def _held_pair(self, cls, col, mot):
        if self.tint[cls]:
            return (cls * 7 + col * 3) % 11 == 0
        return (cls * 5 + mot) % 11 == 0

    def _sample_object(self, rng, split, bg_cols, force_held=False, force_motion=None):
        for _ in range(200):
            u = rng.random()
            kinds = [i for i, c in enumerate(self.classes)]
            if u < 0.45:  # shapes are the core of the world
                pool = [i for i in kinds if self.classes[i]["kind"] == "shape"] or kinds
            elif u < 0.7:
                pool = [i for i in kinds if self.classes[i]["kind"] in ("letter", "digit")] or kinds
            else:
                pool = [i for i in kinds if self.classes[i]["kind"] == "emoji"] or kinds
            cls = rng.choice(pool)
            col = rng.randrange(len(COLOURS)) if self.tint[cls] else -1
            if col in bg_cols:
                continue
            mot = force_motion if force_motion is not None else rng.randrange(len(MOTIONS))
            held = self._held_pair(cls, col, mot)
            if split == "train" and held:
                continue
            if force_held and not held:
                continue
            return dict(cls=cls, col=col, mot=mot)
        return dict(cls=0, col=0 if 0 not in bg_cols else 1, mot=force_motion or 0)

    def _sample_bg(self, rng, obj_cols=()):
        kind = rng.choices(range(len(BG_KINDS)), weights=[4, 2, 1.5, 1.5, 1, 1, 1, 1, 1])[0]
        cols = [c for c in range(len(COLOURS)) if c not in obj_cols]
        c1 = rng.choice(cols)
        c2 = rng.choice([c for c in range(len(COLOURS)) if c != c1])
        return dict(kind=kind, c1=c1, c2=c2, angle=rng.choice([0, 90, 45, 135]), k=rng.randint(2, 5),
                    seed=rng.random() * 100.0, pan=0)

    def _sample_scene(self, rng, split, force_held=False):
        n_obj = rng.choices([1, 2, 3], weights=[0.5, 0.35, 0.15])[0]
        bg = self._sample_bg(rng)
        bg_cols = {bg["c1"]} if BG_KINDS[bg["kind"]] in ("solid", "clouds") else set()
        if BG_KINDS[bg["kind"]] in ("stripes", "checkers", "gradient"):
            bg_cols = {bg["c1"], bg["c2"]}
        pan = 0
        if rng.random() < 0.08 and BG_KINDS[bg["kind"]] != "solid":
            pan = rng.choice([PAN_LEFT, PAN_RIGHT])
        bg["pan"] = pan
        objs = []
        for i in range(n_obj):
            o = self._sample_object(rng, split, bg_cols, force_held=(force_held and i == 0),
                                    force_motion=0 if pan else None)
            objs.append(o)
        self._place(rng, objs)
        return dict(bg=bg, objs=objs)

    def _place(self, rng, objs):
        """procedural-v4: frame 0's layout follows from the caption, up to a small jitter. A lone object starts
        in the middle (or where its straight motion keeps it in view), several share the width in caption order,
        at one size each. In v3 a lone object could start anywhere within ±25 px and at ±22% size: at the
        noise levels where the sampler lays out frame 0 the model's prediction was the average over those
        layouts, a blob, and the class had almost nothing to shape (training/README.md "Runs 16–18")."""
        n = len(objs)
        slots = {1: [0.0], 2: [-0.42, 0.42], 3: [-0.6, 0.0, 0.6]}[n]
        jit = lambda: rng.uniform(-0.05, 0.05)
        for i, o in enumerate(objs):
            # procedural-v3: objects about twice v2's area (a lone sprite ~64 px), so a shape spans several
            # 16-px latent tokens instead of living inside one or two (training/README.md "Run 10")
            o["s"] = rng.uniform(0.46, 0.54) if n == 1 else rng.uniform(0.31, 0.37)
            o["x"], o["y"] = slots[i] + jit(), jit()
            o["speed"] = rng.uniform(0.03, 0.06)
            o["omega"] = rng.choice([-1, 1]) * rng.uniform(0.15, 0.3)
            o["spin"] = rng.choice([-1, 1]) * rng.uniform(0.12, 0.3)
            o["r"] = rng.uniform(0.2, 0.4)
            o["amp"] = rng.uniform(0.3, 0.6)
            o["period"] = rng.uniform(9, 16)
            o["grow"] = rng.uniform(1.03, 1.06)
            o["fade"] = rng.uniform(8, 14)
            o["theta"] = 0.0
        # straight motions start off-centre against their direction (STRAIGHT, as _traj moves them) so that they
        # stay in view for most of a clip; a lone object along x and y, several only along y (their slots
        # already spread them)
        for o in objs:
            m = MOTIONS[o["mot"]][0]
            if m in STRAIGHT:
                dx, dy = STRAIGHT[m]
                o["x"] -= 0.3 * float(np.sign(dx)) * (n == 1)
                o["y"] -= 0.3 * float(np.sign(dy))
            if m == "bounce":
                o["y"] += 0.4
            if m == "zoom-in":
                o["s"] = 0.3 + jit() / 5

    # ------------------------------------------------------------------------------------------------------
    # captions
    # ------------------------------------------------------------------------------------------------------
    def _words(self, rng, options, eval_words):
        """pick a wording; train never uses eval-only wordings; eval_words=True prefers them."""
        tr = [w for w in options if w not in EVAL_ONLY_WORDS and w not in EVAL_ONLY_PHRASES]
        ev = [w for w in options if w in EVAL_ONLY_WORDS or w in EVAL_ONLY_PHRASES]
        if eval_words and ev:
            return rng.choice(ev)
        return rng.choice(tr or options)

    def _colour(self, rng, i, ev, more):
        """a word for colour i (more: procedural-v5's training-only names too)"""
        return self._words(rng, COLOURS[i][2] + (MORE_COLOUR_WORDS[i] if more else []), ev)

    def _obj_phrase(self, rng, o, ev, more):
        c = self.classes[o["cls"]]
        name = self._words(rng, c["names"], ev)
        if o["col"] >= 0:
            colw = self._colour(rng, o["col"], ev, more)
            core = f"{colw} {name}"
        else:
            core = name
        return f"{_article(core)} {core}" if rng.random() < 0.85 else f"the {core}"

    def _bg_phrase(self, rng, bg, ev, more):
        k = BG_KINDS[bg["kind"]]
        c1 = self._colour(rng, bg["c1"], ev, more)
        c2 = self._colour(rng, bg["c2"], ev, more)
        if k == "solid":
            full = [f"{_article(c1)} {c1} background", f"a plain {c1} background", f"a solid {c1} backdrop"]
            short = [f"{c1} background", f"{c1} backdrop"]
        elif k == "gradient":
            full = [f"{_article(c1)} {c1} to {c2} gradient", f"a gradient from {c1} to {c2}"]
            short = [f"{c1} to {c2} gradient"]
        elif k == "stripes":
            full = [f"{c1} and {c2} stripes", f"{_article(c1)} {c1} and {c2} striped background"]
            short = [f"{c1} and {c2} stripes"]
        elif k == "checkers":
            full = [f"{_article(c1)} {c1} and {c2} checkerboard", f"{_article(c1)} {c1} and {c2} checkered background"]
            short = [f"checkered {c1} and {c2} backdrop", f"{c1} and {c2} checkerboard"]
        elif k == "starfield":
            full = ["a starfield", "outer space", "a field of stars"]
            short = ["starfield", "deep space"]
        elif k == "clouds":
            full = [f"a cloudy {c1} sky", f"{c1} clouds"]
            short = [f"cloudy {c1} sky"]
        elif k == "day":
            full = ["a clear daytime sky", "a bright blue sky"]
            short = ["daytime sky", "clear sky"]
        elif k == "night":
            full = ["a night sky", "a starry night sky"]
            short = ["night sky"]
        else:
            full = ["a sunset sky", "an orange sunset"]
            short = ["sunset sky", "sunset"]
        return rng.choice(full), rng.choice(short)

    def caption_fit(self, rng, scene, ev=False, more=False):
        """caption() re-worded until `self.fits(caption)` (e.g. <= 32 MiniLM tokens); drops the last
        object of the scene if no wording fits."""
        while True:
            for _ in range(6):
                cap = self.caption(rng, scene, ev, more)
                if self.fits is None or self.fits(cap):
                    return cap
            if len(scene["objs"]) == 1:
                return cap
            scene["objs"].pop()

    def caption(self, rng, scene, ev=False, more=False):
        """a caption of scene; ev: prefer eval-only wordings; more: also procedural-v5's training-only ones"""
        bg, objs = scene["bg"], scene["objs"]
        bfull, bshort = self._bg_phrase(rng, bg, ev, more)
        if more and rng.random() < P_MORE_TEMPLATE:
            tmpl = rng.choice(MORE_TEMPLATES)
        else:
            tmpl = TEMPLATE_EVAL if (ev and rng.random() < 0.5) else rng.choice(TEMPLATES_TRAIN)
        pan = bg["pan"]
        parts, pres = [], []
        for o in objs:
            op = self._obj_phrase(rng, o, ev, more)
            if pan:
                parts.append(op); pres.append(op)
            else:
                parts.append(f"{op} {self._words(rng, MOTIONS[o['mot']][1], ev)}")
                pres.append(f"{op} {self._words(rng, MOTIONS[o['mot']][2], ev)}")
        join = lambda xs: xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + " and " + xs[-1]
        if isinstance(tmpl, str):
            cap = tmpl.format(bg=bfull, objs=join(parts))
        elif tmpl == 0:
            cap = f"{join(parts)} on {bfull}"
        elif tmpl == 1:
            cap = f"{bshort}, {join(pres)}"
        elif tmpl == 2:
            cap = f"{join(pres)} across {bfull}" if not pan else f"{join(parts)} in front of {bfull}"
        elif tmpl == 3:
            if len(objs) == 1 and not pan:
                o = objs[0]
                cap = f"{self._obj_phrase(rng, o, ev, more)} on {bfull}, {self._words(rng, MOTIONS[o['mot']][1], ev)}"
            else:
                cap = f"{join(parts)} on {bfull}"
        elif tmpl == 4:
            cap = f"{join(parts)} against {bfull}"
        else:
            cap = f"{bfull} with {join(parts)}"
        if pan:
            cap = f"{cap}, {self._words(rng, PAN_PHRASES[pan], ev)}"
        return cap

    # ------------------------------------------------------------------------------------------------------
    # trajectories (numpy per object)
    # ------------------------------------------------------------------------------------------------------
    @staticmethod
    def _traj(o, mot, tau, st):
        """state arrays over tau (frames since motion start) from start state st=(x,y,s,theta,alpha)."""
        x0, y0, s0, th0, a0 = st
        n = len(tau)
        x, y, s, th, a = (np.full(n, x0), np.full(n, y0), np.full(n, s0), np.full(n, th0), np.full(n, a0))
        m = MOTIONS[mot][0] if mot < len(MOTIONS) else "still"
        v = o["speed"]
        if m in STRAIGHT:  # the centre stays in the frame; the renderer draws the frame as a torus
            dx, dy = STRAIGHT[m]
            x = (x0 + dx * v * tau + 1) % 2 - 1
            y = (y0 + dy * v * tau + 1) % 2 - 1
        elif m == "bounce":
            y = y0 - o["amp"] * np.abs(np.sin(np.pi * tau / o["period"]))
        elif m == "orbit":
            r = o["r"]
            cx, cy = x0 - r, y0
            x = cx + r * np.cos(o["omega"] * tau)
            y = cy + r * np.sin(o["omega"] * tau)
        elif m == "zoom-in":
            s = np.minimum(s0 * o["grow"] ** tau, 0.8)
        elif m == "zoom-out":
            s = np.maximum(s0 * o["grow"] ** (-tau), 0.05)
        elif m == "spin":
            th = th0 + o["spin"] * tau
        elif m == "fade-in":
            a = np.minimum(1.0, tau / o["fade"])
        elif m == "fade-out":
            a = np.maximum(0.0, 1.0 - tau / o["fade"])
        return x, y, s, th, a

    @staticmethod
    def _wrap_offset(o, e):
        """frames to advance a straight motion so that its centre crosses an edge (and it shows split across
        the two) at frame e of the clip; 0 if it crosses before e anyway"""
        dx, dy = STRAIGHT[MOTIONS[o["mot"]][0]]
        hit = [(1 - p * math.copysign(1, d)) / (abs(d) * o["speed"]) for p, d in ((o["x"], dx), (o["y"], dy)) if d]
        return max(0.0, min(hit) - e)

    def _obj_states(self, o, T, mot_a, mot_b=None, c=None):
        tau = np.arange(T, dtype=np.float64)
        st = (o["x"], o["y"], o["s"], o["theta"], 1.0)
        x, y, s, th, a = self._traj(o, mot_a, tau + o.get("tau0", 0.0), st)
        if mot_b is not None and c is not None:
            st2 = (x[c], y[c], s[c], th[c], a[c])
            if MOTIONS[mot_b][0] == "fade-in":
                st2 = (x[c], y[c], s[c], th[c], 0.0)
            if MOTIONS[mot_a][0] == "fade-out" and MOTIONS[mot_b][0] != "fade-in":
                st2 = (x[c], y[c], s[c], th[c], 1.0)
            xb, yb, sb, thb, ab = self._traj(o, mot_b, tau[c:] - c, st2)
            x, y, s, th, a = [np.concatenate([p[:c], q]) for p, q in zip((x, y, s, th, a), (xb, yb, sb, thb, ab))]
        return x, y, s, th, a

    # ------------------------------------------------------------------------------------------------------
    # batch sampling + GPU rendering
    # ------------------------------------------------------------------------------------------------------
    def sample(self, B, T=24, split="train", seed=None, p_switch=0.35, scenes=None, p_wrap=0.0, p_lag=0.0,
               p_reentry=0.0, class_share=None, p_shift=0.0):
        """B rendered clips of T frames (see Batch); deterministic in seed."""
        return self.render_plan(self.plan(B, T, split, seed, p_switch, scenes, p_wrap, p_lag, p_reentry,
                                          class_share, p_shift))

    def plan(self, B, T=24, split="train", seed=None, p_switch=0.35, scenes=None, p_wrap=0.0, p_lag=0.0,
             p_reentry=0.0, class_share=None, p_shift=0.0, _lag=None):
        """The CPU half of `sample`: scenes, captions, per-frame object states and labels as numpy arrays (a
        picklable dict, no torch), so a worker process can plan the next batches while the GPU trains.
        p_wrap: the share of clips without a switch that are wrap clips; p_lag: the share of switch clips
        whose picture follows the caption switch late (module doc). _lag [B]: frames to delay each clip's
        picture switch by (the late plan: the same draws, so the same clips, with the crossfade later).
        p_reentry: the share of clips without a switch that are re-entry clips (module doc).
        class_share: the share of a train split's switches that change object 0's class in place (None: one in
        five, like each other kind). p_shift: the share of clips without a switch (and not wrap clips) whose
        whole layout is moved by a random offset on the torus, off the caption's layout (procedural-v9; marked
        `wrapped`, module doc)."""
        if (p_lag > 0 or p_reentry > 0) and seed is None:
            raise ValueError("late switches and re-entry clips draw from side streams of the seed: give one")
        rng = random.Random(seed)
        O = 6  # object slots: 0-2 scene A, 3-5 scene B (whole-scene switch)
        ox = np.zeros((B, T, O)); oy = np.zeros((B, T, O)); os_ = np.full((B, T, O), 0.2)
        oth = np.zeros((B, T, O)); oa = np.zeros((B, T, O)); ocls = np.zeros((B, O), np.int64)
        otint = np.zeros((B, T, O, 3))
        bgA = []; bgB = []; wB = np.zeros((B, T)); pan = np.zeros((B, T, 2))
        lab = {k: np.full((B, T, 3), -1, np.int64) for k in ("obj_class", "obj_colour", "obj_motion")}
        lab_x = np.zeros((B, T, 3)); lab_y = np.zeros((B, T, 3)); lab_vis = np.zeros((B, T, 3), bool)
        bg_kind = np.zeros((B, T), np.int64); bg_c1 = np.zeros((B, T), np.int64); bg_c2 = np.zeros((B, T), np.int64)
        caps, cap_idx, switch_frame = [], np.zeros((B, T), np.int64), np.full(B, -1)
        wrapped = np.zeros(B, bool)
        srng = random.Random(f"shift{seed}")  # a side stream, so that the clips are those of p_shift=0
        pal = self.palette_np
        for b in range(B):
            ev = split == "eval"
            force_held = ev and rng.random() < 0.5
            ev_words = ev and not force_held
            scene = scenes[b] if scenes is not None else self._sample_scene(rng, split, force_held)
            capA = self.caption_fit(rng, scene, ev_words, more=split == "train")
            c = None
            stype = None
            sceneB = None
            if scenes is None and T >= 12 and rng.random() < p_switch:
                c = rng.randint(3, T - 5) + (0 if _lag is None else int(_lag[b]))
                # a class switch is training-only, so that every eval draw stays what it was in v5
                kinds = ["bg", "colour", "motion", "scene"] + (["class"] if split == "train" else [])
                wts = [1.0] * len(kinds)
                if class_share is not None and "class" in kinds:
                    wts = [1 - class_share] * 4 + [4 * class_share]
                stype = rng.choices(kinds, weights=wts)[0]
                if stype == "colour" and scene["objs"][0]["col"] < 0:
                    stype = "bg"
                if stype == "motion" and scene["bg"]["pan"]:
                    stype = "scene"
                sceneB = {"bg": dict(scene["bg"]), "objs": [dict(o) for o in scene["objs"]]}
                if stype == "bg":
                    nb = self._sample_bg(rng, {o["col"] for o in scene["objs"]})
                    nb["pan"] = scene["bg"]["pan"]
                    if nb["pan"] and BG_KINDS[nb["kind"]] == "solid":
                        nb["kind"] = 1
                    sceneB["bg"] = nb
                elif stype == "colour":
                    o = sceneB["objs"][0]
                    bad = {scene["bg"]["c1"], o["col"]}
                    for _ in range(50):
                        nc = rng.randrange(len(COLOURS))
                        if nc not in bad and not (split == "train" and self._held_pair(o["cls"], nc, o["mot"])):
                            break
                    o["col"] = nc
                elif stype == "motion":
                    o = sceneB["objs"][0]
                    for _ in range(50):
                        nm = rng.randrange(len(MOTIONS))
                        if nm != o["mot"] and not (split == "train" and self._held_pair(o["cls"], o["col"], nm)):
                            break
                    o["mot"] = nm
                elif stype == "class":  # another class of the same kind of colouring, in the same place
                    o = sceneB["objs"][0]
                    for _ in range(50):
                        nc = rng.randrange(self.n_classes)
                        if nc != o["cls"] and self.tint[nc] == self.tint[o["cls"]] \
                                and not self._held_pair(nc, o["col"], o["mot"]):
                            break
                    o["cls"] = nc
                else:
                    sceneB = self._sample_scene(rng, split)
                capB = self.caption_fit(rng, sceneB, ev_words, more=split == "train")
                caps.append([capA, capB])
                cap_idx[b, c:] = 1
                switch_frame[b] = c
            else:
                caps.append([capA])
                straight = [o for o in scene["objs"] if MOTIONS[o["mot"]][0] in STRAIGHT]
                if scenes is None and T >= 12 and p_wrap > 0 and straight and rng.random() < p_wrap:
                    for o in straight:
                        o["tau0"] = self._wrap_offset(o, rng.randint(2, T - 6))
                    wrapped[b] = True
                if scenes is None and p_shift > 0 and not wrapped[b] and srng.random() < p_shift:
                    dx, dy = srng.uniform(-1, 1), srng.uniform(-1, 1)
                    for o in scene["objs"]:
                        o["x"], o["y"] = o["x"] + dx, o["y"] + dy
                    wrapped[b] = True
            ramp = None if c is None else _crossfade(T, c)
            # background params per clip
            bgA.append(scene["bg"])
            bgB.append(sceneB["bg"] if sceneB is not None else scene["bg"])
            if c is not None and stype in ("bg", "scene"):
                wB[b] = ramp
            # camera pan (content offset per frame)
            tau = np.arange(T)
            for sc, rows in ((scene, slice(0, T)),):
                pass
            pspeed = 0.04
            pan_a = scene["bg"]["pan"]
            pan_b = sceneB["bg"]["pan"] if sceneB is not None else pan_a
            pv = np.array([{0: 0.0, PAN_LEFT: 1.0, PAN_RIGHT: -1.0}[pan_a if (c is None or t < c) else pan_b]
                           for t in range(T)]) * pspeed
            pan[b, :, 0] = np.cumsum(np.concatenate([[0.0], pv[:-1]]))
            # objects
            def fill(slot, o, mot_a, mot_b=None, cc=None, alpha_w=None, col_b=None):
                x, y, s, th, a = self._obj_states(o, T, mot_a, mot_b, cc)
                if alpha_w is not None:
                    a = a * alpha_w
                ox[b, :, slot] = x + pan[b, :, 0]
                oy[b, :, slot] = y
                os_[b, :, slot] = s; oth[b, :, slot] = th; oa[b, :, slot] = a
                ocls[b, slot] = o["cls"]
                if o["col"] >= 0:
                    ca = pal[o["col"]]
                    if col_b is not None:
                        cb = pal[col_b]
                        otint[b, :, slot] = ca * (1 - ramp[:, None]) + cb * ramp[:, None]
                    else:
                        otint[b, :, slot] = ca
                else:
                    otint[b, :, slot] = 1.0
                return x + pan[b, :, 0], y, a
            for i, o in enumerate(scene["objs"]):
                if stype == "scene":
                    xa, ya, aa = fill(i, o, o["mot"], alpha_w=1 - wB[b])
                elif stype == "motion" and i == 0:
                    xa, ya, aa = fill(i, o, o["mot"], sceneB["objs"][0]["mot"], c)
                elif stype == "colour" and i == 0:
                    xa, ya, aa = fill(i, o, o["mot"], cc=c, col_b=sceneB["objs"][0]["col"])
                elif stype == "class" and i == 0:  # the new class fades in over the old one (slot 3)
                    xa, ya, aa = fill(i, o, o["mot"], alpha_w=1 - ramp)
                    aa = aa + fill(3, sceneB["objs"][0], o["mot"], alpha_w=ramp)[2]
                else:
                    xa, ya, aa = fill(i, o, o["mot"])
                tA = slice(0, c if stype == "scene" else T)
                lab["obj_class"][b, tA, i] = o["cls"]; lab["obj_colour"][b, tA, i] = o["col"]
                lab["obj_motion"][b, tA, i] = o["mot"] if not scene["bg"]["pan"] else scene["bg"]["pan"]
                lab_x[b, tA, i] = xa[tA]; lab_y[b, tA, i] = ya[tA]
                lab_vis[b, tA, i] = (aa[tA] > 0.5) & (np.abs(xa[tA]) < 1) & (np.abs(ya[tA]) < 1)
                if stype in ("motion", "colour", "class") and i == 0:  # (a motion switch never has a pan)
                    lab["obj_motion"][b, c:, 0] = scene["bg"]["pan"] or sceneB["objs"][0]["mot"]
                    lab["obj_colour"][b, c:, 0] = sceneB["objs"][0]["col"]
                    lab["obj_class"][b, c:, 0] = sceneB["objs"][0]["cls"]
            if stype == "scene":
                for i, o in enumerate(sceneB["objs"]):
                    # scene B objects live from the switch on (their motion clock starts at c)
                    x, y, s, th, a = self._obj_states(o, T - c, o["mot"])
                    pad = lambda v, fillv: np.concatenate([np.full(c, fillv), v])
                    pb = pan[b, :, 0] - pan[b, c, 0]
                    ox[b, :, 3 + i] = pad(x, x[0]) + pb; oy[b, :, 3 + i] = pad(y, y[0])
                    os_[b, :, 3 + i] = pad(s, s[0]); oth[b, :, 3 + i] = pad(th, th[0])
                    oa[b, :, 3 + i] = pad(a, 0.0) * wB[b]
                    ocls[b, 3 + i] = o["cls"]
                    otint[b, :, 3 + i] = pal[o["col"]] if o["col"] >= 0 else 1.0
                    lab["obj_class"][b, c:, i] = o["cls"]; lab["obj_colour"][b, c:, i] = o["col"]
                    lab["obj_motion"][b, c:, i] = o["mot"] if not sceneB["bg"]["pan"] else sceneB["bg"]["pan"]
                    lab_x[b, c:, i] = ox[b, c:, 3 + i]; lab_y[b, c:, i] = y
                    lab_vis[b, c:, i] = (a > 0.5) & (np.abs(ox[b, c:, 3 + i]) < 1) & (np.abs(y) < 1)
            for t in range(T):
                bgs = bgB[-1] if (c is not None and t >= c) else bgA[-1]
                bg_kind[b, t] = bgs["kind"]; bg_c1[b, t] = bgs["c1"]; bg_c2[b, t] = bgs["c2"]
        lag = np.zeros(B, np.int64)
        if p_lag > 0:  # a side stream, so that the clips are those of p_lag=0
            lrng = random.Random(f"lag{seed}")
            for b in np.nonzero(switch_frame >= 0)[0]:
                lag[b] = lrng.randint(1, 4) if lrng.random() < p_lag else 0
        if lag.any():  # the picture (and its labels) of the late plan, the captions on time
            late = self.plan(B, T, split, seed, p_switch, scenes, p_wrap, class_share=class_share, p_shift=p_shift,
                             _lag=lag)
            out = dict(late, cap_idx=cap_idx, switch_frame=switch_frame, lag=lag)
        else:
            out = dict(T=T, bgA=bgA, bgB=bgB, wB=wB, pan=pan, ox=ox, oy=oy, os_=os_, oth=oth, oa=oa, ocls=ocls,
                       otint=otint, lab=lab, lab_x=lab_x, lab_y=lab_y, lab_vis=lab_vis, bg_kind=bg_kind,
                       bg_c1=bg_c1, bg_c2=bg_c2, caps=caps, cap_idx=cap_idx, switch_frame=switch_frame,
                       wrapped=wrapped, lag=lag)
        out["gap"] = np.zeros((B, T), bool)
        if p_reentry > 0 and T >= 12:  # a side stream as well
            rrng = random.Random(f"reentry{seed}")
            for b in np.nonzero(switch_frame < 0)[0]:
                if rrng.random() < p_reentry:
                    c1, g = rrng.randint(2, T - 8), rrng.randint(1, 3)
                    m = np.where(np.arange(T) < c1, 1.0, _crossfade(T, c1 + g))  # gone for g frames, then back
                    out["oa"][b, :, :3] *= m[:, None]
                    out["lab_vis"][b] &= (m > 0.5)[:, None]
                    out["gap"][b, c1:c1 + g] = True
        return out

    def render_plan(self, p):
        """The device half of `sample`: render a `plan` into a Batch."""
        T, lab = p["T"], p["lab"]
        lab_x, lab_y, lab_vis, bg_kind, bg_c1, bg_c2 = (p[k] for k in ("lab_x", "lab_y", "lab_vis", "bg_kind",
                                                                        "bg_c1", "bg_c2"))
        caps, cap_idx, switch_frame = p["caps"], p["cap_idx"], p["switch_frame"]
        dev = self.device
        tt = lambda a, dt=torch.float32: torch.as_tensor(a, dtype=dt, device=dev)

        video, cover = self.render(p["bgA"], p["bgB"], *(tt(p[k]) for k in RENDER_KEYS[2:9]),
                                   tt(p["ocls"], torch.long), tt(p["otint"]), T, any_b=bool((p["wB"] > 0).any()),
                                   slots_on=[bool(v) for v in (p["oa"] > 0).any(axis=(0, 1))])
        labels = {k: tt(v, torch.long) for k, v in lab.items()}
        labels.update(obj_x=tt(lab_x), obj_y=tt(lab_y), obj_visible=tt(lab_vis, torch.bool),
                      bg_kind=tt(bg_kind, torch.long), bg_c1=tt(bg_c1, torch.long), bg_c2=tt(bg_c2, torch.long),
                      switch_frame=tt(switch_frame, torch.long), wrapped=tt(p["wrapped"], torch.bool),
                      gap=tt(p["gap"], torch.bool))
        return Batch(video=video, captions=caps, caption_idx=tt(cap_idx, torch.long), labels=labels,
                     obj_cover=cover, cap_tokens=p.get("cap_tokens"))

    # ------------------------------------------------------------------------------------------------------
    def _render_bg(self, bgs, pan, T):
        """bgs: list of B dicts; pan [B,T,2] content offsets -> [B,T,3,H,W]. Each kind is computed only for
        the clips that show it (a batch of thousands of frames is bound by this)."""
        dev = self.device
        B = len(bgs)
        lin = (torch.arange(W, device=dev, dtype=torch.float32) + 0.5) / W * 2 - 1
        Y, X = torch.meshgrid(lin, lin, indexing="ij")
        col = lambda key, dt=torch.float32: torch.tensor([g[key] for g in bgs], device=dev, dtype=dt)  # noqa: E731
        c1_all = self.palette[col("c1", torch.long)][:, None, :, None, None]
        c2_all = self.palette[col("c2", torch.long)][:, None, :, None, None]
        ang_all = col("angle")[:, None, None, None] * math.pi / 180
        kk_all, seed_all = col("k")[:, None, None, None], col("seed")[:, None, None, None]
        # clouds' value noise: drawn for every clip, whatever its kind, so a clip's noise depends on the batch only
        g = torch.Generator(device="cpu").manual_seed(int(sum(b["seed"] for b in bgs) * 1000) % (2 ** 31))
        n1_all = torch.rand(B, 1, 6, 12, generator=g).to(dev)
        n2_all = torch.rand(B, 1, 12, 24, generator=g).to(dev)
        rgb = lambda *c: torch.tensor(c, device=dev, dtype=torch.float32)[None, None, :, None, None]  # noqa: E731
        out = torch.empty(B, T, 3, H, W, device=dev)
        kinds = [g["kind"] for g in bgs]
        for k, name in enumerate(BG_KINDS):
            rows = [i for i, kd in enumerate(kinds) if kd == k]
            if not rows:
                continue
            r = torch.tensor(rows, device=dev)
            n = len(rows)
            Xs = X[None, None] - pan[r][:, :, 0, None, None]  # [n,T,H,W] content moves with +pan
            Ys = Y[None, None].expand(n, T, H, W)
            c1, c2, ang, kk, seed = c1_all[r], c2_all[r], ang_all[r], kk_all[r], seed_all[r]
            u = ((Ys + 1) / 2)[:, :, None]  # 0 top .. 1 bottom

            def stars(density, sd):
                def hash2(ix, iy):
                    return torch.frac(torch.sin(ix * 12.9898 + iy * 78.233 + sd * 37.719) * 43758.5453)
                ix = torch.floor((Xs + 1) * 32); iy = torch.floor((Ys + 1) * 32)
                return ((hash2(ix, iy) > 1 - density).float() * (0.5 + 0.5 * hash2(ix + 7.0, iy + 3.0)))[:, :, None]

            if name == "solid":
                v = c1.expand(n, T, 3, H, W)
            elif name == "gradient":
                v = c1 * (1 - u) + c2 * u
            elif name == "stripes":
                proj = Xs * torch.cos(ang) + Ys * torch.sin(ang)
                sv = torch.clamp(torch.sin(math.pi * kk * proj) * 6, -1, 1)[:, :, None] * 0.5 + 0.5
                v = c1 * sv + c2 * (1 - sv)
            elif name == "checkers":
                par = ((torch.floor((Xs + 1) * kk / 2) + torch.floor((Ys + 1) * kk / 2)) % 2)[:, :, None]
                v = c1 * par + c2 * (1 - par)
            elif name == "starfield":
                v = rgb(-0.94, -0.94, -0.9) + stars(0.03, seed) * 1.9
            elif name == "clouds":  # value noise, two octaves, sampled with the pan offset
                grid = torch.stack([Xs / 2.2, Ys / 1.1 * 0.5], dim=-1).reshape(n, T * H, W, 2)
                cl = (0.65 * F.grid_sample(n1_all[r], grid, mode="bicubic", padding_mode="reflection",
                                           align_corners=False)
                      + 0.35 * F.grid_sample(n2_all[r], grid, mode="bicubic", padding_mode="reflection",
                                             align_corners=False))
                cl = cl.reshape(n, 1, T, H, W).permute(0, 2, 1, 3, 4).clamp(0, 1)
                cl = torch.clamp((cl - 0.45) * 3, 0, 1)
                v = c1 * (1 - cl) + rgb(0.9, 0.9, 0.92) * cl
            elif name == "day":
                v = rgb(80, 150, 240) / 127.5 - 1
                v = v * (1 - u) + (rgb(195, 225, 250) / 127.5 - 1) * u
            elif name == "night":
                v = (rgb(5, 8, 30) / 127.5 - 1) * (1 - u) + (rgb(40, 30, 90) / 127.5 - 1) * u \
                    + stars(0.012, seed + 1.0) * 1.6
            else:  # sunset
                v = (rgb(90, 40, 120) / 127.5 - 1) * (1 - u) + (rgb(250, 150, 60) / 127.5 - 1) * u
            out[r] = v.expand(n, T, 3, H, W)
        return out.clamp(-1, 1)

    def render(self, bgA, bgB, wB, pan, ox, oy, os_, oth, oa, ocls, otint, T, any_b=None, slots_on=None):
        B = len(bgA)
        frame = self._render_bg(bgA, pan, T)
        if any_b if any_b is not None else bool((wB > 0).any()):
            frameB = self._render_bg(bgB, pan, T)
            w = wB[:, :, None, None, None]
            frame = frame * (1 - w) + frameB * w
        frame = frame.reshape(B * T, 3, H, W)
        clear = torch.ones(B * T, 1, H, W, device=frame.device)  # product of (1 - alpha) over the objects
        for slot in range(ocls.shape[1]):
            a_s = oa[:, :, slot].reshape(-1)
            if not (slots_on[slot] if slots_on is not None else bool((a_s > 0).any())):
                continue
            on = (a_s > 0).nonzero()[:, 0]  # only the frames that show this slot's object
            a_s = a_s[on]
            cls = ocls[:, slot][:, None].expand(B, T).reshape(-1)[on]
            s = os_[:, :, slot].reshape(-1)[on].clamp(min=1e-3)
            th = oth[:, :, slot].reshape(-1)[on]
            cx = ox[:, :, slot].reshape(-1)[on]; cy = oy[:, :, slot].reshape(-1)[on]
            cos, sin = torch.cos(th), torch.sin(th)
            # sprite coordinates = R(-th) d / s, d = p - c taken the short way round the torus (module doc)
            A = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2) / s[:, None, None]
            d = torch.remainder(self.pixel_xy - torch.stack([cx, cy], -1)[:, None, None] + 1, 2) - 1
            grid = torch.einsum("nij,nhwj->nhwi", A, d)
            spr = F.grid_sample(self.atlas[cls], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            alpha = spr[:, 3:4] * a_s[:, None, None, None]
            tint = otint[:, :, slot].reshape(-1, 3)[on]
            tint01 = (tint + 1) / 2
            rgb01 = spr[:, :3] * tint01[:, :, None, None]  # premultiplied by sprite alpha
            rgb = rgb01 * 2 - spr[:, 3:4]  # premultiplied [-1,1] colour
            frame[on] = frame[on] * (1 - alpha) + rgb * a_s[:, None, None, None]
            clear[on] = clear[on] * (1 - alpha)
        cover = F.avg_pool2d(1 - clear, H // LATENT_HW).reshape(B, T, LATENT_HW, LATENT_HW)
        return frame.reshape(B, T, 3, H, W).clamp(-1, 1), cover


_PLAN_WORLD = None  # a planning-only World in each Planner process


def _planner_init(use_sprites, vocab_path):
    global _PLAN_WORLD
    from spool_tiny.text import WordPieceTokenizer
    _PLAN_WORLD = World("cpu", use_sprites=use_sprites)
    _PLAN_WORLD.tokenizer = WordPieceTokenizer(vocab_path)
    _PLAN_WORLD.fits = _PLAN_WORLD.tokenizer.fits


def _plan(job):
    """World.plan, plus the captions tokenised (`cap_tokens`: ids and mask of the flattened captions)"""
    p = _PLAN_WORLD.plan(*job)
    ids, mask, _ = _PLAN_WORLD.tokenizer.batch([c for caps in p["caps"] for c in caps])
    p["cap_tokens"] = (ids, mask)
    return p


class Planner:
    """World.plan in `workers` spawned processes, `depth` batches ahead, so the GPU does not wait on the
    Python scene and caption sampling. `next(jobs)` takes the next batch's list of plan() argument tuples
    (called in order, so seeds drawn there come in the same order as inline) and returns that batch's plans;
    the results are identical to planning inline."""

    def __init__(self, workers, use_sprites, vocab_path, depth=None):
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_planner_init, initargs=(use_sprites, vocab_path))
        # one batch in flight per worker by default: a batch of thousands of single frames takes a worker
        # longer to plan than the GPU takes to train on it
        self.depth, self.pending = depth or workers, collections.deque()

    def next(self, jobs):
        while len(self.pending) < self.depth:
            self.pending.append([self.pool.submit(_plan, j) for j in jobs()])
        return [f.result() for f in self.pending.popleft()]


def save_strip(video, path, max_cols=12, captions=None):
    """video [R, T, 3, H, W] in [-1,1] -> PNG grid (rows = clips, columns = frames, every k-th)."""
    from PIL import Image
    R, T = video.shape[:2]
    step = max(1, math.ceil(T / max_cols))
    v = video[:, ::step].float().clamp(-1, 1).add(1).mul(127.5).round().byte().cpu()
    R, C = v.shape[:2]
    grid = v.permute(0, 3, 1, 4, 2).reshape(R * H, C * W, 3).numpy()
    Image.fromarray(grid).save(path)
