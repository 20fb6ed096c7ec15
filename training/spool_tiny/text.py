"""Spool's frozen text encoder (all-MiniLM-L6-v2) for training, from the app's own assets.

Loads only `assets/minilm/` (written by `training/convert_minilm.py`): the int8 weights are
dequantised to f32 (`w = q * scale`, per row) at load, exactly as the Rust app does. Needs torch,
numpy and safetensors; not the PyPI package and not transformers.

    enc = TextEncoder("assets/minilm", "cuda")
    tokens, mask = enc.encode(["a red fox runs through snow", "waves"])
    # tokens [B, 32, 384] f32 (last layer's token states; padding rows are zero), mask [B, 32] bool

The tokenizer is a self-contained BERT WordPiece tokenizer that matches the Rust one
(`src/model/text/tokenizer.rs`) and the reference BertTokenizerFast for this vocabulary:
clean text (drop NUL, U+FFFD and categories Cc/Cf/Cs/Co except tab/newline/return; whitespace -> space),
space out CJK ideographs, NFD + drop Mn marks (strip accents), lowercase per character, split on
whitespace and punctuation (ASCII punctuation and Unicode P*), greedy longest-match WordPiece with
`##` continuations (words over 100 chars -> [UNK]), then [CLS] ... [SEP], truncated to 32 tokens.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

MAX_TOKENS = 32
DIM = 384


# ----------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------

def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    cat = unicodedata.category(ch)
    return cat.startswith("C") and cat != "Cn"  # unassigned code points are kept, as BertTokenizerFast does


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


# ASCII: whitespace is " \t\n\r" (other C0 controls and DEL are dropped first), punctuation is every printable
# non-alphanumeric character (BERT counts all of them as punctuation)
_ASCII_CONTROL = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]}
_ASCII_WORD = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")


class WordPieceTokenizer:
    """BERT uncased WordPiece tokenizer over `vocab.txt` (one token per line, id = line number)."""

    def __init__(self, vocab_path: str | Path, max_tokens: int = MAX_TOKENS):
        lines = Path(vocab_path).read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        self.vocab = {tok: i for i, tok in enumerate(lines)}
        self.max_tokens = max_tokens
        self.unk = self.vocab["[UNK]"]
        self.cls = self.vocab["[CLS]"]
        self.sep = self.vocab["[SEP]"]
        self.pad = self.vocab["[PAD]"]
        self._pieces: dict[str, list[int]] = {}  # word -> its WordPiece ids

    def fits(self, text: str) -> bool:
        """whether `text` fits the token limit untruncated"""
        return not self.encode(text)[1]

    def batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, list[bool]]:
        """ids [B, max_tokens] int64 (padded with [PAD]), mask [B, max_tokens] bool, truncated flags."""
        ids = np.full((len(texts), self.max_tokens), self.pad, dtype=np.int64)
        mask = np.zeros((len(texts), self.max_tokens), dtype=bool)
        flags = []
        for b, t in enumerate(texts):
            toks, trunc = self.encode(t)
            ids[b, : len(toks)] = toks
            mask[b, : len(toks)] = True
            flags.append(trunc)
        return ids, mask, flags

    def normalize(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                out.append(" ")
            elif _is_cjk(cp):
                out.append(" " + ch + " ")
            else:
                out.append(ch)
        text = unicodedata.normalize("NFD", "".join(out))
        return "".join(c.lower() for c in text if unicodedata.category(c) != "Mn")

    def words(self, text: str) -> list[str]:
        words, cur = [], []
        for ch in self.normalize(text):
            if ch.isspace():
                if cur:
                    words.append("".join(cur))
                    cur = []
            elif _is_punctuation(ch):
                if cur:
                    words.append("".join(cur))
                    cur = []
                words.append(ch)
            else:
                cur.append(ch)
        if cur:
            words.append("".join(cur))
        return words

    def wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def ascii_words(self, text: str) -> list[str]:
        """`words` for ASCII text, without the per-character Unicode work (NFD and accent stripping do nothing
        to ASCII): control characters dropped, lower-cased, split at whitespace and punctuation."""
        return _ASCII_WORD.findall(text.translate(_ASCII_CONTROL).lower())

    def encode(self, text: str) -> tuple[list[int], bool]:
        """Token ids `[CLS] … [SEP]` (at most `max_tokens`) and whether the text was truncated. Training
        tokenises thousands of captions per step: ASCII text takes the fast path and each word's pieces are
        looked up once."""
        pieces: list[int] = []
        for w in (self.ascii_words(text) if text.isascii() else self.words(text)):
            ids = self._pieces.get(w)
            if ids is None:
                ids = self._pieces[w] = self.wordpiece(w)
            pieces.extend(ids)
        room = self.max_tokens - 2
        truncated = len(pieces) > room
        return [self.cls] + pieces[:room] + [self.sep], truncated


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

def load_dequantised(assets_dir: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of the converted files, int8 pairs (`X_q`, `X_scale`) folded back to f32 `X`."""
    assets_dir = Path(assets_dir)
    sd: dict[str, torch.Tensor] = {}
    for fname in ("embeddings.safetensors", "encoder.safetensors"):
        raw = load_file(str(assets_dir / fname))
        for name, t in raw.items():
            if name.endswith("_scale"):
                continue
            if name.endswith("_q"):
                base = name[: -len("_q")]
                scale = raw[base + "_scale"].to(torch.float32)
                sd[base] = t.to(torch.float32) * scale[:, None]
            else:
                sd[name] = t.to(torch.float32)
    return sd


