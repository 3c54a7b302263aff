#!/usr/bin/env python3
"""Cross-check of peftbench's PEFT methods against the real peers (PyPI peft / transformers) and
against independent PyTorch implementations written here from the formulas.

Models: ViTForImageClassification (classification) and RobertaForSequenceClassification (padding;
classification and a regression variant), random weights, 2 layers, dropout 0. For every case the
reference runs forward, loss, backward (autograd) and STEPS torch.optim.AdamW steps, and the
comparison uses relative errors ||a-b||/||b|| on logits, loss, every trainable gradient (adapter
tensors and classifier), the losses before each step, every trainable tensor after the steps and
the logits after them.

  lora    vs peft LoraConfig (target_modules q,v and a run with key/attention.output/
          intermediate/output; rslora; modules_to_save=["classifier"]). lora_B is set to random
          values, the adapter is saved with save_pretrained and peftbench imports it
          (trace --peft-import), so both start from identical weights.
  pissa   vs peft init_lora_weights="pissa": peftbench's own SVD init (A, B up to a per-component
          sign, the residual W_res, step-0 logits = base model, sign-aligned gradients); then
          peft's factors + residual imported -> full comparison. "pissa_niter_4" (randomized):
          peftbench's own niter_4 init reproduces the base model (logits and W_res + s B A = W
          within 1e-5); peft's factors imported -> full comparison.
  svfit   vs a PyTorch module (trainable sigma) whose SVD is torch.linalg.svd in float64 of the
          float32 weight, i.e. the exact truncation: sigma^0 = singular values and W_e vs it,
          step-0 identity; then perturbed sigma loaded into both (trace --params). (A float32
          reference is not exact enough for 1e-5: with sigma_r, sigma_r+1 0.6 % apart, torch's
          float32 W_e is 1.0e-5 from the float64 one while peftbench's is 6.8e-6, docs/methods.md.)
  aoft    vs a PyTorch module with AO(q) built in torch (papers.md 6.2, docs/methods.md): variants
          lora / adapter, gates lambda / scalar. peftbench's init: ||q|| = 1, q0 >= 0, AO(q) has
          orthonormal columns (checked in torch), lambda = 0, step-0 identity; then random
          q (norm != 1, the approximately-orthogonal regime), lambda / gate loaded into both.
  dora    vs peft LoraConfig(use_dora=True): peftbench's own init (m0 = ||W||_row vs peft's m0,
          step-0 = base model), then peft's A with random B and m loaded into peftbench (trace
          --params) -> full comparison (the weight norm is detached on both sides).
  vera    vs peft VeraConfig: own init (lambdas, step 0, slices of one shared A/B, kaiming
          ranges), then peft's shared vera_A / vera_B set to peftbench's (trace's frozen.*) and
          random lambdas in both -> full comparison.
  fourierft vs peft FourierFTConfig: the spectral entries equal peft's (torch.randperm, no
          injection), own N(0,1) init, init=zeros step-0 identity; random spectra in both -> full
          comparison (peft: torch.fft.ifft2; peftbench: GEMMs with cos/sin bases).
  adapter_h / adapter_p / adaptformer vs PyTorch modules written from Houlsby et al. 2019,
          Pfeiffer et al. 2021 and AdaptFormer's Eq. 3 (not in peft): own init (down kaiming-
          uniform, up and biases 0, step-0 identity); random bottleneck tensors in both -> full
          comparison; nonlinear, so no merge (trace --save must refuse).
  hta     vs a PyTorch module with explicit D x D Householder matrices (papers.md 5, Eq. 3-7):
          own init (d = 0, up = 0, ||v||^2 = 2, step-0 identity), random tensors in both -> full
          comparison and merge; lora form (q,k,v,o; q,v with D' = 0) and adapter form.
  fact_tk / fact_tt vs a PyTorch module with FacT's forward (Jie & Deng 2023; not in peft): the
          authors' layouts, TK (C @ P_i).reshape(r, k r) (fact_tk.py), TT a core per linear
          (fact_tt.py), the FFN as k d x d blocks. Own init (V = 0: step-0 identity; U, V, C held
          once, by the first linear; U, C, P, cores in FacT's bounds), then random tensors in both
          -> full comparison (every gradient incl. the shared U, V, C) and merge; all six linears
          on ViT (k = 4) and RoBERTa (k = 2) models with intermediate = k hidden, q,k,v,o where
          the FFN has no d x d blocks (the rest refused), the regression model.
  dylora  vs a PyTorch module written from Valipour et al. 2023 (not in peft): own init (A kaiming-
          uniform, B = 0, step-0 identity); random A, B in both, trained with --train and
          sampling=cycle (b = 1, 2, 3 over the steps; frozen mode too) -> full comparison, the
          final logits and merge at eval_rank.
  ssf     vs a PyTorch module written from Lian et al. 2022 (not in peft): y = gamma * op(x) + beta
          after every targeted linear and every LayerNorm (RoBERTa's embeddings LayerNorm and ViT's
          final one included): init N(1, 0.02) / N(0, 0.02) and init=identity (step-0 identity);
          random gamma, beta in both -> full comparison and merge.
  adapterdrop vs Pfeiffer adapters (the module above) skipped below the step's n (Rücklé et al.
          2021; not in peft), --train with sampling=cycle (n = 0, 1, 0) and eval_drop 0 / 1.
  vpt     vs transformers' ViT with prompts inserted by forward hooks (Jia et al. 2022; not in
          peft): own init U(-v, v) and its logits, random prompts -> full comparison, shallow and
          deep; RoBERTa refused; not mergeable.
  head    vs transformers with only the classifier trainable (gradients exist for the
          classifier only).
  merge   every traced case is saved with trace --save (merged): logits after merge vs before
          (<= 1e-5) and transformers from_pretrained of the saved directory (<= 1e-5).
Exit status non-zero on any failure.

usage: ref_methods.py PEFTBENCH [--keep DIR] [--only SUBSTRING-OF-A-TEST-TAG] [--device cpu|cuda]
  --device cuda runs every trace on the CUDA backend (a GPU, or tests/peftbench_emu on the CPU
  emulator of docs/cuda.md) against the same peers at the same tolerances.
"""
import copy
import os
import re
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import RobertaForSequenceClassification, ViTForImageClassification

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_models import device_missing, make_roberta, make_vit  # noqa: E402  (random HF models + batches)

import peft  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402

TOL = 1e-4      # logits, loss, gradients, params after the steps, factors (relative)
TOL_ID = 1e-5   # identities: step-0 = base model, merged = unmerged, saved = traced, W_res
STEPS, LR, WD = 3, 2e-3, 0.01

torch.set_num_threads(2)
peft_logging = None
failures = []
report = []

# ----------------------------------------------------------------------------------------------
# names

# role -> (ViT hub leaf, ViT transformers-5 leaf, RoBERTa leaf)
ROLES = {
    "query": ("attention.attention.query", "attention.q_proj", "attention.self.query"),
    "key": ("attention.attention.key", "attention.k_proj", "attention.self.key"),
    "value": ("attention.attention.value", "attention.v_proj", "attention.self.value"),
    "attention.output": ("attention.output.dense", "attention.o_proj", "attention.output.dense"),
    "intermediate": ("intermediate.dense", "mlp.fc1", "intermediate.dense"),
    "output": ("output.dense", "mlp.fc2", "output.dense"),
}


def module_paths(arch, layers, roles):
    """[(torch module path, peftbench/PEFT hub key prefix)] of the adapted linears."""
    out = []
    for i in range(layers):
        for r in roles:
            hub, v5, rob = ROLES[r]
            if arch == "vit":
                out.append((f"vit.layers.{i}.{v5}", f"vit.encoder.layer.{i}.{hub}"))
            else:
                out.append((f"roberta.encoder.layer.{i}.{rob}",) * 2)
    return out


def to_hub(name):
    """transformers-5 ViT names -> hub names (peftbench's trace keys); others unchanged."""
    m = re.match(r"vit\.layers\.(\d+)\.(.*)$", name)
    if not m:
        return name
    rest = m.group(2)
    for hub, v5, _ in ROLES.values():
        if rest == v5 or rest.startswith(v5 + "."):
            rest = hub + rest[len(v5):]
            break
    return f"vit.encoder.layer.{m.group(1)}.{rest}"


def pb_key(name):
    """A torch / PEFT parameter name -> the key peftbench's trace uses."""
    n = name.removeprefix("base_model.model.")
    n = n.replace(".modules_to_save.default", "").replace(".default", "")
    # DoRA: peft's module parameter "lora_magnitude_vector.weight" is saved as "lora_magnitude_vector"
    n = n.replace(".lora_magnitude_vector.weight", ".lora_magnitude_vector")
    return to_hub(n)


def no_decay(key):
    # as peftbench documents (docs/models.md): biases, LayerNorms, svfit_sigma (adapter tensors
    # and other weights decay)
    return key.endswith(".bias") or key.endswith(".svfit_sigma") or "layernorm" in key.lower() or \
        key.endswith(".ssf_scale") or key.endswith(".ssf_shift")


# ----------------------------------------------------------------------------------------------
# helpers

def rel(a, b):
    a = a.detach().double().flatten()
    b = b.detach().double().flatten()
    nb = b.norm().item()
    if nb == 0.0:
        return a.norm().item()
    return (a - b).norm().item() / nb


def check(case, what, err, tol):
    if not err <= tol:
        failures.append(f"{case}: {what}: rel err {err:.3e} > {tol:.0e}")
    return err


def loss_fn(logits, labels, n_labels):
    if n_labels == 1:
        return F.mse_loss(logits.squeeze(), labels.squeeze())
    return F.cross_entropy(logits, labels)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return r


