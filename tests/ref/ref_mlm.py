#!/usr/bin/env python3
"""Cross-check of peftbench's masked-LM head (models/mlm.h) against transformers'
RobertaForMaskedLM (the real peer).

For several small configs (sequence lengths with padding, vocabulary sizes, layer_norm_eps) this
script:
  1. builds RobertaForMaskedLM with random weights (1-D tensors perturbed so zero biases / unit
     layernorms cannot hide bugs), save_pretrained (the decoder is tied: transformers writes no
     lm_head.decoder.*);
  2. draws a fixed mask in Python (labels -100 except at the chosen non-special, non-pad tokens,
     whose inputs become <mask>, a random id or stay) and runs the pb_mlm_trace tool on the
     directory unmodified with that batch;
  3. compares the logits of every token, the loss (transformers' own, labels=...), and EVERY
     parameter gradient (the tied word embeddings, lm_head.dense / layer_norm / bias included)
     with relative error ||a-b||/||b|| <= 1e-4;
  4. after 3 AdamW steps on both sides (torch.optim.AdamW, decay on all but biases and
     layernorms) compares every parameter; the tool then saves with pb_mlm_save and
     RobertaForMaskedLM.from_pretrained loads that directory with no missing / unexpected /
     mismatched keys and no warning, holds exactly the traced tensors, and gives the logits of a
     second trace of the saved directory (<= 1e-5);
  5. the masking (pb_mlm_mask) against DataCollatorForLanguageModeling on the same 240k tokens:
     no special / padding token chosen by either, the shares agree statistically.
Exit status non-zero on any failure.

usage: ref_mlm.py PB_MLM_TRACE [--keep DIR] [--device cpu|cuda]
  --device cuda runs the tool on the CUDA backend (a GPU, or the CPU emulator of docs/cuda.md with
  pb_mlm_trace_emu) at the same tolerances; exit 77 (skip) when the device is not available.
"""
import json
import logging
import math
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file
from transformers import RobertaConfig, RobertaForMaskedLM
from transformers.utils import logging as hf_logging

TOL = 1e-4       # logits, loss, gradients, parameters after the steps (relative)
TOL_SAVE = 1e-5  # from_pretrained of a peftbench save vs peftbench on the same directory
STEPS, LR, WD = 3, 1e-3, 0.01
SPECIAL = (0, 1, 2, 3)  # <s> <pad> </s> <unk>; <mask> is the last id, as roberta-base

torch.set_num_threads(2)
failures = []
DEVICE = ["--device", "cpu"]


def rel(a, b):
    a = a.double().flatten()
    b = b.double().flatten()
    nb = b.norm().item()
    if nb == 0.0:
        return a.norm().item()
    return (a - b).norm().item() / nb


def check(case, what, err, tol):
    if not err <= tol:
        failures.append(f"{case}: {what}: rel err {err:.3e} > {tol:.0e}")


def no_decay(name):
    return name.endswith(".bias") or "LayerNorm" in name or "layer_norm" in name


def analytic_zero(key):
    # softmax is invariant to q.b_k added to every score: the key bias gradient is exactly zero
    return key.endswith("self.key.bias")