class TextEncoder(torch.nn.Module):
    """Frozen all-MiniLM-L6-v2: `encode(list[str]) -> (tokens [B, 32, 384] f32, mask [B, 32] bool)`."""

    def __init__(self, assets_dir: str | Path, device: str | torch.device = "cpu"):
        super().__init__()
        assets_dir = Path(assets_dir)
        cfg = json.loads((assets_dir / "config.json").read_text())
        self.hidden = cfg["hidden_size"]
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.eps = cfg["layer_norm_eps"]
        self.max_tokens = cfg["max_tokens"]
        assert self.hidden == DIM and self.max_tokens == MAX_TOKENS
        self.tokenizer = WordPieceTokenizer(assets_dir / "vocab.txt", self.max_tokens)
        self.device = torch.device(device)
        sd = load_dequantised(assets_dir)
        self.w = {k: v.to(self.device) for k, v in sd.items()}
        self.requires_grad_(False)

    def _ln(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        return F.layer_norm(x, (self.hidden,), self.w[prefix + ".weight"], self.w[prefix + ".bias"], self.eps)

    def _lin(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        return F.linear(x, self.w[prefix + ".weight"], self.w[prefix + ".bias"])

    @torch.no_grad()
    def forward_ids(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids [B, T] int64, mask [B, T] bool -> last hidden state [B, T, 384] f32."""
        B, T = ids.shape
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:T][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        hd = self.hidden // self.heads
        bias = torch.zeros(B, 1, 1, T, device=x.device, dtype=torch.float32)
        bias = bias.masked_fill(~mask[:, None, None, :], torch.finfo(torch.float32).min)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def heads(t: torch.Tensor) -> torch.Tensor:
                return t.view(B, T, self.heads, hd).transpose(1, 2)

            q = heads(self._lin(x, p + "attention.self.query"))
            k = heads(self._lin(x, p + "attention.self.key"))
            v = heads(self._lin(x, p + "attention.self.value"))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + bias
            ctx = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, self.hidden)
            x = self._ln(self._lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = F.gelu(self._lin(x, p + "intermediate.dense"))  # erf GELU
            x = self._ln(self._lin(h, p + "output.dense") + x, p + "output.LayerNorm")
        return x

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
        """ids [B, 32] int64 (padded with [PAD]), mask [B, 32] bool, truncated flags."""
        ids, mask, flags = self.tokenizer.batch(list(texts))
        return torch.from_numpy(ids), torch.from_numpy(mask), flags

    def fits(self, text: str) -> bool:
        """whether `text` fits the token limit untruncated (the data's captions must)"""
        return self.tokenizer.fits(text)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens [B, 32, 384] f32 with zeros at padding, mask [B, 32] bool) on the encoder's device."""
        ids, mask, _ = self.tokenize(list(texts))
        return self.encode_ids(ids, mask)

    @torch.no_grad()
    def encode_ids(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode` of already tokenised text (ids/mask [B, 32], e.g. from `WordPieceTokenizer.batch` in a
        data worker). Runs only up to the longest text's length: padding keys are masked out, so the real
        tokens' states do not depend on it."""
        ids, mask = torch.as_tensor(ids).to(self.device), torch.as_tensor(mask).to(self.device)
        L = max(int(mask.sum(1).max()), 1)
        # Always f32, as in the app, even inside a caller's autocast region.
        with torch.autocast(device_type=self.device.type, enabled=False):
            out = self.forward_ids(ids[:, :L], mask[:, :L])
        out = F.pad(out * mask[:, :L, None].to(out.dtype), (0, 0, 0, ids.shape[1] - L))
        return out, mask