class Case:
    """One model + batch saved for peftbench."""

    def __init__(self, tmp, c):
        self.c = c
        self.name = c["name"]
        self.arch = c["arch"]
        self.model, self.inputs, self.labels = make_vit(c) if self.arch == "vit" else make_roberta(c)
        self.model.eval()
        self.nl = c["labels"]
        self.layers = c["layers"]
        self.tmp = tmp
        self.mdir = os.path.join(tmp, self.name)
        self.model.save_pretrained(self.mdir, safe_serialization=True)
        self.bpath = os.path.join(tmp, self.name + ".batch.safetensors")
        batch = dict(self.inputs)
        batch["labels"] = self.labels
        save_file({k: v.contiguous() for k, v in batch.items()}, self.bpath)
        with torch.no_grad():
            self.base_logits = self.model(**self.inputs).logits.clone()
        self.cls = ViTForImageClassification if self.arch == "vit" else RobertaForSequenceClassification

    def fresh(self):
        return copy.deepcopy(self.model)

    def trace(self, tag, args, steps=STEPS, model_dir=None, save=True):
        out = os.path.join(self.tmp, f"{self.name}.{tag}.trace.safetensors")
        cmd = [PB, "trace", "--model", model_dir or self.mdir, "--batch", self.bpath, "--out", out,
               "--threads", "2", "--lr", str(LR), "--wd", str(WD), "--steps", str(steps)] + args + DEVICE
        sdir = None
        if save:
            sdir = os.path.join(self.tmp, f"{self.name}.{tag}.saved")
            cmd += ["--save", sdir]
        run(cmd)
        return load_file(out), sdir


def analytic_zero(key):
    # softmax is invariant to adding q.b_k to every score of a query: the key bias has an exactly
    # zero gradient and no effect on the output; both sides only hold round-off there (which
    # AdamW's normalisation then turns into +-lr steps of random sign)
    # (SSF's shift after the key projection is the same kind of constant: q.beta per query)
    return key.endswith(("attention.key.bias", "self.key.bias", "attention.key.ssf_shift", "self.key.ssf_shift"))


def compare(case, tag, got, model, steps=STEPS, sign=None):
    """Reference forward/backward/AdamW on `model` (trainable = requires_grad) vs a trace.
    sign: optional {key: tensor} multiplied into peftbench's gradients (PiSSA's per-component
    sign freedom) before comparing. Analytically zero gradients (analytic_zero) must be round-off
    on both sides (<= 1e-5 of the largest gradient); their parameters are not compared."""
    name = f"{case.name}/{tag}"
    params = {pb_key(n): p for n, p in model.named_parameters() if p.requires_grad}
    logits = model(**case.inputs).logits
    loss = loss_fn(logits, case.labels, case.nl)
    model.zero_grad()
    loss.backward()
    w = {"logits": check(name, "logits", rel(got["logits"], logits), TOL),
         "loss": check(name, "loss", rel(got["loss"], loss.reshape(1)), TOL)}
    gkeys = {k[5:] for k in got if k.startswith("grad.")}
    if gkeys != set(params):
        failures.append(f"{name}: trainable tensors differ: only peftbench {sorted(gkeys - set(params))}, "
                        f"only reference {sorted(set(params) - gkeys)}")
    g = 0.0
    gscale = max(p.grad.norm().item() for p in params.values())
    for k, p in params.items():
        if k not in gkeys:
            continue
        a = got["grad." + k]
        if analytic_zero(k):
            for who, t in (("peftbench", a), ("reference", p.grad)):
                if t.norm().item() > 1e-5 * gscale:
                    failures.append(f"{name}: grad.{k} ({who}) should be ~0: {t.norm().item():.2e} vs {gscale:.2e}")
            continue
        if sign and k in sign:
            a = a * sign[k]
        g = max(g, check(name, "grad." + k, rel(a, p.grad), TOL))
    w["grad"] = g
    if steps:
        dec = [p for k, p in params.items() if not no_decay(k)]
        nod = [p for k, p in params.items() if no_decay(k)]
        opt = torch.optim.AdamW([{"params": dec, "weight_decay": WD}, {"params": nod, "weight_decay": 0.0}],
                                lr=LR, betas=(0.9, 0.999), eps=1e-8)
        lm = 0.0
        for s in range(steps):
            opt.zero_grad()
            l = loss_fn(model(**case.inputs).logits, case.labels, case.nl)
            lm = max(lm, check(name, f"loss.{s}", rel(got[f"loss.{s}"], l.reshape(1)), TOL))
            l.backward()
            opt.step()
        w["loss_steps"] = lm
        pm = 0.0
        for k, p in params.items():
            if "param." + k in got and not analytic_zero(k):
                pm = max(pm, check(name, "param." + k, rel(got["param." + k], p), TOL))
        w["param"] = pm
        with torch.no_grad():
            w["logits_final"] = check(name, "logits.final", rel(got["logits.final"], model(**case.inputs).logits), TOL)
    return w


def check_merged(case, tag, got, sdir, w):
    """logits after merge vs before, and transformers' from_pretrained of the merged save."""
    name = f"{case.name}/{tag}"
    before = got["logits.final"] if "logits.final" in got else got["logits"]
    w["merge"] = check(name, "merged vs unmerged logits", rel(got["logits.merged"], before), TOL_ID)
    loaded, info = case.cls.from_pretrained(sdir, output_loading_info=True)
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(kind):
            failures.append(f"{name}: from_pretrained of the merged save: {kind}: {info[kind]}")
    loaded.eval()
    with torch.no_grad():
        w["saved"] = check(name, "from_pretrained(merged save) logits",
                           rel(loaded(**case.inputs).logits, got["logits.merged"]), TOL_ID)


def compare_with_params(case, tag, args, params, model, w, merge=True):
    """Loads `params` ({trace key: tensor}, the reference's starting values) into peftbench with
    trace --params, then the full comparison against `model`, the merge checks (merge=False: the
    method cannot merge, and trace --save must refuse it) and the log line."""
    ppath = os.path.join(case.tmp, f"{case.name}.{tag}.params.safetensors")
    save_file(params, ppath)
    got, sdir = case.trace(tag, args + ["--params", ppath], save=merge)
    w.update(compare(case, tag, got, model))
    if merge:
        check_merged(case, tag, got, sdir, w)
    else:
        try:
            case.trace(tag + "-save", args, steps=0, save=True)
            failures.append(f"{case.name}/{tag}: trace --save accepted a method that cannot merge")
        except RuntimeError as ex:
            if "cannot be merged" not in str(ex):
                failures.append(f"{case.name}/{tag}: trace --save failed without saying why: {ex}")
    log(case, tag, w)


def log(case, tag, w):
    line = f"{case.name + '/' + tag:28s} " + "  ".join(f"{k} {v:.1e}" for k, v in w.items())
    report.append(line)
    print(line, flush=True)


