#!/usr/bin/env python3
"""Writes tests/fixtures/wan_umt5_tok/: a tiny umT5-style tokenizer.json and the token ids that Wan's
own tokenizer code gives with it, for the Rust umT5 tokenizer's parity tests
(src/model/wan/umt5_tokenizer.rs, tests/wan_umt5_tokenizer.rs).

The reference is Self-Forcing's (SF, guandeh17/Self-Forcing) wan/modules/tokenizers.py
`HuggingfaceTokenizer`, imported from an SF checkout (`--sf`) and called the way utils/wan_wrapper.py
`WanTextEncoder` calls it: `HuggingfaceTokenizer(name, seq_len=512, clean='whitespace')`, then
`tok(prompts, return_mask=True, add_special_tokens=True)`: ftfy + html.unescape twice + whitespace
cleaning, then `AutoTokenizer` (T5TokenizerFast on tokenizer.json) with padding to max_length 512 and
truncation. The one change to the call: `return_tensors='np'` instead of its default 'pt', so torch
is not needed (same ids). ftfy is the real package (`pip install ftfy`), not a stub.

The real tokenizer (google/umt5-xxl: SentencePiece Unigram, 256384 pieces) is not used or fetched.
Instead a tiny one of the same make is built here:
  1. a SentencePiece Unigram model (about 400 pieces, pad 0, eos 1, unk 2, no bos, no byte
     fallback, like T5's spiece.model) is trained on the varied text below. Its normalisation is
     nmt_nfkc's own mapping restricted to the characters the tests use (Latin-1 and Latin
     Extended, combining marks, Greek, general punctuation, letter-like and number forms, enclosed
     alphanumerics, CJK symbols, ligatures, variation selectors, full/half-width forms, and common
     letter + combining mark pairs): the rules are read off the real nmt_nfkc charsmap and compiled
     by SentencePiece into a `user_defined` charsmap of ~10 KB (the full nmt_nfkc one is 240 KB, too
     big for a fixture). It is still a Precompiled normaliser, read by the same code.
  2. it is converted to a fast tokenizer as umT5's was: transformers' T5TokenizerFast from the slow
     sentencepiece tokenizer (T5Converter: Unigram with the scores, unk 2, `<extra_id_0..99>` added
     at the end, post-processor `$A </s>`), then given the normaliser and pre-tokeniser layout of the
     converter that made google/umt5-xxl's tokenizer.json (transformers 4.3x, 2023):
     Sequence[Precompiled(charsmap), Replace(/ {2,}/, " ")] and Metaspace("▁", prepend always,
     split). (Recent 4.x converters give Strip + Replace(/ {2,}/, "▁") and, from a bare vocab file,
     a Metaspace that never prepends; the Rust side reads whichever layout the file has.)

Files:
  tokenizer.json  the tiny tokenizer (as transformers saved it)
  expected.json   max_len (512);
                  cases: [{prompt, ids, truncated}] - ids are the reference's input_ids where the
                    attention mask is 1 (the real tokens, ending in </s> = 1; checked: the mask is
                    ones then zeros and the padding ids are 0), truncated = the untruncated encoding
                    was longer than 512. For every case the reference with the real ftfy equals the
                    reference with ftfy.fix_text replaced by FTFY_SUBSET (what the Rust side does).
                  ftfy_deviations: [{prompt, ids_wan, ids}] - prompts where the real ftfy changes
                    the tokens and FTFY_SUBSET does not follow: ids_wan with the real ftfy, ids with
                    FTFY_SUBSET (what the Rust side gives: the documented deviation).
                  clean_cases: [[text, cleaned]] - `whitespace_clean(basic_clean(text))` with
                    FTFY_SUBSET for ftfy: html.unescape edge cases and random strings.

FTFY_SUBSET = the parts of ftfy.fix_text (defaults) that change ordinary typed or pasted text and
that the nmt_nfkc normaliser does not already do: uncurl_quotes (‘’‚‛ʼ → ', “”„‟ → "),
remove_control_chars, NFC. Not followed: mojibake repair (fix_encoding and its helpers), C1 control
decoding, terminal escapes, ftfy's own repeated HTML unescaping (3+ levels of escaping, or escaped
curly quotes), line-break and width/ligature fixes (the normaliser and the whitespace cleaning make
those moot).

Needs: pip install "transformers>=4.49,<5" sentencepiece protobuf tokenizers ftfy regex numpy
(run with transformers 4.57.6, tokenizers 0.22.2, sentencepiece 0.2.3, ftfy 6.3.1). Not transformers
5: it cannot convert a bare spiece.model (its T5Tokenizer builds a 104-piece vocab), and it runs its
own pre-tokeniser (WhitespaceSplit + Metaspace) instead of the file's, which changes the ids around
special-token strings typed into a prompt (the `a </s> b <pad> ...` case); Wan ran on 4.x.

Run:  python3 training/make_umt5_tokenizer_fixture.py --sf /tmp/sf
      (checkout: git -C <SF mirror> archive HEAD | tar -x -C /tmp/sf)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sf_import import bare_packages  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_LEN = 512
VOCAB_SIZE = 400

# Training text for the tiny SentencePiece model: video prompts in several scripts, digits,
# full-width forms, emoji. Characters the prompts use but this text lacks become <unk>.
CORPUS = """\
a red fox runs through fresh snow at dawn, cinematic lighting, 35mm film, shallow depth of field
ocean waves crashing on black volcanic rocks under a stormy purple sky, slow motion, golden hour
the quick brown fox jumps over the lazy dog while a cat sleeps on a sunny windowsill
a drone shot flying over a dense green forest, mist rising from the valley in the early morning
close-up of a chef slicing fresh vegetables on a wooden board in a busy restaurant kitchen
an astronaut floating inside a space station, earth visible through the window, soft blue light
time-lapse of clouds moving over mountains, snow-capped peaks, dramatic shadows and bright sun
a little girl in a yellow raincoat jumping into puddles on a rainy street, reflections of neon signs
two dogs playing with a ball in a park, autumn leaves falling, warm afternoon light, 4k, highly detailed
a vintage car driving along a coastal road at sunset, palm trees, camera tracking from the side
Café au lait, naïve façade, Ångström, über-résumé, crème brûlée, señor, niño, pingüino, São Paulo
Zürich, Genève, Kraków, Dvořák, Şişli, Čapek, Ærø, smørrebrød, Ölüdeniz, façon, déjà vu, jalapeño
北京的秋天，一只猫在窗台上睡觉。上海的夜景，高楼大厦，灯光闪烁。中国的长城在雪中。
東京の夜、雨の街を歩く人々。桜の花が風に舞う。富士山と湖の風景。
서울의 밤거리, 비 오는 날의 네온사인. 한국어 텍스트 예시입니다.
Москва зимой, снег падает на Красную площадь. Русский текст для примера.
Ωμέγα, Αθήνα, η Ακρόπολη στο ηλιοβασίλεμα. Ελληνικά γράμματα.
emoji 🦊🔥🌊🎬🐱🌸✨ and symbols $100 + 5% © ® ™ ½ ° € £ ¥ § ¶ • … — – « » ¿ ¡
digits 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 1080p 60fps 3.14 16:9 24/7 #1 @home
ｆｕｌｌｗｉｄｔｈ letters ＡＢＣ and digits １２３ are normalised to ASCII
she said "it's a test" and "don't stop", the 'quoted' words
"""


def ftfy_subset(text: str) -> str:
    """The ftfy fixes the Rust side applies (FTFY_SUBSET in the docstring), from ftfy itself."""
    import ftfy.fixes as fx
    return unicodedata.normalize("NFC", fx.remove_control_chars(fx.uncurl_quotes(text)))


def import_tokenizers_module(sf):
    """Imports SF's wan/modules/tokenizers.py alone (wan/__init__.py would import the whole stack)."""
    bare_packages(sf)
    import wan.modules.tokenizers as tk
    return tk


