#!/usr/bin/env python3
"""Reference test for `peftbench tokenizer train` (issue 14, part 2), against the real peers.

Corpus: Debian's licence texts (/usr/share/common-licenses, package base-files, on every Debian
system) plus two small generated files (Unicode, CRLF lines, tabs and whitespace runs,
contractions, no final newline; runs of one character behind different prefixes). Held out: other
licence texts plus unseen Unicode text.

For each configuration (vocab size, min_frequency, corpus):
 (b) the peer: tokenizers `ByteLevelBPETokenizer().train(files, vocab_size=N, min_frequency=K,
     special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])`. Asserted: merges.txt is
     byte-identical to peftbench's, and the vocabulary is the same tokens in the same order once
     <mask> (id 4 there) is moved last (RoBERTa's place, id N-1 in peftbench). A second peer with
     the four other specials and vocab_size N-1 must give vocab.json byte-identical to peftbench's
     without its final "<mask>" entry (so the JSON formatting is the same too).
 (a) peftbench's files load in transformers `RobertaTokenizer` and in tokenizers
     `ByteLevelBPETokenizer` (+ RobertaProcessing); every held-out line (with <s> ... </s>) and the
     whole held-out text (no specials, newlines inside) encode to the same ids as
     `peftbench tokenizer encode`.
Usage: ref_bpe_train.py PATH/TO/peftbench"""
import json
import os
import subprocess
import sys
import tempfile

from tokenizers import ByteLevelBPETokenizer
from tokenizers.processors import RobertaProcessing

PB = sys.argv[1]
LIC = "/usr/share/common-licenses"
TRAIN_LIC = ["GPL-3", "GPL-2", "GPL-1", "LGPL-2.1", "Apache-2.0", "GFDL-1.3", "MPL-1.1"]
HELD_LIC = ["MPL-2.0", "CC0-1.0", "Artistic", "BSD", "LGPL-3"]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]

UNICODE_TRAIN = (
    "Hello world! It's a test, isn't it? We'll see: they've done 1234 things.\r\n"
    "Unicode: café, naïve, résumé, Ångström, straße, Ελληνικά, русский, 中文字符, 日本語, 한국어, ٣٤٥ ⅻ.\n"
    "Whitespace   runs\tand\t\ttabs   \n\n  indented  text   \n"
    "Emoji 😀🎉 and symbols ©®™ — “quotes” ‘single’ «guillemets» … ½ ¾\r\n"
    "I'm, you're, he's, she'd, we'll, they've, I'M, DON'T, can't won't\n"
) * 6 + "no final newline"

HELD_EXTRA = [
    "Ünïcödé résumés in Zürich; 東京 and Москва, 2024-05-17.",
    "    code_block = {'key': [1, 2, 3]}  # indented\twith tabs",
    "emoji never seen: 🦀🧪 and ≤≥≠ signs",
    "",
    "   ",
    "it's they're we'd I'll",
]


