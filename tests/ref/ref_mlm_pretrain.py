#!/usr/bin/env python3
"""End to end: a suite whose RoBERTa backbone peftbench pretrains with the masked-LM objective
(pretrain.objective "mlm", harness/pretrain_mlm.c) on a local plain text file.

  1. trains a byte-level BPE (tokenizers' ByteLevelBPETokenizer, the five RoBERTa specials at
     ids 0-4) on /usr/share/common-licenses/GPL-3 and writes a GLUE SST-2-shaped fixture task
     from the Apache-2.0 licence (only so that the suite has a downstream cell);
  2. `peftbench run` pretrains roberta-tiny (vocab 600) on GPL-3 for 6 epochs, then trains the
     head cell: the run succeeds, the train and held-out masked-LM losses fall (last epoch below
     the first, the held-out one well below ln V, the first-step loss near ln V), one backbone is
     cached;
  3. a second run uses the cached backbone (no "[pretrain]" line) and gives the same cell result;
     a third run into another cache pretrains again and writes the same checkpoint (content hash);
  4. the cached checkpoint loads in transformers' RobertaForMaskedLM.from_pretrained unmodified
     (no missing / unexpected keys, no warning), and its logits and masked-LM loss on a batch of
     held-out text equal pb_mlm_trace's on the same directory (<= 1e-5 / 1e-5 relative).
Exit status non-zero on any failure.

usage: ref_mlm_pretrain.py PEFTBENCH PB_MLM_TRACE
"""
import glob
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file
from tokenizers import ByteLevelBPETokenizer
from transformers import RobertaForMaskedLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_mlm import failures, from_pretrained_quiet, rel  # noqa: E402