def nmt_subset_rules(work):
    """nmt_nfkc's mapping restricted to a set of characters and pairs, as a SentencePiece rule TSV."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    from tokenizers import normalizers
    spm.SentencePieceTrainer.train(
        input=os.path.join(work, "corpus.txt"), model_prefix=os.path.join(work, "nmt"),
        vocab_size=300, model_type="unigram", normalization_rule_name="nmt_nfkc",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2)
    proto = pb.ModelProto()
    proto.ParseFromString(open(os.path.join(work, "nmt.model"), "rb").read())
    nmt = normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap)
    ranges = [(0x0000, 0x0250), (0x0300, 0x0370), (0x0370, 0x0400), (0x2000, 0x2070),
              (0x2100, 0x2190), (0x2460, 0x2500), (0x3000, 0x3040), (0xF900, 0xF910),
              (0xFB00, 0xFB50), (0xFE00, 0xFE10), (0xFF00, 0xFFF0)]
    rules = {}
    for lo, hi in ranges:
        for cp in range(lo, hi):
            c = chr(cp)
            out = nmt.normalize_str(c)
            if out != c:
                rules[c] = out
    for base in "AEIOUaeiouNnCcYySsZzGgKkLlRr":
        for mark in (0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x307, 0x308, 0x30A, 0x30C, 0x327, 0x328):
            s = base + chr(mark)
            out = nmt.normalize_str(s)
            if out != nmt.normalize_str(base) + nmt.normalize_str(chr(mark)):
                rules[s] = out
    path = os.path.join(work, "rules.tsv")
    with open(path, "w") as f:
        for src, dst in rules.items():
            f.write(" ".join("%04X" % ord(c) for c in src) + "\t"
                    + " ".join("%04X" % ord(c) for c in dst) + "\n")
    return path, rules


def build_tokenizer(work, folder):
    """Trains the tiny SentencePiece model and writes the umT5-style fast tokenizer to `folder`."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    from tokenizers import Regex, normalizers, pre_tokenizers
    from transformers import T5TokenizerFast

    with open(os.path.join(work, "corpus.txt"), "w") as f:
        f.write(CORPUS)
    rules_path, rules = nmt_subset_rules(work)
    prefix = os.path.join(work, "spiece")
    spm.SentencePieceTrainer.train(
        input=os.path.join(work, "corpus.txt"), model_prefix=prefix, vocab_size=VOCAB_SIZE,
        model_type="unigram", normalization_rule_tsv=rules_path, pad_id=0, eos_id=1, unk_id=2,
        bos_id=-1, character_coverage=1.0, byte_fallback=False, hard_vocab_limit=False,
        minloglevel=2)
    proto = pb.ModelProto()
    proto.ParseFromString(open(prefix + ".model", "rb").read())
    charsmap = proto.normalizer_spec.precompiled_charsmap
    check = normalizers.Precompiled(charsmap)
    assert all(check.normalize_str(s) == out for s, out in rules.items()), "charsmap != rules"

    fast = T5TokenizerFast(vocab_file=prefix + ".model", add_prefix_space=True)
    n_pieces = len(proto.pieces)
    assert fast.vocab_size == n_pieces + 100, (fast.vocab_size, n_pieces)
    backend = fast.backend_tokenizer
    backend.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    fast.save_pretrained(folder)
    # Keep what AutoTokenizer needs to load tokenizer.json as it is: without spiece.model and
    # add_prefix_space in the config it cannot re-convert from the slow tokenizer.
    os.remove(os.path.join(folder, "spiece.model"))
    cfg_path = os.path.join(folder, "tokenizer_config.json")
    cfg = json.load(open(cfg_path))
    cfg.pop("add_prefix_space", None)
    json.dump(cfg, open(cfg_path, "w"), indent=2)
    tj = json.load(open(os.path.join(folder, "tokenizer.json")))
    assert tj["model"]["type"] == "Unigram" and tj["model"]["unk_id"] == 2
    assert not tj["model"].get("byte_fallback")
    assert [t["content"] for t in tj["added_tokens"][:3]] == ["<pad>", "</s>", "<unk>"]
    print(f"tokenizer: {n_pieces} pieces + 100 extra ids, charsmap {len(charsmap)} bytes, "
          f"{len(rules)} normalisation rules")
    return tj