def make_case(c):
    V = c["vocab"]
    cfg = RobertaConfig(vocab_size=V, hidden_size=c["hidden"], num_hidden_layers=c["layers"],
                        num_attention_heads=c["heads"], intermediate_size=c["inter"],
                        max_position_embeddings=c["maxpos"], type_vocab_size=1, pad_token_id=1,
                        bos_token_id=0, eos_token_id=2, layer_norm_eps=c["eps"],
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(c["seed"])
    model = RobertaForMaskedLM(cfg)
    g = torch.Generator().manual_seed(c["seed"] + 1)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    B, T = c["batch"], c["seq"]
    mask_id = V - 1
    ids = torch.randint(4, V - 1, (B, T), generator=g)
    ids[:, 0] = 0
    for i, n in enumerate(c["lens"]):
        ids[i, n - 1] = 2
        ids[i, n:] = 1
    if c.get("unk"):
        ids[0, 1] = 3  # <unk> is special: never chosen
    attn = (ids != 1).long()
    # a fixed mask: 30 % of the maskable tokens (more than 15 % so short cases have several)
    maskable = ~torch.isin(ids, torch.tensor(SPECIAL + (mask_id,)))
    chosen = (torch.rand(B, T, generator=g) < 0.3) & maskable
    chosen[0, 1 + (1 if c.get("unk") else 0)] = True  # at least one
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    act = torch.rand(B, T, generator=g)
    inp = ids.clone()
    inp[chosen & (act < 0.8)] = mask_id
    rnd = torch.randint(0, V, (B, T), generator=g)
    sel = chosen & (act >= 0.8) & (act < 0.9)
    inp[sel] = rnd[sel]
    return model, inp, attn, labels


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r


def from_pretrained_quiet(path, case):
    """from_pretrained with its loading report and any warning it logs (a tied-weights or
    unexpected-key complaint is a failure)."""
    records = []

    class Grab(logging.Handler):
        def emit(self, rec):
            if rec.levelno >= logging.WARNING:
                records.append(rec.getMessage())

    h = Grab()
    hf_logging.get_logger().addHandler(h)
    try:
        loaded, info = RobertaForMaskedLM.from_pretrained(path, output_loading_info=True)
    finally:
        hf_logging.get_logger().removeHandler(h)
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(kind):
            failures.append(f"{case}: from_pretrained {kind}: {info[kind]}")
    for msg in records:
        failures.append(f"{case}: from_pretrained warned: {msg[:300]}")
    return loaded


def run_case(tool, tmp, c):
    name = c["name"]
    model, inp, attn, labels = make_case(c)
    model.eval()
    mdir = os.path.join(tmp, name)
    model.save_pretrained(mdir, safe_serialization=True)
    saved_keys = set(load_file(os.path.join(mdir, "model.safetensors")))
    bpath = os.path.join(tmp, name + ".batch.safetensors")
    save_file({"input_ids": inp.contiguous(), "attention_mask": attn.contiguous(),
               "labels": labels.contiguous()}, bpath)
    out = os.path.join(tmp, name + ".trace.safetensors")
    sdir = os.path.join(tmp, name + ".saved")
    run([tool, "--model", mdir, "--batch", bpath, "--out", out, "--steps", str(STEPS), "--lr", str(LR),
         "--wd", str(WD), "--threads", "2", "--save", sdir] + DEVICE)
    got = load_file(out)

    out_ref = model(input_ids=inp, attention_mask=attn, labels=labels)
    worst = {}
    worst["logits"] = rel(got["logits"], out_ref.logits.detach())
    check(name, "logits", worst["logits"], TOL)
    worst["loss"] = rel(got["loss"], out_ref.loss.detach().reshape(1))
    check(name, "loss", worst["loss"], TOL)
    if int(got["nmasked"].item()) != int((labels != -100).sum()):
        failures.append(f"{name}: nmasked {got['nmasked'].item()} != {(labels != -100).sum()}")
    model.zero_grad()
    out_ref.loss.backward()
    # named_parameters lists a tied tensor once (under roberta.embeddings.word_embeddings.weight,
    # lm_head.bias): its .grad holds both the lookup's and the decoder's share
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    if set(grads) != saved_keys:
        failures.append(f"{name}: parameters {sorted(set(grads) ^ saved_keys)} not one-to-one with the file")
    gkeys = {k[5:] for k in got if k.startswith("grad.")}
    if gkeys != set(grads):
        failures.append(f"{name}: grad keys differ: only peftbench {sorted(gkeys - set(grads))}, "
                        f"only torch {sorted(set(grads) - gkeys)}")
    gmax = 0.0
    for k, gr in grads.items():
        if k not in gkeys:
            continue
        if analytic_zero(k):
            scale = grads[k[:-4] + "weight"].norm().item()
            for who, t in (("peftbench", got["grad." + k]), ("torch", gr)):
                if t.norm().item() > 1e-4 * scale:
                    failures.append(f"{name}: grad.{k} ({who}) should be ~0: {t.norm().item():.2e}")
            continue
        e = rel(got["grad." + k], gr)
        gmax = max(gmax, e)
        check(name, "grad." + k, e, TOL)
    worst["grad"] = gmax
    for k in ("roberta.embeddings.word_embeddings.weight", "lm_head.dense.weight", "lm_head.layer_norm.weight",
              "lm_head.bias"):
        worst[k.split(".")[-2]] = rel(got["grad." + k], grads[k])

    # AdamW steps
    params = dict(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for k, p in params.items() if not no_decay(k)], "weight_decay": WD},
                             {"params": [p for k, p in params.items() if no_decay(k)], "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    for s in range(STEPS):
        opt.zero_grad()
        l = model(input_ids=inp, attention_mask=attn, labels=labels).loss
        check(name, f"loss.{s}", rel(got[f"loss.{s}"], l.detach().reshape(1)), TOL)
        l.backward()
        opt.step()
    pmax = 0.0
    for k, p in params.items():
        if analytic_zero(k):
            continue  # Adam turns round-off into lr-sized steps; ref_models.py bounds the drift
        e = rel(got["param." + k], p.detach())
        pmax = max(pmax, e)
        check(name, "param." + k, e, TOL)
    worst["param"] = pmax

    # the saved checkpoint in transformers, unmodified
    loaded = from_pretrained_quiet(sdir, name)
    if loaded.lm_head.decoder.weight.data_ptr() != loaded.roberta.embeddings.word_embeddings.weight.data_ptr():
        failures.append(f"{name}: the loaded decoder is not tied to the word embeddings")
    sd = loaded.state_dict()
    for k in params:
        if not torch.equal(sd[k], got["param." + k]):
            failures.append(f"{name}: saved tensor {k} differs from the traced parameter")
    st_keys = set(load_file(os.path.join(sdir, "model.safetensors")))
    if st_keys != saved_keys:
        failures.append(f"{name}: saved keys differ from transformers' own save: {sorted(st_keys ^ saved_keys)}")
    loaded.eval()
    with torch.no_grad():
        ref_logits = loaded(input_ids=inp, attention_mask=attn).logits
    out2 = os.path.join(tmp, name + ".trace2.safetensors")
    run([tool, "--model", sdir, "--batch", bpath, "--out", out2, "--threads", "2"] + DEVICE)
    worst["save_logits"] = rel(load_file(out2)["logits"], ref_logits)
    check(name, "saved model logits", worst["save_logits"], TOL_SAVE)
    print(f"{name:12s} masked {int(got['nmasked'].item()):3d}  " + "  ".join(f"{k} {v:.1e}" for k, v in worst.items()))


def masking_stats(ids, masked, labels, V):
    """(eligible, chosen, <mask>, unchanged, random-changed, specials chosen or changed)."""
    special = (ids < 4) | (ids == V - 1)
    chosen = labels != -100
    bad = int((special & (chosen | (masked != ids))).sum()) + int((~chosen & (masked != ids)).sum())
    bad += int((chosen & (labels != ids)).sum())
    c = chosen
    return (int((~special).sum()), int(c.sum()), int((c & (masked == V - 1)).sum()),
            int((c & (masked == ids)).sum()), int((c & (masked != ids) & (masked != V - 1)).sum()), bad)


def check_collator(tool, tmp):
    """pb_mlm_mask against transformers' DataCollatorForLanguageModeling (mlm_probability 0.15) on
    the same 240,000 tokens (a RoBERTa tokenizer whose specials are 0-3 and <mask> = V-1): neither
    ever chooses or changes a special / padding token, and the chosen share and the <mask> /
    unchanged / random shares agree within 5 standard deviations of their difference. (The
    torch RNG draws other numbers, so the masks themselves differ.)"""
    from transformers import DataCollatorForLanguageModeling, RobertaTokenizer
    V = 60
    tdir = os.path.join(tmp, "collator_tok")
    os.makedirs(tdir, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(4, V - 1):
        vocab[chr(0x100 + i)] = i  # byte-level symbols, any distinct strings
    vocab["<mask>"] = V - 1
    json.dump(vocab, open(os.path.join(tdir, "vocab.json"), "w"))
    open(os.path.join(tdir, "merges.txt"), "w").write("#version: 0.2\n")
    tok = RobertaTokenizer.from_pretrained(tdir)  # (transformers 5 ignores vocab_file= in the constructor)
    assert len(tok) == V and tok.mask_token_id == V - 1 and sorted(tok.all_special_ids) == [0, 1, 2, 3, V - 1]
    g = torch.Generator().manual_seed(9)
    B, T = 2000, 120
    ids = torch.randint(4, V - 1, (B, T), generator=g)
    ids[:, 0] = 0
    lens = torch.randint(20, T + 1, (B,), generator=g)
    for i in range(B):
        ids[i, lens[i] - 1] = 2
        ids[i, lens[i]:] = 1
    ids[::7, 5] = 3  # some <unk>
    torch.manual_seed(123)
    col = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=0.15, return_tensors="pt")
    out = col([{"input_ids": r.tolist()} for r in ids])
    hf = masking_stats(ids, out["input_ids"], out["labels"], V)
    # pb on the same ids: the tool needs a model directory only for the vocabulary size
    cfg = RobertaConfig(vocab_size=V, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                        max_position_embeddings=T + 4, type_vocab_size=1, pad_token_id=1)
    mdir = os.path.join(tmp, "collator_model")
    RobertaForMaskedLM(cfg).save_pretrained(mdir)
    bpath, opath = os.path.join(tmp, "collator.safetensors"), os.path.join(tmp, "collator.out.safetensors")
    save_file({"input_ids": ids, "attention_mask": (ids != 1).long(), "labels": ids.clone()}, bpath)
    run([tool, "--model", mdir, "--batch", bpath, "--out", opath, "--mask-seed", "123"])
    got = load_file(opath)
    pb = masking_stats(ids, got["masked_ids"].long(), got["mask_labels"].long(), V)
    if hf[5] or pb[5]:
        failures.append(f"masking: special/padding chosen or inconsistent labels: transformers {hf[5]}, peftbench {pb[5]}")
    if hf[0] != pb[0]:
        failures.append(f"masking: eligible counts differ {hf[0]} vs {pb[0]}")

    def close(what, k1, n1, k2, n2):
        p1, p2 = k1 / n1, k2 / n2
        p = (k1 + k2) / (n1 + n2)
        sd = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
        if abs(p1 - p2) > 5 * sd:
            failures.append(f"masking: {what}: peftbench {p2:.4f} vs transformers {p1:.4f} (5 sd = {5 * sd:.4f})")
        return p1, p2

    r = [close("chosen share", hf[1], hf[0], pb[1], pb[0])]
    for k, what in ((2, "<mask> share"), (3, "unchanged share"), (4, "random share")):
        r.append(close(what, hf[k], hf[1], pb[k], pb[1]))
    print("masking vs DataCollatorForLanguageModeling (transformers / peftbench): chosen %.4f / %.4f, "
          "<mask> %.4f / %.4f, unchanged %.4f / %.4f, random %.4f / %.4f" % tuple(x for pr in r for x in pr))


CASES = [
    dict(name="mlm_t12", vocab=97, hidden=32, layers=2, heads=4, inter=64, maxpos=40, seq=12,
         lens=[12, 7, 3], batch=3, seed=4, eps=1e-5),
    dict(name="mlm_t9_unk", vocab=50, hidden=24, layers=3, heads=3, inter=48, maxpos=20, seq=9,
         lens=[9, 5, 9, 4], batch=4, seed=5, eps=1e-12, unk=True),
    dict(name="mlm_t16_v300", vocab=300, hidden=16, layers=1, heads=2, inter=40, maxpos=24, seq=16,
         lens=[16, 11], batch=2, seed=6, eps=1e-5),
]


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    global DEVICE
    tool = sys.argv[1]
    keep = None
    args = sys.argv[2:]
    while args:
        if args[0] == "--keep" and len(args) > 1:
            keep, args = args[1], args[2:]
        elif args[0] == "--device" and len(args) > 1:
            DEVICE, args = ["--device", args[1]], args[2:]
        else:
            print(__doc__)
            return 2
    if DEVICE[1] != "cpu":
        with tempfile.TemporaryDirectory() as tmp:  # a one-case probe: is the device there?
            m, inp, attn, labels = make_case(CASES[0])
            m.save_pretrained(tmp)
            save_file({"input_ids": inp, "attention_mask": attn, "labels": labels}, tmp + "/b.safetensors")
            r = subprocess.run([tool, "--model", tmp, "--batch", tmp + "/b.safetensors", "--out", tmp + "/o.safetensors"]
                               + DEVICE, capture_output=True, text=True)
            if r.returncode != 0 and "not available" in r.stderr:
                print(f"SKIP ref_mlm.py --device {DEVICE[1]}: {r.stderr.strip()}")
                return 77
    with tempfile.TemporaryDirectory() as tmp:
        tmp = keep or tmp
        os.makedirs(tmp, exist_ok=True)
        for c in CASES:
            try:
                run_case(tool, tmp, c)
            except Exception as ex:  # report and go on with the other cases
                failures.append(f"{c['name']}: {ex}")
        if DEVICE[1] == "cpu":  # host code: the same on every device
            try:
                check_collator(tool, tmp)
            except Exception as ex:
                failures.append(f"masking: {ex}")
    for f in failures:
        print("FAIL", f)
    print(f"device {DEVICE[1]}; tolerances: logits/loss/grads/params {TOL:.0e}, save {TOL_SAVE:.0e}; {len(CASES)} cases, "
          f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