def randomize_lora_B(pm, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def peft_model(case, model, targets, **kw):
    cfg = LoraConfig(target_modules=targets, modules_to_save=["classifier"], lora_dropout=0.0, **kw)
    return get_peft_model(model, cfg)


# ----------------------------------------------------------------------------------------------
# LoRA

def test_lora(case, tag, roles, r, alpha, short_targets=None, rslora=False):
    paths = module_paths(case.arch, case.layers, roles)
    targets = short_targets or [p for p, _ in paths]
    pm = peft_model(case, case.fresh(), targets, r=r, lora_alpha=alpha, use_rslora=rslora)
    n_lora = sum(1 for n, _ in pm.named_modules() if n.endswith("lora_A"))
    if n_lora != len(paths):
        failures.append(f"{case.name}/{tag}: peft adapted {n_lora} modules, expected {len(paths)}")
    randomize_lora_B(pm, case.c["seed"] + 10)
    adir = os.path.join(case.tmp, f"{case.name}.{tag}.adapter")
    pm.save_pretrained(adir)
    got, sdir = case.trace(tag, ["--peft-import", adir])
    w = compare(case, tag, got, pm)
    check_merged(case, tag, got, sdir, w)
    log(case, tag, w)


# ----------------------------------------------------------------------------------------------
# DoRA (peft LoraConfig(use_dora=True))

def test_dora(case, tag, roles, r, alpha, rslora=False):
    """peftbench's own init (A kaiming, B = 0, m = ||W||_row: compared with peft's m, step-0 =
    base model), then peft's A and random B, m loaded with --params: full comparison with peft,
    whose weight norm is detached (no gradient through ||W + s B A||)."""
    name = f"{case.name}/{tag}"
    args = ["--method", "dora", "--rank", str(r), "--targets", ",".join(roles), "--opt", f"alpha={alpha}",
            "--opt", f"rslora={'true' if rslora else 'false'}"]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    paths = module_paths(case.arch, case.layers, roles)
    pm = peft_model(case, case.fresh(), [p for p, _ in paths], r=r, lora_alpha=alpha, use_rslora=rslora,
                    use_dora=True)
    mags = {pb_key(n): p for n, p in pm.named_parameters() if "lora_magnitude_vector" in n}
    if len(mags) != len(paths):
        failures.append(f"{name}: peft made {len(mags)} magnitude vectors, expected {len(paths)}")
    em = 0.0
    for k, p in mags.items():  # m0 = ||W||_row on both sides
        em = max(em, check(name, f"{k}: m0 vs peft", rel(own["init." + k], p), TOL_ID))
    w["m0"] = em
    g = torch.Generator().manual_seed(case.c["seed"] + 50)
    params = {}
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "lora_magnitude_vector" in n:
                p.mul_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            if "lora_" in n:
                params[pb_key(n)] = p.detach().clone()
    compare_with_params(case, tag, args, params, pm, w)


# ----------------------------------------------------------------------------------------------
# VeRA (peft VeraConfig)

def test_vera(case, tag, roles, r, d_initial):
    """peftbench's own init (lambda_d = d_initial, lambda_b = 0, step-0 = base model; every layer's
    frozen A, B are slices of one shared pair: checked across layers), then peft's shared vera_A /
    vera_B overwritten with peftbench's (trace dumps them; the generators differ) and random
    lambdas loaded into both -> full comparison."""
    name = f"{case.name}/{tag}"
    args = ["--method", "vera", "--rank", str(r), "--targets", ",".join(roles), "--opt", f"d_initial={d_initial}"]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    paths = module_paths(case.arch, case.layers, roles)
    A = {h: own[f"frozen.{h}.vera_A"] for _, h in paths}
    B = {h: own[f"frozen.{h}.vera_B"] for _, h in paths}
    in_max = max(a.shape[1] for a in A.values())
    out_max = max(b.shape[0] for b in B.values())
    A_full = next(a for a in A.values() if a.shape[1] == in_max)
    B_full = next(b for b in B.values() if b.shape[0] == out_max)
    for h in A:  # one shared pair: every layer's slices are the same numbers
        if not torch.equal(A[h], A_full[:, :A[h].shape[1]]) or not torch.equal(B[h], B_full[:B[h].shape[0], :]):
            failures.append(f"{name}: {h}: vera_A / vera_B are not slices of the shared projections")
        if not torch.equal(own[f"init.{h}.vera_lambda_b"], torch.zeros_like(own[f"init.{h}.vera_lambda_b"])) or \
                not torch.allclose(own[f"init.{h}.vera_lambda_d"], torch.full((r,), float(d_initial))):
            failures.append(f"{name}: {h}: lambdas not (d_initial, 0) at init")
    bound_a, bound_b = (6.0 / in_max) ** 0.5, (6.0 / r) ** 0.5  # kaiming_uniform(fan_in), as peft
    if A_full.abs().max() > bound_a or A_full.abs().max() < 0.9 * bound_a or B_full.abs().max() > bound_b:
        failures.append(f"{name}: projection ranges {A_full.abs().max():.3g}/{B_full.abs().max():.3g} "
                        f"vs kaiming bounds {bound_a:.3g}/{bound_b:.3g}")
    pm = get_peft_model(case.fresh(), peft.VeraConfig(r=r, target_modules=[p for p, _ in paths], d_initial=d_initial,
                                                      save_projection=True, modules_to_save=["classifier"]))
    with torch.no_grad():
        va, vb = pm.base_model.vera_A["default"], pm.base_model.vera_B["default"]
        if tuple(va.shape) != tuple(A_full.shape) or tuple(vb.shape) != tuple(B_full.shape):
            failures.append(f"{name}: peft's shared shapes {tuple(va.shape)}/{tuple(vb.shape)} vs "
                            f"{tuple(A_full.shape)}/{tuple(B_full.shape)}")
        va.copy_(A_full)
        vb.copy_(B_full)
    g = torch.Generator().manual_seed(case.c["seed"] + 60)
    params = {}
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "vera_lambda" in n:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
                params[pb_key(n)] = p.detach().clone()
    if len(params) != 2 * len(paths):
        failures.append(f"{name}: peft made {len(params)} lambda vectors, expected {2 * len(paths)}")
    compare_with_params(case, tag, args, params, pm, w)


# ----------------------------------------------------------------------------------------------
# FourierFT (peft FourierFTConfig)

def test_fourierft(case, tag, roles, n, scaling, loc_seed=777):
    """peftbench's own entries vs peft's (both from torch.randperm(out*in, seed): peftbench
    reimplements torch's generator, so every layer's indices must be equal, nothing injected), its
    N(0,1) init (finite, spread ~1) and init=zeros (step-0 = base model); then random spectra
    loaded into both -> full comparison (peft's Delta W is torch.fft.ifft2, peftbench's a GEMM
    with the cos/sin bases). scaling keeps Delta W near the size of W on these 24..48-wide models:
    at scaling 300 on 24 x 24 (scale 0.52, Delta W ~ 100 W) softmax saturates and both float32
    sides are 1e-4 from a float64 peft on the layer-0 query/key spectra (measured; 4e-7 at 20)."""
    name = f"{case.name}/{tag}"
    args = ["--method", "fourierft", "--targets", ",".join(roles), "--opt", f"n_frequency={n}",
            "--opt", f"scaling={scaling}", "--opt", f"random_loc_seed={loc_seed}"]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    zero, _ = case.trace(tag + "-zeros", args + ["--opt", "init=zeros"], steps=0, save=False)
    w = {"step0_id": check(name, "init=zeros: step-0 logits vs base model", rel(zero["logits"], case.base_logits),
                           TOL_ID)}
    paths = module_paths(case.arch, case.layers, roles)
    pm = get_peft_model(case.fresh(), peft.FourierFTConfig(n_frequency=n, scaling=scaling, random_loc_seed=loc_seed,
                                                           target_modules=[p for p, _ in paths],
                                                           modules_to_save=["classifier"]))
    init = torch.cat([own[f"init.{h}.fourierft_spectrum"] for _, h in paths])
    if not torch.isfinite(init).all() or not 0.5 < init.std().item() < 1.5 or init.abs().max().item() == 0:
        failures.append(f"{name}: randn init: std {init.std().item():.3g} (want ~1)")
    for tpath, h in paths:
        lay = pm.base_model.model.get_submodule(tpath)
        ref_idx = lay.indices["default"].to(torch.float32)
        if not torch.equal(own[f"frozen.{h}.fourierft_indices"], ref_idx):
            failures.append(f"{name}: {h}: spectral entries differ from peft's torch.randperm ones")
    g = torch.Generator().manual_seed(case.c["seed"] + 70)
    params = {}
    with torch.no_grad():
        for nm, p in pm.named_parameters():
            if "fourierft_spectrum" in nm:
                p.copy_(torch.randn(p.shape, generator=g))
                params[pb_key(nm)] = p.detach().clone()
    if len(params) != len(paths):
        failures.append(f"{name}: peft made {len(params)} spectra, expected {len(paths)}")
    compare_with_params(case, tag, args, params, pm, w)


# ----------------------------------------------------------------------------------------------
# Bottleneck adapters (not in peft): Houlsby / Pfeiffer (sequential), AdaptFormer (parallel)

class SeqAdapterLinear(nn.Module):
    """Houlsby et al. 2019 / Pfeiffer et al. 2021: the projection's output z, then
    z + s * up(act(down(z))) (the adapter's internal skip connection)."""

    def __init__(self, base, m, s, act):
        super().__init__()
        self.base, self.s, self.act = base, s, act
        D = base.out_features
        self.adapter_down, self.adapter_up = nn.Linear(D, m), nn.Linear(m, D)

    def forward(self, x):
        z = self.base(x)
        return z + self.s * self.adapter_up(self.act(self.adapter_down(z)))


class AdaptFormerIn(nn.Module):
    """AdaptFormer (Chen et al. 2022, Eq. 3) on the FFN's first linear: the branch
    s * up(ReLU(down(u))) of the FFN input u, kept for the output linear."""

    def __init__(self, base, m, s):
        super().__init__()
        self.base, self.s = base, s
        D = base.in_features
        self.adapter_down, self.adapter_up = nn.Linear(D, m), nn.Linear(m, D)

    def forward(self, u):
        self.branch = self.s * self.adapter_up(F.relu(self.adapter_down(u)))
        return self.base(u)


class AdaptFormerOut(nn.Module):
    def __init__(self, base, src):
        super().__init__()
        self.base, self.src = base, [src]  # a list: not a submodule (its parameters are the intermediate's)

    def forward(self, x):
        return self.base(x) + self.src[0].branch


def test_bottleneck(case, tag, method, roles, m, s, act="relu"):
    """peftbench's own init (down kaiming-uniform bound 1/sqrt(D), up and biases 0, step 0 =
    base model), then random bottleneck tensors in both -> full comparison (no merge: nonlinear;
    trace --save must refuse)."""
    name = f"{case.name}/{tag}"
    args = ["--method", method, "--rank", str(m), "--opt", f"scaling={s}", "--opt", f"act={act}"]
    if roles:
        args += ["--targets", ",".join(roles)]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    model = case.fresh()
    fn = {"relu": F.relu, "gelu": F.gelu}[act]
    if method == "adaptformer":
        ins = module_paths(case.arch, case.layers, ["intermediate"])
        outs = module_paths(case.arch, case.layers, ["output"])
        mods = wrap(model, ins, lambda lin: AdaptFormerIn(lin, m, s))
        for (tin, hin), (tout, _) in zip(ins, outs):
            parent, leaf = tout.rsplit(".", 1)
            setattr(model.get_submodule(parent), leaf, AdaptFormerOut(model.get_submodule(tout), mods[hin]))
    else:
        mods = wrap(model, module_paths(case.arch, case.layers, roles), lambda lin: SeqAdapterLinear(lin, m, s, fn))
    g = torch.Generator().manual_seed(case.c["seed"] + 80)
    params = {}
    for hub, mod in mods.items():
        D = mod.adapter_down.in_features
        wd = own[f"init.{hub}.adapter_down.weight"]
        if not (torch.equal(own[f"init.{hub}.adapter_up.weight"], torch.zeros(D, m)) and
                torch.equal(own[f"init.{hub}.adapter_down.bias"], torch.zeros(m)) and
                torch.equal(own[f"init.{hub}.adapter_up.bias"], torch.zeros(D)) and
                0.8 / D ** 0.5 < wd.abs().max() <= 1 / D ** 0.5):
            failures.append(f"{name}: {hub}: init is not down kaiming-uniform, up / biases 0")
        with torch.no_grad():
            for leaf in ("adapter_down", "adapter_up"):
                lin = getattr(mod, leaf)
                lin.weight.copy_(0.3 * torch.randn(lin.weight.shape, generator=g))
                lin.bias.copy_(0.1 * torch.randn(lin.bias.shape, generator=g))
                params[f"{hub}.{leaf}.weight"] = lin.weight.detach().clone()
                params[f"{hub}.{leaf}.bias"] = lin.bias.detach().clone()
    compare_with_params(case, tag, args, params, model, w, merge=False)


# ----------------------------------------------------------------------------------------------
# HTA (papers.md 5; not in peft)

class HTALinear(nn.Module):
    """HTA Eq. 3-7 with explicit D x D matrices: W_HTA = (I - v_l v_l^T) diag(d) (I - v_r v_r^T),
    T = W_HTA + W_down W_up (paper layout: W_down = hta_down^T, W_up = hta_up^T); lora form
    y = base(x) + x T, adapter form y = z + z T with z = base(x)."""

    def __init__(self, base, r, adapter):
        super().__init__()
        self.base, self.adapter = base, adapter
        D = base.out_features
        self.hta_v_left, self.hta_v_right, self.hta_d = (nn.Parameter(torch.zeros(D)) for _ in range(3))
        if r:
            self.hta_down, self.hta_up = nn.Parameter(torch.zeros(r, D)), nn.Parameter(torch.zeros(D, r))
        self.r = r

    def forward(self, x):
        z = self.base(x)
        eye = torch.eye(z.shape[-1])
        T = (eye - torch.outer(self.hta_v_left, self.hta_v_left)) @ torch.diag(self.hta_d) @ \
            (eye - torch.outer(self.hta_v_right, self.hta_v_right))
        if self.r:
            T = T + self.hta_down.T @ self.hta_up.T
        return z + (z if self.adapter else x) @ T


def test_hta(case, tag, roles, r, form="lora"):
    """peftbench's own init (d = 0, up = 0, ||v||^2 = 2, down kaiming-uniform: step 0 = base),
    then random tensors in both -> full comparison and merge."""
    name = f"{case.name}/{tag}"
    args = ["--method", "hta", "--rank", str(r), "--opt", f"form={form}", "--targets", ",".join(roles)]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    model = case.fresh()
    mods = wrap(model, module_paths(case.arch, case.layers, roles), lambda lin: HTALinear(lin, r, form == "adapter"))
    g = torch.Generator().manual_seed(case.c["seed"] + 90)
    params = {}
    for hub, m in mods.items():
        D = m.hta_d.shape[0]
        ok = torch.equal(own[f"init.{hub}.hta_d"], torch.zeros(D))
        for v in ("hta_v_left", "hta_v_right"):
            ok &= abs(own[f"init.{hub}.{v}"].square().sum().item() - 2.0) < 1e-5
        if r:
            wd = own[f"init.{hub}.hta_down"]
            ok &= torch.equal(own[f"init.{hub}.hta_up"], torch.zeros(D, r)) and 0.8 / D ** 0.5 < wd.abs().max() <= 1 / D ** 0.5
        if not ok:
            failures.append(f"{name}: {hub}: init is not d = 0, up = 0, ||v||^2 = 2, down kaiming")
        with torch.no_grad():
            for leaf, p in m.named_parameters():
                if leaf.startswith("hta_"):
                    p.copy_(0.3 * torch.randn(p.shape, generator=g))
                    params[f"{hub}.{leaf}"] = p.detach().clone()
    compare_with_params(case, tag, args, params, model, w)


# ----------------------------------------------------------------------------------------------
# FacT (Jie & Deng, AAAI 2023, arXiv 2212.03145; not in peft)

class FacTLinear(nn.Module):
    """FacT-TK / FacT-TT on one linear as the authors' released forward computes it (fact_tk.py /
    fact_tt.py, rewritten here for HF's separate q/k/v linears): the linear is k = max(in,out)/d
    blocks of d x d; every wrapped linear uses one U (fact_u, FacTu's weight (r,d)), V (fact_v,
    FacTv's weight (d,r)) and, TK, one core C (fact_c (r,r,r)), registered on the first wrapped
    linear only. The linear's core: TK (C @ P_i).reshape(r, k r) with its P columns fact_p (r,k)
    (their FacTc @ FacTp[:, idx:idx+k], then [:, :, :4].reshape(dim, 4 dim)); TT its fact_core
    (r, k r). q/k/v/o and fc1 (expand): delta = s ((x U^T) M).view(..., k, r) @ V^T, flattened to
    k d; fc2 (reduce): delta = s ((x.view(..., k, d) @ U^T).flatten(-2) @ M^T) @ V^T. Dropout 0
    (the trace runs with dropout=0)."""

    def __init__(self, base, r, s, tk, owner):
        super().__init__()
        self.base, self.r, self.s, self.tk = base, r, s, tk
        i, o = base.in_features, base.out_features
        self.d, self.k, self.reduce = min(i, o), max(i, o) // min(i, o), i > o
        if owner is None:  # the first wrapped linear holds the shared factors
            self.fact_u = nn.Parameter(torch.zeros(r, self.d))
            self.fact_v = nn.Parameter(torch.zeros(self.d, r))
            if tk:
                self.fact_c = nn.Parameter(torch.zeros(r, r, r))
            owner = self
        self.held = [owner]  # a plain list: not registered again
        if tk:
            self.fact_p = nn.Parameter(torch.zeros(r, self.k))
        else:
            self.fact_core = nn.Parameter(torch.zeros(r, self.k * r))

    def forward(self, x):
        sh, r, k, d = self.held[0], self.r, self.k, self.d
        M = (sh.fact_c @ self.fact_p).reshape(r, k * r) if self.tk else self.fact_core
        lead = x.shape[:-1]
        if not self.reduce:
            g = (x @ sh.fact_u.T) @ M
            delta = (g.reshape(*lead, k, r) @ sh.fact_v.T).reshape(*lead, k * d)
        else:
            u = (x.reshape(*lead, k, d) @ sh.fact_u.T).reshape(*lead, k * r)
            delta = (u @ M.T) @ sh.fact_v.T
        return self.base(x) + self.s * delta


def test_fact(case, tag, method, roles, r, s, refuse=None):
    """peftbench's own init (V = 0: step-0 identity; U kaiming-uniform 1/sqrt d, C xavier sqrt(3)/r,
    P xavier over the whole P sqrt(6/(r + sum k)), TT cores 1/sqrt(r) or 1/sqrt(k r); U, V, C held
    once, by the first linear), then random tensors in both -> full comparison and merge.
    refuse: extra targets whose linears have no d x d blocks: trace must fail naming the rule."""
    name = f"{case.name}/{tag}"
    tk = method == "fact_tk"
    args = ["--method", method, "--rank", str(r), "--opt", f"scaling={s}", "--opt", "dropout=0",
            "--targets", ",".join(roles)]
    if refuse:
        try:
            case.trace(tag + "-refused", ["--method", method, "--targets", ",".join(roles + refuse)], steps=0, save=False)
            failures.append(f"{name}: targets {refuse} without d x d blocks were accepted")
        except RuntimeError as ex:
            if "multiple" not in str(ex):
                failures.append(f"{name}: refused without naming the block rule: {ex}")
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    paths = module_paths(case.arch, case.layers, roles)
    model = case.fresh()
    first = []

    def make(lin):
        m = FacTLinear(lin, r, s, tk, first[0] if first else None)
        first.append(m)
        return m
    mods = wrap(model, paths, make)
    owner_hub = paths[0][1]
    d = mods[owner_hub].d
    ncols = sum(m.k for m in mods.values())
    shared = [k for k in own if k.startswith("init.") and k.rsplit(".", 1)[1] in ("fact_u", "fact_v", "fact_c")]
    want = {f"init.{owner_hub}.{leaf}" for leaf in (("fact_u", "fact_v", "fact_c") if tk else ("fact_u", "fact_v"))}
    ok = set(shared) == want
    if ok:
        U, V = own[f"init.{owner_hub}.fact_u"], own[f"init.{owner_hub}.fact_v"]
        ok &= tuple(U.shape) == (r, d) and torch.equal(V, torch.zeros(d, r))
        ok &= 0.8 / d ** 0.5 < U.abs().max() <= 1 / d ** 0.5
        if tk:
            C = own[f"init.{owner_hub}.fact_c"]
            ok &= 0.8 * 3 ** 0.5 / r < C.abs().max() <= 3 ** 0.5 / r
            P = torch.cat([own[f"init.{hub}.fact_p"] for hub in mods], dim=1)
            bound = (6.0 / (r + ncols)) ** 0.5
            ok &= tuple(P.shape) == (r, ncols) and 0.8 * bound < P.abs().max() <= bound
        else:
            for hub, m in mods.items():
                core = own[f"init.{hub}.fact_core"]
                bound = 1 / (r * (m.k if m.reduce else 1)) ** 0.5
                ok &= tuple(core.shape) == (r, m.k * r) and 0.5 * bound < core.abs().max() <= bound
    if not ok:
        failures.append(f"{name}: init is not one U (kaiming), V = 0, C / P (or cores) in FacT's bounds, "
                        f"held by {owner_hub}: {sorted(shared)}")
    g = torch.Generator().manual_seed(case.c["seed"] + 70)
    params = {}
    with torch.no_grad():
        for hub, m in mods.items():
            for leaf, p in m.named_parameters(recurse=False):
                p.copy_((0.3 if leaf != "fact_v" else 0.1) * torch.randn(p.shape, generator=g))
                params[f"{hub}.{leaf}"] = p.detach().clone()
    compare_with_params(case, tag, args, params, model, w)

# ----------------------------------------------------------------------------------------------
# DyLoRA (Valipour et al. 2023, formats.md 2.6; not in peft)

class DyLoRASchedule:
    """The rank b of each forward: grad-enabled forwards take the next entry of `ranks` (drawn by
    the first module in model order, read by the others), no-grad forwards run at eval_rank."""

    def __init__(self, ranks, eval_rank):
        self.ranks, self.i, self.eval_rank, self.b, self.leader = list(ranks), 0, eval_rank, None, None


class DyLoRALinear(nn.Module):
    """y = W x + b + (alpha/b) B[:, :b] A[:b] x; frozen: only row b of A / column b of B learn."""

    def __init__(self, base, r, alpha, sched, frozen):
        super().__init__()
        self.base, self.alpha, self.sched, self.frozen = base, alpha, sched, frozen
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        if sched.leader is None:
            sched.leader = self

    def forward(self, x):
        sc = self.sched
        if not torch.is_grad_enabled():
            b = sc.eval_rank
        else:
            if sc.leader is self:
                sc.b = sc.ranks[sc.i]
                sc.i += 1
            b = sc.b
        A, B = self.lora_A.weight[:b], self.lora_B.weight[:, :b]
        if self.frozen:
            A = torch.cat([A[:b - 1].detach(), A[b - 1:b]], 0)
            B = torch.cat([B[:, :b - 1].detach(), B[:, b - 1:b]], 1)
        return self.base(x) + (self.alpha / b) * ((x @ A.T) @ B.T)


def test_dylora(case, tag, roles, r, alpha, eval_rank, frozen=False):
    """peftbench's own init (A kaiming-uniform, B = 0: step 0 = base), then random A, B in both,
    trained with trace --train and sampling=cycle: trace's first forward gives the gradients and
    step 0's loss (b = 1), steps 1 and 2 run at b = 2 and 3; the reference's extra gradient
    forward repeats b = 1. Final logits and merge at eval_rank."""
    name = f"{case.name}/{tag}"
    args = ["--method", "dylora", "--rank", str(r), "--alpha", str(alpha), "--opt", f"eval_rank={eval_rank}",
            "--opt", "sampling=cycle", "--opt", f"frozen={'true' if frozen else 'false'}",
            "--targets", ",".join(roles), "--train"]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    model = case.fresh()
    ranks = [1 + (t % r) for t in range(STEPS)]
    sched = DyLoRASchedule([ranks[0]] + ranks, eval_rank or r)
    mods = wrap(model, module_paths(case.arch, case.layers, roles), lambda lin: DyLoRALinear(lin, r, alpha, sched, frozen))
    g = torch.Generator().manual_seed(case.c["seed"] + 110)
    params = {}
    for hub, m in mods.items():
        A, B = own[f"init.{hub}.lora_A.weight"], own[f"init.{hub}.lora_B.weight"]
        bound = 1 / A.shape[1] ** 0.5
        if not (torch.equal(B, torch.zeros_like(B)) and 0.8 * bound < A.abs().max() <= bound):
            failures.append(f"{name}: {hub}: init is not A kaiming-uniform, B = 0")
        with torch.no_grad():
            for leaf, p in m.named_parameters():
                if leaf.startswith("lora_"):
                    # 0.1 (as LoRA's random B): with s = alpha/b up to alpha at b = 1, larger factors
                    # saturate the attention and leave q/k gradients at round-off level (1e-4 of the rest)
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
                    params[f"{hub}.{leaf}"] = p.detach().clone()
    compare_with_params(case, tag, args, params, model, w)
    if sched.i != len(sched.ranks):
        failures.append(f"{name}: the reference ran {sched.i} training forwards, expected {len(sched.ranks)}")


# ----------------------------------------------------------------------------------------------
# SSF (Lian et al. 2022; not in peft)

class SSFAfter(nn.Module):
    """y = gamma * base(x) + beta: after a linear or a LayerNorm (the norm's own affine frozen)."""

    def __init__(self, base, dim):
        super().__init__()
        self.base = base
        self.ssf_scale = nn.Parameter(torch.ones(dim))
        self.ssf_shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return self.base(x) * self.ssf_scale + self.ssf_shift


def norm_paths(case):
    """[(torch module path, peftbench hub key prefix)] of every LayerNorm."""
    L = case.layers
    if case.arch == "vit":
        out = [(f"vit.layers.{i}.{n}", f"vit.encoder.layer.{i}.{n}") for i in range(L)
               for n in ("layernorm_before", "layernorm_after")]
        return out + [("vit.layernorm", "vit.layernorm")]
    out = [("roberta.embeddings.LayerNorm",) * 2]
    return out + [(f"roberta.encoder.layer.{i}.{n}",) * 2 for i in range(L)
                  for n in ("attention.output.LayerNorm", "output.LayerNorm")]


def test_ssf(case, tag, roles, norms=True):
    """peftbench's own init (gamma ~ N(1, 0.02), beta ~ N(0, 0.02) as the paper's code; init=identity:
    step 0 = base), then random gamma, beta after every targeted linear and LayerNorm in both ->
    full comparison and merge."""
    name = f"{case.name}/{tag}"
    args = ["--method", "ssf", "--targets", ",".join(roles), "--opt", f"norms={'true' if norms else 'false'}"]
    ident, _ = case.trace(tag + "-id", args + ["--opt", "init=identity"], steps=0, save=False)
    w = {"step0_id": check(name, "init=identity: step-0 logits vs base model", rel(ident["logits"], case.base_logits), TOL_ID)}
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    sc = torch.cat([v for k, v in own.items() if k.startswith("init.") and k.endswith(".ssf_scale")])
    sh = torch.cat([v for k, v in own.items() if k.startswith("init.") and k.endswith(".ssf_shift")])
    if not (abs(sc.mean().item() - 1) < 0.01 and 0.015 < sc.std().item() < 0.025 and abs(sh.mean().item()) < 0.01
            and 0.015 < sh.std().item() < 0.025):
        failures.append(f"{name}: own init is not N(1, 0.02) / N(0, 0.02): scale {sc.mean():.4f}+-{sc.std():.4f}, "
                        f"shift {sh.mean():.4f}+-{sh.std():.4f}")
    model = case.fresh()
    paths = module_paths(case.arch, case.layers, roles)
    mods = wrap(model, paths, lambda lin: SSFAfter(lin, lin.out_features))
    if norms:
        mods.update(wrap(model, norm_paths(case), lambda ln: SSFAfter(ln, ln.normalized_shape[0])))
        for m in mods.values():  # the second wrap froze the first one's tensors
            m.ssf_scale.requires_grad_(True)
            m.ssf_shift.requires_grad_(True)
    n_own = sum(1 for k in own if k.startswith("init.") and k.endswith(".ssf_scale"))
    if n_own != len(mods):
        failures.append(f"{name}: peftbench has {n_own} SSF sites, the reference {len(mods)}")
    g = torch.Generator().manual_seed(case.c["seed"] + 120)
    params = {}
    for hub, m in mods.items():
        with torch.no_grad():
            m.ssf_scale.copy_(1 + 0.3 * torch.randn(m.ssf_scale.shape, generator=g))
            m.ssf_shift.copy_(0.3 * torch.randn(m.ssf_shift.shape, generator=g))
        params[f"{hub}.ssf_scale"] = m.ssf_scale.detach().clone()
        params[f"{hub}.ssf_shift"] = m.ssf_shift.detach().clone()
    compare_with_params(case, tag, args, params, model, w)


# ----------------------------------------------------------------------------------------------
# AdapterDrop (Rücklé et al. 2021; not in peft)

class DropSchedule:
    """n of each forward: grad-enabled forwards take the next entry of `ns` (drawn by the first
    module in model order, read by the others); no-grad forwards skip the first eval_drop layers."""

    def __init__(self, ns, eval_drop):
        self.ns, self.i, self.eval_drop, self.n, self.leader = list(ns), 0, eval_drop, 0, None


class DropAdapterLinear(SeqAdapterLinear):
    """A Pfeiffer adapter in encoder layer `layer`, skipped while layer < n."""

    def __init__(self, base, m, s, act, layer, sched):
        super().__init__(base, m, s, act)
        self.layer, self.sched = layer, sched
        if sched.leader is None:
            sched.leader = self

    def forward(self, x):
        sc = self.sched
        if torch.is_grad_enabled():
            if sc.leader is self:
                sc.n = sc.ns[sc.i]
                sc.i += 1
            n = sc.n
        else:
            n = sc.eval_drop
        return self.base(x) if self.layer < n else super().forward(x)


def test_adapterdrop(case, tag, m, eval_drop):
    """peftbench's own init (step 0 = base), then random adapters in both, trained with --train and
    sampling=cycle (n = 0, 1, 0 over the steps with 2 layers: layer 0's adapter is skipped, frozen, at
    step 1); the final logits skip the first eval_drop layers."""
    name = f"{case.name}/{tag}"
    args = ["--method", "adapterdrop", "--rank", str(m), "--opt", "sampling=cycle", "--opt", f"eval_drop={eval_drop}",
            "--train"]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    model = case.fresh()
    ns = [t % case.layers for t in range(STEPS)]  # drop_max = layers - 1
    sched = DropSchedule([ns[0]] + ns, eval_drop)
    paths = module_paths(case.arch, case.layers, ["output"])
    mods = wrap(model, paths, lambda lin: DropAdapterLinear(lin, m, 1.0, F.relu, 0, sched))
    for k, mod in enumerate(mods.values()):  # paths are in layer order, one per layer
        mod.layer = k
    g = torch.Generator().manual_seed(case.c["seed"] + 130)
    params = {}
    for hub, mod in mods.items():
        with torch.no_grad():
            for leaf in ("adapter_down", "adapter_up"):
                lin = getattr(mod, leaf)
                lin.weight.copy_(0.3 * torch.randn(lin.weight.shape, generator=g))
                lin.bias.copy_(0.1 * torch.randn(lin.bias.shape, generator=g))
                params[f"{hub}.{leaf}.weight"] = lin.weight.detach().clone()
                params[f"{hub}.{leaf}.bias"] = lin.bias.detach().clone()
    compare_with_params(case, tag, args, params, model, w, merge=False)


# ----------------------------------------------------------------------------------------------
# VPT (Jia et al. 2022; not in peft)

class VPTPrompt(nn.Module):
    def __init__(self, p, C):
        super().__init__()
        self.embeddings = nn.Parameter(torch.zeros(p, C))


def add_vpt(model, p, deep):
    """Prompts on transformers' ViT by hooks: [CLS, P_0, patches] after the embeddings; deep: the
    prompt rows entering layer l >= 1 replaced by P_l. Parameters at vit.prompt.<l>.embeddings."""
    for q in model.parameters():
        q.requires_grad_(False)
    for q in model.classifier.parameters():
        q.requires_grad_(True)
    vit = model.vit
    L, C = len(vit.layers), model.config.hidden_size
    vit.prompt = nn.ModuleList([VPTPrompt(p, C) for _ in range(L if deep else 1)])

    def embed_hook(mod, args, out):
        B = out.shape[0]
        return torch.cat([out[:, :1], vit.prompt[0].embeddings.expand(B, -1, -1), out[:, 1:]], 1)
    vit.embeddings.register_forward_hook(embed_hook)
    if deep:
        for l in range(1, L):
            def pre(mod, args, kwargs, l=l):
                h = args[0] if args else kwargs["hidden_states"]
                B = h.shape[0]
                h = torch.cat([h[:, :1], vit.prompt[l].embeddings.expand(B, -1, -1), h[:, 1 + p:]], 1)
                if args:
                    return (h,) + tuple(args[1:]), kwargs
                kwargs["hidden_states"] = h
                return args, kwargs
            vit.layers[l].register_forward_pre_hook(pre, with_kwargs=True)
    return vit.prompt


def test_vpt(case, tag, p, deep):
    """peftbench's own init (U(-v, v), v = sqrt(6 / (channels patch^2 + D)), VPT's code), then
    random prompts in both -> full comparison; not mergeable (trace --save must refuse)."""
    name = f"{case.name}/{tag}"
    args = ["--method", "vpt", "--opt", f"tokens={p}", "--opt", f"depth={'deep' if deep else 'shallow'}"]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    model = case.fresh()
    prompts = add_vpt(model, p, deep)
    cfg = model.config
    v = (6.0 / (cfg.num_channels * cfg.patch_size ** 2 + cfg.hidden_size)) ** 0.5
    n_own = sum(1 for k in own if k.startswith("init.vit.prompt."))
    if n_own != len(prompts):
        failures.append(f"{name}: peftbench has {n_own} prompt tensors, the reference {len(prompts)}")
    for l in range(len(prompts)):
        t = own.get(f"init.vit.prompt.{l}.embeddings")
        if t is None or tuple(t.shape) != (p, cfg.hidden_size) or not (0.8 * v < t.abs().max() <= v):
            failures.append(f"{name}: prompt {l}: init is not U(-{v:.4f}, {v:.4f}) of shape ({p}, {cfg.hidden_size})")
    w = {}
    with torch.no_grad():  # the own-init logits through the reference = peftbench's own forward
        for l, pr in enumerate(prompts):
            pr.embeddings.copy_(own[f"init.vit.prompt.{l}.embeddings"])
        w["own_logits"] = check(name, "own init logits vs the reference", rel(own["logits"], model(**case.inputs).logits), TOL)
    g = torch.Generator().manual_seed(case.c["seed"] + 140)
    params = {}
    with torch.no_grad():
        for l, pr in enumerate(prompts):
            pr.embeddings.copy_(0.5 * torch.randn(pr.embeddings.shape, generator=g))
            params[f"vit.prompt.{l}.embeddings"] = pr.embeddings.detach().clone()
    compare_with_params(case, tag, args, params, model, w, merge=False)


def test_vpt_refuses_roberta(case):
    try:
        case.trace("vpt-refused", ["--method", "vpt"], steps=0, save=False)
        failures.append(f"{case.name}/vpt: a RoBERTa model accepted VPT")
    except RuntimeError as ex:
        if "not a ViT" not in str(ex):
            failures.append(f"{case.name}/vpt: refused without saying why: {ex}")


# ----------------------------------------------------------------------------------------------
# PiSSA

def residual_model(case, pm, paths):
    """The base model with peft's residual weights in the adapted linears, saved for peftbench."""
    res = case.fresh()
    with torch.no_grad():
        for tpath, _ in paths:
            lay = pm.base_model.model.get_submodule(tpath)
            res.get_submodule(tpath).weight.copy_(lay.base_layer.weight)
    return res


def test_pissa(case, tag, roles, r, alpha, init):
    paths = module_paths(case.arch, case.layers, roles)
    pm = peft_model(case, case.fresh(), [p for p, _ in paths], r=r, lora_alpha=alpha,
                    init_lora_weights=init)
    s = alpha / r
    name = f"{case.name}/{tag}"
    w = {}
    pbinit = "svd" if init == "pissa" else init.replace("pissa_", "")
    roles_arg = ",".join(roles)
    # 1. peftbench's own initialisation
    own, _ = case.trace(tag + "-own", ["--method", "pissa", "--rank", str(r), "--alpha", str(alpha),
                                       "--targets", roles_arg, "--init", pbinit], steps=0, save=False)
    w["step0_id"] = check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)
    ew = 0.0
    for tpath, hub in paths:
        A = own[f"init.{hub}.lora_A.weight"]
        B = own[f"init.{hub}.lora_B.weight"]
        W = case.model.get_submodule(tpath).weight.detach()
        ew = max(ew, check(name, f"{hub}: W_res + s B A vs W", rel(own[f"base.{hub}.weight"] + s * B @ A, W), TOL_ID))
    w["W_res+sBA"] = ew
    if init == "pissa":
        # full SVD: factors equal peft's up to a per-component sign
        sign, ea, eb, er = {}, 0.0, 0.0, 0.0
        for tpath, hub in paths:
            lay = pm.base_model.model.get_submodule(tpath)
            At, Bt = lay.lora_A["default"].weight.detach(), lay.lora_B["default"].weight.detach()
            A = own[f"init.{hub}.lora_A.weight"]
            B = own[f"init.{hub}.lora_B.weight"]
            sg = torch.sign((A * At).sum(1))
            sign[f"{hub}.lora_A.weight"] = sg[:, None]
            sign[f"{hub}.lora_B.weight"] = sg[None, :]
            ea = max(ea, check(name, f"{hub}: lora_A vs peft (sign-aligned)", rel(A * sg[:, None], At), TOL))
            eb = max(eb, check(name, f"{hub}: lora_B vs peft (sign-aligned)", rel(B * sg[None, :], Bt), TOL))
            er = max(er, check(name, f"{hub}: W_res vs peft", rel(own[f"base.{hub}.weight"], lay.base_layer.weight), TOL))
        w.update(A=ea, B=eb, W_res=er)
        ref = copy.deepcopy(pm)
        wg = compare(case, tag + "-own", own, ref, steps=0, sign=sign)
        w.update({"own_" + k: v for k, v in wg.items()})
    # 2. identical weights: peft's factors (adapter dir) on peft's residual base
    adir = os.path.join(case.tmp, f"{case.name}.{tag}.adapter")
    pm.save_pretrained(adir)
    rdir = os.path.join(case.tmp, f"{case.name}.{tag}.residual")
    residual_model(case, pm, paths).save_pretrained(rdir, safe_serialization=True)
    got, sdir = case.trace(tag, ["--peft-import", adir], model_dir=rdir)
    w.update(compare(case, tag, got, pm))
    check_merged(case, tag, got, sdir, w)
    log(case, tag, w)


