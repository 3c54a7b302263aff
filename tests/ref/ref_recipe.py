#!/usr/bin/env python3
"""ref_recipe.py PEFTBENCH [--keep DIR] [--only TAG]: the training loop of `peftbench run`
(harness/loop.c, driven here through `peftbench trace`) against a PyTorch/transformers loop with
the same recipe, step by step.

Per case, 32 AdamW steps over 4 batches of 4 examples in a shared order (step s uses batch s mod 4):
  * schedule: transformers.get_cosine_schedule_with_warmup (ViT cases) or
    get_linear_schedule_with_warmup (RoBERTa cases), 5 warmup steps, scheduler.step() after
    optimizer.step();
  * parameter groups: the head at head_lr = 3 x lr, everything else at lr; weight decay 0.05 on
    every tensor except biases, LayerNorm, ViT's cls token and position embeddings (what
    peftbench documents, docs/models.md), written here from the names, not from peftbench;
  * torch.nn.utils.clip_grad_norm_ at 0.5 (active on most steps: asserted);
  * cross entropy with label smoothing 0.1; AdamW (0.9, 0.999, 1e-8).
Cases: tiny ViT and tiny RoBERTa (random transformers models saved with save_pretrained), full
fine-tuning and LoRA (peft LoraConfig on query/value, lora_B random, imported with
trace --peft-import). Compared: the loss before every step, the LR of both groups at every step,
the global gradient norm before clipping at every step, and every trainable tensor after the 32
steps, relative error <= 1e-4 (float32 throughout; measured drift is printed).
Exit 0 when all agree, 1 otherwise.
"""
import os
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file
from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_models import checkpoint_keys, loss_fn, make_roberta, make_vit  # noqa: E402
from ref_models import no_decay as model_no_decay  # noqa: E402
from ref_methods import pb_key, peft_model, randomize_lora_B, rel, run  # noqa: E402

TOL = 1e-4
STEPS, CHUNKS, B = 32, 4, 4
LR = {"full": 5e-4, "lora": 3e-3}
HEAD_X, WD, WARMUP, CLIP, LS = 3.0, 0.05, 5, 0.5, 0.1

torch.set_num_threads(2)
failures = []

VIT = dict(name="vit", arch="vit", hidden=32, layers=2, heads=4, inter=64, image=16, patch=4, channels=3,
           labels=5, seed=11, batch=B * CHUNKS)
ROB = dict(name="rob", arch="roberta", vocab=97, hidden=32, layers=2, heads=4, inter=64, maxpos=40, seq=10,
           labels=3, seed=12, batch=B * CHUNKS, lens=[10, 7, 10, 5, 9, 10, 6, 10, 8, 10, 4, 10, 10, 7, 9, 10])


def check(case, what, err, tol=TOL):
    if not err <= tol:
        failures.append(f"{case}: {what}: rel err {err:.3e} > {tol:.0e}")
    return err


def chunk(inputs, labels, k):
    sl = slice(k * B, (k + 1) * B)
    return {n: v[sl] for n, v in inputs.items()}, labels[sl]