def prompts():
    long = ("A sweeping aerial view of an ancient city at dawn: narrow streets, red tile roofs, "
            "church towers, smoke from chimneys, birds circling, a river with stone bridges, boats, "
            "market stalls opening, people walking, carts, lanterns, 35mm film, 4k, highly detailed. ")
    return [
        "a red fox runs through fresh snow at dawn, cinematic lighting, 35mm film",
        "  A  cat\tsleeping\n\non a windowsill;\r\n rain   outside...  ",
        "Tom &amp; Jerry &lt;3 &amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt; &#33; &#x263A; &copy 2024 &amp",
        "&notanentity; &AMP; &Eacute;cole &eacutex &#0; &#128; &#x80; &#xD800; &#1114112; &#65;&#x42;&#X43",
        "Café au lait, naïve façade — Ångström's über-résumé! Crème brûlée in Zürich",
        "Cafe\u0301 in Zu\u0308rich, man\u0303ana, An\u030agstro\u0308m",
        "ｆｕｌｌｗｉｄｔｈ\u3000ＡＢＣ\u3000１２３！ and ﾊﾝｶｸ katakana",
        "emoji 🦊🔥🌊 with a family 👨\u200d👩\u200d👧, a flag 🇯🇵 and a heart ❤\ufe0f",
        "北京的秋天，一只猫在窗台上睡觉。東京の夜、雨の街。서울의 밤거리",
        "",
        " \t\n\u3000 ",
        "\u201cIt\u2019s a \u2018test\u2019,\u201d she said \u2014 don\u2019t stop \u201emaybe\u201c",
        "ﬁne ﬂowers ① ½ ™ Ⅻ ℃ № µ ﬃ",
        "3.14159 2024-06-01 100% $1,000,000 0x1F #42 16:9 1080p",
        "a </s> b <pad> c <extra_id_5> d <unk> e <extra_id_99>",
        "Ωμέγα ΣΊΣΥΦΟΣ русский हिन्दी ไทย ∮ ⊕ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 zxqvbnm",
        "tab\tand\x0bvt\x0cff\x1cfs\u00a0nbsp\u2003emsp\u200bzwsp\ufeffbom\u2028ls\x07bel",
        "\x1c\x1d leading and trailing python-only spaces \x1e\x1f",
        long * 12,
        "a " * (MAX_LEN - 1),   # 511 pieces + </s>: exactly 512, not truncated
        "a " * MAX_LEN,         # 513 before truncation
        "DVOŘÁK; Şişli — Kraków; smørrebrød! jalapeño? déjà-vu…",
    ]