# ----------------------------------------------------------------------------------------------
# SVFit (papers.md 3.2, docs/methods.md)

class SVFitLinear(nn.Module):
    def __init__(self, base, r):
        super().__init__()
        W = base.weight.detach()
        # exact truncation of the float32 weight: the SVD and W_e in float64, then rounded once
        U, S, Vh = torch.linalg.svd(W.double(), full_matrices=False)
        self.register_buffer("Ur", U[:, :r].float().contiguous())
        self.register_buffer("Vhr", Vh[:r].float().contiguous())
        s0 = S[:r].float()
        We = torch.zeros_like(W) if r == min(W.shape) else (W.double() - (U[:, :r] * S[:r]) @ Vh[:r]).float()
        self.register_buffer("We", We)
        self.register_buffer("b", base.bias.detach().clone() if base.bias is not None else None)
        self.svfit_sigma = nn.Parameter(s0)

    def forward(self, x):
        return F.linear(x, self.We, self.b) + ((x @ self.Vhr.T) * self.svfit_sigma) @ self.Ur.T


def wrap(model, paths, make):
    for p in model.parameters():
        p.requires_grad_(False)
    mods = {}
    for tpath, hub in paths:
        parent, leaf = tpath.rsplit(".", 1)
        m = make(model.get_submodule(tpath))
        setattr(model.get_submodule(parent), leaf, m)
        mods[hub] = m
    for p in model.classifier.parameters():
        p.requires_grad_(True)
    return mods


