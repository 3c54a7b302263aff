#!/usr/bin/env python3
"""peftbench's PEFT export (pb_method_export_peft, `trace --peft-export DIR`) vs PyPI peft.

For LoRA, PiSSA, DoRA and DyLoRA (at its eval rank) adapters trained a few AdamW steps by peftbench on random ViT / RoBERTa models
(classification and regression, RoBERTa with padding), this script checks that
  1. the directory has adapter_config.json (peft_type LORA, r, lora_alpha, use_rslora,
     modules_to_save ["classifier"], target_modules) and adapter_model.safetensors whose key set
     and shapes equal what peft itself writes for that config (save_pretrained of
     get_peft_model(model, LoraConfig.from_pretrained(DIR))): PEFT key names, the head under the
     modules_to_save naming;
  2. peft.PeftModel.from_pretrained(transformers model, DIR) loads every tensor of the file (the
     adapted modules equal the file's tensors, no other module is adapted) and gives peftbench's
     logits after its steps within 1e-4 (PiSSA: loaded on the ORIGINAL weights, through PEFT's
     rank-2r conversion);
  3. peftbench re-imports the directory (trace --peft-import on the original model) and gives
     the same logits within 1e-5, and exports the imported adapters again (--peft-export) with
     every tensor equal bit for bit (export -> import -> export; also for IA3, VeRA, FourierFT).
And the other way, for LoRA + DoRA, IA3, VeRA (save_projection true, and false: the projections
regenerated from projection_prng_key), FourierFT and AdaLoRA (no rank pattern, and a pattern that
cuts every module, as peft's save_pretrained writes it): a peft model built in Python with random
non-zero adapter and head tensors, saved with save_pretrained, is imported by `peftbench trace
--peft-import` and compared with PeftModel.from_pretrained(..., is_trainable=True) of the same
directory: logits, loss (AdaLoRA: with peft's orth regulariser, through AdaLoraModel.forward) and
the gradient of every trainable tensor (the key sets equal) within 1e-4; peftbench's export of
what it imported holds every tensor of peft's file bit for bit (VeRA without saved projections:
plus the regenerated ones, equal to peft's), and peft loads that export with the same logits;
then 3 AdamW steps from the import on both sides (peft without update_and_allocate: an imported
AdaLoRA keeps its ranks) give the same losses, tensors and final logits within 1e-4.
Exit status non-zero on any failure.

usage: ref_peft_export.py PEFTBENCH [--keep DIR]
"""
import copy
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_models import make_roberta, make_vit  # noqa: E402
from ref_methods import loss_fn, no_decay, pb_key  # noqa: E402

from peft import (AdaLoraConfig, FourierFTConfig, IA3Config, LoraConfig, PeftModel, VeraConfig,  # noqa: E402
                  get_peft_model)

TOL = 1e-4     # peft's logits on the export vs peftbench's
TOL_ID = 1e-5  # peftbench re-import vs peftbench
STEPS, LR, WD = 3, 2e-3, 0.01  # continued training from an import (AdamW, constant lr)
torch.set_num_threads(2)
failures = []


def rel(a, b):
    a = a.detach().double().flatten()
    b = b.detach().double().flatten()
    nb = b.norm().item()
    return a.norm().item() if nb == 0.0 else (a - b).norm().item() / nb


def check(name, what, err, tol):
    if not err <= tol:
        failures.append(f"{name}: {what}: rel err {err:.3e} > {tol:.0e}")
    return err


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")


def prepare(pb, tmp, c, name, trace_args):
    """A random model and batch saved for peftbench, traced 3 steps with --peft-export; returns
    (model, inputs, base path, export dir, peftbench's logits after the steps, adapter_config)."""
    model, inputs, labels = make_vit(c) if c["arch"] == "vit" else make_roberta(c)
    model.eval()
    base = f"{tmp}/{name.replace('/', '.')}"
    mdir = base + ".model"
    model.save_pretrained(mdir, safe_serialization=True)
    bpath = base + ".batch.safetensors"
    save_file({**{k: v.contiguous() for k, v in inputs.items()}, "labels": labels.contiguous()}, bpath)
    edir, out = base + ".export", base + ".trace.safetensors"
    run([pb, "trace", "--model", mdir, "--batch", bpath, "--out", out, "--threads", "2", "--steps", "3",
         "--peft-export", edir] + trace_args)
    cfg = json.load(open(os.path.join(edir, "adapter_config.json")))
    return model, inputs, base, edir, load_file(out)["logits.final"], cfg


