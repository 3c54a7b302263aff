#!/usr/bin/env python3
"""Cross-check of peftbench's ViT / RoBERTa against transformers (the real peer).

For several small configs (different image/patch sizes and channel counts, different sequence
lengths with padding, classification and regression heads, label smoothing) this script:
  1. builds ViTForImageClassification / RobertaForSequenceClassification with random weights
     (1-D tensors perturbed so zero biases / unit layernorms cannot hide bugs), save_pretrained;
  2. writes a random batch to safetensors and runs `peftbench trace` on the directory unmodified;
  3. compares logits, loss, every parameter gradient and the parameters (and their updates) after
     5 torch.optim.AdamW steps (lr 1e-3, wd 0.01) with relative error ||a-b||/||b||;
  4. `trace --save`: transformers from_pretrained loads the saved directory with no missing /
     unexpected keys, its tensors equal the traced parameters, and its logits equal a second
     peftbench trace of the saved directory (<= 1e-5);
  5. determinism: the same trace twice gives identical bytes.
Exit status non-zero on any failure.

usage: ref_models.py PEFTBENCH [--keep DIR] [--device cpu|cuda]
  --device cuda runs every trace on the CUDA backend (on a GPU, or with tests/peftbench_emu on
  the CPU emulator of docs/cuda.md): the same tolerances against transformers.
"""
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import (RobertaConfig, RobertaForSequenceClassification, ViTConfig,
                          ViTForImageClassification)

TOL = 1e-4        # logits, loss, gradients, parameters after 5 AdamW steps (relative)
TOL_UPDATE = 1e-4  # parameter updates p5 - p0 (relative)
TOL_SAVE = 1e-5   # from_pretrained of a peftbench save vs peftbench on the same directory
STEPS, LR, WD = 5, 1e-3, 0.01

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
    ok = err <= tol
    if not ok:
        failures.append(f"{case}: {what}: rel err {err:.3e} > {tol:.0e}")
    return ok


def no_decay(arch, name):
    # mirrors models/: biases and layernorms; ViT's cls token and position embeddings
    if name.endswith(".bias") or "LayerNorm" in name or "layernorm" in name:
        return True
    if arch == "vit" and ("cls_token" in name or "position_embeddings" in name):
        return True
    return False


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=g))


def make_vit(c):
    cfg = ViTConfig(hidden_size=c["hidden"], num_hidden_layers=c["layers"],
                    num_attention_heads=c["heads"], intermediate_size=c["inter"],
                    image_size=c["image"], patch_size=c["patch"], num_channels=c["channels"],
                    qkv_bias=c.get("qkv_bias", True), layer_norm_eps=c.get("eps", 1e-12),
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                    num_labels=c["labels"])
    if c["labels"] == 1:
        cfg.problem_type = "regression"
    torch.manual_seed(c["seed"])
    model = ViTForImageClassification(cfg)
    perturb(model, c["seed"] + 1)
    g = torch.Generator().manual_seed(c["seed"] + 2)
    B = c["batch"]
    px = torch.randn(B, c["channels"], c["image"], c["image"], generator=g)
    if c["labels"] == 1:
        labels = torch.randn(B, generator=g)
    else:
        labels = torch.randint(0, c["labels"], (B,), generator=g)
    return model, {"pixel_values": px}, labels


def make_roberta(c):
    cfg = RobertaConfig(vocab_size=c["vocab"], hidden_size=c["hidden"],
                        num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
                        intermediate_size=c["inter"], max_position_embeddings=c["maxpos"],
                        type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        layer_norm_eps=1e-5, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, num_labels=c["labels"])
    if c["labels"] == 1:
        cfg.problem_type = "regression"
    torch.manual_seed(c["seed"])
    model = RobertaForSequenceClassification(cfg)
    perturb(model, c["seed"] + 1)
    g = torch.Generator().manual_seed(c["seed"] + 2)
    B, T = c["batch"], c["seq"]
    ids = torch.randint(3, c["vocab"], (B, T), generator=g)
    ids[:, 0] = 0
    lens = c["lens"]
    for i, n in enumerate(lens):
        ids[i, n - 1] = 2
        ids[i, n:] = 1
    mask = (ids != 1).long()
    if c["labels"] == 1:
        labels = torch.randn(B, generator=g)
    else:
        labels = torch.randint(0, c["labels"], (B,), generator=g)
    return model, {"input_ids": ids, "attention_mask": mask}, labels


def checkpoint_keys(model, path):
    """Module name -> checkpoint key. transformers 5 renames ViT modules internally (q_proj,
    mlp.fc1, ...) but save_pretrained writes the hub layout (formats.md 4.3), which is what
    peftbench reads and writes; match each parameter to the saved tensor holding its values."""
    saved = load_file(path)
    out = {}
    for k, p in model.named_parameters():
        hits = [sk for sk, t in saved.items() if t.shape == p.shape and torch.equal(t, p.detach())]
        if len(hits) != 1:
            raise RuntimeError(f"cannot map parameter {k} to a checkpoint key: {hits}")
        out[k] = hits[0]
    return out