def test_svfit(case, tag, roles, r):
    paths = module_paths(case.arch, case.layers, roles)
    name = f"{case.name}/{tag}"
    args = ["--method", "svfit", "--rank", str(r), "--targets", ",".join(roles)]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    model = case.fresh()
    mods = wrap(model, paths, lambda lin: SVFitLinear(lin, r))
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    es = ew = 0.0
    g = torch.Generator().manual_seed(case.c["seed"] + 20)
    params = {}
    for hub, m in mods.items():
        es = max(es, check(name, f"{hub}: sigma0 vs torch.linalg.svd", rel(own[f"init.{hub}.svfit_sigma"], m.svfit_sigma), TOL_ID))
        W = case.model.get_submodule([t for t, h in paths if h == hub][0]).weight.detach()
        # W_e relative to ||W|| (W_e is the small tail, or exactly 0 at full rank)
        e = (own[f"base.{hub}.weight"] - m.We).norm().item() / W.norm().item()
        ew = max(ew, check(name, f"{hub}: W_e vs torch", e, TOL_ID))
        with torch.no_grad():  # move sigma away from sigma0 (same values on both sides)
            m.svfit_sigma.mul_(1.0 + 0.3 * torch.randn(r, generator=g))
        params[f"{hub}.svfit_sigma"] = m.svfit_sigma.detach().clone()
    w.update(sigma0=es, W_e=ew)
    compare_with_params(case, tag, args, params, model, w)


