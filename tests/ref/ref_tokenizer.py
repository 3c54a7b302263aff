#!/usr/bin/env python3
"""Reference test: peftbench's byte-level BPE vs the real peers (PyPI `tokenizers` ByteLevelBPE with
RoBERTa post-processing, and transformers' RobertaTokenizer) on the same vocab.json/merges.txt.

A vocabulary is trained here with tokenizers.ByteLevelBPETokenizer on a small varied corpus (no
download). Texts cover Unicode letters/numbers, whitespace runs, contractions, numbers, pairs and
truncation. Also checks a real GPT-2-size vocabulary if one ships inside an installed package.
Usage: ref_tokenizer.py PATH/TO/pb_tokdump"""
import json
import os
import site
import subprocess
import sys
import tempfile

from tokenizers import ByteLevelBPETokenizer
from tokenizers.processors import RobertaProcessing

DUMP = sys.argv[1]

CORPUS = [
    "Hello world! It's a test, isn't it? We'll see: they've done 1234 things.",
    "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX.",
    "Numbers 3.14159, 2,718 and 1e10; dates 2024-01-31 and times 12:30pm.",
    "Unicode: café, naïve, résumé, Ångström, straße, Ελληνικά, русский, 中文字符, 日本語, 한국어, ٣٤٥ ⅻ.",
    "Whitespace   runs\tand\ttabs\nnew lines\n\n  indented  text   ",
    "Emoji 😀🎉 and symbols ©®™ — “quotes” ‘single’ «guillemets» … ½ ¾",
    "I'm, you're, he's, she'd, we'll, they've, I'M, DON'T, can't won't",
] * 20

TEXTS = [
    "Hello world",
    " Hello world",
    "hello   world  ",
    "It's raining; we'll go. They've left, I'm sure, you'd agree, he's fine.",
    "DON'T SHOUT'S 'quoted' 's",
    "123 4567 89.0 1,000,000",
    "café naïve résumé 中文字符 русский ٣٤٥ ⅻ",
    "tabs\tand\nnewlines\n\n\nend",
    "   leading and trailing   ",
    "emoji 😀🎉!! symbols ©®™ — “quotes”",
    "\u00a0nbsp\u2003emspace\u3000ideographic",
    "mixed123abc 456def",
    "",
    " ",
    "a" * 300,
    "x" + "\u0301" * 5 + " combining",
]
PAIRS = [
    ("The cat sat on the mat.", "A cat was sitting."),
    ("short", "a much longer second sentence that will need truncation for sure " * 3),
    ("a much longer first sentence that will need truncation for sure " * 3, "short"),
    ("both are fairly long sentences here " * 4, "and this one is long as well, isn't it? " * 4),
    ("equal length one", "equal length two"),
    ("", "empty first"),
]


def run_dump(tokdir, maxlen, cases):
    inp = "".join(json.dumps({"a": a, "b": b}) + "\n" for a, b in cases)
    out = subprocess.run([DUMP, "tok", tokdir, str(maxlen)], input=inp.encode(), capture_output=True, check=True)
    return [[int(x) for x in line.split()] for line in out.stdout.decode().splitlines()]


def check(tokdir, label):
    tok = ByteLevelBPETokenizer(os.path.join(tokdir, "vocab.json"), os.path.join(tokdir, "merges.txt"))
    vocab = json.load(open(os.path.join(tokdir, "vocab.json"), encoding="utf-8"))
    tok.post_processor = RobertaProcessing(("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]))
    fails = 0
    peers = [("tokenizers", None)]
    try:
        from transformers import RobertaTokenizer
        rt = RobertaTokenizer(os.path.join(tokdir, "vocab.json"), os.path.join(tokdir, "merges.txt"))
        peers.append(("transformers.RobertaTokenizer", rt))
    except Exception as e:  # pragma: no cover
        print(f"note: transformers RobertaTokenizer unavailable: {e}")
    for maxlen in (512, 24, 9):
        cases = [(t, None) for t in TEXTS] + list(PAIRS)
        ours = run_dump(tokdir, maxlen, cases)
        for pname, rt in peers:
            for (a, b), got in zip(cases, ours):
                if rt is None:
                    tok.enable_truncation(max_length=maxlen, strategy="longest_first")
                    want = tok.encode(a, b).ids if b is not None else tok.encode(a).ids
                else:
                    want = rt(a, b, truncation=True, max_length=maxlen)["input_ids"]
                if got != want:
                    fails += 1
                    print(f"MISMATCH [{label} {pname} maxlen={maxlen}] a={a[:60]!r} b={(b or '')[:40]!r}\n"
                          f"  ours {got[:40]}\n  peer {want[:40]}")
    n = (len(TEXTS) + len(PAIRS)) * 3 * len(peers)
    print(f"{label}: {n - fails}/{n} encodings identical ({', '.join(p for p, _ in peers)})")
    return fails


def find_real_vocab():
    roots = site.getsitepackages() + [site.getusersitepackages()]
    for r in roots:
        for dp, _, fn in os.walk(r):
            if "vocab.json" in fn and "merges.txt" in fn:
                try:
                    if len(json.load(open(os.path.join(dp, "vocab.json")))) > 40000:
                        return dp
                except Exception:
                    pass
    return None


def main():
    fails = 0
    with tempfile.TemporaryDirectory() as d:
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(CORPUS, vocab_size=600, min_frequency=2,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        bpe.save_model(d)
        fails += check(d, "trained-600")
    real = find_real_vocab()
    if real:
        fails += check(real, f"installed {real}")
    else:
        print("note: no GPT-2-size vocab.json/merges.txt ships in the installed Python packages; skipped")
    if fails:
        print(f"FAIL: {fails} mismatches")
        return 1
    print("ref_tokenizer: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