def run_case(pb, tmp, c, method):
    name = f"{c['name']}-{method}"
    model, inputs, labels = make_vit(c) if c["arch"] == "vit" else make_roberta(c)
    model.eval()  # dropout is 0 in these configs; eval() only makes that explicit
    mdir = os.path.join(tmp, c["name"])
    if not os.path.isdir(mdir):
        model.save_pretrained(mdir, safe_serialization=True)
    bpath = os.path.join(tmp, c["name"] + ".batch.safetensors")
    save_file({**{k: v.contiguous() for k, v in inputs.items()}, "labels": labels.contiguous()}, bpath)
    lr = LR[method]
    sched_name = "cosine" if c["arch"] == "vit" else "linear"
    args = ["--method", "full"]
    if method == "full":
        keymap = checkpoint_keys(model, os.path.join(mdir, "model.safetensors"))
        ref = model
        params = {keymap[n]: p for n, p in ref.named_parameters()}
        decays = {keymap[n]: not model_no_decay(c["arch"], n) for n, _ in ref.named_parameters()}
    else:
        roles = ["q_proj", "v_proj"] if c["arch"] == "vit" else ["query", "value"]
        ref = peft_model(None, model, roles, r=4, lora_alpha=8)
        randomize_lora_B(ref, c["seed"] + 10)
        adir = os.path.join(tmp, name + ".adapter")
        ref.save_pretrained(adir)
        args = ["--peft-import", adir]
        params = {pb_key(n): p for n, p in ref.named_parameters() if p.requires_grad}
        decays = {k: not k.endswith(".bias") for k in params}  # adapters and head weights decay
    head = {k: k.startswith("classifier.") for k in params}
    out = os.path.join(tmp, name + ".trace.safetensors")
    run([pb, "trace", "--model", mdir, "--batch", bpath, "--out", out, "--threads", "2",
         "--steps", str(STEPS), "--batch-size", str(B), "--lr", str(lr), "--head-lr", str(HEAD_X * lr),
         "--wd", str(WD), "--schedule", sched_name, "--warmup-steps", str(WARMUP),
         "--max-grad-norm", str(CLIP), "--label-smoothing", str(LS)] + args)
    got = load_file(out)
    gkeys = {k[6:] for k in got if k.startswith("param.")}
    if gkeys != set(params):
        failures.append(f"{name}: trainable tensors differ: only peftbench {sorted(gkeys - set(params))}, "
                        f"only reference {sorted(set(params) - gkeys)}")
        return

    groups = []
    for is_head in (False, True):
        for dec in (True, False):
            ps = [p for k, p in params.items() if head[k] == is_head and decays[k] == dec]
            if ps:
                groups.append({"params": ps, "lr": lr * (HEAD_X if is_head else 1.0),
                               "weight_decay": WD if dec else 0.0, "head": is_head})
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
    make = get_cosine_schedule_with_warmup if sched_name == "cosine" else get_linear_schedule_with_warmup
    sched = make(opt, num_warmup_steps=WARMUP, num_training_steps=STEPS)
    worst = dict(loss=0.0, lr=0.0, grad_norm=0.0, param=0.0)
    clipped = 0
    all_params = [p for g in groups for p in g["params"]]
    for s in range(STEPS):
        x, y = chunk(inputs, labels, s % CHUNKS)
        opt.zero_grad()
        loss = loss_fn(ref(**x).logits, y, c["labels"], LS)
        loss.backward()
        worst["loss"] = max(worst["loss"], check(name, f"loss.{s}", rel(got[f"loss.{s}"], loss.reshape(1))))
        lrs = {g["head"]: g["lr"] for g in opt.param_groups}  # the rates this step uses
        for key, is_head in (("lr", False), ("head_lr", True)):
            e = rel(got[f"{key}.{s}"].double(), torch.tensor([lrs[is_head]], dtype=torch.float64))
            worst["lr"] = max(worst["lr"], check(name, f"{key}.{s}", e, 1e-6))
        norm = torch.nn.utils.clip_grad_norm_(all_params, CLIP)
        clipped += int(norm.item() > CLIP)
        worst["grad_norm"] = max(worst["grad_norm"],
                                 check(name, f"grad_norm.{s}", rel(got[f"grad_norm.{s}"], norm.reshape(1))))
        opt.step()
        sched.step()
    for k, p in params.items():
        worst["param"] = max(worst["param"], check(name, "param." + k, rel(got["param." + k], p)))
    if clipped < STEPS // 2:
        failures.append(f"{name}: clipping was active on only {clipped} of {STEPS} steps (the test needs it)")
    print(f"{name:10s} {sched_name:6s} " + "  ".join(f"{k} {v:.1e}" for k, v in worst.items()) +
          f"  (clipped {clipped}/{STEPS} steps)", flush=True)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    pb = sys.argv[1]
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = keep or tmp
        os.makedirs(tmp, exist_ok=True)
        for c in (VIT, ROB):
            for method in ("full", "lora"):
                tag = f"{c['name']}-{method}"
                if only and only not in tag:
                    continue
                try:
                    run_case(pb, tmp, c, method)
                except Exception as ex:  # report and go on
                    import traceback
                    traceback.print_exc()
                    failures.append(f"{tag}: {ex}")
    for f in failures[:40]:
        print("FAIL", f)
    print(f"tolerance {TOL:.0e} (LRs 1e-6); {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