def check_config(name, cfg, expect):
    for k, v in expect.items():
        got_v = cfg.get(k)
        if isinstance(v, list) and isinstance(got_v, list):
            got_v, v = sorted(got_v), sorted(v)
        ok = abs(got_v - v) < 1e-6 if isinstance(v, float) else got_v == v
        if not ok:
            failures.append(f"{name}: adapter_config.json {k} = {cfg.get(k)!r}, expected {v!r}")


def same_layout(name, sd, ref_sd):
    if {k: tuple(v.shape) for k, v in sd.items()} != {k: tuple(v.shape) for k, v in ref_sd.items()}:
        failures.append(f"{name}: keys/shapes differ from peft's own save: only peftbench "
                        f"{sorted(set(sd) - set(ref_sd))}, only peft {sorted(set(ref_sd) - set(sd))}")


def export_case(pb, tmp, c, method, args, expect):
    name = f"{c['name']}/{method}{'-' + c['tag'] if c.get('tag') else ''}"
    model, inputs, base, edir, want, cfg = prepare(pb, tmp, c, name, ["--lr", "1e-2", "--method", method] + args)
    mdir, bpath = base + ".model", base + ".batch.safetensors"
    # 1. config and keys
    check_config(name, cfg, expect)
    sd = load_file(os.path.join(edir, "adapter_model.safetensors"))
    ref_dir = base + ".peft_layout"
    get_peft_model(copy.deepcopy(model), LoraConfig.from_pretrained(edir)).save_pretrained(ref_dir)
    same_layout(name, sd, load_file(os.path.join(ref_dir, "adapter_model.safetensors")))
    heads = [k for k in sd if k.startswith("base_model.model.classifier.")]
    if not heads:
        failures.append(f"{name}: no head (modules_to_save) tensors in the export")

    # 2. peft loads it
    pm = PeftModel.from_pretrained(copy.deepcopy(model), edir)
    pm.eval()
    n_lora, n_file = 0, sum(1 for k in sd if k.endswith(".lora_A.weight"))
    for mn, mod in pm.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            n_lora += 1
            key = mn.removeprefix("base_model.model.")
            for ab in ("lora_A", "lora_B"):
                t = sd.get(f"base_model.model.{key}.{ab}.weight")
                if t is None or not torch.equal(getattr(mod, ab)["default"].weight.detach(), t):
                    failures.append(f"{name}: peft's {key}.{ab} does not hold the exported tensor")
            if cfg.get("use_dora"):  # DoRA: the magnitude vector too
                t = sd.get(f"base_model.model.{key}.lora_magnitude_vector")
                if t is None or not torch.equal(mod.lora_magnitude_vector["default"].weight.detach(), t):
                    failures.append(f"{name}: peft's {key}.lora_magnitude_vector does not hold the exported tensor")
    if n_lora != n_file:
        failures.append(f"{name}: peft adapted {n_lora} modules, the export has {n_file}")
    with torch.no_grad():
        e1 = check(name, "PeftModel.from_pretrained logits vs peftbench", rel(pm(**inputs).logits, want), TOL)

    # 3. peftbench re-imports it (and exports it again)
    e2 = reimport(pb, name, base, edir, want)
    print(f"{name:24s} r={cfg['r']} alpha={cfg['lora_alpha']:.4g} rslora={cfg['use_rslora']} "
          f"targets={cfg['target_modules']} keys={len(sd)}  peft logits {e1:.1e}  re-import {e2:.1e}",
          flush=True)