FTFY_DEVIATIONS = [
    "cafÃ© crÃ¨me",                    # mojibake: ftfy repairs it
    "it&rsquo;s &ldquo;quoted&rdquo;",  # escaped curly quotes: ftfy unescapes, then uncurls
    "&amp;amp;lt;three levels&amp;amp;gt;",  # ftfy unescapes until nothing changes
    "\x93smart\x94 quotes from Windows-1252",  # C1 controls: ftfy decodes them as cp1252
    "\x1b[31mred\x1b[0m text",           # terminal escapes
]


def clean_cases(rng):
    """html.unescape edge cases and random strings of the characters that matter to the cleaning."""
    fixed = [
        "&", "&&", "&;", "&#", "&#;", "&#x", "&#x;", "&#12", "&#12;", "&#x1F600;", "&#X1f600",
        "&#0;", "&#13;", "&#128;", "&#150;", "&#159;", "&#x9F;", "&#1;", "&#11;", "&#127;",
        "&#xFDD0;", "&#xFFFE;", "&#x10FFFF;", "&#xD800;", "&#xDFFF;", "&#x110000;",
        "&#99999999999999999999999;", "&#x" + "f" * 40 + ";", "&#" + "0" * 30 + "65;",
        "&amp", "&amp;", "&AMP;", "&AMP", "&amp;amp;", "&amp;amp;amp;", "&ampx", "&ampx;",
        "&notin;", "&notit;", "&noti", "&not", "&nota", "&Eacute", "&eacutex", "&lt&gt",
        "&lt;&gt;&quot;&apos;", "&nbsp;x&nbsp", "&NotNestedGreaterGreater;", "&acE;",
        "&" + "a" * 31 + ";", "&" + "a" * 32 + ";", "&" + "a" * 33 + ";", "&ab\tc;", "&a b;",
        "&a<b;", "&a&b;", "&a#b;", "&é;", "&lté", "&\rlt;", "&lt\r;", "&\u00a0lt;", "&#\u0661;",
        "&#x\uff11;", "&#65;&#66;&#67", "a &amp;lt;b&amp;gt; c", "&amp;#65;", "&amp;#x41;",
        "  x  ", "\t\nx\r\x0b\x0c", "\x1cx\x1d", "x\x1cy", "x \x1c y", "\x1c \x1c", "\u3000x\u2003y\u00a0",
        "x\x85y\u2028z\u2029w", "\u200bx\u200b", "\u180ex", "x\ufeffy", "“x”", "ʼx‚y‛z„w‟",
        "e\u0301", "\u1100\u1161", "",
    ]
    alphabet = (["&", "&", "#", "x", "X", ";", ";", " ", "\t", "\n", "\x1c", "\u3000", "\u00a0",
                 "\x85", "a", "m", "p", "l", "t", "g", "n", "o", "1", "2", "6", "9", "F", "é",
                 "\u2019", "<"]
                + ["amp", "lt", "gt", "not", "copy", "nbsp", "Eacute", "quot", "&amp;", "&#"])
    rand = []
    for _ in range(160):
        n = rng.randint(1, 12)
        rand.append("".join(rng.choice(alphabet) for _ in range(n)))
    return fixed + rand


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sf", required=True, help="an extracted Self-Forcing checkout")
    ap.add_argument("--out", default=os.path.normpath(
        os.path.join(HERE, "..", "tests", "fixtures", "wan_umt5_tok")))
    args = ap.parse_args()
    import transformers
    import ftfy
    from tokenizers import Tokenizer
    tk = import_tokenizers_module(os.path.abspath(args.sf))
    print(f"transformers {transformers.__version__}, ftfy {ftfy.__version__}")

    with tempfile.TemporaryDirectory() as work:
        folder = os.path.join(work, "umt5-tiny")
        tj = build_tokenizer(work, folder)

        # The reference, as WanTextEncoder builds and calls it.
        ref = tk.HuggingfaceTokenizer(name=folder, seq_len=MAX_LEN, clean="whitespace")
        hf = ref.tokenizer
        assert type(hf).__name__ == "T5TokenizerFast", type(hf)
        loaded = json.loads(hf.backend_tokenizer.to_str())
        for key in ("normalizer", "pre_tokenizer", "post_processor", "added_tokens"):
            assert loaded[key] == tj[key], f"AutoTokenizer did not load tokenizer.json as is: {key}"
        # Scores: the tokenizers library parses JSON floats with serde_json's fast path (no
        # float_roundtrip), at most an ulp away from Python's; the Rust side parses them the same way.
        lm, fm = loaded["model"], tj["model"]
        assert {k: v for k, v in lm.items() if k != "vocab"} == {k: v for k, v in fm.items() if k != "vocab"}
        assert [p for p, _ in lm["vocab"]] == [p for p, _ in fm["vocab"]]
        assert max(abs(a - b) for (_, a), (_, b) in zip(lm["vocab"], fm["vocab"])) < 1e-12

        def run(texts, fix_text):
            real = tk.ftfy.fix_text
            tk.ftfy.fix_text = fix_text
            try:
                ids, mask = ref(texts, return_mask=True, add_special_tokens=True, return_tensors="np")
                cleaned = [ref._clean(t) for t in texts]
            finally:
                tk.ftfy.fix_text = real
            out = []
            for row, m, c in zip(ids, mask, cleaned):
                n = int(m.sum())
                assert row.shape == (MAX_LEN,) and (m[:n] == 1).all() and (m[n:] == 0).all()
                assert (row[n:] == 0).all() and n >= 1 and row[n - 1] == 1
                full = hf(c, add_special_tokens=True)["input_ids"]  # untruncated
                out.append(dict(ids=[int(x) for x in row[:n]], truncated=len(full) > MAX_LEN))
            return out

        texts = prompts()
        wan = run(texts, ftfy.fix_text)
        sub = run(texts, ftfy_subset)
        for t, a, b in zip(texts, wan, sub):
            assert a == b, f"FTFY_SUBSET differs from ftfy on a fixture prompt: {t!r}"
        cases = [dict(prompt=t, **r) for t, r in zip(texts, wan)]
        lens = [len(c["ids"]) for c in cases]
        assert lens[-3] == MAX_LEN and not cases[-3]["truncated"], lens[-3]
        assert lens[-2] == MAX_LEN and cases[-2]["truncated"] and cases[-4]["truncated"]
        assert cases[9]["ids"] == [1] and cases[10]["ids"] == [1], "empty prompts"
        # The plain tokenizers library on the stored file gives the same ids.
        plain = Tokenizer.from_str(json.dumps(tj))
        for t, c in zip(texts, cases):
            if not c["truncated"]:
                assert plain.encode(ref._clean(t)).ids == c["ids"], t
        n_unk = sum(i == 2 for c in cases for i in c["ids"])
        print(f"{len(cases)} cases, lengths {lens}, {n_unk} <unk>")

        dev_wan = run(FTFY_DEVIATIONS, ftfy.fix_text)
        dev_sub = run(FTFY_DEVIATIONS, ftfy_subset)
        deviations = []
        for t, a, b in zip(FTFY_DEVIATIONS, dev_wan, dev_sub):
            assert a["ids"] != b["ids"], f"not a deviation: {t!r}"
            deviations.append(dict(prompt=t, ids_wan=a["ids"], ids=b["ids"]))
            print(f"deviation {t!r}: ftfy {ftfy.fix_text(t)!r}, subset {ftfy_subset(t)!r}")

        real = tk.ftfy.fix_text
        tk.ftfy.fix_text = ftfy_subset
        try:
            cleans = [[t, tk.whitespace_clean(tk.basic_clean(t))]
                      for t in clean_cases(random.Random(0))]
        finally:
            tk.ftfy.fix_text = real

        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(folder, "tokenizer.json"), "rb") as f:
            raw = f.read()
        with open(os.path.join(args.out, "tokenizer.json"), "wb") as f:
            f.write(raw)

    def line(obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    parts = ['{"about":' + line("written by training/make_umt5_tokenizer_fixture.py; see its docstring"),
             '"max_len":%d' % MAX_LEN,
             '"cases":[\n' + ",\n".join(line(c) for c in cases) + "\n]",
             '"ftfy_deviations":[\n' + ",\n".join(line(d) for d in deviations) + "\n]",
             '"clean_cases":[\n' + ",\n".join(line(c) for c in cleans) + "\n]}\n"]
    text = ",\n".join(parts)
    json.loads(text)
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        f.write(text)
    sizes = {n: os.path.getsize(os.path.join(args.out, n)) for n in sorted(os.listdir(args.out))}
    print(f"wrote {args.out}: {sizes}, {sum(sizes.values())} bytes")


if __name__ == "__main__":
    main()
