"""Pre-render the sprite atlas of the procedural world (data version procedural-v1).

    python3 training/make_atlas.py            # writes training/spool_tiny/atlas_v1.npz (~1.5 MB)

Classes, in atlas order:
  * 16 SDF shapes (tintable, drawn as alpha masks with a 1.5-px antialiased edge);
  * 26 letters A-Z and 10 digits 0-9 from DejaVu Sans Bold (fonts-dejavu-core; tintable);
  * emoji from Noto Color Emoji (fonts-noto-color-emoji; their own colours, not tinted).
Every sprite is centred in a 64x64 RGBA tile, its extent about 0.9 of the tile (object "radius" = half a
tile). Deterministic: same fonts -> same atlas.
"""
import json
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

N = 64
SS = 4  # supersampling for the SDF shapes

SHAPES = ["circle", "square", "triangle", "star", "heart", "ring", "cross", "diamond", "hexagon",
          "pentagon", "crescent", "oval", "rectangle", "semicircle", "octagon", "arrow"]

# emoji: (codepoint string, caption names)
EMOJI = [
    ("\U0001F431", ["cat", "kitten"]), ("\U0001F436", ["dog", "puppy"]), ("\U0001F41F", ["fish"]),
    ("\U0001F426", ["bird"]), ("\U0001F98B", ["butterfly"]), ("\U0001F422", ["turtle", "tortoise"]),
    ("\U0001F40C", ["snail"]), ("\U0001F41D", ["bee"]), ("\U0001F438", ["frog"]),
    ("\U0001F981", ["lion"]), ("\U0001F42F", ["tiger"]), ("\U0001F43C", ["panda"]),
    ("\U0001F427", ["penguin"]), ("\U0001F419", ["octopus"]), ("\U0001F980", ["crab"]),
    ("\U0001F40D", ["snake"]), ("\U0001F984", ["unicorn"]), ("\U0001F418", ["elephant"]),
    ("\U0001F34E", ["apple"]), ("\U0001F34C", ["banana"]), ("\U0001F353", ["strawberry"]),
    ("\U0001F349", ["watermelon", "melon slice"]), ("\U0001F347", ["bunch of grapes", "grapes"]),
    ("\U0001F34A", ["tangerine fruit", "mandarin"]), ("\U0001F352", ["pair of cherries", "cherries"]),
    ("\U0001F955", ["carrot"]), ("\U0001F344", ["mushroom"]), ("\U0001F355", ["pizza slice", "slice of pizza"]),
    ("\U0001F354", ["burger", "hamburger"]), ("\U0001F369", ["doughnut"]), ("\U0001F36A", ["cookie"]),
    ("\U0001F366", ["ice cream cone", "ice cream"]), ("\U0001F697", ["car"]), ("\U0001F68C", ["bus"]),
    ("\U0001F680", ["rocket"]), ("\U0001F6F8", ["flying saucer", "ufo"]), ("\U00002708", ["airplane", "plane"]),
    ("\U0001F6B2", ["bicycle", "bike"]), ("\U000026F5", ["sailboat", "boat"]), ("\U0001F681", ["helicopter"]),
    ("\U0001F33B", ["sunflower"]), ("\U0001F333", ["tree"]), ("\U0001F335", ["cactus"]),
    ("\U0001F341", ["maple leaf", "leaf"]), ("\U0001F308", ["rainbow"]), ("\U00002601", ["cloud"]),
    ("\U000026A1", ["lightning bolt", "bolt"]), ("\U0001F525", ["flame", "fire"]), ("\U0001F4A7", ["water drop", "droplet"]),
    ("\U00002744", ["snowflake"]), ("\U0001F30D", ["globe", "planet earth"]), ("\U0001F319", ["moon"]),
    ("\U00002600", ["sun"]), ("\U000026BD", ["soccer ball", "football"]), ("\U0001F3C0", ["basketball"]),
    ("\U0001F388", ["balloon"]), ("\U0001F381", ["gift", "present"]), ("\U0001F514", ["bell"]),
    ("\U0001F511", ["key"]), ("\U0001F4A1", ["light bulb", "bulb"]), ("\U0001F3B8", ["guitar"]),
    ("\U00002602", ["umbrella"]), ("\U0001F451", ["crown"]), ("\U0001F48E", ["gem", "jewel"]),
    ("\U0001F47B", ["ghost"]), ("\U0001F916", ["robot"]), ("\U0001F47D", ["alien"]),
    ("\U0001F480", ["skull"]), ("\U0001F600", ["smiley face", "smiling face"]), ("\U0001F3E0", ["house"]),
]