def same_files(name, what, got_dir, want_sd, extra=()):
    """got_dir's adapter_model.safetensors holds every tensor of want_sd bit for bit (dtype, shape,
    values) and nothing else but the keys in extra; returns got_dir's state dict."""
    sd = load_file(os.path.join(got_dir, "adapter_model.safetensors"))
    if set(sd) != set(want_sd) | set(extra):
        failures.append(f"{name}: {what}: key sets differ: only peftbench {sorted(set(sd) - set(want_sd) - set(extra))}, "
                        f"only the original {sorted(set(want_sd) - set(sd))}")
    for k, v in want_sd.items():
        if k in sd and not (sd[k].dtype == v.dtype and torch.equal(sd[k], v)):
            failures.append(f"{name}: {what}: tensor {k} differs")
    return sd


def reimport(pb, name, base, edir, want):
    """peftbench imports its own export edir (trace --peft-import on the original model, no steps)
    and exports it again: the logits equal `want` within 1e-5, the second export's tensors equal
    the first's bit for bit, the same peft_type. Returns the logits error."""
    out2, edir2 = base + ".reimport.safetensors", base + ".reexport"
    run([pb, "trace", "--model", base + ".model", "--batch", base + ".batch.safetensors", "--out", out2,
         "--threads", "2", "--peft-import", edir, "--peft-export", edir2])
    e2 = check(name, "peftbench re-import logits", rel(load_file(out2)["logits"], want), TOL_ID)
    same_files(name, "export -> import -> export", edir2, load_file(os.path.join(edir, "adapter_model.safetensors")))
    t1 = json.load(open(os.path.join(edir, "adapter_config.json")))["peft_type"]
    t2 = json.load(open(os.path.join(edir2, "adapter_config.json")))["peft_type"]
    if t1 != t2:
        failures.append(f"{name}: re-export peft_type {t2}, the export had {t1}")
    return e2


def export_and_layout(pb, tmp, c, name, method, args, expect, config_cls):
    """prepare() with --method METHOD, then the config fields and the key set/shapes against peft's
    own save of config_cls.from_pretrained(DIR); returns (model, inputs, want, cfg, state dict, PeftModel)."""
    model, inputs, base, edir, want, cfg = prepare(pb, tmp, c, name, ["--lr", "5e-2", "--method", method] + args)
    reimport(pb, name, base, edir, want)
    check_config(name, cfg, expect)
    sd = load_file(os.path.join(edir, "adapter_model.safetensors"))
    ref_dir = base + ".peft_layout"
    get_peft_model(copy.deepcopy(model), config_cls.from_pretrained(edir)).save_pretrained(ref_dir)
    same_layout(name, sd, load_file(os.path.join(ref_dir, "adapter_model.safetensors")))
    pm = PeftModel.from_pretrained(copy.deepcopy(model), edir)
    pm.eval()
    return model, inputs, want, cfg, sd, pm


def check_held(name, pm, sd, leaves):
    """Every module of pm adapted with leaves[0] holds each of `leaves` exactly as exported, and
    peft adapted as many modules as the file has."""
    n_mod, n_file = 0, sum(1 for k in sd if k.endswith("." + leaves[0]))
    for mn, mod in pm.named_modules():
        if hasattr(mod, leaves[0]) and "default" in getattr(mod, leaves[0], {}):
            n_mod += 1
            for leaf in leaves:
                t = sd.get(f"base_model.model.{mn.removeprefix('base_model.model.')}.{leaf}")
                if t is None or not torch.equal(getattr(mod, leaf)["default"].detach(), t):
                    failures.append(f"{name}: peft's {mn}.{leaf} does not hold the exported tensor")
    if n_mod != n_file:
        failures.append(f"{name}: peft adapted {n_mod} modules, the export has {n_file}")


def export_ia3_case(pb, tmp, c, args, expect):
    """IA3: the config and the key set/shapes equal peft's own save of IA3Config.from_pretrained(DIR),
    PeftModel.from_pretrained loads every ia3_l of the file and gives peftbench's logits."""
    name = f"{c['name']}/ia3{'-' + c['tag'] if c.get('tag') else ''}"
    model, inputs, want, cfg, sd, pm = export_and_layout(pb, tmp, c, name, "ia3", args, expect, IA3Config)
    ones = sum(1 for k, v in sd.items() if k.endswith(".ia3_l") and torch.equal(v, torch.ones_like(v)))
    if ones:
        failures.append(f"{name}: {ones} exported vectors are still ones (the steps did not move them)")
    check_held(name, pm, sd, ["ia3_l"])
    with torch.no_grad():
        e1 = check(name, "PeftModel.from_pretrained logits vs peftbench", rel(pm(**inputs).logits, want), TOL)
    print(f"{name:24s} targets={cfg['target_modules']} feedforward={cfg['feedforward_modules']} keys={len(sd)}  "
          f"peft logits {e1:.1e}", flush=True)