# ----------------------------------------------------------------------------------------------
# AOFT (papers.md 6.2-6.5, docs/methods.md)

def AO(q, d):
    """First d columns of Q(q): column 0 = q; column j>=1 = (-q_j, e_j - qbar q_j / (1+q0))."""
    D = q.shape[0]
    c = 1.0 + q[0]
    top = -q[1:d].unsqueeze(0)                                                   # (1, d-1)
    low = torch.eye(D - 1, d - 1, dtype=q.dtype) - torch.outer(q[1:], q[1:d]) / c  # (D-1, d-1)
    return torch.cat([q.unsqueeze(1), torch.cat([top, low], 0)], 1)             # (D, d)


class AOFTLinear(nn.Module):
    def __init__(self, base, d, variant, gate):
        super().__init__()
        self.base, self.d, self.variant, self.gate = base, d, variant, gate
        Din = base.in_features if variant == "lora" else base.out_features
        self.aoft_q_down = nn.Parameter(torch.zeros(Din))
        self.aoft_q_up = nn.Parameter(torch.zeros(base.out_features))
        if gate == "scalar":
            self.aoft_gate = nn.Parameter(torch.zeros(1))
        else:
            self.aoft_lambda = nn.Parameter(torch.zeros(d))

    def forward(self, x):
        z = self.base(x)
        lam = self.aoft_gate.expand(self.d) if self.gate == "scalar" else self.aoft_lambda
        u = x if self.variant == "lora" else z
        return z + ((u @ AO(self.aoft_q_down, self.d)) * lam) @ AO(self.aoft_q_up, self.d).T


