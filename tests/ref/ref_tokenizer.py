#!/usr/bin/env python3
"""Reference test: peftbench's byte-level BPE vs the real peers (PyPI `tokenizers` ByteLevelBPE with
RoBERTa post-processing, and transformers' RobertaTokenizer) on the same vocab.json/merges.txt.

A vocabulary is trained here with tokenizers.ByteLevelBPETokenizer on a small varied corpus (no
download). Texts cover Unicode letters/numbers, whitespace runs, contractions, numbers, pairs and
truncation. Also checks a real GPT-2-size vocabulary if one ships inside an installed package.

Pair truncation grid: tokenizers 0.23 tokenises each text of a pair word by word only until it has
>= max_length tokens, and its longest-first rule compares those capped lengths, so the split of the
budget depends on word boundaries, not just on the two full lengths. The grid (every max_length in
5..20, texts of different token lengths and word structures, both orders, equal lengths, singles)
covers this; it must contain cases where the naive full-length rule would differ from the peer.
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


# Texts for the pair grid: different token lengths and word structures (one long word, many
# one-token words, mixed multi-token words, whitespace runs, Unicode, numbers, contractions).
GRID_TEXTS = [
    "The cat sat on the mat.",
    "A cat was sitting.",
    "x",
    "Hello world",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "a b c d e f g h i j k l m n o p q r s t",
    "sitting sitting sitting sitting",
    "Whitespace   runs\tand\ttabs\nnew lines\n\n  indented",
    "café naïve résumé 中文字符 русский",
    "I'm sure they've done 1234 things, haven't they?",
    "1,000,000 and 3.14159",
]
GRID_MAXLENS = range(5, 21)


def longest_first(la, lb, budget):
    """tokenizers `truncate_encodings` LongestFirst on the lengths it sees."""
    n1, n2, swap = la, lb, False
    if n1 > n2:
        n1, n2, swap = n2, n1, True
    n2 = n1 if n1 > budget else max(n1, budget - n1)
    if n1 + n2 > budget:
        n1 = budget // 2
        n2 = n1 + budget % 2
    if swap:
        n1, n2 = n2, n1
    return min(la, n1), min(lb, n2)


def run_dump(tokdir, maxlen, cases):
    inp = "".join(json.dumps({"a": a, "b": b}) + "\n" for a, b in cases)
    out = subprocess.run([DUMP, "tok", tokdir, str(maxlen)], input=inp.encode(), capture_output=True, check=True)
    return [[int(x) for x in line.split()] for line in out.stdout.decode().splitlines()]


def make_peers(tokdir):
    """[(name, encode(a, b_or_None, maxlen) -> ids)] for every available real peer."""
    tok = ByteLevelBPETokenizer(os.path.join(tokdir, "vocab.json"), os.path.join(tokdir, "merges.txt"))
    vocab = json.load(open(os.path.join(tokdir, "vocab.json"), encoding="utf-8"))
    tok.post_processor = RobertaProcessing(("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]))

    def enc_tokenizers(a, b, maxlen):
        tok.enable_truncation(max_length=maxlen, strategy="longest_first")
        return tok.encode(a, b).ids if b is not None else tok.encode(a).ids

    peers = [("tokenizers", enc_tokenizers)]
    try:
        from transformers import RobertaTokenizer
        rt = RobertaTokenizer(os.path.join(tokdir, "vocab.json"), os.path.join(tokdir, "merges.txt"))
        peers.append(("transformers.RobertaTokenizer(truncation=True)",
                      lambda a, b, maxlen: rt(a, b, truncation=True, max_length=maxlen)["input_ids"]))
        peers.append(("transformers.RobertaTokenizer(truncation='longest_first')",
                      lambda a, b, maxlen: rt(a, b, truncation="longest_first", max_length=maxlen)["input_ids"]))
    except Exception as e:  # pragma: no cover
        print(f"note: transformers RobertaTokenizer unavailable: {e}")
    return peers


def compare(tokdir, label, peers, maxlens, cases):
    """Our ids vs every peer for each (a, b) in cases at each maxlen; returns (n, fails)."""
    fails = n = 0
    for maxlen in maxlens:
        ours = run_dump(tokdir, maxlen, cases)
        if len(ours) != len(cases):
            print(f"FAIL [{label}] pb_tokdump printed {len(ours)} lines for {len(cases)} cases")
            return n + 1, fails + 1
        for pname, enc in peers:
            for (a, b), got in zip(cases, ours):
                want = enc(a, b, maxlen)
                n += 1
                if got != want:
                    fails += 1
                    print(f"MISMATCH [{label} {pname} maxlen={maxlen}] a={a[:60]!r} b={(b or '')[:40]!r}\n"
                          f"  ours {got[:40]}\n  peer {want[:40]}")
    return n, fails


def check(tokdir, label):
    peers = make_peers(tokdir)
    names = ", ".join(p for p, _ in peers)
    cases = [(t, None) for t in TEXTS] + list(PAIRS)
    n, fails = compare(tokdir, label, peers, (512, 24, 9), cases)
    print(f"{label}: {n - fails}/{n} encodings identical ({names})")

    # systematic pair grid: every ordered pair (both orders, a == b included) and every single
    grid = [(a, b) for a in GRID_TEXTS for b in GRID_TEXTS] + [(a, None) for a in GRID_TEXTS]
    gn, gfails = compare(tokdir, label + " grid", peers, GRID_MAXLENS, grid)
    print(f"{label} grid ({len(grid)} cases x max_length {GRID_MAXLENS.start}..{GRID_MAXLENS.stop - 1}): "
          f"{gn - gfails}/{gn} encodings identical")
    # the grid must exercise the word-capped lengths: count pairs where the naive rule on the full
    # lengths gives another split than the peer (tokenizers) does
    raw = ByteLevelBPETokenizer(os.path.join(tokdir, "vocab.json"), os.path.join(tokdir, "merges.txt"))
    full = {t: len(raw.encode(t).ids) for t in GRID_TEXTS}
    enc = peers[0][1]
    naive_differs = truncated = 0
    for maxlen in GRID_MAXLENS:
        for a, b in grid:
            if b is None or full[a] + full[b] <= maxlen - 4:
                continue
            truncated += 1
            ids = enc(a, b, maxlen)
            sep = ids.index(raw.token_to_id("</s>"))
            if (sep - 1, len(ids) - sep - 3) != longest_first(full[a], full[b], maxlen - 4):
                naive_differs += 1
    print(f"{label} grid: {truncated} truncated pairs, {naive_differs} where the full-length rule differs "
          f"from the peer")
    if naive_differs == 0:
        print(f"FAIL [{label}] the grid does not exercise the word-capped pair lengths")
        gfails += 1
    return fails + gfails


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