def runs_text():
    """Runs of one character (1..33) after different prefixes, so equal strings come from
    different merge paths and the stale-count rules of the peer's queue are exercised."""
    out = []
    for i in range(1, 700):
        k = 1 + (i * 7) % 33
        c = "a-= ."[i % 5]
        pre = ["", "x", "xy", " ", "ba"][(i // 5) % 5]
        post = ["", "y", " end", "\t"][(i // 25) % 4]
        out.append(pre + c * k + post)
    return "\n".join(out) + "\n"


def pb(*args):
    r = subprocess.run([PB, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"FAIL: peftbench {' '.join(args)}: exit {r.returncode}\n{r.stderr}")
    return r.stdout


def peer_train(files, vocab, minf, specials, out):
    tok = ByteLevelBPETokenizer()
    tok.train(files, vocab_size=vocab, min_frequency=minf, show_progress=False, special_tokens=specials)
    os.makedirs(out)
    tok.save_model(out)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def compare_training(d, label, files, vocab, minf):
    """(b): peftbench vs the peer trainer; returns the number of failures."""
    fails = 0
    ours = os.path.join(d, label + "-ours")
    summary = pb("tokenizer", "train", *sum((["--corpus", f] for f in files), []), "--vocab-size", str(vocab),
                 "--min-frequency", str(minf), "--out", ours).splitlines()[0]
    peer = os.path.join(d, label + "-peer")
    peer_train(files, vocab, minf, SPECIALS, peer)
    om = read(os.path.join(ours, "merges.txt")).decode().split("\n")
    pm = read(os.path.join(peer, "merges.txt")).decode().split("\n")
    orules, prules = om[1:-1], pm[1:-1]  # without the "#version" header and the piece after the last \n
    agree = next((i for i, (a, b) in enumerate(zip(orules, prules)) if a != b), min(len(orules), len(prules)))
    n_merges = len(prules)
    if om != pm:
        fails += 1
        print(f"FAIL [{label}] merges.txt differs: {len(orules)} vs peer {n_merges} rules, first difference at "
              f"rank {agree}: ours {orules[agree] if agree < len(orules) else None!r} peer "
              f"{prules[agree] if agree < n_merges else None!r}")
    ov = json.loads(read(os.path.join(ours, "vocab.json")))
    pv = json.loads(read(os.path.join(peer, "vocab.json")))
    oorder = sorted(ov, key=ov.get)
    porder = sorted(pv, key=pv.get)
    porder = [t for t in porder if t != "<mask>"] + ["<mask>"]
    if oorder != porder or sorted(ov.values()) != list(range(len(ov))):
        fails += 1
        first = next((i for i, (a, b) in enumerate(zip(oorder, porder)) if a != b), None)
        print(f"FAIL [{label}] vocabulary differs: {len(ov)} vs {len(pv)} tokens, first at id {first}")
    # peer with <mask> left out and one token fewer: vocab.json bytes = ours without its <mask>
    peer4 = os.path.join(d, label + "-peer4")
    peer_train(files, len(ov) - 1, minf, SPECIALS[:4], peer4)
    ob = read(os.path.join(ours, "vocab.json"))
    want = read(os.path.join(peer4, "vocab.json"))[:-1] + f',"<mask>":{len(ov) - 1}}}'.encode()
    if ob != want or read(os.path.join(peer4, "merges.txt")) != read(os.path.join(ours, "merges.txt")):
        fails += 1
        first = next((i for i, (a, b) in enumerate(zip(ob, want)) if a != b), None)
        print(f"FAIL [{label}] vocab.json/merges.txt bytes differ from the 4-special peer (first byte {first})")
    print(f"{label}: vocab {vocab} min_frequency {minf}: {len(ov)} tokens; merges {agree}/{n_merges} "
          f"identical in order ({'exact' if om == pm else 'DIFFERENT'}); vocab.json "
          f"{'byte-identical' if ob == want else 'DIFFERENT'} to the peer's + <mask>   [{summary}]")
    return fails, ours


def compare_encoding(d, tokdir, label, held_lines, held_text):
    """(a): the trained files in transformers / tokenizers vs `peftbench tokenizer encode`."""
    vocab, merges = os.path.join(tokdir, "vocab.json"), os.path.join(tokdir, "merges.txt")
    lines_path = os.path.join(d, "held-lines.txt")
    with open(lines_path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(line + "\n" for line in held_lines))
    text_path = os.path.join(d, "held-text.txt")
    with open(text_path, "w", encoding="utf-8", newline="") as f:
        f.write(held_text)
    ours_lines = [[int(x) for x in s.split()] for s in
                  pb("tokenizer", "encode", "--dir", tokdir, "--roberta", "--file", lines_path, "--lines").splitlines()]
    ours_text = [int(x) for x in pb("tokenizer", "encode", "--dir", tokdir, "--file", text_path).split()]
    if len(ours_lines) != len(held_lines):
        print(f"FAIL [{label}] peftbench printed {len(ours_lines)} lines for {len(held_lines)}")
        return 1

    tok = ByteLevelBPETokenizer(vocab, merges)
    tok.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    peers = [("tokenizers", lambda s: tok.encode(s).ids, lambda s: tok.encode(s, add_special_tokens=False).ids)]
    from transformers import RobertaTokenizer
    rt = RobertaTokenizer(vocab, merges)
    peers.append(("transformers.RobertaTokenizer", lambda s: rt(s)["input_ids"],
                  lambda s: rt(s, add_special_tokens=False)["input_ids"]))
    fails = 0
    ntok = sum(len(x) for x in ours_lines)
    for name, enc, enc_raw in peers:
        bad = 0
        for line, got in zip(held_lines, ours_lines):
            want = enc(line)
            if got != want:
                bad += 1
                if bad <= 3:
                    print(f"MISMATCH [{label} {name}] {line[:60]!r}\n  ours {got[:30]}\n  peer {want[:30]}")
        want = enc_raw(held_text)
        whole = ours_text == want
        if not whole:
            bad += 1
            first = next((i for i, (a, b) in enumerate(zip(ours_text, want)) if a != b), None)
            print(f"MISMATCH [{label} {name}] whole held-out text: {len(ours_text)} vs {len(want)} ids, first "
                  f"difference at {first}")
        fails += bad
        print(f"{label}: {name}: {len(held_lines) - (bad - (not whole))}/{len(held_lines)} held-out lines "
              f"({ntok} ids) and the whole text ({len(ours_text)} ids, {'same' if whole else 'DIFFERENT'}) encode "
              f"identically")
    if ntok < 5000 or len(set(i for x in ours_lines for i in x)) < 300:
        print(f"FAIL [{label}] held-out sample too small to mean anything ({ntok} ids)")
        fails += 1
    return fails


def main():
    missing = [f for f in TRAIN_LIC + HELD_LIC if not os.path.isfile(os.path.join(LIC, f))]
    if missing:
        print(f"FAIL: {LIC}/{missing} missing (Debian's base-files ships them)")
        return 1
    fails = 0
    with tempfile.TemporaryDirectory() as d:
        uni = os.path.join(d, "unicode.txt")
        with open(uni, "w", encoding="utf-8", newline="") as f:
            f.write(UNICODE_TRAIN)
        runs = os.path.join(d, "runs.txt")
        with open(runs, "w", encoding="utf-8") as f:
            f.write(runs_text())
        lic = [os.path.join(LIC, f) for f in TRAIN_LIC]
        configs = [
            ("lic-2000", lic + [uni, runs], 2000, 2),
            ("lic-700-f1", lic + [uni, runs], 700, 1),
            ("lic-5000-f5", lic + [uni], 5000, 5),  # runs out of pairs with count >= 5 first
            ("runs-1500-f1", [runs, uni], 1500, 1),
        ]
        trained = {}
        for label, files, vocab, minf in configs:
            f, tokdir = compare_training(d, label, files, vocab, minf)
            fails += f
            trained[label] = tokdir

        held_lines, held_text = [], ""
        for name in HELD_LIC:
            with open(os.path.join(LIC, name), encoding="utf-8") as f:
                t = f.read()
            held_text += t
            held_lines += t.split("\n")
        held_lines += HELD_EXTRA
        held_text += "\n".join(HELD_EXTRA)
        for label in ("lic-2000", "lic-700-f1"):
            fails += compare_encoding(d, trained[label], label, held_lines, held_text)
    if fails:
        print(f"FAIL: {fails} problems")
        return 1
    print("ref_bpe_train: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