def sdf_shape(name, x, y):
    """signed distance (negative inside) in units of the tile half-width; x right, y down."""
    r = np.hypot(x, y)
    if name == "circle":
        return r - 0.85
    if name == "oval":
        return (np.hypot(x / 0.9, y / 0.55) - 1.0) * 0.55
    if name == "square":
        return np.maximum(np.abs(x), np.abs(y)) - 0.72
    if name == "rectangle":
        return np.maximum(np.abs(x) - 0.9, np.abs(y) - 0.42)
    if name == "ring":
        return np.abs(r - 0.66) - 0.2
    if name == "cross":
        a = np.maximum(np.abs(x) - 0.85, np.abs(y) - 0.27)
        b = np.maximum(np.abs(x) - 0.27, np.abs(y) - 0.85)
        return np.minimum(a, b)
    if name == "diamond":
        return (np.abs(x) / 0.7 + np.abs(y) / 0.92 - 1.0) * 0.55
    if name == "semicircle":
        return np.maximum(np.hypot(x, y - 0.35) - 0.85, y - 0.35)
    if name == "crescent":
        return np.maximum(r - 0.85, -(np.hypot(x - 0.38, y + 0.12) - 0.68))
    if name == "heart":
        # two circles + a triangle-ish bottom
        c1 = np.hypot(x + 0.38, y + 0.3) - 0.44
        c2 = np.hypot(x - 0.38, y + 0.3) - 0.44
        tri = np.maximum(np.abs(x) * 0.85 + (y - 0.85) * 0.55, -(y + 0.1))
        return np.minimum(np.minimum(c1, c2), tri * 1.1)
    if name in ("triangle", "pentagon", "hexagon", "octagon", "star"):
        n = {"triangle": 3, "pentagon": 5, "hexagon": 6, "octagon": 8, "star": 5}[name]
        ang = np.arctan2(x, -y)  # 0 at the top
        if name in ("triangle", "pentagon"):
            ang = np.arctan2(x, y)  # flat side down, a vertex on top
        if name == "star":
            # polar star: radius oscillates between outer and inner
            k = (ang % (2 * np.pi / n)) / (2 * np.pi / n)  # 0..1 within a spike
            tri = np.abs(k - 0.5) * 2  # 1 at spike tips, 0 halfway
            rad = 0.38 + (0.9 - 0.38) * tri ** 1.0
            return (r - rad) * 0.6
        R = 0.9 if n > 3 else 0.95
        # regular polygon SDF (apothem distance)
        seg = 2 * np.pi / n
        a = ((ang + seg / 2) % seg) - seg / 2
        d = r * np.cos(a) - R * np.cos(np.pi / n)
        if n == 3:
            return d + 0.0 - 0.0 + (y * 0)  # triangle centred on circumcircle
        return d
    if name == "arrow":
        shaft = np.maximum(np.abs(y) - 0.2, np.maximum(x + 0.85, -x - 0.85) * 0 + np.maximum(-x - 0.85, x - 0.1))
        head = np.maximum(np.maximum(x - 0.85, -(x - 0.05) - 0.0), np.abs(y) - (0.85 - x) * 0.95)
        head = np.maximum(head, -x + 0.0 - 0.05)
        return np.minimum(shaft, head)
    raise ValueError(name)