def export_vera_case(pb, tmp, c, args, expect):
    """VeRA: the config and key set/shapes equal peft's own save of VeraConfig.from_pretrained(DIR)
    (with save_projection: the shared vera_A / vera_B), PeftModel.from_pretrained holds the exported
    projections and lambdas and gives peftbench's logits."""
    name = f"{c['name']}/vera{'-' + c['tag'] if c.get('tag') else ''}"
    model, inputs, want, cfg, sd, pm = export_and_layout(pb, tmp, c, name, "vera", args, expect, VeraConfig)
    for ab in ("vera_A", "vera_B"):
        if not torch.equal(getattr(pm.base_model, ab)["default"], sd[f"base_model.{ab}"]):
            failures.append(f"{name}: peft's shared {ab} is not the exported one")
    check_held(name, pm, sd, ["vera_lambda_b", "vera_lambda_d"])
    with torch.no_grad():
        e1 = check(name, "PeftModel.from_pretrained logits vs peftbench", rel(pm(**inputs).logits, want), TOL)
    print(f"{name:24s} r={cfg['r']} targets={cfg['target_modules']} keys={len(sd)}  peft logits {e1:.1e}", flush=True)


def export_fourierft_case(pb, tmp, c, args, expect):
    """FourierFT: the config and key set/shapes equal peft's own save of
    FourierFTConfig.from_pretrained(DIR); PeftModel.from_pretrained rebuilds the spectral entries
    from random_loc_seed alone (the file has no indices: peftbench's must be torch.randperm's),
    holds the exported spectra and gives peftbench's logits."""
    name = f"{c['name']}/fourierft{'-' + c['tag'] if c.get('tag') else ''}"
    model, inputs, want, cfg, sd, pm = export_and_layout(pb, tmp, c, name, "fourierft", args, expect, FourierFTConfig)
    check_held(name, pm, sd, ["fourierft_spectrum"])
    with torch.no_grad():
        e1 = check(name, "PeftModel.from_pretrained logits vs peftbench", rel(pm(**inputs).logits, want), TOL)
    print(f"{name:24s} n={cfg['n_frequency']} scaling={cfg['scaling']} targets={cfg['target_modules']} "
          f"keys={len(sd)}  peft logits {e1:.1e}", flush=True)


# ----------------------------------------------------------------------------------------------
# import: peft's save_pretrained -> peftbench trace --peft-import

def randomize(pm, g, pattern):
    """Moves every trainable tensor of the peft model off its init (adapter tensors and the
    modules_to_save head), in place. AdaLoRA with `pattern`: a rank pattern as peft's allocator
    leaves it (a random keep mask per module, at least one entry kept, masked E entries zero) in
    the config, which save_pretrained cuts the tensors to."""
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if not p.requires_grad:
                continue
            r = torch.randn(p.shape, generator=g)
            if ".ia3_l." in n:
                p.copy_(1.0 + 0.3 * r)
            elif "lora_magnitude_vector" in n:
                p.mul_(1.0 + 0.2 * r)
            elif "lora_E" in n:
                p.copy_(0.5 * r)
            elif "lora_A" in n or "lora_B" in n or "vera_lambda" in n:
                p.copy_(0.3 * r)
            elif "fourierft_spectrum" in n:
                p.copy_(r)
            else:  # the head
                p.add_(0.1 * r)
        if pattern:
            rp = {}
            for n, p in pm.base_model.model.named_parameters():
                if "lora_E.default" in n:
                    keep = torch.rand(p.shape[0], generator=g) < 0.6
                    keep[int(torch.randint(0, p.shape[0], (1,), generator=g))] = True
                    p[~keep] = 0.0
                    rp[n] = keep.tolist()
            pm.peft_config["default"].rank_pattern = rp