def test_aoft(case, tag, roles, d, variant, gate):
    name = f"{case.name}/{tag}"
    args = ["--method", "aoft", "--rank", str(d), "--variant", variant, "--gate", gate]
    if roles:
        args += ["--targets", ",".join(roles)]
    else:  # Adapter+AOFT default placement: after the FFN output linear
        roles = ["output"]
    paths = module_paths(case.arch, case.layers, roles)
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    # the construction itself: Q(q) (all D columns) is orthogonal for a unit q
    g = torch.Generator().manual_seed(case.c["seed"] + 30)
    q = torch.randn(17, generator=g, dtype=torch.float64)
    q /= q.norm()
    Q = AO(q, 17)
    w["Q_orth_f64"] = (Q.T @ Q - torch.eye(17, dtype=torch.float64)).abs().max().item()
    check(name, "max|Q^T Q - I| of the torch construction (float64)", w["Q_orth_f64"], 1e-12)
    eo = 0.0
    for _, hub in paths:
        for leaf in ("aoft_q_down", "aoft_q_up"):
            qq = own[f"init.{hub}.{leaf}"]
            check(name, f"{hub}.{leaf}: | ||q|| - 1 |", abs(qq.double().norm().item() - 1.0), 1e-6)
            if qq[0] < 0:
                failures.append(f"{name}: {hub}.{leaf}: q0 < 0 at init")
            A = AO(qq, d)
            eo = max(eo, check(name, f"{hub}.{leaf}: max|AO^T AO - I|", (A.T @ A - torch.eye(d)).abs().max().item(), 1e-5))
        lam = own[f"init.{hub}." + ("aoft_gate" if gate == "scalar" else "aoft_lambda")]
        if lam.abs().max().item() != 0.0:
            failures.append(f"{name}: {hub}: gate not 0 at init")
    w["AO_orth"] = eo
    model = case.fresh()
    mods = wrap(model, paths, lambda lin: AOFTLinear(lin, d, variant, gate))
    params = {}
    with torch.no_grad():
        for hub, m in mods.items():
            for leaf in ("aoft_q_down", "aoft_q_up"):
                p = getattr(m, leaf)
                v = torch.randn(p.shape, generator=g)
                v /= v.norm()
                v[0] = v[0].abs()
                v += 0.15 * torch.randn(p.shape, generator=g)  # ||q|| != 1: approximately orthogonal
                p.copy_(v)
                params[f"{hub}.{leaf}"] = v.clone()
            leaf = "aoft_gate" if gate == "scalar" else "aoft_lambda"
            p = getattr(m, leaf)
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
            params[f"{hub}.{leaf}"] = p.detach().clone()
    compare_with_params(case, tag, args, params, model, w)


# ----------------------------------------------------------------------------------------------
# IA3 (peft IA3Config)

def test_ia3(case, tag, roles, ff_roles):
    """peft's IA3 with random vectors l (its init is ones: step 0 is checked on peftbench's own
    init), the same l loaded into peftbench with --params."""
    name = f"{case.name}/{tag}"
    args = ["--method", "ia3", "--targets", ",".join(roles), "--opt", "feedforward=" + ",".join(ff_roles)]
    own, _ = case.trace(tag + "-own", args, steps=0, save=False)
    w = {"step0_id": check(name, "own init: step-0 logits vs base model", rel(own["logits"], case.base_logits), TOL_ID)}
    for k, v in own.items():
        if k.startswith("init.") and not torch.equal(v, torch.ones_like(v)):
            failures.append(f"{name}: {k} is not ones at init")
    paths = module_paths(case.arch, case.layers, roles)
    ff = [p for p, _ in module_paths(case.arch, case.layers, ff_roles)]
    pm = get_peft_model(case.fresh(), peft.IA3Config(target_modules=[p for p, _ in paths], feedforward_modules=ff,
                                                     modules_to_save=["classifier"]))
    n_ia3 = sum(1 for n, _ in pm.named_parameters() if "ia3_l" in n)
    if n_ia3 != len(paths):
        failures.append(f"{name}: peft adapted {n_ia3} modules, expected {len(paths)}")
    g = torch.Generator().manual_seed(case.c["seed"] + 40)
    params = {}
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "ia3_l" in n:
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
                params[pb_key(n)] = p.detach().clone().flatten()
    compare_with_params(case, tag, args, params, pm, w)


# ----------------------------------------------------------------------------------------------
# head

def test_unfreeze(case, tag, method, rule):
    """Methods that only choose what trains (bitfit, lntuning): transformers with exactly the
    parameters of `rule` (HF names) and the classifier trainable."""
    model = case.fresh()
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith("classifier.") or rule(n))
    got, sdir = case.trace(tag, ["--method", method])
    w = compare(case, tag, got, model)
    check_merged(case, tag, got, sdir, w)
    log(case, tag, w)


def test_head(case, tag):
    model = case.fresh()
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith("classifier."))
    got, sdir = case.trace(tag, ["--method", "head"])
    w = compare(case, tag, got, model)
    check_merged(case, tag, got, sdir, w)
    log(case, tag, w)


def test_peft_suffix_semantics(case):
    """Why peftbench's role "output" is exact: PEFT's suffix match of "output.dense" adapts both
    attention.output.dense and the FFN output.dense of RoBERTa."""
    pm = get_peft_model(case.fresh(), LoraConfig(r=2, target_modules=["output.dense"]))
    n = sum(1 for k, _ in pm.named_modules() if k.endswith("lora_A"))
    if n != 2 * case.layers:
        failures.append(f"{case.name}: peft target 'output.dense' adapted {n} modules, expected {2 * case.layers}")


VIT = dict(name="vit", arch="vit", image=16, patch=4, channels=3, hidden=32, layers=2, heads=4,
           inter=48, labels=5, batch=3, seed=11)
ROB = dict(name="rob", arch="roberta", vocab=60, hidden=32, layers=2, heads=4, inter=48, maxpos=24,
           seq=10, lens=[10, 6, 3], labels=3, batch=3, seed=12)
ROB_REG = dict(name="robreg", arch="roberta", vocab=50, hidden=24, layers=2, heads=3, inter=40,
               maxpos=20, seq=8, lens=[8, 5, 3, 7], labels=1, batch=4, seed=13)
ALL6 = ["query", "key", "value", "attention.output", "intermediate", "output"]
# FacT needs the FFN in d x d blocks: intermediate = k hidden (ViT k = 4 as FacT's, RoBERTa k = 2)
VIT4 = dict(name="vit4", arch="vit", image=16, patch=4, channels=3, hidden=16, layers=2, heads=4,
            inter=64, labels=5, batch=3, seed=21)