def render_shape(name):
    n = N * SS
    c = (np.arange(n) + 0.5) / n * 2 - 1
    y, x = np.meshgrid(c, c, indexing="ij")
    d = sdf_shape(name, x, y)
    a = (d < 0).astype(np.float32)
    a = a.reshape(N, SS, N, SS).mean(axis=(1, 3))
    rgba = np.ones((4, N, N), np.float32)
    rgba[3] = a
    return (rgba * 255 + 0.5).astype(np.uint8)


def fit_tile(img: Image.Image):
    """crop to content, scale so the larger side is 0.9*N, centre in an NxN RGBA tile."""
    img = img.convert("RGBA")
    bbox = img.getchannel("A").getbbox()
    img = img.crop(bbox)
    w, h = img.size
    s = 0.9 * N / max(w, h)
    img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    tile = Image.new("RGBA", (N, N), (0, 0, 0, 0))
    tile.paste(img, ((N - img.size[0]) // 2, (N - img.size[1]) // 2), img)
    return np.asarray(tile).transpose(2, 0, 1).copy()


def render_glyph(ch, font):
    im = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((128, 128), ch, font=font, fill=(255, 255, 255, 255), anchor="mm")
    return fit_tile(im)


def render_emoji(ch, font):
    im = Image.new("RGBA", (220, 220), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((110, 110), ch, font=font, embedded_color=True, anchor="mm")
    if im.getchannel("A").getbbox() is None:
        return None
    return fit_tile(im)


def main():
    tiles, classes = [], []
    for s in SHAPES:
        tiles.append(render_shape(s))
        classes.append({"kind": "shape", "names": {"ring": ["ring", "donut", "hoop"],
                                                    "circle": ["circle", "disc", "ball", "dot"],
                                                    "square": ["square", "box", "block"],
                                                    "cross": ["cross", "plus sign"],
                                                    "diamond": ["diamond", "rhombus"],
                                                    "crescent": ["crescent", "crescent moon"],
                                                    "oval": ["oval", "ellipse"],
                                                    "rectangle": ["rectangle", "bar"],
                                                    "semicircle": ["semicircle", "half circle"],
                                                    "star": ["star", "five-pointed star"],
                                                    }.get(s, [s]), "tint": True, "id": s})
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 200)
    for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        tiles.append(render_glyph(ch, font))
        classes.append({"kind": "letter", "names": [f"letter {ch}"], "tint": True, "id": f"letter_{ch}"})
    for ch in "0123456789":
        tiles.append(render_glyph(ch, font))
        classes.append({"kind": "digit", "names": [f"digit {ch}", f"number {ch}"], "tint": True,
                        "id": f"digit_{ch}"})
    epath = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
    if os.path.exists(epath):
        efont = ImageFont.truetype(epath, 109)
        for ch, names in EMOJI:
            t = render_emoji(ch, efont)
            if t is None:
                print("skip emoji", names[0])
                continue
            tiles.append(t)
            classes.append({"kind": "emoji", "names": names, "tint": False, "id": names[0].replace(" ", "_")})
    else:
        print("no emoji font; atlas without emoji")
    rgba = np.stack(tiles)
    out = os.path.join(os.path.dirname(__file__), "spool_tiny", "atlas_v1.npz")
    np.savez_compressed(out, rgba=rgba, classes=np.array(json.dumps(classes)))
    print(f"{len(classes)} classes -> {out} ({os.path.getsize(out)/1e6:.2f} MB)")
    # contact sheet for a visual check
    cols = 16
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * N, rows * N), (60, 60, 90))
    for i, t in enumerate(tiles):
        im = Image.fromarray(t.transpose(1, 2, 0), "RGBA")
        sheet.paste(im, ((i % cols) * N, (i // cols) * N), im)
    sheet.save("/tmp/atlas_sheet.png")


if __name__ == "__main__":
    main()