def import_case(pb, tmp, c, tag, cfg, pattern=False):
    name = f"{c['name']}/import-{tag}"
    model, inputs, labels = make_vit(c) if c["arch"] == "vit" else make_roberta(c)
    model.eval()
    base = f"{tmp}/{name.replace('/', '.')}"
    mdir, bpath = base + ".model", base + ".batch.safetensors"
    model.save_pretrained(mdir, safe_serialization=True)
    save_file({**{k: v.contiguous() for k, v in inputs.items()}, "labels": labels.contiguous()}, bpath)
    pm = get_peft_model(copy.deepcopy(model), cfg)
    randomize(pm, torch.Generator().manual_seed(c["seed"] + 500), pattern)
    pdir = base + ".peft"
    pm.save_pretrained(pdir)
    psd = load_file(os.path.join(pdir, "adapter_model.safetensors"))
    ptype = json.load(open(os.path.join(pdir, "adapter_config.json")))["peft_type"]
    adalora = ptype == "ADALORA"
    if adalora and pattern:  # peft really cut the tensors
        if not any(k.endswith(".lora_E") and v.shape[0] < cfg.init_r for k, v in psd.items()):
            failures.append(f"{name}: peft's save kept every rank: the pattern did not cut")

    # peft's view of the directory (trainable, so gradients and AdaLoRA's orth term exist)
    ref = PeftModel.from_pretrained(copy.deepcopy(model), pdir, is_trainable=True)
    ref.eval()

    def forward_loss():
        if adalora:  # AdaLoraModel.forward adds orth_reg_weight x the regulariser to the loss
            o = ref.base_model(**inputs, labels=labels)
            return o.logits, o.loss
        lg = ref(**inputs).logits
        return lg, loss_fn(lg, labels, c["labels"])
    logits, loss = forward_loss()
    loss.backward()
    params = {pb_key(n): p for n, p in ref.named_parameters() if p.requires_grad}

    # peftbench: import, one forward/backward, export what it imported
    out, edir = base + ".trace.safetensors", base + ".export"
    run([pb, "trace", "--model", mdir, "--batch", bpath, "--out", out, "--threads", "2", "--peft-import", pdir,
         "--peft-export", edir])
    got = load_file(out)
    w = {"logits": check(name, "logits vs peft", rel(got["logits"], logits), TOL),
         "loss": check(name, "loss vs peft", rel(got["loss"], loss.reshape(1)), TOL)}
    keys = {k[len("grad."):] for k in got if k.startswith("grad.")}
    if keys != set(params):
        failures.append(f"{name}: trainable tensors differ: only peftbench {sorted(keys - set(params))}, "
                        f"only peft {sorted(set(params) - keys)}")
    w["grad"] = max([check(name, f"grad.{k}", rel(got[f"grad.{k}"], p.grad), TOL)
                     for k, p in params.items() if f"grad.{k}" in got] or [float("inf")])

    # VeRA: the projections peftbench holds are peft's (regenerated ones bit for bit)
    extra = ()
    if ptype == "VERA":
        A, B = ref.base_model.vera_A["default"], ref.base_model.vera_B["default"]
        n_sl = 0
        for k, v in got.items():
            if k.startswith("frozen.") and k.endswith(".vera_A"):
                n_sl += 1
                if not torch.equal(v, A[:, :v.shape[1]]):
                    failures.append(f"{name}: {k} is not peft's vera_A[:, :{v.shape[1]}]")
            if k.startswith("frozen.") and k.endswith(".vera_B"):
                if not torch.equal(v, B[:v.shape[0], :]):
                    failures.append(f"{name}: {k} is not peft's vera_B[:{v.shape[0]}, :]")
        if not n_sl:
            failures.append(f"{name}: the trace has no frozen.*.vera_A slices")
        if not cfg.save_projection:  # peftbench's export saves them; they are peft's
            extra = ("base_model.vera_A", "base_model.vera_B")
            esd = load_file(os.path.join(edir, "adapter_model.safetensors"))
            for k, t in (("base_model.vera_A", A), ("base_model.vera_B", B)):
                if k not in esd or not torch.equal(esd[k], t):
                    failures.append(f"{name}: the re-export's {k} is not peft's regenerated projection")

    # export of the import = peft's file; peft loads it with the same logits
    same_files(name, "import -> export vs peft's file", edir, psd, extra)
    ecfg = json.load(open(os.path.join(edir, "adapter_config.json")))
    if ecfg["peft_type"] != ptype:
        failures.append(f"{name}: re-export peft_type {ecfg['peft_type']}, peft's file {ptype}")
    back = PeftModel.from_pretrained(copy.deepcopy(model), edir)
    back.eval()
    with torch.no_grad():
        w["reexport"] = check(name, "peft on peftbench's re-export", rel(back(**inputs).logits, logits.detach()), TOL_ID)
    # continued training from the import: STEPS AdamW steps on both sides (peft: plain steps, no
    # update_and_allocate — an imported AdaLoRA keeps its ranks)
    out3 = base + ".steps.safetensors"
    run([pb, "trace", "--model", mdir, "--batch", bpath, "--out", out3, "--threads", "2", "--peft-import", pdir,
         "--steps", str(STEPS), "--lr", str(LR), "--wd", str(WD)])
    g3 = load_file(out3)
    opt = torch.optim.AdamW([{"params": [p for k, p in params.items() if not no_decay(k)], "weight_decay": WD},
                             {"params": [p for k, p in params.items() if no_decay(k)], "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    w["steps"] = 0.0
    for st in range(STEPS):
        opt.zero_grad()
        _, ls = forward_loss()
        w["steps"] = max(w["steps"], check(name, f"loss.{st}", rel(g3[f"loss.{st}"], ls.reshape(1)), TOL))
        ls.backward()
        opt.step()
    for k, p in params.items():
        w["steps"] = max(w["steps"], check(name, f"param.{k} after {STEPS} steps", rel(g3[f"param.{k}"], p), TOL))
    with torch.no_grad():
        w["steps"] = max(w["steps"], check(name, "logits.final", rel(g3["logits.final"], ref(**inputs).logits), TOL))
    ks = sorted(k for k in psd if not k.startswith("base_model.model.classifier."))
    print(f"{name:28s} {ptype:9s} {len(ks)} adapter tensors  logits {w['logits']:.1e}  loss {w['loss']:.1e}  "
          f"grads {w['grad']:.1e}  {STEPS} steps {w['steps']:.1e}  re-export in peft {w['reexport']:.1e}", flush=True)


VIT = dict(name="vit", arch="vit", image=16, patch=4, channels=3, hidden=32, layers=2, heads=4,
           inter=48, labels=5, batch=3, seed=21)
ROB = dict(name="rob", arch="roberta", vocab=60, hidden=32, layers=2, heads=4, inter=48, maxpos=24,
           seq=10, lens=[10, 6, 3], labels=3, batch=3, seed=22)
REG = dict(name="robreg", arch="roberta", vocab=50, hidden=24, layers=2, heads=3, inter=40,
           maxpos=20, seq=8, lens=[8, 5, 3, 7], labels=1, batch=4, seed=23)
ALL6 = "query,key,value,attention.output,intermediate,output"
ROB_ALL6 = sorted(["query", "key", "value"] + [f"roberta.encoder.layer.{i}.{m}" for i in range(2)
                   for m in ("attention.output.dense", "intermediate.dense", "output.dense")])


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    pb = sys.argv[1]
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    cases = [
        (VIT, "lora", ["--rank", "4", "--alpha", "8"],
         dict(peft_type="LORA", r=4, lora_alpha=8.0, use_rslora=False, modules_to_save=["classifier"],
              target_modules=["q_proj", "v_proj"])),
        (dict(VIT, tag="all6-gauss"), "lora", ["--rank", "3", "--alpha", "5", "--targets", ALL6, "--init", "gaussian"],
         dict(r=3, lora_alpha=5.0, init_lora_weights="gaussian",
              target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"])),
        (dict(ROB, tag="rslora"), "lora", ["--rank", "4", "--alpha", "8", "--rslora"],
         dict(r=4, lora_alpha=8.0, use_rslora=True, target_modules=["query", "value"], task_type="SEQ_CLS")),
        (REG, "lora", ["--rank", "2", "--alpha", "4", "--targets", ALL6], dict(r=2, target_modules=ROB_ALL6)),
        (VIT, "dora", ["--rank", "4", "--alpha", "8"],
         dict(peft_type="LORA", r=4, lora_alpha=8.0, use_dora=True, target_modules=["q_proj", "v_proj"])),
        (dict(ROB, tag="int,out-rslora"), "dora", ["--rank", "3", "--alpha", "6", "--rslora", "--targets",
                                                   "intermediate,output"],
         dict(r=3, use_dora=True, use_rslora=True)),
        (VIT, "pissa", ["--rank", "4", "--alpha", "8"],
         dict(r=8, lora_alpha=16.0, use_rslora=False, init_lora_weights=True)),
        (ROB, "pissa", ["--rank", "3", "--alpha", "6", "--targets", "query,value,intermediate"],
         dict(r=6, lora_alpha=12.0)),
        # DyLoRA at its eval rank is a LoRA: r = eval_rank, lora_alpha = alpha, the truncated factors
        # (trained with --train so the steps sample ranks 1..6; the final logits are at eval_rank 4)
        (VIT, "dylora", ["--rank", "6", "--alpha", "12", "--opt", "eval_rank=4", "--train"],
         dict(peft_type="LORA", r=4, lora_alpha=12.0, use_rslora=False, target_modules=["q_proj", "v_proj"],
              peftbench_method="dylora")),
        (dict(REG, tag="frozen-cycle"), "dylora", ["--rank", "3", "--opt", "frozen=true", "--opt", "sampling=cycle",
                                                   "--train", "--targets", ALL6], dict(r=3, lora_alpha=3.0)),
        (dict(REG, tag="rslora-niter2"), "pissa", ["--rank", "2", "--alpha", "4", "--rslora", "--init", "niter_2"],
         dict(r=4, lora_alpha=4.0 * 2 ** 0.5, use_rslora=True)),
    ]
    ia3_cases = [
        (VIT, [], dict(peft_type="IA3", target_modules=["k_proj", "v_proj", "fc2"], feedforward_modules=["fc2"],
                       modules_to_save=["classifier"])),
        (ROB, ["--targets", "query,intermediate,output", "--opt", "feedforward=intermediate"],
         dict(peft_type="IA3", task_type="SEQ_CLS",
              target_modules=["query"] + [f"roberta.encoder.layer.{i}.{m}" for i in range(2)
                                          for m in ("intermediate.dense", "output.dense")],
              feedforward_modules=[f"roberta.encoder.layer.{i}.intermediate.dense" for i in range(2)])),
    ]
    vera_cases = [
        (VIT, ["--rank", "8"], dict(peft_type="VERA", r=8, save_projection=True, target_modules=["q_proj", "v_proj"])),
        (ROB, ["--rank", "16", "--targets", "query,intermediate,output", "--opt", "d_initial=0.5"],
         dict(peft_type="VERA", r=16, d_initial=0.5, task_type="SEQ_CLS")),
    ]
    fourierft_cases = [
        (VIT, ["--opt", "n_frequency=100", "--opt", "scaling=30"],
         dict(peft_type="FOURIERFT", n_frequency=100, scaling=30.0, random_loc_seed=777,
              target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"])),
        # scaling 10 (not peft's 150, sized for 768 x 768): at 150 these 32/48-wide layers get Delta W ~ 50 W and
        # every row's logits saturate to the same values, which would compare equal whatever the entries
        (ROB, ["--opt", "n_frequency=200", "--opt", "scaling=10", "--opt", "random_loc_seed=2024", "--targets",
               "query,intermediate,output"],
         dict(peft_type="FOURIERFT", n_frequency=200, scaling=10.0, random_loc_seed=2024, task_type="SEQ_CLS")),
    ]
    rob_ff = [f"roberta.encoder.layer.{i}.intermediate.dense" for i in range(2)]
    rob_out = [f"roberta.encoder.layer.{i}.output.dense" for i in range(2)]
    ada = dict(target_r=2, tinit=1, tfinal=1, deltaT=1, total_step=10, lora_dropout=0.0, modules_to_save=["classifier"])
    import_cases = [
        (VIT, "lora", LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "fc1"], modules_to_save=["classifier"]),
         False),
        (ROB, "dora", LoraConfig(r=3, lora_alpha=6, use_dora=True, use_rslora=True, target_modules=["key"] + rob_out,
                                 modules_to_save=["classifier"], task_type="SEQ_CLS"), False),
        (VIT, "ia3", IA3Config(target_modules=["k_proj", "v_proj", "fc2"], feedforward_modules=["fc2"],
                               modules_to_save=["classifier"]), False),
        (ROB, "ia3", IA3Config(target_modules=["query"] + rob_ff, feedforward_modules=rob_ff,
                               modules_to_save=["classifier"], task_type="SEQ_CLS"), False),
        # fc1 (32 -> 48) and fc2 (48 -> 32): in_max = out_max = 48 but the q_proj slices are smaller
        (VIT, "vera", VeraConfig(r=8, target_modules=["q_proj", "fc1", "fc2"], projection_prng_key=5,
                                 save_projection=True, modules_to_save=["classifier"]), False),
        # save_projection false: the file has no vera_A / vera_B, both sides regenerate them
        (ROB, "vera-noproj", VeraConfig(r=16, target_modules=["query"] + rob_ff + rob_out, projection_prng_key=1234,
                                        save_projection=False, d_initial=0.5, modules_to_save=["classifier"],
                                        task_type="SEQ_CLS"), False),
        (REG, "vera-noproj", VeraConfig(r=4, target_modules=["query", "key", "value"] + rob_ff, save_projection=False,
                                        modules_to_save=["classifier"], task_type="SEQ_CLS"), False),
        (VIT, "fourierft", FourierFTConfig(n_frequency=100, scaling=30.0, target_modules=["q_proj", "v_proj"],
                                           modules_to_save=["classifier"]), False),
        (ROB, "fourierft", FourierFTConfig(n_frequency=200, scaling=10.0, random_loc_seed=2024,
                                           target_modules=["query"] + rob_ff + rob_out,
                                           modules_to_save=["classifier"], task_type="SEQ_CLS"), False),
        (VIT, "adalora", AdaLoraConfig(init_r=4, lora_alpha=8.0, target_modules=["q_proj", "v_proj"], **ada), False),
        (ROB, "adalora-pattern", AdaLoraConfig(init_r=4, lora_alpha=8.0, target_modules=["query", "key"] + rob_ff,
                                               task_type="SEQ_CLS", **ada), True),
        (REG, "adalora-pattern", AdaLoraConfig(init_r=5, lora_alpha=3.0, orth_reg_weight=0.2,
                                               target_modules=["value"] + rob_out, task_type="SEQ_CLS", **ada), True),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = keep or tmp
        os.makedirs(tmp, exist_ok=True)
        for c, tag, cfg, pattern in import_cases:
            try:
                import_case(pb, tmp, c, tag, cfg, pattern)
            except Exception as ex:
                import traceback
                traceback.print_exc()
                failures.append(f"{c['name']}/import-{tag}: {ex}")
        for c, method, args, expect in cases:
            try:
                export_case(pb, tmp, c, method, args, expect)
            except Exception as ex:
                failures.append(f"{c['name']}/{method}: {ex}")
        for c, args, expect in ia3_cases:
            try:
                export_ia3_case(pb, tmp, c, args, expect)
            except Exception as ex:
                failures.append(f"{c['name']}/ia3: {ex}")
        for c, args, expect in vera_cases:
            try:
                export_vera_case(pb, tmp, c, args, expect)
            except Exception as ex:
                failures.append(f"{c['name']}/vera: {ex}")
        for c, args, expect in fourierft_cases:
            try:
                export_fourierft_case(pb, tmp, c, args, expect)
            except Exception as ex:
                failures.append(f"{c['name']}/fourierft: {ex}")
    for f in failures:
        print("FAIL", f)
    n_exports = len(cases) + len(ia3_cases) + len(vera_cases) + len(fourierft_cases)
    print(f"tolerances: peft {TOL:.0e}, re-import {TOL_ID:.0e}; {n_exports} exports, {len(import_cases)} imports, "
          f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