ROB2 = dict(name="rob2", arch="roberta", vocab=60, hidden=16, layers=2, heads=4, inter=32, maxpos=24,
            seq=10, lens=[10, 6, 3], labels=3, batch=3, seed=22)


DEVICE = ["--device", "cpu"]


def main():
    global PB, DEVICE
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    PB = sys.argv[1]
    keep = sys.argv[sys.argv.index("--keep") + 1] if "--keep" in sys.argv else None
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    if "--device" in sys.argv:
        DEVICE = ["--device", sys.argv[sys.argv.index("--device") + 1]]
    why = device_missing(PB, DEVICE[1])
    if why:
        print(f"SKIP ref_methods.py --device {DEVICE[1]}: {why}")
        return 77
    print(f"peft {peft.__version__}, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = keep or tmp
        os.makedirs(tmp, exist_ok=True)
        vit, rob, reg = Case(tmp, VIT), Case(tmp, ROB), Case(tmp, ROB_REG)
        extra = {}

        def lazy(c):  # cases only some tests use are built on first use
            if c["name"] not in extra:
                extra[c["name"]] = Case(tmp, c)
            return extra[c["name"]]
        tests = [
            ("vit/lora-qv", lambda: test_lora(vit, "lora-qv", ["query", "value"], 4, 8, short_targets=["q_proj", "v_proj"])),
            ("rob/lora-qv-rslora", lambda: test_lora(rob, "lora-qv-rslora", ["query", "value"], 4, 8, short_targets=["query", "value"], rslora=True)),
            ("vit/lora-k,ao,int,out", lambda: test_lora(vit, "lora-k,ao,int,out", ["key", "attention.output", "intermediate", "output"], 3, 5)),
            ("reg/lora-all6", lambda: test_lora(reg, "lora-all6", ALL6, 2, 4)),
            ("vit/dora-qv", lambda: test_dora(vit, "dora-qv", ["query", "value"], 4, 8)),
            ("rob/dora-k,int,out-rslora", lambda: test_dora(rob, "dora-k,int,out-rslora", ["key", "intermediate", "output"], 3, 6, rslora=True)),
            ("reg/dora-all6", lambda: test_dora(reg, "dora-all6", ALL6, 2, 4)),
            ("vit/vera-qv", lambda: test_vera(vit, "vera-qv", ["query", "value"], 8, 0.1)),
            ("rob/vera-q,int,out", lambda: test_vera(rob, "vera-q,int,out", ["query", "intermediate", "output"], 16, 0.5)),
            ("reg/vera-all6", lambda: test_vera(reg, "vera-all6", ALL6, 4, 1.0)),
            ("vit/fourierft-qv", lambda: test_fourierft(vit, "fourierft-qv", ["query", "value"], 100, 30.0)),
            ("rob/fourierft-q,int,out", lambda: test_fourierft(rob, "fourierft-q,int,out", ["query", "intermediate", "output"], 300, 40.0, loc_seed=5)),
            ("reg/fourierft-all6", lambda: test_fourierft(reg, "fourierft-all6", ALL6, 50, 20.0, loc_seed=2024)),
            ("vit/adapter_h", lambda: test_bottleneck(vit, "adapter_h", "adapter_h", ["attention.output", "output"], 4, 1.0)),
            ("rob/adapter_h-gelu", lambda: test_bottleneck(rob, "adapter_h-gelu", "adapter_h", ["attention.output", "output"], 6, 0.5, "gelu")),
            ("reg/adapter_p", lambda: test_bottleneck(reg, "adapter_p", "adapter_p", ["output"], 3, 2.0)),
            ("vit/adaptformer", lambda: test_bottleneck(vit, "adaptformer", "adaptformer", None, 4, 0.1)),
            ("rob/adaptformer", lambda: test_bottleneck(rob, "adaptformer", "adaptformer", None, 5, 0.7)),
            ("vit/hta-qkvo", lambda: test_hta(vit, "hta-qkvo", ["query", "key", "value", "attention.output"], 1)),
            ("rob/hta-qv-r0", lambda: test_hta(rob, "hta-qv-r0", ["query", "value"], 0)),
            ("vit/hta-adapter-ffn", lambda: test_hta(vit, "hta-adapter-ffn", ["output"], 2, "adapter")),
            ("reg/hta-adapter-int,out", lambda: test_hta(reg, "hta-adapter-int,out", ["intermediate", "output"], 1, "adapter")),
            ("vit4/fact_tk-all6", lambda: test_fact(lazy(VIT4), "fact_tk-all6", "fact_tk", ALL6, 4, 0.7)),
            ("rob2/fact_tk-all6", lambda: test_fact(lazy(ROB2), "fact_tk-all6", "fact_tk", ALL6, 3, 10.0)),
            ("vit/fact_tk-qkvo", lambda: test_fact(vit, "fact_tk-qkvo", "fact_tk", ALL6[:4], 8, 1.0, refuse=["intermediate"])),
            ("vit4/fact_tt-all6", lambda: test_fact(lazy(VIT4), "fact_tt-all6", "fact_tt", ALL6, 3, 1.5)),
            ("rob2/fact_tt-q,v,int,out", lambda: test_fact(lazy(ROB2), "fact_tt-q,v,int,out", "fact_tt", ["query", "value", "intermediate", "output"], 4, 10.0)),
            ("reg/fact_tk-q,ao", lambda: test_fact(reg, "fact_tk-q,ao", "fact_tk", ["query", "attention.output"], 2, 2.0)),
            ("vit/dylora-qv", lambda: test_dylora(vit, "dylora-qv", ["query", "value"], 4, 8, 3)),
            ("rob/dylora-frozen-q,int,out", lambda: test_dylora(rob, "dylora-frozen-q,int,out", ["query", "intermediate", "output"], 3, 6, 0, frozen=True)),
            ("reg/dylora-all6", lambda: test_dylora(reg, "dylora-all6", ALL6, 5, 5, 2)),
            ("vit/ssf-all6+norms", lambda: test_ssf(vit, "ssf-all6+norms", ALL6)),
            ("rob/ssf-all6+norms", lambda: test_ssf(rob, "ssf-all6+norms", ALL6)),
            ("reg/ssf-q,v", lambda: test_ssf(reg, "ssf-q,v", ["query", "value"], norms=False)),
            ("vit/adapterdrop", lambda: test_adapterdrop(vit, "adapterdrop", 4, 0)),
            ("rob/adapterdrop-eval1", lambda: test_adapterdrop(rob, "adapterdrop-eval1", 6, 1)),
            ("vit/vpt-shallow", lambda: test_vpt(vit, "vpt-shallow", 3, False)),
            ("vit/vpt-deep", lambda: test_vpt(vit, "vpt-deep", 4, True)),
            ("rob/vpt-refused", lambda: test_vpt_refuses_roberta(rob)),
            ("rob/pissa", lambda: test_pissa(rob, "pissa", ["query", "value"], 4, 8, "pissa")),
            ("vit/pissa-int,out", lambda: test_pissa(vit, "pissa-int,out", ["intermediate", "output"], 3, 6, "pissa")),
            ("vit/pissa-niter4", lambda: test_pissa(vit, "pissa-niter4", ["query", "value"], 4, 4, "pissa_niter_4")),
            ("vit/svfit-r4", lambda: test_svfit(vit, "svfit-r4", ["query", "value"], 4)),
            ("rob/svfit-full", lambda: test_svfit(rob, "svfit-full", ["query", "value"], 32)),
            ("reg/svfit-q,int,out", lambda: test_svfit(reg, "svfit-q,int,out", ["query", "intermediate", "output"], 6)),
            ("vit/aoft-lora-lam", lambda: test_aoft(vit, "aoft-lora-lam", ["query", "value"], 4, "lora", "lambda")),
            ("rob/aoft-lora-scalar", lambda: test_aoft(rob, "aoft-lora-scalar", ["query", "value", "intermediate"], 3, "lora", "scalar")),
            ("vit/aoft-adapter-lam", lambda: test_aoft(vit, "aoft-adapter-lam", None, 4, "adapter", "lambda")),
            ("reg/aoft-adapter-scalar", lambda: test_aoft(reg, "aoft-adapter-scalar", None, 2, "adapter", "scalar")),
            ("vit/ia3", lambda: test_ia3(vit, "ia3", ["key", "value", "output"], ["output"])),
            ("rob/ia3-q,int,ff-int", lambda: test_ia3(rob, "ia3-q,int,ff-int", ["query", "intermediate"], ["intermediate"])),
            ("reg/ia3-all6", lambda: test_ia3(reg, "ia3-all6", ALL6, ["attention.output", "output"])),
            ("vit/bitfit", lambda: test_unfreeze(vit, "bitfit", "bitfit", lambda n: n.endswith(".bias"))),
            ("rob/bitfit", lambda: test_unfreeze(rob, "bitfit", "bitfit", lambda n: n.endswith(".bias"))),
            ("vit/lntuning", lambda: test_unfreeze(vit, "lntuning", "lntuning", lambda n: "layernorm" in n.lower())),
            ("reg/lntuning", lambda: test_unfreeze(reg, "lntuning", "lntuning", lambda n: "layernorm" in n.lower())),
            ("vit/head", lambda: test_head(vit, "head")),
            ("reg/head", lambda: test_head(reg, "head")),
            ("rob/peft_suffix_semantics", lambda: test_peft_suffix_semantics(rob)),
        ]
        for tag, t in tests:
            if only and only not in tag:
                continue
            try:
                t()
            except Exception as ex:  # report and go on
                import traceback
                traceback.print_exc()
                failures.append(f"{ex}")
    for f in failures:
        print("FAIL", f)
    print(f"tolerances: {TOL:.0e} (peer comparisons), {TOL_ID:.0e} (identities); "
          f"{len(report)} cases, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