torch.set_num_threads(2)
CORPUS = "/usr/share/common-licenses/GPL-3"
TASK_TEXT = "/usr/share/common-licenses/Apache-2.0"
V = 600
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def run(cmd, env):
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    pb, tool = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = os.path.join(tmp, "tok")
        os.makedirs(tok_dir)
        bpe = ByteLevelBPETokenizer()
        bpe.train(files=[CORPUS], vocab_size=V, min_frequency=2, special_tokens=SPECIALS, show_progress=False)
        bpe.save_model(tok_dir)
        vocab = json.load(open(os.path.join(tok_dir, "vocab.json")))
        assert [vocab[s] for s in SPECIALS] == [0, 1, 2, 3, 4], [vocab[s] for s in SPECIALS]
        # the downstream fixture: GLUE SST-2 layout, label = line mentions "License"
        lines = [l.strip().replace("\t", " ") for l in open(TASK_TEXT) if l.strip()]
        glue = os.path.join(tmp, "sst2")
        os.makedirs(glue)
        for name, part in (("train.tsv", lines[:96]), ("dev.tsv", lines[96:160])):
            with open(os.path.join(glue, name), "w") as f:
                f.write("sentence\tlabel\n")
                for l in part:
                    f.write(f"{l}\t{int('License' in l)}\n")
        suite = {
            "name": "mlm-e2e",
            "models": [{"label": "rob-mlm", "builtin": "roberta-tiny", "config": {"vocab_size": V},
                        "pretrain": {"objective": "mlm", "dataset": CORPUS, "tokenizer_dir": tok_dir,
                                     "seq_len": 64, "epochs": 6, "batch": 16, "lr": 5e-3,
                                     "warmup_ratio": 0.1, "seed": 3}}],
            "datasets": [{"spec": f"glue/sst2:{glue}", "tokenizer_dir": tok_dir, "seq_len": 32}],
            "methods": [{"method": "head", "lr": 5e-3}],
            "recipe": {"epochs": 1, "batch": 16},
        }
        sp = os.path.join(tmp, "s.json")
        json.dump(suite, open(sp, "w"))
        env = dict(os.environ, PEFTBENCH_BACKBONE_CACHE=os.path.join(tmp, "bb"))
        r1 = run([pb, "run", sp, "--out", os.path.join(tmp, "r1"), "--threads", "2"], env)
        if r1.returncode != 0:
            failures.append(f"run 1 exit {r1.returncode}: {r1.stderr[-2000:]}")
        pre_lines = [l for l in r1.stderr.splitlines() if l.startswith("[pretrain]")]
        print("\n".join(pre_lines))
        if sum("epoch 6/6" in l for l in pre_lines) != 1:
            failures.append("run 1 did not pretrain exactly once for 6 epochs")
        bbs = glob.glob(os.path.join(tmp, "bb", "*", "pretrain.json"))
        if len(bbs) != 1:
            failures.append(f"expected one cached backbone, found {bbs}")
            bdir = None
        else:
            bdir = os.path.dirname(bbs[0])
            info = json.load(open(bbs[0]))
            ep = info["epochs"]
            tl = [e["train_loss"] for e in ep]
            vl = [e["val_loss"] for e in ep]
            print(f"first step {info['first_step_loss']:.3f} (ln V = {math.log(V):.3f}); train {tl}; val {vl}")
            if info["objective"] != "mlm" or len(ep) != 6:
                failures.append(f"pretrain.json: {info['objective']}, {len(ep)} epochs")
            if abs(info["first_step_loss"] - math.log(V)) > 0.5:
                failures.append(f"first-step loss {info['first_step_loss']} is not near ln V = {math.log(V):.3f}")
            # falling: the last epoch below the first, the held-out loss well below uniform (ln V).
            # In this budget (84 steps) a 2-layer model reaches about the unigram entropy of the
            # corpus (printed for reference) and not beyond: the known early MLM plateau.
            counts = torch.zeros(V)
            for l in open(CORPUS):
                if l.strip():
                    for t in bpe.encode(l.strip("\n")).ids:
                        counts[t] += 1
            pu = counts[counts > 0] / counts.sum()
            print(f"unigram entropy of the corpus tokens: {-(pu * pu.log()).sum().item():.3f} nats")
            if not (tl[-1] < tl[0] - 0.3 and vl[-1] < vl[0]):
                failures.append(f"loss does not fall: train {tl}, held-out {vl}")
            if not vl[-1] < math.log(V) - 0.6:
                failures.append(f"held-out loss {vl[-1]:.3f} not well below uniform ln V = {math.log(V):.3f}")
        r2 = run([pb, "run", sp, "--out", os.path.join(tmp, "r2"), "--threads", "2"], env)
        if r2.returncode != 0:
            failures.append(f"run 2 exit {r2.returncode}: {r2.stderr[-2000:]}")
        if any(l.startswith("[pretrain]") for l in r2.stderr.splitlines()):
            failures.append("run 2 pretrained again instead of using the cached backbone")
        c1 = sorted(glob.glob(os.path.join(tmp, "r1", "cells", "*.json")))
        c2 = sorted(glob.glob(os.path.join(tmp, "r2", "cells", "*.json")))
        if len(c1) != 1 or len(c2) != 1:
            failures.append(f"cells: {c1} {c2}")
        else:
            a, b = json.load(open(c1[0])), json.load(open(c2[0]))
            ea = [(e["train_loss"], e["val"], e["test"]) for e in a["epochs"]]
            eb = [(e["train_loss"], e["val"], e["test"]) for e in b["epochs"]]
            if a["status"] != "ok" or ea != eb:
                failures.append(f"cell {a['status']} {a.get('reason')}; per-epoch numbers {ea} vs {eb}")
        # determinism: pretraining again into another cache gives the same checkpoint bytes
        env3 = dict(os.environ, PEFTBENCH_BACKBONE_CACHE=os.path.join(tmp, "bb3"))
        r3 = run([pb, "run", sp, "--out", os.path.join(tmp, "r3"), "--threads", "2"], env3)
        h3 = glob.glob(os.path.join(tmp, "bb3", "*", "pretrain.json"))
        if r3.returncode != 0 or len(h3) != 1 or not bdir or \
                json.load(open(h3[0]))["content_hash"] != json.load(open(bbs[0]))["content_hash"] or \
                os.path.basename(os.path.dirname(h3[0])) != os.path.basename(bdir):
            failures.append("pretraining twice did not give the same cache key and checkpoint")
        if bdir:
            # held-out text (the end of the corpus), masked at fixed positions
            ids = []
            for l in open(CORPUS).read().splitlines()[-40:]:
                if l.strip():
                    ids += [0] + bpe.encode(l).ids + [2]
            T = 48
            x = torch.tensor(ids[:3 * T]).reshape(3, T)
            g = torch.Generator().manual_seed(0)
            chosen = (torch.rand(3, T, generator=g) < 0.15) & (x > 4)
            labels = torch.where(chosen, x, torch.full_like(x, -100))
            inp = torch.where(chosen, torch.full_like(x, 4), x)
            attn = torch.ones_like(x)
            bpath = os.path.join(tmp, "b.safetensors")
            save_file({"input_ids": inp, "attention_mask": attn, "labels": labels}, bpath)
            out = os.path.join(tmp, "t.safetensors")
            rt = subprocess.run([tool, "--model", bdir, "--batch", bpath, "--out", out], capture_output=True, text=True)
            if rt.returncode != 0:
                failures.append(f"pb_mlm_trace on the cached backbone: {rt.stderr}")
            else:
                got = load_file(out)
                m = from_pretrained_quiet(bdir, "cached backbone")
                m.eval()
                with torch.no_grad():
                    o = m(input_ids=inp, attention_mask=attn, labels=labels)
                el, ell = rel(got["logits"], o.logits), rel(got["loss"], o.loss.reshape(1))
                print(f"cached backbone in transformers: logits rel {el:.1e}, loss rel {ell:.1e} "
                      f"(loss {o.loss.item():.3f} on {int(chosen.sum())} held-out masked tokens)")
                if el > 1e-5 or ell > 1e-5:
                    failures.append(f"cached backbone: logits {el:.2e} / loss {ell:.2e} vs transformers")
        # bad stages: refused when the suite is read (exit 2), each message naming the field
        bad_cases = [
            ({"objective": "mlm", "dataset": CORPUS}, "pretrain.tokenizer_dir"),
            ({"objective": "mlm", "dataset": CORPUS, "tokenizer_dir": tok_dir, "seq_len": 3}, "pretrain.seq_len"),
            ({"objective": "mlm", "dataset": CORPUS, "tokenizer_dir": tok_dir, "mlm_probability": 1.5},
             "pretrain.mlm_probability"),
            ({"objective": "masked", "dataset": CORPUS}, "pretrain.objective"),
            ({"dataset": CORPUS, "seq_len": 64}, "pretrain.seq_len"),
        ]
        for k, (pre, field) in enumerate(bad_cases):
            bs = dict(suite, models=[dict(suite["models"][0], pretrain=pre)])
            bp = os.path.join(tmp, f"bad{k}.json")
            json.dump(bs, open(bp, "w"))
            r = run([pb, "run", bp, "--dry-run", "--out", os.path.join(tmp, f"rb{k}")], env)
            if r.returncode != 2 or field not in r.stderr:
                failures.append(f"bad stage {pre}: exit {r.returncode}, message {r.stderr.strip()[:200]!r}")
        vit = dict(suite, models=[{"label": "v", "builtin": "vit-tiny", "pretrain": suite["models"][0]["pretrain"]}])
        json.dump(vit, open(os.path.join(tmp, "badvit.json"), "w"))
        r = run([pb, "run", os.path.join(tmp, "badvit.json"), "--dry-run", "--out", os.path.join(tmp, "rv")], env)
        if r.returncode != 2 or "RoBERTa" not in r.stderr:
            failures.append(f"mlm on a ViT: exit {r.returncode}, {r.stderr.strip()[:200]!r}")
        # a tokenizer larger than the model's vocabulary fails the run with the reason
        small = dict(suite, models=[dict(suite["models"][0], config={"vocab_size": 100})])
        json.dump(small, open(os.path.join(tmp, "small.json"), "w"))
        r = run([pb, "run", os.path.join(tmp, "small.json"), "--out", os.path.join(tmp, "rs")], env)
        if r.returncode == 0 or "does not fit the model" not in r.stderr:
            failures.append(f"tokenizer > vocab: exit {r.returncode}, {r.stderr.strip()[-300:]!r}")
    for f in failures:
        print("FAIL", f)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