def analytic_zero(key):
    # softmax is invariant to adding q.b_k to every score of a query: the key bias has an
    # exactly zero gradient, and both sides only hold round-off there
    return key.endswith("attention.key.bias") or key.endswith("self.key.bias")


def loss_fn(logits, labels, n_labels, ls):
    if n_labels == 1:
        return F.mse_loss(logits.squeeze(), labels.squeeze())
    return F.cross_entropy(logits, labels, label_smoothing=ls)


def device_missing(pb, device):
    """The reason `device` cannot be used by binary pb (no GPU, no CUDA build), or None. Scripts
    then exit 77, CTest's SKIP_RETURN_CODE for the `cuda` tests."""
    if device == "cpu":
        return None
    r = subprocess.run([pb, "bench", "--device", device, "--model", "vit-tiny", "--batch", "1",
                        "--steps", "1", "--warmup", "0", "--no-ceiling"], capture_output=True, text=True)
    return r.stderr.strip() if r.returncode != 0 and "not available" in r.stderr else None


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r


def run_case(pb, tmp, c):
    name = c["name"]
    arch = c["arch"]
    model, inputs, labels = make_vit(c) if arch == "vit" else make_roberta(c)
    model.eval()  # dropout is 0 in the configs anyway
    mdir = os.path.join(tmp, name)
    model.save_pretrained(mdir, safe_serialization=True)
    keymap = checkpoint_keys(model, os.path.join(mdir, "model.safetensors"))
    batch = dict(inputs)
    batch["labels"] = labels
    bpath = os.path.join(tmp, name + ".batch.safetensors")
    save_file({k: v.contiguous() for k, v in batch.items()}, bpath)
    ls = c.get("ls", 0.0)
    out = os.path.join(tmp, name + ".trace.safetensors")
    save_dir = os.path.join(tmp, name + ".saved")
    cmd = [pb, "trace", "--model", mdir, "--batch", bpath, "--out", out, "--steps", str(STEPS),
           "--lr", str(LR), "--wd", str(WD), "--threads", "2", "--label-smoothing", str(ls),
           "--save", save_dir] + DEVICE
    run(cmd)
    got = load_file(out)

    # reference forward / loss / backward
    p0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    logits = model(**inputs).logits
    loss = loss_fn(logits, labels, c["labels"], ls)
    if ls == 0.0:  # the peer's own loss agrees with ours
        hf = model(**inputs, labels=labels).loss
        assert abs(hf.item() - loss.item()) <= 1e-6 * max(1.0, abs(loss.item())), (hf, loss)
    model.zero_grad()
    loss.backward()
    worst = {}
    check(name, "logits", rel(got["logits"], logits.detach()), TOL)
    check(name, "loss", rel(got["loss"], loss.detach().reshape(1)), TOL)
    grads = {keymap[k]: p.grad.detach().clone() for k, p in model.named_parameters()}
    gkeys = {k[5:] for k in got if k.startswith("grad.")}
    if gkeys != set(grads):
        failures.append(f"{name}: grad keys differ: only peftbench {sorted(gkeys - set(grads))}, "
                        f"only torch {sorted(set(grads) - gkeys)}")
    gmax = 0.0
    for k, g in grads.items():
        if k in gkeys and analytic_zero(k):
            scale = grads[k[:-4] + "weight"].norm().item()
            for who, t in (("peftbench", got["grad." + k]), ("torch", g)):
                if t.norm().item() > 1e-4 * scale:
                    failures.append(f"{name}: grad.{k} ({who}) should be ~0: {t.norm().item():.2e}"
                                    f" vs weight grad {scale:.2e}")
        elif k in gkeys:
            e = rel(got["grad." + k], g)
            gmax = max(gmax, e)
            check(name, "grad." + k, e, TOL)
    worst["grad"] = gmax

    # AdamW steps
    decay = [p for k, p in model.named_parameters() if not no_decay(arch, k)]
    nodecay = [p for k, p in model.named_parameters() if no_decay(arch, k)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": nodecay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    lmax = 0.0
    for s in range(STEPS):
        opt.zero_grad()
        l = loss_fn(model(**inputs).logits, labels, c["labels"], ls)
        e = rel(got[f"loss.{s}"], l.detach().reshape(1))
        lmax = max(lmax, e)
        check(name, f"loss.{s}", e, TOL)
        l.backward()
        opt.step()
    worst["loss_steps"] = lmax
    pmax = umax = 0.0
    for mk, p in model.named_parameters():
        k = keymap[mk]
        a = got["param." + k]
        if analytic_zero(k):
            # Adam normalises round-off noise into steps of up to ~lr: only bound the drift
            d = (a - p.detach()).abs().max().item()
            if d > 2.0 * STEPS * LR:
                failures.append(f"{name}: param.{k} drifted {d:.2e} > {2.0 * STEPS * LR:.0e}")
            continue
        e = rel(a, p.detach())
        pmax = max(pmax, e)
        check(name, "param." + k, e, TOL)
        eu = rel(a - p0[mk], p.detach() - p0[mk])
        umax = max(umax, eu)
        check(name, "update." + k, eu, TOL_UPDATE)
    worst["param"] = pmax
    worst["update"] = umax

    # save -> from_pretrained
    cls = ViTForImageClassification if arch == "vit" else RobertaForSequenceClassification
    loaded, info = cls.from_pretrained(save_dir, output_loading_info=True)
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(kind):
            failures.append(f"{name}: from_pretrained {kind}: {info[kind]}")
    sd = loaded.state_dict()
    for mk, k in keymap.items():
        if not torch.equal(sd[mk], got["param." + k]):
            failures.append(f"{name}: saved tensor {k} differs from the traced parameter")
    loaded.eval()
    with torch.no_grad():
        ref_logits = loaded(**inputs).logits
    out2 = os.path.join(tmp, name + ".trace2.safetensors")
    run([pb, "trace", "--model", save_dir, "--batch", bpath, "--out", out2, "--threads", "2"] + DEVICE)
    e = rel(load_file(out2)["logits"], ref_logits)
    worst["save_logits"] = e
    check(name, "saved model logits", e, TOL_SAVE)

    # determinism: same trace, same bytes
    out3 = os.path.join(tmp, name + ".trace3.safetensors")
    cmd3 = list(cmd)
    cmd3[cmd3.index(out)] = out3
    cmd3 = cmd3[:cmd3.index("--save")] + DEVICE
    run(cmd3)
    run(cmd3[:cmd3.index(out3)] + [out3 + ".b"] + cmd3[cmd3.index(out3) + 1:])
    with open(out3, "rb") as f1, open(out3 + ".b", "rb") as f2:
        if f1.read() != f2.read():
            failures.append(f"{name}: two identical traces differ")
    print(f"{name:14s} logits {rel(got['logits'], logits.detach()):.1e}  "
          + "  ".join(f"{k} {v:.1e}" for k, v in worst.items()))


CASES = [
    dict(name="vit_32p8c3", arch="vit", image=32, patch=8, channels=3, hidden=32, layers=2,
         heads=4, inter=64, labels=5, batch=3, seed=1),
    dict(name="vit_28p4c1_reg", arch="vit", image=28, patch=4, channels=1, hidden=24, layers=3,
         heads=2, inter=48, labels=1, batch=2, seed=2, qkv_bias=False, eps=1e-6),
    dict(name="vit_16p4c2_ls", arch="vit", image=16, patch=4, channels=2, hidden=16, layers=2,
         heads=2, inter=40, labels=4, batch=4, seed=3, ls=0.1),
    dict(name="rob_t12", arch="roberta", vocab=97, hidden=32, layers=2, heads=4, inter=64,
         maxpos=40, seq=12, lens=[12, 7, 3], labels=3, batch=3, seed=4),
    dict(name="rob_t7_reg", arch="roberta", vocab=50, hidden=24, layers=3, heads=3, inter=48,
         maxpos=20, seq=7, lens=[5, 7, 2, 6], labels=1, batch=4, seed=5),
    dict(name="rob_t9_ls", arch="roberta", vocab=64, hidden=16, layers=2, heads=2, inter=32,
         maxpos=16, seq=9, lens=[9, 4], labels=2, batch=2, seed=6, ls=0.2),
]


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    global DEVICE
    pb = sys.argv[1]
    args = sys.argv[2:]
    keep = None
    while args:
        if args[0] == "--keep" and len(args) > 1:
            keep, args = args[1], args[2:]
        elif args[0] == "--device" and len(args) > 1:
            DEVICE, args = ["--device", args[1]], args[2:]
        else:
            print(__doc__)
            return 2
    why = device_missing(pb, DEVICE[1])
    if why:
        print(f"SKIP ref_models.py --device {DEVICE[1]}: {why}")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        tmp = keep or tmp
        os.makedirs(tmp, exist_ok=True)
        for c in CASES:
            try:
                run_case(pb, tmp, c)
            except Exception as ex:  # report and go on with the other cases
                failures.append(f"{c['name']}: {ex}")
    for f in failures:
        print("FAIL", f)
    print(f"device {DEVICE[1]}; tolerances: grads/logits/loss/params {TOL:.0e}, updates {TOL_UPDATE:.0e}, "
          f"save {TOL_SAVE:.0e}; {len(CASES)} cases, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
