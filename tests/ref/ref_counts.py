#!/usr/bin/env python3
"""Parameter counts of `peftbench info` vs transformers (models built on the meta device, so
nothing is allocated). Checks params_backbone (no pooler, no head), params_head and
params_total for the built-in HF-sized models, plus the fixed numbers of formats.md.

usage: ref_counts.py PEFTBENCH
"""
import json
import subprocess
import sys

import torch
from transformers import (RobertaConfig, RobertaForSequenceClassification, ViTConfig,
                          ViTForImageClassification)

failures = []


def hf_counts(model):
    head = sum(p.numel() for k, p in model.named_parameters() if k.startswith("classifier."))
    total = sum(p.numel() for p in model.parameters())
    return total - head, head, total


def vit(hidden, layers, heads, inter, labels):
    cfg = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                    intermediate_size=inter, num_labels=labels)
    with torch.device("meta"):
        return ViTForImageClassification(cfg)


def roberta(hidden, layers, heads, inter, labels):
    cfg = RobertaConfig(vocab_size=50265, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=inter,
                        max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                        layer_norm_eps=1e-5, num_labels=labels)
    with torch.device("meta"):
        return RobertaForSequenceClassification(cfg)


CASES = [
    ("vit-b16", 101, lambda n: vit(768, 12, 12, 3072, n)),
    ("vit-l16", 10, lambda n: vit(1024, 24, 16, 4096, n)),
    ("roberta-base", 3, lambda n: roberta(768, 12, 12, 3072, n)),
    ("roberta-large", 2, lambda n: roberta(1024, 24, 16, 4096, n)),
]
# formats.md 4.3 / 5.3
FIXED = {("vit-b16", "params_backbone"): 85798656, ("vit-b16", "params_total"): 85876325,
         ("roberta-base", "params_backbone"): 124055040, ("roberta-base", "params_total"): 124647939}


def main():
    pb = sys.argv[1]
    for name, labels, build in CASES:
        r = subprocess.run([pb, "info", name, "--json", "--num-labels", str(labels)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            failures.append(f"{name}: info failed: {r.stderr}")
            continue
        got = json.loads(r.stdout)
        bb, head, total = hf_counts(build(labels))
        for key, want in (("params_backbone", bb), ("params_head", head), ("params_total", total)):
            if got[key] != want:
                failures.append(f"{name}: {key} {got[key]} != transformers {want}")
            fixed = FIXED.get((name, key))
            if fixed is not None and got[key] != fixed:
                failures.append(f"{name}: {key} {got[key]} != formats.md {fixed}")
        print(f"{name:14s} backbone {got['params_backbone']:>11d} head {got['params_head']:>8d} "
              f"total {got['params_total']:>11d} (transformers {bb} / {head} / {total})")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
